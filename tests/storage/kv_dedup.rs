//! Integration tests of the request envelope and the exactly-once table of the key-value state
//! machine.

use crate::fixtures::{b, entry, responses};
use bytes::{Bytes, BytesMut};
use raftix::core::Entry;
use raftix::state_machine::StateMachine;
use raftix::storage::{
    DedupConfig, GuardExpect, KvCommand, KvOutput, KvRequest, KvResponse, KvStateMachine, TxnGuard,
    TxnOp, MAX_REQUEST_ID_LEN, REQUEST_TAG,
};

const MAP: usize = 16 << 20;

fn req(index: u64, id: Option<&str>, at: u64, command: KvCommand) -> Entry {
    let request = KvRequest {
        request_id: id.map(str::to_string),
        issued_at_ms: at,
        command,
    };
    entry(index, request.encode())
}

fn put(key: &str, value: &str) -> KvCommand {
    KvCommand::Put {
        key: key.into(),
        value: b(value),
    }
}

fn del(key: &str) -> KvCommand {
    KvCommand::Delete { key: key.into() }
}

fn fresh(output: KvOutput, first_index: u64) -> KvResponse {
    KvResponse {
        output,
        first_index,
        duplicate: false,
    }
}

fn dup(output: KvOutput, first_index: u64) -> KvResponse {
    KvResponse {
        output,
        first_index,
        duplicate: true,
    }
}

#[test]
fn same_request_id_executes_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = KvStateMachine::open(dir.path(), MAP).unwrap();
    let reader = sm.reader();
    sm.apply(&[entry(1, put("a", "1").encode())]).unwrap();
    // r1 deletes `a`; re-executing it would report `existed: false` and delete the new `a`.
    let out = responses(&mut sm, &[req(2, Some("r1"), 1_000, del("a"))]);
    assert_eq!(out, [fresh(KvOutput::Delete { existed: true }, 2)]);
    sm.apply(&[entry(3, put("a", "again").encode())]).unwrap();
    let out = responses(
        &mut sm,
        &[
            req(4, Some("r1"), 1_001, del("a")),
            // Within one batch too, and whatever command the retry carries.
            req(5, Some("r1"), 1_002, put("a", "other")),
        ],
    );
    let cached = dup(KvOutput::Delete { existed: true }, 2);
    assert_eq!(out, [cached.clone(), cached]);
    assert_eq!(reader.get("a").unwrap(), Some(b("again")));
    assert_eq!(reader.dedup_len().unwrap(), 1);
    // Transactions are deduplicated like any command.
    let t = KvCommand::Txn {
        guards: vec![TxnGuard {
            key: "t".into(),
            expect: GuardExpect::Absent,
        }],
        ops: vec![TxnOp::Put {
            key: "t".into(),
            value: b("1"),
        }],
    };
    let out = responses(
        &mut sm,
        &[
            req(6, Some("t1"), 1_003, t.clone()),
            req(7, Some("t1"), 1_004, t),
        ],
    );
    let ok = KvOutput::Txn {
        succeeded: true,
        failed_guard: None,
        results: vec![KvOutput::Put],
    };
    assert_eq!(out, [fresh(ok.clone(), 6), dup(ok, 6)]);
    assert_eq!(reader.dedup_len().unwrap(), 2);
}

#[test]
fn dedup_table_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut sm = KvStateMachine::open(dir.path(), MAP).unwrap();
        let out = responses(&mut sm, &[req(1, Some("r1"), 5_000, put("a", "1"))]);
        assert_eq!(out, [fresh(KvOutput::Put, 1)]);
    }
    let mut sm = KvStateMachine::open(dir.path(), MAP).unwrap();
    assert_eq!(sm.reader().dedup_len().unwrap(), 1);
    let out = responses(&mut sm, &[req(2, Some("r1"), 5_001, put("a", "2"))]);
    assert_eq!(out, [dup(KvOutput::Put, 1)]);
    assert_eq!(sm.reader().get("a").unwrap(), Some(b("1")));
}

#[test]
fn expired_request_executes_again() {
    let dir = tempfile::tempdir().unwrap();
    let config = DedupConfig {
        ttl_ms: 1_000,
        max_entries: 100,
    };
    let mut sm = KvStateMachine::open_with(dir.path(), MAP, config).unwrap();
    assert_eq!(sm.dedup_config(), config);
    let reader = sm.reader();
    let out = responses(&mut sm, &[req(1, Some("r1"), 10_000, put("a", "1"))]);
    assert_eq!(out, [fresh(KvOutput::Put, 1)]);
    // Exactly ttl_ms later the record is still remembered.
    let out = responses(&mut sm, &[req(2, Some("r1"), 11_000, put("a", "2"))]);
    assert_eq!(out, [dup(KvOutput::Put, 1)]);
    assert_eq!(reader.get("a").unwrap(), Some(b("1")));
    // A later batch issued far in the future evicts it; the same id then executes again.
    let out = responses(
        &mut sm,
        &[
            req(3, Some("other"), 11_001, put("b", "1")),
            req(4, Some("r1"), 11_001, put("a", "3")),
        ],
    );
    assert_eq!(out, [fresh(KvOutput::Put, 3), fresh(KvOutput::Put, 4)]);
    assert_eq!(reader.get("a").unwrap(), Some(b("3")));
    assert_eq!(reader.dedup_len().unwrap(), 2);
    // The clock never goes back: a request stamped in the past by a skewed leader is recorded
    // but already older than the TTL, so the next request evicts it, even after a reopen (the
    // clock is durable).
    let out = responses(&mut sm, &[req(5, Some("late"), 0, put("c", "1"))]);
    assert_eq!(out, [fresh(KvOutput::Put, 5)]);
    assert_eq!(reader.dedup_len().unwrap(), 3);
    drop(reader);
    drop(sm);
    let mut sm = KvStateMachine::open_with(dir.path(), MAP, config).unwrap();
    let out = responses(&mut sm, &[req(6, Some("late"), 0, put("c", "2"))]);
    assert_eq!(out, [fresh(KvOutput::Put, 6)]);
    assert_eq!(sm.reader().dedup_len().unwrap(), 3);
    let out = responses(&mut sm, &[req(7, Some("r1"), 0, put("a", "4"))]);
    assert_eq!(out, [dup(KvOutput::Put, 4)]);
}

#[test]
fn max_entries_evicts_oldest_first_index() {
    let dir = tempfile::tempdir().unwrap();
    let config = DedupConfig {
        ttl_ms: u64::MAX,
        max_entries: 3,
    };
    let mut sm = KvStateMachine::open_with(dir.path(), MAP, config).unwrap();
    // Issue times decrease as indexes increase: eviction must follow the index, not the time.
    let entries: Vec<Entry> = (1..=5)
        .map(|i| req(i, Some(&format!("r{i}")), 10_000 - i * 100, put("k", "v")))
        .collect();
    responses(&mut sm, &entries);
    assert_eq!(sm.reader().dedup_len().unwrap(), 3);
    let out = responses(
        &mut sm,
        &[
            req(6, Some("r3"), 10_000, put("k", "v")),
            req(7, Some("r5"), 10_000, put("k", "v")),
            req(8, Some("r2"), 10_000, put("k", "v")),
            // r2 executed again and pushed out the oldest remaining record, r3.
            req(9, Some("r3"), 10_000, put("k", "v")),
        ],
    );
    assert_eq!(
        out,
        [
            dup(KvOutput::Put, 3),
            dup(KvOutput::Put, 5),
            fresh(KvOutput::Put, 8),
            fresh(KvOutput::Put, 9),
        ]
    );
    assert_eq!(sm.reader().dedup_len().unwrap(), 3);
}

#[test]
fn bare_commands_and_anonymous_requests_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = KvStateMachine::open(dir.path(), MAP).unwrap();
    let long_id = "x".repeat(MAX_REQUEST_ID_LEN + 1);
    let max_id = "y".repeat(MAX_REQUEST_ID_LEN);
    let mut garbage = BytesMut::new();
    garbage.extend_from_slice(&[REQUEST_TAG, 0xff, 0xfe]);
    let raw = sm
        .apply(&[
            entry(1, put("a", "1").encode()),
            req(2, None, 1, del("a")),
            req(3, None, 2, del("a")),
            entry(4, garbage.freeze()),
            req(5, Some(&long_id), 3, put("long", "1")),
            req(6, Some(""), 3, put("empty", "1")),
            req(7, Some(&max_id), 3, put("max", "1")),
            entry(8, del("max").encode()),
        ])
        .unwrap();
    assert_eq!(KvOutput::decode(&raw[0]).unwrap(), KvOutput::Put);
    assert!(KvResponse::decode(&raw[0]).is_err());
    let resp = |i: usize| KvResponse::decode(&raw[i]).unwrap();
    // Without an id every copy executes.
    assert_eq!(resp(1), fresh(KvOutput::Delete { existed: true }, 2));
    assert_eq!(resp(2), fresh(KvOutput::Delete { existed: false }, 3));
    for (i, what) in [
        (3, "malformed request"),
        (4, "request id"),
        (5, "request id"),
    ] {
        assert!(
            matches!(&resp(i).output, KvOutput::Rejected { reason } if reason.contains(what)),
            "{i}: {:?}",
            resp(i)
        );
        assert_eq!(resp(i).first_index, i as u64 + 1);
    }
    assert_eq!(resp(6), fresh(KvOutput::Put, 7));
    assert_eq!(
        KvOutput::decode(&raw[7]).unwrap(),
        KvOutput::Delete { existed: true }
    );
    let reader = sm.reader();
    assert_eq!(reader.get("long").unwrap(), None);
    assert_eq!(reader.get("empty").unwrap(), None);
    assert_eq!(reader.dedup_len().unwrap(), 1);
    assert_eq!(sm.applied_index(), 8);
    // Re-delivered entries are skipped with the empty output, requests included.
    let raw = sm
        .apply(&[req(7, Some(&max_id), 3, put("max", "2"))])
        .unwrap();
    assert!(raw[0].is_empty());
}

/// A history exercising every path: bare commands, transactions, duplicates, TTL and size
/// eviction, re-execution after expiry.
fn history() -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut next = |payload: Bytes| {
        let index = entries.len() as u64 + 1;
        entries.push(entry(index, payload));
    };
    for round in 0..6u64 {
        let at = round * 700;
        let id = |n: u64| Some(format!("c{}", n % 4));
        let request = |n: u64, command: KvCommand| KvRequest {
            request_id: id(n),
            issued_at_ms: at,
            command,
        };
        next(put(&format!("k{round}"), "v").encode());
        next(request(round, del(&format!("k{}", round.saturating_sub(1)))).encode());
        next(
            request(
                round + 1,
                KvCommand::Txn {
                    guards: vec![TxnGuard {
                        key: format!("k{round}"),
                        expect: GuardExpect::Present,
                    }],
                    ops: vec![TxnOp::Put {
                        key: format!("t{}", round % 3),
                        value: Bytes::from(round.to_string()),
                    }],
                },
            )
            .encode(),
        );
        next(request(round + 2, put("shared", &round.to_string())).encode());
        next(request(round, put("shared", "retry")).encode());
    }
    entries
}

#[test]
fn replicas_agree_whatever_the_batching() {
    let config = DedupConfig {
        ttl_ms: 1_000,
        max_entries: 3,
    };
    let entries = history();
    let run = |chunks: &[usize]| {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = KvStateMachine::open_with(dir.path(), MAP, config).unwrap();
        let mut outputs = Vec::new();
        let mut rest = &entries[..];
        for &n in chunks.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (batch, tail) = rest.split_at(n.min(rest.len()));
            outputs.extend(sm.apply(batch).unwrap());
            rest = tail;
        }
        let reader = sm.reader();
        let state = reader.scan("", None, usize::MAX).unwrap();
        (outputs, state, reader.dedup_len().unwrap())
    };
    let one_batch = run(&[entries.len()]);
    assert_eq!(
        one_batch,
        run(&[entries.len()]),
        "two fresh replicas differ"
    );
    assert_eq!(one_batch, run(&[1]), "entry-by-entry replica differs");
    assert_eq!(one_batch, run(&[2, 5, 3]), "oddly batched replica differs");
    // The history does exercise duplicates and re-execution.
    let responses: Vec<KvResponse> = one_batch
        .0
        .iter()
        .filter_map(|o| KvResponse::decode(o).ok())
        .collect();
    assert!(responses.iter().any(|r| r.duplicate));
    assert!(responses.iter().filter(|r| !r.duplicate).count() > 8);
    assert!(one_batch.2 <= 3);
}
