//! REST gateway tests: handlers through `actix_web::test`, and forwarding between real HTTP
//! servers of an in-process cluster.

use crate::support::cluster;

use std::collections::BTreeSet;
use std::time::Duration;

use actix_web::{test, App};
use cluster::TestCluster;
use raftix::core::Role;
use raftix::http::{self, AppState};
use serde_json::{json, Value};

const ELECTION: Duration = Duration::from_secs(5);

fn state(c: &TestCluster, id: u64) -> AppState {
    let node = &c.nodes[&id];
    AppState::new(&node.config, node.handle.clone(), node.kv.clone())
}

macro_rules! call {
    ($app:expr, $req:expr) => {{
        let resp = test::call_service(&$app, $req.to_request()).await;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = test::read_body(resp).await;
        (status, headers, body)
    }};
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

#[actix_rt::test]
async fn key_routes_on_the_leader() {
    let c = TestCluster::start(1).await;
    let leader = c.wait_leader(&c.ids(), ELECTION).await;
    let app = test::init_service(App::new().configure(http::configure(state(&c, leader)))).await;

    let (status, _, body) = call!(
        app,
        test::TestRequest::put()
            .uri("/v1/kv/color")
            .set_payload("blue")
    );
    assert_eq!(status, 200);
    let put = json_of(&body);
    let index = put["index"].as_u64().expect("index");
    assert_eq!(put["term"].as_u64(), Some(c.statuses().await[&leader].term));

    let (status, headers, body) = call!(app, test::TestRequest::get().uri("/v1/kv/color"));
    assert_eq!((status, &body[..]), (200, &b"blue"[..]));
    let applied: u64 = headers
        .get("x-raft-index")
        .expect("header")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("number");
    assert!(applied >= index);

    // CAS: wrong expectation fails and reports the current value; right one swaps.
    let (status, _, body) = call!(
        app,
        test::TestRequest::post()
            .uri("/v1/kv/color/cas")
            .set_json(json!({"expected": "red", "value": "green"}))
    );
    assert_eq!(status, 200);
    let cas = json_of(&body);
    assert_eq!(
        (cas["swapped"].clone(), cas["current"].clone()),
        (json!(false), json!("blue"))
    );
    let (_, _, body) = call!(
        app,
        test::TestRequest::post()
            .uri("/v1/kv/color/cas")
            .set_json(json!({"expected": "blue", "value": "green"}))
    );
    let cas = json_of(&body);
    assert_eq!(
        (cas["swapped"].clone(), cas["current"].clone()),
        (json!(true), json!("green"))
    );
    assert!(cas["index"].as_u64() > Some(index));
    // expected null = must be absent.
    let (_, _, body) = call!(
        app,
        test::TestRequest::post()
            .uri("/v1/kv/fresh/cas")
            .set_json(json!({"expected": null, "value": "1"}))
    );
    assert_eq!(json_of(&body)["swapped"], json!(true));

    // DELETE reports whether the key existed.
    let (status, _, body) = call!(app, test::TestRequest::delete().uri("/v1/kv/color"));
    assert_eq!(
        (status, json_of(&body)["deleted"].clone()),
        (200, json!(true))
    );
    let (_, _, body) = call!(app, test::TestRequest::delete().uri("/v1/kv/color"));
    assert_eq!(json_of(&body)["deleted"], json!(false));
    let (status, _, body) = call!(app, test::TestRequest::get().uri("/v1/kv/color"));
    assert_eq!(
        (status, json_of(&body)["error"].clone()),
        (404, json!("key_not_found"))
    );

    // Listing: ordered, paginated with a continuation key.
    for k in ["b/2", "b/1", "b/3", "a", "c"] {
        let (status, _, _) = call!(
            app,
            test::TestRequest::put()
                .uri(&format!("/v1/kv/{}", k.replace('/', "%2F")))
                .set_payload(k)
        );
        assert_eq!(status, 200);
    }
    let (status, _, body) = call!(
        app,
        test::TestRequest::get().uri("/v1/kv?prefix=b/&limit=2")
    );
    assert_eq!(status, 200);
    let page = json_of(&body);
    let keys: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["key"].as_str().expect("key"))
        .collect();
    assert_eq!(keys, ["b/1", "b/2"]);
    assert_eq!(page["next"], json!("b/2"));
    let (_, _, body) = call!(
        app,
        test::TestRequest::get().uri("/v1/kv?prefix=b/&limit=2&after=b/2")
    );
    let page = json_of(&body);
    assert_eq!(page["items"][0]["key"], json!("b/3"));
    assert_eq!(page["items"][0]["value"], json!("b/3"));
    assert_eq!(page["next"], json!(null));
    // Binary values come base64-encoded in listings.
    let (status, _, _) = call!(
        app,
        test::TestRequest::put()
            .uri("/v1/kv/bin")
            .set_payload(vec![0xff, 0x00])
    );
    assert_eq!(status, 200);
    let (_, _, body) = call!(app, test::TestRequest::get().uri("/v1/kv?prefix=bin"));
    assert_eq!(json_of(&body)["items"][0]["value_base64"], json!("/wA="));
    c.shutdown().await;
}

#[actix_rt::test]
async fn bad_input_gets_a_json_4xx_and_changes_nothing() {
    let c = TestCluster::start(1).await;
    let leader = c.wait_leader(&c.ids(), ELECTION).await;
    let app = test::init_service(App::new().configure(http::configure(state(&c, leader)))).await;
    let limits = state(&c, leader).limits;
    // Measure only once the leader's no-op is applied, so later changes come from the requests.
    let applied_before = c
        .wait_until("no-op applied", ELECTION, |s| {
            s[&leader].applied >= 1 && s[&leader].applied == s[&leader].commit
        })
        .await[&leader]
        .applied;

    let cases: Vec<(test::TestRequest, u16, &str)> = vec![
        (
            test::TestRequest::put()
                .uri("/v1/kv/big")
                .set_payload(vec![b'x'; limits.max_value_bytes + 1]),
            413,
            "too_large",
        ),
        (
            test::TestRequest::put()
                .uri(&format!("/v1/kv/{}", "k".repeat(limits.max_key_bytes + 1)))
                .set_payload("v"),
            413,
            "too_large",
        ),
        (
            test::TestRequest::put().uri("/v1/kv/%FF").set_payload("v"),
            400,
            "bad_request",
        ),
        (
            test::TestRequest::post()
                .uri("/v1/kv/a/cas")
                .set_payload("{not json"),
            400,
            "bad_request",
        ),
        (
            test::TestRequest::post()
                .uri("/v1/kv/a/cas")
                .set_json(json!({"expected": 1})),
            400,
            "bad_request",
        ),
        (
            test::TestRequest::post()
                .uri("/v1/kv/a/cas")
                .set_json(json!({"value": "1", "extra": true})),
            400,
            "bad_request",
        ),
        (
            test::TestRequest::get().uri("/v1/kv?limit=0"),
            400,
            "bad_request",
        ),
        (
            test::TestRequest::get().uri("/v1/kv?limit=abc"),
            400,
            "bad_request",
        ),
        (
            test::TestRequest::get().uri("/v1/kv?bogus=1"),
            400,
            "bad_request",
        ),
        (
            test::TestRequest::post().uri("/v1/kv/a"),
            405,
            "method_not_allowed",
        ),
        (
            test::TestRequest::delete().uri("/v1/status"),
            405,
            "method_not_allowed",
        ),
        (test::TestRequest::get().uri("/nowhere"), 404, "not_found"),
    ];
    for (req, want_status, want_code) in cases {
        let (status, _, body) = call!(app, req);
        assert_eq!(status, want_status, "{}", String::from_utf8_lossy(&body));
        assert_eq!(json_of(&body)["error"], json!(want_code));
    }
    let (status, _, _) = call!(
        app,
        test::TestRequest::default()
            .method(actix_web::http::Method::HEAD)
            .uri("/v1/kv/nothing")
    );
    assert_eq!(status, 404, "HEAD is routed like GET");
    assert_eq!(
        c.statuses().await[&leader].applied,
        applied_before,
        "nothing refused reached the log"
    );
    c.shutdown().await;
}

#[actix_rt::test]
async fn followers_forward_writes_redirect_on_request_and_never_loop() {
    let mut c = TestCluster::start(3).await;
    c.serve_http();
    let (leader, follower) = c.leader_and_informed_follower(ELECTION).await;
    let client = awc::Client::builder().disable_redirects().finish();

    // Default: the follower forwards and relays the leader's answer.
    let mut resp = client
        .put(format!("{}/v1/kv/fwd", c.url(follower)))
        .send_body("through a follower")
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers().contains_key("x-raftix-forwarded-to"));
    let body: Value = resp.json().await.expect("json");
    assert!(body["index"].as_u64().is_some());
    assert_eq!(
        c.nodes[&leader].kv.get("fwd").expect("read").as_deref(),
        Some(&b"through a follower"[..])
    );
    // CAS and DELETE are forwarded too.
    let mut resp = client
        .post(format!("{}/v1/kv/fwd/cas", c.url(follower)))
        .send_json(&json!({"expected": "through a follower", "value": "cas"}))
        .await
        .expect("send");
    assert_eq!(
        resp.json::<Value>().await.expect("json")["swapped"],
        json!(true)
    );
    let mut resp = client
        .delete(format!("{}/v1/kv/fwd", c.url(follower)))
        .send()
        .await
        .expect("send");
    assert_eq!(
        resp.json::<Value>().await.expect("json")["deleted"],
        json!(true)
    );

    // ?redirect=true: 307 to the same path on the leader.
    let mut resp = client
        .put(format!("{}/v1/kv/r?redirect=true", c.url(follower)))
        .send_body("x")
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 307);
    let location = resp
        .headers()
        .get("location")
        .expect("location")
        .to_str()
        .expect("ascii")
        .to_string();
    assert_eq!(location, format!("{}/v1/kv/r?redirect=true", c.url(leader)));
    assert_eq!(
        resp.json::<Value>().await.expect("json")["leader"]["id"],
        json!(leader)
    );

    // A request that was already forwarded once is not forwarded again.
    let resp = client
        .put(format!("{}/v1/kv/loop", c.url(follower)))
        .insert_header(("x-raftix-forwarded-by", "9"))
        .send_body("x")
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 307);
    c.shutdown().await;
}

#[actix_rt::test]
async fn a_node_without_a_leader_answers_503_with_retry_after() {
    let mut c = TestCluster::start(3).await;
    c.serve_http();
    let leader = c.wait_leader(&c.ids(), ELECTION).await;
    let lonely = *c.ids().iter().find(|&&id| id != leader).expect("follower");
    c.partition(&BTreeSet::from([lonely])).await;
    c.wait_until("the isolated node forgets the leader", ELECTION, |s| {
        s[&lonely].leader.is_none() && s[&lonely].role != Role::Leader
    })
    .await;
    let resp = awc::Client::default()
        .put(format!("{}/v1/kv/k", c.url(lonely)))
        .send_body("v")
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap_or_default()),
        Some("1")
    );
    c.shutdown().await;
}

async fn get_json(client: &awc::Client, url: String) -> (u16, Value) {
    let mut resp = client.get(url).send().await.expect("send");
    let status = resp.status().as_u16();
    let body = resp.body().await.expect("body");
    (status, json_of(&body))
}

#[actix_rt::test]
async fn cluster_log_and_health_views() {
    let mut c = TestCluster::start(3).await;
    c.serve_http();
    let leader = c.wait_leader(&c.ids(), ELECTION).await;
    let client = awc::Client::default();
    let resp = client
        .put(format!("{}/v1/kv/alpha", c.url(leader)))
        .send_body("one")
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);

    // /v1/cluster on the leader: every member, addresses, health from heartbeat answers.
    let deadline = std::time::Instant::now() + ELECTION;
    let view = loop {
        let (status, view) = get_json(&client, format!("{}/v1/cluster", c.url(leader))).await;
        assert_eq!(status, 200);
        let members = view["members"].as_array().expect("members").clone();
        if members
            .iter()
            .all(|m| m["health"] == json!("ok") && m["http_addr"].is_string())
        {
            break view;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "members never all healthy: {view}"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(view["leader"], json!(leader));
    let members = view["members"].as_array().expect("members");
    assert_eq!(members.len(), 3);
    for m in members {
        let id = m["id"].as_u64().expect("id");
        assert_eq!(m["is_leader"], json!(id == leader));
        assert_eq!(m["peer_addr"], json!(c.nodes[&id].config.listen_peer));
        if id != leader {
            assert_eq!(m["lag"], json!(0), "{m}");
            assert!(m["last_ack_ms_ago"].is_u64(), "{m}");
        }
    }

    // /v1/log: the leader's no-op, then the put, decoded.
    let (status, log) =
        get_json(&client, format!("{}/v1/log?from=1&limit=10", c.url(leader))).await;
    assert_eq!(status, 200);
    let entries = log["entries"].as_array().expect("entries");
    assert_eq!(entries[0]["type"], json!("noop"));
    let put = entries
        .iter()
        .find(|e| e["type"] == json!("command"))
        .expect("a command");
    assert_eq!(
        put["command"],
        json!({"op": "put", "key": "alpha", "value": "one"})
    );
    assert!(log["commit"].as_u64() >= put["index"].as_u64());
    let (status, _) = get_json(&client, format!("{}/v1/log?limit=5000", c.url(leader))).await;
    assert_eq!(status, 400);

    // Health and readiness.
    for id in c.ids() {
        let (status, body) = get_json(&client, format!("{}/healthz", c.url(id))).await;
        assert_eq!((status, body["status"].clone()), (200, json!("ok")));
        c.wait_until("applied catches up", ELECTION, |s| {
            s[&id].applied == s[&id].commit
        })
        .await;
        let (status, body) = get_json(&client, format!("{}/readyz", c.url(id))).await;
        assert_eq!(status, 200, "{body}");
    }
    let lonely = *c.ids().iter().find(|&&id| id != leader).expect("follower");
    c.partition(&BTreeSet::from([lonely])).await;
    c.wait_until("the isolated node forgets the leader", ELECTION, |s| {
        s[&lonely].leader.is_none()
    })
    .await;
    let (status, body) = get_json(&client, format!("{}/readyz", c.url(lonely))).await;
    assert_eq!(
        (status, body["reason"].clone()),
        (503, json!("no leader known"))
    );
    c.shutdown().await;
}

#[actix_rt::test]
async fn metrics_export_state_counters_histograms_and_http_traffic() {
    let mut c = TestCluster::start(3).await;
    c.serve_http();
    let leader = c.wait_leader(&c.ids(), ELECTION).await;
    let client = awc::Client::default();
    for i in 0..3 {
        let resp = client
            .put(format!("{}/v1/kv/m{i}", c.url(leader)))
            .send_body("v")
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 200);
    }
    let mut resp = client
        .get(format!("{}/metrics", c.url(leader)))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .starts_with("text/plain"));
    let text = String::from_utf8(resp.body().await.expect("body").to_vec()).expect("utf8");
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no sample {prefix} in:\n{text}"))
    };
    assert_eq!(value("raftix_is_leader "), 1.0);
    assert_eq!(value("raftix_leader_id "), leader as f64);
    assert!(value("raftix_commit_index ") >= 4.0);
    assert!(value("raftix_log_fsyncs_total ") >= 1.0);
    assert!(value("raftix_proposals_committed_total ") >= 3.0);
    assert!(value("raftix_log_fsync_duration_seconds_count ") >= 1.0);
    assert!(value("raftix_apply_duration_seconds_count ") >= 1.0);
    assert_eq!(value(r#"raftix_role{role="LEADER"} "#), 1.0);
    assert_eq!(
        value(r#"raftix_health{state="ACTIVE"} "#)
            + value(r#"raftix_health{state="DEGRADED"} "#)
            + value(r#"raftix_health{state="SYNCING"} "#),
        1.0
    );
    assert!(text.contains("raftix_lag_entries "), "{text}");
    assert!(
        value(r#"raftix_http_requests_total{method="PUT",route="/v1/kv/{key}",status="200"} "#)
            >= 3.0
    );
    assert!(text.contains("raftix_peer_lag_entries{peer="), "{text}");
    // Times in seconds; process metrics from /proc.
    assert!(text.contains("raftix_peer_rtt_seconds{peer="), "{text}");
    assert!(
        text.contains("raftix_peer_last_contact_seconds{peer="),
        "{text}"
    );
    assert!(value("process_resident_memory_bytes ") > 1e6);
    assert!(value("process_open_fds ") >= 3.0);
    assert!(text.contains("process_cpu_seconds_total "), "{text}");
    // Every metric the Grafana dashboard in docs/ draws exists.
    let board: serde_json::Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/grafana-dashboard.json"
    )))
    .expect("the dashboard is JSON");
    let exprs: Vec<&str> = board["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    assert!(exprs.len() >= 10, "{} queries", exprs.len());
    for expr in exprs {
        let names = expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("raftix_") || w.starts_with("process_"));
        for name in names {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "the dashboard's `{expr}` uses {name}, which /metrics does not export"
            );
        }
    }
    // No region (`--region`): no multi-region series.
    assert!(!text.contains("raftix_region_"), "{text}");
    assert!(!text.contains("raftix_conflicts_"), "{text}");
    assert!(
        text.contains("raftix_http_request_duration_seconds_bucket"),
        "{text}"
    );
    c.shutdown().await;
}

#[actix_rt::test]
async fn openapi_document_describes_every_route() {
    let c = TestCluster::start(1).await;
    let leader = c.wait_leader(&c.ids(), ELECTION).await;
    let app = test::init_service(App::new().configure(http::configure(state(&c, leader)))).await;
    let (status, headers, body) = call!(app, test::TestRequest::get().uri("/openapi.json"));
    assert_eq!(status, 200);
    assert!(headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .contains("json"));
    let doc = json_of(&body);
    assert!(
        doc["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3."),
        "{doc}"
    );
    assert!(doc["components"]["schemas"]["NodeStatus"].is_object());
    assert!(doc["paths"]["/v1/kv/{key}"]["put"]["responses"]["200"].is_object());
    // The document and the router agree, both ways, by asking the router: every documented
    // operation is routed (neither the router's 404 nor a 405), and on every documented path a
    // method the router serves is documented (except HEAD on a GET route, which HTTP allows
    // either way).
    let methods = ["get", "head", "post", "put", "patch", "delete"];
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 30, "only {} paths documented", paths.len());
    let mut undocumented = Vec::new();
    let mut unrouted = Vec::new();
    for (path, item) in paths {
        let concrete = path
            .replace("{key}", "route-probe")
            .replace("{id}", "0")
            .replace("{name}", "route-probe");
        for method in methods {
            let documented = item[method].is_object();
            if method == "head" && !documented && item["get"].is_object() {
                continue;
            }
            let req = test::TestRequest::default()
                .method(method.to_uppercase().parse().expect("method"))
                .uri(&concrete);
            let (status, _, body) = call!(app, req);
            let routed = !(status == 405
                || (status == 404
                    && serde_json::from_slice::<Value>(&body)
                        .is_ok_and(|b| b["error"] == "not_found")));
            match (documented, routed) {
                (true, false) => unrouted.push(format!("{method} {path} ({status})")),
                (false, true) => undocumented.push(format!("{method} {path} ({status})")),
                _ => {}
            }
        }
    }
    assert!(
        unrouted.is_empty(),
        "documented but not served: {unrouted:?}"
    );
    assert!(
        undocumented.is_empty(),
        "served but not documented: {undocumented:?}"
    );
    // Every documented GET route without parameters is really served.
    for path in paths.keys().filter(|p| !p.contains('{')) {
        if doc["paths"][path]["get"].is_object() {
            let (status, _, body) = call!(app, test::TestRequest::get().uri(path));
            assert!(
                status < 400 || status == 503,
                "{path}: {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
    c.shutdown().await;
}

#[actix_rt::test]
async fn an_idempotency_key_reused_across_region_and_key_routes_is_a_409() {
    let c = TestCluster::start_with(1, |config| config.region = Some("eu".into())).await;
    let leader = c.wait_leader(&c.ids(), ELECTION).await;
    let app = test::init_service(App::new().configure(http::configure(state(&c, leader)))).await;
    let keyed = |req: test::TestRequest, key: &str| req.insert_header(("Idempotency-Key", key));

    // A region change, then a key-value write with its key: not a retry of it.
    let (status, _, body) = call!(
        app,
        keyed(test::TestRequest::post().uri("/v1/regions"), "k1")
            .set_json(json!({"id": "us", "endpoints": ["127.0.0.1:1"]}))
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    for req in [
        test::TestRequest::delete().uri("/v1/kv/x"),
        test::TestRequest::post()
            .uri("/v1/txn")
            .set_json(json!({"guards": [], "ops": []})),
    ] {
        let (status, _, body) = call!(app, keyed(req, "k1"));
        assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body));
        assert_eq!(json_of(&body)["error"], "request_id_reused");
    }

    // A refused region change, then another region change with its key: the refusal was the
    // first request's, so this one is told so (409), not answered with that 404.
    let (status, _, _) = call!(
        app,
        keyed(test::TestRequest::delete().uri("/v1/regions/mars"), "k2")
    );
    assert_eq!(status, 404);
    let (status, _, body) = call!(
        app,
        keyed(test::TestRequest::put().uri("/v1/conflicts/policy"), "k2").set_json(json!({}))
    );
    assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body));
    assert!(
        json_of(&body)["message"]
            .as_str()
            .is_some_and(|m| m.contains("no region \"mars\"")),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // The policy was not changed by it, and a fresh key changes it.
    let (status, _, body) = call!(
        app,
        keyed(test::TestRequest::put().uri("/v1/conflicts/policy"), "k3")
            .set_json(json!({"default": "multi-value"}))
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json_of(&body)["policy"]["default"], "multi-value");
    c.shutdown().await;
}

#[actix_rt::test]
async fn an_idempotency_key_first_used_by_a_key_write_is_a_409_on_region_and_token_routes() {
    // Found by schemathesis: a region change retried with the key of an earlier CAS answered
    // 500 (the CAS's output is no region output).
    let c = TestCluster::start_with(1, |config| config.region = Some("eu".into())).await;
    let leader = c.wait_leader(&c.ids(), ELECTION).await;
    let app = test::init_service(App::new().configure(http::configure(state(&c, leader)))).await;
    let keyed = |req: test::TestRequest, key: &str| req.insert_header(("Idempotency-Key", key));
    let (status, _, body) = call!(
        app,
        keyed(test::TestRequest::post().uri("/v1/kv/x/cas"), "k2")
            .set_json(json!({"expected": null, "value": "v"}))
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    for req in [
        test::TestRequest::put()
            .uri("/v1/regions/primary")
            .set_json(json!({})),
        test::TestRequest::put()
            .uri("/v1/regions/replication")
            .set_json(json!({"mode": "async"})),
        test::TestRequest::post()
            .uri("/v1/auth/tokens")
            .set_json(json!({"name": "ops", "role": "admin"})),
        test::TestRequest::put()
            .uri("/v1/kv/x")
            .set_payload("other"),
    ] {
        let (status, _, body) = call!(app, keyed(req, "k2"));
        assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body));
        assert_eq!(json_of(&body)["error"], "request_id_reused");
    }
    // The same request again is a retry: the first answer, marked duplicate.
    let (status, _, body) = call!(
        app,
        keyed(test::TestRequest::post().uri("/v1/kv/x/cas"), "k2")
            .set_json(json!({"expected": null, "value": "v"}))
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json_of(&body)["duplicate"], true);
    c.shutdown().await;
}
