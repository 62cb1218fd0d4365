//! The REST gateway (actix-web), served by every node.
//!
//! Every error answer is JSON: `{"error": "<code>", "message": "...", "leader": ...}`. Writes on a
//! follower are forwarded to the leader (or redirected with `?redirect=true`); see [`write`].
//! Membership changes are forwarded the same way; snapshots and backups are served by the node
//! asked.

mod admin;
pub mod auth;
mod charts;
pub(crate) mod cluster;
pub mod credentials;
pub mod dashboard;
pub mod dashboard_api;
pub mod doc_vocabulary;
mod error;
pub mod history;
mod input;
mod kv;
pub mod limits;
mod list;
pub mod log_view;
mod members;
mod metrics;
pub(crate) mod node_facts;
pub mod openapi;
mod openapi_amend;
mod query_rules;
pub mod read;
pub mod region_links;
pub mod region_replicate;
pub mod region_versions;
pub mod region_wait;
pub mod regions;
pub mod regions_schema;
mod shown_value;
/// The former name of [`dashboard_api`].
#[doc(hidden)]
pub use dashboard_api as seed_api;
pub mod tokens;
mod transfer;
pub mod txn;
pub mod write;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use base64::Engine;
use serde_json::{json, Value};

pub use error::ApiError;

use crate::actors::RaftHandle;
use crate::config::{NodeConfig, DEFAULT_MAX_KEY_BYTES, DEFAULT_MAX_VALUE_BYTES};
use crate::core::NodeId;
use crate::storage::KvReader;

/// Size limits on client input (see [`limits`] for how bodies are bounded).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest key, in bytes.
    pub max_key_bytes: usize,
    /// Largest value, in bytes.
    pub max_value_bytes: usize,
    /// Largest body of the JSON routes carrying keys and values, in bytes.
    pub max_body_bytes: usize,
    /// How long a body may take to arrive after the request's head (`None`: no limit).
    pub body_timeout: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_key_bytes: DEFAULT_MAX_KEY_BYTES,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            max_body_bytes: crate::config::DEFAULT_MAX_BODY_BYTES,
            body_timeout: limits::body_timeout_of(crate::config::DEFAULT_CLIENT_BODY_TIMEOUT_MS),
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// This node's id.
    pub node_id: NodeId,
    /// The local node.
    pub node: RaftHandle,
    /// Reads of the local key-value state.
    pub kv: KvReader,
    /// Input limits.
    pub limits: Limits,
    /// Answer writes on a follower with 307 instead of forwarding them.
    pub redirect_writes: bool,
    /// How long a forwarded write may take before its outcome is reported unknown.
    pub forward_timeout: Duration,
    /// The node's data dir (for the disk use `GET /v1/status` reports).
    pub data_dir: std::path::PathBuf,
    /// When the gateway started (the uptime `GET /v1/status` reports).
    pub started: std::time::Instant,
    /// The last five minutes of this node, for the dashboard's charts (see [`history`]).
    pub history: history::SharedHistory,
    /// How long a follower waits for a (new) leader before refusing a write it could not hand
    /// over (never sent): two longest election timeouts, time to notice and replace a leader.
    pub leader_wait: Duration,
    /// The bearer tokens accepted (none: access control off); see [`auth`].
    pub tokens: auth::Tokens,
    /// TLS of calls to other nodes' gateways (forwarding, dashboard probes); `None`: plain
    /// HTTP. Set from [`crate::tls::GatewayTls::client`].
    pub client_tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// Requests in flight, bounded in all and per client; see [`limits`].
    pub inflight: Arc<limits::Inflight>,
    /// Counters of requests refused by a limit.
    pub refusals: limits::Refusals,
    /// This node's region name (`--region`), if it takes part in multi-region replication.
    pub region: Option<String>,
    /// What this node's shipper saw of the links to other regions.
    pub links: Arc<crate::region_shipping::LinkStatus>,
}

impl AppState {
    /// The gateway state of a node started from `config`.
    pub fn new(config: &NodeConfig, node: RaftHandle, kv: KvReader) -> Self {
        Self {
            node_id: config.id,
            node,
            limits: Limits {
                max_key_bytes: config.max_key_bytes,
                max_value_bytes: config.max_value_bytes,
                max_body_bytes: config.max_body_bytes,
                body_timeout: limits::body_timeout_of(config.client_body_timeout_ms),
            },
            redirect_writes: config.redirect_writes,
            forward_timeout: config.proposal_timeout() + Duration::from_secs(1),
            data_dir: config.data_dir.clone(),
            started: std::time::Instant::now(),
            history: history::SharedHistory::default(),
            leader_wait: 2 * config.election_timeout_max(),
            tokens: auth::Tokens::new(config.tokens.clone(), Some(kv.clone())),
            client_tls: None,
            inflight: Arc::new(limits::Inflight::new(
                config.max_inflight_requests,
                config.max_inflight_per_client,
            )),
            refusals: limits::Refusals::default(),
            region: config.region.clone(),
            links: Arc::default(),
            kv,
        }
    }
}

/// Registers the multi-region routes (see [`regions`]).
fn region_routes(cfg: &mut web::ServiceConfig) {
    let one = |path: &str, method: actix_web::http::Method, handler: actix_web::Route| {
        web::resource(path.to_string())
            .route(handler.method(method))
            .default_service(web::to(error::method_not_allowed))
    };
    use actix_web::http::Method;
    cfg.service(
        web::resource("/v1/regions")
            .route(web::get().to(regions::list))
            .route(web::post().to(regions::add))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(one(
        "/v1/regions/status",
        Method::GET,
        web::route().to(regions::status),
    ))
    .service(one(
        "/v1/regions/primary",
        Method::PUT,
        web::route().to(regions::set_primary),
    ))
    .service(one(
        "/v1/regions/replication",
        Method::PUT,
        web::route().to(regions::set_replication),
    ))
    .service(one(
        "/v1/regions/replicate",
        Method::POST,
        web::route().to(region_replicate::replicate),
    ))
    .service(one(
        "/v1/regions/{id}",
        Method::DELETE,
        web::route().to(regions::remove),
    ))
    .service(one(
        "/v1/conflicts/stats",
        Method::GET,
        web::route().to(regions::stats),
    ))
    .service(one(
        "/v1/conflicts/policy",
        Method::PUT,
        web::route().to(regions::set_policy),
    ));
}

/// The base URL of a node's published HTTP address: the address itself when it carries a
/// scheme (`https://host:port`, from a node serving HTTPS), else `http://` + `host:port`.
pub fn url_of(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    }
}

/// A value as (text when UTF-8, base64 when not); `None` gives neither.
pub(crate) fn text_and_base64(value: Option<&[u8]>) -> (Option<String>, Option<String>) {
    match value.map(std::str::from_utf8) {
        None => (None, None),
        Some(Ok(text)) => (Some(text.to_string()), None),
        Some(Err(_)) => {
            let raw = value.unwrap_or_default();
            let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
            (None, Some(encoded))
        }
    }
}

/// Sets `field` to the value as a JSON string when it is UTF-8, else sets `field_base64`
/// (and `field` to null); `None` gives `null`.
pub(crate) fn text_or_base64(target: &mut Value, field: &str, value: Option<&[u8]>) {
    let (text, encoded) = text_and_base64(value);
    target[field] = json!(text);
    if let Some(encoded) = encoded {
        target[format!("{field}_base64")] = json!(encoded);
    }
}

/// A router pattern as the OpenAPI document (and the metrics' `route` label) write it:
/// `/v1/kv/{key:.+}` is `/v1/kv/{key}`, without the segment regexes.
pub(crate) fn route_template(pattern: &str) -> String {
    let mut path = String::with_capacity(pattern.len());
    let (mut in_name, mut in_regex) = (false, false);
    for c in pattern.chars() {
        match c {
            '{' => in_name = true,
            ':' if in_name => in_regex = true,
            '}' => (in_name, in_regex) = (false, false),
            _ => {}
        }
        if !in_regex {
            path.push(c);
        }
    }
    path
}

/// Registers every route on an actix-web app (call it inside `HttpServer::new`'s factory: each
/// worker gets its own HTTP client for forwarding).
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let get = |path: &str, route: actix_web::Route| {
            web::resource(path.to_string())
                .route(route.method(actix_web::http::Method::GET))
                .default_service(web::to(error::method_not_allowed))
        };
        let client = write::forwarding_client(state.client_tls.clone());
        cfg.app_data(web::Data::new(state))
            .app_data(web::Data::new(client))
            .app_data(web::QueryConfig::default().error_handler(|err, _| {
                ApiError::bad_request(format!("invalid query: {err}")).into()
            }))
            .service(
                // Outermost first: metrics, in-flight limits, body limits, access control.
                web::scope("")
                    .wrap(actix_web::middleware::from_fn(query_rules::reject_unknown))
                    .wrap(actix_web::middleware::from_fn(auth::check))
                    .wrap(actix_web::middleware::from_fn(limits::bodies))
                    .wrap(actix_web::middleware::from_fn(limits::inflight))
                    .wrap(actix_web::middleware::from_fn(metrics::track))
                    .service(
                        web::resource("/v1/kv")
                            .route(web::get().to(list::list))
                            .default_service(web::to(error::method_not_allowed)),
                    )
                    .service(
                        // POST only: any other method on a key ending in `/cas` is that key's.
                        web::resource("/v1/kv/{key:.+}/cas")
                            .guard(actix_web::guard::Post())
                            .route(web::post().to(kv::cas)),
                    )
                    .service(
                        web::resource("/v1/kv/{key:.+}")
                            .route(web::put().to(kv::put))
                            .route(web::get().to(kv::get))
                            .route(web::head().to(kv::get))
                            .route(web::delete().to(kv::delete))
                            .default_service(web::to(error::method_not_allowed)),
                    )
                    .service(
                        web::resource("/v1/txn")
                            .route(web::post().to(txn::txn))
                            .default_service(web::to(error::method_not_allowed)),
                    )
                    .service(
                        web::resource("/v1/cluster/transfer-leader")
                            .route(web::post().to(transfer::transfer_leader))
                            .default_service(web::to(error::method_not_allowed)),
                    )
                    .service(
                        web::resource("/v1/cluster/learners")
                            .route(web::post().to(members::add_learner))
                            .default_service(web::to(error::method_not_allowed)),
                    )
                    .service(
                        web::resource("/v1/cluster/voters/{id}")
                            .route(web::post().to(members::promote))
                            .route(web::delete().to(members::demote))
                            .default_service(web::to(error::method_not_allowed)),
                    )
                    .service(
                        web::resource("/v1/cluster/members/{id}")
                            .route(web::delete().to(members::remove))
                            .default_service(web::to(error::method_not_allowed)),
                    )
                    .service(
                        web::resource("/v1/admin/snapshot")
                            .route(web::post().to(admin::snapshot))
                            .default_service(web::to(error::method_not_allowed)),
                    )
                    .service(get("/v1/admin/backup", web::to(admin::backup)))
                    .configure(tokens::routes)
                    .configure(region_routes)
                    .service(get("/v1/status", web::to(node_facts::status)))
                    .service(get("/v1/cluster", web::to(cluster::cluster)))
                    .service(get("/v1/log", web::to(cluster::log)))
                    .service(get("/healthz", web::to(cluster::healthz)))
                    .service(get("/readyz", web::to(cluster::readyz)))
                    .service(get("/metrics", web::to(metrics::metrics)))
                    .service(get("/openapi.json", web::to(openapi::openapi_json)))
                    .service(get("/api/charts/{name}", web::to(charts::chart)))
                    .configure(dashboard_api::routes)
                    .configure(dashboard::routes)
                    .default_service(web::to(error::not_found)),
            )
            .default_service(web::to(error::not_found));
    }
}
