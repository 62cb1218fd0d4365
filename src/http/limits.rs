//! Limits of the gateway, so that a flood from one client degrades that client and not the
//! cluster:
//!
//! - [`bodies`]: every request body is bounded by its route ([`Limits::body_limit`]): a
//!   `Content-Length` over it is a JSON 413 at once, and a body streamed without one is cut at the
//!   limit (the handler answers 413) and at `client_body_timeout_ms` after the head (408).
//! - [`inflight`]: at most `max_inflight_requests` requests served at once by this node, and at
//!   most `max_inflight_per_client` by one client; beyond either, 429 `too_many_requests` with
//!   `Retry-After: 1`. A client is its token (by name) when it presents a valid one, else its IP
//!   address. A request forwarded by another node (`x-raftix-forwarded-by`) without a valid
//!   token counts only against the global limit: its entry node already counted it against its
//!   client (the header does not lift the global limit). `/healthz` and `/readyz` are exempt.
//!
//! Connection count and slow-client timeouts are settings of the HTTP server (`src/server.rs`).
//! Every refusal is counted in `raftix_http_refused_total{reason}` (see [`Refusals`]).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};
use bytes::Bytes;
use futures::Stream;
use prometheus::{IntCounterVec, Opts, Registry};

use super::auth::{view_of, Lookup};
use super::write::FORWARDED_BY;
use super::{ApiError, AppState, Limits};

/// Largest body of routes that take none or a small JSON object (membership, transfer, tokens).
pub const SMALL_BODY_BYTES: usize = 4096;

impl Limits {
    /// The largest body `method path` may carry: the value limit for `PUT /v1/kv/{key}`,
    /// `max_body_bytes` for the JSON routes that carry keys and values (CAS, transactions,
    /// dashboard commands), [`SMALL_BODY_BYTES`] for everything else.
    pub fn body_limit(&self, method: &Method, path: &str) -> usize {
        let kv_key = path.strip_prefix("/v1/kv/").filter(|k| !k.is_empty());
        if *method == Method::PUT && kv_key.is_some() {
            return self.max_value_bytes;
        }
        let json_with_values = (*method == Method::POST)
            && (kv_key.is_some_and(|k| k.ends_with("/cas"))
                || path == "/v1/txn"
                || path == "/api/command"
                || path == "/v1/regions/replicate");
        if json_with_values {
            self.max_body_bytes
        } else {
            SMALL_BODY_BYTES
        }
    }
}

/// Counters of refused requests, in a registry `/metrics` adds to the node's.
#[derive(Clone)]
pub struct Refusals {
    /// Where the counter is registered.
    pub registry: Registry,
    by_reason: Option<IntCounterVec>,
}

impl Default for Refusals {
    fn default() -> Self {
        let registry = Registry::new();
        let by_reason = IntCounterVec::new(
            Opts::new(
                "raftix_http_refused_total",
                "HTTP requests refused by a gateway limit, by reason (inflight_global, \
                 inflight_client, body_too_large, body_timeout)",
            ),
            &["reason"],
        )
        .ok()
        .filter(|c| registry.register(Box::new(c.clone())).is_ok());
        Self {
            registry,
            by_reason,
        }
    }
}

impl Refusals {
    /// Counts one refusal.
    pub fn count(&self, reason: &str) {
        if let Some(c) = &self.by_reason {
            c.with_label_values(&[reason]).inc();
        }
    }

    /// Refusals so far for `reason`.
    pub fn get(&self, reason: &str) -> u64 {
        self.by_reason
            .as_ref()
            .map_or(0, |c| c.with_label_values(&[reason]).get())
    }
}

/// Requests in flight on this node, in all and per client.
#[derive(Debug)]
pub struct Inflight {
    max_global: usize,
    max_client: usize,
    global: AtomicUsize,
    clients: Mutex<HashMap<String, usize>>,
}

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The node serves `max_inflight_requests` already.
    Global(usize),
    /// This client has `max_inflight_per_client` in flight already.
    Client(usize),
}

/// A request's place; freed when dropped.
#[derive(Debug)]
pub struct Permit {
    inflight: Arc<Inflight>,
    client: Option<String>,
}

impl Inflight {
    /// Limits of `max_global` requests in all and `max_client` per client (0: no limit).
    pub fn new(max_global: usize, max_client: usize) -> Self {
        Self {
            max_global,
            max_client,
            global: AtomicUsize::new(0),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Requests in flight now.
    pub fn current(&self) -> usize {
        self.global.load(Ordering::Relaxed)
    }

    /// Admits a request of `client` (`None`: counted only globally), or says why not.
    pub fn admit(self: &Arc<Self>, client: Option<String>) -> Result<Permit, Refusal> {
        let previous = self.global.fetch_add(1, Ordering::AcqRel);
        if self.max_global != 0 && previous >= self.max_global {
            self.global.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Global(self.max_global));
        }
        if let Some(name) = &client {
            let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
            let count = clients.entry(name.clone()).or_insert(0);
            if self.max_client != 0 && *count >= self.max_client {
                if *count == 0 {
                    clients.remove(name);
                }
                drop(clients);
                self.global.fetch_sub(1, Ordering::AcqRel);
                return Err(Refusal::Client(self.max_client));
            }
            *count += 1;
        }
        Ok(Permit {
            inflight: self.clone(),
            client,
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(name) = &self.client {
            let mut clients = self
                .inflight
                .clients
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(count) = clients.get_mut(name) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    clients.remove(name);
                }
            }
        }
        self.inflight.global.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Who a request counts against: `token:<name>` for a valid token, `ip:<address>` otherwise;
/// `None` for a request forwarded by another node without a valid token.
fn client_of(req: &ServiceRequest) -> Option<String> {
    if let Some(Lookup::Found(principal)) = view_of(req).lookup {
        return Some(format!("token:{}", principal.name));
    }
    if req.headers().contains_key(FORWARDED_BY) {
        return None;
    }
    let ip = req
        .peer_addr()
        .map_or_else(|| "unknown".to_string(), |a| a.ip().to_string());
    Some(format!("ip:{ip}"))
}

/// The in-flight middleware (see the module docs).
pub async fn inflight(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let exempt = matches!(req.path(), "/healthz" | "/readyz");
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let Some(state) = state.filter(|_| !exempt) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let client = client_of(&req);
    match state.inflight.admit(client) {
        Ok(permit) => {
            let response = next.call(req).await;
            drop(permit);
            Ok(response?.map_into_left_body())
        }
        Err(refusal) => {
            let (reason, message) = match refusal {
                Refusal::Global(max) => (
                    "inflight_global",
                    format!("this node serves {max} requests already (--max-inflight-requests): retry shortly"),
                ),
                Refusal::Client(max) => (
                    "inflight_client",
                    format!("this client has {max} requests in flight on this node already (--max-inflight-per-client): retry shortly"),
                ),
            };
            state.refusals.count(reason);
            let response = ApiError::too_many_requests(message).error_response();
            let (http, _) = req.into_parts();
            Ok(ServiceResponse::new(http, response).map_into_right_body())
        }
    }
}

/// The body middleware (see the module docs).
pub async fn bodies(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let limit = state.limits.body_limit(req.method(), req.path());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        state.refusals.count("body_too_large");
        let response = ApiError::too_large("body", limit).error_response();
        let (http, _) = req.into_parts();
        return Ok(ServiceResponse::new(http, response).map_into_right_body());
    }
    let inner = req.take_payload();
    let timeout = state.limits.body_timeout;
    let limited = LimitedPayload {
        inner,
        limit,
        read: 0,
        deadline: timeout.map(|t| Box::pin(actix_rt::time::sleep(t))),
        refusals: state.refusals.clone(),
        done: false,
    };
    let boxed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(limited);
    req.set_payload(Payload::from(boxed));
    Ok(next.call(req).await?.map_into_left_body())
}

/// A request body cut at a size limit (then [`PayloadError::Overflow`]) and at a deadline (then
/// an I/O error of kind `TimedOut`).
struct LimitedPayload {
    inner: Payload,
    limit: usize,
    read: usize,
    deadline: Option<Pin<Box<actix_rt::time::Sleep>>>,
    refusals: Refusals,
    done: bool,
}

impl Stream for LimitedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.read = this.read.saturating_add(chunk.len());
                if this.read > this.limit {
                    this.done = true;
                    this.refusals.count("body_too_large");
                    return Poll::Ready(Some(Err(PayloadError::Overflow)));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(other) => {
                this.done = other.is_none();
                Poll::Ready(other)
            }
            Poll::Pending => {
                let expired = this
                    .deadline
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if !expired {
                    return Poll::Pending;
                }
                this.done = true;
                this.refusals.count("body_timeout");
                Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the request body did not arrive in time",
                )))))
            }
        }
    }
}

/// A body deadline from milliseconds (0: none).
pub fn body_timeout_of(ms: u64) -> Option<Duration> {
    (ms != 0).then(|| Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_and_the_node_are_bounded_and_permits_free_their_place() {
        let inflight = Arc::new(Inflight::new(3, 2));
        let a1 = inflight.admit(Some("a".into())).expect("a1");
        let a2 = inflight.admit(Some("a".into())).expect("a2");
        assert_eq!(
            inflight.admit(Some("a".into())).expect_err("a3"),
            Refusal::Client(2)
        );
        let b1 = inflight.admit(Some("b".into())).expect("b1");
        assert_eq!(
            inflight.admit(Some("c".into())).expect_err("full"),
            Refusal::Global(3)
        );
        assert_eq!(inflight.current(), 3);
        drop(a1);
        let a3 = inflight.admit(Some("a".into())).expect("a again");
        drop((a2, a3, b1));
        assert_eq!(inflight.current(), 0);
        assert!(inflight.clients.lock().expect("lock").is_empty());
        let unlimited = Arc::new(Inflight::new(0, 0));
        let many: Vec<Permit> = (0..100)
            .map(|_| unlimited.admit(Some("x".into())).expect("no limit"))
            .collect();
        assert_eq!(unlimited.current(), 100);
        drop(many);
    }

    #[test]
    fn body_limits_follow_the_route() {
        let limits = Limits {
            max_key_bytes: 511,
            max_value_bytes: 1000,
            max_body_bytes: 5000,
            body_timeout: None,
        };
        assert_eq!(limits.body_limit(&Method::PUT, "/v1/kv/a"), 1000);
        assert_eq!(limits.body_limit(&Method::POST, "/v1/kv/a/cas"), 5000);
        assert_eq!(limits.body_limit(&Method::POST, "/v1/txn"), 5000);
        assert_eq!(limits.body_limit(&Method::POST, "/api/command"), 5000);
        assert_eq!(
            limits.body_limit(&Method::POST, "/v1/auth/tokens"),
            SMALL_BODY_BYTES
        );
        assert_eq!(
            limits.body_limit(&Method::GET, "/v1/status"),
            SMALL_BODY_BYTES
        );
    }
}
