//! The namespace mechanism: every node in its own network namespace, joined to one bridge in
//! the root namespace by a veth pair, with an address on a private /24; the harness (in the
//! root namespace) reaches every node through the bridge's address.
//!
//! Faults are `tc` on each namespace's `eth0` egress:
//! - an HTB root qdisc (`default 10`) with class `1:10` for normal traffic and class `1:20`
//!   whose leaf is `pfifo limit 0`, which drops every packet;
//! - a partition is one u32 filter per blocked directed link (`match ip dst <peer>/32` to
//!   `1:20`, priority `100 + peer id`), so cutting `a -> b` only drops what `a` sends to `b`
//!   (one-way partitions are exact); client traffic to and from the bridge address is never
//!   filtered;
//! - delay and loss replace class `1:10`'s leaf with `netem` (and back with `pfifo`), when the
//!   kernel has `sch_netem` (probed at setup).
//!
//! Only `sch_htb`, `sch_fifo` and `cls_u32` are required (no `prio`, no `gact` action: some
//! kernels lack them).
//!
//! At setup a probe checks that TCP gets from one namespace to another and from the root
//! namespace to a node (firewall rules on bridged traffic would break both); when it fails,
//! `auto` falls back to the proxy and says why. A host firewall that drops forwarded traffic (as
//! Docker's does) is opened for the run's bridge only (see `bridge_firewall`).
//!
//! Names are unique per run: `<tag>` is the harness pid and a per-process counter in base 36, so
//! parallel runs never collide and interface names stay under 15 bytes: namespaces
//! `rxc-<tag>-n<id>`, the bridge `rxb<tag>`, host-side veths `rxv<tag>-<id>`. [`NetnsNet`]'s
//! `Drop` removes everything; [`cleanup_leftovers`] removes what a killed run left (any name
//! whose pid is no longer alive), and is called before every setup.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::net::{cluster_flag, Blocked, Netem, NodeAddrs, NodeId};
use super::timeline::Timeline;

/// Peer port of every node (each has its own address).
const PEER_PORT: u16 = 7000;
/// HTTP port of every node.
const HTTP_PORT: u16 = 8000;
/// Prefix of namespace names.
const NS_PREFIX: &str = "rxc-";
/// Prefix of bridge names.
const BRIDGE_PREFIX: &str = "rxb";
/// Prefix of host-side veth names.
const VETH_PREFIX: &str = "rxv";

static RUNS: AtomicU32 = AtomicU32::new(0);

/// Finds `name` on PATH or in the sbin directories (root's tools are often not on a user PATH).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Why namespaces cannot be used here (not root, `ip` or `tc` missing), or `None`.
pub fn unavailable_reason() -> Option<String> {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root".into());
    }
    for tool in ["ip", "tc"] {
        if find_tool(tool).is_none() {
            return Some(format!("`{tool}` not found (install iproute2)"));
        }
    }
    None
}

/// Runs `tool args...`; its stdout, or an error with the command and its stderr.
fn run(tool: &str, args: &[&str]) -> Result<String, String> {
    let path = find_tool(tool).ok_or_else(|| format!("`{tool}` not found"))?;
    let out = Command::new(&path)
        .args(args)
        .output()
        .map_err(|e| format!("{tool} {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{tool} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn base36(mut n: u64) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The pid encoded in a name made by this module (`<prefix><pid36>-...`).
fn owner_pid(name: &str, prefix: &str) -> Option<i32> {
    let rest = name.strip_prefix(prefix)?;
    let pid36 = rest.split('-').next()?;
    i32::from_str_radix(pid36, 36).ok()
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill(2) with signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Names of links of `kind` (`bridge`, `veth`) in the root namespace.
fn links_of_kind(kind: &str) -> Vec<String> {
    run("ip", &["-o", "link", "show", "type", kind])
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let name = line.split(": ").nth(1)?;
            Some(name.split('@').next()?.to_string())
        })
        .collect()
}

/// Removes the namespaces, bridges and veths of runs whose harness process is gone (a run that
/// was killed), killing any `raftix` process still inside those namespaces. Returns how many
/// objects it removed. Never touches names of live runs or names it did not make.
pub fn cleanup_leftovers(timeline: &Timeline) -> usize {
    let mut removed = 0;
    let namespaces: Vec<String> = run("ip", &["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    for ns in namespaces {
        let Some(pid) = owner_pid(&ns, NS_PREFIX) else {
            continue;
        };
        if pid_alive(pid) {
            continue;
        }
        for p in run("ip", &["netns", "pids", &ns])
            .unwrap_or_default()
            .split_whitespace()
        {
            let Ok(p) = p.parse::<i32>() else { continue };
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            if comm.trim() == "raftix" {
                // SAFETY: plain kill(2) of a leftover node of a dead run of this harness.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
        if run("ip", &["netns", "del", &ns]).is_ok() {
            removed += 1;
        }
    }
    for (kind, prefix) in [("veth", VETH_PREFIX), ("bridge", BRIDGE_PREFIX)] {
        for link in links_of_kind(kind) {
            if owner_pid(&link, prefix).is_some_and(|pid| !pid_alive(pid))
                && run("ip", &["link", "del", &link]).is_ok()
            {
                removed += 1;
            }
        }
    }
    removed += super::bridge_firewall::remove_leftover_rules(|bridge| {
        owner_pid(bridge, BRIDGE_PREFIX).is_some_and(|pid| !pid_alive(pid))
    });
    if removed > 0 {
        timeline.info(format!(
            "removed {removed} leftover namespace(s)/link(s) of killed runs"
        ));
    }
    removed
}

/// The `tc` arguments that put `netem` (or, with `None`, a plain FIFO back) as the leaf of the
/// normal traffic class of namespace `ns`.
fn netem_args(ns: &str, netem: Option<Netem>) -> Vec<String> {
    let mut args: Vec<String> = [
        "-n", ns, "qdisc", "replace", "dev", "eth0", "parent", "1:10",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    match netem {
        Some(n) => {
            args.extend(["netem", "limit", "100000", "delay"].map(String::from));
            args.push(format!("{}ms", n.delay_ms));
            if n.jitter_ms > 0 {
                args.push(format!("{}ms", n.jitter_ms));
            }
            if n.loss_percent > 0 {
                args.push("loss".into());
                args.push(format!("{}%", n.loss_percent));
            }
        }
        None => args.extend(["pfifo", "limit", "1000"].map(String::from)),
    }
    args
}

/// `/run/netns/<name>`.
fn ns_path(name: &str) -> PathBuf {
    Path::new("/run/netns").join(name)
}

/// Runs `f` on a new thread that first enters the network namespace at `path` (a thread's
/// network namespace is its own: the rest of the process stays where it is). Sockets `f` makes
/// belong to that namespace.
fn in_netns<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        // SAFETY: setns(2) on an fd we own, affecting only this thread.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } == -1 {
            return Err(format!("setns: {}", std::io::Error::last_os_error()));
        }
        Ok(f())
    })
    .join()
    .map_err(|_| "probe thread panicked".to_string())?
}

/// One node's namespace.
#[derive(Debug)]
struct NsNode {
    ns: String,
    veth: String,
    ip: String,
}

/// Namespaces, veths and a bridge for one run; removed on drop.
#[derive(Debug)]
pub struct NetnsNet {
    bridge: String,
    subnet: String,
    nodes: BTreeMap<NodeId, NsNode>,
    blocked: Blocked,
    /// `None` when netem works, else why not.
    netem_missing: Option<String>,
    /// The iptables flavours holding this run's accept rule for its bridge.
    firewall: Vec<&'static str>,
    torn_down: bool,
}

/// A /24 under 10.0.0.0/8 that no interface or route here uses yet, derived from `tag`.
fn free_subnet(tag: &str) -> Result<String, String> {
    let used = format!(
        "{}\n{}",
        run("ip", &["-4", "-o", "addr", "show"])?,
        run("ip", &["-4", "route", "show", "table", "all"])?
    );
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tag.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    for i in 0..2000u64 {
        let v = h.wrapping_add(i.wrapping_mul(7919));
        let subnet = format!("10.{}.{}", 200 + v % 50, (v >> 8) % 256);
        if !used.contains(&format!("{subnet}.")) {
            return Ok(subnet);
        }
    }
    Err("no free 10.x.y.0/24 subnet".into())
}

impl NetnsNet {
    /// Creates the bridge and one namespace per node, with the `tc` tree ready for faults.
    pub fn create(ids: &[NodeId]) -> Result<NetnsNet, String> {
        let tag = format!(
            "{}-{}",
            base36(u64::from(std::process::id())),
            base36(u64::from(RUNS.fetch_add(1, Ordering::Relaxed)))
        );
        let subnet = free_subnet(&tag)?;
        let mut net = NetnsNet {
            bridge: format!("{BRIDGE_PREFIX}{tag}"),
            subnet: subnet.clone(),
            nodes: BTreeMap::new(),
            blocked: Blocked::new(),
            netem_missing: None,
            firewall: Vec::new(),
            torn_down: false,
        };
        // On any error below, dropping `net` removes what was made so far.
        run("ip", &["link", "add", &net.bridge, "type", "bridge"])?;
        run("ip", &["link", "set", &net.bridge, "up"])?;
        net.firewall = super::bridge_firewall::allow(&net.bridge);
        run(
            "ip",
            &["addr", "add", &format!("{subnet}.1/24"), "dev", &net.bridge],
        )?;
        for &id in ids {
            let node = NsNode {
                ns: format!("{NS_PREFIX}{tag}-n{id}"),
                veth: format!("{VETH_PREFIX}{tag}-{id}"),
                ip: format!("{subnet}.{}", 10 + id),
            };
            run("ip", &["netns", "add", &node.ns])?;
            let ns = node.ns.clone();
            let veth = node.veth.clone();
            let ip = node.ip.clone();
            net.nodes.insert(id, node);
            run(
                "ip",
                &[
                    "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
                ],
            )?;
            run("ip", &["link", "set", &veth, "master", &net.bridge])?;
            run("ip", &["link", "set", &veth, "up"])?;
            run(
                "ip",
                &["-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"],
            )?;
            run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
            run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
            let tc = |args: &str| {
                let mut all = vec!["-n", &ns];
                all.extend(args.split_whitespace());
                run("tc", &all)
            };
            tc("qdisc add dev eth0 root handle 1: htb default 10")?;
            tc("class add dev eth0 parent 1: classid 1:10 htb rate 10gbit quantum 60000")?;
            tc("class add dev eth0 parent 1: classid 1:20 htb rate 10gbit quantum 60000")?;
            tc("qdisc add dev eth0 parent 1:20 pfifo limit 0")?;
        }
        net.probe_connectivity()?;
        // Probe netem on the first namespace (and put the plain leaf back).
        if let Some(first) = net.nodes.values().next() {
            let probe = ["-n", &first.ns, "qdisc", "replace", "dev", "eth0"];
            let netem = [&probe[..], &["parent", "1:10", "netem", "delay", "0ms"]].concat();
            match run("tc", &netem) {
                Ok(_) => {
                    let plain =
                        [&probe[..], &["parent", "1:10", "pfifo", "limit", "1000"]].concat();
                    run("tc", &plain)?;
                }
                Err(e) => net.netem_missing = Some(e),
            }
        }
        Ok(net)
    }

    /// Checks that TCP gets through: from the second namespace and from the root namespace to a
    /// listener in the first (bridge netfilter rules, for one, could drop bridged traffic).
    fn probe_connectivity(&self) -> Result<(), String> {
        let mut nodes = self.nodes.values();
        let (Some(a), Some(b)) = (nodes.next(), nodes.next()) else {
            return Ok(());
        };
        let (ns_a, ns_b) = (ns_path(&a.ns), ns_path(&b.ns));
        let ip_a = a.ip.clone();
        let listener = in_netns(&ns_a, move || {
            std::net::TcpListener::bind((ip_a.as_str(), 0)).map_err(|e| format!("bind: {e}"))
        })??;
        let target = listener
            .local_addr()
            .map_err(|e| format!("probe address: {e}"))?;
        let timeout = std::time::Duration::from_secs(2);
        in_netns(&ns_b, move || {
            std::net::TcpStream::connect_timeout(&target, timeout)
                .map(drop)
                .map_err(|e| format!("node to node ({target}): {e}"))
        })??;
        std::net::TcpStream::connect_timeout(&target, timeout)
            .map(drop)
            .map_err(|e| format!("harness to node ({target}): {e}"))
    }

    /// One line: bridge, subnet, whether netem works.
    pub fn describe(&self) -> String {
        let netem = match &self.netem_missing {
            None => "tc netem available: delay and loss faults on".to_string(),
            Some(why) => format!("tc netem unavailable ({why}): no delay or loss faults"),
        };
        format!(
            "netns: one network namespace per node on bridge {} ({}.0/24), partitions by tc u32 filters; {netem}",
            self.bridge, self.subnet
        )
    }

    /// Node `id`'s addresses (same ports everywhere, one address per namespace).
    pub fn addrs(&self, id: NodeId) -> NodeAddrs {
        let node = &self.nodes[&id];
        let peers: BTreeMap<NodeId, String> = self
            .nodes
            .iter()
            .map(|(&id, n)| (id, format!("{}:{PEER_PORT}", n.ip)))
            .collect();
        NodeAddrs {
            listen_peer: format!("{}:{PEER_PORT}", node.ip),
            listen_http: format!("{}:{HTTP_PORT}", node.ip),
            http_base: format!("http://{}:{HTTP_PORT}", node.ip),
            cluster: cluster_flag(&peers),
            netns: Some(ns_path(&node.ns)),
        }
    }

    /// Installs and removes filters so that exactly `blocked` drops.
    pub fn set_blocked(&mut self, blocked: &Blocked) -> Result<(), String> {
        let removed: Vec<(NodeId, NodeId)> = self.blocked.difference(blocked).copied().collect();
        let added: Vec<(NodeId, NodeId)> = blocked.difference(&self.blocked).copied().collect();
        for (from, to) in removed {
            let ns = &self.nodes[&from].ns;
            let prio = (100 + to).to_string();
            run(
                "tc",
                &[
                    "-n", ns, "filter", "del", "dev", "eth0", "parent", "1:", "protocol", "ip",
                    "prio", &prio,
                ],
            )?;
            self.blocked.remove(&(from, to));
        }
        for (from, to) in added {
            let ns = &self.nodes[&from].ns;
            let prio = (100 + to).to_string();
            let dst = format!("{}/32", self.nodes[&to].ip);
            run(
                "tc",
                &[
                    "-n", ns, "filter", "add", "dev", "eth0", "parent", "1:", "protocol", "ip",
                    "prio", &prio, "u32", "match", "ip", "dst", &dst, "flowid", "1:20",
                ],
            )?;
            self.blocked.insert((from, to));
        }
        Ok(())
    }

    /// Whether `tc netem` works here.
    pub fn netem_available(&self) -> bool {
        self.netem_missing.is_none()
    }

    /// Sets (or removes) netem on every namespace's normal traffic class.
    pub fn set_netem(&mut self, netem: Option<Netem>) -> Result<(), String> {
        if let Some(why) = &self.netem_missing {
            return Err(format!("tc netem unavailable: {why}"));
        }
        for node in self.nodes.values() {
            let args = netem_args(&node.ns, netem);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run("tc", &args)?;
        }
        Ok(())
    }

    /// Removes the veths, namespaces and bridge (errors ignored: best effort, idempotent).
    pub fn teardown(&mut self) {
        if self.torn_down {
            return;
        }
        self.torn_down = true;
        for node in self.nodes.values() {
            let _ = run("ip", &["link", "del", &node.veth]);
            let _ = run("ip", &["netns", "del", &node.ns]);
        }
        let _ = run("ip", &["link", "del", &self.bridge]);
        super::bridge_firewall::disallow(&self.bridge, &self.firewall);
    }
}

impl Drop for NetnsNet {
    fn drop(&mut self) {
        self.teardown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_encode_the_owner_pid() {
        let tag = format!("{}-{}", base36(4_194_303), base36(35));
        assert_eq!(tag, "2hwcf-z");
        assert_eq!(owner_pid(&format!("rxb{tag}"), "rxb"), Some(4_194_303));
        assert_eq!(owner_pid(&format!("rxc-{tag}-n3"), "rxc-"), Some(4_194_303));
        assert_eq!(owner_pid("eth0", "rxb"), None);
        // The longest host-side veth name (pid_max, 1296th run, node 5) fits IFNAMSIZ - 1.
        let longest = format!("{VETH_PREFIX}{}-{}-5", base36(4_194_304), base36(1295));
        assert!(longest.len() <= 15, "{longest}");
    }

    #[test]
    fn netem_commands() {
        let on = Netem {
            delay_ms: 40,
            jitter_ms: 10,
            loss_percent: 5,
        };
        assert_eq!(
            netem_args("rxc-a-0-n1", Some(on)).join(" "),
            "-n rxc-a-0-n1 qdisc replace dev eth0 parent 1:10 netem limit 100000 delay 40ms 10ms loss 5%"
        );
        let delay_only = Netem {
            delay_ms: 7,
            jitter_ms: 0,
            loss_percent: 0,
        };
        assert_eq!(
            netem_args("ns", Some(delay_only)).join(" "),
            "-n ns qdisc replace dev eth0 parent 1:10 netem limit 100000 delay 7ms"
        );
        assert_eq!(
            netem_args("ns", None).join(" "),
            "-n ns qdisc replace dev eth0 parent 1:10 pfifo limit 1000"
        );
    }

    /// As root with `ip` and `tc`: the probe passes, a cut link fails it (the tc filter really
    /// drops TCP), healing restores it, and teardown leaves no namespace or link behind.
    /// Otherwise: setup fails with a reason instead of panicking.
    #[test]
    fn namespaces_connect_and_cuts_drop() {
        if let Some(why) = unavailable_reason() {
            let err = NetnsNet::create(&[1, 2]).expect_err("setup must fail here");
            eprintln!("namespaces unavailable ({why}); setup failed cleanly: {err}");
            return;
        }
        let mut net = NetnsNet::create(&[1, 2]).expect("namespaces");
        net.probe_connectivity().expect("open network");
        net.set_blocked(&Blocked::from([(2, 1)]))
            .expect("cut 2 -> 1");
        let err = net.probe_connectivity().expect_err("2 -> 1 is cut");
        assert!(err.contains("node to node"), "{err}");
        net.set_blocked(&Blocked::new()).expect("heal");
        net.probe_connectivity().expect("healed network");
        let names: Vec<String> = net.nodes.values().map(|n| n.ns.clone()).collect();
        let bridge = net.bridge.clone();
        drop(net);
        let left = run("ip", &["netns", "list"]).unwrap_or_default();
        assert!(names.iter().all(|n| !left.contains(n.as_str())), "{left}");
        assert!(!links_of_kind("bridge").contains(&bridge));
    }

    #[test]
    fn own_pid_is_alive() {
        assert!(pid_alive(std::process::id() as i32));
    }
}
