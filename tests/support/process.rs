//! Process-level test clusters: every node is a real `raftix serve` child process on loopback.
//!
//! - Ports: [`alloc_ports`] hands out free ports from below the kernel's ephemeral range, so the
//!   outgoing connections of the nodes and the tests (which take ephemeral ports) never grab one
//!   before a node binds it; that race made clusters fail to start now and then when ports came
//!   from binding port 0. A node that still cannot bind exits with "cannot listen" in its log,
//!   which the wait helpers print.
//! - Logs: each node's stdout and stderr go to `node<id>.log` in the cluster's temp dir (appended
//!   across restarts, with a marker line per spawn); every wait helper panics with the tail of
//!   every node's log, and [`ProcCluster`]'s `Drop` prints them when a test panics elsewhere.
//! - Waits: every wait is a bounded poll loop (a few ms between polls).
//! - Cleanup: `Drop` SIGKILLs and reaps every child, so a panicking test leaves no orphan process.
#![allow(dead_code)]

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::Value;

/// Pause between two polls of a wait loop.
pub const POLL: Duration = Duration::from_millis(20);
/// Proposal timeout given to every node (ms).
pub const PROPOSAL_TIMEOUT_MS: u64 = 2000;
/// LMDB map size of both stores of every node; small, so temp dirs stay small.
pub const MAP_SIZE: usize = 64 << 20;
/// Lines of each node's log shown when a test fails.
const TAIL_LINES: usize = 40;

/// Allocates `n` distinct free loopback ports from below the kernel's ephemeral range, so no
/// outgoing connection can take one before the node binds it (`raftix_testkit::chaos::net::free_ports`).
pub fn alloc_ports(n: usize) -> Vec<u16> {
    raftix_testkit::chaos::net::free_ports(n).expect("free loopback ports")
}

/// The last `n` lines of the file at `path` (or a note that it cannot be read).
pub fn tail_file(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// Every file under `dir` with its bytes, except the lock files any opener rewrites (LMDB's
/// `lock.mdb`, its reader table, and `raftix.lock`, the data dir's lock naming its holder's PID):
/// what "the data dir was not modified" compares.
pub fn snapshot_dir(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path
                .file_name()
                .is_some_and(|n| n != "lock.mdb" && n != "raftix.lock")
            {
                out.insert(path.clone(), fs::read(&path).expect("read file"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, &mut out);
    out
}

/// Spawns `cmd` with no stdin and its stdout and stderr appended to `log`; `what` names it if
/// it cannot start.
pub fn spawn_logged(cmd: &mut Command, log: File, what: &str) -> Child {
    let out = log.try_clone().expect("clone the log handle");
    match cmd.stdin(Stdio::null()).stdout(out).stderr(log).spawn() {
        Ok(child) => child,
        Err(e) => panic!("cannot start {what}: {e}"),
    }
}

/// Runs `raftix ARGS` with no `RAFTIX_ENDPOINTS` from the environment and `RUST_LOG=warn`:
/// exit code (a panic if a signal ended it), stdout, stderr.
pub fn run_raftix(args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(raftix_bin())
        .args(args)
        .env_remove("RAFTIX_ENDPOINTS")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run raftix");
    (
        status.code().expect("exit code"),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Runs the CLI `raftix ARGS --endpoints ENDPOINT` with `RAFTIX_TOKEN` = `token` (if any) and
/// no other `RAFTIX_*` client variable from the environment: exit code, stdout, stderr.
pub fn cli_with_token(endpoint: &str, token: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(raftix_bin());
    cmd.args(args)
        .args(["--endpoints", endpoint])
        .env_remove("RAFTIX_ENDPOINTS")
        .env_remove("RAFTIX_TOKEN")
        .env("RUST_LOG", "warn");
    if let Some(token) = token {
        cmd.env("RAFTIX_TOKEN", token);
    }
    let out = cmd.output().expect("run raftix");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `raftix serve` of node `id` on `data_dir` and loopback ports, with the timings and map
/// sizes every test node uses (fast elections, small maps) and `RUST_LOG=info`; callers add
/// `--cluster` or `--join` and their own flags.
pub fn serve_command(id: u64, data_dir: &Path, peer_port: u16, http_port: u16) -> Command {
    let mut cmd = Command::new(raftix_bin());
    cmd.arg("serve")
        .args(["--id", &id.to_string()])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen-peer", &format!("127.0.0.1:{peer_port}")])
        .args(["--listen-http", &format!("127.0.0.1:{http_port}")])
        .args(["--election-timeout-min-ms", "150"])
        .args(["--election-timeout-max-ms", "300"])
        .args(["--heartbeat-interval-ms", "50"])
        .args(["--proposal-timeout-ms", &PROPOSAL_TIMEOUT_MS.to_string()])
        .args(["--log-map-size", &MAP_SIZE.to_string()])
        .args(["--sm-map-size", &MAP_SIZE.to_string()])
        .env("RUST_LOG", "info");
    cmd
}

/// The `raftix` binary under test.
pub fn raftix_bin() -> &'static str {
    env!("CARGO_BIN_EXE_raftix")
}

/// A blocking HTTP client that never follows redirects itself and ignores proxy settings.
pub fn http_client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_millis(PROPOSAL_TIMEOUT_MS + 1500))
        .build()
        .expect("build HTTP client")
}

/// [`http_client`] speaking HTTPS with `tls` (which CA it trusts, which certificate it
/// presents).
pub fn https_client(tls: std::sync::Arc<rustls::ClientConfig>) -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_millis(PROPOSAL_TIMEOUT_MS + 1500))
        .use_preconfigured_tls((*tls).clone())
        .build()
        .expect("build HTTPS client")
}

/// Result of a client write that followed the leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// 200: committed and applied at `index` in `term`, acknowledged by node `by`.
    Acked { index: u64, term: u64, by: u64 },
    /// 504, a connection dropped after the request may have been sent, or another answer that
    /// leaves the outcome open: the write may or may not have happened.
    Indeterminate(String),
    /// Never sent anywhere useful (no leader within the deadline, connection refused everywhere).
    NotSent(String),
}

impl PutOutcome {
    /// The acknowledged index and term, if acknowledged.
    pub fn acked(&self) -> Option<(u64, u64)> {
        match self {
            PutOutcome::Acked { index, term, .. } => Some((*index, *term)),
            _ => None,
        }
    }
}

/// What a client needs to reach the nodes: cheap to clone and `Send`, for client threads.
#[derive(Clone)]
pub struct ClusterClient {
    http: Client,
    /// (node id, HTTP port), by id.
    nodes: Vec<(u64, u16)>,
    /// `http` or `https` (a cluster started with [`ProcCluster::start_https`]).
    scheme: &'static str,
}

impl ClusterClient {
    /// The base URL of node `id`.
    pub fn base(&self, id: u64) -> String {
        let port = self.port(id);
        format!("{}://127.0.0.1:{port}", self.scheme)
    }

    fn port(&self, id: u64) -> u16 {
        self.nodes
            .iter()
            .find(|(n, _)| *n == id)
            .map(|(_, p)| *p)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn id_of_url(&self, url: &str) -> Option<u64> {
        let rest = url
            .strip_prefix(self.scheme)?
            .strip_prefix("://127.0.0.1:")?;
        let port: u16 = rest.split('/').next()?.parse().ok()?;
        self.nodes.iter().find(|(_, p)| *p == port).map(|(n, _)| *n)
    }

    fn next_node(&self, id: u64) -> u64 {
        let pos = self.nodes.iter().position(|(n, _)| *n == id).unwrap_or(0);
        self.nodes[(pos + 1) % self.nodes.len()].0
    }

    /// `GET /v1/status` of node `id`, or `None` if it does not answer.
    pub fn status(&self, id: u64) -> Option<Value> {
        let resp = self
            .http
            .get(format!("{}/v1/status", self.base(id)))
            .timeout(Duration::from_millis(500))
            .send()
            .ok()?;
        if resp.status() != StatusCode::OK {
            return None;
        }
        resp.json().ok()
    }

    /// `GET /v1/kv/{key}` on node `id`: `Some(value)` on 200, `None` on 404; panics otherwise.
    pub fn get(&self, id: u64, key: &str) -> Option<Vec<u8>> {
        let resp = self
            .http
            .get(format!("{}/v1/kv/{key}", self.base(id)))
            .send()
            .unwrap_or_else(|e| panic!("GET {key} on node {id}: {e}"));
        match resp.status() {
            StatusCode::OK => Some(resp.bytes().expect("read body").to_vec()),
            StatusCode::NOT_FOUND => None,
            other => panic!(
                "GET {key} on node {id}: unexpected {other}: {}",
                resp.text().unwrap_or_default()
            ),
        }
    }

    /// Writes `key` = `value` starting at node `start`, following the leader: a 307 is followed to
    /// its `Location`, a 503 (no leader yet) or a refused connection is retried after a short pause
    /// on the next node, all within `deadline` from now. A 504 or a failure after the request may
    /// have been sent is [`PutOutcome::Indeterminate`] (not retried, so the caller can record it).
    pub fn put(&self, start: u64, key: &str, value: &[u8], deadline: Duration) -> PutOutcome {
        let until = Instant::now() + deadline;
        let mut url = format!("{}/v1/kv/{key}", self.base(start));
        let mut target = start;
        let mut last = String::from("no attempt");
        while Instant::now() < until {
            let result = self.http.put(&url).body(value.to_vec()).send();
            let resp = match result {
                Ok(resp) => resp,
                Err(e) if e.is_connect() => {
                    // Nothing was sent: the node is down. Try the next one.
                    last = format!("connect to node {target}: {e}");
                    target = self.next_node(target);
                    url = format!("{}/v1/kv/{key}", self.base(target));
                    thread::sleep(POLL);
                    continue;
                }
                Err(e) => return PutOutcome::Indeterminate(format!("node {target}: {e}")),
            };
            let status = resp.status();
            match status {
                StatusCode::OK => {
                    let body: Value = match resp.json() {
                        Ok(body) => body,
                        Err(e) => return PutOutcome::Indeterminate(format!("200 body: {e}")),
                    };
                    return PutOutcome::Acked {
                        index: body["index"].as_u64().expect("index in 200 body"),
                        term: body["term"].as_u64().expect("term in 200 body"),
                        by: target,
                    };
                }
                StatusCode::TEMPORARY_REDIRECT => {
                    let location = resp
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    match location {
                        Some(loc) => {
                            last = format!("node {target} redirected to {loc}");
                            target = self.id_of_url(&loc).unwrap_or(target);
                            url = loc;
                        }
                        None => {
                            last = format!("node {target}: 307 without Location");
                            target = self.next_node(target);
                            url = format!("{}/v1/kv/{key}", self.base(target));
                            thread::sleep(POLL);
                        }
                    }
                }
                StatusCode::SERVICE_UNAVAILABLE => {
                    // No leader known (or the proposal was dropped before being appended).
                    last = format!("node {target}: 503 {}", resp.text().unwrap_or_default());
                    thread::sleep(POLL * 2);
                    target = self.next_node(target);
                    url = format!("{}/v1/kv/{key}", self.base(target));
                }
                StatusCode::GATEWAY_TIMEOUT => {
                    return PutOutcome::Indeterminate(format!(
                        "node {target}: 504 {}",
                        resp.text().unwrap_or_default()
                    ))
                }
                other => {
                    return PutOutcome::Indeterminate(format!(
                        "node {target}: unexpected {other} {}",
                        resp.text().unwrap_or_default()
                    ))
                }
            }
        }
        PutOutcome::NotSent(format!("gave up after {deadline:?}; last: {last}"))
    }
}

/// One node: its ports, directories and (while running) its process.
pub struct ProcNode {
    pub id: u64,
    pub peer_port: u16,
    pub http_port: u16,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    child: Option<Child>,
    spawns: u32,
    /// Environment variables of its later spawns (e.g. `FAILPOINTS`).
    env: Vec<(String, String)>,
}

/// A cluster of `raftix serve` processes sharing one temp dir.
pub struct ProcCluster {
    nodes: Vec<ProcNode>,
    cluster_flag: String,
    /// Extra flags given to every normal spawn (e.g. `--cluster-name`).
    extra_args: Vec<String>,
    client: ClusterClient,
    tails_shown: Cell<bool>,
    dir: tempfile::TempDir,
}

impl ProcCluster {
    /// Starts `n` nodes with default flags in `dir` (`dir/n<id>` are the data dirs).
    pub fn start(n: u64, dir: tempfile::TempDir) -> Self {
        Self::start_with(n, dir, &[])
    }

    /// Starts `n` nodes, passing `extra` flags to every one of them (`{id}` in a flag is replaced
    /// by the node's id, e.g. `--tls-cert certs/node-{id}.pem`).
    pub fn start_with(n: u64, dir: tempfile::TempDir, extra: &[&str]) -> Self {
        Self::start_full(n, dir, extra, http_client(), "http")
    }

    /// Starts `n` nodes serving HTTPS (`extra` must hold the TLS flags); the harness talks to
    /// them with `http`, a client set up to trust them (and present a certificate if needed).
    pub fn start_https(n: u64, dir: tempfile::TempDir, extra: &[&str], http: Client) -> Self {
        Self::start_full(n, dir, extra, http, "https")
    }

    fn start_full(
        n: u64,
        dir: tempfile::TempDir,
        extra: &[&str],
        http: Client,
        scheme: &'static str,
    ) -> Self {
        Self::describe(n, dir, extra, http, scheme).started()
    }

    fn describe(
        n: u64,
        dir: tempfile::TempDir,
        extra: &[&str],
        http: Client,
        scheme: &'static str,
    ) -> Self {
        let ports = alloc_ports(2 * n as usize);
        let nodes: Vec<ProcNode> = (1..=n)
            .map(|id| {
                let i = (id - 1) as usize;
                ProcNode {
                    id,
                    peer_port: ports[2 * i],
                    http_port: ports[2 * i + 1],
                    data_dir: dir.path().join(format!("n{id}")),
                    log_path: dir.path().join(format!("node{id}.log")),
                    child: None,
                    spawns: 0,
                    env: Vec::new(),
                }
            })
            .collect();
        let cluster_flag = nodes
            .iter()
            .map(|n| format!("{}=127.0.0.1:{}", n.id, n.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let client = ClusterClient {
            http,
            nodes: nodes.iter().map(|n| (n.id, n.http_port)).collect(),
            scheme,
        };
        ProcCluster {
            nodes,
            cluster_flag,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            client,
            tails_shown: Cell::new(false),
            dir,
        }
    }

    /// Describes `n` nodes in `dir` like [`ProcCluster::start`] without starting them (to set
    /// their environment or put their data dirs on another filesystem first); see
    /// [`ProcCluster::started`].
    pub fn stopped(n: u64, dir: tempfile::TempDir) -> Self {
        Self::describe(n, dir, &[], http_client(), "http")
    }

    /// Starts every node that is not running.
    pub fn started(mut self) -> Self {
        for id in self.ids() {
            if !self.is_running(id) {
                self.spawn(id);
            }
        }
        self
    }

    /// The temp dir holding data dirs and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// All node ids.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// Node `id`.
    pub fn node(&self, id: u64) -> &ProcNode {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn node_mut(&mut self, id: u64) -> &mut ProcNode {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// A client handle for threads.
    pub fn client(&self) -> ClusterClient {
        self.client.clone()
    }

    /// Whether node `id`'s process is running (as far as this harness knows).
    pub fn is_running(&self, id: u64) -> bool {
        self.node(id).child.is_some()
    }

    /// Ids of the nodes whose process is running.
    pub fn running(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.id)
            .collect()
    }

    /// The `serve` command line of node `id` with `extra` flags (instead of the cluster's).
    pub fn command(&self, id: u64, extra: &[String]) -> Command {
        let node = self.node(id);
        let mut cmd = serve_command(id, &node.data_dir, node.peer_port, node.http_port);
        cmd.arg("--cluster")
            .arg(&self.cluster_flag)
            .args(extra.iter().map(|a| a.replace("{id}", &id.to_string())))
            .stdin(Stdio::null());
        cmd
    }

    /// Opens node `id`'s log for appending, after a marker line naming this spawn.
    fn open_log(&mut self, id: u64, what: &str) -> File {
        let node = self.node_mut(id);
        node.spawns += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log_path)
            .expect("open node log");
        writeln!(
            log,
            "===== harness: {what} #{} of node {id} =====",
            node.spawns
        )
        .expect("write node log");
        log
    }

    fn spawn(&mut self, id: u64) {
        assert!(!self.is_running(id), "node {id} is already running");
        let log = self.open_log(id, "spawn");
        let mut cmd = self.command(id, &self.extra_args.clone());
        cmd.envs(self.node(id).env.clone())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        let child = cmd.spawn().expect("spawn raftix serve");
        self.node_mut(id).child = Some(child);
    }

    /// The PID of node `id`'s running process.
    pub fn pid(&self, id: u64) -> u32 {
        match &self.node(id).child {
            Some(child) => child.id(),
            None => panic!("node {id} is not running"),
        }
    }

    /// Sets the environment variables of node `id`'s later spawns (empty: none of its own).
    pub fn set_env(&mut self, id: u64, env: Vec<(String, String)>) {
        self.node_mut(id).env = env;
    }

    /// Starts node `id` again on the same data dir and ports (it must have been stopped).
    pub fn restart(&mut self, id: u64) {
        self.spawn(id);
    }

    /// Whether node `id`'s process is still alive (reaps it and records the exit if not).
    pub fn is_alive(&mut self, id: u64) -> bool {
        let node = self.node_mut(id);
        let exited = match node.child.as_mut() {
            None => return false,
            Some(child) => child.try_wait().expect("try_wait").is_some(),
        };
        if exited {
            node.child = None;
        }
        !exited
    }

    /// Node `id`'s exit status if its process has ended (reaping it), `None` while it runs.
    pub fn exited(&mut self, id: u64) -> Option<ExitStatus> {
        let node = self.node_mut(id);
        let status = node.child.as_mut()?.try_wait().expect("try_wait")?;
        node.child = None;
        Some(status)
    }

    /// SIGKILLs node `id` and reaps it.
    pub fn kill9(&mut self, id: u64) {
        let mut child = self.node_mut(id).child.take().expect("node is running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap killed node");
    }

    /// Changes the `--cluster` value and the extra flags of every later spawn (for tests that
    /// restart nodes with another configuration).
    pub fn reconfigure(&mut self, cluster_flag: String, extra: Vec<String>) {
        self.cluster_flag = cluster_flag;
        self.extra_args = extra;
    }

    /// Sends `signal` (e.g. `libc::SIGSTOP`, `libc::SIGCONT`) to node `id`'s process.
    pub fn signal(&self, id: u64, signal: i32) {
        let pid = self.node(id).child.as_ref().expect("node is running").id();
        // SAFETY: plain kill(2) on the pid of our own, not yet reaped, child.
        let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill({signal}) of node {id}");
    }

    /// Sends SIGTERM to node `id` and waits (bounded) for it to exit; returns its exit status.
    pub fn sigterm(&mut self, id: u64) -> ExitStatus {
        let pid = self.node(id).child.as_ref().expect("node is running").id();
        // SAFETY: plain kill(2) on the pid of our own, not yet reaped, child.
        let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) of node {id}");
        self.wait_exit(id, Duration::from_secs(10))
    }

    /// Waits up to `timeout` for node `id` to exit on its own (it must be running) and returns
    /// its exit status; fails the test with every node's log if it still runs at the deadline.
    pub fn wait_exit(&mut self, id: u64, timeout: Duration) -> ExitStatus {
        let exited = super::wait::poll_until(timeout, || {
            let child = self.node_mut(id).child.as_mut().expect("node is running");
            child.try_wait().expect("try_wait").ok_or(())
        });
        match exited {
            Ok(status) => {
                self.node_mut(id).child = None;
                status
            }
            Err(()) => self.fail(&format!(
                "node {id} still runs {timeout:?} after it was told to stop"
            )),
        }
    }

    /// SIGTERMs node `id` and asserts that it exited with status 0.
    pub fn stop(&mut self, id: u64) {
        let status = self.sigterm(id);
        if !status.success() {
            self.fail(&format!("node {id} exited with {status} after SIGTERM"));
        }
    }

    /// Runs node `id` (which must be stopped) with `extra` flags instead of the cluster's and
    /// waits up to `timeout` for it to exit. Returns its exit status and its stderr (this run's
    /// only); panics if it is still running at the deadline.
    pub fn run_expecting_exit(
        &mut self,
        id: u64,
        extra: &[&str],
        timeout: Duration,
    ) -> (ExitStatus, String) {
        assert!(!self.is_running(id), "node {id} is running");
        let n = self.node(id).spawns + 1;
        let err_path = self.dir.path().join(format!("node{id}.run{n}.stderr"));
        let mut log = self.open_log(id, "run expecting exit");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let mut cmd = self.command(id, &extra);
        cmd.stdout(log.try_clone().expect("clone log handle"))
            .stderr(File::create(&err_path).expect("create stderr file"));
        let mut child = cmd.spawn().expect("spawn raftix serve");
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = fs::read_to_string(&err_path).unwrap_or_default();
                self.fail(&format!(
                    "node {id} was expected to exit but still ran after {timeout:?}; stderr:\n{stderr}"
                ));
            }
            thread::sleep(POLL);
        };
        let stderr = fs::read_to_string(&err_path).expect("read stderr");
        let _ = log.write_all(stderr.as_bytes());
        (status, stderr)
    }

    /// `GET /v1/status` of node `id`, or `None` if it does not answer.
    pub fn status(&self, id: u64) -> Option<Value> {
        self.client.status(id)
    }

    /// `GET /v1/status` of node `id`, waiting (bounded) until it answers.
    pub fn status_wait(&self, id: u64) -> Value {
        self.wait_for(
            Duration::from_secs(10),
            &format!("status of node {id}"),
            || self.status(id),
        )
    }

    /// Writes through the leader starting at node `id` (see [`ClusterClient::put`]), bounded.
    pub fn put(&self, id: u64, key: &str, value: &[u8]) -> PutOutcome {
        self.client.put(
            id,
            key,
            value,
            Duration::from_secs(PROPOSAL_TIMEOUT_MS / 1000 + 8),
        )
    }

    /// Like [`ProcCluster::put`] starting at the first running node, and panics unless the write
    /// is acknowledged. Returns (index, term).
    pub fn put_ok(&self, key: &str, value: &[u8]) -> (u64, u64) {
        let start = *self.running().first().expect("some node is running");
        match self.put(start, key, value) {
            PutOutcome::Acked { index, term, .. } => (index, term),
            other => self.fail(&format!("PUT {key} was not acknowledged: {other:?}")),
        }
    }

    /// `GET /v1/kv/{key}` on node `id` (its own applied state).
    pub fn get(&self, id: u64, key: &str) -> Option<Vec<u8>> {
        self.client.get(id, key)
    }

    /// Polls `probe` every few ms until it returns `Some`, or panics after `timeout` naming `what`
    /// and showing the node log tails.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut probe: impl FnMut() -> Option<T>,
    ) -> T {
        match super::wait::poll_until(timeout, || probe().ok_or(())) {
            Ok(value) => value,
            Err(()) => self.fail(&format!("timed out after {timeout:?} waiting for {what}")),
        }
    }

    /// Waits until one running node is leader and every running node that answers agrees on it
    /// and its term; returns (leader id, term).
    pub fn wait_leader(&self, timeout: Duration) -> (u64, u64) {
        self.wait_for(timeout, "a leader all running nodes agree on", || {
            let statuses: Vec<Value> = self
                .running()
                .into_iter()
                .map(|id| self.status(id))
                .collect::<Option<Vec<_>>>()?;
            let leader = statuses.iter().find(|s| s["role"] == "LEADER")?;
            let (id, term) = (leader["id"].as_u64()?, leader["term"].as_u64()?);
            statuses
                .iter()
                .all(|s| s["leader"].as_u64() == Some(id) && s["term"].as_u64() == Some(term))
                .then_some((id, term))
        })
    }

    /// A node of the cluster other than `leader` (the lowest id).
    pub fn follower_of(&self, leader: u64) -> u64 {
        match self.ids().into_iter().find(|&id| id != leader) {
            Some(id) => id,
            None => self.fail(&format!("no node but the leader {leader}")),
        }
    }

    /// A temporary directory for a cluster, named `<prefix>XXXX` so that a kept run is easy to
    /// find.
    pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("tempdir")
    }

    /// Waits until every running node reports the same `applied` index, at least `min`; returns it.
    pub fn wait_converged(&self, min: u64, timeout: Duration) -> u64 {
        self.wait_for(
            timeout,
            &format!("all running nodes to report the same applied index >= {min}"),
            || {
                let applied: Vec<u64> = self
                    .running()
                    .into_iter()
                    .map(|id| self.status(id).and_then(|s| s["applied"].as_u64()))
                    .collect::<Option<Vec<_>>>()?;
                let first = applied[0];
                (first >= min && applied.iter().all(|&a| a == first)).then_some(first)
            },
        )
    }

    /// The tail of every node's log, for failure messages.
    pub fn log_tails(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            out.push_str(&format!(
                "\n----- node {} ({}) -----\n{}\n",
                node.id,
                node.log_path.display(),
                tail_file(&node.log_path, TAIL_LINES)
            ));
        }
        out
    }

    /// Panics with `msg` and the node log tails.
    pub fn fail(&self, msg: &str) -> ! {
        self.tails_shown.set(true);
        panic!("{msg}\nnode log tails:{}", self.log_tails());
    }
}

impl Drop for ProcCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if thread::panicking() && !self.tails_shown.get() {
            eprintln!("test failed; node log tails:{}", self.log_tails());
        }
    }
}
