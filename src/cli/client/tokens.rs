//! `token create|list|revoke`: replicated API tokens through `/v1/auth/tokens`.
//!
//! `create` prints the secret alone on stdout (so `TOKEN=$(raftix token create ...)` works) and
//! what was created on stderr; the secret is shown this once. Writes follow the leader like every
//! write and carry an idempotency key: a create retried after a lost answer is refused as already
//! applied (the secret was in the lost answer: revoke the token and create it again).

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::args::{OptsOnly, TokenCommand, TokenCreateArgs, TokenRevokeArgs};
use super::error::{ClientError, EXIT_OK};
use super::output::{check, decode, json_line, line, show_text, table};
use super::session::Request;
use super::session_of;

/// Runs a `token` subcommand; returns the exit status.
pub fn run(command: TokenCommand) -> Result<u8, ClientError> {
    match command {
        TokenCommand::Create(args) => create(args),
        TokenCommand::List(args) => list(args),
        TokenCommand::Revoke(args) => revoke(args),
    }
}

/// The answer of a creation.
#[derive(Debug, Deserialize)]
struct Created {
    name: String,
    role: String,
    prefix: Option<String>,
    token: String,
    expires_at: Option<String>,
}

fn create(args: TokenCreateArgs) -> Result<u8, ClientError> {
    let mut body = json!({"name": args.name, "role": args.role});
    if let Some(prefix) = &args.prefix {
        body["prefix"] = json!(prefix);
    }
    if let Some(secs) = args.expires_in {
        body["expires_in_secs"] = json!(secs);
    }
    let bytes = serde_json::to_vec(&body).map_err(|e| ClientError::Invalid(e.to_string()))?;
    let request = Request::write(
        Method::POST,
        "/v1/auth/tokens".into(),
        Some((bytes, "application/json")),
    );
    let mut session = session_of(&args.opts)?;
    let answer = check(session.send(&request)?, None)?;
    let (raw, created): (Value, Created) = decode(&answer)?;
    if args.opts.json {
        json_line(&raw)?;
        return Ok(EXIT_OK);
    }
    let mut what = format!("created token {} (role {}", created.name, created.role);
    if let Some(prefix) = &created.prefix {
        what.push_str(&format!(", keys starting with {}", show_text(prefix)));
    }
    match &created.expires_at {
        Some(at) => what.push_str(&format!(", expires {at})")),
        None => what.push_str(", no expiry)"),
    }
    eprintln!("{what}; its secret follows, shown only this once: store it now");
    line(&created.token)?;
    Ok(EXIT_OK)
}

fn list(args: OptsOnly) -> Result<u8, ClientError> {
    let mut session = session_of(&args.opts)?;
    let answer = check(session.send(&Request::get("/v1/auth/tokens".into()))?, None)?;
    let (raw, _): (Value, Value) = decode(&answer)?;
    if args.opts.json {
        json_line(&raw)?;
        return Ok(EXIT_OK);
    }
    let text = |v: &Value| v.as_str().map(show_text).unwrap_or_else(|| "-".into());
    let mut rows = vec![vec![
        "NAME".to_string(),
        "ROLE".to_string(),
        "PREFIX".to_string(),
        "SOURCE".to_string(),
        "EXPIRES".to_string(),
    ]];
    for t in raw["tokens"].as_array().into_iter().flatten() {
        let mut expires = text(&t["expires_at"]);
        if t["expired"].as_bool() == Some(true) {
            expires.push_str(" (expired)");
        }
        rows.push(vec![
            text(&t["name"]),
            text(&t["role"]),
            text(&t["prefix"]),
            text(&t["source"]),
            expires,
        ]);
    }
    line(&table(&rows))?;
    if raw["access_control"].as_bool() == Some(false) {
        eprintln!("access control is off: create an admin token to turn it on");
    }
    Ok(EXIT_OK)
}

fn revoke(args: TokenRevokeArgs) -> Result<u8, ClientError> {
    let path = format!(
        "/v1/auth/tokens/{}",
        percent_encoding::utf8_percent_encode(&args.name, percent_encoding::NON_ALPHANUMERIC)
    );
    let mut session = session_of(&args.opts)?;
    let answer = check(
        session.send(&Request::write(Method::DELETE, path, None))?,
        None,
    )?;
    let (raw, _): (Value, Value) = decode(&answer)?;
    if args.opts.json {
        json_line(&raw)?;
    } else {
        line(&format!("OK revoked {}", show_text(&args.name)))?;
    }
    Ok(EXIT_OK)
}
