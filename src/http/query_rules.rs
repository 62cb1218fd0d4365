//! Unknown query parameters are refused (400), on every route: `?consistancy=stale` must not
//! quietly answer a linearizable read. The parameters a route accepts are the ones the OpenAPI
//! document declares for it, so the document stays the one list (a test checks that the
//! router and the document name the same routes).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::ResponseError;
use serde_json::Value;
use utoipa::OpenApi;

use super::openapi::ApiDoc;
use super::ApiError;

/// One documented operation: its method, its path template split into segments, and the
/// query parameters it declares.
#[derive(Debug)]
struct Rule {
    method: String,
    segments: Vec<String>,
    allowed: BTreeSet<String>,
}

/// Every documented operation, most literal segments first (so `/v1/kv/{key}/cas` is tried
/// before `/v1/kv/{key}`).
fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        rules_of(&doc)
    })
}

fn rules_of(doc: &Value) -> Vec<Rule> {
    let mut rules = Vec::new();
    let Some(paths) = doc["paths"].as_object() else {
        return rules;
    };
    for (path, item) in paths {
        let Some(operations) = item.as_object() else {
            continue;
        };
        for (method, operation) in operations {
            let allowed = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect();
            rules.push(Rule {
                method: method.to_ascii_uppercase(),
                segments: path.split('/').map(str::to_string).collect(),
                allowed,
            });
        }
    }
    let literal = |r: &Rule| r.segments.iter().filter(|s| !s.starts_with('{')).count();
    rules.sort_by_key(|r| std::cmp::Reverse(literal(r)));
    rules
}

/// Whether `path` fits `template`: `{key}` takes one or more segments (keys hold `/`), any
/// other `{name}` exactly one.
fn fits(template: &[String], path: &[&str]) -> bool {
    match template.iter().position(|s| s == "{key}") {
        None => {
            template.len() == path.len()
                && template.iter().zip(path).all(|(t, p)| segment_fits(t, p))
        }
        Some(at) => {
            let after = template.len() - at - 1;
            path.len() > at + after
                && template[..at]
                    .iter()
                    .zip(path)
                    .all(|(t, p)| segment_fits(t, p))
                && template[at + 1..]
                    .iter()
                    .zip(&path[path.len() - after..])
                    .all(|(t, p)| segment_fits(t, p))
        }
    }
}

fn segment_fits(template: &str, segment: &str) -> bool {
    template == segment || (template.starts_with('{') && !segment.is_empty())
}

/// The query parameter names of a request that its route does not declare; `None` when the
/// route is not documented (the router answers it: 404 or 405).
fn unknown_parameters(method: &str, path: &str, query: &str) -> Option<Vec<String>> {
    let method = if method == "HEAD" { "GET" } else { method };
    let segments: Vec<&str> = path.split('/').collect();
    let rule = rules()
        .iter()
        .find(|r| r.method == method && fits(&r.segments, &segments))?;
    let unknown: Vec<String> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let name = pair.split('=').next().unwrap_or_default().replace('+', " ");
            percent_encoding::percent_decode_str(&name)
                .decode_utf8_lossy()
                .into_owned()
        })
        .filter(|name| !rule.allowed.contains(name))
        .collect();
    Some(unknown)
}

/// Middleware: a request with a query parameter its route does not declare is a 400 naming it
/// and the ones the route takes.
pub async fn reject_unknown(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let unknown = unknown_parameters(req.method().as_str(), req.path(), req.query_string());
    let Some(first) = unknown.as_ref().and_then(|u| u.first()) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let allowed = allowed_for(req.method().as_str(), req.path());
    let message = if allowed.is_empty() {
        format!(
            "unknown query parameter `{first}`: {} takes none",
            req.path()
        )
    } else {
        format!(
            "unknown query parameter `{first}`: this route takes {}",
            allowed
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let response = ApiError::bad_request(message).error_response();
    let (http, _) = req.into_parts();
    Ok(ServiceResponse::new(http, response).map_into_right_body())
}

fn allowed_for(method: &str, path: &str) -> Vec<String> {
    let method = if method == "HEAD" { "GET" } else { method };
    let segments: Vec<&str> = path.split('/').collect();
    rules()
        .iter()
        .find(|r| r.method == method && fits(&r.segments, &segments))
        .map(|r| r.allowed.iter().cloned().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_parameters_pass_and_others_are_named() {
        assert_eq!(
            unknown_parameters("GET", "/v1/kv/user/1", "consistency=stale"),
            Some(vec![])
        );
        assert_eq!(
            unknown_parameters("GET", "/v1/kv/user/1", "consistancy=stale"),
            Some(vec!["consistancy".to_string()])
        );
        assert_eq!(
            unknown_parameters("HEAD", "/v1/kv/a", "consistency=stale&x=1"),
            Some(vec!["x".to_string()])
        );
        assert_eq!(
            unknown_parameters("PUT", "/v1/kv/a/b/c", "ack=all&wait=1"),
            Some(vec!["wait".to_string()])
        );
        assert_eq!(
            unknown_parameters("GET", "/v1/status", "verbose"),
            Some(vec!["verbose".to_string()])
        );
        assert_eq!(unknown_parameters("GET", "/nowhere", "x=1"), None);
    }

    #[test]
    fn keys_take_several_segments_and_literal_routes_win() {
        let seg = |p: &str| p.split('/').map(str::to_string).collect::<Vec<_>>();
        assert!(fits(
            &seg("/v1/kv/{key}/cas"),
            &["", "v1", "kv", "user", "1", "cas"]
        ));
        assert!(!fits(&seg("/v1/kv/{key}/cas"), &["", "v1", "kv", "cas"]));
        assert!(fits(
            &seg("/v1/kv/{key}"),
            &["", "v1", "kv", "user", "1", "cas"]
        ));
        assert!(fits(
            &seg("/v1/cluster/voters/{id}"),
            &["", "v1", "cluster", "voters", "3"]
        ));
        assert!(!fits(
            &seg("/v1/cluster/voters/{id}"),
            &["", "v1", "cluster", "voters", ""]
        ));
    }
}
