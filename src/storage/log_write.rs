//! Writing the log: [`LmdbLog::write`] and the steps of one [`PersistOp`] (reset, hard state,
//! truncation, append, purge), each checked against the log's invariants before anything is
//! committed.

use heed::{PutFlags, RwTxn};

use crate::core::{EntryPayload, Index, LogId};
use crate::crash_points::{self, crash_point};

use super::codec;
use super::error::StorageError;
use super::lmdb_log::{LmdbLog, PersistOp, Tail, BASE_KEY, HARD_STATE_KEY};
use super::log_verify::decode_entry;

/// The crash points before a log commit (see [`crate::crash_points`]; nothing without the
/// `failpoints` feature), and the injected fsync error.
fn before_commit(batch: &[PersistOp]) -> Result<(), StorageError> {
    if cfg!(feature = "failpoints") {
        if batch.iter().any(|op| op.purge_to.is_some()) {
            crash_point(crash_points::LOG_BEFORE_COMPACTION);
        }
        let config = |e: &crate::core::Entry| matches!(e.payload, EntryPayload::Config(_));
        if batch.iter().any(|op| op.entries.iter().any(config)) {
            crash_point(crash_points::CONFIG_BEFORE_FSYNC);
        }
        crash_point(crash_points::LOG_BEFORE_FSYNC);
        if crash_points::triggered(crash_points::LOG_FSYNC_ERROR) {
            return Err(StorageError::io(
                "the log's data file",
                std::io::Error::other("fsync failed (injected by a crash point)"),
            ));
        }
    }
    Ok(())
}

fn invalid(what: String) -> StorageError {
    StorageError::InvalidWrite { what }
}

impl LmdbLog {
    /// Applies `batch` in order in ONE write transaction with ONE durable commit.
    ///
    /// Appended entries must continue the log at `last_index() + 1` (after any reset or
    /// truncation) with terms not below the last entry's (or the base's); truncation must stay
    /// above the base; a purge must not go beyond the last entry; terms in hard states must not
    /// decrease and must end at or above the last entry's (or the base's). A violation fails
    /// with [`StorageError::InvalidWrite`] and writes nothing; so does any other error (the
    /// transaction is aborted). A full map is [`StorageError::MapFull`].
    pub fn write(&mut self, batch: &[PersistOp]) -> Result<(), StorageError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut wtxn = self.env.write_txn().map_err(|e| self.ctx.err(e))?;
        let mut tail = self.tail;
        for op in batch {
            self.write_op(&mut wtxn, &mut tail, op)?;
        }
        if tail.hard_state.term < tail.last.term {
            return Err(invalid(format!(
                "hard state term {} would be below term {} of entry {}",
                tail.hard_state.term, tail.last.term, tail.last.index
            )));
        }
        before_commit(batch)?;
        wtxn.commit().map_err(|e| self.ctx.err(e))?;
        crash_point(crash_points::LOG_AFTER_FSYNC);
        self.tail = tail;
        Ok(())
    }

    fn write_op(
        &self,
        wtxn: &mut RwTxn,
        tail: &mut Tail,
        op: &PersistOp,
    ) -> Result<(), StorageError> {
        if let Some(base) = op.reset_to {
            self.reset(wtxn, tail, base)?;
        }
        if let Some(hs) = op.hard_state {
            if hs.term < tail.hard_state.term {
                return Err(invalid(format!(
                    "term would go down from {} to {}",
                    tail.hard_state.term, hs.term
                )));
            }
            let value = codec::encode_sealed(&hs)?;
            self.meta
                .put(wtxn, HARD_STATE_KEY, &value)
                .map_err(|e| self.ctx.err(e))?;
            tail.hard_state = hs;
        }
        if let Some(from) = op.truncate_from {
            self.truncate(wtxn, tail, from.max(1))?;
        }
        for entry in &op.entries {
            let expected = tail.last.index.saturating_add(1);
            if entry.index != expected {
                return Err(invalid(format!(
                    "appending entry {} but the next index is {expected}",
                    entry.index
                )));
            }
            if entry.term < tail.last.term {
                return Err(invalid(format!(
                    "entry {} has term {}, below term {} of entry {}",
                    entry.index, entry.term, tail.last.term, tail.last.index
                )));
            }
            let value = codec::encode_sealed(entry)?;
            self.entries
                .put_with_flags(wtxn, PutFlags::APPEND, &entry.index, &value)
                .map_err(|e| self.ctx.err(e))?;
            tail.last = entry.log_id();
        }
        if let Some(upto) = op.purge_to {
            self.purge(wtxn, tail, upto)?;
        }
        Ok(())
    }

    /// Deletes every entry and makes `base` the base.
    fn reset(&self, wtxn: &mut RwTxn, tail: &mut Tail, base: LogId) -> Result<(), StorageError> {
        self.entries.clear(wtxn).map_err(|e| self.ctx.err(e))?;
        self.write_base(wtxn, base)?;
        tail.base = base;
        tail.last = base;
        Ok(())
    }

    /// Deletes entries `from..` and moves the tail back.
    fn truncate(&self, wtxn: &mut RwTxn, tail: &mut Tail, from: Index) -> Result<(), StorageError> {
        if from <= tail.base.index {
            return Err(invalid(format!(
                "truncating from entry {from} would cut into the compacted entries (up to {})",
                tail.base.index
            )));
        }
        if from > tail.last.index {
            return Ok(());
        }
        self.entries
            .delete_range(wtxn, &(from..))
            .map_err(|e| self.ctx.err(e))?;
        let new_last = from - 1;
        tail.last = if new_last == tail.base.index {
            tail.base
        } else {
            LogId::new(self.stored_term(wtxn, new_last)?, new_last)
        };
        Ok(())
    }

    /// Deletes entries `..=upto` and makes the last of them the base.
    fn purge(&self, wtxn: &mut RwTxn, tail: &mut Tail, upto: Index) -> Result<(), StorageError> {
        if upto <= tail.base.index {
            return Ok(());
        }
        if upto > tail.last.index {
            return Err(invalid(format!(
                "purging up to entry {upto} but the log ends at entry {}",
                tail.last.index
            )));
        }
        let base = LogId::new(self.stored_term(wtxn, upto)?, upto);
        self.entries
            .delete_range(wtxn, &(..=upto))
            .map_err(|e| self.ctx.err(e))?;
        self.write_base(wtxn, base)?;
        tail.base = base;
        Ok(())
    }

    /// The term of the stored entry `index` (verified).
    fn stored_term(&self, wtxn: &RwTxn, index: Index) -> Result<u64, StorageError> {
        let raw = self
            .entries
            .get(wtxn, &index)
            .map_err(|e| self.ctx.err(e))?
            .ok_or_else(|| StorageError::corrupt(format!("log entry {index} is missing")))?;
        Ok(decode_entry(index, raw)?.term)
    }

    fn write_base(&self, wtxn: &mut RwTxn, base: LogId) -> Result<(), StorageError> {
        let value = codec::encode_sealed(&base)?;
        self.meta
            .put(wtxn, BASE_KEY, &value)
            .map_err(|e| self.ctx.err(e))
    }
}
