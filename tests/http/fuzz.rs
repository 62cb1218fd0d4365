//! Property test (proptest) of the REST gateway: arbitrary requests against a one-node cluster's
//! actix-web app, in process. Methods, paths under `/v1` and `/api` (known routes with arbitrary
//! segments, and unknown ones), query strings, headers and bodies (arbitrary bytes, invalid
//! UTF-8, invalid JSON, JSON of the wrong shape, huge numbers, deep nesting) are generated.
//!
//! Whatever the request: no panic, never a 500, and every 4xx or 5xx answer (but to `HEAD`,
//! which has no body) is a JSON object with a string `"error"` field. The run is seeded: the
//! seed is printed, and `FUZZ_HTTP_SEED=<hex>` replays it; `FUZZ_HTTP_CASES` sets the number of
//! requests.

use crate::support::cluster;

use std::time::Duration;

use actix_web::http::Method;
use actix_web::test as web_test;
use actix_web::App;
use cluster::TestCluster;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};
use raftix::http::{self, AppState};
use serde_json::Value;

const ELECTION: Duration = Duration::from_secs(5);
const DEFAULT_CASES: u32 = 600;

/// One generated request.
#[derive(Clone, Debug)]
struct FuzzRequest {
    method: Method,
    /// Path and query, already percent-encoded where needed.
    uri: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

/// Bytes as a path segment or query value: unreserved characters as they are, everything else
/// percent-encoded (so `/`, `%`, NUL, and invalid UTF-8 reach the decoder).
fn percent_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A segment: usually short and printable, sometimes arbitrary bytes or over the key limit.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9/._-]{1,12}".prop_map(|s| percent_encode(s.as_bytes())),
        2 => vec(any::<u8>(), 0..24).prop_map(|b| percent_encode(&b)),
        1 => (500usize..700).prop_map(|n| "k".repeat(n)),
        1 => Just("%".to_string()),
        1 => Just("%ZZ".to_string()),
        1 => Just("%FF%FE".to_string()),
    ]
}

/// Numbers and near-numbers, where ids, limits and indexes go.
fn number_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        (0u64..5).prop_map(|n| n.to_string()),
        Just("18446744073709551616".to_string()),
        Just("99999999999999999999999999999999".to_string()),
        Just("-1".to_string()),
        Just("1e3".to_string()),
        Just("0x10".to_string()),
        Just(String::new()),
        segment(),
    ]
}

/// A path, with the methods its route answers (GET for unknown paths).
fn route() -> impl Strategy<Value = (String, &'static [Method])> {
    const GET: &[Method] = &[Method::GET];
    const POST: &[Method] = &[Method::POST];
    const KEY: &[Method] = &[Method::PUT, Method::GET, Method::DELETE, Method::HEAD];
    const VOTER: &[Method] = &[Method::POST, Method::DELETE];
    const MEMBER: &[Method] = &[Method::DELETE];
    let seg = segment;
    let fixed = |path: &str, methods: &'static [Method]| Just((path.to_string(), methods));
    prop_oneof![
        1 => fixed("/v1/kv", GET),
        4 => seg().prop_map(|k| (format!("/v1/kv/{k}"), KEY)),
        2 => seg().prop_map(|k| (format!("/v1/kv/{k}/cas"), POST)),
        2 => fixed("/v1/txn", POST),
        1 => fixed("/v1/status", GET),
        1 => fixed("/v1/cluster", GET),
        1 => fixed("/v1/cluster/transfer-leader", POST),
        1 => fixed("/v1/cluster/learners", POST),
        1 => number_like().prop_map(|id| (format!("/v1/cluster/voters/{id}"), VOTER)),
        1 => number_like().prop_map(|id| (format!("/v1/cluster/members/{id}"), MEMBER)),
        1 => fixed("/v1/admin/snapshot", POST),
        1 => fixed("/v1/admin/backup", GET),
        1 => fixed("/v1/log", GET),
        1 => fixed("/healthz", GET),
        1 => fixed("/readyz", GET),
        1 => fixed("/metrics", GET),
        1 => fixed("/openapi.json", GET),
        1 => fixed("/api/status", GET),
        1 => fixed("/api/logs", GET),
        2 => fixed("/api/command", POST),
        1 => seg().prop_map(|s| (format!("/v1/{s}"), GET)),
        1 => seg().prop_map(|s| (format!("/api/{s}"), GET)),
        1 => seg().prop_map(|s| (format!("/{s}"), GET)),
        1 => fixed("/", GET),
    ]
}

fn query() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("prefix".to_string()),
        Just("limit".to_string()),
        Just("after".to_string()),
        Just("from".to_string()),
        Just("consistency".to_string()),
        Just("max_lag".to_string()),
        Just("ack".to_string()),
        Just("redirect".to_string()),
        segment(),
    ];
    let value = prop_oneof![
        number_like(),
        Just("stale".to_string()),
        Just("lease".to_string()),
        Just("all".to_string()),
        Just("leader".to_string()),
        Just("true".to_string()),
        segment(),
    ];
    let pairs = vec(
        (name, proptest::option::of(value)).prop_map(|(n, v)| match v {
            Some(v) => format!("{n}={v}"),
            None => n,
        }),
        1..4,
    )
    .prop_map(|pairs| pairs.join("&"));
    // Half the requests carry no query: a parameter a route does not take is refused before
    // the handler runs, and the generator must reach the handlers too.
    prop_oneof![Just(String::new()), pairs]
}

fn headers() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let header = prop_oneof![
        prop_oneof![
            Just(b"application/json".to_vec()),
            Just(b"text/plain".to_vec()),
            Just(b"application/octet-stream".to_vec()),
            Just(b"application/x-www-form-urlencoded".to_vec()),
            Just(b"multipart/form-data; boundary=x".to_vec()),
            vec(32u8..127, 0..20),
        ]
        .prop_map(|v| ("content-type".to_string(), v)),
        prop_oneof![
            Just(b"gzip".to_vec()),
            Just(b"br".to_vec()),
            Just(b"x".to_vec())
        ]
        .prop_map(|v| ("content-encoding".to_string(), v)),
        vec(32u8..127, 0..40).prop_map(|v| ("idempotency-key".to_string(), v)),
        // A few keys used over and over, by every kind of write.
        (0u8..3).prop_map(|n| (
            "idempotency-key".to_string(),
            format!("again-{n}").into_bytes()
        )),
        vec(32u8..127, 0..10).prop_map(|v| ("x-raftix-client".to_string(), v)),
        number_like().prop_map(|v| ("x-raftix-seq".to_string(), v.into_bytes())),
        vec(32u8..127, 0..30).prop_map(|v| ("authorization".to_string(), v)),
        vec(128u8..=255, 1..8).prop_map(|v| ("idempotency-key".to_string(), v)),
        vec(32u8..127, 0..20).prop_map(|v| ("x-raftix-forwarded-by".to_string(), v)),
    ];
    vec(header, 0..4)
}

/// Any JSON value, nested a few levels, with strings, huge and negative numbers.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,16}".prop_map(Value::String),
        "[a-z]{1,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bodies shaped like the API's requests, with arbitrary values in their fields.
fn shaped_body() -> impl Strategy<Value = Vec<u8>> {
    let v = json_value;
    prop_oneof![
        (v(), v()).prop_map(|(e, n)| serde_json::json!({"expected": e, "value": n})),
        (v(), v()).prop_map(|(g, o)| serde_json::json!({"guards": g, "ops": o})),
        (v(), v(), v()).prop_map(|(k, e, val)| serde_json::json!({
            "guards": [{"key": k, "expect": e}, {"key": k, "equals": val}],
            "ops": [{"op": "put", "key": k, "value": val}, {"op": e, "key": k}],
        })),
        v().prop_map(|to| serde_json::json!({"to": to})),
        (v(), prop_oneof![Just("127.0.0.1:1".to_string()), ".{0,12}"])
            .prop_map(|(id, a)| { serde_json::json!({"id": id, "peer_addr": a}) }),
        (v(), v()).prop_map(|(id, a)| serde_json::json!({"id": id, "addr": a})),
        v().prop_map(|c| serde_json::json!({"command": c})),
        ".{0,40}".prop_map(|c| serde_json::json!({"command": c})),
        (v(), v(), v()).prop_map(|(op, key, value)| {
            serde_json::json!({"op": op, "key": key, "value": value})
        }),
        v(),
    ]
    .prop_map(|json| json.to_string().into_bytes())
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => Just(Vec::new()),
        4 => shaped_body(),
        2 => vec(any::<u8>(), 0..128),
        1 => prop_oneof![
            Just(b"{".to_vec()),
            Just(b"[1,".to_vec()),
            Just(b"{\"expected\": 1e999, \"value\": \"x\"}".to_vec()),
            Just(b"{\"to\": 99999999999999999999999999}".to_vec()),
            Just(b"{\"id\": -1, \"peer_addr\": \"x\"}".to_vec()),
            Just(b"{\"command\": \"SET\"}".to_vec()),
            Just(b"\xff\xfe{}".to_vec()),
            Just(b"null".to_vec()),
            Just([b"[".repeat(200), b"]".repeat(200)].concat()),
            Just(b"{\"a\":".repeat(300)),
        ],
    ]
}

fn any_method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::PUT),
        Just(Method::POST),
        Just(Method::DELETE),
        Just(Method::HEAD),
        Just(Method::PATCH),
        Just(Method::OPTIONS),
        Just(Method::from_bytes(b"FROB").expect("a method token")),
    ]
}

/// A request; three times in four with a method its route answers.
fn request() -> impl Strategy<Value = FuzzRequest> {
    let routed = route().prop_flat_map(|(path, methods)| {
        let method = prop_oneof![
            3 => proptest::sample::select(methods.to_vec()),
            1 => any_method(),
        ];
        (Just(path), method)
    });
    (routed, query(), headers(), body()).prop_map(|((path, method), query, headers, body)| {
        let uri = match query.is_empty() {
            true => path,
            false => format!("{path}?{query}"),
        };
        FuzzRequest {
            method,
            uri,
            headers,
            body,
        }
    })
}

/// Sends the [`FuzzRequest`] `$req` to the test service `$app`; evaluates to the answer's
/// status, `Allow` header and body. A request the app refuses before any handler runs comes back as an error,
/// which is rendered the way the server would send it.
macro_rules! send {
    ($app:expr, $req:expr) => {{
        let req: &FuzzRequest = $req;
        let mut builder = web_test::TestRequest::default()
            .method(req.method.clone())
            .uri(&req.uri)
            .set_payload(req.body.clone());
        for (name, value) in &req.headers {
            if let Ok(value) = actix_web::http::header::HeaderValue::from_bytes(value) {
                builder = builder.insert_header((name.as_str(), value));
            }
        }
        match web_test::try_call_service($app, builder.to_request()).await {
            Ok(response) => {
                let status = response.status().as_u16();
                let allow = allow_of(response.headers());
                (status, allow, web_test::read_body(response).await)
            }
            Err(err) => {
                let response = err.error_response();
                let status = response.status().as_u16();
                let allow = allow_of(response.headers());
                let body = actix_web::body::to_bytes(response.into_body())
                    .await
                    .unwrap_or_default();
                (status, allow, body)
            }
        }
    }};
}

/// The `Allow` header of an answer, if any.
fn allow_of(headers: &actix_web::http::header::HeaderMap) -> Option<String> {
    headers
        .get(actix_web::http::header::ALLOW)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn check_answer(
    req: &FuzzRequest,
    status: u16,
    allow: Option<String>,
    body: &[u8],
) -> Result<(), TestCaseError> {
    let text = String::from_utf8_lossy(body);
    prop_assert!(status != 500, "500 for {} {}: {text}", req.method, req.uri);
    prop_assert!((100..600).contains(&status), "status {status}");
    if status == 405 {
        // RFC 9110: a 405 lists the methods the route answers, and this one is not among them.
        let allow = allow.unwrap_or_default();
        prop_assert!(
            !allow.is_empty() && !allow.split(", ").any(|m| m == req.method.as_str()),
            "405 for {} {} with Allow {allow:?}",
            req.method,
            req.uri
        );
    }
    if status >= 400 && req.method != Method::HEAD {
        let json: Result<Value, _> = serde_json::from_slice(body);
        // `/readyz` answers a node that is not ready (applying, no leader) with its documented
        // readiness body, 503 and `"ready": false`, as load balancers expect.
        let not_ready = status == 503
            && req.uri.split('?').next() == Some("/readyz")
            && matches!(&json, Ok(v) if v["ready"] == false && v["reason"].is_string());
        prop_assert!(
            not_ready || matches!(&json, Ok(v) if v["error"].is_string()),
            "{status} for {} {} without a JSON error body: {text}",
            req.method,
            req.uri
        );
    }
    Ok(())
}

/// The seed of this run: `FUZZ_HTTP_SEED` (hex) or the clock.
fn seed() -> u64 {
    match std::env::var("FUZZ_HTTP_SEED") {
        Ok(hex) => u64::from_str_radix(hex.trim_start_matches("0x"), 16)
            .unwrap_or_else(|e| panic!("FUZZ_HTTP_SEED={hex:?} is not hex: {e}")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos() as u64,
    }
}

#[test]
fn the_http_api_answers_any_request_without_panic_or_500() {
    let cases = std::env::var("FUZZ_HTTP_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let seed = seed();
    eprintln!("HTTP fuzz: {cases} requests, seed {seed:#x} (replay with FUZZ_HTTP_SEED={seed:x})");
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());

    let system = actix_rt::System::new();
    let cluster = system.block_on(TestCluster::start(1));
    let leader = system.block_on(cluster.wait_leader(&cluster.ids(), ELECTION));
    let node = &cluster.nodes[&leader];
    let state = AppState::new(&node.config, node.handle.clone(), node.kv.clone());
    let app = system.block_on(web_test::init_service(
        App::new().configure(http::configure(state)),
    ));

    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    let result = runner.run(&request(), |req| {
        system.block_on(async {
            let (status, allow, body) = send!(&app, &req);
            *statuses.borrow_mut().entry(status).or_default() += 1;
            check_answer(&req, status, allow, &body)
        })
    });
    let alive = system.block_on(node.handle.status()).is_ok();
    system.block_on(cluster.shutdown());
    let statuses = statuses.into_inner();
    eprintln!("answers by status: {statuses:?}");
    match result {
        Ok(()) => {
            assert!(alive, "the node stopped during the run");
            // The generator reaches the handlers, not only the router's 404s and 405s.
            let count = |range: std::ops::Range<u16>| -> u32 {
                statuses.range(range).map(|(_, n)| n).sum()
            };
            let total = count(0..600);
            assert!(
                count(200..300) * 10 >= total,
                "too few successes: {statuses:?}"
            );
            assert!(
                statuses.get(&400).copied().unwrap_or(0) * 20 >= total,
                "{statuses:?}"
            );
        }
        Err(TestError::Fail(reason, req)) => panic!(
            "seed {seed:x}: {reason}\nminimal request: {} {}\nheaders: {:?}\nbody: {:?}",
            req.method,
            req.uri,
            req.headers
                .iter()
                .map(|(n, v)| (n, String::from_utf8_lossy(v)))
                .collect::<Vec<_>>(),
            String::from_utf8_lossy(&req.body)
        ),
        Err(TestError::Abort(reason)) => panic!("seed {seed:x}: aborted: {reason}"),
    }
}

/// Found by schemathesis: an idempotency key first used by a transaction, then by a `DELETE`,
/// answered the transaction's cached result to the delete, which the handler could not shape:
/// a 500. A key reused by another kind of request is the client's mistake: 409, nothing applied.
#[actix_rt::test]
async fn an_idempotency_key_reused_by_another_kind_of_request_is_a_409() {
    let cluster = TestCluster::start(1).await;
    let leader = cluster.wait_leader(&cluster.ids(), ELECTION).await;
    let node = &cluster.nodes[&leader];
    let state = AppState::new(&node.config, node.handle.clone(), node.kv.clone());
    let app = web_test::init_service(App::new().configure(http::configure(state))).await;
    let with_key = |req: web_test::TestRequest| req.insert_header(("idempotency-key", "k-1"));

    let txn = with_key(web_test::TestRequest::post().uri("/v1/txn"))
        .set_payload(r#"{"guards": [], "ops": [{"op": "put", "key": "a", "value": "1"}]}"#);
    let first = web_test::call_service(&app, txn.to_request()).await;
    assert_eq!(first.status(), 200);
    // The same request again: the first result, marked duplicate.
    let txn = with_key(web_test::TestRequest::post().uri("/v1/txn"))
        .set_payload(r#"{"guards": [], "ops": [{"op": "put", "key": "a", "value": "1"}]}"#);
    let again: Value = web_test::call_and_read_body_json(&app, txn.to_request()).await;
    assert_eq!(again["duplicate"], true, "{again}");

    for req in [
        web_test::TestRequest::delete().uri("/v1/kv/a"),
        web_test::TestRequest::put()
            .uri("/v1/kv/a")
            .set_payload("2"),
        web_test::TestRequest::post()
            .uri("/v1/kv/a/cas")
            .set_payload(r#"{"expected": "1", "value": "3"}"#),
    ] {
        let response = web_test::call_service(&app, with_key(req).to_request()).await;
        assert_eq!(response.status(), 409);
        let body: Value = web_test::read_body_json(response).await;
        assert_eq!(body["error"], "request_id_reused", "{body}");
    }
    let value = web_test::call_service(
        &app,
        web_test::TestRequest::get().uri("/v1/kv/a").to_request(),
    )
    .await;
    assert_eq!(
        web_test::read_body(value).await,
        "1",
        "a refused request changed the key"
    );
    cluster.shutdown().await;
}
