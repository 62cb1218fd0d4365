//! The REST gateway (actix-web), served by every node. This module holds the routes the core
//! needs to be driven and tested: `PUT`/`GET /v1/kv/{key}` and `GET /v1/status`.
//! Every error answer is JSON: `{"error": "<code>", "message": "...", "leader": ...}`.

mod error;
mod kv;
mod status;

use actix_web::web;

pub use error::ApiError;

use crate::actors::RaftHandle;
use crate::storage::KvReader;

/// Largest value accepted by `PUT /v1/kv/{key}`, in bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The local node.
    pub node: RaftHandle,
    /// Reads of the local key-value state.
    pub kv: KvReader,
}

/// Registers every route on an actix-web app.
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(state))
            .service(
                web::resource("/v1/kv/{key}")
                    .route(web::put().to(kv::put))
                    .route(web::get().to(kv::get))
                    .route(web::head().to(kv::get))
                    .default_service(web::to(error::method_not_allowed)),
            )
            .service(
                web::resource("/v1/status")
                    .route(web::get().to(status::status))
                    .default_service(web::to(error::method_not_allowed)),
            )
            .default_service(web::to(error::not_found));
    }
}
