//! What the HTTP tests share to talk to served nodes: their client, a request carrying a bearer
//! token, and sending a request and reading its whole answer.

use awc::http::header::HeaderMap;
use bytes::Bytes;
use serde_json::Value;

/// The largest answer the tests read (a backup, a long log).
const MAX_ANSWER: usize = 16 << 20;

/// A client that never follows redirects (the tests look at them) and gives up after 10 s.
pub fn client() -> awc::Client {
    awc::Client::builder()
        .disable_redirects()
        .timeout(std::time::Duration::from_secs(10))
        .finish()
}

/// `method url` on `client`, with `Authorization: Bearer <token>` when there is a token.
pub fn request(
    client: &awc::Client,
    method: &str,
    url: &str,
    token: Option<&str>,
) -> awc::ClientRequest {
    let req = client.request(method.parse().expect("method"), url);
    match token {
        Some(token) => req.insert_header(("authorization", format!("Bearer {token}"))),
        None => req,
    }
}

/// Sends `req` with `body` as JSON, or with no body; the status, headers and whole answer.
pub async fn send(req: awc::ClientRequest, body: Option<Value>) -> (u16, HeaderMap, Bytes) {
    let resp = match body {
        Some(body) => req.send_json(&body).await,
        None => req.send().await,
    }
    .expect("send");
    read_answer(resp).await
}

/// The status, headers and whole body of an answer.
pub async fn read_answer(mut resp: awc::ClientResponse) -> (u16, HeaderMap, Bytes) {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.body().limit(MAX_ANSWER).await.expect("body");
    (status, headers, body)
}
