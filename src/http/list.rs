//! `GET /v1/kv?prefix=P&limit=N&after=K`: keys in order, with a continuation key.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::input::check_key;
#[allow(unused_imports)]
use super::openapi::{ErrorBody, ListAnswer, ListItem};
use super::read::{prepare, ReadPlan};
use super::{ApiError, AppState};

/// Default and largest page size.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// Query of the listing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only keys starting with this.
    #[serde(default)]
    prefix: String,
    /// Page size (1..=1000, default 100).
    limit: Option<usize>,
    /// Start after this key (the `next` of the previous page).
    after: Option<String>,
    /// `linearizable` (default), `lease`, `stale` or `all`.
    #[allow(dead_code)]
    consistency: Option<String>,
    /// With `consistency=stale`: refuse when further behind.
    #[allow(dead_code)]
    max_lag: Option<u64>,
    /// Answer 307 on a follower instead of forwarding.
    #[allow(dead_code)]
    redirect: Option<bool>,
    /// Cut values longer than this many bytes (their whole size in `value_size`).
    max_value_bytes: Option<usize>,
}

/// Answers `{"items": [{"key", "value"}...], "next": key|null, "applied": index}`; `next` is set
/// when more keys follow (pass it as `after`). Values that are not UTF-8 come as `value_base64`.
#[utoipa::path(
    get,
    path = "/v1/kv",
    tag = "kv",
    params(
        ("prefix" = Option<String>, Query, description = "Only keys with this prefix"),
        ("limit" = Option<usize>, Query, description = "1 to 1000, default 100"),
        ("after" = Option<String>, Query, description = "Continue after this key"),
        ("consistency" = Option<String>, Query, description = "linearizable (default, alias quorum), lease, stale (alias one) or all"),
        ("max_lag" = Option<u64>, Query, description = "With consistency=stale: refuse (503) when this node is more than this many entries behind the leader"),
        ("redirect" = Option<bool>, Query, description = "On a follower: answer 307 instead of forwarding a linearizable read"),
        ("max_value_bytes" = Option<usize>, Query, description = "Cut values longer than this many bytes; the whole size is in `value_size`. Default: whole values"),
    ),
    responses(
        (status = 200, description = "Keys in order", body = ListAnswer),
        (status = 400, description = "Bad query", body = ErrorBody),
    ),
)]
pub async fn list(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_LIMIT}"
        )));
    }
    if let Some(after) = &query.after {
        check_key(after, &state.limits)?;
    }
    if let ReadPlan::Relayed(response) = prepare(&state, &req).await? {
        return Ok(response);
    }

    let kv = state.kv.clone();
    let page = web::block(move || -> Result<_, crate::storage::StorageError> {
        let rows = kv.scan(&query.prefix, query.after.as_deref(), limit + 1)?;
        Ok((rows, kv.applied_index()?))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| super::read::storage_failure(&state, e))?;
    let (mut rows, applied) = page;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more {
        rows.last().map(|(k, _)| k.clone())
    } else {
        None
    };
    let items = rows
        .into_iter()
        .map(|(key, value)| {
            let value = super::shown_value::shown(Some(&value), query.max_value_bytes);
            ListItem {
                key,
                value: value.text,
                value_base64: value.base64,
                value_size: value.size,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(ListAnswer {
        items,
        next,
        applied,
    }))
}
