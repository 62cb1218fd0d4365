//! Cluster views: `GET /v1/status`, `GET /v1/cluster`, `GET /v1/log`, `GET /healthz`,
//! `GET /readyz`.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::log_view::LogEntryView;
#[allow(unused_imports)]
use super::openapi::{ErrorBody, LiveAnswer, LogAnswer, ReadyAnswer};
use super::{ApiError, AppState};
use crate::messages::node::{ClientError, GetCluster, GetLog};
#[allow(unused_imports)]
use crate::messages::node::{ClusterView, NodeStatus};

/// Up to `limit` entries of this node's log from `from`.
pub(crate) async fn log_slice(
    state: &AppState,
    from: u64,
    limit: usize,
) -> Result<crate::messages::node::LogSlice, ApiError> {
    state
        .node
        .addr()
        .send(GetLog { from, limit })
        .await
        .map_err(unavailable)
}

/// A node that does not answer its mailbox.
pub(crate) fn unavailable(err: actix::MailboxError) -> ApiError {
    ClientError::Unavailable(err.to_string()).into()
}

/// Every member with its addresses and health, as this node sees them.
#[utoipa::path(
    get,
    path = "/v1/cluster",
    tag = "cluster",
    responses(
        (status = 200, description = "Members with addresses and health", body = ClusterView),
    ),
)]
pub async fn cluster(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(cluster_view(&state).await?))
}

/// This node's view of the cluster.
pub(crate) async fn cluster_view(
    state: &AppState,
) -> Result<crate::messages::node::ClusterView, ApiError> {
    state
        .node
        .addr()
        .send(GetCluster)
        .await
        .map_err(unavailable)
}

/// Query of `GET /v1/log`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// First index (default: the last `limit` entries).
    from: Option<u64>,
    /// Most entries (1..=1000, default 100).
    limit: Option<usize>,
    /// Cut values longer than this many bytes (their whole size in `<field>_size`).
    max_value_bytes: Option<usize>,
}

/// Entries with index, term, type and decoded command, plus where the log starts and ends.
#[utoipa::path(
    get,
    path = "/v1/log",
    tag = "cluster",
    params(
        ("from" = Option<u64>, Query, description = "First index (default: the last `limit` entries)"),
        ("limit" = Option<usize>, Query, description = "1 to 1000, default 100"),
        ("max_value_bytes" = Option<usize>, Query, description = "Cut values longer than this many bytes; the whole size is in `value_size` (`expected_size`, `equals_size`, `raw_size`). Default: whole values"),
    ),
    responses(
        (status = 200, description = "Log entries", body = LogAnswer),
        (status = 400, description = "Bad query", body = ErrorBody),
    ),
)]
pub async fn log(
    state: web::Data<AppState>,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::bad_request("limit must be 1 to 1000"));
    }
    let from = match query.from {
        Some(from) => from,
        None => {
            let status = state.node.status().await?;
            status
                .last_log_index
                .saturating_sub(limit as u64 - 1)
                .max(1)
        }
    };
    let slice = log_slice(&state, from, limit).await?;
    Ok(HttpResponse::Ok().json(LogAnswer {
        first_index: slice.first_index,
        last_index: slice.last_index,
        commit: slice.commit,
        entries: slice
            .entries
            .iter()
            .map(|entry| LogEntryView::cut(entry, query.max_value_bytes))
            .collect(),
    }))
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "The process is up", body = LiveAnswer)),
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(LiveAnswer { status: "ok" })
}

/// Readiness: this node knows a leader, has applied everything it knows committed, and is
/// ACTIVE (not SYNCING or DEGRADED). 503 otherwise, with the reason and the health state.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Knows a leader and applied all it knows committed", body = ReadyAnswer),
        (status = 503, description = "Not ready, with the reason", body = ReadyAnswer),
    ),
)]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let status = state.node.status().await?;
    let reason = if status.leader.is_none() {
        Some("no leader known".to_string())
    } else if status.applied < status.commit {
        Some(format!(
            "applied {} of {} committed entries",
            status.applied, status.commit
        ))
    } else if status.health.state != crate::messages::node::HealthState::Active {
        Some(
            status
                .health
                .reason
                .clone()
                .unwrap_or_else(|| "not active".into()),
        )
    } else {
        None
    };
    let body = ReadyAnswer {
        ready: reason.is_none(),
        reason: reason.clone(),
        health: status.health.clone(),
        leader: status.leader,
        commit: status.commit,
        applied: status.applied,
    };
    Ok(match reason {
        None => HttpResponse::Ok().json(body),
        Some(_) => HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(body),
    })
}
