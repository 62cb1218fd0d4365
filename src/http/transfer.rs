//! `POST /v1/cluster/transfer-leader {"to": id}` (or `{}` for the most up-to-date voter): the
//! leader brings the target up to date, sends it TimeoutNow and refuses writes meanwhile; the
//! answer names the new leader once it took office. A follower hands the request to the leader.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::input::{json_body, read_body};
use super::write::{client_of, to_leader};
use super::{ApiError, AppState};
use crate::messages::node::ClientError;

/// Body of the request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    #[serde(default)]
    to: Option<u64>,
}

/// Hands leadership over.
#[utoipa::path(post, path = "/v1/cluster/transfer-leader", tag = "cluster", request_body(content = String, description = "`{\"to\": id}`, or `{}` for the most up-to-date voter", content_type = "application/json"), responses((status = 200, description = "{leader, term}: the new leader took office"), (status = 400, description = "Unknown target", body = super::openapi::ErrorBody), (status = 503, description = "The transfer did not complete", body = super::openapi::ErrorBody)))]
pub async fn transfer_leader(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, 4096).await?;
    let parsed: TransferBody = if body.iter().all(u8::is_ascii_whitespace) {
        TransferBody::default()
    } else {
        json_body(&body)?
    };
    match state.node.transfer_leader(parsed.to).await {
        Ok(leader) => {
            let term = state
                .node
                .status()
                .await
                .map(|s| s.term)
                .unwrap_or_default();
            Ok(HttpResponse::Ok().json(json!({ "leader": leader, "term": term })))
        }
        Err(ClientError::NotLeader {
            leader_id,
            leader_addr: Some(addr),
        }) => {
            let client = client_of(&req);
            to_leader(&state, &client, &req, &body, leader_id, addr).await
        }
        Err(err) => Err(err.into()),
    }
}
