//! Opening an LMDB environment the way every store here needs it, and turning heed errors into
//! [`StorageError`]s that name the store and its path.
//!
//! Environments are opened with `read_txn_without_tls`, so read transactions do not pin a reader
//! slot to the thread that opened them (DESIGN §7) and may be used from any thread. Durable commits
//! are kept: no `NO_SYNC` or `NO_META_SYNC` flag is ever set.

use std::path::{Path, PathBuf};

use heed::{Env, EnvOpenOptions, WithoutTls};

use super::error::{StorageError, StoreKind};

/// Map sizes are rounded up to a multiple of this (covers 4 KiB and 64 KiB OS pages).
const MAP_SIZE_GRANULE: usize = 64 * 1024;

/// What an open environment is, for error messages.
#[derive(Clone, Debug)]
pub(crate) struct EnvContext {
    /// Which store this is.
    pub(crate) store: StoreKind,
    /// The environment's directory.
    pub(crate) path: PathBuf,
    /// Map size the environment was opened with.
    pub(crate) map_size: usize,
}

impl EnvContext {
    /// Adds this store and its path to a [`StorageError::Corrupt`]; other errors already name
    /// them.
    pub(crate) fn locate(&self, err: StorageError) -> StorageError {
        err.located(self.store, &self.path)
    }

    /// Converts a heed error into a `StorageError`, recognising a full map.
    pub(crate) fn err(&self, err: heed::Error) -> StorageError {
        match err {
            heed::Error::Mdb(heed::MdbError::MapFull) => StorageError::MapFull {
                store: self.store,
                path: self.path.clone(),
                map_size: self.map_size,
            },
            source => StorageError::Lmdb {
                store: self.store,
                path: self.path.clone(),
                source,
            },
        }
    }
}

/// Opens (creating the directory if needed) the environment of `store` at `dir`.
///
/// `map_size` is rounded up to a multiple of 64 KiB. The caller must not open the same directory
/// twice in one process (LMDB allows one writer per environment).
pub(crate) fn open_env(
    store: StoreKind,
    dir: &Path,
    map_size: usize,
    max_dbs: u32,
) -> Result<(Env<WithoutTls>, EnvContext), StorageError> {
    std::fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
    let map_size = map_size
        .max(MAP_SIZE_GRANULE)
        .div_ceil(MAP_SIZE_GRANULE)
        .saturating_mul(MAP_SIZE_GRANULE);
    let ctx = EnvContext {
        store,
        path: dir.to_path_buf(),
        map_size,
    };
    let mut options = EnvOpenOptions::new().read_txn_without_tls();
    options.map_size(map_size).max_dbs(max_dbs);
    if crate::crash_points::triggered(crate::crash_points::STORAGE_NO_SYNC) {
        tracing::warn!(store = ?store, "the storage.no_sync defect is configured: commits are NOT fsynced");
        // SAFETY: NO_SYNC only gives up durability; it is set by a test-only defect whose
        // purpose is to show that the power-loss tests notice.
        unsafe { options.flags(heed::EnvFlags::NO_SYNC) };
    }
    // SAFETY: the memory map is only unsafe if the files are modified behind LMDB's back (another
    // process ignoring its lock file, or a truncation). raftix opens each environment once per
    // process and never touches its files directly.
    let env = unsafe { options.open(dir) }.map_err(|e| ctx.err(e))?;
    Ok((env, ctx))
}
