//! One process per data directory: an exclusive `flock` on `<data-dir>/raftix.lock`.
//!
//! Two processes (or two opens in one process) on the same data directory would open the same
//! LMDB environments and campaign with the same stored vote: two leaders of one term. Every
//! command that opens a data directory takes this lock first ([`super::DataDir::prepare`] does)
//! and holds it until its storage is closed. The lock file records the holder's PID so that a
//! refused opener can name it. The kernel drops an `flock` when its holder dies, even by
//! `kill -9`, so a crash never leaves a stale lock behind; the file itself stays and is reused.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::StorageError;

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "raftix.lock";

/// An exclusive lock on a data directory, released when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct DataDirLock {
    held: Arc<HeldLock>,
}

#[derive(Debug)]
struct HeldLock {
    /// The open lock file: the `flock` belongs to this open file description.
    _file: File,
    path: PathBuf,
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        tracing::debug!(lock = %self.path.display(), "data dir lock released");
    }
}

impl DataDirLock {
    /// Takes the lock of the existing directory `dir`, without waiting: a directory locked by
    /// another process, or already by this one, is refused with [`StorageError::DataDirInUse`]
    /// naming the holder's PID.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, StorageError> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StorageError::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StorageError::DataDirInUse {
                    path: dir.to_path_buf(),
                    holder: read_holder(&mut file),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(StorageError::io(&path, e)),
        }
        record_holder(&mut file).map_err(|e| StorageError::io(&path, e))?;
        Ok(DataDirLock {
            held: Arc::new(HeldLock { _file: file, path }),
        })
    }

    /// Whether `dir` is locked now, and by which PID if the lock file names one: `Ok(None)`
    /// when it is free (or does not exist yet). Takes and releases the lock to find out, so a
    /// free directory stays free; for `raftix up`, which checks before it starts anything.
    pub fn probe(dir: &Path) -> Result<Option<Option<u32>>, StorageError> {
        if !dir.join(LOCK_FILE).exists() {
            return Ok(None);
        }
        match DataDirLock::acquire(dir) {
            Ok(_released_here) => Ok(None),
            Err(StorageError::DataDirInUse { holder, .. }) => Ok(Some(holder)),
            Err(other) => Err(other),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.held.path
    }
}

/// Writes this process's PID into the lock file (for the message a refused opener gives).
fn record_holder(file: &mut File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())?;
    file.flush()
}

/// The PID the lock file names, if it names one.
fn read_holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}
