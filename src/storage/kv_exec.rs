//! Executing one [`KvCommand`] inside the apply write transaction.
//!
//! Everything here is deterministic: it reads only the transaction's view of the store and the
//! command, so every replica produces the same output and the same writes.

use heed::RwTxn;

use super::codec;
use super::error::StorageError;
use super::kv_command::{KvCommand, KvOutput};
use super::kv_reader::KvDbs;
use super::kv_tokens::token_error;
use super::kv_txn::{key_error, validate_txn, TxnGuard, TxnOp};

/// What executing a command may depend on besides the store: the entry's time and the
/// conflict resolvers (identical on every replica).
pub(crate) struct ExecContext<'a> {
    /// The entry's time (the request's `issued_at_ms`; 0 for a bare command).
    pub(crate) now_ms: u64,
    /// Named merges of the `custom:` conflict strategies.
    pub(crate) resolvers: &'a crate::regions::Resolvers,
}

impl KvDbs {
    /// Executes `cmd`. Invalid commands (bad keys, transactions over the limits) are
    /// [`KvOutput::Rejected`] and write nothing; only storage failures are errors.
    pub(crate) fn execute_command(
        &self,
        txn: &mut RwTxn<'_>,
        cmd: KvCommand,
        ctx: &ExecContext<'_>,
    ) -> Result<KvOutput, StorageError> {
        let at = ctx.now_ms;
        let invalid = match &cmd {
            KvCommand::Txn { guards, ops } => validate_txn(guards, ops).err(),
            KvCommand::TokenPut { name, token, .. } => token_error(name, Some(token)),
            KvCommand::TokenDelete { name } => token_error(name, None),
            KvCommand::Region(_)
            | KvCommand::RegionApply { .. }
            | KvCommand::RegionAcked { .. } => None,
            single => key_error(single.key()),
        };
        if let Some(reason) = invalid {
            return Ok(KvOutput::Rejected { reason });
        }
        match cmd {
            KvCommand::Put { key, value } => {
                self.put_value(txn, &key, &value, at)?;
                Ok(KvOutput::Put)
            }
            KvCommand::Delete { key } => Ok(KvOutput::Delete {
                existed: self.delete_value(txn, &key, at)?,
            }),
            KvCommand::Cas {
                key,
                expected,
                value,
            } => {
                let current = self.read_value(txn, &key)?;
                if current != expected {
                    return Ok(KvOutput::Cas {
                        swapped: false,
                        current,
                    });
                }
                match &value {
                    Some(v) => self.put_value(txn, &key, v, at)?,
                    None => {
                        self.delete_value(txn, &key, at)?;
                    }
                }
                Ok(KvOutput::Cas {
                    swapped: true,
                    current: value,
                })
            }
            KvCommand::Txn { guards, ops } => self.execute_txn(txn, &guards, ops, at),
            KvCommand::Region(change) => self.region_change(txn, change),
            KvCommand::RegionApply {
                from,
                after,
                mutations,
            } => self.region_apply(txn, &from, after, mutations, at, ctx.resolvers),
            KvCommand::RegionAcked { region, seq } => self.region_acked(txn, &region, seq, at),
            KvCommand::TokenPut {
                name,
                token,
                bootstrap,
            } => self.token_put(txn, &name, &token, bootstrap),
            KvCommand::TokenDelete { name } => self.token_delete(txn, &name),
        }
    }

    /// Checks every guard, then applies every operation in order (the caller validated limits).
    fn execute_txn(
        &self,
        txn: &mut RwTxn<'_>,
        guards: &[TxnGuard],
        ops: Vec<TxnOp>,
        at: u64,
    ) -> Result<KvOutput, StorageError> {
        for (i, guard) in guards.iter().enumerate() {
            let current = self.read_value(txn, &guard.key)?;
            if !guard.expect.holds(current.as_deref()) {
                return Ok(KvOutput::Txn {
                    succeeded: false,
                    // At most MAX_TXN_GUARDS (128) guards: the index always fits.
                    failed_guard: Some(u32::try_from(i).unwrap_or(u32::MAX)),
                    results: Vec::new(),
                });
            }
        }
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            results.push(match op {
                TxnOp::Put { key, value } => {
                    self.put_value(txn, &key, &value, at)?;
                    KvOutput::Put
                }
                TxnOp::Delete { key } => KvOutput::Delete {
                    existed: self.delete_value(txn, &key, at)?,
                },
            });
        }
        Ok(KvOutput::Txn {
            succeeded: true,
            failed_guard: None,
            results,
        })
    }

    /// A local write of `key`: the value, and its version when the region replicates.
    fn put_value(
        &self,
        txn: &mut RwTxn<'_>,
        key: &str,
        value: &[u8],
        at: u64,
    ) -> Result<(), StorageError> {
        self.record_local_write(txn, key, Some(value), at)?;
        self.put_raw(txn, key, value)
    }

    /// A local delete of `key`: the value goes, and a tombstone version is kept when the region
    /// replicates.
    fn delete_value(&self, txn: &mut RwTxn<'_>, key: &str, at: u64) -> Result<bool, StorageError> {
        self.record_local_write(txn, key, None, at)?;
        self.delete_raw(txn, key)
    }

    /// Stores `value` under `key`, nothing else.
    pub(crate) fn put_raw(
        &self,
        txn: &mut RwTxn<'_>,
        key: &str,
        value: &[u8],
    ) -> Result<(), StorageError> {
        self.data
            .put(txn, key.as_bytes(), &codec::seal(value))
            .map_err(|e| self.ctx.err(e))
    }

    /// Removes `key`'s value, nothing else.
    pub(crate) fn delete_raw(&self, txn: &mut RwTxn<'_>, key: &str) -> Result<bool, StorageError> {
        self.data
            .delete(txn, key.as_bytes())
            .map_err(|e| self.ctx.err(e))
    }
}
