//! `list`: keys in order with their values, one page or (`--all`) every page.

use serde::Deserialize;
use serde_json::{json, Value};

use super::args::ListArgs;
use super::endpoint::encode_query_value;
use super::error::{ClientError, EXIT_OK};
use super::output::{check, decode, json_line, line, show_field, show_text};
use super::read_session;
use super::session::{Request, Session};

/// Most pages `--all` follows (a guard against a server that never ends the listing).
const MAX_PAGES: usize = 1_000_000;

/// One page of the listing.
#[derive(Debug, Deserialize)]
struct Page {
    items: Vec<Value>,
    next: Option<String>,
}

/// `list`: human output is one `KEY<TAB>VALUE` line per key (see [`show_field`] for values);
/// `--json` prints the server's page, or with `--all` `{"items": [every item], "next": null}`.
pub fn list(args: ListArgs) -> Result<u8, ClientError> {
    let mut session = read_session(&args.opts, &args.level)?;
    let mut after = args.after.clone();
    let mut all_items = Vec::new();
    let mut printed = 0usize;
    for _ in 0..MAX_PAGES {
        let (raw, page) = fetch(&mut session, &args, after.as_deref())?;
        if !args.all && args.opts.json {
            return json_line(&raw).map(|()| EXIT_OK);
        }
        if !args.opts.json {
            for item in &page.items {
                print_item(item)?;
            }
            printed += page.items.len();
        } else {
            all_items.extend(page.items);
        }
        match page.next {
            Some(next) if args.all => {
                if after.as_deref() == Some(next.as_str()) {
                    return Err(ClientError::Server(format!(
                        "the listing does not advance past {next:?}"
                    )));
                }
                after = Some(next);
            }
            _ => break,
        }
    }
    if args.opts.json {
        json_line(&json!({ "items": all_items, "next": null }))?;
    } else if printed == 0 {
        // Said on stderr: a script reading KEY<TAB>VALUE lines still sees none.
        match (&args.prefix, &args.after) {
            (Some(prefix), _) => eprintln!("no keys start with {prefix:?}"),
            (None, Some(after)) => eprintln!("no keys after {after:?}"),
            (None, None) => eprintln!("no keys: the store is empty"),
        }
    }
    Ok(EXIT_OK)
}

/// Fetches the page after `after`.
fn fetch(
    session: &mut Session,
    args: &ListArgs,
    after: Option<&str>,
) -> Result<(Value, Page), ClientError> {
    let mut query = Vec::new();
    if let Some(prefix) = &args.prefix {
        query.push(format!("prefix={}", encode_query_value(prefix)));
    }
    if let Some(limit) = args.limit {
        query.push(format!("limit={limit}"));
    }
    if let Some(after) = after {
        query.push(format!("after={}", encode_query_value(after)));
    }
    let path = if query.is_empty() {
        "/v1/kv".to_string()
    } else {
        format!("/v1/kv?{}", query.join("&"))
    };
    let answer = check(session.send(&Request::get(path))?, None)?;
    decode(&answer)
}

fn print_item(item: &Value) -> Result<(), ClientError> {
    let key = item["key"].as_str().unwrap_or_default();
    let value = show_field(item, "value").unwrap_or_default();
    line(&format!("{}\t{value}", show_text(key)))
}
