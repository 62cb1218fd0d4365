//! Replicated API tokens, managed by admins over the API (role `admin`; a follower hands the
//! writes to the leader like any write):
//!
//! - `POST /v1/auth/tokens {"name", "role", "prefix"?, "expires_in_secs"?}` creates a token and
//!   answers `201 {"name", "role", "prefix", "token", "expires_at"?}`: `token` is the secret,
//!   shown this once (only its SHA-256 is stored and replicated). `409` when the name is taken.
//! - `GET /v1/auth/tokens` lists the tokens (replicated and static) without secrets.
//! - `DELETE /v1/auth/tokens/{name}` revokes a replicated token (`404` if there is none).
//!
//! Secrets are 32 bytes from the operating system's random source, base64url-encoded after the
//! prefix [`SECRET_PREFIX`]. The node that handles the write (the leader) generates the secret
//! before proposing the command: the log, snapshots and `GET /v1/log` see only the hash.
//!
//! **Bootstrap**: while access control is off (no static token, no replicated token), creating
//! the first token needs no token, but only an `admin` token may be created that way (any other
//! would lock everyone out of token management); creating it turns access control on, like
//! `etcd auth enable`. The state machine refuses such a creation if another token appeared
//! meanwhile.

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use bytes::Bytes;
use rand::TryRng;

use super::auth::{access_of, now_ms, secret_sha256, Access};
use super::error::method_not_allowed;
use super::input::{json_body, read_body};
use super::kv::refuse_leader_ack;
#[allow(unused_imports)]
use super::openapi::{ErrorBody, TokenCreated, TokenInfo, TokenList, TokenRequest, TokenRevoked};
use super::read::{prepare, ReadPlan};
use super::write::{propose, Proposed};
use super::{ApiError, AppState};
use crate::config::TokenRole;
use crate::storage::kv_tokens::token_error;
use crate::storage::{KvCommand, KvOutput, StoredToken};

/// Start of every generated secret, so that leaked tokens are recognisable (secret scanners).
pub const SECRET_PREFIX: &str = "rxt_";
/// Random bytes in a secret.
pub const SECRET_BYTES: usize = 32;
/// Longest lifetime accepted (100 years).
const MAX_EXPIRES_IN_SECS: u64 = 100 * 365 * 24 * 3600;
/// Largest body of `POST /v1/auth/tokens`.
const BODY_LIMIT: usize = super::limits::SMALL_BODY_BYTES;

/// Registers the `/v1/auth/tokens` routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/auth/tokens")
            .route(web::post().to(create))
            .route(web::get().to(list))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/auth/tokens/{name}")
            .route(web::delete().to(revoke))
            .default_service(web::to(method_not_allowed)),
    );
}

/// A fresh secret: [`SECRET_PREFIX`] and [`SECRET_BYTES`] random bytes, base64url.
fn new_secret() -> Result<String, ApiError> {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rngs::SysRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| ApiError::internal(format!("no randomness for a secret: {e}")))?;
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    Ok(format!("{SECRET_PREFIX}{encoded}"))
}

/// Creates a token; the answer shows its secret once.
#[utoipa::path(
    post,
    path = "/v1/auth/tokens",
    tag = "auth",
    params(super::doc_vocabulary::RetryOptions),
    request_body = TokenRequest,
    responses(
        (status = 201, description = "Created: the secret is in `token`, shown this once", body = TokenCreated),
        (status = 400, description = "Bad input; or access control is off and the role is not admin (the first token must be an admin token)", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 409, description = "A token of that name exists (or this request was already applied)", body = ErrorBody),
        (status = 503, description = "No leader known (Retry-After)", body = ErrorBody),
    ),
)]
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    refuse_leader_ack(&req)?;
    let body = read_body(payload, BODY_LIMIT).await?;
    let parsed: super::openapi::TokenRequest = json_body(&body)?;
    let role = TokenRole::parse(&parsed.role).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown role {:?}: use read, write or admin",
            parsed.role
        ))
    })?;
    let bootstrap = match access_of(&req) {
        Some(Access::Off) => true,
        Some(Access::Token(_)) => false,
        None => return Err(ApiError::internal("the request was not authenticated")),
    };
    if bootstrap && role != TokenRole::Admin {
        return Err(ApiError::bad_request(
            "access control is off: the first token must have role admin. Creating it turns \
             access control on, and only an admin token can create or revoke tokens, so a \
             first read or write token would lock you out of managing tokens",
        ));
    }
    if state
        .tokens
        .static_tokens()
        .iter()
        .any(|t| t.name == parsed.name)
    {
        return Err(ApiError::conflict(format!(
            "{:?} is the name of a static token (from the configuration): choose another name",
            parsed.name
        )));
    }
    let now = now_ms();
    let expires_at_ms = match parsed.expires_in_secs {
        None => None,
        Some(0) => return Err(ApiError::bad_request("expires_in_secs must be at least 1")),
        Some(s) if s > MAX_EXPIRES_IN_SECS => {
            return Err(ApiError::bad_request(format!(
                "expires_in_secs must be at most {MAX_EXPIRES_IN_SECS} (100 years)"
            )))
        }
        Some(s) => Some(now.saturating_add(s.saturating_mul(1000))),
    };
    let secret = new_secret()?;
    let token = StoredToken {
        role,
        prefix: parsed.prefix.clone(),
        secret_sha256: secret_sha256(secret.as_bytes()),
        created_at_ms: now,
        expires_at_ms,
    };
    if let Some(reason) = token_error(&parsed.name, Some(&token)) {
        return Err(ApiError::bad_request(reason));
    }
    let command = KvCommand::TokenPut {
        name: parsed.name.clone(),
        token,
        bootstrap,
    };
    let (output, duplicate, index) = match propose(&state, &req, &body, command).await? {
        Proposed::Relayed(response) => return Ok(response),
        Proposed::Applied {
            output,
            duplicate,
            index,
        } => (output, duplicate, index),
    };
    match output {
        KvOutput::TokenPut { created: true } if !duplicate => {
            tracing::info!(
                name = %parsed.name,
                role = role.as_str(),
                prefix = ?parsed.prefix,
                bootstrap,
                index,
                "replicated token created"
            );
            Ok(HttpResponse::Created().json(TokenCreated {
                name: parsed.name,
                role: role.as_str().to_string(),
                prefix: parsed.prefix,
                token: secret,
                expires_at: expires_at_ms.map(rfc3339),
                index,
            }))
        }
        KvOutput::TokenPut { created: true } => Err(ApiError::conflict(
            "this request was already applied (same Idempotency-Key): the token was created \
             then, and its secret shown only in that answer. If that answer was lost, revoke \
             the token and create it again",
        )),
        KvOutput::TokenPut { created: false } => Err(ApiError::conflict(format!(
            "a token named {:?} exists already: revoke it first to replace it",
            parsed.name
        ))),
        KvOutput::Rejected { reason } => Err(ApiError::conflict(reason)),
        _ => Err(ApiError::unexpected_output("token change")),
    }
}

/// Revokes a replicated token.
#[utoipa::path(
    delete,
    path = "/v1/auth/tokens/{name}",
    tag = "auth",
    params(
        ("name" = String, Path, description = "The token's name"),
        super::doc_vocabulary::RetryOptions
    ),
    responses(
        (status = 200, description = "Revoked", body = TokenRevoked),
        (status = 400, description = "Malformed token name", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No replicated token of that name", body = ErrorBody),
        (status = 503, description = "No leader known (Retry-After)", body = ErrorBody),
    ),
)]
pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    refuse_leader_ack(&req)?;
    // From the raw path, as `input::key_of` reads keys: decoded exactly once.
    let raw = req
        .uri()
        .path()
        .strip_prefix("/v1/auth/tokens/")
        .unwrap_or_default();
    let name = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ApiError::bad_request("the token name is not valid UTF-8"))?
        .into_owned();
    if let Some(reason) = token_error(&name, None) {
        return Err(ApiError::bad_request(reason));
    }
    let command = KvCommand::TokenDelete { name: name.clone() };
    let (output, index) = match propose(&state, &req, &Bytes::new(), command).await? {
        Proposed::Relayed(response) => return Ok(response),
        Proposed::Applied { output, index, .. } => (output, index),
    };
    match output {
        KvOutput::TokenDelete { existed: true } => {
            tracing::info!(name = %name, index, "replicated token revoked");
            Ok(HttpResponse::Ok().json(TokenRevoked {
                name,
                revoked: true,
                index,
            }))
        }
        KvOutput::TokenDelete { existed: false } => {
            let is_static = state.tokens.static_tokens().iter().any(|t| t.name == name);
            Err(ApiError::not_found(
                "token_not_found",
                if is_static {
                    format!("`{name}` is a static token: remove it from the configuration of every node")
                } else {
                    format!("no replicated token is named `{name}`")
                },
            ))
        }
        KvOutput::Rejected { reason } => Err(ApiError::bad_request(reason)),
        _ => Err(ApiError::unexpected_output("token change")),
    }
}

/// Lists every token without its secret: the replicated ones (as this node applied them, after
/// a linearizable read barrier unless `?consistency=stale`) and this node's static ones.
#[utoipa::path(
    get,
    path = "/v1/auth/tokens",
    tag = "auth",
    params(super::doc_vocabulary::ReadOptions),
    responses(
        (status = 200, description = "The tokens, without secrets", body = TokenList),
        (status = 400, description = "Bad consistency level", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 503, description = "No leader known (Retry-After)", body = ErrorBody),
    ),
)]
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if let ReadPlan::Relayed(response) = prepare(&state, &req).await? {
        return Ok(response);
    }
    let kv = state.kv.clone();
    let replicated = web::block(move || kv.tokens())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let now = now_ms();
    let mut tokens: Vec<TokenInfo> = state
        .tokens
        .static_tokens()
        .iter()
        .map(|t| TokenInfo {
            name: t.name.clone(),
            role: t.role.as_str().to_string(),
            prefix: t.prefix.clone(),
            source: "static".to_string(),
            created_at: None,
            expires_at: None,
            expired: false,
        })
        .collect();
    tokens.extend(replicated.into_iter().map(|(name, t)| TokenInfo {
        name,
        role: t.role.as_str().to_string(),
        prefix: t.prefix.clone(),
        source: "replicated".to_string(),
        created_at: Some(rfc3339(t.created_at_ms)),
        expires_at: t.expires_at_ms.map(rfc3339),
        expired: t.expired_at(now),
    }));
    Ok(HttpResponse::Ok().json(TokenList {
        access_control: state.tokens.enabled(),
        tokens,
    }))
}

/// `2024-05-01T12:00:00Z` for Unix milliseconds (RFC 3339, UTC, whole seconds).
pub fn rfc3339(unix_ms: u64) -> String {
    let formatted = i64::try_from(unix_ms / 1000)
        .ok()
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
    formatted.unwrap_or_else(|| format!("{unix_ms} ms after the Unix epoch"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_999), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn secrets_are_prefixed_random_and_long() {
        let a = new_secret().expect("secret");
        let b = new_secret().expect("secret");
        assert!(a.starts_with(SECRET_PREFIX));
        assert_eq!(a.len(), SECRET_PREFIX.len() + 43);
        assert_ne!(a, b);
    }
}
