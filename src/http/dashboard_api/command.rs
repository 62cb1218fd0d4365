//! `POST /api/command`: a dashboard command (text line or structured) run on the leader. The
//! formats are in the parent module's docs ([`super`]).

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::core::Role;
use crate::http::input::{check_key, check_value, json_body, read_body};
use crate::http::kv::write;
use crate::http::write::{client_of, FORWARDED_BY};
use crate::http::{text_or_base64, ApiError, AppState};
use crate::messages::node::ClientError;
use crate::storage::{KvCommand, KvOutput};

/// Body of `POST /api/command`: either `command` (a text line) or `op` + `key` (+ `value`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandBody {
    command: Option<String>,
    op: Option<String>,
    key: Option<String>,
    value: Option<String>,
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
#[utoipa::path(post, path = "/api/command", tag = "dashboard", request_body(content = String, description = "{\"command\": \"SET key value\" | \"GET key\" | \"DELETE key\"} or {\"op\", \"key\", \"value\"}", content_type = "application/json"), responses((status = 200, description = "{ok, op, key, value?, index?, term?}"), (status = 400, description = "Malformed command", body = crate::http::openapi::ErrorBody), (status = 409, description = "The idempotency key was already used by another kind of request", body = crate::http::openapi::ErrorBody), (status = 413, description = "Key or value over the limit", body = crate::http::openapi::ErrorBody), (status = 503, description = "No leader known (Retry-After)", body = crate::http::openapi::ErrorBody), (status = 504, description = "Outcome unknown", body = crate::http::openapi::ErrorBody)))]
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
            let echo = json!({"ok": true, "op": "put", "key": key, "value": value});
            let command = KvCommand::Put {
                key,
                value: Bytes::from(value),
            };
            write(&state, &req, &body, command, |_, committed| {
                with_write(echo, committed)
            })
            .await
        }
        Command::Delete { key } => {
            check_key(&key, &state.limits)?;
            let echo = json!({"ok": true, "op": "delete", "key": key});
            let command = KvCommand::Delete { key };
            write(
                &state,
                &req,
                &body,
                command,
                |output, committed| match output {
                    KvOutput::Delete { existed } => {
                        let mut echo = echo;
                        echo["deleted"] = json!(existed);
                        with_write(echo, committed)
                    }
                    _ => Err(ApiError::unexpected_output("delete")),
                },
            )
            .await
        }
        Command::Get { key } => {
            check_key(&key, &state.limits)?;
            read_on_leader(&state, &req, &body, key).await
        }
    }
}

/// The command's echo with the write's index, term (and retry and region fields).
fn with_write(
    mut echo: Value,
    committed: crate::http::openapi::WriteAnswer,
) -> Result<Value, ApiError> {
    let fields = serde_json::to_value(committed).map_err(|e| ApiError::internal(e.to_string()))?;
    if let (Some(echo), Value::Object(fields)) = (echo.as_object_mut(), fields) {
        echo.extend(fields);
    }
    Ok(echo)
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
            return Err(ClientError::NotLeader {
                leader_id: status.leader,
                leader_addr: None,
            }
            .into());
        };
        return relay(state, req, body, &addr).await;
    }
    let (value, applied, key) = crate::http::read::read_local(state, key).await?;
    let mut answer = json!({
        "ok": true,
        "op": "get",
        "key": key,
        "found": value.is_some(),
        "applied": applied,
        "node": state.node_id,
    });
    text_or_base64(&mut answer, "value", value.as_deref());
    Ok(HttpResponse::Ok().json(answer))
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
