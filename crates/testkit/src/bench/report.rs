//! The result of a run, printed as text or JSON.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::driver::Tally;
use super::target::NodeView;
use super::BenchConfig;

/// Latency percentiles of the successful requests, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Latencies {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// Everything measured by one run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `raftix` or `etcd`.
    pub target: &'static str,
    /// The workload's name.
    pub workload: &'static str,
    /// The endpoints given.
    pub endpoints: Vec<String>,
    /// Whether every request went to the leader.
    pub leader_only: bool,
    /// Whether a client moved on to the next endpoint after a failure.
    pub rotate_on_error: bool,
    /// The run ended once this many requests succeeded (warmup included), if set.
    pub total_ops: Option<u64>,
    /// Concurrent clients.
    pub clients: usize,
    /// Client threads.
    pub threads: usize,
    /// Size of the values written.
    pub value_bytes: usize,
    /// Number of keys.
    pub keys: u64,
    /// Warmup before measuring, in seconds.
    pub warmup_secs: f64,
    /// Measured time, in seconds.
    pub duration_secs: f64,
    /// Successful requests during the measurement.
    pub ops: u64,
    /// Failed requests during the measurement.
    pub errors: u64,
    /// Successful requests per second.
    pub throughput_ops_s: f64,
    /// Latencies of the successful requests.
    pub latency_ms: Latencies,
    /// Failed requests by kind (`http 503`, `timeout`, `connect`, ...).
    pub error_kinds: BTreeMap<String, u64>,
    /// One example per failure kind.
    pub error_examples: BTreeMap<String, String>,
    /// Successful requests in each second of the measurement.
    pub ops_per_second: Vec<u64>,
    /// Failed requests in each second of the measurement.
    pub errors_per_second: Vec<u64>,
    /// Seconds of the measurement without a single successful request (stalls).
    pub stalled_seconds: usize,
    /// Each node's role and term before the run (preload and warmup included).
    pub nodes_before: Vec<NodeView>,
    /// Each node's role and term after the run.
    pub nodes_after: Vec<NodeView>,
}

/// Microseconds to milliseconds, rounded to the microsecond.
fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

impl Report {
    /// The report of a run of `config` measured over `measured` with results `tally`.
    pub fn new(
        config: &BenchConfig,
        threads: usize,
        measured: Duration,
        tally: Tally,
        nodes_before: Vec<NodeView>,
        nodes_after: Vec<NodeView>,
    ) -> Self {
        let h = &tally.latency;
        let secs = measured.as_secs_f64();
        let ops = h.count();
        let errors = tally.failures.values().sum();
        // A last, partial second is not a stall.
        let full_seconds = (measured.as_secs() as usize).min(tally.ops_per_second.len());
        let stalled_seconds = tally.ops_per_second[..full_seconds]
            .iter()
            .filter(|&&n| n == 0)
            .count();
        Report {
            target: config.target.name(),
            workload: config.workload.name(),
            endpoints: config.endpoints.clone(),
            leader_only: config.leader_only,
            rotate_on_error: config.rotate_on_error,
            total_ops: config.total_ops,
            clients: config.clients,
            threads,
            value_bytes: config.value_bytes,
            keys: config.keys,
            warmup_secs: config.warmup.as_secs_f64(),
            duration_secs: secs,
            ops,
            errors,
            throughput_ops_s: if secs > 0.0 { ops as f64 / secs } else { 0.0 },
            latency_ms: Latencies {
                p50: ms(h.percentile(50.0)),
                p90: ms(h.percentile(90.0)),
                p99: ms(h.percentile(99.0)),
                p999: ms(h.percentile(99.9)),
                max: ms(h.max()),
                mean: h.mean() / 1000.0,
            },
            error_kinds: tally.failures,
            error_examples: tally.examples,
            ops_per_second: tally.ops_per_second,
            errors_per_second: tally.errors_per_second,
            stalled_seconds,
            nodes_before,
            nodes_after,
        }
    }

    /// Whether the leader or any term changed between before and after the run.
    pub fn leadership_changed(&self) -> bool {
        let summary = |views: &[NodeView]| {
            views
                .iter()
                .map(|v| (v.endpoint.clone(), v.leader, v.term))
                .collect::<Vec<_>>()
        };
        summary(&self.nodes_before) != summary(&self.nodes_after)
    }
}

fn nodes(f: &mut fmt::Formatter<'_>, label: &str, views: &[NodeView]) -> fmt::Result {
    write!(f, "{label:<10}")?;
    for v in views {
        match (&v.error, v.leader, v.term) {
            (Some(e), _, _) => write!(f, " {} error ({e});", v.endpoint)?,
            (None, leader, term) => {
                let role = match leader {
                    Some(true) => "leader",
                    Some(false) => "follower",
                    None => "?",
                };
                let term = term.map_or("?".to_string(), |t| t.to_string());
                write!(f, " {} {role} term {term};", v.endpoint)?;
            }
        }
    }
    writeln!(f)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.latency_ms;
        writeln!(
            f,
            "{} {}: {} clients on {} thread(s), {} endpoint(s){}, {} B values, {} keys",
            self.target,
            self.workload,
            self.clients,
            self.threads,
            self.endpoints.len(),
            if self.leader_only {
                " (leader only)"
            } else {
                ""
            },
            self.value_bytes,
            self.keys
        )?;
        writeln!(
            f,
            "throughput {:.0} ops/s ({} ops in {:.1} s after {:.1} s warmup), {} errors",
            self.throughput_ops_s, self.ops, self.duration_secs, self.warmup_secs, self.errors
        )?;
        writeln!(
            f,
            "latency ms p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3}",
            l.p50, l.p90, l.p99, l.p999, l.max, l.mean
        )?;
        for (kind, n) in &self.error_kinds {
            let example = self.error_examples.get(kind).map_or("", String::as_str);
            writeln!(f, "errors    {n} x {kind}: {example}")?;
        }
        writeln!(f, "ops/s     {:?}", self.ops_per_second)?;
        if self.stalled_seconds > 0 {
            writeln!(
                f,
                "stalls    {} second(s) without a success",
                self.stalled_seconds
            )?;
        }
        nodes(f, "before", &self.nodes_before)?;
        nodes(f, "after", &self.nodes_after)?;
        if self.leadership_changed() {
            writeln!(f, "note      leader or term changed during the run")?;
        }
        Ok(())
    }
}
