//! Read consistency of `GET /v1/kv/{key}` and `GET /v1/kv` (`?consistency=...`).
//!
//! - `linearizable` (default; alias `quorum`): ReadIndex. On the leader: one heartbeat round
//!   answered by a quorum confirms leadership, then the read waits until the leader applied its
//!   commit index at the time of the read. On a follower: the follower asks the leader for that
//!   index and waits until its own state machine applied it, then reads locally (reads spread
//!   over the cluster).
//! - `lease`: a leader holding its lease (renewed by quorum heartbeat answers, shorter than the
//!   election timeout by a clock-drift bound) reads at once after applying its commit index;
//!   without a lease (a freshly elected leader, or a follower) it is served as `linearizable`.
//!   Relies on bounded clock drift; documented risk.
//! - `stale` (alias `one`): this node's applied state at once; `max_lag=N` refuses (503
//!   `too_stale`) when the node is more than N entries behind the leader's commit it last heard.
//! - `all`: as `linearizable`, and answered only once every voter applied the read index (served
//!   by the leader; costs availability: one slow or dead voter blocks it).

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;

use super::write::{client_of, to_leader};
use super::{ApiError, AppState};
use crate::messages::node::{ClientError, ReadMode};
use crate::storage::StorageError;

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Reflects every write acknowledged before the read started (`mode` says how).
    Linearizable(ReadMode),
    /// This node's applied state, possibly behind (at most `max_lag` entries when given).
    Stale {
        /// Refuse when further behind than this.
        max_lag: Option<u64>,
    },
}

fn query_value<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.query_string()
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// The `consistency` (and `max_lag`) query parameters; an unknown value is a 400.
pub fn consistency_of(req: &HttpRequest) -> Result<Consistency, ApiError> {
    let max_lag = match query_value(req, "max_lag") {
        None => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request("max_lag must be a number"))?,
        ),
    };
    let consistency = match query_value(req, "consistency") {
        None | Some("linearizable") | Some("quorum") => {
            Consistency::Linearizable(ReadMode::Linearizable)
        }
        Some("lease") => Consistency::Linearizable(ReadMode::Lease),
        Some("all") => Consistency::Linearizable(ReadMode::All),
        Some("stale") | Some("one") => Consistency::Stale { max_lag },
        Some(other) => {
            return Err(ApiError::bad_request(format!(
            "unknown consistency {other:?}: use linearizable (quorum), lease, stale (one) or all"
        )))
        }
    };
    if max_lag.is_some() && !matches!(consistency, Consistency::Stale { .. }) {
        return Err(ApiError::bad_request("max_lag goes with consistency=stale"));
    }
    Ok(consistency)
}

/// What to do with a read.
pub enum ReadPlan {
    /// Read locally now; `lag` is how far behind the leader's commit this node last knew it was.
    Local {
        /// Entries behind (stale reads only).
        lag: Option<u64>,
    },
    /// Answer this (the leader's answer, or a redirect to it).
    Relayed(HttpResponse),
}

/// Makes a read safe to serve locally at the requested consistency, or hands it to the leader.
pub async fn prepare(state: &AppState, req: &HttpRequest) -> Result<ReadPlan, ApiError> {
    let mode = match consistency_of(req)? {
        Consistency::Stale { max_lag } => {
            let status = state.node.status().await?;
            if let Some(max) = max_lag {
                if status.lag > max {
                    return Err(ApiError::unavailable(
                        "too_stale",
                        format!(
                            "this node is {} entries behind the leader's commit (max_lag={max})",
                            status.lag
                        ),
                    ));
                }
            }
            return Ok(ReadPlan::Local {
                lag: Some(status.lag),
            });
        }
        Consistency::Linearizable(mode) => mode,
    };
    match state.node.read_barrier_with(mode).await {
        Ok(_) => Ok(ReadPlan::Local { lag: None }),
        Err(ClientError::NotLeader {
            leader_id,
            leader_addr: Some(addr),
            ..
        }) => {
            let client = client_of(req);
            to_leader(state, &client, req, &Bytes::new(), leader_id, addr)
                .await
                .map(ReadPlan::Relayed)
        }
        Err(err) => Err(err.into()),
    }
}

/// Reads `key` from this node's applied state (off the async workers): the value, if any, and
/// the applied index it reflects.
pub async fn read_local(
    state: &AppState,
    key: String,
) -> Result<(Option<Bytes>, crate::core::Index, String), ApiError> {
    let kv = state.kv.clone();
    web::block(move || -> Result<_, StorageError> { Ok((kv.get(&key)?, kv.applied_index()?, key)) })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| storage_failure(state, e))
}

/// The answer to a failed read of the local state machine. Damaged stored data (a checksum
/// mismatch) also stops the node: it must not go on serving, or shipping in snapshots, data it
/// cannot trust (the reason names the key; see docs/security.md).
pub(crate) fn storage_failure(state: &AppState, err: StorageError) -> ApiError {
    if err.is_corrupt() {
        let reason = format!(
            "a read of the state machine found damaged data: {err}; {}",
            crate::storage::RESTORE_ADVICE
        );
        tracing::error!("{reason}");
        state.node.fail(reason);
        return ApiError::unavailable(
            "storage_corrupt",
            format!("this node found damaged data and is stopping: {err}"),
        );
    }
    ApiError::internal(err.to_string())
}
