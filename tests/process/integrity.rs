//! Integrity at rest with real `raftix serve` processes: one byte flipped on disk, in the raw
//! LMDB file of the log or of the state machine or in a snapshot file, is found before the node
//! serves (it refuses to start, naming the index, key or file), or, for a node already running,
//! when the data is read (the node stops, exit code 1, naming it), and the damaged bytes are
//! never served nor replicated. See docs/security.md, "Integrity at rest".
//!
//! The bytes are located robustly: each test writes a value no other byte sequence in the files
//! can match (random, seeded; the seed is printed) and flips one byte in every copy of it found
//! in the file (LMDB's copy-on-write pages may keep stale copies; the live one is among them).

use crate::support::process;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use process::{http_client, snapshot_dir, ProcCluster};

const LEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a node refusing its data dir may take to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

fn tempdir() -> tempfile::TempDir {
    ProcCluster::temp_dir("raftix-integrity-")
}

/// A 48-character value that occurs nowhere else: a fixed prefix and 32 pseudo-random hex
/// digits (xorshift64*, seeded from the clock; the seed is printed).
fn marker(what: &str) -> String {
    let mut x = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64
        | 1;
    eprintln!("{what}: marker seed {x:#x}");
    let mut out = String::from("raftix-marker-");
    while out.len() < 46 {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.push_str(&format!("{:016x}", x.wrapping_mul(0x2545_f491_4f6c_dd1d)));
    }
    out.truncate(46);
    out + "-!"
}

/// Flips one bit of the middle byte of every occurrence of `needle` in the file at `path`, in
/// place (the file keeps its size); returns how many occurrences there were.
fn flip_every_copy(path: &Path, needle: &[u8]) -> usize {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {} for writing: {e}", path.display()));
    let mut found = 0;
    let mut at = 0;
    while let Some(pos) = find(&bytes[at..], needle) {
        let offset = at + pos + needle.len() / 2;
        file.write_all_at(&[bytes[offset] ^ 0x01], offset as u64)
            .expect("write the flipped byte");
        found += 1;
        at += pos + needle.len();
    }
    file.sync_all().expect("fsync the damaged file");
    eprintln!("flipped a byte in {found} copies in {}", path.display());
    found
}

/// Flips a byte in every copy of `value` in the file at `path` ([`flip_every_copy`]); fails
/// with `not_found` if there is none.
fn damage_every_copy(path: &Path, value: &str, not_found: &str) {
    assert!(flip_every_copy(path, value.as_bytes()) >= 1, "{not_found}");
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Starts node 1 of `cluster` (stopped) on its damaged data dir; checks that it exits with
/// status 1 within a few seconds and leaves every file as it was. Returns its stderr.
fn assert_refuses_to_start(cluster: &mut ProcCluster) -> String {
    let data_dir = cluster.node(1).data_dir.clone();
    let before = snapshot_dir(&data_dir);
    let (status, stderr) = cluster.run_expecting_exit(1, &[], EXIT_TIMEOUT);
    assert_eq!(status.code(), Some(1), "exit status; stderr:\n{stderr}");
    eprintln!("refused to start, as expected; stderr:\n{stderr}");
    assert!(
        stderr.contains("cannot be trusted") && stderr.contains("raftix restore"),
        "the message does not say what to do:\n{stderr}"
    );
    let after = snapshot_dir(&data_dir);
    assert!(before == after, "the refused start changed the data dir");
    stderr
}

/// A one-node cluster holding a few keys and `key` = `value`; returns it with the log index of
/// that write.
fn node_with(key: &str, value: &str, extra: &[&str]) -> (ProcCluster, u64) {
    let cluster = ProcCluster::start_with(1, tempdir(), extra);
    cluster.wait_leader(LEADER_TIMEOUT);
    for i in 0..3 {
        cluster.put_ok(&format!("before-{i}"), b"plain");
    }
    let (index, _) = cluster.put_ok(key, value.as_bytes());
    for i in 0..3 {
        cluster.put_ok(&format!("after-{i}"), b"plain");
    }
    (cluster, index)
}

/// [`node_with`] `victim` = a fresh marker for `what`, stopped; every copy of the marker in its
/// `store` LMDB file (`log` or `sm`) damaged; then [`assert_refuses_to_start`]. Returns the
/// cluster, the index of the write and the refused start's stderr.
fn refused_start_with_damaged_lmdb(
    store: &str,
    what: &str,
    not_found: &str,
) -> (ProcCluster, u64, String) {
    let value = marker(what);
    let (mut cluster, index) = node_with("victim", &value, &[]);
    cluster.stop(1);
    let data_mdb = cluster.node(1).data_dir.join(store).join("data.mdb");
    damage_every_copy(&data_mdb, &value, not_found);
    let stderr = assert_refuses_to_start(&mut cluster);
    (cluster, index, stderr)
}

/// The one finished snapshot file in node `id`'s snapshot directory.
fn snapshot_file(cluster: &ProcCluster, id: u64) -> PathBuf {
    let dir = cluster.node(id).data_dir.join("snapshots");
    let files: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("read the snapshot dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "snap"))
        .collect();
    assert_eq!(
        files.len(),
        1,
        "snapshot files in {}: {files:?}",
        dir.display()
    );
    files[0].clone()
}

#[test]
fn a_flipped_byte_in_an_lmdb_log_entry_is_detected_at_start() {
    let (cluster, index, stderr) =
        refused_start_with_damaged_lmdb("log", "log entry", "value not found in the log");
    assert!(
        stderr.contains(&format!("log entry {index} is corrupt"))
            && stderr.contains("checksum mismatch"),
        "stderr does not name the checksum failure of entry {index}:\n{stderr}"
    );
    let log_dir = cluster.node(1).data_dir.join("log");
    assert!(
        stderr.contains(&log_dir.display().to_string()),
        "stderr does not name {}:\n{stderr}",
        log_dir.display()
    );
}

#[test]
fn a_flipped_byte_in_a_state_machine_value_is_detected_at_start() {
    let (_cluster, _, stderr) =
        refused_start_with_damaged_lmdb("sm", "state machine value", "value not found");
    assert!(
        stderr.contains("key \"victim\" is corrupt") && stderr.contains("checksum mismatch"),
        "stderr does not name the damaged key:\n{stderr}"
    );
}

#[test]
fn a_flipped_byte_in_a_snapshot_file_is_detected_at_start() {
    let value = marker("snapshot");
    let (mut cluster, index) = node_with("victim", &value, &[]);
    let url = format!(
        "http://127.0.0.1:{}/v1/admin/snapshot",
        cluster.node(1).http_port
    );
    let answer = http_client().post(&url).send().expect("POST snapshot");
    assert_eq!(answer.status(), 200, "snapshot: {:?}", answer.text());
    cluster.stop(1);
    let snap = snapshot_file(&cluster, 1);
    damage_every_copy(&snap, &value, "value not in the snapshot");

    let stderr = assert_refuses_to_start(&mut cluster);
    assert!(
        stderr.contains(&snap.display().to_string()) && stderr.contains("checksum mismatch"),
        "stderr does not name the damaged snapshot {}:\n{stderr}",
        snap.display()
    );
    assert!(index > 0);
}

/// A value damaged on disk under a running node: the read that finds it answers 503 without the
/// value, and the node stops (exit 1) naming the key, rather than go on serving.
#[test]
fn a_running_node_that_reads_a_damaged_value_stops() {
    let value = marker("runtime read");
    let (mut cluster, _) = node_with("victim", &value, &[]);
    let base = format!("http://127.0.0.1:{}", cluster.node(1).http_port);
    let http = http_client();
    let intact = http
        .get(format!("{base}/v1/kv/before-1"))
        .send()
        .expect("GET");
    assert_eq!(intact.status(), 200);

    // LMDB reads through a shared memory map: the running node sees the flipped byte.
    let data_mdb = cluster.node(1).data_dir.join("sm").join("data.mdb");
    damage_every_copy(&data_mdb, &value, "value not found");

    let answer = http
        .get(format!("{base}/v1/kv/victim"))
        .send()
        .expect("GET victim");
    let status = answer.status().as_u16();
    let body = answer.text().unwrap_or_default();
    assert_eq!(status, 503, "the damaged value was answered: {body}");
    assert!(
        !body.contains(&value[..20]),
        "the damaged value leaked: {body}"
    );
    let error: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
    assert_eq!(error["error"], "storage_corrupt", "{body}");

    let exit = cluster.wait_exit(1, EXIT_TIMEOUT);
    assert_eq!(exit.code(), Some(1), "exit status of the node");
    let log = fs::read_to_string(&cluster.node(1).log_path).expect("node log");
    assert!(
        log.contains("key \"victim\" is corrupt") && log.contains("cannot be trusted"),
        "the node's last words do not name the key:\n{}",
        process::tail_file(&cluster.node(1).log_path, 20)
    );
}

/// The leader's snapshot file is damaged while it runs; a follower that needs it refuses the
/// transfer (its whole-file check fails), the leader then checks its own file and stops naming
/// it. The damaged bytes are never installed anywhere: the follower catches up from the new
/// leader with the right value.
#[test]
fn a_leader_whose_snapshot_is_damaged_stops_instead_of_shipping_it() {
    let value = marker("snapshot sender");
    let mut cluster = ProcCluster::start_with(
        3,
        tempdir(),
        &["--snapshot-entries", "1000", "--snapshot-keep", "0"],
    );
    let (leader, _) = cluster.wait_leader(LEADER_TIMEOUT);
    cluster.put_ok("first", b"1");
    cluster.wait_converged(2, LEADER_TIMEOUT);
    let lagging = cluster.follower_of(leader);
    cluster.stop(lagging);
    let (index, _) = cluster.put_ok("victim", value.as_bytes());
    for i in 0..20 {
        cluster.put_ok(&format!("more-{i}"), b"x");
    }
    // Snapshot the leader now: its log is compacted past what the stopped follower holds.
    let base = format!("http://127.0.0.1:{}", cluster.node(leader).http_port);
    let answer = http_client()
        .post(format!("{base}/v1/admin/snapshot"))
        .send()
        .expect("POST snapshot");
    assert_eq!(answer.status(), 200, "snapshot: {:?}", answer.text());
    let snap = snapshot_file(&cluster, leader);
    damage_every_copy(&snap, &value, "value not in the snapshot");

    cluster.restart(lagging);
    let exit = cluster.wait_exit(leader, Duration::from_secs(30));
    assert_eq!(exit.code(), Some(1), "exit status of the leader");
    let log = fs::read_to_string(&cluster.node(leader).log_path).expect("leader log");
    assert!(
        log.contains("is damaged on its disk") && log.contains(&snap.display().to_string()),
        "the leader's last words do not name its snapshot {}:\n{}",
        snap.display(),
        process::tail_file(&cluster.node(leader).log_path, 20)
    );
    let follower_log = fs::read_to_string(&cluster.node(lagging).log_path).expect("log");
    assert!(
        follower_log.contains("the received snapshot is corrupt"),
        "the follower did not refuse the damaged snapshot"
    );

    // The two others elect a leader, from which the lagging node catches up.
    cluster.wait_leader(Duration::from_secs(20));
    cluster.wait_for(
        Duration::from_secs(30),
        &format!("node {lagging} to apply index {index} with the intact value"),
        || {
            let got = cluster.get(lagging, "victim")?;
            (got == value.as_bytes()).then_some(())
        },
    );
}
