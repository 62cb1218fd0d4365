//! `LogStore`: the only writer of the log env. Runs on its own arbiter (thread) because every
//! write ends in an fsync. Group commit: every `Persist` waiting in the mailbox when a flush
//! starts goes into one transaction and one fsync, then one `Persisted` reports the highest
//! `io_seq`. A storage error is fatal: the node is told and stops; nothing is retried silently.
//! The one exception is a disk that refuses writes without having lost any (full, read-only,
//! LMDB map full; see [`StorageError::disk_refusal`](crate::storage::StorageError::disk_refusal)):
//! the aborted transaction is kept and written again every [`DISK_RETRY`], and the node is told
//! (it reports DEGRADED and refuses new writes) until a retry succeeds.

use actix::{Actor, AsyncContext, Context, Handler, Message, Recipient};

use crate::messages::log_store::Persist;
use crate::messages::node::{DiskRefusal, Persisted, StorageFailed};
use crate::messages::snapshot::Purge;
use std::sync::Arc;

use crate::metrics::NodeMetrics;
use crate::storage::{LmdbLog, PersistOp};

/// Owner of the durable log.
pub struct LogStore {
    storage: LmdbLog,
    /// Writes waiting for the next flush, with the `io_seq` to report (none for purges).
    pending: Vec<(Option<u64>, PersistOp)>,
    flush_scheduled: bool,
    failed: bool,
    on_persisted: Recipient<Persisted>,
    on_failure: Recipient<StorageFailed>,
    on_disk: Recipient<DiskRefusal>,
    /// The disk refused the last write: a retry is scheduled.
    refused: bool,
    node_id: u64,
    metrics: Arc<NodeMetrics>,
}

impl LogStore {
    /// A log store writing to `storage` and reporting to the node.
    pub fn new(
        node_id: u64,
        storage: LmdbLog,
        on_persisted: Recipient<Persisted>,
        on_failure: Recipient<StorageFailed>,
        on_disk: Recipient<DiskRefusal>,
        metrics: Arc<NodeMetrics>,
    ) -> Self {
        Self {
            storage,
            pending: Vec::new(),
            flush_scheduled: false,
            failed: false,
            on_persisted,
            on_failure,
            on_disk,
            refused: false,
            node_id,
            metrics,
        }
    }
}

impl Actor for LogStore {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(super::UNBOUNDED_MAILBOX);
    }
}

/// How often a write the disk refused is tried again.
pub const DISK_RETRY: std::time::Duration = std::time::Duration::from_millis(500);

/// Self-message: write everything pending.
#[derive(Message)]
#[rtype(result = "()")]
struct Flush;

impl Handler<Persist> for LogStore {
    type Result = ();

    fn handle(&mut self, msg: Persist, ctx: &mut Context<Self>) {
        if self.failed {
            return;
        }
        let op = PersistOp {
            hard_state: msg.hard_state,
            reset_to: msg.install.map(|meta| meta.last),
            truncate_from: msg.truncate_from,
            entries: msg.entries,
            ..Default::default()
        };
        self.queue(Some(msg.io_seq), op, ctx);
    }
}

impl Handler<Purge> for LogStore {
    type Result = ();

    /// Drops entries a snapshot covers, in order with the writes queued before.
    fn handle(&mut self, msg: Purge, ctx: &mut Context<Self>) {
        if self.failed {
            return;
        }
        let op = PersistOp {
            purge_to: Some(msg.upto),
            ..Default::default()
        };
        self.queue(None, op, ctx);
    }
}

impl LogStore {
    fn queue(&mut self, io_seq: Option<u64>, op: PersistOp, ctx: &mut Context<Self>) {
        self.pending.push((io_seq, op));
        if !self.flush_scheduled {
            // Queued behind every message already in the mailbox: they join this batch.
            self.flush_scheduled = true;
            ctx.notify(Flush);
        }
    }
}

impl Handler<Flush> for LogStore {
    type Result = ();

    fn handle(&mut self, _: Flush, ctx: &mut Context<Self>) {
        self.flush_scheduled = false;
        let batch = std::mem::take(&mut self.pending);
        if batch.is_empty() || self.failed {
            return;
        }
        let io_seq = batch.iter().filter_map(|(seq, _)| *seq).max();
        let ops: Vec<PersistOp> = batch.into_iter().map(|(_, op)| op).collect();
        let started = std::time::Instant::now();
        match self.storage.write(&ops) {
            Err(err) if err.disk_refusal().is_some() => {
                let reason = err.disk_refusal().unwrap_or_default();
                if !self.refused {
                    tracing::warn!(
                        node = self.node_id,
                        "the log's disk refuses writes, retrying: {reason}"
                    );
                    self.on_disk.do_send(DiskRefusal {
                        store: "log",
                        refusal: Some(reason),
                    });
                }
                self.refused = true;
                // Keep the batch, ahead of what arrived since; one `Persisted` for all of it.
                let last = ops.len() - 1;
                let mut kept: Vec<_> = ops
                    .into_iter()
                    .enumerate()
                    .map(|(i, op)| (if i == last { io_seq } else { None }, op))
                    .collect();
                kept.append(&mut self.pending);
                self.pending = kept;
                self.flush_scheduled = true;
                ctx.notify_later(Flush, DISK_RETRY);
            }
            Ok(()) => {
                if std::mem::take(&mut self.refused) {
                    tracing::info!(node = self.node_id, "the log's disk accepts writes again");
                    self.on_disk.do_send(DiskRefusal {
                        store: "log",
                        refusal: None,
                    });
                }
                let entries = ops.iter().map(|op| op.entries.len()).sum();
                self.metrics
                    .record_fsync(ops.len(), entries, started.elapsed());
                if let Some(io_seq) = io_seq {
                    self.on_persisted.do_send(Persisted {
                        io_seq,
                        took: started.elapsed(),
                    });
                }
            }
            Err(err) => {
                self.failed = true;
                tracing::error!(node = self.node_id, "log storage write failed: {err}");
                self.on_failure.do_send(StorageFailed {
                    reason: format!("log store: {err}"),
                });
            }
        }
    }
}
