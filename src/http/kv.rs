//! Single-key routes on the built-in key-value store: `PUT`, `GET`, `DELETE /v1/kv/{key}` and
//! `POST /v1/kv/{key}/cas`.

use crate::messages::node::Ack;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;

#[allow(unused_imports)]
use super::doc_vocabulary::{KeyPath, WriteFailures, WriteOptions};
use super::input::{check_value, json_body, key_of, read_body};
#[allow(unused_imports)]
use super::openapi::{CasAnswer, CasRequest, DeleteAnswer, ErrorBody, WriteAnswer};
use super::read::{prepare, ReadPlan};
use super::regions_schema::SiblingsAnswer;
use super::write::{submit_request, Submitted};
use super::{ApiError, AppState};
use crate::storage::{KvCommand, KvOutput, MAX_REQUEST_ID_LEN};

/// The `ack` query parameter of a write: `quorum` (default), `all` or `leader`.
pub fn ack_of(req: &HttpRequest) -> Result<Ack, ApiError> {
    let value = req
        .query_string()
        .split('&')
        .find_map(|pair| pair.strip_prefix("ack="));
    match value {
        None | Some("quorum") => Ok(Ack::Quorum),
        Some("all") => Ok(Ack::All),
        Some("leader") | Some("one") => Ok(Ack::Leader),
        Some(other) => Err(ApiError::bad_request(format!(
            "unknown ack {other:?}: use quorum, all or leader"
        ))),
    }
}

/// `ack=leader` answers before the state machine runs the command, so commands whose answer
/// is their result (CAS, transactions) refuse it.
pub fn refuse_leader_ack(req: &HttpRequest) -> Result<(), ApiError> {
    if ack_of(req)? == Ack::Leader {
        return Err(ApiError::bad_request(
            "ack=leader answers before the command runs: not available for CAS or transactions",
        ));
    }
    Ok(())
}

/// Header naming a client's idempotency key: a retried write with the same key is applied at
/// most once, and the retry returns the first result.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Alternative to [`IDEMPOTENCY_KEY`]: a client id and a per-client sequence number.
pub const CLIENT_ID: &str = "x-raftix-client";
/// Sequence number going with [`CLIENT_ID`].
pub const CLIENT_SEQ: &str = "x-raftix-seq";

/// The request id a write carries, from `Idempotency-Key` or `X-Raftix-Client` + `X-Raftix-Seq`.
pub(super) fn request_id(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let header = |name| {
        req.headers()
            .get(name)
            .map(|v| {
                v.to_str()
                    .map_err(|_| ApiError::bad_request(format!("the {name} header is not ASCII")))
            })
            .transpose()
    };
    let id = match (
        header(IDEMPOTENCY_KEY)?,
        header(CLIENT_ID)?,
        header(CLIENT_SEQ)?,
    ) {
        (Some(key), _, _) => Some(key.to_string()),
        (None, Some(client), Some(seq)) => {
            let seq: u64 = seq
                .parse()
                .map_err(|_| ApiError::bad_request(format!("{CLIENT_SEQ} must be a number")))?;
            Some(format!("{client}:{seq}"))
        }
        (None, Some(_), None) | (None, None, Some(_)) => {
            return Err(ApiError::bad_request(format!(
                "{CLIENT_ID} and {CLIENT_SEQ} go together"
            )));
        }
        (None, None, None) => None,
    };
    if let Some(id) = &id {
        if id.is_empty() || id.len() > MAX_REQUEST_ID_LEN {
            return Err(ApiError::bad_request(format!(
                "the request id must be 1 to {MAX_REQUEST_ID_LEN} bytes"
            )));
        }
    }
    Ok(id)
}

/// Submits `command` (as a request carrying the client's idempotency key, if any); on this node
/// (the leader) decodes the output and shapes the answer. A retry of an already applied request
/// answers the first result with `"duplicate": true` and the index it was first applied at.
pub(super) async fn write<A: serde::Serialize>(
    state: &AppState,
    req: &HttpRequest,
    body: &Bytes,
    command: KvCommand,
    answer: impl FnOnce(KvOutput, WriteAnswer) -> Result<A, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let ack = ack_of(req)?;
    super::region_wait::check_mode(req)?;
    match submit_request(state, req, body, command, ack).await? {
        Submitted::Relayed(response) => Ok(response),
        Submitted::Durable(log_id) => {
            // Durable on the leader only: no state machine output yet.
            Ok(HttpResponse::Ok().json(WriteAnswer {
                index: log_id.index,
                term: log_id.term,
                duplicate: None,
                replication: None,
                ack: Some("leader"),
            }))
        }
        Submitted::Applied { response, log_id } => {
            if let KvOutput::Rejected { reason } = response.output {
                return Err(ApiError::bad_request(reason));
            }
            let mut committed = WriteAnswer {
                index: if response.duplicate {
                    response.first_index
                } else {
                    log_id.index
                },
                term: log_id.term,
                duplicate: response.duplicate.then_some(true),
                replication: None,
                ack: None,
            };
            let mut complete = true;
            if let Some(regions) = super::region_wait::wait(state, req).await? {
                complete = regions.complete;
                committed.replication = Some(regions.outcome);
            }
            let body = answer(response.output, committed)?;
            Ok(if complete {
                HttpResponse::Ok().json(body)
            } else {
                HttpResponse::Accepted().json(body)
            })
        }
    }
}

/// `PUT /v1/kv/{key}` (raw body): `200 {"index", "term"}` once committed and applied.
#[utoipa::path(
    put,
    path = "/v1/kv/{key}",
    tag = "kv",
    params(KeyPath, WriteOptions),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The value"),
    responses(
        (status = 202, description = "Multi-region: committed here, but the regions the write waited for did not acknowledge it in time (`replication.pending`)", body = WriteAnswer),
        (status = 200, description = "Committed and applied", body = WriteAnswer),
        WriteFailures,
    ),
)]
pub async fn put(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let key = key_of(&req, &state.limits)?;
    let body = read_body(payload, state.limits.max_value_bytes).await?;
    let command = KvCommand::Put {
        key,
        value: body.clone(),
    };
    write(&state, &req, &body, command, |_, committed| Ok(committed)).await
}

/// `DELETE /v1/kv/{key}`: `200 {"deleted": bool, "index", "term"}`.
#[utoipa::path(
    delete,
    path = "/v1/kv/{key}",
    tag = "kv",
    params(KeyPath, WriteOptions),
    responses(
        (status = 202, description = "Multi-region: committed here, but the regions the write waited for did not acknowledge it in time (`replication.pending`)", body = DeleteAnswer),
        (status = 200, description = "Committed and applied", body = DeleteAnswer),
        WriteFailures,
    ),
)]
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let key = key_of(&req, &state.limits)?;
    let body = Bytes::new();
    write(
        &state,
        &req,
        &body,
        KvCommand::Delete { key },
        |output, write| match output {
            KvOutput::Delete { existed } => Ok(DeleteAnswer {
                deleted: existed,
                write,
            }),
            _ => Err(ApiError::unexpected_output("delete")),
        },
    )
    .await
}

/// `POST /v1/kv/{key}/cas` with `{"expected": string|null, "value": string|null}`:
/// `200 {"swapped", "current", "index", "term"}`; `current` is the value after the operation
/// (`null` when absent; a value that is not UTF-8 comes as `current_base64`).
#[utoipa::path(
    post,
    path = "/v1/kv/{key}/cas",
    tag = "kv",
    params(KeyPath, WriteOptions),
    request_body = CasRequest,
    responses(
        (status = 202, description = "Multi-region: committed here, but the regions the write waited for did not acknowledge it in time (`replication.pending`)", body = CasAnswer),
        (status = 200, description = "Committed and applied", body = CasAnswer),
        WriteFailures,
    ),
)]
pub async fn cas(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let key = key_of(&req, &state.limits)?;
    refuse_leader_ack(&req)?;
    let body = read_body(payload, state.limits.max_body_bytes).await?;
    let cas: CasRequest = json_body(&body)?;
    if let Some(value) = &cas.value {
        check_value(value.as_bytes(), &state.limits)?;
    }
    let command = KvCommand::Cas {
        key,
        expected: cas.expected.map(Bytes::from),
        value: cas.value.map(Bytes::from),
    };
    write(&state, &req, &body, command, |output, write| match output {
        KvOutput::Cas { swapped, current } => {
            let (current, current_base64) = super::text_and_base64(current.as_deref());
            Ok(CasAnswer {
                swapped,
                current,
                current_base64,
                write,
            })
        }
        _ => Err(ApiError::unexpected_output("compare-and-set")),
    })
    .await
}

/// `GET /v1/kv/{key}`: the raw value from this node's applied state, with `X-Raft-Index` (the
/// applied index it reflects); a JSON 404 when absent.
#[utoipa::path(
    get,
    path = "/v1/kv/{key}",
    tag = "kv",
    params(
        KeyPath,
        ("consistency" = Option<String>, Query, description = "linearizable (default, alias quorum): reflects every write acknowledged before the read; stale (alias one): this node's applied state at once"),
        ("max_lag" = Option<u64>, Query, description = "With consistency=stale: refuse (503) when this node is more than this many entries behind the leader"),
        ("redirect" = Option<bool>, Query, description = "On a follower: answer 307 instead of forwarding a linearizable read"),
        ("siblings" = Option<bool>, Query, description = "Multi-region: answer every version of the key as JSON (siblings of a multi-value conflict)"),
    ),
    responses(
        (status = 200, description = "The raw value; X-Raft-Index is the applied index it reflects, X-Raftix-Siblings the number of siblings when the key holds several (the value shown is one of them); with ?siblings=true, JSON", content((Vec<u8> = "application/octet-stream"), (SiblingsAnswer = "application/json"))),
        (status = 404, description = "No such key", body = ErrorBody),
        (status = 400, description = "Bad key", body = ErrorBody),
    ),
)]
pub async fn get(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let key = key_of(&req, &state.limits)?;
    let lag = match prepare(&state, &req).await? {
        ReadPlan::Relayed(response) => return Ok(response),
        ReadPlan::Local { lag } => lag,
    };
    let versions = super::region_versions::versions_of(&state, &key).await?;
    if super::input::query_flag(&req, "siblings") {
        return super::region_versions::siblings_answer(&key, versions);
    }
    let siblings = versions.filter(crate::regions::Versions::has_siblings);
    let (value, applied, key) = super::read::read_local(&state, key).await?;
    let count = siblings.as_ref().map_or(0, |s| s.siblings.len());
    match value {
        Some(value) if count > 1 => Ok(HttpResponse::Ok()
            .insert_header(("X-Raftix-Siblings", count.to_string()))
            .insert_header(("X-Raft-Index", applied.to_string()))
            .content_type("application/octet-stream")
            .body(value)),
        Some(value) => Ok(HttpResponse::Ok()
            .insert_header(("X-Raft-Index", applied.to_string()))
            .insert_header((
                "X-Raft-Lag",
                lag.map(|l| l.to_string()).unwrap_or_else(|| "0".into()),
            ))
            .content_type("application/octet-stream")
            .body(value)),
        None => Err(ApiError::not_found(
            "key_not_found",
            format!("key `{key}` not found"),
        )),
    }
}
