//! One request of a workload against a target, and the node views taken before and after a run.

use std::time::Duration;

use awc::error::SendRequestError;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use super::{Target, Workload};

/// Largest answer body read (etcd range answers carry the value base64-encoded).
const BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Longest error detail kept from an answer body.
const DETAIL_CHARS: usize = 200;

/// Why one request failed: a short `kind` to count by (`http 503`, `timeout`, `connect`, ...)
/// and a detail (the start of the answer body or the error text) kept as an example.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What to count the failure as.
    pub kind: String,
    /// An example of what went wrong.
    pub detail: String,
}

impl Failure {
    fn new(kind: impl Into<String>, detail: impl Into<String>) -> Self {
        Failure {
            kind: kind.into(),
            detail: detail.into(),
        }
    }
}

/// The name of key number `index`.
pub fn key_name(index: u64) -> String {
    format!("bench-{index:08}")
}

/// The value every write stores: `value_bytes` printable bytes.
pub fn value_of(value_bytes: usize) -> Bytes {
    Bytes::from(
        (0..value_bytes)
            .map(|i| b'a' + (i % 26) as u8)
            .collect::<Vec<u8>>(),
    )
}

/// How to make the requests of one workload against one target.
#[derive(Clone, Debug)]
pub struct RequestPlan {
    target: Target,
    workload: Workload,
    value: Bytes,
    value_b64: String,
}

impl RequestPlan {
    /// The plan for `workload` against `target`, writing values of `value_bytes`.
    pub fn new(target: Target, workload: Workload, value_bytes: usize) -> Self {
        let value = value_of(value_bytes);
        let value_b64 = B64.encode(&value);
        RequestPlan {
            target,
            workload,
            value,
            value_b64,
        }
    }

    /// The URL and body of the request for key number `key` (body `None` for a raftix GET).
    pub fn request(&self, endpoint: &str, workload: Workload, key: u64) -> (String, Option<Bytes>) {
        let name = key_name(key);
        match (self.target, workload) {
            (Target::Raftix, Workload::Write) => {
                (format!("{endpoint}/v1/kv/{name}"), Some(self.value.clone()))
            }
            (Target::Raftix, read) => {
                let consistency = match read {
                    Workload::ReadLease => "lease",
                    Workload::ReadStale => "stale",
                    _ => "linearizable",
                };
                (
                    format!("{endpoint}/v1/kv/{name}?consistency={consistency}"),
                    None,
                )
            }
            (Target::Etcd, Workload::Write) => {
                let body = format!(
                    r#"{{"key":"{}","value":"{}"}}"#,
                    B64.encode(name.as_bytes()),
                    self.value_b64
                );
                (format!("{endpoint}/v3/kv/put"), Some(Bytes::from(body)))
            }
            (Target::Etcd, read) => {
                let serializable = matches!(read, Workload::ReadStale);
                let body = format!(
                    r#"{{"key":"{}","serializable":{serializable}}}"#,
                    B64.encode(name.as_bytes())
                );
                (format!("{endpoint}/v3/kv/range"), Some(Bytes::from(body)))
            }
        }
    }

    /// Sends the workload's request for key number `key` to `endpoint` and checks the answer.
    pub async fn issue(
        &self,
        client: &awc::Client,
        endpoint: &str,
        key: u64,
    ) -> Result<(), Failure> {
        self.issue_as(client, endpoint, self.workload, key).await
    }

    /// As [`RequestPlan::issue`] for another workload (the preload writes of a read workload).
    pub async fn issue_as(
        &self,
        client: &awc::Client,
        endpoint: &str,
        workload: Workload,
        key: u64,
    ) -> Result<(), Failure> {
        let (url, body) = self.request(endpoint, workload, key);
        let sent = match (self.target, workload, body) {
            (Target::Raftix, Workload::Write, Some(body)) => client.put(url).send_body(body).await,
            (Target::Raftix, _, _) => client.get(url).send().await,
            (Target::Etcd, _, body) => {
                client
                    .post(url)
                    .insert_header(("content-type", "application/json"))
                    .send_body(body.unwrap_or_default())
                    .await
            }
        };
        let mut response = sent.map_err(send_failure)?;
        let status = response.status();
        let body = response
            .body()
            .limit(BODY_LIMIT)
            .await
            .map_err(|e| Failure::new("body", e.to_string()))?;
        if !status.is_success() {
            return Err(Failure::new(
                format!("http {}", status.as_u16()),
                snippet(&body),
            ));
        }
        if self.target == Target::Etcd && workload.is_read() && !contains(&body, b"\"kvs\"") {
            return Err(Failure::new("key missing", snippet(&body)));
        }
        Ok(())
    }
}

/// Counts a send error by kind.
fn send_failure(e: SendRequestError) -> Failure {
    let kind = match &e {
        SendRequestError::Timeout => "timeout",
        SendRequestError::Connect(_) => "connect",
        _ => "send",
    };
    Failure::new(kind, e.to_string())
}

/// The start of an answer body as text.
fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .take(DETAIL_CHARS)
        .collect()
}

/// Whether `haystack` contains `needle`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What one node said about itself, before or after a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NodeView {
    /// The endpoint asked.
    pub endpoint: String,
    /// Whether it is the leader.
    pub leader: Option<bool>,
    /// Its current term.
    pub term: Option<u64>,
    /// Why it did not answer.
    pub error: Option<String>,
}

/// A JSON number or a string holding one (etcd's gateway writes 64-bit integers as strings).
fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.parse().ok())
}

/// Reads a node's role and term from a raftix `GET /v1/status` answer.
pub fn raftix_view(endpoint: &str, status: &Value) -> NodeView {
    NodeView {
        endpoint: endpoint.to_string(),
        leader: status
            .get("role")
            .and_then(Value::as_str)
            .map(|r| r.eq_ignore_ascii_case("leader")),
        term: status.get("term").and_then(as_u64),
        error: None,
    }
}

/// Reads a member's role and term from an etcd `POST /v3/maintenance/status` answer.
pub fn etcd_view(endpoint: &str, status: &Value) -> NodeView {
    let me = status
        .get("header")
        .and_then(|h| h.get("member_id"))
        .and_then(as_u64);
    let leader = status.get("leader").and_then(as_u64);
    NodeView {
        endpoint: endpoint.to_string(),
        leader: match (me, leader) {
            (Some(me), Some(leader)) => Some(me == leader),
            _ => None,
        },
        term: status.get("raftTerm").and_then(as_u64),
        error: None,
    }
}

/// Asks the node at `endpoint` for its role and term.
pub async fn view(
    client: &awc::Client,
    target: Target,
    endpoint: &str,
    timeout: Duration,
) -> NodeView {
    let failed = |e: String| NodeView {
        endpoint: endpoint.to_string(),
        error: Some(e),
        ..NodeView::default()
    };
    let sent = match target {
        Target::Raftix => {
            client
                .get(format!("{endpoint}/v1/status"))
                .timeout(timeout)
                .send()
                .await
        }
        Target::Etcd => {
            client
                .post(format!("{endpoint}/v3/maintenance/status"))
                .timeout(timeout)
                .insert_header(("content-type", "application/json"))
                .send_body("{}")
                .await
        }
    };
    let mut response = match sent {
        Ok(r) => r,
        Err(e) => return failed(e.to_string()),
    };
    let body = match response.body().limit(BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) => return failed(e.to_string()),
    };
    if !response.status().is_success() {
        return failed(format!(
            "http {}: {}",
            response.status().as_u16(),
            snippet(&body)
        ));
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(json) => match target {
            Target::Raftix => raftix_view(endpoint, &json),
            Target::Etcd => etcd_view(endpoint, &json),
        },
        Err(e) => failed(format!("not JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn raftix_requests() {
        let plan = RequestPlan::new(Target::Raftix, Workload::Write, 4);
        let (url, body) = plan.request("http://h:1", Workload::Write, 7);
        assert_eq!(url, "http://h:1/v1/kv/bench-00000007");
        assert_eq!(body.as_deref(), Some(&b"abcd"[..]));
        let (url, body) = plan.request("http://h:1", Workload::ReadLease, 7);
        assert_eq!(url, "http://h:1/v1/kv/bench-00000007?consistency=lease");
        assert!(body.is_none());
        let (url, _) = plan.request("http://h:1", Workload::ReadStale, 7);
        assert!(url.ends_with("?consistency=stale"));
        let (url, _) = plan.request("http://h:1", Workload::ReadLinearizable, 7);
        assert!(url.ends_with("?consistency=linearizable"));
    }

    #[test]
    fn etcd_requests() {
        let plan = RequestPlan::new(Target::Etcd, Workload::Write, 3);
        let (url, body) = plan.request("http://h:2", Workload::Write, 1);
        assert_eq!(url, "http://h:2/v3/kv/put");
        let body: Value = serde_json::from_slice(&body.unwrap_or_default()).unwrap_or_default();
        assert_eq!(body["key"], B64.encode("bench-00000001"));
        assert_eq!(body["value"], B64.encode("abc"));
        let (url, body) = plan.request("http://h:2", Workload::ReadStale, 1);
        assert_eq!(url, "http://h:2/v3/kv/range");
        let body: Value = serde_json::from_slice(&body.unwrap_or_default()).unwrap_or_default();
        assert_eq!(body["serializable"], true);
        let (_, body) = plan.request("http://h:2", Workload::ReadLinearizable, 1);
        let body: Value = serde_json::from_slice(&body.unwrap_or_default()).unwrap_or_default();
        assert_eq!(body["serializable"], false);
    }

    #[test]
    fn views_of_status_answers() {
        let v = raftix_view("e", &json!({"role": "LEADER", "term": 3}));
        assert_eq!((v.leader, v.term), (Some(true), Some(3)));
        let v = raftix_view("e", &json!({"role": "FOLLOWER", "term": 4}));
        assert_eq!((v.leader, v.term), (Some(false), Some(4)));
        let etcd = json!({"header": {"member_id": "42"}, "leader": "42", "raftTerm": "5"});
        let v = etcd_view("e", &etcd);
        assert_eq!((v.leader, v.term), (Some(true), Some(5)));
        let etcd = json!({"header": {"member_id": "41"}, "leader": "42", "raftTerm": "5"});
        assert_eq!(etcd_view("e", &etcd).leader, Some(false));
    }

    #[test]
    fn values_and_snippets() {
        assert_eq!(value_of(28).len(), 28);
        assert_eq!(&value_of(28)[26..], b"ab");
        assert!(contains(b"{\"kvs\":[]}", b"\"kvs\""));
        assert!(!contains(b"{}", b"\"kvs\""));
        assert_eq!(snippet(&[b'x'; 500]).len(), DETAIL_CHARS);
    }
}
