//! Snapshots on the node hub: when to take one, compacting the log after it, streaming the
//! latest one to followers that fell behind the compacted log, and installing one received from
//! the leader (the InstallSnapshot RPC of §7, streamed; see `snapshot_sender` and
//! `snapshot_receiver`).

use std::collections::BTreeMap;

use actix::{Actor, Addr, Context, Handler, ResponseFuture};
use futures::channel::oneshot;

use crate::core::{Event, LogId, NodeId, SnapshotMeta};
use crate::messages::node::ClientError;
use crate::messages::peer_link::SendSnapshotFrame;
use crate::messages::snapshot::*;
use crate::storage::{open_payload, SnapshotInfo, SnapshotStore};
use crate::transport::{SnapshotBody, SnapshotFrame};

use super::node::RaftNode;
use super::snapshot_receiver::SnapshotReceiver;
use super::snapshot_sender::SnapshotSender;

/// When the node snapshots and how much log it keeps.
#[derive(Clone, Copy, Debug)]
pub struct SnapshotPolicy {
    /// Take a snapshot once this many entries were applied since the last one (0: never
    /// automatically).
    pub every_entries: u64,
    /// Take a snapshot once this many bytes of entries were applied since the last one (0: no
    /// byte threshold).
    pub every_bytes: u64,
    /// Entries kept in the log before the snapshot's index, so that slightly slow followers
    /// catch up from the log rather than from a snapshot.
    pub keep_entries: u64,
}

/// Snapshot state of the node.
pub struct Snapshots {
    /// The latest installed snapshot and its directory.
    pub store: SnapshotStore,
    /// Writes incoming transfers.
    pub receiver: Addr<SnapshotReceiver>,
    /// Snapshots received and handed to Raft, not installed yet.
    pub received: BTreeMap<LogId, SnapshotInfo>,
    /// Transfers to followers in progress.
    pub senders: BTreeMap<NodeId, Addr<SnapshotSender>>,
    /// A snapshot is being written.
    pub taking: bool,
    /// Clients waiting for the snapshot being written.
    pub waiters: Vec<oneshot::Sender<Result<SnapshotSummary, ClientError>>>,
    /// Entries and bytes applied since the last snapshot.
    pub since_entries: u64,
    /// See `since_entries`.
    pub since_bytes: u64,
    /// When to snapshot.
    pub policy: SnapshotPolicy,
}

impl RaftNode {
    /// Entries were applied: take a snapshot when the policy says so.
    pub(super) fn count_applied(&mut self, entries: u64, bytes: u64) {
        let s = &mut self.parts.snapshots;
        s.since_entries += entries;
        s.since_bytes += bytes;
        let due = (s.policy.every_entries > 0 && s.since_entries >= s.policy.every_entries)
            || (s.policy.every_bytes > 0 && s.since_bytes >= s.policy.every_bytes);
        if due && !s.taking {
            self.take_snapshot();
        }
    }

    fn take_snapshot(&mut self) {
        let applied = self.applied;
        let s = &mut self.parts.snapshots;
        s.since_entries = 0;
        s.since_bytes = 0;
        if let Some(latest) = s.store.latest() {
            if latest.meta.last.index >= applied {
                // Nothing applied since (and a new file at the same position would replace
                // the installed one under its name): the latest snapshot is the answer.
                let summary = SnapshotSummary::of(latest);
                for w in std::mem::take(&mut s.waiters) {
                    let _ = w.send(Ok(summary.clone()));
                }
                return;
            }
        }
        s.taking = true;
        self.parts.take_snapshot.do_send(TakeSnapshot);
    }

    /// `Action::SendSnapshot`: stream the latest snapshot to `to`.
    pub(super) fn send_snapshot(&mut self, to: NodeId) {
        let Some(me) = self.me.clone() else { return };
        let failed = |_: ()| me.do_send(SnapshotSendDone { to, last: None });
        if self.blocked.contains(&to) {
            return failed(()); // fault injection: the peer is cut off
        }
        let Some(info) = self.parts.snapshots.store.latest().cloned() else {
            tracing::error!(
                node = self.id,
                peer = to,
                "a follower needs a snapshot but there is none"
            );
            return failed(());
        };
        let Some(link) = self.link_to(to) else {
            return failed(());
        };
        let file = match std::fs::File::open(&info.path) {
            Ok(file) => file,
            Err(err) => {
                tracing::error!(
                    node = self.id,
                    "cannot open snapshot {}: {err}",
                    info.path.display()
                );
                return failed(());
            }
        };
        let term = self.parts.core.term();
        let done = me.clone().recipient();
        let damaged = me.clone().recipient();
        let sender = SnapshotSender::new(self.id, to, term, info, file, link, done, damaged);
        // A transfer already running to `to` stops when its address is dropped here.
        self.parts.snapshots.senders.insert(to, sender.start());
        crate::metrics::NodeMetrics::bump(&self.parts.metrics.snapshots_sent);
    }

    /// `Action::Persist` with `install`: the received snapshot becomes this node's latest.
    pub(super) fn snapshot_installing(&mut self, meta: &SnapshotMeta) {
        let s = &mut self.parts.snapshots;
        let Some(info) = s.received.remove(&meta.last) else {
            tracing::error!(
                node = self.id,
                "installing snapshot {:?} that was never received",
                meta.last
            );
            return;
        };
        s.received.retain(|last, _| last.index > meta.last.index);
        if let Err(err) = s.store.install(info) {
            tracing::error!(
                node = self.id,
                "cannot record the installed snapshot: {err}"
            );
        }
        s.since_entries = 0;
        s.since_bytes = 0;
        crate::metrics::NodeMetrics::bump(&self.parts.metrics.snapshots_installed);
    }

    /// `Action::Restore`: hand the installed snapshot to the applier.
    pub(super) fn restore_snapshot(&mut self, meta: SnapshotMeta) {
        let opened = match self.parts.snapshots.store.latest() {
            Some(info) if info.meta.last == meta.last => {
                open_payload(info).map_err(|e| e.to_string())
            }
            other => Err(format!(
                "the snapshot to restore ({:?}) is not the installed one ({:?})",
                meta.last,
                other.map(|i| i.meta.last)
            )),
        };
        match opened {
            Ok(payload) => self.parts.restore.do_send(RestoreSnapshot {
                meta,
                payload: Box::new(payload),
            }),
            Err(reason) => {
                if let Some(me) = &self.me {
                    me.do_send(crate::messages::node::StorageFailed {
                        reason: format!("cannot restore the state machine: {reason}"),
                    });
                }
            }
        }
    }

    /// The acknowledgement that ends a transfer of snapshot `last` from `to`: done (handed to
    /// Raft, or already held) when `error` is `None`, refused otherwise.
    fn final_ack(
        &self,
        to: NodeId,
        term: u64,
        last: LogId,
        error: Option<String>,
    ) -> SnapshotFrame {
        SnapshotFrame {
            from: self.id,
            to,
            term,
            last,
            body: SnapshotBody::Ack {
                next_offset: 0,
                done: error.is_none(),
                error,
            },
        }
    }

    /// A snapshot frame from a peer.
    pub(super) fn snapshot_frame(&mut self, frame: SnapshotFrame) {
        match frame.body {
            SnapshotBody::Ack { .. } => {
                if let Some(sender) = self.parts.snapshots.senders.get(&frame.from) {
                    sender.do_send(AckIn(frame));
                }
            }
            SnapshotBody::Chunk { .. } => {
                let Some(link) = self.link_to(frame.from) else {
                    return;
                };
                if frame.term >= self.parts.core.term()
                    && frame.last.index <= self.parts.core.commit_index()
                {
                    // This node already holds everything the snapshot covers (typically the
                    // leader sends it again because the final acknowledgement of the transfer
                    // that installed it was lost or late): no need to receive it again.
                    let done = self.final_ack(frame.from, frame.term, frame.last, None);
                    link.do_send(SendSnapshotFrame(done));
                    return;
                }
                if frame.term < self.parts.core.term() {
                    let term = self.parts.core.term();
                    let refusal =
                        self.final_ack(frame.from, term, frame.last, Some("stale term".into()));
                    link.do_send(SendSnapshotFrame(refusal));
                    return;
                }
                self.parts
                    .snapshots
                    .receiver
                    .do_send(ChunkIn { frame, link });
            }
        }
    }
}

impl Handler<SnapshotArrived> for RaftNode {
    type Result = ();

    /// Hands the verified snapshot to Raft, then tells the leader it is done.
    fn handle(&mut self, msg: SnapshotArrived, _: &mut Context<Self>) {
        let _span = self.span();
        let SnapshotArrived { from, term, info } = msg;
        let meta = info.meta.clone();
        tracing::info!(
            node = self.id,
            peer = from,
            index = meta.last.index,
            "snapshot received"
        );
        self.parts.snapshots.received.insert(meta.last, info);
        let last = meta.last;
        let actions = self
            .parts
            .core
            .step(Event::SnapshotReceived { from, term, meta });
        self.execute(actions);
        if let Some(info) = self.parts.snapshots.received.remove(&last) {
            // Raft did not need it (the log already covers it): keep it only if it is newer
            // than this node's latest snapshot. A copy of the latest itself was received into
            // the latest's own file (same name): record it again, never delete it.
            let store = &mut self.parts.snapshots.store;
            let keep = store
                .latest()
                .is_none_or(|l| l.meta.last.index < last.index || l.meta.last == last);
            if keep {
                if let Err(err) = store.install(info) {
                    tracing::error!(node = self.id, "cannot record the received snapshot: {err}");
                }
            } else if let Err(err) = std::fs::remove_file(&info.path) {
                tracing::warn!(
                    node = self.id,
                    "cannot delete {}: {err}",
                    info.path.display()
                );
            }
        }
        if let Some(link) = self.link_to(from) {
            let done = self.final_ack(from, term, last, None);
            link.do_send(SendSnapshotFrame(done));
        }
    }
}

impl Handler<SnapshotSendDone> for RaftNode {
    type Result = ();

    fn handle(&mut self, msg: SnapshotSendDone, _: &mut Context<Self>) {
        let _span = self.span();
        self.parts.snapshots.senders.remove(&msg.to);
        let actions = self.parts.core.step(Event::SnapshotSent {
            to: msg.to,
            last: msg.last,
        });
        self.execute(actions);
    }
}

impl Handler<SnapshotCreated> for RaftNode {
    type Result = ();

    /// A snapshot file is durable: it becomes the latest, and the log before it (less the kept
    /// tail) is dropped, in memory now and on disk after every write already queued.
    fn handle(&mut self, msg: SnapshotCreated, _: &mut Context<Self>) {
        let _span = self.span();
        self.parts.snapshots.taking = false;
        let waiters = std::mem::take(&mut self.parts.snapshots.waiters);
        let info = match msg.0 {
            Ok(info) => info,
            Err(reason) => {
                tracing::error!(node = self.id, "snapshot failed: {reason}");
                for w in waiters {
                    let _ = w.send(Err(ClientError::Unavailable(format!(
                        "snapshot failed: {reason}"
                    ))));
                }
                return;
            }
        };
        let last = info.meta.last;
        let newer = self
            .parts
            .snapshots
            .store
            .latest()
            .is_none_or(|l| l.meta.last.index < last.index);
        let summary = SnapshotSummary::of(&info);
        if newer {
            if let Err(err) = self.parts.snapshots.store.install(info) {
                tracing::error!(node = self.id, "cannot record the snapshot: {err}");
            }
            crate::metrics::NodeMetrics::bump(&self.parts.metrics.snapshots_taken);
            tracing::info!(
                node = self.id,
                index = last.index,
                size = summary.size,
                "snapshot taken"
            );
            let keep = self.parts.snapshots.policy.keep_entries;
            if let Some(base) = self.parts.core.compact(last.index.saturating_sub(keep)) {
                self.parts.purge.do_send(Purge { upto: base.index });
            }
        }
        for w in waiters {
            let _ = w.send(Ok(summary.clone()));
        }
    }
}

impl Handler<Restored> for RaftNode {
    type Result = ();

    fn handle(&mut self, msg: Restored, _: &mut Context<Self>) {
        let _span = self.span();
        let index = msg.last.index;
        tracing::info!(
            node = self.id,
            index,
            "state machine restored from snapshot"
        );
        self.applied = self.applied.max(index);
        // Writes this node proposed at or below the snapshot: their outcome is not known here.
        while let Some(entry) = self.waiters.first_entry() {
            if *entry.key() > index {
                break;
            }
            let (_, (_, _, waiter)) = entry.remove_entry();
            let _ = waiter.send(Err(ClientError::OutcomeUnknown));
        }
        self.reads_applied();
        let applied = self.applied;
        let actions = self.parts.core.step(Event::Applied { index: applied });
        self.execute(actions);
    }
}

impl Handler<SnapshotNow> for RaftNode {
    type Result = ResponseFuture<Result<SnapshotSummary, ClientError>>;

    /// `POST /v1/admin/snapshot`: take a snapshot now (or join the one being taken).
    fn handle(&mut self, _: SnapshotNow, _: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.parts.snapshots.waiters.push(tx);
        if !self.parts.snapshots.taking {
            self.take_snapshot();
        }
        Box::pin(async move {
            rx.await
                .unwrap_or_else(|_| Err(ClientError::Unavailable("node stopped".into())))
        })
    }
}
