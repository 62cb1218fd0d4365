//! `snapshot` and `backup`: administration of the first endpoint (snapshots are per node, so
//! neither follows the leader nor fails over).
//!
//! `backup --out FILE` streams `GET /v1/admin/backup` into a temporary file next to FILE,
//! fsyncs it, verifies it as a snapshot file, then renames it over FILE and fsyncs the
//! directory: FILE is either absent, its previous content, or a complete verified backup.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::args::{BackupArgs, OptsOnly};
use super::error::{ClientError, EXIT_OK};
use super::output::{check, decode, json_line, line};
use super::session::{Answer, Request, Session};
use crate::storage::read_snapshot_info;

/// Longest wait for a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);

/// The answer of `POST /v1/admin/snapshot`.
#[derive(Debug, Deserialize)]
struct Summary {
    index: u64,
    term: u64,
    size: u64,
    path: String,
}

/// `snapshot`: prints `OK index=N term=T size=BYTES path=FILE` (the file is on the node).
pub fn snapshot(args: OptsOnly) -> Result<u8, ClientError> {
    let first = first_endpoint(&args.opts.endpoints)?;
    let mut session = Session::with_tls(
        vec![first],
        Duration::from_millis(args.opts.timeout_ms),
        &args.opts.tls,
    )?
    .with_token(args.opts.token.clone());
    let request = Request {
        method: Method::POST,
        path: "/v1/admin/snapshot".into(),
        body: None,
        write: false,
    };
    let answer = check(session.send(&request)?, None)?;
    let (raw, s): (Value, Summary) = decode(&answer)?;
    if args.opts.json {
        json_line(&raw)?;
    } else {
        line(&format!(
            "OK index={} term={} size={} path={}",
            s.index, s.term, s.size, s.path
        ))?;
    }
    Ok(EXIT_OK)
}

/// `backup --out FILE`: prints `OK index=N term=T size=BYTES file=FILE`.
pub fn backup(args: BackupArgs) -> Result<u8, ClientError> {
    let first = first_endpoint(&args.opts.endpoints)?;
    // A client-wide timeout in reqwest's blocking client bounds the wait for the answer's
    // headers (the node snapshots first) and each read of the body, not the whole download.
    let builder = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(Duration::from_millis(args.opts.timeout_ms));
    let http = args
        .opts
        .tls
        .apply(builder, std::slice::from_ref(&first))?
        .build()
        .map_err(|e| ClientError::Setup(e.to_string()))?;
    let url = format!("{first}/v1/admin/backup");
    let mut request = http.get(&url);
    if let Some(token) = args
        .opts
        .token
        .clone()
        .or_else(super::session::token_from_env)
    {
        request = request.bearer_auth(token);
    }
    let response = request.send().map_err(|e| {
        if e.is_connect() {
            ClientError::Unreachable(format!("{first}: {e}"))
        } else {
            ClientError::Server(format!("{first}: {e}"))
        }
    })?;
    if !response.status().is_success() {
        return Err(failed(response, &first));
    }
    let index = header_u64(&response, "x-raft-index");
    let tmp = temp_path(&args.out)?;
    let written = download(response, &tmp, &first).and_then(|size| {
        let info = read_snapshot_info(&tmp).map_err(|e| ClientError::BadAnswer {
            from: first.clone(),
            detail: format!("the backup does not verify: {e}"),
        })?;
        if index.is_some_and(|i| i != info.meta.last.index) {
            return Err(ClientError::BadAnswer {
                from: first.clone(),
                detail: format!(
                    "X-Raft-Index says {index:?} but the file covers up to {}",
                    info.meta.last.index
                ),
            });
        }
        fs::rename(&tmp, &args.out)?;
        sync_parent(&args.out)?;
        Ok((info, size))
    });
    let (info, size) = match written {
        Ok(done) => done,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let (index, term) = (info.meta.last.index, info.meta.last.term);
    let file = args.out.display().to_string();
    if args.opts.json {
        json_line(&json!({"index": index, "term": term, "size": size, "file": file}))?;
    } else {
        line(&format!(
            "OK index={index} term={term} size={size} file={file}"
        ))?;
    }
    Ok(EXIT_OK)
}

/// The first `--endpoints` entry.
fn first_endpoint(endpoints: &[String]) -> Result<String, ClientError> {
    endpoints
        .first()
        .cloned()
        .ok_or_else(|| ClientError::Invalid("no endpoint given".to_string()))
}

/// The error of a non-2xx backup answer (its JSON message when it has one).
fn failed(response: Response, from: &str) -> ClientError {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().map(|b| b.to_vec()).unwrap_or_default();
    let answer = Answer {
        status,
        headers,
        body,
        from: from.to_string(),
    };
    match check(answer, None) {
        Err(e) => e,
        Ok(_) => ClientError::Server(format!("{from} answered {status}")),
    }
}

/// A numeric header, if present and numeric.
fn header_u64(response: &Response, name: &str) -> Option<u64> {
    response.headers().get(name)?.to_str().ok()?.parse().ok()
}

/// A temporary file name next to `out` (same directory, so the rename is atomic).
fn temp_path(out: &Path) -> Result<PathBuf, ClientError> {
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ClientError::Invalid(format!("--out {}: not a file name", out.display())))?;
    Ok(out.with_file_name(format!(".{name}.part-{}", std::process::id())))
}

/// Streams the body into `tmp` (created new) and fsyncs it; returns its size.
fn download(mut response: Response, tmp: &Path, from: &str) -> Result<u64, ClientError> {
    let mut file = File::create(tmp)?;
    let size = io::copy(&mut response, &mut file).map_err(|e| ClientError::BadAnswer {
        from: from.to_string(),
        detail: format!("the download broke off: {e}"),
    })?;
    file.flush()?;
    file.sync_all()?;
    Ok(size)
}

/// Fsyncs the directory holding `path`, so that a rename into it is durable.
fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}
