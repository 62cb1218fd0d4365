//! What verifying every checksum at start costs (docs/security.md, "Integrity at rest"): a data
//! dir with a 1 M-entry log and a state machine of 1 M keys is built directly through the
//! storage layer, then the two verification passes are timed, and so is a real `raftix serve`
//! from its start to its first `GET /healthz` answer.
//!
//! Ignored by default (it writes about 600 MB and wants a release build):
//! `cargo test --release --test integrity_startup_cost -- --ignored --nocapture`.
//! `INTEGRITY_ENTRIES` changes the size. It fails if verification is pathologically slow (over
//! 10 s per million entries plus million keys), not on ordinary noise.

use crate::support::process;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use raftix::core::{Entry, EntryPayload, HardState};
use raftix::state_machine::StateMachine;
use raftix::storage::{DataDir, KvCommand, KvRequest, KvStateMachine, LmdbLog, PersistOp};

const MAP_SIZE: usize = 4 << 30;
const BATCH: u64 = 10_000;

fn entry(index: u64) -> Entry {
    let request = KvRequest {
        request_id: None,
        issued_at_ms: 1_700_000_000_000 + index,
        command: KvCommand::Put {
            key: format!("key-{index:010}"),
            value: Bytes::from(format!("{index:0>100}")),
        },
    };
    Entry {
        term: 1,
        index,
        payload: EntryPayload::Command(request.encode()),
    }
}

#[test]
#[ignore = "writes about 600 MB; run in release, see the module docs"]
fn startup_verification_cost_on_a_million_entries() {
    let entries: u64 = std::env::var("INTEGRITY_ENTRIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("node1");
    let data_dir = DataDir::prepare(&root, "raftix", 1).expect("data dir");

    let started = Instant::now();
    {
        let mut log = LmdbLog::open(data_dir.log_path(), MAP_SIZE).expect("open log");
        let mut machine = KvStateMachine::open(data_dir.sm_path(), MAP_SIZE).expect("open sm");
        let mut first = 1;
        while first <= entries {
            let last = (first + BATCH - 1).min(entries);
            let batch: Vec<Entry> = (first..=last).map(entry).collect();
            let op = PersistOp {
                hard_state: (first == 1).then_some(HardState {
                    term: 1,
                    voted_for: Some(1),
                }),
                entries: batch.clone(),
                ..PersistOp::default()
            };
            log.write(&[op]).expect("write log");
            machine.apply(&batch).expect("apply");
            first = last + 1;
        }
    }
    eprintln!(
        "built {entries} entries and keys in {:?}",
        started.elapsed()
    );
    let du = |path: &std::path::Path| {
        std::fs::metadata(path.join("data.mdb")).map_or(0, |m| m.len()) >> 20
    };
    eprintln!(
        "log {} MiB, state machine {} MiB",
        du(data_dir.log_path()),
        du(data_dir.sm_path())
    );

    let started = Instant::now();
    let log = LmdbLog::open(data_dir.log_path(), MAP_SIZE).expect("open log");
    let loaded = log.load().expect("load");
    let log_took = started.elapsed();
    assert_eq!(loaded.entries.len() as u64, entries);
    drop((loaded, log));

    let started = Instant::now();
    let machine = KvStateMachine::open(data_dir.sm_path(), MAP_SIZE).expect("open sm");
    let records = machine.verify_all().expect("verify");
    let sm_took = started.elapsed();
    assert_eq!(records, entries);
    drop(machine);
    eprintln!(
        "verified {entries} log entries in {log_took:?} and {records} state machine records in \
         {sm_took:?} (warm page cache)"
    );
    let bound = Duration::from_secs(10).mul_f64(entries as f64 / 1e6);
    assert!(
        log_took + sm_took < bound,
        "verification took over {bound:?}"
    );

    // A real node on that data dir: from the start of the process to its first answer.
    let ports = process::alloc_ports(2);
    let started = Instant::now();
    let mut child = Command::new(process::raftix_bin())
        .arg("serve")
        .args(["--id", "1", "--cluster-name", "raftix"])
        .arg("--data-dir")
        .arg(&root)
        .args(["--listen-peer", &format!("127.0.0.1:{}", ports[0])])
        .args(["--listen-http", &format!("127.0.0.1:{}", ports[1])])
        .args(["--cluster", &format!("1=127.0.0.1:{}", ports[0])])
        .args(["--log-map-size", &MAP_SIZE.to_string()])
        .args(["--sm-map-size", &MAP_SIZE.to_string()])
        .args(["--snapshot-entries", "0", "--snapshot-bytes", "0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start raftix serve");
    let http = process::http_client();
    let url = format!("http://127.0.0.1:{}/healthz", ports[1]);
    let up = loop {
        if http.get(&url).send().is_ok_and(|r| r.status() == 200) {
            break started.elapsed();
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("raftix serve exited: {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no answer in 60 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = child.kill();
    let _ = child.wait();
    eprintln!("raftix serve answered /healthz {up:?} after its start");
}
