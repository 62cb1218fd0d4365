//! `GET /openapi.json`: the OpenAPI document of the REST API, generated from the handlers'
//! `#[utoipa::path]` annotations and the schemas below (shapes of the JSON bodies the handlers
//! build).

use super::openapi_amend::Amend;
use actix_web::HttpResponse;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::regions_schema::{
    ConflictStatsAnswer, PolicyBody, PolicyRequest, PrimaryRequest, RegionAddRequest, RegionInfo,
    RegionsAnswer, RegionsStatusAnswer, ReplicateAnswer, ReplicationOutcome, ReplicationRequest,
    ReplicationSetting, SiblingBody, SiblingsAnswer,
};
use crate::messages::node::{ClusterView, MemberView, NodeStatus, PeerProgress};

/// Every error answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code: `bad_request`, `too_large`, `not_found`, `key_not_found`,
    /// `token_not_found`, `method_not_allowed`, `not_leader`, `no_leader`, `leader_unreachable`,
    /// `proposal_dropped`, `outcome_unknown`, `unavailable`, `unauthorized`, `forbidden`,
    /// `conflict`, `request_timeout`, `too_many_requests`, `request_id_reused`,
    /// `storage_corrupt`, `insufficient_storage`, `internal`.
    pub error: String,
    /// What happened.
    pub message: String,
    /// The leader, when the error is about leadership.
    pub leader: Option<LeaderRef>,
}

/// The leader an error points to.
#[derive(Serialize, ToSchema)]
pub struct LeaderRef {
    /// Its id.
    pub id: u64,
    /// Its HTTP URL, when known.
    pub url: Option<String>,
}

/// Answer of a committed write (what every write answers; `PUT /v1/kv/{key}` answers only this).
#[derive(Serialize, ToSchema)]
pub struct WriteAnswer {
    /// Log index of the write (of its first application for a retried request).
    pub index: u64,
    /// Term of the entry.
    pub term: u64,
    /// Present (true) when this was a retry of an already applied request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
    /// Multi-region: what the regions waited for acknowledged (present when the write
    /// waited: `semi-sync` or `sync`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication: Option<ReplicationOutcome>,
    /// `leader` when the client asked `?ack=leader`: durable in the leader's log, not yet
    /// committed or applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack: Option<&'static str>,
}

/// Answer of `DELETE /v1/kv/{key}`.
#[derive(Serialize, ToSchema)]
pub struct DeleteAnswer {
    /// Whether the key existed.
    pub deleted: bool,
    /// The write.
    #[serde(flatten)]
    pub write: WriteAnswer,
}

/// Body of `POST /v1/kv/{key}/cas`: what the handler parses and the document describes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CasRequest {
    /// Value the key must hold; null: the key must be absent.
    #[serde(default)]
    pub expected: Option<String>,
    /// New value; null: delete the key.
    #[serde(default)]
    pub value: Option<String>,
}

/// Answer of `POST /v1/kv/{key}/cas`.
#[derive(Serialize, ToSchema)]
pub struct CasAnswer {
    /// Whether the swap happened.
    pub swapped: bool,
    /// Value after the operation (null when absent, or when not UTF-8: see `current_base64`).
    pub current: Option<String>,
    /// The value after the operation in base64, when it is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_base64: Option<String>,
    /// The write.
    #[serde(flatten)]
    pub write: WriteAnswer,
}

/// One key of a listing.
#[derive(Serialize, ToSchema)]
pub struct ListItem {
    /// The key.
    pub key: String,
    /// The value, when UTF-8 (else `value_base64`).
    pub value: Option<String>,
    /// The value, base64, when not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<String>,
    /// With `max_value_bytes`: the value's whole size in bytes, when the value shown is cut
    /// (the whole value: `GET /v1/kv/{key}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_size: Option<usize>,
}

/// Answer of `GET /v1/kv`.
#[derive(Serialize, ToSchema)]
pub struct ListAnswer {
    /// Keys in order.
    pub items: Vec<ListItem>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<String>,
    /// Applied index the listing reflects.
    pub applied: u64,
}

/// Answer of `POST /v1/txn`.
#[derive(Serialize, ToSchema)]
pub struct TxnAnswer {
    /// Whether every guard held (and the operations were applied).
    pub succeeded: bool,
    /// Position of the first guard that did not hold.
    pub failed_guard: Option<u32>,
    /// One result per operation: `{"op": "put"}` or `{"op": "delete", "deleted": bool}`.
    pub results: Vec<super::txn::TxnResult>,
    /// The write.
    #[serde(flatten)]
    pub write: WriteAnswer,
}

/// Answer of `GET /v1/log`.
#[derive(Serialize, ToSchema)]
pub struct LogAnswer {
    /// First index held.
    pub first_index: u64,
    /// Last index held.
    pub last_index: u64,
    /// Commit index.
    pub commit: u64,
    /// The entries.
    pub entries: Vec<super::log_view::LogEntryView>,
}

/// Answer of `GET /healthz`.
#[derive(Serialize, ToSchema)]
pub struct LiveAnswer {
    /// Always `ok`: the process answers.
    pub status: &'static str,
}

/// Answer of `GET /readyz`.
#[derive(Serialize, ToSchema)]
pub struct ReadyAnswer {
    /// Whether the node is ready.
    pub ready: bool,
    /// Why not.
    pub reason: Option<String>,
    /// The node's health state and its reason.
    pub health: crate::views::Health,
    /// Known leader.
    pub leader: Option<u64>,
    /// Commit index.
    pub commit: u64,
    /// Applied index.
    pub applied: u64,
}

/// Body of `POST /v1/cluster/learners` (a missing field is a 400 naming it).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LearnerRequest {
    /// The new member's id (non-zero).
    #[serde(default)]
    pub id: Option<u64>,
    /// Its peer (Raft) address, `HOST:PORT` (`addr` is accepted as an alias).
    #[serde(default, alias = "addr")]
    pub peer_addr: Option<String>,
}

/// Body of `POST /v1/cluster/transfer-leader`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// The voter to hand leadership to; absent: the most up-to-date voter.
    #[serde(default)]
    pub to: Option<u64>,
}

/// Answer of `POST /v1/cluster/transfer-leader`: the new leader took office.
#[derive(Serialize, ToSchema)]
pub struct TransferAnswer {
    /// The new leader.
    pub leader: u64,
    /// Its term.
    pub term: u64,
}

/// Answer of a membership change: the configuration now in force.
#[derive(Serialize, ToSchema)]
pub struct MembershipAnswer {
    /// Index of the configuration entry (the commit index when nothing changed).
    pub index: u64,
    /// Whether a new configuration was committed (false: it already was as asked).
    pub changed: bool,
    /// Voting members.
    pub voters: Vec<u64>,
    /// Non-voting members.
    pub learners: Vec<u64>,
    /// Peer address of every member, by id.
    pub members: std::collections::BTreeMap<String, String>,
}

/// Answer of `POST /v1/admin/snapshot`.
#[derive(Serialize, ToSchema)]
pub struct SnapshotAnswer {
    /// Last entry the snapshot covers.
    pub index: u64,
    /// Its term.
    pub term: u64,
    /// File size, in bytes.
    pub size: u64,
    /// The file, on the node's disk.
    pub path: String,
    /// Voters recorded in the snapshot.
    pub voters: Vec<u64>,
    /// Learners recorded in the snapshot.
    pub learners: Vec<u64>,
}

/// Body of `POST /v1/auth/tokens`: what the handler parses and the document describes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// A unique name (1 to 128 bytes, no spaces), shown in logs instead of the secret.
    pub name: String,
    /// `read`, `write` or `admin`.
    pub role: String,
    /// Only keys starting with this (read and write tokens).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Lifetime in seconds (default: no expiry).
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
}

/// Answer of `POST /v1/auth/tokens` (201).
#[derive(Serialize, ToSchema)]
pub struct TokenCreated {
    /// The name.
    pub name: String,
    /// The role.
    pub role: String,
    /// The key prefix, if any.
    pub prefix: Option<String>,
    /// The secret (`rxt_...`): send it as `Authorization: Bearer <token>`. Shown only here.
    pub token: String,
    /// When it expires (RFC 3339, UTC), if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Log index of the creation.
    pub index: u64,
}

/// One token of `GET /v1/auth/tokens` (never its secret).
#[derive(Serialize, ToSchema)]
pub struct TokenInfo {
    /// The name.
    pub name: String,
    /// The role.
    pub role: String,
    /// The key prefix, if any.
    pub prefix: Option<String>,
    /// `static` (configuration of this node) or `replicated` (created over the API).
    pub source: String,
    /// When it was created (replicated tokens; RFC 3339).
    pub created_at: Option<String>,
    /// When it expires (RFC 3339), if it does.
    pub expires_at: Option<String>,
    /// Whether it has expired (and is refused).
    pub expired: bool,
}

/// Answer of `GET /v1/auth/tokens`.
#[derive(Serialize, ToSchema)]
pub struct TokenList {
    /// Whether access control is on on this node.
    pub access_control: bool,
    /// Static tokens first, then replicated ones by name.
    pub tokens: Vec<TokenInfo>,
}

/// Answer of `DELETE /v1/auth/tokens/{name}`.
#[derive(Serialize, ToSchema)]
pub struct TokenRevoked {
    /// The name.
    pub name: String,
    /// Always true.
    pub revoked: bool,
    /// Log index of the revocation.
    pub index: u64,
}

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    modifiers(&Amend),
    info(
        title = "raftix",
        description = "REST API of a raftix node: a replicated key-value store on Raft."
    ),
    paths(
        super::kv::put,
        super::kv::get,
        super::kv::delete,
        super::kv::cas,
        super::list::list,
        super::txn::txn,
        super::node_facts::status,
        super::charts::chart,
        super::cluster::cluster,
        super::transfer::transfer_leader,
        super::members::add_learner,
        super::members::promote,
        super::members::demote,
        super::members::remove,
        super::admin::snapshot,
        super::admin::backup,
        super::tokens::create,
        super::tokens::list,
        super::tokens::revoke,
        super::cluster::log,
        super::cluster::healthz,
        super::cluster::readyz,
        super::metrics::metrics,
        super::dashboard_api::status,
        super::dashboard_api::logs,
        super::dashboard_api::command::command,
        super::dashboard::index,
        super::regions::list,
        super::regions::add,
        super::regions::remove,
        super::regions::set_primary,
        super::regions::set_replication,
        super::regions::set_policy,
        super::regions::status,
        super::regions::stats,
        super::region_replicate::replicate,
        openapi_json,
    ),
    components(schemas(
        ErrorBody,
        WriteAnswer,
        DeleteAnswer,
        CasRequest,
        CasAnswer,
        ListItem,
        ListAnswer,
        super::txn::TxnGuardBody,
        super::txn::TxnOpBody,
        super::txn::TxnRequest,
        super::txn::TxnResult,
        TxnAnswer,
        LiveAnswer,
        super::log_view::LogEntryView,
        super::log_view::EntryKind,
        super::log_view::EntryCommand,
        super::log_view::ConfigView,
        super::log_view::CommandView,
        super::log_view::KvCommandView,
        super::log_view::GuardView,
        super::log_view::TxnOpView,
        LogAnswer,
        ReadyAnswer,
        LearnerRequest,
        MembershipAnswer,
        SnapshotAnswer,
        TokenRequest,
        TokenCreated,
        TokenInfo,
        TokenList,
        TokenRevoked,
        NodeStatus,
        super::node_facts::StatusAnswer,
        super::node_facts::DiskUse,
        PeerProgress,
        ClusterView,
        MemberView,
        ReplicationSetting,
        PolicyBody,
        RegionInfo,
        RegionsAnswer,
        RegionAddRequest,
        PrimaryRequest,
        ReplicationRequest,
        PolicyRequest,
        super::region_links::LinkView,
        RegionsStatusAnswer,
        ConflictStatsAnswer,
        ReplicateAnswer,
        SiblingBody,
        SiblingsAnswer,
        ReplicationOutcome
    ))
)]
pub struct ApiDoc;

/// The OpenAPI document of this API.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "OpenAPI 3.1 document")),
)]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
