//! Node administration, served by the node asked (never forwarded: every node snapshots itself):
//!
//! - `POST /v1/admin/snapshot` takes a snapshot now, compacts the log after it and answers
//!   `{"index", "term", "size", "path", "voters", "learners"}`;
//! - `GET /v1/admin/backup` takes a fresh snapshot and streams its file
//!   (`application/octet-stream`, `Content-Disposition: attachment;
//!   filename="raftix-backup-<index>.snap"`, `X-Raft-Index`, `X-Raft-Term`). The file is opened
//!   before the answer starts, so a newer snapshot deleting it meanwhile does not cut the stream
//!   (the open handle keeps it readable), and it is read in chunks, never whole.

use std::fs::File;
use std::io::{ErrorKind, Read};

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use futures::Stream;

#[allow(unused_imports)]
use super::openapi::{ErrorBody, SnapshotAnswer};
use super::{ApiError, AppState};
use crate::messages::snapshot::SnapshotSummary;

/// Bytes read from the snapshot file per chunk of the answer.
const CHUNK: usize = 256 * 1024;
/// Snapshots taken before giving up when each one is replaced before it could be opened.
const OPEN_ATTEMPTS: usize = 3;

/// Takes a snapshot of this node now.
#[utoipa::path(
    post,
    path = "/v1/admin/snapshot",
    tag = "admin",
    responses(
        (status = 200, description = "The snapshot taken", body = SnapshotAnswer),
        (status = 503, description = "The node could not take a snapshot", body = ErrorBody),
    ),
)]
pub async fn snapshot(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let summary = state.node.snapshot().await?;
    Ok(HttpResponse::Ok().json(summary))
}

/// Takes a snapshot of this node and streams its file.
#[utoipa::path(
    get,
    path = "/v1/admin/backup",
    tag = "admin",
    responses(
        (status = 200, description = "The snapshot file, streamed; restore it with `raftix restore`", content_type = "application/octet-stream"),
        (status = 503, description = "The node could not take a snapshot", body = ErrorBody),
    ),
)]
pub async fn backup(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (summary, file) = snapshot_and_open(&state).await?;
    let disposition = format!(
        "attachment; filename=\"raftix-backup-{}.snap\"",
        summary.index
    );
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((header::CONTENT_DISPOSITION, disposition))
        .insert_header(("x-raft-index", summary.index.to_string()))
        .insert_header(("x-raft-term", summary.term.to_string()))
        .no_chunking(summary.size)
        .streaming(chunks(file)))
}

/// Takes a snapshot and opens its file; takes another if a newer snapshot replaced it first.
async fn snapshot_and_open(state: &AppState) -> Result<(SnapshotSummary, File), ApiError> {
    for _ in 0..OPEN_ATTEMPTS {
        let summary = state.node.snapshot().await?;
        let path = summary.path.clone();
        let opened = web::block(move || {
            let file = File::open(&path)?;
            let size = file.metadata()?.len();
            Ok::<_, std::io::Error>((file, size))
        })
        .await
        .map_err(|e| ApiError::internal(format!("cannot open the snapshot: {e}")))?;
        match opened {
            Ok((file, size)) if size == summary.size => return Ok((summary, file)),
            Ok((_, size)) => {
                return Err(ApiError::internal(format!(
                    "snapshot {} is {size} bytes, expected {}",
                    summary.path, summary.size
                )))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(ApiError::internal(format!(
                    "cannot open snapshot {}: {e}",
                    summary.path
                )))
            }
        }
    }
    Err(ApiError::unavailable(
        "unavailable",
        "snapshots are being replaced faster than one can be opened; retry",
    ))
}

/// The file's bytes in chunks of at most [`CHUNK`], each read on the blocking thread pool.
fn chunks(file: File) -> impl Stream<Item = Result<Bytes, actix_web::Error>> {
    futures::stream::try_unfold(Some(file), |file| async move {
        let Some(mut file) = file else {
            return Ok(None);
        };
        let (file, chunk) = web::block(move || {
            let mut buf = vec![0u8; CHUNK];
            let n = read_full(&mut file, &mut buf)?;
            buf.truncate(n);
            Ok::<_, std::io::Error>((file, buf))
        })
        .await
        .map_err(actix_web::error::ErrorInternalServerError)?
        .map_err(actix_web::error::ErrorInternalServerError)?;
        if chunk.is_empty() {
            return Ok(None);
        }
        let next = (chunk.len() == CHUNK).then_some(file);
        Ok(Some((Bytes::from(chunk), next)))
    })
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
