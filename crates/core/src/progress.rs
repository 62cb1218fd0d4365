//! The leader's view of one follower's log (`nextIndex`/`matchIndex` of Figure 2), with the flow
//! control of etcd-raft: probe one message at a time until the logs agree, then pipeline up to a
//! bounded window of messages. Must not import actix, heed or tokio.

use std::collections::VecDeque;

use super::types::Index;

/// How the leader currently sends entries to a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Where the logs agree is unknown: send one message, wait for its answer.
    Probe,
    /// The logs agree up to `match_index`: stream entries optimistically.
    Replicate,
    /// The follower needs entries this leader compacted away: a snapshot is being streamed to
    /// it; no entries are sent until the transfer ends.
    Snapshot,
}

/// Replication progress of one follower.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Highest index known to be stored durably on the follower (matchIndex).
    pub match_index: Index,
    /// Next index to send (nextIndex); always `> match_index`.
    pub next_index: Index,
    /// Sending mode.
    pub state: ProgressState,
    /// In probe mode: a message is outstanding, wait for an answer or a heartbeat response.
    pub probe_sent: bool,
    /// Last index of each AppendEntries with entries in flight, oldest first.
    pub inflight: VecDeque<Index>,
    /// Heard from this follower since the last check-quorum round.
    pub recent_active: bool,
    /// Highest index the follower reported applied.
    pub applied: Index,
}

impl Progress {
    /// Progress of a follower right after an election: probe from the leader's next index.
    pub fn new(next_index: Index) -> Self {
        Self {
            match_index: 0,
            next_index,
            state: ProgressState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
            recent_active: false,
            applied: 0,
        }
    }

    /// Whether the leader must wait before sending this follower more entries.
    pub fn is_paused(&self, max_inflight: usize) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflight.len() >= max_inflight,
            ProgressState::Snapshot => true,
        }
    }

    /// Records that entries up to `last` were sent.
    pub fn sent_entries(&mut self, last: Index) {
        match self.state {
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Replicate => {
                self.next_index = last + 1;
                self.inflight.push_back(last);
            }
            ProgressState::Snapshot => {}
        }
    }

    /// The follower acknowledged `index`. Returns whether `match_index` moved.
    pub fn acknowledge(&mut self, index: Index) -> bool {
        while self.inflight.front().is_some_and(|&i| i <= index) {
            self.inflight.pop_front();
        }
        self.probe_sent = false;
        if index > self.match_index {
            self.match_index = index;
            self.next_index = self.next_index.max(index + 1);
            if self.state != ProgressState::Replicate {
                self.state = ProgressState::Replicate;
            }
            return true;
        }
        if self.state == ProgressState::Probe && self.next_index <= index {
            self.next_index = index + 1;
        }
        false
    }

    /// The follower rejected a message whose `prev` was `rejected_prev`; `next` is where to
    /// probe now. Returns false when the rejection is stale and was ignored.
    pub fn reject(&mut self, rejected_prev: Index, next: Index) -> bool {
        if self.state == ProgressState::Snapshot {
            return false; // answers to appends sent before the snapshot
        }
        if self.state == ProgressState::Replicate {
            if rejected_prev <= self.match_index {
                return false;
            }
        } else if rejected_prev + 1 != self.next_index {
            // Probe mode: only the answer to the outstanding probe counts.
            return false;
        }
        self.become_probe();
        self.next_index = next.max(self.match_index + 1);
        true
    }

    /// A snapshot is being streamed to the follower.
    pub fn become_snapshot(&mut self) {
        self.state = ProgressState::Snapshot;
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// Falls back to probing from `match_index + 1` (after a rejection or a lost connection).
    pub fn become_probe(&mut self) {
        self.state = ProgressState::Probe;
        self.probe_sent = false;
        self.inflight.clear();
        self.next_index = self.match_index + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_sends_one_message_until_answered() {
        let mut p = Progress::new(5);
        assert!(!p.is_paused(4));
        p.sent_entries(7);
        assert!(p.is_paused(4));
        assert_eq!(
            p.next_index, 5,
            "probe does not advance next optimistically"
        );
        assert!(p.acknowledge(7));
        assert_eq!(p.state, ProgressState::Replicate);
        assert_eq!(p.next_index, 8);
    }

    #[test]
    fn replicate_window_is_bounded_and_freed_by_acks() {
        let mut p = Progress::new(1);
        p.acknowledge(0);
        p.state = ProgressState::Replicate;
        p.sent_entries(2);
        p.sent_entries(4);
        assert!(p.is_paused(2));
        p.acknowledge(2);
        assert!(!p.is_paused(2));
        assert_eq!(p.next_index, 5);
    }

    #[test]
    fn stale_rejection_is_ignored_in_replicate() {
        let mut p = Progress::new(1);
        p.state = ProgressState::Replicate;
        p.acknowledge(10);
        assert!(!p.reject(9, 3));
        assert!(p.reject(12, 11));
        assert_eq!(p.state, ProgressState::Probe);
        assert_eq!(p.next_index, 11);
    }
}
