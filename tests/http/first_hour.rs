//! What tripped a new user in their first hour: hierarchical keys take every per-key action
//! without percent-encoding, a query parameter a route does not take is refused (400) rather
//! than ignored, a node without a leader says so in a sentence, and one large value cannot make
//! the dashboard's polled answers megabytes long.

use crate::requests::{client, read_answer, request};
use crate::support::cluster::TestCluster;
use crate::support::wait::wait_until_async;

use std::time::Duration;

use serde_json::Value;

const ELECTION: Duration = Duration::from_secs(5);

async fn served() -> (TestCluster, String) {
    let mut c = TestCluster::start(1).await;
    c.serve_http();
    let leader = c.wait_leader(&c.ids(), ELECTION).await;
    let base = c.url(leader);
    (c, base)
}

/// `method base+path` with `body` sent as is: the status and the answer as text.
async fn call(base: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let req = request(&client(), method, &format!("{base}{path}"), None);
    let (status, _, bytes) =
        read_answer(req.send_body(body.to_string()).await.expect("send")).await;
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[actix_rt::test]
async fn hierarchical_keys_take_every_per_key_action() {
    let (c, base) = served().await;
    assert_eq!(call(&base, "PUT", "/v1/kv/user/1", "v1").await.0, 200);
    let (status, body) = call(
        &base,
        "POST",
        "/v1/kv/user/1/cas",
        r#"{"expected":"v1","value":"v9"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON")["swapped"],
        true,
        "{body}"
    );
    assert_eq!(
        call(&base, "GET", "/v1/kv/user/1", "").await,
        (200, "v9".into())
    );

    // A key that ends in `/cas` is an ordinary key for every method but POST.
    assert_eq!(call(&base, "PUT", "/v1/kv/a/cas", "plain").await.0, 200);
    assert_eq!(
        call(&base, "GET", "/v1/kv/a/cas", "").await,
        (200, "plain".into())
    );
    let (status, body) = call(
        &base,
        "POST",
        "/v1/kv/a/cas/cas",
        r#"{"expected":"plain","value":"swapped"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        call(&base, "GET", "/v1/kv/a/cas", "").await,
        (200, "swapped".into())
    );
    let (status, body) = call(&base, "DELETE", "/v1/kv/a/cas", "").await;
    assert_eq!(
        (status, body.contains("\"deleted\":true")),
        (200, true),
        "{body}"
    );
    assert_eq!(
        call(&base, "GET", "/v1/kv/a", "").await.0,
        404,
        "`a` was never written"
    );
    c.shutdown().await;
}

#[actix_rt::test]
async fn query_parameters_a_route_does_not_take_are_refused() {
    let (c, base) = served().await;
    assert_eq!(call(&base, "PUT", "/v1/kv/k?ack=all", "1").await.0, 200);
    let refused = [
        (
            "GET",
            "/v1/kv/k?consistancy=stale",
            "consistancy",
            "`consistency`",
        ),
        ("HEAD", "/v1/kv/k?x=1", "", ""),
        ("PUT", "/v1/kv/other?wait=1", "wait", "`ack`"),
        ("GET", "/v1/kv?prefx=k", "prefx", "`prefix`"),
        ("GET", "/v1/status?verbose", "verbose", "takes none"),
        (
            "POST",
            "/v1/kv/k/cas?dry_run=true",
            "dry_run",
            "`replication`",
        ),
    ];
    for (method, path, named, allowed) in refused {
        let (status, text) = call(&base, method, path, r#"{"expected":null,"value":"2"}"#).await;
        assert_eq!(status, 400, "{method} {path}: {text}");
        if method != "HEAD" {
            let answer: Value = serde_json::from_str(&text).expect("a JSON error");
            let message = answer["message"].as_str().unwrap_or_default();
            assert_eq!(answer["error"], "bad_request", "{text}");
            assert!(
                message.contains(&format!("`{named}`")) && message.contains(allowed),
                "{message}"
            );
        }
    }
    assert_eq!(
        call(&base, "GET", "/v1/kv/other", "").await.0,
        404,
        "the refused PUT wrote nothing"
    );
    assert_eq!(
        call(&base, "GET", "/v1/kv/k", "").await,
        (200, "1".into()),
        "nor the CAS"
    );
    for path in [
        "/v1/kv/k?consistency=stale&max_lag=5",
        "/v1/kv?prefix=k&limit=10",
        "/v1/log?from=1&limit=5",
    ] {
        let (status, text) = call(&base, "GET", path, "").await;
        assert_eq!(status, 200, "{path}: {text}");
    }
    c.shutdown().await;
}

#[actix_rt::test]
async fn a_node_without_a_leader_says_how_many_nodes_it_reaches() {
    let mut c = TestCluster::start(3).await;
    c.serve_http();
    let (_, alone) = c.leader_and_informed_follower(ELECTION).await;
    c.isolate(&[alone].into()).await;
    // Once the cut-off follower has forgotten the leader, a linearizable read there has nobody
    // to ask (before that it forwards the read over HTTP, which the cut does not stop).
    let base = c.url(alone);
    let (status, text) = wait_until_async(
        Duration::from_secs(10),
        "the cut-off follower to answer that it knows no leader and reaches only itself",
        || async {
            let answer = call(&base, "GET", "/v1/kv/x", "").await;
            // Peers heard within the last election timeout still count as reachable: wait
            // until they have aged out too.
            if answer.1.contains("\"no_leader\"") && answer.1.contains("1 of 3 nodes reachable") {
                Ok(answer)
            } else {
                Err(answer)
            }
        },
    )
    .await;
    assert_eq!(status, 503, "{text}");
    let answer: Value = serde_json::from_str(&text).expect("a JSON error");
    assert_eq!(answer["error"], "no_leader", "{text}");
    assert_eq!(
        answer["message"],
        "no leader: 1 of 3 nodes reachable, a quorum needs 2; no leader can be elected until \
         more of them are back",
        "{text}"
    );
    c.shutdown().await;
}

#[actix_rt::test]
async fn large_values_are_cut_in_the_views_that_poll_and_whole_on_request() {
    let (c, base) = served().await;
    let big = "x".repeat(1 << 20);
    assert_eq!(call(&base, "PUT", "/v1/kv/big", &big).await.0, 200);
    assert_eq!(call(&base, "PUT", "/v1/kv/small", "tiny").await.0, 200);

    // The dashboard's log view: small whatever the values, each cut value with its size.
    let (status, logs) = call(&base, "GET", "/api/logs?limit=40", "").await;
    assert_eq!(status, 200, "{logs}");
    assert!(
        logs.len() < 16 << 10,
        "/api/logs answered {} bytes",
        logs.len()
    );
    let logs: Value = serde_json::from_str(&logs).expect("JSON");
    let entries = logs["entries"].as_array().expect("entries");
    let put = |key: &str| {
        entries
            .iter()
            .find(|e| e["command"]["key"] == key)
            .unwrap_or_else(|| panic!("no entry for {key}: {logs}"))
            .clone()
    };
    let big_entry = put("big");
    assert_eq!(
        big_entry["command"]["value"].as_str().map(str::len),
        Some(256)
    );
    assert_eq!(big_entry["command"]["value_size"], 1 << 20);
    assert_eq!(put("small")["command"]["value"], "tiny");
    assert!(put("small")["command"].get("value_size").is_none());

    // The whole value: the log entry by index, or the key.
    let index = big_entry["index"].as_u64().expect("index");
    let (_, whole) = call(&base, "GET", &format!("/v1/log?from={index}&limit=1"), "").await;
    let whole: Value = serde_json::from_str(&whole).expect("JSON");
    assert_eq!(
        whole["entries"][0]["command"]["value"]
            .as_str()
            .map(str::len),
        Some(1 << 20)
    );
    let (_, cut) = call(
        &base,
        "GET",
        &format!("/v1/log?from={index}&limit=1&max_value_bytes=10"),
        "",
    )
    .await;
    let cut: Value = serde_json::from_str(&cut).expect("JSON");
    assert_eq!(cut["entries"][0]["command"]["value"], "xxxxxxxxxx");

    // Listings: whole by default (the API's contract), cut on request.
    let (_, listed) = call(&base, "GET", "/v1/kv?max_value_bytes=256", "").await;
    assert!(listed.len() < 4 << 10, "{} bytes", listed.len());
    let listed: Value = serde_json::from_str(&listed).expect("JSON");
    assert_eq!(listed["items"][0]["key"], "big");
    assert_eq!(listed["items"][0]["value_size"], 1 << 20);
    let (_, full) = call(&base, "GET", "/v1/kv?prefix=big", "").await;
    assert!(full.len() > 1 << 20);
    c.shutdown().await;
}
