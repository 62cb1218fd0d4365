//! `KvReader`: read-only, thread-safe access to the key-value store.
//!
//! Readers open their own LMDB read transaction per call (without thread-local reader slots, so any
//! thread may read) and see the latest committed batch. Every value is checksum-verified.

use std::ops::Bound;

use bytes::Bytes;
use heed::types::{Bytes as RawBytes, Str};
use heed::{Database, Env, RoTxn, WithoutTls};

use crate::core::Index;

use super::codec;
use super::error::StorageError;
use super::kv_command::MAX_KEY_LEN;
use super::kv_dedup::DedupTables;
use super::kv_tokens::TokenTables;
use super::lmdb::EnvContext;

/// Data database: key bytes -> sealed value bytes.
pub(crate) type DataDb = Database<'static, RawBytes, RawBytes>;
/// Meta database: name -> sealed bincode value.
pub(crate) type MetaDb = Database<'static, Str, RawBytes>;
/// Key of the last applied index in the meta database.
pub(crate) const LAST_APPLIED_KEY: &str = "last_applied";

/// Handles to the state machine environment, shared by the writer and its readers.
#[derive(Clone)]
pub(crate) struct KvDbs {
    pub(crate) env: Env<WithoutTls>,
    pub(crate) data: DataDb,
    pub(crate) meta: MetaDb,
    pub(crate) dedup: DedupTables,
    pub(crate) tokens: TokenTables,
    /// The multi-region tables (see [`super::kv_regions`]).
    pub(crate) regions: super::kv_regions::RegionTables,
    pub(crate) ctx: EnvContext,
    /// What requests ask every time, kept in memory (see [`super::kv_flags`]).
    pub(crate) flags: std::sync::Arc<super::kv_flags::KvFlags>,
}

impl KvDbs {
    /// Reads the durable last applied index (0 when nothing was applied).
    pub(crate) fn read_applied(&self, txn: &RoTxn<'_, WithoutTls>) -> Result<Index, StorageError> {
        match self
            .meta
            .get(txn, LAST_APPLIED_KEY)
            .map_err(|e| self.ctx.err(e))?
        {
            Some(raw) => codec::decode_sealed(raw)
                .map_err(|e| StorageError::corrupt(format!("state machine applied index: {e}"))),
            None => Ok(0),
        }
    }

    /// Reads and verifies the value of `key`.
    pub(crate) fn read_value(
        &self,
        txn: &RoTxn<'_, WithoutTls>,
        key: &str,
    ) -> Result<Option<Bytes>, StorageError> {
        // Keys the state machine refuses are never stored (and LMDB would reject the lookup).
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Ok(None);
        }
        match self
            .data
            .get(txn, key.as_bytes())
            .map_err(|e| self.ctx.err(e))?
        {
            Some(raw) => Ok(Some(unseal_value(key.as_bytes(), raw)?)),
            None => Ok(None),
        }
    }
}

/// Verifies a stored value and copies it out.
pub(crate) fn unseal_value(key: &[u8], raw: &[u8]) -> Result<Bytes, StorageError> {
    codec::unseal(raw).map(Bytes::copy_from_slice).map_err(|e| {
        StorageError::corrupt(format!(
            "the value of key {:?} is corrupt: {e}",
            String::from_utf8_lossy(key)
        ))
    })
}

/// Read-only view of the key-value store, usable from any thread.
///
/// A reader keeps the environment open: drop every reader before reopening the state machine in
/// the same process (a second open of a live environment is refused).
#[derive(Clone)]
pub struct KvReader {
    dbs: KvDbs,
}

impl std::fmt::Debug for KvReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvReader")
            .field("path", &self.dbs.ctx.path)
            .finish()
    }
}

impl KvReader {
    pub(crate) fn new(dbs: KvDbs) -> Self {
        Self { dbs }
    }

    /// The databases it reads.
    pub(crate) fn dbs(&self) -> &KvDbs {
        &self.dbs
    }

    fn read_txn(&self) -> Result<RoTxn<'_, WithoutTls>, StorageError> {
        self.dbs.env.read_txn().map_err(|e| self.dbs.ctx.err(e))
    }

    /// Whether a replicated token exists (access control is on), as of the last applied batch;
    /// no storage read.
    pub fn tokens_exist(&self) -> bool {
        self.dbs.flags.tokens_exist()
    }

    /// Whether the region replicates to other regions, as of the last applied batch; no
    /// storage read.
    pub fn regions_active(&self) -> bool {
        self.dbs.flags.regions_active()
    }

    /// The value of `key`, if any (checksum-verified: a damaged value is
    /// [`StorageError::Corrupt`]).
    pub fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        let txn = self.read_txn()?;
        self.dbs
            .read_value(&txn, key)
            .map_err(|e| self.dbs.ctx.locate(e))
    }

    /// The multi-region state (registry, clock, acknowledgements, conflict statistics).
    pub fn regions_state(&self) -> Result<super::kv_regions::RegionsState, StorageError> {
        let txn = self.read_txn()?;
        self.dbs
            .regions_state(&txn)
            .map_err(|e| self.dbs.ctx.locate(e))
    }

    /// The region versions of `key` (kept while the region replicates to others).
    pub fn versions(&self, key: &str) -> Result<Option<crate::regions::Versions>, StorageError> {
        let txn = self.read_txn()?;
        self.dbs
            .read_versions(&txn, key)
            .map_err(|e| self.dbs.ctx.locate(e))
    }

    /// Up to `max` outbox entries from sequence `from` on.
    pub fn outbox(
        &self,
        from: u64,
        max: usize,
    ) -> Result<Vec<super::kv_regions::OutboxEntry>, StorageError> {
        let txn = self.read_txn()?;
        self.dbs
            .read_outbox(&txn, from, max)
            .map_err(|e| self.dbs.ctx.locate(e))
    }

    /// Index of the last entry whose effects are durable (0 when nothing was applied).
    pub fn applied_index(&self) -> Result<Index, StorageError> {
        let txn = self.read_txn()?;
        self.dbs
            .read_applied(&txn)
            .map_err(|e| self.dbs.ctx.locate(e))
    }

    /// Number of requests the exactly-once table currently remembers.
    pub fn dedup_len(&self) -> Result<u64, StorageError> {
        let txn = self.read_txn()?;
        self.dbs.dedup_len(&txn)
    }

    /// Up to `limit` pairs whose key starts with `prefix` and (if given) sorts strictly after
    /// `after`, in ascending byte order of the key. Pass the last key returned as `after` to page.
    /// Every value returned is checksum-verified.
    pub fn scan(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Bytes)>, StorageError> {
        self.scan_verified(prefix, after, limit)
            .map_err(|e| self.dbs.ctx.locate(e))
    }

    fn scan_verified(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Bytes)>, StorageError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        // LMDB refuses an empty key even as a range bound: start unbounded instead.
        let start = match after {
            Some(after) if !after.is_empty() && after.as_bytes() >= prefix.as_bytes() => {
                Bound::Excluded(after.as_bytes())
            }
            _ if prefix.is_empty() => Bound::Unbounded,
            _ => Bound::Included(prefix.as_bytes()),
        };
        let txn = self.read_txn()?;
        let range = (start, Bound::Unbounded);
        let iter = self
            .dbs
            .data
            .range(&txn, &range)
            .map_err(|e| self.dbs.ctx.err(e))?;
        for item in iter {
            let (key, raw) = item.map_err(|e| self.dbs.ctx.err(e))?;
            if !key.starts_with(prefix.as_bytes()) {
                break;
            }
            let value = unseal_value(key, raw)?;
            let key = String::from_utf8(key.to_vec()).map_err(|_| {
                StorageError::corrupt(format!(
                    "key {:?} is not valid UTF-8",
                    String::from_utf8_lossy(key)
                ))
            })?;
            out.push((key, value));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}
