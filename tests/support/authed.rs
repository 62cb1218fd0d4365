//! HTTP helpers for process tests of clusters with access control on (the `process.rs` helpers
//! ask without a token): calls with a bearer token, bounded waits, the leader's port.
#![allow(dead_code)]

use std::thread;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use super::process::{http_client, ProcCluster, POLL};

/// Bound of every wait here.
pub const WAIT: Duration = Duration::from_secs(30);

/// `method http://127.0.0.1:port path` with `token` and a JSON body: status and JSON answer
/// (Null when not JSON; a status of 0 when nothing answered).
pub fn call(
    method: Method,
    port: u16,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http_client().request(method, format!("http://127.0.0.1:{port}{path}"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    match req.send() {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (status, resp.json().unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

/// Polls `probe` until it returns `Some`, or panics naming `what`.
pub fn wait<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(POLL);
    }
}

/// The HTTP port of the leader as the node on `port` sees it, asked with `token`.
pub fn leader_port(ports: &[(u64, u16)], token: Option<&str>) -> u16 {
    wait("a leader", || {
        ports.iter().find_map(|&(id, port)| {
            let (status, body) = call(Method::GET, port, "/v1/status", token, None);
            (status == 200 && body["role"] == json!("LEADER") && body["id"] == json!(id))
                .then_some(port)
        })
    })
}

/// (id, HTTP port) of every node of `cluster`.
pub fn ports_of(cluster: &ProcCluster) -> Vec<(u64, u16)> {
    cluster
        .ids()
        .into_iter()
        .map(|id| (id, cluster.node(id).http_port))
        .collect()
}

/// The token names of a `GET /v1/auth/tokens` answer, in its order.
pub fn token_names(list: &Value) -> Vec<&str> {
    list["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect()
}
