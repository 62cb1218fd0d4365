//! The embedding facade (`raftix::manager::ConsensusManager`) with two one-node regions in one
//! process: region management, apply callbacks that see changes shipped from the other region,
//! a custom conflict resolver registered by the application, replication status and conflict
//! statistics.

use crate::support::wait::wait_until_async;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use raftix::config::NodeConfig;
use raftix::manager::{ConsensusManager, ManagerBuilder};
use raftix::regions::{ConflictPolicy, Strategy};
use raftix::storage::AppliedChange;

const WAIT: Duration = Duration::from_secs(20);

/// The longer value wins; equal lengths: the greater bytes (deterministic, commutative).
fn longest(_key: &str, a: &Bytes, b: &Bytes) -> Option<Bytes> {
    Some(if (a.len(), a) >= (b.len(), b) {
        a.clone()
    } else {
        b.clone()
    })
}

struct Region {
    manager: ConsensusManager,
    http: String,
    changes: Arc<Mutex<Vec<AppliedChange>>>,
}

async fn region(dir: &std::path::Path, name: &str, ports: &[u16]) -> Region {
    let (peer, http) = (
        format!("127.0.0.1:{}", ports[0]),
        format!("127.0.0.1:{}", ports[1]),
    );
    let mut config = NodeConfig::with_defaults(
        1,
        dir.join(name),
        peer.clone(),
        http.clone(),
        [(1, peer)].into(),
    );
    config.region = Some(name.to_string());
    let changes = Arc::new(Mutex::new(Vec::new()));
    let seen = changes.clone();
    let manager = ManagerBuilder::new(config)
        .resolver("longest", Arc::new(longest))
        .on_apply(move |batch| seen.lock().expect("lock").extend_from_slice(batch))
        .start()
        .await
        .expect("start");
    Region {
        manager,
        http,
        changes,
    }
}

async fn until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    wait_until_async(WAIT, what, || {
        let seen = probe();
        async move { seen.ok_or("not yet") }
    })
    .await
}

async fn until_leader(r: &Region) {
    wait_until_async(WAIT, "a leader taking writes", || async {
        r.manager
            .put("warmup", "1")
            .await
            .map_err(|e| e.to_string())
    })
    .await;
}

#[actix_rt::test]
async fn two_regions_through_the_facade_converge_with_a_custom_resolver() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = raftix_testkit::chaos::net::free_ports(4).expect("ports");
    let eu = region(dir.path(), "eu", &ports[0..2]).await;
    let us = region(dir.path(), "us", &ports[2..4]).await;
    until_leader(&eu).await;
    until_leader(&us).await;
    let policy = ConflictPolicy {
        default: Strategy::LatestTimestamp,
        prefixes: [("s/".to_string(), Strategy::Custom("longest".into()))].into(),
    };
    // Linked to nowhere first: the writes below are concurrent.
    for (r, other) in [(&eu, "us"), (&us, "eu")] {
        r.manager
            .add_region(other, vec!["127.0.0.1:1".into()])
            .await
            .expect("add region");
        r.manager
            .set_conflict_policy(policy.clone())
            .await
            .expect("policy");
    }
    eu.manager
        .put("s/name", "a-longer-name")
        .await
        .expect("put");
    us.manager.put("s/name", "short").await.expect("put");
    us.manager.put("only-us", "u").await.expect("put");
    // Heal: the real endpoints.
    eu.manager
        .add_region("us", vec![us.http.clone()])
        .await
        .expect("link");
    us.manager
        .add_region("eu", vec![eu.http.clone()])
        .await
        .expect("link");
    for r in [&eu, &us] {
        until("s/name to converge on the longer value", || {
            (r.manager.get("s/name").ok()?? == "a-longer-name").then_some(())
        })
        .await;
    }
    until("only-us to reach eu", || eu.manager.get("only-us").ok()?).await;
    // The application's resolver decided, and both regions counted the conflict.
    for r in [&eu, &us] {
        let (stats, unresolved) = r.manager.conflict_stats().expect("stats");
        assert_eq!(
            stats.by_strategy.get("custom:longest"),
            Some(&1),
            "{stats:?}"
        );
        assert_eq!((stats.failed, unresolved), (0, 0));
    }
    // eu's apply callback saw us's write arrive, marked with its origin.
    let seen = eu.changes.lock().expect("lock").clone();
    assert!(
        seen.iter().any(|c| c.key == "only-us"
            && c.origin.as_deref() == Some("us")
            && c.value == Some(Bytes::from("u"))),
        "{seen:?}"
    );
    assert!(seen.iter().any(|c| c.key == "s/name" && c.origin.is_none()));
    // Status: eu's outbox is acknowledged by us.
    let status = until("us to acknowledge eu's outbox", || {
        let s = eu.manager.replication_status().ok()?;
        (s.len() == 1 && s[0].lag_entries == 0 && s[0].link.connected).then_some(s)
    })
    .await;
    assert_eq!(status[0].id, "us");
    assert!(status[0].acked >= 1);
    eu.manager.stop().await;
    us.manager.stop().await;
}
