//! `sync` and `semi-sync` write acknowledgement under a cut and a slow link (issue 8), with
//! three regions (each a 3-node `raftix serve` cluster on loopback, linked through proxies the
//! test controls); `us` is the primary region.
//!
//! - `?replication=sync` with every link up: 200, `"replicated": true`, acknowledged by both
//!   other regions; with the link to `ap` cut: 202 within the timeout, `"committed": true`,
//!   `"replicated": false`, `"pending": ["ap"]`.
//! - `?replication=semi-sync` with the primary's link up and `ap`'s cut: 200, acknowledged by
//!   `us`; with the primary's link cut: 202 naming `us`.
//! - The region's default mode (`PUT /v1/regions/replication`) applies to writes without
//!   `?replication=`.
//! - A slow link to the primary: semi-sync waits for it (the answer takes at least the link's
//!   delay) and still answers 200; async does not wait; a link slower than the timeout gets a
//!   202 at the timeout, and the write still arrives.
//! - Through a follower, with a timeout longer than the follower's forwarding timeout, the
//!   leader's 202 is relayed (not a 504).

use crate::support::process;
use crate::support::regions;

use std::time::{Duration, Instant};

use regions::{Regions, CONVERGE};
use reqwest::StatusCode;
use serde_json::{json, Value};

const EU: usize = 0;
const US: usize = 1;
const AP: usize = 2;

/// The write acknowledgement timeout set for the cut cases.
const TIMEOUT_MS: u64 = 1000;

/// A write through eu's node 2 (a follower or the leader) with `query`; (status, body, time taken).
fn write(regions: &Regions, key: &str, query: &str) -> (StatusCode, Value, Duration) {
    let start = Instant::now();
    let (status, body) = regions
        .put(EU, 2, key, "v", query)
        .unwrap_or_else(|| regions.fail(&format!("PUT {key}?{query}: no answer")));
    (status, body, start.elapsed())
}

/// Sets every region's replication `mode` (`async`, `semi-sync`, `sync`) and how long a write
/// waits for the other regions before answering 202 (`PUT /v1/regions/replication`).
fn set_replication(regions: &Regions, mode: &str, timeout_ms: u64) {
    regions.configure_all(
        "PUT",
        "/v1/regions/replication",
        json!({"mode": mode, "timeout_ms": timeout_ms}),
    );
}

fn names(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn sync_and_semi_sync_keep_their_promise_under_cut_and_slow_links() {
    let regions = Regions::start(&["eu", "us", "ap"]);
    regions.configure_all("PUT", "/v1/regions/primary", json!({"id": "us"}));
    set_replication(&regions, "async", TIMEOUT_MS);
    regions.wait_replicated(CONVERGE);

    // Every link up: sync answers 200 once both other regions acknowledged.
    let (status, body, _) = write(&regions, "sync/up", "replication=sync");
    assert_eq!(status, StatusCode::OK, "{body}");
    let rep = &body["replication"];
    assert_eq!(rep["mode"], "sync", "{body}");
    assert_eq!(rep["committed"], true, "{body}");
    assert_eq!(rep["replicated"], true, "{body}");
    assert_eq!(names(&rep["acknowledged_by"]), ["ap", "us"], "{body}");
    assert!(names(&rep["pending"]).is_empty(), "{body}");
    // Acknowledged means applied there: every node of us and ap has it soon, and the leaders now.
    for r in [US, AP] {
        let leader = regions.leader(r);
        let read = regions.read(r, leader, "sync/up").expect("read");
        assert_eq!(
            read.value.as_deref(),
            Some(&b"v"[..]),
            "sync/up on {}'s leader",
            regions.names[r]
        );
    }

    // The link to ap cut: sync times out with 202, committed here, pending ap.
    regions.cut(EU, AP);
    let (status, body, took) = write(&regions, "sync/ap-cut", "replication=sync");
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let rep = &body["replication"];
    assert_eq!(rep["committed"], true, "{body}");
    assert_eq!(rep["replicated"], false, "{body}");
    assert_eq!(names(&rep["pending"]), ["ap"], "{body}");
    assert_eq!(names(&rep["acknowledged_by"]), ["us"], "{body}");
    assert!(
        took >= Duration::from_millis(TIMEOUT_MS)
            && took < Duration::from_millis(TIMEOUT_MS + 2000),
        "202 after {took:?}, timeout {TIMEOUT_MS} ms"
    );
    // Committed locally: eu reads it.
    let leader = regions.leader(EU);
    assert_eq!(
        regions
            .read(EU, leader, "sync/ap-cut")
            .and_then(|r| r.value)
            .as_deref(),
        Some(&b"v"[..])
    );

    // Through a follower, with a timeout longer than the follower's forwarding timeout
    // (proposal timeout + 1 s): the follower relays the leader's 202, it does not give up first
    // with a 504 "may or may not be applied" on a write that is committed.
    let long_ms = process::PROPOSAL_TIMEOUT_MS + 2500;
    set_replication(&regions, "async", long_ms);
    let follower = regions.clusters[EU]
        .ids()
        .into_iter()
        .find(|&id| id != regions.leader(EU))
        .expect("a follower");
    let start = Instant::now();
    let (status, body) = regions
        .put(EU, follower, "sync/via-follower", "v", "replication=sync")
        .unwrap_or_else(|| regions.fail("PUT sync/via-follower: no answer"));
    let took = start.elapsed();
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "through follower {follower}: {body}"
    );
    assert_eq!(names(&body["replication"]["pending"]), ["ap"], "{body}");
    assert!(
        took >= Duration::from_millis(long_ms),
        "202 after {took:?}, timeout {long_ms} ms"
    );
    set_replication(&regions, "async", TIMEOUT_MS);

    // semi-sync: the primary (us) is reachable, ap is not: 200.
    let (status, body, _) = write(&regions, "semi/ap-cut", "replication=semi-sync");
    assert_eq!(status, StatusCode::OK, "{body}");
    let rep = &body["replication"];
    assert_eq!(rep["mode"], "semi-sync", "{body}");
    assert_eq!(rep["replicated"], true, "{body}");
    assert_eq!(names(&rep["acknowledged_by"]), ["us"], "{body}");

    // The primary's link cut too: semi-sync answers 202 naming us.
    regions.cut(EU, US);
    let (status, body, took) = write(&regions, "semi/us-cut", "replication=semi-sync");
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["replication"]["replicated"], false, "{body}");
    assert_eq!(names(&body["replication"]["pending"]), ["us"], "{body}");
    assert!(
        took < Duration::from_millis(TIMEOUT_MS + 2000),
        "202 after {took:?}"
    );

    // The region's default mode applies without ?replication=.
    set_replication(&regions, "sync", TIMEOUT_MS);
    let (status, body, _) = write(&regions, "default/cut", "");
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["replication"]["mode"], "sync", "{body}");
    assert_eq!(
        names(&body["replication"]["pending"]),
        ["ap", "us"],
        "{body}"
    );
    // async (asked) does not wait.
    let (status, body, _) = write(&regions, "async/cut", "replication=async");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("replication").is_none(), "{body}");

    // Healed: everything written meanwhile arrives, and sync answers 200 again.
    regions.heal(EU, US);
    regions.heal(EU, AP);
    regions.wait_replicated(CONVERGE);
    for key in [
        "sync/ap-cut",
        "semi/ap-cut",
        "semi/us-cut",
        "default/cut",
        "async/cut",
    ] {
        regions.wait_value_everywhere(key, Some("v"), CONVERGE);
    }
    let (status, body, _) = write(&regions, "default/healed", "");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["replication"]["replicated"], true, "{body}");

    // A slow link to the primary: semi-sync waits for it and answers 200.
    let delay = Duration::from_millis(400);
    set_replication(&regions, "async", 10_000);
    regions.set_delay(EU, US, delay);
    let (status, body, took) = write(&regions, "semi/slow", "replication=semi-sync");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["replication"]["replicated"], true, "{body}");
    assert!(
        took >= delay,
        "semi-sync answered after {took:?}, before the slow link ({delay:?}) could carry the write"
    );
    let (status, body, took) = write(&regions, "async/slow", "replication=async");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(took < delay, "async waited {took:?} for the slow link");
    // A link slower than the timeout: semi-sync answers 202 at the timeout, pending the primary.
    set_replication(&regions, "async", TIMEOUT_MS);
    regions.set_delay(EU, US, Duration::from_millis(TIMEOUT_MS + 1000));
    let (status, body, took) = write(&regions, "semi/too-slow", "replication=semi-sync");
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["replication"]["replicated"], false, "{body}");
    assert_eq!(names(&body["replication"]["pending"]), ["us"], "{body}");
    assert!(
        took >= Duration::from_millis(TIMEOUT_MS)
            && took < Duration::from_millis(TIMEOUT_MS + 2000),
        "202 after {took:?}, timeout {TIMEOUT_MS} ms"
    );
    // Slow is not lost: it arrives.
    regions.set_delay(EU, US, Duration::ZERO);
    regions.wait_value_everywhere("semi/too-slow", Some("v"), CONVERGE);
}
