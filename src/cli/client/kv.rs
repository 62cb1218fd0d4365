//! `put`, `get`, `del` and `cas`: single-key operations.

use std::io::{IsTerminal, Read};

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::args::{CasArgs, DelArgs, GetArgs, PutArgs};
use super::endpoint::key_path;
use super::error::{ClientError, EXIT_NOT_SWAPPED, EXIT_OK};
use super::output::{check, decode, json_line, line, raw, show_field};
use super::session::Request;
use super::{read_session, write_session};

/// The index and term every write answer carries.
#[derive(Debug, Deserialize)]
pub(super) struct Written {
    index: u64,
    term: u64,
    #[serde(default)]
    duplicate: bool,
}

impl Written {
    /// `index=N term=T` (and `duplicate` for an answered retry).
    pub(super) fn describe(&self) -> String {
        let dup = if self.duplicate { " duplicate" } else { "" };
        format!("index={} term={}{dup}", self.index, self.term)
    }
}

/// Multi-region: warns on stderr when a write that waited for other regions answered before
/// they acknowledged it (202: committed here, not yet remotely).
pub(super) fn warn_unreplicated(body: &Value) {
    let replication = &body["replication"];
    if replication["replicated"].as_bool() != Some(false) {
        return;
    }
    let pending: Vec<&str> = replication["pending"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    eprintln!(
        "warning: committed in this region but not yet acknowledged by region(s) {} ({} wait \
         timed out); it will be replicated when the link allows",
        pending.join(", "),
        replication["mode"].as_str().unwrap_or("replication"),
    );
}

/// Refuses an empty key before sending anything (the server would refuse it too).
pub(super) fn check_key(key: &str) -> Result<(), ClientError> {
    if key.is_empty() {
        return Err(ClientError::Invalid("the key is empty".to_string()));
    }
    Ok(())
}

/// `put KEY VALUE`: prints `OK index=N term=T`.
pub fn put(args: PutArgs) -> Result<u8, ClientError> {
    check_key(&args.key)?;
    let value = if args.value == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(ClientError::Stdin)?;
        bytes
    } else {
        args.value.into_bytes()
    };
    let mut session = write_session(&args.opts, &args.level)?;
    let request = Request::write(
        Method::PUT,
        key_path(&args.key),
        Some((value, "application/octet-stream")),
    );
    let answer = check(session.send(&request)?, Some(&args.key))?;
    let (body, written): (Value, Written) = decode(&answer)?;
    warn_unreplicated(&body);
    if args.opts.json {
        json_line(&body)?;
    } else {
        line(&format!("OK {}", written.describe()))?;
    }
    Ok(EXIT_OK)
}

/// `get KEY`: the value's bytes exactly; on a terminal a newline is added when the value does
/// not end with one. `--json`: `{"key", "value"|"value_base64", "index"}`.
pub fn get(args: GetArgs) -> Result<u8, ClientError> {
    check_key(&args.key)?;
    let mut session = read_session(&args.opts, &args.level)?;
    let answer = session.send(&Request::get(key_path(&args.key)))?;
    let answer = check(answer, Some(&args.key))?;
    if args.opts.json {
        let index: Option<u64> = answer
            .headers
            .get("x-raft-index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let mut out = json!({ "key": args.key });
        crate::http::text_or_base64(&mut out, "value", Some(&answer.body));
        out["index"] = json!(index);
        json_line(&out)?;
    } else {
        raw(&answer.body)?;
        if std::io::stdout().is_terminal() && !answer.body.ends_with(b"\n") {
            raw(b"\n")?;
        }
    }
    Ok(EXIT_OK)
}

/// Answer of a delete.
#[derive(Debug, Deserialize)]
struct Deleted {
    deleted: bool,
    #[serde(flatten)]
    written: Written,
}

/// `del KEY`: prints `OK deleted=true|false index=N term=T`; an absent key is a success.
pub fn del(args: DelArgs) -> Result<u8, ClientError> {
    check_key(&args.key)?;
    let mut session = write_session(&args.opts, &args.level)?;
    let request = Request::write(Method::DELETE, key_path(&args.key), None);
    let answer = check(session.send(&request)?, Some(&args.key))?;
    let (body, deleted): (Value, Deleted) = decode(&answer)?;
    warn_unreplicated(&body);
    if args.opts.json {
        json_line(&body)?;
    } else {
        line(&format!(
            "OK deleted={} {}",
            deleted.deleted,
            deleted.written.describe()
        ))?;
    }
    Ok(EXIT_OK)
}

/// Answer of a compare-and-swap.
#[derive(Debug, Deserialize)]
struct Swapped {
    swapped: bool,
    #[serde(flatten)]
    written: Written,
}

/// `cas KEY`: exit 0 and `OK swapped ...` when swapped, else exit 4 and
/// `NOT SWAPPED current=<value>|<absent> ...`.
pub fn cas(args: CasArgs) -> Result<u8, ClientError> {
    check_key(&args.key)?;
    let mut session = write_session(&args.opts, &args.level)?;
    // The argument groups guarantee exactly one of each pair: `None` means absent / delete.
    let body = json!({ "expected": args.expected, "value": args.value });
    let path = format!("{}/cas", key_path(&args.key));
    let request = Request::write(
        Method::POST,
        path,
        Some((body.to_string().into_bytes(), "application/json")),
    );
    let answer = check(session.send(&request)?, Some(&args.key))?;
    let (body, swapped): (Value, Swapped) = decode(&answer)?;
    warn_unreplicated(&body);
    if args.opts.json {
        json_line(&body)?;
    } else if swapped.swapped {
        line(&format!("OK swapped {}", swapped.written.describe()))?;
    } else {
        let current = show_field(&body, "current").unwrap_or_else(|| "<absent>".to_string());
        line(&format!(
            "NOT SWAPPED current={current} {}",
            swapped.written.describe()
        ))?;
    }
    Ok(if swapped.swapped {
        EXIT_OK
    } else {
        EXIT_NOT_SWAPPED
    })
}
