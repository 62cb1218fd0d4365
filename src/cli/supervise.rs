//! Supervision of the nodes of `raftix up`.
//!
//! Each node is kept by its own task ([`super::up_node`]): a node that crashes is started again
//! after a backoff (1 s, doubling to 30 s) unless `--no-restart`, and `restart N` (typed on up's
//! terminal, or `raftix up --restart N` from another one, see [`super::up_control`]) restarts
//! one. A Ctrl-C in the terminal reaches only `up` (each node runs in its own process group),
//! which then stops the nodes: SIGTERM, a bounded grace period, SIGKILL; a second Ctrl-C kills
//! them at once. On Linux each node also gets SIGTERM if `up` itself dies.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::up::{NodePlan, UpError};
use super::up_control;
use super::up_node::{keep, Keeper, NodeEvent, Phase};

/// How `up` supervises its nodes.
#[derive(Clone, Debug)]
pub(super) struct Supervision {
    /// The raftix executable.
    pub exe: PathBuf,
    /// The nodes.
    pub plans: Vec<NodePlan>,
    /// How long a node gets to stop after SIGTERM.
    pub grace: Duration,
    /// Restart crashed nodes.
    pub restart_crashed: bool,
    /// Where `raftix up --restart N` finds this `up`.
    pub control: PathBuf,
}

/// Prints where to find each node and the command line it runs.
fn announce(sup: &Supervision) {
    for plan in &sup.plans {
        println!(
            "node {}: {}  (peer 127.0.0.1:{}, data {})",
            plan.id,
            plan.url(),
            plan.peer_port,
            plan.data_dir.display()
        );
    }
    for plan in &sup.plans {
        let args: Vec<String> = plan
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        println!(
            "  node {}: {} {}",
            plan.id,
            sup.exe.display(),
            args.join(" ")
        );
    }
    println!(
        "dashboard: {}  -- press Ctrl-C to stop; `restart N` here (or `raftix up --restart N` \
         elsewhere) restarts a node",
        sup.plans[0].url()
    );
    if sup.plans[0].https {
        let ca = sup.plans[0]
            .data_dir
            .parent()
            .map(|d| d.join("certs").join(crate::tls::certs::CA_CERT))
            .unwrap_or_default();
        println!(
            "HTTPS: the CLI needs --endpoints {} --cacert {} (browsers: trust that CA)",
            sup.plans[0].url().trim_end_matches('/'),
            ca.display()
        );
    }
}

/// Says what happened to a node; updates the set of nodes that are down.
fn report(event: NodeEvent, down: &mut BTreeSet<u64>, total: usize) {
    match event {
        NodeEvent::Started { id, pid, restarts } => {
            down.remove(&id);
            if restarts > 0 {
                eprintln!("raftix up: node {id} started again (pid {pid})");
            }
        }
        NodeEvent::Exited {
            id,
            status,
            restart_in,
        } => {
            down.insert(id);
            let up = total - down.len();
            match restart_in {
                Some(after) => eprintln!(
                    "raftix up: node {id} exited unexpectedly ({status}); restarting it in {} s \
                     ({up} of {total} running; --no-restart leaves crashed nodes down)",
                    after.as_secs()
                ),
                None => eprintln!(
                    "raftix up: node {id} exited unexpectedly ({status}); {up} of {total} \
                     running; `restart {id}` starts it again"
                ),
            }
        }
    }
}

/// Starts every node, prints where to find them, and supervises them until SIGINT or SIGTERM.
pub(super) async fn supervise(sup: Supervision) -> Result<(), UpError> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| UpError::Io { what, source }
    };
    // Install the handlers before any child exists, so no signal goes unhandled.
    let mut sigint = signal(SignalKind::interrupt()).map_err(io("cannot handle SIGINT"))?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(io("cannot handle SIGTERM"))?;
    let control = up_control::listen(&sup.control)?;
    let (phase_tx, phase_rx) = watch::channel(Phase::Run);
    let (event_tx, mut event_rx) = mpsc::unbounded_channel();
    let mut restarts = BTreeMap::new();
    let mut keepers: Vec<JoinHandle<()>> = Vec::new();
    for plan in &sup.plans {
        let (tx, rx) = mpsc::unbounded_channel();
        restarts.insert(plan.id, tx);
        let keeper = Keeper {
            exe: sup.exe.clone(),
            plan: plan.clone(),
            restart_crashed: sup.restart_crashed,
            grace: sup.grace,
        };
        keepers.push(tokio::spawn(keep(
            keeper,
            phase_rx.clone(),
            rx,
            event_tx.clone(),
        )));
    }
    drop(event_tx);
    announce(&sup);

    let total = sup.plans.len();
    let mut down = BTreeSet::new();
    let mut terminal = BufReader::new(tokio::io::stdin()).lines();
    let mut terminal_open = true;
    let mut outcome = Ok(());
    loop {
        tokio::select! {
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            Some(event) = event_rx.recv() => {
                report(event, &mut down, total);
                if !sup.restart_crashed && down.len() == total {
                    outcome = Err(UpError::AllExited);
                    break;
                }
            }
            line = terminal.next_line(), if terminal_open => match line {
                Ok(Some(line)) => {
                    let reply = up_control::handle(&line, &restarts);
                    if !reply.is_empty() {
                        eprintln!("raftix up: {reply}");
                    }
                }
                // No terminal (stdin closed or not readable): commands come by socket only.
                _ => terminal_open = false,
            },
            Ok((stream, _)) = control.accept() => {
                let restarts = restarts.clone();
                tokio::spawn(up_control::serve_one(stream, move |line| {
                    let reply = up_control::handle(line, &restarts);
                    eprintln!("raftix up: {line} (from raftix up --restart): {reply}");
                    reply
                }));
            }
        }
    }

    let _ = std::fs::remove_file(&sup.control);
    eprintln!("raftix up: stopping {} node(s)", total - down.len());
    // Receivers live in the keeper tasks; if all are gone there is nothing to stop.
    let _ = phase_tx.send(Phase::Stop);
    let mut waiting = std::pin::pin!(futures::future::join_all(keepers));
    loop {
        tokio::select! {
            _ = &mut waiting => break,
            _ = sigint.recv() => { let _ = phase_tx.send(Phase::Kill); }
            _ = sigterm.recv() => { let _ = phase_tx.send(Phase::Kill); }
        }
    }
    outcome
}
