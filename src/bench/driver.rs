//! Runs a workload: node views, preload, warmup, measurement, node views again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::histogram::Histogram;
use super::report::Report;
use super::target::{view, NodeView, RequestPlan};
use super::{BenchConfig, BenchError, Target, Workload};

/// Most concurrent writers while preloading keys.
const PRELOAD_CONCURRENCY: usize = 32;
/// Attempts per key while preloading.
const PRELOAD_ATTEMPTS: u32 = 5;
/// How long a client pauses after a failed request.
const FAILURE_PAUSE: Duration = Duration::from_millis(10);
/// How long a node has to answer a status query.
const VIEW_TIMEOUT: Duration = Duration::from_secs(2);

/// A small, fast pseudo-random generator (xorshift64*) for picking keys; one per client.
#[derive(Clone, Debug)]
pub struct KeyPicker(u64);

impl KeyPicker {
    /// A generator seeded with `seed` (any value; 0 is replaced).
    pub fn new(seed: u64) -> Self {
        KeyPicker(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A key number below `keys` (`keys` >= 1).
    pub fn next_below(&mut self, keys: u64) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D) % keys.max(1)
    }
}

/// What one client (or, merged, a whole run) measured.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Latencies of successful requests, in microseconds.
    pub latency: Histogram,
    /// Failures by kind.
    pub failures: BTreeMap<String, u64>,
    /// One example detail per failure kind.
    pub examples: BTreeMap<String, String>,
    /// Successful requests completed in each second of the measurement.
    pub ops_per_second: Vec<u64>,
    /// Failed requests completed in each second of the measurement.
    pub errors_per_second: Vec<u64>,
}

impl Tally {
    fn new(seconds: usize) -> Self {
        Tally {
            latency: Histogram::new(),
            failures: BTreeMap::new(),
            examples: BTreeMap::new(),
            ops_per_second: vec![0; seconds],
            errors_per_second: vec![0; seconds],
        }
    }

    /// Adds `other`'s counts to this one.
    pub fn merge(&mut self, other: &Tally) {
        self.latency.merge(&other.latency);
        for (kind, n) in &other.failures {
            *self.failures.entry(kind.clone()).or_default() += n;
        }
        for (kind, detail) in &other.examples {
            self.examples
                .entry(kind.clone())
                .or_insert_with(|| detail.clone());
        }
        merge_counts(&mut self.ops_per_second, &other.ops_per_second);
        merge_counts(&mut self.errors_per_second, &other.errors_per_second);
    }
}

fn merge_counts(mine: &mut Vec<u64>, theirs: &[u64]) {
    if mine.len() < theirs.len() {
        mine.resize(theirs.len(), 0);
    }
    for (m, t) in mine.iter_mut().zip(theirs) {
        *m += t;
    }
}

/// The instants of a run.
#[derive(Clone, Copy, Debug)]
struct Window {
    /// Measurement starts (the warmup ends).
    measure: Instant,
    /// Everything stops.
    end: Instant,
}

/// Runs `future` to completion on a fresh single-threaded actix system in its own thread.
fn on_system<F, Fut, T>(name: &str, make: F) -> Result<T, BenchError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    let handle = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || actix_rt::System::new().block_on(make()))
        .map_err(|e| BenchError::Runtime(format!("cannot start thread {name}: {e}")))?;
    handle
        .join()
        .map_err(|_| BenchError::Runtime(format!("thread {name} panicked")))
}

/// An HTTP client holding at most one connection.
fn one_connection_client(timeout: Duration) -> awc::Client {
    awc::Client::builder()
        .timeout(timeout)
        .disable_redirects()
        .connector(awc::Connector::new().limit(1))
        .finish()
}

/// Every endpoint's view of itself.
async fn views(target: Target, endpoints: Vec<String>) -> Vec<NodeView> {
    let client = awc::Client::builder().disable_redirects().finish();
    let asks = endpoints
        .iter()
        .map(|endpoint| view(&client, target, endpoint, VIEW_TIMEOUT));
    futures::future::join_all(asks).await
}

/// Writes every key once, `PRELOAD_CONCURRENCY` at a time.
async fn preload(config: BenchConfig, plan: RequestPlan) -> Result<(), BenchError> {
    let writers = config.clients.clamp(1, PRELOAD_CONCURRENCY);
    let jobs = (0..writers).map(|w| {
        let plan = plan.clone();
        let config = config.clone();
        async move {
            let client = one_connection_client(config.timeout);
            let endpoint = &config.endpoints[w % config.endpoints.len()];
            let mut key = w as u64;
            while key < config.keys {
                let mut attempt = 0;
                loop {
                    match plan.issue_as(&client, endpoint, Workload::Write, key).await {
                        Ok(()) => break,
                        Err(f) if attempt + 1 >= PRELOAD_ATTEMPTS => {
                            return Err(BenchError::Preload(format!(
                                "key {key} on {endpoint}: {}: {}",
                                f.kind, f.detail
                            )))
                        }
                        Err(_) => {
                            attempt += 1;
                            actix_rt::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
                key += writers as u64;
            }
            Ok(())
        }
    });
    futures::future::try_join_all(jobs).await.map(|_| ())
}

/// One client's loop until the end of the window.
async fn client_loop(
    plan: Arc<RequestPlan>,
    endpoint: String,
    seed: u64,
    keys: u64,
    timeout: Duration,
    window: Window,
) -> Tally {
    let seconds = seconds_of(window.end.saturating_duration_since(window.measure));
    let mut tally = Tally::new(seconds);
    let client = one_connection_client(timeout);
    let mut picker = KeyPicker::new(seed);
    let end = tokio::time::Instant::from_std(window.end);
    loop {
        let started = Instant::now();
        if started >= window.end {
            break;
        }
        let key = picker.next_below(keys);
        let outcome = match tokio::time::timeout_at(end, plan.issue(&client, &endpoint, key)).await
        {
            Ok(outcome) => outcome,
            // The run ended with this request in flight: it is not counted.
            Err(_) => break,
        };
        let done = Instant::now();
        let failed = outcome.is_err();
        if done >= window.measure {
            let second = done.duration_since(window.measure).as_secs() as usize;
            let second = second.min(seconds.saturating_sub(1));
            match outcome {
                Ok(()) => {
                    let micros = done.duration_since(started).as_micros();
                    tally
                        .latency
                        .record(u64::try_from(micros).unwrap_or(u64::MAX));
                    tally.ops_per_second[second] += 1;
                }
                Err(f) => {
                    *tally.failures.entry(f.kind.clone()).or_default() += 1;
                    tally.examples.entry(f.kind).or_insert(f.detail);
                    tally.errors_per_second[second] += 1;
                }
            }
        }
        if failed {
            actix_rt::time::sleep(FAILURE_PAUSE).await;
        }
    }
    tally
}

/// Whole seconds covering `d` (at least one).
fn seconds_of(d: Duration) -> usize {
    (d.as_millis().div_ceil(1000) as usize).max(1)
}

/// The endpoint each client talks to: round-robin over the endpoints, or all the leader.
fn assign(config: &BenchConfig, before: &[NodeView]) -> Result<Vec<String>, BenchError> {
    if config.leader_only {
        let leader = before
            .iter()
            .find(|v| v.leader == Some(true))
            .ok_or_else(|| {
                BenchError::NoLeader(
                    before
                        .iter()
                        .map(|v| match &v.error {
                            Some(e) => format!("{}: {e}", v.endpoint),
                            None => format!("{}: follower", v.endpoint),
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })?;
        return Ok(vec![leader.endpoint.clone(); config.clients]);
    }
    Ok((0..config.clients)
        .map(|i| config.endpoints[i % config.endpoints.len()].clone())
        .collect())
}

/// Runs the benchmark described by `config` and returns its report.
pub fn run(config: &BenchConfig) -> Result<Report, BenchError> {
    if config.target == Target::Etcd && config.workload == Workload::ReadLease {
        return Err(BenchError::Usage(
            "etcd has no lease reads over its gateway: use read-linearizable or read-stale".into(),
        ));
    }
    if config.endpoints.is_empty() || config.clients == 0 || config.keys == 0 {
        return Err(BenchError::Usage(
            "need at least one endpoint, one client and one key".into(),
        ));
    }
    let plan = RequestPlan::new(config.target, config.workload, config.value_bytes);
    let (target, endpoints) = (config.target, config.endpoints.clone());
    let before = on_system("bench-views", move || views(target, endpoints))?;
    let assigned = assign(config, &before)?;
    if config.preload && config.workload.is_read() {
        let (c, p) = (config.clone(), plan.clone());
        on_system("bench-preload", move || preload(c, p))??;
    }

    let threads = config.threads.clamp(1, config.clients);
    let start = Instant::now();
    let window = Window {
        measure: start + config.warmup,
        end: start + config.warmup + config.duration,
    };
    let plan = Arc::new(plan);
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let mine: Vec<(usize, String)> = assigned
            .iter()
            .enumerate()
            .filter(|(i, _)| i % threads == t)
            .map(|(i, e)| (i, e.clone()))
            .collect();
        let plan = Arc::clone(&plan);
        let (keys, timeout) = (config.keys, config.timeout);
        let handle = std::thread::Builder::new()
            .name(format!("bench-{t}"))
            .spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let loops = mine.into_iter().map(|(i, endpoint)| {
                        client_loop(
                            Arc::clone(&plan),
                            endpoint,
                            i as u64 + 1,
                            keys,
                            timeout,
                            window,
                        )
                    });
                    futures::future::join_all(loops).await
                })
            })
            .map_err(|e| BenchError::Runtime(format!("cannot start a client thread: {e}")))?;
        handles.push(handle);
    }
    let mut total = Tally::new(seconds_of(config.duration));
    for handle in handles {
        let tallies = handle
            .join()
            .map_err(|_| BenchError::Runtime("a client thread panicked".into()))?;
        for tally in &tallies {
            total.merge(tally);
        }
    }
    let measured = Instant::now()
        .min(window.end)
        .saturating_duration_since(window.measure);

    let (target, endpoints) = (config.target, config.endpoints.clone());
    let after = on_system("bench-views", move || views(target, endpoints))?;
    Ok(Report::new(config, threads, measured, total, before, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_picker_stays_in_range_and_spreads() {
        let mut picker = KeyPicker::new(1);
        let mut seen = vec![0u32; 10];
        for _ in 0..10_000 {
            let k = picker.next_below(10);
            seen[k as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800 && n < 1200), "{seen:?}");
        assert_eq!(KeyPicker::new(0).next_below(1), 0);
    }

    #[test]
    fn tallies_merge() {
        let mut a = Tally::new(2);
        a.latency.record(10);
        a.ops_per_second[0] = 1;
        a.failures.insert("timeout".into(), 2);
        a.examples.insert("timeout".into(), "first".into());
        let mut b = Tally::new(3);
        b.latency.record(20);
        b.ops_per_second[2] = 1;
        b.failures.insert("timeout".into(), 1);
        b.failures.insert("http 503".into(), 1);
        b.examples.insert("timeout".into(), "second".into());
        a.merge(&b);
        assert_eq!(a.latency.count(), 2);
        assert_eq!(a.ops_per_second, vec![1, 0, 1]);
        assert_eq!(a.failures["timeout"], 3);
        assert_eq!(a.failures["http 503"], 1);
        assert_eq!(a.examples["timeout"], "first");
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(seconds_of(Duration::from_millis(0)), 1);
        assert_eq!(seconds_of(Duration::from_millis(10_000)), 10);
        assert_eq!(seconds_of(Duration::from_millis(10_001)), 11);
    }

    fn config(leader_only: bool) -> BenchConfig {
        BenchConfig {
            target: Target::Raftix,
            endpoints: vec!["http://a".into(), "http://b".into()],
            workload: Workload::Write,
            clients: 3,
            threads: 1,
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            value_bytes: 1,
            keys: 1,
            preload: false,
            leader_only,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn clients_spread_over_endpoints_or_go_to_the_leader() {
        let views = vec![
            NodeView {
                endpoint: "http://a".into(),
                leader: Some(false),
                ..NodeView::default()
            },
            NodeView {
                endpoint: "http://b".into(),
                leader: Some(true),
                ..NodeView::default()
            },
        ];
        let spread = assign(&config(false), &views).unwrap_or_default();
        assert_eq!(spread, vec!["http://a", "http://b", "http://a"]);
        let leader = assign(&config(true), &views).unwrap_or_default();
        assert_eq!(leader, vec!["http://b"; 3]);
        assert!(matches!(
            assign(&config(true), &views[..1]),
            Err(BenchError::NoLeader(_))
        ));
    }
}
