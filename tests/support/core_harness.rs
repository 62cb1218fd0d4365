//! Helpers for driving a single `RaftCore` by hand in rule tests.
#![allow(dead_code)]

use bytes::Bytes;
use raftix::core::{
    Action, CoreConfig, Entry, EntryPayload, Envelope, Event, HardState, LogId, Message, NodeId,
    RaftCore, RaftLog, Recovered, Role,
};

/// A log whose entry `i + 1` has term `terms[i]`.
pub fn log_of(terms: &[u64]) -> RaftLog {
    let entries = terms
        .iter()
        .enumerate()
        .map(|(i, &term)| Entry {
            term,
            index: i as u64 + 1,
            payload: EntryPayload::Noop,
        })
        .collect();
    RaftLog::new(LogId::default(), entries)
}

/// A core for node `id` of a cluster with voters `1..=n`, pre-vote and check-quorum as given.
pub fn core(id: NodeId, n: u64, hard: HardState, terms: &[u64], pre_vote: bool) -> RaftCore {
    let mut cfg = CoreConfig::new(id, 1..=n);
    cfg.pre_vote = pre_vote;
    let mut core = RaftCore::new(
        cfg,
        Recovered {
            hard_state: hard,
            log: log_of(terms),
            applied: 0,
            snapshot: None,
        },
    );
    core.start();
    core
}

/// Feeds a message from `from` to the core.
pub fn recv(core: &mut RaftCore, from: NodeId, msg: Message) -> Vec<Action> {
    let to = core.id();
    core.step(Event::Receive(Envelope { from, to, msg }))
}

/// Feeds node `from`'s acknowledgement, in `term`, that its log matches the core's up to
/// `match_index` (a successful append response).
pub fn ack_append(core: &mut RaftCore, from: NodeId, term: u64, match_index: u64) -> Vec<Action> {
    recv(core, from, super::msg::append_success(term, match_index))
}

/// The messages among `actions`.
pub fn sent(actions: &[Action]) -> Vec<Envelope> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// One persist: `(io_seq, hard_state, truncate_from, entries)`.
pub type PersistView = (u64, Option<HardState>, Option<u64>, Vec<Entry>);

/// The persists among `actions`.
pub fn persists(actions: &[Action]) -> Vec<PersistView> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Persist {
                io_seq,
                hard_state,
                truncate_from,
                entries,
                ..
            } => Some((*io_seq, *hard_state, *truncate_from, entries.clone())),
            _ => None,
        })
        .collect()
}

/// Completes every persist in `actions`, returning the actions that produced.
pub fn complete_persists(core: &mut RaftCore, actions: &[Action]) -> Vec<Action> {
    let mut out = Vec::new();
    if let Some((seq, ..)) = persists(actions).last() {
        out = core.step(Event::Persisted { io_seq: *seq });
    }
    out
}

/// The latest election epoch armed in `actions`.
pub fn armed_epoch(actions: &[Action]) -> Option<u64> {
    actions.iter().rev().find_map(|a| match a {
        Action::ArmElection { epoch } => Some(*epoch),
        _ => None,
    })
}

/// Entries handed to the state machine in `actions`.
pub fn applied(actions: &[Action]) -> Vec<Entry> {
    actions
        .iter()
        .flat_map(|a| match a {
            Action::Apply { entries } => entries.clone(),
            _ => Vec::new(),
        })
        .collect()
}

/// A command entry.
pub fn cmd(term: u64, index: u64, data: &'static str) -> Entry {
    Entry {
        term,
        index,
        payload: EntryPayload::Command(Bytes::from_static(data.as_bytes())),
    }
}

/// Makes node 1 of an `n`-node cluster leader of term `prev_term + 1` with log `terms`, every
/// persist completed and the votes of nodes 2.. granted; returns the core and all actions so far.
pub fn leader(n: u64, prev_term: u64, terms: &[u64]) -> (RaftCore, Vec<Action>) {
    let mut c = core(
        1,
        n,
        HardState {
            term: prev_term,
            voted_for: None,
        },
        terms,
        false,
    );
    let actions = fire_election(&mut c);
    let mut acts = complete_persists(&mut c, &actions);
    let term = c.term();
    for peer in 2..=n {
        acts.extend(recv(
            &mut c,
            peer,
            Message::VoteResponse {
                term,
                granted: true,
                pre_vote: false,
            },
        ));
        if c.role() == Role::Leader {
            break;
        }
    }
    assert_eq!(c.role(), Role::Leader);
    let done = complete_persists(&mut c, &acts);
    acts.extend(done);
    (c, acts)
}

/// Fires the currently armed election timer.
pub fn fire_election(core: &mut RaftCore) -> Vec<Action> {
    let epoch = core.election_epoch();
    core.step(Event::ElectionTimeout { epoch })
}
