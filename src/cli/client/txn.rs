//! `txn`: puts and deletes applied together, only if every guard holds (`POST /v1/txn`, one log
//! entry): etcdctl's `txn` for scripts, with guards and operations as flags.

use clap::{ArgGroup, Args};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::args::{ClientOpts, WriteLevel};
use super::error::{ClientError, EXIT_NOT_SWAPPED, EXIT_OK};
use super::kv::{check_key, warn_unreplicated, Written};
use super::output::{check, decode, json_line, line};
use super::session::Request;
use super::write_session;

/// `txn [--if KEY=VALUE]... [--if-absent KEY]... [--if-present KEY]... --put KEY=VALUE... --delete KEY...`
#[derive(Clone, Debug, Args)]
#[command(group(ArgGroup::new("operations").required(true).multiple(true).args(["put", "delete"])))]
pub struct TxnArgs {
    /// Guard: KEY must hold exactly VALUE.
    #[arg(long = "if", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub if_equals: Vec<(String, String)>,
    /// Guard: KEY must be absent.
    #[arg(long, value_name = "KEY")]
    pub if_absent: Vec<String>,
    /// Guard: KEY must be present (any value).
    #[arg(long, value_name = "KEY")]
    pub if_present: Vec<String>,
    /// Operation: set KEY to VALUE (puts are applied first, in the order given).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub put: Vec<(String, String)>,
    /// Operation: delete KEY (after the puts, in the order given).
    #[arg(long, value_name = "KEY")]
    pub delete: Vec<String>,
    /// When it is answered (`--ack leader` is refused: a transaction's answer is its result).
    #[command(flatten)]
    pub level: WriteLevel,
    /// Common flags.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// `KEY=VALUE`, split at the first `=` (values may hold `=`; keys cannot).
fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// The answer of a transaction.
#[derive(Debug, Deserialize)]
struct Answer {
    succeeded: bool,
    failed_guard: Option<usize>,
    #[serde(flatten)]
    written: Written,
}

/// The request body: guards in the order `--if`, `--if-absent`, `--if-present`; puts, then
/// deletes. A key both put and deleted is refused (which one wins would depend on that order).
fn body_of(args: &TxnArgs) -> Result<(Value, Vec<String>), ClientError> {
    let mut guards = Vec::new();
    let mut described = Vec::new();
    for (key, value) in &args.if_equals {
        guards.push(json!({"key": key, "equals": value}));
        described.push(format!("{key} = {value:?}"));
    }
    for key in &args.if_absent {
        guards.push(json!({"key": key, "expect": "absent"}));
        described.push(format!("{key} absent"));
    }
    for key in &args.if_present {
        guards.push(json!({"key": key, "expect": "present"}));
        described.push(format!("{key} present"));
    }
    let mut ops = Vec::new();
    for (key, value) in &args.put {
        check_key(key)?;
        if args.delete.contains(key) {
            return Err(ClientError::Invalid(format!(
                "`{key}` is both put and deleted: use two transactions"
            )));
        }
        ops.push(json!({"op": "put", "key": key, "value": value}));
    }
    for key in &args.delete {
        check_key(key)?;
        ops.push(json!({"op": "delete", "key": key}));
    }
    Ok((json!({"guards": guards, "ops": ops}), described))
}

/// `txn`: exit 0 and `OK applied N operation(s) index=.. term=..` when every guard held, else
/// exit 4 and `NOT APPLIED: guard N (KEY ...) did not hold` (nothing was applied).
pub fn txn(args: TxnArgs) -> Result<u8, ClientError> {
    let (body, guards) = body_of(&args)?;
    let operations = args.put.len() + args.delete.len();
    let mut session = write_session(&args.opts, &args.level)?;
    let request = Request::write(
        Method::POST,
        "/v1/txn".into(),
        Some((body.to_string().into_bytes(), "application/json")),
    );
    let answer = check(session.send(&request)?, None)?;
    let (raw, done): (Value, Answer) = decode(&answer)?;
    warn_unreplicated(&raw);
    if args.opts.json {
        json_line(&raw)?;
    } else if done.succeeded {
        line(&format!(
            "OK applied {operations} operation(s) {}",
            done.written.describe()
        ))?;
    } else {
        let which = done.failed_guard.unwrap_or(0);
        let guard = guards.get(which).map(String::as_str).unwrap_or("?");
        line(&format!(
            "NOT APPLIED: guard {} ({guard}) did not hold {}",
            which + 1,
            done.written.describe()
        ))?;
    }
    Ok(if done.succeeded {
        EXIT_OK
    } else {
        EXIT_NOT_SWAPPED
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<TxnArgs, clap::Error> {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            txn: TxnArgs,
        }
        Cli::try_parse_from([&["txn"], args].concat()).map(|c| c.txn)
    }

    #[test]
    fn flags_become_guards_and_operations_in_order() {
        let args = parse(&[
            "--if",
            "a=1=2",
            "--if-absent",
            "b",
            "--put",
            "a=3",
            "--delete",
            "c",
            "--put",
            "d=",
        ])
        .expect("parses");
        let (body, guards) = body_of(&args).expect("a body");
        assert_eq!(
            body,
            json!({
                "guards": [{"key": "a", "equals": "1=2"}, {"key": "b", "expect": "absent"}],
                "ops": [
                    {"op": "put", "key": "a", "value": "3"},
                    {"op": "put", "key": "d", "value": ""},
                    {"op": "delete", "key": "c"},
                ],
            })
        );
        assert_eq!(guards, ["a = \"1=2\"", "b absent"]);
    }

    #[test]
    fn nonsense_is_refused_before_anything_is_sent() {
        assert!(parse(&["--if", "a=1"]).is_err(), "no operation");
        assert!(parse(&["--put", "novalue"]).is_err());
        assert!(parse(&["--put", "=x"]).is_err());
        let both = parse(&["--put", "k=1", "--delete", "k"]).expect("parses");
        assert!(matches!(body_of(&both), Err(ClientError::Invalid(_))));
    }
}
