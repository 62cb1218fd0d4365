//! `raftix serve --join URL,...`: the configuration of a node that joins a running cluster.
//!
//! On an empty data dir the node asks the cluster (`POST /v1/cluster/learners` on the URLs,
//! following redirects to the leader, trying the next URL, retrying 503s for [`JOIN_RETRY_FOR`])
//! to add it as a learner at its advertised peer address, records the answer in
//! `<data-dir>/raftix-join.json`, and starts with `cluster` = the members answered and `learners`
//! = the learners answered, so it never campaigns before it is promoted. Unless `--learner` is
//! given, a [`Promotion`] then asks for its promotion once it caught up.
//!
//! With access control on, the join and the promotion send `RAFTIX_TOKEN`, or else the first
//! static admin token of the node's own configuration (`--token-file` / `[[tokens]]`).
//!
//! On a data dir that already holds Raft data `--join` is ignored (the node restarts as it is);
//! without `--cluster` the members come from the join record.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::client::member::send_change;
use super::client::session::{token_from_env, Request, Session};
use super::client::tls::ClientTls;
use super::promote::Promotion;
use super::serve::ServeArgs;
use crate::config::{check_host_port, ConfigError, NodeConfig, TokenRole};
use crate::core::NodeId;
use crate::storage::DataDir;

/// Name of the join record in the data dir.
pub const JOIN_RECORD: &str = "raftix-join.json";
/// How long the join request is retried while the cluster answers 503 or cannot be reached.
pub const JOIN_RETRY_FOR: Duration = Duration::from_secs(30);
/// Time limit of one join request (retries and failover over the URLs included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Why `serve` could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ServeSetupError {
    /// A setting is wrong (exit status 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The cluster did not add this node, or the join record cannot be read or written.
    #[error("cannot join the cluster: {0}")]
    Join(String),
    /// A TLS certificate, key or CA file cannot be used (exit status 2).
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

impl ServeSetupError {
    /// The process exit status.
    pub fn exit_code(&self) -> u8 {
        match self {
            ServeSetupError::Config(_) | ServeSetupError::Tls(_) => super::EXIT_USAGE,
            ServeSetupError::Join(_) => super::EXIT_FAILURE,
        }
    }
}

/// The members a join answered, as recorded in the data dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRecord {
    /// Every member with its peer address, this node included.
    pub cluster: BTreeMap<NodeId, String>,
    /// The members that were learners, this node included.
    pub learners: BTreeSet<NodeId>,
}

/// The configuration `serve` runs with, and the promotion to ask for after it started.
pub fn prepare(args: &ServeArgs) -> Result<(NodeConfig, Option<Promotion>), ServeSetupError> {
    let mut partial = args.partial()?;
    let Some(urls) = args.join.clone() else {
        return Ok((checked(partial.build()?)?, None));
    };
    let id = partial.id.ok_or(ConfigError::Missing { key: "id" })?;
    let data_dir = partial
        .data_dir
        .clone()
        .ok_or(ConfigError::Missing { key: "data_dir" })?;
    if DataDir::holds_raft_data(&data_dir) {
        tracing::info!(
            data_dir = %data_dir.display(),
            "the data dir already holds Raft data: --join is ignored, the node starts as it is"
        );
        if partial.cluster.is_none() {
            let record = read_record(&data_dir)?;
            partial.cluster = Some(record.cluster);
            partial.learners = Some(record.learners);
        }
        return Ok((checked(partial.build()?)?, None));
    }
    let peer_addr = match &args.advertise_peer {
        Some(addr) => addr.clone(),
        None => partial
            .listen_peer
            .clone()
            .ok_or(ConfigError::Missing { key: "listen_peer" })?,
    };
    check_host_port("advertise_peer", &peer_addr, false)?;
    if partial.cluster.is_some() {
        tracing::warn!("--cluster is ignored with --join: the cluster's members are used");
    }
    // Every other setting must be valid before the cluster is changed.
    let mut trial = partial.clone();
    trial.cluster = Some(BTreeMap::from([(id, peer_addr.clone())]));
    trial.learners = None;
    let checked_config = checked(trial.build()?)?;
    let tls = client_tls_of(&checked_config);
    let token = join_token(&checked_config);

    let (record, index) = request_join(&urls, id, &peer_addr, &tls, token.clone())?;
    write_record(&data_dir, &record)?;
    tracing::info!(
        id,
        members = ?record.cluster.keys().collect::<Vec<_>>(),
        learners = ?record.learners,
        "added to the cluster as a learner"
    );
    partial.cluster = Some(record.cluster);
    partial.learners = Some(record.learners);
    let config = partial.build()?;
    let promotion = (!args.learner).then(|| Promotion {
        id,
        own: config.http_base_url(),
        endpoints: urls,
        added_at: index,
        tls,
        token,
    });
    Ok((config, promotion))
}

/// `config` once its certificate, key and CA files proved usable (they are configuration: a
/// bad one is refused before anything starts or the cluster is asked anything).
fn checked(config: NodeConfig) -> Result<NodeConfig, ServeSetupError> {
    crate::tls::GatewayTls::load(&config)?;
    Ok(config)
}

/// The HTTPS settings a joining node uses to call the cluster: with a gateway certificate, it
/// trusts [`NodeConfig::gateway_trust_ca`] and presents its own certificate (as nodes do when
/// they forward to the leader); a plain node uses `RAFTIX_CACERT`/`RAFTIX_CERT`/`RAFTIX_KEY`.
pub fn client_tls_of(config: &NodeConfig) -> ClientTls {
    if !config.gateway_https() {
        return ClientTls::from_env();
    }
    ClientTls {
        cacert: config.gateway_trust_ca().map(Path::to_path_buf),
        cert: config.tls_cert.clone(),
        key: config.tls_key.clone(),
    }
}

/// The bearer token the join and the promotion send: `RAFTIX_TOKEN` if set, else the first
/// static admin token of this node's own configuration (every node of a cluster with static
/// tokens has the same ones), else none (the cluster must then have access control off).
fn join_token(config: &NodeConfig) -> Option<String> {
    token_from_env().or_else(|| {
        config
            .tokens
            .iter()
            .find(|t| t.role == TokenRole::Admin)
            .map(|t| t.token.clone())
    })
}

/// Asks the cluster at `urls` to add node `id` as a learner at `peer_addr`; returns the members
/// and the index of the configuration entry that added it.
fn request_join(
    urls: &[String],
    id: NodeId,
    peer_addr: &str,
    tls: &ClientTls,
    token: Option<String>,
) -> Result<(JoinRecord, u64), ServeSetupError> {
    let failed = |e: String| ServeSetupError::Join(e);
    let has_token = token.is_some();
    let mut session = Session::with_tls(urls.to_vec(), REQUEST_TIMEOUT, tls)
        .map_err(|e| failed(e.to_string()))?
        .with_token(token);
    let body = json!({"id": id, "peer_addr": peer_addr});
    let request = Request::write(
        Method::POST,
        "/v1/cluster/learners".into(),
        Some((body.to_string().into_bytes(), "application/json")),
    );
    let (_, done) = send_change(&mut session, &request, JOIN_RETRY_FOR).map_err(|e| {
        let text = e.to_string();
        let refused = text.contains(" 401 ") || text.contains(" 403 ");
        if refused && !has_token {
            failed(format!(
                "{text}; the cluster has access control on: set RAFTIX_TOKEN to an admin token \
                 (or give this node the cluster's static tokens with --token-file)"
            ))
        } else if refused {
            failed(format!("{text}; joining needs an admin token"))
        } else {
            failed(text)
        }
    })?;
    let mut cluster = BTreeMap::new();
    for (key, addr) in done.members {
        let member: NodeId = key.parse().map_err(|_| {
            failed(format!(
                "the cluster answered a member id `{key}`, which is not a number"
            ))
        })?;
        cluster.insert(member, addr);
    }
    if cluster.get(&id).map(String::as_str) != Some(peer_addr) {
        return Err(failed(format!(
            "the cluster's answer does not list node {id} at {peer_addr}: {cluster:?}"
        )));
    }
    let record = JoinRecord {
        cluster,
        learners: done.learners.into_iter().collect(),
    };
    Ok((record, done.index))
}

/// Reads the join record of a data dir that holds Raft data.
fn read_record(data_dir: &Path) -> Result<JoinRecord, ServeSetupError> {
    let path = data_dir.join(JOIN_RECORD);
    let bytes = fs::read(&path).map_err(|e| {
        ServeSetupError::Join(format!(
            "{} holds Raft data but {} cannot be read ({e}): give --cluster",
            data_dir.display(),
            path.display()
        ))
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ServeSetupError::Join(format!("{} is damaged: {e}", path.display())))
}

/// Writes the join record atomically (temporary file, fsync, rename, fsync of the directory).
fn write_record(data_dir: &Path, record: &JoinRecord) -> Result<(), ServeSetupError> {
    let io = |what: &str, e: std::io::Error| {
        ServeSetupError::Join(format!(
            "cannot write {what} in {}: {e}",
            data_dir.display()
        ))
    };
    fs::create_dir_all(data_dir).map_err(|e| io("the data dir", e))?;
    let tmp = data_dir.join(format!("{JOIN_RECORD}.tmp"));
    let json = serde_json::to_vec_pretty(record)
        .map_err(|e| ServeSetupError::Join(format!("cannot encode the join record: {e}")))?;
    let mut file = File::create(&tmp).map_err(|e| io(JOIN_RECORD, e))?;
    file.write_all(&json)
        .and_then(|()| file.sync_all())
        .map_err(|e| io(JOIN_RECORD, e))?;
    fs::rename(&tmp, data_dir.join(JOIN_RECORD)).map_err(|e| io(JOIN_RECORD, e))?;
    File::open(data_dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| io(JOIN_RECORD, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_join_record_round_trips_and_a_missing_one_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let record = JoinRecord {
            cluster: BTreeMap::from([(1, "a:1".to_string()), (4, "d:4".to_string())]),
            learners: BTreeSet::from([4]),
        };
        let err = read_record(dir.path()).expect_err("no record yet");
        assert!(err.to_string().contains("give --cluster"), "{err}");
        write_record(dir.path(), &record).expect("write");
        assert_eq!(read_record(dir.path()).expect("read"), record);
    }
}
