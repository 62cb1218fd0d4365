//! `raftix snapshot`, `raftix backup` and `raftix restore` against real processes: a backup of a
//! running cluster seeds three new data dirs, which start as a new cluster holding every key
//! written before the backup; and `restore`'s refusals.

use crate::support::extra_proc;
use crate::support::process;

use std::path::Path;
use std::time::Duration;

use extra_proc::ExtraProc;
use process::{alloc_ports, ProcCluster, MAP_SIZE};
use raftix::storage::read_snapshot_info;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);
const KEYS: usize = 120;

/// Runs `raftix ARGS`; returns the exit status, stdout and stderr.
fn raftix(args: &[&str]) -> (i32, String, String) {
    process::run_raftix(args)
}

/// `raftix restore` of node `id` into `dir/n<id>`.
fn restore(from: &Path, dir: &Path, id: u64, cluster: &str) -> (i32, String, String) {
    let data_dir = dir.join(format!("n{id}"));
    let map = MAP_SIZE.to_string();
    raftix(&[
        "restore",
        "--from",
        from.to_str().expect("utf-8 path"),
        "--data-dir",
        data_dir.to_str().expect("utf-8 path"),
        "--id",
        &id.to_string(),
        "--cluster",
        cluster,
        "--cluster-name",
        "restored",
        "--sm-map-size",
        &map,
        "--log-map-size",
        &map,
    ])
}

#[test]
fn a_backup_restores_into_a_new_cluster_with_every_key() {
    // Small snapshot thresholds: the backed-up cluster has compacted its log.
    let dir = tempfile::tempdir().expect("temp dir");
    let cluster = ProcCluster::start_with(
        3,
        dir,
        &["--snapshot-entries", "40", "--snapshot-keep", "5"],
    );
    let (leader, _) = cluster.wait_leader(WAIT);
    let follower = cluster.follower_of(leader);
    let mut last = 0;
    for i in 0..KEYS {
        last = cluster
            .put_ok(&format!("key-{i}"), format!("value {i}").as_bytes())
            .0;
    }
    cluster.wait_converged(last, WAIT);
    let endpoint = format!("127.0.0.1:{}", cluster.node(follower).http_port);

    let (code, out, err) = raftix(&["snapshot", "--json", "--endpoints", &endpoint]);
    assert_eq!(code, 0, "snapshot: {out}{err}");
    let summary: Value = serde_json::from_str(out.trim()).expect("snapshot JSON");
    assert!(
        summary["index"].as_u64().expect("index") >= last,
        "{summary}"
    );
    assert_eq!(summary["voters"], serde_json::json!([1, 2, 3]));

    let work = tempfile::tempdir().expect("temp dir");
    let backup = work.path().join("cluster.snap");
    let backup_arg = backup.to_str().expect("utf-8 path");
    let (code, out, err) = raftix(&["backup", "--out", backup_arg, "--endpoints", &endpoint]);
    assert_eq!(code, 0, "backup: {out}{err}");
    let info = read_snapshot_info(&backup).expect("the backup verifies");
    assert!(info.meta.last.index >= last);
    assert_eq!(
        out.trim(),
        format!(
            "OK index={} term={} size={} file={backup_arg}",
            info.meta.last.index, info.meta.last.term, info.size
        )
    );
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(leftovers, ["cluster.snap"], "no temporary file is left");
    drop(cluster);

    // Three new data dirs, seeded with the same backup and the new members.
    let new_dir = tempfile::tempdir().expect("temp dir");
    let ports = alloc_ports(6);
    let members = (1..=3u64)
        .map(|id| format!("{id}=127.0.0.1:{}", ports[2 * (id as usize - 1)]))
        .collect::<Vec<_>>()
        .join(",");
    for id in 1..=3 {
        let (code, out, err) = restore(&backup, new_dir.path(), id, &members);
        assert_eq!(code, 0, "restore {id}: {out}{err}");
        assert!(
            out.starts_with(&format!("OK index={} ", info.meta.last.index)),
            "{out}"
        );
    }
    let flags = vec![
        "--cluster".to_string(),
        members.clone(),
        "--cluster-name".to_string(),
        "restored".to_string(),
    ];
    let nodes: Vec<ExtraProc> = (1..=3u64)
        .map(|id| {
            let i = 2 * (id as usize - 1);
            ExtraProc::spawn(id, new_dir.path(), ports[i], ports[i + 1], &flags)
        })
        .collect();
    let leader = nodes[0].wait_for(WAIT, "a leader in the restored cluster", || {
        let status = nodes[0].get_json("/v1/status")?;
        let leader = status["leader"].as_u64()?;
        nodes.iter().find(|n| n.id == leader)
    });
    for i in 0..KEYS {
        let url = format!("{}/v1/kv/key-{i}", leader.url());
        let resp = process::http_client()
            .get(url)
            .send()
            .expect("linearizable read");
        assert_eq!(resp.status().as_u16(), 200, "key-{i}");
        assert_eq!(resp.bytes().expect("body"), format!("value {i}").as_bytes());
    }
    for node in &nodes {
        let value = node.wait_for(WAIT, "key-0 on every node", || node.get_stale("key-0"));
        assert_eq!(value, b"value 0");
        let cluster_view = node.get_json("/v1/cluster").expect("cluster view");
        assert_eq!(cluster_view["members"].as_array().map(Vec::len), Some(3));
    }
}

#[test]
fn restore_refuses_used_data_dirs_bad_flags_and_damaged_backups() {
    let work = tempfile::tempdir().expect("temp dir");
    let cluster = "1=127.0.0.1:7101,2=127.0.0.1:7102";
    let missing = work.path().join("missing.snap");
    let (code, _, err) = restore(&missing, work.path(), 1, cluster);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("missing.snap") && err.contains("cannot be used"),
        "{err}"
    );
    assert!(!work.path().join("n1").exists(), "nothing was created");

    let damaged = work.path().join("damaged.snap");
    std::fs::write(&damaged, b"RXSNAP01 but not a snapshot at all").expect("write");
    let (code, _, err) = restore(&damaged, work.path(), 1, cluster);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("damaged.snap"), "{err}");

    let (code, _, err) = restore(&damaged, work.path(), 3, cluster);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--id"), "{err}");
    let (code, _, err) = restore(&damaged, work.path(), 1, "1=nonsense");
    assert_eq!(code, 2, "{err}");

    let used = work.path().join("n1");
    std::fs::create_dir_all(used.join("log")).expect("mkdir");
    let (code, _, err) = restore(&damaged, work.path(), 1, cluster);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already holds Raft data"), "{err}");
}
