//! The multi-region state of the key-value state machine: local writes are versioned and put in
//! the outbox only once another region is registered; batches from another region apply once
//! each, in order, resolving conflicts; acknowledgements trim the outbox; and everything travels
//! in snapshots (format version 3).

use bytes::Bytes;
use raftix::core::{Entry, EntryPayload};
use raftix::regions::{local_write, ConflictPolicy, Hlc, Strategy};
use raftix::state_machine::StateMachine;
use raftix::storage::kv_regions::{RegionChange, RemoteMutation};
use raftix::storage::{KvCommand, KvOutput, KvRequest, KvResponse, KvStateMachine};

const MAP: usize = 64 << 20;

fn open(dir: &std::path::Path) -> KvStateMachine {
    KvStateMachine::open(dir, MAP).expect("open")
}

fn entry(index: u64, at_ms: u64, command: KvCommand) -> Entry {
    let request = KvRequest {
        request_id: None,
        issued_at_ms: at_ms,
        command,
    };
    Entry {
        term: 1,
        index,
        payload: EntryPayload::Command(request.encode()),
    }
}

fn apply(sm: &mut KvStateMachine, entries: &[Entry]) -> Vec<KvOutput> {
    sm.apply(entries)
        .expect("apply")
        .iter()
        .map(|o| KvResponse::decode(o).expect("response").output)
        .collect()
}

fn put(key: &str, value: &str) -> KvCommand {
    KvCommand::Put {
        key: key.into(),
        value: Bytes::from(value.to_string()),
    }
}

fn add_us() -> KvCommand {
    KvCommand::Region(RegionChange::Add {
        local: "eu".into(),
        id: "us".into(),
        endpoints: vec!["127.0.0.1:1".into()],
    })
}

/// A mutation made in region `us` (which had seen nothing of `eu`).
fn from_us(seq: u64, key: &str, value: &str, at_ms: u64) -> RemoteMutation {
    let hlc = Hlc::default().tick(at_ms);
    RemoteMutation {
        seq,
        key: key.into(),
        version: local_write(None, Some(Bytes::from(value.to_string())), "us", hlc),
    }
}

#[test]
fn writes_are_versioned_and_queued_only_once_a_remote_region_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sm = open(dir.path());
    apply(&mut sm, &[entry(1, 1_000, put("before", "1"))]);
    let reader = sm.reader();
    assert_eq!(reader.versions("before").expect("read"), None);
    assert!(reader.outbox(1, 10).expect("outbox").is_empty());
    assert!(!reader.regions_active(), "no remote region yet");

    let out = apply(
        &mut sm,
        &[entry(2, 2_000, add_us()), entry(3, 3_000, put("k", "v1"))],
    );
    assert_eq!(out, vec![KvOutput::Region, KvOutput::Put]);
    assert!(
        reader.regions_active(),
        "known in memory once the region change is applied"
    );
    let versions = reader.versions("k").expect("read").expect("versioned");
    assert_eq!(versions.current(), Some(&Bytes::from("v1")));
    assert_eq!(versions.siblings[0].origin, "eu");
    assert_eq!(versions.siblings[0].hlc.physical_ms, 3_000);
    let outbox = reader.outbox(1, 10).expect("outbox");
    assert_eq!(outbox.len(), 1);
    assert_eq!((outbox[0].seq, outbox[0].key.as_str()), (1, "k"));
    let state = reader.regions_state().expect("state");
    assert_eq!(state.local.as_deref(), Some("eu"));
    assert_eq!(state.last_seq(), 1);
    // A later local write saw the first one: it supersedes it, with a later timestamp even if
    // the entry's clock went backwards.
    apply(&mut sm, &[entry(4, 2_500, put("k", "v2"))]);
    let v2 = reader.versions("k").expect("read").expect("versioned");
    assert!(v2.siblings[0].hlc > versions.siblings[0].hlc);
    assert_eq!(reader.outbox(1, 10).expect("outbox").len(), 2);
}

#[test]
fn batches_apply_once_in_order_and_conflicts_are_resolved_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sm = open(dir.path());
    let reader = sm.reader();
    let policy = ConflictPolicy {
        default: Strategy::LatestTimestamp,
        prefixes: [("n/".to_string(), Strategy::Custom("max".into()))].into(),
    };
    apply(
        &mut sm,
        &[
            entry(1, 1_000, add_us()),
            entry(2, 1_000, KvCommand::Region(RegionChange::SetPolicy(policy))),
            entry(3, 5_000, put("x", "eu-x")),
            entry(4, 5_000, put("n/1", "7")),
        ],
    );
    // us wrote x earlier (4 s) and n/1 = 42 concurrently, without seeing eu's writes.
    let batch = vec![
        from_us(1, "x", "us-x", 4_000),
        from_us(2, "n/1", "42", 6_000),
    ];
    let apply_batch = |index, mutations: Vec<RemoteMutation>| {
        entry(
            index,
            7_000,
            KvCommand::RegionApply {
                from: "us".into(),
                after: 0,
                mutations,
            },
        )
    };
    let out = apply(&mut sm, &[apply_batch(5, batch.clone())]);
    assert_eq!(out, vec![KvOutput::RegionApplied { applied: 2 }]);
    // latest-timestamp: eu's later write wins; custom:max: 42.
    assert_eq!(reader.get("x").expect("get"), Some(Bytes::from("eu-x")));
    assert_eq!(reader.get("n/1").expect("get"), Some(Bytes::from("42")));
    let stats = reader.regions_state().expect("state").stats;
    assert_eq!(stats.total, 2);
    assert_eq!(stats.by_strategy.get("latest-timestamp"), Some(&1));
    assert_eq!(stats.by_strategy.get("custom:max"), Some(&1));
    // The same batch again (a lost acknowledgement) changes nothing.
    let out = apply(&mut sm, &[apply_batch(6, batch)]);
    assert_eq!(out, vec![KvOutput::RegionApplied { applied: 2 }]);
    assert_eq!(reader.regions_state().expect("state").stats.total, 2);
    // A gap is refused.
    let out = apply(
        &mut sm,
        &[apply_batch(7, vec![from_us(4, "y", "?", 8_000)])],
    );
    assert!(
        matches!(&out[0], KvOutput::Rejected { reason } if reason.contains("gap")),
        "{out:?}"
    );
    assert_eq!(reader.get("y").expect("get"), None);
    // An unknown region is refused.
    let out = apply(
        &mut sm,
        &[entry(
            8,
            9_000,
            KvCommand::RegionApply {
                from: "ap".into(),
                after: 0,
                mutations: vec![from_us(1, "z", "?", 9_000)],
            },
        )],
    );
    assert!(matches!(&out[0], KvOutput::Rejected { .. }), "{out:?}");
}

#[test]
fn acknowledgements_trim_the_outbox_and_snapshots_carry_the_region_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sm = open(dir.path());
    let reader = sm.reader();
    let mut entries = vec![entry(1, 1_000, add_us())];
    for i in 0..5u64 {
        entries.push(entry(2 + i, 2_000 + i, put(&format!("k{i}"), "v")));
    }
    apply(&mut sm, &entries);
    assert_eq!(reader.outbox(1, 10).expect("outbox").len(), 5);
    let ack = KvCommand::RegionAcked {
        region: "us".into(),
        seq: 3,
    };
    assert_eq!(
        apply(&mut sm, &[entry(7, 3_000, ack)]),
        vec![KvOutput::Region]
    );
    let left: Vec<u64> = reader
        .outbox(1, 10)
        .expect("outbox")
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(left, vec![4, 5]);
    assert_eq!(
        reader.regions_state().expect("state").remotes["us"].acked,
        3
    );

    let mut bytes = Vec::new();
    sm.snapshot()
        .expect("snapshot")
        .write_to(&mut bytes)
        .expect("write");
    let other = tempfile::tempdir().expect("tempdir");
    let mut restored = open(other.path());
    restored.restore(7, &mut bytes.as_slice()).expect("restore");
    let r = restored.reader();
    assert_eq!(
        r.regions_state().expect("state"),
        reader.regions_state().expect("state")
    );
    assert_eq!(
        r.outbox(1, 10).expect("outbox"),
        reader.outbox(1, 10).expect("outbox")
    );
    assert_eq!(
        r.versions("k2").expect("read"),
        reader.versions("k2").expect("read")
    );
}

#[test]
fn a_write_made_while_no_region_is_linked_drops_the_stale_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sm = open(dir.path());
    let reader = sm.reader();
    apply(
        &mut sm,
        &[
            entry(1, 1_000, add_us()),
            entry(2, 2_000, put("k", "versioned")),
            entry(
                3,
                2_000,
                KvCommand::Region(RegionChange::Remove { id: "us".into() }),
            ),
            entry(4, 3_000, put("k", "unlinked")),
        ],
    );
    assert_eq!(
        reader.versions("k").expect("read"),
        None,
        "stale version kept"
    );
    assert_eq!(reader.get("k").expect("get"), Some(Bytes::from("unlinked")));
    assert!(
        reader.outbox(1, 10).expect("outbox").is_empty(),
        "trimmed on removal"
    );
}

/// A region whose outbox was numbered for other regions before this one was registered there
/// (or that this region removed and added again) ships its first entry with a sequence past 1:
/// with nothing applied from it yet, that is where this region starts; from then on gaps are
/// refused. (Refusing it left the link stuck for good; found by `tests/regions_registry.rs`.)
#[test]
fn the_first_batch_from_a_region_may_start_past_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sm = open(dir.path());
    let reader = sm.reader();
    let apply_batch = |index, mutations: Vec<RemoteMutation>| {
        entry(
            index,
            7_000,
            KvCommand::RegionApply {
                from: "us".into(),
                after: 0,
                mutations,
            },
        )
    };
    let out = apply(
        &mut sm,
        &[
            entry(1, 1_000, add_us()),
            apply_batch(
                2,
                vec![from_us(41, "a", "1", 2_000), from_us(42, "b", "2", 2_001)],
            ),
        ],
    );
    assert_eq!(out[1], KvOutput::RegionApplied { applied: 42 });
    assert_eq!(reader.get("b").expect("get"), Some(Bytes::from("2")));
    let out = apply(
        &mut sm,
        &[apply_batch(3, vec![from_us(44, "c", "?", 3_000)])],
    );
    assert!(
        matches!(&out[0], KvOutput::Rejected { reason } if reason.contains("gap")),
        "{out:?}"
    );
    let out = apply(
        &mut sm,
        &[apply_batch(4, vec![from_us(43, "c", "3", 3_000)])],
    );
    assert_eq!(out[0], KvOutput::RegionApplied { applied: 43 });
}

/// A sender that removed this region and added it again resumes past what this region applied:
/// its batch says where it resumes (`after`), and the mutations follow from there. Without it
/// the batch would be a gap, refused for good (the link stuck).
#[test]
fn a_batch_resuming_after_the_senders_cursor_is_not_a_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sm = open(dir.path());
    let reader = sm.reader();
    let batch = |index, after, mutations| {
        entry(
            index,
            9_000,
            KvCommand::RegionApply {
                from: "us".into(),
                after,
                mutations,
            },
        )
    };
    let out = apply(
        &mut sm,
        &[
            entry(1, 1_000, add_us()),
            batch(
                2,
                0,
                vec![from_us(1, "a", "1", 2_000), from_us(2, "b", "2", 2_000)],
            ),
            // us removed eu, wrote 3..=9 for other regions, added eu back: resumes after 9.
            batch(3, 9, vec![from_us(10, "c", "10", 3_000)]),
        ],
    );
    assert_eq!(out[2], KvOutput::RegionApplied { applied: 10 }, "{out:?}");
    assert_eq!(reader.get("c").expect("get"), Some(Bytes::from("10")));
    // Without the cursor, the same jump is a gap.
    let out = apply(&mut sm, &[batch(4, 0, vec![from_us(20, "d", "20", 4_000)])]);
    assert!(
        matches!(&out[0], KvOutput::Rejected { reason } if reason.contains("gap")),
        "{out:?}"
    );
}
