//! The `/api/*` endpoints the dashboard polls and posts to, shaped as the specification's
//! architecture document gives them.
//!
//! - `GET /api/status`: every member's `GET /v1/status`, gathered by this node (concurrently,
//!   [`PROBE_TIMEOUT`] each): `{"node": <answering id>, "leader": id|null, "term": <highest
//!   term seen>, "nodes": [<a /v1/status body plus "http_addr"> | {"id", "error":
//!   "unreachable", "message", "http_addr"}], "cluster": <this node's /v1/cluster view>}`.
//!   `leader` is the node reporting `LEADER` in the highest term among the answers;
//!   `"leader_cluster"` is that leader's own `/v1/cluster` view (with acknowledgement ages and
//!   round-trip times), or null.
//! - `GET /api/logs?limit=N` (1..=1000, default 50): the latest entries of this node's log,
//!   oldest first, shaped as in `GET /v1/log`: `{"node", "first_index", "last_index", "commit",
//!   "entries": [{"index", "term", "type", "command", "committed"}]}`.
//! - `POST /api/command` with `{"command": "SET key value"}` (verbs `SET`/`PUT`, `GET`,
//!   `DELETE`/`DEL`, any case; the value is the rest of the line and may hold spaces) or
//!   `{"op": "put"|"get"|"delete", "key": "...", "value": "..."}`. Writes go through the
//!   gateway's write path, so a follower forwards them to the leader (the leader answers the
//!   same route); a `GET` is read on the leader too (relayed when this node is a follower).
//!   Answers `{"ok": true, "op", "key", "value"?, "deleted"?, "found"?, "index"?, "term"?}`; a
//!   malformed command is a JSON 400, errors as elsewhere in the gateway.

pub(crate) mod command;

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

pub use command::{command, parse_command_line, Command};

use super::error::method_not_allowed;
use super::log_view::LogEntryView;
use super::openapi::ErrorBody;
use super::write::client_of;
use super::{ApiError, AppState};
use crate::core::Role;
use crate::messages::node::MemberView;

/// How long `GET /api/status` waits for each other node's `/v1/status`.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(400);
/// Default and largest number of entries of `GET /api/logs`.
const DEFAULT_LOG_LIMIT: usize = 50;
const MAX_LOG_LIMIT: usize = 1000;

/// Registers `GET /api/status`, `GET /api/logs` and `POST /api/command`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/status")
            .route(web::get().to(status))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/api/logs")
            .route(web::get().to(logs))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/api/command")
            .route(web::post().to(command))
            .default_service(web::to(method_not_allowed)),
    );
}

/// `GET /api/status`: the status of every node, as described in the module docs.
#[utoipa::path(
    get,
    path = "/api/status",
    tag = "dashboard",
    responses((status = 200, description = "Status of every node", body = DashboardStatus)),
)]
pub async fn status(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let view = super::cluster::cluster_view(&state).await?;
    let client = client_of(&req);
    let auth = req.headers().get(actix_web::http::header::AUTHORIZATION);
    let nodes: Vec<Value> =
        join_all(view.members.iter().map(|m| probe(&state, &client, auth, m))).await;
    let term = nodes.iter().filter_map(|n| n["term"].as_u64()).max();
    let leader = nodes
        .iter()
        .filter(|n| n["role"] == Role::Leader.as_str())
        .max_by_key(|n| n["term"].as_u64())
        .and_then(|n| n["id"].as_u64());
    let leader_member = view.members.iter().find(|m| Some(m.id) == leader);
    let leader_cluster = match leader_member {
        Some(member) if !member.is_self => leader_view(&client, auth, member).await,
        Some(_) => serde_json::to_value(&view).ok(),
        None => None,
    };
    Ok(HttpResponse::Ok().json(DashboardStatus {
        node: state.node_id,
        leader,
        term,
        nodes,
        cluster: view,
        leader_cluster,
    }))
}

/// Answer of `GET /api/status`.
#[derive(Serialize, ToSchema)]
pub struct DashboardStatus {
    /// The node that answered.
    pub node: u64,
    /// The node reporting `LEADER` in the highest term among the answers.
    pub leader: Option<u64>,
    /// The highest term among the answers.
    pub term: Option<u64>,
    /// Each member's `GET /v1/status` body as it answered, plus `http_addr` and `suffrage`;
    /// or `{"id", "error": "unreachable", "message", "http_addr", "suffrage"}`.
    #[schema(value_type = Vec<Object>)]
    pub nodes: Vec<Value>,
    /// This node's `GET /v1/cluster` view.
    pub cluster: crate::views::ClusterView,
    /// The leader's own `GET /v1/cluster` view (acknowledgement ages, round trips), if known.
    #[schema(value_type = Option<Object>)]
    pub leader_cluster: Option<Value>,
}

/// Answer of `GET /api/logs`.
#[derive(Serialize, ToSchema)]
pub struct DashboardLogs {
    /// The node that answered.
    pub node: u64,
    /// First index this node holds.
    pub first_index: u64,
    /// Last index this node holds.
    pub last_index: u64,
    /// This node's commit index.
    pub commit: u64,
    /// The latest entries, oldest first, each with `committed`.
    pub entries: Vec<LogEntryView>,
}

/// The caller's `Authorization` header, passed on to the other nodes asked.
type Auth<'a> = Option<&'a actix_web::http::header::HeaderValue>;

fn with_auth(request: awc::ClientRequest, auth: Auth<'_>) -> awc::ClientRequest {
    match auth {
        Some(value) => {
            request.insert_header((actix_web::http::header::AUTHORIZATION, value.clone()))
        }
        None => request,
    }
}

/// The leader's own `/v1/cluster` view (it alone knows acknowledgement ages and round trips).
async fn leader_view(client: &awc::Client, auth: Auth<'_>, leader: &MemberView) -> Option<Value> {
    let url = format!("{}/v1/cluster", super::url_of(leader.http_addr.as_deref()?));
    let mut resp = with_auth(client.get(url), auth)
        .timeout(PROBE_TIMEOUT)
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.json::<Value>().await.ok()
}

/// One member's `/v1/status` (this node's straight from the actor), or why it has none.
async fn probe(
    state: &AppState,
    client: &awc::Client,
    auth: Auth<'_>,
    member: &MemberView,
) -> Value {
    let down = |message: String| {
        json!({
            "id": member.id,
            "error": "unreachable",
            "message": message,
            "http_addr": member.http_addr,
        })
    };
    let mut answer = if member.is_self {
        match super::node_facts::status_answer(state).await {
            Ok(status) => serde_json::to_value(status).unwrap_or_else(|e| down(e.to_string())),
            Err(err) => down(err.message),
        }
    } else {
        let Some(addr) = &member.http_addr else {
            return down("its HTTP address is not known yet".to_string());
        };
        let url = format!("{}/v1/status", super::url_of(addr));
        match with_auth(client.get(url), auth)
            .timeout(PROBE_TIMEOUT)
            .send()
            .await
        {
            Ok(mut resp) if resp.status().is_success() => match resp.json::<Value>().await {
                Ok(body) => body,
                Err(err) => down(format!("unreadable status from {addr}: {err}")),
            },
            Ok(resp) => down(format!("{addr} answered {}", resp.status())),
            Err(err) => down(format!("{addr}: {err}")),
        }
    };
    answer["http_addr"] = json!(member.http_addr);
    answer["suffrage"] = json!(member.suffrage);
    answer
}

/// Query of `GET /api/logs`.
#[derive(Debug, Deserialize)]
pub struct LogsQuery {
    /// Most entries (1..=1000, default 50): the latest ones.
    limit: Option<usize>,
}

/// How much of a value the dashboard's log view shows (the whole size comes alongside).
pub const DASHBOARD_VALUE_BYTES: usize = 256;

/// `GET /api/logs`: the latest entries of this node's log, each marked `committed`, values cut
/// to [`DASHBOARD_VALUE_BYTES`] (a page polled every half second must stay small).
#[utoipa::path(
    get,
    path = "/api/logs",
    tag = "dashboard",
    params(("limit" = Option<usize>, Query, description = "1 to 1000, default 50")),
    responses(
        (status = 200, description = "The latest log entries of this node, each marked committed; values longer than 256 bytes are cut, with their whole size in `value_size` (the whole value: `GET /v1/log?from=INDEX&limit=1`)", body = DashboardLogs),
        (status = 400, description = "Bad query", body = ErrorBody),
    ),
)]
pub async fn logs(
    state: web::Data<AppState>,
    query: web::Query<LogsQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LOG_LIMIT);
    if limit == 0 || limit > MAX_LOG_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_LOG_LIMIT}"
        )));
    }
    let last = state.node.status().await?.last_log_index;
    let from = last.saturating_sub(limit as u64 - 1).max(1);
    let slice = super::cluster::log_slice(&state, from, limit).await?;
    let entries = slice
        .entries
        .iter()
        .map(|entry| LogEntryView {
            committed: Some(entry.index <= slice.commit),
            ..LogEntryView::cut(entry, Some(DASHBOARD_VALUE_BYTES))
        })
        .collect();
    Ok(HttpResponse::Ok().json(DashboardLogs {
        node: state.node_id,
        first_index: slice.first_index,
        last_index: slice.last_index,
        commit: slice.commit,
        entries,
    }))
}
