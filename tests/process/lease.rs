//! Lease reads under a paused leader: the leader is stopped (SIGSTOP) past its lease, a new
//! leader is elected and takes a write, then the old leader resumes. No read it serves may
//! return the value from before the new write, at any consistency level except `stale`.

use crate::support::process;

use std::time::{Duration, Instant};

use process::{http_client, ProcCluster};

#[test]
fn a_paused_leader_serves_no_stale_lease_read_after_a_new_leader_wrote() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = ProcCluster::start(3, dir);
    let (old_leader, old_term) = cluster.wait_leader(Duration::from_secs(10));
    let http = http_client();
    let client = cluster.client();
    let put = |node: u64, value: &str| {
        http.put(format!("{}/v1/kv/k?redirect=true", client.base(node)))
            .body(value.to_string())
            .send()
    };
    assert_eq!(put(old_leader, "old").expect("put").status().as_u16(), 200);
    // The leader holds a lease: a lease read is served locally.
    let lease = http
        .get(format!(
            "{}/v1/kv/k?consistency=lease",
            client.base(old_leader)
        ))
        .send()
        .expect("get");
    assert_eq!(
        (lease.status().as_u16(), lease.text().unwrap_or_default()),
        (200, "old".to_string())
    );

    cluster.signal(old_leader, libc::SIGSTOP);
    let others: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|&id| id != old_leader)
        .collect();
    let new_leader = cluster.wait_for(
        Duration::from_secs(10),
        "a new leader among the others",
        || {
            others.iter().copied().find(|&id| {
                cluster
                    .status(id)
                    .is_some_and(|s| s["role"] == "LEADER" && s["term"].as_u64() > Some(old_term))
            })
        },
    );
    assert_eq!(put(new_leader, "new").expect("put").status().as_u16(), 200);
    cluster.signal(old_leader, libc::SIGCONT);

    // Straight after resuming, the old leader still believes it leads: it must not answer from
    // its (expired) lease or its stale state machine.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut answered = 0;
    while Instant::now() < deadline {
        for level in ["lease", "linearizable"] {
            let url = format!("{}/v1/kv/k?consistency={level}", client.base(old_leader));
            if let Ok(resp) = http.get(url).send() {
                let status = resp.status().as_u16();
                let body = resp.text().unwrap_or_default();
                if status == 200 {
                    answered += 1;
                    assert_eq!(
                        body, "new",
                        "stale {level} read served by the resumed old leader"
                    );
                }
            }
        }
    }
    assert!(
        answered > 0,
        "the resumed node never answered a read:\n{}",
        cluster.log_tails()
    );
    // And a stale read there may lag, but converges to the new value.
    cluster.wait_for(
        Duration::from_secs(10),
        "the old leader applies the new write",
        || {
            let resp = http
                .get(format!(
                    "{}/v1/kv/k?consistency=stale",
                    client.base(old_leader)
                ))
                .send()
                .ok()?;
            (resp.text().ok()? == "new").then_some(())
        },
    );
}
