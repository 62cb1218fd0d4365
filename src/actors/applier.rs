//! `Applier`: the only writer of the state machine. Runs on its own arbiter (thread) so that
//! applying never stalls the node's mailbox. Applies committed entries in order and reports
//! each entry's output; a state machine error is fatal for the node. Group apply: every `Apply`
//! waiting in the mailbox goes into one state machine transaction (one durable commit).
//!
//! It also captures snapshots (the state machine's `snapshot` is called here, between two
//! applies; the file is written on a thread of its own while applying goes on) and restores a
//! snapshot installed from the leader. It tracks the id of the last applied entry and the
//! configuration in force at it, which a snapshot records.

use actix::{Actor, AsyncContext, Context, Handler, Recipient};

use std::sync::Arc;
use std::time::Instant;

use crate::core::{EntryPayload, LogId, Membership, SnapshotMeta};
use crate::crash_points::{self, crash_point};
use crate::messages::applier::Apply;
use crate::messages::node::{Applied, DiskRefusal, StorageFailed};
use crate::messages::snapshot::{RestoreSnapshot, Restored, SnapshotCreated, TakeSnapshot};
use crate::metrics::NodeMetrics;
use crate::state_machine::{StateMachine, StateMachineError};
use crate::storage::{SnapshotWriter, RESTORE_ADVICE};

/// Where the applier reports, besides applied entries.
pub struct ApplierLinks {
    /// Snapshot files written.
    pub on_created: Recipient<SnapshotCreated>,
    /// Snapshots restored.
    pub on_restored: Recipient<Restored>,
    /// The disk refuses (or accepts again) the state machine's writes.
    pub on_disk: Recipient<DiskRefusal>,
    /// Snapshot directory.
    pub snapshot_dir: std::path::PathBuf,
    /// Id of the last applied entry at start.
    pub applied_id: LogId,
    /// Configuration in force at `applied_id`.
    pub membership: Membership,
}

/// Drives a [`StateMachine`] with committed entries.
pub struct Applier<S: StateMachine> {
    machine: Box<S>,
    on_applied: Recipient<Applied>,
    on_failure: Recipient<StorageFailed>,
    failed: bool,
    metrics: Arc<NodeMetrics>,
    /// Committed entries waiting for the next `ApplyBatch`, in log order.
    pending: Vec<crate::core::Entry>,
    /// The disk refused the last batch: a retry is scheduled.
    refused: bool,
    links: ApplierLinks,
}

impl<S: StateMachine> Applier<S> {
    /// An applier for `machine`, reporting to the node.
    pub fn new(
        machine: S,
        on_applied: Recipient<Applied>,
        on_failure: Recipient<StorageFailed>,
        metrics: Arc<NodeMetrics>,
        links: ApplierLinks,
    ) -> Self {
        Self {
            machine: Box::new(machine),
            on_applied,
            on_failure,
            failed: false,
            metrics,
            pending: Vec::new(),
            refused: false,
            links,
        }
    }
}

impl<S: StateMachine> Actor for Applier<S> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(super::UNBOUNDED_MAILBOX);
    }
}

impl<S: StateMachine> Handler<Apply> for Applier<S> {
    type Result = ();

    /// Queues the entries; every `Apply` waiting in the mailbox is applied by one `ApplyBatch`
    /// (one state machine transaction) once the mailbox has drained.
    fn handle(&mut self, msg: Apply, ctx: &mut Context<Self>) {
        if self.failed || msg.entries.is_empty() {
            return;
        }
        if self.pending.is_empty() {
            ctx.notify(ApplyBatch);
        }
        self.pending.extend(msg.entries);
    }
}

/// Self-message: apply everything queued.
#[derive(actix::Message)]
#[rtype(result = "()")]
struct ApplyBatch;

impl<S: StateMachine> Handler<ApplyBatch> for Applier<S> {
    type Result = ();

    fn handle(&mut self, _: ApplyBatch, ctx: &mut Context<Self>) {
        let queued = std::mem::take(&mut self.pending);
        if self.failed {
            return;
        }
        let applied_before = self.machine.applied_index();
        let fresh: Vec<_> = queued
            .into_iter()
            .filter(|e| e.index > applied_before)
            .collect();
        if fresh.is_empty() {
            return;
        }
        let started = Instant::now();
        let result = self.machine.apply(&fresh);
        self.metrics.record_apply(fresh.len(), started.elapsed());
        match result {
            Err(StateMachineError::DiskRefused(reason)) => {
                if !self.refused {
                    tracing::warn!("the state machine's disk refuses writes, retrying: {reason}");
                    self.links.on_disk.do_send(DiskRefusal {
                        store: "state machine",
                        refusal: Some(reason),
                    });
                }
                self.refused = true;
                let mut kept = fresh;
                kept.append(&mut self.pending);
                self.pending = kept;
                ctx.notify_later(ApplyBatch, super::log_store::DISK_RETRY);
            }
            Ok(outputs) if outputs.len() == fresh.len() => {
                if std::mem::take(&mut self.refused) {
                    tracing::info!("the state machine's disk accepts writes again");
                    self.links.on_disk.do_send(DiskRefusal {
                        store: "state machine",
                        refusal: None,
                    });
                }
                crash_point(crash_points::APPLY_AFTER_COMMIT);
                for entry in &fresh {
                    if let EntryPayload::Config(m) = &entry.payload {
                        crash_point(crash_points::CONFIG_AFTER_APPLY);
                        self.links.membership = m.clone();
                    }
                }
                if let Some(last) = fresh.last() {
                    self.links.applied_id = last.log_id();
                }
                let outputs = fresh.iter().map(|e| e.log_id()).zip(outputs).collect();
                self.on_applied.do_send(Applied { outputs });
            }
            Ok(outputs) => {
                self.failed = true;
                let reason = format!(
                    "state machine returned {} outputs for {} entries",
                    outputs.len(),
                    fresh.len()
                );
                self.on_failure.do_send(StorageFailed { reason });
            }
            Err(err) => {
                self.failed = true;
                self.on_failure.do_send(StorageFailed {
                    reason: failure_reason("state machine", &err),
                });
            }
        }
    }
}

/// The reason a node gives when its state machine fails: corrupt data gets the operator advice
/// of [`StorageError::Corrupt`](crate::storage::StorageError::Corrupt).
fn failure_reason(context: &str, err: &StateMachineError) -> String {
    match err {
        StateMachineError::Corrupt(_) => format!("{context}: {err}; {RESTORE_ADVICE}"),
        StateMachineError::Storage(_) | StateMachineError::DiskRefused(_) => {
            format!("{context}: {err}")
        }
    }
}

impl<S: StateMachine> Handler<TakeSnapshot> for Applier<S> {
    type Result = ();

    /// Captures the state machine now (cheap) and writes the file on a thread of its own.
    fn handle(&mut self, _: TakeSnapshot, _: &mut Context<Self>) {
        let reply = self.links.on_created.clone();
        if self.failed {
            return reply.do_send(SnapshotCreated(Err("the state machine failed".into())));
        }
        let last = self.links.applied_id;
        if last.index == 0 || last.index != self.machine.applied_index() {
            return reply.do_send(SnapshotCreated(Err(format!(
                "nothing to snapshot yet (applied index {})",
                self.machine.applied_index()
            ))));
        }
        let source = match self.machine.snapshot() {
            Ok(source) => source,
            Err(err) => return reply.do_send(SnapshotCreated(Err(err.to_string()))),
        };
        let meta = SnapshotMeta {
            last,
            membership: self.links.membership.clone(),
        };
        let dir = self.links.snapshot_dir.clone();
        let on_failure = self.on_failure.clone();
        let spawned = std::thread::Builder::new()
            .name("raftix-snapshot".into())
            .spawn({
                let reply = reply.clone();
                move || {
                    let result = (|| {
                        let mut writer =
                            SnapshotWriter::create(&dir, &meta).map_err(|e| e.to_string())?;
                        if let Err(err) = source.write_to(&mut writer) {
                            if matches!(err, StateMachineError::Corrupt(_)) {
                                // A damaged record found while reading the store: stop rather
                                // than serve (or later ship) it.
                                on_failure.do_send(StorageFailed {
                                    reason: failure_reason("taking a snapshot", &err),
                                });
                            }
                            return Err(err.to_string());
                        }
                        writer.finish().map_err(|e| e.to_string())
                    })();
                    reply.do_send(SnapshotCreated(result));
                }
            });
        if let Err(err) = spawned {
            reply.do_send(SnapshotCreated(Err(format!(
                "cannot start the snapshot thread: {err}"
            ))));
        }
    }
}

impl<S: StateMachine> Handler<RestoreSnapshot> for Applier<S> {
    type Result = ();

    /// Replaces the state machine's state with the installed snapshot. A failure is fatal.
    fn handle(&mut self, msg: RestoreSnapshot, _: &mut Context<Self>) {
        if self.failed {
            return;
        }
        let RestoreSnapshot { meta, mut payload } = msg;
        self.pending.retain(|e| e.index > meta.last.index);
        match self.machine.restore(meta.last.index, &mut payload) {
            Ok(()) => {
                self.links.applied_id = meta.last;
                self.links.membership = meta.membership;
                self.links.on_restored.do_send(Restored { last: meta.last });
            }
            Err(err) => {
                self.failed = true;
                self.on_failure.do_send(StorageFailed {
                    reason: failure_reason(
                        &format!("restoring the snapshot at {}", meta.last.index),
                        &err,
                    ),
                });
            }
        }
    }
}
