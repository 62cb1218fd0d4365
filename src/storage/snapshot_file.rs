//! One snapshot file: its format, writing it durably, and verifying it.
//!
//! # Format
//!
//! 1. magic [`SNAPSHOT_MAGIC`], 8 bytes (`RXSNAP01`: the last two digits are the version);
//! 2. the header length `h`, `u32` little-endian, at most [`MAX_SNAPSHOT_HEADER`];
//! 3. the header, `h` bytes: [`codec::encode_sealed`] of the [`SnapshotMeta`];
//! 4. the state machine's payload, `p` bytes, as its
//!    [`SnapshotSource`](crate::state_machine::SnapshotSource) wrote it;
//! 5. the trailer: `p` as `u64` little-endian, then the CRC-32 (IEEE) of every byte before the
//!    trailer as `u32` little-endian.
//!
//! A finished file is named `snap-{term:020}-{index:020}.snap` after `meta.last`. It is written
//! as `tmp-*.part` in the same directory, fsynced, renamed, and the directory fsynced, so a file
//! under its final name is always complete. [`read_snapshot_info`] verifies a whole file,
//! streaming; anything wrong is [`StorageError::Corrupt`] naming the file.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Take, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::core::{LogId, Membership, SnapshotMeta};

use super::codec;
use super::error::StorageError;
use super::fs_util::sync_dir;

/// First bytes of every snapshot file.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"RXSNAP01";
/// Largest header accepted, in bytes (a membership of thousands of members fits easily).
pub const MAX_SNAPSHOT_HEADER: u32 = 4 << 20;
/// Magic plus header length.
const PREFIX_LEN: u64 = 12;
/// Payload length plus CRC.
const TRAILER_LEN: u64 = 12;
/// I/O buffer size for writing and verifying.
const BUFFER: usize = 256 * 1024;

/// Distinguishes temporary files of concurrent writers in one process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A complete, verified snapshot file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// What the snapshot stands for (from its header).
    pub meta: SnapshotMeta,
    /// Where the file is.
    pub path: PathBuf,
    /// Size of the whole file, in bytes.
    pub size: u64,
    /// The CRC-32 in the file's trailer (of every byte before the trailer).
    pub crc: u32,
}

/// Final name of the snapshot file covering the log up to `last`.
pub fn snapshot_file_name(last: LogId) -> String {
    format!("snap-{:020}-{:020}.snap", last.term, last.index)
}

/// The `LogId` a final snapshot file name stands for, or `None` if `name` is not one.
pub fn parse_snapshot_file_name(name: &str) -> Option<LogId> {
    let middle = name.strip_prefix("snap-")?.strip_suffix(".snap")?;
    let (term, index) = middle.split_once('-')?;
    let number = |s: &str| {
        (s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    Some(LogId::new(number(term)?, number(index)?))
}

/// Whether `name` is a temporary file of a [`SnapshotWriter`].
pub(crate) fn is_tmp_file_name(name: &str) -> bool {
    name.starts_with("tmp-") && name.ends_with(".part")
}

fn corrupt(path: &Path, what: impl std::fmt::Display) -> StorageError {
    StorageError::corrupt(format!("snapshot file {}: {what}", path.display()))
}

/// Writes a new snapshot file: create it, write the payload through [`Write`], then
/// [`SnapshotWriter::finish`]. Dropped unfinished, it deletes its temporary file.
pub struct SnapshotWriter {
    dir: PathBuf,
    tmp: PathBuf,
    meta: SnapshotMeta,
    out: BufWriter<File>,
    crc: crc32fast::Hasher,
    header_len: u64,
    payload_len: u64,
    done: bool,
}

impl std::fmt::Debug for SnapshotWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotWriter")
            .field("tmp", &self.tmp)
            .field("meta", &self.meta)
            .field("payload_len", &self.payload_len)
            .finish()
    }
}

impl SnapshotWriter {
    /// Starts a snapshot of `meta` as a temporary file `tmp-*.part` in `dir` (which must exist)
    /// and writes its magic and header.
    pub fn create(dir: &Path, meta: &SnapshotMeta) -> Result<SnapshotWriter, StorageError> {
        let header = codec::encode_sealed(meta)?;
        let header_len = u32::try_from(header.len())
            .ok()
            .filter(|len| *len <= MAX_SNAPSHOT_HEADER)
            .ok_or_else(|| StorageError::Encode {
                what: format!(
                    "snapshot header of {} bytes (the limit is {MAX_SNAPSHOT_HEADER})",
                    header.len()
                ),
            })?;
        let tmp = dir.join(format!(
            "tmp-{:020}-{:020}-{}-{}.part",
            meta.last.term,
            meta.last.index,
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| StorageError::io(&tmp, e))?;
        let mut writer = SnapshotWriter {
            dir: dir.to_path_buf(),
            tmp,
            meta: meta.clone(),
            out: BufWriter::with_capacity(BUFFER, file),
            crc: crc32fast::Hasher::new(),
            header_len: u64::from(header_len),
            payload_len: 0,
            done: false,
        };
        for part in [&SNAPSHOT_MAGIC[..], &header_len.to_le_bytes(), &header] {
            writer.crc.update(part);
            writer
                .out
                .write_all(part)
                .map_err(|e| StorageError::io(&writer.tmp, e))?;
        }
        Ok(writer)
    }

    /// What the snapshot being written stands for.
    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    /// Payload bytes written so far.
    pub fn payload_len(&self) -> u64 {
        self.payload_len
    }

    /// Writes payload bytes, with errors naming the temporary file.
    pub fn write_payload(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        self.write_all(bytes)
            .map_err(|e| StorageError::io(&self.tmp, e))
    }

    /// Writes the trailer, fsyncs the file, renames it to its final name
    /// ([`snapshot_file_name`]) and fsyncs the directory. A file of the same name is replaced.
    pub fn finish(mut self) -> Result<SnapshotInfo, StorageError> {
        let crc = self.crc.clone().finalize();
        let mut trailer = [0u8; TRAILER_LEN as usize];
        trailer[..8].copy_from_slice(&self.payload_len.to_le_bytes());
        trailer[8..].copy_from_slice(&crc.to_le_bytes());
        let tmp = self.tmp.clone();
        self.out
            .write_all(&trailer)
            .and_then(|()| self.out.flush())
            .and_then(|()| self.out.get_ref().sync_all())
            .map_err(|e| StorageError::io(&tmp, e))?;
        let path = self.dir.join(snapshot_file_name(self.meta.last));
        crate::crash_points::crash_point(crate::crash_points::SNAPSHOT_BEFORE_RENAME);
        fs::rename(&tmp, &path).map_err(|e| StorageError::io(&path, e))?;
        self.done = true;
        sync_dir(&self.dir)?;
        Ok(SnapshotInfo {
            meta: self.meta.clone(),
            path,
            size: PREFIX_LEN + self.header_len + self.payload_len + TRAILER_LEN,
            crc,
        })
    }
}

impl Write for SnapshotWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.payload_len > 0 {
            crate::crash_points::crash_point(crate::crash_points::SNAPSHOT_MID_WRITE);
        }
        let n = self.out.write(buf)?;
        let written = buf.get(..n).unwrap_or(buf);
        self.crc.update(written);
        self.payload_len += written.len() as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        if !self.done {
            // Best effort: a leftover is deleted by the next `SnapshotStore::open`.
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Verifies the whole snapshot file at `path` (magic, header checksum, trailer length and CRC),
/// reading it once in a streaming fashion, and describes it.
pub fn read_snapshot_info(path: &Path) -> Result<SnapshotInfo, StorageError> {
    scan(path, &mut |_| Ok(()))
}

/// Reads the prefix and header of an open snapshot file; returns the meta, the header length
/// and the payload length implied by the file size.
fn read_head(
    path: &Path,
    input: &mut impl Read,
    size: u64,
    crc: &mut crc32fast::Hasher,
) -> Result<(SnapshotMeta, u64, u64), StorageError> {
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => corrupt(path, "the file ends inside its header"),
        _ => StorageError::io(path, e),
    };
    if size < PREFIX_LEN + TRAILER_LEN {
        return Err(corrupt(
            path,
            format!("{size} bytes is too short for a snapshot file"),
        ));
    }
    let mut prefix = [0u8; PREFIX_LEN as usize];
    input.read_exact(&mut prefix).map_err(io)?;
    let (magic, len) = prefix.split_at(8);
    if magic != SNAPSHOT_MAGIC {
        return Err(corrupt(
            path,
            "does not start with RXSNAP01 (not a raftix snapshot, or another format version)",
        ));
    }
    let header_len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]);
    let header_len64 = u64::from(header_len);
    if header_len > MAX_SNAPSHOT_HEADER || PREFIX_LEN + header_len64 + TRAILER_LEN > size {
        return Err(corrupt(
            path,
            format!("header length {header_len} does not fit a file of {size} bytes"),
        ));
    }
    let mut header = vec![0u8; header_len as usize];
    input.read_exact(&mut header).map_err(io)?;
    let meta: SnapshotMeta =
        codec::decode_sealed(&header).map_err(|e| corrupt(path, format!("header: {e}")))?;
    crc.update(&prefix);
    crc.update(&header);
    let payload_len = size - PREFIX_LEN - header_len64 - TRAILER_LEN;
    Ok((meta, header_len64, payload_len))
}

/// Verifies the file at `path` and hands every payload chunk to `sink` on the way.
fn scan(
    path: &Path,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), StorageError>,
) -> Result<SnapshotInfo, StorageError> {
    let file = File::open(path).map_err(|e| StorageError::io(path, e))?;
    let size = file
        .metadata()
        .map_err(|e| StorageError::io(path, e))?
        .len();
    let mut input = BufReader::with_capacity(BUFFER, file);
    let mut crc = crc32fast::Hasher::new();
    let (meta, _, payload_len) = read_head(path, &mut input, size, &mut crc)?;
    let mut payload = (&mut input).take(payload_len);
    let mut buf = vec![0u8; BUFFER];
    let mut seen = 0u64;
    loop {
        let n = match payload.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StorageError::io(path, e)),
        };
        let chunk = buf.get(..n).unwrap_or(&buf);
        crc.update(chunk);
        sink(chunk)?;
        seen += n as u64;
    }
    if seen != payload_len {
        return Err(corrupt(path, "the file shrank while it was being read"));
    }
    let mut trailer = [0u8; TRAILER_LEN as usize];
    input.read_exact(&mut trailer).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => corrupt(path, "the file shrank while being read"),
        _ => StorageError::io(path, e),
    })?;
    let (len, stored) = trailer.split_at(8);
    let stored_len = u64::from_le_bytes(len.try_into().unwrap_or([0xFF; 8]));
    let stored_crc = u32::from_le_bytes(stored.try_into().unwrap_or([0; 4]));
    if stored_len != payload_len {
        return Err(corrupt(
            path,
            format!(
                "the trailer records a payload of {stored_len} bytes but the file holds \
                 {payload_len} (truncated, extended or damaged)"
            ),
        ));
    }
    let computed = crc.finalize();
    if computed != stored_crc {
        return Err(corrupt(
            path,
            format!("checksum mismatch (trailer {stored_crc:08x}, computed {computed:08x})"),
        ));
    }
    Ok(SnapshotInfo {
        meta,
        path: path.to_path_buf(),
        size,
        crc: stored_crc,
    })
}

/// A reader over the payload of a snapshot file (for `StateMachine::restore`).
#[derive(Debug)]
pub struct SnapshotPayload {
    inner: Take<BufReader<File>>,
    len: u64,
}

impl SnapshotPayload {
    /// Length of the payload, in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Read for SnapshotPayload {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

/// Opens the payload of the snapshot `info` describes.
///
/// The file is not verified again (that is [`read_snapshot_info`]'s job): only its size must
/// still be `info.size` and its header must still parse. State machine payloads carry their
/// own checksums.
pub fn open_payload(info: &SnapshotInfo) -> Result<SnapshotPayload, StorageError> {
    let path = &info.path;
    let mut file = File::open(path).map_err(|e| StorageError::io(path, e))?;
    let size = file
        .metadata()
        .map_err(|e| StorageError::io(path, e))?
        .len();
    if size != info.size {
        return Err(corrupt(
            path,
            format!(
                "is {size} bytes, but was {} bytes when it was verified",
                info.size
            ),
        ));
    }
    let (_, header_len, len) = read_head(path, &mut file, size, &mut crc32fast::Hasher::new())?;
    file.seek(SeekFrom::Start(PREFIX_LEN + header_len))
        .map_err(|e| StorageError::io(path, e))?;
    Ok(SnapshotPayload {
        inner: BufReader::with_capacity(BUFFER, file).take(len),
        len,
    })
}

/// Copies the snapshot `info` to a new file in `dir` whose header carries `membership` instead
/// (same `last`, same payload, new trailer), verifying the source on the way.
///
/// Used to seed a new cluster from a backup of another. If `dir` is the source's directory the
/// result has the same name and replaces the source.
pub fn rewrite_membership(
    info: &SnapshotInfo,
    membership: &Membership,
    dir: &Path,
) -> Result<SnapshotInfo, StorageError> {
    let meta = SnapshotMeta {
        last: info.meta.last,
        membership: membership.clone(),
    };
    let mut writer = SnapshotWriter::create(dir, &meta)?;
    let source = scan(&info.path, &mut |chunk| writer.write_payload(chunk))?;
    if source.meta != info.meta || source.crc != info.crc {
        return Err(corrupt(
            &info.path,
            "is not the snapshot it was when it was verified (replaced since)",
        ));
    }
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_and_others_are_not_snapshots() {
        let id = LogId::new(7, u64::MAX);
        assert_eq!(parse_snapshot_file_name(&snapshot_file_name(id)), Some(id));
        for name in [
            "snap-1-2.snap",
            "snap-00000000000000000001-00000000000000000002.snap.part",
            "snap-0000000000000000000x-00000000000000000002.snap",
            "snap-00000000000000000001_00000000000000000002.snap",
            "snap-99999999999999999999-00000000000000000002.snap",
            "tmp-00000000000000000001-00000000000000000002-1-0.part",
        ] {
            assert_eq!(parse_snapshot_file_name(name), None, "{name}");
        }
        assert!(is_tmp_file_name("tmp-x.part") && !is_tmp_file_name("incoming-x.part"));
    }
}
