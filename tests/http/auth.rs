//! Access control of the REST gateway: static bearer tokens with roles and key prefixes, on an
//! in-process 3-node cluster serving HTTP.

use crate::requests::{client, read_answer, request};
use crate::support::cluster;

use std::time::Duration;

use cluster::TestCluster;
use raftix::config::{TokenConfig, TokenRole};
use serde_json::{json, Value};

const ELECTION: Duration = Duration::from_secs(5);
const ADMIN: &str = "admin-secret-0001";
const WRITER: &str = "writer-secret-0002";
const READER: &str = "reader-secret-0003";
const SCOPED: &str = "scoped-secret-0004";

fn tokens() -> Vec<TokenConfig> {
    let t = |name: &str, token: &str, role, prefix: Option<&str>| TokenConfig {
        name: name.into(),
        token: token.into(),
        role,
        prefix: prefix.map(Into::into),
    };
    vec![
        t("ops", ADMIN, TokenRole::Admin, None),
        t("writer", WRITER, TokenRole::Write, None),
        t("reader", READER, TokenRole::Read, None),
        t("app", SCOPED, TokenRole::Write, Some("app/")),
    ]
}

/// The status of a request without a JSON body.
async fn status_of(client: &awc::Client, method: &str, url: &str, token: Option<&str>) -> u16 {
    call(client, method, url, token, None).await.0
}

/// Sends `method url` with `token` (if any) and `body`; the status and the JSON body (or null).
async fn call(
    client: &awc::Client,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, awc::http::header::HeaderMap) {
    let req = request(client, method, url, token);
    let resp = match body {
        Some(body) => req.send_json(&body).await,
        None => req.send_body("v").await,
    }
    .expect("send");
    let (status, headers, raw) = read_answer(resp).await;
    let json = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    (status, json, headers)
}

#[actix_rt::test]
async fn tokens_guard_every_route_by_role_and_prefix() {
    let mut c = TestCluster::start_with(3, |config| config.tokens = tokens()).await;
    c.serve_http();
    let (leader, follower) = c.leader_and_informed_follower(ELECTION).await;
    let client = client();
    let base = c.url(leader);

    // Open routes.
    for path in ["/healthz", "/readyz", "/", "/assets/dashboard.js"] {
        let (status, _, _) = call(&client, "GET", &format!("{base}{path}"), None, None).await;
        assert!(status == 200 || status == 503, "{path}: {status}");
        assert_ne!(status, 401, "{path}");
    }

    // Every documented route but the open ones answers 401 without a token, and with an
    // unknown one.
    let (status, doc, _) = call(
        &client,
        "GET",
        &format!("{base}/openapi.json"),
        Some(READER),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let open = ["/healthz", "/readyz", "/"];
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("methods").keys() {
            if open.contains(&path.as_str()) && method == "get" {
                continue;
            }
            let url = format!(
                "{base}{}",
                path.replace("{key}", "k")
                    .replace("{id}", "9")
                    .replace("{name}", "t")
            );
            for token in [None, Some("not-a-token-at-all")] {
                let (status, body, headers) =
                    call(&client, &method.to_uppercase(), &url, token, None).await;
                assert_eq!(status, 401, "{method} {path} with {token:?}: {body}");
                assert_eq!(body["error"], json!("unauthorized"), "{method} {path}");
                let challenge = headers.get("www-authenticate").expect("challenge");
                assert!(challenge.to_str().unwrap_or_default().starts_with("Bearer"));
            }
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} routes checked");

    // Read token: reads yes, writes and admin no.
    assert_eq!(
        status_of(&client, "GET", &format!("{base}/v1/status"), Some(READER)).await,
        200
    );
    let (status, body, _) = call(
        &client,
        "PUT",
        &format!("{base}/v1/kv/k"),
        Some(READER),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (403, json!("forbidden")),
        "{body}"
    );
    for (method, path) in [
        ("POST", "/v1/admin/snapshot"),
        ("POST", "/v1/cluster/transfer-leader"),
        ("DELETE", "/v1/cluster/members/9"),
    ] {
        for token in [READER, WRITER, SCOPED] {
            let (status, body, _) = call(
                &client,
                method,
                &format!("{base}{path}"),
                Some(token),
                Some(json!({})),
            )
            .await;
            assert_eq!(
                (status, body["error"].clone()),
                (403, json!("forbidden")),
                "{method} {path}: {body}"
            );
        }
    }

    // Write token: key writes and reads, through a follower too (the follower forwards the
    // caller's Authorization header to the leader, which checks it as well).
    let (status, body, _) = call(
        &client,
        "PUT",
        &format!("{base}/v1/kv/k"),
        Some(WRITER),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body, headers) = call(
        &client,
        "PUT",
        &format!("{}/v1/kv/fwd", c.url(follower)),
        Some(WRITER),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(headers.contains_key("x-raftix-forwarded-to"));
    assert_eq!(
        status_of(
            &client,
            "PUT",
            &format!("{}/v1/kv/fwd", c.url(follower)),
            Some(READER)
        )
        .await,
        403
    );
    assert_eq!(
        status_of(
            &client,
            "GET",
            &format!("{}/v1/kv/fwd", c.url(follower)),
            Some(READER)
        )
        .await,
        200
    );
    let (status, body, _) = call(
        &client,
        "POST",
        &format!("{}/api/command", c.url(follower)),
        Some(WRITER),
        Some(json!({"command": "SET dash yes"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body, _) = call(
        &client,
        "GET",
        &format!("{}/api/status", c.url(follower)),
        Some(READER),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let nodes = body["nodes"].as_array().expect("nodes");
    assert!(
        nodes.iter().all(|n| n["error"].is_null()),
        "other nodes probed with the token: {body}"
    );

    // Prefix token: inside its prefix only.
    let scoped = |path: &str| format!("{base}{path}");
    let (status, body, _) = call(
        &client,
        "PUT",
        &scoped("/v1/kv/app%2Fa"),
        Some(SCOPED),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        status_of(&client, "GET", &scoped("/v1/kv/app%2Fa"), Some(SCOPED)).await,
        200
    );
    for (method, path, body) in [
        ("PUT", "/v1/kv/other", None),
        ("GET", "/v1/kv/k", None),
        (
            "POST",
            "/v1/kv/k/cas",
            Some(json!({"expected": null, "value": "x"})),
        ),
        ("GET", "/v1/kv", None),
        ("GET", "/v1/kv?prefix=ap", None),
        ("GET", "/v1/log", None),
        ("GET", "/api/logs", None),
        (
            "POST",
            "/v1/txn",
            Some(
                json!({"ops": [{"op": "put", "key": "app/b", "value": "1"}, {"op": "delete", "key": "k"}]}),
            ),
        ),
        ("POST", "/api/command", Some(json!({"command": "SET k v"}))),
    ] {
        let (status, answer, _) = call(&client, method, &scoped(path), Some(SCOPED), body).await;
        assert_eq!(
            (status, answer["error"].clone()),
            (403, json!("forbidden")),
            "{method} {path}: {answer}"
        );
    }
    let (status, body, _) = call(
        &client,
        "GET",
        &scoped("/v1/kv?prefix=app%2F"),
        Some(SCOPED),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["key"], json!("app/a"));
    let (status, body, _) = call(
        &client,
        "POST",
        &scoped("/v1/txn"),
        Some(SCOPED),
        Some(json!({"guards": [{"key": "app/a", "expect": "present"}], "ops": [{"op": "put", "key": "app/b", "value": "1"}]})),
    )
    .await;
    assert_eq!(
        (status, body["succeeded"].clone()),
        (200, json!(true)),
        "{body}"
    );
    // Through a follower: the transaction body is handed on intact.
    let (status, body, _) = call(
        &client,
        "POST",
        &format!("{}/v1/txn", c.url(follower)),
        Some(SCOPED),
        Some(json!({"ops": [{"op": "put", "key": "app/c", "value": "2"}]})),
    )
    .await;
    assert_eq!(
        (status, body["succeeded"].clone()),
        (200, json!(true)),
        "{body}"
    );

    // Admin token: everything.
    let (status, body, _) = call(
        &client,
        "POST",
        &format!("{base}/v1/admin/snapshot"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // No secret in /v1/status, /api/status, /v1/cluster or /metrics.
    for path in ["/v1/status", "/api/status", "/v1/cluster", "/metrics"] {
        let mut resp = client
            .get(format!("{base}{path}"))
            .insert_header(("authorization", format!("Bearer {ADMIN}")))
            .send()
            .await
            .expect("send");
        let text =
            String::from_utf8_lossy(&resp.body().limit(16 << 20).await.expect("body")).into_owned();
        for secret in [ADMIN, WRITER, READER, SCOPED] {
            assert!(!text.contains(secret), "{path} shows a secret");
        }
    }
    // Nor in the configuration's Debug output.
    let debug = format!("{:?}", c.config(leader));
    for secret in [ADMIN, WRITER, READER, SCOPED] {
        assert!(!debug.contains(secret), "Debug shows a secret: {debug}");
    }
    c.shutdown().await;
}
