//! The live dashboard: `GET /` serves one page (plus its stylesheet and script under
//! `/assets/`), embedded in the binary so it works offline. The page polls `/api/status`,
//! `/api/logs` and `/v1/kv` (see [`super::dashboard_api`]) and posts commands to `/api/command`.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use super::error::method_not_allowed;

/// The page.
pub const DASHBOARD_HTML: &str = include_str!("../../assets/dashboard.html");
/// Its stylesheet, served at `/assets/dashboard.css`.
pub const DASHBOARD_CSS: &str = include_str!("../../assets/dashboard.css");
/// Its script, served at `/assets/dashboard.js`.
pub const DASHBOARD_JS: &str = include_str!("../../assets/dashboard.js");

/// The dashboard page (self-contained: its CSS and JS come from this node).
#[utoipa::path(
    get,
    path = "/",
    tag = "dashboard",
    responses(
        (status = 200, description = "The live dashboard (HTML)", content_type = "text/html"),
    ),
)]
pub async fn index() -> HttpResponse {
    serve("text/html; charset=utf-8", DASHBOARD_HTML)
}

/// Registers `GET /`, `GET /assets/dashboard.css` and `GET /assets/dashboard.js`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let asset = |path: &str, content_type: &'static str, body: &'static str| {
        web::resource(path.to_string())
            .route(web::get().to(move || async move { serve(content_type, body) }))
            .route(web::head().to(move || async move { serve(content_type, body) }))
            .default_service(web::to(method_not_allowed))
    };
    cfg.service(
        web::resource("/")
            .route(web::get().to(index))
            .route(web::head().to(index))
            .default_service(web::to(method_not_allowed)),
    )
    .service(asset(
        "/assets/dashboard.css",
        "text/css; charset=utf-8",
        DASHBOARD_CSS,
    ))
    .service(asset(
        "/assets/dashboard.js",
        "text/javascript; charset=utf-8",
        DASHBOARD_JS,
    ));
}

fn serve(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}
