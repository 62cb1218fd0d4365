//! The outcome of a run, for people: on success a summary; on failure the seed and the command
//! that replays it, every failed check with its evidence (for linearizability: the faulty
//! history window, and the faults in effect around it), the whole fault timeline, and where
//! the node logs are.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::checker::{KeyedOperation, Summary};

use super::checks::Failure;
use super::net::{Mechanism, NodeId};
use super::timeline::{faults_overlapping, Event, EventKind};
use super::workload::WorkloadStats;

/// Faults that ended up to this long before a violation's window are shown with it.
const WINDOW_MARGIN_US: u64 = 2_000_000;

/// Everything a run found out.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// Cluster size.
    pub nodes: usize,
    /// Length of the faulty phase, in seconds.
    pub time_secs: u64,
    /// The mechanism used.
    pub mechanism: Mechanism,
    /// One line on it.
    pub mechanism_desc: String,
    /// The command that replays this run.
    pub reproduce: String,
    /// Wall-clock start of the run (UTC); report times are seconds since then.
    pub started_utc: String,
    /// The whole timeline.
    pub events: Vec<Event>,
    /// Failed checks (empty: the run passed).
    pub failures: Vec<Failure>,
    /// What the clients saw.
    pub stats: WorkloadStats,
    /// What the linearizability check covered, when it passed.
    pub checked: Option<Summary>,
    /// Operations in the history.
    pub history_len: usize,
    /// Keys in the converged contents.
    pub keys_compared: usize,
    /// Acknowledged write-once keys checked on every node.
    pub acked_checked: usize,
    /// Committed log entries checked for writes applied twice.
    pub log_entries_checked: usize,
    /// Faults applied.
    pub faults_applied: u64,
    /// Every node's log.
    pub logs: Vec<(NodeId, PathBuf)>,
    /// The run dir (data dirs, logs).
    pub dir: PathBuf,
    /// Whether the run dir was kept.
    pub dir_kept: bool,
    /// Wall-clock time of the whole run, setup and checks included.
    pub elapsed: Duration,
}

impl RunReport {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The one-line verdict.
    pub fn verdict(&self) -> String {
        if self.passed() {
            format!(
                "PASS: seed {}, {} nodes, {} s, {} ({} faults, {} operations checked)",
                self.seed,
                self.nodes,
                self.time_secs,
                self.mechanism,
                self.faults_applied,
                self.history_len
            )
        } else {
            let checks: Vec<&str> = self.failures.iter().map(|f| f.check).collect();
            format!(
                "FAIL: seed {} ({} nodes, {} s, {}): {}",
                self.seed,
                self.nodes,
                self.time_secs,
                self.mechanism,
                checks.join(", ")
            )
        }
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        writeln!(f, "mechanism: {}", self.mechanism_desc)?;
        writeln!(
            f,
            "workload: {} reads, {} writes, {} cas ({} swapped), {} deletes, {} write-once keys \
             acknowledged; {} indeterminate, {} certainly not applied, {} reads unanswered, {} retries",
            s.reads,
            s.writes,
            s.cas_swapped + s.cas_failed,
            s.cas_swapped,
            s.deletes,
            s.unique_writes,
            s.indeterminate,
            s.not_applied,
            s.failed_reads,
            s.retries
        )?;
        for u in &s.unexpected {
            writeln!(f, "  unexpected answer: {u}")?;
        }
        if let Some(sum) = &self.checked {
            writeln!(
                f,
                "linearizability: {} keys, {} operations, {} search steps: linearizable",
                sum.keys, sum.ops, sum.steps
            )?;
        }
        writeln!(
            f,
            "after healing: {} keys compared across nodes, {} acknowledged write-once keys checked, \
             {} committed entries checked for writes applied twice",
            self.keys_compared, self.acked_checked, self.log_entries_checked
        )?;
        if !self.passed() {
            writeln!(f)?;
            writeln!(f, "reproduce: {}", self.reproduce)?;
            for failure in &self.failures {
                writeln!(f)?;
                writeln!(f, "=== {failure}")?;
                if let Some((from, to)) = failure.window {
                    let faults =
                        faults_overlapping(&self.events, from.saturating_sub(WINDOW_MARGIN_US), to);
                    writeln!(
                        f,
                        "faults in effect during (or just before) that window [{} .. {}]:",
                        super::timeline::secs(from).trim(),
                        super::timeline::secs(to).trim()
                    )?;
                    if faults.is_empty() {
                        writeln!(f, "  (none)")?;
                    }
                    for e in faults {
                        writeln!(f, "  {e}")?;
                    }
                }
            }
            writeln!(f)?;
            writeln!(
                f,
                "fault timeline (seconds since the run started at {}):",
                self.started_utc
            )?;
            for e in self.events.iter().filter(|e| e.kind != EventKind::Info) {
                writeln!(f, "  {e}")?;
            }
            writeln!(
                f,
                "whole history and timeline: history.txt and timeline.txt in the run dir"
            )?;
            writeln!(f, "node logs:")?;
            for (id, path) in &self.logs {
                writeln!(f, "  node {id}: {}", path.display())?;
            }
        }
        if self.dir_kept {
            writeln!(f, "run dir kept: {}", self.dir.display())?;
        }
        writeln!(f, "took {:.1} s in all", self.elapsed.as_secs_f64())?;
        write!(f, "verdict: {}", self.verdict())
    }
}

/// Writes `history.txt` (every recorded operation, by key and call time; times in µs since the
/// start of the run) and `timeline.txt` (every event) into the run dir `dir`.
pub fn write_files(
    dir: &Path,
    history: &[KeyedOperation],
    events: &[Event],
) -> std::io::Result<()> {
    let mut ops: Vec<&KeyedOperation> = history.iter().collect();
    ops.sort_by(|a, b| (&a.key, a.op.call).cmp(&(&b.key, b.op.call)));
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("history.txt"))?);
    for o in ops {
        writeln!(out, "{:<10} {}", o.key, o.op)?;
    }
    out.flush()?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("timeline.txt"))?);
    for e in events {
        writeln!(out, "{e}")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at_us: u64, kind: EventKind, fault: Option<u64>, text: &str) -> Event {
        Event {
            at_us,
            kind,
            fault,
            text: text.into(),
        }
    }

    #[test]
    fn files_hold_the_history_by_key_and_the_timeline() {
        use crate::checker::Operation;
        let dir = tempfile::tempdir().expect("temp dir");
        let history = vec![
            Operation::write(2, 50, 60, b"b").on("k1"),
            Operation::read(1, 10, 20, None).on("k1"),
            Operation::write(1, 5, 6, b"a").on("k0"),
        ];
        let events = vec![event(7, EventKind::FaultStart, Some(1), "SIGSTOP node 1")];
        write_files(dir.path(), &history, &events).expect("write");
        let text = std::fs::read_to_string(dir.path().join("history.txt")).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].starts_with("k0") && lines[0].contains("write \"a\" => ok"),
            "{text}"
        );
        assert!(
            lines[1].contains("read => absent") && lines[2].contains("write \"b\""),
            "{text}"
        );
        let timeline = std::fs::read_to_string(dir.path().join("timeline.txt")).expect("read");
        assert!(timeline.contains("fault+ #1 SIGSTOP node 1"), "{timeline}");
    }

    #[test]
    fn a_failure_report_names_seed_window_faults_and_logs() {
        let report = RunReport {
            seed: 17,
            nodes: 3,
            time_secs: 40,
            mechanism: Mechanism::Proxy,
            mechanism_desc: "proxy".into(),
            reproduce: "raftix chaos --seed 17 --time 40 --nodes 3 --mechanism proxy".into(),
            started_utc: "2026-01-02T03:04:05Z".into(),
            events: vec![
                event(1_000_000, EventKind::FaultStart, Some(1), "kill -9 node 2"),
                event(2_000_000, EventKind::FaultEnd, Some(1), "node 2 restarted"),
                event(9_000_000, EventKind::FaultStart, Some(2), "SIGSTOP node 1"),
                event(9_500_000, EventKind::FaultEnd, Some(2), "SIGCONT node 1"),
            ],
            failures: vec![Failure {
                check: "linearizability",
                message: "key \"g0.k0\": not linearizable".into(),
                window: Some((2_500_000, 3_000_000)),
            }],
            stats: WorkloadStats::default(),
            checked: None,
            history_len: 10,
            keys_compared: 0,
            acked_checked: 0,
            log_entries_checked: 0,
            faults_applied: 2,
            logs: vec![(1, PathBuf::from("/tmp/x/node1.log"))],
            dir: PathBuf::from("/tmp/x"),
            dir_kept: true,
            elapsed: Duration::from_secs(45),
        };
        assert!(!report.passed());
        let text = report.to_string();
        assert!(text.contains("reproduce: raftix chaos --seed 17"), "{text}");
        assert!(text.contains("=== linearizability check failed"), "{text}");
        // Fault 1 ended 0.5 s before the window: shown with it; fault 2 is later: not.
        let window_part = text.split("fault timeline (").next().unwrap_or_default();
        assert!(window_part.contains("#1 kill -9 node 2"), "{text}");
        assert!(!window_part.contains("SIGSTOP"), "{text}");
        assert!(text.contains("node 1: /tmp/x/node1.log"), "{text}");
        assert!(
            text.ends_with("verdict: FAIL: seed 17 (3 nodes, 40 s, proxy): linearizability"),
            "{text}"
        );
    }
}
