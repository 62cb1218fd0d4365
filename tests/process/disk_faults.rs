//! Disk faults while a node runs (README, "Disk faults at runtime"): each data dir is its own
//! small ext4 file system on a loop device, which the test fills up (a full disk) or aborts
//! (`mount -o remount,abort`: ext4 turns read-only as after an I/O error). Writes must fail
//! cleanly (507 with a JSON error, or a leader change, never a hang), reads must keep working,
//! the node must report DEGRADED with the reason, and it must recover once space returns.
//! Needs root, `mkfs.ext4` and loop devices (`.ci/run` installs e2fsprogs); without them the
//! tests say so and pass, unless `CI` is set.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::process::{self, ProcCluster};

/// Size of each node's file system.
const FS_MIB: u32 = 48;
/// Values large enough that LMDB must grow its files (a full disk shows quickly).
const VALUE_BYTES: usize = 64 << 10;
const LEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest any write may take to be answered: the proposal timeout (5 s) and some slack.
const ANSWER_BOUND: Duration = Duration::from_secs(8);

/// A small ext4 file system on a loop device, mounted at `mount` until dropped.
struct LoopFs {
    image: PathBuf,
    mount: PathBuf,
}

impl LoopFs {
    fn new(image: PathBuf, mount: PathBuf) -> Self {
        run(Command::new("dd")
            .arg("if=/dev/zero")
            .arg(format!("of={}", image.display()))
            .args(["bs=1M", &format!("count={FS_MIB}"), "status=none"]));
        // -m 0: no blocks reserved for root (the node runs as root here).
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0"])
            .arg(&image));
        std::fs::create_dir_all(&mount).expect("create the mount point");
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mount));
        LoopFs { image, mount }
    }

    /// Fills the file system with one file until the disk is full; returns the file.
    fn fill(&self) -> PathBuf {
        let filler = self.mount.join("filler");
        // dd stops with "No space left on device" (exit 1): that is the point.
        let _ = Command::new("dd")
            .arg("if=/dev/zero")
            .arg(format!("of={}", filler.display()))
            .args(["bs=64k", "status=none"])
            .status();
        filler
    }

    /// Turns the file system read-only at once, as ext4 does after an I/O error.
    fn abort(&self) {
        run(Command::new("mount")
            .args(["-o", "remount,abort"])
            .arg(&self.mount));
    }

    /// Unmounts and mounts the file system again (after an abort: the journal is replayed).
    fn remount(&self) {
        run(Command::new("umount").arg(&self.mount));
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&self.image)
            .arg(&self.mount));
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        let _ = std::fs::remove_file(&self.image);
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether this machine can run these tests; if not, says why (and fails under CI).
fn supported() -> bool {
    // SAFETY: geteuid(2) has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mkfs = Command::new("mkfs.ext4").arg("-V").output().is_ok();
    if root && mkfs {
        return true;
    }
    let why = format!("disk fault tests need root and mkfs.ext4 (root: {root}, mkfs.ext4: {mkfs})");
    assert!(std::env::var_os("CI").is_none(), "CI is set but {why}");
    eprintln!("skipped: {why}");
    false
}

/// `n` nodes, each with its data dir on its own loop file system.
fn cluster_on_loop_fs(n: u64, prefix: &str) -> (Vec<LoopFs>, ProcCluster) {
    let dir = ProcCluster::temp_dir(prefix);
    let images = ProcCluster::temp_dir(&format!("{prefix}images-"));
    let disks = (1..=n)
        .map(|id| {
            LoopFs::new(
                images.path().join(format!("n{id}.img")),
                dir.path().join(format!("n{id}")),
            )
        })
        .collect();
    std::mem::forget(images); // the images are removed by each LoopFs
    (disks, ProcCluster::start(n, dir))
}

/// `PUT /v1/kv/{key}` on node `id` with a large value: the status and the JSON error code.
fn put(c: &ProcCluster, id: u64, key: &str) -> (StatusCode, String) {
    let started = Instant::now();
    let resp = process::http_client()
        .put(format!("{}/v1/kv/{key}", c.client().base(id)))
        .body(vec![b'v'; VALUE_BYTES])
        .timeout(ANSWER_BOUND + Duration::from_secs(2))
        .send();
    let took = started.elapsed();
    let resp = resp.unwrap_or_else(|e| c.fail(&format!("PUT {key} on node {id}: {e}")));
    let status = resp.status();
    let body: Value = resp.json().unwrap_or_default();
    if took > ANSWER_BOUND {
        c.fail(&format!(
            "PUT {key} took {took:?}: a refused disk must not hang writes"
        ));
    }
    let code = body["error"].as_str().unwrap_or_default().to_string();
    (status, code)
}

/// Writes on node `id` until one is refused with 507; returns the keys acknowledged meanwhile.
fn write_until_refused(c: &ProcCluster, id: u64, what: &str) -> Vec<String> {
    let mut acked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in 0.. {
        if Instant::now() > deadline {
            c.fail(&format!(
                "{what}: no write was refused with 507 within a minute"
            ));
        }
        let key = format!("{what}-{n}");
        match put(c, id, &key) {
            (StatusCode::OK, _) => acked.push(key),
            (StatusCode::INSUFFICIENT_STORAGE, code) => {
                assert_eq!(code, "insufficient_storage", "the 507's JSON error code");
                return acked;
            }
            // The write that met the full disk may stay unanswered until the proposal timeout.
            (StatusCode::GATEWAY_TIMEOUT, _) => {}
            (other, code) => c.fail(&format!("{what}: PUT {key} answered {other} {code}")),
        }
    }
    unreachable!()
}

fn health(c: &ProcCluster, id: u64) -> (String, String) {
    let status = c.status_wait(id);
    (
        status["health"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        status["health"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// Every key in `keys` reads back on node `id` (stale: its own state; and linearizable).
fn check_readable(c: &ProcCluster, id: u64, keys: &[String]) {
    let http = process::http_client();
    for key in keys {
        for level in ["stale", "linearizable"] {
            let url = format!("{}/v1/kv/{key}?consistency={level}", c.client().base(id));
            let status = http.get(&url).send().map(|r| r.status());
            if !matches!(status, Ok(StatusCode::OK)) {
                c.fail(&format!("{level} read of {key} on node {id}: {status:?}"));
            }
        }
    }
}

#[test]
fn a_full_disk_refuses_writes_cleanly_and_the_node_recovers_when_space_returns() {
    if !supported() {
        return;
    }
    let (disks, c) = cluster_on_loop_fs(1, "raftix-diskfull-");
    c.wait_leader(LEADER_TIMEOUT);
    let mut acked = vec!["before".to_string()];
    assert_eq!(put(&c, 1, "before").0, StatusCode::OK);
    let filler = disks[0].fill();
    acked.extend(write_until_refused(&c, 1, "full"));
    let (state, reason) = health(&c, 1);
    assert_eq!(state, "DEGRADED", "health while the disk is full");
    assert!(
        reason.contains("refuses writes") && reason.contains("full"),
        "the reason names the full disk: {reason}"
    );
    check_readable(&c, 1, &acked);
    std::fs::remove_file(&filler).expect("free the disk");
    c.wait_for(Duration::from_secs(20), "a write to succeed again", || {
        (put(&c, 1, "after").0 == StatusCode::OK).then_some(())
    });
    acked.push("after".into());
    c.wait_for(
        Duration::from_secs(10),
        "the node to be ACTIVE again",
        || (health(&c, 1).0 == "ACTIVE").then_some(()),
    );
    check_readable(&c, 1, &acked);
}

#[test]
fn a_read_only_disk_refuses_writes_and_loses_nothing_acknowledged() {
    if !supported() {
        return;
    }
    let (disks, mut c) = cluster_on_loop_fs(1, "raftix-diskro-");
    c.wait_leader(LEADER_TIMEOUT);
    let mut acked = Vec::new();
    for n in 0..5 {
        let key = format!("ro-{n}");
        assert_eq!(put(&c, 1, &key).0, StatusCode::OK);
        acked.push(key);
    }
    disks[0].abort();
    acked.extend(write_until_refused(&c, 1, "aborted"));
    let (state, reason) = health(&c, 1);
    assert_eq!(state, "DEGRADED", "health while the disk is read-only");
    assert!(
        reason.contains("read-only"),
        "the reason names the read-only file system: {reason}"
    );
    check_readable(&c, 1, &acked);
    // A read-only ext4 needs an unmount: stop the node, mount again, start it.
    c.kill9(1);
    disks[0].remount();
    c.restart(1);
    c.wait_leader(LEADER_TIMEOUT);
    check_readable(&c, 1, &acked);
    assert_eq!(put(&c, 1, "after-remount").0, StatusCode::OK);
}

#[test]
fn a_leader_whose_disk_fills_hands_over_and_the_cluster_keeps_writing() {
    if !supported() {
        return;
    }
    let (disks, c) = cluster_on_loop_fs(3, "raftix-diskleader-");
    let (leader, _) = c.wait_leader(LEADER_TIMEOUT);
    let filler = disks[(leader - 1) as usize].fill();
    let client = c.client();
    // Writes through the cluster go on: the full leader hands over to a healthy node.
    let new_leader = c.wait_for(Duration::from_secs(30), "another node to lead", || {
        let key = format!("k-{}", Instant::now().elapsed().as_nanos());
        let _ = client.put(leader, &key, &vec![b'v'; VALUE_BYTES], ANSWER_BOUND);
        c.status(leader)
            .and_then(|s| s["leader"].as_u64())
            .filter(|&l| l != leader)
    });
    let mut acked = Vec::new();
    for n in 0..10 {
        let key = format!("handed-{n}");
        // Through the degraded node: it forwards to the new leader.
        let (status, code) = put(&c, leader, &key);
        if status != StatusCode::OK {
            c.fail(&format!(
                "PUT {key} via node {leader} answered {status} {code}"
            ));
        }
        acked.push(key);
    }
    check_readable(&c, new_leader, &acked);
    assert_eq!(health(&c, leader).0, "DEGRADED");
    std::fs::remove_file(&filler).expect("free the disk");
    c.wait_for(
        Duration::from_secs(20),
        "the old leader to be ACTIVE",
        || (health(&c, leader).0 == "ACTIVE").then_some(()),
    );
    c.wait_converged(1, Duration::from_secs(20));
    check_readable(&c, leader, &acked);
}
