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
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[allow(unused_imports)]
use super::doc_vocabulary::{WriteFailures, WriteOptions};
use super::input::{check_key, check_value, json_body, read_body};
use super::kv::write;
#[allow(unused_imports)]
use super::openapi::{ErrorBody, TxnAnswer};
use super::{ApiError, AppState};
use crate::storage::{
    GuardExpect, KvCommand, KvOutput, TxnGuard, TxnOp, MAX_TXN_GUARDS, MAX_TXN_OPS,
};

/// A transaction guard: `expect` (`absent` or `present`) or `equals` (a value), not both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TxnGuardBody {
    /// The key.
    pub key: String,
    /// `absent` or `present`.
    #[serde(default)]
    pub expect: Option<String>,
    /// The value the key must hold.
    #[serde(default)]
    pub equals: Option<String>,
}

/// A transaction operation: `{"op": "put", "key", "value"}` or `{"op": "delete", "key"}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum TxnOpBody {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Remove `key`.
    Delete {
        /// The key.
        key: String,
    },
}

/// Body of `POST /v1/txn`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TxnRequest {
    /// Conditions that must all hold (at most 128).
    #[serde(default)]
    pub guards: Vec<TxnGuardBody>,
    /// Operations applied in order when they do (at most 128).
    pub ops: Vec<TxnOpBody>,
}

/// The result of one operation of a transaction that succeeded.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum TxnResult {
    /// The key was set.
    Put,
    /// The key was removed (`deleted`: whether it existed).
    Delete {
        /// Whether the key existed.
        deleted: bool,
    },
    /// The state machine answered with the output of another kind of command.
    Other {
        /// What happened, in words.
        message: String,
    },
}

fn guard(body: TxnGuardBody, state: &AppState) -> Result<TxnGuard, ApiError> {
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

fn op(body: TxnOpBody, state: &AppState) -> Result<TxnOp, ApiError> {
    Ok(match body {
        TxnOpBody::Put { key, value } => {
            check_key(&key, &state.limits)?;
            check_value(value.as_bytes(), &state.limits)?;
            TxnOp::Put {
                key,
                value: Bytes::from(value),
            }
        }
        TxnOpBody::Delete { key } => {
            check_key(&key, &state.limits)?;
            TxnOp::Delete { key }
        }
    })
}

fn describe_result(output: &KvOutput) -> TxnResult {
    match output {
        KvOutput::Put => TxnResult::Put,
        KvOutput::Delete { existed } => TxnResult::Delete { deleted: *existed },
        _ => TxnResult::Other {
            message: "the state machine answered this operation with the output of another kind of command".into(),
        },
    }
}

/// Applies the transaction through the log.
#[utoipa::path(
    post,
    path = "/v1/txn",
    tag = "kv",
    params(WriteOptions),
    request_body = TxnRequest,
    responses(
        (status = 202, description = "Multi-region: committed here, but the regions the write waited for did not acknowledge it in time (`replication.pending`)", body = TxnAnswer),
        (status = 200, description = "Committed and applied (succeeded or not)", body = TxnAnswer),
        WriteFailures,
    ),
)]
pub async fn txn(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    super::kv::refuse_leader_ack(&req)?;
    let body = read_body(payload, state.limits.max_body_bytes).await?;
    let parsed: TxnRequest = json_body(&body)?;
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
