//! The exactly-once table of the key-value state machine.
//!
//! Databases (all in the state machine environment, written in the same transaction as the data):
//! - `dedup`: `request_id` -> sealed [`DedupRecord`] (first index, issue time, cached output);
//! - `dedup_by_index`: first index (u64 big-endian) -> sealed `(issued_at_ms, request_id)`, to
//!   evict the oldest records first when there are too many;
//! - `dedup_by_time`: `issued_at_ms` ++ first index (both u64 big-endian) -> sealed `request_id`,
//!   to evict expired records.
//!
//! # Expiry
//!
//! Expiry never reads a clock: the meta database keeps the *dedup clock*, the largest
//! `issued_at_ms` of any request applied so far (leaders stamp requests when they propose them).
//! Before each request is looked up, the clock advances to its `issued_at_ms` if that is larger,
//! and every record issued more than [`DedupConfig::ttl_ms`] before the clock is evicted; after a
//! record is added, the oldest records (by first index) are evicted while more than
//! [`DedupConfig::max_entries`] remain. This happens per entry rather than per apply batch, so the
//! state and outputs depend only on the sequence of entries, never on how the applier happened to
//! batch them. A request that arrives after its record was evicted is executed again: the
//! exactly-once window is the TTL (and the table size). All replicas must use the same
//! `DedupConfig`.

use heed::byteorder::BigEndian;
use heed::types::{Bytes as RawBytes, Str, U64};
use heed::{Database, RoTxn, RwTxn, WithoutTls};
use serde::{Deserialize, Serialize};

use crate::core::Index;

use super::codec;
use super::error::StorageError;
use super::kv_command::KvOutput;
use super::kv_reader::KvDbs;

/// Name of the exactly-once table.
pub const DEDUP_DB: &str = "dedup";
/// Name of the exactly-once table's index by first entry index.
pub const DEDUP_BY_INDEX_DB: &str = "dedup_by_index";
/// Name of the exactly-once table's index by issue time.
pub const DEDUP_BY_TIME_DB: &str = "dedup_by_time";
/// Key of the dedup clock in the meta database.
pub(crate) const DEDUP_CLOCK_KEY: &str = "dedup_clock";

/// Default [`DedupConfig::ttl_ms`]: 10 minutes.
pub const DEFAULT_DEDUP_TTL_MS: u64 = 10 * 60 * 1000;
/// Default [`DedupConfig::max_entries`].
pub const DEFAULT_DEDUP_MAX_ENTRIES: u64 = 100_000;

/// How long, and how many, request outputs are remembered. Must be identical on every replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DedupConfig {
    /// A record is evicted once the dedup clock is more than this many milliseconds past the
    /// record's `issued_at_ms`.
    pub ttl_ms: u64,
    /// Most records kept; beyond it the oldest (by first index) are evicted.
    pub max_entries: u64,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            ttl_ms: DEFAULT_DEDUP_TTL_MS,
            max_entries: DEFAULT_DEDUP_MAX_ENTRIES,
        }
    }
}

/// What the table remembers of an executed request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DedupRecord {
    /// Index of the entry that executed the request.
    pub(crate) first_index: Index,
    /// The request's `issued_at_ms`.
    pub(crate) issued_at_ms: u64,
    /// The output of that execution.
    pub(crate) output: KvOutput,
}

/// The three databases of the exactly-once table.
#[derive(Clone)]
pub(crate) struct DedupTables {
    pub(crate) records: Database<'static, Str, RawBytes>,
    pub(crate) by_index: Database<'static, U64<BigEndian>, RawBytes>,
    pub(crate) by_time: Database<'static, RawBytes, RawBytes>,
}

/// Key of `dedup_by_time`.
fn time_key(issued_at_ms: u64, first_index: Index) -> [u8; 16] {
    let mut key = [0; 16];
    key[..8].copy_from_slice(&issued_at_ms.to_be_bytes());
    key[8..].copy_from_slice(&first_index.to_be_bytes());
    key
}

fn corrupt(what: impl std::fmt::Display) -> StorageError {
    StorageError::corrupt(format!("exactly-once table: {what}"))
}

impl KvDbs {
    /// Number of requests remembered.
    pub(crate) fn dedup_len(&self, txn: &RoTxn<'_, WithoutTls>) -> Result<u64, StorageError> {
        self.dedup.records.len(txn).map_err(|e| self.ctx.err(e))
    }

    /// The durable dedup clock (0 before any request).
    pub(crate) fn read_dedup_clock(
        &self,
        txn: &RoTxn<'_, WithoutTls>,
    ) -> Result<u64, StorageError> {
        match self
            .meta
            .get(txn, DEDUP_CLOCK_KEY)
            .map_err(|e| self.ctx.err(e))?
        {
            Some(raw) => codec::decode_sealed(raw).map_err(|e| corrupt(format!("clock: {e}"))),
            None => Ok(0),
        }
    }

    /// Stores the dedup clock.
    pub(crate) fn write_dedup_clock(
        &self,
        txn: &mut RwTxn<'_>,
        clock: u64,
    ) -> Result<(), StorageError> {
        let value = codec::encode_sealed(&clock)?;
        self.meta
            .put(txn, DEDUP_CLOCK_KEY, &value)
            .map_err(|e| self.ctx.err(e))
    }

    /// The record of `request_id`, if remembered.
    pub(crate) fn dedup_lookup(
        &self,
        txn: &RoTxn<'_, WithoutTls>,
        request_id: &str,
    ) -> Result<Option<DedupRecord>, StorageError> {
        match self
            .dedup
            .records
            .get(txn, request_id)
            .map_err(|e| self.ctx.err(e))?
        {
            Some(raw) => codec::decode_sealed(raw)
                .map(Some)
                .map_err(|e| corrupt(format!("record {request_id:?}: {e}"))),
            None => Ok(None),
        }
    }

    /// Remembers a new record (the caller checked that `request_id` is not in the table).
    pub(crate) fn dedup_insert(
        &self,
        txn: &mut RwTxn<'_>,
        request_id: &str,
        record: &DedupRecord,
    ) -> Result<(), StorageError> {
        let err = |e| self.ctx.err(e);
        let t = &self.dedup;
        t.records
            .put(txn, request_id, &codec::encode_sealed(record)?)
            .map_err(err)?;
        let by_index = codec::encode_sealed(&(record.issued_at_ms, request_id))?;
        t.by_index
            .put(txn, &record.first_index, &by_index)
            .map_err(err)?;
        let key = time_key(record.issued_at_ms, record.first_index);
        t.by_time
            .put(txn, &key, &codec::encode_sealed(request_id)?)
            .map_err(err)
    }

    /// Evicts every record issued strictly before `cutoff_ms`.
    pub(crate) fn dedup_evict_before(
        &self,
        txn: &mut RwTxn<'_>,
        cutoff_ms: u64,
    ) -> Result<(), StorageError> {
        if cutoff_ms == 0 {
            return Ok(());
        }
        let end = time_key(cutoff_ms, 0);
        let range = (
            std::ops::Bound::Unbounded,
            std::ops::Bound::Excluded(&end[..]),
        );
        let mut victims = Vec::new();
        for item in self
            .dedup
            .by_time
            .range(txn, &range)
            .map_err(|e| self.ctx.err(e))?
        {
            let (key, raw) = item.map_err(|e| self.ctx.err(e))?;
            let (time, index) = key
                .split_first_chunk::<8>()
                .ok_or_else(|| corrupt("short time key"))?;
            let index: [u8; 8] = index.try_into().map_err(|_| corrupt("bad time key"))?;
            let id: String =
                codec::decode_sealed(raw).map_err(|e| corrupt(format!("time index: {e}")))?;
            victims.push((u64::from_be_bytes(*time), u64::from_be_bytes(index), id));
        }
        for (issued_at_ms, first_index, id) in victims {
            self.dedup_remove(txn, &id, first_index, issued_at_ms)?;
        }
        Ok(())
    }

    /// Evicts the oldest records (by first index) while more than `max_entries` remain.
    pub(crate) fn dedup_evict_excess(
        &self,
        txn: &mut RwTxn<'_>,
        max_entries: u64,
    ) -> Result<(), StorageError> {
        let len = self.dedup_len(txn)?;
        let Some(excess) = len.checked_sub(max_entries).filter(|n| *n > 0) else {
            return Ok(());
        };
        let excess = usize::try_from(excess).unwrap_or(usize::MAX);
        let mut victims = Vec::new();
        for item in self
            .dedup
            .by_index
            .iter(txn)
            .map_err(|e| self.ctx.err(e))?
            .take(excess)
        {
            let (first_index, raw) = item.map_err(|e| self.ctx.err(e))?;
            let (issued_at_ms, id): (u64, String) = codec::decode_sealed(raw)
                .map_err(|e| corrupt(format!("index {first_index}: {e}")))?;
            victims.push((issued_at_ms, first_index, id));
        }
        for (issued_at_ms, first_index, id) in victims {
            self.dedup_remove(txn, &id, first_index, issued_at_ms)?;
        }
        Ok(())
    }

    /// Removes one record from all three databases; a missing piece means corruption.
    fn dedup_remove(
        &self,
        txn: &mut RwTxn<'_>,
        request_id: &str,
        first_index: Index,
        issued_at_ms: u64,
    ) -> Result<(), StorageError> {
        let err = |e| self.ctx.err(e);
        let t = &self.dedup;
        let removed = t.records.delete(txn, request_id).map_err(err)?
            & t.by_index.delete(txn, &first_index).map_err(err)?
            & t.by_time
                .delete(txn, &time_key(issued_at_ms, first_index))
                .map_err(err)?;
        if !removed {
            return Err(corrupt(format!(
                "record {request_id:?} (entry {first_index}) is missing from one of its databases"
            )));
        }
        Ok(())
    }
}
