//! Access control: bearer tokens with roles (`read`, `write`, `admin`) and an optional key
//! prefix, checked by the [`check`] middleware in front of every route.
//!
//! Tokens are static (in the configuration) or replicated: created by an admin over the API
//! (`/v1/auth/tokens`, see [`super::tokens`]) and stored in the state machine as the SHA-256 of
//! their secret. A presented secret is checked against the static tokens first (constant-time
//! compare of each), then looked up by its SHA-256 among the replicated tokens this node has
//! applied; an expired replicated token is refused (401). A follower that has not yet applied a
//! revocation still accepts the revoked token until it does (usually milliseconds).
//!
//! With no static token and no replicated token everything is open (the default, for local use).
//! Otherwise every request needs `Authorization: Bearer <token>`, except `GET`/`HEAD` of
//! `/healthz`, `/readyz` and the dashboard's static files (`/`, `/assets/*`). A missing, unknown or
//! expired token is a 401 (`{"error": "unauthorized"}`, `WWW-Authenticate: Bearer`); a known
//! token whose role is too low, or whose prefix does not cover the keys of the request, is a 403
//! (`{"error": "forbidden"}`).
//!
//! - `read`: `GET`/`HEAD` of `/v1/kv*`, `/v1/status`, `/v1/cluster`, `/v1/log`, `/api/status`,
//!   `/api/logs`, `/metrics`, `/openapi.json`.
//! - `write`: the above, plus `PUT`/`POST`/`DELETE` of `/v1/kv*`, `POST /v1/txn` and
//!   `POST /api/command`.
//! - `admin`: everything (membership, `/v1/admin/*`, leadership transfer, `/v1/auth/*`, unknown
//!   routes).
//!
//! A token with a prefix may only touch keys starting with it: the key of `/v1/kv/{key}`, every
//! key of a transaction, the key of a dashboard command, and the `prefix` query of a listing
//! (which must lie within the token's prefix). Such a token cannot read the replicated log
//! (`/v1/log`, `/api/logs`), which shows every key.
//!
//! Followers forward the caller's `Authorization` header with the requests they hand to the
//! leader, so the leader checks the same token: every node needs the same tokens.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;

pub use super::credentials::{
    constant_time_eq, now_ms, secret_sha256, Access, Lookup, Principal, Tokens,
};
use super::AppState;
use crate::config::TokenRole;

/// What a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Nothing: open to all.
    Open,
    /// A token of at least this role; `keys` says what a prefix must cover.
    Role(TokenRole, Keys),
}

/// The keys a request touches, for prefix-scoped tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keys {
    /// No key data (status, metrics, ...).
    None,
    /// All keys (the log): refused to prefix-scoped tokens.
    All,
    /// One key, from the path.
    Key(String),
    /// A listing: the `prefix` query.
    ListPrefix(String),
    /// The keys of a transaction body.
    TxnBody,
    /// The key of a dashboard command body.
    CommandBody,
}

/// What `method path?query` needs.
pub fn need_of(method: &Method, path: &str, query: &str) -> Need {
    let read = *method == Method::GET || *method == Method::HEAD;
    let role = |r, k| Need::Role(r, k);
    if read && (matches!(path, "/" | "/healthz" | "/readyz") || path.starts_with("/assets/")) {
        return Need::Open;
    }
    if path == "/v1/kv" {
        let prefix = query_param(query, "prefix").unwrap_or_default();
        return if read {
            role(TokenRole::Read, Keys::ListPrefix(prefix))
        } else {
            role(TokenRole::Write, Keys::ListPrefix(prefix))
        };
    }
    if let Some(raw) = super::input::raw_key_in_path(method, path) {
        // As `input::key_of` reads it.
        let key = percent_encoding::percent_decode_str(raw)
            .decode_utf8_lossy()
            .into_owned();
        let r = if read {
            TokenRole::Read
        } else {
            TokenRole::Write
        };
        return role(r, Keys::Key(key));
    }
    if path == "/v1/auth/tokens" || path.starts_with("/v1/auth/") {
        return role(TokenRole::Admin, Keys::None);
    }
    match path {
        "/v1/txn" => role(TokenRole::Write, Keys::TxnBody),
        "/api/command" => role(TokenRole::Write, Keys::CommandBody),
        "/v1/log" | "/api/logs" if read => role(TokenRole::Read, Keys::All),
        "/v1/status" | "/v1/cluster" | "/api/status" | "/metrics" | "/openapi.json" if read => {
            role(TokenRole::Read, Keys::None)
        }
        "/v1/regions" | "/v1/regions/status" | "/v1/conflicts/stats" if read => {
            role(TokenRole::Read, Keys::None)
        }
        // The dashboard's charts show what /metrics does.
        _ if read && path.starts_with("/api/charts/") => role(TokenRole::Read, Keys::None),
        _ => role(TokenRole::Admin, Keys::All),
    }
}

/// The percent-decoded value of `name` in a query string.
fn query_param(query: &str, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded_pairs(query);
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn serde_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    web::Query::<Vec<(String, String)>>::from_query(query)
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

/// The bearer secret of a request, if it has one.
pub fn bearer(req: &ServiceRequest) -> Option<Vec<u8>> {
    let value = req.headers().get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at(value.iter().position(|&b| b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    Some(rest.trim_ascii().to_vec())
}

fn deny(status: StatusCode, message: String) -> HttpResponse {
    let code = if status == StatusCode::UNAUTHORIZED {
        "unauthorized"
    } else {
        "forbidden"
    };
    let mut response = HttpResponse::build(status);
    if status == StatusCode::UNAUTHORIZED {
        response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"raftix\""));
    }
    response.json(super::openapi::ErrorBody {
        error: code.to_string(),
        message,
        leader: None,
    })
}

/// The keys in a transaction body (`guards[].key`, `ops[].key`); `None` when it is not a
/// transaction (the handler answers 400 then).
fn txn_keys(body: &[u8]) -> Option<Vec<String>> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let mut keys = Vec::new();
    for list in ["guards", "ops"] {
        if let Some(items) = value.get(list).and_then(Value::as_array) {
            for item in items {
                keys.push(item.get("key")?.as_str()?.to_string());
            }
        }
    }
    Some(keys)
}

/// Whether `token` may make a request that needs `role` on `keys`; `Err` is the 403 message.
/// `body` is the request body for [`Keys::TxnBody`] and [`Keys::CommandBody`].
pub fn allowed(token: &Principal, role: TokenRole, keys: &Keys, body: &[u8]) -> Result<(), String> {
    if token.role < role {
        return Err(format!(
            "token {:?} has role {}; this needs {}",
            token.name,
            token.role.as_str(),
            role.as_str()
        ));
    }
    let Some(prefix) = token.prefix.as_deref() else {
        return Ok(());
    };
    let outside = |key: &str| {
        Err(format!(
            "token {:?} is limited to keys starting with {prefix:?}; {key:?} is not",
            token.name
        ))
    };
    match keys {
        Keys::None => Ok(()),
        Keys::All => Err(format!(
            "token {:?} is limited to keys starting with {prefix:?}; this route shows every key",
            token.name
        )),
        Keys::Key(key) | Keys::ListPrefix(key) => {
            if key.starts_with(prefix) {
                Ok(())
            } else if matches!(keys, Keys::ListPrefix(_)) {
                Err(format!(
                    "token {:?} is limited to keys starting with {prefix:?}: list with prefix={prefix:?} (or a longer prefix)",
                    token.name
                ))
            } else {
                outside(key)
            }
        }
        Keys::TxnBody => match txn_keys(body) {
            Some(list) => match list.iter().find(|k| !k.starts_with(prefix)) {
                Some(key) => outside(key),
                None => Ok(()),
            },
            None => Ok(()),
        },
        Keys::CommandBody => match super::dashboard_api::command::key_of_body(body) {
            Some(key) if !key.starts_with(prefix) => outside(&key),
            _ => Ok(()),
        },
    }
}

/// What the gateway knows of a request's credentials, worked out once per request (the
/// in-flight limiter needs it before this middleware runs) and kept in its extensions.
#[derive(Debug, Clone)]
pub struct View {
    /// Whether access control is on on this node.
    pub enabled: bool,
    /// The lookup of the bearer secret, when access control is on and the request has one.
    pub lookup: Option<Lookup>,
}

/// The [`View`] of `req` (computed on first use, then taken from the request's extensions).
pub fn view_of(req: &ServiceRequest) -> View {
    if let Some(view) = req.extensions().get::<View>() {
        return view.clone();
    }
    let tokens = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.tokens.clone())
        .unwrap_or_default();
    let enabled = tokens.enabled();
    let lookup = if enabled {
        bearer(req).map(|secret| tokens.find(&secret))
    } else {
        None
    };
    let view = View { enabled, lookup };
    req.extensions_mut().insert(view.clone());
    view
}

/// How the request was let in ([`Access::Off`] or the token), if the middleware let it in as
/// such (open routes with access control on carry neither).
pub fn access_of(req: &actix_web::HttpRequest) -> Option<Access> {
    req.extensions().get::<Access>().cloned()
}

/// The middleware: lets a request through when access control is off, the route is open, or
/// its token allows it; answers 401 or 403 otherwise. Bodies of transactions and dashboard
/// commands are read (to check their keys) and handed on unchanged. Handlers find how the
/// request was let in with [`access_of`].
pub async fn check(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let view = view_of(&req);
    if !view.enabled {
        req.extensions_mut().insert(Access::Off);
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let Need::Role(role, keys) = need_of(req.method(), req.path(), req.query_string()) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let denied = |req: ServiceRequest, status, message| {
        let (http, _) = req.into_parts();
        Ok(ServiceResponse::new(http, deny(status, message)).map_into_right_body())
    };
    let token = match view.lookup {
        Some(Lookup::Found(principal)) => principal,
        Some(Lookup::Expired(name)) => {
            let message = format!("token `{name}` has expired: ask an admin for a new one");
            return denied(req, StatusCode::UNAUTHORIZED, message);
        }
        Some(Lookup::Unknown) | None => {
            let message = if req.headers().contains_key(header::AUTHORIZATION) {
                "unknown token (send Authorization: Bearer <token>)"
            } else {
                "this route needs a token: send Authorization: Bearer <token>"
            };
            return denied(req, StatusCode::UNAUTHORIZED, message.to_string());
        }
    };
    let body = if token.prefix.is_some() && matches!(keys, Keys::TxnBody | Keys::CommandBody) {
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map(|s| s.limits.body_limit(req.method(), req.path()))
            .unwrap_or(1 << 20);
        let mut payload = req.take_payload();
        let mut body = bytes::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = match chunk {
                Ok(chunk) if body.len() + chunk.len() <= limit => chunk,
                Ok(_) => return Err(super::ApiError::too_large("body", limit).into()),
                Err(e) => return Err(super::input::payload_error(e, limit).into()),
            };
            body.extend_from_slice(&chunk);
        }
        let body = body.freeze();
        req.set_payload(actix_web::dev::Payload::from(body.clone()));
        body
    } else {
        Bytes::new()
    };
    match allowed(&token, role, &keys, &body) {
        Ok(()) => {
            req.extensions_mut().insert(Access::Token(token));
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(message) => {
            tracing::debug!(token = %token.name, path = %req.path(), "forbidden: {message}");
            denied(req, StatusCode::FORBIDDEN, message)
        }
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
