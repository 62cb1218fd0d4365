//! Reading client input strictly: keys from the path, bodies with a size limit, JSON with clear
//! 400s. Nothing here panics on input, and nothing is silently altered.

use actix_web::error::PayloadError;
use actix_web::{web, HttpRequest};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde::de::DeserializeOwned;

use super::{ApiError, Limits};

/// The raw (still percent-encoded) key of a `/v1/kv/{key}` path: everything after `/v1/kv/`,
/// less a trailing `/cas` on a POST (the compare-and-swap route; every other method on a path
/// ending in `/cas` is about the key of that name). `None` for other paths.
pub fn raw_key_in_path<'p>(method: &actix_web::http::Method, path: &'p str) -> Option<&'p str> {
    let raw = path.strip_prefix("/v1/kv/")?;
    if method == actix_web::http::Method::POST {
        return Some(raw.strip_suffix("/cas").unwrap_or(raw));
    }
    Some(raw)
}

/// The key in `/v1/kv/{key}` (and `POST /v1/kv/{key}/cas`), percent-decoded strictly: UTF-8
/// text of 1 to `limits.max_key_bytes` bytes. Keys may hold `/`. Invalid UTF-8 or an empty key
/// is a 400, a key over the limit a 413.
pub fn key_of(req: &HttpRequest, limits: &Limits) -> Result<String, ApiError> {
    let raw = raw_key_in_path(req.method(), req.uri().path()).unwrap_or_default();
    let key = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ApiError::bad_request("the key is not valid UTF-8 once percent-decoded"))?;
    check_key(&key, limits)?;
    Ok(key.into_owned())
}

/// A key given in a body or query: same rules as in the path.
pub fn check_key(key: &str, limits: &Limits) -> Result<(), ApiError> {
    if key.is_empty() {
        return Err(ApiError::bad_request("the key is empty"));
    }
    if key.len() > limits.max_key_bytes {
        return Err(ApiError::too_large("key", limits.max_key_bytes));
    }
    Ok(())
}

/// A value: at most `limits.max_value_bytes`.
pub fn check_value(value: &[u8], limits: &Limits) -> Result<(), ApiError> {
    if value.len() > limits.max_value_bytes {
        return Err(ApiError::too_large("value", limits.max_value_bytes));
    }
    Ok(())
}

/// What a failure to read a body of at most `limit` bytes means for the client: 413 when it
/// went over the limit, 408 when it did not arrive in time, 400 otherwise.
pub fn payload_error(err: PayloadError, limit: usize) -> ApiError {
    match err {
        PayloadError::Overflow => ApiError::too_large("body", limit),
        PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            ApiError::request_timeout(format!(
                "the body did not arrive in time: {e} (see --client-body-timeout-ms)"
            ))
        }
        other => ApiError::bad_request(format!("cannot read the body: {other}")),
    }
}

/// Reads a request body of at most `limit` bytes; a larger one is a JSON 413, one that does not
/// arrive in time a JSON 408 (see [`super::limits`]).
pub async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Bytes, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| payload_error(e, limit))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::too_large("body", limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Parses a JSON body; malformed JSON or the wrong shape is a 400 naming the problem.
pub fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// Whether the query string holds `name=true` (or `name=1`, or a bare `name`).
pub fn query_flag(req: &HttpRequest, name: &str) -> bool {
    req.query_string().split('&').any(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, "true"));
        k == name && matches!(v, "true" | "1" | "")
    })
}

/// The percent-decoded value of `name` in the query string, if present.
pub fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    req.query_string().split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}
