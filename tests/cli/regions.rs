//! `raftix region ...`, `raftix conflicts ...` and `--replication` of `put`, against two
//! single-node regions (`raftix serve --region eu` and `--region us`): links added from the
//! command line carry writes both ways, the settings show in the listings, a `sync` write with
//! the other region down answers committed-but-not-replicated, a conflict made by writing the
//! same key in both regions while they are cut off shows in `conflicts stats` (and in the
//! `raftix_region_*` / `raftix_conflicts_*` metrics), and bad input is refused with exit 2
//! before anything is sent.

use crate::support::process;

use crate::support::extra_proc;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use extra_proc::ExtraProc;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// The value of the sample `series` (name and labels, exactly as exported) in `/metrics` of
/// `node`.
fn metric(node: &ExtraProc, series: &str) -> f64 {
    let text = process::http_client()
        .get(format!("{}/metrics", node.url()))
        .send()
        .and_then(|r| r.text())
        .expect("GET /metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

/// Runs `raftix ARGS` (no endpoints from the environment): exit code, stdout, stderr.
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_raftix"))
        .args(args)
        .env_remove("RAFTIX_ENDPOINTS")
        .env_remove("RAFTIX_TOKEN")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run raftix");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `raftix ARGS`, asserts exit 0 and returns stdout.
fn ok(args: &[&str]) -> String {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "raftix {args:?}: exit {code}\n{out}{err}");
    out
}

/// Runs `raftix ARGS --json`, asserts exit 0 and parses stdout.
fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = ok(&all);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("raftix {args:?}: {e}: {out}"))
}

/// A one-node region named `region`.
fn region(dir: &Path, region: &str) -> ExtraProc {
    let ports = process::alloc_ports(2);
    let flags = [
        "--cluster".to_string(),
        format!("1=127.0.0.1:{}", ports[0]),
        "--region".to_string(),
        region.to_string(),
    ];
    let dir = dir.join(region);
    std::fs::create_dir_all(&dir).expect("region dir");
    let node = ExtraProc::spawn(1, &dir, ports[0], ports[1], &flags);
    wait_leader(&node);
    node
}

fn wait_leader(node: &ExtraProc) {
    node.wait_for(WAIT, "the node to lead its region", || {
        let status = node.get_json("/v1/status")?;
        (status["role"] == "LEADER").then_some(())
    });
}

#[test]
fn bad_input_is_refused_before_anything_is_sent() {
    // No node runs: each of these must fail as a usage error (2), not as unreachable (1).
    let nowhere = "127.0.0.1:1";
    let cases: &[(&[&str], &str)] = &[
        (
            &["region", "add", "bad name!", "--endpoints", "h:1"],
            "region",
        ),
        (&["region", "add", "us"], "--endpoints"),
        (&["region", "add", "us", "--endpoints", "ftp://h:1"], "ftp"),
        (&["region", "remove", ""], "empty"),
        (&["region", "primary"], "--clear"),
        (&["region", "primary", "eu", "--clear"], "--clear"),
        (&["region", "replication", "fast"], "semi-sync"),
        (
            &["region", "replication", "sync", "--timeout-ms", "0"],
            "timeout",
        ),
        (
            &["region", "replication", "sync", "--timeout-ms", "600001"],
            "timeout",
        ),
        (
            &["conflicts", "policy", "--default", "newest"],
            "strategies",
        ),
        (
            &["conflicts", "policy", "--prefix", "nope"],
            "PREFIX=STRATEGY",
        ),
        (
            &["conflicts", "policy", "--prefix", "=lww-register"],
            "prefix is empty",
        ),
        (
            &["conflicts", "policy", "--prefix", "a=custom:"],
            "strategies",
        ),
        (&["put", "k", "v", "--replication", "maybe"], "semi-sync"),
        (&["conflicts", "nothing"], "unrecognized"),
    ];
    for (args, needle) in cases {
        let mut all = args.to_vec();
        // `region add` and `region replication` name this region with --at.
        let at = matches!(args.get(1), Some(&"add") | Some(&"replication"));
        all.extend([if at { "--at" } else { "--endpoints" }, nowhere]);
        let (code, out, err) = run(&all);
        assert_eq!(
            code, 2,
            "raftix {all:?} should be a usage error:\n{out}{err}"
        );
        assert!(
            err.contains(needle),
            "raftix {all:?}: the message should mention {needle:?}:\n{err}"
        );
        assert!(out.is_empty(), "raftix {all:?} printed on stdout: {out}");
    }
}

#[test]
fn regions_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut eu = region(dir.path(), "eu");
    let mut us = region(dir.path(), "us");
    let (eu_url, us_url) = (eu.url(), us.url());
    let (eu_url, us_url) = (eu_url.as_str(), us_url.as_str());

    // Nothing registered yet.
    let text = ok(&["region", "list", "--endpoints", eu_url]);
    assert!(text.contains("region eu"), "{text}");
    assert!(text.contains("no remote region"), "{text}");
    let text = ok(&["region", "status", "--endpoints", eu_url]);
    assert!(text.contains("no remote region"), "{text}");

    // Link both ways.
    let out = ok(&["region", "add", "us", "--endpoints", us_url, "--at", eu_url]);
    assert!(out.starts_with("OK added region us (index "), "{out}");
    assert!(out.contains(us_url), "{out}");
    ok(&["region", "add", "eu", "--endpoints", eu_url, "--at", us_url]);
    let listed = json(&["region", "list", "--endpoints", eu_url]);
    assert_eq!(listed["local"], "eu", "{listed}");
    assert_eq!(listed["regions"][0]["id"], "us", "{listed}");
    assert_eq!(listed["regions"][0]["endpoints"][0], us_url, "{listed}");

    // Server-side refusals are exit 5 with the server's message.
    let (code, _, err) = run(&["region", "remove", "mars", "--endpoints", eu_url]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("404") && err.contains("mars"), "{err}");
    let (code, _, err) = run(&["region", "primary", "mars", "--endpoints", eu_url]);
    assert_eq!(code, 5, "{err}");

    // Settings: the same primary and policy in both regions, sync writes in eu.
    for at in [eu_url, us_url] {
        let out = ok(&["region", "primary", "eu", "--endpoints", at]);
        assert!(out.contains("primary eu"), "{out}");
        let out = ok(&[
            "conflicts",
            "policy",
            "--default",
            "multi-value",
            "--prefix",
            "n:=custom:max",
            "--endpoints",
            at,
        ]);
        assert!(out.contains("default multi-value; n:=custom:max"), "{out}");
    }
    let policy = json(&["conflicts", "policy", "--endpoints", us_url]);
    assert_eq!(policy["default"], "multi-value", "{policy}");
    assert_eq!(policy["prefixes"]["n:"], "custom:max", "{policy}");
    ok(&[
        "region",
        "replication",
        "sync",
        "--timeout-ms",
        "3000",
        "--at",
        eu_url,
    ]);
    let listed = json(&["region", "list", "--endpoints", eu_url]);
    assert_eq!(listed["primary"], "eu", "{listed}");
    assert_eq!(listed["replication"]["mode"], "sync", "{listed}");
    assert_eq!(listed["replication"]["timeout_ms"], 3000, "{listed}");
    assert_eq!(listed["regions"][0]["primary"], false, "{listed}");

    // A sync write answers once us has it.
    let out = ok(&["put", "greeting", "hello", "--endpoints", eu_url]);
    assert!(out.starts_with("OK index="), "{out}");
    let value = ok(&["get", "greeting", "--endpoints", us_url]);
    assert_eq!(value, "hello");
    let status = json(&["region", "status", "--endpoints", eu_url]);
    let link = &status["regions"][0];
    assert_eq!(link["id"], "us", "{status}");
    assert_eq!(link["connected"], true, "{status}");
    assert_eq!(link["lag_entries"], 0, "{status}");
    assert!(link["last_acked_seq"].as_u64() >= Some(1), "{status}");
    let text = ok(&["region", "status", "--endpoints", eu_url]);
    let row = text
        .lines()
        .find(|l| l.starts_with("us "))
        .unwrap_or_else(|| panic!("no row for us:\n{text}"));
    assert!(row.contains(" yes "), "{text}");
    assert_eq!(metric(&eu, r#"raftix_region_connected{region="us"}"#), 1.0);
    assert_eq!(
        metric(&eu, r#"raftix_region_lag_entries{region="us"}"#),
        0.0
    );
    assert_eq!(
        metric(&eu, r#"raftix_region_lag_seconds{region="us"}"#),
        0.0
    );
    let acked = metric(&eu, r#"raftix_region_acked_seq{region="us"}"#);
    assert_eq!(Some(acked as u64), link["last_acked_seq"].as_u64());
    // us applied eu's write: its applied-from sequence for eu is eu's acknowledged one.
    assert_eq!(
        metric(&us, r#"raftix_region_applied_from_seq{region="eu"}"#),
        acked
    );
    assert_eq!(metric(&eu, "raftix_conflicts_unresolved"), 0.0);
    assert_eq!(metric(&eu, "raftix_conflicts_failed_total"), 0.0);

    // With us down, a sync write is committed in eu but not replicated: a warning, exit 0.
    us.stop();
    ok(&["region", "replication", "async", "--endpoints", eu_url]);
    let listed = json(&["region", "list", "--endpoints", eu_url]);
    assert_eq!(listed["replication"]["mode"], "async", "{listed}");
    assert_eq!(listed["replication"]["timeout_ms"], 3000, "kept: {listed}");
    let (code, out, err) = run(&[
        "put",
        "color",
        "red",
        "--replication",
        "sync",
        "--endpoints",
        eu_url,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("OK index="), "{out}");
    assert!(
        err.contains("not yet acknowledged by region(s) us"),
        "{err}"
    );
    let status = json(&["region", "status", "--endpoints", eu_url]);
    assert!(
        status["regions"][0]["lag_entries"].as_u64() >= Some(1),
        "{status}"
    );

    // A concurrent write of the same key in us while eu is down: a conflict once both are up.
    eu.stop();
    us.start();
    wait_leader(&us);
    ok(&["put", "color", "blue", "--endpoints", us_url]);
    eu.start();
    wait_leader(&eu);
    for (node, at) in [(&eu, eu_url), (&us, us_url)] {
        node.wait_for(WAIT, "the conflict to be detected", || {
            let stats = json(&["conflicts", "stats", "--endpoints", at]);
            (stats["unresolved"] == 1).then_some(())
        });
        let stats = json(&["conflicts", "stats", "--endpoints", at]);
        assert_eq!(stats["total"], 1, "{at}: {stats}");
        assert_eq!(stats["by_strategy"]["multi-value"], 1, "{at}: {stats}");
        assert_eq!(stats["failed"], 0, "{at}: {stats}");
        let text = ok(&["conflicts", "stats", "--endpoints", at]);
        assert!(
            text.contains("conflicts 1  failed 0  unresolved 1"),
            "{text}"
        );
        assert!(text.contains("multi-value  1"), "{text}");
        assert_eq!(
            metric(node, r#"raftix_conflicts_total{strategy="multi-value"}"#),
            1.0
        );
        assert_eq!(metric(node, "raftix_conflicts_unresolved"), 1.0);
    }

    // Removing the link: listed no more.
    let out = ok(&["region", "remove", "us", "--endpoints", eu_url]);
    assert!(out.starts_with("OK removed region us"), "{out}");
    assert!(out.contains("no remote region"), "{out}");
    let out = ok(&["region", "primary", "--clear", "--endpoints", eu_url]);
    assert!(out.contains("primary -"), "{out}");
}
