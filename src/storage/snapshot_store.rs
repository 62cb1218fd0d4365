//! `SnapshotStore`: the directory of snapshot files (`<data-dir>/snapshots`) and which one is
//! the latest.
//!
//! The directory holds finished snapshots (`snap-{term}-{index}.snap`, see
//! [`super::snapshot_file`]), temporary files of writers (`tmp-*.part`, deleted at open: a crash
//! interrupted them) and at most one partial snapshot received from a leader
//! (`incoming-*.part`, see [`super::IncomingSnapshot`]; kept, so the transfer resumes).

use std::fs;
use std::path::{Path, PathBuf};

use super::error::StorageError;
use super::fs_util::sync_dir;
use super::snapshot_file::{
    is_tmp_file_name, parse_snapshot_file_name, read_snapshot_info, snapshot_file_name,
    SnapshotInfo,
};
use crate::core::LogId;

/// The snapshot directory and its latest snapshot.
#[derive(Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
    latest: Option<SnapshotInfo>,
}

/// The finished snapshot files in `dir`, with the `LogId` their names stand for.
fn list_snapshots(dir: &Path) -> Result<Vec<(LogId, PathBuf)>, StorageError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))? {
        let entry = entry.map_err(|e| StorageError::io(dir, e))?;
        if let Some(id) = entry
            .file_name()
            .to_str()
            .and_then(parse_snapshot_file_name)
        {
            out.push((id, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Deletes `path`; a file already gone is fine.
fn remove(path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StorageError::io(path, e)),
        _ => Ok(()),
    }
}

impl SnapshotStore {
    /// Opens the snapshot directory `dir` (created if needed): deletes leftover temporary files
    /// and verifies the newest snapshot (by the term and index in its name, which must agree with
    /// its header), deleting older ones. A damaged newest snapshot is an error: the node must not
    /// start from an older one silently. Partial incoming transfers are left alone.
    pub fn open(dir: &Path) -> Result<SnapshotStore, StorageError> {
        fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
        let mut removed = false;
        for entry in fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))? {
            let entry = entry.map_err(|e| StorageError::io(dir, e))?;
            if entry.file_name().to_str().is_some_and(is_tmp_file_name) {
                remove(&entry.path())?;
                removed = true;
            }
        }
        let mut snapshots = list_snapshots(dir)?;
        let latest = match snapshots.pop() {
            Some((id, path)) => {
                let info = read_snapshot_info(&path)?;
                if info.meta.last != id {
                    return Err(StorageError::corrupt(format!(
                        "snapshot file {} is named after entry {} (term {}) but its header \
                         covers up to entry {} (term {})",
                        path.display(),
                        id.index,
                        id.term,
                        info.meta.last.index,
                        info.meta.last.term
                    )));
                }
                Some(info)
            }
            None => None,
        };
        for (_, older) in snapshots {
            remove(&older)?;
            removed = true;
        }
        if removed {
            sync_dir(dir)?;
        }
        Ok(SnapshotStore {
            dir: dir.to_path_buf(),
            latest,
        })
    }

    /// The snapshot directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The latest snapshot, if any.
    pub fn latest(&self) -> Option<&SnapshotInfo> {
        self.latest.as_ref()
    }

    /// Records a finished snapshot (from [`super::SnapshotWriter::finish`] or
    /// [`super::IncomingSnapshot::finish`], not verified again) as the latest and deletes the
    /// snapshot files older than it (a reader that has one open keeps reading it).
    ///
    /// The file must be in this directory under its final name. A snapshot older than the
    /// latest is refused with [`StorageError::StaleSnapshot`] and changes nothing.
    pub fn install(&mut self, info: SnapshotInfo) -> Result<(), StorageError> {
        let name = snapshot_file_name(info.meta.last);
        let in_dir = match info.path.parent() {
            Some(parent) if info.path.file_name().and_then(|n| n.to_str()) == Some(&name) => {
                same_dir(parent, &self.dir)?
            }
            _ => false,
        };
        if !in_dir {
            return Err(StorageError::InvalidSnapshot {
                path: info.path,
                what: format!(
                    "cannot be installed: it is not {name} in the snapshot directory {}",
                    self.dir.display()
                ),
            });
        }
        if let Some(latest) = &self.latest {
            if info.meta.last < latest.meta.last {
                return Err(StorageError::StaleSnapshot {
                    path: info.path,
                    last: info.meta.last,
                    latest: latest.meta.last,
                });
            }
        }
        for (id, path) in list_snapshots(&self.dir)? {
            if id < info.meta.last {
                remove(&path)?;
            }
        }
        self.latest = Some(info);
        Ok(())
    }
}

/// Whether two directory paths name the same directory.
fn same_dir(a: &Path, b: &Path) -> Result<bool, StorageError> {
    if a == b {
        return Ok(true);
    }
    let canonical = |p: &Path| fs::canonicalize(p).map_err(|e| StorageError::io(p, e));
    Ok(canonical(a)? == canonical(b)?)
}
