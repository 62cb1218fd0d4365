//! Integration tests of the key-value state machine's snapshot and restore: content, isolation
//! from later writes, the exactly-once table and its clock, replacement of existing data, and
//! refusal of damaged streams without touching the store.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::fixtures::{cmd, put_entry as put, records, reseal, responses};
use bytes::Bytes;
use raftix::core::{Entry, EntryPayload, LogId, Membership, SnapshotMeta};
use raftix::state_machine::{StateMachine, StateMachineError};
use raftix::storage::{
    open_payload, DedupConfig, KvCommand, KvReader, KvRequest, KvResponse, KvStateMachine,
    SnapshotStore, SnapshotWriter, KV_SNAPSHOT_VERSION,
};

const MAP: usize = 64 << 20;
const DEDUP: DedupConfig = DedupConfig {
    ttl_ms: 3_000,
    max_entries: 10_000,
};

fn open(dir: &std::path::Path) -> KvStateMachine {
    KvStateMachine::open_with(dir, MAP, DEDUP).unwrap()
}

fn req(index: u64, id: &str, at: u64, command: KvCommand) -> Entry {
    let request = KvRequest {
        request_id: Some(id.to_string()),
        issued_at_ms: at,
        command,
    };
    Entry {
        term: 1,
        index,
        payload: EntryPayload::Command(request.encode()),
    }
}

fn incr(key: &str, n: u64) -> KvCommand {
    KvCommand::Put {
        key: key.into(),
        value: Bytes::from(n.to_string()),
    }
}

fn everything(reader: &KvReader) -> Vec<(String, Bytes)> {
    reader.scan("", None, usize::MAX).unwrap()
}

fn snapshot_bytes(sm: &mut KvStateMachine) -> Vec<u8> {
    let mut out = Vec::new();
    sm.snapshot().unwrap().write_to(&mut out).unwrap();
    out
}

/// A store with 2000 keys (index 1..=2000), 200 requests with ids issued at 1000..1200
/// (2001..=2200), and a last request issued at 3900 (2201): the dedup clock is 3900.
/// Returns the responses of the 200 requests.
fn seed_big(sm: &mut KvStateMachine) -> Vec<KvResponse> {
    let entries: Vec<Entry> = (1..=2000u64)
        .map(|i| {
            put(
                i,
                &format!("key-{i:05}"),
                &format!("value-{i}-{}", "x".repeat(50)),
            )
        })
        .collect();
    for chunk in entries.chunks(500) {
        sm.apply(chunk).unwrap();
    }
    let requests: Vec<Entry> = (0..200u64)
        .map(|i| req(2001 + i, &format!("req-{i}"), 1_000 + i, incr("counter", i)))
        .collect();
    let out = responses(sm, &requests);
    sm.apply(&[req(2201, "last", 3_900, incr("last", 1))])
        .unwrap();
    assert_eq!(sm.applied_index(), 2201);
    out
}

#[test]
fn snapshot_restores_everything_and_ignores_later_writes() {
    let src_dir = tempfile::tempdir().unwrap();
    let mut src = open(src_dir.path());
    let src_reader = src.reader();
    let originals = seed_big(&mut src);
    let expected = everything(&src_reader);
    assert_eq!(expected.len(), 2002);
    let expected_dedup = src_reader.dedup_len().unwrap();
    assert_eq!(expected_dedup, 201);

    let source = src.snapshot().unwrap();
    // Writes after the capture must not reach the snapshot: new keys, an overwrite, a delete and
    // a new request id.
    src.apply(&[
        put(2202, "late", "1"),
        put(2203, "key-00001", "overwritten"),
        cmd(
            2204,
            KvCommand::Delete {
                key: "key-00002".into(),
            },
        ),
        req(2205, "late-req", 3_950, incr("late2", 1)),
    ])
    .unwrap();
    // Written on another thread, as the node does.
    let bytes = std::thread::spawn(move || {
        let mut out = Vec::new();
        source.write_to(&mut out).unwrap();
        out
    })
    .join()
    .unwrap();

    let dst_dir = tempfile::tempdir().unwrap();
    let mut dst = open(dst_dir.path());
    let reader = dst.reader();
    dst.restore(2201, &mut &bytes[..]).unwrap();
    assert_eq!(dst.applied_index(), 2201);
    assert_eq!(reader.applied_index().unwrap(), 2201);
    assert_eq!(everything(&reader), expected);
    assert_eq!(reader.get("late").unwrap(), None);
    assert_eq!(reader.dedup_len().unwrap(), expected_dedup);

    // Every request id is still answered from the table, with its original output and index.
    let again: Vec<Entry> = (0..200u64)
        .map(|i| {
            req(
                2202 + i,
                &format!("req-{i}"),
                1_000 + i,
                incr("counter", 999),
            )
        })
        .collect();
    let answers = responses(&mut dst, &again);
    for (answer, original) in answers.iter().zip(&originals) {
        assert!(answer.duplicate, "{answer:?}");
        assert_eq!(answer.first_index, original.first_index);
        assert_eq!(answer.output, original.output);
    }
    assert_eq!(reader.get("counter").unwrap(), Some(Bytes::from("199")));

    // The dedup clock came along (3900, TTL 3000: records issued before 900 expire). A request
    // issued at 0 is evicted by the next request; on a store whose clock is 0 it would not be.
    let probe = |sm: &mut KvStateMachine, first: u64| {
        let out = responses(
            sm,
            &[
                req(first, "p", 0, incr("probe", 1)),
                req(first + 1, "q", 0, incr("probe", 2)),
                req(first + 2, "p", 0, incr("probe", 3)),
            ],
        );
        out[2].duplicate
    };
    assert!(
        !probe(&mut dst, 2402),
        "restored clock must expire the probe"
    );
    let ctl_dir = tempfile::tempdir().unwrap();
    let mut control = open(ctl_dir.path());
    assert!(probe(&mut control, 1), "with clock 0 the probe stays");

    // Restored state survives a reopen.
    drop(reader);
    drop(dst);
    let dst = open(dst_dir.path());
    assert_eq!(dst.applied_index(), 2404);
    assert_eq!(
        dst.reader().get("key-00002").unwrap(),
        Some(Bytes::from(format!("value-2-{}", "x".repeat(50))))
    );
}

#[test]
fn restore_replaces_existing_data_and_sets_the_given_index() {
    let src_dir = tempfile::tempdir().unwrap();
    let mut src = open(src_dir.path());
    src.apply(&[put(1, "a", "1"), req(2, "r", 10, incr("b", 2))])
        .unwrap();
    let bytes = snapshot_bytes(&mut src);
    let expected = everything(&src.reader());

    let dst_dir = tempfile::tempdir().unwrap();
    let mut dst = open(dst_dir.path());
    let entries: Vec<Entry> = (1..=50u64)
        .map(|i| req(i, &format!("other-{i}"), 5, incr(&format!("other-{i}"), i)))
        .collect();
    dst.apply(&entries).unwrap();
    let reader = dst.reader();
    assert_eq!(reader.dedup_len().unwrap(), 50);

    // The snapshot is at index 2; the caller says 7: the caller wins (documented).
    dst.restore(7, &mut &bytes[..]).unwrap();
    assert_eq!(everything(&reader), expected);
    assert_eq!(reader.dedup_len().unwrap(), 1);
    assert_eq!(dst.applied_index(), 7);
    assert_eq!(reader.applied_index().unwrap(), 7);
    // The next entry is 8, and the old request ids are forgotten.
    let out = responses(&mut dst, &[req(8, "other-1", 5, incr("x", 1))]);
    assert!(!out[0].duplicate);
    let out = responses(&mut dst, &[req(9, "r", 10, incr("b", 99))]);
    assert!(out[0].duplicate);
    assert_eq!(reader.get("b").unwrap(), Some(Bytes::from("2")));
}

#[test]
fn empty_store_round_trips() {
    let src_dir = tempfile::tempdir().unwrap();
    let mut src = open(src_dir.path());
    let bytes = snapshot_bytes(&mut src);
    let dst_dir = tempfile::tempdir().unwrap();
    let mut dst = open(dst_dir.path());
    dst.apply(&[put(1, "gone", "1")]).unwrap();
    dst.restore(0, &mut &bytes[..]).unwrap();
    assert!(everything(&dst.reader()).is_empty());
    assert_eq!(dst.applied_index(), 0);
}

/// The state a failed restore must leave alone.
fn state_of(sm: &KvStateMachine) -> (u64, u64, Vec<(String, Bytes)>, u64) {
    let reader = sm.reader();
    (
        sm.applied_index(),
        reader.applied_index().unwrap(),
        everything(&reader),
        reader.dedup_len().unwrap(),
    )
}

fn small_snapshot() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path());
    sm.apply(&[
        put(1, "a", "alpha"),
        put(2, "b", "beta"),
        req(3, "r1", 100, incr("c", 3)),
    ])
    .unwrap();
    snapshot_bytes(&mut sm)
}

fn target(dir: &std::path::Path) -> KvStateMachine {
    let mut sm = open(dir);
    sm.apply(&[put(1, "mine", "keep"), req(2, "mine-req", 7, incr("n", 1))])
        .unwrap();
    sm
}

fn corrupt_message(result: Result<(), StateMachineError>) -> String {
    match result {
        Err(StateMachineError::Corrupt(what)) => what,
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn every_truncation_and_flipped_byte_is_refused_and_changes_nothing() {
    let bytes = small_snapshot();
    let dir = tempfile::tempdir().unwrap();
    let mut sm = target(dir.path());
    let before = state_of(&sm);
    for cut in 0..bytes.len() {
        let what = corrupt_message(sm.restore(9, &mut &bytes[..cut]));
        assert!(what.contains("snapshot"), "cut {cut}: {what}");
    }
    for pos in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut damaged = bytes.clone();
            damaged[pos] ^= bit;
            corrupt_message(sm.restore(9, &mut &damaged[..]));
        }
    }
    let mut longer = bytes.clone();
    longer.push(0);
    let what = corrupt_message(sm.restore(9, &mut &longer[..]));
    assert!(what.contains("follow the end record"), "{what}");
    assert_eq!(state_of(&sm), before);
    // The intact stream still restores (the refusals left no half-open transaction behind).
    sm.restore(3, &mut &bytes[..]).unwrap();
    assert_eq!(sm.reader().get("mine").unwrap(), None);
    assert_eq!(sm.reader().get("a").unwrap(), Some(Bytes::from("alpha")));
}

#[test]
fn well_framed_but_invalid_content_is_refused() {
    let bytes = small_snapshot();
    let recs = records(&bytes);
    // header, a, b, c (data), one record per dedup table, end.
    assert_eq!(recs.len(), 8);
    let dir = tempfile::tempdir().unwrap();
    let mut sm = target(dir.path());
    let before = state_of(&sm);

    // Unknown version: body = kind, magic (8), version (4), ...
    let mut forged = bytes.clone();
    let (at, _) = recs[0];
    forged[at + 8 + 1 + 8..at + 8 + 1 + 12]
        .copy_from_slice(&(KV_SNAPSHOT_VERSION + 1).to_le_bytes());
    reseal(&mut forged, at);
    let what = corrupt_message(sm.restore(9, &mut &forged[..]));
    let unknown = format!("version {} is unknown", KV_SNAPSHOT_VERSION + 1);
    assert!(what.contains(&unknown), "{what}");

    // A value that fails its seal, in a correctly checksummed record.
    let mut forged = bytes.clone();
    let (at, len) = recs[1];
    forged[at + len - 1] ^= 0x01;
    reseal(&mut forged, at);
    let what = corrupt_message(sm.restore(9, &mut &forged[..]));
    assert!(
        what.contains("data key \"a\"") && what.contains("checksum"),
        "{what}"
    );

    // Records out of key order.
    let mut swapped = bytes[..recs[1].0].to_vec();
    swapped.extend_from_slice(&bytes[recs[2].0..recs[2].0 + recs[2].1]);
    swapped.extend_from_slice(&bytes[recs[1].0..recs[1].0 + recs[1].1]);
    swapped.extend_from_slice(&bytes[recs[3].0..]);
    let what = corrupt_message(sm.restore(9, &mut &swapped[..]));
    assert!(what.contains("out of key order"), "{what}");

    // A record dropped whole: the end record's count no longer matches.
    let mut dropped = bytes[..recs[2].0].to_vec();
    dropped.extend_from_slice(&bytes[recs[3].0..]);
    let what = corrupt_message(sm.restore(9, &mut &dropped[..]));
    assert!(what.contains("end record counts 7"), "{what}");

    // A forged huge length is refused before reading (let alone allocating) the body.
    let mut huge = bytes[..recs[1].0].to_vec();
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    huge.extend_from_slice(&[0; 4]);
    let what = corrupt_message(sm.restore(9, &mut &huge[..]));
    assert!(what.contains("claims 4294967295 bytes"), "{what}");

    // Not a key-value snapshot at all.
    let what = corrupt_message(sm.restore(9, &mut &b"hello, world"[..]));
    assert!(what.contains("snapshot"), "{what}");

    assert_eq!(state_of(&sm), before);
}

#[test]
fn readers_see_the_old_or_the_new_state_never_a_mix() {
    let src_dir = tempfile::tempdir().unwrap();
    let mut src = open(src_dir.path());
    let new: Vec<Entry> = (1..=300u64)
        .map(|i| put(i, &format!("k{i:03}"), "new"))
        .collect();
    src.apply(&new).unwrap();
    let bytes = snapshot_bytes(&mut src);

    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path());
    let old: Vec<Entry> = (1..=300u64)
        .map(|i| put(i, &format!("k{i:03}"), "old"))
        .collect();
    sm.apply(&old).unwrap();
    let reader = sm.reader();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                let all = everything(&reader);
                assert_eq!(all.len(), 300);
                let first = all[0].1.clone();
                assert!(all.iter().all(|(_, v)| *v == first), "mixed state seen");
                seen.insert(first);
            }
            seen
        })
    };
    // Alternate: restore "new" at 300, then write "old" back with entries 301..=600.
    let old_again: Vec<Entry> = (301..=600u64)
        .map(|i| put(i, &format!("k{:03}", i - 300), "old"))
        .collect();
    for _ in 0..5 {
        sm.restore(300, &mut &bytes[..]).unwrap();
        sm.apply(&old_again).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    assert!(seen.contains(&Bytes::from("old")));
}

#[test]
fn snapshot_through_a_snapshot_file_restores_elsewhere() {
    let src_dir = tempfile::tempdir().unwrap();
    let mut src = open(src_dir.path());
    seed_big(&mut src);
    let expected = everything(&src.reader());
    let snaps = tempfile::tempdir().unwrap();
    let meta = SnapshotMeta {
        last: LogId::new(1, src.applied_index()),
        membership: Membership::with_voters([1, 2, 3]),
    };
    let mut writer = SnapshotWriter::create(snaps.path(), &meta).unwrap();
    src.snapshot().unwrap().write_to(&mut writer).unwrap();
    let info = writer.finish().unwrap();
    let mut store = SnapshotStore::open(snaps.path()).unwrap();
    store.install(info).unwrap();
    drop(store);

    let store = SnapshotStore::open(snaps.path()).unwrap();
    let latest = store.latest().unwrap();
    assert_eq!(latest.meta, meta);
    let dst_dir = tempfile::tempdir().unwrap();
    let mut dst = open(dst_dir.path());
    let mut payload = open_payload(latest).unwrap();
    dst.restore(latest.meta.last.index, &mut payload).unwrap();
    assert_eq!(dst.applied_index(), 2201);
    assert_eq!(everything(&dst.reader()), expected);
}
