//! The fault schedule and the nemesis that carries it out.
//!
//! [`schedule`] turns a seed into a list of faults, each with a start time and how long it is
//! held, one at a time with quiet gaps between them. It depends only on the seed, the node ids,
//! the run length, the fault kinds asked for and what the mechanism can do ([`Capabilities`]):
//! rerunning a seed with the same flags and mechanism replays the same schedule. Targets that
//! only exist at run time (the leader) are resolved when the fault starts; the timeline records
//! what was actually done.
//!
//! [`Nemesis::run`] applies each fault, logs it (`fault+ #n`), holds it, heals it (`fault- #n`),
//! and meanwhile reaps nodes that exit by themselves: an exit outside a disk fault is recorded
//! as unexpected (a failed check) and the node is restarted.
//!
//! A membership fault demotes a voter to learner over the REST API for its duration (a
//! single-server configuration change, committed through Raft while the other faults go on) and
//! promotes it back when it ends (retrying while it is not caught up).

use std::collections::BTreeSet;
use std::fmt;
use std::thread;
use std::time::{Duration, Instant};

use super::api::Api;
use super::clock::ClockSkew;
use super::cluster::{ChaosCluster, Disk, Exit};
use super::net::{Blocked, Netem, Network, NodeId};
use super::rng::Rng;
use super::timeline::Timeline;

/// The kinds of fault, as named on the command line (`--faults`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum FaultKind {
    /// Partitions: halves, an isolated leader or node, a majority ring, one-way cuts.
    Partition,
    /// kill -9 of one node (often the leader), restarted when the fault ends.
    Kill,
    /// kill -9 of every node at once, all restarted.
    KillAll,
    /// SIGSTOP of one node (often the leader), SIGCONT when the fault ends.
    Pause,
    /// Message delay and loss on every link (`tc netem`; namespaces only, when available).
    Netem,
    /// Leadership transfer to a random node.
    Transfer,
    /// A node restarted on a tiny LMDB map (a full disk) or a read-only data dir.
    Disk,
    /// Membership changes: demote a voter, promote it back.
    Membership,
    /// A node restarted with its clock fast, slow or shifted (libfaketime), within the bounds
    /// lease reads tolerate.
    Clock,
    /// A power cut of one node, a minority or every node: killed, and every write they had not
    /// fsynced lost (data dirs on `raftix-lazyfs`); restarted from what survived.
    Power,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 10] = [
        FaultKind::Partition,
        FaultKind::Kill,
        FaultKind::KillAll,
        FaultKind::Pause,
        FaultKind::Netem,
        FaultKind::Transfer,
        FaultKind::Disk,
        FaultKind::Membership,
        FaultKind::Clock,
        FaultKind::Power,
    ];

    /// Relative frequency in a schedule.
    fn weight(self) -> u64 {
        match self {
            FaultKind::Partition => 30,
            FaultKind::Kill => 12,
            FaultKind::KillAll => 5,
            FaultKind::Pause => 12,
            FaultKind::Netem => 10,
            FaultKind::Transfer => 8,
            FaultKind::Disk => 6,
            FaultKind::Membership => 8,
            FaultKind::Clock => 6,
            FaultKind::Power => 8,
        }
    }
}

/// What the mechanism and the system under test allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// `tc netem` works (delay and loss).
    pub netem: bool,
    /// Membership changes can be driven over HTTP.
    pub membership: bool,
    /// Data dirs can be put on power-loss disks (a lazy filesystem daemon, root, `/dev/fuse`).
    pub power: bool,
}

impl Capabilities {
    fn allows(self, kind: FaultKind) -> bool {
        match kind {
            FaultKind::Netem => self.netem,
            FaultKind::Membership => self.membership,
            FaultKind::Power => self.power,
            _ => true,
        }
    }
}

/// Which node a fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The leader at the time (or `fallback` if there is none).
    Leader {
        /// Used when no leader is known.
        fallback: NodeId,
    },
    /// This node.
    Node(NodeId),
}

/// Shapes of partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Partition {
    /// These nodes against the rest (a minority against a majority).
    Halves(Vec<NodeId>),
    /// One node against the rest, both ways.
    Isolate(Target),
    /// Nodes in this ring order; each talks only to its two neighbours (every node sees a
    /// majority, no two the same one). With 3 nodes: the first talks to both others, which do
    /// not talk to each other (a bridge).
    MajorityRing(Vec<NodeId>),
    /// One node's traffic cut in one direction only: `inbound` drops what the others send it,
    /// otherwise what it sends them.
    OneWay {
        /// The node.
        node: Target,
        /// Which direction is cut.
        inbound: bool,
    },
}

/// Whose power a power fault cuts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PowerScope {
    /// One node.
    One(Target),
    /// These nodes, fewer than half.
    Minority(Vec<NodeId>),
    /// Every node at once.
    All,
}

/// One fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A network partition.
    Partition(Partition),
    /// kill -9 of one node.
    Kill(Target),
    /// kill -9 of every node.
    KillAll,
    /// SIGSTOP of one node.
    Pause(Target),
    /// Delay and loss everywhere.
    Netem(Netem),
    /// Leadership transfer to this node.
    Transfer(NodeId),
    /// Restart on a tiny map (`read_only: false`) or a read-only data dir.
    Disk {
        /// The node.
        node: Target,
        /// Read-only data dir instead of a full disk.
        read_only: bool,
    },
    /// Demote this node to learner for the fault's duration, then promote it back.
    Membership(Target),
    /// Restart this node with a skewed clock; restart it with the real one when the fault ends.
    Clock {
        /// The node.
        node: Target,
        /// How its clock is skewed.
        skew: ClockSkew,
    },
    /// Cut the power: kill, lose every unsynced write; restart when the fault ends.
    Power(PowerScope),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Leader { fallback } => write!(f, "the leader (else node {fallback})"),
            Target::Node(id) => write!(f, "node {id}"),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition(Partition::Halves(side)) => write!(f, "partition: {side:?} | rest"),
            Fault::Partition(Partition::Isolate(t)) => write!(f, "partition: isolate {t}"),
            Fault::Partition(Partition::MajorityRing(ring)) => {
                write!(f, "partition: majority ring {ring:?}")
            }
            Fault::Partition(Partition::OneWay { node, inbound }) => write!(
                f,
                "one-way partition: {node} {}",
                if *inbound {
                    "hears nobody"
                } else {
                    "reaches nobody"
                }
            ),
            Fault::Kill(t) => write!(f, "kill -9 {t}"),
            Fault::KillAll => write!(f, "kill -9 every node"),
            Fault::Pause(t) => write!(f, "SIGSTOP {t}"),
            Fault::Netem(n) => write!(f, "netem {n}"),
            Fault::Transfer(to) => write!(f, "transfer leadership to node {to}"),
            Fault::Disk { node, read_only } => write!(
                f,
                "{} on {node}",
                if *read_only {
                    "read-only data dir"
                } else {
                    "full disk (tiny map)"
                }
            ),
            Fault::Membership(t) => write!(f, "demote {t} to learner (promoted back after)"),
            Fault::Clock { node, skew } => write!(f, "clock: {node} restarted with its {skew}"),
            Fault::Power(PowerScope::One(t)) => write!(f, "power cut of {t}"),
            Fault::Power(PowerScope::Minority(ids)) => write!(f, "power cut of nodes {ids:?}"),
            Fault::Power(PowerScope::All) => write!(f, "power cut of every node"),
        }
    }
}

/// One scheduled fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// When it starts, from the start of the workload.
    pub at: Duration,
    /// How long it is held before healing.
    pub hold: Duration,
    /// What it is.
    pub fault: Fault,
}

/// The seeded schedule for a run of `total` on nodes `ids`, with faults of `kinds` that `caps`
/// allow. Faults start after 2 s and end 1 s before `total`.
pub fn schedule(
    seed: u64,
    ids: &[NodeId],
    total: Duration,
    kinds: &[FaultKind],
    caps: Capabilities,
) -> Vec<Step> {
    let mut rng = Rng(seed ^ 0x6e65_6d65_7369_7321);
    let kinds: Vec<FaultKind> = FaultKind::ALL
        .into_iter()
        .filter(|k| kinds.contains(k) && caps.allows(*k))
        .collect();
    let total_weight: u64 = kinds.iter().map(|k| k.weight()).sum();
    let mut steps = Vec::new();
    let mut at = Duration::from_secs(2);
    if total_weight == 0 || ids.is_empty() {
        return steps;
    }
    loop {
        let mut roll = rng.below(total_weight);
        let kind = *kinds
            .iter()
            .find(|k| {
                if roll < k.weight() {
                    true
                } else {
                    roll -= k.weight();
                    false
                }
            })
            .unwrap_or(&FaultKind::Partition);
        let hold_ms = match kind {
            FaultKind::KillAll | FaultKind::Power => rng.between(500, 2000),
            FaultKind::Transfer => rng.between(500, 1500),
            FaultKind::Disk => rng.between(2000, 5000),
            _ => rng.between(1000, 5000),
        };
        let hold = Duration::from_millis(hold_ms);
        if at + hold + Duration::from_secs(1) > total {
            break;
        }
        let fault = make_fault(kind, ids, &mut rng);
        steps.push(Step { at, hold, fault });
        at += hold + Duration::from_millis(rng.between(800, 3000));
    }
    steps
}

fn target(rng: &mut Rng, ids: &[NodeId], leader_percent: u64) -> Target {
    let node = *rng.pick(ids).unwrap_or(&1);
    if rng.chance(leader_percent) {
        Target::Leader { fallback: node }
    } else {
        Target::Node(node)
    }
}

fn make_fault(kind: FaultKind, ids: &[NodeId], rng: &mut Rng) -> Fault {
    match kind {
        FaultKind::Partition => {
            let mut shuffled = ids.to_vec();
            rng.shuffle(&mut shuffled);
            Fault::Partition(match rng.below(4) {
                0 => Partition::Halves(shuffled[..ids.len() / 2].to_vec()),
                1 => Partition::Isolate(target(rng, ids, 60)),
                2 => Partition::MajorityRing(shuffled),
                _ => Partition::OneWay {
                    node: target(rng, ids, 60),
                    inbound: rng.chance(50),
                },
            })
        }
        FaultKind::Kill => Fault::Kill(target(rng, ids, 50)),
        FaultKind::KillAll => Fault::KillAll,
        FaultKind::Pause => Fault::Pause(target(rng, ids, 50)),
        // Round trips stay under the nodes' 150 ms minimum election timeout most of the time:
        // slow and lossy, not a partition.
        FaultKind::Netem => Fault::Netem(Netem {
            delay_ms: rng.between(5, 50),
            jitter_ms: rng.between(0, 20),
            loss_percent: rng.between(0, 10) as u32,
        }),
        FaultKind::Transfer => Fault::Transfer(*rng.pick(ids).unwrap_or(&1)),
        FaultKind::Disk => Fault::Disk {
            node: target(rng, ids, 30),
            read_only: rng.chance(40),
        },
        FaultKind::Membership => Fault::Membership(target(rng, ids, 40)),
        FaultKind::Clock => Fault::Clock {
            node: target(rng, ids, 50),
            skew: ClockSkew::within_bounds(rng),
        },
        FaultKind::Power => Fault::Power(match rng.below(3) {
            0 => PowerScope::One(target(rng, ids, 50)),
            1 => {
                let mut shuffled = ids.to_vec();
                rng.shuffle(&mut shuffled);
                shuffled.truncate(((ids.len().max(1) - 1) / 2).max(1));
                shuffled.sort_unstable();
                PowerScope::Minority(shuffled)
            }
            _ => PowerScope::All,
        }),
    }
}

/// The directed links a partition blocks, with `resolve` naming the targets.
pub fn blocked_links(
    partition: &Partition,
    ids: &[NodeId],
    resolve: impl Fn(Target) -> NodeId,
) -> Blocked {
    let mut blocked = Blocked::new();
    let mut cut_both = |a: NodeId, b: NodeId| {
        blocked.insert((a, b));
        blocked.insert((b, a));
    };
    match partition {
        Partition::Halves(side) => {
            for &a in side {
                for &b in ids.iter().filter(|b| !side.contains(b)) {
                    cut_both(a, b);
                }
            }
        }
        Partition::Isolate(t) => {
            let a = resolve(*t);
            for &b in ids.iter().filter(|&&b| b != a) {
                cut_both(a, b);
            }
        }
        Partition::MajorityRing(ring) => {
            let n = ring.len();
            if n == 3 {
                // The first node bridges the other two.
                cut_both(ring[1], ring[2]);
            } else {
                for i in 0..n {
                    for j in 0..n {
                        let d = (i + n - j) % n;
                        if i < j && d != 1 && d != n - 1 {
                            cut_both(ring[i], ring[j]);
                        }
                    }
                }
            }
        }
        Partition::OneWay { node, inbound } => {
            let a = resolve(*node);
            for &b in ids.iter().filter(|&&b| b != a) {
                if *inbound {
                    blocked.insert((b, a));
                } else {
                    blocked.insert((a, b));
                }
            }
        }
    }
    blocked
}

/// What must be undone when a fault ends.
#[derive(Debug)]
enum Active {
    /// The fault was not applied.
    Nothing,
    /// The fault was instantaneous (a leadership transfer): over as soon as it started.
    Instant,
    Blocked,
    Killed(NodeId),
    KilledAll,
    Paused(NodeId),
    Netem,
    Disk(NodeId),
    Demoted(NodeId),
    Clock(NodeId),
    PoweredOff(Vec<NodeId>),
}

/// Carries out a schedule on a cluster and its network.
pub struct Nemesis<'a> {
    /// The processes.
    pub cluster: &'a mut ChaosCluster,
    /// The network.
    pub net: &'a mut Network,
    /// The nodes' API (to find the leader, to transfer leadership).
    pub api: Api,
    /// Where faults are logged.
    pub timeline: Timeline,
    /// Node exits outside disk faults.
    pub unexpected_exits: Vec<Exit>,
    /// Faults applied.
    pub applied: u64,
    next_id: u64,
    /// Nodes demoted by a membership fault and not promoted back yet.
    demoted: Vec<NodeId>,
}

impl<'a> Nemesis<'a> {
    /// A nemesis over `cluster` and `net`.
    pub fn new(
        cluster: &'a mut ChaosCluster,
        net: &'a mut Network,
        api: Api,
        timeline: Timeline,
    ) -> Nemesis<'a> {
        Nemesis {
            cluster,
            net,
            api,
            timeline,
            unexpected_exits: Vec::new(),
            applied: 0,
            next_id: 0,
            demoted: Vec::new(),
        }
    }

    fn resolve(&self, target: Target) -> NodeId {
        match target {
            Target::Node(id) => id,
            Target::Leader { fallback } => self.api.leader().unwrap_or(fallback),
        }
    }

    /// Reaps nodes that exited by themselves; restarts the ones that were not under a disk
    /// fault (and records them as unexpected).
    pub fn reap(&mut self) {
        for exit in self.cluster.reap_exits() {
            if exit.disk == Disk::Normal {
                let id = exit.id;
                self.unexpected_exits.push(exit);
                if let Err(e) = self.cluster.start(id, Disk::Normal) {
                    self.timeline.warn(format!("restart of node {id}: {e}"));
                }
            }
        }
    }

    /// Sleeps until `until`, reaping exits every 100 ms.
    fn wait_until(&mut self, until: Instant) {
        loop {
            self.reap();
            let now = Instant::now();
            if now >= until {
                return;
            }
            thread::sleep((until - now).min(Duration::from_millis(100)));
        }
    }

    /// Runs `steps` (times from `start`), stopping before any step that would not end by `end`;
    /// heals everything at the end.
    pub fn run(&mut self, steps: &[Step], start: Instant, end: Instant) {
        for step in steps {
            if start + step.at + step.hold > end {
                break;
            }
            self.wait_until(start + step.at);
            self.next_id += 1;
            let id = self.next_id;
            let active = self.begin(id, &step.fault);
            self.wait_until(Instant::now() + step.hold);
            self.end(id, active);
        }
        self.wait_until(end);
        self.heal_all();
    }

    /// Applies `fault` as fault number `id`.
    fn begin(&mut self, id: u64, fault: &Fault) -> Active {
        self.applied += 1;
        let ids = self.cluster.ids();
        let result: Result<(String, Active), String> = match fault {
            Fault::Partition(p) => {
                let blocked = blocked_links(p, &ids, |t| self.resolve(t));
                self.net
                    .set_blocked(&blocked)
                    .map(|()| (format!("{fault}: blocked {blocked:?}"), Active::Blocked))
            }
            Fault::Kill(t) => {
                let n = self.resolve(*t);
                self.cluster
                    .kill9(n)
                    .map(|()| (format!("kill -9 node {n}"), Active::Killed(n)))
            }
            Fault::KillAll => {
                self.cluster.kill_all();
                Ok(("kill -9 every node".into(), Active::KilledAll))
            }
            Fault::Pause(t) => {
                let n = self.resolve(*t);
                self.cluster
                    .pause(n)
                    .map(|()| (format!("SIGSTOP node {n}"), Active::Paused(n)))
            }
            Fault::Netem(n) => self
                .net
                .set_netem(Some(*n))
                .map(|()| (format!("netem on every node: {n}"), Active::Netem)),
            Fault::Transfer(to) => {
                let via = self.api.leader().unwrap_or(*to);
                let text = match self.api.transfer_leader(via, Some(*to)) {
                    Ok(answer) => format!("transfer leadership to node {to}: {answer}"),
                    Err(e) => format!("transfer leadership to node {to}: refused ({e})"),
                };
                Ok((text, Active::Instant))
            }
            Fault::Disk { node, read_only } => {
                let n = self.resolve(*node);
                let disk = if *read_only {
                    Disk::ReadOnly
                } else {
                    Disk::TinyMap
                };
                let _ = self.cluster.kill9(n);
                match self.cluster.start(n, disk) {
                    Ok(()) => Ok((
                        format!("node {n} killed and restarted with {}", disk.name()),
                        Active::Disk(n),
                    )),
                    Err(e) => {
                        let _ = self.cluster.start(n, Disk::Normal);
                        Err(format!("{} unavailable here: {e}", disk.name()))
                    }
                }
            }
            Fault::Membership(t) => {
                let n = self.resolve(*t);
                self.demote(n).map(|text| (text, Active::Demoted(n)))
            }
            Fault::Clock { node, skew } => {
                let n = self.resolve(*node);
                self.restart_with_clock(n, Some(*skew)).map(|()| {
                    (
                        format!("node {n} killed and restarted with its {skew}"),
                        Active::Clock(n),
                    )
                })
            }
            Fault::Power(scope) => {
                let nodes = match scope {
                    PowerScope::One(t) => vec![self.resolve(*t)],
                    PowerScope::Minority(ids) => ids.clone(),
                    PowerScope::All => ids.clone(),
                };
                self.cluster.power_cut(&nodes).map(|()| {
                    (
                        format!("power cut of nodes {nodes:?}: killed, unsynced writes lost"),
                        Active::PoweredOff(nodes),
                    )
                })
            }
        };
        match result {
            Ok((text, active)) => {
                self.timeline.fault_start(id, text);
                if matches!(active, Active::Instant) {
                    self.timeline.fault_end(id, "done (instantaneous)");
                }
                active
            }
            Err(e) => {
                self.timeline
                    .warn(format!("fault #{id} ({fault}) not applied: {e}"));
                Active::Nothing
            }
        }
    }

    /// kill -9s node `n` and starts it again under `clock` (`None`: the real clock). If the
    /// skewed start fails (no libfaketime), the node is started with the real clock.
    fn restart_with_clock(&mut self, n: NodeId, clock: Option<ClockSkew>) -> Result<(), String> {
        let _ = self.cluster.kill9(n);
        self.cluster.set_clock(n, clock)?;
        match self.cluster.start(n, Disk::Normal) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = self.cluster.set_clock(n, None);
                let _ = self.cluster.start(n, Disk::Normal);
                Err(e)
            }
        }
    }

    /// Heals fault number `id`.
    fn end(&mut self, id: u64, active: Active) {
        let result = match active {
            Active::Nothing | Active::Instant => return,
            Active::Blocked => self
                .net
                .set_blocked(&Blocked::new())
                .map(|()| "partition healed".to_string()),
            Active::Killed(n) => self
                .cluster
                .start(n, Disk::Normal)
                .map(|()| format!("node {n} restarted")),
            Active::KilledAll => self
                .cluster
                .start_all()
                .map(|()| "every node restarted".to_string()),
            Active::Paused(n) => self.cluster.resume(n).map(|()| format!("SIGCONT node {n}")),
            Active::Netem => self
                .net
                .set_netem(None)
                .map(|()| "netem removed".to_string()),
            Active::Disk(n) => {
                let _ = self.cluster.kill9(n);
                self.cluster
                    .start(n, Disk::Normal)
                    .map(|()| format!("node {n} restarted with a normal disk"))
            }
            Active::Demoted(n) => self.promote(n),
            Active::Clock(n) => self
                .restart_with_clock(n, None)
                .map(|()| format!("node {n} restarted with the real clock")),
            Active::PoweredOff(nodes) => nodes
                .iter()
                .try_for_each(|&n| self.cluster.start(n, Disk::Normal))
                .map(|()| format!("power back: nodes {nodes:?} restarted from what survived")),
        };
        match result {
            Ok(text) => self.timeline.fault_end(id, text),
            Err(e) => self.timeline.warn(format!("healing fault #{id}: {e}")),
        }
    }

    /// Undoes every fault: no partition, no netem, nothing paused, every node up on a normal
    /// disk.
    pub fn heal_all(&mut self) {
        self.reap();
        if let Err(e) = self.net.set_blocked(&Blocked::new()) {
            self.timeline.warn(format!("heal partitions: {e}"));
        }
        if self.net.netem_available() {
            let _ = self.net.set_netem(None);
        }
        self.cluster.resume_all();
        for id in self.cluster.ids() {
            if self.cluster.disk(id) != Disk::Normal || self.cluster.clock(id).is_some() {
                let _ = self.cluster.set_clock(id, None);
                let _ = self.cluster.kill9(id);
            }
            if !self.cluster.is_up(id) {
                if let Err(e) = self.cluster.start(id, Disk::Normal) {
                    self.timeline.warn(format!("restart of node {id}: {e}"));
                }
            }
        }
        for n in std::mem::take(&mut self.demoted) {
            if let Err(e) = self.promote(n) {
                self.timeline.warn(format!("promoting node {n} back: {e}"));
            }
        }
        self.timeline
            .info("healed: no partition, no netem, every node running and a voter");
    }

    /// Demotes voter `n` to learner (`DELETE /v1/cluster/voters/{n}` through any node that
    /// answers; followers forward it to the leader).
    fn demote(&mut self, n: NodeId) -> Result<String, String> {
        let answer = self.membership_call(n, false, Duration::from_secs(3))?;
        self.demoted.push(n);
        Ok(format!("node {n} demoted to learner: {answer}"))
    }

    /// Promotes learner `n` back to voter (`POST /v1/cluster/voters/{n}`), retrying while it is
    /// not caught up or another change is in progress.
    fn promote(&mut self, n: NodeId) -> Result<String, String> {
        let answer = self.membership_call(n, true, Duration::from_secs(15))?;
        self.demoted.retain(|&d| d != n);
        Ok(format!("node {n} promoted back to voter: {answer}"))
    }

    fn membership_call(
        &self,
        n: NodeId,
        promote: bool,
        within: Duration,
    ) -> Result<String, String> {
        let until = std::time::Instant::now() + within;
        let mut last = String::from("no node answered");
        while std::time::Instant::now() < until {
            for via in self.api.ids() {
                match self.api.change_voter(via, n, promote) {
                    Ok(answer) => return Ok(answer.to_string()),
                    Err(e) => last = format!("via node {via}: {e}"),
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(last)
    }
}

/// The node ids `1..=n`.
pub fn node_ids(n: usize) -> Vec<NodeId> {
    (1..=n as NodeId).collect()
}

/// Whether `blocked` leaves some majority of `ids` fully connected (for tests and reports).
pub fn has_connected_majority(ids: &[NodeId], blocked: &Blocked) -> bool {
    let n = ids.len();
    let majority = n / 2 + 1;
    // Small clusters: try every subset.
    (0u32..(1 << n)).any(|mask| {
        let set: BTreeSet<NodeId> = (0..n)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| ids[i])
            .collect();
        set.len() >= majority
            && set.iter().all(|&a| {
                set.iter()
                    .all(|&b| a == b || (!blocked.contains(&(a, b)) && !blocked.contains(&(b, a))))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Capabilities = Capabilities {
        netem: true,
        membership: false,
        power: true,
    };

    #[test]
    fn same_seed_same_schedule() {
        let ids = node_ids(5);
        let total = Duration::from_secs(60);
        let a = schedule(42, &ids, total, &FaultKind::ALL, CAPS);
        let b = schedule(42, &ids, total, &FaultKind::ALL, CAPS);
        let c = schedule(43, &ids, total, &FaultKind::ALL, CAPS);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.len() >= 8, "{} faults in 60 s", a.len());
        for w in a.windows(2) {
            assert!(w[0].at + w[0].hold < w[1].at, "faults do not overlap");
        }
        let last = a.last().expect("some fault");
        assert!(last.at + last.hold + Duration::from_secs(1) <= total);
    }

    #[test]
    fn unavailable_kinds_are_never_scheduled() {
        let ids = node_ids(3);
        let caps = Capabilities {
            netem: false,
            membership: false,
            power: false,
        };
        for seed in 0..50 {
            for step in schedule(seed, &ids, Duration::from_secs(120), &FaultKind::ALL, caps) {
                assert!(!matches!(
                    step.fault,
                    Fault::Netem(_) | Fault::Membership(_) | Fault::Power(_)
                ));
            }
        }
        let only = schedule(1, &ids, Duration::from_secs(60), &[FaultKind::Kill], caps);
        assert!(only.iter().all(|s| matches!(s.fault, Fault::Kill(_))));
    }

    /// A leadership transfer starts and ends at once, so it is never "in effect" next to a later
    /// violation window; a fault that cannot be applied is a warning, not a fault event.
    #[test]
    fn instant_faults_end_at_once() {
        use super::super::cluster::NodeFlags;
        use super::super::net::MechanismChoice;
        use super::super::timeline::{Clock, EventKind};

        let ids = node_ids(3);
        let timeline = Timeline::new(Clock::start(), false);
        let mut net = Network::setup(MechanismChoice::Proxy, &ids, &timeline).expect("proxies");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cluster = ChaosCluster::new(
            "/nonexistent/raftix".into(),
            dir.path(),
            &net,
            &ids,
            NodeFlags::default(),
            timeline.clone(),
        );
        // Nobody listens: the transfer is refused, which is still a (logged) transfer attempt.
        let api = Api::new(cluster.http_bases());
        let steps = [
            Step {
                at: Duration::ZERO,
                hold: Duration::from_millis(10),
                fault: Fault::Transfer(2),
            },
            Step {
                at: Duration::from_millis(20),
                hold: Duration::from_millis(10),
                fault: Fault::Pause(Target::Node(1)),
            },
        ];
        let start = Instant::now();
        Nemesis::new(&mut cluster, &mut net, api, timeline.clone()).run(
            &steps,
            start,
            start + Duration::from_millis(100),
        );
        let events = timeline.events();
        let kinds: Vec<(EventKind, Option<u64>)> = events
            .iter()
            .filter(|e| e.fault.is_some())
            .map(|e| (e.kind, e.fault))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (EventKind::FaultStart, Some(1)),
                (EventKind::FaultEnd, Some(1))
            ],
            "{events:#?}"
        );
        assert!(
            events
                .iter()
                .any(|e| e.kind == EventKind::Warning && e.text.contains("fault #2")),
            "pausing a node that is not running is a warning: {events:#?}"
        );
        assert!(timeline.faults_overlapping(1_000_000, 2_000_000).is_empty());
    }

    #[test]
    fn partitions_block_what_they_say() {
        let ids = node_ids(5);
        let leader = |t: Target| match t {
            Target::Node(n) => n,
            Target::Leader { .. } => 3,
        };
        let halves = blocked_links(&Partition::Halves(vec![1, 2]), &ids, leader);
        assert_eq!(halves.len(), 2 * 2 * 3);
        assert!(halves.contains(&(1, 3)) && halves.contains(&(3, 1)));
        assert!(!halves.contains(&(1, 2)) && !halves.contains(&(3, 4)));
        assert!(has_connected_majority(&ids, &halves));

        let iso = blocked_links(
            &Partition::Isolate(Target::Leader { fallback: 1 }),
            &ids,
            leader,
        );
        assert_eq!(iso.len(), 8);
        assert!(iso.iter().all(|&(a, b)| a == 3 || b == 3));

        let ring = blocked_links(&Partition::MajorityRing(vec![1, 2, 3, 4, 5]), &ids, leader);
        // Each node keeps its two neighbours: 1-2, 2-3, 3-4, 4-5, 5-1.
        assert!(!ring.contains(&(1, 2)) && !ring.contains(&(5, 1)));
        assert!(ring.contains(&(1, 3)) && ring.contains(&(2, 5)));
        assert_eq!(ring.len(), 2 * 5);
        assert!(!has_connected_majority(&ids, &ring));

        let bridge = blocked_links(
            &Partition::MajorityRing(vec![2, 1, 3]),
            &node_ids(3),
            leader,
        );
        assert_eq!(bridge, Blocked::from([(1, 3), (3, 1)]));

        let deaf = blocked_links(
            &Partition::OneWay {
                node: Target::Node(2),
                inbound: true,
            },
            &ids,
            leader,
        );
        assert_eq!(deaf, Blocked::from([(1, 2), (3, 2), (4, 2), (5, 2)]));
    }
}
