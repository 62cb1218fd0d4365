//! `GET /metrics` in the Prometheus text format, and the middleware that counts and times every
//! HTTP request by route pattern, method and status.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use prometheus::{Encoder, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use super::{ApiError, AppState};
use crate::core::Role;
use crate::messages::node::{ClientError, GetCluster, HealthState};

/// Counts and times a request under its route pattern (`/v1/kv/{key:.+}`, not the key: label
/// values stay few).
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
            .unwrap_or_else(|| "unmatched".to_string());
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

fn gauge_vec(registry: &Registry, name: &str, help: &str, label: &str) -> Option<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), &[label]).ok()?;
    registry.register(Box::new(g.clone())).ok()?;
    Some(g)
}

/// The node's counters and histograms, plus gauges of its current state: term, role, leader,
/// commit/applied/last index, and per-peer lag, round-trip time and silence when leader.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
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
    let rtt = gauge_vec(
        &now,
        "raftix_peer_rtt_microseconds",
        "Round trip of the latest acknowledged append (leader only)",
        "peer",
    );
    let silence = gauge_vec(
        &now,
        "raftix_peer_last_contact_milliseconds",
        "Time since a follower last answered (leader only)",
        "peer",
    );
    for member in cluster.members.iter().filter(|m| !m.is_self) {
        let peer = member.id.to_string();
        if let (Some(g), Some(v)) = (&lag, member.lag) {
            g.with_label_values(&[&peer]).set(v as i64);
        }
        if let (Some(g), Some(v)) = (&rtt, member.rtt_ms) {
            g.with_label_values(&[&peer]).set((v * 1000.0) as i64);
        }
        if let (Some(g), Some(v)) = (&silence, member.last_ack_ms_ago) {
            g.with_label_values(&[&peer]).set(v as i64);
        }
    }
    gauge(
        &now,
        "raftix_http_inflight_requests",
        "HTTP requests this node is serving now (bounded by --max-inflight-requests)",
        i64::try_from(state.inflight.current()).unwrap_or(i64::MAX),
    );
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
