//! Parameters and error answers shared by many routes, declared once for the OpenAPI document
//! (`params(KeyPath, WriteOptions)`, `responses(..., WriteFailures)` in a `#[utoipa::path]`),
//! so that the routes' annotations stay short and cannot drift apart.

use std::collections::BTreeMap;

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{Content, Ref, RefOr, Required};
use utoipa::{IntoParams, IntoResponses, PartialSchema};

/// A parameter of type `T`.
fn parameter<T: PartialSchema>(
    name: &str,
    place: ParameterIn,
    required: bool,
    description: &str,
) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(place)
        .required(if required {
            Required::True
        } else {
            Required::False
        })
        .description(Some(description))
        .schema(Some(T::schema()))
        .build()
}

/// The `{key}` of `/v1/kv/{key}` routes.
pub struct KeyPath;

impl IntoParams for KeyPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![parameter::<String>(
            "key",
            ParameterIn::Path,
            true,
            "The key (UTF-8, percent-encoded)",
        )]
    }
}

/// `Idempotency-Key` and `?redirect=`: what every replicated write but the key-value ones takes.
pub struct RetryOptions;

impl IntoParams for RetryOptions {
    fn into_params(in_provider: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let mut params = vec![parameter::<String>(
            "Idempotency-Key",
            ParameterIn::Header,
            false,
            "Retries with the same key apply at most once",
        )];
        params.extend(RedirectOption::into_params(in_provider));
        params
    }
}

/// `?redirect=`: what a route that a follower hands to the leader takes.
pub struct RedirectOption;

impl IntoParams for RedirectOption {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![parameter::<bool>(
            "redirect",
            ParameterIn::Query,
            false,
            "On a follower: answer 307 instead of forwarding",
        )]
    }
}

/// [`RetryOptions`], `?ack=` and `?replication=`: what a key-value write or transaction takes.
pub struct WriteOptions;

impl IntoParams for WriteOptions {
    fn into_params(in_provider: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let mut params = RetryOptions::into_params(in_provider);
        params.push(parameter::<String>(
            "ack",
            ParameterIn::Query,
            false,
            "quorum (default): answered once committed and applied; all: once every voter \
             has the entry too; leader (alias one, single-key PUT and DELETE only): once \
             durable on the leader, before it is committed",
        ));
        params.push(parameter::<String>(
            "replication",
            ParameterIn::Query,
            false,
            "Multi-region: async, semi-sync (wait for the primary region) or sync (every \
             region); default: the region's setting",
        ));
        params
    }
}

/// `?consistency=`, `?max_lag=` and `?redirect=`: what a read of replicated state takes.
pub struct ReadOptions;

impl IntoParams for ReadOptions {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            parameter::<String>(
                "consistency",
                ParameterIn::Query,
                false,
                "linearizable (default, alias quorum) or stale (alias one)",
            ),
            parameter::<u64>(
                "max_lag",
                ParameterIn::Query,
                false,
                "With consistency=stale: refuse (503) when this node is more than this many \
                 entries behind the leader",
            ),
            parameter::<bool>(
                "redirect",
                ParameterIn::Query,
                false,
                "On a follower: answer 307 instead of forwarding",
            ),
        ]
    }
}

/// An error answer (`{"error", "message", "leader"}`) described by `description`.
pub(crate) fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        )
        .build()
        .into()
}

/// Error answers by status code.
fn errors(list: &[(u16, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(status, description)| (status.to_string(), error_response(description)))
        .collect()
}

/// What a replicated write can answer besides success, whichever node it reaches.
const FORWARDED_WRITE_FAILURES: [(u16, &str); 4] = [
    (
        307,
        "On a follower with ?redirect=true: the leader's URL in Location",
    ),
    (
        409,
        "The idempotency key was already used by another kind of request",
    ),
    (503, "No leader known (Retry-After)"),
    (504, "Outcome unknown: the write may or may not be applied"),
];

/// The failures of a key-value write or transaction: [`FORWARDED_WRITE_FAILURES`], bad input
/// and input over the limits.
pub struct WriteFailures;

impl IntoResponses for WriteFailures {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut map = errors(&FORWARDED_WRITE_FAILURES);
        map.extend(errors(&[
            (400, "Bad input"),
            (413, "Key or value over the limit"),
        ]));
        map
    }
}

/// The failures of the other replicated writes (regions, tokens): [`FORWARDED_WRITE_FAILURES`]
/// and a body over the limit.
pub struct ForwardedWriteFailures;

impl IntoResponses for ForwardedWriteFailures {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut map = errors(&FORWARDED_WRITE_FAILURES);
        map.extend(errors(&[(413, "Body over the limit")]));
        map
    }
}

/// The failures of a read of replicated state ([`ReadOptions`]).
pub struct ReadFailures;

impl IntoResponses for ReadFailures {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[
            (
                307,
                "On a follower with ?redirect=true: the leader's URL in Location",
            ),
            (400, "Bad consistency level"),
            (503, "No leader known (Retry-After)"),
            (504, "The leader did not answer in time"),
        ])
    }
}

/// The failures every membership change shares: a malformed id, and a change that cannot
/// start now.
pub struct MembershipFailures;

impl IntoResponses for MembershipFailures {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[
            (400, "Bad id"),
            (
                503,
                "Another membership change is in progress, or no leader: retry",
            ),
        ])
    }
}

/// Access control's answers (when tokens exist).
pub struct AuthFailures;

impl IntoResponses for AuthFailures {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[(401, "No valid token"), (403, "Token lacks the role")])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_write_vocabulary_documents_every_failure_once() {
        let codes: Vec<String> = WriteFailures::responses().into_keys().collect();
        assert_eq!(codes, ["307", "400", "409", "413", "503", "504"]);
        let names: Vec<String> = WriteOptions::into_params(|| None)
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["Idempotency-Key", "redirect", "ack", "replication"]);
    }
}
