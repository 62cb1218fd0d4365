//! Runs the built `raftix` binary: exit statuses and messages of usage and configuration errors,
//! and the start/stop cycle of `raftix up`.

use crate::support::wait::{child_exits, wait_until};
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn raftix(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_raftix"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output();
    match out {
        Ok(out) => out,
        Err(e) => panic!("cannot run raftix: {e}"),
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `raftix up` of one node on `data`, its HTTP port `http_port` and a free peer port.
fn up_one_node(data: &std::path::Path, http_port: u16) -> Output {
    raftix(&[
        "up",
        "--nodes",
        "1",
        "--data-dir",
        data.to_str().unwrap(),
        "--base-http-port",
        &http_port.to_string(),
        "--base-peer-port",
        &free_port().to_string(),
    ])
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn unknown_flag_exits_2_naming_it() {
    let out = raftix(&["serve", "--bogus-flag", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--bogus-flag"), "{}", stderr(&out));
}

#[test]
fn bad_flag_value_exits_2_naming_the_flag() {
    let out = raftix(&["serve", "--id", "abc"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--id"), "{}", stderr(&out));
    let out = raftix(&["up", "--nodes", "4"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--nodes"), "{}", stderr(&out));
}

#[test]
fn missing_required_setting_exits_2_naming_it() {
    let out = raftix(&["serve", "--id", "1", "--listen-peer", "127.0.0.1:7001"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("--data-dir"), "{err}");
}

#[test]
fn invalid_serve_config_exits_2_before_creating_the_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("node1");
    let out = raftix(&[
        "serve",
        "--id",
        "1",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--listen-peer",
        "127.0.0.1:7001",
        "--listen-http",
        "127.0.0.1:8001",
        "--cluster",
        "1=127.0.0.1:7001",
        "--heartbeat-interval-ms",
        "200",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("error: "), "{err}");
    assert!(err.contains("--heartbeat-interval-ms"), "{err}");
    assert!(err.contains("200"), "{err}");
    assert!(!data_dir.exists(), "data dir was created");
}

#[test]
fn bad_cluster_item_exits_2_naming_it() {
    let out = raftix(&[
        "serve",
        "--id",
        "1",
        "--data-dir",
        "unused",
        "--listen-peer",
        "127.0.0.1:7001",
        "--listen-http",
        "127.0.0.1:8001",
        "--cluster",
        "1=127.0.0.1:7001,2=nowhere",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("`2=nowhere`"), "{}", stderr(&out));
}

#[test]
fn up_with_a_busy_port_exits_1_naming_it_and_starts_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let busy = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = busy.local_addr().unwrap().port();
    let data = tmp.path().join("data");
    let out = up_one_node(&data, port);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("port {port}")),
        "{}",
        stderr(&out)
    );
    assert!(!data.exists(), "data dir was created");
}

#[test]
fn up_on_a_data_dir_in_use_exits_1_naming_the_pid_and_never_suggests_other_ports() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // This test process holds node 1's data dir, as a running `raftix up` would; its HTTP port
    // is busy too, so a check of the ports first would give the wrong advice.
    let held = raftix::storage::DataDir::prepare(data.join("node1"), "raftix", 1).unwrap();
    let busy = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = busy.local_addr().unwrap().port();
    let out = up_one_node(&data, port);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("in use by PID") && err.contains(&std::process::id().to_string()),
        "{err}"
    );
    assert!(
        !err.contains("--base-http-port"),
        "suggested other ports: {err}"
    );
    drop(held);
}

/// Polls `GET /v1/status` on `port` until it answers; returns the body.
fn status(port: u16) -> Option<serde_json::Value> {
    let resp = reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{port}/v1/status"))
        .timeout(Duration::from_millis(500))
        .send()
        .ok()?;
    resp.json().ok()
}

/// `raftix up` starts a working 3-node cluster (a leader is elected and a write commits) and
/// Ctrl-C (SIGINT) stops every node cleanly: exit 0 and no node left listening.
#[test]
fn up_starts_a_working_cluster_and_ctrl_c_stops_every_node() {
    let tmp = tempfile::tempdir().unwrap();
    // Three consecutive free ports for each range (up numbers the nodes' ports from a base).
    let (http, peer) = loop {
        let h = free_port();
        let p = free_port();
        let all_free = (0..3).all(|i| {
            TcpListener::bind((Ipv4Addr::LOCALHOST, h + i)).is_ok()
                && TcpListener::bind((Ipv4Addr::LOCALHOST, p + i)).is_ok()
        });
        if all_free && h.abs_diff(p) > 3 && h < 65000 && p < 65000 {
            break (h, p);
        }
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_raftix"))
        .args(["up", "--nodes", "3", "--grace-ms", "5000"])
        .args(["--base-http-port", &http.to_string()])
        .args(["--base-peer-port", &peer.to_string()])
        .arg("--data-dir")
        .arg(tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain stderr continuously so the nodes' logs can never fill the pipe and stall them.
    let mut stderr_pipe = child.stderr.take().unwrap();
    let drain = std::thread::spawn(move || {
        let mut err = String::new();
        let _ = stderr_pipe.read_to_string(&mut err);
        err
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(
        line.starts_with(&format!("node 1: http://127.0.0.1:{http}/")),
        "{line}"
    );

    // Wait (bounded) for all three nodes to agree on a leader.
    let leader_port = wait_until(Duration::from_secs(20), "a leader all 3 agree on", || {
        let statuses: Vec<serde_json::Value> = (0..3).filter_map(|i| status(http + i)).collect();
        let leaders: Vec<u64> = statuses
            .iter()
            .filter_map(|s| s["leader"].as_u64())
            .collect();
        if statuses.len() == 3 && leaders.len() == 3 && leaders.iter().all(|&l| l == leaders[0]) {
            Ok(http + (leaders[0] as u16 - 1))
        } else {
            Err(statuses)
        }
    });
    let put = reqwest::blocking::Client::new()
        .put(format!("http://127.0.0.1:{leader_port}/v1/kv/hello"))
        .body("world")
        .send()
        .unwrap();
    assert_eq!(put.status(), 200);

    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child, which has not been reaped.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let exit = child_exits(
        &mut child,
        Duration::from_secs(20),
        "raftix up after Ctrl-C",
    );
    let err = drain.join().unwrap();
    assert_eq!(exit.code(), Some(0), "{err}");
    assert!(err.contains("stopping 3 node"), "{err}");
    assert!(err.contains("became leader at term"), "{err}");
    // No node process is left: each one held its data dir's lock for as long as it ran (a
    // port check would race with other tests binding the freed ports).
    for i in 1..=3 {
        let dir = tmp.path().join(format!("node{i}"));
        assert_eq!(
            raftix::storage::DataDirLock::probe(&dir).expect("probe the lock"),
            None,
            "node {i} still runs after up exited"
        );
    }
}

#[test]
fn print_config_shows_flags_over_environment_over_file_over_defaults_with_secrets_redacted() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("raftix.toml");
    std::fs::write(
        &file,
        r#"
id = 1
data_dir = "/from/file"
listen_peer = "127.0.0.1:7001"
listen_http = "127.0.0.1:8001"
cluster = "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003"
heartbeat_interval_ms = 20
election_timeout_min_ms = 160
max_inflight = 8

[[tokens]]
name = "ops"
token = "a-secret-that-must-not-be-printed"
role = "admin"
"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_raftix"))
        .args(["serve", "--print-config", "--config"])
        .arg(&file)
        .args(["--heartbeat-interval-ms", "40"])
        .env("RAFTIX_HEARTBEAT_INTERVAL_MS", "30")
        .env("RAFTIX_ELECTION_TIMEOUT_MIN_MS", "170")
        .env("RAFTIX_NO_CHECK_QUORUM", "true")
        .env("RAFTIX_DATA_DIR", "/from/env")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed: toml::Table = toml::from_str(&text).expect("the output is TOML");
    let int = |key: &str| printed.get(key).and_then(|v| v.as_integer());
    assert_eq!(
        int("heartbeat_interval_ms"),
        Some(40),
        "the flag wins: {text}"
    );
    assert_eq!(
        int("election_timeout_min_ms"),
        Some(170),
        "env over file: {text}"
    );
    assert_eq!(
        int("max_inflight"),
        Some(8),
        "the file over the default: {text}"
    );
    assert_eq!(int("snapshot_keep"), Some(5000), "the default: {text}");
    assert_eq!(printed["check_quorum"].as_bool(), Some(false), "{text}");
    assert_eq!(printed["data_dir"].as_str(), Some("/from/env"), "{text}");
    assert_eq!(
        printed["cluster"].as_table().map(|c| c.len()),
        Some(3),
        "{text}"
    );
    assert!(
        !text.contains("a-secret-that-must-not-be-printed"),
        "{text}"
    );
    assert!(text.contains("<redacted>"), "{text}");
    // Nothing was started or created.
    assert!(!std::path::Path::new("/from/env").exists());
}

#[test]
fn a_bad_value_in_the_environment_exits_2_naming_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_raftix"))
        .args(["serve", "--print-config"])
        .env("RAFTIX_HEARTBEAT_INTERVAL_MS", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("soon") && stderr(&out).contains("--heartbeat-interval-ms"),
        "{}",
        stderr(&out)
    );
}
