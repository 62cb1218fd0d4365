//! Write acknowledgement across regions (see `docs/regions-design.md`): after a write commits
//! here, `semi-sync` also waits until the primary region acknowledged it and `sync` until every
//! region did. The mode is the region's setting (`PUT /v1/regions/replication`) or the request's
//! `?replication=async|semi-sync|sync`. A wait that times out still answers, with `202 Accepted`
//! and `"replicated": false`: the write is committed in this region (it will reach the others
//! when their links work), but not yet where it was asked to be.

use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest};

use super::input::query_param;
use super::{ApiError, AppState};
use crate::storage::kv_regions::{AckMode, RegionsState};

/// Interval between two looks at the acknowledgements.
const POLL: Duration = Duration::from_millis(10);

/// What became of the wait.
pub struct RegionAck {
    /// The `replication` object of the answer.
    pub outcome: super::regions_schema::ReplicationOutcome,
    /// Every region waited for acknowledged the write.
    pub complete: bool,
}

fn mode_of(req: &HttpRequest, regions: &RegionsState) -> Result<AckMode, ApiError> {
    match query_param(req, "replication") {
        None => Ok(regions.ack),
        Some(text) => AckMode::parse(&text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "replication={text:?} is not one of async, semi-sync, sync"
            ))
        }),
    }
}

async fn read(state: &AppState) -> Result<RegionsState, ApiError> {
    let kv = state.kv.clone();
    web::block(move || kv.regions_state())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Checks the request's `?replication=` before the write (a bad value is refused before
/// anything is written).
pub fn check_mode(req: &HttpRequest) -> Result<(), ApiError> {
    if let Some(text) = query_param(req, "replication") {
        if AckMode::parse(&text).is_none() {
            return Err(ApiError::bad_request(format!(
                "replication={text:?} is not one of async, semi-sync, sync"
            )));
        }
    }
    Ok(())
}

/// How much longer than a plain write a write may take on the leader because it waits for other
/// regions (the acknowledgement timeout; zero when it would not wait). A follower forwarding the
/// write adds it to its forwarding timeout, so it relays the leader's `202` instead of giving up
/// first with a `504` "may or may not be applied" on a write that is committed.
pub async fn forward_allowance(state: &AppState, req: &HttpRequest) -> Duration {
    if !state.kv.regions_active() {
        return Duration::ZERO;
    }
    let Ok(regions) = read(state).await else {
        return Duration::ZERO;
    };
    if !regions.active() {
        return Duration::ZERO;
    }
    match mode_of(req, &regions) {
        Ok(AckMode::SemiSync | AckMode::Sync) => Duration::from_millis(regions.ack_timeout_ms),
        Ok(AckMode::Async) | Err(_) => Duration::ZERO,
    }
}

/// Waits as the mode asks for the write just applied here; `None` when there is nothing to wait
/// for (`async`, or the region replicates to no other region).
pub async fn wait(state: &AppState, req: &HttpRequest) -> Result<Option<RegionAck>, ApiError> {
    if !state.kv.regions_active() {
        return Ok(None);
    }
    let regions = read(state).await?;
    if !regions.active() {
        return Ok(None);
    }
    let mode = mode_of(req, &regions)?;
    let targets: Vec<String> = match mode {
        AckMode::Async => return Ok(None),
        AckMode::SemiSync => match &regions.primary {
            Some(primary) if regions.remotes.contains_key(primary) => vec![primary.clone()],
            // The primary is this region (or none is set): committed here is enough.
            _ => Vec::new(),
        },
        AckMode::Sync => regions.remotes.keys().cloned().collect(),
    };
    // The write's outbox entry is at or below the last sequence now (later writes may be
    // included: waiting for them too is conservative).
    let seq = regions.last_seq();
    let deadline = Instant::now() + Duration::from_millis(regions.ack_timeout_ms);
    let mut current = regions;
    loop {
        let pending: Vec<&String> = targets
            .iter()
            .filter(|id| current.remotes.get(*id).is_none_or(|r| r.acked < seq))
            .collect();
        if pending.is_empty() || Instant::now() >= deadline {
            let complete = pending.is_empty();
            let acknowledged_by = targets
                .iter()
                .filter(|t| !pending.contains(t))
                .cloned()
                .collect();
            return Ok(Some(RegionAck {
                outcome: super::regions_schema::ReplicationOutcome {
                    mode: mode.as_str().to_string(),
                    committed: true,
                    replicated: complete,
                    seq: Some(seq),
                    acknowledged_by,
                    pending: pending.into_iter().cloned().collect(),
                },
                complete,
            }));
        }
        actix::clock::sleep(POLL).await;
        current = read(state).await?;
    }
}
