//! Multi-region replication over REST (see `docs/regions-design.md`):
//!
//! - `GET /v1/regions`: this region, the primary, the write acknowledgement mode, the conflict
//!   policy and the remote regions;
//! - `POST /v1/regions {"id", "endpoints": [URL..]}`: adds (or updates) a remote region; the node
//!   must be started with `--region NAME`;
//! - `DELETE /v1/regions/{id}`; `PUT /v1/regions/primary {"id"}` (`null` clears it);
//! - `PUT /v1/regions/replication {"mode": "async"|"semi-sync"|"sync", "timeout_ms"}`;
//! - `PUT /v1/conflicts/policy {"default": STRATEGY, "prefixes": {PREFIX: STRATEGY}}`;
//! - `GET /v1/regions/status`: per link: connected, lag in entries and seconds, last
//!   acknowledged sequence, last error (the leader's view: a follower forwards it);
//! - `GET /v1/conflicts/stats`: conflicts resolved here by strategy, failed merges, keys with
//!   unresolved siblings;
//! - `POST /v1/regions/replicate` (between regions, bincode; in [`super::region_replicate`]):
//!   applies a batch from another region through this region's log and answers
//!   `{"applied": seq}`.
//!
//! Changes go through the Raft log like writes (a follower forwards them to the leader).

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;

#[allow(unused_imports)]
use super::doc_vocabulary::{
    AuthFailures, ForwardedWriteFailures, ReadFailures, ReadOptions, RedirectOption, RetryOptions,
};
use super::input::{json_body, read_body};
use super::openapi::ErrorBody;
use super::read::{prepare, ReadPlan};
use super::regions_schema::{
    ConflictStatsAnswer, PolicyRequest, PrimaryRequest, RegionAddRequest, RegionsAnswer,
    RegionsStatusAnswer, ReplicationRequest, ReplicationSetting,
};
use super::write::{client_of, propose, to_leader, Proposed};
use super::{ApiError, AppState};
use crate::core::Role;
use crate::messages::node::ClientError;
use crate::regions::{check_region_id, ConflictPolicy, Strategy};
use crate::storage::kv_regions::{AckMode, RegionChange, RegionsState};
use crate::storage::{KvCommand, KvOutput};

/// Largest body of the small JSON routes.
const BODY_LIMIT: usize = super::limits::SMALL_BODY_BYTES;

pub(super) async fn regions_state(state: &AppState) -> Result<RegionsState, ApiError> {
    let kv = state.kv.clone();
    web::block(move || kv.regions_state())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// This region's name: the replicated one (set by the first region added), else this node's
/// `--region`.
fn local_of(app: &AppState, state: &RegionsState) -> Option<String> {
    state.local.clone().or_else(|| app.region.clone())
}

/// The answer of `GET /v1/regions` (a change adds its `index`).
fn describe(app: &AppState, state: &RegionsState) -> RegionsAnswer {
    RegionsAnswer {
        local: local_of(app, state),
        primary: state.primary.clone(),
        replication: ReplicationSetting {
            mode: state.ack.as_str().to_string(),
            timeout_ms: state.ack_timeout_ms,
        },
        policy: super::regions_schema::PolicyBody {
            default: state.policy.default.to_string(),
            prefixes: state
                .policy
                .prefixes
                .iter()
                .map(|(p, s)| (p.clone(), s.to_string()))
                .collect(),
        },
        regions: state
            .remotes
            .values()
            .map(|r| super::regions_schema::RegionInfo {
                id: r.id.clone(),
                endpoints: r.endpoints.clone(),
                primary: state.primary.as_ref() == Some(&r.id),
            })
            .collect(),
        index: None,
    }
}

/// Lists the regions.
#[utoipa::path(
    get,
    path = "/v1/regions",
    tag = "regions",
    params(ReadOptions),
    responses(
        (status = 200, description = "This region, the primary, the acknowledgement mode, the conflict policy and the remote regions", body = RegionsAnswer),
        ReadFailures,
        AuthFailures,
    ),
)]
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if let ReadPlan::Relayed(response) = prepare(&state, &req).await? {
        return Ok(response);
    }
    Ok(HttpResponse::Ok().json(describe(&state, &regions_state(&state).await?)))
}

/// A 409 for a request whose idempotency key an earlier, refused, request used: the refusal
/// was that request's (perhaps to another route), so it is reported as such rather than as
/// this request's own 400 or 404.
fn refused_before(index: u64, reason: &str) -> ApiError {
    ApiError::conflict(format!(
        "this idempotency key was already used by a request refused at index {index} ({reason}); \
         use a new key for a new request"
    ))
}

/// The error for a region command the state machine did not apply as asked: a retry of a
/// refused request (409), an unknown region (404), another refusal (400), or an output that
/// does not belong to the command (500).
pub(super) fn not_applied(output: KvOutput, duplicate: bool, index: u64) -> ApiError {
    match output {
        KvOutput::Rejected { reason } if duplicate => refused_before(index, &reason),
        KvOutput::Rejected { reason } if reason.starts_with("no region") => {
            ApiError::not_found("region_not_found", reason)
        }
        KvOutput::Rejected { reason } => ApiError::bad_request(reason),
        _ => ApiError::unexpected_output("region change"),
    }
}

/// Proposes a region change and answers with the regions after it.
async fn change(
    state: &AppState,
    req: &HttpRequest,
    body: &Bytes,
    change: RegionChange,
    created: bool,
) -> Result<HttpResponse, ApiError> {
    match propose(state, req, body, KvCommand::Region(change)).await? {
        Proposed::Relayed(response) => Ok(response),
        Proposed::Applied {
            output: KvOutput::Region,
            index,
            ..
        } => {
            let mut answer = describe(state, &regions_state(state).await?);
            answer.index = Some(index);
            Ok(if created {
                HttpResponse::Created().json(answer)
            } else {
                HttpResponse::Ok().json(answer)
            })
        }
        Proposed::Applied {
            output,
            duplicate,
            index,
        } => Err(not_applied(output, duplicate, index)),
    }
}

/// Adds (or updates) a remote region.
#[utoipa::path(
    post,
    path = "/v1/regions",
    tag = "regions",
    params(RetryOptions),
    request_body = RegionAddRequest,
    responses(
        (status = 201, description = "Added (or its endpoints replaced): the regions after the change", body = RegionsAnswer),
        (status = 400, description = "Bad input", body = ErrorBody),
        ForwardedWriteFailures,
        AuthFailures,
    ),
)]
pub async fn add(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, BODY_LIMIT).await?;
    let parsed: super::regions_schema::RegionAddRequest = json_body(&body)?;
    let Some(local) = state.region.clone() else {
        return Err(ApiError::bad_request(
            "this node has no region name: start every node of this cluster with --region NAME",
        ));
    };
    check_region_id(&parsed.id).map_err(ApiError::bad_request)?;
    for endpoint in &parsed.endpoints {
        let url = super::url_of(endpoint);
        let valid = (url.starts_with("http://") || url.starts_with("https://"))
            && !url.contains(char::is_whitespace)
            && url.len() <= 512;
        if !valid {
            return Err(ApiError::bad_request(format!(
                "endpoint {endpoint:?} is not an http(s) URL or HOST:PORT"
            )));
        }
    }
    let add = RegionChange::Add {
        local,
        id: parsed.id,
        endpoints: parsed.endpoints,
    };
    change(&state, &req, &body, add, true).await
}

/// Removes a remote region.
#[utoipa::path(
    delete,
    path = "/v1/regions/{id}",
    tag = "regions",
    params(("id" = String, Path, description = "The remote region"), RetryOptions),
    responses(
        (status = 200, description = "Removed: the regions after the change", body = RegionsAnswer),
        (status = 404, description = "No such region", body = ErrorBody),
        (status = 400, description = "Bad input", body = ErrorBody),
        ForwardedWriteFailures,
        AuthFailures,
    ),
)]
pub async fn remove(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    check_region_id(&id).map_err(ApiError::bad_request)?;
    change(
        &state,
        &req,
        &Bytes::new(),
        RegionChange::Remove { id },
        false,
    )
    .await
}

/// Sets or clears the primary region.
#[utoipa::path(
    put,
    path = "/v1/regions/primary",
    tag = "regions",
    params(RetryOptions),
    request_body = PrimaryRequest,
    responses(
        (status = 200, description = "Set: the regions after the change", body = RegionsAnswer),
        (status = 404, description = "No such region", body = ErrorBody),
        (status = 400, description = "Bad input", body = ErrorBody),
        ForwardedWriteFailures,
        AuthFailures,
    ),
)]
pub async fn set_primary(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, BODY_LIMIT).await?;
    let parsed: super::regions_schema::PrimaryRequest = json_body(&body)?;
    if let Some(id) = &parsed.id {
        check_region_id(id).map_err(ApiError::bad_request)?;
    }
    change(
        &state,
        &req,
        &body,
        RegionChange::SetPrimary { id: parsed.id },
        false,
    )
    .await
}

/// Longest write acknowledgement timeout accepted.
const MAX_ACK_TIMEOUT_MS: u64 = 600_000;

/// Sets how writes wait for other regions.
#[utoipa::path(
    put,
    path = "/v1/regions/replication",
    tag = "regions",
    params(RetryOptions),
    request_body = ReplicationRequest,
    responses(
        (status = 200, description = "Set: the regions after the change", body = RegionsAnswer),
        (status = 400, description = "Bad input", body = ErrorBody),
        ForwardedWriteFailures,
        AuthFailures,
    ),
)]
pub async fn set_replication(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, BODY_LIMIT).await?;
    let parsed: super::regions_schema::ReplicationRequest = json_body(&body)?;
    let mode = AckMode::parse(&parsed.mode).ok_or_else(|| {
        ApiError::bad_request(format!(
            "mode {:?} is not one of async, semi-sync, sync",
            parsed.mode
        ))
    })?;
    let timeout_ms = parsed
        .timeout_ms
        .unwrap_or(crate::storage::kv_regions::DEFAULT_ACK_TIMEOUT_MS);
    if timeout_ms == 0 || timeout_ms > MAX_ACK_TIMEOUT_MS {
        return Err(ApiError::bad_request(format!(
            "timeout_ms must be 1 to {MAX_ACK_TIMEOUT_MS}"
        )));
    }
    change(
        &state,
        &req,
        &body,
        RegionChange::SetAck { mode, timeout_ms },
        false,
    )
    .await
}

fn strategy(text: &str) -> Result<Strategy, ApiError> {
    text.parse::<Strategy>().map_err(|e| {
        ApiError::bad_request(format!(
            "{text:?} is not a strategy (latest-timestamp, lww-register, multi-value, custom:NAME): {e}"
        ))
    })
}

/// Replaces the conflict policy.
#[utoipa::path(
    put,
    path = "/v1/conflicts/policy",
    tag = "regions",
    params(RetryOptions),
    request_body = PolicyRequest,
    responses(
        (status = 200, description = "Replaced: the regions (and policy) after the change", body = RegionsAnswer),
        (status = 400, description = "Bad input", body = ErrorBody),
        ForwardedWriteFailures,
        AuthFailures,
    ),
)]
pub async fn set_policy(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, BODY_LIMIT).await?;
    let parsed: PolicyRequest = json_body(&body)?;
    let mut policy = ConflictPolicy::default();
    if let Some(default) = &parsed.default {
        policy.default = strategy(default)?;
    }
    for (prefix, text) in &parsed.prefixes {
        if prefix.is_empty() {
            return Err(ApiError::bad_request(
                "an empty prefix: use \"default\" for every key",
            ));
        }
        policy.prefixes.insert(prefix.clone(), strategy(text)?);
    }
    change(&state, &req, &body, RegionChange::SetPolicy(policy), false).await
}

/// The state of every link, as the leader sees it.
#[utoipa::path(
    get,
    path = "/v1/regions/status",
    tag = "regions",
    params(RedirectOption),
    responses(
        (status = 200, description = "Every link as the leader sees it (a follower forwards)", body = RegionsStatusAnswer),
        (status = 503, description = "No leader known (Retry-After)", body = ErrorBody),
        (status = 504, description = "The leader did not answer in time", body = ErrorBody),
        AuthFailures,
    ),
)]
pub async fn status(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let node = state
        .node
        .status()
        .await
        .map_err(|e| ApiError::from(ClientError::Unavailable(e.to_string())))?;
    if node.role != Role::Leader {
        let Some(addr) = node.leader_addr else {
            return Err(ClientError::not_leader(None, None).into());
        };
        let client = client_of(&req);
        return to_leader(&state, &client, &req, &Bytes::new(), node.leader, addr).await;
    }
    let (regions, views) = super::region_links::link_views(&state).await?;
    Ok(HttpResponse::Ok().json(RegionsStatusAnswer {
        local: local_of(&state, &regions),
        primary: regions.primary.clone(),
        replication: ReplicationSetting {
            mode: regions.ack.as_str().to_string(),
            timeout_ms: regions.ack_timeout_ms,
        },
        regions: views,
    }))
}

/// Conflict statistics.
#[utoipa::path(
    get,
    path = "/v1/conflicts/stats",
    tag = "regions",
    params(ReadOptions),
    responses(
        (status = 200, description = "Conflicts resolved in this region", body = ConflictStatsAnswer),
        ReadFailures,
        AuthFailures,
    ),
)]
pub async fn stats(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if let ReadPlan::Relayed(response) = prepare(&state, &req).await? {
        return Ok(response);
    }
    let regions = regions_state(&state).await?;
    Ok(HttpResponse::Ok().json(ConflictStatsAnswer {
        total: regions.stats.total,
        by_strategy: regions.stats.by_strategy.clone(),
        failed: regions.stats.failed,
        unresolved: regions.unresolved,
    }))
}
