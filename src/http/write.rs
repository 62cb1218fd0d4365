//! The write path shared by every mutating route: submit to the local node, and on a follower
//! either forward the request to the leader (the default) or answer 307 to it (`?redirect=true`
//! or the `redirect_writes` setting). A request that was already forwarded once is never
//! forwarded again (no loops while leadership moves). After a forward whose answer did not
//! arrive, the outcome is unknown and the client is told so (504 `outcome_unknown`).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use awc::error::SendRequestError;
use bytes::Bytes;

use super::input::query_flag;
use super::{ApiError, AppState};
use crate::messages::node::{ClientError, WriteResult};

/// Header a node adds when it forwards a write to the leader (its own id).
pub const FORWARDED_BY: &str = "x-raftix-forwarded-by";

/// Headers carried over when forwarding or relaying.
const FORWARDED_HEADERS: [&str; 4] = [
    "content-type",
    "idempotency-key",
    "x-raftix-client",
    "x-raftix-seq",
];
const RELAYED_HEADERS: [&str; 4] = ["content-type", "location", "retry-after", "x-raft-index"];

/// What became of a write.
pub enum Written {
    /// Committed and applied by this node, the leader.
    Applied(WriteResult),
    /// Answered by the leader (forwarded) or a redirect to it: send this back as is.
    Relayed(HttpResponse),
}

/// Submits `command` to the local node; on a follower forwards `req` with `body` to the leader
/// or redirects to it.
pub async fn submit(
    state: &AppState,
    client: &awc::Client,
    req: &HttpRequest,
    body: &Bytes,
    command: Bytes,
    ack: crate::messages::node::Ack,
) -> Result<Written, ApiError> {
    match state.node.submit_with(command, ack).await {
        Ok(done) => Ok(Written::Applied(done)),
        Err(ClientError::NotLeader {
            leader_id,
            leader_addr: Some(addr),
        }) => to_leader(state, client, req, body, leader_id, addr)
            .await
            .map(Written::Relayed),
        Err(other) => Err(other.into()),
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
    let location = format!("http://{addr}{}", req.uri());
    let err = ApiError::from(ClientError::NotLeader {
        leader_id,
        leader_addr: Some(addr),
    });
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
    let url = format!("http://{addr}{}", req.uri());
    let mut outgoing = client
        .request(req.method().clone(), url)
        .timeout(state.forward_timeout)
        .insert_header((FORWARDED_BY, state.node_id.to_string()));
    for name in FORWARDED_HEADERS {
        if let Some(value) = req.headers().get(name) {
            outgoing = outgoing.insert_header((name, value.clone()));
        }
    }
    let mut answer = match outgoing.send_body(body.clone()).await {
        Ok(answer) => answer,
        Err(SendRequestError::Connect(err)) => {
            // Nothing was sent: safe to retry.
            return Err(ApiError::unavailable(
                "leader_unreachable",
                format!("the leader at {addr} cannot be reached: {err}"),
            ));
        }
        Err(err) => {
            return Err(ApiError::outcome_unknown(format!(
                "forwarded to the leader at {addr} but got no answer ({err}): the write may or may not be applied"
            )));
        }
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

/// The per-worker HTTP client used to forward writes.
pub fn client_of(req: &HttpRequest) -> web::Data<awc::Client> {
    req.app_data::<web::Data<awc::Client>>()
        .cloned()
        .unwrap_or_else(|| web::Data::new(forwarding_client()))
}

/// A client that relays a leader's redirect instead of following it.
pub fn forwarding_client() -> awc::Client {
    awc::Client::builder().disable_redirects().finish()
}
