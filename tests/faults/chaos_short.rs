//! The short, seeded fault-injection suite that CI runs (about two and a half minutes in all):
//! real `raftix serve` processes, 3 and 5 of them, under a seeded nemesis (partitions, kill -9
//! of one and of all nodes, SIGSTOP, leadership transfer, a full or read-only disk, delay and
//! loss where `tc netem` exists), with concurrent clients, then the checks of
//! `raftix_testkit::chaos::checks` (per-key linearizability, no acknowledged write lost, no write
//! committed twice, identical replicas after healing, no panic, no unexpected exit).
//!
//! The network mechanism is namespaces when the test runs as root with `ip` and `tc`, else the
//! per-link TCP proxy; one run always uses the proxy. Nothing is skipped: each run writes its
//! mechanism and verdict straight to stderr (outside the test harness's capture), and a failed
//! run panics with the whole report: the seed, the `raftix chaos ...` command that replays it,
//! the faulty history window and the fault timeline. Longer runs: `raftix chaos --seed N
//! --time 600` (see docs/chaos.md).
//!
//! One run reads with `consistency=lease` while clocks are skewed within the documented bounds.
//! The last test runs a deliberately broken configuration (stale reads) and requires the
//! checker to catch it.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use raftix_testkit::chaos::{self, ChaosConfig, FaultKind, Mechanism, MechanismChoice, RunReport};

/// One run at a time: the machine may have two cores, and every run is timing-sensitive.
static SERIAL: Mutex<()> = Mutex::new(());

/// Writes a line to the real stderr, which the test harness does not capture.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn config(seed: u64, nodes: usize, secs: u64, mechanism: MechanismChoice) -> ChaosConfig {
    let mut config = ChaosConfig::new(
        seed,
        nodes,
        Duration::from_secs(secs),
        PathBuf::from(env!("CARGO_BIN_EXE_raftix")),
    );
    config.mechanism = mechanism;
    // Power faults: the data dirs on lazy filesystems served by `raftix lazyfs`.
    config.lazyfs = Some(vec![env!("CARGO_BIN_EXE_raftix").into(), "lazyfs".into()]);
    config
}

fn run(config: &ChaosConfig) -> RunReport {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let report = chaos::run(config)
        .unwrap_or_else(|e| panic!("seed {}: the run could not be set up: {e}", config.seed));
    say(&format!(
        "chaos_short: {}\n  mechanism: {}",
        report.verdict(),
        report.mechanism_desc
    ));
    report
}

fn assert_passed(report: &RunReport) {
    assert!(report.passed(), "chaos run failed:\n{report}");
    assert!(
        report.faults_applied >= 4,
        "too few faults applied ({}):\n{report}",
        report.faults_applied
    );
    assert!(
        report.history_len > 500,
        "too little traffic ({} operations):\n{report}",
        report.history_len
    );
}

#[test]
fn three_nodes_every_fault() {
    assert_passed(&run(&config(1, 3, 40, MechanismChoice::Auto)));
}

#[test]
fn five_nodes_every_fault() {
    assert_passed(&run(&config(2, 5, 40, MechanismChoice::Auto)));
}

/// Lease reads while a node's clock runs fast or slow or its wall clock is shifted, within the
/// documented bounds (README, "Clock faults"), among partitions and kills: still linearizable.
#[test]
fn lease_reads_stay_linearizable_under_clock_faults_within_bounds() {
    let mut config = config(4, 3, 40, MechanismChoice::Auto);
    config.faults = vec![FaultKind::Partition, FaultKind::Kill, FaultKind::Clock];
    config.workload.read_consistency = "lease".into();
    let report = run(&config);
    assert_passed(&report);
    let clock_faults = report
        .events
        .iter()
        .filter(|e| {
            e.text.contains("restarted with its clock")
                || e.text.contains("restarted with its wall clock")
        })
        .count();
    assert!(clock_faults >= 1, "no clock fault was applied:\n{report}");
}

/// Power cuts (data dirs on `raftix lazyfs`, unsynced writes lost) of one node, of a minority
/// and of every node, among partitions and kills: the first seed whose schedule has all three.
#[test]
fn power_cuts_of_one_node_a_minority_and_every_node() {
    use raftix_testkit::chaos::nemesis::{node_ids, schedule, Capabilities, Fault, PowerScope};
    let faults = vec![FaultKind::Power, FaultKind::Partition, FaultKind::Kill];
    let caps = Capabilities {
        netem: false,
        membership: true,
        power: true,
    };
    let time = Duration::from_secs(40);
    let scopes = |seed: u64| {
        let steps = schedule(seed, &node_ids(5), time, &faults, caps);
        let has = |want: fn(&PowerScope) -> bool| {
            steps
                .iter()
                .any(|s| matches!(&s.fault, Fault::Power(scope) if want(scope)))
        };
        has(|s| matches!(s, PowerScope::One(_)))
            && has(|s| matches!(s, PowerScope::Minority(_)))
            && has(|s| matches!(s, PowerScope::All))
    };
    let seed = (100..200)
        .find(|&seed| scopes(seed))
        .expect("a seed with every power scope");
    let mut config = config(seed, 5, time.as_secs(), MechanismChoice::Auto);
    config.faults = faults;
    let report = run(&config);
    assert_passed(&report);
    let cuts = report
        .events
        .iter()
        .filter(|e| e.text.starts_with("power cut of nodes"))
        .count();
    assert!(
        cuts >= 3,
        "fewer than three power cuts were applied:\n{report}"
    );
}

#[test]
fn three_nodes_behind_per_link_proxies() {
    let report = run(&config(3, 3, 30, MechanismChoice::Proxy));
    assert_eq!(report.mechanism, Mechanism::Proxy);
    assert_passed(&report);
}

/// Stale reads (`consistency=stale`) under partitions are not linearizable: the run must fail
/// the linearizability check, with a report that names the seed, the replay command and the
/// faulty window, while the other checks still pass.
#[test]
fn a_broken_configuration_is_caught() {
    let mut broken = config(7, 3, 20, MechanismChoice::Auto);
    broken.faults = vec![FaultKind::Partition];
    broken.workload.read_consistency = "stale".into();
    let report = run(&broken);
    let checks: Vec<&str> = report.failures.iter().map(|f| f.check).collect();
    assert_eq!(
        checks,
        vec!["linearizability"],
        "expected exactly the linearizability check to fail:\n{report}"
    );
    let text = report.to_string();
    assert!(
        text.contains("reproduce: raftix chaos --seed 7 --time 20 --nodes 3"),
        "{text}"
    );
    assert!(
        text.contains("--faults partition --read-consistency stale"),
        "{text}"
    );
    assert!(
        text.contains("operations overlapping it, by call time:"),
        "{text}"
    );
    assert!(text.contains("faults in effect during"), "{text}");
    assert!(report.dir_kept, "a failed run keeps its run dir");
    let _ = std::fs::remove_dir_all(&report.dir);
}
