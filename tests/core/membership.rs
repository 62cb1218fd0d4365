//! Rules of membership changes and snapshots in the pure core (dissertation §4 and §7), one
//! hand-driven core at a time.

use crate::support::core_harness as harness;
use crate::support::msg;

use harness::*;
use raftix::core::{
    Action, AppendOutcome, ChangeError, ConfigChange, Entry, EntryPayload, Event, HardState, LogId,
    Membership, Message, NodeId, RaftCore, Role, SnapshotMeta,
};

/// Acknowledges everything up to the leader's last index from `peers` (append responses).
fn ack_all(c: &mut RaftCore, peers: &[u64]) -> Vec<Action> {
    let term = c.term();
    let last = c.last_log_id().index;
    let mut acts = Vec::new();
    for &p in peers {
        acts.extend(ack_append(c, p, term, last));
    }
    acts
}

fn membership_changes(actions: &[Action]) -> Vec<Membership> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::MembershipChanged { membership } => Some(membership.clone()),
            _ => None,
        })
        .collect()
}

/// Leader 1 of voters {1,2,3} whose no-op is committed.
fn settled_leader() -> RaftCore {
    let (mut c, acts) = leader(3, 0, &[]);
    complete_persists(&mut c, &acts);
    ack_all(&mut c, &[2, 3]);
    assert_eq!(c.commit_index(), c.last_log_id().index);
    c
}

/// Node 2 of voters {1,2,3} in `term`, no vote cast, with log `terms` (entry `i + 1` of term
/// `terms[i]`) and pre-vote as given.
fn follower_2(term: u64, terms: &[u64], pre_vote: bool) -> RaftCore {
    let hard = HardState {
        term,
        voted_for: None,
    };
    core(2, 3, hard, terms, pre_vote)
}

/// Meta of a snapshot of voters {1,2,3} up to `last`.
fn snapshot_meta(last: LogId) -> SnapshotMeta {
    SnapshotMeta {
        last,
        membership: Membership::with_voters([1, 2, 3]),
    }
}

/// `c` receives, whole, node 1's snapshot `meta` sent in `term`.
fn receive_snapshot(c: &mut RaftCore, term: u64, meta: SnapshotMeta) -> Vec<Action> {
    c.step(Event::SnapshotReceived {
        from: 1,
        term,
        meta,
    })
}

/// `AddLearner` of node `id`, at address `h:<id>`.
fn add_learner(id: NodeId) -> ConfigChange {
    ConfigChange::AddLearner {
        id,
        addr: format!("h:{id}"),
    }
}

/// Proposes `change` on the leader `c`, expects it accepted and makes the leader's own copy
/// durable; returns the id of its entry (`None` when the change needed none). No follower has
/// acknowledged it yet.
fn change_durably(c: &mut RaftCore, change: ConfigChange) -> Option<LogId> {
    let (id, acts) = c.propose_change(change).expect("change accepted");
    complete_persists(c, &acts);
    id
}

/// Proposes one command on the leader `c` and makes the leader's own copy durable; returns its
/// id. No follower has acknowledged it yet.
fn propose_durably(c: &mut RaftCore) -> LogId {
    let (ids, acts) = c.propose(vec!["x".into()]).expect("leader");
    complete_persists(c, &acts);
    ids[0]
}

/// [`settled_leader`] with node 4 added as a learner, the change acknowledged by voters 2 and 3.
fn settled_leader_with_learner_4() -> RaftCore {
    let mut c = settled_leader();
    change_durably(&mut c, add_learner(4));
    ack_all(&mut c, &[2, 3]);
    c
}

#[test]
fn a_change_waits_for_the_leaders_first_entry_and_for_the_previous_change() {
    let (mut c, acts) = leader(3, 0, &[]);
    complete_persists(&mut c, &acts);
    let add = add_learner(4);
    assert_eq!(
        c.propose_change(add.clone()).err(),
        Some(ChangeError::InProgress),
        "before the no-op of its term commits"
    );
    ack_all(&mut c, &[2, 3]);
    let (id, acts) = c.propose_change(add).expect("accepted");
    let id = id.expect("a new entry");
    assert!(membership_changes(&acts)
        .iter()
        .any(|m| m.learners.contains(&4)));
    assert!(
        c.membership().learners.contains(&4),
        "in force once appended"
    );
    let again = c.propose_change(ConfigChange::Promote { id: 4 });
    assert!(
        matches!(again, Err(ChangeError::InProgress)),
        "{again:?}: one change at a time"
    );
    complete_persists(&mut c, &acts);
    ack_all(&mut c, &[2, 3]);
    assert!(c.commit_index() >= id.index);
    assert!(c.propose_change(ConfigChange::Remove { id: 4 }).is_ok());
}

#[test]
fn learners_never_count_for_commit() {
    let mut c = settled_leader_with_learner_4();
    let id = propose_durably(&mut c);
    // The leader and the learner hold it: 2 of 4 nodes but only 1 of 3 voters.
    ack_all(&mut c, &[4]);
    assert!(c.commit_index() < id.index, "a learner counted for quorum");
    ack_all(&mut c, &[2]);
    assert!(c.commit_index() >= id.index);
}

#[test]
fn a_learner_far_behind_is_not_promoted() {
    let mut c = settled_leader_with_learner_4();
    for _ in 0..600 {
        propose_durably(&mut c);
    }
    ack_all(&mut c, &[2, 3]);
    let refused = c.propose_change(ConfigChange::Promote { id: 4 });
    assert!(
        matches!(refused, Err(ChangeError::NotCaughtUp { id: 4, .. })),
        "{refused:?}"
    );
    ack_all(&mut c, &[4]);
    assert!(c.propose_change(ConfigChange::Promote { id: 4 }).is_ok());
    assert!(c.membership().voters.contains(&4));
}

#[test]
fn the_last_voter_cannot_be_removed_and_unknown_nodes_are_reported() {
    let (mut c, acts) = leader(1, 0, &[]);
    complete_persists(&mut c, &acts);
    assert_eq!(
        c.propose_change(ConfigChange::Remove { id: 1 }).err(),
        Some(ChangeError::LastVoter)
    );
    assert_eq!(
        c.propose_change(ConfigChange::Promote { id: 7 }).err(),
        Some(ChangeError::UnknownNode(7))
    );
    let (id, _) = c
        .propose_change(ConfigChange::Remove { id: 7 })
        .expect("removing a non-member is a no-op");
    assert_eq!(id, None);
}

#[test]
fn a_removed_leader_steps_down_once_the_change_commits_and_hands_over() {
    let mut c = settled_leader();
    let id = change_durably(&mut c, ConfigChange::Remove { id: 1 }).expect("entry");
    assert_eq!(c.role(), Role::Leader, "leads until the removal commits");
    // Only the remaining voters {2, 3} count now: the leader's own copy does not.
    let term = c.term();
    ack_append(&mut c, 2, term, id.index);
    assert!(
        c.commit_index() < id.index,
        "the removed leader counted itself"
    );
    let acts = ack_append(&mut c, 3, term, id.index);
    assert!(c.commit_index() >= id.index);
    assert_eq!(c.role(), Role::Follower, "steps down after the commit");
    assert!(sent(&acts)
        .iter()
        .any(|e| matches!(e.msg, Message::TimeoutNow { .. })));
    // A node outside the configuration never campaigns.
    let acts = fire_election(&mut c);
    assert!(sent(&acts).is_empty());
    assert_eq!(c.role(), Role::Follower);
}

#[test]
fn a_configuration_takes_effect_when_appended_and_reverts_when_truncated() {
    let mut c = follower_2(1, &[1], true);
    let with_4 = Membership {
        voters: [1, 2, 3].into(),
        learners: [4].into(),
        addrs: [(4, "h:4".to_string())].into(),
        removed: Default::default(),
    };
    let config = Entry {
        term: 1,
        index: 2,
        payload: EntryPayload::Config(with_4.clone()),
    };
    let acts = recv(
        &mut c,
        1,
        msg::append_request(1, LogId::new(1, 1), vec![config], 1),
    );
    assert_eq!(membership_changes(&acts), vec![with_4.clone()]);
    assert_eq!(c.membership(), &with_4);
    // A new leader of term 2 overwrites the uncommitted configuration entry.
    let acts = recv(
        &mut c,
        3,
        msg::append_request(2, LogId::new(1, 1), vec![cmd(2, 2, "x")], 1),
    );
    assert_eq!(c.membership().learners.len(), 0, "reverted");
    assert_eq!(membership_changes(&acts).len(), 1);
}

#[test]
fn a_follower_behind_the_compacted_log_is_sent_a_snapshot_and_waits_for_it() {
    let mut c = settled_leader();
    for _ in 0..5 {
        propose_durably(&mut c);
        ack_all(&mut c, &[2]);
    }
    let last = c.last_log_id();
    let base = c.compact(last.index - 1).expect("compacted");
    assert_eq!(base.index, last.index - 1);
    // Follower 3 (which lost everything after index 1) rejects an append: the entries it
    // needs were compacted away, so the leader needs a snapshot for it.
    let term = c.term();
    let acts = recv(
        &mut c,
        3,
        msg::append_conflict(term, last.index - 1, LogId::new(0, 0)),
    );
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::SendSnapshot { to: 3 })));
    // While it streams, heartbeat answers send no entries to 3.
    let acts = recv(
        &mut c,
        3,
        Message::HeartbeatResponse {
            term,
            ctx: 0,
            applied: 0,
        },
    );
    assert!(!sent(&acts)
        .iter()
        .any(|e| matches!(e.msg, Message::AppendRequest { .. })));
    c.step(Event::SnapshotSent {
        to: 3,
        last: Some(base),
    });
    let acts = ack_append(&mut c, 3, term, base.index);
    let appends: Vec<_> = sent(&acts)
        .into_iter()
        .filter(
            |e| matches!(&e.msg, Message::AppendRequest { prev, .. } if prev.index == base.index),
        )
        .collect();
    assert!(!appends.is_empty(), "continues from the snapshot: {acts:?}");
}

#[test]
fn an_installed_snapshot_replaces_the_log_and_is_restored_before_anything_is_applied() {
    let mut c = follower_2(1, &[1, 1], true);
    let meta = snapshot_meta(LogId::new(2, 10));
    let acts = receive_snapshot(&mut c, 2, meta.clone());
    let install = acts.iter().find_map(|a| match a {
        Action::Persist { install, .. } => install.clone(),
        _ => None,
    });
    assert_eq!(install, Some(meta.clone()));
    assert!(
        sent(&acts).is_empty(),
        "the answer waits until the install is durable"
    );
    assert_eq!(c.last_log_id(), meta.last);
    assert_eq!(c.commit_index(), 10);
    let acts = complete_persists(&mut c, &acts);
    assert!(matches!(acts.first(), Some(Action::Restore { meta: m }) if *m == meta));
    assert!(
        applied(&acts).is_empty(),
        "nothing below the snapshot is applied"
    );
    assert!(sent(&acts).iter().any(|e| matches!(
        e.msg,
        Message::AppendResponse {
            outcome: AppendOutcome::Success { match_index: 10 },
            ..
        }
    )));
    // Entries after the snapshot append and apply normally.
    let acts = recv(
        &mut c,
        1,
        msg::append_request(2, meta.last, vec![cmd(2, 11, "y")], 11),
    );
    let acts = complete_persists(&mut c, &acts);
    assert_eq!(
        applied(&acts).iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![11]
    );
}

#[test]
fn a_snapshot_the_log_already_covers_is_not_installed() {
    let mut c = follower_2(1, &[1, 1, 1], true);
    let acts = receive_snapshot(&mut c, 1, snapshot_meta(LogId::new(1, 2)));
    assert!(acts.iter().all(|a| !matches!(
        a,
        Action::Persist {
            install: Some(_),
            ..
        }
    )));
    assert_eq!(
        c.last_log_id(),
        LogId::new(1, 3),
        "the entries after it stay"
    );
    assert_eq!(c.commit_index(), 2);
}

#[test]
fn a_snapshot_from_a_stale_leader_is_refused_with_the_current_term() {
    let mut c = follower_2(5, &[1], true);
    let acts = receive_snapshot(&mut c, 3, snapshot_meta(LogId::new(3, 9)));
    assert_eq!(c.last_log_id(), LogId::new(1, 1));
    assert!(sent(&acts).iter().any(|e| e.msg.term() == 5));
}

#[test]
fn compaction_never_drops_unapplied_or_undurable_entries() {
    let mut c = settled_leader();
    let (_, acts) = c.propose(vec!["x".into()]).expect("leader");
    // Not yet durable, not applied: nothing beyond the applied prefix may go.
    let applied_before = c.apply_sent();
    let base = c.compact(100);
    assert!(base.is_none_or(|b| b.index <= applied_before));
    complete_persists(&mut c, &acts);
}

fn vote_request(term: u64, pre_vote: bool) -> Message {
    Message::VoteRequest {
        term,
        last_log: LogId::new(9, 99),
        pre_vote,
        transfer: false,
    }
}

fn heartbeat(term: u64) -> Message {
    Message::Heartbeat {
        term,
        commit: 0,
        ctx: 0,
        leader_commit: 0,
    }
}

/// A configuration entry of term 1 at `index`.
fn config_entry(index: u64, membership: Membership) -> Entry {
    Entry {
        term: 1,
        index,
        payload: EntryPayload::Config(membership),
    }
}

#[test]
fn votes_from_non_voters_are_refused_before_they_touch_the_term() {
    // Voters {1,2,3}: node 4 is a stranger, then a learner.
    let mut c = follower_2(1, &[1], false);
    for pre_vote in [true, false] {
        let acts = recv(&mut c, 4, vote_request(7, pre_vote));
        assert!(
            sent(&acts).is_empty(),
            "no answer to a stranger's vote request"
        );
        assert_eq!(c.term(), 1, "a stranger's vote request moved the term");
    }
    let with_learner = Membership {
        voters: [1, 2, 3].into(),
        learners: [4].into(),
        ..Default::default()
    };
    recv(
        &mut c,
        1,
        msg::append_request(1, LogId::new(1, 1), vec![config_entry(2, with_learner)], 1),
    );
    let acts = recv(&mut c, 4, vote_request(7, false));
    assert!(
        sent(&acts).is_empty(),
        "no answer to a learner's vote request"
    );
    assert_eq!(c.term(), 1, "a learner's vote request moved the term");
    // A voter's request is heard (on a node that has no leader, so no check-quorum lease): it
    // raises the term and gets a vote.
    let mut c = follower_2(1, &[1], false);
    let acts = recv(&mut c, 3, vote_request(7, false));
    assert_eq!(c.term(), 7);
    let acts = complete_persists(&mut c, &acts); // the vote leaves once durable
    assert!(sent(&acts)
        .iter()
        .any(|e| e.to == 3 && matches!(e.msg, Message::VoteResponse { granted: true, .. })));
}

#[test]
fn a_removed_member_is_heard_until_its_removal_commits_then_refused_until_added_back() {
    let mut c = follower_2(1, &[1], false);
    let without_3 = Membership {
        voters: [1, 2].into(),
        removed: [3].into(),
        ..Default::default()
    };
    let append = |entries: Vec<Entry>, prev: LogId, commit: u64| Message::AppendRequest {
        term: 1,
        prev,
        entries,
        commit,
    };
    let removal = config_entry(2, without_3.clone());
    recv(&mut c, 1, append(vec![removal], LogId::new(1, 1), 1));
    assert_eq!(c.membership(), &without_3);
    assert!(!c.is_removed(3), "the removal is not committed yet");
    // Not committed yet: the removed node (a removed leader finishing its change) is heard.
    let stale = heartbeat(1);
    assert!(!c.refuses_sender(3, &stale));
    // The leader commits the removal.
    recv(&mut c, 1, append(vec![], LogId::new(1, 2), 2));
    assert!(c.is_removed(3));
    for msg in [heartbeat(5), vote_request(5, true), vote_request(5, false)] {
        let acts = recv(&mut c, 3, msg);
        assert!(sent(&acts).is_empty(), "answered a removed member");
        assert_eq!(c.term(), 1, "a removed member moved the term");
        assert_eq!(c.leader(), Some(1), "a removed member disturbed the leader");
    }
    // Added back as a learner: heard again (but not for votes).
    let back = Membership {
        voters: [1, 2].into(),
        learners: [3].into(),
        ..Default::default()
    };
    let readd = config_entry(3, back);
    recv(&mut c, 1, append(vec![readd], LogId::new(1, 2), 3));
    assert!(!c.is_removed(3));
    assert!(!c.refuses_sender(3, &heartbeat(1)));
    assert!(c.refuses_sender(3, &vote_request(2, false)));
}

#[test]
fn removing_a_member_records_it_and_adding_it_back_clears_it() {
    let mut c = settled_leader();
    change_durably(&mut c, ConfigChange::Remove { id: 3 });
    assert!(c.membership().removed.contains(&3));
    ack_all(&mut c, &[2]);
    change_durably(&mut c, add_learner(3));
    assert!(!c.membership().removed.contains(&3));
    assert!(c.membership().learners.contains(&3));
}

#[test]
fn a_removed_leader_cut_off_before_its_removal_commits_steps_down_at_check_quorum() {
    let mut c = settled_leader();
    change_durably(&mut c, ConfigChange::Remove { id: 1 });
    assert!(!c.membership().contains(1));
    assert_eq!(c.role(), Role::Leader, "leads until the removal commits");
    // Nobody answers for a whole election timeout (the first check still sees the answers that
    // settled it): check-quorum applies to it as to any leader, and it does not count itself,
    // not being a voter of the configuration in force.
    fire_election(&mut c);
    assert_eq!(c.role(), Role::Leader);
    fire_election(&mut c);
    assert_ne!(
        c.role(),
        Role::Leader,
        "a cut-off removed leader kept leading"
    );
}
