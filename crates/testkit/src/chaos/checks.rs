//! The verdicts of a run, each a pure function of what was recorded (so each can be shown to
//! fail on fabricated input):
//!
//! - [`linearizability`]: every key's history has a linearization ([`crate::checker`]).
//! - [`lost_writes`]: every acknowledged write-once key is on every node, with its value, after
//!   the final heal.
//! - [`convergence`]: every node's whole key-value contents are identical after the final heal
//!   (read with `consistency=stale` once all nodes reported the same applied index).
//! - [`no_double_apply`]: no value was committed by two entries without a request id (every
//!   client write has a unique value, so that is a write applied twice: an answer that said
//!   "not applied" was wrong).
//! - [`panics`]: no node log contains `panicked at`.
//! - [`unexpected_exits`]: no node exited by itself outside a disk fault.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::checker::{check_history_with, CheckConfig, CheckError, KeyedOperation, Summary};

use super::cluster::Exit;
use super::net::NodeId;

/// One failed check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Which check (`linearizability`, `lost writes`, ...).
    pub check: &'static str,
    /// What is wrong, with the evidence.
    pub message: String,
    /// The time span of the evidence (µs since the start of the run), when it has one.
    pub window: Option<(u64, u64)>,
}

impl Failure {
    fn new(check: &'static str, message: String) -> Failure {
        Failure {
            check,
            message,
            window: None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} check failed: {}", self.check, self.message)
    }
}

/// The checker's budget per key in a chaos run.
pub fn check_config() -> CheckConfig {
    CheckConfig {
        max_steps: 100_000_000,
        time_budget: Some(Duration::from_secs(60)),
    }
}

/// Checks every key's history; on a violation the failure carries the checker's report (the
/// faulty window) and that window's time span.
pub fn linearizability(history: &[KeyedOperation]) -> Result<Summary, Failure> {
    match check_history_with(history, &check_config()) {
        Ok(summary) => Ok(summary),
        Err(CheckError::NotLinearizable(v)) => {
            let from = v
                .window
                .iter()
                .map(|o| o.call)
                .min()
                .unwrap_or(v.blocked.call);
            let to = v
                .window
                .iter()
                .filter_map(|o| o.ret)
                .max()
                .unwrap_or(v.blocked.ret.unwrap_or(from));
            Err(Failure {
                check: "linearizability",
                message: format!("{v}\n(times are microseconds since the start of the run)"),
                window: Some((from, to)),
            })
        }
        Err(e) => Err(Failure::new("linearizability", format!("no verdict: {e}"))),
    }
}

/// Every `(key, value)` in `acked` must be in every node's `contents`.
pub fn lost_writes(
    acked: &[(String, String)],
    contents: &BTreeMap<NodeId, BTreeMap<String, String>>,
) -> Result<usize, Failure> {
    let mut problems = Vec::new();
    let mut count = 0;
    for (node, kv) in contents {
        let missing: Vec<String> = acked
            .iter()
            .filter(|(k, v)| kv.get(k) != Some(v))
            .map(|(k, v)| match kv.get(k) {
                None => format!("{k:?} (acknowledged {v:?}) is missing"),
                Some(other) => format!("{k:?} (acknowledged {v:?}) holds {other:?}"),
            })
            .collect();
        count += missing.len();
        if !missing.is_empty() {
            let shown: Vec<String> = missing.iter().take(10).cloned().collect();
            problems.push(format!(
                "node {node}: {} of {} acknowledged writes lost: {}{}",
                missing.len(),
                acked.len(),
                shown.join("; "),
                if missing.len() > 10 { "; ..." } else { "" }
            ));
        }
    }
    if count == 0 {
        Ok(acked.len())
    } else {
        Err(Failure::new("lost writes", problems.join("\n")))
    }
}

/// All nodes' contents must be identical; the failure lists (up to 20) differing keys with each
/// node's value.
pub fn convergence(
    contents: &BTreeMap<NodeId, BTreeMap<String, String>>,
) -> Result<usize, Failure> {
    let Some((_, first)) = contents.iter().next() else {
        return Err(Failure::new(
            "convergence",
            "no node's contents could be read".into(),
        ));
    };
    if contents.values().all(|kv| kv == first) {
        return Ok(first.len());
    }
    let keys: BTreeSet<&String> = contents.values().flat_map(|kv| kv.keys()).collect();
    let differing: Vec<String> = keys
        .into_iter()
        .filter(|k| {
            let v = first.get(*k);
            contents.values().any(|kv| kv.get(*k) != v)
        })
        .map(|k| {
            let per_node: Vec<String> = contents
                .iter()
                .map(|(n, kv)| match kv.get(k) {
                    Some(v) => format!("node {n}={v:?}"),
                    None => format!("node {n}=absent"),
                })
                .collect();
            format!("{k:?}: {}", per_node.join(", "))
        })
        .collect();
    let sizes: Vec<String> = contents
        .iter()
        .map(|(n, kv)| format!("node {n}: {} keys", kv.len()))
        .collect();
    Err(Failure::new(
        "convergence",
        format!(
            "replicas differ after healing ({}); {} differing keys:\n  {}{}",
            sizes.join(", "),
            differing.len(),
            differing
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n  "),
            if differing.len() > 20 { "\n  ..." } else { "" }
        ),
    ))
}

/// Committed log entries (as `GET /v1/log` describes them) must not write the same value to the
/// same key twice without a request id (entries with a request id are deduplicated when
/// applied). Returns how many entries were checked.
pub fn no_double_apply(entries: &[serde_json::Value]) -> Result<usize, Failure> {
    let mut seen: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for e in entries {
        let c = &e["command"];
        if e["type"] != "command" || !c["request_id"].is_null() {
            continue;
        }
        if !matches!(c["op"].as_str(), Some("put") | Some("cas")) {
            continue;
        }
        let (Some(key), Some(value)) = (c["key"].as_str(), c["value"].as_str()) else {
            continue;
        };
        seen.entry((key.to_string(), value.to_string()))
            .or_default()
            .push(format!("index {} term {}", e["index"], e["term"]));
    }
    let twice: Vec<String> = seen
        .iter()
        .filter(|(_, at)| at.len() > 1)
        .map(|((k, v), at)| format!("{k:?} = {v:?} committed at {}", at.join(" and ")))
        .collect();
    if twice.is_empty() {
        Ok(entries.len())
    } else {
        Err(Failure::new(
            "no write applied twice",
            format!(
                "{} write(s) without an idempotency key were committed twice (the client retried \
                 after an answer saying the first attempt was not applied):\n  {}",
                twice.len(),
                twice.join("\n  ")
            ),
        ))
    }
}

/// The `panicked at` lines (with the line after, which holds the message) of every log.
pub fn panics(logs: &[(NodeId, PathBuf)]) -> Result<(), Failure> {
    let mut found = Vec::new();
    for (node, path) in logs {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.contains("panicked at") {
                let next = lines.get(i + 1).copied().unwrap_or_default();
                found.push(format!(
                    "node {node} ({}:{}): {line}\n    {next}",
                    path.display(),
                    i + 1
                ));
            }
        }
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(Failure::new("no panic", found.join("\n")))
    }
}

/// Every exit listed must not have happened.
pub fn unexpected_exits(exits: &[Exit]) -> Result<(), Failure> {
    if exits.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = exits
        .iter()
        .map(|e| {
            format!(
                "node {} exited by itself with {} (see its log)",
                e.id, e.status
            )
        })
        .collect();
    Err(Failure::new("no unexpected exit", lines.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::Operation;

    fn kv(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn convergence_flags_divergent_replicas() {
        let same = BTreeMap::from([
            (1, kv(&[("a", "1"), ("b", "2")])),
            (2, kv(&[("a", "1"), ("b", "2")])),
        ]);
        assert_eq!(convergence(&same), Ok(2));

        let divergent = BTreeMap::from([
            (1, kv(&[("a", "1"), ("b", "2")])),
            (2, kv(&[("a", "1"), ("b", "3")])),
            (3, kv(&[("a", "1")])),
        ]);
        let err = convergence(&divergent).expect_err("divergence must be flagged");
        assert_eq!(err.check, "convergence");
        assert!(
            err.message
                .contains(r#""b": node 1="2", node 2="3", node 3=absent"#),
            "{}",
            err.message
        );
        assert!(!err.message.contains(r#""a":"#), "{}", err.message);
    }

    #[test]
    fn lost_writes_flags_missing_and_overwritten_keys() {
        let acked = vec![
            ("ack.c1.1".to_string(), "c1.1".to_string()),
            ("ack.c2.7".to_string(), "c2.7".to_string()),
        ];
        let good = BTreeMap::from([
            (
                1,
                kv(&[("ack.c1.1", "c1.1"), ("ack.c2.7", "c2.7"), ("x", "y")]),
            ),
            (2, kv(&[("ack.c1.1", "c1.1"), ("ack.c2.7", "c2.7")])),
        ]);
        assert_eq!(lost_writes(&acked, &good), Ok(2));

        let lost = BTreeMap::from([
            (1, kv(&[("ack.c1.1", "c1.1"), ("ack.c2.7", "c2.7")])),
            (2, kv(&[("ack.c1.1", "other")])),
        ]);
        let err = lost_writes(&acked, &lost).expect_err("a lost write must be flagged");
        assert_eq!(err.check, "lost writes");
        assert!(err.message.contains("node 2: 2 of 2"), "{}", err.message);
        assert!(err
            .message
            .contains(r#""ack.c2.7" (acknowledged "c2.7") is missing"#));
        assert!(err
            .message
            .contains(r#""ack.c1.1" (acknowledged "c1.1") holds "other""#));
        assert!(!err.message.contains("node 1"), "{}", err.message);
    }

    #[test]
    fn a_stale_read_is_reported_with_its_window() {
        // x := a acknowledged at 10; a read starting at 20 still sees x absent.
        let history = vec![
            Operation::write(1, 0, 10, b"a").on("g0.k0"),
            Operation::read(2, 5, 15, Some(b"a")).on("g0.k0"),
            Operation::read(3, 20, 30, None).on("g0.k0"),
            Operation::write(1, 0, 10, b"z").on("g0.k1"),
        ];
        let err = linearizability(&history).expect_err("stale read must be caught");
        assert_eq!(err.check, "linearizability");
        assert!(err.message.contains("g0.k0"), "{}", err.message);
        assert!(err.message.contains("read => absent"), "{}", err.message);
        let (from, to) = err.window.expect("a window");
        assert!(from <= 20 && to >= 30, "window {from}..{to}");

        let fine = vec![
            Operation::write(1, 0, 10, b"a").on("k"),
            Operation::read(2, 20, 30, Some(b"a")).on("k"),
        ];
        assert!(linearizability(&fine).is_ok());
    }

    #[test]
    fn a_write_committed_twice_is_flagged() {
        use serde_json::json;
        let entry = |index: u64, term: u64, value: &str, request_id: Option<&str>| {
            let mut command = json!({"op": "put", "key": "g6.k0", "value": value});
            if let Some(id) = request_id {
                command["request_id"] = json!(id);
            }
            json!({"index": index, "term": term, "type": "command", "command": command})
        };
        let fine = vec![
            json!({"index": 1, "term": 1, "type": "noop", "command": null}),
            entry(2, 1, "c9.1283", None),
            entry(3, 1, "c3.1238", None),
            // A retry with an idempotency key: two entries, applied once.
            entry(4, 1, "c1.5", Some("chaos-c1-5")),
            entry(5, 2, "c1.5", Some("chaos-c1-5")),
        ];
        assert_eq!(no_double_apply(&fine), Ok(5));
        let mut twice = fine.clone();
        twice.push(entry(9, 3, "c9.1283", None));
        let err = no_double_apply(&twice).expect_err("a doubled write must be flagged");
        assert_eq!(err.check, "no write applied twice");
        assert!(
            err.message
                .contains(r#""g6.k0" = "c9.1283" committed at index 2 term 1 and index 9 term 3"#),
            "{}",
            err.message
        );
    }

    #[test]
    fn panics_are_found_in_logs() {
        let dir = tempfile::tempdir().expect("temp dir");
        let clean = dir.path().join("node1.log");
        let bad = dir.path().join("node2.log");
        std::fs::write(&clean, "INFO started\nINFO elected\n").expect("write");
        std::fs::write(
            &bad,
            "INFO started\nthread 'actix-rt' panicked at src/actors/node.rs:12:5:\nindex out of bounds\n",
        )
        .expect("write");
        assert!(panics(&[(1, clean.clone())]).is_ok());
        let err = panics(&[(1, clean), (2, bad)]).expect_err("panic must be found");
        assert!(err.message.contains("node 2"), "{}", err.message);
        assert!(err.message.contains("node2.log:2"), "{}", err.message);
        assert!(
            err.message.contains("index out of bounds"),
            "{}",
            err.message
        );
    }

    #[test]
    fn unexpected_exits_fail() {
        assert!(unexpected_exits(&[]).is_ok());
        let exit = Exit {
            id: 3,
            status: "exit status: 1".into(),
            disk: super::super::cluster::Disk::Normal,
        };
        let err = unexpected_exits(&[exit]).expect_err("an exit must fail");
        assert!(err
            .message
            .contains("node 3 exited by itself with exit status: 1"));
    }
}
