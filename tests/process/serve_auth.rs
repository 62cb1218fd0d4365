//! `raftix serve` and access control: the loud warning of a node listening on a non-loopback
//! address without tokens (and its absence once tokens exist, static or replicated), and
//! `serve --join` of a new node into a cluster with tokens on (it sends an admin token: its
//! own static one, as no RAFTIX_TOKEN is set; without any token it stops with a clear error).

use crate::support::authed;
use crate::support::process;
use crate::support::wait::{check, wait_until};

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use authed::{call, leader_port, ports_of, wait};
use process::{alloc_ports, raftix_bin, ProcCluster, MAP_SIZE};
use reqwest::Method;
use serde_json::json;

const ADMIN: &str = "serve-admin-secret";
const WARNING: &str = "WITHOUT access control";

/// A child process killed and reaped when dropped (also when a test panics).
struct Node {
    child: Child,
    log: std::path::PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "----- {} -----\n{}",
                self.log.display(),
                process::tail_file(&self.log, 40)
            );
        }
    }
}

impl Node {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `needle`, or panics.
    fn wait_log(&self, needle: &str) -> String {
        wait_until(
            Duration::from_secs(20),
            &format!("{needle:?} in the log"),
            || {
                let text = self.log_text();
                if text.contains(needle) {
                    Ok(text)
                } else {
                    Err(text)
                }
            },
        )
    }

    /// SIGTERM, then waits (bounded) for a clean exit.
    fn stop(mut self) {
        // SAFETY: plain kill(2) on the pid of our own, not yet reaped, child.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0);
        wait_until(
            Duration::from_secs(10),
            "the node to exit on SIGTERM",
            || {
                check(
                    self.child.try_wait().expect("try_wait").is_some(),
                    "running",
                )
            },
        );
    }
}

/// `raftix serve` of a one-node cluster in `dir`, HTTP on `http_host:http_port`, with `extra`
/// flags; stdout and stderr go to `dir/<name>.log` (appended).
fn serve_single(dir: &Path, name: &str, http_host: &str, ports: &[u16], extra: &[&str]) -> Node {
    let log = dir.join(format!("{name}.log"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .expect("log");
    let child = Command::new(raftix_bin())
        .arg("serve")
        .args(["--id", "1"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--listen-peer", &format!("127.0.0.1:{}", ports[0])])
        .args(["--listen-http", &format!("{http_host}:{}", ports[1])])
        .args(["--advertise-http", &format!("127.0.0.1:{}", ports[1])])
        .args(["--cluster", &format!("1=127.0.0.1:{}", ports[0])])
        .args(["--log-map-size", &MAP_SIZE.to_string()])
        .args(["--sm-map-size", &MAP_SIZE.to_string()])
        .args(extra)
        .env("RUST_LOG", "info")
        .env_remove("RAFTIX_TOKEN")
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log"))
        .stderr(file)
        .spawn()
        .expect("spawn raftix serve");
    Node { child, log }
}

/// A private token file holding one admin token.
fn token_file(dir: &Path) -> String {
    let path = dir.join("tokens.toml");
    std::fs::write(
        &path,
        format!("[[tokens]]\nname = \"ops\"\ntoken = \"{ADMIN}\"\nrole = \"admin\"\n"),
    )
    .expect("token file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path.to_str().expect("utf-8").to_string()
}

#[test]
fn serve_warns_loudly_when_open_on_a_non_loopback_address() {
    // Open on 0.0.0.0: the warning, once the node serves.
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = alloc_ports(2);
    let node = serve_single(dir.path(), "open", "0.0.0.0", &ports, &[]);
    let log = node.wait_log("serving");
    let warning = log
        .lines()
        .find(|l| l.contains(WARNING))
        .unwrap_or_else(|| panic!("no warning in:\n{log}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains(&format!("0.0.0.0:{}", ports[1])),
        "{warning}"
    );

    // Create the first (admin) token: after a restart the node knows access control is on.
    let root = wait("the first token", || {
        let (status, body) = call(
            Method::POST,
            ports[1],
            "/v1/auth/tokens",
            None,
            Some(json!({"name": "root", "role": "admin"})),
        );
        (status == 201).then(|| body["token"].as_str().expect("secret").to_string())
    });
    node.stop();
    let node = serve_single(dir.path(), "reopened", "0.0.0.0", &ports, &[]);
    let log = node.wait_log("serving");
    assert!(!log.contains(WARNING), "{log}");
    let on = log
        .lines()
        .find(|l| l.contains("access control on"))
        .unwrap_or_else(|| panic!("no 'access control on' in:\n{log}"));
    assert!(on.contains("root"), "{on}");
    let first = std::fs::read_to_string(dir.path().join("open.log")).unwrap_or_default();
    assert!(
        !log.contains(&root) && !first.contains(&root),
        "the secret is not logged"
    );
    drop(node);

    // Static tokens on 0.0.0.0: no warning.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = token_file(dir.path());
    let node = serve_single(
        dir.path(),
        "static",
        "0.0.0.0",
        &alloc_ports(2),
        &["--token-file", &file],
    );
    let log = node.wait_log("serving");
    assert!(!log.contains(WARNING), "{log}");
    assert!(log.contains("access control on"), "{log}");
    drop(node);

    // Open on loopback: no warning either (local use).
    let dir = tempfile::tempdir().expect("tempdir");
    let node = serve_single(dir.path(), "local", "127.0.0.1", &alloc_ports(2), &[]);
    let log = node.wait_log("serving");
    assert!(!log.contains(WARNING), "{log}");
}

/// `raftix serve --id ID --join URL` with `extra` flags and no RAFTIX_TOKEN.
fn joiner(dir: &Path, id: u64, join: &str, extra: &[&str]) -> (Command, u16, std::path::PathBuf) {
    let ports = alloc_ports(2);
    let log = dir.join(format!("joiner{id}.log"));
    let mut cmd = process::serve_command(id, &dir.join(format!("j{id}")), ports[0], ports[1]);
    cmd.args(["--join", join])
        .args(extra)
        .env_remove("RAFTIX_TOKEN")
        .stdin(Stdio::null());
    (cmd, ports[1], log)
}

#[test]
fn a_node_joins_a_cluster_with_tokens_using_its_own_admin_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = token_file(dir.path());
    let work = tempfile::tempdir().expect("tempdir");
    let cluster = ProcCluster::start_with(3, dir, &["--token-file", &file]);
    let ports = ports_of(&cluster);
    let leader = leader_port(&ports, Some(ADMIN));
    let join = format!("http://127.0.0.1:{leader}");

    // Without any token the joiner stops at once with a clear error; the cluster is unchanged.
    let (mut cmd, _, _) = joiner(work.path(), 5, &join, &[]);
    let out = cmd.output().expect("run joiner");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("401") && stderr.contains("RAFTIX_TOKEN"),
        "{stderr}"
    );
    let (_, view) = call(Method::GET, leader, "/v1/cluster", Some(ADMIN), None);
    assert_eq!(view["members"].as_array().map(Vec::len), Some(3), "{view}");

    // With the cluster's token file (no RAFTIX_TOKEN): joins and is promoted to voter.
    let (mut cmd, port4, log) = joiner(work.path(), 4, &join, &["--token-file", &file]);
    let file_log = File::create(&log).expect("log");
    cmd.stdout(file_log.try_clone().expect("log"))
        .stderr(file_log);
    let node = Node {
        child: cmd.spawn().expect("spawn joiner"),
        log,
    };
    wait("node 4 promoted to voter", || {
        let (status, body) = call(Method::GET, port4, "/v1/status", Some(ADMIN), None);
        let voters = body["members"].as_array()?;
        (status == 200 && voters.contains(&json!(4))).then_some(())
    });
    let (status, _) = call(Method::GET, port4, "/v1/status", None, None);
    assert_eq!(status, 401, "the new node has access control on too");
    let text = node.log_text();
    assert!(text.contains("added to the cluster as a learner"), "{text}");
    assert!(!text.contains(ADMIN), "the token is not logged");
}
