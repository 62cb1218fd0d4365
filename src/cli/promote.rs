//! The last step of `raftix serve --join`: once the node has caught up with the leader, ask
//! for its promotion from learner to voter.
//!
//! Runs on a thread of its own next to the node: polls the node's own `GET /v1/status` until it
//! knows a leader, has heard of a commit at least up to the entry that added it, and has applied
//! to within [`CAUGHT_UP_SLACK`] entries of the leader's commit; then sends
//! `POST /v1/cluster/voters/{id}` (to its own gateway, which forwards it to the leader, then to
//! the join URLs), asking again while the answer is 409 (not caught up yet) or 503, for at most
//! [`PROMOTE_WITHIN`]. Failures are logged; the node keeps running as a learner.

use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::client::session::{Request, Session};
use super::client::tls::ClientTls;
use super::client::ClientError;
use crate::core::membership::PROMOTE_MAX_LAG;
use crate::core::NodeId;

/// Entries behind the leader's commit at which the node counts as caught up.
pub const CAUGHT_UP_SLACK: u64 = PROMOTE_MAX_LAG / 8;
/// How long the promotion is pursued (catching up a large state included).
pub const PROMOTE_WITHIN: Duration = Duration::from_secs(30 * 60);
/// Pause between two polls.
const POLL: Duration = Duration::from_millis(200);
/// Time limit of one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A promotion to ask for.
#[derive(Clone)]
pub struct Promotion {
    /// The joining node.
    pub id: NodeId,
    /// Its own gateway's base URL.
    pub own: String,
    /// The URLs it joined through.
    pub endpoints: Vec<String>,
    /// Index of the configuration entry that added it as a learner.
    pub added_at: u64,
    /// HTTPS settings of its requests (see [`super::join::client_tls_of`]).
    pub tls: ClientTls,
    /// The bearer token to send (see `join::prepare`), if any.
    pub token: Option<String>,
}

impl std::fmt::Debug for Promotion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Promotion")
            .field("id", &self.id)
            .field("own", &self.own)
            .field("endpoints", &self.endpoints)
            .field("added_at", &self.added_at)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// What a promotion attempt came to.
enum Attempt {
    /// The node is a voter.
    Done,
    /// Not yet (not caught up, another change in progress, no leader): ask again.
    Again(String),
    /// Refused for good (for example the node was removed meanwhile).
    Refused(String),
}

/// `GET /v1/status`, the fields used here.
#[derive(Debug, Deserialize)]
struct Status {
    leader: Option<NodeId>,
    leader_commit: u64,
    applied: u64,
    members: Vec<NodeId>,
}

impl Promotion {
    /// Pursues the promotion on a thread of its own.
    pub fn spawn(self) -> std::io::Result<JoinHandle<()>> {
        thread::Builder::new()
            .name("join-promotion".into())
            .spawn(move || self.run())
    }

    fn run(self) {
        let mut endpoints = vec![self.own.clone()];
        endpoints.extend(self.endpoints.iter().cloned());
        let token = self.token.clone();
        let sessions = Session::with_tls(vec![self.own.clone()], REQUEST_TIMEOUT, &self.tls)
            .and_then(|own| {
                let cluster = Session::with_tls(endpoints, REQUEST_TIMEOUT, &self.tls)?
                    .with_token(token.clone());
                Ok((own.with_token(token), cluster))
            });
        let (mut own, mut cluster) = match sessions {
            Ok(sessions) => sessions,
            Err(e) => {
                tracing::error!(id = self.id, "cannot ask for the promotion: {e}");
                return;
            }
        };
        let deadline = Instant::now() + PROMOTE_WITHIN;
        let mut last = String::from("the node never caught up");
        while Instant::now() < deadline {
            let status = status(&mut own);
            if status
                .as_ref()
                .is_some_and(|s| s.members.contains(&self.id))
            {
                tracing::info!(id = self.id, "this node is a voter");
                return;
            }
            if status.as_ref().is_some_and(|s| self.caught_up(s)) {
                match self.attempt(&mut cluster) {
                    Attempt::Done => {
                        tracing::info!(id = self.id, "promoted to voter");
                        return;
                    }
                    Attempt::Again(why) => {
                        tracing::debug!(id = self.id, "promotion not accepted yet: {why}");
                        last = why;
                    }
                    Attempt::Refused(why) => {
                        tracing::error!(
                            id = self.id,
                            "promotion refused: {why}; the node stays a learner"
                        );
                        return;
                    }
                }
            }
            thread::sleep(POLL);
        }
        tracing::error!(
            id = self.id,
            "gave up asking for the promotion after {PROMOTE_WITHIN:?} ({last}); the node stays a \
             learner: promote it with `raftix member promote {}`",
            self.id
        );
    }

    /// Whether the node has (nearly) caught up with what the leader committed.
    fn caught_up(&self, s: &Status) -> bool {
        s.leader.is_some()
            && s.leader_commit >= self.added_at
            && s.applied + CAUGHT_UP_SLACK >= s.leader_commit
    }

    /// One promotion request (to the node's own gateway first, then the join URLs).
    fn attempt(&self, session: &mut Session) -> Attempt {
        let path = format!("/v1/cluster/voters/{}", self.id);
        match session.send(&Request::write(Method::POST, path, None)) {
            Ok(answer) if answer.status.is_success() => Attempt::Done,
            Ok(answer) if answer.status == StatusCode::CONFLICT => {
                Attempt::Again(String::from_utf8_lossy(&answer.body).into_owned())
            }
            Ok(answer) => Attempt::Refused(format!(
                "{} answered {}: {}",
                answer.from,
                answer.status,
                String::from_utf8_lossy(&answer.body)
            )),
            Err(
                e @ (ClientError::NoLeader(_)
                | ClientError::Busy(_)
                | ClientError::Unreachable(_)
                | ClientError::OutcomeUnknown(_)),
            ) => Attempt::Again(e.to_string()),
            Err(e) => Attempt::Refused(e.to_string()),
        }
    }
}

/// The node's own status (`own` is a session on its gateway), if it answers.
fn status(own: &mut Session) -> Option<Status> {
    let answer = own.send(&Request::get("/v1/status".into())).ok()?;
    serde_json::from_slice(&answer.body).ok()
}
