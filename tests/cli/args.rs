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

/// A `raftix up --nodes 3` over `data`, with its stdout piped and its stderr drained by a
/// thread (so the nodes' logs never fill the pipe), and the HTTP port of node 1.
struct Up {
    child: std::process::Child,
    stdout: BufReader<std::process::ChildStdout>,
    stderr: std::thread::JoinHandle<String>,
    http: u16,
}

impl Up {
    fn start(data: &std::path::Path, extra: &[&str]) -> Up {
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
            .arg(data)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr_pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut err = String::new();
            let _ = stderr_pipe.read_to_string(&mut err);
            err
        });
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Up {
            child,
            stdout,
            stderr,
            http,
        }
    }

    /// Waits (bounded) for all three nodes to agree on a leader; returns its HTTP port.
    fn leader_port(&self) -> u16 {
        let http = self.http;
        wait_until(Duration::from_secs(20), "a leader all 3 agree on", || {
            let statuses: Vec<serde_json::Value> =
                (0..3).filter_map(|i| status(http + i)).collect();
            let leaders: Vec<u64> = statuses
                .iter()
                .filter_map(|s| s["leader"].as_u64())
                .collect();
            if statuses.len() == 3 && leaders.len() == 3 && leaders.iter().all(|&l| l == leaders[0])
            {
                Ok(http + (leaders[0] as u16 - 1))
            } else {
                Err(statuses)
            }
        })
    }

    /// Ctrl-C: waits for `up` to exit; its exit code and everything it wrote on stderr.
    fn interrupt(mut self) -> (Option<i32>, String) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child, which has not been reaped.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let exit = child_exits(
            &mut self.child,
            Duration::from_secs(20),
            "raftix up after Ctrl-C",
        );
        (exit.code(), self.stderr.join().unwrap())
    }
}

/// The PID holding node `id`'s data dir under `data` (`None`: no process runs it).
fn node_pid(data: &std::path::Path, id: u64) -> Option<u32> {
    raftix::storage::DataDirLock::probe(&data.join(format!("node{id}")))
        .expect("probe the lock")
        .flatten()
}

/// `raftix up` starts a working 3-node cluster (a leader is elected and a write commits) and
/// Ctrl-C (SIGINT) stops every node cleanly: exit 0 and no node left listening.
#[test]
fn up_starts_a_working_cluster_and_ctrl_c_stops_every_node() {
    let tmp = tempfile::tempdir().unwrap();
    let mut up = Up::start(tmp.path(), &[]);
    let mut line = String::new();
    up.stdout.read_line(&mut line).unwrap();
    assert!(
        line.starts_with(&format!("node 1: http://127.0.0.1:{}/", up.http)),
        "{line}"
    );
    let leader_port = up.leader_port();
    let put = reqwest::blocking::Client::new()
        .put(format!("http://127.0.0.1:{leader_port}/v1/kv/hello"))
        .body("world")
        .send()
        .unwrap();
    assert_eq!(put.status(), 200);

    let (code, err) = up.interrupt();
    assert_eq!(code, Some(0), "{err}");
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

/// A node killed under `raftix up` is started again; `raftix up --restart N` from another
/// terminal restarts one; `up` prints each node's `serve` command line.
#[test]
fn up_restarts_a_killed_node_and_restarts_one_on_request() {
    let tmp = tempfile::tempdir().unwrap();
    let mut up = Up::start(tmp.path(), &[]);
    let mut printed = String::new();
    for _ in 0..6 {
        up.stdout.read_line(&mut printed).unwrap();
    }
    assert!(
        printed.contains("  node 2: ") && printed.contains(" serve --id 2 "),
        "each node's command line: {printed}"
    );
    up.leader_port();
    let first = node_pid(tmp.path(), 2).expect("node 2 runs");
    // SAFETY: kill(2) of a process this test started (through up), found by its data dir lock.
    unsafe { libc::kill(first as i32, libc::SIGKILL) };
    let second = wait_until(
        Duration::from_secs(20),
        "node 2 started again",
        || match node_pid(tmp.path(), 2) {
            Some(pid) if pid != first => Ok(pid),
            other => Err(other),
        },
    );
    up.leader_port();

    let asked = raftix(&[
        "up",
        "--restart",
        "2",
        "--data-dir",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(asked.status.code(), Some(0), "{}", stderr(&asked));
    assert_eq!(
        String::from_utf8_lossy(&asked.stdout).trim(),
        "restarting node 2"
    );
    wait_until(
        Duration::from_secs(20),
        "node 2 restarted on request",
        || match node_pid(tmp.path(), 2) {
            Some(pid) if pid != first && pid != second => Ok(pid),
            other => Err(other),
        },
    );
    let unknown = raftix(&[
        "up",
        "--restart",
        "9",
        "--data-dir",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&unknown.stdout).contains("there is no node 9: nodes are 1, 2, 3"),
        "{unknown:?}"
    );

    let (code, err) = up.interrupt();
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("raftix up: node 2 exited unexpectedly")
            && err.contains("restarting it in 1 s"),
        "{err}"
    );
    assert!(err.contains("raftix up: node 2 started again"), "{err}");
    let none = raftix(&[
        "up",
        "--restart",
        "2",
        "--data-dir",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(none.status.code(), Some(1), "no up runs any more");
    assert!(
        stderr(&none).contains("no `raftix up` is running over"),
        "{}",
        stderr(&none)
    );
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

/// The sample configuration file the README points to is accepted as it is.
#[test]
fn the_sample_config_file_works_as_it_is() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/node.example.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_raftix"))
        .args(["serve", "--print-config", "--config", sample])
        .env_remove("RAFTIX_DATA_DIR")
        .output()
        .expect("run raftix");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed: toml::Table =
        toml::from_str(&String::from_utf8_lossy(&out.stdout)).expect("the output is TOML");
    assert_eq!(printed.get("id").and_then(|v| v.as_integer()), Some(1));
    assert_eq!(
        printed.get("listen_http").and_then(|v| v.as_str()),
        Some("127.0.0.1:8001")
    );
}

/// The README's state machine is the one `examples/register.rs` compiles and runs.
#[test]
fn the_readme_shows_the_register_example_as_it_is() {
    let example = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/register.rs"));
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
    let start = example
        .find("impl StateMachine for Register {")
        .expect("the impl in the example");
    let end = example
        .find("/// A snapshot of the register")
        .expect("the end of the impl");
    assert!(
        readme.contains(example[start..end].trim_end()),
        "README.md's embedding snippet differs from examples/register.rs"
    );
}
