//! Integration tests of `LmdbLog`: durability across reopen, truncation, group commit, and
//! detection of on-disk damage made behind its back.

use std::path::Path;

use crate::fixtures::corrupt_message;
use bytes::Bytes;
use heed::byteorder::BigEndian;
use heed::types::{Bytes as RawBytes, U64};
use heed::{Database, EnvOpenOptions};
use raftix::core::{Entry, EntryPayload, HardState};
use raftix::storage::{LmdbLog, PersistOp, StorageError, ENTRIES_DB};

const MAP: usize = 16 << 20;

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        term,
        index,
        payload: EntryPayload::Command(Bytes::from(format!("cmd-{term}-{index}"))),
    }
}

fn append(entries: Vec<Entry>) -> PersistOp {
    PersistOp {
        entries,
        ..PersistOp::default()
    }
}

fn hs(term: u64, voted_for: Option<u64>) -> HardState {
    HardState { term, voted_for }
}

/// Writes entries 1..=5 in term 1 with hard state (1, Some(1)), then closes the store.
fn seed(dir: &Path) {
    let mut log = LmdbLog::open(dir, MAP).unwrap();
    log.write(&[PersistOp {
        hard_state: Some(hs(1, Some(1))),
        truncate_from: None,
        entries: (1..=5).map(|i| entry(1, i)).collect(),
        ..PersistOp::default()
    }])
    .unwrap();
}

/// Runs `f` on the raw `entries` database, with the store closed.
fn with_raw_entries(
    dir: &Path,
    f: impl FnOnce(&mut heed::RwTxn, Database<'static, U64<BigEndian>, RawBytes>),
) {
    let mut opts = EnvOpenOptions::new().read_txn_without_tls();
    opts.map_size(MAP).max_dbs(2);
    let env = unsafe { opts.open(dir) }.unwrap();
    let rtxn = env.read_txn().unwrap();
    let db = env
        .open_databases_and_commit(rtxn, |dbo, rtxn| {
            dbo.open_database::<U64<BigEndian>, RawBytes>(rtxn, Some(ENTRIES_DB))
                .map(heed::CommitOrAbort::<_, ()>::Commit)
        })
        .unwrap()
        .unwrap_commit()
        .unwrap();
    let mut wtxn = env.write_txn().unwrap();
    f(&mut wtxn, db);
    wtxn.commit().unwrap();
}

#[test]
fn write_reopen_load_roundtrip() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let log = LmdbLog::open(dir.path(), MAP).unwrap();
    let loaded = log.load().unwrap();
    assert_eq!(loaded.hard_state, hs(1, Some(1)));
    assert_eq!(loaded.first_index, 1);
    assert_eq!(
        loaded.entries,
        (1..=5).map(|i| entry(1, i)).collect::<Vec<_>>()
    );
    assert_eq!(log.last_index(), 5);
    assert_eq!(log.hard_state(), hs(1, Some(1)));
    assert_eq!(
        log.read_range(2, 4).unwrap(),
        vec![entry(1, 2), entry(1, 3), entry(1, 4)]
    );
    assert!(log.read_range(4, 3).unwrap().is_empty());
    assert!(matches!(
        log.read_range(4, 6),
        Err(StorageError::OutOfRange { last: 5, .. })
    ));
}

#[test]
fn empty_log_loads_empty() {
    let dir = tempfile::tempdir().unwrap();
    let log = LmdbLog::open(dir.path(), MAP).unwrap();
    let loaded = log.load().unwrap();
    assert_eq!(loaded.hard_state, HardState::default());
    assert_eq!(loaded.first_index, 1);
    assert!(loaded.entries.is_empty());
    assert_eq!(log.last_index(), 0);
}

#[test]
fn truncate_then_append_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    {
        let mut log = LmdbLog::open(dir.path(), MAP).unwrap();
        log.write(&[PersistOp {
            hard_state: Some(hs(2, None)),
            truncate_from: Some(3),
            entries: vec![entry(2, 3), entry(2, 4)],
            ..PersistOp::default()
        }])
        .unwrap();
        assert_eq!(log.last_index(), 4);
        assert_eq!(log.last_log_id().term, 2);
    }
    let log = LmdbLog::open(dir.path(), MAP).unwrap();
    let loaded = log.load().unwrap();
    assert_eq!(
        loaded.entries,
        vec![entry(1, 1), entry(1, 2), entry(2, 3), entry(2, 4)]
    );
    assert_eq!(loaded.hard_state, hs(2, None));
}

#[test]
fn hard_state_alone_is_persisted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = LmdbLog::open(dir.path(), MAP).unwrap();
        log.write(&[PersistOp {
            hard_state: Some(hs(7, Some(3))),
            ..PersistOp::default()
        }])
        .unwrap();
    }
    let log = LmdbLog::open(dir.path(), MAP).unwrap();
    assert_eq!(log.hard_state(), hs(7, Some(3)));
    assert_eq!(log.load().unwrap().hard_state, hs(7, Some(3)));
}

#[test]
fn many_ops_in_one_batch_apply_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = LmdbLog::open(dir.path(), MAP).unwrap();
    let mut batch: Vec<PersistOp> = (1..=100).map(|i| append(vec![entry(1, i)])).collect();
    // Later ops in the same batch see the earlier ones: truncate what was just appended.
    batch.push(PersistOp {
        hard_state: Some(hs(2, Some(2))),
        truncate_from: Some(51),
        entries: vec![entry(2, 51)],
        ..PersistOp::default()
    });
    batch.push(append((52..=60).map(|i| entry(2, i)).collect()));
    log.write(&batch).unwrap();
    drop(log);
    let log = LmdbLog::open(dir.path(), MAP).unwrap();
    let loaded = log.load().unwrap();
    assert_eq!(loaded.entries.len(), 60);
    assert_eq!(loaded.entries[49], entry(1, 50));
    assert_eq!(loaded.entries[50], entry(2, 51));
    assert_eq!(loaded.entries[59], entry(2, 60));
    assert_eq!(loaded.hard_state, hs(2, Some(2)));
}

#[test]
fn invalid_batch_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let mut log = LmdbLog::open(dir.path(), MAP).unwrap();
    // A valid op followed by a gap: the whole batch must be refused.
    let result = log.write(&[append(vec![entry(1, 6)]), append(vec![entry(1, 8)])]);
    assert!(
        matches!(result, Err(StorageError::InvalidWrite { .. })),
        "{result:?}"
    );
    // A term going down is refused too.
    let result = log.write(&[PersistOp {
        hard_state: Some(hs(0, None)),
        ..PersistOp::default()
    }]);
    assert!(
        matches!(result, Err(StorageError::InvalidWrite { .. })),
        "{result:?}"
    );
    assert_eq!(log.last_index(), 5);
    drop(log);
    let log = LmdbLog::open(dir.path(), MAP).unwrap();
    assert_eq!(log.load().unwrap().entries.len(), 5);
}

#[test]
fn flipped_byte_in_stored_entry_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    with_raw_entries(dir.path(), |wtxn, db| {
        let mut value = db.get(wtxn, &3).unwrap().unwrap().to_vec();
        let last = value.len() - 1;
        value[last] ^= 0x20;
        db.put(wtxn, &3, &value).unwrap();
    });
    let log = LmdbLog::open(dir.path(), MAP).unwrap();
    let what = corrupt_message(log.load());
    assert!(
        what.contains("log entry 3") && what.contains("checksum"),
        "{what}"
    );
    let what = corrupt_message(log.read_range(1, 5));
    assert!(what.contains("log entry 3"), "{what}");
}

#[test]
fn missing_index_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    with_raw_entries(dir.path(), |wtxn, db| {
        assert!(db.delete(wtxn, &3).unwrap());
    });
    let log = LmdbLog::open(dir.path(), MAP).unwrap();
    let what = corrupt_message(log.load());
    assert!(what.contains("log entry 3 is missing"), "{what}");
    let what = corrupt_message(log.read_range(2, 4));
    assert!(what.contains("log entry 3 is missing"), "{what}");
}

#[test]
fn entry_under_wrong_key_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    with_raw_entries(dir.path(), |wtxn, db| {
        let value = db.get(wtxn, &5).unwrap().unwrap().to_vec();
        db.put(wtxn, &6, &value).unwrap();
    });
    let log = LmdbLog::open(dir.path(), MAP);
    let what = corrupt_message(log.and_then(|l| l.load()));
    assert!(what.contains("log entry 6"), "{what}");
}

#[test]
fn tiny_map_gives_map_full() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = LmdbLog::open(dir.path(), 64 * 1024).unwrap();
    log.write(&[PersistOp {
        hard_state: Some(hs(1, None)),
        ..PersistOp::default()
    }])
    .unwrap();
    let big = Bytes::from(vec![7u8; 4096]);
    let mut err = None;
    for i in 1..=200 {
        let e = Entry {
            term: 1,
            index: i,
            payload: EntryPayload::Command(big.clone()),
        };
        if let Err(e) = log.write(&[append(vec![e])]) {
            err = Some(e);
            break;
        }
    }
    let err = err.expect("a 64 KiB map cannot hold 800 KiB");
    assert!(matches!(err, StorageError::MapFull { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("log store") && msg.contains("--log-map-size"),
        "{msg}"
    );
    // Nothing half-written: what was committed still loads.
    let last = log.last_index();
    assert_eq!(log.load().unwrap().entries.len() as u64, last);
}

#[test]
fn second_open_in_same_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _log = LmdbLog::open(dir.path(), MAP).unwrap();
    let err = LmdbLog::open(dir.path(), MAP).unwrap_err();
    assert!(err.to_string().contains("already open"), "{err}");
}
