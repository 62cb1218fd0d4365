//! Real `raftix serve` processes, each in its network namespace when the mechanism has them:
//! start, kill -9 (one or all), restart, SIGSTOP/SIGCONT, and the disk faults (a tiny LMDB map,
//! a read-only data dir).
//!
//! - A node's stdout and stderr go to `node<id>.log` in the run dir, appended across restarts
//!   after a marker line per spawn.
//! - Children get `PR_SET_PDEATHSIG = SIGKILL`, tied to the thread that spawned them: spawn
//!   only from the thread that drives the whole run (the nemesis runs there). `Drop` SIGKILLs
//!   and reaps every child.
//! - Entering a namespace is `setns(2)` between fork and exec (no `ip netns exec`), so the pid
//!   held is the node's own and signals reach it directly.
//! - The power fault: with [`ChaosCluster::use_power_disks`], every data dir is a lazy
//!   filesystem ([`PowerDisks`]); [`ChaosCluster::power_cut`] kills nodes and loses their
//!   unsynced writes, and their next start mounts what survived.
//! - The read-only data dir: as root, the node gets a private mount namespace in which its data
//!   dir is bind-mounted read-only (root ignores permission bits); otherwise the data dir's
//!   permissions lose every write bit until the fault ends.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::clock::ClockSkew;
use super::net::{Network, NodeAddrs, NodeId};
use super::power::PowerDisks;
use super::timeline::Timeline;

/// How a node's storage is set up for one spawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disk {
    /// The normal map sizes, writable.
    Normal,
    /// Map sizes of 64 KiB: LMDB keeps the space already used, so the next writes that need
    /// new pages fail with "map full" (a full disk).
    TinyMap,
    /// The data dir is read-only.
    ReadOnly,
}

impl Disk {
    /// A word for logs.
    pub fn name(self) -> &'static str {
        match self {
            Disk::Normal => "normal disk",
            Disk::TinyMap => "tiny map size (disk full)",
            Disk::ReadOnly => "read-only data dir",
        }
    }
}

/// Timing and size flags given to every node.
#[derive(Clone, Debug)]
pub struct NodeFlags {
    /// `--election-timeout-min-ms`.
    pub election_min_ms: u64,
    /// `--election-timeout-max-ms`.
    pub election_max_ms: u64,
    /// `--heartbeat-interval-ms`.
    pub heartbeat_ms: u64,
    /// `--proposal-timeout-ms`.
    pub proposal_timeout_ms: u64,
    /// `--log-map-size` and `--sm-map-size` normally.
    pub map_size: usize,
}

impl Default for NodeFlags {
    fn default() -> Self {
        NodeFlags {
            election_min_ms: 150,
            election_max_ms: 300,
            heartbeat_ms: 50,
            proposal_timeout_ms: 2000,
            map_size: 64 << 20,
        }
    }
}

/// One node.
#[derive(Debug)]
pub struct ChaosNode {
    /// Its id.
    pub id: NodeId,
    /// Where it listens.
    pub addrs: NodeAddrs,
    /// Its data dir.
    pub data_dir: PathBuf,
    /// Its log file.
    pub log_path: PathBuf,
    child: Option<Child>,
    paused: bool,
    spawns: u32,
    disk: Disk,
    /// Permissions were removed from the data dir (non-root read-only fault).
    chmodded: bool,
    /// The clock skew of its next spawns (a clock fault).
    clock: Option<ClockSkew>,
}

/// A node process that ended without the harness killing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    /// The node.
    pub id: NodeId,
    /// Its exit status, as text.
    pub status: String,
    /// What its disk was (an exit under a disk fault is expected).
    pub disk: Disk,
}

/// The processes of one run.
pub struct ChaosCluster {
    bin: PathBuf,
    flags: NodeFlags,
    nodes: BTreeMap<NodeId, ChaosNode>,
    timeline: Timeline,
    /// Lazy filesystems under the data dirs (the power fault), if in use.
    power: Option<PowerDisks>,
}

impl ChaosCluster {
    /// Describes nodes `ids` on `net`, with data dirs and logs under `dir`; starts nothing.
    pub fn new(
        bin: PathBuf,
        dir: &Path,
        net: &Network,
        ids: &[NodeId],
        flags: NodeFlags,
        timeline: Timeline,
    ) -> ChaosCluster {
        let nodes = ids
            .iter()
            .map(|&id| {
                let node = ChaosNode {
                    id,
                    addrs: net.addrs(id),
                    data_dir: dir.join(format!("n{id}")),
                    log_path: dir.join(format!("node{id}.log")),
                    child: None,
                    paused: false,
                    spawns: 0,
                    disk: Disk::Normal,
                    chmodded: false,
                    clock: None,
                };
                (id, node)
            })
            .collect();
        ChaosCluster {
            bin,
            flags,
            nodes,
            timeline,
            power: None,
        }
    }

    /// Puts every node's data dir on a lazy filesystem served by `daemon` (the program and its
    /// leading arguments), backed by `disk-n<id>` in `run_dir`. Call before any node starts.
    pub fn use_power_disks(
        &mut self,
        daemon: &[std::ffi::OsString],
        run_dir: &Path,
    ) -> Result<(), String> {
        let dirs: Vec<(NodeId, &Path)> = self
            .nodes
            .values()
            .map(|n| (n.id, n.data_dir.as_path()))
            .collect();
        self.power = Some(PowerDisks::mount(daemon, run_dir, &dirs)?);
        Ok(())
    }

    /// Whether data dirs are on power-loss disks.
    pub fn has_power_disks(&self) -> bool {
        self.power.is_some()
    }

    /// Cuts the power of nodes `ids` at once: every one is SIGKILLed (all signals before any
    /// is reaped), then each disk loses what was not synced. They stay down until started.
    pub fn power_cut(&mut self, ids: &[NodeId]) -> Result<(), String> {
        if self.power.is_none() {
            return Err("the data dirs are not on power-loss disks".into());
        }
        for id in ids {
            if let Some(child) = self.nodes.get_mut(id).and_then(|n| n.child.as_mut()) {
                let _ = child.kill();
            }
        }
        for &id in ids {
            self.kill9(id)?;
        }
        let power = self.power.as_mut().ok_or("no power-loss disks")?;
        for &id in ids {
            power.cut(id)?;
        }
        Ok(())
    }

    /// Every node id.
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// Node `id`.
    pub fn node(&self, id: NodeId) -> Option<&ChaosNode> {
        self.nodes.get(&id)
    }

    /// The base URLs of every node's HTTP API.
    pub fn http_bases(&self) -> BTreeMap<NodeId, String> {
        self.nodes
            .iter()
            .map(|(&id, n)| (id, n.addrs.http_base.clone()))
            .collect()
    }

    /// `(id, log path)` of every node.
    pub fn log_paths(&self) -> Vec<(NodeId, PathBuf)> {
        self.nodes
            .iter()
            .map(|(&id, n)| (id, n.log_path.clone()))
            .collect()
    }

    /// Whether node `id` has a process (running or paused).
    pub fn is_up(&self, id: NodeId) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.child.is_some())
    }

    /// Whether node `id` is SIGSTOPped.
    pub fn is_paused(&self, id: NodeId) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.paused)
    }

    /// Ids of nodes with a process that is not paused.
    pub fn running(&self) -> Vec<NodeId> {
        self.nodes
            .values()
            .filter(|n| n.child.is_some() && !n.paused)
            .map(|n| n.id)
            .collect()
    }

    /// The storage setup of node `id`'s current (or last) spawn.
    pub fn disk(&self, id: NodeId) -> Disk {
        self.nodes.get(&id).map_or(Disk::Normal, |n| n.disk)
    }

    fn node_mut(&mut self, id: NodeId) -> Result<&mut ChaosNode, String> {
        self.nodes
            .get_mut(&id)
            .ok_or_else(|| format!("no node {id}"))
    }

    /// Sets the clock skew of node `id`'s next spawns (`None`: the real clock).
    pub fn set_clock(&mut self, id: NodeId, clock: Option<ClockSkew>) -> Result<(), String> {
        self.node_mut(id)?.clock = clock;
        Ok(())
    }

    /// The clock skew node `id` runs (or will run) under.
    pub fn clock(&self, id: NodeId) -> Option<ClockSkew> {
        self.nodes.get(&id).and_then(|n| n.clock)
    }

    /// Starts node `id` (which must be down) with `disk`.
    pub fn start(&mut self, id: NodeId, disk: Disk) -> Result<(), String> {
        let (bin, flags) = (self.bin.clone(), self.flags.clone());
        if self.is_up(id) {
            return Err(format!("node {id} is already running"));
        }
        if let Some(power) = self.power.as_mut() {
            power.ensure_mounted(id)?;
        }
        let node = self.node_mut(id)?;
        fs::create_dir_all(&node.data_dir)
            .map_err(|e| format!("create {}: {e}", node.data_dir.display()))?;
        if node.chmodded && disk != Disk::ReadOnly {
            set_writable(&node.data_dir, true)?;
            node.chmodded = false;
        }
        node.spawns += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log_path)
            .map_err(|e| format!("open {}: {e}", node.log_path.display()))?;
        let _ = writeln!(
            log,
            "===== chaos: spawn #{} of node {id} ({}) =====",
            node.spawns,
            disk.name()
        );
        let map_size = match disk {
            Disk::TinyMap => 64 << 10,
            _ => flags.map_size,
        };
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .args(["--id", &id.to_string()])
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(["--listen-peer", &node.addrs.listen_peer])
            .args(["--listen-http", &node.addrs.listen_http])
            .args(["--cluster", &node.addrs.cluster])
            .args([
                "--election-timeout-min-ms",
                &flags.election_min_ms.to_string(),
            ])
            .args([
                "--election-timeout-max-ms",
                &flags.election_max_ms.to_string(),
            ])
            .args(["--heartbeat-interval-ms", &flags.heartbeat_ms.to_string()])
            .args([
                "--proposal-timeout-ms",
                &flags.proposal_timeout_ms.to_string(),
            ])
            .args(["--log-map-size", &map_size.to_string()])
            .args(["--sm-map-size", &map_size.to_string()])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| format!("log handle: {e}"))?)
            .stderr(log);
        if let Some(skew) = node.clock {
            skew.apply(&mut cmd)?;
        }
        // SAFETY: geteuid(2) has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let read_only = match disk {
            Disk::ReadOnly if root => Some(
                CString::new(node.data_dir.as_os_str().as_encoded_bytes())
                    .map_err(|e| format!("data dir path: {e}"))?,
            ),
            Disk::ReadOnly => {
                set_writable(&node.data_dir, false)?;
                node.chmodded = true;
                None
            }
            _ => None,
        };
        let netns = match &node.addrs.netns {
            Some(path) => {
                Some(File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?)
            }
            None => None,
        };
        let netns_fd = netns.as_ref().map(File::as_raw_fd);
        // SAFETY: the closure runs in the child between fork and exec and only makes system
        // calls (setns, unshare, mount, prctl) on values prepared before the fork: it allocates
        // nothing and takes no lock.
        unsafe {
            cmd.pre_exec(move || child_setup(netns_fd, read_only.as_ref()));
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn node {id} ({}): {e}", bin.display()))?;
        drop(netns);
        node.child = Some(child);
        node.paused = false;
        node.disk = disk;
        Ok(())
    }

    /// Starts every node that is down, with a normal disk.
    pub fn start_all(&mut self) -> Result<(), String> {
        for id in self.ids() {
            if !self.is_up(id) {
                self.start(id, Disk::Normal)?;
            }
        }
        Ok(())
    }

    /// SIGKILLs node `id` (paused or not) and reaps it; a node already down is left alone.
    pub fn kill9(&mut self, id: NodeId) -> Result<(), String> {
        let node = self.node_mut(id)?;
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        node.paused = false;
        Ok(())
    }

    /// SIGKILLs every node at once (all signals sent before any is reaped).
    pub fn kill_all(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(child) = node.child.as_mut() {
                let _ = child.kill();
            }
        }
        for node in self.nodes.values_mut() {
            if let Some(mut child) = node.child.take() {
                let _ = child.wait();
            }
            node.paused = false;
        }
    }

    fn signal(&mut self, id: NodeId, signal: i32) -> Result<(), String> {
        let node = self.node_mut(id)?;
        let child = node
            .child
            .as_ref()
            .ok_or_else(|| format!("node {id} is not running"))?;
        // SAFETY: kill(2) of our own child, which is not reaped yet (we hold its `Child`).
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        if rc != 0 {
            return Err(format!(
                "kill({signal}) of node {id}: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }

    /// SIGSTOPs node `id`.
    pub fn pause(&mut self, id: NodeId) -> Result<(), String> {
        self.signal(id, libc::SIGSTOP)?;
        self.node_mut(id)?.paused = true;
        Ok(())
    }

    /// SIGCONTs node `id` if it is paused.
    pub fn resume(&mut self, id: NodeId) -> Result<(), String> {
        if self.is_paused(id) && self.is_up(id) {
            self.signal(id, libc::SIGCONT)?;
        }
        self.node_mut(id)?.paused = false;
        Ok(())
    }

    /// Resumes every paused node.
    pub fn resume_all(&mut self) {
        for id in self.ids() {
            let _ = self.resume(id);
        }
    }

    /// Reaps every node that exited by itself since the last call, and records each exit in the
    /// timeline.
    pub fn reap_exits(&mut self) -> Vec<Exit> {
        let mut exits = Vec::new();
        for node in self.nodes.values_mut() {
            let Some(child) = node.child.as_mut() else {
                continue;
            };
            if let Ok(Some(status)) = child.try_wait() {
                node.child = None;
                node.paused = false;
                exits.push(Exit {
                    id: node.id,
                    status: status.to_string(),
                    disk: node.disk,
                });
            }
        }
        for exit in &exits {
            let text = format!(
                "node {} exited by itself ({}) with {}",
                exit.id,
                exit.disk.name(),
                exit.status
            );
            if exit.disk == Disk::Normal {
                self.timeline.warn(text);
            } else {
                self.timeline.info(text);
            }
        }
        exits
    }
}

impl Drop for ChaosCluster {
    fn drop(&mut self) {
        // Nodes die before their disks are unmounted (the disks drop after this body).
        self.kill_all();
        for node in self.nodes.values_mut() {
            if node.chmodded {
                let _ = set_writable(&node.data_dir, true);
                node.chmodded = false;
            }
        }
    }
}

/// In the child, before exec: enter the network namespace, make the data dir read-only in a
/// private mount namespace, and die with the parent thread.
fn child_setup(netns_fd: Option<i32>, read_only: Option<&CString>) -> std::io::Result<()> {
    let check = |rc: libc::c_int| {
        if rc == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    // SAFETY: plain system calls on a valid fd and NUL-terminated paths made before the fork.
    unsafe {
        if let Some(fd) = netns_fd {
            check(libc::setns(fd, libc::CLONE_NEWNET))?;
        }
        if let Some(dir) = read_only {
            let null = std::ptr::null::<libc::c_char>();
            check(libc::unshare(libc::CLONE_NEWNS))?;
            let root = c"/".as_ptr();
            check(libc::mount(
                null,
                root,
                null,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                dir.as_ptr(),
                dir.as_ptr(),
                null,
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                null,
                dir.as_ptr(),
                null,
                libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
                std::ptr::null(),
            ))?;
        }
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
    }
    Ok(())
}

/// Adds (owner write) or removes (every write bit) write permission on `dir` and everything in
/// it.
fn set_writable(dir: &Path, writable: bool) -> Result<(), String> {
    fn walk(path: &Path, writable: bool) -> std::io::Result<()> {
        let meta = fs::metadata(path)?;
        if meta.is_dir() {
            for entry in fs::read_dir(path)? {
                walk(&entry?.path(), writable)?;
            }
        }
        let mut perms = meta.permissions();
        let mode = perms.mode();
        perms.set_mode(if writable {
            mode | 0o200
        } else {
            mode & !0o222
        });
        fs::set_permissions(path, perms)
    }
    walk(dir, writable).map_err(|e| format!("chmod {}: {e}", dir.display()))
}
