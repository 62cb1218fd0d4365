//! The node's data directory and its identity file.
//!
//! On first start [`DataDir::prepare`] writes `raftix-identity.json` (format version, cluster name,
//! node id) atomically: temporary file, fsync, rename, fsync of the directory. On every later start
//! it checks the file against the configuration and refuses to start on a newer on-disk format,
//! another cluster's or another node's directory, an unreadable identity file, or Raft data with no
//! identity file at all. Starting on the wrong directory would silently fork a cluster's history.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::core::NodeId;

use super::dir_lock::DataDirLock;
use super::error::StorageError;
use super::fs_util::sync_dir;

/// Name of the identity file inside the data directory.
pub const IDENTITY_FILE: &str = "raftix-identity.json";
/// Highest on-disk format version this binary reads and the one it writes. Version 2 added the
/// removed members to configurations (log entries and snapshot headers).
pub const FORMAT_VERSION: u32 = 2;
/// Oldest on-disk format version this binary reads.
pub const OLDEST_FORMAT_VERSION: u32 = 2;
/// Subdirectory holding the log environment.
const LOG_DIR: &str = "log";
/// Subdirectory holding the state machine environment.
const SM_DIR: &str = "sm";
/// Subdirectory holding snapshot files.
const SNAPSHOT_DIR: &str = "snapshots";

/// Content of the identity file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// On-disk format version.
    pub format_version: u32,
    /// Name of the cluster the directory belongs to.
    pub cluster_name: String,
    /// Id of the node the directory belongs to.
    pub node_id: NodeId,
    /// Ids of the voters of the cluster, recorded at the first start and checked at every
    /// start after (absent in directories written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voters: Option<Vec<NodeId>>,
}

/// Only the version, read first so that a newer format is reported as such, not as garbage.
#[derive(Deserialize)]
struct VersionProbe {
    format_version: u32,
}

/// A validated data directory.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
    log: PathBuf,
    sm: PathBuf,
    snapshots: PathBuf,
    identity: Identity,
    lock: DataDirLock,
}

impl DataDir {
    /// Creates or validates the data directory at `path` for `node_id` of `cluster_name`.
    pub fn prepare(
        path: impl AsRef<Path>,
        cluster_name: &str,
        node_id: NodeId,
    ) -> Result<DataDir, StorageError> {
        let root = path.as_ref().to_path_buf();
        fs::create_dir_all(&root).map_err(|e| StorageError::io(&root, e))?;
        let lock = DataDirLock::acquire(&root)?;
        let id_path = root.join(IDENTITY_FILE);
        let identity = match fs::read(&id_path) {
            Ok(bytes) => {
                let found = parse_identity(&id_path, &bytes)?;
                check_identity(&found, cluster_name, node_id)?;
                found
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let raft_data = [LOG_DIR, SM_DIR, SNAPSHOT_DIR];
                if raft_data.iter().any(|sub| root.join(sub).exists()) {
                    return Err(StorageError::MissingIdentity { path: root });
                }
                let fresh = Identity {
                    format_version: FORMAT_VERSION,
                    cluster_name: cluster_name.to_string(),
                    node_id,
                    voters: None,
                };
                write_identity(&root, &fresh)?;
                fresh
            }
            Err(e) => return Err(StorageError::io(&id_path, e)),
        };
        let log = root.join(LOG_DIR);
        let sm = root.join(SM_DIR);
        let snapshots = root.join(SNAPSHOT_DIR);
        for dir in [&log, &sm, &snapshots] {
            fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
        }
        Ok(DataDir {
            root,
            log,
            sm,
            snapshots,
            identity,
            lock,
        })
    }

    /// Whether `path` already holds a node's data (an identity file, or a log, state machine or
    /// snapshot directory): what `raftix restore` refuses to overwrite and `raftix serve --join`
    /// treats as "already joined". A missing or empty directory holds none.
    pub fn holds_raft_data(path: impl AsRef<Path>) -> bool {
        let root = path.as_ref();
        [IDENTITY_FILE, LOG_DIR, SM_DIR, SNAPSHOT_DIR]
            .iter()
            .any(|name| root.join(name).exists())
    }

    /// The data directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Directory of the log environment (`<data-dir>/log`), created by `prepare`.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Directory of the state machine environment (`<data-dir>/sm`), created by `prepare`.
    pub fn sm_path(&self) -> &Path {
        &self.sm
    }

    /// Directory of the snapshot files (`<data-dir>/snapshots`), created by `prepare`.
    pub fn snapshot_path(&self) -> &Path {
        &self.snapshots
    }

    /// The directory's exclusive lock: whoever keeps a clone keeps the directory locked.
    pub fn lock(&self) -> &DataDirLock {
        &self.lock
    }

    /// The identity recorded in the directory.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Checks the voters given at this start against the ones recorded (recording them the
    /// first time). A different set is refused, unless `force` (an operator's explicit
    /// lost-quorum recovery), which records the new set instead. Returns whether the recorded
    /// set changed.
    pub fn check_voters(
        &mut self,
        voters: impl IntoIterator<Item = NodeId>,
        force: bool,
    ) -> Result<bool, StorageError> {
        let mut given: Vec<NodeId> = voters.into_iter().collect();
        given.sort_unstable();
        given.dedup();
        match &self.identity.voters {
            Some(stored) if *stored == given => return Ok(false),
            Some(stored) if !force => {
                return Err(StorageError::MembershipChanged {
                    path: self.root.clone(),
                    stored: stored.clone(),
                    given,
                })
            }
            _ => {}
        }
        let mut updated = self.identity.clone();
        updated.voters = Some(given);
        write_identity(&self.root, &updated)?;
        self.identity = updated;
        Ok(true)
    }
}

fn parse_identity(path: &Path, bytes: &[u8]) -> Result<Identity, StorageError> {
    let invalid = |reason: String| StorageError::InvalidIdentity {
        path: path.to_path_buf(),
        reason,
    };
    let probe: VersionProbe = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("not a valid identity file ({e})")))?;
    if probe.format_version > FORMAT_VERSION {
        return Err(StorageError::NewerFormat {
            found: probe.format_version,
            supported: FORMAT_VERSION,
        });
    }
    if probe.format_version == 0 {
        return Err(invalid("format_version 0 does not exist".to_string()));
    }
    if probe.format_version < OLDEST_FORMAT_VERSION {
        return Err(invalid(format!(
            "format_version {} was written by a development build of raftix whose configuration \
             entries this binary cannot read (oldest supported: {OLDEST_FORMAT_VERSION}); \
             restore the node from a backup (`raftix backup` / `raftix restore`) or from a peer",
            probe.format_version
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| invalid(format!("not a valid identity file ({e})")))
}

fn check_identity(
    found: &Identity,
    cluster_name: &str,
    node_id: NodeId,
) -> Result<(), StorageError> {
    if found.cluster_name != cluster_name {
        return Err(StorageError::ForeignCluster {
            found: found.cluster_name.clone(),
            expected: cluster_name.to_string(),
        });
    }
    if found.node_id != node_id {
        return Err(StorageError::WrongNode {
            found: found.node_id,
            expected: node_id,
        });
    }
    Ok(())
}

/// Writes the identity file atomically and durably.
fn write_identity(root: &Path, identity: &Identity) -> Result<(), StorageError> {
    let tmp = root.join(format!("{IDENTITY_FILE}.tmp"));
    let target = root.join(IDENTITY_FILE);
    let mut json = serde_json::to_vec_pretty(identity).map_err(|e| StorageError::Encode {
        what: format!("identity file: {e}"),
    })?;
    json.push(b'\n');
    let mut file = File::create(&tmp).map_err(|e| StorageError::io(&tmp, e))?;
    file.write_all(&json)
        .and_then(|()| file.sync_all())
        .map_err(|e| StorageError::io(&tmp, e))?;
    drop(file);
    fs::rename(&tmp, &target).map_err(|e| StorageError::io(&target, e))?;
    sync_dir(root)
}
