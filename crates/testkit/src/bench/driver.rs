//! Runs a workload: node views, preload, warmup, measurement, node views again.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// One request as recorded for `--timeline`: times in microseconds since the run started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// When the request was sent.
    pub start_us: u64,
    /// When its answer (or failure) came.
    pub end_us: u64,
    /// The client that sent it (0-based).
    pub client: usize,
    /// The endpoint it went to.
    pub endpoint: String,
    /// `None` for a success, the failure kind otherwise.
    pub failure: Option<String>,
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
    /// Every request, warmup included (only with a timeline).
    pub events: Vec<Event>,
}

impl Tally {
    fn new(seconds: usize) -> Self {
        Tally {
            latency: Histogram::new(),
            failures: BTreeMap::new(),
            examples: BTreeMap::new(),
            ops_per_second: vec![0; seconds],
            errors_per_second: vec![0; seconds],
            events: Vec::new(),
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
        self.events.extend(other.events.iter().cloned());
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
    /// The run starts (the warmup begins); timeline times count from here.
    start: Instant,
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

/// The `--total-ops` budget: requests claimed (in flight or succeeded), at most `total`. A failed
/// request gives its claim back, so the run ends with exactly `total` successes.
#[derive(Debug)]
struct Budget {
    total: u64,
    claimed: AtomicU64,
}

impl Budget {
    fn new(total: u64) -> Self {
        Budget {
            total,
            claimed: AtomicU64::new(0),
        }
    }

    /// Claims one request; false once `total` are claimed.
    fn claim(&self) -> bool {
        self.claimed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.total).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives back the claim of a failed request.
    fn give_back(&self) {
        self.claimed.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What every client of a run shares.
#[derive(Debug)]
struct Shared {
    plan: RequestPlan,
    endpoints: Vec<String>,
    keys: u64,
    timeout: Duration,
    window: Window,
    rotate_on_error: bool,
    timeline: bool,
    budget: Option<Budget>,
}

/// Microseconds from `from` to `to` (0 if `to` is earlier).
fn micros_between(from: Instant, to: Instant) -> u64 {
    u64::try_from(to.saturating_duration_since(from).as_micros()).unwrap_or(u64::MAX)
}

/// Client number `index`'s loop, starting on endpoint number `first`, until the end of the
/// window (or of the `--total-ops` budget).
async fn client_loop(shared: Arc<Shared>, index: usize, first: usize) -> Tally {
    let window = shared.window;
    let seconds = seconds_of(window.end.saturating_duration_since(window.measure));
    let mut tally = Tally::new(seconds);
    let mut client = one_connection_client(shared.timeout);
    let mut picker = KeyPicker::new(index as u64 + 1);
    let mut endpoint = first % shared.endpoints.len();
    let end = tokio::time::Instant::from_std(window.end);
    loop {
        let started = Instant::now();
        if started >= window.end {
            break;
        }
        if let Some(budget) = &shared.budget {
            if !budget.claim() {
                break;
            }
        }
        let key = picker.next_below(shared.keys);
        let url = &shared.endpoints[endpoint];
        let outcome = match tokio::time::timeout_at(end, shared.plan.issue(&client, url, key)).await
        {
            Ok(outcome) => outcome,
            // The run ended with this request in flight: it is not counted.
            Err(_) => break,
        };
        let done = Instant::now();
        let failed = outcome.is_err();
        if shared.timeline {
            tally.events.push(Event {
                start_us: micros_between(window.start, started),
                end_us: micros_between(window.start, done),
                client: index,
                endpoint: url.clone(),
                failure: outcome.as_ref().err().map(|f| f.kind.clone()),
            });
        }
        if failed {
            if let Some(budget) = &shared.budget {
                budget.give_back();
            }
        }
        if done >= window.measure {
            let second = done.duration_since(window.measure).as_secs() as usize;
            let second = second.min(seconds.saturating_sub(1));
            match outcome {
                Ok(()) => {
                    tally.latency.record(micros_between(started, done));
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
            if shared.rotate_on_error && shared.endpoints.len() > 1 {
                endpoint = (endpoint + 1) % shared.endpoints.len();
                client = one_connection_client(shared.timeout);
            }
            actix_rt::time::sleep(FAILURE_PAUSE).await;
        }
    }
    tally
}

/// Writes a timeline: a CSV header, then one line per request sorted by the time it ended,
/// `start_unix_us,end_unix_us,client,endpoint,outcome`, where times are microseconds since the
/// Unix epoch (the wall clock: comparable with `date +%s%6N` or bash's `$EPOCHREALTIME`),
/// `client` numbers the clients from 0 and `outcome` is `ok` or the failure kind (`connect`,
/// `timeout`, `http 503`, ...). The run started at `started` (wall clock).
pub fn write_timeline(
    out: &mut impl Write,
    started: SystemTime,
    events: &mut [Event],
) -> std::io::Result<()> {
    let base = u64::try_from(
        started
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros(),
    )
    .unwrap_or(u64::MAX);
    events.sort_by_key(|e| (e.end_us, e.start_us, e.client));
    writeln!(out, "start_unix_us,end_unix_us,client,endpoint,outcome")?;
    for e in events.iter() {
        writeln!(
            out,
            "{},{},{},{},{}",
            base.saturating_add(e.start_us),
            base.saturating_add(e.end_us),
            e.client,
            e.endpoint,
            e.failure.as_deref().unwrap_or("ok")
        )?;
    }
    out.flush()
}

/// Whole seconds covering `d` (at least one).
fn seconds_of(d: Duration) -> usize {
    (d.as_millis().div_ceil(1000) as usize).max(1)
}

/// The endpoint (index in `config.endpoints`) each client starts on: round-robin over the
/// endpoints, or all the leader.
fn assign(config: &BenchConfig, before: &[NodeView]) -> Result<Vec<usize>, BenchError> {
    if config.leader_only {
        let leader = before
            .iter()
            .position(|v| v.leader == Some(true))
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
        return Ok(vec![leader; config.clients]);
    }
    Ok((0..config.clients)
        .map(|i| i % config.endpoints.len())
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

    // Fail on an unwritable timeline path before loading the cluster.
    let mut timeline = match &config.timeline {
        Some(path) => Some(BufWriter::new(File::create(path).map_err(|e| {
            BenchError::Runtime(format!("cannot create {}: {e}", path.display()))
        })?)),
        None => None,
    };

    let threads = config.threads.clamp(1, config.clients);
    let start = Instant::now();
    let started_wall = SystemTime::now();
    let window = Window {
        start,
        measure: start + config.warmup,
        end: start + config.warmup + config.duration,
    };
    let shared = Arc::new(Shared {
        plan,
        endpoints: config.endpoints.clone(),
        keys: config.keys,
        timeout: config.timeout,
        window,
        rotate_on_error: config.rotate_on_error,
        timeline: timeline.is_some(),
        budget: config.total_ops.map(Budget::new),
    });
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let mine: Vec<(usize, usize)> = assigned
            .iter()
            .copied()
            .enumerate()
            .filter(|(i, _)| i % threads == t)
            .collect();
        let shared = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name(format!("bench-{t}"))
            .spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let loops = mine
                        .into_iter()
                        .map(|(i, first)| client_loop(Arc::clone(&shared), i, first));
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
    if config.total_ops.is_some() {
        // The run may have ended early: drop the seconds it never reached.
        let reached = seconds_of(measured);
        total.ops_per_second.truncate(reached);
        total.errors_per_second.truncate(reached);
    }
    if let (Some(out), Some(path)) = (timeline.as_mut(), &config.timeline) {
        write_timeline(out, started_wall, &mut total.events)
            .map_err(|e| BenchError::Runtime(format!("cannot write {}: {e}", path.display())))?;
    }
    total.events = Vec::new();

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
            rotate_on_error: false,
            total_ops: None,
            timeline: None,
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
        assert_eq!(spread, vec![0, 1, 0]);
        let leader = assign(&config(true), &views).unwrap_or_default();
        assert_eq!(leader, vec![1; 3]);
        assert!(matches!(
            assign(&config(true), &views[..1]),
            Err(BenchError::NoLeader(_))
        ));
    }

    #[test]
    fn budget_gives_exactly_total_claims() {
        let budget = Budget::new(2);
        assert!(budget.claim());
        assert!(budget.claim());
        assert!(!budget.claim());
        budget.give_back();
        assert!(budget.claim());
        assert!(!budget.claim());
    }

    #[test]
    fn timeline_lines_in_unix_microseconds_sorted_by_end() {
        let started = UNIX_EPOCH + Duration::from_secs(1_000);
        let mut events = vec![
            Event {
                start_us: 5,
                end_us: 30,
                client: 1,
                endpoint: "http://b".into(),
                failure: Some("http 503".into()),
            },
            Event {
                start_us: 0,
                end_us: 20,
                client: 0,
                endpoint: "http://a".into(),
                failure: None,
            },
        ];
        let mut out = Vec::new();
        write_timeline(&mut out, started, &mut events).expect("written");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "start_unix_us,end_unix_us,client,endpoint,outcome\n\
             1000000000,1000000020,0,http://a,ok\n\
             1000000005,1000000030,1,http://b,http 503\n"
        );
    }

    /// A stand-in for a raftix node that accepts every write.
    fn accepting_server() -> (String, actix_web::dev::ServerHandle) {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let server = actix_web::HttpServer::new(|| {
                    actix_web::App::new().default_service(actix_web::web::to(|| async {
                        actix_web::HttpResponse::Ok().body("{}")
                    }))
                })
                .workers(1)
                .bind(("127.0.0.1", 0))
                .expect("binds");
                let addr = server.addrs()[0];
                let server = server.run();
                let _ = tx.send((format!("http://{addr}"), server.handle()));
                let _ = server.await;
            });
        });
        rx.recv().expect("server started")
    }

    /// A local address nothing listens on (connections are refused).
    fn dead_endpoint() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        let addr = listener.local_addr().expect("address");
        drop(listener);
        format!("http://{addr}")
    }

    #[test]
    fn total_ops_rotation_and_timeline_against_a_live_and_a_dead_endpoint() {
        let (live, server) = accepting_server();
        let dead = dead_endpoint();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("timeline.csv");
        let config = BenchConfig {
            endpoints: vec![dead.clone(), live.clone()],
            clients: 4,
            duration: Duration::from_secs(30),
            keys: 10,
            rotate_on_error: true,
            total_ops: Some(200),
            timeline: Some(path.clone()),
            ..config(false)
        };
        let report = run(&config).expect("runs");
        assert_eq!(report.ops, 200, "{report}");
        // The two clients that started on the dead endpoint failed once, then moved on.
        assert_eq!(report.error_kinds.get("connect"), Some(&2), "{report}");
        assert!(report.duration_secs < 30.0);
        assert_eq!(
            report.ops_per_second.len(),
            seconds_of(Duration::from_secs_f64(report.duration_secs))
        );
        let text = std::fs::read_to_string(&path).expect("timeline");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "start_unix_us,end_unix_us,client,endpoint,outcome"
        );
        assert_eq!(lines.len(), 1 + 202);
        let ok = lines
            .iter()
            .filter(|l| l.ends_with(&format!("{live},ok")))
            .count();
        assert_eq!(ok, 200);
        let refused = lines
            .iter()
            .filter(|l| l.ends_with(&format!("{dead},connect")))
            .count();
        assert_eq!(refused, 2);
        let mut last_end = 0u64;
        for line in &lines[1..] {
            let fields: Vec<&str> = line.split(',').collect();
            let (start, end): (u64, u64) = (
                fields[0].parse().expect("start"),
                fields[1].parse().expect("end"),
            );
            assert!(start <= end && end >= last_end, "{line}");
            last_end = end;
        }
        futures::executor::block_on(server.stop(false));
    }
}
