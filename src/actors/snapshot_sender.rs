//! `SnapshotSender`: streams one snapshot file to one follower (the leader side of a streamed
//! InstallSnapshot, §7). It first offers the snapshot with an empty chunk; the follower answers
//! with the offset it already holds (a transfer interrupted earlier resumes there), then chunks
//! flow with at most a window of them unacknowledged. Chunks travel on the link's bulk queue,
//! so heartbeats (control queue) never wait behind them. Ends with `SnapshotSendDone` to the
//! node: success once the follower reports the snapshot handed to Raft, failure on an error
//! answer, a broken file, or no progress for `STALL_TIMEOUT`. When the follower has been silent
//! for `PROBE_AFTER` (the chunks in flight or their acknowledgements were lost, for example
//! because the follower restarted), the offer is repeated: the follower answers with the offset
//! it holds and sending goes on from there. After a refusal the sender verifies its own file
//! again (off the node's thread): a file damaged on this node's disk stops the node rather than
//! be offered again.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, Addr, AsyncContext, Context, Handler, Recipient};
use bytes::Bytes;

use crate::core::{NodeId, Term};
use crate::messages::node::StorageFailed;
use crate::messages::peer_link::SendSnapshotFrame;
use crate::messages::snapshot::{AckIn, SnapshotSendDone};
use crate::storage::{read_snapshot_info, SnapshotInfo, RESTORE_ADVICE};
use crate::transport::{PeerLink, SnapshotBody, SnapshotFrame};

/// Bytes per chunk.
pub const CHUNK_BYTES: usize = 256 * 1024;
/// Chunks in flight without an acknowledgement.
pub const WINDOW_CHUNKS: u64 = 4;
/// A transfer without any acknowledgement for this long is abandoned (the leader retries).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// No answer at all for this long: offer again, to learn the offset the follower holds.
pub const PROBE_AFTER: Duration = Duration::from_secs(1);

/// One transfer of one snapshot to one follower.
pub struct SnapshotSender {
    from: NodeId,
    to: NodeId,
    term: Term,
    info: SnapshotInfo,
    file: File,
    link: Addr<PeerLink>,
    on_done: Recipient<SnapshotSendDone>,
    /// Told when this node's own snapshot file turns out to be damaged (the node stops).
    on_damaged: Recipient<StorageFailed>,
    /// Offset the follower confirmed it holds (`None` until it answered the offer).
    acked: Option<u64>,
    /// Next offset to send.
    next: u64,
    last_progress: Instant,
    /// Last answer of any kind from the follower (or the start).
    last_heard: Instant,
    finished: bool,
    /// The offset sending went back to after an answer without progress: later answers naming
    /// the same offset (one per chunk still in flight) do not send the window again.
    rewound_to: Option<u64>,
    /// Payload bytes sent, duplicates included (logged when the transfer ends).
    sent_bytes: u64,
}

impl SnapshotSender {
    /// A transfer of the snapshot `info` (already opened as `file`) from `from` to `to`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        from: NodeId,
        to: NodeId,
        term: Term,
        info: SnapshotInfo,
        file: File,
        link: Addr<PeerLink>,
        on_done: Recipient<SnapshotSendDone>,
        on_damaged: Recipient<StorageFailed>,
    ) -> Self {
        Self {
            from,
            to,
            term,
            info,
            file,
            link,
            on_done,
            on_damaged,
            acked: None,
            next: 0,
            last_progress: Instant::now(),
            last_heard: Instant::now(),
            finished: false,
            rewound_to: None,
            sent_bytes: 0,
        }
    }

    fn frame(&self, body: SnapshotBody) -> SnapshotFrame {
        SnapshotFrame {
            from: self.from,
            to: self.to,
            term: self.term,
            last: self.info.meta.last,
            body,
        }
    }

    /// Sends a chunk at `offset` (empty: the offer).
    fn send_chunk(&mut self, offset: u64, data: Bytes) {
        let chunk_crc = crc32fast::hash(&data);
        let body = SnapshotBody::Chunk {
            total: self.info.size,
            file_crc: self.info.crc,
            offset,
            data,
            chunk_crc,
        };
        self.link.do_send(SendSnapshotFrame(self.frame(body)));
    }

    /// Sends chunks until the window is full or the file is all sent.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        let Some(acked) = self.acked else { return };
        while self.next < self.info.size && self.next < acked + WINDOW_CHUNKS * CHUNK_BYTES as u64 {
            let len = (self.info.size - self.next).min(CHUNK_BYTES as u64) as usize;
            let mut buf = vec![0u8; len];
            let read = self
                .file
                .seek(SeekFrom::Start(self.next))
                .and_then(|_| self.file.read_exact(&mut buf));
            if let Err(err) = read {
                tracing::error!(
                    node = self.from,
                    peer = self.to,
                    "cannot read snapshot {}: {err}",
                    self.info.path.display()
                );
                return self.finish(false, ctx);
            }
            let offset = self.next;
            self.next += len as u64;
            self.sent_bytes += len as u64;
            self.send_chunk(offset, Bytes::from(buf));
        }
    }

    /// After a refusal (the follower verifies the whole file it received against the CRC this
    /// node announced): verifies this node's own file again, on a thread of its own, and stops
    /// the node if the file is damaged, rather than go on offering bad data. The file is read
    /// from disk, so the chunks sent carried exactly what it now holds.
    fn check_own_file(&self) {
        let info = self.info.clone();
        let on_damaged = self.on_damaged.clone();
        let (node, peer) = (self.from, self.to);
        let spawned = std::thread::Builder::new()
            .name("raftix-snapshot-check".into())
            .spawn(move || match read_snapshot_info(&info.path) {
                Err(err) if err.is_corrupt() => on_damaged.do_send(StorageFailed {
                    reason: format!(
                        "the snapshot this node sent to node {peer} is damaged on its disk: \
                         {err}; {RESTORE_ADVICE}"
                    ),
                }),
                Err(err) => tracing::warn!(
                    node,
                    peer,
                    "cannot verify snapshot {} again: {err}",
                    info.path.display()
                ),
                Ok(_) => tracing::info!(
                    node,
                    peer,
                    "snapshot {} verifies: the follower's refusal was not about this file",
                    info.path.display()
                ),
            });
        if let Err(err) = spawned {
            tracing::warn!(node, peer, "cannot start the snapshot check thread: {err}");
        }
    }

    fn finish(&mut self, ok: bool, ctx: &mut Context<Self>) {
        if self.finished {
            return;
        }
        self.finished = true;
        let last = ok.then_some(self.info.meta.last);
        tracing::info!(
            node = self.from,
            peer = self.to,
            index = self.info.meta.last.index,
            ok,
            size = self.info.size,
            sent_bytes = self.sent_bytes,
            "snapshot transfer ended"
        );
        self.on_done.do_send(SnapshotSendDone { to: self.to, last });
        ctx.stop();
    }
}

impl Actor for SnapshotSender {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(
            node = self.from,
            peer = self.to,
            index = self.info.meta.last.index,
            size = self.info.size,
            "streaming snapshot"
        );
        self.send_chunk(0, Bytes::new());
        ctx.run_interval(Duration::from_millis(500), |act, ctx| {
            if act.last_progress.elapsed() > STALL_TIMEOUT {
                tracing::warn!(node = act.from, peer = act.to, "snapshot transfer stalled");
                act.finish(false, ctx);
            } else if act.acked.is_none() || act.last_heard.elapsed() > PROBE_AFTER {
                // The offer, or every chunk in flight, or their answers may have been lost:
                // the answer to this offer may send the window again.
                act.rewound_to = None;
                act.send_chunk(0, Bytes::new());
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if !self.finished {
            self.on_done.do_send(SnapshotSendDone {
                to: self.to,
                last: None,
            });
        }
    }
}

impl Handler<AckIn> for SnapshotSender {
    type Result = ();

    fn handle(&mut self, AckIn(frame): AckIn, ctx: &mut Context<Self>) {
        if frame.last != self.info.meta.last || frame.from != self.to {
            return;
        }
        let SnapshotBody::Ack {
            next_offset,
            done,
            error,
        } = frame.body
        else {
            return;
        };
        if let Some(error) = error {
            tracing::warn!(
                node = self.from,
                peer = self.to,
                "follower refused the snapshot: {error}"
            );
            self.check_own_file();
            return self.finish(false, ctx);
        }
        if done {
            return self.finish(true, ctx);
        }
        self.last_heard = Instant::now();
        let next_offset = next_offset.min(self.info.size);
        match self.acked {
            Some(acked) if next_offset > acked => {
                self.acked = Some(next_offset);
                self.last_progress = Instant::now();
                self.rewound_to = None;
            }
            Some(acked) if next_offset < acked => {
                // The follower holds less than it acknowledged (it restarted and lost what
                // was not on disk): go on from what it holds.
                self.acked = Some(next_offset);
                self.next = next_offset;
                self.rewound_to = Some(next_offset);
            }
            Some(_) if self.rewound_to == Some(next_offset) => {
                // Another answer to a chunk sent before going back: the window was already
                // sent again from here. Sending it once more would snowball under load.
            }
            Some(_) => {
                // No progress: the follower wants `next_offset` again (a chunk was lost).
                self.next = next_offset;
                self.rewound_to = Some(next_offset);
            }
            None => {
                self.acked = Some(next_offset);
                self.next = next_offset;
                self.last_progress = Instant::now();
            }
        }
        self.pump(ctx);
    }
}
