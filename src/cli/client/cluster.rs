//! `status`, `members` and `log`: views of the cluster.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::args::{LogArgs, OptsOnly};
use super::error::{ClientError, EXIT_OK};
use super::output::{check, decode, json_line, line, show_field, show_text, table};
use super::session::Request;
use super::session_of;

/// `GET /v1/status`.
#[derive(Debug, Deserialize)]
struct Status {
    id: u64,
    role: String,
    term: u64,
    leader: Option<u64>,
    leader_addr: Option<String>,
    commit: u64,
    applied: u64,
    last_log_index: u64,
    last_log_term: u64,
    members: Vec<u64>,
    #[serde(default)]
    peers: BTreeMap<u64, Peer>,
    #[serde(default)]
    health: Option<Health>,
}

/// A node's health state and why.
#[derive(Debug, Deserialize)]
struct Health {
    state: String,
    reason: Option<String>,
}

/// A follower's progress on the leader.
#[derive(Debug, Deserialize)]
struct Peer {
    match_index: u64,
    next_index: u64,
    lag: u64,
}

/// `status`: the first answering node's status as aligned `name  value` lines.
pub fn status(args: OptsOnly) -> Result<u8, ClientError> {
    let mut session = session_of(&args.opts)?;
    let answer = check(session.send(&Request::get("/v1/status".into()))?, None)?;
    let (raw, status): (Value, Status) = decode(&answer)?;
    if args.opts.json {
        json_line(&raw)?;
        return Ok(EXIT_OK);
    }
    let leader = match (status.leader, &status.leader_addr) {
        (Some(id), Some(addr)) => format!("{id} at {addr}"),
        (Some(id), None) => id.to_string(),
        (None, _) => "none known".to_string(),
    };
    let members: Vec<String> = status.members.iter().map(u64::to_string).collect();
    let mut rows = vec![
        vec!["node".into(), format!("{} at {}", status.id, answer.from)],
        vec!["role".into(), status.role.clone()],
        vec![
            "health".into(),
            match &status.health {
                Some(Health {
                    state,
                    reason: Some(reason),
                }) => format!("{state}: {reason}"),
                Some(Health { state, .. }) => state.clone(),
                None => "unknown".into(),
            },
        ],
        vec!["term".into(), status.term.to_string()],
        vec!["leader".into(), leader],
        vec!["commit".into(), status.commit.to_string()],
        vec!["applied".into(), status.applied.to_string()],
        vec![
            "last log".into(),
            format!("{} (term {})", status.last_log_index, status.last_log_term),
        ],
        vec!["members".into(), members.join(", ")],
    ];
    for (id, peer) in &status.peers {
        rows.push(vec![
            format!("peer {id}"),
            format!(
                "match {} next {} lag {}",
                peer.match_index, peer.next_index, peer.lag
            ),
        ]);
    }
    line(&table(&rows))?;
    Ok(EXIT_OK)
}

/// `GET /v1/cluster`.
#[derive(Debug, Deserialize)]
struct ClusterView {
    id: u64,
    term: u64,
    leader: Option<u64>,
    members: Vec<Member>,
}

/// One member as the answering node sees it.
#[derive(Debug, Deserialize)]
struct Member {
    id: u64,
    http_addr: Option<String>,
    is_self: bool,
    is_leader: bool,
    health: String,
    lag: Option<u64>,
    #[serde(default)]
    suffrage: Option<String>,
    /// ACTIVE, SYNCING or DEGRADED, as the answering node sees the member.
    #[serde(default)]
    state: Option<String>,
}

/// `members`: a table of the members. Asked of the leader when the first answer names one
/// (only the leader knows every member's lag); otherwise the first answer is shown.
pub fn members(args: OptsOnly) -> Result<u8, ClientError> {
    let mut session = session_of(&args.opts)?;
    let request = Request::get("/v1/cluster".into());
    let mut answer = check(session.send(&request)?, None)?;
    let (mut raw, mut view): (Value, ClusterView) = decode(&answer)?;
    let leader_url = view
        .members
        .iter()
        .find(|m| m.is_leader && !m.is_self)
        .and_then(|m| m.http_addr.as_deref())
        .map(http_url);
    if let Some(url) = leader_url {
        session.set_leader(url.clone());
        let better = session
            .send_to(&url, &request)
            .and_then(|a| check(a, None).ok());
        if let Some(better) = better {
            if let Ok(decoded) = decode::<ClusterView>(&better) {
                (raw, view) = decoded;
                answer = better;
            }
        }
    }
    if args.opts.json {
        json_line(&raw)?;
        return Ok(EXIT_OK);
    }
    let mut rows = vec![vec![
        "ID".to_string(),
        "ROLE".to_string(),
        "HEALTH".to_string(),
        "LAG".to_string(),
        "HTTP".to_string(),
    ]];
    for m in &view.members {
        let learner = m.suffrage.as_deref() == Some("learner");
        let role = match (m.is_leader, view.leader) {
            (true, _) => "leader",
            (false, _) if learner => "learner",
            (false, Some(_)) => "follower",
            (false, None) => "voter (no leader)",
        };
        // The member's health state as the answering node sees it (the leader, when it could
        // be reached); `unreachable` when it cannot be reached at all.
        let health = match (m.health.as_str(), &m.state) {
            ("unreachable", _) => "unreachable".to_string(),
            (_, Some(state)) => state.clone(),
            (other, None) => other.to_string(),
        };
        rows.push(vec![
            format!("{}{}", m.id, if m.is_self { "*" } else { "" }),
            role.to_string(),
            health,
            m.lag.map_or("-".to_string(), |l| l.to_string()),
            m.http_addr.clone().unwrap_or_else(|| "-".to_string()),
        ]);
    }
    line(&table(&rows))?;
    line(&format!(
        "* answered by node {} at {} (term {})",
        view.id, answer.from, view.term
    ))?;
    Ok(EXIT_OK)
}

/// `http://` + `addr` unless it already has a scheme.
fn http_url(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// `GET /v1/log`.
#[derive(Debug, Deserialize)]
struct LogPage {
    entries: Vec<Value>,
}

/// `log`: one line per entry, `INDEX  term T  noop` or `INDEX  term T  OP ...`.
pub fn log(args: LogArgs) -> Result<u8, ClientError> {
    let mut session = session_of(&args.opts)?;
    let mut query = Vec::new();
    if let Some(from) = args.from {
        query.push(format!("from={from}"));
    }
    if let Some(limit) = args.limit {
        query.push(format!("limit={limit}"));
    }
    let path = if query.is_empty() {
        "/v1/log".to_string()
    } else {
        format!("/v1/log?{}", query.join("&"))
    };
    let answer = check(session.send(&Request::get(path))?, None)?;
    let (raw, page): (Value, LogPage) = decode(&answer)?;
    if args.opts.json {
        json_line(&raw)?;
        return Ok(EXIT_OK);
    }
    let rows: Vec<Vec<String>> = page
        .entries
        .iter()
        .map(|e| {
            vec![
                e["index"].to_string(),
                format!("term {}", e["term"]),
                describe(e),
            ]
        })
        .collect();
    if !rows.is_empty() {
        line(&table(&rows))?;
    }
    Ok(EXIT_OK)
}

/// One entry's payload for people: `noop`, `config voters=[1, 2, 3] learners=[4]`,
/// `put KEY = VALUE`, `delete KEY`, `cas KEY expected=V value=V`, `txn put a, delete b if 1
/// guard(s)`, the token and region records in words, and `unknown: RAW` for a payload this
/// version cannot decode. Every kind `/v1/log` documents is decoded.
fn describe(entry: &Value) -> String {
    let command = &entry["command"];
    match entry["type"].as_str() {
        Some("noop") => return "noop".to_string(),
        Some("config") => {
            let ids = |name: &str| {
                let list: Vec<String> = command[name]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(Value::to_string)
                    .collect();
                format!("[{}]", list.join(", "))
            };
            return format!(
                "config voters={} learners={}",
                ids("voters"),
                ids("learners")
            );
        }
        _ => {}
    }
    let text = |name: &str| command[name].as_str().map(show_text).unwrap_or_default();
    let key = text("key");
    let field = |name: &str| show_field(command, name).unwrap_or_else(|| "<absent>".to_string());
    match command["op"].as_str() {
        Some("put") => format!("put {key} = {}", field("value")),
        Some("delete") => format!("delete {key}"),
        Some("cas") => format!(
            "cas {key} expected={} value={}",
            field("expected"),
            field("value")
        ),
        Some("txn") => {
            let ops: Vec<String> = command["ops"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|op| {
                    let key = op["key"].as_str().map(show_text).unwrap_or_default();
                    format!("{} {key}", op["op"].as_str().unwrap_or("op"))
                })
                .collect();
            let guards = command["guards"].as_array().map_or(0, Vec::len);
            let mut line = format!("txn {}", ops.join(", "));
            if guards > 0 {
                line.push_str(&format!(" if {guards} guard(s)"));
            }
            line
        }
        Some("token_put") => format!(
            "token put {} role={}",
            text("name"),
            command["role"].as_str().unwrap_or("unknown")
        ),
        Some("token_delete") => format!("token delete {}", text("name")),
        Some("region") => format!("region {}", text("change")),
        Some("region_apply") => format!(
            "region apply from {}: {} mutation(s)",
            text("from"),
            command["mutations"].as_u64().unwrap_or(0)
        ),
        Some("region_acked") => format!(
            "region acked by {} up to seq {}",
            text("region"),
            command["seq"].as_u64().unwrap_or(0)
        ),
        Some("unknown") => format!("unknown: {}", field("raw")),
        _ => command.to_string(),
    }
}

/// The answer of a leadership transfer.
#[derive(Debug, Deserialize)]
struct Transferred {
    leader: u64,
    term: u64,
}

/// `transfer-leader [--to ID]`: prints `OK leader=N term=T` once the new leader took office.
pub fn transfer_leader(args: super::args::TransferArgs) -> Result<u8, ClientError> {
    let mut session = session_of(&args.opts)?;
    let body = match args.to {
        Some(id) => serde_json::json!({ "to": id }),
        None => serde_json::json!({}),
    };
    let bytes = serde_json::to_vec(&body).map_err(|e| ClientError::Invalid(e.to_string()))?;
    let request = Request::write(
        reqwest::Method::POST,
        "/v1/cluster/transfer-leader".into(),
        Some((bytes, "application/json")),
    );
    let answer = check(session.send(&request)?, None)?;
    let (raw, done): (Value, Transferred) = decode(&answer)?;
    if args.opts.json {
        json_line(&raw)?;
    } else {
        line(&format!("OK leader={} term={}", done.leader, done.term))?;
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn every_entry_kind_is_described_in_words() {
        let cases = [
            (json!({"type": "noop", "command": null}), "noop"),
            (
                json!({"type": "config", "command": {"voters": [1, 2, 3], "learners": [4], "addrs": {}}}),
                "config voters=[1, 2, 3] learners=[4]",
            ),
            (
                json!({"type": "command", "command": {"op": "txn", "guards": [{"key": "a"}], "ops": [{"op": "put", "key": "a", "value": "1"}, {"op": "delete", "key": "b"}]}}),
                "txn put a, delete b if 1 guard(s)",
            ),
            (
                json!({"type": "command", "command": {"op": "region", "change": "add region us at http://10.0.0.9:8080"}}),
                "region add region us at http://10.0.0.9:8080",
            ),
            (
                json!({"type": "command", "command": {"op": "region_acked", "region": "us", "seq": 7}}),
                "region acked by us up to seq 7",
            ),
        ];
        for (entry, words) in cases {
            assert_eq!(super::describe(&entry), words);
        }
    }
}
