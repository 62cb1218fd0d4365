//! Crash points: named places on the durability path where a build with the `failpoints`
//! feature can stop the process at once, as a power cut of that process would (the `fail`
//! crate's fail points; without the feature they compile to nothing).
//!
//! A process started with `FAILPOINTS="<point>=<actions>;..."` (the `fail` crate's syntax; the
//! variable is read once at start) aborts when a point configured `return` is reached:
//! `FAILPOINTS=log.after_fsync=20*off->return` lets 20 durable log writes through and aborts
//! at the 21st. `return(error)` at a point that can fail an I/O call ([`LOG_FSYNC_ERROR`])
//! makes that call fail instead. The process tests in `tests/process/crash_points.rs` stop a
//! node at each point, restart it and check that nothing acknowledged was lost, nothing was
//! applied twice and the replicas agree.

/// Before the log's write transaction (entries, hard state) is durably committed.
pub const LOG_BEFORE_FSYNC: &str = "log.before_fsync";
/// After the log's durable commit, before the log store tells the node (so no vote, append
/// acknowledgement or client reply that depends on it has gone out).
pub const LOG_AFTER_FSYNC: &str = "log.after_fsync";
/// Instead of the log's durable commit: `return` makes it fail as an fsync error would.
pub const LOG_FSYNC_ERROR: &str = "log.fsync_error";
/// Before a log write that compacts the log (purges entries a snapshot covers) commits.
pub const LOG_BEFORE_COMPACTION: &str = "log.before_compaction";
/// Before a log write that holds a configuration entry commits.
pub const CONFIG_BEFORE_FSYNC: &str = "config.before_fsync";
/// After a configuration entry was applied, before the node hears of it.
pub const CONFIG_AFTER_APPLY: &str = "config.after_apply";
/// Between applying entries to the state machine and its durable commit.
pub const APPLY_BEFORE_COMMIT: &str = "apply.before_commit";
/// After the state machine's durable commit, before the results reach the node (and so the
/// clients waiting for them).
pub const APPLY_AFTER_COMMIT: &str = "apply.after_commit";
/// In the middle of writing a snapshot file (part of the payload written).
pub const SNAPSHOT_MID_WRITE: &str = "snapshot.mid_write";
/// After a snapshot file is complete and fsynced, before it is renamed to its final name.
pub const SNAPSHOT_BEFORE_RENAME: &str = "snapshot.before_rename";
/// In the middle of receiving a snapshot from the leader (a chunk written).
pub const SNAPSHOT_MID_INSTALL: &str = "snapshot.mid_install";
/// Between writing a received snapshot into the state machine and committing it.
pub const SNAPSHOT_BEFORE_RESTORE_COMMIT: &str = "snapshot.before_restore_commit";

/// Not a crash point but a deliberate defect, for the power-loss tests to show that they catch
/// a missing fsync: when configured `return`, every LMDB environment is opened with
/// `MDB_NOSYNC` (commits are not fsynced).
pub const STORAGE_NO_SYNC: &str = "storage.no_sync";

/// Every crash point, for tests and documentation.
pub const ALL: [&str; 12] = [
    LOG_BEFORE_FSYNC,
    LOG_AFTER_FSYNC,
    LOG_FSYNC_ERROR,
    LOG_BEFORE_COMPACTION,
    CONFIG_BEFORE_FSYNC,
    CONFIG_AFTER_APPLY,
    APPLY_BEFORE_COMMIT,
    APPLY_AFTER_COMMIT,
    SNAPSHOT_MID_WRITE,
    SNAPSHOT_BEFORE_RENAME,
    SNAPSHOT_MID_INSTALL,
    SNAPSHOT_BEFORE_RESTORE_COMMIT,
];

/// Reads `FAILPOINTS` (with the `failpoints` feature; otherwise does nothing). Call once at
/// process start; the configuration lasts for the process's life.
pub fn configure_from_env() {
    #[cfg(feature = "failpoints")]
    {
        if std::env::var_os("FAILPOINTS").is_some() {
            tracing::warn!("crash points configured from FAILPOINTS: this process may abort");
        }
        std::mem::forget(fail::FailScenario::setup());
    }
}

/// Aborts the process here when crash point `name` is configured to `return`.
#[inline]
pub fn crash_point(name: &'static str) {
    #[cfg(feature = "failpoints")]
    fail::fail_point!(name, |_| {
        eprintln!("crash point {name} reached: aborting the process");
        std::process::abort()
    });
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

/// Whether crash point `name` is configured to `return` here (for points that inject an
/// error rather than abort).
#[inline]
pub fn triggered(name: &'static str) -> bool {
    #[cfg(feature = "failpoints")]
    {
        let hit = || -> bool {
            fail::fail_point!(name, |_| true);
            false
        };
        hit()
    }
    #[cfg(not(feature = "failpoints"))]
    {
        let _ = name;
        false
    }
}
