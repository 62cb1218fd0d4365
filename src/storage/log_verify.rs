//! Checks applied to every log entry read back from disk.
//!
//! An entry must pass its checksum, decode, sit under the key equal to its own index, follow the
//! previous entry without a gap, and not have a lower term than the entry before it. Any failure is
//! a [`StorageError::Corrupt`] naming the index; nothing is skipped or repaired.

use crate::core::{Entry, Index, Term};

use super::codec;
use super::error::StorageError;

/// Decodes and verifies the stored value `raw` of the entry under key `index`.
pub(crate) fn decode_entry(index: Index, raw: &[u8]) -> Result<Entry, StorageError> {
    let entry: Entry = codec::decode_sealed(raw)
        .map_err(|e| StorageError::corrupt(format!("log entry {index}: {e}")))?;
    if entry.index != index {
        return Err(StorageError::corrupt(format!(
            "log entry {index}: stored under key {index} but records index {}",
            entry.index
        )));
    }
    Ok(entry)
}

/// Walks stored entries in key order and checks that they form a valid log.
#[derive(Debug, Default)]
pub(crate) struct ChainCheck {
    /// Index the next entry must have, once the first one is known (or fixed by the caller).
    next: Option<Index>,
    /// Term of the previous entry.
    last_term: Term,
}

impl ChainCheck {
    /// A check whose first entry may have any index.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A check whose first entry must be `first`.
    pub(crate) fn starting_at(first: Index) -> Self {
        Self {
            next: Some(first),
            last_term: 0,
        }
    }

    /// Verifies the entry stored under `key` and returns it.
    pub(crate) fn accept(&mut self, key: Index, raw: &[u8]) -> Result<Entry, StorageError> {
        if let Some(next) = self.next {
            if key != next {
                return Err(StorageError::corrupt(format!(
                    "log entry {next} is missing (the next stored entry is {key})"
                )));
            }
        }
        let entry = decode_entry(key, raw)?;
        if entry.term < self.last_term {
            return Err(StorageError::corrupt(format!(
                "log entry {key}: term {} is lower than term {} of the entry before it",
                entry.term, self.last_term
            )));
        }
        self.next = Some(key.saturating_add(1));
        self.last_term = entry.term;
        Ok(entry)
    }

    /// Fails unless the entries seen end right before `end` (i.e. `end - 1` was the last one).
    pub(crate) fn finish_before(&self, end: Index) -> Result<(), StorageError> {
        match self.next {
            Some(next) if next != end => Err(StorageError::corrupt(format!(
                "log entry {next} is missing"
            ))),
            _ => Ok(()),
        }
    }
}
