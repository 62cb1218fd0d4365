//! Runs the built `raftix` binary: exit statuses and messages of usage and configuration errors,
//! and the start/stop cycle of `raftix up`.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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
    let out = raftix(&[
        "up",
        "--nodes",
        "1",
        "--data-dir",
        data.to_str().unwrap(),
        "--base-http-port",
        &port.to_string(),
        "--base-peer-port",
        &free_port().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("port {port}")),
        "{}",
        stderr(&out)
    );
    assert!(!data.exists(), "data dir was created");
}

/// `up` prints the node's URL, and either stops cleanly on SIGTERM (exit 0) or, when the node
/// cannot run, reports which node exited with its forwarded stderr.
#[test]
fn up_prints_urls_and_handles_sigterm_or_a_dying_node() {
    let tmp = tempfile::tempdir().unwrap();
    let http = free_port();
    let peer = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_raftix"))
        .args(["up", "--nodes", "1", "--grace-ms", "3000"])
        .args(["--base-http-port", &http.to_string()])
        .args(["--base-peer-port", &peer.to_string()])
        .arg("--data-dir")
        .arg(tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(
        line.starts_with(&format!("node 1: http://127.0.0.1:{http}/")),
        "{line}"
    );
    assert!(tmp.path().join("node1").is_dir());
    std::thread::sleep(Duration::from_millis(300));
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child, which has not been reaped.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("raftix up did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    if status.code() != Some(0) {
        assert_eq!(status.code(), Some(1), "{err}");
        assert!(err.contains("node 1 exited unexpectedly"), "{err}");
        assert!(err.contains("node1 | "), "{err}");
    } else {
        assert!(err.contains("stopping 1 node"), "{err}");
    }
}
