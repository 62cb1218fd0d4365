//! `GET /v1/status`: this node's view of the cluster.

use actix_web::{web, HttpResponse};

use super::{ApiError, AppState};

/// Answers the node's id, role, term, leader, commit and applied index (and more).
pub async fn status(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let status = state.node.status().await?;
    Ok(HttpResponse::Ok().json(status))
}
