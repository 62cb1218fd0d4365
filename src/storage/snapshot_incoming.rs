//! `IncomingSnapshot`: a snapshot file received from the leader in chunks, resumable across
//! interruptions and restarts.
//!
//! The bytes go to `incoming-{term:020}-{index:020}-{crc:08x}.part` in the snapshot directory,
//! named after what the leader announced, so reopening the same transfer finds what was already
//! received ([`IncomingSnapshot::offset`]) and the leader resumes from there. Chunks are not
//! fsynced one by one: after a crash the part file may hold less than was acknowledged, or
//! garbage at its end; the first case resumes from its length, the second fails the checksum
//! at [`IncomingSnapshot::finish`], which deletes the file so the transfer starts over.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::core::LogId;

use super::error::StorageError;
use super::fs_util::sync_dir;
use super::snapshot_file::{read_snapshot_info, snapshot_file_name, SnapshotInfo};

/// Name of the partial file of a transfer of the snapshot up to `last` with trailer CRC `crc`.
pub fn incoming_file_name(last: LogId, crc: u32) -> String {
    format!(
        "incoming-{:020}-{:020}-{crc:08x}.part",
        last.term, last.index
    )
}

/// Whether `name` is the partial file of a transfer.
fn is_incoming_file_name(name: &str) -> bool {
    name.starts_with("incoming-") && name.ends_with(".part")
}

/// A snapshot being received from the leader.
#[derive(Debug)]
pub struct IncomingSnapshot {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    last: LogId,
    total_size: u64,
    crc: u32,
    offset: u64,
}

impl IncomingSnapshot {
    /// Opens (or creates) the partial file for the snapshot up to `last` of `total_size` bytes
    /// whose trailer CRC is `crc`, keeping what an earlier attempt at the same transfer wrote.
    /// Partial files of any other transfer are deleted. A partial file longer than `total_size`
    /// cannot be this transfer's: it is emptied.
    pub fn open(
        dir: &Path,
        last: LogId,
        total_size: u64,
        crc: u32,
    ) -> Result<IncomingSnapshot, StorageError> {
        fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
        let name = incoming_file_name(last, crc);
        for entry in fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))? {
            let entry = entry.map_err(|e| StorageError::io(dir, e))?;
            let other = entry.file_name();
            let other = other.to_str().unwrap_or_default();
            if is_incoming_file_name(other) && other != name {
                let stale = entry.path();
                fs::remove_file(&stale).map_err(|e| StorageError::io(&stale, e))?;
            }
        }
        let path = dir.join(&name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StorageError::io(&path, e))?;
        let mut offset = file
            .metadata()
            .map_err(|e| StorageError::io(&path, e))?
            .len();
        if offset > total_size {
            tracing::warn!(
                path = %path.display(),
                offset,
                total_size,
                "partial snapshot file is longer than the snapshot; starting the transfer over"
            );
            file.set_len(0).map_err(|e| StorageError::io(&path, e))?;
            offset = 0;
        }
        Ok(IncomingSnapshot {
            dir: dir.to_path_buf(),
            path,
            file,
            last,
            total_size,
            crc,
            offset,
        })
    }

    /// Bytes received so far: where the next chunk must start.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Size of the whole snapshot file, as announced.
    pub fn total_size(&self) -> u64 {
        self.total_size
    }

    /// The last entry the snapshot covers, as announced.
    pub fn last(&self) -> LogId {
        self.last
    }

    /// The partial file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `data`, which must start at [`IncomingSnapshot::offset`] (otherwise
    /// [`StorageError::SnapshotOffset`], carrying the offset to resume from) and must not go
    /// beyond the announced size. Returns the new offset.
    pub fn write_chunk(&mut self, offset: u64, data: &[u8]) -> Result<u64, StorageError> {
        if offset != self.offset {
            return Err(StorageError::SnapshotOffset {
                path: self.path.clone(),
                offset: self.offset,
                got: offset,
            });
        }
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|end| *end <= self.total_size)
            .ok_or_else(|| StorageError::InvalidSnapshot {
                path: self.path.clone(),
                what: format!(
                    "a chunk of {} bytes at offset {offset} goes beyond the announced size of \
                     {} bytes",
                    data.len(),
                    self.total_size
                ),
            })?;
        if let Err(e) = self.file.write_all_at(data, offset) {
            // Drop whatever part of the chunk made it, so the file ends at `offset` again.
            let _ = self.file.set_len(offset);
            return Err(StorageError::io(&self.path, e));
        }
        self.offset = end;
        if end < self.total_size {
            crate::crash_points::crash_point(crate::crash_points::SNAPSHOT_MID_INSTALL);
        }
        Ok(end)
    }

    /// Completes the transfer: every byte must have been received. Fsyncs the file, verifies it
    /// whole ([`read_snapshot_info`]; its trailer CRC and header must match what was announced),
    /// renames it to its final `snap-*.snap` name and fsyncs the directory. A file that fails
    /// verification is deleted (the transfer must start over) and the error is
    /// [`StorageError::Corrupt`].
    pub fn finish(self) -> Result<SnapshotInfo, StorageError> {
        if self.offset != self.total_size {
            return Err(StorageError::InvalidSnapshot {
                path: self.path,
                what: format!(
                    "cannot finish the transfer: {} of {} bytes received",
                    self.offset, self.total_size
                ),
            });
        }
        self.file
            .sync_all()
            .map_err(|e| StorageError::io(&self.path, e))?;
        let discard = |what: String| {
            let _ = fs::remove_file(&self.path);
            StorageError::corrupt(format!("{what}; the partial file was deleted"))
        };
        let info = match read_snapshot_info(&self.path) {
            Ok(info) => info,
            Err(StorageError::Corrupt { what }) => return Err(discard(what)),
            Err(other) => return Err(other),
        };
        if info.crc != self.crc || info.meta.last != self.last {
            return Err(discard(format!(
                "snapshot received into {}: it covers entry {} (term {}) with CRC {:08x}, but \
                 the leader announced entry {} (term {}) with CRC {:08x}",
                self.path.display(),
                info.meta.last.index,
                info.meta.last.term,
                info.crc,
                self.last.index,
                self.last.term,
                self.crc
            )));
        }
        let path = self.dir.join(snapshot_file_name(self.last));
        fs::rename(&self.path, &path).map_err(|e| StorageError::io(&path, e))?;
        sync_dir(&self.dir)?;
        Ok(SnapshotInfo { path, ..info })
    }
}
