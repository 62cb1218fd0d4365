//! Talking to the cluster: endpoint failover, leader following and retries of one invocation.
//!
//! - Every request tries the remembered leader first (if any), then the endpoints in order. A
//!   refused connection, a 503 (no leader, proposal dropped), a 429 (too many requests in flight:
//!   nothing was done) or a failed attempt moves on to the next endpoint after a short backoff; each endpoint is tried at most
//!   [`TRIES_PER_ENDPOINT`] times, and the whole request (retries and backoff included) must
//!   finish within `--timeout-ms`.
//! - Writes carry `?redirect=true`: a follower answers 307 with the leader's URL in `Location`,
//!   which is followed once per attempt and remembered as the leader for the rest of the
//!   invocation; a write that succeeds also marks its endpoint as the leader.
//! - Every write carries an `Idempotency-Key` (128 random bits, hex) generated once and reused on
//!   every retry of that write, so a retry after an ambiguous failure (timeout, dropped
//!   connection, 504) is applied at most once: the server answers a duplicate with the first
//!   result. Running the command again generates a new key, so that is a new write.

use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};

use super::endpoint::base_of;
use super::error::ClientError;
use super::tls::ClientTls;

/// How many times one endpoint may be tried for one request.
pub const TRIES_PER_ENDPOINT: u32 = 2;
/// Pause after a failed attempt, by round (first pass over the endpoints, second pass).
const BACKOFF: [Duration; 2] = [Duration::from_millis(50), Duration::from_millis(250)];
/// Longest wait for a TCP connection before trying the next endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// The idempotency header the server deduplicates writes by.
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// One request to send (the path is relative to an endpoint, query included).
#[derive(Debug, Clone)]
pub struct Request {
    /// HTTP method.
    pub method: Method,
    /// Path and query, e.g. `/v1/kv/a%2Fb`.
    pub path: String,
    /// Body and its content type.
    pub body: Option<(Vec<u8>, &'static str)>,
    /// Whether this changes state (sent with `?redirect=true` and an idempotency key).
    pub write: bool,
}

impl Request {
    /// A read (`GET path`).
    pub fn get(path: String) -> Self {
        Self {
            method: Method::GET,
            path,
            body: None,
            write: false,
        }
    }

    /// A write with an optional body.
    pub fn write(method: Method, path: String, body: Option<(Vec<u8>, &'static str)>) -> Self {
        Self {
            method,
            path,
            body,
            write: true,
        }
    }
}

/// A final answer (any status other than the retried ones), fully read.
#[derive(Debug)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Vec<u8>,
    /// The base URL of the endpoint that answered.
    pub from: String,
}

/// Why one attempt did not give a final answer.
#[derive(Debug)]
enum Failure {
    /// Nothing was sent (connection refused or connect timeout).
    Refused(String),
    /// The node knows no leader, or dropped the proposal before appending it.
    NoLeader(String),
    /// The node refused the request unprocessed: too many requests in flight (429).
    Busy(String),
    /// The request may have been received (timeout, broken connection, 504).
    Ambiguous(String),
}

/// The connection state of one invocation: endpoints, HTTP client, and the leader once known.
pub struct Session {
    http: Client,
    endpoints: Vec<String>,
    leader: Option<String>,
    timeout: Duration,
    /// `consistency=` added to key-value reads.
    consistency: Option<String>,
    /// `ack=` added to writes.
    ack: Option<String>,
    /// Bearer token sent with every request.
    token: Option<String>,
    /// `replication=` added to key-value writes.
    replication: Option<String>,
}

impl Session {
    /// A session over `endpoints` (normalized base URLs, at least one) where each request may
    /// take `timeout` in all.
    /// HTTPS settings come from `RAFTIX_CACERT`, `RAFTIX_CERT` and `RAFTIX_KEY`.
    pub fn new(endpoints: Vec<String>, timeout: Duration) -> Result<Self, ClientError> {
        Self::with_tls(endpoints, timeout, &ClientTls::from_env())
    }

    /// A session like [`Session::new`] with the HTTPS settings `tls`.
    pub fn with_tls(
        endpoints: Vec<String>,
        timeout: Duration,
        tls: &ClientTls,
    ) -> Result<Self, ClientError> {
        if endpoints.is_empty() {
            return Err(ClientError::Invalid("no endpoint given".to_string()));
        }
        let builder = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout);
        let http = tls
            .apply(builder, &endpoints)?
            .build()
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(Self {
            http,
            endpoints,
            leader: None,
            timeout,
            consistency: None,
            ack: None,
            replication: None,
            token: token_from_env(),
        })
    }

    /// The leader's base URL, once a redirect or a successful write has shown it.
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    /// Remembers `base` as the leader's URL (e.g. learnt from a status answer).
    pub fn set_leader(&mut self, base: String) {
        self.leader = Some(base);
    }

    /// Sends `request` to one endpoint only (no failover); used for best-effort extra queries.
    pub fn send_to(&self, base: &str, request: &Request) -> Option<Answer> {
        let deadline = Instant::now() + self.timeout;
        let url = format!("{base}{}", request.path);
        let response = self.once(&url, request, None, deadline).ok()?;
        read_answer(response, base).ok()
    }

    /// Sends `request` with failover and leader following (see the module docs). Returns the
    /// first answer that is final (2xx, 4xx, 5xx other than 503/504), or why there was none.
    pub fn send(&mut self, request: &Request) -> Result<Answer, ClientError> {
        let deadline = Instant::now() + self.timeout;
        let idempotency_key = request.write.then(new_idempotency_key);
        let key = idempotency_key.as_deref();
        let mut failures: Vec<(String, Failure)> = Vec::new();
        let mut tried: HashMap<String, u32> = HashMap::new();
        for backoff in BACKOFF.iter().take(TRIES_PER_ENDPOINT as usize) {
            for base in self.candidates() {
                let count = tried.entry(base.clone()).or_insert(0);
                if *count >= TRIES_PER_ENDPOINT {
                    continue;
                }
                *count += 1;
                if Instant::now() >= deadline {
                    return Err(summarize(request, failures, Some(self.timeout)));
                }
                match self.attempt(&base, request, key, deadline) {
                    Ok(answer) => return Ok(answer),
                    Err(failure) => failures.push((base, failure)),
                }
                let pause = (*backoff).min(deadline.saturating_duration_since(Instant::now()));
                thread::sleep(pause);
            }
        }
        Err(summarize(request, failures, None))
    }

    /// The remembered leader first, then the endpoints in order, without repeats.
    fn candidates(&self) -> Vec<String> {
        let mut out: Vec<String> = self.leader.iter().cloned().collect();
        for e in &self.endpoints {
            if !out.contains(e) {
                out.push(e.clone());
            }
        }
        out
    }

    /// Sends `Authorization: Bearer TOKEN` with every request (`None`: keep the token of
    /// `RAFTIX_TOKEN`, if any).
    pub fn with_token(mut self, token: Option<String>) -> Self {
        if let Some(token) = token.filter(|t| !t.is_empty()) {
            self.token = Some(token);
        }
        self
    }

    /// Adds `replication=` (multi-region acknowledgement) to key-value writes.
    pub fn with_replication(mut self, replication: Option<String>) -> Self {
        self.replication = replication;
        self
    }

    /// Adds `consistency=` to key-value reads and `ack=` to writes.
    pub fn with_levels(mut self, consistency: Option<String>, ack: Option<String>) -> Self {
        self.consistency = consistency;
        self.ack = ack;
        self
    }

    /// One attempt at `base`, following one 307 for a write.
    fn attempt(
        &mut self,
        base: &str,
        request: &Request,
        key: Option<&str>,
        deadline: Instant,
    ) -> Result<Answer, Failure> {
        let mut path = request.path.clone();
        let mut add = |param: String| {
            let sep = if path.contains('?') { '&' } else { '?' };
            path = format!("{path}{sep}{param}");
        };
        let replicated_data = request.path.starts_with("/v1/kv") || request.path == "/v1/txn";
        if request.write {
            // A snapshot is taken by the node asked, never forwarded: it takes no `redirect`.
            if !request.path.starts_with("/v1/admin/") {
                add("redirect=true".to_string());
            }
            if let (Some(ack), true) = (&self.ack, replicated_data) {
                add(format!("ack={ack}"));
            }
            if let (Some(mode), true) = (&self.replication, request.path.starts_with("/v1/kv")) {
                add(format!("replication={mode}"));
            }
        } else if request.path.starts_with("/v1/kv") {
            if let Some(level) = &self.consistency {
                add(format!("consistency={level}"));
            }
        }
        let mut url = format!("{base}{path}");
        let mut at = base.to_string();
        let mut redirects = 0;
        loop {
            let response = self.once(&url, request, key, deadline)?;
            match response.status() {
                StatusCode::TEMPORARY_REDIRECT if request.write && redirects == 0 => {
                    let location = response
                        .headers()
                        .get(LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let Some((location, leader)) =
                        location.and_then(|l| base_of(&l).map(|b| (l, b)))
                    else {
                        return Err(Failure::NoLeader(format!(
                            "{at} redirected without a usable Location"
                        )));
                    };
                    self.leader = Some(leader.clone());
                    url = location;
                    at = leader;
                    redirects += 1;
                }
                StatusCode::TEMPORARY_REDIRECT => {
                    return Err(Failure::NoLeader(format!(
                        "{at} redirected again (leadership is moving)"
                    )))
                }
                StatusCode::SERVICE_UNAVAILABLE => {
                    // Shown after `no leader: `: the node's own sentence, once.
                    let message = message_of(response);
                    let message = message.strip_prefix("no leader: ").unwrap_or(&message);
                    return Err(Failure::NoLeader(format!("{message} (asked {at})")));
                }
                StatusCode::TOO_MANY_REQUESTS => {
                    return Err(Failure::Busy(format!("{at}: {}", message_of(response))))
                }
                StatusCode::GATEWAY_TIMEOUT => {
                    return Err(Failure::Ambiguous(format!(
                        "{at}: {}",
                        message_of(response)
                    )))
                }
                status => {
                    let answer = read_answer(response, &at)?;
                    if request.write && status.is_success() {
                        self.leader = Some(at);
                    }
                    return Ok(answer);
                }
            }
        }
    }

    /// Sends `request` to `url` once, within what is left until `deadline`.
    fn once(
        &self,
        url: &str,
        request: &Request,
        key: Option<&str>,
        deadline: Instant,
    ) -> Result<Response, Failure> {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut builder = self
            .http
            .request(request.method.clone(), url)
            .timeout(left.max(Duration::from_millis(1)));
        if let Some(key) = key {
            builder = builder.header(IDEMPOTENCY_KEY, key);
        }
        if let Some(token) = &self.token {
            builder = builder.bearer_auth(token);
        }
        if let Some((body, content_type)) = &request.body {
            builder = builder
                .header(CONTENT_TYPE, *content_type)
                .body(body.clone());
        }
        builder.send().map_err(|e| {
            let mut what = format!("{}: {}", base_of(url).unwrap_or_default(), root_cause(&e));
            // A node serving HTTPS drops a plain HTTP request without an HTTP answer.
            if url.starts_with("http://") && !e.is_connect() && !e.is_timeout() {
                what.push_str(&format!(
                    " (if this node serves HTTPS, try {})",
                    url.replacen("http://", "https://", 1)
                        .split("/v1/")
                        .next()
                        .unwrap_or_default()
                ));
            }
            if e.is_connect() {
                Failure::Refused(what)
            } else {
                Failure::Ambiguous(what)
            }
        })
    }
}

/// The token of the `RAFTIX_TOKEN` environment variable: every session sends it (the client
/// subcommands' `--token` overrides it; `serve --join` and the promotion after it use it).
pub fn token_from_env() -> Option<String> {
    std::env::var("RAFTIX_TOKEN").ok().filter(|t| !t.is_empty())
}

/// Reads the whole body of a final answer.
fn read_answer(response: Response, from: &str) -> Result<Answer, Failure> {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .map_err(|e| Failure::Ambiguous(format!("{from}: reading the answer: {}", root_cause(&e))))?
        .to_vec();
    Ok(Answer {
        status,
        headers,
        body,
        from: from.to_string(),
    })
}

/// The `message` of a JSON error answer, or its status.
fn message_of(response: Response) -> String {
    let status = response.status();
    let body: Option<serde_json::Value> = response.json().ok();
    body.as_ref()
        .and_then(|b| b["message"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| status.to_string())
}

/// The innermost cause of an error chain ("Connection refused (os error 111)").
fn root_cause(err: &dyn std::error::Error) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    if text.is_empty() {
        err.to_string()
    } else {
        text
    }
}

/// A fresh idempotency key: 128 random bits in hex.
pub fn new_idempotency_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The error after every attempt failed: outcome unknown if a write may have been received,
/// else no leader if some node answered, else unreachable.
fn summarize(
    request: &Request,
    failures: Vec<(String, Failure)>,
    out_of_time: Option<Duration>,
) -> ClientError {
    let mut ambiguous = Vec::new();
    let mut no_leader = Vec::new();
    let mut busy = Vec::new();
    let mut refused = Vec::new();
    for (_, failure) in failures {
        match failure {
            Failure::Ambiguous(m) => ambiguous.push(m),
            Failure::NoLeader(m) => no_leader.push(m),
            Failure::Busy(m) => busy.push(m),
            Failure::Refused(m) => refused.push(m),
        }
    }
    let detail = |list: &[String]| {
        let mut unique: Vec<&str> = Vec::new();
        for item in list {
            if !unique.contains(&item.as_str()) {
                unique.push(item);
            }
        }
        let mut text = unique.join("; ");
        if let Some(limit) = out_of_time {
            text.push_str(&format!(
                " (gave up after {} ms, see --timeout-ms)",
                limit.as_millis()
            ));
        }
        text
    };
    if request.write && !ambiguous.is_empty() {
        ClientError::OutcomeUnknown(detail(&ambiguous))
    } else if !no_leader.is_empty() {
        ClientError::NoLeader(detail(&no_leader))
    } else if !busy.is_empty() {
        ClientError::Busy(detail(&busy))
    } else {
        let all: Vec<String> = refused.into_iter().chain(ambiguous).collect();
        ClientError::Unreachable(detail(&all))
    }
}
