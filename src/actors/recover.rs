//! Recovering a node's durable state at start: the latest snapshot, the log and the state
//! machine are checked against each other and reconciled (DESIGN: snapshot + log tail).
//!
//! - A snapshot whose last entry the log does not hold (a snapshot received from the leader
//!   whose install was interrupted by a crash) replaces the log: its contents are committed, and
//!   a log that disagrees with it holds only uncommitted entries at those positions.
//! - A state machine behind the snapshot is restored from it.
//! - A log compacted without any snapshot, or a state machine ahead of the log, is refused.
//! - Before anything else, every log entry and (through [`StateMachine::verify`]) every state
//!   machine record is read and its checksum verified; the latest snapshot file was verified
//!   whole when the snapshot store opened. Damage is refused, naming the index or key.
//! - With `--force-new-cluster` (lost-quorum recovery), a configuration entry holding the given
//!   cluster is appended to the log, so that it supersedes every configuration in the log and
//!   the snapshot (etcd's `--force-new-cluster` does the same).

use crate::core::{EntryPayload, Index, LogId, Membership, RaftLog, SnapshotMeta};
use crate::state_machine::{StateMachine, StateMachineError};
use crate::storage::{open_payload, LmdbLog, LoadedLog, PersistOp, SnapshotInfo, StorageError};

use super::launch::StartError;

/// What recovery hands to the core and the applier.
pub struct RecoveredState {
    /// The log, reconciled with the snapshot.
    pub loaded: LoadedLog,
    /// The latest snapshot's meta.
    pub snapshot: Option<SnapshotMeta>,
    /// The state machine's applied index.
    pub applied: Index,
    /// Id of the last applied entry.
    pub applied_id: LogId,
    /// Configuration in force at the applied index.
    pub applied_membership: Membership,
}

/// Reconciles `storage`, the snapshot `latest` and `machine` (see the module docs).
pub fn recover<S: StateMachine>(
    storage: &mut LmdbLog,
    latest: Option<&SnapshotInfo>,
    machine: &mut S,
    bootstrap: &Membership,
    data_dir: &str,
    force_new_cluster: bool,
) -> Result<RecoveredState, StartError> {
    let inconsistent = |reason: String| StartError::Inconsistent {
        path: data_dir.to_string(),
        reason,
    };
    let started = std::time::Instant::now();
    let records = machine.verify().map_err(|err| match err {
        StateMachineError::Corrupt(what) => StartError::Storage(StorageError::corrupt(what)),
        other => inconsistent(format!("verifying the state machine: {other}")),
    })?;
    let sm_took = started.elapsed();
    let started = std::time::Instant::now();
    let mut loaded = storage.load()?;
    tracing::info!(
        entries = loaded.entries.len(),
        log_ms = started.elapsed().as_millis() as u64,
        state_machine_records = records,
        state_machine_ms = sm_took.as_millis() as u64,
        "verified the checksum of every log entry and state machine record"
    );
    if let Some(snap) = latest {
        let last = snap.meta.last;
        let log = RaftLog::new(loaded.base, loaded.entries.clone());
        if last.index < loaded.base.index {
            return Err(inconsistent(format!(
                "the log was compacted up to {} but the latest snapshot ({}) ends at {}",
                loaded.base.index,
                snap.path.display(),
                last.index
            )));
        }
        if !log.matches(last) {
            tracing::warn!(
                snapshot = last.index,
                log_last = log.last_index(),
                "the log does not hold the snapshot's last entry: finishing its install"
            );
            let hard_state = loaded.hard_state;
            let op = PersistOp {
                reset_to: Some(last),
                hard_state: (hard_state.term < last.term).then_some(crate::core::HardState {
                    term: last.term,
                    voted_for: None,
                }),
                ..Default::default()
            };
            storage.write(&[op])?;
            loaded = storage.load()?;
        }
    } else if loaded.base.index > 0 {
        return Err(inconsistent(format!(
            "the log was compacted up to {} but there is no snapshot in the snapshots directory",
            loaded.base.index
        )));
    }
    let last_index = loaded.entries.last().map_or(loaded.base.index, |e| e.index);
    if let Some(snap) = latest {
        if machine.applied_index() < snap.meta.last.index {
            tracing::info!(
                applied = machine.applied_index(),
                snapshot = snap.meta.last.index,
                "restoring the state machine from the snapshot"
            );
            let mut payload = open_payload(snap)?;
            machine
                .restore(snap.meta.last.index, &mut payload)
                .map_err(|e| inconsistent(format!("restoring {}: {e}", snap.path.display())))?;
        }
    }
    let applied = machine.applied_index();
    if applied > last_index {
        return Err(inconsistent(format!(
            "the state machine applied index {applied} but the log ends at {last_index}: the log was lost or truncated"
        )));
    }
    if force_new_cluster {
        let hard_state = loaded.hard_state;
        let term = hard_state
            .term
            .max(loaded.entries.last().map_or(loaded.base.term, |e| e.term));
        // The members of the configuration being replaced that are not in the new one are
        // recorded as removed: if they come back they are not heard (their removal is committed
        // as soon as this node commits the entry on its own).
        let previous = loaded
            .entries
            .iter()
            .rev()
            .find_map(|e| match &e.payload {
                EntryPayload::Config(m) => Some(m.clone()),
                _ => None,
            })
            .or_else(|| latest.map(|s| s.meta.membership.clone()));
        let mut forced = bootstrap.clone();
        if let Some(previous) = previous {
            let gone: Vec<_> = previous
                .members()
                .filter(|id| !bootstrap.contains(*id))
                .collect();
            forced.removed = previous.removed.clone();
            forced.removed.extend(gone);
            forced.removed.retain(|id| !bootstrap.contains(*id));
        }
        let entry = crate::core::Entry {
            term,
            index: last_index + 1,
            payload: EntryPayload::Config(forced),
        };
        tracing::warn!(
            index = entry.index,
            voters = ?bootstrap.voters,
            "--force-new-cluster: appending a configuration entry with only the given voters"
        );
        let op = PersistOp {
            hard_state: (hard_state.term < term).then_some(crate::core::HardState {
                term,
                voted_for: None,
            }),
            entries: vec![entry],
            ..Default::default()
        };
        storage.write(&[op])?;
        loaded = storage.load()?;
    }
    let snapshot = latest.map(|s| s.meta.clone());
    let snap_index = snapshot.as_ref().map_or(0, |s| s.last.index);
    if applied < loaded.base.index {
        return Err(inconsistent(format!(
            "the state machine applied index {applied} is below the log's first entry {}",
            loaded.base.index + 1
        )));
    }
    // The configuration at the applied index: the snapshot's, then config entries up to it.
    let mut applied_membership = snapshot
        .as_ref()
        .map_or_else(|| bootstrap.clone(), |s| s.membership.clone());
    let mut applied_id = snapshot.as_ref().map_or(loaded.base, |s| s.last);
    for entry in &loaded.entries {
        if entry.index > applied {
            break;
        }
        if entry.index == applied {
            applied_id = entry.log_id();
        }
        if entry.index > snap_index {
            if let EntryPayload::Config(m) = &entry.payload {
                applied_membership = m.clone();
            }
        }
    }
    if applied == 0 {
        applied_id = LogId::default();
    }
    Ok(RecoveredState {
        loaded,
        snapshot,
        applied,
        applied_id,
        applied_membership,
    })
}
