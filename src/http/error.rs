//! JSON error answers and the mapping from node errors to HTTP status codes.

use super::openapi::{ErrorBody, LeaderRef};
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

use crate::messages::node::ClientError;

/// An error answer: status, machine-readable code, human message, and leader hint.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code (`not_leader`, `no_leader`, `outcome_unknown`, ...).
    pub code: &'static str,
    /// What happened, for people.
    pub message: String,
    /// The leader's id and URL, when the error is about leadership.
    pub leader: Option<(Option<u64>, Option<String>)>,
}

impl ApiError {
    /// A 400 for bad input.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
            leader: None,
        }
    }

    /// A 404 for a missing key or route.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code,
            message: message.into(),
            leader: None,
        }
    }

    /// A 413 for a key, value or body over its limit.
    pub fn too_large(what: &str, limit: usize) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "too_large",
            message: format!("the {what} exceeds the limit of {limit} bytes"),
            leader: None,
        }
    }

    /// A 429: a limit of requests in flight is reached; retry shortly.
    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "too_many_requests",
            message: message.into(),
            leader: None,
        }
    }

    /// A 409: the request conflicts with the current state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: message.into(),
            leader: None,
        }
    }

    /// A 408: the client was too slow to send its request.
    pub fn request_timeout(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::REQUEST_TIMEOUT,
            code: "request_timeout",
            message: message.into(),
            leader: None,
        }
    }

    /// A 503 that may be retried.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code,
            message: message.into(),
            leader: None,
        }
    }

    /// A 504: the write may or may not have been applied.
    pub fn outcome_unknown(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::GATEWAY_TIMEOUT,
            code: "outcome_unknown",
            message: message.into(),
            leader: None,
        }
    }

    /// A 500 for a state machine output that does not answer the command that was applied (a
    /// bug: the command and its output come from the same code).
    pub fn unexpected_output(route: &str) -> Self {
        Self::internal(format!(
            "the state machine answered this {route} with the output of another kind of command"
        ))
    }

    /// A 500 for a local failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: message.into(),
            leader: None,
        }
    }
}

impl From<ClientError> for ApiError {
    fn from(err: ClientError) -> Self {
        let message = err.to_string();
        match err {
            ClientError::NotLeader {
                leader_id,
                leader_addr,
                ..
            } => {
                let (status, code) = if leader_addr.is_some() {
                    (StatusCode::TEMPORARY_REDIRECT, "not_leader")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "no_leader")
                };
                Self {
                    status,
                    code,
                    message,
                    leader: Some((leader_id, leader_addr.map(|a| super::url_of(&a)))),
                }
            }
            ClientError::ProposalDropped => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "proposal_dropped",
                message,
                leader: None,
            },
            ClientError::OutcomeUnknown => Self {
                status: StatusCode::GATEWAY_TIMEOUT,
                code: "outcome_unknown",
                message,
                leader: None,
            },
            ClientError::NotEverywhere { .. } => Self {
                status: StatusCode::GATEWAY_TIMEOUT,
                code: "not_everywhere",
                message,
                leader: None,
            },
            ClientError::Invalid(_) => Self {
                status: StatusCode::BAD_REQUEST,
                code: "bad_request",
                message,
                leader: None,
            },
            ClientError::Conflict(_) => Self {
                status: StatusCode::CONFLICT,
                code: "conflict",
                message,
                leader: None,
            },
            ClientError::NotFound(_) => Self {
                status: StatusCode::NOT_FOUND,
                code: "not_found",
                message,
                leader: None,
            },
            ClientError::Unavailable(_) => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "unavailable",
                message,
                leader: None,
            },
            ClientError::DiskRefused(_) => Self {
                status: StatusCode::INSUFFICIENT_STORAGE,
                code: "insufficient_storage",
                message,
                leader: None,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let (leader_id, leader_url) = self.leader.clone().unwrap_or((None, None));
        let body = ErrorBody {
            error: self.code.to_string(),
            message: self.message.clone(),
            leader: leader_id.map(|id| LeaderRef {
                id,
                url: leader_url,
            }),
        };
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::SERVICE_UNAVAILABLE
            || self.status == StatusCode::TOO_MANY_REQUESTS
        {
            response.insert_header((header::RETRY_AFTER, "1"));
        }
        response.json(body)
    }
}

/// Unknown routes get a JSON 404.
pub async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    let err = ApiError::not_found(
        "not_found",
        format!("no route for {} {}", req.method(), req.path()),
    );
    err.error_response()
}

/// Known routes called with another method get a JSON 405, with the `Allow` header RFC 9110
/// requires (the route's methods as the OpenAPI document lists them).
pub async fn method_not_allowed(req: actix_web::HttpRequest) -> HttpResponse {
    let allowed = allowed_methods(&req);
    let err = ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: match &allowed {
            Some(allow) => format!(
                "{} is not allowed on {} (allowed: {allow})",
                req.method(),
                req.path()
            ),
            None => format!("{} is not allowed on {}", req.method(), req.path()),
        },
        leader: None,
    };
    let mut response = err.error_response();
    if let Some(value) = allowed.and_then(|a| header::HeaderValue::from_str(&a).ok()) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// The methods of the route `req` matched, from the OpenAPI document (where every route is
/// described, so the two cannot disagree), as an `Allow` value such as `GET, PUT`.
fn allowed_methods(req: &actix_web::HttpRequest) -> Option<String> {
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(<super::openapi::ApiDoc as utoipa::OpenApi>::openapi);
    let mut path = super::route_template(&req.match_pattern()?);
    // A key ending in `/cas` is served by the key route, but POST on it is compare-and-swap:
    // the document's `/v1/kv/{key}/cas` lists every method such a path takes.
    let cas_key = req
        .path()
        .strip_prefix("/v1/kv/")
        .and_then(|rest| rest.strip_suffix("/cas"));
    if path == "/v1/kv/{key}" && cas_key.is_some_and(|key| !key.is_empty()) {
        path.push_str("/cas");
    }
    let item = doc.paths.paths.get(&path)?;
    let methods: Vec<&str> = [
        ("GET", item.get.is_some()),
        ("HEAD", item.head.is_some()),
        ("POST", item.post.is_some()),
        ("PUT", item.put.is_some()),
        ("PATCH", item.patch.is_some()),
        ("DELETE", item.delete.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, present)| present.then_some(name))
    .collect();
    (!methods.is_empty()).then(|| methods.join(", "))
}
