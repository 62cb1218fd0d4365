//! Supervision of the child processes of `raftix up`.
//!
//! Each child runs in its own process group, so a Ctrl-C in the terminal reaches only `up`, which
//! then stops the nodes in order: SIGTERM, a bounded grace period, SIGKILL. A second Ctrl-C kills
//! them at once. On Linux each child also gets SIGTERM if `up` itself dies. Children's stderr is
//! forwarded line by line with a `nodeN | ` prefix. A child that exits on its own is reported and
//! the others keep running.

use std::io::Write;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::up::{NodePlan, UpError};

/// What the supervisor asks of the child tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Keep the child running.
    Run,
    /// Stop it: SIGTERM, then SIGKILL after the grace period.
    Stop,
    /// Kill it now.
    Kill,
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

/// Starts one node.
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

/// Owns one child: reports an exit on its own, or stops it when the phase says so.
async fn watch_child(
    id: u64,
    mut child: Child,
    mut phase: watch::Receiver<Phase>,
    exits: mpsc::UnboundedSender<(u64, std::io::Result<ExitStatus>)>,
    grace: Duration,
) {
    tokio::select! {
        status = child.wait() => {
            // The supervisor stops listening once it shuts down; then nobody needs to know.
            let _ = exits.send((id, status));
            return;
        }
        _ = phase.wait_for(|p| *p >= Phase::Stop) => {}
    }
    let kill_now = *phase.borrow() >= Phase::Kill;
    if !kill_now {
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

/// Starts every node, prints where to find them, and supervises them until SIGINT or SIGTERM.
pub(super) async fn supervise(
    exe: PathBuf,
    plans: Vec<NodePlan>,
    grace: Duration,
) -> Result<(), UpError> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| UpError::Io { what, source }
    };
    // Install the handlers before any child exists, so no signal goes unhandled.
    let mut sigint = signal(SignalKind::interrupt()).map_err(io("cannot handle SIGINT"))?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(io("cannot handle SIGTERM"))?;
    let (phase_tx, phase_rx) = watch::channel(Phase::Run);
    let (exit_tx, mut exit_rx) = mpsc::unbounded_channel();
    let mut children: Vec<JoinHandle<()>> = Vec::new();
    let mut forwarders: Vec<JoinHandle<()>> = Vec::new();

    let mut spawn_error = None;
    for plan in &plans {
        let mut child = match spawn(&exe, plan) {
            Ok(child) => child,
            Err(source) => {
                spawn_error = Some(UpError::Io {
                    what: format!("cannot start node {} ({})", plan.id, exe.display()),
                    source,
                });
                break;
            }
        };
        if let Some(stderr) = child.stderr.take() {
            forwarders.push(tokio::spawn(forward_stderr(plan.id, stderr)));
        }
        let task = watch_child(plan.id, child, phase_rx.clone(), exit_tx.clone(), grace);
        children.push(tokio::spawn(task));
    }
    drop(exit_tx);

    let mut outcome = Ok(());
    let mut running = children.len();
    if let Some(e) = spawn_error {
        outcome = Err(e);
    } else {
        for plan in &plans {
            println!(
                "node {}: {}  (peer 127.0.0.1:{}, data {})",
                plan.id,
                plan.url(),
                plan.peer_port,
                plan.data_dir.display()
            );
        }
        println!("dashboard: {}  -- press Ctrl-C to stop", plans[0].url());
        if plans[0].https {
            let ca = plans[0]
                .data_dir
                .parent()
                .map(|d| d.join("certs").join(crate::tls::certs::CA_CERT))
                .unwrap_or_default();
            println!(
                "HTTPS: the CLI needs --endpoints {} --cacert {} (browsers: trust that CA)",
                plans[0].url().trim_end_matches('/'),
                ca.display()
            );
        }
        loop {
            tokio::select! {
                _ = sigint.recv() => break,
                _ = sigterm.recv() => break,
                Some((id, status)) = exit_rx.recv() => {
                    running -= 1;
                    match status {
                        Ok(status) => eprintln!("raftix up: node {id} exited unexpectedly ({status}); {running} node(s) still running"),
                        Err(e) => eprintln!("raftix up: lost track of node {id}: {e}; {running} node(s) still running"),
                    }
                    if running == 0 {
                        outcome = Err(UpError::AllExited);
                        break;
                    }
                }
            }
        }
    }

    eprintln!("raftix up: stopping {running} node(s)");
    // Receivers live in the child tasks; if all are gone there is nothing to stop.
    let _ = phase_tx.send(Phase::Stop);
    let mut waiting = std::pin::pin!(futures::future::join_all(children));
    loop {
        tokio::select! {
            _ = &mut waiting => break,
            _ = sigint.recv() => { let _ = phase_tx.send(Phase::Kill); }
            _ = sigterm.recv() => { let _ = phase_tx.send(Phase::Kill); }
        }
    }
    // The children are gone; give the forwarders a moment to print their last lines.
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        futures::future::join_all(forwarders),
    )
    .await;
    outcome
}
