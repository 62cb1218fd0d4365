//! The load generator behind `raftix bench`: drives a raftix or an etcd 3.4 cluster over HTTP
//! with a closed-loop workload and reports throughput and latency percentiles.
//!
//! - [`histogram`]: the bounded-memory latency histogram (log-linear buckets, ~1.6 % precision).
//! - [`target`]: what one request is for each target and workload (raftix's REST API or etcd's
//!   JSON gateway), how the answer is checked, and how nodes are asked for their role and term.
//! - [`driver`]: the run itself: `--threads` OS threads, each with its own single-threaded actix
//!   system, running `--clients` concurrent clients between them; one keep-alive connection per
//!   client; a warmup that is not measured; a hard stop at the end of the duration.
//! - [`report`]: the result, as text or JSON.
//!
//! Each client sends one request, waits for the whole answer, records its latency and sends the
//! next (a closed loop): throughput is what `clients` outstanding requests achieve, latency is
//! the full round trip including the HTTP client. Only successful requests are timed; failures
//! are counted by kind, and a client pauses 10 ms after a failure so that a refused connection
//! does not spin (and, with `--rotate-on-error`, moves on to the next endpoint, as a client
//! library fails over). `--total-ops N` ends the run once N requests succeeded (to write a log of
//! a given length); `--timeline FILE` records every request's start, end and outcome (to time a
//! failover from the client's side).

pub mod driver;
pub mod histogram;
pub mod report;
pub mod target;

use std::path::PathBuf;
use std::time::Duration;

pub use driver::run;
pub use histogram::Histogram;
pub use report::Report;

/// The system under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// raftix's REST API: `PUT`/`GET /v1/kv/{key}`.
    Raftix,
    /// etcd v3's JSON gateway: `POST /v3/kv/put` and `/v3/kv/range` (etcd 3.4).
    Etcd,
}

impl Target {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Target::Raftix => "raftix",
            Target::Etcd => "etcd",
        }
    }
}

/// What the clients do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Writes of `value_bytes` to random keys among `keys`.
    Write,
    /// Linearizable reads of random preloaded keys (etcd: `serializable: false`).
    ReadLinearizable,
    /// Lease reads (raftix only: `consistency=lease`).
    ReadLease,
    /// Local, possibly stale reads (raftix: `consistency=stale`; etcd: `serializable: true`).
    ReadStale,
}

impl Workload {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Write => "write",
            Workload::ReadLinearizable => "read-linearizable",
            Workload::ReadLease => "read-lease",
            Workload::ReadStale => "read-stale",
        }
    }

    /// Whether the workload reads (and so needs its keys preloaded).
    pub fn is_read(self) -> bool {
        !matches!(self, Workload::Write)
    }
}

/// Everything a run needs; built from the `raftix bench` flags by `raftix::cli::bench`.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// The system under test.
    pub target: Target,
    /// Base URLs (`http://host:port`, no trailing slash), at least one.
    pub endpoints: Vec<String>,
    /// What the clients do.
    pub workload: Workload,
    /// Concurrent clients (one connection each), at least one.
    pub clients: usize,
    /// OS threads the clients are spread over, from 1 to `clients`.
    pub threads: usize,
    /// How long to measure, after the warmup.
    pub duration: Duration,
    /// How long to run the workload before measuring.
    pub warmup: Duration,
    /// Size of each written (and preloaded) value.
    pub value_bytes: usize,
    /// Keys are `bench-00000000` to `bench-{keys-1}`.
    pub keys: u64,
    /// Write every key once before a read workload starts.
    pub preload: bool,
    /// Send every request to the leader (found before the run) instead of spreading clients over
    /// the endpoints.
    pub leader_only: bool,
    /// How long one request may take before it counts as a `timeout` failure.
    pub timeout: Duration,
    /// After a failed request, the client moves on to the next endpoint (round-robin) with a new
    /// connection, as a client library fails over, instead of staying on its endpoint.
    pub rotate_on_error: bool,
    /// End the run once this many requests succeeded in total (warmup included), or at the end
    /// of the duration, whichever comes first. `None`: run for the whole duration.
    pub total_ops: Option<u64>,
    /// Write every request (start, end, outcome) to this file as CSV (see
    /// [`driver::write_timeline`]).
    pub timeline: Option<PathBuf>,
}

/// Why a run could not be made (failures of single requests are counted in the report instead).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The configuration cannot work (for example lease reads against etcd).
    #[error("{0}")]
    Usage(String),
    /// No endpoint said it is the leader (with `--leader-only`).
    #[error("no leader among the endpoints: {0}")]
    NoLeader(String),
    /// Writing the keys of a read workload failed.
    #[error("preloading the keys failed: {0}")]
    Preload(String),
    /// A thread could not be started or panicked.
    #[error("{0}")]
    Runtime(String),
}
