//! The one write path of every mutating route ([`submit_request`]): wrap the command in a
//! request carrying the client's idempotency key, submit it to the local node, and on a follower
//! either forward the request to the leader (the default) or answer 307 to it (`?redirect=true`
//! or the `redirect_writes` setting). A request that was already forwarded once is never
//! forwarded again (no loops while leadership moves). After a forward whose answer did not
//! arrive, the outcome is unknown and the client is told so (504 `outcome_unknown`).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use awc::error::{ConnectError, SendRequestError};
use bytes::Bytes;
use std::time::{Duration, Instant};

use super::input::query_flag;
use super::{ApiError, AppState};
use crate::messages::node::{Ack, ClientError, WriteResult};
use crate::storage::{KvCommand, KvOutput, KvRequest, KvResponse};

/// Header a node adds when it forwards a write to the leader (its own id).
pub const FORWARDED_BY: &str = "x-raftix-forwarded-by";

/// Headers carried over when forwarding or relaying.
const FORWARDED_HEADERS: [&str; 5] = [
    "authorization",
    "content-type",
    "idempotency-key",
    "x-raftix-client",
    "x-raftix-seq",
];
const RELAYED_HEADERS: [&str; 5] = [
    "content-type",
    "location",
    "retry-after",
    "x-raft-index",
    // Multi-value conflicts: how many siblings the key holds (a read answered by the leader).
    "x-raftix-siblings",
];

/// What became of a write.
enum Written {
    /// Committed and applied by this node, the leader.
    Applied(WriteResult),
    /// Answered by the leader (forwarded) or a redirect to it: send this back as is.
    Relayed(HttpResponse),
}

/// Submits `command` to the local node; on a follower forwards `req` with `body` to the leader
/// or redirects to it. While no leader is known, or the leader cannot be reached (the request
/// was never sent), it waits for one for up to [`AppState::leader_wait`] and tries again: the
/// command was proposed nowhere, so trying again cannot apply it twice.
async fn submit(
    state: &AppState,
    client: &awc::Client,
    req: &HttpRequest,
    body: &Bytes,
    command: Bytes,
    ack: crate::messages::node::Ack,
) -> Result<Written, ApiError> {
    let deadline = Instant::now() + state.leader_wait;
    loop {
        let refused = match state.node.submit_with(command.clone(), ack).await {
            Ok(done) => return Ok(Written::Applied(done)),
            Err(ClientError::NotLeader {
                leader_id,
                leader_addr: Some(addr),
                ..
            }) => match to_leader(state, client, req, body, leader_id, addr.clone()).await {
                Err(err) if err.code == "leader_unreachable" => (err, Some(addr)),
                other => return other.map(Written::Relayed),
            },
            Err(err @ ClientError::NotLeader { .. }) => (err.into(), None),
            Err(other) => return Err(other.into()),
        };
        if !another_leader(state, refused.1.as_deref(), deadline).await {
            return Err(refused.0);
        }
    }
}

/// Waits until this node knows a leader other than the one at `unreachable` (or leads), and
/// says whether one came before `deadline`.
async fn another_leader(state: &AppState, unreachable: Option<&str>, deadline: Instant) -> bool {
    loop {
        if let Ok(status) = state.node.status().await {
            let known =
                status.leader_addr.is_some() && status.leader_addr.as_deref() != unreachable;
            if status.role == crate::core::Role::Leader || known {
                return true;
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
        actix_rt::time::sleep(LEADER_POLL).await;
    }
}

/// How often a follower waiting for a leader looks again.
const LEADER_POLL: Duration = Duration::from_millis(10);

/// What became of a proposed state machine command.
pub enum Proposed {
    /// Applied by this node (the leader): the output, whether it was a retry of an applied
    /// request, and the entry's index.
    Applied {
        /// What applying it returned.
        output: KvOutput,
        /// It was a retry of a request already applied.
        duplicate: bool,
        /// Its entry's index (the first one's, for a retry).
        index: u64,
    },
    /// The leader's answer (forwarded) or a redirect to it.
    Relayed(HttpResponse),
}

/// What became of a client request submitted through [`submit_request`].
pub(super) enum Submitted {
    /// Applied by this node (the leader): the state machine's response and the entry's id.
    Applied {
        /// The decoded response (output, and whether it was a retry of an applied request).
        response: KvResponse,
        /// The entry this request was committed in.
        log_id: crate::core::LogId,
    },
    /// `ack=leader`: durable on this node (the leader), not applied yet.
    Durable(crate::core::LogId),
    /// The leader's answer (forwarded) or a redirect to it.
    Relayed(HttpResponse),
}

/// The write path of every write: wraps `command` in a request carrying the client's
/// idempotency key (if any), submits it with `ack` (a follower hands it to the leader), and
/// decodes what the state machine answered.
pub(super) async fn submit_request(
    state: &AppState,
    req: &HttpRequest,
    body: &Bytes,
    command: KvCommand,
    ack: Ack,
) -> Result<Submitted, ApiError> {
    let kind = kind_of_command(&command);
    let request = KvRequest {
        request_id: super::kv::request_id(req)?,
        issued_at_ms: super::auth::now_ms(),
        command,
    };
    let client = client_of(req);
    match submit(state, &client, req, body, request.encode(), ack).await? {
        Written::Relayed(response) => Ok(Submitted::Relayed(response)),
        Written::Applied(done) if ack == Ack::Leader => Ok(Submitted::Durable(done.log_id)),
        Written::Applied(done) => {
            let response = KvResponse::decode(&done.output).map_err(|e| {
                ApiError::internal(format!("undecodable state machine output: {e}"))
            })?;
            if response.duplicate && answers_another_kind(kind, &response.output) {
                return Err(reused_request_id(response.first_index));
            }
            Ok(Submitted::Applied {
                response,
                log_id: done.log_id,
            })
        }
    }
}

/// What kind of request a command is, to tell a retry from a reused idempotency key.
fn kind_of_command(command: &KvCommand) -> &'static str {
    match command {
        KvCommand::Put { .. } => "put",
        KvCommand::Delete { .. } => "delete",
        KvCommand::Cas { .. } => "cas",
        KvCommand::Txn { .. } => "txn",
        KvCommand::TokenPut { .. } => "token_put",
        KvCommand::TokenDelete { .. } => "token_delete",
        KvCommand::Region(_) => "region",
        KvCommand::RegionApply { .. } => "region_apply",
        KvCommand::RegionAcked { .. } => "region_acked",
    }
}

/// Which kind of command an output answers (`None` for a refusal, which any kind may get).
fn kind_of_output(output: &KvOutput) -> Option<&'static str> {
    match output {
        KvOutput::Put => Some("put"),
        KvOutput::Delete { .. } => Some("delete"),
        KvOutput::Cas { .. } => Some("cas"),
        KvOutput::Txn { .. } => Some("txn"),
        KvOutput::TokenPut { .. } => Some("token_put"),
        KvOutput::TokenDelete { .. } => Some("token_delete"),
        KvOutput::Region => Some("region"),
        KvOutput::RegionApplied { .. } => Some("region_apply"),
        KvOutput::Rejected { .. } | KvOutput::Noop => None,
    }
}

/// Whether the first request of a retried idempotency key was of another kind than this one,
/// so that its result cannot answer this request. A refusal is left to the route, which says
/// why the first request was refused.
fn answers_another_kind(kind: &'static str, first: &KvOutput) -> bool {
    match first {
        KvOutput::Rejected { .. } => false,
        other => kind_of_output(other) != Some(kind),
    }
}

/// A request id (idempotency key) already used by another kind of request: a retry must be
/// the same request, so this is the client's mistake, answered `409` (the first request's
/// result cannot answer this one).
fn reused_request_id(first_index: crate::core::Index) -> ApiError {
    ApiError {
        status: StatusCode::CONFLICT,
        code: "request_id_reused",
        message: format!(
            "this idempotency key (or client id and sequence number) was already used by \
             another kind of request, applied at index {first_index}; use a new key for a new \
             request"
        ),
        leader: None,
    }
}

/// Proposes `command` (a token, region or other administrative change) through the write path
/// of every write, acknowledged by a quorum.
pub async fn propose(
    state: &AppState,
    req: &HttpRequest,
    body: &Bytes,
    command: KvCommand,
) -> Result<Proposed, ApiError> {
    match submit_request(state, req, body, command, Ack::Quorum).await? {
        Submitted::Relayed(response) => Ok(Proposed::Relayed(response)),
        Submitted::Applied { response, log_id } => Ok(Proposed::Applied {
            output: response.output,
            duplicate: response.duplicate,
            index: if response.duplicate {
                response.first_index
            } else {
                log_id.index
            },
        }),
        Submitted::Durable(_) => Err(ApiError::internal(
            "a quorum write was answered before it was applied",
        )),
    }
}

/// Hands a request this follower cannot serve to the leader: forwards it and relays the answer,
/// or answers 307 (with `?redirect=true`, the `redirect_writes` setting, or when the request
/// was already forwarded once).
pub async fn to_leader(
    state: &AppState,
    client: &awc::Client,
    req: &HttpRequest,
    body: &Bytes,
    leader_id: Option<u64>,
    addr: String,
) -> Result<HttpResponse, ApiError> {
    let already_forwarded = req.headers().contains_key(FORWARDED_BY);
    if state.redirect_writes || query_flag(req, "redirect") || already_forwarded {
        Ok(redirect(req, leader_id, addr))
    } else {
        forward(state, client, req, body, &addr).await
    }
}

fn redirect(req: &HttpRequest, leader_id: Option<u64>, addr: String) -> HttpResponse {
    let location = format!("{}{}", super::url_of(&addr), req.uri());
    let err = ApiError::from(ClientError::not_leader(leader_id, Some(addr)));
    let mut response = actix_web::ResponseError::error_response(&err);
    if let Ok(value) = header::HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

async fn forward(
    state: &AppState,
    client: &awc::Client,
    req: &HttpRequest,
    body: &Bytes,
    addr: &str,
) -> Result<HttpResponse, ApiError> {
    let url = format!("{}{}", super::url_of(addr), req.uri());
    let timeout = state.forward_timeout + super::region_wait::forward_allowance(state, req).await;
    let mut outgoing = client
        .request(req.method().clone(), url)
        .timeout(timeout)
        .insert_header((FORWARDED_BY, state.node_id.to_string()));
    for name in FORWARDED_HEADERS {
        if let Some(value) = req.headers().get(name) {
            outgoing = outgoing.insert_header((name, value.clone()));
        }
    }
    let mut answer = match outgoing.send_body(body.clone()).await {
        Ok(answer) => answer,
        Err(err) => return Err(forward_error(err, addr)),
    };
    let relayed = answer.body().limit(state.limits.max_value_bytes + 64 * 1024).await.map_err(|err| {
        ApiError::outcome_unknown(format!(
            "the leader at {addr} answered but its answer could not be read ({err}): the write may or may not be applied"
        ))
    })?;
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = HttpResponse::build(status);
    for name in RELAYED_HEADERS {
        if let Some(value) = answer.headers().get(name) {
            response.insert_header((name, value.clone()));
        }
    }
    response.insert_header(("x-raftix-forwarded-to", addr.to_string()));
    Ok(response.body(relayed))
}

/// What a failed forward means for the client. Only a failure to connect proves the leader
/// never got the request (503 `leader_unreachable`, safe to retry). awc also reports a
/// connection closed after the request was written, before any answer, as a connect error
/// (`ConnectError::Disconnected`): the leader may have appended the write by then (it dies after
/// replicating it, a later leader commits it), so that is 504 `outcome_unknown`, like every
/// other failure after sending.
pub fn forward_error(err: SendRequestError, addr: &str) -> ApiError {
    match err {
        SendRequestError::Connect(ConnectError::Disconnected) => ApiError::outcome_unknown(format!(
            "forwarded to the leader at {addr}, which closed the connection without answering: the write may or may not be applied"
        )),
        SendRequestError::Connect(err) => ApiError::unavailable(
            "leader_unreachable",
            format!("the leader at {addr} cannot be reached: {err}"),
        ),
        err => ApiError::outcome_unknown(format!(
            "forwarded to the leader at {addr} but got no answer ({err}): the write may or may not be applied"
        )),
    }
}

/// The per-worker HTTP client used to forward writes.
pub fn client_of(req: &HttpRequest) -> web::Data<awc::Client> {
    req.app_data::<web::Data<awc::Client>>()
        .cloned()
        .unwrap_or_else(|| web::Data::new(forwarding_client(None)))
}

/// A client that relays a leader's redirect instead of following it; with `tls` it can call
/// HTTPS gateways (trusting and presenting what `tls` says).
pub fn forwarding_client(tls: Option<std::sync::Arc<rustls::ClientConfig>>) -> awc::Client {
    let builder = awc::Client::builder().disable_redirects();
    match tls {
        Some(tls) => builder
            .connector(awc::Connector::new().rustls_0_23(tls))
            .finish(),
        None => builder.finish(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpListener;

    use actix_web::http::StatusCode;

    use super::forward_error;

    /// Forwards a PUT with awc to `addr` and maps the failure as `forward` does.
    async fn forward_to(addr: &str) -> super::ApiError {
        let err = awc::Client::new()
            .put(format!("http://{addr}/v1/kv/k"))
            .send_body("v")
            .await
            .expect_err("the forward must fail");
        forward_error(err, addr)
    }

    #[actix_rt::test]
    async fn refused_connection_is_leader_unreachable() {
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").to_string()
        };
        let err = forward_to(&addr).await;
        assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.code, "leader_unreachable");
    }

    /// A leader that received the whole request and died before answering (kill -9 after
    /// appending): the client must not be told the write was not applied.
    #[actix_rt::test]
    async fn connection_closed_after_the_request_is_outcome_unknown() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            // Read until the end of the body ("v"), then close without answering.
            while !got.ends_with(b"\r\n\r\nv") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            got
        });
        let err = forward_to(&addr).await;
        let got = server.join().expect("server thread");
        assert!(
            got.starts_with(b"PUT /v1/kv/k"),
            "the leader received the request: {}",
            String::from_utf8_lossy(&got)
        );
        assert_eq!(err.status, StatusCode::GATEWAY_TIMEOUT, "{err}");
        assert_eq!(err.code, "outcome_unknown");
    }
}
