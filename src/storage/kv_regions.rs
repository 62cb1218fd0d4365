//! The multi-region state of the key-value state machine (see `docs/regions-design.md`): the
//! region registry, the hybrid logical clock, the versions of keys, the outbox of mutations made
//! here, the acknowledgements of remote regions and the conflict statistics.
//!
//! Databases:
//! - `regions`: one record, `state` -> sealed [`RegionsState`];
//! - `versions`: key -> sealed [`Versions`] (kept only while at least one remote region exists);
//! - `outbox`: sequence number (u64 big-endian) -> sealed [`OutboxEntry`].
//!
//! Everything is written inside the apply write transaction and read back from it, so every node
//! of a region holds the same state, and snapshots carry it.

use std::collections::BTreeMap;

use bytes::Bytes;
use heed::byteorder::BigEndian;
use heed::types::{Bytes as RawBytes, Str, U64};
use heed::{Database, RoTxn, RwTxn, WithoutTls};
use serde::{Deserialize, Serialize};

use crate::regions::{
    apply_remote, check_region_id, local_write, ConflictPolicy, ConflictStats, Hlc, Outcome,
    RegionId, ResolveContext, Resolvers, Version, Versions,
};

use super::codec;
use super::error::StorageError;
use super::kv_command::KvOutput;
use super::kv_reader::KvDbs;

/// Name of the region registry database.
pub const REGIONS_DB: &str = "regions";
/// Name of the key versions database.
pub const VERSIONS_DB: &str = "versions";
/// Name of the outbox database.
pub const OUTBOX_DB: &str = "outbox";
/// The one key of the registry database.
const STATE_KEY: &str = "state";
/// Most endpoints of one remote region.
pub const MAX_REGION_ENDPOINTS: usize = 16;
/// Most remote regions.
pub const MAX_REMOTE_REGIONS: usize = 16;
/// Most mutations in one `RegionApply`.
pub const MAX_REMOTE_BATCH: usize = 4096;

/// How a write waits for other regions before it is answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AckMode {
    /// Answer after the local commit.
    #[default]
    Async,
    /// Also wait for the primary region's acknowledgement.
    SemiSync,
    /// Wait for every region's acknowledgement.
    Sync,
}

impl AckMode {
    /// `async`, `semi-sync` or `sync`.
    pub fn as_str(self) -> &'static str {
        match self {
            AckMode::Async => "async",
            AckMode::SemiSync => "semi-sync",
            AckMode::Sync => "sync",
        }
    }

    /// Parses `async`, `semi-sync` or `sync`.
    pub fn parse(text: &str) -> Option<AckMode> {
        match text {
            "async" => Some(AckMode::Async),
            "semi-sync" => Some(AckMode::SemiSync),
            "sync" => Some(AckMode::Sync),
            _ => None,
        }
    }
}

/// A remote region this region replicates to and from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteRegion {
    /// Its name.
    pub id: RegionId,
    /// Base URLs of its nodes' gateways (any node: followers forward to their leader).
    pub endpoints: Vec<String>,
    /// The highest outbox sequence of this region it acknowledged.
    pub acked: u64,
    /// When it last acknowledged (the acknowledging entry's time, Unix ms).
    pub acked_at_ms: u64,
    /// The highest sequence of ITS outbox applied here.
    pub applied: u64,
}

/// The replicated multi-region settings and counters of a region.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionsState {
    /// This region's name (set by the first region added).
    pub local: Option<RegionId>,
    /// The primary region (for `semi-sync` and `lww-register` ties).
    pub primary: Option<RegionId>,
    /// The remote regions.
    pub remotes: BTreeMap<RegionId, RemoteRegion>,
    /// The region's hybrid logical clock.
    pub clock: Hlc,
    /// Sequence number the next outbox entry gets (starts at 1).
    pub next_seq: u64,
    /// Conflict strategy per key prefix.
    pub policy: ConflictPolicy,
    /// How writes wait for other regions by default.
    pub ack: AckMode,
    /// How long a write waits for other regions before it is answered "committed here only".
    pub ack_timeout_ms: u64,
    /// Conflicts resolved here.
    pub stats: ConflictStats,
    /// Keys currently holding several siblings (multi-value conflicts not yet superseded).
    pub unresolved: u64,
    /// When each origin region's mutations were last applied here (Unix ms of the entry).
    pub applied_at_ms: BTreeMap<RegionId, u64>,
}

/// Default [`RegionsState::ack_timeout_ms`].
pub const DEFAULT_ACK_TIMEOUT_MS: u64 = 5_000;

impl RegionsState {
    /// Whether writes are versioned and shipped (a region name and at least one remote region).
    pub fn active(&self) -> bool {
        self.local.is_some() && !self.remotes.is_empty()
    }

    /// The last sequence number given to an outbox entry (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.next_seq.saturating_sub(1)
    }
}

/// One mutation made in this region, waiting to be shipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Its sequence number in this region's outbox.
    pub seq: u64,
    /// The key.
    pub key: String,
    /// The version written (value or tombstone, timestamp, vector).
    pub version: Version,
}

/// A change of the region registry or settings (the payload of `KvCommand::Region`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegionChange {
    /// Add (or update the endpoints of) a remote region; `local` is this region's name as the
    /// proposing node is configured (`--region`), which must match a name already recorded.
    Add {
        /// This region's name.
        local: RegionId,
        /// The remote region.
        id: RegionId,
        /// Its gateways' base URLs.
        endpoints: Vec<String>,
    },
    /// Forget a remote region (its acknowledgements no longer hold the outbox back).
    Remove {
        /// The remote region.
        id: RegionId,
    },
    /// Set (or clear) the primary region: this region or a remote one.
    SetPrimary {
        /// The primary.
        id: Option<RegionId>,
    },
    /// Replace the conflict policy.
    SetPolicy(ConflictPolicy),
    /// Set how writes wait for other regions.
    SetAck {
        /// The mode.
        mode: AckMode,
        /// Its timeout.
        timeout_ms: u64,
    },
}

/// A mutation shipped from another region (one outbox entry of it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteMutation {
    /// Its sequence number in the origin's outbox.
    pub seq: u64,
    /// The key.
    pub key: String,
    /// The version.
    pub version: Version,
}

/// The databases of this module.
#[derive(Clone)]
pub(crate) struct RegionTables {
    pub(crate) state: Database<'static, Str, RawBytes>,
    pub(crate) versions: Database<'static, RawBytes, RawBytes>,
    pub(crate) outbox: Database<'static, U64<BigEndian>, RawBytes>,
}

impl KvDbs {
    /// The region state as of `txn`.
    pub(crate) fn regions_state(
        &self,
        txn: &RoTxn<'_, WithoutTls>,
    ) -> Result<RegionsState, StorageError> {
        match self
            .regions
            .state
            .get(txn, STATE_KEY)
            .map_err(|e| self.ctx.err(e))?
        {
            Some(bytes) => codec::decode_sealed(bytes)
                .map_err(|e| StorageError::corrupt(format!("region state: {e}"))),
            None => Ok(RegionsState {
                next_seq: 1,
                ack_timeout_ms: DEFAULT_ACK_TIMEOUT_MS,
                ..RegionsState::default()
            }),
        }
    }

    fn write_regions_state(
        &self,
        txn: &mut RwTxn<'_>,
        state: &RegionsState,
    ) -> Result<(), StorageError> {
        let bytes = codec::encode_sealed(state)?;
        self.regions
            .state
            .put(txn, STATE_KEY, &bytes)
            .map_err(|e| self.ctx.err(e))
    }

    /// The versions of `key` as of `txn`.
    pub(crate) fn read_versions(
        &self,
        txn: &RoTxn<'_, WithoutTls>,
        key: &str,
    ) -> Result<Option<Versions>, StorageError> {
        if key.is_empty() || key.len() > super::kv_command::MAX_KEY_LEN {
            return Ok(None);
        }
        match self
            .regions
            .versions
            .get(txn, key.as_bytes())
            .map_err(|e| self.ctx.err(e))?
        {
            Some(bytes) => codec::decode_sealed(bytes)
                .map(Some)
                .map_err(|e| StorageError::corrupt(format!("versions of key {key:?}: {e}"))),
            None => Ok(None),
        }
    }

    fn write_versions(
        &self,
        txn: &mut RwTxn<'_>,
        key: &str,
        versions: &Versions,
    ) -> Result<(), StorageError> {
        let bytes = codec::encode_sealed(versions)?;
        self.regions
            .versions
            .put(txn, key.as_bytes(), &bytes)
            .map_err(|e| self.ctx.err(e))
    }

    /// Outbox entries from `from` on, at most `max` of them.
    pub(crate) fn read_outbox(
        &self,
        txn: &RoTxn<'_, WithoutTls>,
        from: u64,
        max: usize,
    ) -> Result<Vec<OutboxEntry>, StorageError> {
        let mut out = Vec::new();
        let iter = self
            .regions
            .outbox
            .range(txn, &(from..))
            .map_err(|e| self.ctx.err(e))?;
        for item in iter.take(max) {
            let (seq, bytes) = item.map_err(|e| self.ctx.err(e))?;
            let entry: OutboxEntry = codec::decode_sealed(bytes)
                .map_err(|e| StorageError::corrupt(format!("outbox entry {seq}: {e}")))?;
            out.push(entry);
        }
        Ok(out)
    }

    /// Records a local write of `key` (value `None`: delete) at entry time `now_ms`, when this
    /// region replicates to others: a new version, written to `versions` and the outbox. Does
    /// nothing otherwise.
    pub(crate) fn record_local_write(
        &self,
        txn: &mut RwTxn<'_>,
        key: &str,
        value: Option<&[u8]>,
        now_ms: u64,
    ) -> Result<(), StorageError> {
        let mut state = self.regions_state(txn)?;
        let Some(local) = state.local.clone() else {
            return Ok(()); // regions never configured: nothing is versioned
        };
        if !state.active() {
            // No remote region now: the write is not versioned, so a version kept from before
            // would be stale (a later remote write must not be resolved against it).
            self.regions
                .versions
                .delete(txn, key.as_bytes())
                .map_err(|e| self.ctx.err(e))?;
            return Ok(());
        }
        let stored = self.read_versions(txn, key)?;
        let had_siblings = stored.as_ref().is_some_and(Versions::has_siblings);
        let hlc = state.clock.tick(now_ms);
        let version = local_write(
            stored.as_ref(),
            value.map(Bytes::copy_from_slice),
            &local,
            hlc,
        );
        self.write_versions(txn, key, &Versions::single(version.clone()))?;
        let seq = state.next_seq;
        let entry = OutboxEntry {
            seq,
            key: key.to_string(),
            version,
        };
        self.regions
            .outbox
            .put(txn, &seq, &codec::encode_sealed(&entry)?)
            .map_err(|e| self.ctx.err(e))?;
        state.clock = hlc;
        state.next_seq = seq + 1;
        if had_siblings {
            state.unresolved = state.unresolved.saturating_sub(1);
        }
        self.write_regions_state(txn, &state)
    }

    /// Applies a registry or settings change.
    pub(crate) fn region_change(
        &self,
        txn: &mut RwTxn<'_>,
        change: RegionChange,
    ) -> Result<KvOutput, StorageError> {
        let mut state = self.regions_state(txn)?;
        let rejected = |reason: String| Ok(KvOutput::Rejected { reason });
        match change {
            RegionChange::Add {
                local,
                id,
                endpoints,
            } => {
                if let Err(e) = check_region_id(&local).and(check_region_id(&id)) {
                    return rejected(e);
                }
                if let Some(known) = &state.local {
                    if *known != local {
                        return rejected(format!(
                            "this region is {known:?}, but the node proposing the change is configured as {local:?}"
                        ));
                    }
                }
                if id == local {
                    return rejected(format!("{id:?} is this region itself"));
                }
                if endpoints.is_empty() || endpoints.len() > MAX_REGION_ENDPOINTS {
                    return rejected(format!(
                        "a region needs 1 to {MAX_REGION_ENDPOINTS} endpoints"
                    ));
                }
                if !state.remotes.contains_key(&id) && state.remotes.len() >= MAX_REMOTE_REGIONS {
                    return rejected(format!("at most {MAX_REMOTE_REGIONS} remote regions"));
                }
                state.local = Some(local);
                let next_seq = state.next_seq;
                let remote = state.remotes.entry(id.clone()).or_insert(RemoteRegion {
                    id,
                    endpoints: Vec::new(),
                    // A region added later starts with the writes made from now on: earlier
                    // ones were never versioned for it (see the docs: seed it from a backup).
                    acked: next_seq.saturating_sub(1),
                    acked_at_ms: 0,
                    applied: 0,
                });
                remote.endpoints = endpoints;
            }
            RegionChange::Remove { id } => {
                if state.remotes.remove(&id).is_none() {
                    return rejected(format!("no region {id:?}"));
                }
                if state.primary.as_ref() == Some(&id) {
                    state.primary = None;
                }
                self.trim_outbox(txn, &state)?;
            }
            RegionChange::SetPrimary { id } => {
                if let Some(id) = &id {
                    if state.local.as_ref() != Some(id) && !state.remotes.contains_key(id) {
                        return rejected(format!("no region {id:?}"));
                    }
                }
                state.primary = id;
            }
            RegionChange::SetPolicy(policy) => state.policy = policy,
            RegionChange::SetAck { mode, timeout_ms } => {
                state.ack = mode;
                state.ack_timeout_ms = timeout_ms;
            }
        }
        self.write_regions_state(txn, &state)?;
        Ok(KvOutput::Region)
    }

    /// Records that `region` acknowledged this region's outbox up to `seq`, and trims the
    /// outbox below every region's acknowledgement.
    pub(crate) fn region_acked(
        &self,
        txn: &mut RwTxn<'_>,
        region: &str,
        seq: u64,
        now_ms: u64,
    ) -> Result<KvOutput, StorageError> {
        let mut state = self.regions_state(txn)?;
        let last = state.last_seq();
        let Some(remote) = state.remotes.get_mut(region) else {
            return Ok(KvOutput::Rejected {
                reason: format!("no region {region:?}"),
            });
        };
        remote.acked = remote.acked.max(seq.min(last));
        remote.acked_at_ms = remote.acked_at_ms.max(now_ms);
        self.trim_outbox(txn, &state)?;
        self.write_regions_state(txn, &state)?;
        Ok(KvOutput::Region)
    }

    fn trim_outbox(&self, txn: &mut RwTxn<'_>, state: &RegionsState) -> Result<(), StorageError> {
        let upto = state
            .remotes
            .values()
            .map(|r| r.acked)
            .min()
            .unwrap_or_else(|| state.last_seq());
        self.regions
            .outbox
            .delete_range(txn, &(..=upto))
            .map_err(|e| self.ctx.err(e))?;
        Ok(())
    }

    /// Applies mutations shipped from region `from` (skipping those already applied), resolving
    /// conflicts; answers the last of its sequence numbers applied here.
    pub(crate) fn region_apply(
        &self,
        txn: &mut RwTxn<'_>,
        from: &str,
        after: u64,
        mutations: Vec<RemoteMutation>,
        now_ms: u64,
        resolvers: &Resolvers,
    ) -> Result<KvOutput, StorageError> {
        let mut state = self.regions_state(txn)?;
        if mutations.len() > MAX_REMOTE_BATCH {
            return Ok(KvOutput::Rejected {
                reason: format!("at most {MAX_REMOTE_BATCH} mutations per batch"),
            });
        }
        let Some(mut applied) = state.remotes.get(from).map(|r| r.applied) else {
            return Ok(KvOutput::Rejected {
                reason: format!("no region {from:?} is registered here"),
            });
        };
        // The sender's cursor for this region: what lies below it was acknowledged, or was
        // written while this region was not registered there (a region added later, or
        // removed and added again, gets the writes made from then on).
        applied = applied.max(after);
        for m in mutations {
            if m.seq <= applied {
                continue; // shipped again after a lost acknowledgement
            }
            // Nothing applied from `from` yet (`applied` 0): its first entry shipped here may be
            // past 1 (a sender that does not say where it resumes); after that, only
            // consecutive entries.
            if applied != 0 && m.seq != applied + 1 {
                return Ok(KvOutput::Rejected {
                    reason: format!(
                        "mutation {} of region {from:?} follows {applied}: a gap",
                        m.seq
                    ),
                });
            }
            if let Some(reason) = super::kv_txn::key_error(&m.key) {
                return Ok(KvOutput::Rejected { reason });
            }
            if let Err(reason) = m.version.validate() {
                return Ok(KvOutput::Rejected {
                    reason: format!("mutation {} of region {from:?}: {reason}", m.seq),
                });
            }
            state.clock = state.clock.observe(m.version.hlc);
            let stored = self.read_versions(txn, &m.key)?;
            let had_siblings = stored.as_ref().is_some_and(Versions::has_siblings);
            let ctx = ResolveContext {
                primary: state.primary.as_deref(),
                resolvers,
            };
            let outcome = apply_remote(stored.as_ref(), m.version, &m.key, &state.policy, &ctx);
            state.stats.record(&outcome);
            let versions = match outcome {
                Outcome::Applied(v) | Outcome::Conflict { versions: v, .. } => Some(v),
                Outcome::Obsolete => None,
            };
            if let Some(versions) = versions {
                match versions.current() {
                    Some(value) => self.put_raw(txn, &m.key, value)?,
                    None => {
                        self.delete_raw(txn, &m.key)?;
                    }
                }
                match (had_siblings, versions.has_siblings()) {
                    (false, true) => state.unresolved += 1,
                    (true, false) => state.unresolved = state.unresolved.saturating_sub(1),
                    _ => {}
                }
                self.write_versions(txn, &m.key, &versions)?;
            }
            applied = m.seq;
        }
        if let Some(remote) = state.remotes.get_mut(from) {
            remote.applied = applied;
        }
        state.applied_at_ms.insert(from.to_string(), now_ms);
        self.write_regions_state(txn, &state)?;
        Ok(KvOutput::RegionApplied { applied })
    }
}
