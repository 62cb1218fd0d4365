//! The state of every link to a remote region, computed at request time from the replicated
//! regions state (acknowledgements, applied sequences) and this node's shipper (connected, last
//! error: only the leader ships, so a follower sees its links as not connected). Shared by
//! `GET /v1/regions/status`, `/metrics` and the dashboard.

use actix_web::web;

use super::{ApiError, AppState};
use crate::storage::kv_regions::RegionsState;

/// One link as this node sees it: also one entry of `GET /v1/regions/status` (serialized as
/// is, so the document, the answer and the metrics cannot drift apart).
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LinkView {
    /// The remote region.
    pub id: String,
    /// Its endpoints.
    pub endpoints: Vec<String>,
    /// Whether it is the primary region.
    pub primary: bool,
    /// The last exchange with it succeeded (this node's shipper).
    pub connected: bool,
    /// The last error of the link, if the last exchange failed.
    pub last_error: Option<String>,
    /// When it last answered (Unix ms).
    pub last_contact_ms: Option<u64>,
    /// The last sequence of this region's outbox it acknowledged.
    #[serde(rename = "last_acked_seq")]
    pub acked: u64,
    /// The last outbox sequence of this region.
    pub last_seq: u64,
    /// Outbox entries it has not acknowledged.
    pub lag_entries: u64,
    /// Age of the oldest entry it has not acknowledged (0 when none).
    pub lag_seconds: f64,
    /// The last sequence of its outbox applied here.
    #[serde(rename = "applied_from_seq")]
    pub applied_from: u64,
    /// Mutations this node shipped to it since it started.
    pub shipped: u64,
    /// Failed exchanges since this node started.
    pub failures: u64,
}

/// The regions state and every link, now.
pub async fn link_views(state: &AppState) -> Result<(RegionsState, Vec<LinkView>), ApiError> {
    let kv = state.kv.clone();
    let links = state.links.clone();
    let now = super::auth::now_ms();
    web::block(move || {
        let regions = kv
            .regions_state()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let snapshot = links.snapshot();
        let last = regions.last_seq();
        let views = regions
            .remotes
            .values()
            .map(|r| {
                let link = snapshot.get(&r.id).cloned().unwrap_or_default();
                let lag_entries = last.saturating_sub(r.acked);
                let lag_seconds = if lag_entries == 0 {
                    0.0
                } else {
                    kv.outbox(r.acked.saturating_add(1), 1)
                        .ok()
                        .and_then(|e| e.first().map(|e| e.version.hlc.physical_ms))
                        .map_or(0.0, |at| now.saturating_sub(at) as f64 / 1000.0)
                };
                LinkView {
                    id: r.id.clone(),
                    endpoints: r.endpoints.clone(),
                    primary: regions.primary.as_ref() == Some(&r.id),
                    connected: link.connected,
                    last_error: link.last_error,
                    last_contact_ms: link.last_contact_ms,
                    acked: r.acked,
                    last_seq: last,
                    lag_entries,
                    lag_seconds,
                    applied_from: r.applied,
                    shipped: link.shipped,
                    failures: link.failures,
                }
            })
            .collect();
        Ok((regions, views))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
}
