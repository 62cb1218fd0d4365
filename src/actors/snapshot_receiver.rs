//! `SnapshotReceiver`: the follower side of a streamed InstallSnapshot (§7), on its own arbiter
//! (thread) because it writes and verifies files. It keeps at most one transfer: chunks of
//! another snapshot replace it. Every chunk is checked (its CRC, its offset) and acknowledged
//! with the offset now held; the partial file survives restarts, so an interrupted transfer
//! resumes. Once the whole file is verified (the file CRC) it is handed to the node, which feeds
//! it to Raft and sends the final acknowledgement.

use std::path::PathBuf;

use actix::{Actor, Addr, Context, Handler, Recipient};

use crate::core::{LogId, NodeId};
use crate::messages::peer_link::SendSnapshotFrame;
use crate::messages::snapshot::{ChunkIn, SnapshotArrived};
use crate::storage::IncomingSnapshot;
use crate::transport::{PeerLink, SnapshotBody, SnapshotFrame};

/// Receives snapshot chunks for one node.
pub struct SnapshotReceiver {
    id: NodeId,
    dir: PathBuf,
    /// The transfer in progress: `(snapshot, file crc, file)`.
    current: Option<(LogId, u32, IncomingSnapshot)>,
    on_arrived: Recipient<SnapshotArrived>,
}

impl SnapshotReceiver {
    /// A receiver writing into the snapshot directory `dir`.
    pub fn new(id: NodeId, dir: PathBuf, on_arrived: Recipient<SnapshotArrived>) -> Self {
        Self {
            id,
            dir,
            current: None,
            on_arrived,
        }
    }

    fn ack(link: &Addr<PeerLink>, chunk: &SnapshotFrame, next_offset: u64, error: Option<String>) {
        let frame = SnapshotFrame {
            from: chunk.to,
            to: chunk.from,
            term: chunk.term,
            last: chunk.last,
            body: SnapshotBody::Ack {
                next_offset,
                done: false,
                error,
            },
        };
        link.do_send(SendSnapshotFrame(frame));
    }
}

impl Actor for SnapshotReceiver {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(256);
    }
}

impl Handler<ChunkIn> for SnapshotReceiver {
    type Result = ();

    fn handle(&mut self, ChunkIn { frame, link }: ChunkIn, _: &mut Context<Self>) {
        let SnapshotBody::Chunk {
            total,
            file_crc,
            offset,
            ref data,
            chunk_crc,
        } = frame.body
        else {
            return;
        };
        if crc32fast::hash(data) != chunk_crc {
            tracing::warn!(
                node = self.id,
                peer = frame.from,
                offset,
                "snapshot chunk with a bad checksum"
            );
            let held = self.current.as_ref().map_or(0, |(_, _, f)| f.offset());
            return Self::ack(&link, &frame, held, None);
        }
        let same = self
            .current
            .as_ref()
            .is_some_and(|(last, crc, _)| *last == frame.last && *crc == file_crc);
        if !same {
            self.current = None;
            match IncomingSnapshot::open(&self.dir, frame.last, total, file_crc) {
                Ok(file) => {
                    tracing::info!(
                        node = self.id,
                        peer = frame.from,
                        index = frame.last.index,
                        total,
                        resume_at = file.offset(),
                        "receiving snapshot"
                    );
                    self.current = Some((frame.last, file_crc, file));
                }
                Err(err) => {
                    let reason = format!("cannot store the snapshot: {err}");
                    tracing::error!(node = self.id, "{reason}");
                    return Self::ack(&link, &frame, 0, Some(reason));
                }
            }
        }
        let Some((_, _, file)) = self.current.as_mut() else {
            return;
        };
        if !data.is_empty() {
            if offset != file.offset() {
                // Out of order (a chunk was lost): ask again from what is held.
                let held = file.offset();
                return Self::ack(&link, &frame, held, None);
            }
            if let Err(err) = file.write_chunk(offset, data) {
                let reason = format!("cannot write the snapshot: {err}");
                tracing::error!(node = self.id, "{reason}");
                self.current = None;
                return Self::ack(&link, &frame, 0, Some(reason));
            }
        }
        let held = file.offset();
        if held < total {
            return Self::ack(&link, &frame, held, None);
        }
        let Some((_, _, file)) = self.current.take() else {
            return;
        };
        match file.finish() {
            Ok(info) => self.on_arrived.do_send(SnapshotArrived {
                from: frame.from,
                term: frame.term,
                info,
            }),
            Err(err) => {
                let reason = format!("the received snapshot is corrupt: {err}");
                tracing::error!(node = self.id, "{reason}");
                Self::ack(&link, &frame, 0, Some(reason));
            }
        }
    }
}
