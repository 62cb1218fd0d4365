//! `KvStateMachine`: the built-in key-value [`StateMachine`], in its own LMDB environment
//! (`<data-dir>/sm`).
//!
//! Databases: `data` (key -> sealed value), `meta` (`last_applied`, the dedup clock), the
//! exactly-once table (`dedup`, `dedup_by_index`, `dedup_by_time`; see [`super::kv_dedup`]) and
//! the replicated API tokens (`tokens`, `token_hashes`; see [`super::kv_tokens`]). One
//! call to [`StateMachine::apply`] writes the effects of all its entries, their dedup records AND
//! the new `last_applied` in one write transaction with one durable commit, so a crash never
//! applies an entry twice or skips one.
//!
//! Rules for `apply`: it returns exactly one output per entry passed, in order. Entries at or below
//! the applied index (already applied before a restart) are skipped and get [`KvOutput::Noop`];
//! the first entry above it must be `applied + 1` and the rest must follow contiguously, otherwise
//! the call fails with [`StateMachineError::Corrupt`] and nothing is written. Entries without a
//! command get `Noop`. A payload is a bare [`KvCommand`] (output: a [`KvOutput`]) or a
//! [`KvRequest`] (output: a [`KvResponse`]); see [`super::kv_request`] for how they are told
//! apart. A payload that does not decode, an empty or over-long key, a transaction over its limits
//! or an invalid request id gets [`KvOutput::Rejected`] (identically on every replica) and still
//! counts as applied. Nothing in `apply` reads a clock or a random source.
//!
//! Snapshots ([`StateMachine::snapshot`] / [`StateMachine::restore`]) are streamed from an LMDB
//! read transaction and restored in one write transaction; see [`super::kv_snapshot`].

use std::convert::Infallible;
use std::path::Path;

use bytes::Bytes;
use heed::types::{Bytes as RawBytes, Str};
use heed::{CommitOrAbort, RwTxn};

use crate::core::{Entry, EntryPayload, Index};
use crate::state_machine::{SnapshotSource, StateMachine, StateMachineError};

use super::codec;
use super::error::{StorageError, StoreKind};
use super::kv_command::{KvCommand, KvOutput};
use super::kv_dedup::{
    DedupConfig, DedupRecord, DedupTables, DEDUP_BY_INDEX_DB, DEDUP_BY_TIME_DB, DEDUP_DB,
};
use super::kv_reader::{KvDbs, KvReader, LAST_APPLIED_KEY};
use super::kv_regions::{RegionTables, OUTBOX_DB, REGIONS_DB, VERSIONS_DB};
use super::kv_request::{KvRequest, KvResponse, MAX_REQUEST_ID_LEN};
use super::kv_snapshot;
use super::kv_tokens::{TokenTables, TOKENS_DB, TOKEN_HASHES_DB};
use super::lmdb::open_env;

/// Name of the data database.
pub const DATA_DB: &str = "data";
/// Name of the meta database.
pub const SM_META_DB: &str = "meta";

/// Databases in the state machine environment.
const SM_MAX_DBS: u32 = 10;

/// The built-in replicated key-value store.
pub struct KvStateMachine {
    dbs: KvDbs,
    applied: Index,
    dedup: DedupConfig,
    /// The durable dedup clock (see [`super::kv_dedup`]).
    dedup_clock: u64,
    /// Named merges of the `custom:` conflict strategies (see [`crate::regions`]).
    resolvers: crate::regions::Resolvers,
    /// Told the changes of each applied batch (see [`super::kv_observe`]).
    observer: Option<super::kv_observe::ApplyObserver>,
}

impl std::fmt::Debug for KvStateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStateMachine")
            .field("path", &self.dbs.ctx.path)
            .field("applied", &self.applied)
            .field("dedup", &self.dedup)
            .field("dedup_clock", &self.dedup_clock)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl KvStateMachine {
    /// Opens (creating if needed) the state machine environment in `dir` with an LMDB map of
    /// `map_size` bytes (rounded up to 64 KiB) and the default [`DedupConfig`]. Open each
    /// directory at most once per process.
    pub fn open(dir: &Path, map_size: usize) -> Result<Self, StorageError> {
        Self::open_with(dir, map_size, DedupConfig::default())
    }

    /// Like [`KvStateMachine::open`], with an explicit exactly-once configuration (which must be
    /// the same on every replica).
    pub fn open_with(
        dir: &Path,
        map_size: usize,
        dedup: DedupConfig,
    ) -> Result<Self, StorageError> {
        let (env, ctx) = open_env(StoreKind::StateMachine, dir, map_size, SM_MAX_DBS)?;
        let wtxn = env.write_txn().map_err(|e| ctx.err(e))?;
        let opened = env
            .create_databases_and_commit(wtxn, |dbo, wtxn| -> Result<_, heed::Error> {
                let data = dbo.create_database::<RawBytes, RawBytes>(wtxn, Some(DATA_DB))?;
                let meta = dbo.create_database::<Str, RawBytes>(wtxn, Some(SM_META_DB))?;
                let records = dbo.create_database::<Str, RawBytes>(wtxn, Some(DEDUP_DB))?;
                let by_index = dbo.create_database(wtxn, Some(DEDUP_BY_INDEX_DB))?;
                let by_time = dbo.create_database(wtxn, Some(DEDUP_BY_TIME_DB))?;
                let dedup = (records, by_index, by_time);
                let tokens = (
                    dbo.create_database(wtxn, Some(TOKENS_DB))?,
                    dbo.create_database(wtxn, Some(TOKEN_HASHES_DB))?,
                );
                let regions = (
                    dbo.create_database(wtxn, Some(REGIONS_DB))?,
                    dbo.create_database(wtxn, Some(VERSIONS_DB))?,
                    dbo.create_database(wtxn, Some(OUTBOX_DB))?,
                );
                Ok(CommitOrAbort::<_, Infallible>::Commit((
                    data, meta, dedup, tokens, regions,
                )))
            })
            .map_err(|e| ctx.err(e))?;
        let (data, meta, (records, by_index, by_time), (token_records, by_hash), regions) =
            match opened {
                CommitOrAbort::Commit(dbs) => dbs,
                CommitOrAbort::Abort(never) => match never {},
            };
        let tables = DedupTables {
            records,
            by_index,
            by_time,
        };
        let dbs = KvDbs {
            env,
            data,
            meta,
            dedup: tables,
            tokens: TokenTables {
                records: token_records,
                by_hash,
            },
            regions: RegionTables {
                state: regions.0,
                versions: regions.1,
                outbox: regions.2,
            },
            ctx,
            flags: Default::default(),
        };
        dbs.refresh_flags()?;
        let (applied, dedup_clock) = {
            let rtxn = dbs.env.read_txn().map_err(|e| dbs.ctx.err(e))?;
            (dbs.read_applied(&rtxn)?, dbs.read_dedup_clock(&rtxn)?)
        };
        Ok(KvStateMachine {
            dbs,
            applied,
            dedup,
            dedup_clock,
            resolvers: crate::regions::Resolvers::with_builtins(),
            observer: None,
        })
    }

    /// Registers the observer told the changes of each applied batch (see
    /// [`super::kv_observe`]); replaces any earlier one.
    pub fn set_apply_observer(&mut self, observer: super::kv_observe::ApplyObserver) {
        self.observer = Some(observer);
    }

    /// Registers a merge for the `custom:NAME` conflict strategy (see [`crate::regions`]). Every
    /// node of every region must register the same resolvers before it starts: conflict
    /// resolution runs in `apply` and must give the same result everywhere.
    pub fn register_resolver(
        &mut self,
        name: &str,
        resolver: std::sync::Arc<dyn crate::regions::MergeResolver>,
    ) {
        self.resolvers.register(name, resolver);
    }

    fn exec_context(&self, now_ms: u64) -> super::kv_exec::ExecContext<'_> {
        super::kv_exec::ExecContext {
            now_ms,
            resolvers: &self.resolvers,
        }
    }

    /// Reads every stored record (one sequential pass) and verifies its checksum; returns how
    /// many were checked. A damaged one is a [`StorageError::Corrupt`] naming its key and the
    /// store's path. A node does this at every start ([`StateMachine::verify`]).
    pub fn verify_all(&self) -> Result<u64, StorageError> {
        super::kv_verify::verify_store(&self.dbs).map_err(|e| self.dbs.ctx.locate(e))
    }

    /// A read-only handle usable from any thread.
    pub fn reader(&self) -> KvReader {
        KvReader::new(self.dbs.clone())
    }

    /// The exactly-once configuration in force.
    pub fn dedup_config(&self) -> DedupConfig {
        self.dedup
    }

    /// Applies `entries` (see the module docs for the rules), with storage errors as such.
    pub fn apply_entries(&mut self, entries: &[Entry]) -> Result<Vec<Bytes>, StorageError> {
        let applied = self.applied;
        let mut next = applied.saturating_add(1);
        let mut clock = self.dedup_clock;
        let mut outputs = Vec::with_capacity(entries.len());
        let mut wtxn: Option<RwTxn<'_>> = None;
        for entry in entries {
            if entry.index <= applied && next == applied.saturating_add(1) {
                outputs.push(KvOutput::Noop.encode());
                continue;
            }
            if entry.index != next {
                return Err(StorageError::corrupt(format!(
                    "state machine was handed entry {} but expected entry {next} (applied index {applied})",
                    entry.index
                )));
            }
            let txn = match &mut wtxn {
                Some(txn) => txn,
                None => wtxn.insert(self.dbs.env.write_txn().map_err(|e| self.dbs.ctx.err(e))?),
            };
            outputs.push(self.execute(txn, entry, &mut clock)?);
            next = next.saturating_add(1);
        }
        if let Some(mut txn) = wtxn {
            let new_applied = next - 1;
            let value = codec::encode_sealed(&new_applied)?;
            self.dbs
                .meta
                .put(&mut txn, LAST_APPLIED_KEY, &value)
                .map_err(|e| self.dbs.ctx.err(e))?;
            if clock != self.dedup_clock {
                self.dbs.write_dedup_clock(&mut txn, clock)?;
            }
            crate::crash_points::crash_point(crate::crash_points::APPLY_BEFORE_COMMIT);
            txn.commit().map_err(|e| self.dbs.ctx.err(e))?;
            self.applied = new_applied;
            self.dedup_clock = clock;
            if let Err(err) = self.dbs.refresh_flags() {
                tracing::error!(
                    "cannot read the token and region flags back ({err}): access control stays on"
                );
            }
            if let Some(observer) = &self.observer {
                let changes = super::kv_observe::changes_of(entries, &outputs, &self.reader());
                if !changes.is_empty() {
                    observer(&changes);
                }
            }
        }
        Ok(outputs)
    }

    /// Applies one entry and returns its encoded output.
    fn execute(
        &self,
        txn: &mut RwTxn<'_>,
        entry: &Entry,
        clock: &mut u64,
    ) -> Result<Bytes, StorageError> {
        let bytes = match &entry.payload {
            EntryPayload::Noop | EntryPayload::Config(_) => return Ok(KvOutput::Noop.encode()),
            EntryPayload::Command(bytes) => bytes,
        };
        if !KvRequest::is_request(bytes) {
            let output = match KvCommand::decode(bytes) {
                Ok(cmd) => self.dbs.execute_command(txn, cmd, &self.exec_context(0))?,
                Err(e) => KvOutput::Rejected {
                    reason: format!("malformed command: {e}"),
                },
            };
            return Ok(output.encode());
        }
        let response = match KvRequest::decode(bytes) {
            Ok(request) => self.execute_request(txn, entry.index, request, clock)?,
            Err(e) => KvResponse {
                output: KvOutput::Rejected {
                    reason: format!("malformed request: {e}"),
                },
                first_index: entry.index,
                duplicate: false,
            },
        };
        Ok(response.encode())
    }

    /// Applies a request at `index`: advances the dedup clock, evicts expired records, then
    /// answers from the table or executes the command and remembers its output.
    fn execute_request(
        &self,
        txn: &mut RwTxn<'_>,
        index: Index,
        request: KvRequest,
        clock: &mut u64,
    ) -> Result<KvResponse, StorageError> {
        *clock = (*clock).max(request.issued_at_ms);
        self.dbs
            .dedup_evict_before(txn, clock.saturating_sub(self.dedup.ttl_ms))?;
        let fresh = |output| KvResponse {
            output,
            first_index: index,
            duplicate: false,
        };
        let Some(id) = request.request_id else {
            return Ok(fresh(self.dbs.execute_command(
                txn,
                request.command,
                &self.exec_context(request.issued_at_ms),
            )?));
        };
        if id.is_empty() || id.len() > MAX_REQUEST_ID_LEN {
            return Ok(fresh(KvOutput::Rejected {
                reason: format!(
                    "request id must be 1 to {MAX_REQUEST_ID_LEN} bytes, got {}",
                    id.len()
                ),
            }));
        }
        if let Some(record) = self.dbs.dedup_lookup(txn, &id)? {
            return Ok(KvResponse {
                output: record.output,
                first_index: record.first_index,
                duplicate: true,
            });
        }
        let output = self.dbs.execute_command(
            txn,
            request.command,
            &self.exec_context(request.issued_at_ms),
        )?;
        let record = DedupRecord {
            first_index: index,
            issued_at_ms: request.issued_at_ms,
            output,
        };
        self.dbs.dedup_insert(txn, &id, &record)?;
        self.dbs.dedup_evict_excess(txn, self.dedup.max_entries)?;
        Ok(fresh(record.output))
    }
}

/// Maps a storage error to the state machine's: corruption stays corruption.
pub(crate) fn to_state_machine_error(err: StorageError) -> StateMachineError {
    match err {
        StorageError::Corrupt { what } => StateMachineError::Corrupt(what),
        other => match other.disk_refusal() {
            Some(reason) => StateMachineError::DiskRefused(reason),
            None => StateMachineError::Storage(other.to_string()),
        },
    }
}

impl StateMachine for KvStateMachine {
    fn applied_index(&self) -> Index {
        self.applied
    }

    fn verify(&self) -> Result<u64, StateMachineError> {
        self.verify_all().map_err(to_state_machine_error)
    }

    fn apply(&mut self, entries: &[Entry]) -> Result<Vec<Bytes>, StateMachineError> {
        self.apply_entries(entries)
            .map_err(|e| to_state_machine_error(self.dbs.ctx.locate(e)))
    }

    /// Opens an LMDB read transaction (no pause of `apply`); the source streams the store as of
    /// that instant in the format of [`super::kv_snapshot`].
    fn snapshot(&mut self) -> Result<Box<dyn SnapshotSource>, StateMachineError> {
        let source = kv_snapshot::capture(&self.dbs).map_err(to_state_machine_error)?;
        Ok(Box::new(source))
    }

    /// Replaces the data and the exactly-once table with the snapshot's in one write transaction
    /// (readers see the old state until it commits). The applied index becomes `last_index`,
    /// even if the snapshot's header records another one (only a caller bug makes them differ;
    /// it is logged). Malformed input is `Corrupt` and changes nothing.
    fn restore(
        &mut self,
        last_index: Index,
        data: &mut dyn std::io::Read,
    ) -> Result<(), StateMachineError> {
        let clock =
            kv_snapshot::restore(&self.dbs, last_index, data).map_err(to_state_machine_error)?;
        self.applied = last_index;
        self.dedup_clock = clock;
        if let Err(err) = self.dbs.refresh_flags() {
            tracing::error!(
                "cannot read the token and region flags back ({err}): access control stays on"
            );
        }
        Ok(())
    }
}
