//! Replicated API tokens over the REST gateway of an in-process 3-node cluster: bootstrap of
//! access control by creating the first (admin) token, roles on `/v1/auth/tokens`, the secret
//! shown once and nowhere else (list, log, status, metrics), use on every node after
//! replication, revocation, expiry, and retries.

use crate::requests::{self, client, request};
use crate::support::authed::token_names;
use crate::support::cluster;

use std::time::{Duration, Instant};

use awc::http::header::HeaderMap;
use cluster::TestCluster;
use raftix::config::{TokenConfig, TokenRole};
use raftix::core::NodeId;
use serde_json::{json, Value};

const ELECTION: Duration = Duration::from_secs(5);
const APPLY: Duration = Duration::from_secs(10);
const STATIC_ADMIN: &str = "static-admin-secret-01";

/// `method url` with `token` (if any), extra `headers` and a JSON `body`: status, JSON body (or
/// the text as a JSON string), headers.
async fn call_with(
    client: &awc::Client,
    method: &str,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value, HeaderMap) {
    let mut req = request(client, method, url, token);
    for (name, value) in headers {
        req = req.insert_header((*name, *value));
    }
    let (status, headers, raw) = requests::send(req, body).await;
    let json = serde_json::from_slice(&raw)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()));
    (status, json, headers)
}

async fn call(
    client: &awc::Client,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, body, _) = call_with(client, method, url, token, &[], body).await;
    (status, body)
}

/// The status of a bodiless request.
async fn status_of(client: &awc::Client, method: &str, url: &str, token: Option<&str>) -> u16 {
    call(client, method, url, token, None).await.0
}

/// Creates a token through `base`; returns the whole 201 answer.
async fn create(client: &awc::Client, base: &str, token: Option<&str>, body: Value) -> Value {
    let (status, answer) = call(
        client,
        "POST",
        &format!("{base}/v1/auth/tokens"),
        token,
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 201, "create {body}: {answer}");
    answer
}

/// Polls `GET /v1/status` on `base` with `token` until it answers `want`.
async fn wait_status(client: &awc::Client, base: &str, token: Option<&str>, want: u16, what: &str) {
    let deadline = Instant::now() + APPLY;
    loop {
        let (status, _) = call(client, "GET", &format!("{base}/v1/status"), token, None).await;
        if status == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {base} still answers {status}, not {want}"
        );
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn start(tokens: Vec<TokenConfig>) -> (TestCluster, NodeId, Vec<NodeId>) {
    let mut c = TestCluster::start_with(3, |config| config.tokens = tokens.clone()).await;
    c.serve_http();
    let (leader, _) = c.leader_and_informed_follower(ELECTION).await;
    let followers = c.ids().into_iter().filter(|&id| id != leader).collect();
    (c, leader, followers)
}

#[actix_rt::test]
async fn the_first_admin_token_turns_access_control_on_and_tokens_work_everywhere() {
    let (c, leader, followers) = start(Vec::new()).await;
    let client = client();
    let base = c.url(leader);
    let follower = c.url(followers[0]);

    // Open before: no token needed.
    let (status, _) = call(&client, "GET", &format!("{base}/v1/status"), None, None).await;
    assert_eq!(status, 200);
    let (status, list) = call(
        &client,
        "GET",
        &format!("{base}/v1/auth/tokens"),
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, list["access_control"].clone()),
        (200, json!(false))
    );
    // A first token that is not an admin token would lock everyone out: refused.
    for role in ["read", "write"] {
        let (status, body) = call(
            &client,
            "POST",
            &format!("{base}/v1/auth/tokens"),
            None,
            Some(json!({"name": "first", "role": role})),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains("lock you out"), "{message}");
    }
    // Bad input: unknown role and field, an admin prefix, a zero lifetime.
    for bad in [
        json!({"name": "x", "role": "owner"}),
        json!({"name": "x", "role": "admin", "color": "red"}),
        json!({"name": "x", "role": "admin", "prefix": "a/"}),
        json!({"name": "x y", "role": "admin"}),
        json!({"name": "x", "role": "admin", "expires_in_secs": 0}),
    ] {
        let (status, body) = call(
            &client,
            "POST",
            &format!("{base}/v1/auth/tokens"),
            None,
            Some(bad.clone()),
        )
        .await;
        assert_eq!(
            (status, body["error"].clone()),
            (400, json!("bad_request")),
            "{bad}: {body}"
        );
    }

    // The first admin token, created through a follower (forwarded to the leader).
    let root = create(
        &client,
        &follower,
        None,
        json!({"name": "root", "role": "admin"}),
    )
    .await;
    let root_secret = root["token"].as_str().expect("secret").to_string();
    assert!(
        root_secret.starts_with("rxt_") && root_secret.len() >= 40,
        "{root}"
    );
    assert_eq!(root["role"], json!("admin"));
    assert!(root.get("expires_at").is_none(), "{root}");

    // Access control is on, on every node once applied: no token is 401, the new one works.
    for id in c.ids() {
        let url = c.url(id);
        wait_status(&client, &url, None, 401, "root token replicated").await;
        assert_eq!(
            status_of(
                &client,
                "GET",
                &format!("{url}/v1/status"),
                Some(&root_secret)
            )
            .await,
            200
        );
        let (status, body) = call(&client, "GET", &format!("{url}/v1/status"), None, None).await;
        assert_eq!(
            (status, body["error"].clone()),
            (401, json!("unauthorized"))
        );
        let (status, _) = call(&client, "GET", &format!("{url}/healthz"), None, None).await;
        assert_eq!(status, 200, "healthz stays open");
    }
    // No more tokens without a token.
    let (status, _) = call(
        &client,
        "POST",
        &format!("{base}/v1/auth/tokens"),
        None,
        Some(json!({"name": "sneaky", "role": "admin"})),
    )
    .await;
    assert_eq!(status, 401);

    // Tokens of every role, created by the admin.
    let writer = create(
        &client,
        &base,
        Some(&root_secret),
        json!({"name": "writer", "role": "write"}),
    )
    .await;
    let writer = writer["token"].as_str().expect("secret").to_string();
    let reader = create(
        &client,
        &base,
        Some(&root_secret),
        json!({"name": "reader", "role": "read"}),
    )
    .await;
    let reader = reader["token"].as_str().expect("secret").to_string();
    let scoped = create(
        &client,
        &base,
        Some(&root_secret),
        json!({"name": "app", "role": "write", "prefix": "app/"}),
    )
    .await;
    assert_eq!(scoped["prefix"], json!("app/"));
    let scoped = scoped["token"].as_str().expect("secret").to_string();
    let secrets = [
        root_secret.clone(),
        writer.clone(),
        reader.clone(),
        scoped.clone(),
    ];
    assert_eq!(
        secrets
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        4
    );

    // Roles on the token routes: admin only.
    for token in [&writer, &reader, &scoped] {
        for (method, path, body) in [
            ("GET", "/v1/auth/tokens", None),
            (
                "POST",
                "/v1/auth/tokens",
                Some(json!({"name": "mine", "role": "read"})),
            ),
            ("DELETE", "/v1/auth/tokens/writer", None),
        ] {
            let (status, answer) =
                call(&client, method, &format!("{base}{path}"), Some(token), body).await;
            assert_eq!(
                (status, answer["error"].clone()),
                (403, json!("forbidden")),
                "{method} {path}: {answer}"
            );
        }
    }
    assert_eq!(
        status_of(
            &client,
            "GET",
            &format!("{base}/v1/auth/tokens"),
            Some("rxt_not-a-token")
        )
        .await,
        401
    );

    // Replicated tokens work on a follower, for their role and prefix.
    for id in &followers {
        wait_status(
            &client,
            &c.url(*id),
            Some(&scoped),
            200,
            "scoped token replicated",
        )
        .await;
    }
    let (status, body) = call(
        &client,
        "PUT",
        &format!("{follower}/v1/kv/k"),
        Some(&writer),
        Some(json!("v")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        status_of(
            &client,
            "PUT",
            &format!("{follower}/v1/kv/k"),
            Some(&reader)
        )
        .await,
        403
    );
    assert_eq!(
        status_of(
            &client,
            "GET",
            &format!("{follower}/v1/kv/k"),
            Some(&reader)
        )
        .await,
        200
    );
    assert_eq!(
        status_of(
            &client,
            "PUT",
            &format!("{follower}/v1/kv/k"),
            Some(&scoped)
        )
        .await,
        403
    );
    assert_eq!(
        status_of(
            &client,
            "PUT",
            &format!("{follower}/v1/kv/app%2Fk"),
            Some(&scoped)
        )
        .await,
        200
    );

    // A taken name is a conflict.
    let (status, body) = call(
        &client,
        "POST",
        &format!("{base}/v1/auth/tokens"),
        Some(&root_secret),
        Some(json!({"name": "writer", "role": "read"})),
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (409, json!("conflict")),
        "{body}"
    );

    // The list shows every token without any secret.
    let (status, list) = call(
        &client,
        "GET",
        &format!("{follower}/v1/auth/tokens"),
        Some(&root_secret),
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["access_control"], json!(true));
    let names = token_names(&list);
    assert_eq!(names, ["app", "reader", "root", "writer"]);
    assert!(list["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .all(|t| t["source"] == json!("replicated") && t.get("token").is_none()));

    // The secrets appear nowhere: list, log, dashboard log, status, cluster, metrics.
    for id in c.ids() {
        let url = c.url(id);
        for path in [
            "/v1/auth/tokens",
            "/v1/log?from=1&limit=1000",
            "/api/logs?limit=1000",
            "/v1/status",
            "/api/status",
            "/v1/cluster",
            "/metrics",
        ] {
            let (status, body) = call(
                &client,
                "GET",
                &format!("{url}{path}"),
                Some(&root_secret),
                None,
            )
            .await;
            assert_eq!(status, 200, "{path}");
            let text = body.to_string();
            for secret in &secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "{path} on {url} shows a secret"
                );
                let b64 = secret.trim_start_matches("rxt_");
                assert!(!text.contains(b64), "{path} shows a secret's random part");
            }
        }
    }
    // The log shows the token entries by name and role only.
    let (_, log) = call(
        &client,
        "GET",
        &format!("{base}/v1/log?from=1&limit=1000"),
        Some(&root_secret),
        None,
    )
    .await;
    let puts: Vec<&Value> = log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["command"])
        .filter(|c| c["op"] == json!("token_put"))
        .collect();
    // Four creations and the refused one (a taken name is refused when applied).
    assert_eq!(puts.len(), 5, "{log}");
    let root_entry = puts
        .iter()
        .find(|c| c["name"] == json!("root"))
        .expect("root entry");
    assert_eq!(root_entry["role"], json!("admin"));
    let keys: Vec<&String> = root_entry.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["expires_at_ms", "name", "op", "prefix", "role"]);

    // Revocation: refused on the leader at once, on every follower once applied.
    let (status, body) = call(
        &client,
        "DELETE",
        &format!("{follower}/v1/auth/tokens/writer"),
        Some(&root_secret),
        None,
    )
    .await;
    assert_eq!(
        (status, body["revoked"].clone()),
        (200, json!(true)),
        "{body}"
    );
    let (status, body) = call(
        &client,
        "GET",
        &format!("{base}/v1/status"),
        Some(&writer),
        None,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    for id in c.ids() {
        wait_status(
            &client,
            &c.url(id),
            Some(&writer),
            401,
            "revocation applied",
        )
        .await;
    }
    let (status, body) = call(
        &client,
        "DELETE",
        &format!("{base}/v1/auth/tokens/writer"),
        Some(&root_secret),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (404, json!("token_not_found")),
        "{body}"
    );
    // The other tokens still work.
    wait_status(&client, &base, Some(&reader), 200, "reader still valid").await;
    c.shutdown().await;
}

#[actix_rt::test]
async fn expiry_retries_and_static_tokens() {
    let statics = vec![TokenConfig {
        name: "ops".into(),
        token: STATIC_ADMIN.into(),
        role: TokenRole::Admin,
        prefix: None,
    }];
    let (c, leader, followers) = start(statics).await;
    let client = client();
    let base = c.url(leader);

    // Access control is on from the start: no bootstrap without a token.
    let (status, _) = call(
        &client,
        "POST",
        &format!("{base}/v1/auth/tokens"),
        None,
        Some(json!({"name": "root", "role": "admin"})),
    )
    .await;
    assert_eq!(status, 401);
    // A static token's name is taken.
    let (status, body) = call(
        &client,
        "POST",
        &format!("{base}/v1/auth/tokens"),
        Some(STATIC_ADMIN),
        Some(json!({"name": "ops", "role": "read"})),
    )
    .await;
    assert_eq!(status, 409, "{body}");

    // A token that expires in 1 s: accepted until then, refused (401, "expired") after.
    let created_at = Instant::now();
    let short = create(
        &client,
        &base,
        Some(STATIC_ADMIN),
        json!({"name": "short", "role": "read", "expires_in_secs": 1}),
    )
    .await;
    let expires_at = short["expires_at"]
        .as_str()
        .expect("expires_at")
        .to_string();
    assert!(
        expires_at.ends_with('Z') && expires_at.len() == 20,
        "{expires_at}"
    );
    let short = short["token"].as_str().expect("secret").to_string();
    let (status, body) = call(
        &client,
        "GET",
        &format!("{base}/v1/status"),
        Some(&short),
        None,
    )
    .await;
    if created_at.elapsed() < Duration::from_millis(900) {
        assert_eq!(status, 200, "{body}");
    }
    wait_status(&client, &base, Some(&short), 401, "expiry").await;
    assert!(
        created_at.elapsed() >= Duration::from_millis(900),
        "refused before its expiry"
    );
    let (_, body) = call(
        &client,
        "GET",
        &format!("{base}/v1/status"),
        Some(&short),
        None,
    )
    .await;
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("expired"),
        "{body}"
    );
    let (_, list) = call(
        &client,
        "GET",
        &format!("{base}/v1/auth/tokens"),
        Some(STATIC_ADMIN),
        None,
    )
    .await;
    let tokens = list["tokens"].as_array().expect("tokens");
    let ops = tokens
        .iter()
        .find(|t| t["name"] == json!("ops"))
        .expect("static");
    assert_eq!(ops["source"], json!("static"));
    let short_info = tokens
        .iter()
        .find(|t| t["name"] == json!("short"))
        .expect("short");
    assert_eq!(short_info["expired"], json!(true), "{list}");
    assert_eq!(short_info["expires_at"], json!(expires_at));

    // A retry of a creation with the same Idempotency-Key is not a second token, and does not
    // show a secret that was never stored.
    let url = format!("{}/v1/auth/tokens", c.url(followers[0]));
    let body = json!({"name": "ci", "role": "write"});
    let (status, first, _) = call_with(
        &client,
        "POST",
        &url,
        Some(STATIC_ADMIN),
        &[("idempotency-key", "create-ci-1")],
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    let (status, again, _) = call_with(
        &client,
        "POST",
        &url,
        Some(STATIC_ADMIN),
        &[("idempotency-key", "create-ci-1")],
        Some(body),
    )
    .await;
    assert_eq!(status, 409, "{again}");
    assert!(
        again["message"]
            .as_str()
            .unwrap_or_default()
            .contains("already applied"),
        "{again}"
    );
    assert!(again.get("token").is_none());
    // The first secret is the one that works.
    wait_status(
        &client,
        &c.url(followers[0]),
        Some(first["token"].as_str().expect("secret")),
        200,
        "ci token",
    )
    .await;
    // A revocation retried with the same key answers the first result.
    let del = format!("{base}/v1/auth/tokens/ci");
    for _ in 0..2 {
        let (status, answer, _) = call_with(
            &client,
            "DELETE",
            &del,
            Some(STATIC_ADMIN),
            &[("idempotency-key", "revoke-ci-1")],
            None,
        )
        .await;
        assert_eq!(status, 200, "{answer}");
    }
    // Static tokens are not revoked over the API.
    let (status, body) = call(
        &client,
        "DELETE",
        &format!("{base}/v1/auth/tokens/ops"),
        Some(STATIC_ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("static"),
        "{body}"
    );
    c.shutdown().await;
}
