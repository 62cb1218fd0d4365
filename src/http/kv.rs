//! `PUT /v1/kv/{key}` and `GET /v1/kv/{key}` on the built-in key-value state machine.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde_json::json;

use super::{ApiError, AppState, MAX_VALUE_BYTES};
use crate::messages::node::ClientError;
use crate::storage::{KvCommand, KvOutput, MAX_KEY_LEN};

fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(ApiError::bad_request(format!(
            "key must be 1 to {MAX_KEY_LEN} bytes"
        )));
    }
    Ok(())
}

/// Writes `key` = body through the log; answers `{"index", "term"}` once committed and applied.
/// A follower redirects (307) to the leader when it knows one, else answers 503.
pub async fn put(
    state: web::Data<AppState>,
    key: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let key = key.into_inner();
    check_key(&key)?;
    let body = read_body(payload, MAX_VALUE_BYTES).await?;
    let command = KvCommand::Put {
        key: key.clone(),
        value: body,
    }
    .encode();
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

/// Reads `key` from this node's applied state: the raw value with `X-Raft-Index` (the applied
/// index it reflects), or a JSON 404.
pub async fn get(
    state: web::Data<AppState>,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = key.into_inner();
    check_key(&key)?;
    let kv = state.kv.clone();
    let lookup = web::block(move || -> Result<_, crate::storage::StorageError> {
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
