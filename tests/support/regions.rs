//! Multi-region process tests: N regions, each a 3-node `raftix serve --region NAME` cluster
//! ([`ProcCluster`]) on loopback, every pair linked both ways (`POST /v1/regions` naming all the
//! nodes of the other region as endpoints).
//!
//! Every endpoint a region is given for another region is a [`LinkProxy`] the test owns (one per
//! node of the other region, per direction), so [`Regions::cut`] / [`Regions::heal`] break and
//! restore the link between two regions for real (TCP connections reset, new ones refused)
//! while every region keeps serving its clients, and [`Regions::set_delay`] makes one direction
//! slow. Intra-region traffic (Raft, follower-to-leader forwarding) never goes through them.
//!
//! Reads for convergence checks are `?consistency=stale` on each node: what that node applied.
//! Every wait is a bounded poll; a failure panics with the tail of every node's log.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::link_proxy::LinkProxy;
use super::process::{http_client, ProcCluster, POLL};

/// Nodes per region.
pub const NODES: u64 = 3;
/// Longest wait for convergence or replication.
pub const CONVERGE: Duration = Duration::from_secs(30);

/// What a node holds for a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    /// The value (`None`: absent).
    pub value: Option<Vec<u8>>,
    /// `X-Raftix-Siblings`, if present.
    pub siblings: Option<usize>,
}

/// One sibling from `GET /v1/kv/{key}?siblings=true`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sibling {
    /// Its HLC (physical ms, logical).
    pub hlc: (u64, u64),
    /// Its origin region.
    pub origin: String,
    /// A tombstone.
    pub deleted: bool,
    /// Its value as text (`None` for a tombstone).
    pub value: Option<String>,
}

/// The regions of a test.
pub struct Regions {
    /// Region names, by index.
    pub names: Vec<String>,
    /// The clusters, by index.
    pub clusters: Vec<ProcCluster>,
    /// `(i, j)`: the proxies region `i` reaches region `j`'s nodes through (one per node of `j`).
    proxies: BTreeMap<(usize, usize), Vec<LinkProxy>>,
    http: Client,
}

impl Regions {
    /// Starts one 3-node region per name, waits for their leaders and links every pair.
    pub fn start(names: &[&str]) -> Self {
        Self::start_with(names, &[])
    }

    /// Starts one 3-node region per name and waits for their leaders, linking none (see
    /// [`Regions::link`]).
    pub fn start_unlinked(names: &[&str]) -> Self {
        Self::start_unlinked_with(names, &[])
    }

    /// [`Regions::start`] passing `extra` flags to every node.
    pub fn start_with(names: &[&str], extra: &[&str]) -> Self {
        let regions = Self::start_unlinked_with(names, extra);
        for i in 0..regions.len() {
            for j in 0..regions.len() {
                if i != j {
                    regions.link(i, j);
                }
            }
        }
        regions
    }

    /// [`Regions::start_unlinked`] passing `extra` flags to every node.
    pub fn start_unlinked_with(names: &[&str], extra: &[&str]) -> Self {
        let clusters: Vec<ProcCluster> = names
            .iter()
            .map(|name| {
                let dir = tempfile::tempdir().expect("temp dir");
                let mut flags = vec!["--region", name];
                flags.extend_from_slice(extra);
                ProcCluster::start_with(NODES, dir, &flags)
            })
            .collect();
        let mut proxies = BTreeMap::new();
        for i in 0..names.len() {
            for (j, cluster) in clusters.iter().enumerate() {
                if i == j {
                    continue;
                }
                let list = cluster
                    .ids()
                    .into_iter()
                    .map(|id| LinkProxy::start(format!("127.0.0.1:{}", cluster.node(id).http_port)))
                    .collect();
                proxies.insert((i, j), list);
            }
        }
        let regions = Regions {
            names: names.iter().map(|s| s.to_string()).collect(),
            clusters,
            proxies,
            http: http_client(),
        };
        for cluster in &regions.clusters {
            cluster.wait_leader(Duration::from_secs(15));
        }
        regions
    }

    /// Number of regions.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no regions.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Index of region `name`.
    pub fn index(&self, name: &str) -> usize {
        self.names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no region {name}"))
    }

    /// Base URL of node `id` of region `r`.
    pub fn base(&self, r: usize, id: u64) -> String {
        format!("http://127.0.0.1:{}", self.clusters[r].node(id).http_port)
    }

    /// A running node of region `r` (the first).
    pub fn any_node(&self, r: usize) -> u64 {
        *self.clusters[r]
            .running()
            .first()
            .unwrap_or_else(|| self.fail(&format!("no node of region {r} runs")))
    }

    /// Registers region `j` in region `i` (`POST /v1/regions`), reached through `i`'s proxies
    /// to `j`.
    pub fn link(&self, i: usize, j: usize) {
        let endpoints: Vec<String> = self.proxies[&(i, j)]
            .iter()
            .map(|p| format!("http://{}", p.addr))
            .collect();
        let body = json!({"id": self.names[j], "endpoints": endpoints});
        let (status, answer) = self.send(i, "POST", "/v1/regions", Some(body));
        if status != StatusCode::CREATED {
            self.fail(&format!(
                "POST /v1/regions on {} naming {}: {status} {answer}",
                self.names[i], self.names[j]
            ));
        }
    }

    /// Cuts the link between regions `i` and `j`, both directions.
    pub fn cut(&self, i: usize, j: usize) {
        for key in [(i, j), (j, i)] {
            self.proxies[&key].iter().for_each(LinkProxy::cut);
        }
    }

    /// Heals the link between regions `i` and `j`, both directions.
    pub fn heal(&self, i: usize, j: usize) {
        for key in [(i, j), (j, i)] {
            self.proxies[&key].iter().for_each(LinkProxy::heal);
        }
    }

    /// Delays what region `i` sends region `j` (its batches) by `delay` per chunk.
    pub fn set_delay(&self, i: usize, j: usize, delay: Duration) {
        self.proxies[&(i, j)]
            .iter()
            .for_each(|p| p.set_delay(delay));
    }

    /// Sends a JSON request to region `r` (any running node; followers forward to the leader),
    /// retrying while there is no leader (503) or a node does not answer, for up to 15 s.
    pub fn send(
        &self,
        r: usize,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let nodes = self.clusters[r].running();
        let mut turn = 0usize;
        loop {
            let node = nodes[turn % nodes.len()];
            turn += 1;
            let url = format!("{}{path}", self.base(r, node));
            let mut request = match method {
                "GET" => self.http.get(&url),
                "POST" => self.http.post(&url),
                "PUT" => self.http.put(&url),
                "DELETE" => self.http.delete(&url),
                other => panic!("method {other}"),
            };
            if let Some(body) = &body {
                request = request.json(body);
            }
            match request.send() {
                Ok(resp) if resp.status() != StatusCode::SERVICE_UNAVAILABLE => {
                    let status = resp.status();
                    let text = resp.text().unwrap_or_default();
                    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
                    return (status, value);
                }
                Ok(_) | Err(_) if Instant::now() < deadline => thread::sleep(POLL * 2),
                Ok(resp) => return (resp.status(), json!(resp.text().unwrap_or_default())),
                Err(e) => self.fail(&format!("{method} {path} on region {r}: {e}")),
            }
        }
    }

    /// Sends a JSON request to every region and asserts a 200 (settings every region must share).
    pub fn configure_all(&self, method: &str, path: &str, body: Value) {
        for r in 0..self.len() {
            let (status, answer) = self.send(r, method, path, Some(body.clone()));
            if status != StatusCode::OK {
                self.fail(&format!(
                    "{method} {path} on {}: {status} {answer}",
                    self.names[r]
                ));
            }
        }
    }

    /// Sets the conflict policy of every region.
    pub fn set_policy(&self, policy: Value) {
        self.configure_all("PUT", "/v1/conflicts/policy", policy);
    }

    /// Writes `key` = `value` through node `node` of region `r` (forwarded to its leader) with
    /// the extra query `query` (e.g. `replication=sync`, or empty). Retries on 503 (no leader)
    /// and refused connections (trying the next node) for up to 15 s. Returns the status and
    /// JSON body; `None` when the outcome is unknown (timeout, connection reset after sending).
    pub fn put(
        &self,
        r: usize,
        node: u64,
        key: &str,
        value: &str,
        query: &str,
    ) -> Option<(StatusCode, Value)> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let ids = self.clusters[r].ids();
        let mut node = node;
        loop {
            let url = format!("{}/v1/kv/{key}?{query}", self.base(r, node));
            // Long enough for a write that waits for other regions (timeout_ms) to answer.
            let request = self.http.put(&url).timeout(Duration::from_secs(20));
            match request.body(value.to_string()).send() {
                Ok(resp) if resp.status() == StatusCode::SERVICE_UNAVAILABLE => {}
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.json().unwrap_or(Value::Null);
                    return Some((status, body));
                }
                Err(e) if e.is_connect() => {
                    let pos = ids.iter().position(|&i| i == node).unwrap_or(0);
                    node = ids[(pos + 1) % ids.len()];
                }
                Err(_) => return None,
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(POLL * 2);
        }
    }

    /// A `Send` handle writing to region `r`, for writer threads.
    pub fn writer(&self, r: usize) -> RegionWriter {
        RegionWriter {
            http: self.http.clone(),
            bases: self.clusters[r]
                .ids()
                .into_iter()
                .map(|id| self.base(r, id))
                .collect(),
        }
    }

    /// [`Regions::put`] that must answer 200; returns the body.
    pub fn put_ok(&self, r: usize, node: u64, key: &str, value: &str) -> Value {
        match self.put(r, node, key, value, "") {
            Some((StatusCode::OK, body)) => body,
            other => self.fail(&format!(
                "PUT {key}={value} in {} via node {node}: {other:?}",
                self.names[r]
            )),
        }
    }

    /// What node `id` of region `r` applied for `key` (a stale read); `None` if it does not
    /// answer.
    pub fn read(&self, r: usize, id: u64, key: &str) -> Option<Read> {
        self.read_with(r, id, key, "consistency=stale")
    }

    /// `GET /v1/kv/{key}?{query}` through node `id` of region `r` (with `consistency=all` a
    /// follower forwards it to its leader and relays the answer).
    pub fn read_with(&self, r: usize, id: u64, key: &str, query: &str) -> Option<Read> {
        let url = format!("{}/v1/kv/{key}?{query}", self.base(r, id));
        let resp = self.http.get(url).send().ok()?;
        let siblings = resp
            .headers()
            .get("x-raftix-siblings")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        match resp.status() {
            StatusCode::OK => Some(Read {
                value: Some(resp.bytes().ok()?.to_vec()),
                siblings,
            }),
            StatusCode::NOT_FOUND => Some(Read {
                value: None,
                siblings,
            }),
            _ => None,
        }
    }

    /// The siblings node `id` of region `r` holds for `key` (`?siblings=true`, stale).
    pub fn siblings(&self, r: usize, id: u64, key: &str) -> Option<Vec<Sibling>> {
        let url = format!(
            "{}/v1/kv/{key}?siblings=true&consistency=stale",
            self.base(r, id)
        );
        let resp = self.http.get(url).send().ok()?;
        if resp.status() != StatusCode::OK {
            return None;
        }
        let body: Value = resp.json().ok()?;
        Some(parse_siblings(&body))
    }

    /// `GET /v1/regions/status` of region `r` (its leader's view).
    pub fn status(&self, r: usize) -> Value {
        let (status, body) = self.send(r, "GET", "/v1/regions/status", None);
        if status != StatusCode::OK {
            self.fail(&format!(
                "regions status of {}: {status} {body}",
                self.names[r]
            ));
        }
        body
    }

    /// The link entry for region `remote` in region `r`'s status.
    pub fn link_status(&self, r: usize, remote: usize) -> Value {
        let status = self.status(r);
        status["regions"]
            .as_array()
            .and_then(|l| l.iter().find(|e| e["id"] == self.names[remote].as_str()))
            .cloned()
            .unwrap_or_else(|| self.fail(&format!("no link to {} in {status}", self.names[remote])))
    }

    /// `GET /v1/conflicts/stats` of region `r`.
    pub fn conflict_stats(&self, r: usize) -> Value {
        let (status, body) = self.send(r, "GET", "/v1/conflicts/stats", None);
        if status != StatusCode::OK {
            self.fail(&format!(
                "conflict stats of {}: {status} {body}",
                self.names[r]
            ));
        }
        body
    }

    /// Unregisters region `j` in region `i` (`DELETE /v1/regions/{j}`).
    pub fn unlink(&self, i: usize, j: usize) {
        let path = format!("/v1/regions/{}", self.names[j]);
        let (status, answer) = self.send(i, "DELETE", &path, None);
        if status != StatusCode::OK {
            self.fail(&format!(
                "DELETE {path} on {}: {status} {answer}",
                self.names[i]
            ));
        }
    }

    /// Whether every region has shipped its whole outbox to every other one and that one
    /// applied it: for every ordered pair `(i, j)`, `j`'s `applied_from_seq` for `i` equals
    /// `i`'s `last_seq`, which `j` acknowledged.
    pub fn replicated(&self) -> bool {
        let statuses: Vec<Value> = (0..self.len()).map(|r| self.status(r)).collect();
        let link = |r: usize, remote: usize| -> Option<&Value> {
            statuses[r]["regions"]
                .as_array()?
                .iter()
                .find(|e| e["id"] == self.names[remote].as_str())
        };
        (0..self.len()).all(|i| {
            (0..self.len()).filter(|&j| j != i).all(|j| {
                let (Some(out), Some(back)) = (link(i, j), link(j, i)) else {
                    return false;
                };
                let last = out["last_seq"].as_u64();
                last.is_some()
                    && out["last_acked_seq"].as_u64() == last
                    && back["applied_from_seq"].as_u64() == last
            })
        })
    }

    /// Waits until [`Regions::replicated`].
    pub fn wait_replicated(&self, timeout: Duration) {
        let start = Instant::now();
        while !self.replicated() {
            if start.elapsed() > timeout {
                let statuses: Vec<Value> = (0..self.len()).map(|r| self.status(r)).collect();
                self.fail(&format!(
                    "regions not caught up after {timeout:?}: {}",
                    serde_json::to_string_pretty(&statuses).unwrap_or_default()
                ));
            }
            thread::sleep(POLL * 5);
        }
    }

    /// Every (region, node) pair.
    pub fn all_nodes(&self) -> Vec<(usize, u64)> {
        (0..self.len())
            .flat_map(|r| {
                self.clusters[r]
                    .running()
                    .into_iter()
                    .map(move |id| (r, id))
            })
            .collect()
    }

    /// Waits until every running node of every region holds the same value for each of `keys`
    /// (after the regions caught up with each other); returns those values.
    pub fn wait_converged(
        &self,
        keys: &[String],
        timeout: Duration,
    ) -> BTreeMap<String, Option<Vec<u8>>> {
        self.wait_replicated(timeout);
        let start = Instant::now();
        loop {
            let mut differ = None;
            let mut values = BTreeMap::new();
            'keys: for key in keys {
                let mut first: Option<Option<Vec<u8>>> = None;
                for (r, id) in self.all_nodes() {
                    let got = self.read(r, id, key).map(|read| read.value);
                    match (&first, got) {
                        (_, None) => {
                            differ = Some(format!(
                                "{}/node {id} did not answer for {key}",
                                self.names[r]
                            ));
                            break 'keys;
                        }
                        (None, Some(v)) => first = Some(v),
                        (Some(f), Some(v)) if *f != v => {
                            differ = Some(format!(
                                "{key}: {}/node {id} holds {:?}, another node {:?}",
                                self.names[r],
                                v.as_deref().map(String::from_utf8_lossy),
                                f.as_deref().map(String::from_utf8_lossy)
                            ));
                            break 'keys;
                        }
                        _ => {}
                    }
                }
                values.insert(key.clone(), first.flatten());
            }
            match differ {
                None => return values,
                Some(why) if start.elapsed() > timeout => {
                    self.fail(&format!("no convergence after {timeout:?}: {why}"))
                }
                Some(_) => thread::sleep(POLL * 5),
            }
        }
    }

    /// Waits until every running node of every region reads `expected` for `key`.
    pub fn wait_value_everywhere(&self, key: &str, expected: Option<&str>, timeout: Duration) {
        let start = Instant::now();
        loop {
            let wrong = self.all_nodes().into_iter().find_map(|(r, id)| {
                let got = self.read(r, id, key).map(|read| read.value);
                let want = expected.map(|e| e.as_bytes().to_vec());
                (got.as_ref() != Some(&want)).then(|| {
                    format!(
                        "{}/node {id} holds {:?}",
                        self.names[r],
                        got.map(|v| v.map(|v| String::from_utf8_lossy(&v).into_owned()))
                    )
                })
            });
            match wrong {
                None => return,
                Some(why) if start.elapsed() > timeout => self.fail(&format!(
                    "{key} is not {expected:?} everywhere after {timeout:?}: {why}"
                )),
                Some(_) => thread::sleep(POLL * 5),
            }
        }
    }

    /// The leader of region `r` (waits for one).
    pub fn leader(&self, r: usize) -> u64 {
        self.clusters[r].wait_leader(Duration::from_secs(15)).0
    }

    /// The tail of every node's log of every region.
    pub fn log_tails(&self) -> String {
        self.names
            .iter()
            .zip(&self.clusters)
            .map(|(name, c)| format!("\n===== region {name} ====={}", c.log_tails()))
            .collect()
    }

    /// Panics with `msg` and every node's log tail.
    pub fn fail(&self, msg: &str) -> ! {
        panic!("{msg}\nnode log tails:{}", self.log_tails());
    }
}

/// Writes to one region from a thread (see [`Regions::writer`]).
#[derive(Clone)]
pub struct RegionWriter {
    http: Client,
    /// Base URL of each node, node 1 first.
    pub bases: Vec<String>,
}

/// How a write ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 200.
    Acked,
    /// Maybe applied, maybe not (timeout, connection lost after sending, 5xx other than 503).
    Unknown(String),
}

impl RegionWriter {
    /// Writes `key` = `value` (`None`: deletes it) through node index `node` (0-based), moving
    /// to the next node while there is no leader or the node is down, for up to 15 s.
    pub fn write(&self, node: usize, key: &str, value: Option<&str>) -> Outcome {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut node = node % self.bases.len();
        let mut last = String::new();
        while Instant::now() < deadline {
            let url = format!("{}/v1/kv/{key}", self.bases[node]);
            let request = match value {
                Some(v) => self.http.put(&url).body(v.to_string()),
                None => self.http.delete(&url),
            };
            match request.send() {
                Ok(resp) if resp.status() == StatusCode::OK => return Outcome::Acked,
                Ok(resp) if resp.status() == StatusCode::NOT_FOUND && value.is_none() => {
                    return Outcome::Acked
                }
                Ok(resp) if resp.status() == StatusCode::SERVICE_UNAVAILABLE => {
                    last = format!("503 {}", resp.text().unwrap_or_default());
                    node = (node + 1) % self.bases.len();
                }
                Ok(resp) => {
                    return Outcome::Unknown(format!(
                        "{} {}",
                        resp.status(),
                        resp.text().unwrap_or_default()
                    ))
                }
                Err(e) if e.is_connect() => {
                    last = e.to_string();
                    node = (node + 1) % self.bases.len();
                }
                Err(e) => return Outcome::Unknown(e.to_string()),
            }
            thread::sleep(POLL * 2);
        }
        Outcome::Unknown(format!("no answer within 15 s: {last}"))
    }

    /// The versions of `key` through node index `node` (a linearizable read: it reflects every
    /// write acknowledged before it), retrying on other nodes for up to 10 s.
    pub fn siblings(&self, node: usize, key: &str) -> Option<Vec<Sibling>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut node = node % self.bases.len();
        while Instant::now() < deadline {
            let url = format!("{}/v1/kv/{key}?siblings=true", self.bases[node]);
            if let Ok(resp) = self.http.get(url).send() {
                if resp.status() == StatusCode::OK {
                    let body: Value = resp.json().ok()?;
                    return Some(parse_siblings(&body));
                }
            }
            node = (node + 1) % self.bases.len();
            thread::sleep(POLL * 2);
        }
        None
    }
}

/// The siblings of a `?siblings=true` answer, sorted.
pub fn parse_siblings(body: &Value) -> Vec<Sibling> {
    let mut out: Vec<Sibling> = body["siblings"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let hlc = s["hlc"].as_str().unwrap_or("0.0");
            let (ms, logical) = hlc.split_once('.').unwrap_or((hlc, "0"));
            Sibling {
                hlc: (ms.parse().unwrap_or(0), logical.parse().unwrap_or(0)),
                origin: s["origin"].as_str().unwrap_or_default().to_string(),
                deleted: s["deleted"].as_bool().unwrap_or(false),
                value: s["value"].as_str().map(str::to_string),
            }
        })
        .collect();
    out.sort();
    out
}

/// The seed of a randomised test: `RAFTIX_TEST_SEED` or the clock; printed so a failure can be
/// replayed.
pub fn seed() -> u64 {
    let seed = std::env::var("RAFTIX_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
    eprintln!("seed = {seed} (replay with RAFTIX_TEST_SEED={seed})");
    seed
}
