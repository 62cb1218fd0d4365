//! Single `raftix serve` processes outside a [`ProcCluster`](super::process::ProcCluster): a node
//! that joins with `--join`, or the nodes of a cluster restored from a backup. Same conventions
//! as `process.rs`: logs in a file (shown when a test fails), bounded poll loops, SIGKILL on drop.
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::process::{http_client, tail_file, POLL};

/// One `raftix serve` process.
pub struct ExtraProc {
    pub id: u64,
    pub peer_port: u16,
    pub http_port: u16,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl ExtraProc {
    /// Spawns node `id` with its data in `dir/n<id>` and its log in `dir/node<id>.log`, with the
    /// harness's timing and map-size flags plus `extra` (`--cluster ...` or `--join ...`).
    pub fn spawn(id: u64, dir: &Path, peer_port: u16, http_port: u16, extra: &[String]) -> Self {
        let mut node = ExtraProc {
            id,
            peer_port,
            http_port,
            data_dir: dir.join(format!("n{id}")),
            log_path: dir.join(format!("node{id}.log")),
            args: extra.to_vec(),
            child: None,
        };
        node.start();
        node
    }

    /// Starts the process again with the same flags (it must have stopped).
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "node {} is running", self.id);
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open node log");
        writeln!(log, "===== harness: spawn of node {} =====", self.id).expect("write log");
        let mut cmd =
            super::process::serve_command(self.id, &self.data_dir, self.peer_port, self.http_port);
        cmd.args(&self.args);
        let child = super::process::spawn_logged(&mut cmd, log, "raftix serve");
        self.child = Some(child);
    }

    /// SIGTERMs the process and waits (bounded) until it exited successfully.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        // SAFETY: plain kill(2) on the pid of our own, not yet reaped, child.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM node {}", self.id);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                assert!(
                    status.success(),
                    "node {} exited with {status}: {}",
                    self.id,
                    self.tail()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {} ignored SIGTERM",
                self.id
            );
            thread::sleep(POLL);
        }
    }

    /// The base URL of its gateway.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// `GET path` on its gateway as JSON, if it answers 200.
    pub fn get_json(&self, path: &str) -> Option<Value> {
        let resp = http_client()
            .get(format!("{}{path}", self.url()))
            .send()
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.json().ok()
    }

    /// The value of `key` in its own applied state (`?consistency=stale`), if present.
    pub fn get_stale(&self, key: &str) -> Option<Vec<u8>> {
        let url = format!("{}/v1/kv/{key}?consistency=stale", self.url());
        let resp = http_client().get(url).send().ok()?;
        if !resp.status().is_success() {
            return None;
        }
        Some(resp.bytes().ok()?.to_vec())
    }

    /// The tail of its log.
    pub fn tail(&self) -> String {
        tail_file(&self.log_path, 40)
    }

    /// Polls `probe` until it returns `Some`, or panics after `timeout` with the log tail.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut probe: impl FnMut() -> Option<T>,
    ) -> T {
        super::wait::poll_until(timeout, || probe().ok_or(())).unwrap_or_else(|()| {
            panic!(
                "timed out after {timeout:?} waiting for {what}; node {} log:\n{}",
                self.id,
                self.tail()
            )
        })
    }
}

impl Drop for ExtraProc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!(
                "----- node {} ({}) -----\n{}",
                self.id,
                self.log_path.display(),
                self.tail()
            );
        }
    }
}
