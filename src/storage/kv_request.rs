//! The request envelope of the key-value state machine: [`KvRequest`] in, [`KvResponse`] out.
//!
//! # Payload tagging
//!
//! A log entry payload is either a bare [`KvCommand`] (the original format) or a [`KvRequest`].
//! A bare command is its bincode 2 encoding, whose first byte is the command's variant index as a
//! varint (0 = `Put` .. 3 = `Txn`; one byte for indexes below 251). A request is the single byte
//! [`REQUEST_TAG`] (`0xF0`) followed by the bincode 2 encoding of the `KvRequest`. `0xF0` is not
//! the first byte of any bare command as long as `KvCommand` has fewer than 240 variants, so the
//! two are told apart by the first byte alone. A later envelope version would take a new tag byte
//! (`0xF1`, ...). A [`KvResponse`] carries the same leading tag, so it cannot be mistaken for a
//! bare [`KvOutput`] either.
//!
//! Applying a request-tagged entry always yields a `KvResponse` (a malformed envelope or an
//! invalid `request_id` yields one whose output is [`KvOutput::Rejected`]); applying a bare command
//! yields a bare `KvOutput`. Entries skipped because they were already applied before a restart
//! yield the empty output ([`KvOutput::Noop`]) in both cases.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::core::Index;

use super::codec::{self, CodecError};
use super::kv_command::{KvCommand, KvOutput};

/// First byte of an encoded [`KvRequest`] or [`KvResponse`].
pub const REQUEST_TAG: u8 = 0xF0;

/// Longest `request_id` accepted, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 256;

/// A command wrapped with what exactly-once execution needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvRequest {
    /// The client's idempotency key (an `Idempotency-Key`, or `client_id:sequence`), 1 to
    /// [`MAX_REQUEST_ID_LEN`] bytes. `None` executes the command without deduplication.
    pub request_id: Option<String>,
    /// The proposing leader's wall clock, in milliseconds since the Unix epoch. Carried in the
    /// entry so that every replica expires deduplication records identically.
    pub issued_at_ms: u64,
    /// The command to execute.
    pub command: KvCommand,
}

impl KvRequest {
    /// Encodes the request as a log entry payload (see the module docs for the tag).
    pub fn encode(&self) -> Bytes {
        tagged(self)
    }

    /// Decodes a request-tagged payload; a payload without [`REQUEST_TAG`] is an error.
    pub fn decode(bytes: &[u8]) -> Result<KvRequest, CodecError> {
        untagged(bytes)
    }

    /// Whether `payload` is request-tagged (otherwise it is a bare [`KvCommand`], or garbage).
    pub fn is_request(payload: &[u8]) -> bool {
        payload.first() == Some(&REQUEST_TAG)
    }
}

/// What applying a [`KvRequest`] produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvResponse {
    /// The command's output: from this entry, or cached from the first execution of the request.
    pub output: KvOutput,
    /// Index of the entry that executed the command (this entry's index unless `duplicate`).
    pub first_index: Index,
    /// Whether the request had already been executed, so the command was not run again.
    pub duplicate: bool,
}

impl KvResponse {
    /// Encodes the response (tagged like a request).
    pub fn encode(&self) -> Bytes {
        tagged(self)
    }

    /// Decodes a response. The empty output (an entry skipped as already applied) is an error:
    /// check for it first if it can occur.
    pub fn decode(bytes: &[u8]) -> Result<KvResponse, CodecError> {
        untagged(bytes)
    }
}

/// `REQUEST_TAG` followed by the encoding of `value`.
fn tagged<T: Serialize>(value: &T) -> Bytes {
    let body = super::kv_command::encode_infallible(value);
    let mut out = BytesMut::with_capacity(1 + body.len());
    out.put_u8(REQUEST_TAG);
    out.put_slice(&body);
    out.freeze()
}

/// Decodes what [`tagged`] produced.
fn untagged<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        Some((&REQUEST_TAG, body)) => codec::decode(body),
        Some((other, _)) => Err(CodecError::Decode(format!(
            "expected request tag {REQUEST_TAG:#04x}, found {other:#04x}"
        ))),
        None => Err(CodecError::Decode("empty input".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_roundtrip_and_are_tagged() {
        let req = KvRequest {
            request_id: Some("client-7:42".into()),
            issued_at_ms: 1_700_000_000_000,
            command: KvCommand::Delete { key: "k".into() },
        };
        let bytes = req.encode();
        assert_eq!(bytes[0], REQUEST_TAG);
        assert!(KvRequest::is_request(&bytes));
        assert_eq!(KvRequest::decode(&bytes).unwrap(), req);
        // A bare command is never taken for a request, nor the other way round.
        let bare = req.command.encode();
        assert!(!KvRequest::is_request(&bare));
        assert!(KvRequest::decode(&bare).is_err());
        assert!(KvCommand::decode(&bytes).is_err());
        let resp = KvResponse {
            output: KvOutput::Delete { existed: true },
            first_index: 9,
            duplicate: true,
        };
        let bytes = resp.encode();
        assert_eq!(KvResponse::decode(&bytes).unwrap(), resp);
        assert!(KvOutput::decode(&bytes).is_err());
        assert!(KvResponse::decode(&resp.output.encode()).is_err());
        assert!(KvResponse::decode(b"").is_err());
    }
}
