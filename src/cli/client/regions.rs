//! `region ...` and `conflicts ...`: multi-region replication through `/v1/regions` and
//! `/v1/conflicts`. Changes are writes (followed to the leader, with an idempotency key); the
//! listings are reads (a follower forwards `region status` to its leader).

use reqwest::Method;
use serde_json::{json, Map, Value};

use super::args::{ClientOpts, OptsOnly};
use super::error::{ClientError, EXIT_OK};
use super::output::{check, decode, json_line, line, show_text, table};
use super::region_args::{
    ConflictsCommand, ConflictsPolicyArgs, RegionAddArgs, RegionCommand, RegionIdArgs,
    RegionPrimaryArgs, RegionReplicationArgs,
};
use super::session::Request;
use super::session_of;

/// Runs a `region` subcommand; returns the exit status.
pub fn region(command: RegionCommand) -> Result<u8, ClientError> {
    match command {
        RegionCommand::List(args) => list(args),
        RegionCommand::Add(args) => add(args),
        RegionCommand::Remove(args) => remove(args),
        RegionCommand::Primary(args) => primary(args),
        RegionCommand::Replication(args) => replication(args),
        RegionCommand::Status(args) => status(args),
    }
}

/// Runs a `conflicts` subcommand; returns the exit status.
pub fn conflicts(command: ConflictsCommand) -> Result<u8, ClientError> {
    match command {
        ConflictsCommand::Stats(args) => stats(args),
        ConflictsCommand::Policy(args) => policy(args),
    }
}

/// Sends a read and decodes its JSON.
fn read(opts: &ClientOpts, path: &str) -> Result<Value, ClientError> {
    let mut session = session_of(opts)?;
    let answer = check(session.send(&Request::get(path.to_string()))?, None)?;
    Ok(decode::<Value>(&answer)?.0)
}

/// Sends a change with a JSON body (or none) and decodes the answer.
fn write(
    opts: &ClientOpts,
    method: Method,
    path: String,
    body: Option<Value>,
) -> Result<Value, ClientError> {
    let body = match body {
        Some(b) => Some((
            serde_json::to_vec(&b).map_err(|e| ClientError::Invalid(e.to_string()))?,
            "application/json",
        )),
        None => None,
    };
    let mut session = session_of(opts)?;
    let answer = check(session.send(&Request::write(method, path, body))?, None)?;
    Ok(decode::<Value>(&answer)?.0)
}

/// Text of a JSON string, `-` for null or absent.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => show_text(s),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

/// The header lines of `GET /v1/regions` (and of the answer of every change).
fn describe_regions(raw: &Value) -> String {
    let mut out = format!(
        "region {}  primary {}  replication {} (timeout {} ms)\n",
        text(&raw["local"]),
        text(&raw["primary"]),
        text(&raw["replication"]["mode"]),
        text(&raw["replication"]["timeout_ms"]),
    );
    out.push_str(&describe_policy(&raw["policy"]));
    let mut rows = vec![vec![
        "REGION".to_string(),
        "PRIMARY".to_string(),
        "ENDPOINTS".to_string(),
    ]];
    for r in raw["regions"].as_array().into_iter().flatten() {
        let endpoints: Vec<String> = r["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect();
        rows.push(vec![
            text(&r["id"]),
            yes_no(&r["primary"]),
            endpoints.join(","),
        ]);
    }
    if rows.len() == 1 {
        out.push_str("\nno remote region");
    } else {
        out.push('\n');
        out.push_str(&table(&rows));
    }
    out
}

/// `policy: default S; PREFIX=S ...`.
fn describe_policy(policy: &Value) -> String {
    let mut out = format!("conflicts: default {}", text(&policy["default"]));
    if let Some(prefixes) = policy["prefixes"].as_object() {
        for (prefix, strategy) in prefixes {
            out.push_str(&format!("; {}={}", show_text(prefix), text(strategy)));
        }
    }
    out
}

fn yes_no(value: &Value) -> String {
    match value.as_bool() {
        Some(true) => "yes".to_string(),
        Some(false) => "no".to_string(),
        None => "-".to_string(),
    }
}

/// Prints `raw` as JSON or as `OK what` followed by the regions.
fn changed(opts: &ClientOpts, raw: &Value, what: &str) -> Result<u8, ClientError> {
    if opts.json {
        json_line(raw)?;
    } else {
        line(&format!("OK {what} (index {})", text(&raw["index"])))?;
        line(&describe_regions(raw))?;
    }
    Ok(EXIT_OK)
}

fn list(args: OptsOnly) -> Result<u8, ClientError> {
    let raw = read(&args.opts, "/v1/regions")?;
    if args.opts.json {
        json_line(&raw)?;
    } else {
        line(&describe_regions(&raw))?;
    }
    Ok(EXIT_OK)
}

fn add(args: RegionAddArgs) -> Result<u8, ClientError> {
    let opts = args.conn.into_opts().map_err(ClientError::Invalid)?;
    let body = json!({"id": args.id, "endpoints": args.region_endpoints});
    let raw = write(&opts, Method::POST, "/v1/regions".into(), Some(body))?;
    changed(&opts, &raw, &format!("added region {}", args.id))
}

fn remove(args: RegionIdArgs) -> Result<u8, ClientError> {
    let path = format!(
        "/v1/regions/{}",
        percent_encoding::utf8_percent_encode(&args.id, percent_encoding::NON_ALPHANUMERIC)
    );
    let raw = write(&args.opts, Method::DELETE, path, None)?;
    changed(&args.opts, &raw, &format!("removed region {}", args.id))
}

fn primary(args: RegionPrimaryArgs) -> Result<u8, ClientError> {
    let id = if args.clear { None } else { args.id };
    let what = match &id {
        Some(id) => format!("primary region is {id}"),
        None => "no primary region".to_string(),
    };
    let body = json!({ "id": id });
    let raw = write(
        &args.opts,
        Method::PUT,
        "/v1/regions/primary".into(),
        Some(body),
    )?;
    changed(&args.opts, &raw, &what)
}

fn replication(mut args: RegionReplicationArgs) -> Result<u8, ClientError> {
    if !args.endpoints.is_empty() {
        args.conn.at = std::mem::take(&mut args.endpoints);
    }
    let opts = args.conn.into_opts().map_err(ClientError::Invalid)?;
    let mut body = json!({ "mode": args.mode });
    // Without --timeout-ms the region keeps its current wait timeout (the route would reset it).
    let timeout = match args.ack_timeout_ms {
        Some(ms) => Some(ms),
        None => read(&opts, "/v1/regions")?["replication"]["timeout_ms"].as_u64(),
    };
    if let Some(ms) = timeout {
        body["timeout_ms"] = json!(ms);
    }
    let raw = write(
        &opts,
        Method::PUT,
        "/v1/regions/replication".into(),
        Some(body),
    )?;
    changed(&opts, &raw, &format!("replication {}", args.mode))
}

fn status(args: OptsOnly) -> Result<u8, ClientError> {
    let raw = read(&args.opts, "/v1/regions/status")?;
    if args.opts.json {
        json_line(&raw)?;
        return Ok(EXIT_OK);
    }
    line(&format!(
        "region {}  primary {}  replication {} (timeout {} ms)",
        text(&raw["local"]),
        text(&raw["primary"]),
        text(&raw["replication"]["mode"]),
        text(&raw["replication"]["timeout_ms"]),
    ))?;
    let mut rows = vec![[
        "REGION",
        "CONNECTED",
        "LAG",
        "LAG_S",
        "ACKED",
        "LAST_SEQ",
        "APPLIED_FROM",
        "LAST_ERROR",
    ]
    .map(str::to_string)
    .to_vec()];
    for r in raw["regions"].as_array().into_iter().flatten() {
        let lag_s = r["lag_seconds"]
            .as_f64()
            .map_or("-".to_string(), |s| format!("{s:.1}"));
        rows.push(vec![
            text(&r["id"]),
            yes_no(&r["connected"]),
            text(&r["lag_entries"]),
            lag_s,
            text(&r["last_acked_seq"]),
            text(&r["last_seq"]),
            text(&r["applied_from_seq"]),
            text(&r["last_error"]),
        ]);
    }
    if rows.len() == 1 {
        line("no remote region")?;
    } else {
        line(&table(&rows))?;
    }
    Ok(EXIT_OK)
}

fn stats(args: OptsOnly) -> Result<u8, ClientError> {
    let raw = read(&args.opts, "/v1/conflicts/stats")?;
    if args.opts.json {
        json_line(&raw)?;
        return Ok(EXIT_OK);
    }
    line(&format!(
        "conflicts {}  failed {}  unresolved {}",
        text(&raw["total"]),
        text(&raw["failed"]),
        text(&raw["unresolved"]),
    ))?;
    let by = raw["by_strategy"].as_object().cloned().unwrap_or_default();
    if !by.is_empty() {
        let mut rows = vec![vec!["STRATEGY".to_string(), "CONFLICTS".to_string()]];
        rows.extend(by.iter().map(|(s, n)| vec![show_text(s), text(n)]));
        line(&table(&rows))?;
    }
    Ok(EXIT_OK)
}

fn policy(args: ConflictsPolicyArgs) -> Result<u8, ClientError> {
    if args.default.is_none() && args.prefixes.is_empty() {
        let raw = read(&args.opts, "/v1/regions")?;
        if args.opts.json {
            json_line(&raw["policy"])?;
        } else {
            line(&describe_policy(&raw["policy"]))?;
        }
        return Ok(EXIT_OK);
    }
    let mut prefixes = Map::new();
    for (prefix, strategy) in &args.prefixes {
        if prefixes.insert(prefix.clone(), json!(strategy)).is_some() {
            return Err(ClientError::Invalid(format!(
                "prefix {} is given twice",
                show_text(prefix)
            )));
        }
    }
    let mut body = json!({ "prefixes": prefixes });
    if let Some(default) = &args.default {
        body["default"] = json!(default);
    }
    let raw = write(
        &args.opts,
        Method::PUT,
        "/v1/conflicts/policy".into(),
        Some(body),
    )?;
    if args.opts.json {
        json_line(&raw)?;
    } else {
        line(&format!("OK (index {})", text(&raw["index"])))?;
        line(&describe_policy(&raw["policy"]))?;
    }
    Ok(EXIT_OK)
}
