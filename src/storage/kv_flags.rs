//! What the gateway asks on every request, kept in memory: whether replicated tokens exist
//! (access control is on) and whether the region replicates to other regions (writes may wait
//! for them). The state machine refreshes both after every applied batch and restored snapshot,
//! so no request needs an LMDB read, nor a hop to a blocking thread, to know them.

use std::sync::atomic::{AtomicBool, Ordering};

use super::error::StorageError;
use super::kv_reader::KvDbs;

/// The flags, shared by the state machine and its readers.
#[derive(Debug, Default)]
pub(crate) struct KvFlags {
    tokens_exist: AtomicBool,
    regions_active: AtomicBool,
}

impl KvFlags {
    /// Whether a replicated token exists.
    pub(crate) fn tokens_exist(&self) -> bool {
        self.tokens_exist.load(Ordering::Acquire)
    }

    /// Whether the region replicates to other regions.
    pub(crate) fn regions_active(&self) -> bool {
        self.regions_active.load(Ordering::Acquire)
    }
}

impl KvDbs {
    /// Reads both flags from the committed state. On a read error both are set (access control
    /// stays on, writes look the regions up again) and the error is returned.
    pub(crate) fn refresh_flags(&self) -> Result<(), StorageError> {
        let read = || -> Result<(bool, bool), StorageError> {
            let txn = self.env.read_txn().map_err(|e| self.ctx.err(e))?;
            let no_tokens = self
                .tokens
                .records
                .is_empty(&txn)
                .map_err(|e| self.ctx.err(e))?;
            Ok((!no_tokens, self.regions_state(&txn)?.active()))
        };
        let (tokens, regions, result) = match read() {
            Ok((tokens, regions)) => (tokens, regions, Ok(())),
            Err(err) => (true, true, Err(err)),
        };
        self.flags.tokens_exist.store(tokens, Ordering::Release);
        self.flags.regions_active.store(regions, Ordering::Release);
        result
    }
}
