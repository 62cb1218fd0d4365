//! `raftix restore`: seed one node's data directory of a NEW cluster from a backup (a snapshot
//! file from `raftix backup`), like etcd's `snapshot restore`.
//!
//! Run it once per node of the new cluster, with the same `--from` and `--cluster`, then start
//! each node with `raftix serve` and that `--cluster`. For each node it:
//!
//! 1. refuses a data dir that already holds Raft data, and verifies the backup (magic, header,
//!    length, CRC);
//! 2. prepares the data dir (identity file) and records the voters of `--cluster`, as
//!    `raftix serve` does at a first start;
//! 3. writes the snapshot into the snapshots directory re-labelled with a membership whose voters
//!    are `--cluster` (no learners), so the old cluster's members are forgotten;
//! 4. resets the log to the snapshot's last entry, with a hard state at its term;
//! 5. restores the key-value state machine from it.
//!
//! On a failure after step 2 what it created is removed again, so it can simply be re-run.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::config::{
    parse_cluster, ConfigError, DEFAULT_CLUSTER_NAME, DEFAULT_LOG_MAP_SIZE, DEFAULT_SM_MAP_SIZE,
};
use crate::core::{HardState, Membership, NodeId};
use crate::state_machine::StateMachine;
use crate::storage::{
    open_payload, read_snapshot_info, rewrite_membership, DataDir, KvStateMachine, LmdbLog,
    PersistOp, SnapshotInfo, StorageError, IDENTITY_FILE,
};

/// Flags of `raftix restore`.
#[derive(Clone, Debug, Args)]
pub struct RestoreArgs {
    /// The backup file (from `raftix backup --out FILE`).
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// The new node's data directory: must not hold Raft data yet (it is created if missing).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// The new node's id (one of the ids in --cluster).
    #[arg(long, value_name = "ID")]
    pub id: NodeId,
    /// Voters of the new cluster with their peer addresses: give the same value to every
    /// `restore` and `serve` of the new cluster.
    #[arg(long, value_name = "ID=HOST:PORT,...")]
    pub cluster: String,
    /// Name of the new cluster (give the same to `serve`).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_CLUSTER_NAME)]
    pub cluster_name: String,
    /// LMDB map size of the state machine (give the same to `serve`).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_SM_MAP_SIZE)]
    pub sm_map_size: usize,
    /// LMDB map size of the Raft log (give the same to `serve`).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_LOG_MAP_SIZE)]
    pub log_map_size: usize,
}

/// Why a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// A flag is wrong (exit status 2).
    #[error(transparent)]
    Usage(#[from] ConfigError),
    /// The data dir already holds a node's data.
    #[error(
        "{0} already holds Raft data: restore only seeds a new node's empty data dir \
         (give another --data-dir, or remove it if you really mean to replace that node)"
    )]
    NotEmpty(PathBuf),
    /// The backup is missing, unreadable or damaged.
    #[error("the backup {path} cannot be used: {source}")]
    Backup {
        /// The `--from` file.
        path: PathBuf,
        /// What is wrong with it.
        source: StorageError,
    },
    /// Seeding the data dir failed (what was created is removed again).
    #[error("cannot seed {path}: {source}")]
    Seed {
        /// The data dir.
        path: PathBuf,
        /// What failed.
        source: StorageError,
    },
}

impl RestoreError {
    /// The process exit status.
    pub fn exit_code(&self) -> u8 {
        match self {
            RestoreError::Usage(_) => super::EXIT_USAGE,
            _ => super::EXIT_FAILURE,
        }
    }
}

/// What was restored.
#[derive(Debug)]
pub struct Restored {
    /// The snapshot now in the data dir.
    pub info: SnapshotInfo,
    /// The new cluster's voters.
    pub voters: Vec<NodeId>,
}

impl Restored {
    /// `OK index=N term=T voters=1,2,3 snapshot=FILE`.
    pub fn describe(&self) -> String {
        let voters: Vec<String> = self.voters.iter().map(u64::to_string).collect();
        format!(
            "OK index={} term={} voters={} snapshot={}",
            self.info.meta.last.index,
            self.info.meta.last.term,
            voters.join(","),
            self.info.path.display()
        )
    }
}

/// Runs `raftix restore`.
pub fn run(args: RestoreArgs) -> Result<Restored, RestoreError> {
    let cluster = parse_cluster(&args.cluster)?;
    check_flags(&args, &cluster)?;
    if DataDir::holds_raft_data(&args.data_dir) {
        return Err(RestoreError::NotEmpty(args.data_dir.clone()));
    }
    let backup = read_snapshot_info(&args.from).map_err(|source| RestoreError::Backup {
        path: args.from.clone(),
        source,
    })?;
    let mut prepared = None;
    let seeded = seed(&args, &cluster, &backup, &mut prepared);
    if seeded.is_err() {
        unseed(&args.data_dir, prepared.as_ref());
    }
    let info = seeded.map_err(|source| RestoreError::Seed {
        path: args.data_dir.clone(),
        source,
    })?;
    Ok(Restored {
        info,
        voters: cluster.keys().copied().collect(),
    })
}

/// The id is one of the cluster's, the name and map sizes are usable.
fn check_flags(args: &RestoreArgs, cluster: &BTreeMap<NodeId, String>) -> Result<(), ConfigError> {
    if cluster.is_empty() {
        return Err(ConfigError::invalid(
            "cluster",
            &args.cluster,
            "must list at least one voter as ID=HOST:PORT",
        ));
    }
    if !cluster.contains_key(&args.id) {
        return Err(ConfigError::invalid(
            "id",
            args.id,
            "not a member of --cluster (cluster)",
        ));
    }
    if args.cluster_name.trim().is_empty() {
        return Err(ConfigError::invalid(
            "cluster_name",
            "",
            "must not be empty",
        ));
    }
    for (key, value) in [
        ("sm_map_size", args.sm_map_size),
        ("log_map_size", args.log_map_size),
    ] {
        if value == 0 {
            return Err(ConfigError::invalid(key, value, "must be greater than 0"));
        }
    }
    Ok(())
}

/// Steps 2 to 5 of the module docs.
fn seed(
    args: &RestoreArgs,
    cluster: &BTreeMap<NodeId, String>,
    backup: &SnapshotInfo,
    prepared: &mut Option<DataDir>,
) -> Result<SnapshotInfo, StorageError> {
    let data_dir = prepared.insert(DataDir::prepare(
        &args.data_dir,
        &args.cluster_name,
        args.id,
    )?);
    data_dir.check_voters(cluster.keys().copied(), false)?;
    let membership = Membership {
        voters: cluster.keys().copied().collect(),
        learners: Default::default(),
        addrs: cluster.clone(),
        removed: Default::default(),
    };
    let info = rewrite_membership(backup, &membership, data_dir.snapshot_path())?;
    let last = info.meta.last;
    let mut log = LmdbLog::open(data_dir.log_path(), args.log_map_size)?;
    log.write(&[PersistOp {
        reset_to: Some(last),
        hard_state: Some(HardState {
            term: last.term,
            voted_for: None,
        }),
        ..Default::default()
    }])?;
    drop(log);
    let mut machine = KvStateMachine::open(data_dir.sm_path(), args.sm_map_size)?;
    let mut payload = open_payload(&info)?;
    machine
        .restore(last.index, &mut payload)
        .map_err(|e| StorageError::corrupt(format!("restoring the state machine: {e}")))?;
    Ok(info)
}

/// Removes what a failed [`seed`] may have created in `dir` (it held no Raft data before):
/// the identity file and, once prepared, the log, state machine and snapshot directories.
fn unseed(dir: &Path, prepared: Option<&DataDir>) {
    if let Some(data_dir) = prepared {
        for sub in [
            data_dir.log_path(),
            data_dir.sm_path(),
            data_dir.snapshot_path(),
        ] {
            let _ = fs::remove_dir_all(sub);
        }
    }
    let _ = fs::remove_file(dir.join(IDENTITY_FILE));
}
