//! Integration tests of `DataDir::prepare`: first start, restart, and every refusal.

use std::fs;

use raftix::storage::{DataDir, Identity, StorageError, FORMAT_VERSION, IDENTITY_FILE};

#[test]
fn first_start_writes_identity_and_restart_accepts_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("node1");
    let dir = DataDir::prepare(&root, "prod", 1).unwrap();
    assert_eq!(dir.log_path(), root.join("log"));
    assert_eq!(dir.sm_path(), root.join("sm"));
    assert!(dir.log_path().is_dir() && dir.sm_path().is_dir());
    assert_eq!(dir.snapshot_path(), root.join("snapshots"));
    assert!(dir.snapshot_path().is_dir());
    let written: Identity =
        serde_json::from_slice(&fs::read(root.join(IDENTITY_FILE)).unwrap()).unwrap();
    assert_eq!(
        written,
        Identity {
            format_version: FORMAT_VERSION,
            cluster_name: "prod".into(),
            node_id: 1,
            voters: None,
        }
    );
    assert!(!root.join(format!("{IDENTITY_FILE}.tmp")).exists());
    drop(dir);
    let again = DataDir::prepare(&root, "prod", 1).unwrap();
    assert_eq!(again.identity(), &written);
}

fn write_identity(root: &std::path::Path, json: &str) {
    fs::create_dir_all(root).unwrap();
    fs::write(root.join(IDENTITY_FILE), json).unwrap();
}

#[test]
fn newer_format_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    write_identity(
        tmp.path(),
        r#"{"format_version": 3, "cluster_name": "prod", "node_id": 1, "new_field": true}"#,
    );
    let err = DataDir::prepare(tmp.path(), "prod", 1).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::NewerFormat {
                found: 3,
                supported: 2
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("newer raftix"), "{err}");
}

#[test]
fn older_development_format_is_refused_with_a_way_out() {
    let tmp = tempfile::tempdir().unwrap();
    write_identity(
        tmp.path(),
        r#"{"format_version": 1, "cluster_name": "prod", "node_id": 1}"#,
    );
    let err = DataDir::prepare(tmp.path(), "prod", 1).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("format_version 1"), "{text}");
    assert!(text.contains("raftix restore"), "{text}");
}

#[test]
fn other_cluster_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    DataDir::prepare(tmp.path(), "prod", 1).unwrap();
    let err = DataDir::prepare(tmp.path(), "staging", 1).unwrap_err();
    assert!(
        matches!(&err, StorageError::ForeignCluster { found, expected }
        if found == "prod" && expected == "staging"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("\"prod\"") && msg.contains("\"staging\""),
        "{msg}"
    );
}

#[test]
fn other_node_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    DataDir::prepare(tmp.path(), "prod", 1).unwrap();
    let err = DataDir::prepare(tmp.path(), "prod", 2).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::WrongNode {
                found: 1,
                expected: 2
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("node 1"), "{err}");
}

#[test]
fn garbled_identity_is_refused() {
    for garbage in [
        "{not json",
        "",
        r#"{"format_version": 1, "cluster_name": 5}"#,
    ] {
        let tmp = tempfile::tempdir().unwrap();
        write_identity(tmp.path(), garbage);
        let err = DataDir::prepare(tmp.path(), "prod", 1).unwrap_err();
        assert!(
            matches!(&err, StorageError::InvalidIdentity { path, .. } if path.ends_with(IDENTITY_FILE)),
            "{garbage:?}: {err:?}"
        );
        assert!(err.to_string().contains(IDENTITY_FILE), "{err}");
    }
}

#[test]
fn raft_data_without_identity_is_refused() {
    for sub in ["log", "sm", "snapshots"] {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join(sub)).unwrap();
        let err = DataDir::prepare(tmp.path(), "prod", 1).unwrap_err();
        assert!(
            matches!(err, StorageError::MissingIdentity { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("no raftix-identity.json"), "{err}");
        assert!(!tmp.path().join(IDENTITY_FILE).exists());
    }
}

#[test]
fn voters_are_recorded_once_and_a_different_set_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = DataDir::prepare(tmp.path(), "prod", 1).unwrap();
    assert!(
        dir.check_voters([3, 1, 2], false).unwrap(),
        "recorded at the first start"
    );
    assert!(
        !dir.check_voters([1, 2, 3], false).unwrap(),
        "same set, any order"
    );
    // A restart with other voters is refused, naming both sets, and changes nothing.
    drop(dir);
    let mut again = DataDir::prepare(tmp.path(), "prod", 1).unwrap();
    let err = again.check_voters([1], false).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("[1, 2, 3]") && msg.contains("[1]") && msg.contains("--force-new-cluster"),
        "{msg}"
    );
    assert_eq!(again.identity().voters, Some(vec![1, 2, 3]));
    // Forced (lost-quorum recovery): the new set is recorded and then holds.
    assert!(again.check_voters([1], true).unwrap());
    drop(again);
    let mut after = DataDir::prepare(tmp.path(), "prod", 1).unwrap();
    assert!(!after.check_voters([1], false).unwrap());
    assert!(after.check_voters([1, 2, 3], false).is_err());
}

#[test]
fn a_second_open_of_a_locked_data_dir_is_refused_naming_the_holder_until_it_is_released() {
    let tmp = tempfile::tempdir().unwrap();
    let first = DataDir::prepare(tmp.path(), "prod", 1).unwrap();
    let err = DataDir::prepare(tmp.path(), "prod", 1).unwrap_err();
    assert!(
        matches!(err, StorageError::DataDirInUse { holder: Some(pid), .. } if pid == std::process::id()),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("PID {}", std::process::id())) && msg.contains("raftix.lock"),
        "{msg}"
    );
    // A clone keeps the lock: it is released only with the last holder.
    let clone = first.clone();
    drop(first);
    assert!(DataDir::prepare(tmp.path(), "prod", 1).is_err());
    assert_eq!(
        raftix::storage::DataDirLock::probe(tmp.path()).unwrap(),
        Some(Some(std::process::id()))
    );
    drop(clone);
    assert_eq!(
        raftix::storage::DataDirLock::probe(tmp.path()).unwrap(),
        None
    );
    DataDir::prepare(tmp.path(), "prod", 1).expect("free again once released");
}
