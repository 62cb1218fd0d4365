//! Integration tests of log compaction in `LmdbLog`: purging a prefix, resetting the log to a
//! snapshot's position, the durable base across reopen, damage around the base, and bounded disk
//! use while purging.

use std::path::Path;

use crate::fixtures::corrupt_message;
use bytes::Bytes;
use heed::byteorder::BigEndian;
use heed::types::{Bytes as RawBytes, Str, U64};
use heed::{Database, EnvOpenOptions};
use raftix::core::{Entry, EntryPayload, HardState, LogId};
use raftix::storage::{codec, LmdbLog, PersistOp, StorageError, BASE_KEY, ENTRIES_DB, META_DB};

const MAP: usize = 64 << 20;

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        term,
        index,
        payload: EntryPayload::Command(Bytes::from(format!("cmd-{term}-{index}"))),
    }
}

fn hs(term: u64) -> HardState {
    HardState {
        term,
        voted_for: None,
    }
}

fn append(entries: Vec<Entry>) -> PersistOp {
    PersistOp {
        entries,
        ..PersistOp::default()
    }
}

fn purge(upto: u64) -> PersistOp {
    PersistOp {
        purge_to: Some(upto),
        ..PersistOp::default()
    }
}

/// Entries 1..=10 in term 1, 11..=15 in term 2, hard state term 2.
fn seed(log: &mut LmdbLog) {
    log.write(&[
        PersistOp {
            hard_state: Some(hs(2)),
            entries: (1..=10).map(|i| entry(1, i)).collect(),
            ..PersistOp::default()
        },
        append((11..=15).map(|i| entry(2, i)).collect()),
    ])
    .unwrap();
}

fn invalid(result: Result<(), StorageError>) -> String {
    match result {
        Err(StorageError::InvalidWrite { what }) => what,
        other => panic!("expected InvalidWrite, got {other:?}"),
    }
}

#[test]
fn purge_moves_the_base_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = LmdbLog::open(dir.path(), MAP).unwrap();
        seed(&mut log);
        assert_eq!(log.base(), LogId::new(0, 0));
        log.write(&[purge(12)]).unwrap();
        assert_eq!(log.base(), LogId::new(2, 12));
        assert_eq!(log.first_index(), 13);
        assert_eq!(log.last_log_id(), LogId::new(2, 15));
        assert!(matches!(
            log.read_range(12, 13),
            Err(StorageError::OutOfRange { first: 13, .. })
        ));
        assert!(matches!(
            log.read_range(1, 1),
            Err(StorageError::OutOfRange { .. })
        ));
        // At or below the base: nothing to do. Beyond the last entry: refused.
        log.write(&[purge(12), purge(5)]).unwrap();
        assert_eq!(log.base(), LogId::new(2, 12));
        let what = invalid(log.write(&[purge(16)]));
        assert!(what.contains("purging up to entry 16"), "{what}");
    }
    let mut log = LmdbLog::open(dir.path(), MAP).unwrap();
    assert_eq!(log.base(), LogId::new(2, 12));
    assert_eq!(log.first_index(), 13);
    let loaded = log.load().unwrap();
    assert_eq!(loaded.base, LogId::new(2, 12));
    assert_eq!(loaded.first_index, 13);
    assert_eq!(
        loaded.entries,
        (13..=15).map(|i| entry(2, i)).collect::<Vec<_>>()
    );
    assert_eq!(
        log.read_range(13, 14).unwrap(),
        vec![entry(2, 13), entry(2, 14)]
    );

    // Purging everything leaves an empty log whose last id is the base.
    log.write(&[purge(15)]).unwrap();
    assert_eq!(log.last_log_id(), LogId::new(2, 15));
    assert_eq!((log.first_index(), log.last_index()), (16, 15));
    let loaded = log.load().unwrap();
    assert!(loaded.entries.is_empty());
    assert_eq!((loaded.base, loaded.first_index), (LogId::new(2, 15), 16));
    // Appends continue after the base, never below its term.
    let what = invalid(log.write(&[append(vec![entry(1, 16)])]));
    assert!(what.contains("below term 2"), "{what}");
    log.write(&[append(vec![entry(2, 16)])]).unwrap();
    drop(log);
    let log = LmdbLog::open(dir.path(), MAP).unwrap();
    assert_eq!(log.load().unwrap().entries, vec![entry(2, 16)]);
}

#[test]
fn append_and_purge_in_one_op_and_truncation_stays_above_the_base() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = LmdbLog::open(dir.path(), MAP).unwrap();
    seed(&mut log);
    // Purge is applied after the op's appends, so it may cover them.
    log.write(&[PersistOp {
        entries: vec![entry(2, 16), entry(2, 17)],
        purge_to: Some(16),
        ..PersistOp::default()
    }])
    .unwrap();
    assert_eq!(log.base(), LogId::new(2, 16));
    let what = invalid(log.write(&[PersistOp {
        truncate_from: Some(16),
        ..PersistOp::default()
    }]));
    assert!(what.contains("compacted"), "{what}");
    // Truncating everything above the base leaves last == base.
    log.write(&[PersistOp {
        truncate_from: Some(17),
        ..PersistOp::default()
    }])
    .unwrap();
    assert_eq!(log.last_log_id(), LogId::new(2, 16));
    assert!(log.load().unwrap().entries.is_empty());
}

#[test]
fn reset_replaces_the_log_then_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = LmdbLog::open(dir.path(), MAP).unwrap();
        seed(&mut log);
        // The snapshot's term is above the hard state's: refused unless the op raises it.
        let what = invalid(log.write(&[PersistOp {
            reset_to: Some(LogId::new(3, 100)),
            ..PersistOp::default()
        }]));
        assert!(what.contains("hard state term 2"), "{what}");
        assert_eq!(log.last_index(), 15);
        assert_eq!(log.base(), LogId::new(0, 0));

        log.write(&[PersistOp {
            reset_to: Some(LogId::new(3, 100)),
            hard_state: Some(hs(3)),
            entries: vec![entry(3, 101)],
            ..PersistOp::default()
        }])
        .unwrap();
        assert_eq!(log.base(), LogId::new(3, 100));
        assert_eq!(log.first_index(), 101);
        assert_eq!(log.last_log_id(), LogId::new(3, 101));
        let what = invalid(log.write(&[append(vec![entry(3, 103)])]));
        assert!(what.contains("next index is 102"), "{what}");
        // A reset to a position below the current one is allowed too (the caller decides).
        log.write(&[PersistOp {
            reset_to: Some(LogId::new(3, 50)),
            ..PersistOp::default()
        }])
        .unwrap();
        assert_eq!(log.last_log_id(), LogId::new(3, 50));
        log.write(&[
            append(vec![entry(3, 51), entry(4, 52)]),
            PersistOp {
                hard_state: Some(hs(4)),
                ..PersistOp::default()
            },
        ])
        .unwrap();
    }
    let log = LmdbLog::open(dir.path(), MAP).unwrap();
    let loaded = log.load().unwrap();
    assert_eq!(loaded.base, LogId::new(3, 50));
    assert_eq!(loaded.first_index, 51);
    assert_eq!(loaded.entries, vec![entry(3, 51), entry(4, 52)]);
    assert_eq!(loaded.hard_state, hs(4));
}

/// Runs `f` on the raw databases, with the store closed.
fn with_raw(
    dir: &Path,
    f: impl FnOnce(
        &mut heed::RwTxn,
        Database<'static, U64<BigEndian>, RawBytes>,
        Database<'static, Str, RawBytes>,
    ),
) {
    let mut opts = EnvOpenOptions::new().read_txn_without_tls();
    opts.map_size(MAP).max_dbs(2);
    let env = unsafe { opts.open(dir) }.unwrap();
    let rtxn = env.read_txn().unwrap();
    let (entries, meta) = env
        .open_databases_and_commit(rtxn, |dbo, rtxn| -> Result<_, heed::Error> {
            let entries = dbo
                .open_database::<U64<BigEndian>, RawBytes>(rtxn, Some(ENTRIES_DB))?
                .unwrap();
            let meta = dbo
                .open_database::<Str, RawBytes>(rtxn, Some(META_DB))?
                .unwrap();
            Ok(heed::CommitOrAbort::<_, ()>::Commit((entries, meta)))
        })
        .unwrap()
        .unwrap_commit();
    let mut wtxn = env.write_txn().unwrap();
    f(&mut wtxn, entries, meta);
    wtxn.commit().unwrap();
}

/// A closed log with entries 1..=15 compacted up to (1, 4).
fn purged(dir: &Path) {
    let mut log = LmdbLog::open(dir, MAP).unwrap();
    seed(&mut log);
    log.write(&[purge(4)]).unwrap();
}

#[test]
fn damage_around_the_base_is_detected() {
    // A gap right after the base.
    let dir = tempfile::tempdir().unwrap();
    purged(dir.path());
    with_raw(dir.path(), |wtxn, entries, _| {
        assert!(entries.delete(wtxn, &5).unwrap());
    });
    let what = corrupt_message(LmdbLog::open(dir.path(), MAP));
    assert!(what.contains("log entry 5 is missing"), "{what}");

    // A gap further on is caught by load.
    let dir = tempfile::tempdir().unwrap();
    purged(dir.path());
    with_raw(dir.path(), |wtxn, entries, _| {
        assert!(entries.delete(wtxn, &9).unwrap());
    });
    let log = LmdbLog::open(dir.path(), MAP).unwrap();
    let what = corrupt_message(log.load());
    assert!(what.contains("log entry 9 is missing"), "{what}");
    drop(log);

    // An entry below the base.
    let dir = tempfile::tempdir().unwrap();
    purged(dir.path());
    with_raw(dir.path(), |wtxn, entries, _| {
        let value = codec::encode_sealed(&entry(1, 3)).unwrap();
        entries.put(wtxn, &3, &value).unwrap();
    });
    let what = corrupt_message(LmdbLog::open(dir.path(), MAP));
    assert!(what.contains("log entry 3 is stored"), "{what}");

    // A base whose term is above the entries after it.
    let dir = tempfile::tempdir().unwrap();
    purged(dir.path());
    with_raw(dir.path(), |wtxn, _, meta| {
        let value = codec::encode_sealed(&LogId::new(5, 4)).unwrap();
        meta.put(wtxn, BASE_KEY, &value).unwrap();
    });
    let what = corrupt_message(LmdbLog::open(dir.path(), MAP));
    assert!(
        what.contains("log entry 5: term 1 is lower than term 5 of the last compacted entry"),
        "{what}"
    );

    // A damaged base record.
    let dir = tempfile::tempdir().unwrap();
    purged(dir.path());
    with_raw(dir.path(), |wtxn, _, meta| {
        let mut value = meta.get(wtxn, BASE_KEY).unwrap().unwrap().to_vec();
        value[0] ^= 1;
        meta.put(wtxn, BASE_KEY, &value).unwrap();
    });
    let what = corrupt_message(LmdbLog::open(dir.path(), MAP));
    assert!(what.contains("log base"), "{what}");
}

#[test]
fn purging_keeps_the_file_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.mdb");
    let mut log = LmdbLog::open(dir.path(), MAP).unwrap();
    log.write(&[PersistOp {
        hard_state: Some(hs(1)),
        ..PersistOp::default()
    }])
    .unwrap();
    let payload = Bytes::from(vec![0xAB; 1024]);
    let mut next = 1;
    let mut sizes = Vec::new();
    for _round in 0..40 {
        // Several commits per round, as the node writes them, then a purge keeping 50 entries.
        for _ in 0..10 {
            let batch: Vec<Entry> = (next..next + 20)
                .map(|index| Entry {
                    term: 1,
                    index,
                    payload: EntryPayload::Command(payload.clone()),
                })
                .collect();
            next += 20;
            log.write(&[append(batch)]).unwrap();
        }
        log.write(&[purge(next - 51)]).unwrap();
        sizes.push(std::fs::metadata(&file).unwrap().len());
    }
    let written = (next - 1) * 1024;
    let (warm, last) = (sizes[9], sizes[39]);
    assert!(
        last <= warm + warm / 4,
        "the file kept growing while purging: {sizes:?}"
    );
    assert!(
        last * 4 < written,
        "file of {last} bytes for {written} bytes written: {sizes:?}"
    );
    assert_eq!(log.first_index(), next - 50);
    assert_eq!(log.load().unwrap().entries.len(), 50);
}
