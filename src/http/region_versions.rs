//! The versions a region keeps of each key while it replicates to others: read for `GET
//! /v1/kv/{key}` (the sibling count) and answered whole with `?siblings=true`.

use actix_web::{web, HttpResponse};

use super::regions_schema::{SiblingBody, SiblingsAnswer};
use super::{ApiError, AppState};

/// The region versions of `key` (kept while the region replicates to others).
pub async fn versions_of(
    state: &AppState,
    key: &str,
) -> Result<Option<crate::regions::Versions>, ApiError> {
    let kv = state.kv.clone();
    let key = key.to_string();
    web::block(move || kv.versions(&key))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `GET /v1/kv/{key}?siblings=true`: every version of the key, one per sibling (one without a
/// conflict; none when the key was never written while the region replicated).
pub fn siblings_answer(
    key: &str,
    versions: Option<crate::regions::Versions>,
) -> Result<HttpResponse, ApiError> {
    let siblings = versions
        .map(|v| v.siblings)
        .unwrap_or_default()
        .into_iter()
        .map(|v| {
            let (value, value_base64) = super::text_and_base64(v.value.as_deref());
            SiblingBody {
                origin: v.origin,
                hlc: format!("{}.{}", v.hlc.physical_ms, v.hlc.logical),
                deleted: v.value.is_none(),
                value,
                value_base64,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(SiblingsAnswer {
        key: key.to_string(),
        siblings,
    }))
}
