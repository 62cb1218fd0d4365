//! Checks applied to every log entry read back from disk.
//!
//! An entry must pass its checksum, decode, sit under the key equal to its own index, follow the
//! previous entry (or the base, the last compacted entry) without a gap, and not have a lower term
//! than the entry before it (or the base). Any failure is a [`StorageError::Corrupt`] naming the
//! index; nothing is skipped or repaired.

use crate::core::{Entry, Index, LogId, Term};

use super::codec;
use super::error::StorageError;

/// Decodes and verifies the stored value `raw` of the entry under key `index`.
pub(crate) fn decode_entry(index: Index, raw: &[u8]) -> Result<Entry, StorageError> {
    let entry: Entry = codec::decode_sealed(raw)
        .map_err(|e| StorageError::corrupt(format!("log entry {index} is corrupt: {e}")))?;
    if entry.index != index {
        return Err(StorageError::corrupt(format!(
            "log entry {index}: stored under key {index} but records index {}",
            entry.index
        )));
    }
    Ok(entry)
}

/// Walks stored entries in key order and checks that they form a valid log.
#[derive(Debug)]
pub(crate) struct ChainCheck {
    /// Index the next entry must have.
    next: Index,
    /// Term of the previous entry (or of the base).
    last_term: Term,
    /// Whether `last_term` is the base's (no entry accepted yet, and the check started at a base).
    after_base: bool,
}

impl ChainCheck {
    /// A check whose first entry must be `first`.
    pub(crate) fn starting_at(first: Index) -> Self {
        Self {
            next: first,
            last_term: 0,
            after_base: false,
        }
    }

    /// A check of a log compacted up to `base`: the first entry must be `base.index + 1` and no
    /// term may be below `base.term`.
    pub(crate) fn after(base: LogId) -> Self {
        Self {
            next: base.index.saturating_add(1),
            last_term: base.term,
            after_base: true,
        }
    }

    /// Verifies the entry stored under `key` and returns it.
    pub(crate) fn accept(&mut self, key: Index, raw: &[u8]) -> Result<Entry, StorageError> {
        let next = self.next;
        if key < next {
            return Err(StorageError::corrupt(format!(
                "log entry {key} is stored, but the log starts at entry {next} (the entries \
                 before it were compacted)"
            )));
        }
        if key != next {
            return Err(StorageError::corrupt(format!(
                "log entry {next} is missing (the next stored entry is {key})"
            )));
        }
        let entry = decode_entry(key, raw)?;
        if entry.term < self.last_term {
            let before = match self.after_base {
                true => "the last compacted entry",
                false => "the entry before it",
            };
            return Err(StorageError::corrupt(format!(
                "log entry {key}: term {} is lower than term {} of {before}",
                entry.term, self.last_term
            )));
        }
        self.next = key.saturating_add(1);
        self.last_term = entry.term;
        self.after_base = false;
        Ok(entry)
    }

    /// Fails unless the entries seen end right before `end` (i.e. `end - 1` was the last one).
    pub(crate) fn finish_before(&self, end: Index) -> Result<(), StorageError> {
        match self.next == end {
            true => Ok(()),
            false => Err(StorageError::corrupt(format!(
                "log entry {} is missing",
                self.next
            ))),
        }
    }
}
