//! Fixtures of the key-value state machine tests: entries of commands, and the decoded results
//! of applying them.

use bytes::Bytes;
use raftix::core::{Entry, EntryPayload};
use raftix::state_machine::StateMachine;
use raftix::storage::{KvCommand, KvOutput, KvResponse, KvStateMachine, StorageError};

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

/// What a `StorageError::Corrupt` says; fails the test on any other result.
pub fn corrupt_message<T: std::fmt::Debug>(result: Result<T, StorageError>) -> String {
    match result {
        Err(StorageError::Corrupt { what }) => what,
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// Offsets and lengths of the records of a state machine snapshot stream (frame included).
pub fn records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        out.push((at, 8 + len));
        at += 8 + len;
    }
    out
}

/// Recomputes the frame checksum of the record at `at` after its body was edited.
pub fn reseal(bytes: &mut [u8], at: usize) {
    let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&bytes[at..at + 4]);
    crc.update(&bytes[at + 8..at + 8 + len]);
    let crc = crc.finalize().to_le_bytes();
    bytes[at + 4..at + 8].copy_from_slice(&crc);
}
