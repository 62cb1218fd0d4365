//! Hierarchical keys take every per-key action without percent-encoding, and a query parameter
//! a route does not take is refused (400) rather than ignored.

use crate::requests::{client, read_answer, request};
use crate::support::cluster::TestCluster;

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
