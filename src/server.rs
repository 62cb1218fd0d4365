//! `raftix serve`: one node of the replicated key-value service, with its HTTP gateway.
//!
//! Starts an actix System, prepares and validates the data dir, opens the key-value state
//! machine, starts the node and the HTTP server, and runs until SIGINT/SIGTERM (graceful: the
//! HTTP server finishes in-flight requests, then the node stops) or until the node fails (a
//! storage error), which ends the process with an error.

use std::time::Duration;

use actix_web::{App, HttpServer};

use crate::actors::start_node;
use crate::config::NodeConfig;
use crate::http::{self, AppState};
use crate::storage::{DataDir, KvStateMachine};
use crate::tls::GatewayTls;

/// Worker threads of the HTTP server (`max_connections` is shared out among them).
const HTTP_WORKERS: usize = 2;

/// Logs how the HTTP API is protected, and a loud warning when it is open to the network: no
/// token configured (static or replicated: `replicated` are their names) nor client certificate
/// required while listening on a non-loopback address.
fn warn_if_open(config: &NodeConfig, replicated: &[String]) {
    if config.auth_enabled() || !replicated.is_empty() {
        let names: Vec<&str> = config.tokens.iter().map(|t| t.name.as_str()).collect();
        tracing::info!(
            tokens = ?names,
            replicated = ?replicated,
            "access control on: the HTTP API needs bearer tokens"
        );
        return;
    }
    let host = config
        .listen_http
        .rsplit_once(':')
        .map_or(config.listen_http.as_str(), |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback && config.client_auth() != crate::tls::ClientAuth::Required {
        tracing::warn!(
            http = %config.listen_http,
            "!!! the HTTP API listens on a non-loopback address WITHOUT access control: anyone who can reach {} can read, write and reconfigure the cluster; configure tokens (--token-file or [[tokens]] in --config) or create an admin token (raftix token create --name root --role admin) !!!",
            config.listen_http
        );
    }
}

/// Runs one node until it is told to stop or fails.
pub fn run(config: NodeConfig) -> Result<(), Box<dyn std::error::Error>> {
    let system = actix::System::new();
    system.block_on(serve(config))
}

/// A node and its gateway, running inside the current actix System (see [`start`]).
pub struct Running {
    /// The node.
    pub node: crate::actors::RaftHandle,
    /// Its state machine, for reads.
    pub kv: crate::storage::KvReader,
    /// What the region shipper saw of the links to other regions.
    pub links: std::sync::Arc<crate::region_shipping::LinkStatus>,
    server_handle: actix_web::dev::ServerHandle,
    server_task: actix_rt::task::JoinHandle<std::io::Result<()>>,
    config: NodeConfig,
}

/// What the embedding application adds to a node started by [`start`].
#[derive(Default)]
pub struct Extensions {
    /// Merges of the `custom:NAME` conflict strategies (see [`crate::regions`]).
    pub resolvers: Vec<(String, std::sync::Arc<dyn crate::regions::MergeResolver>)>,
    /// Called after each batch of entries the state machine applied, with the keys changed.
    pub apply_observer: Option<crate::storage::ApplyObserver>,
}

/// Starts one node of the replicated key-value service and its HTTP gateway (and, with a
/// region, its shipper) inside the current actix System; returns once they serve.
pub async fn start(
    config: NodeConfig,
    extensions: Extensions,
) -> Result<Running, Box<dyn std::error::Error>> {
    let tls = GatewayTls::load(&config)?;
    let mut data_dir = DataDir::prepare(&config.data_dir, &config.cluster_name, config.id)?;
    if data_dir.check_voters(config.cluster.keys().copied(), config.force_new_cluster)?
        && config.force_new_cluster
    {
        tracing::warn!(
            node = config.id,
            voters = ?config.cluster.keys().collect::<Vec<_>>(),
            "--force-new-cluster: the data dir now records these voters (lost-quorum recovery)"
        );
    }
    let mut machine = KvStateMachine::open(data_dir.sm_path(), config.sm_map_size)?;
    for (name, resolver) in extensions.resolvers {
        machine.register_resolver(&name, resolver);
    }
    if let Some(observer) = extensions.apply_observer {
        machine.set_apply_observer(observer);
    }
    let kv = machine.reader();
    let node = start_node(&config, &data_dir, machine).await?;
    let replicated: Vec<String> = kv
        .tokens()
        .map(|tokens| tokens.into_iter().map(|(name, _)| name).collect())
        .unwrap_or_default();
    let mut state = AppState::new(&config, node.clone(), kv.clone());
    state.client_tls = tls.client;
    let links = state.links.clone();
    warn_if_open(&config, &replicated);
    if let Some(region) = &config.region {
        tracing::info!(node = config.id, region = %region, "multi-region replication: this cluster is region {region}");
        let shipper = crate::region_shipping::shipper::Shipper {
            node: node.clone(),
            kv: state.kv.clone(),
            client: http::write::forwarding_client(state.client_tls.clone()),
            token: std::env::var("RAFTIX_REGION_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
            status: state.links.clone(),
        };
        actix_rt::spawn(shipper.run());
    }
    crate::tls::log_gateway_tls(&config);
    http::history::start_sampling(state.clone());
    let server = HttpServer::new(move || App::new().configure(http::configure(state.clone())))
        .workers(HTTP_WORKERS)
        .max_connections(config.max_connections.div_ceil(HTTP_WORKERS).max(1))
        .max_connection_rate(config.max_connection_rate)
        .client_request_timeout(Duration::from_millis(config.client_request_timeout_ms))
        .client_disconnect_timeout(Duration::from_millis(config.client_disconnect_timeout_ms))
        .disable_signals()
        .shutdown_timeout(5);
    let server = match tls.server {
        Some(server_tls) => server.bind_rustls_0_23(&config.listen_http, server_tls),
        None => server.bind(&config.listen_http),
    }
    .map_err(|e| format!("cannot listen for HTTP on {}: {e}", config.listen_http))?
    .run();
    let server_handle = server.handle();
    let server_task = actix_rt::spawn(server);
    tracing::info!(
        node = config.id,
        http = %config.listen_http,
        peer = %config.listen_peer,
        "node {} serving; dashboard and API at {}/",
        config.id,
        config.http_base_url()
    );
    Ok(Running {
        node,
        kv,
        links,
        server_handle,
        server_task,
        config,
    })
}

impl Running {
    /// The region name the node was started with.
    pub fn config_region(&self) -> Option<String> {
        self.config.region.clone()
    }

    /// Stops the gateway (finishing requests in flight), hands leadership over when
    /// `hand_over` and this node leads, and stops the node.
    pub async fn stop(self, hand_over_first: bool) {
        if hand_over_first {
            hand_over(&self.node, &self.config).await;
        }
        self.server_handle.stop(true).await;
        let _ = self.server_task.await;
        self.node.shutdown().await;
    }
}

async fn serve(config: NodeConfig) -> Result<(), Box<dyn std::error::Error>> {
    let running = start(config, Extensions::default()).await?;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let failure = tokio::select! {
        _ = tokio::signal::ctrl_c() => { tracing::info!("SIGINT received, shutting down"); None }
        _ = sigterm.recv() => { tracing::info!("SIGTERM received, shutting down"); None }
        reason = running.node.stopped() => Some(reason.unwrap_or_else(|| "node stopped".into())),
    };
    running.stop(failure.is_none()).await;
    match failure {
        Some(reason) => Err(reason.into()),
        None => Ok(()),
    }
}

/// A leader that is asked to stop hands leadership to the most up-to-date voter first, so the
/// cluster does not wait an election timeout for a new leader (bounded: it stops anyway).
async fn hand_over(node: &crate::actors::RaftHandle, config: &NodeConfig) {
    let leading = node
        .status()
        .await
        .is_ok_and(|s| s.role == crate::core::Role::Leader);
    if !leading || config.cluster.len() < 2 {
        return;
    }
    let limit = config.election_timeout_max() * 2;
    match tokio::time::timeout(limit, node.transfer_leader(None)).await {
        Ok(Ok(leader)) => tracing::info!("handed leadership to node {leader} before stopping"),
        Ok(Err(err)) => tracing::warn!("leadership transfer before stopping failed: {err}"),
        Err(_) => tracing::warn!("leadership transfer before stopping timed out"),
    }
}
