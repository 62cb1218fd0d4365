//! Crash points (`--features failpoints`, see `src/crash_points.rs`): one node of a 3-node
//! cluster of real `raftix serve` processes is stopped at each named point of the durability
//! path (an abort, as a power cut of that process; its page cache survives, which the power-loss
//! tests do not rely on), restarted, and the cluster is checked: every acknowledged write is on
//! every node, no value was committed by two log entries, the replicas hold the same keys and
//! values, and the node caught up. An injected fsync error must stop the node (exit code 1, a
//! message naming the failure), never be retried.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::process::{self, ProcCluster, PutOutcome};

/// How a scenario brings node 1 to its crash point.
#[derive(Clone, Copy, Debug)]
enum Flow {
    /// Node 1 runs with the point armed while a client writes.
    Writes,
    /// Node 1 is down while the leader writes and compacts its log; restarted with the point
    /// armed, it receives a snapshot.
    Install,
    /// Node 1 runs with the point armed while a learner is added (a configuration entry).
    Config,
}

/// One crash point and how to reach it.
struct Scenario {
    point: &'static str,
    /// The `fail` actions: `N*off->return` lets N hits through.
    actions: &'static str,
    flow: Flow,
    /// Exit code expected of node 1 (`None`: killed by SIGABRT).
    exit_code: Option<i32>,
}

const SCENARIOS: [Scenario; 12] = [
    crash("log.before_fsync", "25*off->return", Flow::Writes),
    crash("log.after_fsync", "25*off->return", Flow::Writes),
    Scenario {
        point: "log.fsync_error",
        actions: "25*off->return",
        flow: Flow::Writes,
        exit_code: Some(1),
    },
    crash("log.before_compaction", "return", Flow::Writes),
    crash("apply.before_commit", "25*off->return", Flow::Writes),
    crash("apply.after_commit", "25*off->return", Flow::Writes),
    crash("snapshot.mid_write", "return", Flow::Writes),
    crash("snapshot.before_rename", "return", Flow::Writes),
    crash("snapshot.mid_install", "return", Flow::Install),
    crash("snapshot.before_restore_commit", "return", Flow::Install),
    crash("config.before_fsync", "return", Flow::Config),
    crash("config.after_apply", "return", Flow::Config),
];

const fn crash(point: &'static str, actions: &'static str, flow: Flow) -> Scenario {
    Scenario {
        point,
        actions,
        flow,
        exit_code: None,
    }
}

/// Snapshots every 30 applied entries (keeping 5), so that compaction, snapshot writes and
/// installs happen within a short test.
const FLAGS: [&str; 4] = ["--snapshot-entries", "30", "--snapshot-keep", "5"];
const LEADER_TIMEOUT: Duration = Duration::from_secs(10);
const CRASH_TIMEOUT: Duration = Duration::from_secs(30);
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Values of 8 KiB: 80 of them make a snapshot of several 256 KiB transfer chunks.
const VALUE_BYTES: usize = 8 << 10;

#[test]
fn a_node_stopped_at_any_crash_point_recovers_without_losing_or_repeating_a_write() {
    for scenario in &SCENARIOS {
        let started = Instant::now();
        let acked = run(scenario);
        eprintln!(
            "{}: passed in {:?}, {acked} writes acknowledged",
            scenario.point,
            started.elapsed()
        );
    }
    let mut points: Vec<&str> = SCENARIOS.iter().map(|s| s.point).collect();
    let mut all = raftix::crash_points::ALL.to_vec();
    points.sort_unstable();
    all.sort_unstable();
    assert_eq!(points, all, "every crash point has its scenario");
}

/// The writes acknowledged so far: key -> value.
type Acked = BTreeMap<String, Vec<u8>>;

/// Runs one scenario; returns how many writes were acknowledged.
fn run(scenario: &Scenario) -> usize {
    let dir = ProcCluster::temp_dir("raftix-crash-");
    let mut c = ProcCluster::start_with(3, dir, &FLAGS);
    c.wait_leader(LEADER_TIMEOUT);
    let mut acked = Acked::new();
    let mut next = 0u32;
    let armed = format!("{}={}", scenario.point, scenario.actions);
    c.stop(1);
    if let Flow::Install = scenario.flow {
        write_some(&c, &mut acked, &mut next, 80);
    }
    c.set_env(1, vec![("FAILPOINTS".into(), armed)]);
    c.restart(1);
    let deadline = Instant::now() + CRASH_TIMEOUT;
    if let Flow::Config = scenario.flow {
        add_learner(&c);
    }
    let status = loop {
        if let Some(status) = c.exited(1) {
            break status;
        }
        if Instant::now() > deadline {
            c.fail(&format!(
                "{}: node 1 never reached the crash point",
                scenario.point
            ));
        }
        write_some(&c, &mut acked, &mut next, 5);
    };
    check_exit(&c, scenario, status);
    // A few more writes while node 1 is down, then bring it back without the point.
    write_some(&c, &mut acked, &mut next, 10);
    c.set_env(1, Vec::new());
    c.restart(1);
    c.wait_leader(LEADER_TIMEOUT);
    c.wait_converged(1, CONVERGE_TIMEOUT);
    check_cluster(&c, scenario, &acked);
    acked.len()
}

/// Writes `n` new keys through the cluster (following the leader), recording the acknowledged.
fn write_some(c: &ProcCluster, acked: &mut Acked, next: &mut u32, n: u32) {
    let client = c.client();
    let start = c.running().first().copied().unwrap_or(2);
    for _ in 0..n {
        *next += 1;
        let key = format!("k{:05}", *next);
        let value = value_of(*next);
        match client.put(start, &key, &value, Duration::from_secs(5)) {
            PutOutcome::Acked { .. } => {
                acked.insert(key, value);
            }
            PutOutcome::Indeterminate(_) | PutOutcome::NotSent(_) => {}
        }
    }
}

/// A value unique to write `n`, `VALUE_BYTES` long.
fn value_of(n: u32) -> Vec<u8> {
    let mut value = format!("value-{n:05}-").into_bytes();
    value.resize(VALUE_BYTES, b'.');
    value
}

/// Adds a learner (id 4, an address nobody listens on) through the leader: one configuration
/// entry that every node appends and applies.
fn add_learner(c: &ProcCluster) {
    let (leader, _) = c.wait_leader(LEADER_TIMEOUT);
    let unused = process::alloc_ports(1)[0];
    let url = format!("{}/v1/cluster/learners", c.client().base(leader));
    let resp = process::http_client()
        .post(url)
        .json(&serde_json::json!({"id": 4, "peer_addr": format!("127.0.0.1:{unused}")}))
        .send();
    // Node 1 may be the leader and stop at the point while answering: what matters is that
    // it stops, which the caller waits for.
    match resp {
        Ok(resp) if resp.status().is_success() => {}
        Ok(resp) => eprintln!("adding a learner answered {}", resp.status()),
        Err(err) => eprintln!("adding a learner: {err}"),
    }
}

fn check_exit(c: &ProcCluster, scenario: &Scenario, status: std::process::ExitStatus) {
    use std::os::unix::process::ExitStatusExt;
    let point = scenario.point;
    let log = process::tail_file(&c.node(1).log_path, 40);
    match scenario.exit_code {
        None if status.signal() == Some(libc::SIGABRT) => {
            if !log.contains(&format!("crash point {point} reached")) {
                c.fail(&format!(
                    "{point}: node 1 aborted, but not at this crash point"
                ));
            }
        }
        Some(code) if status.code() == Some(code) => {
            if !log.contains("fsync failed") {
                c.fail(&format!(
                    "{point}: node 1 stopped but its log does not say the fsync failed"
                ));
            }
        }
        _ => c.fail(&format!(
            "{point}: node 1 ended with {status}, expected {}",
            scenario
                .exit_code
                .map_or("an abort".to_string(), |c| format!("exit code {c}"))
        )),
    }
}

/// Every acknowledged write on every node, the same keys and values everywhere, and no value
/// committed twice in what the logs still hold.
fn check_cluster(c: &ProcCluster, scenario: &Scenario, acked: &Acked) {
    let point = scenario.point;
    let mut listings = Vec::new();
    for id in c.ids() {
        let listing = list_all(c, id);
        for (key, value) in acked {
            if listing.get(key) != Some(value) {
                let held = listing
                    .get(key)
                    .map(|v| String::from_utf8_lossy(&v[..v.len().min(16)]).to_string());
                c.fail(&format!(
                    "{point}: acknowledged write {key} is missing or different on node {id} (holds {held:?}; {} keys; status {:?})",
                    listing.len(), c.status(id)
                ));
            }
        }
        listings.push((id, listing));
    }
    for (id, listing) in &listings[1..] {
        if listing != &listings[0].1 {
            c.fail(&format!(
                "{point}: node {id} holds other keys or values than node {}",
                listings[0].0
            ));
        }
    }
    for id in c.ids() {
        let mut seen = BTreeMap::new();
        for entry in log_entries(c, id) {
            let Some(value) = entry["command"]["value"].as_str() else {
                continue;
            };
            let index = entry["index"].as_u64().unwrap_or_default();
            if let Some(first) = seen.insert(value[..12].to_string(), index) {
                c.fail(&format!(
                    "{point}: node {id}'s log commits {} twice (entries {first} and {index})",
                    &value[..12]
                ));
            }
        }
    }
}

/// Every key and value node `id` holds (its own applied state).
fn list_all(c: &ProcCluster, id: u64) -> BTreeMap<String, Vec<u8>> {
    let base = c.client().base(id);
    let http = process::http_client();
    let mut out = BTreeMap::new();
    let mut after = String::new();
    loop {
        let mut url = format!("{base}/v1/kv?prefix=k&limit=1000&consistency=stale");
        if !after.is_empty() {
            url.push_str(&format!("&after={after}"));
        }
        let page: Value = match http.get(&url).send().and_then(|r| r.json()) {
            Ok(page) => page,
            Err(err) => c.fail(&format!("listing node {id}: {err}")),
        };
        if page.get("items").is_none() {
            c.fail(&format!("listing node {id} answered {page}"));
        }
        for item in page["items"].as_array().into_iter().flatten() {
            let key = item["key"].as_str().unwrap_or_default().to_string();
            let value = item["value"]
                .as_str()
                .unwrap_or_default()
                .as_bytes()
                .to_vec();
            out.insert(key, value);
        }
        match page["next"].as_str() {
            Some(next) => after = next.to_string(),
            None => return out,
        }
    }
}

/// The committed entries node `id`'s log still holds.
fn log_entries(c: &ProcCluster, id: u64) -> Vec<Value> {
    let base = c.client().base(id);
    let http = process::http_client();
    let first: Value = match http.get(format!("{base}/v1/log?limit=1")).send() {
        Ok(resp) => resp.json().unwrap_or_default(),
        Err(err) => c.fail(&format!("log of node {id}: {err}")),
    };
    let (mut from, commit) = (
        first["first_index"].as_u64().unwrap_or(1),
        first["commit"].as_u64().unwrap_or(0),
    );
    let mut entries = Vec::new();
    while from <= commit {
        let page: Value = match http
            .get(format!("{base}/v1/log?from={from}&limit=1000"))
            .send()
        {
            Ok(resp) => resp.json().unwrap_or_default(),
            Err(err) => c.fail(&format!("log of node {id}: {err}")),
        };
        let got = page["entries"].as_array().cloned().unwrap_or_default();
        if got.is_empty() {
            break;
        }
        from += got.len() as u64;
        entries.extend(
            got.into_iter()
                .filter(|e| e["index"].as_u64().unwrap_or(u64::MAX) <= commit),
        );
    }
    entries
}
