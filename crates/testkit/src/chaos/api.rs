//! The nodes' REST API as the harness uses it: one request per call on a fresh connection (a
//! pooled connection to a node that was killed would fail after the request may have been
//! written, which would turn a clean "refused" into an "unknown"), and every answer sorted into
//! what it means for the history.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::net::NodeId;

/// 503 codes for a write that certainly did not reach the log: no leader known, the entry was
/// replaced by a new leader's, or the leader could not be reached to forward it.
const NOT_APPLIED_503: [&str; 3] = ["no_leader", "proposal_dropped", "leader_unreachable"];

/// What a write attempt's answer means.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteAnswer {
    /// 200: committed and applied; the JSON body.
    Done(Value),
    /// Certainly not applied (connection refused, 307, 503 with a code that says so).
    NotApplied(String),
    /// May or may not be applied (timeout, 504, a dropped connection, anything else).
    Unknown(String),
}

/// What a read attempt's answer means.
#[derive(Clone, Debug, PartialEq)]
pub enum ReadAnswer {
    /// 200 (the value) or 404 `key_not_found` (`None`).
    Value(Option<Vec<u8>>),
    /// No value (any error): a read without an answer has no effect.
    Failed(String),
}

/// An HTTP client for the nodes' API.
#[derive(Clone, Debug)]
pub struct Api {
    http: Client,
    bases: BTreeMap<NodeId, String>,
}

/// A blocking client without connection reuse, proxies or redirects, with `timeout` per request.
pub fn client(timeout: Duration) -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .pool_max_idle_per_host(0)
        .connect_timeout(Duration::from_millis(500))
        .timeout(timeout)
        .build()
        .unwrap_or_else(|_| Client::new())
}

fn error_code(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_default()
}

fn classify_write(
    result: reqwest::Result<reqwest::blocking::Response>,
    node: NodeId,
) -> WriteAnswer {
    let resp = match result {
        Ok(resp) => resp,
        Err(e) if e.is_connect() => return WriteAnswer::NotApplied(format!("node {node}: {e}")),
        Err(e) => return WriteAnswer::Unknown(format!("node {node}: {e}")),
    };
    let status = resp.status();
    let body = match resp.text() {
        Ok(body) => body,
        Err(e) => return WriteAnswer::Unknown(format!("node {node}: {status}, body lost: {e}")),
    };
    match status {
        StatusCode::OK => match serde_json::from_str(&body) {
            Ok(v) => WriteAnswer::Done(v),
            Err(e) => WriteAnswer::Unknown(format!("node {node}: 200 with bad JSON: {e}")),
        },
        StatusCode::TEMPORARY_REDIRECT => {
            WriteAnswer::NotApplied(format!("node {node}: 307 not leader"))
        }
        StatusCode::SERVICE_UNAVAILABLE
            if NOT_APPLIED_503.contains(&error_code(&body).as_str()) =>
        {
            WriteAnswer::NotApplied(format!("node {node}: 503 {}", error_code(&body)))
        }
        _ => WriteAnswer::Unknown(format!("node {node}: {status} {}", body.trim())),
    }
}

impl Api {
    /// An API over the nodes' base URLs (`http://host:port`).
    pub fn new(bases: BTreeMap<NodeId, String>) -> Api {
        Api {
            http: client(Duration::from_secs(3)),
            bases,
        }
    }

    /// The node ids.
    pub fn ids(&self) -> Vec<NodeId> {
        self.bases.keys().copied().collect()
    }

    fn url(&self, id: NodeId, path: &str) -> String {
        format!("{}{path}", self.bases.get(&id).map_or("", String::as_str))
    }

    fn key_path(key: &str) -> String {
        format!(
            "/v1/kv/{}",
            percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC)
        )
    }

    /// `GET /v1/status` of node `id` (500 ms timeout), or `None`.
    pub fn status(&self, id: NodeId) -> Option<Value> {
        let resp = self
            .http
            .get(self.url(id, "/v1/status"))
            .timeout(Duration::from_millis(500))
            .send()
            .ok()?;
        (resp.status() == StatusCode::OK)
            .then(|| resp.json().ok())
            .flatten()
    }

    /// The node that claims leadership in the highest term among those answering, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.bases
            .keys()
            .filter_map(|&id| self.status(id))
            .filter(|s| s["role"] == "LEADER")
            .max_by_key(|s| s["term"].as_u64())
            .and_then(|s| s["id"].as_u64())
    }

    /// `POST /v1/cluster/transfer-leader` through node `via` (`to: None`: the most up-to-date
    /// voter); the answer's body or the error.
    pub fn transfer_leader(&self, via: NodeId, to: Option<NodeId>) -> Result<Value, String> {
        let body = match to {
            Some(to) => json!({ "to": to }),
            None => json!({}),
        };
        let resp = self
            .http
            .post(self.url(via, "/v1/cluster/transfer-leader"))
            .json(&body)
            .send()
            .map_err(|e| e.to_string())?;
        json_answer(resp)
    }

    /// `POST /v1/cluster/voters/{node}` (promote) or `DELETE` (demote) through node `via`; the
    /// answer's body or the error.
    pub fn change_voter(&self, via: NodeId, node: NodeId, promote: bool) -> Result<Value, String> {
        let url = self.url(via, &format!("/v1/cluster/voters/{node}"));
        let request = if promote {
            self.http.post(url)
        } else {
            self.http.delete(url)
        };
        let resp = request.send().map_err(|e| e.to_string())?;
        json_answer(resp)
    }

    /// Node `id`'s whole key-value contents from its own applied state
    /// (`GET /v1/kv?consistency=stale`, every page).
    pub fn dump(&self, id: NodeId) -> Result<BTreeMap<String, String>, String> {
        let mut out = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let mut req = self
                .http
                .get(self.url(id, "/v1/kv"))
                .query(&[("consistency", "stale"), ("limit", "1000")]);
            if let Some(a) = &after {
                req = req.query(&[("after", a.as_str())]);
            }
            let resp = req.send().map_err(|e| format!("node {id}: {e}"))?;
            if resp.status() != StatusCode::OK {
                return Err(format!("node {id}: list answered {}", resp.status()));
            }
            let page: Value = resp.json().map_err(|e| format!("node {id}: {e}"))?;
            for item in page["items"].as_array().into_iter().flatten() {
                let key = item["key"].as_str().unwrap_or_default().to_string();
                let value = match (item["value"].as_str(), item["value_base64"].as_str()) {
                    (Some(v), _) => v.to_string(),
                    (None, Some(b)) => format!("base64:{b}"),
                    (None, None) => String::new(),
                };
                out.insert(key, value);
            }
            match page["next"].as_str() {
                Some(next) => after = Some(next.to_string()),
                None => return Ok(out),
            }
        }
    }

    /// Node `id`'s committed log entries as `GET /v1/log` describes them (every page, from
    /// the first entry it still holds to its commit index).
    pub fn committed_log(&self, id: NodeId) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        let mut from = 1u64;
        loop {
            let resp = self
                .http
                .get(self.url(id, "/v1/log"))
                .query(&[("from", from.to_string()), ("limit", "1000".to_string())])
                .send()
                .map_err(|e| format!("node {id}: {e}"))?;
            if resp.status() != StatusCode::OK {
                return Err(format!("node {id}: log answered {}", resp.status()));
            }
            let page: Value = resp.json().map_err(|e| format!("node {id}: {e}"))?;
            let commit = page["commit"].as_u64().unwrap_or(0);
            let first = page["first_index"].as_u64().unwrap_or(from);
            let entries = page["entries"].as_array().cloned().unwrap_or_default();
            let last = entries.last().and_then(|e| e["index"].as_u64());
            out.extend(
                entries
                    .into_iter()
                    .filter(|e| e["index"].as_u64().is_some_and(|i| i <= commit)),
            );
            match last {
                Some(last) if last < commit => from = last + 1,
                // Compacted below `from`: continue at the first entry held.
                None if first > from && first <= commit => from = first,
                _ => return Ok(out),
            }
        }
    }

    fn write_request(req: RequestBuilder, idempotency_key: Option<&str>) -> RequestBuilder {
        match idempotency_key {
            Some(key) => req.header("Idempotency-Key", key),
            None => req,
        }
    }

    /// `PUT /v1/kv/{key}` through node `id` with client `http` (with an `Idempotency-Key` when
    /// given: retries are then applied at most once).
    pub fn put(
        &self,
        http: &Client,
        id: NodeId,
        key: &str,
        value: &[u8],
        idempotency_key: Option<&str>,
    ) -> WriteAnswer {
        let req = http
            .put(self.url(id, &Self::key_path(key)))
            .body(value.to_vec());
        classify_write(Self::write_request(req, idempotency_key).send(), id)
    }

    /// `DELETE /v1/kv/{key}` through node `id`.
    pub fn delete(
        &self,
        http: &Client,
        id: NodeId,
        key: &str,
        idempotency_key: Option<&str>,
    ) -> WriteAnswer {
        let req = http.delete(self.url(id, &Self::key_path(key)));
        classify_write(Self::write_request(req, idempotency_key).send(), id)
    }

    /// `POST /v1/kv/{key}/cas` through node `id` (values must be UTF-8: the body is JSON).
    pub fn cas(
        &self,
        http: &Client,
        id: NodeId,
        key: &str,
        expected: Option<&str>,
        value: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> WriteAnswer {
        let url = format!("{}/cas", self.url(id, &Self::key_path(key)));
        let req = http
            .post(url)
            .json(&json!({ "expected": expected, "value": value }));
        classify_write(Self::write_request(req, idempotency_key).send(), id)
    }

    /// `GET /v1/kv/{key}?consistency=...` through node `id`.
    pub fn get(&self, http: &Client, id: NodeId, key: &str, consistency: &str) -> ReadAnswer {
        let resp = match http
            .get(self.url(id, &Self::key_path(key)))
            .query(&[("consistency", consistency)])
            .send()
        {
            Ok(resp) => resp,
            Err(e) => return ReadAnswer::Failed(format!("node {id}: {e}")),
        };
        let status = resp.status();
        match status {
            StatusCode::OK => match resp.bytes() {
                Ok(b) => ReadAnswer::Value(Some(b.to_vec())),
                Err(e) => ReadAnswer::Failed(format!("node {id}: body lost: {e}")),
            },
            StatusCode::NOT_FOUND => {
                let body = resp.text().unwrap_or_default();
                if error_code(&body) == "key_not_found" {
                    ReadAnswer::Value(None)
                } else {
                    ReadAnswer::Failed(format!("node {id}: 404 {}", body.trim()))
                }
            }
            _ => ReadAnswer::Failed(format!(
                "node {id}: {status} {}",
                resp.text().unwrap_or_default().trim()
            )),
        }
    }
}

/// A 200 answer's JSON body, or the status and body of any other answer.
fn json_answer(resp: reqwest::blocking::Response) -> Result<Value, String> {
    let status = resp.status();
    let text = resp.text().unwrap_or_default();
    if status == StatusCode::OK {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    } else {
        Err(format!("{status} {}", text.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_read_from_json() {
        assert_eq!(
            error_code(r#"{"error":"no_leader","message":"x"}"#),
            "no_leader"
        );
        assert_eq!(error_code("not json"), "");
    }

    #[test]
    fn refused_connection_is_not_applied() {
        // A port nobody listens on (bound then released).
        let port = super::super::net::free_ports(1).expect("port")[0];
        let api = Api::new(BTreeMap::from([(1, format!("http://127.0.0.1:{port}"))]));
        let http = client(Duration::from_millis(500));
        assert!(matches!(
            api.put(&http, 1, "k", b"v", Some("id-1")),
            WriteAnswer::NotApplied(_)
        ));
        assert!(matches!(
            api.get(&http, 1, "k", "linearizable"),
            ReadAnswer::Failed(_)
        ));
    }
}
