//! Shipping this region's mutations to the other regions (see `docs/regions-design.md`).
//!
//! Every node runs a [`shipper`]; only the one that leads its region ships. For each remote
//! region it reads this region's outbox from the remote's last acknowledged sequence, sends a
//! batch to the remote's gateways (`POST /v1/regions/replicate`, bincode), and proposes the
//! remote's answer (the last sequence it applied) as a `RegionAcked` entry here, so the
//! acknowledgement survives a change of leader on either side. With nothing to ship it sends an
//! empty batch every [`HEARTBEAT`] to watch the link.
//!
//! [`LinkStatus`] keeps what this node saw of each link (connected, last error, last contact) for
//! `GET /v1/regions/status`.

pub mod shipper;

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::storage::kv_regions::RemoteMutation;

/// Interval between two rounds of the shipper.
pub const ROUND: std::time::Duration = std::time::Duration::from_millis(50);
/// Longest silence on an idle link before an empty batch checks it.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(1);
/// Most mutations in one batch.
pub const MAX_BATCH_MUTATIONS: usize = 512;
/// Most bytes of values in one batch (approximately).
pub const MAX_BATCH_BYTES: usize = 1 << 20;
/// Content type of a replication batch and its answer.
pub const BATCH_CONTENT_TYPE: &str = "application/x-raftix-replicate";

/// A batch of mutations from one region (the body of `POST /v1/regions/replicate`, bincode).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicateBatch {
    /// The origin region.
    pub from: String,
    /// The region the sender believes it is talking to (a mismatch is refused).
    pub to: String,
    /// The sender's cursor for the receiver: the mutations follow this sequence.
    pub after: u64,
    /// Consecutive entries of the origin's outbox (empty: a heartbeat).
    pub mutations: Vec<RemoteMutation>,
}

/// What this node saw of one link.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinkState {
    /// The last exchange succeeded.
    pub connected: bool,
    /// The last error, if the last exchange failed.
    pub last_error: Option<String>,
    /// When the remote last answered (Unix ms).
    pub last_contact_ms: Option<u64>,
    /// Mutations this node shipped on the link since it started.
    pub shipped: u64,
    /// Batches refused or failed since it started.
    pub failures: u64,
}

/// The links as this node sees them (only the leader ships: on a follower they stay empty).
#[derive(Debug, Default)]
pub struct LinkStatus {
    links: Mutex<BTreeMap<String, LinkState>>,
}

impl LinkStatus {
    /// The state of every link this node shipped on.
    pub fn snapshot(&self) -> BTreeMap<String, LinkState> {
        self.links.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Updates the state of `region`'s link.
    pub fn update(&self, region: &str, f: impl FnOnce(&mut LinkState)) {
        if let Ok(mut links) = self.links.lock() {
            f(links.entry(region.to_string()).or_default());
        }
    }

    /// Forgets links to regions no longer registered.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        if let Ok(mut links) = self.links.lock() {
            links.retain(|id, _| keep(id));
        }
    }
}
