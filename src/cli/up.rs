//! `raftix up`: a whole local cluster in one command.
//!
//! Node `i` (1..=N) gets id `i`, peer port `base-peer-port + i - 1`, HTTP port
//! `base-http-port + i - 1`, all on 127.0.0.1, and data directory `DATA_DIR/node{i}`. Each node is
//! a child process running `raftix serve`; its configuration is validated here first and every
//! port is checked to be free before anything is spawned. Supervision (log forwarding, signals,
//! shutdown) is in the private `supervise` module.

use std::ffi::OsString;
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser};

use super::{Cli, Command, EXIT_FAILURE, EXIT_USAGE};
use crate::config::ConfigError;
use crate::tls::certs;

/// Flags of `raftix up`.
#[derive(Clone, Debug, Args)]
pub struct UpArgs {
    /// Number of nodes: odd, 1 to 9.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = parse_nodes)]
    pub nodes: u64,
    /// Parent directory of the nodes' data directories (node i uses DIR/node{i}).
    #[arg(long, value_name = "DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Peer port of node 1; node i uses BASE + i - 1.
    #[arg(long, value_name = "PORT", default_value_t = 7001)]
    pub base_peer_port: u16,
    /// HTTP port of node 1; node i uses BASE + i - 1.
    #[arg(long, value_name = "PORT", default_value_t = 8001)]
    pub base_http_port: u16,
    /// Cluster name.
    #[arg(long, value_name = "NAME", default_value = "raftix")]
    pub cluster_name: String,
    /// Passed to every node's `serve`.
    #[arg(long, value_name = "MS")]
    pub election_timeout_min_ms: Option<u64>,
    /// Passed to every node's `serve`.
    #[arg(long, value_name = "MS")]
    pub election_timeout_max_ms: Option<u64>,
    /// Passed to every node's `serve`.
    #[arg(long, value_name = "MS")]
    pub heartbeat_interval_ms: Option<u64>,
    /// On shutdown, how long nodes get to exit after SIGTERM before they are killed.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub grace_ms: u64,
    /// Leave a node that exits on its own down (by default it is started again after a
    /// backoff of 1 s, doubling up to 30 s).
    #[arg(long)]
    pub no_restart: bool,
    /// Do not start a cluster: ask the `raftix up` running over --data-dir to restart node N
    /// (SIGTERM, then start it again; or start it if it is down) and print its answer.
    #[arg(long, value_name = "N")]
    pub restart: Option<u64>,
    /// Serve the HTTP API and dashboards over HTTPS, with test certificates made in
    /// DATA_DIR/certs (as `raftix certs` does; reused on later runs). Clients then need
    /// `--endpoints https://127.0.0.1:PORT --cacert DATA_DIR/certs/ca.pem`.
    #[arg(long)]
    pub tls: bool,
}

/// Parses `--nodes`: an odd number from 1 to 9.
fn parse_nodes(text: &str) -> Result<u64, String> {
    let n: u64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if !(1..=9).contains(&n) || n.is_multiple_of(2) {
        return Err(format!("{n} nodes: must be odd, from 1 to 9"));
    }
    Ok(n)
}

/// Why `raftix up` failed.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    /// A flag value that cannot work, such as overlapping port ranges.
    #[error("{0}")]
    Usage(String),
    /// A node's configuration is invalid.
    #[error("node {node}: {source}")]
    Config {
        /// The node.
        node: u64,
        /// What is wrong.
        source: ConfigError,
    },
    /// A port is already in use (or cannot be bound).
    #[error("port {port} on 127.0.0.1 (node {node} {role}) is not free: {source}; pick other ports with --base-peer-port / --base-http-port")]
    PortBusy {
        /// The port.
        port: u16,
        /// The node that would use it.
        node: u64,
        /// `peer` or `http`.
        role: &'static str,
        /// The bind error.
        source: std::io::Error,
    },
    /// A node's data directory is held by a running process (another `raftix up`, or a
    /// `raftix serve` started by hand): starting on it would run that node twice.
    #[error(
        "the data directory {} of node {node} is in use by {holder} (is another `raftix up` \
         running?); stop it first, or give this cluster other data with --data-dir",
        .path.display(),
        holder = .pid.map_or("another process".to_string(), |pid| format!("PID {pid}"))
    )]
    DataDirInUse {
        /// The node.
        node: u64,
        /// Its data directory.
        path: PathBuf,
        /// The PID holding the lock, if the lock file names one.
        pid: Option<u32>,
    },
    /// A data directory could not be created.
    #[error("cannot create data directory {}: {source}", .path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The path of the running executable is unknown.
    #[error("cannot find the raftix executable to start nodes with: {0}")]
    CurrentExe(std::io::Error),
    /// Starting a child process, the runtime or the signal handlers failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Every node exited on its own.
    #[error("every node has exited")]
    AllExited,
}

impl UpError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            UpError::Usage(_) | UpError::Config { .. } => EXIT_USAGE,
            _ => EXIT_FAILURE,
        }
    }
}

/// One node of the local cluster.
#[derive(Clone, Debug)]
pub struct NodePlan {
    /// Node id, 1..=N.
    pub id: u64,
    /// Peer port on 127.0.0.1.
    pub peer_port: u16,
    /// HTTP port on 127.0.0.1.
    pub http_port: u16,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Arguments of the child process, starting with `serve`.
    pub args: Vec<OsString>,
    /// Whether it serves HTTPS (`up --tls`).
    pub https: bool,
}

impl NodePlan {
    /// The node's HTTP base URL (its dashboard).
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/", self.http_port)
    }
}

impl UpArgs {
    /// The nodes to start, each with a validated `serve` command line.
    pub fn plan(&self) -> Result<Vec<NodePlan>, UpError> {
        let n = self.nodes;
        let last = |flag: &str, base: u16| -> Result<u16, UpError> {
            if base == 0 {
                return Err(UpError::Usage(format!(
                    "invalid {flag} `0`: must be 1 or more"
                )));
            }
            u16::try_from(u64::from(base) + n - 1).map_err(|_| {
                UpError::Usage(format!(
                    "invalid {flag} `{base}`: {n} nodes need ports up to {}, above 65535",
                    u64::from(base) + n - 1
                ))
            })
        };
        let peer_last = last("--base-peer-port", self.base_peer_port)?;
        let http_last = last("--base-http-port", self.base_http_port)?;
        if self.base_peer_port <= http_last && self.base_http_port <= peer_last {
            return Err(UpError::Usage(format!(
                "peer ports {}-{peer_last} and HTTP ports {}-{http_last} overlap: change --base-peer-port or --base-http-port",
                self.base_peer_port, self.base_http_port
            )));
        }
        let cluster = (1..=n)
            .map(|i| format!("{i}=127.0.0.1:{}", u64::from(self.base_peer_port) + i - 1))
            .collect::<Vec<_>>()
            .join(",");
        (1..=n).map(|i| self.node(i, &cluster)).collect()
    }

    /// Node `id`'s plan; its command line is parsed and validated as `serve` would.
    fn node(&self, id: u64, cluster: &str) -> Result<NodePlan, UpError> {
        let offset = u16::try_from(id - 1).map_err(|_| UpError::Usage("too many nodes".into()))?;
        let peer_port = self.base_peer_port.saturating_add(offset);
        let http_port = self.base_http_port.saturating_add(offset);
        let data_dir = self.data_dir.join(format!("node{id}"));
        let mut args: Vec<OsString> = vec!["serve".into()];
        let mut push = |flag: &str, value: OsString| {
            args.push(flag.into());
            args.push(value);
        };
        push("--id", id.to_string().into());
        push("--data-dir", data_dir.clone().into_os_string());
        push("--listen-peer", format!("127.0.0.1:{peer_port}").into());
        push("--listen-http", format!("127.0.0.1:{http_port}").into());
        push("--cluster", cluster.into());
        push("--cluster-name", self.cluster_name.clone().into());
        let timing = [
            ("--election-timeout-min-ms", self.election_timeout_min_ms),
            ("--election-timeout-max-ms", self.election_timeout_max_ms),
            ("--heartbeat-interval-ms", self.heartbeat_interval_ms),
        ];
        for (flag, value) in timing {
            if let Some(v) = value {
                push(flag, v.to_string().into());
            }
        }
        if self.tls {
            let certs = self.cert_dir();
            push(
                "--tls-cert",
                certs::node_cert_path(&certs, id).into_os_string(),
            );
            push(
                "--tls-key",
                certs::node_key_path(&certs, id).into_os_string(),
            );
            push("--tls-ca", certs.join(certs::CA_CERT).into_os_string());
            push("--peer-tls-ca", certs.join(certs::CA_CERT).into_os_string());
            push(
                "--peer-tls-cert",
                certs::node_cert_path(&certs, id).into_os_string(),
            );
            push(
                "--peer-tls-key",
                certs::node_key_path(&certs, id).into_os_string(),
            );
        }
        let argv = std::iter::once(OsString::from("raftix")).chain(args.iter().cloned());
        let serve = match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Command::Serve(serve),
            }) => serve,
            Ok(_) => return Err(UpError::Usage("internal: not a serve command".into())),
            Err(e) => return Err(UpError::Usage(format!("node {id}: {e}"))),
        };
        serve
            .into_config()
            .map_err(|source| UpError::Config { node: id, source })?;
        Ok(NodePlan {
            id,
            peer_port,
            http_port,
            data_dir,
            args,
            https: self.tls,
        })
    }

    /// Where `--tls` keeps the test certificates: `DATA_DIR/certs`.
    pub fn cert_dir(&self) -> PathBuf {
        self.data_dir.join("certs")
    }

    /// With `--tls`: makes the certificates of the nodes that have none yet in
    /// [`cert_dir`](Self::cert_dir) (the CA is made once and reused).
    fn ensure_certs(&self) -> Result<(), UpError> {
        let dir = self.cert_dir();
        let missing: Vec<u64> = (1..=self.nodes)
            .filter(|&id| !certs::node_cert_path(&dir, id).exists())
            .collect();
        if missing.is_empty() && dir.join(certs::CA_CERT).exists() {
            return Ok(());
        }
        let request = certs::CertsRequest {
            out: dir.clone(),
            nodes: missing,
            hosts: certs::DEFAULT_HOSTS.iter().map(|h| h.to_string()).collect(),
            clients: Vec::new(),
            days: 365,
            force: false,
        };
        certs::generate(&request)
            .map_err(|e| UpError::Usage(format!("cannot make test certificates: {e}")))?;
        Ok(())
    }
}

/// Fails, naming the holder's PID, if any node's data directory is locked by a running process.
/// Checked before the ports: a busy data dir must never be answered with "pick other ports",
/// which would start a second copy of the same nodes.
pub fn check_data_dirs_free(plans: &[NodePlan]) -> Result<(), UpError> {
    for plan in plans {
        match crate::storage::DataDirLock::probe(&plan.data_dir) {
            Ok(None) => {}
            Ok(Some(pid)) => {
                return Err(UpError::DataDirInUse {
                    node: plan.id,
                    path: plan.data_dir.clone(),
                    pid,
                })
            }
            Err(e) => {
                return Err(UpError::Io {
                    what: format!("cannot check whether {} is in use", plan.data_dir.display()),
                    source: std::io::Error::other(e.to_string()),
                })
            }
        }
    }
    Ok(())
}

/// Fails, naming the port, if any node's port cannot be bound on 127.0.0.1 now.
pub fn check_ports_free(plans: &[NodePlan]) -> Result<(), UpError> {
    for plan in plans {
        for (port, role) in [(plan.peer_port, "peer"), (plan.http_port, "http")] {
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|source| UpError::PortBusy {
                port,
                node: plan.id,
                role,
                source,
            })?;
        }
    }
    Ok(())
}

/// Runs `raftix up` until SIGINT or SIGTERM, then stops the nodes.
pub fn run(args: UpArgs) -> Result<(), UpError> {
    if let Some(n) = args.restart {
        let reply = super::up_control::request_restart(&args.data_dir, n)?;
        println!("{reply}");
        return if reply.starts_with("restarting") {
            Ok(())
        } else {
            Err(UpError::Usage(reply))
        };
    }
    let plans = args.plan()?;
    check_data_dirs_free(&plans)?;
    check_ports_free(&plans)?;
    if args.tls {
        args.ensure_certs()?;
    }
    for plan in &plans {
        std::fs::create_dir_all(&plan.data_dir).map_err(|source| UpError::DataDir {
            path: plan.data_dir.clone(),
            source,
        })?;
    }
    let exe = std::env::current_exe().map_err(UpError::CurrentExe)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| UpError::Io {
            what: "cannot start the async runtime".into(),
            source,
        })?;
    runtime.block_on(super::supervise::supervise(super::supervise::Supervision {
        exe,
        plans,
        grace: Duration::from_millis(args.grace_ms),
        restart_crashed: !args.no_restart,
        control: super::up_control::socket_path(&args.data_dir),
    }))
}
