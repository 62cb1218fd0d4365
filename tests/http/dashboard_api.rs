//! The dashboard's server side: the page and its assets, and the `/api/*`
//! endpoints, on an in-process 3-node cluster serving HTTP on loopback; and the region routes
//! its Regions and Conflicts panels poll, on a cluster without and with `--region`.

use crate::requests;
use crate::support::cluster;
use crate::support::wait::wait_until_async;

use std::time::{Duration, Instant};

use cluster::TestCluster;
use raftix::http::dashboard_api::{parse_command_line, Command};
use serde_json::{json, Value};

const ELECTION: Duration = Duration::from_secs(5);

/// Serves HTTP on every node of `c`, waits for a leader, then for one follower (the first
/// other id) to know the leader's address; returns the leader and that follower.
async fn serve_and_find_an_informed_follower(c: &mut TestCluster) -> (u64, u64) {
    c.serve_http();
    let leader = c.wait_leader(&c.ids(), ELECTION).await;
    let follower = *c.ids().iter().find(|&&id| id != leader).expect("follower");
    c.wait_until("the follower knows the leader's address", ELECTION, |s| {
        s[&follower].leader_addr.is_some()
    })
    .await;
    (leader, follower)
}

async fn get_json(client: &awc::Client, url: String) -> (u16, Value) {
    let mut resp = client.get(&url).send().await.expect("send");
    let status = resp.status().as_u16();
    let body = resp.body().await.expect("body");
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, value)
}

async fn command(client: &awc::Client, base: &str, body: Value) -> (u16, Value) {
    let mut resp = client
        .post(format!("{base}/api/command"))
        .send_json(&body)
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let bytes = resp.body().await.expect("body");
    let value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{body}: not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, value)
}

#[test]
fn command_lines_parse_case_insensitively_with_spaced_values() {
    let put = |k: &str, v: &str| Command::Put {
        key: k.into(),
        value: v.into(),
    };
    assert_eq!(parse_command_line("SET a b").ok(), Some(put("a", "b")));
    assert_eq!(
        parse_command_line("  put greeting   hello  big world ").ok(),
        Some(put("greeting", "hello  big world"))
    );
    assert_eq!(
        parse_command_line("get k").ok(),
        Some(Command::Get { key: "k".into() })
    );
    for line in ["DELETE k", "del k", "Del\tk"] {
        assert_eq!(
            parse_command_line(line).ok(),
            Some(Command::Delete { key: "k".into() }),
            "{line}"
        );
    }
    for bad in [
        "", "   ", "SET", "SET k", "GET", "GET a b", "DEL a b", "FROB x",
    ] {
        let err = parse_command_line(bad).expect_err(bad);
        assert_eq!(
            (err.status.as_u16(), err.code),
            (400, "bad_request"),
            "{bad}"
        );
    }
}

#[actix_rt::test]
async fn page_assets_and_api_through_a_follower() {
    let mut c = TestCluster::start(3).await;
    let (leader, follower) = serve_and_find_an_informed_follower(&mut c).await;
    let base = c.url(follower);
    let client = awc::Client::default();

    // The page and its assets, embedded, with the ids the browser test relies on.
    let mut page = client.get(format!("{base}/")).send().await.expect("send");
    assert_eq!(page.status().as_u16(), 200);
    let content_type = page.headers().get("content-type").cloned();
    assert_eq!(
        content_type.as_ref().and_then(|v| v.to_str().ok()),
        Some("text/html; charset=utf-8")
    );
    let html = String::from_utf8(page.body().await.expect("body").to_vec()).expect("UTF-8");
    for id in [
        "nodes",
        "log-view",
        "kv-view",
        "command-input",
        "command-submit",
    ] {
        assert!(
            html.contains(&format!("id=\"{id}\"")),
            "no #{id} in the page"
        );
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external fetch"
    );
    // The Regions and Conflicts panels start hidden; the script polls their routes.
    for id in ["regions-panel", "conflicts-panel"] {
        let at = html
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no #{id} in the page"));
        let tag_end = at + html[at..].find('>').expect("tag end");
        assert!(html[at..tag_end].contains("hidden"), "#{id} not hidden");
    }
    for id in ["regions-view", "conflicts-view"] {
        assert!(html.contains(&format!("id=\"{id}\"")), "no #{id}");
    }
    let mut js = client
        .get(format!("{base}/assets/dashboard.js"))
        .send()
        .await
        .expect("send");
    let js = String::from_utf8(js.body().await.expect("body").to_vec()).expect("UTF-8");
    for route in ["/v1/regions/status", "/v1/conflicts/stats"] {
        assert!(js.contains(route), "the script does not poll {route}");
    }
    // Without --region the status names no region (the panels stay hidden).
    let (code, regions) = get_json(&client, format!("{base}/v1/regions/status")).await;
    assert_eq!(code, 200, "{regions}");
    assert_eq!(regions["local"], Value::Null, "{regions}");
    assert_eq!(regions["regions"], json!([]), "{regions}");
    for asset in ["/assets/dashboard.js", "/assets/dashboard.css"] {
        let resp = client
            .get(format!("{base}{asset}"))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 200, "{asset}");
    }

    // Writes through the follower are forwarded to the leader; reads are served by the leader.
    let (status, put) = command(&client, &base, json!({"command": "SET color deep blue"})).await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(
        (&put["ok"], &put["op"], &put["key"], &put["value"]),
        (
            &json!(true),
            &json!("put"),
            &json!("color"),
            &json!("deep blue")
        )
    );
    let index = put["index"].as_u64().expect("index");
    assert!(put["term"].as_u64().is_some(), "{put}");
    let (status, got) = command(&client, &base, json!({"command": "get color"})).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(
        (&got["value"], &got["found"]),
        (&json!("deep blue"), &json!(true))
    );
    assert_eq!(got["node"].as_u64(), Some(leader), "read on the leader");
    let (status, del) = command(&client, &base, json!({"op": "delete", "key": "color"})).await;
    assert_eq!((status, &del["deleted"]), (200, &json!(true)), "{del}");
    let (status, put2) = command(
        &client,
        &base,
        json!({"op": "put", "key": "k", "value": ""}),
    )
    .await;
    assert_eq!((status, &put2["value"]), (200, &json!("")), "{put2}");

    // Malformed commands are JSON 400s; other methods a JSON 405.
    for bad in [
        json!({"command": "FROB x"}),
        json!({"command": "SET only-key"}),
        json!({"op": "get", "key": "k", "value": "v"}),
        json!({"command": "GET k", "op": "get"}),
        json!({"cmd": "GET k"}),
        json!({"op": "put", "key": "", "value": "v"}),
    ] {
        let (status, err) = command(&client, &base, bad.clone()).await;
        assert_eq!(
            (status, &err["error"]),
            (400, &json!("bad_request")),
            "{bad}: {err}"
        );
    }
    let (status, err) = get_json(&client, format!("{base}/api/command")).await;
    assert_eq!((status, &err["error"]), (405, &json!("method_not_allowed")));

    // The follower's log, committed entries marked, once it has applied the writes.
    c.wait_until("the follower applies the writes", ELECTION, |s| {
        s[&follower].applied >= index + 2
    })
    .await;
    let (status, logs) = get_json(&client, format!("{base}/api/logs?limit=10")).await;
    assert_eq!(status, 200, "{logs}");
    assert_eq!(logs["node"].as_u64(), Some(follower));
    let entries = logs["entries"].as_array().expect("entries");
    let put_entry = entries
        .iter()
        .find(|e| e["index"].as_u64() == Some(index))
        .unwrap_or_else(|| panic!("no entry {index} in {logs}"));
    assert_eq!(put_entry["command"]["op"], "put");
    assert_eq!(put_entry["committed"], true);
    assert!(entries.len() <= 10);
    let (status, _) = get_json(&client, format!("{base}/api/logs?limit=0")).await;
    assert_eq!(status, 400);

    // Every node's status, gathered by the follower; then one node stops answering.
    let all_up = |s: &Value| {
        s["nodes"].as_array().is_some_and(|n| {
            n.len() == 3
                && n.iter()
                    .all(|n| n.get("error").is_none() && n["role"].is_string())
        })
    };
    let status = poll_status(&client, &base, "3 nodes answering", all_up).await;
    assert_eq!(status["leader"].as_u64(), Some(leader), "{status}");
    assert_eq!(status["node"].as_u64(), Some(follower));
    assert_eq!(
        status["cluster"]["members"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(status["leader_cluster"]["id"].as_u64(), Some(leader));
    let other = *c
        .ids()
        .iter()
        .find(|&&id| id != leader && id != follower)
        .expect("third node");
    c.nodes[&other].handle.shutdown().await;
    let status = poll_status(&client, &base, "the stopped node unreachable", |s| {
        s["nodes"].as_array().is_some_and(|n| {
            n.iter()
                .any(|n| n["id"].as_u64() == Some(other) && n["error"] == "unreachable")
        })
    })
    .await;
    assert_eq!(status["leader"].as_u64(), Some(leader), "{status}");
    c.shutdown().await;
}

#[actix_rt::test]
async fn region_panels_data_through_a_follower() {
    let mut c = TestCluster::start_with(3, |config| config.region = Some("eu".into())).await;
    let (_, follower) = serve_and_find_an_informed_follower(&mut c).await;
    let base = c.url(follower);
    let client = awc::Client::default();

    // A region without remote regions: named, so the panels show (with no row).
    let (code, regions) = get_json(&client, format!("{base}/v1/regions/status")).await;
    assert_eq!(code, 200, "{regions}");
    assert_eq!(regions["local"], "eu", "{regions}");
    assert_eq!(regions["regions"], json!([]), "{regions}");

    // A remote region nobody serves: listed, not connected, one write behind.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut resp = client
        .post(format!("{base}/v1/regions"))
        .send_json(&json!({"id": "us", "endpoints": [format!("127.0.0.1:{port}")]}))
        .await
        .expect("send");
    let body = resp.body().await.expect("body");
    assert_eq!(resp.status().as_u16(), 201, "{body:?}");
    let put = client
        .put(format!("{base}/v1/kv/k"))
        .send_body("v")
        .await
        .expect("send");
    assert_eq!(put.status().as_u16(), 200);
    // (This in-process cluster runs no shipper: the link is as a fresh leader sees it.)
    let (code, regions) = get_json(&client, format!("{base}/v1/regions/status")).await;
    assert_eq!(code, 200, "{regions}");
    let link = regions["regions"][0].clone();
    assert_eq!(link["id"], "us", "{link}");
    assert_eq!(link["connected"], false, "{link}");
    assert_eq!(link["lag_entries"], 1, "{link}");
    assert_eq!(link["last_acked_seq"], 0, "{link}");
    assert!(link["lag_seconds"].as_f64().is_some(), "{link}");
    let (code, stats) = get_json(&client, format!("{base}/v1/conflicts/stats")).await;
    assert_eq!(code, 200, "{stats}");
    assert_eq!(
        stats,
        json!({"total": 0, "by_strategy": {}, "failed": 0, "unresolved": 0})
    );
    c.shutdown().await;
}

/// Polls `GET /api/status` until `cond` holds (bounded by [`ELECTION`]).
async fn poll_status(
    client: &awc::Client,
    base: &str,
    what: &str,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + ELECTION;
    loop {
        let (code, status) = get_json(client, format!("{base}/api/status")).await;
        assert_eq!(code, 200, "{status}");
        if cond(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "never saw {what}: {status}");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_rt::test]
async fn charts_are_svg_of_the_last_minutes_and_unknown_ones_are_404() {
    let mut c = TestCluster::start(1).await;
    c.serve_http();
    let leader = c.wait_leader(&c.ids(), ELECTION).await;
    let base = c.url(leader);
    let client = requests::client();
    for i in 0..20 {
        c.put(leader, &format!("k{i}"), "v").await.expect("put");
    }
    // The sampler takes one reading a second: wait (bounded) for a drawn line.
    let svg = wait_until_async(Duration::from_secs(10), "a write chart with a line", || {
        let req = requests::request(&client, "GET", &format!("{base}/api/charts/writes"), None);
        async move {
            let (status, headers, body) = requests::send(req, None).await;
            let svg = String::from_utf8_lossy(&body).into_owned();
            let svg_type = headers
                .get("content-type")
                .is_some_and(|v| v.as_bytes() == b"image/svg+xml");
            if status == 200 && svg_type && svg.contains("<polyline") {
                Ok(svg)
            } else {
                Err((status, svg.len()))
            }
        }
    })
    .await;
    assert!(svg.starts_with("<svg") && svg.contains("entries committed per second"));
    let req = requests::request(&client, "GET", &format!("{base}/api/charts/nope"), None);
    let (status, _, body) = requests::send(req, None).await;
    assert_eq!(status, 404);
    let error: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("writes, reads, latency")),
        "{error}"
    );
    c.shutdown().await;
}
