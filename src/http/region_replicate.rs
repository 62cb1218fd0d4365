//! `POST /v1/regions/replicate`: a batch of mutations shipped from another region (or, empty,
//! its heartbeat), applied here through the log exactly once and in order.

use actix_web::{web, HttpRequest, HttpResponse};

use super::doc_vocabulary::{AuthFailures, ForwardedWriteFailures, RetryOptions};
use super::input::read_body;
use super::openapi::ErrorBody;
use super::regions::{not_applied, regions_state};
use super::regions_schema::ReplicateAnswer;
use super::write::{propose, Proposed};
use super::{ApiError, AppState};
use crate::region_shipping::ReplicateBatch;
use crate::storage::kv_regions::MAX_REMOTE_BATCH;
use crate::storage::{KvCommand, KvOutput};

/// Applies a batch from another region.
#[utoipa::path(
    post,
    path = "/v1/regions/replicate",
    tag = "regions",
    params(RetryOptions),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "A bincode ReplicateBatch (between regions)"),
    responses(
        (status = 200, description = "Applied: the last sequence of the sender applied here", body = ReplicateAnswer),
        (status = 404, description = "The sender is not a registered region", body = ErrorBody),
        (status = 400, description = "Bad input", body = ErrorBody),
        ForwardedWriteFailures,
        AuthFailures,
    ),
)]
pub async fn replicate(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, state.limits.max_body_bytes).await?;
    let config = bincode::config::standard().with_limit::<{ 64 << 20 }>();
    let (batch, used): (ReplicateBatch, usize) =
        bincode::serde::decode_from_slice(&body, config)
            .map_err(|e| ApiError::bad_request(format!("not a replication batch: {e}")))?;
    if used != body.len() {
        return Err(ApiError::bad_request("trailing bytes after the batch"));
    }
    if state.region.as_deref() != Some(batch.to.as_str()) {
        let here = state.region.as_deref().unwrap_or("(none: no --region)");
        return Err(ApiError::bad_request(format!(
            "this is region `{here}`, the batch is for region `{}`",
            batch.to
        )));
    }
    if batch.mutations.len() > MAX_REMOTE_BATCH {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_REMOTE_BATCH} mutations per batch"
        )));
    }
    if batch.mutations.is_empty() {
        // A heartbeat: answer what this node applied of the sender's outbox.
        let regions = regions_state(&state).await?;
        let Some(remote) = regions.remotes.get(&batch.from) else {
            return Err(ApiError::not_found(
                "region_not_found",
                format!("no region `{}` is registered here", batch.from),
            ));
        };
        return Ok(HttpResponse::Ok().json(ReplicateAnswer {
            applied: remote.applied,
        }));
    }
    let command = KvCommand::RegionApply {
        from: batch.from,
        after: batch.after,
        mutations: batch.mutations,
    };
    match propose(&state, &req, &body, command).await? {
        Proposed::Relayed(response) => Ok(response),
        Proposed::Applied {
            output: KvOutput::RegionApplied { applied },
            ..
        } => Ok(HttpResponse::Ok().json(ReplicateAnswer { applied })),
        Proposed::Applied {
            output,
            duplicate,
            index,
        } => Err(not_applied(output, duplicate, index)),
    }
}
