//! `PUT /v1/kv/{key}` and `GET /v1/kv/{key}` on the built-in key-value state machine.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde_json::json;

use super::{ApiError, AppState, MAX_VALUE_BYTES};
use crate::messages::node::ClientError;
use crate::storage::{KvCommand, KvOutput, StorageError, MAX_KEY_LEN};

/// The `{key}` path segment, percent-decoded strictly: keys are UTF-8 text of 1 to
/// `MAX_KEY_LEN` bytes, and anything else is a 400 (never a silently altered key).
fn key_of(req: &HttpRequest) -> Result<String, ApiError> {
    let raw = req.uri().path().strip_prefix("/v1/kv/").unwrap_or_default();
    let key = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ApiError::bad_request("the key is not valid UTF-8 once percent-decoded"))?;
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(ApiError::bad_request(format!(
            "key must be 1 to {MAX_KEY_LEN} bytes"
        )));
    }
    Ok(key.into_owned())
}

/// Reads a request body of at most `limit` bytes; a larger one is a JSON 413.
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Bytes, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("cannot read body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Writes `key` = body through the log; answers `{"index", "term"}` once committed and applied.
/// A follower redirects (307) to the leader when it knows one, else answers 503.
pub async fn put(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let key = key_of(&req)?;
    let body = read_body(payload, MAX_VALUE_BYTES).await?;
    let command = KvCommand::Put { key, value: body }.encode();
    match state.node.submit(command).await {
        Ok(done) => match KvOutput::decode(&done.output) {
            Ok(KvOutput::Rejected { reason }) => Err(ApiError::bad_request(reason)),
            _ => Ok(HttpResponse::Ok()
                .json(json!({"index": done.log_id.index, "term": done.log_id.term}))),
        },
        Err(ClientError::NotLeader {
            leader_id,
            leader_addr: Some(addr),
        }) => {
            let location = format!("http://{addr}{}", req.uri());
            let err = ApiError::from(ClientError::NotLeader {
                leader_id,
                leader_addr: Some(addr),
            });
            let mut response = actix_web::ResponseError::error_response(&err);
            if let Ok(value) = header::HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            Ok(response)
        }
        Err(other) => Err(other.into()),
    }
}

/// Reads `key` from this node's applied state: the raw value with `X-Raft-Index` (the applied
/// index it reflects), or a JSON 404.
pub async fn get(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let key = key_of(&req)?;
    let kv = state.kv.clone();
    let lookup = web::block(move || -> Result<_, StorageError> {
        Ok((kv.get(&key)?, kv.applied_index()?, key))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let (value, applied, key) = lookup.map_err(|e| ApiError::internal(e.to_string()))?;
    match value {
        Some(value) => Ok(HttpResponse::Ok()
            .insert_header(("X-Raft-Index", applied.to_string()))
            .content_type("application/octet-stream")
            .body(value)),
        None => Err(ApiError::not_found(
            "key_not_found",
            format!("key {key:?} not found"),
        )),
    }
}
