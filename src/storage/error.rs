//! `StorageError`: every way the durable storage layer can fail, worded for an operator.
//!
//! Each message says what was being touched (a path, a log index, a store) and, where there is
//! one, what to do about it. Nothing in this layer repairs or truncates data on its own: a damaged
//! or foreign data directory is refused with one of these errors.

use std::path::PathBuf;

use crate::core::{Index, LogId, NodeId};

use super::codec::CodecError;

/// What an operator should do when a node's own stored data fails its checks: appended to the
/// message a node gives when it refuses to start or stops on corrupt data.
pub const RESTORE_ADVICE: &str = "this node's data dir cannot be trusted: restore the node from \
    its peers (raftix member remove ID, move the data dir away, start the node again with \
    --join) or from a backup (raftix restore); see docs/security.md";

/// Which LMDB environment an error concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreKind {
    /// The Raft log and hard state (`<data-dir>/log`).
    Log,
    /// The built-in key-value state machine (`<data-dir>/sm`).
    StateMachine,
}

impl StoreKind {
    /// Human name of the store, as used in messages.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Log => "log",
            StoreKind::StateMachine => "state machine",
        }
    }

    /// The command-line option that sets this store's LMDB map size.
    pub fn size_option(self) -> &'static str {
        match self {
            StoreKind::Log => "--log-map-size",
            StoreKind::StateMachine => "--sm-map-size",
        }
    }
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A file-system operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// LMDB (through heed) reported an error other than a full map.
    #[error("LMDB error in the {store} store at {path}: {source}", store = .store.name())]
    Lmdb {
        /// The store concerned.
        store: StoreKind,
        /// The environment's directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: heed::Error,
    },
    /// The LMDB map of a store is full: the operator must give it more room.
    #[error(
        "the {store} store at {path} is full (LMDB map size of {map_size} bytes reached); \
         restart the node with a larger {option}",
        store = .store.name(),
        option = .store.size_option()
    )]
    MapFull {
        /// The store that is full.
        store: StoreKind,
        /// The environment's directory.
        path: PathBuf,
        /// The configured map size, in bytes.
        map_size: usize,
    },
    /// Stored data failed a consistency check (checksum, decoding, ordering, ...). Where a
    /// node's own data is concerned, callers add [`RESTORE_ADVICE`].
    #[error("corrupt data: {what}; refusing to continue (nothing was repaired or truncated)")]
    Corrupt {
        /// What is damaged, e.g. "log entry 42: checksum mismatch".
        what: String,
    },
    /// A value could not be encoded (a bug, or a value over the size limit).
    #[error("cannot encode {what}")]
    Encode {
        /// What failed and why.
        what: String,
    },
    /// The data directory was written by a newer raftix with an unknown on-disk format.
    #[error(
        "the data directory uses on-disk format version {found}, but this raftix binary supports \
         only up to version {supported}; run a newer raftix"
    )]
    NewerFormat {
        /// Format version found in the identity file.
        found: u32,
        /// Highest version this binary understands.
        supported: u32,
    },
    /// The data directory belongs to another cluster.
    #[error(
        "the data directory belongs to cluster {found:?}, not to the configured cluster \
         {expected:?}; point --data-dir at this cluster's directory"
    )]
    ForeignCluster {
        /// Cluster name in the identity file.
        found: String,
        /// Cluster name this node was started with.
        expected: String,
    },
    /// The data directory belongs to another node of the cluster.
    #[error(
        "the data directory belongs to node {found}, but this node was started as node \
         {expected}; check --node-id and --data-dir"
    )]
    WrongNode {
        /// Node id in the identity file.
        found: NodeId,
        /// Node id this node was started with.
        expected: NodeId,
    },
    /// The identity file exists but cannot be read or understood.
    #[error("identity file {path} is unreadable: {reason}; refusing to start")]
    InvalidIdentity {
        /// Path of the identity file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The data directory holds Raft data but no identity file, so its owner is unknown.
    #[error(
        "data directory {path} holds raft data (log/, sm/ or snapshots/) but no \
         raftix-identity.json; refusing to guess which cluster and node it belongs to"
    )]
    MissingIdentity {
        /// The data directory.
        path: PathBuf,
    },
    /// Another process (or another open in this one) holds the data directory's lock: two
    /// openers would run one node twice, with the same stored vote.
    #[error(
        "data directory {path} is in use by {holder}, which holds its lock file {path}/raftix.lock; \
         stop that process first, or give this node another --data-dir (two processes on one \
         data dir would run the same node twice)",
        path = .path.display(),
        holder = describe_holder(*.holder)
    )]
    DataDirInUse {
        /// The data directory.
        path: PathBuf,
        /// The PID the lock file names, if it names one.
        holder: Option<u32>,
    },
    /// The node was started with other voters than the ones recorded in its data dir.
    #[error(
        "data directory {path} belongs to a cluster of voters {stored:?}, not {given:?}: \
         restarting nodes with another --cluster could elect two leaders; start it with its \
         original --cluster, or, to recover from a lost quorum on purpose, start it with \
         --force-new-cluster (see README)"
    )]
    MembershipChanged {
        /// The data directory.
        path: PathBuf,
        /// The voters recorded in it.
        stored: Vec<NodeId>,
        /// The voters given now.
        given: Vec<NodeId>,
    },
    /// A write would break the log's invariants (a caller bug); nothing was written.
    #[error("invalid log write: {what}; nothing was written")]
    InvalidWrite {
        /// What is wrong with the write.
        what: String,
    },
    /// Reading or writing a snapshot stream (not a named file) failed.
    #[error("I/O error while {what}: {source}")]
    SnapshotIo {
        /// What was being done, e.g. "writing the state machine snapshot".
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A snapshot chunk was sent for another offset than where the receiving file ends.
    #[error(
        "snapshot transfer into {path}: a chunk at offset {got} was refused because the file \
         holds {offset} bytes; resend from offset {offset}"
    )]
    SnapshotOffset {
        /// The partial snapshot file.
        path: PathBuf,
        /// Bytes already received (where the next chunk must start).
        offset: u64,
        /// Offset of the refused chunk.
        got: u64,
    },
    /// A snapshot file operation was asked for something it cannot do (a caller error).
    #[error("snapshot {path}: {what}; nothing was changed")]
    InvalidSnapshot {
        /// The snapshot file or directory concerned.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A snapshot older than the installed one was offered for installation.
    #[error(
        "snapshot {path} covers the log up to entry {} (term {}), but the installed snapshot \
         already covers up to entry {} (term {}); it was not installed",
        .last.index, .last.term, .latest.index, .latest.term
    )]
    StaleSnapshot {
        /// The snapshot offered.
        path: PathBuf,
        /// The last entry it covers.
        last: LogId,
        /// The last entry the installed snapshot covers.
        latest: LogId,
    },
    /// A read asked for entries the log does not hold.
    #[error("log entries {lo}..={hi} requested, but the log holds {first}..={last}")]
    OutOfRange {
        /// First index asked for.
        lo: Index,
        /// Last index asked for.
        hi: Index,
        /// First index held.
        first: Index,
        /// Last index held.
        last: Index,
    },
}

/// Below this many free bytes, an EIO from a write is taken for a full disk (see
/// [`StorageError::disk_refusal`]).
pub const FULL_DISK_BYTES: u64 = 4 << 20;

/// Bytes available to unprivileged writers on the file system holding `path`.
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: statvfs(3) with a NUL-terminated path and a buffer of the right type; the buffer
    // is read only when the call succeeded.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: initialised by the successful call above.
    let stat = unsafe { stat.assume_init() };
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

impl StorageError {
    /// Whether the disk refuses writes for now, without having lost any (it is full, over
    /// quota, read-only, or the LMDB map is full): the failed transaction was aborted whole
    /// and may be retried from scratch once the disk accepts writes again. `None` for every
    /// other error, an fsync's EIO above all, which no retry can make safe.
    ///
    /// LMDB reports a write cut short by a full disk as EIO; an EIO counts as a full disk when
    /// the file system it happened on has less than [`FULL_DISK_BYTES`] free. Retrying is safe
    /// then too: LMDB writes a transaction's pages, syncs them, and only then the meta page
    /// that makes it durable, and a failure there poisons the environment (every later
    /// transaction fails, and the node stops).
    pub fn disk_refusal(&self) -> Option<String> {
        let (os_error, path) = match self {
            StorageError::MapFull { .. } => return Some(self.to_string()),
            StorageError::Io { source, path } => (source.raw_os_error()?, path),
            StorageError::Lmdb {
                source: heed::Error::Io(source),
                path,
                ..
            } => (source.raw_os_error()?, path),
            _ => return None,
        };
        let what = match os_error {
            libc::ENOSPC => "the disk is full",
            libc::EDQUOT => "the disk quota is exhausted",
            libc::EROFS => "the file system is read-only",
            libc::EIO if free_bytes(path).is_some_and(|free| free < FULL_DISK_BYTES) => {
                "the disk is full"
            }
            _ => return None,
        };
        Some(format!("{what} ({self})"))
    }

    /// Builds an `Io` error for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds a `Corrupt` error.
    pub fn corrupt(what: impl Into<String>) -> Self {
        StorageError::Corrupt { what: what.into() }
    }

    /// Whether this error is stored data failing a check (as opposed to an I/O or LMDB failure).
    pub fn is_corrupt(&self) -> bool {
        matches!(self, StorageError::Corrupt { .. })
    }

    /// Adds where the damaged data lives to a `Corrupt` error (`... in the log store at PATH`);
    /// any other error is returned unchanged.
    pub(crate) fn located(self, store: StoreKind, path: &std::path::Path) -> Self {
        match self {
            StorageError::Corrupt { what } => StorageError::Corrupt {
                what: format!(
                    "{what} (in the {} store at {})",
                    store.name(),
                    path.display()
                ),
            },
            other => other,
        }
    }
}

impl From<CodecError> for StorageError {
    /// Encoding failures become `Encode`; anything wrong with stored bytes becomes `Corrupt`.
    fn from(err: CodecError) -> Self {
        match err {
            CodecError::Encode(msg) => StorageError::Encode { what: msg },
            other => StorageError::corrupt(other.to_string()),
        }
    }
}

/// "process 1234", "this process (1234)", or "another process" when the lock file names none.
fn describe_holder(holder: Option<u32>) -> String {
    match holder {
        Some(pid) if pid == std::process::id() => format!("this process (PID {pid})"),
        Some(pid) => format!("another raftix process (PID {pid})"),
        None => "another process".to_string(),
    }
}
