//! `LogStorage`: the Raft log and hard state in one LMDB environment (`<data-dir>/log`).
//!
//! Databases: `entries` (big-endian `u64` index -> sealed bincode [`Entry`], so LMDB order is log
//! order) and `meta` (the sealed [`HardState`] under a fixed key). Every value is checksummed and
//! verified when read. [`LogStorage::write`] applies a whole batch of [`PersistOp`]s in one write
//! transaction with one durable commit (group commit); it refuses writes that would break the log's
//! invariants, so a log that `load` would reject is never written. This is a plain struct: the
//! actor that owns it lives elsewhere. Open each directory at most once per process.

use std::convert::Infallible;
use std::path::Path;

use heed::byteorder::BigEndian;
use heed::types::{Bytes, Str, U64};
use heed::{CommitOrAbort, Database, Env, PutFlags, RwTxn, WithoutTls};

use crate::core::{Entry, HardState, Index, LogId};

use super::codec;
use super::error::{StorageError, StoreKind};
use super::lmdb::{open_env, EnvContext};
use super::log_verify::{decode_entry, ChainCheck};

type EntriesDb = Database<'static, U64<BigEndian>, Bytes>;
type MetaDb = Database<'static, Str, Bytes>;

/// Name of the entries database.
pub const ENTRIES_DB: &str = "entries";
/// Name of the meta database.
pub const META_DB: &str = "meta";
/// Key of the hard state in the meta database.
pub const HARD_STATE_KEY: &str = "hard_state";

/// One unit of log changes, applied in this order: hard state, truncation, then appended entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersistOp {
    /// New term and vote, if they changed.
    pub hard_state: Option<HardState>,
    /// Delete every entry at or after this index first.
    pub truncate_from: Option<Index>,
    /// Entries to append; the first must follow the (possibly truncated) last entry.
    pub entries: Vec<Entry>,
}

/// Everything the log holds, verified, as read at startup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadedLog {
    /// Durable term and vote (default when never written).
    pub hard_state: HardState,
    /// Index of the first entry (or where the first entry would go when the log is empty).
    pub first_index: Index,
    /// All entries, contiguous from `first_index`.
    pub entries: Vec<Entry>,
}

/// The durable shape of the log, cached so callers need no transaction to ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tail {
    hard_state: HardState,
    /// First stored index; `last.index + 1` when the log is empty.
    first_index: Index,
    /// Last stored entry, or `(0, first_index - 1)` when the log is empty.
    last: LogId,
}

/// The Raft log and hard state in LMDB.
pub struct LogStorage {
    env: Env<WithoutTls>,
    entries: EntriesDb,
    meta: MetaDb,
    ctx: EnvContext,
    tail: Tail,
}

impl std::fmt::Debug for LogStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStorage")
            .field("path", &self.ctx.path)
            .field("tail", &self.tail)
            .finish()
    }
}

impl LogStorage {
    /// Opens (creating if needed) the log environment in `dir` with an LMDB map of `map_size`
    /// bytes (rounded up to 64 KiB).
    pub fn open(dir: &Path, map_size: usize) -> Result<Self, StorageError> {
        let (env, ctx) = open_env(StoreKind::Log, dir, map_size, 2)?;
        let wtxn = env.write_txn().map_err(|e| ctx.err(e))?;
        let opened = env
            .create_databases_and_commit(wtxn, |dbo, wtxn| -> Result<_, heed::Error> {
                let entries =
                    dbo.create_database::<U64<BigEndian>, Bytes>(wtxn, Some(ENTRIES_DB))?;
                let meta = dbo.create_database::<Str, Bytes>(wtxn, Some(META_DB))?;
                Ok(CommitOrAbort::<_, Infallible>::Commit((entries, meta)))
            })
            .map_err(|e| ctx.err(e))?;
        let (entries, meta) = match opened {
            CommitOrAbort::Commit(dbs) => dbs,
            CommitOrAbort::Abort(never) => match never {},
        };
        let mut store = LogStorage {
            env,
            entries,
            meta,
            ctx,
            tail: Tail {
                hard_state: HardState::default(),
                first_index: 1,
                last: LogId::default(),
            },
        };
        store.tail = store.read_tail()?;
        Ok(store)
    }

    /// Reads and verifies the whole log and the hard state.
    ///
    /// Fails with [`StorageError::Corrupt`] naming the index on a bad checksum, an entry stored
    /// under the wrong key, a gap, a decreasing term, or a hard-state term below the last entry's.
    pub fn load(&self) -> Result<LoadedLog, StorageError> {
        let rtxn = self.env.read_txn().map_err(|e| self.ctx.err(e))?;
        let hard_state = self.read_hard_state(&rtxn)?;
        let mut chain = ChainCheck::new();
        let mut entries = Vec::new();
        for item in self.entries.iter(&rtxn).map_err(|e| self.ctx.err(e))? {
            let (key, raw) = item.map_err(|e| self.ctx.err(e))?;
            entries.push(chain.accept(key, raw)?);
        }
        if let Some(last) = entries.last() {
            if hard_state.term < last.term {
                return Err(StorageError::corrupt(format!(
                    "hard state term {} is below term {} of the last log entry {}",
                    hard_state.term, last.term, last.index
                )));
            }
        }
        let first_index = entries.first().map_or(self.tail.first_index, |e| e.index);
        Ok(LoadedLog {
            hard_state,
            first_index,
            entries,
        })
    }

    /// Applies `batch` in order in ONE write transaction with ONE durable commit.
    ///
    /// Appended entries must continue the log at `last_index() + 1` (after any truncation) with
    /// non-decreasing terms; terms in hard states must not decrease and must stay at or above the
    /// last entry's term. A violation fails with [`StorageError::InvalidWrite`] and writes nothing;
    /// so does any other error (the transaction is aborted). A full map is
    /// [`StorageError::MapFull`].
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
            return Err(StorageError::InvalidWrite {
                what: format!(
                    "hard state term {} would be below term {} of the last entry {}",
                    tail.hard_state.term, tail.last.term, tail.last.index
                ),
            });
        }
        wtxn.commit().map_err(|e| self.ctx.err(e))?;
        self.tail = tail;
        Ok(())
    }

    /// Reads entries `lo..=hi_inclusive`, verified. Empty when `lo > hi_inclusive`; fails with
    /// [`StorageError::OutOfRange`] when the log does not hold the whole range.
    pub fn read_range(&self, lo: Index, hi_inclusive: Index) -> Result<Vec<Entry>, StorageError> {
        if lo > hi_inclusive {
            return Ok(Vec::new());
        }
        let Tail {
            first_index, last, ..
        } = self.tail;
        if lo < first_index || hi_inclusive > last.index {
            return Err(StorageError::OutOfRange {
                lo,
                hi: hi_inclusive,
                first: first_index,
                last: last.index,
            });
        }
        let rtxn = self.env.read_txn().map_err(|e| self.ctx.err(e))?;
        let range = lo..=hi_inclusive;
        let iter = self
            .entries
            .range(&rtxn, &range)
            .map_err(|e| self.ctx.err(e))?;
        let mut chain = ChainCheck::starting_at(lo);
        let mut out = Vec::new();
        for item in iter {
            let (key, raw) = item.map_err(|e| self.ctx.err(e))?;
            out.push(chain.accept(key, raw)?);
        }
        chain.finish_before(hi_inclusive.saturating_add(1))?;
        Ok(out)
    }

    /// Index of the last stored entry (`first_index() - 1` when empty, 0 for a new log).
    pub fn last_index(&self) -> Index {
        self.tail.last.index
    }

    /// Id of the last stored entry (term 0 when the log is empty).
    pub fn last_log_id(&self) -> LogId {
        self.tail.last
    }

    /// Index of the first stored entry (`last_index() + 1` when empty).
    pub fn first_index(&self) -> Index {
        self.tail.first_index
    }

    /// The durable term and vote.
    pub fn hard_state(&self) -> HardState {
        self.tail.hard_state
    }

    /// Directory of the environment.
    pub fn path(&self) -> &Path {
        &self.ctx.path
    }

    fn write_op(
        &self,
        wtxn: &mut RwTxn,
        tail: &mut Tail,
        op: &PersistOp,
    ) -> Result<(), StorageError> {
        if let Some(hs) = op.hard_state {
            if hs.term < tail.hard_state.term {
                return Err(StorageError::InvalidWrite {
                    what: format!(
                        "term would go down from {} to {}",
                        tail.hard_state.term, hs.term
                    ),
                });
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
                return Err(StorageError::InvalidWrite {
                    what: format!(
                        "appending entry {} but the next index is {expected}",
                        entry.index
                    ),
                });
            }
            if entry.term < tail.last.term {
                return Err(StorageError::InvalidWrite {
                    what: format!(
                        "entry {} has term {}, below term {} of entry {}",
                        entry.index, entry.term, tail.last.term, tail.last.index
                    ),
                });
            }
            let value = codec::encode_sealed(entry)?;
            self.entries
                .put_with_flags(wtxn, PutFlags::APPEND, &entry.index, &value)
                .map_err(|e| self.ctx.err(e))?;
            tail.last = entry.log_id();
        }
        Ok(())
    }

    /// Deletes entries `from..` inside `wtxn` and moves the tail back.
    fn truncate(&self, wtxn: &mut RwTxn, tail: &mut Tail, from: Index) -> Result<(), StorageError> {
        if from > tail.last.index {
            return Ok(());
        }
        self.entries
            .delete_range(wtxn, &(from..))
            .map_err(|e| self.ctx.err(e))?;
        let new_last = from - 1;
        if new_last >= tail.first_index {
            let raw = self
                .entries
                .get(wtxn, &new_last)
                .map_err(|e| self.ctx.err(e))?
                .ok_or_else(|| StorageError::corrupt(format!("log entry {new_last} is missing")))?;
            tail.last = LogId::new(decode_entry(new_last, raw)?.term, new_last);
        } else {
            tail.first_index = from;
            tail.last = LogId::new(0, new_last);
        }
        Ok(())
    }

    fn read_hard_state(
        &self,
        rtxn: &heed::RoTxn<'_, WithoutTls>,
    ) -> Result<HardState, StorageError> {
        match self
            .meta
            .get(rtxn, HARD_STATE_KEY)
            .map_err(|e| self.ctx.err(e))?
        {
            Some(raw) => codec::decode_sealed(raw)
                .map_err(|e| StorageError::corrupt(format!("hard state: {e}"))),
            None => Ok(HardState::default()),
        }
    }

    /// Reads the hard state and the first and last entries (verified) to fill the cache.
    fn read_tail(&self) -> Result<Tail, StorageError> {
        let rtxn = self.env.read_txn().map_err(|e| self.ctx.err(e))?;
        let hard_state = self.read_hard_state(&rtxn)?;
        let first = self.entries.first(&rtxn).map_err(|e| self.ctx.err(e))?;
        let last = self.entries.last(&rtxn).map_err(|e| self.ctx.err(e))?;
        Ok(match (first, last) {
            (Some((first_key, _)), Some((last_key, raw))) => Tail {
                hard_state,
                first_index: first_key,
                last: LogId::new(decode_entry(last_key, raw)?.term, last_key),
            },
            _ => Tail {
                hard_state,
                first_index: 1,
                last: LogId::default(),
            },
        })
    }
}
