//! Fixtures of the key-value state machine tests: entries of commands, and the decoded results
//! of applying them.

use bytes::Bytes;
use raftix::core::{Entry, EntryPayload};
use raftix::state_machine::StateMachine;
use raftix::storage::{KvCommand, KvOutput, KvResponse, KvStateMachine};

/// `Bytes` of a string.
pub fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

/// The entry at `index` (term 1) carrying `payload`.
pub fn entry(index: u64, payload: Bytes) -> Entry {
    Entry {
        term: 1,
        index,
        payload: EntryPayload::Command(payload),
    }
}

/// The entry at `index` (term 1) carrying `command`.
pub fn cmd(index: u64, command: KvCommand) -> Entry {
    entry(index, command.encode())
}

/// The entry at `index` putting `value` at `key`.
pub fn put_entry(index: u64, key: &str, value: &str) -> Entry {
    cmd(
        index,
        KvCommand::Put {
            key: key.into(),
            value: b(value),
        },
    )
}

/// The entry at `index` swapping key `k` from `expected` to `value` (`None`: absent).
pub fn cas_k(index: u64, expected: Option<&str>, value: Option<&str>) -> Entry {
    cmd(
        index,
        KvCommand::Cas {
            key: "k".into(),
            expected: expected.map(b),
            value: value.map(b),
        },
    )
}

/// Applies `entries` and decodes each plain command's output.
pub fn outputs(sm: &mut KvStateMachine, entries: &[Entry]) -> Vec<KvOutput> {
    sm.apply(entries)
        .unwrap()
        .iter()
        .map(|o| KvOutput::decode(o).unwrap())
        .collect()
}

/// Applies `entries` and decodes each request's response (exactly-once requests).
pub fn responses(sm: &mut KvStateMachine, entries: &[Entry]) -> Vec<KvResponse> {
    sm.apply(entries)
        .unwrap()
        .iter()
        .map(|o| KvResponse::decode(o).unwrap())
        .collect()
}
