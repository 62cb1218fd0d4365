//! One node of `raftix up`, kept running: its process, its stderr forwarded with a `nodeN | `
//! prefix, a restart with backoff when it crashes (unless `--no-restart`), a restart on request
//! (`restart N` on up's terminal or `raftix up --restart N`), and a clean stop (SIGTERM, a
//! bounded grace period, SIGKILL) when `up` stops.

use std::io::Write;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use tokio::sync::{mpsc, watch};

use super::up::NodePlan;

/// What the supervisor asks of every node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Phase {
    /// Keep the node running.
    Run,
    /// Stop it: SIGTERM, then SIGKILL after the grace period.
    Stop,
    /// Kill it now.
    Kill,
}

/// What a node's keeper reports to the supervisor.
#[derive(Debug)]
pub(super) enum NodeEvent {
    /// The node's process ended by itself; `restart_in` when it will be started again.
    Exited {
        /// The node.
        id: u64,
        /// How it ended, in words.
        status: String,
        /// When it is restarted (`None`: it stays down until asked).
        restart_in: Option<Duration>,
    },
    /// The node's process (re)started.
    Started {
        /// The node.
        id: u64,
        /// Its process id.
        pid: u32,
        /// How many times it was started before.
        restarts: u32,
    },
}

/// First wait before restarting a crashed node; doubled per crash up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait before restarting a crashed node.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A node that ran this long before crashing starts over at [`FIRST_BACKOFF`].
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// How a node is kept.
#[derive(Clone, Debug)]
pub(super) struct Keeper {
    /// The raftix executable.
    pub exe: PathBuf,
    /// The node.
    pub plan: NodePlan,
    /// Restart it when it crashes.
    pub restart_crashed: bool,
    /// How long it gets to stop after SIGTERM.
    pub grace: Duration,
}

/// Sends `sig` to process `pid`. A process that is already gone is not an error.
fn send_signal(pid: u32, sig: libc::c_int) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: kill(2) has no memory-safety preconditions. The pid belongs to a child we have not
    // reaped yet (tokio's `Child::id` returns None once it is reaped), so it cannot be reused.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc == -1 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ESRCH) {
            return Err(err);
        }
    }
    Ok(())
}

/// Starts the node's process in its own process group (a Ctrl-C reaches only `up`), with
/// SIGTERM as its parent-death signal on Linux.
fn spawn(exe: &PathBuf, plan: &NodePlan) -> std::io::Result<Child> {
    let mut cmd = Command::new(exe);
    cmd.args(&plan.args)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    #[cfg(target_os = "linux")]
    {
        // SAFETY: the closure runs in the child between fork and exec and only calls prctl(2),
        // which is async-signal-safe; it allocates nothing and takes no lock.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd.spawn()
}

/// Copies a child's stderr to ours, each line prefixed with `node{id} | `.
async fn forward_stderr(id: u64, stderr: ChildStderr) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\n', '\r']);
                // Nothing sensible to do if our own stderr is gone.
                let _ = writeln!(std::io::stderr().lock(), "node{id} | {text}");
            }
        }
    }
}

/// Stops `child`: SIGTERM, then SIGKILL after `grace` (or at once when the phase turns to
/// Kill).
async fn stop(id: u64, mut child: Child, grace: Duration, phase: &mut watch::Receiver<Phase>) {
    if *phase.borrow() < Phase::Kill {
        if let Some(pid) = child.id() {
            if let Err(e) = send_signal(pid, libc::SIGTERM) {
                eprintln!("raftix up: cannot send SIGTERM to node {id} (pid {pid}): {e}");
            }
        }
        tokio::select! {
            status = child.wait() => {
                match status {
                    Ok(status) => eprintln!("raftix up: node {id} stopped ({status})"),
                    Err(e) => eprintln!("raftix up: cannot wait for node {id}: {e}"),
                }
                return;
            }
            _ = tokio::time::sleep(grace) => {
                eprintln!("raftix up: node {id} did not stop within {grace:?}; killing it");
            }
            _ = phase.wait_for(|p| *p >= Phase::Kill) => {}
        }
    }
    // `kill` sends SIGKILL and reaps the child.
    match child.kill().await {
        Ok(()) => eprintln!("raftix up: node {id} killed"),
        Err(e) => eprintln!("raftix up: cannot kill node {id}: {e}"),
    }
}

/// What ended a wait of the keeper.
enum Woken {
    Exited(std::io::Result<ExitStatus>),
    RestartAsked,
    Stopping,
}

/// Keeps the node running until the phase says stop; see the module.
pub(super) async fn keep(
    keeper: Keeper,
    mut phase: watch::Receiver<Phase>,
    mut restarts: mpsc::UnboundedReceiver<()>,
    events: mpsc::UnboundedSender<NodeEvent>,
) {
    let id = keeper.plan.id;
    let mut backoff = FIRST_BACKOFF;
    let mut started_before = 0u32;
    loop {
        let mut child = match spawn(&keeper.exe, &keeper.plan) {
            Ok(child) => child,
            Err(e) => {
                let _ = events.send(NodeEvent::Exited {
                    id,
                    status: format!("it could not be started: {e}"),
                    restart_in: None,
                });
                return;
            }
        };
        let forwarder = child
            .stderr
            .take()
            .map(|stderr| tokio::spawn(forward_stderr(id, stderr)));
        // After the node stops, its last lines are printed before `up` goes on (bounded).
        let flushed = |forwarder: Option<tokio::task::JoinHandle<()>>| async move {
            if let Some(forwarder) = forwarder {
                let _ = tokio::time::timeout(Duration::from_secs(1), forwarder).await;
            }
        };
        let _ = events.send(NodeEvent::Started {
            id,
            pid: child.id().unwrap_or_default(),
            restarts: started_before,
        });
        started_before += 1;
        let since = Instant::now();
        let woken = tokio::select! {
            status = child.wait() => Woken::Exited(status),
            Some(()) = restarts.recv() => Woken::RestartAsked,
            _ = phase.wait_for(|p| *p >= Phase::Stop) => Woken::Stopping,
        };
        match woken {
            Woken::Stopping => {
                stop(id, child, keeper.grace, &mut phase).await;
                return flushed(forwarder).await;
            }
            Woken::RestartAsked => {
                stop(id, child, keeper.grace, &mut phase).await;
                flushed(forwarder).await;
                backoff = FIRST_BACKOFF;
                continue;
            }
            Woken::Exited(status) => {
                flushed(forwarder).await;
                if since.elapsed() >= STABLE_AFTER {
                    backoff = FIRST_BACKOFF;
                }
                let status = match status {
                    Ok(status) => status.to_string(),
                    Err(e) => format!("lost track of it: {e}"),
                };
                let restart_in = keeper.restart_crashed.then_some(backoff);
                let _ = events.send(NodeEvent::Exited {
                    id,
                    status,
                    restart_in,
                });
                // Down until the backoff ends (or, without restarts, until asked), a restart is
                // asked for, or up stops.
                let wait = async {
                    match restart_in {
                        Some(after) => tokio::time::sleep(after).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = wait => backoff = (backoff * 2).min(MAX_BACKOFF),
                    Some(()) = restarts.recv() => backoff = FIRST_BACKOFF,
                    _ = phase.wait_for(|p| *p >= Phase::Stop) => return,
                }
            }
        }
    }
}
