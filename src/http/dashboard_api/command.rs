//! `POST /api/command`: a dashboard command (text line or structured) run on the leader. The
//! formats are in the parent module's docs ([`super`]).

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::core::Role;
use crate::http::input::{check_key, check_value, json_body, read_body};
use crate::http::kv::write;
use crate::http::openapi::{ErrorBody, WriteAnswer};
use crate::http::write::{client_of, FORWARDED_BY};
use crate::http::{text_and_base64, ApiError, AppState};
use crate::messages::node::ClientError;
use crate::storage::{KvCommand, KvOutput};

/// Body of `POST /api/command`: either `command` (a text line) or `op` + `key` (+ `value`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandBody {
    /// A text line: `SET key value`, `GET key` or `DELETE key` (verbs in any case).
    pub command: Option<String>,
    /// `put` (alias `set`), `get` or `delete` (alias `del`).
    pub op: Option<String>,
    /// The key `op` acts on.
    pub key: Option<String>,
    /// The value of a `put`.
    pub value: Option<String>,
}

/// Answer of `POST /api/command`.
#[derive(Serialize, ToSchema)]
pub struct CommandAnswer {
    /// Always true (failures are JSON errors).
    pub ok: bool,
    /// What was done (`op` says which).
    #[serde(flatten)]
    pub outcome: CommandOutcome,
}

/// What a dashboard command did, tagged by `op`.
#[derive(Serialize, ToSchema)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum CommandOutcome {
    /// The key was set.
    Put {
        /// The key.
        key: String,
        /// The value set.
        value: String,
        /// The write.
        #[serde(flatten)]
        write: WriteAnswer,
    },
    /// The key was removed.
    Delete {
        /// The key.
        key: String,
        /// Whether it existed.
        deleted: bool,
        /// The write.
        #[serde(flatten)]
        write: WriteAnswer,
    },
    /// The key was read on the leader.
    Get {
        /// The key.
        key: String,
        /// Whether it exists.
        found: bool,
        /// The applied index the value reflects.
        applied: u64,
        /// The node that read it (the leader).
        node: u64,
        /// The value, when UTF-8 (null when absent).
        value: Option<String>,
        /// The value, base64, when not UTF-8.
        #[serde(skip_serializing_if = "Option::is_none")]
        value_base64: Option<String>,
    },
}

impl CommandOutcome {
    fn answer(self) -> CommandAnswer {
        CommandAnswer {
            ok: true,
            outcome: self,
        }
    }
}

/// A parsed dashboard command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Read `key` (on the leader).
    Get {
        /// The key.
        key: String,
    },
    /// Delete `key`.
    Delete {
        /// The key.
        key: String,
    },
}

/// Parses a text command: `SET|PUT key value...`, `GET key`, `DELETE|DEL key` (verb in any
/// case, words separated by whitespace, the value being the rest of the line).
pub fn parse_command_line(line: &str) -> Result<Command, ApiError> {
    let line = line.trim();
    let (verb, rest) = split_word(line);
    if verb.is_empty() {
        return Err(ApiError::bad_request(
            "empty command; try SET key value, GET key or DELETE key",
        ));
    }
    let (key, rest) = split_word(rest);
    let key = key.to_string();
    let missing_key = || ApiError::bad_request(format!("{verb} needs a key"));
    let one_key = |key: String| {
        if key.is_empty() {
            Err(missing_key())
        } else if !rest.is_empty() {
            Err(ApiError::bad_request(format!(
                "{verb} takes one key, got extra text {rest:?}"
            )))
        } else {
            Ok(key)
        }
    };
    match verb.to_ascii_uppercase().as_str() {
        "SET" | "PUT" if key.is_empty() => Err(missing_key()),
        "SET" | "PUT" if rest.is_empty() => Err(ApiError::bad_request(format!(
            "{verb} needs a value after the key"
        ))),
        "SET" | "PUT" => Ok(Command::Put {
            key,
            value: rest.to_string(),
        }),
        "GET" => Ok(Command::Get { key: one_key(key)? }),
        "DELETE" | "DEL" => Ok(Command::Delete { key: one_key(key)? }),
        _ => Err(ApiError::bad_request(format!(
            "unknown command {verb:?}; use SET/PUT, GET or DELETE/DEL"
        ))),
    }
}

/// The first whitespace-separated word of `text` and the rest with its leading whitespace
/// removed.
fn split_word(text: &str) -> (&str, &str) {
    match text.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim_start()),
        None => (text, ""),
    }
}

/// The key a command body names, when it parses (for access control).
pub(crate) fn key_of_body(body: &[u8]) -> Option<String> {
    let parsed: CommandBody = serde_json::from_slice(body).ok()?;
    match parse_body(parsed).ok()? {
        Command::Put { key, .. } | Command::Get { key } | Command::Delete { key } => Some(key),
    }
}

fn parse_body(body: CommandBody) -> Result<Command, ApiError> {
    match body {
        CommandBody {
            command: Some(line),
            op: None,
            key: None,
            value: None,
        } => parse_command_line(&line),
        CommandBody {
            command: None,
            op: Some(op),
            key: Some(key),
            value,
        } => match (op.to_ascii_lowercase().as_str(), value) {
            ("put" | "set", Some(value)) => Ok(Command::Put { key, value }),
            ("put" | "set", None) => Err(ApiError::bad_request("op put needs a value")),
            ("get", None) => Ok(Command::Get { key }),
            ("delete" | "del", None) => Ok(Command::Delete { key }),
            ("get" | "delete" | "del", Some(_)) => {
                Err(ApiError::bad_request(format!("op {op} takes no value")))
            }
            _ => Err(ApiError::bad_request(format!(
                "unknown op {op:?}; use put, get or delete"
            ))),
        },
        _ => Err(ApiError::bad_request(
            r#"give either {"command": "SET key value"} or {"op", "key", "value"}"#,
        )),
    }
}

/// `POST /api/command`: runs a put, get or delete on the leader (see the module docs).
#[utoipa::path(
    post,
    path = "/api/command",
    tag = "dashboard",
    request_body = CommandBody,
    responses(
        (status = 200, description = "The command ran", body = CommandAnswer),
        (status = 400, description = "Malformed command", body = ErrorBody),
        (status = 409, description = "The idempotency key was already used by another kind of request", body = ErrorBody),
        (status = 413, description = "Key or value over the limit", body = ErrorBody),
        (status = 503, description = "No leader known (Retry-After)", body = ErrorBody),
        (status = 504, description = "Outcome unknown", body = ErrorBody),
    ),
)]
pub async fn command(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, state.limits.max_body_bytes).await?;
    let parsed = parse_body(json_body(&body)?)?;
    match parsed {
        Command::Put { key, value } => {
            check_key(&key, &state.limits)?;
            check_value(value.as_bytes(), &state.limits)?;
            let command = KvCommand::Put {
                key: key.clone(),
                value: Bytes::from(value.clone()),
            };
            write(&state, &req, &body, command, |_, write| {
                Ok(CommandOutcome::Put { key, value, write }.answer())
            })
            .await
        }
        Command::Delete { key } => {
            check_key(&key, &state.limits)?;
            let command = KvCommand::Delete { key: key.clone() };
            write(&state, &req, &body, command, |output, write| match output {
                KvOutput::Delete { existed } => Ok(CommandOutcome::Delete {
                    key,
                    deleted: existed,
                    write,
                }
                .answer()),
                _ => Err(ApiError::unexpected_output("delete")),
            })
            .await
        }
        Command::Get { key } => {
            check_key(&key, &state.limits)?;
            read_on_leader(&state, &req, &body, key).await
        }
    }
}

/// Reads `key` here when this node leads (or the request was already relayed once), else
/// relays the command to the leader.
async fn read_on_leader(
    state: &AppState,
    req: &HttpRequest,
    body: &Bytes,
    key: String,
) -> Result<HttpResponse, ApiError> {
    let status = state.node.status().await?;
    let relayed = req.headers().contains_key(FORWARDED_BY);
    if status.role != Role::Leader && !relayed {
        let Some(addr) = status.leader_addr else {
            return Err(ClientError::not_leader(status.leader, None).into());
        };
        return relay(state, req, body, &addr).await;
    }
    let (value, applied, key) = crate::http::read::read_local(state, key).await?;
    let (text, value_base64) = text_and_base64(value.as_deref());
    let outcome = CommandOutcome::Get {
        key,
        found: value.is_some(),
        applied,
        node: state.node_id,
        value: text,
        value_base64,
    };
    Ok(HttpResponse::Ok().json(outcome.answer()))
}

/// Sends a read command on to the leader at `addr` and relays its answer.
async fn relay(
    state: &AppState,
    req: &HttpRequest,
    body: &Bytes,
    addr: &str,
) -> Result<HttpResponse, ApiError> {
    let client = client_of(req);
    let mut outgoing = client
        .post(format!("{}/api/command", crate::http::url_of(addr)))
        .timeout(state.forward_timeout)
        .insert_header((FORWARDED_BY, state.node_id.to_string()))
        .insert_header(("content-type", "application/json"));
    if let Some(auth) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        outgoing = outgoing.insert_header((actix_web::http::header::AUTHORIZATION, auth.clone()));
    }
    let mut answer = outgoing.send_body(body.clone()).await.map_err(|err| {
        ApiError::unavailable(
            "leader_unreachable",
            format!("the leader at {addr} cannot be reached: {err}"),
        )
    })?;
    let relayed = answer
        .body()
        .limit(state.limits.max_value_bytes * 2 + 64 * 1024)
        .await
        .map_err(|err| {
            ApiError::unavailable(
                "leader_unreachable",
                format!("the leader at {addr} answered unreadably: {err}"),
            )
        })?;
    let code = actix_web::http::StatusCode::from_u16(answer.status().as_u16())
        .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY);
    Ok(HttpResponse::build(code)
        .content_type("application/json")
        .insert_header(("x-raftix-forwarded-to", addr.to_string()))
        .body(relayed))
}
