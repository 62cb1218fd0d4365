//! Per-node metrics in a Prometheus registry of the node's own (several nodes in one process
//! report separately). Counters and histograms are recorded where things happen; gauges of the
//! node's state (term, role, indexes, per-peer lag) are computed when `/metrics` is scraped.

use std::time::Duration;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};

/// Counters and histograms of one node.
pub struct NodeMetrics {
    /// Where every metric below is registered.
    pub registry: Registry,
    /// Durable log writes (each one transaction and one fsync).
    pub fsyncs: IntCounter,
    /// `Persist` requests written (several per fsync under load: group commit).
    pub persist_ops: IntCounter,
    /// Log entries made durable.
    pub persisted_entries: IntCounter,
    /// Duration of durable log writes.
    pub fsync_seconds: Histogram,
    /// Persist requests per durable write.
    pub fsync_batch: Histogram,
    /// Entries applied to the state machine.
    pub applied_entries: IntCounter,
    /// Duration of state machine apply batches.
    pub apply_seconds: Histogram,
    /// Client proposals committed and applied.
    pub proposals_ok: IntCounter,
    /// Client proposals refused or failed.
    pub proposals_failed: IntCounter,
    /// Times this node observed a new leader.
    pub leader_changes: IntCounter,
    /// Snapshots this node took.
    pub snapshots_taken: IntCounter,
    /// Snapshot transfers this node started as leader.
    pub snapshots_sent: IntCounter,
    /// Snapshots received from a leader and installed.
    pub snapshots_installed: IntCounter,
    /// Peer messages received.
    pub messages_in: IntCounter,
    /// Peer messages sent.
    pub messages_out: IntCounter,
    /// Peer messages and connections refused, by reason (`non_member`: a vote from a non-voter
    /// or a message from a removed member).
    pub peer_refused: IntCounterVec,
    /// HTTP requests by route pattern, method and status.
    pub http_requests: IntCounterVec,
    /// HTTP request duration by route pattern and method.
    pub http_seconds: HistogramVec,
}

// Metric names, helps and buckets below are constants: building them cannot fail at run time
// (a unit test builds them all), so `expect` here never sees input or I/O.
const STATIC: &str = "static metric definition accepted by prometheus";

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let metric = IntCounter::new(name, help).expect(STATIC);
    register(registry, Box::new(metric.clone()));
    metric
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let metric =
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect(STATIC);
    register(registry, Box::new(metric.clone()));
    metric
}

fn register(registry: &Registry, metric: Box<dyn prometheus::core::Collector>) {
    if let Err(err) = registry.register(metric) {
        tracing::warn!("metric not exported: {err}");
    }
}

const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

impl NodeMetrics {
    /// Fresh metrics in a new registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        let r = &registry;
        // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ... from
        // /proc (prometheus's own collector, the names every Prometheus user knows).
        #[cfg(target_os = "linux")]
        register(
            r,
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        );
        let http_requests = IntCounterVec::new(
            Opts::new(
                "raftix_http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )
        .expect(STATIC);
        register(r, Box::new(http_requests.clone()));
        let http_seconds = HistogramVec::new(
            HistogramOpts::new(
                "raftix_http_request_duration_seconds",
                "HTTP request duration",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "method"],
        )
        .expect(STATIC);
        register(r, Box::new(http_seconds.clone()));
        let peer_refused = IntCounterVec::new(
            Opts::new(
                "raftix_peer_refused_total",
                "Peer connections and messages refused, by reason",
            ),
            &["reason"],
        )
        .expect(STATIC);
        register(r, Box::new(peer_refused.clone()));
        Self {
            fsyncs: counter(
                r,
                "raftix_log_fsyncs_total",
                "Durable log writes (one transaction and one fsync each)",
            ),
            persist_ops: counter(
                r,
                "raftix_log_persist_requests_total",
                "Persist requests written",
            ),
            persisted_entries: counter(
                r,
                "raftix_log_persisted_entries_total",
                "Log entries made durable",
            ),
            fsync_seconds: histogram(
                r,
                "raftix_log_fsync_duration_seconds",
                "Duration of durable log writes",
                LATENCY_BUCKETS.to_vec(),
            ),
            fsync_batch: histogram(
                r,
                "raftix_log_fsync_batch_size",
                "Persist requests per durable write (group commit)",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
            ),
            applied_entries: counter(
                r,
                "raftix_applied_entries_total",
                "Entries applied to the state machine",
            ),
            apply_seconds: histogram(
                r,
                "raftix_apply_duration_seconds",
                "Duration of state machine apply batches",
                LATENCY_BUCKETS.to_vec(),
            ),
            proposals_ok: counter(
                r,
                "raftix_proposals_committed_total",
                "Client proposals committed and applied",
            ),
            proposals_failed: counter(
                r,
                "raftix_proposals_failed_total",
                "Client proposals refused or failed",
            ),
            leader_changes: counter(
                r,
                "raftix_leader_changes_total",
                "Times this node saw a new leader",
            ),
            snapshots_taken: counter(r, "raftix_snapshots_taken_total", "Snapshots taken"),
            snapshots_sent: counter(
                r,
                "raftix_snapshots_sent_total",
                "Snapshot transfers started as leader",
            ),
            snapshots_installed: counter(
                r,
                "raftix_snapshots_installed_total",
                "Snapshots received from a leader and installed",
            ),
            messages_in: counter(
                r,
                "raftix_peer_messages_received_total",
                "Peer messages received",
            ),
            messages_out: counter(r, "raftix_peer_messages_sent_total", "Peer messages sent"),
            http_requests,
            peer_refused,
            http_seconds,
            registry,
        }
    }

    /// Records one group-committed write of `ops` persist requests holding `entries` entries.
    pub fn record_fsync(&self, ops: usize, entries: usize, took: Duration) {
        self.fsyncs.inc();
        self.persist_ops.inc_by(ops as u64);
        self.persisted_entries.inc_by(entries as u64);
        self.fsync_seconds.observe(took.as_secs_f64());
        self.fsync_batch.observe(ops as f64);
    }

    /// Records one apply batch of `entries` entries.
    pub fn record_apply(&self, entries: usize, took: Duration) {
        self.applied_entries.inc_by(entries as u64);
        self.apply_seconds.observe(took.as_secs_f64());
    }

    /// Reads a counter.
    pub fn get(counter: &IntCounter) -> u64 {
        counter.get()
    }

    /// Adds one to a counter.
    pub fn bump(counter: &IntCounter) {
        counter.inc();
    }
}

impl Default for NodeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for NodeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeMetrics")
            .field("fsyncs", &self.fsyncs.get())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_registered_and_exported() {
        let m = NodeMetrics::new();
        m.record_fsync(3, 7, Duration::from_millis(2));
        m.record_apply(5, Duration::from_micros(300));
        m.http_requests
            .with_label_values(&["/v1/status", "GET", "200"])
            .inc();
        m.http_seconds
            .with_label_values(&["/v1/status", "GET"])
            .observe(0.001);
        let names: Vec<String> = m
            .registry
            .gather()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        let raftix = names.iter().filter(|n| n.starts_with("raftix_")).count();
        assert_eq!(raftix, 17, "{names:?}");
        #[cfg(target_os = "linux")]
        for process in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
        ] {
            assert!(names.iter().any(|n| n == process), "{process}: {names:?}");
        }
        assert_eq!(NodeMetrics::get(&m.persisted_entries), 7);
        assert_eq!(NodeMetrics::get(&m.persist_ops), 3);
        assert_eq!(NodeMetrics::get(&m.applied_entries), 5);
    }
}
