//! Rule tests of the pure core: set up a state, feed one event, check the exact effect.
//! Each test is named after the rule of the Raft paper (§) or dissertation it checks.

use crate::support::core_harness as harness;
use crate::support::msg;

use bytes::Bytes;
use harness::*;
use raftix::core::{Action, EntryPayload, Event, HardState, LogId, Message, RaftCore, Role};

fn hs(term: u64, voted_for: Option<u64>) -> HardState {
    HardState { term, voted_for }
}

/// Leader 1 of a 3-node cluster (term 2) whose no-op at index 2 node 2 has acknowledged, so it
/// is committed; returns the core and its term.
fn leader_with_noop_acked_by_2() -> (RaftCore, u64) {
    let (mut c, _) = leader(3, 1, &[1]);
    let term = c.term();
    ack_append(&mut c, 2, term, 2);
    (c, term)
}

/// Asserts that `actions` send exactly two messages (one per peer of a 3-node cluster), both
/// equal to `expected`.
fn assert_sent_to_both_peers(actions: &[Action], expected: Message) {
    let out = sent(actions);
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|e| e.msg == expected), "{out:?}");
}

// ----- §5.1 terms -----

#[test]
fn follower_rejects_append_with_stale_term_and_reports_its_term() {
    let mut c = core(2, 3, hs(5, None), &[1, 5], true);
    let acts = recv(
        &mut c,
        1,
        msg::append_request(4, LogId::new(5, 2), vec![cmd(4, 3, "x")], 0),
    );
    assert_eq!(
        c.log().last_index(),
        2,
        "stale leader's entries must not be stored"
    );
    let out = sent(&acts);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].msg, msg::heartbeat_response(5, 0, 0));
}

#[test]
fn higher_term_in_any_message_turns_leader_into_follower() {
    let (mut c, _) = leader(3, 1, &[1]);
    assert_eq!(c.term(), 2);
    recv(&mut c, 3, msg::heartbeat_response(7, 0, 0));
    assert_eq!(c.role(), Role::Follower);
    assert_eq!(c.term(), 7);
    assert_eq!(c.voted_for(), None);
}

// ----- §5.2 elections -----

#[test]
fn vote_granted_at_most_once_per_term() {
    let mut c = core(3, 3, hs(1, None), &[1], false);
    let a = recv(&mut c, 1, msg::vote_request(2, LogId::new(1, 1), false));
    let a = [a.clone(), complete_persists(&mut c, &a)].concat();
    assert!(sent(&a)
        .iter()
        .any(|e| e.msg == msg::vote_response(2, true, false)));
    let b = recv(&mut c, 2, msg::vote_request(2, LogId::new(1, 1), false));
    assert_eq!(sent(&b)[0].msg, msg::vote_response(2, false, false));
    assert_eq!(c.voted_for(), Some(1));
}

#[test]
fn vote_rejected_when_candidate_log_is_less_up_to_date() {
    // §5.4.1: compare last terms first, then lengths.
    let mut c = core(3, 3, hs(3, None), &[1, 3], false);
    let a = recv(&mut c, 1, msg::vote_request(4, LogId::new(2, 9), false));
    let a = [a.clone(), complete_persists(&mut c, &a)].concat();
    assert!(sent(&a)
        .iter()
        .all(|e| e.msg != msg::vote_response(4, true, false)));
    let b = recv(&mut c, 2, msg::vote_request(4, LogId::new(3, 1), false));
    let b = [b.clone(), complete_persists(&mut c, &b)].concat();
    assert!(sent(&b)
        .iter()
        .all(|e| !matches!(e.msg, Message::VoteResponse { granted: true, .. })));
    assert_eq!(c.voted_for(), None);
}

#[test]
fn vote_is_persisted_before_it_is_granted() {
    let mut c = core(3, 3, hs(1, None), &[1], false);
    let a = recv(&mut c, 1, msg::vote_request(2, LogId::new(1, 1), false));
    assert!(
        sent(&a).is_empty(),
        "the grant must wait for the fsync of the vote"
    );
    let p = persists(&a);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].1, Some(hs(2, Some(1))));
    let b = c.step(Event::Persisted { io_seq: p[0].0 });
    assert_eq!(sent(&b)[0].msg, msg::vote_response(2, true, false));
}

#[test]
fn candidate_requests_votes_only_after_persisting_its_own_vote() {
    let mut c = core(1, 3, hs(1, None), &[1], false);
    let a = fire_election(&mut c);
    assert_eq!(c.role(), Role::Candidate);
    assert_eq!(c.term(), 2);
    assert!(sent(&a).is_empty());
    assert_eq!(persists(&a)[0].1, Some(hs(2, Some(1))));
    let b = complete_persists(&mut c, &a);
    assert_sent_to_both_peers(&b, msg::vote_request(2, LogId::new(1, 1), false));
}

#[test]
fn candidate_with_majority_becomes_leader() {
    let (c, _) = leader(5, 1, &[1]);
    assert_eq!(c.role(), Role::Leader);
    assert_eq!(c.leader(), Some(1));
}

#[test]
fn candidate_rejected_by_majority_returns_to_follower() {
    let mut c = core(1, 3, hs(1, None), &[1], false);
    let a = fire_election(&mut c);
    complete_persists(&mut c, &a);
    recv(&mut c, 2, msg::vote_response(2, false, false));
    recv(&mut c, 3, msg::vote_response(2, false, false));
    assert_eq!(c.role(), Role::Follower);
    assert_eq!(c.term(), 2);
}

#[test]
fn stale_election_timeout_epoch_is_ignored() {
    let mut c = core(1, 3, hs(1, None), &[1], false);
    let stale = c.election_epoch();
    recv(&mut c, 2, msg::heartbeat(1, 0, 0, 0)); // re-arms
    assert!(c.election_epoch() > stale);
    c.step(Event::ElectionTimeout { epoch: stale });
    assert_eq!(
        c.role(),
        Role::Follower,
        "a cancelled timer that fired late must not start an election"
    );
    assert_eq!(c.term(), 1);
}

#[test]
fn single_node_cluster_elects_itself_and_commits() {
    let mut c = core(1, 1, hs(0, None), &[], true);
    let a = fire_election(&mut c);
    assert_eq!(c.role(), Role::Leader);
    let b = complete_persists(&mut c, &a);
    assert_eq!(c.commit_index(), 1);
    assert_eq!(applied(&b).len(), 1);
}

// ----- §9.6 pre-vote and §6.2 check-quorum -----

#[test]
fn pre_vote_does_not_change_term_or_vote() {
    let mut c = core(1, 3, hs(4, Some(2)), &[1], true);
    let a = fire_election(&mut c);
    assert_eq!(c.role(), Role::PreCandidate);
    assert_eq!(c.term(), 4);
    assert_eq!(c.voted_for(), Some(2));
    assert!(persists(&a).is_empty());
    assert_sent_to_both_peers(&a, msg::vote_request(5, LogId::new(1, 1), true));
}

#[test]
fn pre_candidate_with_pre_vote_quorum_starts_real_election() {
    let mut c = core(1, 3, hs(4, None), &[1], true);
    fire_election(&mut c);
    let a = recv(&mut c, 2, msg::vote_response(5, true, true));
    assert_eq!(c.role(), Role::Candidate);
    assert_eq!(c.term(), 5);
    assert_eq!(persists(&a)[0].1, Some(hs(5, Some(1))));
}

#[test]
fn pre_vote_is_granted_without_changing_the_voter() {
    let mut c = core(2, 3, hs(3, Some(3)), &[1], true);
    let a = recv(&mut c, 1, msg::vote_request(4, LogId::new(1, 1), true));
    assert_eq!(sent(&a)[0].msg, msg::vote_response(4, true, true));
    assert_eq!(c.term(), 3);
    assert_eq!(c.voted_for(), Some(3));
    assert!(persists(&a).is_empty());
}

#[test]
fn node_hearing_from_leader_ignores_disruptive_vote_requests() {
    // A node rejoining from a partition with a higher term must not depose a healthy leader.
    let mut c = core(2, 3, hs(3, None), &[1], true);
    recv(&mut c, 1, msg::heartbeat(3, 0, 0, 0));
    assert_eq!(c.leader(), Some(1));
    for pre_vote in [true, false] {
        let a = recv(
            &mut c,
            3,
            Message::VoteRequest {
                term: 9,
                last_log: LogId::new(9, 9),
                pre_vote,
                transfer: false,
            },
        );
        assert!(sent(&a).is_empty());
        assert_eq!(c.term(), 3);
        assert_eq!(c.leader(), Some(1));
    }
}

#[test]
fn follower_considers_votes_again_once_its_leaders_lease_expired() {
    // etcd's lease: after the minimum election timeout without hearing from the leader, a
    // follower grants (pre-)votes again, so the first node to time out can win at once.
    let mut c = core(2, 3, hs(3, None), &[1], true);
    recv(&mut c, 1, msg::heartbeat(3, 0, 0, 0));
    let a = recv(&mut c, 3, msg::vote_request(4, LogId::new(1, 1), true));
    assert!(sent(&a).is_empty(), "in lease: ignored");
    let stale = c.election_epoch() - 1;
    c.step(Event::LeaseExpired { epoch: stale });
    let a = recv(&mut c, 3, msg::vote_request(4, LogId::new(1, 1), true));
    assert!(sent(&a).is_empty(), "a stale lease expiry changes nothing");
    let epoch = c.election_epoch();
    c.step(Event::LeaseExpired { epoch });
    let a = recv(&mut c, 3, msg::vote_request(4, LogId::new(1, 1), true));
    assert_eq!(sent(&a)[0].msg, msg::vote_response(4, true, true));
    // Hearing from the leader again renews the lease.
    recv(&mut c, 1, msg::heartbeat(3, 0, 0, 0));
    let a = recv(&mut c, 3, msg::vote_request(4, LogId::new(1, 1), true));
    assert!(sent(&a).is_empty());
}

#[test]
fn check_quorum_leader_without_quorum_contact_steps_down() {
    let (mut c, _) = leader(5, 1, &[1]);
    recv(&mut c, 2, msg::heartbeat_response(2, 0, 0));
    fire_election(&mut c); // first check: only 2 of 5 active
    assert_eq!(c.role(), Role::Follower);
    assert_eq!(c.term(), 2, "stepping down does not change the term");
    assert_eq!(c.leader(), None);
}

#[test]
fn check_quorum_leader_with_quorum_contact_stays() {
    let (mut c, _) = leader(3, 1, &[1]);
    recv(&mut c, 2, msg::heartbeat_response(2, 0, 0));
    fire_election(&mut c);
    assert_eq!(c.role(), Role::Leader);
    // Activity is reset each round: silence in the next round means stepping down.
    fire_election(&mut c);
    assert_eq!(c.role(), Role::Follower);
}

// ----- §5.3 log replication -----

#[test]
fn follower_rejects_append_when_prev_does_not_match_with_conflict_hint() {
    let mut c = core(2, 3, hs(6, None), &[1, 1, 2, 2, 2], true);
    let a = recv(
        &mut c,
        1,
        msg::append_request(6, LogId::new(5, 5), vec![], 0),
    );
    let out = sent(&a);
    assert_eq!(out[0].msg, msg::append_conflict(6, 5, LogId::new(2, 5)));
}

#[test]
fn follower_truncates_conflicting_uncommitted_entries_and_appends() {
    let mut c = core(2, 3, hs(3, None), &[1, 2, 2], true);
    let a = recv(
        &mut c,
        1,
        msg::append_request(
            3,
            LogId::new(1, 1),
            vec![cmd(3, 2, "a"), cmd(3, 3, "b"), cmd(3, 4, "c")],
            1,
        ),
    );
    let p = persists(&a);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].2, Some(2), "truncate from the first conflicting index");
    assert_eq!(p[0].3.len(), 3);
    assert_eq!(c.last_log_id(), LogId::new(3, 4));
    assert!(sent(&a).is_empty(), "acknowledgement waits for durability");
    let b = complete_persists(&mut c, &a);
    assert_eq!(sent(&b)[0].msg, msg::append_success(3, 4));
}

#[test]
fn a_heartbeat_is_answered_while_entries_are_still_being_persisted() {
    // Node 2 took entries 2..=3 at term 3; their fsync has not completed.
    let mut c = core(2, 3, hs(3, None), &[1], true);
    let a = recv(
        &mut c,
        1,
        msg::append_request(3, LogId::new(1, 1), vec![cmd(3, 2, "a"), cmd(3, 3, "b")], 1),
    );
    assert!(
        sent(&a).is_empty(),
        "the append's answer waits for its fsync"
    );
    let b = recv(&mut c, 1, msg::heartbeat(3, 1, 7, 1));
    assert_eq!(
        sent(&b).iter().map(|e| e.msg.clone()).collect::<Vec<_>>(),
        vec![msg::heartbeat_response(3, 7, 0)],
        "a heartbeat's answer asserts only the (durable) term: it does not wait for the entries"
    );
    let done = complete_persists(&mut c, &a);
    assert_eq!(sent(&done)[0].msg, msg::append_success(3, 3));
}

#[test]
fn a_heartbeat_answer_after_a_term_change_waits_for_the_term_to_be_durable() {
    let mut c = core(2, 3, hs(2, None), &[1], true);
    let a = recv(&mut c, 1, msg::heartbeat(3, 1, 8, 1));
    assert!(
        sent(&a).is_empty(),
        "the new term must be durable before the answer claims it"
    );
    let b = complete_persists(&mut c, &a);
    assert_eq!(sent(&b)[0].msg, msg::heartbeat_response(3, 8, 0));
}

#[test]
fn follower_never_truncates_committed_entries() {
    let mut c = core(2, 3, hs(3, None), &[1, 1], true);
    recv(&mut c, 1, msg::heartbeat(3, 2, 0, 0));
    assert_eq!(c.commit_index(), 2);
    // A (buggy or forged) request whose prev is below commit gets "matched up to commit".
    let a = recv(
        &mut c,
        1,
        msg::append_request(3, LogId::new(1, 1), vec![cmd(3, 2, "x")], 2),
    );
    assert_eq!(c.log().term_at(2), Some(1));
    assert_eq!(sent(&a)[0].msg, msg::append_success(3, 2));
}

#[test]
fn follower_commit_is_bounded_by_entries_known_to_match() {
    let mut c = core(2, 3, hs(3, None), &[1, 1, 1, 1], true);
    recv(
        &mut c,
        1,
        msg::append_request(3, LogId::new(1, 2), vec![], 4),
    );
    assert_eq!(
        c.commit_index(),
        2,
        "entries 3..4 were not checked against the leader's log"
    );
}

#[test]
fn new_leader_appends_noop_of_its_term_first() {
    let (c, acts) = leader(3, 2, &[1, 2]);
    assert_eq!(c.term(), 3);
    let entry = c.log().get(3).cloned();
    assert_eq!(
        entry.map(|e| (e.term, e.payload)),
        Some((3, EntryPayload::Noop))
    );
    assert!(persists(&acts)
        .iter()
        .any(|p| p.3.iter().any(|e| e.index == 3 && e.term == 3)));
}

#[test]
fn leader_sends_appends_before_its_own_fsync_but_counts_itself_only_when_durable() {
    let (mut c, _) = leader(3, 1, &[1]);
    let term = c.term();
    // The followers accept the no-op.
    ack_append(&mut c, 2, term, 2);
    assert_eq!(c.commit_index(), 2);
    let (ids, a) = c.propose(vec![Bytes::from_static(b"v")]).expect("leader");
    assert_eq!(ids, vec![LogId::new(term, 3)]);
    assert!(
        sent(&a).iter().any(
            |e| matches!(&e.msg, Message::AppendRequest { entries, .. } if entries.len() == 1)
        ),
        "replication must not wait for the leader's disk"
    );
    // One follower holds entry 3 but the leader's own copy is not durable yet: no quorum.
    ack_append(&mut c, 3, term, 3);
    assert_eq!(c.commit_index(), 2);
    complete_persists(&mut c, &a);
    assert_eq!(
        c.commit_index(),
        3,
        "leader's durable copy plus follower 3 make a quorum"
    );
}

#[test]
fn leader_does_not_commit_without_its_own_durable_copy() {
    let (mut c, _) = leader(3, 1, &[1]);
    let term = c.term();
    let (_, a) = c.propose(vec![Bytes::from_static(b"v")]).expect("leader");
    ack_append(&mut c, 2, term, 3);
    assert!(
        c.commit_index() < 3,
        "follower 2 alone is not a quorum of 3"
    );
    complete_persists(&mut c, &a);
    assert_eq!(c.commit_index(), 3);
}

#[test]
fn leader_commits_previous_term_entries_only_through_a_current_term_entry() {
    // Figure 8: an entry from term 2 stored on a majority is not committed by counting.
    let (mut c, _) = leader(5, 3, &[1, 2]);
    let term = c.term();
    assert_eq!(term, 4);
    for peer in [2, 3] {
        ack_append(&mut c, peer, term, 2);
    }
    assert_eq!(
        c.commit_index(),
        0,
        "index 2 (term 2) is on 3 of 5 nodes but must not commit"
    );
    ack_append(&mut c, 2, term, 3);
    ack_append(&mut c, 3, term, 3);
    assert_eq!(
        c.commit_index(),
        3,
        "the no-op of term 4 commits, and with it index 2"
    );
}

#[test]
fn leader_backs_off_a_whole_term_per_rejection() {
    let (mut c, _) = leader(3, 5, &[1, 1, 1, 4, 4, 5, 5, 5]);
    let term = c.term();
    // Follower 2 holds 1,1,1,2,2,2,2,2: it rejects the probe at prev (5, 8) with hint (2, 8).
    let a = recv(&mut c, 2, msg::append_conflict(term, 8, LogId::new(2, 8)));
    let next = sent(&a).into_iter().find_map(|e| match e.msg {
        Message::AppendRequest { prev, .. } if e.to == 2 => Some(prev),
        _ => None,
    });
    assert_eq!(
        next,
        Some(LogId::new(1, 3)),
        "skip straight past the follower's term-2 entries"
    );
}

#[test]
fn leader_pipelines_up_to_the_inflight_window() {
    let (mut c, _) = leader_with_noop_acked_by_2();
    let max_inflight = c.config().max_inflight;
    let mut appends_to_2 = 0;
    for i in 0..(max_inflight + 10) {
        let (_, a) = c
            .propose(vec![Bytes::from(format!("v{i}"))])
            .expect("leader");
        appends_to_2 += sent(&a)
            .iter()
            .filter(|e| e.to == 2 && matches!(e.msg, Message::AppendRequest { .. }))
            .count();
    }
    assert_eq!(
        appends_to_2, max_inflight,
        "no more than the window may be in flight"
    );
}

#[test]
fn committed_entries_are_applied_in_order_exactly_once() {
    let mut c = core(2, 3, hs(2, None), &[1], true);
    let a = recv(
        &mut c,
        1,
        msg::append_request(2, LogId::new(1, 1), vec![cmd(2, 2, "a"), cmd(2, 3, "b")], 3),
    );
    let first: Vec<u64> = applied(&a).iter().map(|e| e.index).collect();
    assert_eq!(
        first,
        vec![1],
        "entries 2..3 are not applied before they are durable here"
    );
    let b = complete_persists(&mut c, &a);
    let got: Vec<u64> = applied(&b).iter().map(|e| e.index).collect();
    assert_eq!(got, vec![2, 3]);
    let again = recv(&mut c, 1, msg::heartbeat(2, 3, 0, 0));
    assert!(applied(&again).is_empty());
}

#[test]
fn proposal_on_follower_names_the_leader() {
    let mut c = core(2, 3, hs(2, None), &[1], true);
    recv(&mut c, 3, msg::heartbeat(2, 0, 0, 0));
    let err = c
        .propose(vec![Bytes::from_static(b"x")])
        .expect_err("not leader");
    assert_eq!(err.leader, Some(3));
}

#[test]
fn a_leader_missing_from_this_nodes_configuration_is_followed() {
    // Dissertation §4.1: a node that has not yet received the configuration adding a server
    // must still accept that server as leader, or it could never catch up.
    let mut c = core(2, 3, hs(2, None), &[1], true);
    let a = recv(&mut c, 9, msg::heartbeat(50, 0, 0, 0));
    let a = complete_persists(&mut c, &a);
    assert_eq!(c.term(), 50);
    assert_eq!(c.leader(), Some(9));
    assert!(sent(&a).iter().any(|e| e.to == 9));
}

// ----- §6.4 of the dissertation: ReadIndex -----

fn ready_reads(actions: &[Action]) -> Vec<(u64, u64)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ReadReady { id, index } => Some((*id, *index)),
            _ => None,
        })
        .collect()
}

fn read_round_heartbeats(actions: &[Action]) -> Vec<(u64, u64)> {
    sent(actions)
        .into_iter()
        .filter_map(|e| match e.msg {
            Message::Heartbeat { ctx, .. } if ctx > 0 => Some((e.to, ctx)),
            _ => None,
        })
        .collect()
}

#[test]
fn new_leader_serves_no_read_before_its_noop_commits() {
    let (mut c, _) = leader(3, 1, &[1]);
    let term = c.term();
    let a = c.read_index(vec![7]).expect("leader");
    assert!(ready_reads(&a).is_empty());
    assert!(
        read_round_heartbeats(&a).is_empty(),
        "no round before the no-op commits"
    );
    // The no-op commits: the read's round starts, at the new commit index.
    let b = ack_append(&mut c, 2, term, 2);
    assert_eq!(c.commit_index(), 2);
    let beats = read_round_heartbeats(&b);
    assert_eq!(beats.len(), 2, "one heartbeat per follower for the round");
    let ctx = beats[0].1;
    let d = recv(
        &mut c,
        3,
        Message::HeartbeatResponse {
            term,
            ctx,
            applied: 0,
        },
    );
    assert_eq!(ready_reads(&d), vec![(7, 2)]);
}

#[test]
fn read_is_confirmed_only_by_a_quorum_answering_its_round() {
    let (mut c, _) = leader(5, 1, &[1]);
    let term = c.term();
    for peer in [2, 3] {
        ack_append(&mut c, peer, term, 2);
    }
    assert_eq!(c.commit_index(), 2);
    let a = c.read_index(vec![1, 2]).expect("leader");
    let beats = read_round_heartbeats(&a);
    assert_eq!(beats.len(), 4);
    let ctx = beats[0].1;
    // Answers to an older round (or plain heartbeats) confirm nothing.
    let stale = recv(
        &mut c,
        2,
        Message::HeartbeatResponse {
            term,
            ctx: ctx - 1,
            applied: 0,
        },
    );
    assert!(ready_reads(&stale).is_empty());
    let one = recv(
        &mut c,
        2,
        Message::HeartbeatResponse {
            term,
            ctx,
            applied: 0,
        },
    );
    assert!(
        ready_reads(&one).is_empty(),
        "leader + 1 of 5 is not a quorum"
    );
    let two = recv(
        &mut c,
        4,
        Message::HeartbeatResponse {
            term,
            ctx,
            applied: 0,
        },
    );
    assert_eq!(
        ready_reads(&two),
        vec![(1, 2), (2, 2)],
        "both reads shared the round"
    );
}

#[test]
fn a_leader_that_steps_down_fails_its_pending_reads() {
    let (mut c, term) = leader_with_noop_acked_by_2();
    c.read_index(vec![9]).expect("leader");
    let a = recv(&mut c, 3, msg::heartbeat_response(term + 1, 0, 0));
    assert_eq!(c.role(), Role::Follower);
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::ReadsFailed { ids } if ids == &vec![9])));
    assert!(
        c.read_index(vec![10]).is_err(),
        "a follower serves no ReadIndex"
    );
}

#[test]
fn single_node_leader_confirms_reads_at_once() {
    let mut c = core(1, 1, hs(0, None), &[], true);
    let a = fire_election(&mut c);
    complete_persists(&mut c, &a);
    assert_eq!(c.commit_index(), 1);
    let r = c.read_index(vec![3]).expect("leader");
    assert_eq!(ready_reads(&r), vec![(3, 1)]);
}

// ----- §3.10 of the dissertation: leadership transfer -----

fn timeout_now_to(actions: &[Action]) -> Vec<u64> {
    sent(actions)
        .into_iter()
        .filter(|e| matches!(e.msg, Message::TimeoutNow { .. }))
        .map(|e| e.to)
        .collect()
}

#[test]
fn a_leader_whose_own_write_is_not_durable_still_sends_timeout_now() {
    // The leader's disk refuses writes: its persist of index 3 never completes, but node 2
    // holds the entry. The transfer must not wait for the leader's disk.
    let (mut c, term) = leader_with_noop_acked_by_2();
    c.propose(vec![Bytes::from_static(b"x")]).expect("leader");
    ack_append(&mut c, 2, term, 3);
    let (_, a) = c.transfer_leader(Some(2)).expect("leader");
    assert_eq!(
        timeout_now_to(&a),
        vec![2],
        "TimeoutNow asserts nothing about the leader's disk: it is not held back"
    );
}

#[test]
fn transfer_to_an_up_to_date_follower_sends_timeout_now_and_refuses_writes() {
    let (mut c, _) = leader_with_noop_acked_by_2();
    let (target, a) = c.transfer_leader(Some(2)).expect("leader");
    assert_eq!(target, 2);
    assert_eq!(timeout_now_to(&a), vec![2]);
    assert_eq!(c.transferring_to(), Some(2));
    let refused = c
        .propose(vec![Bytes::from_static(b"x")])
        .expect_err("no writes during a transfer");
    assert_eq!(
        refused.leader, None,
        "clients are told to retry, not sent back here"
    );
}

#[test]
fn transfer_to_a_lagging_follower_first_brings_it_up_to_date() {
    let (mut c, _) = leader(3, 1, &[1]);
    let term = c.term();
    let (_, a) = c.transfer_leader(Some(3)).expect("leader");
    assert!(
        timeout_now_to(&a).is_empty(),
        "node 3 does not hold the whole log yet"
    );
    // Node 3 has the election's probe in flight: flow control waits for its answer.
    let b = ack_append(&mut c, 3, term, 2);
    assert_eq!(
        timeout_now_to(&b),
        vec![3],
        "caught up: now it may campaign"
    );
}

#[test]
fn timeout_now_makes_the_target_campaign_and_voters_in_lease_grant_it() {
    // Node 2 follows leader 1 and gets TimeoutNow: it campaigns at once, without pre-vote.
    let mut target = core(2, 3, hs(3, None), &[1], true);
    recv(&mut target, 1, msg::heartbeat(3, 0, 0, 0));
    let a = recv(&mut target, 1, Message::TimeoutNow { term: 3 });
    assert_eq!(target.role(), Role::Candidate);
    assert_eq!(target.term(), 4);
    let b = complete_persists(&mut target, &a);
    let requests = sent(&b);
    assert!(!requests.is_empty());
    assert!(requests
        .iter()
        .all(|e| e.msg == msg::vote_request_transfer(4, LogId::new(1, 1), false, true)));
    // Node 3 still hears from leader 1 (in lease) yet grants the transfer campaign.
    let mut voter = core(3, 3, hs(3, None), &[1], true);
    recv(&mut voter, 1, msg::heartbeat(3, 0, 0, 0));
    let v = recv(
        &mut voter,
        2,
        msg::vote_request_transfer(4, LogId::new(1, 1), false, true),
    );
    let v = [v.clone(), complete_persists(&mut voter, &v)].concat();
    assert!(sent(&v)
        .iter()
        .any(|e| e.msg == msg::vote_response(4, true, false)));
    // TimeoutNow from anyone but the known leader is ignored.
    let mut other = core(2, 3, hs(3, None), &[1], true);
    recv(&mut other, 1, msg::heartbeat(3, 0, 0, 0));
    recv(&mut other, 3, Message::TimeoutNow { term: 3 });
    assert_eq!(other.role(), Role::Follower);
}

#[test]
fn a_stalled_transfer_is_abandoned_after_an_election_timeout() {
    let (mut c, _) = leader(3, 1, &[1]);
    let term = c.term();
    c.transfer_leader(Some(3)).expect("leader");
    recv(
        &mut c,
        2,
        Message::HeartbeatResponse {
            term,
            ctx: 0,
            applied: 0,
        },
    ); // keep a quorum
    fire_election(&mut c);
    assert_eq!(c.role(), Role::Leader);
    assert_eq!(c.transferring_to(), None);
    assert!(
        c.propose(vec![Bytes::from_static(b"x")]).is_ok(),
        "writes resume"
    );
}

#[test]
fn transfer_without_a_target_picks_the_most_up_to_date_voter() {
    let (mut c, _) = leader(3, 1, &[1, 1]);
    let term = c.term();
    ack_append(&mut c, 2, term, 1);
    ack_append(&mut c, 3, term, 3);
    let (target, _) = c.transfer_leader(None).expect("leader");
    assert_eq!(target, 3);
    assert_eq!(
        c.transfer_leader(Some(9)).map(|(t, _)| t),
        Err(raftix::core::TransferError::UnknownTarget(9))
    );
}
