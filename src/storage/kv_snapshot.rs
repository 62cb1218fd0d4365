//! Snapshot and restore of the key-value state machine, as a stream of checksummed records.
//!
//! # Format (version [`KV_SNAPSHOT_VERSION`])
//!
//! A sequence of records, each `u32 LE body length`, `u32 LE CRC-32 (IEEE) of the length bytes
//! and the body`, then the body. A body is one kind byte followed by:
//!
//! | kind | body after the kind byte                                                       |
//! |------|--------------------------------------------------------------------------------|
//! | 1    | header: magic `RXKVSNAP`, `u32 LE` version, `u64 LE` applied, `u64 LE` clock |
//! | 2    | a `data` record: `u32 LE` key length, key, value exactly as stored (sealed)    |
//! | 3    | a `dedup` record: same layout                                                  |
//! | 4    | a `dedup_by_index` record: same layout                                         |
//! | 5    | a `dedup_by_time` record: same layout                                          |
//! | 6    | a `tokens` record (replicated API token, version 2 on): same layout            |
//! | 7    | a `regions` record (multi-region state, version 3 on): same layout             |
//! | 8    | a `versions` record (a key's region versions, version 3 on): same layout       |
//! | 9    | an `outbox` record (a mutation to ship, version 3 on): same layout             |
//! | 255  | end: `u64 LE` number of records before it (header included)                    |
//!
//! Version 2 added the `tokens` records. A store without tokens is written as version 1 (the same
//! bytes as before tokens existed, so older binaries still read it), and version 1 is read as a
//! store without tokens; a version 1 stream holding a `tokens` record is refused. The index of
//! tokens by secret is not carried: a restore rebuilds it from the `tokens` records.
//! Version 3 added the multi-region records; a store without them is written as version 2 (with
//! tokens) or 1, so it stays readable by older binaries until regions are configured.
//!
//! The header comes first; table records follow grouped by kind in increasing kind order, and
//! within a kind in strictly increasing key order (LMDB's order), so a restore appends to each
//! database. The end record is last: a stream that stops before it, or continues after it, is
//! refused. No record may exceed [`MAX_KV_SNAPSHOT_RECORD`] bytes.
//!
//! The writer reads everything from one LMDB read transaction opened by `snapshot()`, so the
//! snapshot is the state as of that instant while `apply` goes on (LMDB MVCC). It streams: memory
//! use does not depend on the size of the store. While the source is alive LMDB cannot reuse the
//! pages that later writes free, so the store's file grows: write the source out and drop it
//! promptly.

use std::io::{BufWriter, Read, Write};

use heed::types::Bytes as RawBytes;
use heed::{Database, PutFlags, RoTxn, RwTxn, WithoutTls};

use crate::core::Index;
use crate::state_machine::{SnapshotSource, StateMachineError};

use super::codec;
use super::error::StorageError;
use super::kv::to_state_machine_error;
use super::kv_command::MAX_KEY_LEN;
use super::kv_dedup::DedupRecord;
use super::kv_reader::{KvDbs, LAST_APPLIED_KEY};
use super::kv_request::MAX_REQUEST_ID_LEN;
use super::kv_tokens::{token_error, StoredToken};

/// Version of the key-value snapshot format written by this binary when the store holds
/// replicated tokens (without any, it writes version [`KV_SNAPSHOT_MIN_VERSION`]).
pub const KV_SNAPSHOT_VERSION: u32 = 3;
/// Oldest version this binary reads (version 1 has no replicated tokens).
pub const KV_SNAPSHOT_MIN_VERSION: u32 = 1;
/// Largest record body accepted (and written): the largest value an entry can carry (64 MiB, the
/// decoding limit of log entries) plus room for its key and framing.
pub const MAX_KV_SNAPSHOT_RECORD: usize = codec::DEFAULT_DECODE_LIMIT + 64 * 1024;

/// Magic at the start of the header record.
const MAGIC: &[u8; 8] = b"RXKVSNAP";
const KIND_HEADER: u8 = 1;
const KIND_DATA: u8 = 2;
const KIND_DEDUP: u8 = 3;
const KIND_BY_INDEX: u8 = 4;
const KIND_BY_TIME: u8 = 5;
const KIND_TOKEN: u8 = 6;
const KIND_REGIONS: u8 = 7;
const KIND_VERSIONS: u8 = 8;
const KIND_OUTBOX: u8 = 9;
const KIND_END: u8 = 255;
/// Tables carried by a snapshot.
const TABLES: usize = 8;
/// Buffer between the record writer and the caller's output.
const WRITE_BUFFER: usize = 64 * 1024;

type RawDb = Database<'static, RawBytes, RawBytes>;

/// The tables a snapshot carries, as raw byte databases, with their record kinds.
fn tables(dbs: &KvDbs) -> [(u8, RawDb); TABLES] {
    [
        (KIND_DATA, dbs.data),
        (KIND_DEDUP, dbs.dedup.records.remap_types()),
        (KIND_BY_INDEX, dbs.dedup.by_index.remap_types()),
        (KIND_BY_TIME, dbs.dedup.by_time.remap_types()),
        (KIND_TOKEN, dbs.tokens.records.remap_types()),
        (KIND_REGIONS, dbs.regions.state.remap_types()),
        (KIND_VERSIONS, dbs.regions.versions),
        (KIND_OUTBOX, dbs.regions.outbox.remap_types()),
    ]
}

/// The oldest snapshot format version that can carry records of `kind`.
fn first_version_of(kind: u8) -> u32 {
    match kind {
        KIND_TOKEN => 2,
        KIND_REGIONS | KIND_VERSIONS | KIND_OUTBOX => 3,
        _ => 1,
    }
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        KIND_HEADER => "header",
        KIND_DATA => "data",
        KIND_DEDUP => "dedup",
        KIND_BY_INDEX => "dedup_by_index",
        KIND_BY_TIME => "dedup_by_time",
        KIND_TOKEN => "tokens",
        KIND_REGIONS => "regions",
        KIND_VERSIONS => "versions",
        KIND_OUTBOX => "outbox",
        KIND_END => "end",
        _ => "unknown",
    }
}

/// The state of the store captured by [`capture`]: an open read transaction.
pub(crate) struct KvSnapshotSource {
    dbs: KvDbs,
    txn: RoTxn<'static, WithoutTls>,
}

/// Opens a read transaction on the store: quick, and it pauses nothing.
pub(crate) fn capture(dbs: &KvDbs) -> Result<KvSnapshotSource, StorageError> {
    let txn = dbs
        .env
        .clone()
        .static_read_txn()
        .map_err(|e| dbs.ctx.err(e))?;
    Ok(KvSnapshotSource {
        dbs: dbs.clone(),
        txn,
    })
}

impl SnapshotSource for KvSnapshotSource {
    fn write_to(self: Box<Self>, out: &mut dyn Write) -> Result<(), StateMachineError> {
        let mut records = RecordWriter {
            out: BufWriter::with_capacity(WRITE_BUFFER, out),
            count: 0,
        };
        self.write_records(&mut records)
            .and_then(|()| records.out.flush().map_err(write_error))
            .map_err(|e| to_state_machine_error(self.dbs.ctx.locate(e)))
    }
}

impl KvSnapshotSource {
    fn write_records<W: Write>(&self, out: &mut RecordWriter<W>) -> Result<(), StorageError> {
        let applied = self.dbs.read_applied(&self.txn)?;
        let clock = self.dbs.read_dedup_clock(&self.txn)?;
        // Without tokens the stream is exactly version 1: older binaries still read it (a rolling
        // upgrade keeps working until the first token is created).
        let no_tokens = self
            .dbs
            .tokens
            .records
            .is_empty(&self.txn)
            .map_err(|e| self.dbs.ctx.err(e))?;
        let no_regions = self
            .dbs
            .regions
            .state
            .is_empty(&self.txn)
            .map_err(|e| self.dbs.ctx.err(e))?;
        let version = match (no_tokens, no_regions) {
            (true, true) => KV_SNAPSHOT_MIN_VERSION,
            (false, true) => 2,
            (_, false) => KV_SNAPSHOT_VERSION,
        };
        out.record(
            KIND_HEADER,
            &[
                MAGIC,
                &version.to_le_bytes(),
                &applied.to_le_bytes(),
                &clock.to_le_bytes(),
            ],
        )?;
        for (kind, db) in tables(&self.dbs) {
            for item in db.iter(&self.txn).map_err(|e| self.dbs.ctx.err(e))? {
                let (key, value) = item.map_err(|e| self.dbs.ctx.err(e))?;
                if kind == KIND_DATA {
                    // Do not ship a value that is already damaged here.
                    super::kv_reader::unseal_value(key, value)?;
                }
                let key_len = u32::try_from(key.len()).map_err(|_| {
                    StorageError::corrupt(format!("{} key of {} bytes", kind_name(kind), key.len()))
                })?;
                out.record(kind, &[&key_len.to_le_bytes(), key, value])?;
            }
        }
        let count = out.count;
        out.record(KIND_END, &[&count.to_le_bytes()])
    }
}

fn write_error(source: std::io::Error) -> StorageError {
    StorageError::SnapshotIo {
        what: "writing the state machine snapshot".to_string(),
        source,
    }
}

/// Writes framed records to `out`.
struct RecordWriter<W: Write> {
    out: W,
    /// Records written so far.
    count: u64,
}

impl<W: Write> RecordWriter<W> {
    /// Writes one record whose body is `kind` followed by `parts`.
    fn record(&mut self, kind: u8, parts: &[&[u8]]) -> Result<(), StorageError> {
        let len = 1 + parts.iter().map(|p| p.len()).sum::<usize>();
        let len32 = u32::try_from(len)
            .ok()
            .filter(|_| len <= MAX_KV_SNAPSHOT_RECORD)
            .ok_or_else(|| StorageError::Encode {
                what: format!(
                    "state machine snapshot: a {} record of {len} bytes exceeds the limit of \
                     {MAX_KV_SNAPSHOT_RECORD} bytes",
                    kind_name(kind)
                ),
            })?;
        let len_bytes = len32.to_le_bytes();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&len_bytes);
        crc.update(&[kind]);
        for part in parts {
            crc.update(part);
        }
        let out = &mut self.out;
        out.write_all(&len_bytes)
            .and_then(|()| out.write_all(&crc.finalize().to_le_bytes()))
            .and_then(|()| out.write_all(&[kind]))
            .map_err(write_error)?;
        for part in parts {
            out.write_all(part).map_err(write_error)?;
        }
        self.count += 1;
        Ok(())
    }
}

/// Reads framed records, one at a time, into a reused buffer.
struct RecordReader<'a> {
    input: &'a mut dyn Read,
    buf: Vec<u8>,
    /// Records read so far.
    count: u64,
}

fn corrupt(what: impl std::fmt::Display) -> StorageError {
    StorageError::corrupt(format!("state machine snapshot: {what}"))
}

fn read_error(source: std::io::Error) -> StorageError {
    StorageError::SnapshotIo {
        what: "reading a state machine snapshot".to_string(),
        source,
    }
}

/// Reads into `buf` until it is full or the input ends; returns the bytes read.
fn read_full(input: &mut dyn Read, buf: &mut [u8]) -> Result<usize, StorageError> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(e)),
        }
    }
    Ok(filled)
}

impl<'a> RecordReader<'a> {
    fn new(input: &'a mut dyn Read) -> Self {
        Self {
            input,
            buf: Vec::new(),
            count: 0,
        }
    }

    /// The next record's kind and body (after the kind byte), verified.
    fn next(&mut self) -> Result<(u8, &[u8]), StorageError> {
        let number = self.count + 1;
        let mut frame = [0u8; 8];
        match read_full(self.input, &mut frame)? {
            8 => {}
            0 => {
                return Err(corrupt(format!(
                    "the stream ends after {} records, without its end record (truncated)",
                    self.count
                )))
            }
            n => {
                return Err(corrupt(format!(
                    "record {number}: the stream ends {n} bytes into its 8-byte frame (truncated)"
                )))
            }
        }
        let (len_bytes, crc_bytes) = frame.split_at(4);
        let len32 = u32::from_le_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        let stored = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
        let len = usize::try_from(len32).unwrap_or(usize::MAX);
        if len == 0 || len > MAX_KV_SNAPSHOT_RECORD {
            return Err(corrupt(format!(
                "record {number} claims {len} bytes (allowed: 1 to {MAX_KV_SNAPSHOT_RECORD})"
            )));
        }
        self.buf.clear();
        // Grows with the bytes actually read: a forged length cannot allocate beyond the input.
        (&mut *self.input)
            .take(u64::from(len32))
            .read_to_end(&mut self.buf)
            .map_err(read_error)?;
        if self.buf.len() != len {
            return Err(corrupt(format!(
                "record {number}: the stream ends {} bytes into its {len}-byte body (truncated)",
                self.buf.len()
            )));
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(len_bytes);
        crc.update(&self.buf);
        let computed = crc.finalize();
        if computed != stored {
            return Err(corrupt(format!(
                "record {number}: checksum mismatch (stored {stored:#010x}, computed \
                 {computed:#010x})"
            )));
        }
        self.count = number;
        match self.buf.split_first() {
            Some((kind, body)) => Ok((*kind, body)),
            None => Err(corrupt(format!("record {number} is empty"))),
        }
    }

    /// Fails unless the input has nothing left.
    fn expect_eof(&mut self) -> Result<(), StorageError> {
        let mut byte = [0u8; 1];
        match read_full(self.input, &mut byte)? {
            0 => Ok(()),
            _ => Err(corrupt(format!(
                "bytes follow the end record (after record {})",
                self.count
            ))),
        }
    }
}

/// The header's contents.
struct Header {
    version: u32,
    applied: Index,
    clock: u64,
}

fn parse_header(kind: u8, body: &[u8]) -> Result<Header, StorageError> {
    if kind != KIND_HEADER {
        return Err(corrupt(format!(
            "the first record is a {} record (kind {kind}), not the header",
            kind_name(kind)
        )));
    }
    let Some((magic, rest)) = body.split_first_chunk::<8>() else {
        return Err(corrupt("the header is too short"));
    };
    if magic != MAGIC {
        return Err(corrupt(
            "the header does not start with RXKVSNAP: not a key-value store snapshot",
        ));
    }
    let Some((version, rest)) = rest.split_first_chunk::<4>() else {
        return Err(corrupt("the header is too short"));
    };
    let version = u32::from_le_bytes(*version);
    if !(KV_SNAPSHOT_MIN_VERSION..=KV_SNAPSHOT_VERSION).contains(&version) {
        return Err(corrupt(format!(
            "format version {version} is unknown (this raftix reads versions \
             {KV_SNAPSHOT_MIN_VERSION} to {KV_SNAPSHOT_VERSION}): a newer raftix wrote it"
        )));
    }
    let fields: &[u8; 16] = rest.try_into().map_err(|_| {
        corrupt(format!(
            "the header has {} bytes of fields, not 16",
            rest.len()
        ))
    })?;
    let (applied, clock) = fields.split_at(8);
    let u64_at = |b: &[u8]| b.try_into().map(u64::from_le_bytes).unwrap_or(0);
    Ok(Header {
        version,
        applied: u64_at(applied),
        clock: u64_at(clock),
    })
}

/// Splits a table record body into its key and value.
fn split_record(number: u64, kind: u8, body: &[u8]) -> Result<(&[u8], &[u8]), StorageError> {
    let bad = || {
        corrupt(format!(
            "record {number} ({}) is shorter than its key",
            kind_name(kind)
        ))
    };
    let (key_len, rest) = body.split_first_chunk::<4>().ok_or_else(bad)?;
    let key_len = usize::try_from(u32::from_le_bytes(*key_len)).unwrap_or(usize::MAX);
    if key_len > rest.len() {
        return Err(bad());
    }
    Ok(rest.split_at(key_len))
}

/// Checks a table record's key and value as the store itself would read them.
fn check_record(number: u64, kind: u8, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
    let what = |e: String| {
        corrupt(format!(
            "record {number} ({} key {:?}): {e}",
            kind_name(kind),
            String::from_utf8_lossy(key)
        ))
    };
    let utf8_key = |max: usize| match std::str::from_utf8(key) {
        Ok(k) if !k.is_empty() && k.len() <= max => Ok(()),
        Ok(_) => Err(what(format!("key must be 1 to {max} bytes"))),
        Err(_) => Err(what("key is not UTF-8".to_string())),
    };
    let fixed_key = |len: usize| match key.len() == len {
        true => Ok(()),
        false => Err(what(format!("key must be {len} bytes"))),
    };
    let value_err = |e: codec::CodecError| what(format!("value: {e}"));
    match kind {
        KIND_DATA => {
            utf8_key(MAX_KEY_LEN)?;
            codec::unseal(value).map_err(value_err)?;
        }
        KIND_DEDUP => {
            utf8_key(MAX_REQUEST_ID_LEN)?;
            codec::decode_sealed::<DedupRecord>(value).map_err(value_err)?;
        }
        KIND_BY_INDEX => {
            fixed_key(8)?;
            codec::decode_sealed::<(u64, String)>(value).map_err(value_err)?;
        }
        KIND_BY_TIME => {
            fixed_key(16)?;
            codec::decode_sealed::<String>(value).map_err(value_err)?;
        }
        KIND_TOKEN => {
            let name = std::str::from_utf8(key).map_err(|_| what("name is not UTF-8".into()))?;
            let token: StoredToken = codec::decode_sealed(value).map_err(value_err)?;
            if let Some(e) = token_error(name, Some(&token)) {
                return Err(what(e));
            }
        }
        KIND_REGIONS => {
            let _: super::kv_regions::RegionsState =
                codec::decode_sealed(value).map_err(value_err)?;
        }
        KIND_VERSIONS => {
            let _: crate::regions::Versions = codec::decode_sealed(value).map_err(value_err)?;
        }
        KIND_OUTBOX => {
            let _: super::kv_regions::OutboxEntry =
                codec::decode_sealed(value).map_err(value_err)?;
        }
        _ => return Err(corrupt(format!("record {number} has unknown kind {kind}"))),
    }
    Ok(())
}

/// Every table a snapshot carries (so every table of the store), named, for
/// [`super::kv_verify`].
pub(crate) fn named_tables(dbs: &KvDbs) -> impl Iterator<Item = (&'static str, RawDb)> {
    tables(dbs)
        .into_iter()
        .map(|(kind, db)| (kind_name(kind), db))
}

/// Replaces the whole store with the snapshot read from `input`, in one write transaction, and
/// sets the applied index to `last_index` (whatever the snapshot's header says). Returns the
/// restored dedup clock. On any error the transaction is aborted and the store is unchanged.
pub(crate) fn restore(
    dbs: &KvDbs,
    last_index: Index,
    input: &mut dyn Read,
) -> Result<u64, StorageError> {
    let mut reader = RecordReader::new(input);
    let (kind, body) = reader.next()?;
    let header = parse_header(kind, body)?;
    if header.applied != last_index {
        tracing::warn!(
            snapshot_applied = header.applied,
            last_index,
            "restoring a state machine snapshot taken at another applied index than the one given"
        );
    }
    let err = |e| dbs.ctx.err(e);
    let mut wtxn = dbs.env.write_txn().map_err(err)?;
    let by_kind = tables(dbs);
    for (_, db) in &by_kind {
        db.clear(&mut wtxn).map_err(err)?;
    }
    let mut counts = [0u64; TABLES];
    let mut current: Option<(u8, Vec<u8>)> = None;
    loop {
        let number = reader.count + 1;
        let (kind, body) = reader.next()?;
        if kind == KIND_END {
            let count: [u8; 8] = body
                .try_into()
                .map_err(|_| corrupt(format!("end record {number} is malformed")))?;
            let count = u64::from_le_bytes(count);
            if count != number - 1 {
                return Err(corrupt(format!(
                    "the end record counts {count} records but {} came before it",
                    number - 1
                )));
            }
            break;
        }
        let known = header.version >= first_version_of(kind);
        let Some(slot) = by_kind
            .iter()
            .position(|(k, _)| *k == kind)
            .filter(|_| known)
        else {
            return Err(corrupt(format!(
                "record {number} is a {} record (kind {kind}) where a table record belongs",
                kind_name(kind)
            )));
        };
        let (key, value) = split_record(number, kind, body)?;
        check_record(number, kind, key, value)?;
        check_order(&mut current, number, kind, key)?;
        put_append(&mut wtxn, dbs, by_kind[slot].1, key, value)?;
        counts[slot] += 1;
    }
    reader.expect_eof()?;
    let [_, records, by_index, by_time, ..] = counts;
    if records != by_index || records != by_time {
        return Err(corrupt(format!(
            "the exactly-once table has {records} records but its indexes have {by_index} and \
             {by_time}"
        )));
    }
    dbs.meta
        .put(
            &mut wtxn,
            LAST_APPLIED_KEY,
            &codec::encode_sealed(&last_index)?,
        )
        .map_err(err)?;
    dbs.write_dedup_clock(&mut wtxn, header.clock)?;
    dbs.token_rebuild_index(&mut wtxn)?;
    crate::crash_points::crash_point(crate::crash_points::SNAPSHOT_BEFORE_RESTORE_COMMIT);
    wtxn.commit().map_err(err)?;
    Ok(header.clock)
}

/// Enforces increasing kinds, and strictly increasing keys within a kind.
fn check_order(
    current: &mut Option<(u8, Vec<u8>)>,
    number: u64,
    kind: u8,
    key: &[u8],
) -> Result<(), StorageError> {
    match current {
        Some((k, prev)) if *k == kind => {
            if key <= prev.as_slice() {
                return Err(corrupt(format!(
                    "record {number} ({} key {:?}) is out of key order",
                    kind_name(kind),
                    String::from_utf8_lossy(key)
                )));
            }
            prev.clear();
            prev.extend_from_slice(key);
        }
        Some((k, _)) if *k > kind => {
            return Err(corrupt(format!(
                "record {number}: a {} record after the {} records",
                kind_name(kind),
                kind_name(*k)
            )));
        }
        _ => *current = Some((kind, key.to_vec())),
    }
    Ok(())
}

/// Appends a record (keys arrive in order) to a cleared database.
fn put_append(
    wtxn: &mut RwTxn<'_>,
    dbs: &KvDbs,
    db: RawDb,
    key: &[u8],
    value: &[u8],
) -> Result<(), StorageError> {
    db.put_with_flags(wtxn, PutFlags::APPEND, key, value)
        .map_err(|e| dbs.ctx.err(e))
}
