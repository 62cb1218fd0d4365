//! `POST /v1/cluster/transfer-leader {"to": id}` (or `{}` for the most up-to-date voter): the
//! leader brings the target up to date, sends it TimeoutNow and refuses writes meanwhile; the
//! answer names the new leader once it took office. A follower hands the request to the leader.

use actix_web::{web, HttpRequest, HttpResponse};

use super::input::{json_body, read_body};
use super::openapi::{ErrorBody, TransferAnswer, TransferRequest};
use super::write::{client_of, to_leader};
use super::{ApiError, AppState};
use crate::messages::node::ClientError;

/// Hands leadership over.
#[utoipa::path(
    post,
    path = "/v1/cluster/transfer-leader",
    tag = "cluster",
    params(super::doc_vocabulary::RedirectOption),
    request_body = TransferRequest,
    responses(
        (status = 200, description = "The new leader took office", body = TransferAnswer),
        (status = 400, description = "Unknown target", body = ErrorBody),
        (status = 503, description = "The transfer did not complete", body = ErrorBody),
    ),
)]
pub async fn transfer_leader(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, 4096).await?;
    let parsed: TransferRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TransferRequest::default()
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
            Ok(HttpResponse::Ok().json(TransferAnswer { leader, term }))
        }
        Err(ClientError::NotLeader {
            leader_id,
            leader_addr: Some(addr),
            ..
        }) => {
            let client = client_of(&req);
            to_leader(&state, &client, &req, &body, leader_id, addr).await
        }
        Err(err) => Err(err.into()),
    }
}
