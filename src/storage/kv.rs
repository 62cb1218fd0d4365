//! `KvStateMachine`: the built-in key-value [`StateMachine`], in its own LMDB environment
//! (`<data-dir>/sm`).
//!
//! Databases: `data` (key -> sealed value) and `meta` (`last_applied`). One call to
//! [`StateMachine::apply`] writes the effects of all its entries AND the new `last_applied` in one
//! write transaction with one durable commit, so a crash never applies an entry twice or skips one.
//!
//! Rules for `apply`: it returns exactly one output per entry passed, in order. Entries at or below
//! the applied index (already applied before a restart) are skipped and get [`KvOutput::Noop`];
//! the first entry above it must be `applied + 1` and the rest must follow contiguously, otherwise
//! the call fails with [`StateMachineError::Corrupt`] and nothing is written. Entries without a
//! command get `Noop`; a command that does not decode, or has an empty or over-long key, gets
//! [`KvOutput::Rejected`] (identically on every replica) and still counts as applied.

use std::convert::Infallible;
use std::path::Path;

use bytes::Bytes;
use heed::types::{Bytes as RawBytes, Str};
use heed::{CommitOrAbort, RwTxn};

use crate::core::{Entry, EntryPayload, Index};
use crate::state_machine::{StateMachine, StateMachineError};

use super::codec;
use super::error::{StorageError, StoreKind};
use super::kv_command::{KvCommand, KvOutput, MAX_KEY_LEN};
use super::kv_reader::{KvDbs, KvReader, LAST_APPLIED_KEY};
use super::lmdb::open_env;

/// Name of the data database.
pub const DATA_DB: &str = "data";
/// Name of the meta database.
pub const SM_META_DB: &str = "meta";

/// The built-in replicated key-value store.
pub struct KvStateMachine {
    dbs: KvDbs,
    applied: Index,
}

impl std::fmt::Debug for KvStateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStateMachine")
            .field("path", &self.dbs.ctx.path)
            .field("applied", &self.applied)
            .finish()
    }
}

impl KvStateMachine {
    /// Opens (creating if needed) the state machine environment in `dir` with an LMDB map of
    /// `map_size` bytes (rounded up to 64 KiB). Open each directory at most once per process.
    pub fn open(dir: &Path, map_size: usize) -> Result<Self, StorageError> {
        let (env, ctx) = open_env(StoreKind::StateMachine, dir, map_size, 2)?;
        let wtxn = env.write_txn().map_err(|e| ctx.err(e))?;
        let opened = env
            .create_databases_and_commit(wtxn, |dbo, wtxn| -> Result<_, heed::Error> {
                let data = dbo.create_database::<RawBytes, RawBytes>(wtxn, Some(DATA_DB))?;
                let meta = dbo.create_database::<Str, RawBytes>(wtxn, Some(SM_META_DB))?;
                Ok(CommitOrAbort::<_, Infallible>::Commit((data, meta)))
            })
            .map_err(|e| ctx.err(e))?;
        let (data, meta) = match opened {
            CommitOrAbort::Commit(dbs) => dbs,
            CommitOrAbort::Abort(never) => match never {},
        };
        let dbs = KvDbs {
            env,
            data,
            meta,
            ctx,
        };
        let applied = {
            let rtxn = dbs.env.read_txn().map_err(|e| dbs.ctx.err(e))?;
            dbs.read_applied(&rtxn)?
        };
        Ok(KvStateMachine { dbs, applied })
    }

    /// A read-only handle usable from any thread.
    pub fn reader(&self) -> KvReader {
        KvReader::new(self.dbs.clone())
    }

    /// Applies `entries` (see the module docs for the rules), with storage errors as such.
    pub fn apply_entries(&mut self, entries: &[Entry]) -> Result<Vec<Bytes>, StorageError> {
        let applied = self.applied;
        let mut next = applied.saturating_add(1);
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
            outputs.push(self.execute(txn, entry)?.encode());
            next = next.saturating_add(1);
        }
        if let Some(mut txn) = wtxn {
            let new_applied = next - 1;
            let value = codec::encode_sealed(&new_applied)?;
            self.dbs
                .meta
                .put(&mut txn, LAST_APPLIED_KEY, &value)
                .map_err(|e| self.dbs.ctx.err(e))?;
            txn.commit().map_err(|e| self.dbs.ctx.err(e))?;
            self.applied = new_applied;
        }
        Ok(outputs)
    }

    fn execute(&self, txn: &mut RwTxn<'_>, entry: &Entry) -> Result<KvOutput, StorageError> {
        let bytes = match &entry.payload {
            EntryPayload::Noop => return Ok(KvOutput::Noop),
            EntryPayload::Command(bytes) => bytes,
        };
        let cmd = match KvCommand::decode(bytes) {
            Ok(cmd) => cmd,
            Err(e) => {
                return Ok(KvOutput::Rejected {
                    reason: format!("malformed command: {e}"),
                })
            }
        };
        let key_len = cmd.key().len();
        if key_len == 0 || key_len > MAX_KEY_LEN {
            return Ok(KvOutput::Rejected {
                reason: format!("key must be 1 to {MAX_KEY_LEN} bytes, got {key_len}"),
            });
        }
        let err = |e| self.dbs.ctx.err(e);
        Ok(match cmd {
            KvCommand::Put { key, value } => {
                self.dbs
                    .data
                    .put(txn, key.as_bytes(), &codec::seal(&value))
                    .map_err(err)?;
                KvOutput::Put
            }
            KvCommand::Delete { key } => KvOutput::Delete {
                existed: self.dbs.data.delete(txn, key.as_bytes()).map_err(err)?,
            },
            KvCommand::Cas {
                key,
                expected,
                value,
            } => {
                let current = self.dbs.read_value(txn, &key)?;
                if current != expected {
                    return Ok(KvOutput::Cas {
                        swapped: false,
                        current,
                    });
                }
                match &value {
                    Some(v) => self
                        .dbs
                        .data
                        .put(txn, key.as_bytes(), &codec::seal(v))
                        .map_err(err)?,
                    None => {
                        self.dbs.data.delete(txn, key.as_bytes()).map_err(err)?;
                    }
                }
                KvOutput::Cas {
                    swapped: true,
                    current: value,
                }
            }
        })
    }
}

impl StateMachine for KvStateMachine {
    fn applied_index(&self) -> Index {
        self.applied
    }

    fn apply(&mut self, entries: &[Entry]) -> Result<Vec<Bytes>, StateMachineError> {
        self.apply_entries(entries).map_err(|e| match e {
            StorageError::Corrupt { what } => StateMachineError::Corrupt(what),
            other => StateMachineError::Storage(other.to_string()),
        })
    }
}
