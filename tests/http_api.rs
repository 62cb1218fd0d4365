//! HTTP handler tests (`actix_web::test`) against real in-process nodes.

#[path = "support/cluster.rs"]
mod cluster;

use std::time::Duration;

use actix_web::{test, App};
use cluster::TestCluster;
use raftix::http::{self, AppState, MAX_VALUE_BYTES};
use serde_json::Value;

const ELECTION: Duration = Duration::from_secs(5);

fn state(c: &TestCluster, id: u64) -> AppState {
    AppState {
        node: c.nodes[&id].handle.clone(),
        kv: c.nodes[&id].kv.clone(),
    }
}

#[actix_rt::test]
async fn put_get_status_and_errors_on_the_leader() {
    let c = TestCluster::start(1).await;
    let leader = c.wait_leader(&c.ids(), ELECTION).await;
    let app = test::init_service(App::new().configure(http::configure(state(&c, leader)))).await;

    let req = test::TestRequest::put()
        .uri("/v1/kv/color")
        .set_payload("blue")
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), 200);
    let body: Value = test::read_body_json(resp).await;
    let index = body["index"].as_u64().expect("index");
    assert!(index >= 2, "after the leader's no-op: {body}");
    assert_eq!(
        body["term"].as_u64(),
        Some(c.statuses().await[&leader].term)
    );

    let resp = test::call_service(
        &app,
        test::TestRequest::get().uri("/v1/kv/color").to_request(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let applied: u64 = resp
        .headers()
        .get("X-Raft-Index")
        .expect("index header")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("number");
    assert!(applied >= index);
    assert_eq!(test::read_body(resp).await, "blue");

    let resp = test::call_service(
        &app,
        test::TestRequest::get().uri("/v1/kv/absent").to_request(),
    )
    .await;
    assert_eq!(resp.status(), 404);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["error"], "key_not_found");

    let big = vec![b'x'; MAX_VALUE_BYTES + 1];
    let resp = test::call_service(
        &app,
        test::TestRequest::put()
            .uri("/v1/kv/big")
            .set_payload(big)
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), 413);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["error"], "too_large");
    let resp = test::call_service(
        &app,
        test::TestRequest::get().uri("/v1/kv/big").to_request(),
    )
    .await;
    assert_eq!(resp.status(), 404, "nothing of a refused write is applied");

    let long_key = "k".repeat(600);
    let resp = test::call_service(
        &app,
        test::TestRequest::put()
            .uri(&format!("/v1/kv/{long_key}"))
            .set_payload("v")
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), 400);

    // Keys are UTF-8 text: an invalid percent-encoded byte is refused, not replaced.
    let put = test::TestRequest::put().uri("/v1/kv/%FF").set_payload("v");
    let resp = test::call_service(&app, put.to_request()).await;
    assert_eq!(resp.status(), 400);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["error"], "bad_request");
    let put = test::TestRequest::put()
        .uri("/v1/kv/a%2Fb")
        .set_payload("slash");
    let resp = test::call_service(&app, put.to_request()).await;
    assert_eq!(resp.status(), 200, "an encoded slash is part of the key");
    let resp = test::call_service(
        &app,
        test::TestRequest::get().uri("/v1/kv/a%2Fb").to_request(),
    )
    .await;
    assert_eq!(test::read_body(resp).await, "slash");
    let head = test::TestRequest::default()
        .method(actix_web::http::Method::HEAD)
        .uri("/v1/kv/a%2Fb");
    let resp = test::call_service(&app, head.to_request()).await;
    assert_eq!(resp.status(), 200, "HEAD works where GET does");

    let resp = test::call_service(
        &app,
        test::TestRequest::post().uri("/v1/kv/color").to_request(),
    )
    .await;
    assert_eq!(resp.status(), 405);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["error"], "method_not_allowed");

    let resp =
        test::call_service(&app, test::TestRequest::get().uri("/nowhere").to_request()).await;
    assert_eq!(resp.status(), 404);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["error"], "not_found");

    let resp = test::call_service(
        &app,
        test::TestRequest::get().uri("/v1/status").to_request(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["role"], "LEADER");
    assert_eq!(body["id"].as_u64(), Some(leader));
    assert!(body["commit"].as_u64() >= Some(index));
    assert!(body["applied"].as_u64() >= Some(index));
    c.shutdown().await;
}

#[actix_rt::test]
async fn a_follower_redirects_writes_to_the_leader() {
    let c = TestCluster::start(3).await;
    let leader = c.wait_leader(&c.ids(), ELECTION).await;
    // Followers learn the leader's HTTP address from its peer Hello; wait for that.
    let s = c
        .wait_until("followers know the leader's address", ELECTION, |s| {
            s.values().all(|x| x.leader_addr.is_some())
        })
        .await;
    let follower = *s.keys().find(|&&id| id != leader).expect("follower");
    let app = test::init_service(App::new().configure(http::configure(state(&c, follower)))).await;
    let resp = test::call_service(
        &app,
        test::TestRequest::put()
            .uri("/v1/kv/a?x=1")
            .set_payload("1")
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), 307);
    let expected = format!("http://{}/v1/kv/a?x=1", c.nodes[&leader].config.listen_http);
    assert_eq!(
        resp.headers()
            .get("location")
            .expect("location")
            .to_str()
            .expect("ascii"),
        expected
    );
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["error"], "not_leader");
    assert_eq!(body["leader"]["id"].as_u64(), Some(leader));
    c.shutdown().await;
}
