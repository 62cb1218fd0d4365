//! Builders of core messages, so a test states a message in one line with its fields in the
//! order the core declares them (`raftix::core::Message`).

use raftix::core::{AppendOutcome, Entry, Index, LogId, Message, Term};

/// `VoteRequest` (not a leadership transfer).
pub fn vote_request(term: Term, last_log: LogId, pre_vote: bool) -> Message {
    vote_request_transfer(term, last_log, pre_vote, false)
}

/// `VoteRequest`, saying whether it is a leadership transfer's campaign.
pub fn vote_request_transfer(
    term: Term,
    last_log: LogId,
    pre_vote: bool,
    transfer: bool,
) -> Message {
    Message::VoteRequest {
        term,
        last_log,
        pre_vote,
        transfer,
    }
}

/// `VoteResponse`.
pub fn vote_response(term: Term, granted: bool, pre_vote: bool) -> Message {
    Message::VoteResponse {
        term,
        granted,
        pre_vote,
    }
}

/// `AppendRequest`.
pub fn append_request(term: Term, prev: LogId, entries: Vec<Entry>, commit: Index) -> Message {
    Message::AppendRequest {
        term,
        prev,
        entries,
        commit,
    }
}

/// `AppendResponse`.
pub fn append_response(term: Term, outcome: AppendOutcome) -> Message {
    Message::AppendResponse { term, outcome }
}

/// `AppendResponse` saying the follower's log matches the leader's up to `match_index`.
pub fn append_success(term: Term, match_index: Index) -> Message {
    append_response(term, AppendOutcome::Success { match_index })
}

/// `AppendResponse` rejecting the append at `rejected_prev`, with the follower's `hint` of where
/// its log may match.
pub fn append_conflict(term: Term, rejected_prev: Index, hint: LogId) -> Message {
    append_response(
        term,
        AppendOutcome::Conflict {
            rejected_prev,
            hint,
        },
    )
}

/// `Heartbeat`.
pub fn heartbeat(term: Term, commit: Index, ctx: u64, leader_commit: Index) -> Message {
    Message::Heartbeat {
        term,
        commit,
        ctx,
        leader_commit,
    }
}

/// `HeartbeatResponse`.
pub fn heartbeat_response(term: Term, ctx: u64, applied: Index) -> Message {
    Message::HeartbeatResponse { term, ctx, applied }
}
