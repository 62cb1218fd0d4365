//! Graceful shutdown: SIGTERM to the leader of a real 3-node cluster under write load. Every
//! in-flight request must finish (200, and then its write survives) or fail cleanly (a JSON
//! error, or a refused connection); the process exits 0 and restarts from a sound data dir.

use crate::support::process;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use process::{http_client, ProcCluster};

#[derive(Debug, Default)]
struct Tally {
    acked: Vec<(String, String)>,
    json_errors: usize,
    refused: usize,
    /// Errors after the request may have reached the node (reset, timeout): outcome unknown.
    cut: Vec<String>,
    malformed: Vec<String>,
}

#[test]
fn sigterm_on_the_leader_under_load_finishes_or_cleanly_fails_every_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cluster = ProcCluster::start(3, dir);
    let (leader, _) = cluster.wait_leader(Duration::from_secs(10));
    let client = cluster.client();
    let url = client.base(leader);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (tally, stop, acks, url) = (tally.clone(), stop.clone(), acks.clone(), url.clone());
            thread::spawn(move || {
                let http = http_client();
                let mut n = 0;
                let mut refused_in_a_row = 0;
                while !stop.load(Ordering::SeqCst) && refused_in_a_row < 20 {
                    let key = format!("w{w}-{n}");
                    let value = format!("v{n}");
                    n += 1;
                    // ?redirect=true: the leader answers itself, never forwards.
                    let result = http
                        .put(format!("{url}/v1/kv/{key}?redirect=true"))
                        .body(value.clone())
                        .send();
                    let mut t = tally.lock().expect("tally");
                    match result {
                        Ok(resp) => {
                            refused_in_a_row = 0;
                            let status = resp.status().as_u16();
                            let body = resp.text().unwrap_or_default();
                            let json: Option<serde_json::Value> = serde_json::from_str(&body).ok();
                            match (status, json) {
                                (200, Some(j)) if j["index"].is_u64() => {
                                    t.acked.push((key, value));
                                    acks.fetch_add(1, Ordering::SeqCst);
                                }
                                (s, Some(j)) if s >= 300 && j["error"].is_string() => {
                                    t.json_errors += 1
                                }
                                (s, _) => t.malformed.push(format!("{s}: {body}")),
                            }
                        }
                        Err(e) if e.is_connect() => {
                            t.refused += 1;
                            refused_in_a_row += 1;
                            drop(t);
                            thread::sleep(Duration::from_millis(5));
                        }
                        Err(e) => t.cut.push(e.to_string()),
                    }
                }
            })
        })
        .collect();

    cluster.wait_for(
        Duration::from_secs(20),
        "200 acknowledged writes before SIGTERM",
        || (acks.load(Ordering::SeqCst) >= 200).then_some(()),
    );
    let status = cluster.sigterm(leader);
    assert!(
        status.success(),
        "the leader must exit 0 on SIGTERM: {status}\n{}",
        cluster.log_tails()
    );
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().expect("client thread");
    }
    let tally = Arc::try_unwrap(tally)
        .expect("sole owner")
        .into_inner()
        .expect("lock");
    assert!(
        tally.malformed.is_empty(),
        "answers that are neither 200 nor a JSON error: {:?}",
        tally.malformed
    );
    assert!(tally.acked.len() >= 200);

    // Restart: the data dir is sound, and every acknowledged write is on every node.
    cluster.restart(leader);
    let max_index = cluster.wait_leader(Duration::from_secs(10));
    let _ = max_index;
    let applied = cluster.wait_converged(tally.acked.len() as u64, Duration::from_secs(20));
    assert!(applied as usize >= tally.acked.len());
    for id in cluster.ids() {
        for (key, value) in &tally.acked {
            assert_eq!(
                cluster.get(id, key).as_deref(),
                Some(value.as_bytes()),
                "node {id} lost acknowledged {key}"
            );
        }
    }
    eprintln!(
        "{} acknowledged, {} JSON errors, {} refused, {} cut in flight",
        tally.acked.len(),
        tally.json_errors,
        tally.refused,
        tally.cut.len()
    );
}

#[test]
fn a_leader_stopped_with_sigterm_hands_leadership_over_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cluster = ProcCluster::start(3, dir);
    let (leader, term) = cluster.wait_leader(Duration::from_secs(10));
    let status = cluster.sigterm(leader);
    assert!(status.success(), "exit status {status}");
    let log = std::fs::read_to_string(&cluster.node(leader).log_path).unwrap_or_default();
    assert!(
        log.contains("handed leadership to node"),
        "no handover logged:\n{}",
        cluster.log_tails()
    );
    // The new leader took office before the old one exited: it is there at once, in a later term.
    let others: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|&id| id != leader)
        .collect();
    let statuses: Vec<serde_json::Value> =
        others.iter().filter_map(|&id| cluster.status(id)).collect();
    let new_leader = statuses.iter().find(|s| s["role"] == "LEADER");
    assert!(
        new_leader.is_some_and(|s| s["term"].as_u64() > Some(term)),
        "{statuses:?}"
    );
}
