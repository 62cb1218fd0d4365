//! `POST /v1/txn`: several operations with optional guards, applied atomically as one log entry.
//!
//! ```json
//! {"guards": [{"key": "a", "expect": "absent"}, {"key": "b", "equals": "1"}],
//!  "ops": [{"op": "put", "key": "a", "value": "x"}, {"op": "delete", "key": "b"}]}
//! ```
//! answers `{"succeeded", "failed_guard", "results", "index", "term"}`: when a guard does not
//! hold, nothing is applied and `failed_guard` is its position.

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::input::{check_key, check_value, json_body, read_body};
use super::kv::write;
#[allow(unused_imports)]
use super::openapi::{ErrorBody, TxnAnswer, TxnRequest};
use super::{ApiError, AppState};
use crate::storage::{
    GuardExpect, KvCommand, KvOutput, TxnGuard, TxnOp, MAX_TXN_GUARDS, MAX_TXN_OPS,
};

/// A guard: `expect` ("absent" or "present") or `equals` (a value), not both.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GuardBody {
    key: String,
    #[serde(default)]
    expect: Option<String>,
    #[serde(default)]
    equals: Option<String>,
}

/// An operation.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
enum OpBody {
    Put { key: String, value: String },
    Delete { key: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TxnBody {
    #[serde(default)]
    guards: Vec<GuardBody>,
    ops: Vec<OpBody>,
}

fn guard(body: GuardBody, state: &AppState) -> Result<TxnGuard, ApiError> {
    check_key(&body.key, &state.limits)?;
    let expect = match (body.expect.as_deref(), body.equals) {
        (Some("absent"), None) => GuardExpect::Absent,
        (Some("present"), None) => GuardExpect::Present,
        (None, Some(value)) => GuardExpect::Equals(Bytes::from(value)),
        _ => {
            return Err(ApiError::bad_request(format!(
                "guard on {:?}: give either `expect`: absent|present, or `equals`: value",
                body.key
            )))
        }
    };
    Ok(TxnGuard {
        key: body.key,
        expect,
    })
}

fn op(body: OpBody, state: &AppState) -> Result<TxnOp, ApiError> {
    Ok(match body {
        OpBody::Put { key, value } => {
            check_key(&key, &state.limits)?;
            check_value(value.as_bytes(), &state.limits)?;
            TxnOp::Put {
                key,
                value: Bytes::from(value),
            }
        }
        OpBody::Delete { key } => {
            check_key(&key, &state.limits)?;
            TxnOp::Delete { key }
        }
    })
}

fn describe_result(output: &KvOutput) -> Value {
    match output {
        KvOutput::Put => json!({"op": "put"}),
        KvOutput::Delete { existed } => json!({"op": "delete", "deleted": existed}),
        _ => {
            json!({"op": "other", "message": "the state machine answered this operation with the output of another kind of command"})
        }
    }
}

/// Applies the transaction through the log.
#[utoipa::path(post, path = "/v1/txn", tag = "kv", params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key apply at most once"), ("redirect" = Option<bool>, Query, description = "On a follower: answer 307 instead of forwarding"), ("replication" = Option<String>, Query, description = "Multi-region: async, semi-sync (wait for the primary region) or sync (every region); default: the region's setting")), request_body = TxnRequest, responses((status = 202, description = "Multi-region: committed here, but the regions the write waited for did not acknowledge it in time (`replication.pending`)", body = TxnAnswer), (status = 200, description = "Committed and applied (succeeded or not)", body = TxnAnswer), (status = 400, description = "Bad input", body = ErrorBody), (status = 409, description = "The idempotency key was already used by another kind of request", body = ErrorBody), (status = 413, description = "Key or value over the limit", body = ErrorBody), (status = 307, description = "On a follower with ?redirect=true: the leader's URL in Location", body = ErrorBody), (status = 503, description = "No leader known (Retry-After)", body = ErrorBody), (status = 504, description = "Outcome unknown", body = ErrorBody)))]
pub async fn txn(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    super::kv::refuse_leader_ack(&req)?;
    let body = read_body(payload, state.limits.max_body_bytes).await?;
    let parsed: TxnBody = json_body(&body)?;
    if parsed.guards.len() > MAX_TXN_GUARDS || parsed.ops.len() > MAX_TXN_OPS {
        return Err(ApiError::bad_request(format!(
            "a transaction holds at most {MAX_TXN_GUARDS} guards and {MAX_TXN_OPS} operations"
        )));
    }
    let guards = parsed
        .guards
        .into_iter()
        .map(|g| guard(g, &state))
        .collect::<Result<_, _>>()?;
    let ops = parsed
        .ops
        .into_iter()
        .map(|o| op(o, &state))
        .collect::<Result<_, _>>()?;
    write(
        &state,
        &req,
        &body,
        KvCommand::Txn { guards, ops },
        |output, write| match output {
            KvOutput::Txn {
                succeeded,
                failed_guard,
                results,
            } => Ok(super::openapi::TxnAnswer {
                succeeded,
                failed_guard,
                results: results.iter().map(describe_result).collect(),
                write,
            }),
            _ => Err(ApiError::unexpected_output("transaction")),
        },
    )
    .await
}
