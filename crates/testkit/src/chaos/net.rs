//! The network the nodes talk over, and how the suite cuts it: one facade over the two
//! mechanisms.
//!
//! - [`Mechanism::Netns`] ([`super::netns`]): every node in its own network namespace, joined by
//!   veth pairs to one bridge; partitions are `tc` filters that drop packets per destination
//!   (so one-way cuts are exact), delay and loss are `tc netem` where the kernel has it. Needs
//!   root, `ip` and `tc`.
//! - [`Mechanism::Proxy`] ([`super::proxy`]): nodes on loopback, every node reaching every other
//!   through its own TCP proxy per ordered pair, which the suite stalls per direction. Works
//!   anywhere; no delay or loss.
//!
//! [`Network::setup`] with [`MechanismChoice::Auto`] tries namespaces first and falls back to the
//! proxy, saying why.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::TcpListener;
use std::path::PathBuf;

use super::netns::NetnsNet;
use super::proxy::ProxyNet;
use super::timeline::Timeline;

/// A node id.
pub type NodeId = u64;

/// Directed links whose traffic is dropped: `(from, to)`.
pub type Blocked = BTreeSet<(NodeId, NodeId)>;

/// The mechanism asked for on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MechanismChoice {
    /// Network namespaces when possible (root, `ip`, `tc`), else the proxy.
    Auto,
    /// Network namespaces or fail.
    Netns,
    /// Per-link TCP proxies on loopback.
    Proxy,
}

/// The mechanism in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// Network namespaces, a bridge and `tc`.
    Netns,
    /// Per-link TCP proxies on loopback.
    Proxy,
}

impl Mechanism {
    /// `netns` or `proxy`, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Netns => "netns",
            Mechanism::Proxy => "proxy",
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Message delay and loss on every node's outgoing traffic (`tc netem`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Netem {
    /// Added delay.
    pub delay_ms: u64,
    /// Delay jitter (uniform, +-).
    pub jitter_ms: u64,
    /// Packets dropped, in percent.
    pub loss_percent: u32,
}

impl fmt::Display for Netem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "delay {}ms +-{}ms, loss {}%",
            self.delay_ms, self.jitter_ms, self.loss_percent
        )
    }
}

/// Where one node listens and how it finds the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddrs {
    /// `--listen-peer`.
    pub listen_peer: String,
    /// `--listen-http` (also what it advertises to the others).
    pub listen_http: String,
    /// Base URL the harness's clients use (`http://host:port`).
    pub http_base: String,
    /// `--cluster` for this node (the proxy mechanism gives every node its own addresses).
    pub cluster: String,
    /// The network namespace to run the node in (`/run/netns/<name>`), if any.
    pub netns: Option<PathBuf>,
}

/// The network of one run.
pub enum Network {
    /// Namespaces, a bridge and `tc`.
    Netns(NetnsNet),
    /// Per-link TCP proxies.
    Proxy(ProxyNet),
}

impl Network {
    /// Builds the network for nodes `ids` with the requested mechanism; with `Auto`, falls back
    /// to the proxy when namespaces cannot be set up (the timeline says why).
    pub fn setup(
        choice: MechanismChoice,
        ids: &[NodeId],
        timeline: &Timeline,
    ) -> Result<Network, String> {
        match choice {
            MechanismChoice::Proxy => Ok(Network::Proxy(ProxyNet::start(ids)?)),
            MechanismChoice::Netns => {
                super::netns::cleanup_leftovers(timeline);
                Ok(Network::Netns(NetnsNet::create(ids)?))
            }
            MechanismChoice::Auto => {
                let netns = super::netns::unavailable_reason().map_or_else(
                    || {
                        super::netns::cleanup_leftovers(timeline);
                        NetnsNet::create(ids)
                    },
                    Err,
                );
                match netns {
                    Ok(net) => Ok(Network::Netns(net)),
                    Err(why) => {
                        timeline.warn(format!(
                            "network namespaces unavailable ({why}): falling back to the per-link TCP proxy"
                        ));
                        Ok(Network::Proxy(ProxyNet::start(ids)?))
                    }
                }
            }
        }
    }

    /// The mechanism in use.
    pub fn mechanism(&self) -> Mechanism {
        match self {
            Network::Netns(_) => Mechanism::Netns,
            Network::Proxy(_) => Mechanism::Proxy,
        }
    }

    /// One line on the mechanism and what it can do.
    pub fn describe(&self) -> String {
        match self {
            Network::Netns(n) => n.describe(),
            Network::Proxy(p) => p.describe(),
        }
    }

    /// Node `id`'s addresses.
    pub fn addrs(&self, id: NodeId) -> NodeAddrs {
        match self {
            Network::Netns(n) => n.addrs(id),
            Network::Proxy(p) => p.addrs(id),
        }
    }

    /// Makes exactly the links in `blocked` drop traffic (all others pass).
    pub fn set_blocked(&mut self, blocked: &Blocked) -> Result<(), String> {
        match self {
            Network::Netns(n) => n.set_blocked(blocked),
            Network::Proxy(p) => {
                p.set_blocked(blocked);
                Ok(())
            }
        }
    }

    /// Whether message delay and loss can be injected.
    pub fn netem_available(&self) -> bool {
        match self {
            Network::Netns(n) => n.netem_available(),
            Network::Proxy(_) => false,
        }
    }

    /// Sets (or with `None` removes) delay and loss on every node's outgoing traffic.
    pub fn set_netem(&mut self, netem: Option<Netem>) -> Result<(), String> {
        match self {
            Network::Netns(n) => n.set_netem(netem),
            Network::Proxy(_) => Err("the proxy mechanism cannot delay or drop messages".into()),
        }
    }
}

/// Lowest port [`free_ports`] hands out.
const PORT_LOW: u32 = 12_000;
/// How many ports [`free_ports`] cycles through: `12000..32000`, below Linux's default ephemeral
/// range (32768-60999).
const PORT_SPAN: u32 = 20_000;

/// `n` distinct free loopback ports for processes that will bind them later.
///
/// Ports come from below the kernel's ephemeral range, so an outgoing connection of any
/// process (which takes an ephemeral port) can never grab one between this check and the
/// node's bind, which is what made port-0 allocation flaky when many nodes start at once. Each
/// process starts at its own offset (from its pid) and moves on, and a port is handed out only
/// if it can be bound now; concurrent processes using this function could still collide in
/// theory, but only on the same port out of 20 000.
pub fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let offset = std::process::id().wrapping_mul(7919) % PORT_SPAN;
    let mut ports = Vec::with_capacity(n);
    for _ in 0..PORT_SPAN {
        if ports.len() == n {
            return Ok(ports);
        }
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = (PORT_LOW + (offset + k) % PORT_SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            ports.push(port);
        }
    }
    if ports.len() == n {
        Ok(ports)
    } else {
        Err(format!(
            "only {} free loopback ports in {PORT_LOW}..{}",
            ports.len(),
            PORT_LOW + PORT_SPAN
        ))
    }
}

/// `--cluster` text from `(id, address)` pairs.
pub fn cluster_flag(addrs: &BTreeMap<NodeId, String>) -> String {
    addrs
        .iter()
        .map(|(id, addr)| format!("{id}={addr}"))
        .collect::<Vec<_>>()
        .join(",")
}
