//! Limits of the REST gateway on an in-process 3-node cluster: request bodies bounded on every
//! route (JSON 413, with or without Content-Length), slow bodies cut (JSON 408), and a flood
//! from one client (one token, or one IP address) answered 429 while other clients' requests
//! keep succeeding and the cluster stays healthy; refusals are counted in /metrics.

use crate::requests::{client, request};
use crate::support::cluster;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use cluster::TestCluster;
use futures::future::join_all;
use raftix::config::{NodeConfig, TokenConfig, TokenRole};
use serde_json::{json, Value};

const ELECTION: Duration = Duration::from_secs(5);
const ADMIN: &str = "limits-admin-secret";
const FLOODER: &str = "limits-flooder-secret";
const POLITE: &str = "limits-polite-secret";
/// Per-client in-flight limit of these tests.
const PER_CLIENT: usize = 4;
/// Concurrent requests of the flooding client: 4x its limit.
const FLOOD: usize = 4 * PER_CLIENT;
/// Requests each flooding task sends, back to back.
const FLOOD_ROUNDS: usize = 25;
/// Longest a request of the other client may take during the flood.
const POLITE_BOUND: Duration = Duration::from_secs(3);

fn tune(config: &mut NodeConfig) {
    config.max_value_bytes = 1024;
    config.max_body_bytes = 4096;
    config.client_body_timeout_ms = 300;
    config.max_inflight_requests = 64;
    config.max_inflight_per_client = PER_CLIENT;
}

fn tokens() -> Vec<TokenConfig> {
    let t = |name: &str, token: &str, role| TokenConfig {
        name: name.into(),
        token: token.into(),
        role,
        prefix: None,
    };
    vec![
        t("ops", ADMIN, TokenRole::Admin),
        t("flooder", FLOODER, TokenRole::Write),
        t("polite", POLITE, TokenRole::Write),
    ]
}

/// `method url` with `token` and a raw `body`: status, JSON body (Null if not JSON), headers.
async fn send(
    client: &awc::Client,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value, awc::http::header::HeaderMap) {
    let mut resp = request(client, method, url, token)
        .send_body(body)
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let raw = resp.body().limit(16 << 20).await.unwrap_or_default();
    (
        status,
        serde_json::from_slice(&raw).unwrap_or(Value::Null),
        headers,
    )
}

/// The value of `raftix_http_refused_total{reason="<reason>"}` in a /metrics text (0 if absent).
fn refused(metrics: &str, reason: &str) -> u64 {
    let prefix = format!("raftix_http_refused_total{{reason=\"{reason}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn metrics_text(client: &awc::Client, base: &str, token: Option<&str>) -> String {
    let mut req = client.get(format!("{base}/metrics"));
    if let Some(token) = token {
        req = req.insert_header(("authorization", format!("Bearer {token}")));
    }
    let mut resp = req.send().await.expect("metrics");
    String::from_utf8_lossy(&resp.body().limit(16 << 20).await.expect("body")).into_owned()
}

/// Waits until every node answers /readyz 200.
async fn wait_ready(c: &TestCluster, client: &awc::Client) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for id in c.ids() {
        loop {
            let (status, body, _) = send(
                client,
                "GET",
                &format!("{}/readyz", c.url(id)),
                None,
                vec![],
            )
            .await;
            if status == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "node {id} not ready: {body}");
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[actix_rt::test]
async fn bodies_are_bounded_on_every_route_and_slow_bodies_are_cut() {
    let mut c = TestCluster::start_with(3, tune).await;
    c.serve_http();
    let leader = c.wait_leader(&c.ids(), ELECTION).await;
    let base = c.url(leader);
    let client = client();

    // Declared too large (Content-Length): 413 before the body is read, on every route.
    let big = vec![b'x'; 5000];
    let cases = [
        ("PUT", "/v1/kv/k", vec![b'v'; 1025]),
        ("POST", "/v1/kv/k/cas", big.clone()),
        ("POST", "/v1/txn", big.clone()),
        ("POST", "/api/command", big.clone()),
        ("POST", "/v1/cluster/learners", big.clone()),
        ("POST", "/v1/cluster/transfer-leader", big.clone()),
        ("POST", "/v1/auth/tokens", big.clone()),
        ("POST", "/v1/admin/snapshot", big.clone()),
        ("DELETE", "/v1/kv/k", big.clone()),
        ("GET", "/v1/status", big.clone()),
    ];
    for (method, path, body) in cases.iter().cloned() {
        let (status, answer, _) = send(&client, method, &format!("{base}{path}"), None, body).await;
        assert_eq!(
            (status, answer["error"].clone()),
            (413, json!("too_large")),
            "{method} {path}: {answer}"
        );
    }
    // Streamed without Content-Length (chunked): cut at the limit, still a JSON 413.
    for (path, size) in [
        ("/v1/kv/k", 1025),
        ("/v1/txn", 5000),
        ("/api/command", 5000),
    ] {
        let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = (0..size / 100 + 1)
            .map(|_| Ok(bytes::Bytes::from(vec![b'y'; 100])))
            .collect();
        let method = if path == "/v1/kv/k" { "PUT" } else { "POST" };
        let mut resp = client
            .request(method.parse().expect("method"), format!("{base}{path}"))
            .send_stream(futures::stream::iter(chunks))
            .await
            .expect("send stream");
        let raw = resp.body().await.unwrap_or_default();
        let answer: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        assert_eq!(
            (resp.status().as_u16(), answer["error"].clone()),
            (413, json!("too_large")),
            "chunked {path}: {answer}"
        );
    }
    // Within the limits all is well, and nothing refused was written.
    let (status, _, _) = send(
        &client,
        "PUT",
        &format!("{base}/v1/kv/k"),
        None,
        vec![b'v'; 1024],
    )
    .await;
    assert_eq!(status, 200);
    let ops: Vec<Value> = (0..20)
        .map(|i| json!({"op": "put", "key": format!("t{i}"), "value": "x".repeat(100)}))
        .collect();
    let txn = serde_json::to_vec(&json!({"ops": ops})).expect("json");
    assert!(txn.len() > 2048 && txn.len() < 4096);
    let (status, answer, _) = send(&client, "POST", &format!("{base}/v1/txn"), None, txn).await;
    assert_eq!(status, 200, "{answer}");

    // A body that stalls is cut after client_body_timeout_ms (300 ms) with a JSON 408.
    let addr = c.config(leader).listen_http.clone();
    let started = Instant::now();
    let answer = actix_rt::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        stream
            .write_all(
                b"PUT /v1/kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
            )
            .expect("write");
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("}") {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .expect("slow client");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let (status, _, _) = send(&client, "GET", &format!("{base}/v1/kv/slow"), None, vec![]).await;
    assert_eq!(status, 404, "the cut write was not applied");

    let metrics = metrics_text(&client, &base, None).await;
    assert!(
        refused(&metrics, "body_too_large") >= (cases.len() + 3) as u64,
        "{metrics}"
    );
    assert!(refused(&metrics, "body_timeout") >= 1, "{metrics}");
    c.shutdown().await;
}

/// What the flooding tasks saw.
#[derive(Debug, Default)]
struct Seen {
    ok: usize,
    too_many: usize,
    other: Vec<String>,
}

#[actix_rt::test]
async fn a_flood_from_one_token_gets_429_while_another_token_proceeds() {
    let mut c = TestCluster::start_with(3, |config| {
        tune(config);
        config.tokens = tokens();
    })
    .await;
    c.serve_http();
    let (leader, follower) = c.leader_and_informed_follower(ELECTION).await;
    let base = c.url(leader);
    let client = client();

    let flood = (0..FLOOD).map(|task| {
        let url = format!("{base}/v1/kv/flood{task}");
        async move {
            let client = self::client();
            let mut seen = Seen::default();
            for _ in 0..FLOOD_ROUNDS {
                let (status, body, headers) =
                    send(&client, "PUT", &url, Some(FLOODER), b"x".to_vec()).await;
                match status {
                    200 => seen.ok += 1,
                    429 => {
                        assert_eq!(body["error"], json!("too_many_requests"), "{body}");
                        assert_eq!(
                            headers.get("retry-after").and_then(|v| v.to_str().ok()),
                            Some("1")
                        );
                        seen.too_many += 1;
                    }
                    other => seen.other.push(format!("{other} {body}")),
                }
            }
            seen
        }
    });
    let flood = actix_rt::spawn(join_all(flood));

    // Meanwhile the other client writes, through a follower and the leader: every request
    // succeeds, each within the bound.
    let mut slowest = Duration::ZERO;
    let mut polite_ok = 0;
    while !flood.is_finished() || polite_ok < 10 {
        for target in [follower, leader] {
            let started = Instant::now();
            let (status, body, _) = send(
                &client,
                "PUT",
                &format!("{}/v1/kv/polite{polite_ok}", c.url(target)),
                Some(POLITE),
                b"y".to_vec(),
            )
            .await;
            assert_eq!(status, 200, "the other client was refused: {body}");
            slowest = slowest.max(started.elapsed());
            polite_ok += 1;
        }
    }
    assert!(
        slowest < POLITE_BOUND,
        "the other client waited {slowest:?} during the flood"
    );
    let seen: Vec<Seen> = flood.await.expect("flood tasks");
    let ok: usize = seen.iter().map(|s| s.ok).sum();
    let too_many: usize = seen.iter().map(|s| s.too_many).sum();
    let other: Vec<&String> = seen.iter().flat_map(|s| &s.other).collect();
    eprintln!(
        "flood: {ok} answered, {too_many} refused (429); the other client's slowest request \
         took {slowest:?}"
    );
    assert!(
        other.is_empty(),
        "unexpected answers to the flood: {other:?}"
    );
    assert!(
        too_many > 0,
        "no 429 in a flood of {FLOOD} concurrent requests"
    );
    assert!(ok > 0, "the flooding client is slowed down, not shut out");
    assert_eq!(ok + too_many, FLOOD * FLOOD_ROUNDS);

    // The cluster is healthy: every node ready, the refusals counted where they happened.
    wait_ready(&c, &client).await;
    let metrics = metrics_text(&client, &base, Some(ADMIN)).await;
    assert_eq!(
        refused(&metrics, "inflight_client"),
        too_many as u64,
        "{metrics}"
    );
    assert_eq!(refused(&metrics, "inflight_global"), 0);
    assert!(metrics.contains("raftix_http_inflight_requests"));
    c.shutdown().await;
}

#[actix_rt::test]
async fn without_tokens_clients_are_told_apart_by_ip_address() {
    let mut c = TestCluster::start_with(3, tune).await;
    c.serve_http();
    let leader = c.wait_leader(&c.ids(), ELECTION).await;
    let url = format!("{}/v1/kv/k", c.url(leader));

    // The flood comes from 127.0.0.1, the other client from 127.0.0.2 (same loopback). Blocking
    // clients are built and dropped on their own threads, outside the async runtime.
    fn blocking(from: Ipv4Addr) -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .no_proxy()
            .local_address(IpAddr::V4(from))
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client")
    }
    let flood: Vec<_> = (0..FLOOD)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let client = blocking(Ipv4Addr::LOCALHOST);
                let mut statuses = Vec::new();
                for _ in 0..FLOOD_ROUNDS {
                    let resp = client.put(&url).body("x").send().expect("flood request");
                    statuses.push(resp.status().as_u16());
                }
                statuses
            })
        })
        .collect();
    let url2 = url.clone();
    let polite = actix_rt::task::spawn_blocking(move || {
        let other = blocking(Ipv4Addr::new(127, 0, 0, 2));
        let mut slowest = Duration::ZERO;
        for _ in 0..20 {
            let started = Instant::now();
            let resp = other.put(&url2).body("y").send().expect("other request");
            assert_eq!(resp.status().as_u16(), 200, "the other address was refused");
            slowest = slowest.max(started.elapsed());
        }
        slowest
    });
    let flood_statuses = actix_rt::task::spawn_blocking(move || {
        flood
            .into_iter()
            .flat_map(|t| t.join().expect("flood thread"))
            .collect::<Vec<u16>>()
    })
    .await
    .expect("flood");
    let slowest = polite.await.expect("other client");
    eprintln!(
        "flood by address: {} refused (429) of {}; the other address's slowest request took \
         {slowest:?}",
        flood_statuses.iter().filter(|s| **s == 429).count(),
        flood_statuses.len()
    );
    assert!(
        slowest < POLITE_BOUND,
        "the other address waited {slowest:?}"
    );
    assert!(
        flood_statuses.iter().all(|s| *s == 200 || *s == 429),
        "{flood_statuses:?}"
    );
    assert!(
        flood_statuses.contains(&429),
        "no 429 for the flooding address"
    );
    assert!(flood_statuses.contains(&200));
    let client = client();
    wait_ready(&c, &client).await;
    let metrics = metrics_text(&client, &c.url(leader), None).await;
    let refusals = flood_statuses.iter().filter(|s| **s == 429).count() as u64;
    assert_eq!(refused(&metrics, "inflight_client"), refusals, "{metrics}");
    c.shutdown().await;
}
