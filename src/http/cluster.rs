//! Cluster views: `GET /v1/status`, `GET /v1/cluster`, `GET /v1/log`, `GET /healthz`,
//! `GET /readyz`.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

#[allow(unused_imports)]
use super::openapi::{ErrorBody, LogAnswer, ReadyAnswer};
use super::{text_or_base64, ApiError, AppState};
use crate::core::{Entry, EntryPayload};
use crate::messages::node::{ClientError, GetCluster, GetLog};
#[allow(unused_imports)]
use crate::messages::node::{ClusterView, NodeStatus};
use crate::storage::{GuardExpect, KvCommand, KvRequest, TxnOp};

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

/// This node: id, role, term, leader, commit, applied, last log index, members, and per-peer
/// match index and lag when leader.
#[utoipa::path(get, path = "/v1/status", tag = "cluster", responses((status = 200, description = "This node", body = NodeStatus)))]
pub async fn status(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.node.status().await?))
}

/// Every member with its addresses and health, as this node sees them.
#[utoipa::path(get, path = "/v1/cluster", tag = "cluster", responses((status = 200, description = "Members with addresses and health", body = ClusterView)))]
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
}

/// Entries with index, term, type and decoded command, plus where the log starts and ends.
#[utoipa::path(get, path = "/v1/log", tag = "cluster", params(("from" = Option<u64>, Query, description = "First index (default: the last `limit` entries)"), ("limit" = Option<usize>, Query, description = "1 to 1000, default 100")), responses((status = 200, description = "Log entries", body = LogAnswer), (status = 400, description = "Bad query", body = ErrorBody)))]
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
    let entries: Vec<Value> = slice.entries.iter().map(describe_entry).collect();
    Ok(HttpResponse::Ok().json(json!({
        "first_index": slice.first_index,
        "last_index": slice.last_index,
        "commit": slice.commit,
        "entries": entries,
    })))
}

/// An entry as JSON: `{"index", "term", "type", "command"}`.
pub fn describe_entry(entry: &Entry) -> Value {
    match &entry.payload {
        EntryPayload::Noop => {
            json!({"index": entry.index, "term": entry.term, "type": "noop", "command": null})
        }
        EntryPayload::Command(bytes) => json!({
            "index": entry.index,
            "term": entry.term,
            "type": "command",
            "command": describe_command(bytes),
        }),
        EntryPayload::Config(m) => json!({
            "index": entry.index,
            "term": entry.term,
            "type": "config",
            "command": {"voters": m.voters, "learners": m.learners, "addrs": m.addrs},
        }),
    }
}

/// A key-value command as JSON (`{"op": "put", "key", "value"}` ...), with its `request_id`
/// when it carries one; an undecodable payload is shown as base64.
pub fn describe_command(bytes: &[u8]) -> Value {
    let decoded = if KvRequest::is_request(bytes) {
        KvRequest::decode(bytes).map(|r| (r.command, r.request_id))
    } else {
        KvCommand::decode(bytes).map(|c| (c, None))
    };
    let Ok((command, request_id)) = decoded else {
        let mut raw = json!({"op": "unknown"});
        text_or_base64(&mut raw, "raw", Some(bytes));
        return raw;
    };
    let mut out = describe_kv(command);
    if let Some(id) = request_id {
        out["request_id"] = json!(id);
    }
    out
}

fn describe_kv(command: KvCommand) -> Value {
    match command {
        KvCommand::Put { key, value } => {
            let mut out = json!({"op": "put", "key": key});
            text_or_base64(&mut out, "value", Some(&value));
            out
        }
        KvCommand::Delete { key } => json!({"op": "delete", "key": key}),
        KvCommand::Cas {
            key,
            expected,
            value,
        } => {
            let mut out = json!({"op": "cas", "key": key});
            text_or_base64(&mut out, "expected", expected.as_deref());
            text_or_base64(&mut out, "value", value.as_deref());
            out
        }
        KvCommand::Txn { guards, ops } => {
            let guards: Vec<Value> = guards
                .into_iter()
                .map(|g| match g.expect {
                    GuardExpect::Absent => json!({"key": g.key, "expect": "absent"}),
                    GuardExpect::Present => json!({"key": g.key, "expect": "present"}),
                    GuardExpect::Equals(v) => {
                        let mut out = json!({"key": g.key});
                        text_or_base64(&mut out, "equals", Some(&v));
                        out
                    }
                })
                .collect();
            let ops: Vec<Value> = ops
                .into_iter()
                .map(|op| match op {
                    TxnOp::Put { key, value } => {
                        let mut out = json!({"op": "put", "key": key});
                        text_or_base64(&mut out, "value", Some(&value));
                        out
                    }
                    TxnOp::Delete { key } => json!({"op": "delete", "key": key}),
                })
                .collect();
            json!({"op": "txn", "guards": guards, "ops": ops})
        }
        // Never the secret's hash: only what the token is.
        KvCommand::TokenPut { name, token, .. } => json!({
            "op": "token_put",
            "name": name,
            "role": token.role.as_str(),
            "prefix": token.prefix,
            "expires_at_ms": token.expires_at_ms,
        }),
        KvCommand::TokenDelete { name } => json!({"op": "token_delete", "name": name}),
        KvCommand::Region(change) => {
            json!({"op": "region", "change": describe_region_change(&change)})
        }
        KvCommand::RegionApply {
            from,
            after,
            mutations,
        } => json!({
            "op": "region_apply",
            "from": from,
            "after": after,
            "mutations": mutations.len(),
            "seqs": mutations.first().map(|m| format!("{}..={}", m.seq, mutations.last().map_or(m.seq, |l| l.seq))),
        }),
        KvCommand::RegionAcked { region, seq } => {
            json!({"op": "region_acked", "region": region, "seq": seq})
        }
    }
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "The process is up")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Readiness: this node knows a leader, has applied everything it knows committed, and is
/// ACTIVE (not SYNCING or DEGRADED). 503 otherwise, with the reason and the health state.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, description = "Knows a leader and applied all it knows committed", body = ReadyAnswer), (status = 503, description = "Not ready, with the reason", body = ReadyAnswer)))]
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
    let body = json!({
        "ready": reason.is_none(),
        "reason": reason,
        "health": status.health,
        "leader": status.leader,
        "commit": status.commit,
        "applied": status.applied,
    });
    Ok(match reason {
        None => HttpResponse::Ok().json(body),
        Some(_) => HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(body),
    })
}

/// A region change in words, for the log views (`add region us at http://...`).
fn describe_region_change(change: &crate::storage::kv_regions::RegionChange) -> String {
    use crate::storage::kv_regions::RegionChange;
    match change {
        RegionChange::Add { id, endpoints, .. } => {
            format!("add region {id} at {}", endpoints.join(", "))
        }
        RegionChange::Remove { id } => format!("remove region {id}"),
        RegionChange::SetPrimary { id: Some(id) } => format!("make {id} the primary region"),
        RegionChange::SetPrimary { id: None } => "clear the primary region".to_string(),
        RegionChange::SetPolicy(policy) => {
            let prefixes: Vec<String> = policy
                .prefixes
                .iter()
                .map(|(prefix, strategy)| format!(", {prefix}* {strategy}"))
                .collect();
            format!(
                "set the conflict policy (default {}{})",
                policy.default,
                prefixes.concat()
            )
        }
        RegionChange::SetAck { mode, timeout_ms } => format!(
            "acknowledge writes {} (waiting up to {timeout_ms} ms)",
            mode.as_str()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::describe_region_change;
    use crate::storage::kv_regions::{AckMode, RegionChange};

    #[test]
    fn region_changes_read_as_sentences_in_the_log_views() {
        let add = RegionChange::Add {
            local: "eu".into(),
            id: "us".into(),
            endpoints: vec!["http://10.0.0.9:8001".into()],
        };
        assert_eq!(
            describe_region_change(&add),
            "add region us at http://10.0.0.9:8001"
        );
        assert_eq!(
            describe_region_change(&RegionChange::SetPrimary { id: None }),
            "clear the primary region"
        );
        let ack = RegionChange::SetAck {
            mode: AckMode::Sync,
            timeout_ms: 5000,
        };
        assert_eq!(
            describe_region_change(&ack),
            "acknowledge writes sync (waiting up to 5000 ms)"
        );
    }
}
