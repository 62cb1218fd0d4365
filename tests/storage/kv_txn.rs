//! Integration tests of multi-key transactions in the built-in key-value state machine.

use crate::fixtures::{b, cas_k, cmd};
use bytes::Bytes;
use raftix::core::Entry;
use raftix::state_machine::StateMachine;
use raftix::storage::{
    GuardExpect, KvCommand, KvOutput, KvStateMachine, TxnGuard, TxnOp, MAX_KEY_LEN, MAX_TXN_GUARDS,
    MAX_TXN_OPS,
};

const MAP: usize = 16 << 20;

fn put(key: &str, value: &str) -> TxnOp {
    TxnOp::Put {
        key: key.into(),
        value: b(value),
    }
}

fn del(key: &str) -> TxnOp {
    TxnOp::Delete { key: key.into() }
}

fn guard(key: &str, expect: GuardExpect) -> TxnGuard {
    TxnGuard {
        key: key.into(),
        expect,
    }
}

fn txn(index: u64, guards: Vec<TxnGuard>, ops: Vec<TxnOp>) -> Entry {
    cmd(index, KvCommand::Txn { guards, ops })
}

fn apply_one(sm: &mut KvStateMachine, entry: Entry) -> KvOutput {
    let out = sm.apply(&[entry]).unwrap();
    KvOutput::decode(&out[0]).unwrap()
}

fn all(sm: &KvStateMachine) -> Vec<(String, Bytes)> {
    sm.reader().scan("", None, usize::MAX).unwrap()
}

/// Fails unless `out` is a transaction that succeeded.
fn assert_txn_succeeded(out: &KvOutput) {
    assert!(
        matches!(
            out,
            KvOutput::Txn {
                succeeded: true,
                ..
            }
        ),
        "{out:?}"
    );
}

/// A state machine holding a=1, b=2.
fn seeded(dir: &std::path::Path) -> KvStateMachine {
    let mut sm = KvStateMachine::open(dir, MAP).unwrap();
    let out = apply_one(&mut sm, txn(1, vec![], vec![put("a", "1"), put("b", "2")]));
    assert_txn_succeeded(&out);
    sm
}

#[test]
fn failing_second_guard_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = seeded(dir.path());
    let before = all(&sm);
    let out = apply_one(
        &mut sm,
        txn(
            2,
            vec![
                guard("a", GuardExpect::Equals(b("1"))),
                guard("b", GuardExpect::Equals(b("nope"))),
                guard("zzz", GuardExpect::Present),
            ],
            vec![put("a", "X"), del("b"), put("c", "3")],
        ),
    );
    assert_eq!(
        out,
        KvOutput::Txn {
            succeeded: false,
            failed_guard: Some(1),
            results: vec![],
        }
    );
    assert_eq!(all(&sm), before);
    // The entry still counts as applied.
    assert_eq!(sm.applied_index(), 2);
    // Each guard kind fails on its own.
    let cases = [
        (guard("a", GuardExpect::Absent), 3),
        (guard("nope", GuardExpect::Present), 4),
        (guard("nope", GuardExpect::Equals(b("1"))), 5),
    ];
    for (g, index) in cases {
        let out = apply_one(&mut sm, txn(index, vec![g], vec![del("a")]));
        assert!(
            matches!(
                out,
                KvOutput::Txn {
                    succeeded: false,
                    failed_guard: Some(0),
                    ..
                }
            ),
            "{out:?}"
        );
    }
    assert_eq!(all(&sm), before);
}

#[test]
fn ops_apply_in_order_when_guards_hold() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = seeded(dir.path());
    let out = apply_one(
        &mut sm,
        txn(
            2,
            vec![
                guard("a", GuardExpect::Equals(b("1"))),
                guard("b", GuardExpect::Present),
                guard("x", GuardExpect::Absent),
            ],
            vec![
                put("x", "1"),
                del("x"),
                put("y", "first"),
                put("y", "second"),
                del("a"),
                del("never-existed"),
            ],
        ),
    );
    assert_eq!(
        out,
        KvOutput::Txn {
            succeeded: true,
            failed_guard: None,
            results: vec![
                KvOutput::Put,
                KvOutput::Delete { existed: true },
                KvOutput::Put,
                KvOutput::Put,
                KvOutput::Delete { existed: true },
                KvOutput::Delete { existed: false },
            ],
        }
    );
    assert_eq!(
        all(&sm),
        vec![("b".into(), b("2")), ("y".into(), b("second"))]
    );
    // Guards see the state before the entry: a txn guarded on a key it deletes still applies.
    let out = apply_one(
        &mut sm,
        txn(3, vec![guard("y", GuardExpect::Present)], vec![del("y")]),
    );
    assert_txn_succeeded(&out);
    assert_eq!(sm.reader().get("y").unwrap(), None);
}

#[test]
fn limits_are_rejected_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = seeded(dir.path());
    let before = all(&sm);
    let many_guards = vec![guard("a", GuardExpect::Present); MAX_TXN_GUARDS + 1];
    let many_ops = vec![put("k", "v"); MAX_TXN_OPS + 1];
    let long = "k".repeat(MAX_KEY_LEN + 1);
    let rejected = [
        txn(2, many_guards, vec![put("k", "v")]),
        txn(3, vec![], many_ops),
        // A valid first op is not applied when a later one is invalid.
        txn(4, vec![], vec![put("k", "v"), put("", "v")]),
        txn(
            5,
            vec![guard(&long, GuardExpect::Absent)],
            vec![put("k", "v")],
        ),
        txn(6, vec![], vec![put("k", "v"), del(&long)]),
    ];
    for entry in rejected {
        let index = entry.index;
        let out = apply_one(&mut sm, entry);
        assert!(
            matches!(&out, KvOutput::Rejected { reason } if !reason.is_empty()),
            "entry {index}: {out:?}"
        );
    }
    assert_eq!(all(&sm), before);
    assert_eq!(sm.applied_index(), 6);
    // Exactly at the limits is fine, and a key of MAX_KEY_LEN bytes too.
    let max_key = "m".repeat(MAX_KEY_LEN);
    let guards = vec![guard("a", GuardExpect::Present); MAX_TXN_GUARDS];
    let mut ops = vec![put("k", "v"); MAX_TXN_OPS - 1];
    ops.push(put(&max_key, "big"));
    let out = apply_one(&mut sm, txn(7, guards, ops));
    assert!(
        matches!(&out, KvOutput::Txn { succeeded: true, results, .. } if results.len() == MAX_TXN_OPS),
        "{out:?}"
    );
    assert_eq!(sm.reader().get(&max_key).unwrap(), Some(b("big")));
    // An empty transaction is a successful no-op.
    let out = apply_one(&mut sm, txn(8, vec![], vec![]));
    assert_eq!(
        out,
        KvOutput::Txn {
            succeeded: true,
            failed_guard: None,
            results: vec![],
        }
    );
}

#[test]
fn cas_absent_to_absent_and_delete_of_missing_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = KvStateMachine::open(dir.path(), MAP).unwrap();
    let cas = cas_k;
    // Absent stays absent: the swap happens and reports no current value.
    assert_eq!(
        apply_one(&mut sm, cas(1, None, None)),
        KvOutput::Cas {
            swapped: true,
            current: None
        }
    );
    // Expecting a value of an absent key fails and reports it absent.
    assert_eq!(
        apply_one(&mut sm, cas(2, Some("x"), Some("y"))),
        KvOutput::Cas {
            swapped: false,
            current: None
        }
    );
    assert_eq!(
        apply_one(&mut sm, cmd(3, KvCommand::Delete { key: "k".into() })),
        KvOutput::Delete { existed: false }
    );
    let out = apply_one(&mut sm, cmd(4, KvCommand::Delete { key: String::new() }));
    assert!(matches!(out, KvOutput::Rejected { .. }), "{out:?}");
    assert!(all(&sm).is_empty());
}
