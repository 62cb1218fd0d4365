//! `GET /metrics` in the Prometheus text format, and the middleware that counts and times every
//! HTTP request by route pattern, method and status.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use prometheus::{
    Encoder, GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use super::{ApiError, AppState};
use crate::core::Role;
use crate::messages::node::{ClientError, GetCluster, HealthState};

/// Counts and times a request under its route (`/v1/kv/{key}`, not the key: label values stay
/// few), written as the OpenAPI document writes it.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.node.metrics().clone());
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        let route = response
            .request()
            .match_pattern()
            .map_or_else(|| "unmatched".to_string(), |p| super::route_template(&p));
        let status = response.status().as_u16().to_string();
        metrics
            .http_requests
            .with_label_values(&[&route, &method, &status])
            .inc();
        metrics
            .http_seconds
            .with_label_values(&[&route, &method])
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}

fn gauge(registry: &Registry, name: &str, help: &str, value: i64) {
    if let Ok(g) = IntGauge::new(name, help) {
        g.set(value);
        let _ = registry.register(Box::new(g));
    }
}

fn float_gauge_vec(registry: &Registry, name: &str, help: &str, label: &str) -> Option<GaugeVec> {
    let g = GaugeVec::new(Opts::new(name, help), &[label]).ok()?;
    registry.register(Box::new(g.clone())).ok()?;
    Some(g)
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, label: &str) -> Option<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), &[label]).ok()?;
    registry.register(Box::new(g.clone())).ok()?;
    Some(g)
}

/// The node's counters and histograms, plus gauges of its current state: term, role, leader,
/// commit/applied/last index, and per-peer lag, round-trip time and silence when leader.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")),
)]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let status = state.node.status().await?;
    let cluster = state
        .node
        .addr()
        .send(GetCluster)
        .await
        .map_err(|e| ApiError::from(ClientError::Unavailable(e.to_string())))?;
    let now = Registry::new();
    gauge(&now, "raftix_term", "Current term", status.term as i64);
    gauge(
        &now,
        "raftix_lag_entries",
        "Entries behind the leader's commit this node last heard",
        status.lag as i64,
    );
    if let Some(health) = gauge_vec(
        &now,
        "raftix_health",
        "1 for this node's health state",
        "state",
    ) {
        for (name, state) in [
            ("ACTIVE", HealthState::Active),
            ("SYNCING", HealthState::Syncing),
            ("DEGRADED", HealthState::Degraded),
        ] {
            health
                .with_label_values(&[name])
                .set(i64::from(status.health.state == state));
        }
    }
    gauge(
        &now,
        "raftix_is_leader",
        "1 when this node is the leader",
        i64::from(status.role == Role::Leader),
    );
    gauge(
        &now,
        "raftix_leader_id",
        "Id of the known leader (0 when none)",
        status.leader.unwrap_or(0) as i64,
    );
    gauge(
        &now,
        "raftix_commit_index",
        "Commit index",
        status.commit as i64,
    );
    gauge(
        &now,
        "raftix_applied_index",
        "Last applied index",
        status.applied as i64,
    );
    gauge(
        &now,
        "raftix_last_log_index",
        "Last log index",
        status.last_log_index as i64,
    );
    if let Some(role) = gauge_vec(
        &now,
        "raftix_role",
        "1 for this node's current role",
        "role",
    ) {
        for r in [
            Role::Follower,
            Role::PreCandidate,
            Role::Candidate,
            Role::Leader,
        ] {
            role.with_label_values(&[r.as_str()])
                .set(i64::from(status.role == r));
        }
    }
    let lag = gauge_vec(
        &now,
        "raftix_peer_lag_entries",
        "Entries a follower is behind (leader only)",
        "peer",
    );
    let rtt = float_gauge_vec(
        &now,
        "raftix_peer_rtt_seconds",
        "Round trip of the latest acknowledged append (leader only)",
        "peer",
    );
    let silence = float_gauge_vec(
        &now,
        "raftix_peer_last_contact_seconds",
        "Time since a follower last answered (leader only)",
        "peer",
    );
    for member in cluster.members.iter().filter(|m| !m.is_self) {
        let peer = member.id.to_string();
        if let (Some(g), Some(v)) = (&lag, member.lag) {
            g.with_label_values(&[&peer]).set(v as i64);
        }
        if let (Some(g), Some(v)) = (&rtt, member.rtt_ms) {
            g.with_label_values(&[&peer]).set(v / 1000.0);
        }
        if let (Some(g), Some(v)) = (&silence, member.last_ack_ms_ago) {
            g.with_label_values(&[&peer]).set(v as f64 / 1000.0);
        }
    }
    gauge(
        &now,
        "raftix_http_inflight_requests",
        "HTTP requests this node is serving now (bounded by --max-inflight-requests)",
        i64::try_from(state.inflight.current()).unwrap_or(i64::MAX),
    );
    if state.region.is_some() {
        region_metrics(&state, &now).await?;
    }
    let mut families = state.node.metrics().registry.gather();
    families.extend(now.gather());
    families.extend(state.refusals.registry.gather());
    let mut out = Vec::new();
    let encoder = TextEncoder::new();
    encoder
        .encode(&families, &mut out)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type(encoder.format_type())
        .body(out))
}

/// Per remote region: link connected (this node's shipper: 0 on followers), lag in entries and
/// seconds, last acknowledged sequence, last sequence applied from it; conflicts resolved here
/// by strategy, failed merges and keys holding unresolved siblings (the same on every node).
async fn region_metrics(state: &AppState, now: &Registry) -> Result<(), ApiError> {
    let (regions, links) = super::region_links::link_views(state).await?;
    let int = |name: &str, help: &str| gauge_vec(now, name, help, "region");
    let connected = int(
        "raftix_region_connected",
        "1 when this node's last exchange with the region succeeded (only the leader ships)",
    );
    let lag = int(
        "raftix_region_lag_entries",
        "Mutations of this region the remote region has not acknowledged",
    );
    let acked = int(
        "raftix_region_acked_seq",
        "Last outbox sequence of this region the remote region acknowledged",
    );
    let applied = int(
        "raftix_region_applied_from_seq",
        "Last outbox sequence of the remote region applied here",
    );
    let lag_seconds = GaugeVec::new(
        Opts::new(
            "raftix_region_lag_seconds",
            "Age of the oldest mutation the remote region has not acknowledged (0 when none)",
        ),
        &["region"],
    )
    .ok()
    .filter(|g| now.register(Box::new(g.clone())).is_ok());
    for link in &links {
        let label = [link.id.as_str()];
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        if let Some(g) = &connected {
            g.with_label_values(&label).set(i64::from(link.connected));
        }
        if let Some(g) = &lag {
            g.with_label_values(&label).set(as_i64(link.lag_entries));
        }
        if let Some(g) = &acked {
            g.with_label_values(&label).set(as_i64(link.acked));
        }
        if let Some(g) = &applied {
            g.with_label_values(&label).set(as_i64(link.applied_from));
        }
        if let Some(g) = &lag_seconds {
            g.with_label_values(&label).set(link.lag_seconds);
        }
    }
    if let Ok(total) = IntCounterVec::new(
        Opts::new(
            "raftix_conflicts_total",
            "Conflicts between regions resolved here, by strategy",
        ),
        &["strategy"],
    ) {
        if now.register(Box::new(total.clone())).is_ok() {
            for (strategy, n) in &regions.stats.by_strategy {
                total.with_label_values(&[strategy]).inc_by(*n);
            }
        }
    }
    if let Ok(failed) = IntCounter::new(
        "raftix_conflicts_failed_total",
        "Conflicts where a custom merge failed and latest-timestamp decided",
    ) {
        failed.inc_by(regions.stats.failed);
        let _ = now.register(Box::new(failed));
    }
    gauge(
        now,
        "raftix_conflicts_unresolved",
        "Keys holding several siblings (multi-value conflicts not yet superseded)",
        i64::try_from(regions.unresolved).unwrap_or(i64::MAX),
    );
    Ok(())
}
