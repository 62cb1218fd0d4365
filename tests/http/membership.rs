//! Membership and admin routes over real HTTP on an in-process cluster: adding a learner,
//! promoting, demoting and removing it (on the leader and through a forwarding follower), their
//! error answers, `POST /v1/admin/snapshot` and `GET /v1/admin/backup`.

use crate::requests::{self, client};
use crate::support::cluster;
use crate::support::extra_node;
use crate::support::wait::{check, wait_until, wait_until_async};

use std::time::{Duration, Instant};

use cluster::TestCluster;
use raftix::state_machine::StateMachine;
use raftix::storage::{open_payload, read_snapshot_info, KvStateMachine};
use serde_json::{json, Value};

const ELECTION: Duration = Duration::from_secs(5);
const CATCH_UP: Duration = Duration::from_secs(20);

/// Sends `req` (with a JSON body, or none) and returns the status and the JSON answer.
async fn send(req: awc::ClientRequest, body: Option<Value>) -> (u16, Value) {
    let (status, _, bytes) = requests::send(req, body).await;
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, value)
}

/// Repeats a membership request while it answers 409 (not caught up) or 503 (another change in
/// progress), up to a deadline; returns the final answer.
async fn until_accepted(
    make: impl Fn() -> awc::ClientRequest,
    body: Option<Value>,
) -> (u16, Value) {
    let deadline = Instant::now() + CATCH_UP;
    loop {
        let (status, out) = send(make(), body.clone()).await;
        if !matches!(status, 409 | 503) || Instant::now() > deadline {
            return (status, out);
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A 3-node cluster with gateways, its leader, and a follower that knows the leader's address.
async fn started() -> (TestCluster, u64, u64) {
    let mut c = TestCluster::start(3).await;
    c.serve_http();
    let (leader, follower) = c.leader_and_informed_follower(ELECTION).await;
    (c, leader, follower)
}

/// The member `id` in `GET /v1/cluster` of `url`, if listed.
async fn member(url: &str, id: u64) -> Option<Value> {
    let (status, view) = send(client().get(format!("{url}/v1/cluster")), None).await;
    assert_eq!(status, 200, "{view}");
    view["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["id"] == id)
        .cloned()
}

/// Polls until `cond` holds for member `id` as `url` sees it (or its absence), or panics.
async fn wait_member(url: &str, id: u64, what: &str, cond: impl Fn(Option<&Value>) -> bool) {
    let cond = &cond;
    wait_until_async(CATCH_UP, what, || async move {
        let m = member(url, id).await;
        check(cond(m.as_ref()), m)
    })
    .await
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .expect("array of ids")
        .iter()
        .map(|x| x.as_u64().expect("id"))
        .collect()
}

#[actix_rt::test]
async fn a_learner_is_added_caught_up_promoted_demoted_and_removed() {
    let (c, leader, follower) = started().await;
    let (leader_url, follower_url) = (c.url(leader), c.url(follower));
    for i in 0..20 {
        c.put(leader, &format!("k{i}"), &format!("v{i}"))
            .await
            .expect("put");
    }
    let ports = extra_node::bind().await;
    let peer_addr = ports.2.clone();

    // Added through a follower (forwarded to the leader), with the `addr` alias.
    let (status, out) = send(
        client().post(format!("{follower_url}/v1/cluster/learners")),
        Some(json!({"id": 4, "addr": peer_addr})),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["changed"], json!(true));
    assert_eq!(ids(&out["voters"]), [1, 2, 3]);
    assert_eq!(ids(&out["learners"]), [4]);
    assert_eq!(out["members"]["4"], json!(peer_addr));
    assert!(out["index"].as_u64().expect("index") > 20);

    // The node starts as a learner, is listed as one and catches up without voting.
    let learner = extra_node::start_learner(&c, 4, ports);
    wait_member(
        &leader_url,
        4,
        "node 4 listed as a caught-up learner",
        |m| m.is_some_and(|m| m["suffrage"] == "learner" && m["lag"] == json!(0)),
    )
    .await;
    wait_until(CATCH_UP, "the learner to get k19", || {
        check(
            learner.kv.get("k19").expect("read").is_some(),
            "k19 missing",
        )
    });
    let status = learner.handle.status().await.expect("status");
    assert_eq!(status.learners, [4]);
    assert_eq!(status.leader, Some(leader));

    // Promoted on the leader.
    let (status, out) = until_accepted(
        || client().post(format!("{leader_url}/v1/cluster/voters/4")),
        None,
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(ids(&out["voters"]), [1, 2, 3, 4]);
    assert!(ids(&out["learners"]).is_empty());
    wait_member(&follower_url, 4, "node 4 a voter", |m| {
        m.is_some_and(|m| m["suffrage"] == "voter")
    })
    .await;
    // Promoting a voter again changes nothing.
    let (status, out) = send(
        client().post(format!("{leader_url}/v1/cluster/voters/4")),
        None,
    )
    .await;
    assert_eq!(
        (status, out["changed"].clone()),
        (200, json!(false)),
        "{out}"
    );

    // Demoted through a follower.
    let (status, out) = until_accepted(
        || client().delete(format!("{follower_url}/v1/cluster/voters/4")),
        None,
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(ids(&out["learners"]), [4]);
    assert_eq!(ids(&out["voters"]), [1, 2, 3]);
    wait_member(&leader_url, 4, "node 4 a learner again", |m| {
        m.is_some_and(|m| m["suffrage"] == "learner")
    })
    .await;

    // Removed; removing it again is not an error but changes nothing.
    let (status, out) = until_accepted(
        || client().delete(format!("{follower_url}/v1/cluster/members/4")),
        None,
    )
    .await;
    assert_eq!(
        (status, out["changed"].clone()),
        (200, json!(true)),
        "{out}"
    );
    assert!(out["members"].get("4").is_none(), "{out}");
    assert!(ids(&out["learners"]).is_empty());
    wait_member(&leader_url, 4, "node 4 gone", |m| m.is_none()).await;
    let (status, out) = send(
        client().delete(format!("{leader_url}/v1/cluster/members/4")),
        None,
    )
    .await;
    assert_eq!(
        (status, out["changed"].clone()),
        (200, json!(false)),
        "{out}"
    );

    learner.handle.shutdown().await;
    c.shutdown().await;
}

#[actix_rt::test]
async fn bad_membership_requests_get_json_errors() {
    let (c, leader, follower) = started().await;
    let url = c.url(leader);
    let learners = || client().post(format!("{url}/v1/cluster/learners"));
    let cases = [
        (json!({"peer_addr": "127.0.0.1:7009"}), "id is required"),
        (
            json!({"id": 0, "peer_addr": "127.0.0.1:7009"}),
            "greater than 0",
        ),
        (json!({"id": 9}), "peer_addr is required"),
        (json!({"id": 9, "peer_addr": " "}), "peer_addr is required"),
        (json!({"id": 9, "peer_addr": "no-port"}), "peer_addr"),
        (
            json!({"id": 9, "peer_addr": "h:1", "x": 1}),
            "unknown field",
        ),
    ];
    for (body, needle) in cases {
        let (status, out) = send(learners(), Some(body.clone())).await;
        assert_eq!(
            (status, out["error"].clone()),
            (400, json!("bad_request")),
            "{body}: {out}"
        );
        let message = out["message"].as_str().expect("message");
        assert!(message.contains(needle), "{body}: {message}");
    }
    let (status, out) = send(learners().content_type("application/json"), None).await;
    assert_eq!(
        (status, out["error"].clone()),
        (400, json!("bad_request")),
        "{out}"
    );

    // A voter cannot be added as a learner: 409 (also when forwarded by a follower).
    for base in [c.url(leader), c.url(follower)] {
        let (status, out) = send(
            client().post(format!("{base}/v1/cluster/learners")),
            Some(json!({"id": 1, "peer_addr": "127.0.0.1:7009"})),
        )
        .await;
        assert_eq!(
            (status, out["error"].clone()),
            (409, json!("conflict")),
            "{out}"
        );
        assert!(out["message"]
            .as_str()
            .expect("message")
            .contains("already a voter"));
    }
    // Unknown members: 404; ids that are not ids: 400; the last voter cannot leave: not here.
    for (method, path) in [("POST", "voters/9"), ("DELETE", "voters/9")] {
        let req = client().request(
            method.parse().expect("method"),
            format!("{url}/v1/cluster/{path}"),
        );
        let (status, out) = send(req, None).await;
        assert_eq!(
            (status, out["error"].clone()),
            (404, json!("not_found")),
            "{path}: {out}"
        );
    }
    for path in ["voters/abc", "voters/0", "members/-1"] {
        let (status, out) = send(client().delete(format!("{url}/v1/cluster/{path}")), None).await;
        assert_eq!(
            (status, out["error"].clone()),
            (400, json!("bad_request")),
            "{path}: {out}"
        );
    }
    let (status, out) = send(client().get(format!("{url}/v1/cluster/learners")), None).await;
    assert_eq!(
        (status, out["error"].clone()),
        (405, json!("method_not_allowed"))
    );

    // A learner far behind cannot be promoted: 409 saying how far behind. Node 9 never runs, so
    // it holds nothing while the log grows past the promotion threshold.
    let (status, out) = send(
        learners(),
        Some(json!({"id": 9, "peer_addr": "127.0.0.1:9"})),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let keys: Vec<String> = (0..600).map(|i| format!("w{i}")).collect();
    let writes = keys.iter().map(|key| c.put(leader, key, "x"));
    for result in futures::future::join_all(writes).await {
        result.expect("put");
    }
    let (status, out) = send(client().post(format!("{url}/v1/cluster/voters/9")), None).await;
    assert_eq!(
        (status, out["error"].clone()),
        (409, json!("conflict")),
        "{out}"
    );
    let message = out["message"].as_str().expect("message");
    // Learner 9 was never started: the refusal says that, not a distance.
    assert!(
        message.contains("learner 9 has never answered the leader"),
        "{message}"
    );
    let (status, out) = until_accepted(
        || client().delete(format!("{url}/v1/cluster/members/9")),
        None,
    )
    .await;
    assert_eq!(
        (status, out["changed"].clone()),
        (200, json!(true)),
        "{out}"
    );
    c.shutdown().await;
}

#[actix_rt::test]
async fn snapshot_and_backup_are_served_by_the_node_asked() {
    let (c, leader, follower) = started().await;
    let mut last = 0;
    for i in 0..30 {
        last = c
            .put(leader, &format!("b{i}"), &format!("value {i}"))
            .await
            .expect("put")
            .log_id
            .index;
    }
    c.wait_until("the follower applied every write", ELECTION, |s| {
        s[&follower].applied >= last
    })
    .await;

    for id in [leader, follower] {
        let (status, out) = send(
            client().post(format!("{}/v1/admin/snapshot", c.url(id))),
            None,
        )
        .await;
        assert_eq!(status, 200, "{out}");
        assert!(out["index"].as_u64().expect("index") >= last, "{out}");
        assert!(out["term"].as_u64().expect("term") >= 1);
        assert_eq!(ids(&out["voters"]), [1, 2, 3]);
        assert!(ids(&out["learners"]).is_empty());
        let path = out["path"].as_str().expect("path");
        let info = read_snapshot_info(std::path::Path::new(path)).expect("snapshot file verifies");
        assert_eq!(Some(info.size), out["size"].as_u64());
        assert!(path.starts_with(c.nodes[&id].config.data_dir.to_str().expect("utf-8")));
    }

    // The backup of the follower: the snapshot file, which verifies and holds every key.
    let mut resp = client()
        .get(format!("{}/v1/admin/backup", c.url(follower)))
        .send()
        .await
        .expect("backup");
    assert_eq!(resp.status().as_u16(), 200);
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let index: u64 = header("x-raft-index").parse().expect("X-Raft-Index");
    let term: u64 = header("x-raft-term").parse().expect("X-Raft-Term");
    assert!(index >= last);
    assert_eq!(header("content-type"), "application/octet-stream");
    assert_eq!(
        header("content-disposition"),
        format!("attachment; filename=\"raftix-backup-{index}.snap\"")
    );
    let bytes = resp.body().limit(64 << 20).await.expect("backup body");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("backup.snap");
    std::fs::write(&file, &bytes).expect("write backup");
    let info = read_snapshot_info(&file).expect("the backup verifies");
    assert_eq!((info.meta.last.index, info.meta.last.term), (index, term));
    assert_eq!(info.size, bytes.len() as u64);
    let sm_dir = dir.path().join("sm");
    std::fs::create_dir_all(&sm_dir).expect("sm dir");
    let mut machine = KvStateMachine::open(&sm_dir, 64 << 20).expect("kv");
    let mut payload = open_payload(&info).expect("payload");
    machine.restore(index, &mut payload).expect("restore");
    let reader = machine.reader();
    for i in 0..30 {
        let value = reader.get(&format!("b{i}")).expect("read");
        assert_eq!(value.as_deref(), Some(format!("value {i}").as_bytes()));
    }
    c.shutdown().await;
}
