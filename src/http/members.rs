//! Membership changes, one server at a time (leader only; a follower hands the request to the
//! leader like a write, see [`super::write::to_leader`]):
//!
//! - `POST /v1/cluster/learners {"id": 4, "peer_addr": "HOST:PORT"}` (`addr` is an alias) adds a
//!   learner: a non-voting member that receives the log;
//! - `POST /v1/cluster/voters/{id}` promotes a caught-up learner to voter;
//! - `DELETE /v1/cluster/voters/{id}` demotes a voter to learner;
//! - `DELETE /v1/cluster/members/{id}` removes a voter or learner.
//!
//! Each answers once the new configuration is committed and applied on the leader, with
//! `{"index", "changed", "voters", "learners", "members": {id: peer_addr}}`; `changed` is false
//! when the configuration already was as asked.

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;

#[allow(unused_imports)]
use super::doc_vocabulary::{MembershipFailures, RedirectOption};
use super::input::{json_body, read_body};
use super::openapi::{ErrorBody, LearnerRequest, MembershipAnswer};
use super::write::{client_of, to_leader};
use super::{ApiError, AppState};
use crate::config::{check_host_port, ConfigError};
use crate::core::{ConfigChange, NodeId};
use crate::messages::node::{ChangeResult, ClientError};

/// Largest body accepted by `POST /v1/cluster/learners`.
const BODY_LIMIT: usize = 4096;

/// Adds a learner (or changes a learner's address).
#[utoipa::path(
    post,
    path = "/v1/cluster/learners",
    tag = "cluster",
    params(RedirectOption),
    request_body = LearnerRequest,
    responses(
        (status = 200, description = "The configuration now in force", body = MembershipAnswer),
        (status = 400, description = "Missing or zero id, missing or malformed address", body = ErrorBody),
        (status = 409, description = "The node is already a voter", body = ErrorBody),
        (status = 503, description = "Another membership change is in progress, or no leader: retry", body = ErrorBody),
    ),
)]
pub async fn add_learner(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, BODY_LIMIT).await?;
    let parsed: LearnerRequest = json_body(&body)?;
    let id = valid_id(parsed.id)?;
    let addr = parsed.peer_addr.unwrap_or_default().trim().to_string();
    if addr.is_empty() {
        return Err(ApiError::bad_request(
            "peer_addr is required: the learner's peer (Raft) address as HOST:PORT",
        ));
    }
    check_host_port("peer_addr", &addr, false).map_err(|e| {
        let reason = match e {
            ConfigError::Invalid { reason, .. } => reason,
            other => other.to_string(),
        };
        ApiError::bad_request(format!("peer_addr `{addr}`: {reason}"))
    })?;
    change(&state, &req, &body, ConfigChange::AddLearner { id, addr }).await
}

/// Promotes a learner to voter.
#[utoipa::path(
    post,
    path = "/v1/cluster/voters/{id}",
    tag = "cluster",
    params(("id" = u64, Path, description = "The learner"), RedirectOption),
    responses(
        (status = 200, description = "The configuration now in force", body = MembershipAnswer),
        (status = 404, description = "Not a member", body = ErrorBody),
        (status = 409, description = "The learner has not caught up (the message says how far behind)", body = ErrorBody),
        MembershipFailures,
    ),
)]
pub async fn promote(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = id_in_path(&req)?;
    change(&state, &req, &Bytes::new(), ConfigChange::Promote { id }).await
}

/// Demotes a voter to learner.
#[utoipa::path(
    delete,
    path = "/v1/cluster/voters/{id}",
    tag = "cluster",
    params(("id" = u64, Path, description = "The voter"), RedirectOption),
    responses(
        (status = 200, description = "The configuration now in force", body = MembershipAnswer),
        (status = 404, description = "Not a member", body = ErrorBody),
        (status = 409, description = "It is the last voter", body = ErrorBody),
        MembershipFailures,
    ),
)]
pub async fn demote(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = id_in_path(&req)?;
    change(&state, &req, &Bytes::new(), ConfigChange::Demote { id }).await
}

/// Removes a voter or learner (`changed: false` when it was not a member).
#[utoipa::path(
    delete,
    path = "/v1/cluster/members/{id}",
    tag = "cluster",
    params(("id" = u64, Path, description = "The member"), RedirectOption),
    responses(
        (status = 200, description = "The configuration now in force", body = MembershipAnswer),
        (status = 409, description = "It is the last voter", body = ErrorBody),
        MembershipFailures,
    ),
)]
pub async fn remove(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = id_in_path(&req)?;
    change(&state, &req, &Bytes::new(), ConfigChange::Remove { id }).await
}

/// Asks the local node for `change`; a follower forwards the request to the leader.
async fn change(
    state: &AppState,
    req: &HttpRequest,
    body: &Bytes,
    change: ConfigChange,
) -> Result<HttpResponse, ApiError> {
    match state.node.change_membership(change).await {
        Ok(done) => Ok(HttpResponse::Ok().json(answer(&done))),
        Err(ClientError::NotLeader {
            leader_id,
            leader_addr: Some(addr),
            ..
        }) => {
            let client = client_of(req);
            to_leader(state, &client, req, body, leader_id, addr).await
        }
        Err(err) => Err(err.into()),
    }
}

/// The answer of a change.
fn answer(done: &ChangeResult) -> super::openapi::MembershipAnswer {
    let m = &done.membership;
    super::openapi::MembershipAnswer {
        index: done.index,
        changed: done.changed,
        voters: m.voters.iter().copied().collect(),
        learners: m.learners.iter().copied().collect(),
        members: m
            .addrs
            .iter()
            .map(|(id, a)| (id.to_string(), a.clone()))
            .collect(),
    }
}

/// A node id given in a body: present and non-zero.
fn valid_id(id: Option<NodeId>) -> Result<NodeId, ApiError> {
    match id {
        None => Err(ApiError::bad_request("id is required: the node's id")),
        Some(0) => Err(ApiError::bad_request("id must be greater than 0")),
        Some(id) => Ok(id),
    }
}

/// The `{id}` of the path: a positive integer.
fn id_in_path(req: &HttpRequest) -> Result<NodeId, ApiError> {
    let raw = req.match_info().get("id").unwrap_or_default();
    let id = raw.parse::<NodeId>().map_err(|_| {
        ApiError::bad_request(format!("`{raw}` is not a node id (a positive integer)"))
    })?;
    valid_id(Some(id))
}
