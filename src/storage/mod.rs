//! Durable storage in LMDB (heed): the Raft log and hard state, the data-dir identity file, and
//! the built-in key-value state machine. Nothing here knows about actors.
//!
//! - [`codec`]: the one place that encodes (bincode 2) and checksums records.
//! - [`DataDir`]: the data directory (`log/`, `sm/`, `snapshots/`) and its identity file,
//!   validated at every start, under an exclusive lock ([`DataDirLock`]: one process per data
//!   directory).
//! - [`LmdbLog`]: log entries and hard state, written in group commits of [`PersistOp`]s;
//!   compacted up to a durable base (the last entry a snapshot covers).
//! - [`KvStateMachine`] / [`KvReader`]: the built-in key-value store, applied atomically with its
//!   applied index; [`KvCommand`] / [`KvOutput`] are its entry payloads and results, optionally
//!   wrapped in a [`KvRequest`] / [`KvResponse`] for exactly-once execution ([`DedupConfig`]);
//!   [`KvCommand::Txn`] applies guarded multi-key writes atomically; [`kv_tokens`] holds the
//!   replicated API tokens (hashes of their secrets only); [`kv_snapshot`] is its snapshot
//!   format (streamed from a read transaction, restored in one write transaction);
//!   [`KvStateMachine::verify_all`] checks every stored value at start.
//! - [`SnapshotStore`]: the snapshot files in `<data-dir>/snapshots` ([`snapshot_file`] is their
//!   format): [`SnapshotWriter`] writes one durably, [`read_snapshot_info`] verifies one,
//!   [`open_payload`] reads its state machine payload, [`IncomingSnapshot`] receives one from the
//!   leader in resumable chunks, [`rewrite_membership`] re-labels one for another cluster.
//! - [`StorageError`]: every failure, worded for an operator.
//!
//! Each LMDB environment has one writer: the log is written only through `LmdbLog`, the state
//! machine only through `KvStateMachine`. Open each environment once per process. Nothing in this
//! layer silently repairs or truncates damaged data.

pub mod codec;
mod data_dir;
mod dir_lock;
mod error;
mod fs_util;
mod kv;
mod kv_command;
mod kv_dedup;
mod kv_exec;
mod kv_flags;
pub mod kv_observe;
mod kv_reader;
pub mod kv_regions;
mod kv_request;
pub mod kv_snapshot;
pub mod kv_tokens;
pub mod kv_txn;
mod kv_verify;
mod lmdb;
mod lmdb_log;
mod log_verify;
mod log_write;
pub mod snapshot_file;
mod snapshot_incoming;
mod snapshot_store;

pub use data_dir::{DataDir, Identity, FORMAT_VERSION, IDENTITY_FILE};
pub use dir_lock::{DataDirLock, LOCK_FILE};
pub use error::{StorageError, StoreKind, RESTORE_ADVICE};
pub use kv::{KvStateMachine, DATA_DB, SM_META_DB};
pub use kv_command::{KvCommand, KvOutput, MAX_KEY_LEN};
pub use kv_dedup::{
    DedupConfig, DEDUP_BY_INDEX_DB, DEDUP_BY_TIME_DB, DEDUP_DB, DEFAULT_DEDUP_MAX_ENTRIES,
    DEFAULT_DEDUP_TTL_MS,
};
pub use kv_observe::{AppliedChange, ApplyObserver};
pub use kv_reader::KvReader;
pub use kv_request::{KvRequest, KvResponse, MAX_REQUEST_ID_LEN, REQUEST_TAG};
pub use kv_snapshot::{KV_SNAPSHOT_MIN_VERSION, KV_SNAPSHOT_VERSION, MAX_KV_SNAPSHOT_RECORD};
pub use kv_tokens::{StoredToken, MAX_TOKEN_NAME_LEN, TOKENS_DB, TOKEN_HASHES_DB};
pub use kv_txn::{GuardExpect, TxnGuard, TxnOp, MAX_TXN_GUARDS, MAX_TXN_OPS};
pub use lmdb_log::{LmdbLog, LoadedLog, PersistOp, BASE_KEY, ENTRIES_DB, HARD_STATE_KEY, META_DB};
/// The former name of [`LmdbLog`], renamed so that it no longer reads like the log store actor
/// (`raftix::actors::LogStore`) that owns it.
#[deprecated(note = "renamed to LmdbLog")]
pub type LogStorage = LmdbLog;
pub use snapshot_file::{
    open_payload, parse_snapshot_file_name, read_snapshot_info, rewrite_membership,
    snapshot_file_name, SnapshotInfo, SnapshotPayload, SnapshotWriter, MAX_SNAPSHOT_HEADER,
    SNAPSHOT_MAGIC,
};
pub use snapshot_incoming::{incoming_file_name, IncomingSnapshot};
pub use snapshot_store::SnapshotStore;
