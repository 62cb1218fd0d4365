//! The last five minutes of this node, one sample a second, for the dashboard's charts: entries
//! committed per second (the cluster's write rate), key-value reads this node served per second,
//! its HTTP latency (p50, p99), commit index, log fsync latency (p99), each follower's lag (on
//! the leader) and the moments leadership changed. Sampled from the node's own metrics and
//! status by one task per gateway, started with it ([`start_sampling`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::proto::MetricFamily;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

/// How many samples are kept (one a second: five minutes).
pub const KEPT: usize = 300;
/// How often a sample is taken.
const EVERY: Duration = Duration::from_secs(1);

/// One second of the node.
#[derive(Clone, Debug, Serialize, ToSchema, PartialEq)]
pub struct Sample {
    /// Seconds since the gateway started.
    pub at_secs: f64,
    /// Entries committed per second (the whole cluster's write rate).
    pub commits_per_sec: f64,
    /// `GET /v1/kv...` requests this node answered per second.
    pub reads_per_sec: f64,
    /// Median HTTP request duration over the second, milliseconds (`None`: no request).
    pub http_p50_ms: Option<f64>,
    /// 99th percentile HTTP request duration, milliseconds.
    pub http_p99_ms: Option<f64>,
    /// 99th percentile log fsync duration, milliseconds (`None`: no fsync).
    pub fsync_p99_ms: Option<f64>,
    /// Commit index.
    pub commit: u64,
    /// Term.
    pub term: u64,
    /// Leadership changed during the second (a new term or a leader change this node saw).
    pub leader_changed: bool,
    /// Each follower's lag in entries (leader only).
    pub lag: BTreeMap<u64, u64>,
}

/// Cumulative counts the next sample is a difference from.
#[derive(Clone, Debug, Default)]
struct Totals {
    commit: u64,
    term: u64,
    leader_changes: u64,
    reads: f64,
    http: Vec<(f64, f64)>,
    fsync: Vec<(f64, f64)>,
}

/// The kept samples.
#[derive(Debug, Default)]
pub struct History {
    samples: VecDeque<Sample>,
    last: Option<(Instant, Totals)>,
}

/// A history shared by the gateway's workers and its sampling task.
pub type SharedHistory = Arc<Mutex<History>>;

impl History {
    /// The kept samples, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.iter().cloned().collect()
    }

    /// Records the totals read at `now`; from the second call on, a sample of the difference.
    fn record(&mut self, now: Instant, since_start: f64, totals: Totals, lag: BTreeMap<u64, u64>) {
        if let Some((then, last)) = self.last.take() {
            let secs = now.duration_since(then).as_secs_f64().max(1e-3);
            let sample = Sample {
                at_secs: since_start,
                commits_per_sec: totals.commit.saturating_sub(last.commit) as f64 / secs,
                reads_per_sec: (totals.reads - last.reads).max(0.0) / secs,
                http_p50_ms: quantile(&last.http, &totals.http, 0.5).map(|s| s * 1000.0),
                http_p99_ms: quantile(&last.http, &totals.http, 0.99).map(|s| s * 1000.0),
                fsync_p99_ms: quantile(&last.fsync, &totals.fsync, 0.99).map(|s| s * 1000.0),
                commit: totals.commit,
                term: totals.term,
                leader_changed: totals.term != last.term
                    || totals.leader_changes != last.leader_changes,
                lag,
            };
            if self.samples.len() == KEPT {
                self.samples.pop_front();
            }
            self.samples.push_back(sample);
        }
        self.last = Some((now, totals));
    }
}

/// The `q` quantile of what a histogram observed between two readings of its cumulative
/// buckets (`(upper bound, count)`): the upper bound of the first bucket reaching it.
fn quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> Option<f64> {
    let delta: Vec<(f64, f64)> = after
        .iter()
        .map(|&(upper, count)| {
            let was = before
                .iter()
                .find(|(b, _)| *b == upper)
                .map_or(0.0, |&(_, c)| c);
            (upper, count - was)
        })
        .collect();
    let total = delta.last().map(|&(_, c)| c)?;
    if total <= 0.0 {
        return None;
    }
    delta
        .iter()
        .find(|&&(_, c)| c >= q * total)
        .map(|&(upper, _)| upper)
}

/// The cumulative buckets of the histogram family `name`, summed over its label sets.
fn buckets(families: &[MetricFamily], name: &str) -> Vec<(f64, f64)> {
    let mut sums: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for family in families.iter().filter(|f| f.name() == name) {
        for metric in family.get_metric() {
            let histogram = metric.get_histogram();
            for bucket in histogram.get_bucket() {
                let upper = bucket.upper_bound();
                let entry = sums.entry(upper.to_bits()).or_insert((upper, 0.0));
                entry.1 += bucket.cumulative_count() as f64;
            }
            let entry = sums
                .entry(f64::INFINITY.to_bits())
                .or_insert((f64::INFINITY, 0.0));
            entry.1 += histogram.get_sample_count() as f64;
        }
    }
    let mut list: Vec<(f64, f64)> = sums.into_values().collect();
    list.sort_by(|a, b| a.0.total_cmp(&b.0));
    list
}

/// Key-value reads this node answered so far (`GET` on `/v1/kv` routes).
fn reads(families: &[MetricFamily]) -> f64 {
    families
        .iter()
        .filter(|f| f.name() == "raftix_http_requests_total")
        .flat_map(|f| f.get_metric())
        .filter(|m| {
            let label = |name: &str| {
                m.get_label()
                    .iter()
                    .find(|l| l.name() == name)
                    .map(|l| l.value().to_string())
                    .unwrap_or_default()
            };
            label("method") == "GET" && label("route").starts_with("/v1/kv")
        })
        .map(|m| m.get_counter().get_value())
        .sum()
}

/// Takes one reading of the node.
async fn read(state: &AppState) -> Option<(Totals, BTreeMap<u64, u64>)> {
    let status = state.node.status().await.ok()?;
    let metrics = state.node.metrics();
    let families = metrics.registry.gather();
    let totals = Totals {
        commit: status.commit,
        term: status.term,
        leader_changes: crate::metrics::NodeMetrics::get(&metrics.leader_changes),
        reads: reads(&families),
        http: buckets(&families, "raftix_http_request_duration_seconds"),
        fsync: buckets(&families, "raftix_log_fsync_duration_seconds"),
    };
    let lag = status.peers.iter().map(|(&id, p)| (id, p.lag)).collect();
    Some((totals, lag))
}

/// Starts sampling `state`'s node every second into its history, for as long as the runtime
/// runs (call once per gateway, inside its actix system).
pub fn start_sampling(state: AppState) {
    actix_rt::spawn(async move {
        let mut ticks = actix_rt::time::interval(EVERY);
        loop {
            ticks.tick().await;
            if let Some((totals, lag)) = read(&state).await {
                let since = state.started.elapsed().as_secs_f64();
                let mut history = state.history.lock().unwrap_or_else(|e| e.into_inner());
                history.record(Instant::now(), since, totals, lag);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_differences_per_second_and_quantiles_come_from_bucket_deltas() {
        let mut history = History::default();
        let start = Instant::now();
        let totals = |commit, term, http: &[(f64, f64)]| Totals {
            commit,
            term,
            leader_changes: 0,
            reads: commit as f64,
            http: http.to_vec(),
            fsync: Vec::new(),
        };
        history.record(
            start,
            0.0,
            totals(10, 1, &[(0.001, 5.0), (0.01, 5.0), (f64::INFINITY, 5.0)]),
            BTreeMap::new(),
        );
        assert!(
            history.samples().is_empty(),
            "the first reading is only a base"
        );
        let later = start + Duration::from_secs(2);
        let lag = BTreeMap::from([(2, 7)]);
        history.record(
            later,
            2.0,
            totals(
                30,
                2,
                &[(0.001, 6.0), (0.01, 105.0), (f64::INFINITY, 105.0)],
            ),
            lag.clone(),
        );
        let sample = &history.samples()[0];
        assert_eq!(sample.commits_per_sec, 10.0);
        assert_eq!(sample.reads_per_sec, 10.0);
        assert_eq!(
            sample.http_p50_ms,
            Some(10.0),
            "99 of the 100 new requests took 1-10 ms"
        );
        assert_eq!(sample.fsync_p99_ms, None, "no fsync in the second");
        assert!(sample.leader_changed, "the term moved");
        assert_eq!(sample.lag, lag);
        for i in 0..KEPT + 5 {
            history.record(
                later + Duration::from_secs(i as u64 + 1),
                0.0,
                totals(30, 2, &[]),
                BTreeMap::new(),
            );
        }
        assert_eq!(history.samples().len(), KEPT, "five minutes are kept");
    }
}
