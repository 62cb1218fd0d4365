//! OpenAPI schemas of the multi-region routes ([`super::regions`]) and of the `replication`
//! part of write answers: the shapes of the JSON the handlers build.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The write acknowledgement mode of a region.
#[derive(Serialize, ToSchema)]
pub struct ReplicationSetting {
    /// `async`, `semi-sync` or `sync`.
    pub mode: String,
    /// How long a semi-sync or sync write waits before answering 202.
    pub timeout_ms: u64,
}

/// The conflict policy: a default strategy and strategies by key prefix.
#[derive(Serialize, ToSchema)]
pub struct PolicyBody {
    /// `latest-timestamp`, `lww-register`, `multi-value` or `custom:NAME`.
    pub default: String,
    /// Strategy by key prefix (the longest matching prefix wins).
    pub prefixes: BTreeMap<String, String>,
}

/// A remote region.
#[derive(Serialize, ToSchema)]
pub struct RegionInfo {
    /// Its name.
    pub id: String,
    /// Its HTTP endpoints.
    pub endpoints: Vec<String>,
    /// Whether it is the primary region.
    pub primary: bool,
}

/// Answer of `GET /v1/regions` (and of every change, with `index`).
#[derive(Serialize, ToSchema)]
pub struct RegionsAnswer {
    /// This region (null when the node runs without `--region`).
    pub local: Option<String>,
    /// The primary region, if any.
    pub primary: Option<String>,
    /// When writes answer.
    pub replication: ReplicationSetting,
    /// How conflicts are resolved.
    pub policy: PolicyBody,
    /// The remote regions, by name.
    pub regions: Vec<RegionInfo>,
    /// Log index of the change (answers of changes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
}

/// Body of `POST /v1/regions`: what the handler parses and the document describes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionAddRequest {
    /// The remote region's name (letters, digits, `-`, `_`; at most 64 bytes).
    pub id: String,
    /// Its HTTP endpoints: `http(s)://HOST:PORT` or `HOST:PORT`.
    pub endpoints: Vec<String>,
}

/// Body of `PUT /v1/regions/primary`: what the handler parses and the document describes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrimaryRequest {
    /// The primary region (this one or a registered one); null: none.
    pub id: Option<String>,
}

/// Body of `PUT /v1/regions/replication`: what the handler parses and the document describes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplicationRequest {
    /// `async`, `semi-sync` or `sync`.
    pub mode: String,
    /// 1 to 600000 (default 5000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// Body of `PUT /v1/conflicts/policy` (replaces the whole policy).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    /// Strategy of the keys no prefix matches (default `latest-timestamp`).
    #[serde(default)]
    pub default: Option<String>,
    /// Strategy by key prefix (non-empty prefixes).
    #[serde(default)]
    pub prefixes: BTreeMap<String, String>,
}

/// Answer of `GET /v1/regions/status`.
#[derive(Serialize, ToSchema)]
pub struct RegionsStatusAnswer {
    /// This region.
    pub local: Option<String>,
    /// The primary region.
    pub primary: Option<String>,
    /// When writes answer.
    pub replication: ReplicationSetting,
    /// Every link.
    pub regions: Vec<super::region_links::LinkView>,
}

/// Answer of `GET /v1/conflicts/stats`.
#[derive(Serialize, ToSchema)]
pub struct ConflictStatsAnswer {
    /// Conflicts resolved in this region.
    pub total: u64,
    /// By strategy.
    pub by_strategy: BTreeMap<String, u64>,
    /// Custom merges that failed (latest-timestamp decided).
    pub failed: u64,
    /// Keys holding several siblings.
    pub unresolved: u64,
}

/// Answer of `POST /v1/regions/replicate`.
#[derive(Serialize, ToSchema)]
pub struct ReplicateAnswer {
    /// The last sequence of the sender's outbox applied here.
    pub applied: u64,
}

/// One version of a key, from `GET /v1/kv/{key}?siblings=true`.
#[derive(Serialize, ToSchema)]
pub struct SiblingBody {
    /// The region that wrote it.
    pub origin: String,
    /// Its hybrid logical clock, `PHYSICAL_MS.LOGICAL`.
    pub hlc: String,
    /// A delete (no value).
    pub deleted: bool,
    /// The value, when UTF-8 (else `value_base64`).
    pub value: Option<String>,
    /// The value, base64, when not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<String>,
}

/// Answer of `GET /v1/kv/{key}?siblings=true`.
#[derive(Serialize, ToSchema)]
pub struct SiblingsAnswer {
    /// The key.
    pub key: String,
    /// Every version kept (one without a conflict; none when the key has no region version).
    pub siblings: Vec<SiblingBody>,
}

/// The `replication` part of a write answer when the write waited for other regions.
#[derive(Serialize, ToSchema)]
pub struct ReplicationOutcome {
    /// `semi-sync` or `sync`.
    pub mode: String,
    /// Always true: committed in this region.
    pub committed: bool,
    /// Whether the regions waited for acknowledged it (false: 202).
    pub replicated: bool,
    /// The write's outbox sequence.
    pub seq: Option<u64>,
    /// Regions that acknowledged it.
    pub acknowledged_by: Vec<String>,
    /// Regions that did not yet.
    pub pending: Vec<String>,
}
