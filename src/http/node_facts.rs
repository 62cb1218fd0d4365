//! `GET /v1/status`: the node's Raft state plus facts an operator looks for first: the version
//! it runs, how long it has been up, and how much disk its log, state machine and data dir use.

use std::path::Path;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, AppState};
use crate::views::NodeStatus;

/// Answer of `GET /v1/status`.
#[derive(Serialize, ToSchema)]
pub struct StatusAnswer {
    /// The node's Raft state.
    #[serde(flatten)]
    pub status: NodeStatus,
    /// The raftix version it runs.
    pub version: &'static str,
    /// Seconds since its gateway started.
    pub uptime_secs: u64,
    /// What its data occupies on disk.
    pub disk: DiskUse,
}

/// Bytes on disk (what the files occupy, not their apparent size).
#[derive(Serialize, ToSchema, Debug, Default, PartialEq, Eq)]
pub struct DiskUse {
    /// The Raft log and hard state (`<data-dir>/log`).
    pub log_bytes: u64,
    /// The state machine (`<data-dir>/sm`).
    pub state_machine_bytes: u64,
    /// The whole data dir (snapshots included).
    pub data_dir_bytes: u64,
}

/// Bytes occupied by `path` and everything under it (0 if it does not exist).
fn occupied(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let own = meta.blocks() * 512;
    if !meta.is_dir() {
        return own;
    }
    let children = std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| occupied(&entry.path()))
                .sum::<u64>()
        })
        .unwrap_or(0);
    own + children
}

/// The disk use of the data dir `dir`.
fn disk_use(dir: &Path) -> DiskUse {
    DiskUse {
        log_bytes: occupied(&dir.join("log")),
        state_machine_bytes: occupied(&dir.join("sm")),
        data_dir_bytes: occupied(dir),
    }
}

/// This node: id, role, term, leader, commit, applied, last log index, members, per-peer
/// match index and lag when leader, health; its version, uptime and disk use.
#[utoipa::path(
    get,
    path = "/v1/status",
    tag = "cluster",
    responses((status = 200, description = "This node", body = StatusAnswer)),
)]
pub async fn status(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(status_answer(&state).await?))
}

/// This node's `GET /v1/status` answer.
pub(crate) async fn status_answer(state: &AppState) -> Result<StatusAnswer, ApiError> {
    let status = state.node.status().await?;
    let dir = state.data_dir.clone();
    let disk = web::block(move || disk_use(&dir)).await.unwrap_or_default();
    Ok(StatusAnswer {
        status,
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: state.started.elapsed().as_secs(),
        disk,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_use_counts_what_the_files_occupy() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("log")).expect("log dir");
        std::fs::write(dir.path().join("log/data.mdb"), vec![1u8; 64 << 10]).expect("write");
        let used = disk_use(dir.path());
        assert!(used.log_bytes >= 64 << 10, "{used:?}");
        assert_eq!(used.state_machine_bytes, 0);
        assert!(used.data_dir_bytes >= used.log_bytes);
        assert_eq!(disk_use(&dir.path().join("missing")), DiskUse::default());
    }
}
