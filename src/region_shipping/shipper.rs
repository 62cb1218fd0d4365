//! The shipping loop of one node (see the module docs of [`super`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{
    LinkStatus, ReplicateBatch, BATCH_CONTENT_TYPE, HEARTBEAT, MAX_BATCH_BYTES,
    MAX_BATCH_MUTATIONS, ROUND,
};
use crate::actors::RaftHandle;
use crate::core::Role;
use crate::storage::kv_regions::{RegionsState, RemoteMutation, RemoteRegion};
use crate::storage::{KvCommand, KvReader, KvRequest};

/// How long one batch may take, sending and answer.
pub const BATCH_TIMEOUT: Duration = Duration::from_secs(5);

/// What the shipper needs.
pub struct Shipper {
    /// This node.
    pub node: RaftHandle,
    /// Its state machine.
    pub kv: KvReader,
    /// HTTP client (with the gateway's TLS settings).
    pub client: awc::Client,
    /// Bearer token sent to remote regions (`RAFTIX_REGION_TOKEN`), if any.
    pub token: Option<String>,
    /// What it saw, for the status route.
    pub status: Arc<LinkStatus>,
}

/// The answer of a remote region to a batch.
#[derive(Debug, serde::Deserialize)]
struct Applied {
    applied: u64,
}

impl Shipper {
    /// Runs until the process ends.
    pub async fn run(self) {
        let mut last_sent: std::collections::BTreeMap<String, Instant> = Default::default();
        let mut endpoint_turn = 0usize;
        loop {
            actix::clock::sleep(ROUND).await;
            let leads = matches!(self.node.status().await, Ok(s) if s.role == Role::Leader);
            if !leads {
                continue;
            }
            let kv = self.kv.clone();
            let Ok(Ok(state)) = actix_web::web::block(move || kv.regions_state()).await else {
                continue;
            };
            if !state.active() {
                continue;
            }
            self.status.retain(|id| state.remotes.contains_key(id));
            for remote in state.remotes.values() {
                let idle = last_sent
                    .get(&remote.id)
                    .is_none_or(|at| at.elapsed() >= HEARTBEAT);
                if remote.acked >= state.last_seq() && !idle {
                    continue;
                }
                endpoint_turn = endpoint_turn.wrapping_add(1);
                last_sent.insert(remote.id.clone(), Instant::now());
                self.ship(&state, remote, endpoint_turn).await;
            }
        }
    }

    /// Sends one batch to `remote` and records its acknowledgement.
    async fn ship(&self, state: &RegionsState, remote: &RemoteRegion, turn: usize) {
        let Some(local) = state.local.clone() else {
            return;
        };
        let mutations = match self.batch(remote.acked + 1).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(region = %remote.id, "cannot read the outbox: {e}");
                return;
            }
        };
        let count = mutations.len() as u64;
        let batch = ReplicateBatch {
            from: local,
            to: remote.id.clone(),
            after: remote.acked,
            mutations,
        };
        let Ok(body) = bincode::serde::encode_to_vec(&batch, bincode::config::standard()) else {
            return;
        };
        let endpoint = &remote.endpoints[turn % remote.endpoints.len().max(1)];
        match self.send(endpoint, body).await {
            Ok(applied) => {
                let now = crate::http::auth::now_ms();
                self.status.update(&remote.id, |l| {
                    l.connected = true;
                    l.last_error = None;
                    l.last_contact_ms = Some(now);
                    l.shipped += count;
                });
                if applied > remote.acked {
                    self.acknowledge(&remote.id, applied).await;
                }
            }
            Err(error) => {
                if self
                    .status
                    .snapshot()
                    .get(&remote.id)
                    .is_none_or(|l| l.connected)
                {
                    tracing::warn!(region = %remote.id, %endpoint, "region link: {error}");
                }
                self.status.update(&remote.id, |l| {
                    l.connected = false;
                    l.last_error = Some(error);
                    l.failures += 1;
                });
            }
        }
    }

    /// Outbox entries from `from` on, bounded in count and bytes.
    async fn batch(&self, from: u64) -> Result<Vec<RemoteMutation>, String> {
        let kv = self.kv.clone();
        let entries = actix_web::web::block(move || kv.outbox(from, MAX_BATCH_MUTATIONS))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let mut bytes = 0usize;
        let mut out = Vec::new();
        for e in entries {
            if e.seq != from + out.len() as u64 {
                break; // only consecutive entries
            }
            bytes += e.key.len() + e.version.value.as_ref().map_or(0, Bytes::len);
            if !out.is_empty() && bytes > MAX_BATCH_BYTES {
                break;
            }
            out.push(RemoteMutation {
                seq: e.seq,
                key: e.key,
                version: e.version,
            });
        }
        Ok(out)
    }

    /// Posts a batch; the remote's last applied sequence of this region's outbox.
    async fn send(&self, endpoint: &str, body: Vec<u8>) -> Result<u64, String> {
        let url = format!(
            "{}/v1/regions/replicate",
            crate::http::url_of(endpoint.trim_end_matches('/'))
        );
        let mut request = self
            .client
            .post(&url)
            .timeout(BATCH_TIMEOUT)
            .insert_header(("content-type", BATCH_CONTENT_TYPE));
        if let Some(token) = &self.token {
            request = request.insert_header(("authorization", format!("Bearer {token}")));
        }
        let mut response = request
            .send_body(body)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        let answer = response
            .body()
            .limit(64 * 1024)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !status.is_success() {
            return Err(format!(
                "{url}: {status}: {}",
                String::from_utf8_lossy(&answer)
            ));
        }
        serde_json::from_slice::<Applied>(&answer)
            .map(|a| a.applied)
            .map_err(|e| format!("{url}: unexpected answer: {e}"))
    }

    /// Proposes the acknowledgement in this region's log.
    async fn acknowledge(&self, region: &str, seq: u64) {
        let request = KvRequest {
            request_id: None,
            issued_at_ms: crate::http::auth::now_ms(),
            command: KvCommand::RegionAcked {
                region: region.to_string(),
                seq,
            },
        };
        if let Err(e) = self.node.submit(request.encode()).await {
            tracing::debug!(region, seq, "acknowledgement not recorded (retried): {e}");
        }
    }
}
