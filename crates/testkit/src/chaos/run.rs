//! One chaos run from start to verdict: network, processes, workload and nemesis for the
//! configured time, heal, wait for the replicas to converge, final reads, checks, report,
//! cleanup.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::api::Api;
use super::checks::{self, Failure};
use super::cluster::{ChaosCluster, Exit, NodeFlags};
use super::nemesis::{node_ids, schedule, Capabilities, FaultKind, Nemesis};
use super::net::{MechanismChoice, Network, NodeId};
use super::report::RunReport;
use super::rng::Rng;
use super::timeline::{utc_now, Clock, Timeline};
use super::workload::{final_reads, Workload, WorkloadConfig};

static RUN_DIRS: AtomicU32 = AtomicU32::new(0);

/// What to run.
#[derive(Clone, Debug)]
pub struct ChaosConfig {
    /// Seeds the fault schedule and the clients' choices.
    pub seed: u64,
    /// Cluster size (3 or 5 are the usual ones).
    pub nodes: usize,
    /// How long faults and workload run.
    pub time: Duration,
    /// How to cut the network.
    pub mechanism: MechanismChoice,
    /// Fault kinds allowed (those the mechanism cannot do are left out).
    pub faults: Vec<FaultKind>,
    /// The clients.
    pub workload: WorkloadConfig,
    /// Timing flags of the nodes.
    pub node_flags: NodeFlags,
    /// The `raftix` executable to run as `raftix serve`.
    pub bin: PathBuf,
    /// Where to make the run dir (default: the system temp dir).
    pub dir: Option<PathBuf>,
    /// Keep the run dir even when the run passes (it is always kept when it fails).
    pub keep_dir: bool,
    /// Print the timeline to stderr as it happens.
    pub echo: bool,
    /// The program (and leading arguments) that serves a lazy filesystem as
    /// `<program> BACKING MOUNTPOINT` (`raftix lazyfs`): the power fault's disks. `None`: no
    /// power fault.
    pub lazyfs: Option<Vec<std::ffi::OsString>>,
}

impl ChaosConfig {
    /// A run of `time` on `nodes` nodes with every fault kind, six clients and the automatic
    /// mechanism.
    pub fn new(seed: u64, nodes: usize, time: Duration, bin: PathBuf) -> ChaosConfig {
        ChaosConfig {
            seed,
            nodes,
            time,
            mechanism: MechanismChoice::Auto,
            faults: FaultKind::ALL.to_vec(),
            workload: WorkloadConfig::default(),
            node_flags: NodeFlags::default(),
            bin,
            dir: None,
            keep_dir: false,
            echo: true,
            lazyfs: None,
        }
    }

    /// The `raftix chaos` command line that replays this run with `mechanism`.
    pub fn command_line(&self, mechanism: &str) -> String {
        let mut cmd = format!(
            "raftix chaos --seed {} --time {} --nodes {} --mechanism {mechanism}",
            self.seed,
            self.time.as_secs(),
            self.nodes
        );
        if self.faults != FaultKind::ALL.to_vec() {
            let names: Vec<String> = self
                .faults
                .iter()
                .map(|k| {
                    clap::ValueEnum::to_possible_value(k)
                        .map(|v| v.get_name().to_string())
                        .unwrap_or_default()
                })
                .collect();
            cmd.push_str(&format!(" --faults {}", names.join(",")));
        }
        if self.workload.clients != WorkloadConfig::default().clients {
            cmd.push_str(&format!(" --clients {}", self.workload.clients));
        }
        if self.workload.read_consistency != "linearizable" {
            cmd.push_str(&format!(
                " --read-consistency {}",
                self.workload.read_consistency
            ));
        }
        cmd
    }
}

/// Waits until every node answers, one is leader, and all report the same applied index equal
/// to the highest commit index, twice in a row; returns that index or what was last seen. Nodes
/// that exit meanwhile (everything is healed: none should) are added to `exits`.
fn wait_converged(
    api: &Api,
    cluster: &mut ChaosCluster,
    timeout: Duration,
    exits: &mut Vec<Exit>,
) -> Result<u64, String> {
    let until = Instant::now() + timeout;
    let mut last_seen = String::from("no status yet");
    let mut previous: Option<u64> = None;
    while Instant::now() < until {
        exits.extend(cluster.reap_exits());
        let statuses: BTreeMap<NodeId, Option<serde_json::Value>> = api
            .ids()
            .into_iter()
            .map(|id| (id, api.status(id)))
            .collect();
        last_seen = statuses
            .iter()
            .map(|(id, s)| match s {
                Some(s) => format!(
                    "node {id}: {} term {} commit {} applied {}",
                    s["role"].as_str().unwrap_or("?"),
                    s["term"],
                    s["commit"],
                    s["applied"]
                ),
                None => format!("node {id}: no answer"),
            })
            .collect::<Vec<_>>()
            .join("; ");
        let all: Option<Vec<&serde_json::Value>> = statuses.values().map(Option::as_ref).collect();
        if let Some(all) = all {
            let applied: Vec<Option<u64>> = all.iter().map(|s| s["applied"].as_u64()).collect();
            let commit = all.iter().filter_map(|s| s["commit"].as_u64()).max();
            let leader = all.iter().any(|s| s["role"] == "LEADER");
            let first = applied.first().copied().flatten();
            if leader && first.is_some() && applied.iter().all(|a| *a == first) && first == commit {
                if previous == first {
                    return first.ok_or(last_seen);
                }
                previous = first;
            } else {
                previous = None;
            }
        }
        thread::sleep(Duration::from_millis(250));
    }
    Err(last_seen)
}

/// The lazy filesystem daemon, if this run can cut power: one is configured, the process is
/// root (mounting) and `/dev/fuse` exists.
fn power_available(config: &ChaosConfig) -> Result<&[std::ffi::OsString], String> {
    let daemon = config
        .lazyfs
        .as_deref()
        .ok_or("this build has no lazy filesystem to cut the power of")?;
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("mounting the power-loss disks needs root".into());
    }
    if !std::path::Path::new("/dev/fuse").exists() {
        return Err("/dev/fuse is missing".into());
    }
    Ok(daemon)
}

fn make_run_dir(config: &ChaosConfig) -> Result<PathBuf, String> {
    let parent = config.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = parent.join(format!(
        "raftix-chaos-seed{}-{}-{}",
        config.seed,
        std::process::id(),
        RUN_DIRS.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Runs one chaos run and returns its report (`Err` only when it could not be set up at all).
pub fn run(config: &ChaosConfig) -> Result<RunReport, String> {
    let started = Instant::now();
    let clock = Clock::start();
    let started_utc = utc_now();
    let timeline = Timeline::new(clock, config.echo);
    let ids = node_ids(config.nodes);
    let dir = make_run_dir(config)?;
    timeline.info(format!(
        "chaos run: seed {}, {} nodes, {} s, started {started_utc}; run dir {}",
        config.seed,
        config.nodes,
        config.time.as_secs(),
        dir.display()
    ));
    let mut net = Network::setup(config.mechanism, &ids, &timeline)?;
    let mechanism = net.mechanism();
    timeline.info(format!("mechanism: {}", net.describe()));
    let power = power_available(config);
    if let (Err(why), true) = (&power, config.faults.contains(&FaultKind::Power)) {
        timeline.warn(format!("no power fault in this run: {why}"));
    }
    let caps = Capabilities {
        netem: net.netem_available(),
        membership: true,
        power: power.is_ok(),
    };
    let steps = schedule(config.seed, &ids, config.time, &config.faults, caps);
    timeline.info(format!("{} faults scheduled", steps.len()));

    let mut cluster = ChaosCluster::new(
        config.bin.clone(),
        &dir,
        &net,
        &ids,
        config.node_flags.clone(),
        timeline.clone(),
    );
    if let (Ok(daemon), true) = (&power, config.faults.contains(&FaultKind::Power)) {
        cluster.use_power_disks(daemon, &dir)?;
        timeline.info("data dirs are on power-loss disks (raftix-lazyfs; node data in disk-n<id>)");
    }
    let logs = cluster.log_paths();
    let api = Api::new(cluster.http_bases());
    let mut failures: Vec<Failure> = Vec::new();
    cluster.start_all()?;
    let leader_deadline = Instant::now() + Duration::from_secs(30);
    while api.leader().is_none() && Instant::now() < leader_deadline {
        thread::sleep(Duration::from_millis(100));
    }
    let mut report = RunReport {
        seed: config.seed,
        nodes: config.nodes,
        time_secs: config.time.as_secs(),
        mechanism,
        mechanism_desc: net.describe(),
        reproduce: config.command_line(mechanism.name()),
        started_utc,
        events: Vec::new(),
        failures: Vec::new(),
        stats: Default::default(),
        checked: None,
        history_len: 0,
        keys_compared: 0,
        acked_checked: 0,
        log_entries_checked: 0,
        faults_applied: 0,
        logs: logs.clone(),
        dir: dir.clone(),
        dir_kept: true,
        elapsed: Duration::ZERO,
    };
    match api.leader() {
        Some(leader) => timeline.info(format!("node {leader} leads; workload and nemesis start")),
        None => {
            failures.push(Failure {
                check: "startup",
                message: "no leader within 30 s of starting the nodes".into(),
                window: None,
            });
            drop(cluster);
            drop(net);
            report.failures = failures;
            report.events = timeline.events();
            report.elapsed = started.elapsed();
            return Ok(report);
        }
    }

    let mut rng = Rng(config.seed);
    let workload = Workload::start(&api, &config.workload, &mut rng, clock);
    let start = Instant::now();
    let mut nemesis = Nemesis::new(&mut cluster, &mut net, api.clone(), timeline.clone());
    nemesis.run(&steps, start, start + config.time);
    let mut unexpected = std::mem::take(&mut nemesis.unexpected_exits);
    report.faults_applied = nemesis.applied;
    drop(nemesis);
    timeline.info("faulty phase over: clients finish their last operation");
    let recorder = workload.stop();

    timeline.info("waiting for every node to apply the same index");
    match wait_converged(&api, &mut cluster, Duration::from_secs(60), &mut unexpected) {
        Ok(index) => timeline.info(format!("every node applied index {index}")),
        Err(last) => failures.push(Failure {
            check: "convergence",
            message: format!("the nodes did not reach the same applied index within 60 s of healing; last seen: {last}"),
            window: None,
        }),
    }
    let unread = final_reads(&api, &recorder, Duration::from_secs(20));
    if !unread.is_empty() {
        failures.push(Failure {
            check: "availability after healing",
            message: format!(
                "no linearizable read of {} key(s) succeeded within 20 s after healing: {:?}",
                unread.len(),
                unread.iter().take(5).collect::<Vec<_>>()
            ),
            window: None,
        });
    }
    let recorded = recorder.snapshot();
    timeline.info(format!(
        "final reads done; checking {} operations",
        recorded.history.len()
    ));

    // Contents of every node, read once they all applied the same index (retried if a node
    // applied more meanwhile).
    let mut contents: BTreeMap<NodeId, BTreeMap<String, String>> = BTreeMap::new();
    for _ in 0..3 {
        let before = wait_converged(&api, &mut cluster, Duration::from_secs(20), &mut unexpected);
        contents = ids
            .iter()
            .filter_map(|&id| match api.dump(id) {
                Ok(kv) => Some((id, kv)),
                Err(e) => {
                    timeline.warn(format!("reading node {id}'s contents: {e}"));
                    None
                }
            })
            .collect();
        let after = wait_converged(&api, &mut cluster, Duration::from_secs(5), &mut unexpected);
        if before.is_ok() && before == after && contents.len() == ids.len() {
            break;
        }
    }
    // Every committed entry, from the first node that serves its whole log.
    let committed = ids.iter().find_map(|&id| match api.committed_log(id) {
        Ok(entries) => Some(entries),
        Err(e) => {
            timeline.warn(format!("reading node {id}'s log: {e}"));
            None
        }
    });
    for exit in cluster.reap_exits() {
        unexpected.push(exit);
    }
    drop(cluster);
    drop(net);

    if contents.len() < ids.len() {
        failures.push(Failure {
            check: "convergence",
            message: format!(
                "only {} of {} nodes' contents could be read after healing",
                contents.len(),
                ids.len()
            ),
            window: None,
        });
    }
    if let Err(f) = checks::convergence(&contents) {
        failures.push(f);
    } else {
        report.keys_compared = contents.values().next().map_or(0, |kv| kv.len());
    }
    match checks::lost_writes(&recorded.acked_unique, &contents) {
        Ok(n) => report.acked_checked = n,
        Err(f) => failures.push(f),
    }
    match committed {
        Some(entries) => match checks::no_double_apply(&entries) {
            Ok(n) => report.log_entries_checked = n,
            Err(f) => failures.push(f),
        },
        None => failures.push(Failure {
            check: "no write applied twice",
            message: "no node's committed log could be read after healing".into(),
            window: None,
        }),
    }
    match checks::linearizability(&recorded.history) {
        Ok(summary) => report.checked = Some(summary),
        Err(f) => failures.push(f),
    }
    if let Err(f) = checks::panics(&logs) {
        failures.push(f);
    }
    if let Err(f) = checks::unexpected_exits(&unexpected) {
        failures.push(f);
    }
    if recorded.stats.writes + recorded.stats.cas_swapped + recorded.stats.unique_writes == 0 {
        failures.push(Failure {
            check: "progress",
            message: "no write was acknowledged during the whole run".into(),
            window: None,
        });
    }

    report.history_len = recorded.history.len();
    report.stats = recorded.stats;
    report.failures = failures;
    report.events = timeline.events();
    report.dir_kept = config.keep_dir || !report.passed();
    if report.dir_kept {
        if let Err(e) = super::report::write_files(&dir, &recorded.history, &report.events) {
            timeline.warn(format!("writing history.txt and timeline.txt: {e}"));
        }
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    report.elapsed = started.elapsed();
    Ok(report)
}
