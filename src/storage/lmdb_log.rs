//! `LmdbLog`: the Raft log and hard state in one LMDB environment (`<data-dir>/log`).
//!
//! Databases: `entries` (big-endian `u64` index -> sealed bincode [`Entry`], so LMDB order is log
//! order) and `meta` (the sealed [`HardState`] and the sealed *base* under fixed keys). Every value
//! is checksummed and verified when read. [`LmdbLog::write`] applies a whole batch of
//! [`PersistOp`]s in one write transaction with one durable commit (group commit); it refuses
//! writes that would break the log's invariants, so a log that `load` would reject is never
//! written (see [`super::log_write`]). This is a plain struct: the actor that owns it lives
//! elsewhere. Open each directory at most once per process.
//!
//! # Compaction
//!
//! The *base* is the [`LogId`] of the last entry compacted away (covered by a snapshot), `(0, 0)`
//! for a log that was never compacted. The log holds the entries `base.index + 1 ..= last`,
//! contiguous, with terms not below `base.term`; an empty log has `last == base`. The base moves
//! forward with [`PersistOp::purge_to`] (after a local snapshot) and is set with
//! [`PersistOp::reset_to`] (when a leader's snapshot replaces the log).

use std::convert::Infallible;
use std::path::Path;

use heed::byteorder::BigEndian;
use heed::types::{Bytes, Str, U64};
use heed::{CommitOrAbort, Database, Env, RoTxn, WithoutTls};

use crate::core::{Entry, HardState, Index, LogId};

use super::codec;
use super::error::{StorageError, StoreKind};
use super::lmdb::{open_env, EnvContext};
use super::log_verify::{decode_entry, ChainCheck};

pub(super) type EntriesDb = Database<'static, U64<BigEndian>, Bytes>;
pub(super) type MetaDb = Database<'static, Str, Bytes>;

/// Name of the entries database.
pub const ENTRIES_DB: &str = "entries";
/// Name of the meta database.
pub const META_DB: &str = "meta";
/// Key of the hard state in the meta database.
pub const HARD_STATE_KEY: &str = "hard_state";
/// Key of the base (the [`LogId`] of the last compacted entry) in the meta database.
pub const BASE_KEY: &str = "base";

/// One unit of log changes, applied in this order: reset, hard state, truncation, appended
/// entries, purge.
///
/// `PersistOp::default()` changes nothing; set the fields needed and fill the rest with
/// `..PersistOp::default()`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersistOp {
    /// First of all, delete every entry and make this the base (a leader's snapshot replaces the
    /// log). The hard state's term must end up at least this id's term: set `hard_state` in the
    /// same op if needed.
    pub reset_to: Option<LogId>,
    /// New term and vote, if they changed.
    pub hard_state: Option<HardState>,
    /// Delete every entry at or after this index (which must be above the base).
    pub truncate_from: Option<Index>,
    /// Entries to append; the first must follow the (possibly truncated) last entry.
    pub entries: Vec<Entry>,
    /// Last of all, delete the entries up to and including this index and make it the base
    /// (its entries are covered by a snapshot). At or below the base it does nothing; beyond the
    /// last entry it is refused.
    pub purge_to: Option<Index>,
}

/// Everything the log holds, verified, as read at startup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadedLog {
    /// Durable term and vote (default when never written).
    pub hard_state: HardState,
    /// The last compacted entry (`(0, 0)` when the log was never compacted).
    pub base: LogId,
    /// Index of the first entry, `base.index + 1` (where the first entry would go when the log is
    /// empty).
    pub first_index: Index,
    /// All entries, contiguous from `first_index`.
    pub entries: Vec<Entry>,
}

/// The durable shape of the log, cached so callers need no transaction to ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Tail {
    pub(super) hard_state: HardState,
    /// The last compacted entry.
    pub(super) base: LogId,
    /// Last stored entry, or `base` when the log is empty.
    pub(super) last: LogId,
}

impl Tail {
    /// Index of the first entry (stored or to come).
    pub(super) fn first_index(&self) -> Index {
        self.base.index.saturating_add(1)
    }
}

/// The Raft log and hard state in LMDB.
pub struct LmdbLog {
    pub(super) env: Env<WithoutTls>,
    pub(super) entries: EntriesDb,
    pub(super) meta: MetaDb,
    pub(super) ctx: EnvContext,
    pub(super) tail: Tail,
}

impl std::fmt::Debug for LmdbLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmdbLog")
            .field("path", &self.ctx.path)
            .field("tail", &self.tail)
            .finish()
    }
}

impl LmdbLog {
    /// Opens (creating if needed) the log environment in `dir` with an LMDB map of `map_size`
    /// bytes (rounded up to 64 KiB).
    ///
    /// Fails with [`StorageError::Corrupt`] if the base, the hard state or the last entry do not
    /// verify, or if the first stored entry is not the one right after the base.
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
        let mut store = LmdbLog {
            env,
            entries,
            meta,
            ctx,
            tail: Tail {
                hard_state: HardState::default(),
                base: LogId::default(),
                last: LogId::default(),
            },
        };
        store.tail = store.read_tail().map_err(|e| store.ctx.locate(e))?;
        Ok(store)
    }

    /// Reads and verifies the whole log, the base and the hard state.
    ///
    /// Fails with [`StorageError::Corrupt`] naming the index on a bad checksum, an entry stored
    /// under the wrong key, a first entry other than `base.index + 1`, a gap, a term below the
    /// previous entry's (or the base's), or a hard-state term below the last entry's.
    pub fn load(&self) -> Result<LoadedLog, StorageError> {
        self.read_all().map_err(|e| self.ctx.locate(e))
    }

    fn read_all(&self) -> Result<LoadedLog, StorageError> {
        let rtxn = self.env.read_txn().map_err(|e| self.ctx.err(e))?;
        let hard_state = self.read_hard_state(&rtxn)?;
        let base = self.read_base(&rtxn)?;
        let mut chain = ChainCheck::after(base);
        let mut entries = Vec::new();
        for item in self.entries.iter(&rtxn).map_err(|e| self.ctx.err(e))? {
            let (key, raw) = item.map_err(|e| self.ctx.err(e))?;
            entries.push(chain.accept(key, raw)?);
        }
        let last = entries.last().map_or(base, Entry::log_id);
        check_hard_state(hard_state, last, base)?;
        Ok(LoadedLog {
            hard_state,
            base,
            first_index: base.index.saturating_add(1),
            entries,
        })
    }

    /// Reads entries `lo..=hi_inclusive`, verified. Empty when `lo > hi_inclusive`; fails with
    /// [`StorageError::OutOfRange`] when the log does not hold the whole range (in particular for
    /// compacted entries, at or below the base).
    pub fn read_range(&self, lo: Index, hi_inclusive: Index) -> Result<Vec<Entry>, StorageError> {
        self.read_entries(lo, hi_inclusive)
            .map_err(|e| self.ctx.locate(e))
    }

    fn read_entries(&self, lo: Index, hi_inclusive: Index) -> Result<Vec<Entry>, StorageError> {
        if lo > hi_inclusive {
            return Ok(Vec::new());
        }
        let first_index = self.tail.first_index();
        let last = self.tail.last;
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

    /// Index of the last stored entry (`base().index` when empty, 0 for a new log).
    pub fn last_index(&self) -> Index {
        self.tail.last.index
    }

    /// Id of the last stored entry (the base when the log is empty).
    pub fn last_log_id(&self) -> LogId {
        self.tail.last
    }

    /// Index of the first stored entry, `base().index + 1` (`last_index() + 1` when empty).
    pub fn first_index(&self) -> Index {
        self.tail.first_index()
    }

    /// The last compacted entry (`(0, 0)` when the log was never compacted).
    pub fn base(&self) -> LogId {
        self.tail.base
    }

    /// The durable term and vote.
    pub fn hard_state(&self) -> HardState {
        self.tail.hard_state
    }

    /// Directory of the environment.
    pub fn path(&self) -> &Path {
        &self.ctx.path
    }

    fn read_hard_state(&self, rtxn: &RoTxn<'_, WithoutTls>) -> Result<HardState, StorageError> {
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

    fn read_base(&self, rtxn: &RoTxn<'_, WithoutTls>) -> Result<LogId, StorageError> {
        match self.meta.get(rtxn, BASE_KEY).map_err(|e| self.ctx.err(e))? {
            Some(raw) => codec::decode_sealed(raw).map_err(|e| {
                StorageError::corrupt(format!("log base (last compacted entry): {e}"))
            }),
            None => Ok(LogId::default()),
        }
    }

    /// Reads the hard state, the base and the first and last entries (verified) to fill the
    /// cache.
    fn read_tail(&self) -> Result<Tail, StorageError> {
        let rtxn = self.env.read_txn().map_err(|e| self.ctx.err(e))?;
        let hard_state = self.read_hard_state(&rtxn)?;
        let base = self.read_base(&rtxn)?;
        let first = self.entries.first(&rtxn).map_err(|e| self.ctx.err(e))?;
        let last = self.entries.last(&rtxn).map_err(|e| self.ctx.err(e))?;
        let last = match (first, last) {
            (Some((first_key, first_raw)), Some((last_key, last_raw))) => {
                ChainCheck::after(base).accept(first_key, first_raw)?;
                let entry = decode_entry(last_key, last_raw)?;
                if entry.term < base.term {
                    return Err(StorageError::corrupt(format!(
                        "log entry {last_key}: term {} is lower than term {} of the last \
                         compacted entry {}",
                        entry.term, base.term, base.index
                    )));
                }
                entry.log_id()
            }
            _ => base,
        };
        Ok(Tail {
            hard_state,
            base,
            last,
        })
    }
}

/// Fails unless the hard state's term is at least the last entry's (or the base's).
fn check_hard_state(hard_state: HardState, last: LogId, base: LogId) -> Result<(), StorageError> {
    if hard_state.term >= last.term {
        return Ok(());
    }
    let which = if last == base && base.index > 0 {
        "last compacted entry"
    } else {
        "last log entry"
    };
    Err(StorageError::corrupt(format!(
        "hard state term {} is below term {} of the {which} {}",
        hard_state.term, last.term, last.index
    )))
}
