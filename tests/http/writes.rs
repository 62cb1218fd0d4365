//! Write semantics over real HTTP: transactions, exactly-once retries (also through a forwarding
//! follower), and compare-and-set races between concurrent clients.

use crate::requests;
use crate::support::cluster;

use std::time::Duration;

use cluster::TestCluster;
use serde_json::{json, Value};

const ELECTION: Duration = Duration::from_secs(5);

/// Sends `req` (with a JSON body, or none): the status, and the JSON answer (or its text as a
/// JSON string).
async fn send(req: awc::ClientRequest, body: Option<Value>) -> (u16, Value) {
    let (status, _, bytes) = requests::send(req, body).await;
    let value =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)));
    (status, value)
}

async fn started() -> (TestCluster, u64, u64, awc::Client) {
    let mut c = TestCluster::start(3).await;
    c.serve_http();
    let (leader, follower) = c.leader_and_informed_follower(ELECTION).await;
    (
        c,
        leader,
        follower,
        awc::Client::builder().disable_redirects().finish(),
    )
}

#[actix_rt::test]
async fn transactions_apply_all_or_nothing() {
    let (c, leader, _, client) = started().await;
    let url = format!("{}/v1/txn", c.url(leader));
    let (status, out) = send(
        client.post(&url),
        Some(json!({"guards": [{"key": "acct", "expect": "absent"}],
                    "ops": [{"op": "put", "key": "acct", "value": "100"}, {"op": "put", "key": "log", "value": "opened"}]})),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        (out["succeeded"].clone(), out["failed_guard"].clone()),
        (json!(true), json!(null))
    );
    assert_eq!(out["results"], json!([{"op": "put"}, {"op": "put"}]));

    // The second guard fails: nothing of the transaction is applied.
    let (status, out) = send(
        client.post(&url),
        Some(json!({"guards": [{"key": "acct", "equals": "100"}, {"key": "log", "expect": "absent"}],
                    "ops": [{"op": "put", "key": "acct", "value": "0"}, {"op": "delete", "key": "log"}]})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (out["succeeded"].clone(), out["failed_guard"].clone()),
        (json!(false), json!(1))
    );
    assert_eq!(
        c.nodes[&leader].kv.get("acct").expect("read").as_deref(),
        Some(&b"100"[..])
    );
    assert_eq!(
        c.nodes[&leader].kv.get("log").expect("read").as_deref(),
        Some(&b"opened"[..])
    );

    // Malformed transactions are refused before reaching the log.
    for bad in [
        json!({"ops": [{"op": "rename", "key": "a"}]}),
        json!({"guards": [{"key": "a", "expect": "absent", "equals": "x"}], "ops": []}),
        json!({"guards": [{"key": "a"}], "ops": []}),
        json!({"ops": (0..200).map(|i| json!({"op": "delete", "key": format!("k{i}")})).collect::<Vec<_>>()}),
    ] {
        let (status, out) = send(client.post(&url), Some(bad)).await;
        assert_eq!(
            (status, out["error"].clone()),
            (400, json!("bad_request")),
            "{out}"
        );
    }
    c.shutdown().await;
}

#[actix_rt::test]
async fn a_retried_write_with_the_same_idempotency_key_applies_once() {
    let (c, leader, follower, client) = started().await;
    let put = |node: u64, value: &'static str| {
        client
            .put(format!("{}/v1/kv/counter", c.url(node)))
            .insert_header(("Idempotency-Key", "req-42"))
            .send_body(value)
    };
    let mut first = put(leader, "first").await.expect("send");
    assert_eq!(first.status().as_u16(), 200);
    let first: Value = first.json().await.expect("json");
    assert_eq!(first.get("duplicate"), None);

    // The retry (even with another body, even through a follower) is not applied again: it
    // answers the first result, at the first index.
    let mut retry = put(follower, "second").await.expect("send");
    assert_eq!(retry.status().as_u16(), 200);
    let retry: Value = retry.json().await.expect("json");
    assert_eq!(retry["duplicate"], json!(true));
    assert_eq!(retry["index"], first["index"]);
    assert_eq!(
        c.nodes[&leader].kv.get("counter").expect("read").as_deref(),
        Some(&b"first"[..])
    );

    // Client id + sequence works the same way; a new sequence number is a new write.
    for (seq, value, duplicate) in [(1, "a", false), (1, "b", true), (2, "c", false)] {
        let (status, out) = send(
            client
                .post(format!("{}/v1/kv/seqd/cas", c.url(leader)))
                .insert_header(("X-Raftix-Client", "app-7"))
                .insert_header(("X-Raftix-Seq", seq.to_string())),
            Some(json!({"expected": null, "value": value})),
        )
        .await;
        assert_eq!(status, 200, "{out}");
        assert_eq!(
            out.get("duplicate").is_some(),
            duplicate,
            "seq {seq}: {out}"
        );
    }
    let (status, out) = send(
        client
            .put(format!("{}/v1/kv/x", c.url(leader)))
            .insert_header(("X-Raftix-Client", "app-7")),
        None,
    )
    .await;
    assert_eq!(
        (status, out["error"].clone()),
        (400, json!("bad_request")),
        "client id without a sequence"
    );
    c.shutdown().await;
}

#[actix_rt::test]
async fn concurrent_compare_and_set_lets_exactly_one_client_win_each_round() {
    let (c, leader, follower, client) = started().await;
    let base = [c.url(leader), c.url(follower)];
    // 8 clients race to advance a counter from n to n+1, through the leader and a follower.
    let rounds = 5;
    let mut winners_per_round: Vec<usize> = Vec::new();
    for round in 0..rounds {
        let mut winners = 0;
        let expected = if round == 0 {
            Value::Null
        } else {
            json!(round.to_string())
        };
        let attempts: Vec<_> = (0..8)
            .map(|i| {
                let req = client.post(format!("{}/v1/kv/counter/cas", base[i % 2]));
                send(
                    req,
                    Some(json!({"expected": expected, "value": (round + 1).to_string()})),
                )
            })
            .collect();
        for (status, out) in futures::future::join_all(attempts).await {
            assert_eq!(status, 200, "{out}");
            if out["swapped"] == json!(true) {
                winners += 1;
            } else {
                assert_eq!(
                    out["current"],
                    json!((round + 1).to_string()),
                    "a loser sees the winner's value"
                );
            }
        }
        winners_per_round.push(winners);
    }
    assert_eq!(
        winners_per_round,
        vec![1; rounds],
        "exactly one winner per round"
    );
    assert_eq!(
        c.nodes[&leader].kv.get("counter").expect("read").as_deref(),
        Some(rounds.to_string().as_bytes())
    );
    c.shutdown().await;
}

#[actix_rt::test]
async fn a_write_that_cannot_commit_in_time_answers_504_outcome_unknown() {
    // Check-quorum off: the cut-off leader keeps accepting writes it can never commit.
    let mut c = TestCluster::start_with(3, |cfg| {
        cfg.proposal_timeout_ms = 300;
        cfg.check_quorum = false;
    })
    .await;
    c.serve_http();
    let leader = c.wait_leader(&c.ids(), ELECTION).await;
    c.partition(&std::collections::BTreeSet::from([leader]))
        .await;
    let client = awc::Client::builder().disable_redirects().finish();
    let (status, out) = send(client.put(format!("{}/v1/kv/stuck", c.url(leader))), None).await;
    assert_eq!(
        (status, out["error"].clone()),
        (504, json!("outcome_unknown")),
        "{out}"
    );
    assert!(
        out["message"]
            .as_str()
            .unwrap_or_default()
            .contains("outcome"),
        "{out}"
    );
    c.shutdown().await;
}

#[actix_rt::test]
async fn reads_are_linearizable_by_default_and_stale_on_request() {
    let (c, leader, follower, client) = started().await;
    // Write through the leader, read at once through a follower: a linearizable read can never
    // miss an acknowledged write (the follower hands the read to the leader).
    for i in 0..20 {
        let resp = client
            .put(format!("{}/v1/kv/lin", c.url(leader)))
            .send_body(i.to_string())
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 200);
        let mut got = client
            .get(format!("{}/v1/kv/lin", c.url(follower)))
            .send()
            .await
            .expect("send");
        assert_eq!(got.status().as_u16(), 200);
        assert_eq!(got.body().await.expect("body"), i.to_string().as_bytes());
    }
    // The follower serves linearizable reads itself (it asks the leader for a read index and
    // waits for its own state machine): nothing is forwarded.
    let resp = client
        .get(format!("{}/v1/kv/lin", c.url(follower)))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        !resp.headers().contains_key("x-raftix-forwarded-to"),
        "served by the follower"
    );
    // consistency=all is the leader's to answer: the follower forwards it.
    let mut all = client
        .get(format!("{}/v1/kv/lin?consistency=all", c.url(follower)))
        .send()
        .await
        .expect("send");
    assert_eq!(all.status().as_u16(), 200);
    assert!(all.headers().contains_key("x-raftix-forwarded-to"));
    assert_eq!(all.body().await.expect("body"), "19".as_bytes());
    // A lease read on the leader sees the last write.
    let mut lease = client
        .get(format!("{}/v1/kv/lin?consistency=lease", c.url(leader)))
        .send()
        .await
        .expect("send");
    assert_eq!(lease.status().as_u16(), 200);
    assert_eq!(lease.body().await.expect("body"), "19".as_bytes());
    // A follower cut off from the leader: stale reads still answer (with the old value), while
    // linearizable reads refuse rather than risk a stale answer.
    c.partition(&std::collections::BTreeSet::from([follower]))
        .await;
    let resp = client
        .put(format!("{}/v1/kv/lin", c.url(leader)))
        .send_body("after partition")
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    let mut stale = client
        .get(format!("{}/v1/kv/lin?consistency=stale", c.url(follower)))
        .send()
        .await
        .expect("send");
    assert_eq!(stale.status().as_u16(), 200);
    assert_eq!(
        stale.body().await.expect("body"),
        "19".as_bytes(),
        "stale really is stale"
    );
    c.wait_until("the cut-off follower loses the leader", ELECTION, |s| {
        s[&follower].leader.is_none()
    })
    .await;
    let resp = client
        .get(format!("{}/v1/kv/lin", c.url(follower)))
        .send()
        .await
        .expect("send");
    assert_eq!(
        resp.status().as_u16(),
        503,
        "no leader: no linearizable read"
    );
    let (status, out) = send(
        client.get(format!("{}/v1/kv/lin?consistency=eventual", c.url(leader))),
        None,
    )
    .await;
    assert_eq!((status, out["error"].clone()), (400, json!("bad_request")));
    c.shutdown().await;
}

#[actix_rt::test]
async fn ack_all_with_a_voter_cut_off_answers_504_not_everywhere_but_commits() {
    let mut c = TestCluster::start_with(3, |cfg| cfg.proposal_timeout_ms = 400).await;
    c.serve_http();
    let leader = c.wait_leader(&c.ids(), ELECTION).await;
    let client = awc::Client::builder().disable_redirects().finish();
    // With every voter up, ack=all answers 200 once all applied it.
    let (status, out) = send(
        client.put(format!("{}/v1/kv/everywhere?ack=all", c.url(leader))),
        None,
    )
    .await;
    assert_eq!(status, 200, "{out}");
    for node in c.nodes.values() {
        assert_eq!(
            node.kv.get("everywhere").expect("read").as_deref(),
            Some(&b""[..]),
            "applied on every voter"
        );
    }
    let lonely = *c.ids().iter().find(|&&id| id != leader).expect("follower");
    c.partition(&std::collections::BTreeSet::from([lonely]))
        .await;
    let (status, out) = send(
        client.put(format!("{}/v1/kv/partial?ack=all", c.url(leader))),
        None,
    )
    .await;
    assert_eq!(
        (status, out["error"].clone()),
        (504, json!("not_everywhere")),
        "{out}"
    );
    assert!(
        out["message"]
            .as_str()
            .unwrap_or_default()
            .contains("committed"),
        "{out}"
    );
    // It IS committed: the majority has it, and the cut-off node gets it after healing.
    assert!(c.nodes[&leader].kv.get("partial").expect("read").is_some());
    c.heal().await;
    c.wait_until("the healed node applies it", ELECTION, |s| {
        s[&lonely].applied == s[&leader].commit
    })
    .await;
    assert!(c.nodes[&lonely].kv.get("partial").expect("read").is_some());
    c.shutdown().await;
}

#[actix_rt::test]
async fn transfer_leader_endpoint_hands_over_and_refuses_bad_targets() {
    let (c, leader, follower, client) = started().await;
    // Sent to a follower: forwarded to the leader, which hands over to the follower itself.
    let (status, out) = send(
        client.post(format!("{}/v1/cluster/transfer-leader", c.url(follower))),
        Some(json!({"to": follower})),
    )
    .await;
    assert_eq!(
        (status, out["leader"].clone()),
        (200, json!(follower)),
        "{out}"
    );
    c.wait_until("everyone follows the new leader", ELECTION, |s| {
        cluster::agreed_leader(s, &c.ids()) == Some(follower)
    })
    .await;
    // Empty body: the most up-to-date other voter.
    let resp = client
        .post(format!("{}/v1/cluster/transfer-leader", c.url(follower)))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    let (status, out) = send(
        client.post(format!("{}/v1/cluster/transfer-leader", c.url(leader))),
        Some(json!({"to": 99})),
    )
    .await;
    assert_eq!(
        (status, out["error"].clone()),
        (400, json!("bad_request")),
        "{out}"
    );
    let resp = client
        .post(format!("{}/v1/cluster/transfer-leader", c.url(leader)))
        .insert_header(("content-type", "application/json"))
        .send_body("{not json")
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 400);
    c.shutdown().await;
}
