//! `member add|promote|demote|remove|list`: membership changes through the REST API.
//!
//! Each change is sent as a write (any endpoint; a follower redirects to the leader). A 503
//! (another change in progress, or no leader yet) is retried for up to [`RETRY_FOR`]; a 4xx is
//! final (exit 5): 400 bad input, 404 not a member, 409 a learner not caught up, a voter added
//! as a learner, or the last voter.

use std::thread;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::args::{MemberAddArgs, MemberCommand, MemberIdArgs};
use super::error::{ClientError, EXIT_OK};
use super::output::{check, decode, json_line, line};
use super::session::{Request, Session};
use super::session_of;

/// How long a change refused as "in progress" or "no leader" (503) is retried.
pub const RETRY_FOR: Duration = Duration::from_secs(10);
/// Pause between two tries.
const PAUSE: Duration = Duration::from_millis(200);

/// The answer of a membership change.
#[derive(Debug, Deserialize)]
pub struct Changed {
    /// Index of the configuration entry.
    pub index: u64,
    /// Whether the configuration changed.
    pub changed: bool,
    /// Voters now.
    pub voters: Vec<u64>,
    /// Learners now.
    pub learners: Vec<u64>,
    /// Peer address of every member, by id (as a string).
    pub members: std::collections::BTreeMap<String, String>,
}

impl MemberCommand {
    /// Runs the subcommand; returns the exit status.
    pub fn run(self) -> Result<u8, ClientError> {
        match self {
            MemberCommand::Add(args) => add(args),
            MemberCommand::Promote(args) => by_id(args, Method::POST, "voters"),
            MemberCommand::Demote(args) => by_id(args, Method::DELETE, "voters"),
            MemberCommand::Remove(args) => by_id(args, Method::DELETE, "members"),
            MemberCommand::List(args) => super::cluster::members(args),
        }
    }
}

/// `member add --id ID --peer-addr HOST:PORT`.
fn add(args: MemberAddArgs) -> Result<u8, ClientError> {
    let body = json!({"id": args.id, "peer_addr": args.peer_addr});
    let bytes = serde_json::to_vec(&body).map_err(|e| ClientError::Invalid(e.to_string()))?;
    let request = Request::write(
        Method::POST,
        "/v1/cluster/learners".into(),
        Some((bytes, "application/json")),
    );
    let mut session = session_of(&args.opts)?;
    print(
        args.opts.json,
        &send_change(&mut session, &request, RETRY_FOR)?,
    )
}

/// `member promote|demote|remove ID`: `METHOD /v1/cluster/{collection}/{id}`.
fn by_id(args: MemberIdArgs, method: Method, collection: &str) -> Result<u8, ClientError> {
    let request = Request::write(
        method,
        format!("/v1/cluster/{collection}/{}", args.id),
        None,
    );
    let mut session = session_of(&args.opts)?;
    print(
        args.opts.json,
        &send_change(&mut session, &request, RETRY_FOR)?,
    )
}

/// Sends a membership change, retrying 503s (another change in progress, no leader yet) for
/// `retry_for`.
/// Returns the raw and decoded answer of a 2xx; a 4xx or another failure is the error.
pub fn send_change(
    session: &mut Session,
    request: &Request,
    retry_for: Duration,
) -> Result<(Value, Changed), ClientError> {
    let deadline = Instant::now() + retry_for;
    loop {
        match session.send(request) {
            Ok(answer) => return decode(&check(answer, None)?),
            Err(err @ (ClientError::NoLeader(_) | ClientError::Busy(_)))
                if Instant::now() < deadline =>
            {
                tracing::debug!("membership change not accepted yet: {err}");
                thread::sleep(PAUSE);
            }
            Err(err) => return Err(err),
        }
    }
}

/// Prints `OK index=N changed=B voters=.. learners=..` (or the JSON answer).
fn print(json: bool, (raw, done): &(Value, Changed)) -> Result<u8, ClientError> {
    if json {
        json_line(raw)?;
    } else {
        line(&describe(done))?;
    }
    Ok(EXIT_OK)
}

/// One line for people.
pub fn describe(done: &Changed) -> String {
    let list = |ids: &[u64]| {
        let text: Vec<String> = ids.iter().map(u64::to_string).collect();
        if text.is_empty() {
            "-".to_string()
        } else {
            text.join(",")
        }
    };
    format!(
        "OK index={} changed={} voters={} learners={}",
        done.index,
        done.changed,
        list(&done.voters),
        list(&done.learners)
    )
}
