//! Read consistency of `GET /v1/kv/{key}` and `GET /v1/kv`.
//!
//! - `linearizable` (the default; alias `quorum`): the leader confirms it still leads with a
//!   quorum (ReadIndex) and waits until its state machine has applied everything committed
//!   before the read, then reads locally. A follower hands the read to the leader (forwarded, or
//!   307 with `?redirect=true`).
//! - `stale` (alias `one`): this node answers at once from its applied state, which may lag.

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;

use super::write::{client_of, to_leader};
use super::{ApiError, AppState};
use crate::messages::node::ClientError;
use crate::storage::StorageError;

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Reflects every write acknowledged before the read started.
    Linearizable,
    /// This node's applied state, possibly behind.
    Stale,
}

/// The `consistency` query parameter (default linearizable); an unknown value is a 400.
pub fn consistency_of(req: &HttpRequest) -> Result<Consistency, ApiError> {
    let value = req
        .query_string()
        .split('&')
        .find_map(|pair| pair.strip_prefix("consistency="));
    match value {
        None | Some("linearizable") | Some("quorum") => Ok(Consistency::Linearizable),
        Some("stale") | Some("one") => Ok(Consistency::Stale),
        Some(other) => Err(ApiError::bad_request(format!(
            "unknown consistency {other:?}: use linearizable (quorum) or stale (one)"
        ))),
    }
}

/// What to do with a read.
pub enum ReadPlan {
    /// Read locally now.
    Local,
    /// Answer this (the leader's answer, or a redirect to it).
    Relayed(HttpResponse),
}

/// Makes a linearizable read safe to serve locally, or hands it to the leader.
pub async fn prepare(state: &AppState, req: &HttpRequest) -> Result<ReadPlan, ApiError> {
    if consistency_of(req)? == Consistency::Stale {
        return Ok(ReadPlan::Local);
    }
    match state.node.read_barrier().await {
        Ok(_) => Ok(ReadPlan::Local),
        Err(ClientError::NotLeader {
            leader_id,
            leader_addr: Some(addr),
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
        .map_err(|e| ApiError::internal(e.to_string()))
}
