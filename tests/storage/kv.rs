//! Integration tests of the built-in key-value state machine.

use crate::fixtures::{b, cas_k, cmd, outputs, put_entry as put};
use bytes::Bytes;
use raftix::core::{Entry, EntryPayload};
use raftix::state_machine::{StateMachine, StateMachineError};
use raftix::storage::{KvCommand, KvOutput, KvStateMachine};

const MAP: usize = 16 << 20;

#[test]
fn put_get_delete_cas_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = KvStateMachine::open(dir.path(), MAP).unwrap();
    let reader = sm.reader();
    let cas = cas_k;
    let out = outputs(
        &mut sm,
        &[
            put(1, "k", "v1"),
            cas(2, Some("nope"), Some("x")),
            cas(3, Some("v1"), Some("v2")),
            cas(4, None, Some("y")),
            cmd(5, KvCommand::Delete { key: "k".into() }),
            cmd(6, KvCommand::Delete { key: "k".into() }),
            cas(7, None, Some("v3")),
            Entry {
                term: 1,
                index: 8,
                payload: EntryPayload::Noop,
            },
        ],
    );
    assert_eq!(
        out,
        vec![
            KvOutput::Put,
            KvOutput::Cas {
                swapped: false,
                current: Some(b("v1"))
            },
            KvOutput::Cas {
                swapped: true,
                current: Some(b("v2"))
            },
            KvOutput::Cas {
                swapped: false,
                current: Some(b("v2"))
            },
            KvOutput::Delete { existed: true },
            KvOutput::Delete { existed: false },
            KvOutput::Cas {
                swapped: true,
                current: Some(b("v3"))
            },
            KvOutput::Noop,
        ]
    );
    assert_eq!(reader.get("k").unwrap(), Some(b("v3")));
    assert_eq!(reader.get("missing").unwrap(), None);
    // CAS to None deletes.
    let out = outputs(&mut sm, &[cas(9, Some("v3"), None)]);
    assert_eq!(
        out,
        vec![KvOutput::Cas {
            swapped: true,
            current: None
        }]
    );
    assert_eq!(reader.get("k").unwrap(), None);
    assert_eq!(sm.applied_index(), 9);
    assert_eq!(reader.applied_index().unwrap(), 9);
}

#[test]
fn applied_index_and_data_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut sm = KvStateMachine::open(dir.path(), MAP).unwrap();
        assert_eq!(sm.applied_index(), 0);
        outputs(&mut sm, &[put(1, "a", "1"), put(2, "b", "2")]);
    }
    let sm = KvStateMachine::open(dir.path(), MAP).unwrap();
    assert_eq!(sm.applied_index(), 2);
    assert_eq!(sm.reader().get("b").unwrap(), Some(b("2")));
}

#[test]
fn already_applied_entries_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = KvStateMachine::open(dir.path(), MAP).unwrap();
    outputs(&mut sm, &[put(1, "a", "1"), put(2, "a", "2")]);
    // Re-delivery of 1..=2 (e.g. after a restart) plus a new entry 3.
    let out = outputs(
        &mut sm,
        &[put(1, "a", "old"), put(2, "a", "old"), put(3, "c", "3")],
    );
    assert_eq!(out, vec![KvOutput::Noop, KvOutput::Noop, KvOutput::Put]);
    assert_eq!(sm.reader().get("a").unwrap(), Some(b("2")));
    assert_eq!(sm.applied_index(), 3);
    // Only old entries: nothing changes.
    let out = outputs(&mut sm, &[put(2, "a", "old")]);
    assert_eq!(out, vec![KvOutput::Noop]);
    assert_eq!(sm.reader().get("a").unwrap(), Some(b("2")));
}

#[test]
fn gap_is_an_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = KvStateMachine::open(dir.path(), MAP).unwrap();
    outputs(&mut sm, &[put(1, "a", "1")]);
    let err = sm.apply(&[put(3, "a", "3")]).unwrap_err();
    assert!(
        matches!(&err, StateMachineError::Corrupt(m) if m.contains("entry 3") && m.contains("expected entry 2")),
        "{err:?}"
    );
    // A gap inside a batch aborts the whole batch.
    let err = sm.apply(&[put(2, "a", "2"), put(4, "a", "4")]).unwrap_err();
    assert!(matches!(err, StateMachineError::Corrupt(_)), "{err:?}");
    assert_eq!(sm.applied_index(), 1);
    assert_eq!(sm.reader().get("a").unwrap(), Some(b("1")));
    assert_eq!(sm.reader().applied_index().unwrap(), 1);
}

#[test]
fn malformed_command_is_rejected_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = KvStateMachine::open(dir.path(), MAP).unwrap();
    let garbage = Entry {
        term: 1,
        index: 1,
        payload: EntryPayload::Command(Bytes::from_static(b"\xff\xfe garbage")),
    };
    let long_key = put(2, &"k".repeat(600), "v");
    let empty_key = put(3, "", "v");
    let out = outputs(
        &mut sm,
        &[garbage.clone(), long_key, empty_key, put(4, "ok", "v")],
    );
    assert!(
        matches!(&out[0], KvOutput::Rejected { reason } if reason.contains("malformed")),
        "{out:?}"
    );
    assert!(matches!(&out[1], KvOutput::Rejected { .. }), "{out:?}");
    assert!(matches!(&out[2], KvOutput::Rejected { .. }), "{out:?}");
    assert_eq!(out[3], KvOutput::Put);
    assert_eq!(sm.applied_index(), 4);
    assert_eq!(sm.reader().get("").unwrap(), None);
    assert_eq!(sm.reader().get(&"k".repeat(600)).unwrap(), None);
    assert_eq!(sm.reader().get("ok").unwrap(), Some(b("v")));
    // Deterministic: another replica produces the same output bytes.
    let dir2 = tempfile::tempdir().unwrap();
    let mut other = KvStateMachine::open(dir2.path(), MAP).unwrap();
    let again = other.apply(&[garbage]).unwrap();
    assert_eq!(again[0], out[0].encode());
}

#[test]
fn scan_is_ordered_with_prefix_after_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = KvStateMachine::open(dir.path(), MAP).unwrap();
    let keys = [
        "user/c", "user/a", "admin/x", "user/b", "users", "user/d", "zzz",
    ];
    let entries: Vec<Entry> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| put(i as u64 + 1, k, &format!("v-{k}")))
        .collect();
    outputs(&mut sm, &entries);
    let reader = sm.reader();
    let names = |v: Vec<(String, Bytes)>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(
        names(reader.scan("user/", None, 100).unwrap()),
        ["user/a", "user/b", "user/c", "user/d"]
    );
    let page = reader.scan("user/", None, 2).unwrap();
    assert_eq!(page[0], ("user/a".to_string(), b("v-user/a")));
    assert_eq!(names(page), ["user/a", "user/b"]);
    assert_eq!(
        names(reader.scan("user/", Some("user/b"), 2).unwrap()),
        ["user/c", "user/d"]
    );
    assert!(reader.scan("user/", Some("user/d"), 2).unwrap().is_empty());
    // `after` below the prefix starts at the prefix; above it yields nothing.
    assert_eq!(
        names(reader.scan("user/", Some("a"), 1).unwrap()),
        ["user/a"]
    );
    assert!(reader.scan("user/", Some("v"), 10).unwrap().is_empty());
    assert_eq!(reader.scan("", None, 100).unwrap().len(), keys.len());
    assert!(reader.scan("", None, 0).unwrap().is_empty());
    assert_eq!(names(reader.scan("", Some(""), 1).unwrap()), ["admin/x"]);
    assert_eq!(
        names(reader.scan("", Some("user/d"), 10).unwrap()),
        ["users", "zzz"]
    );
}

#[test]
fn reader_works_from_other_threads() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = KvStateMachine::open(dir.path(), MAP).unwrap();
    outputs(&mut sm, &[put(1, "a", "1")]);
    let reader = sm.reader();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let r = reader.clone();
            std::thread::spawn(move || r.get("a").unwrap())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), Some(b("1")));
    }
}
