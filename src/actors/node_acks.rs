//! Answers that wait for more than "committed and applied here": `ack=leader` writes (durable
//! on the leader, before commit), and `ack=all` writes and `consistency=all` reads (applied on
//! every voter). Checked after every core step; deadlines are checked then too (the leader steps
//! at least every heartbeat interval).

use std::time::Instant;

use crate::core::{Index, LogId, Role, Term};
use crate::messages::node::{ClientError, WriteResult};

use super::node::{RaftNode, Waiter};
use super::node_reads::ReadWaiter;

/// Something waiting until every voter applied `index`.
pub(super) enum Everywhere {
    /// An `ack=all` write, already committed and applied here.
    Write(Waiter, WriteResult),
    /// A `consistency=all` read, already confirmed and applied here.
    Read(ReadWaiter),
}

/// Waiters for acknowledgements beyond the default.
#[derive(Default)]
pub(super) struct Acks {
    /// `ack=leader` writes: answered once the leader's own copy is durable.
    pub durable: std::collections::BTreeMap<Index, (Term, Waiter)>,
    /// Waiting until every voter applied the index, with a deadline.
    pub everywhere: Vec<(Index, Instant, Everywhere)>,
}

impl RaftNode {
    /// Answers `ack=leader` writes whose entry is durable here, and fails those whose entry was
    /// replaced.
    pub(super) fn check_durable(&mut self) {
        let stable = self.parts.core.stable_index();
        while let Some(entry) = self.acks.durable.first_entry() {
            let index = *entry.key();
            let term = entry.get().0;
            let current = self.parts.core.log().term_at(index);
            if current.is_some() && current != Some(term) {
                let (_, waiter) = entry.remove();
                let _ = waiter.send(Err(ClientError::ProposalDropped));
                continue;
            }
            if index > stable {
                break;
            }
            let (_, waiter) = entry.remove();
            let log_id = LogId::new(term, index);
            let _ = waiter.send(Ok(WriteResult {
                log_id,
                output: bytes::Bytes::new(),
            }));
        }
    }

    /// Answers what waits for every voter once they all applied its index; times out the rest.
    pub(super) fn check_everywhere(&mut self) {
        if self.acks.everywhere.is_empty() {
            return;
        }
        let core = &self.parts.core;
        let leading = core.role() == Role::Leader;
        let voters = &core.membership().voters;
        let everywhere = core
            .followers_applied()
            .into_iter()
            .filter(|(id, _)| voters.contains(id))
            .map(|(_, applied)| applied)
            .fold(self.applied, Index::min);
        let now = Instant::now();
        let mut waiting = Vec::new();
        for (index, deadline, what) in std::mem::take(&mut self.acks.everywhere) {
            let done = leading && index <= everywhere;
            if !done && leading && now < deadline {
                waiting.push((index, deadline, what));
                continue;
            }
            match what {
                Everywhere::Write(waiter, result) => {
                    let answer = if done {
                        Ok(result)
                    } else {
                        Err(ClientError::NotEverywhere {
                            index,
                            term: result.log_id.term,
                        })
                    };
                    let _ = waiter.send(answer);
                }
                Everywhere::Read(waiter) => {
                    let answer = if done {
                        Ok(self.applied)
                    } else if !leading {
                        Err(self.not_leader())
                    } else {
                        Err(ClientError::Unavailable(format!(
                            "not every voter applied index {index} in time (consistency=all)"
                        )))
                    };
                    let _ = waiter.send(answer);
                }
            }
        }
        self.acks.everywhere = waiting;
    }

    /// The node stops: fail everything still waiting.
    pub(super) fn acks_stopped(&mut self, reason: &str) {
        let acks = std::mem::take(&mut self.acks);
        for (_, (_, waiter)) in acks.durable {
            let _ = waiter.send(Err(ClientError::Unavailable(reason.to_string())));
        }
        for (_, _, what) in acks.everywhere {
            let err = ClientError::Unavailable(reason.to_string());
            match what {
                Everywhere::Write(waiter, _) => {
                    let _ = waiter.send(Err(err));
                }
                Everywhere::Read(waiter) => {
                    let _ = waiter.send(Err(err));
                }
            }
        }
    }
}
