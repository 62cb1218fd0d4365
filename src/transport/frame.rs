//! The peer wire format: one frame is a protocol version byte followed by a bincode-2 encoding of
//! [`Frame`], carried inside tokio-util's [`LengthDelimitedCodec`] (a 4-byte big-endian length
//! prefix).
//!
//! This is the only place in the transport that knows the codec, so another encoding could replace
//! it. Decoding treats its input as untrusted: it never panics, and bincode's allocation limit is
//! kept within a small factor of the input length, so a forged length field inside a frame cannot
//! make the node allocate gigabytes.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tokio_util::codec::LengthDelimitedCodec;

use crate::core::types::{Envelope, NodeId};

/// Version of the peer protocol, the first byte of every frame. Bump it on any change to [`Frame`].
pub const PROTOCOL_VERSION: u8 = 3;

/// One unit on the peer wire.
///
/// A connection carries exactly one [`Frame::Hello`] first, then (with a cluster secret) the
/// [`Frame::Challenge`] / [`Frame::Auth`] handshake, then only [`Frame::Raft`] and
/// [`Frame::Snapshot`] frames, all travelling from the connecting node to the listening node
/// (the transport is one-directional: replies come back over the other node's own connection;
/// only the Challenge travels the other way).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// Opens a connection: who is calling, whom it expects to reach, and in which cluster.
    Hello {
        /// Cluster name; a listener refuses a different one.
        cluster: String,
        /// The connecting node.
        from: NodeId,
        /// The node the caller wants to reach; a listener refuses any id but its own.
        to: NodeId,
        /// The caller's HTTP address, so the receiver can redirect clients to it.
        http_addr: String,
        /// The caller's own peer address, so that a receiver that does not know it yet (the
        /// caller joined in a configuration the receiver has not received) can answer.
        peer_addr: String,
        /// With a cluster secret: the caller's fresh handshake nonce (see [`super::auth`]); the
        /// listener answers with a [`Frame::Challenge`]. `None` without a secret.
        nonce: Option<super::auth::Nonce>,
    },
    /// The listener's answer to a Hello carrying a nonce: its own nonce and its proof that it
    /// holds the cluster secret.
    Challenge {
        /// The listener's fresh nonce.
        nonce: super::auth::Nonce,
        /// `HMAC(secret, "raftix/v1/listener" ‖ transcript)`.
        proof: super::auth::Tag,
    },
    /// The caller's proof that it holds the cluster secret, its second frame.
    Auth {
        /// `HMAC(secret, "raftix/v1/connector" ‖ transcript)`.
        proof: super::auth::Tag,
    },
    /// A Raft message; its `from` must equal the Hello's `from`, its `to` the listener's id.
    Raft(Envelope),
    /// A snapshot transfer chunk or acknowledgement, addressed like a Raft message.
    Snapshot(super::snapshot_frame::SnapshotFrame),
}

/// Why a frame could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The frame had no bytes at all, not even a version byte.
    #[error("empty frame")]
    Empty,
    /// The first byte is not [`PROTOCOL_VERSION`].
    #[error("unsupported protocol version {got} (expected {expected})")]
    WrongVersion {
        /// Version byte received.
        got: u8,
        /// Version this node speaks.
        expected: u8,
    },
    /// The frame is larger than the configured maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// Frame length in bytes, version byte included.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
    /// Bytes remained after a complete frame was decoded.
    #[error("{extra} trailing bytes after the frame")]
    TrailingBytes {
        /// Number of unused bytes.
        extra: usize,
    },
    /// The body is not a valid bincode encoding of a [`Frame`] (truncated, unknown variant, bad
    /// UTF-8, forged length, ...).
    #[error("undecodable frame body: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    /// The frame could not be encoded.
    #[error("cannot encode frame: {0}")]
    Encode(#[from] bincode::error::EncodeError),
}

/// Builds the length-delimited codec used on both ends of a peer connection.
///
/// A length prefix above `max_frame_bytes` makes the decoder fail, which closes the connection;
/// the encoder likewise refuses to write such a frame.
pub fn peer_codec(max_frame_bytes: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(max_frame_bytes)
        .new_codec()
}

/// Encodes a frame: the version byte followed by the bincode body.
pub fn encode_frame(frame: &Frame) -> Result<Bytes, FrameError> {
    let body = bincode::serde::encode_to_vec(frame, bincode::config::standard())?;
    let mut out = BytesMut::with_capacity(body.len() + 1);
    out.put_u8(PROTOCOL_VERSION);
    out.extend_from_slice(&body);
    Ok(out.freeze())
}

/// Decodes one frame produced by [`encode_frame`], refusing anything but exactly one well-formed
/// frame of at most `max_bytes` bytes (version byte included).
pub fn decode_frame(bytes: &[u8], max_bytes: usize) -> Result<Frame, FrameError> {
    if bytes.len() > max_bytes {
        return Err(FrameError::TooLarge {
            len: bytes.len(),
            max: max_bytes,
        });
    }
    let (&version, body) = bytes.split_first().ok_or(FrameError::Empty)?;
    if version != PROTOCOL_VERSION {
        return Err(FrameError::WrongVersion {
            got: version,
            expected: PROTOCOL_VERSION,
        });
    }
    let (frame, used) = decode_body(body)?;
    if used != body.len() {
        return Err(FrameError::TrailingBytes {
            extra: body.len() - used,
        });
    }
    Ok(frame)
}

/// Decodes with a bincode allocation limit chosen from the body length.
///
/// bincode charges the limit with what it is about to allocate: announced byte lengths, and for
/// sequences `len * size_of::<T>()` of the in-memory element. A log entry is about 56 bytes in
/// memory but can be 3 bytes on the wire, so a valid body may legitimately claim up to ~20 times
/// its length. The limit is the smallest power-of-four tier at or above 32 times the body length:
/// every valid frame passes, and a forged length prefix can make the decoder allocate at most
/// about 128 times the frame's size (a 2^40-element claim in a small frame is refused).
/// Worst in-memory growth of a decoded body relative to its wire size (see [`decode_body`]).
const EXPANSION: usize = 32;

fn decode_body(body: &[u8]) -> Result<(Frame, usize), FrameError> {
    let need = body.len().saturating_mul(EXPANSION);
    macro_rules! tiers {
        ($($limit:expr),*) => {
            $(
                if need <= $limit {
                    let config = bincode::config::standard().with_limit::<{ $limit }>();
                    return Ok(bincode::serde::decode_from_slice(body, config)?);
                }
            )*
        };
    }
    tiers!(
        1 << 12,
        1 << 14,
        1 << 16,
        1 << 18,
        1 << 20,
        1 << 22,
        1 << 24,
        1 << 26,
        1 << 28,
        1 << 30
    );
    let config = bincode::config::standard().with_limit::<{ u32::MAX as usize }>();
    Ok(bincode::serde::decode_from_slice(body, config)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::types::{Entry, EntryPayload, LogId, Message};

    const MAX: usize = 1 << 20;

    fn append() -> Frame {
        Frame::Raft(Envelope {
            from: 1,
            to: 2,
            msg: Message::AppendRequest {
                term: 3,
                prev: LogId::new(2, 7),
                entries: vec![
                    Entry {
                        term: 3,
                        index: 8,
                        payload: EntryPayload::Noop,
                    },
                    Entry {
                        term: 3,
                        index: 9,
                        payload: EntryPayload::Command(Bytes::from_static(b"set x 1")),
                    },
                ],
                commit: 7,
            },
        })
    }

    fn hello() -> Frame {
        Frame::Hello {
            cluster: "c".into(),
            from: 1,
            to: 2,
            http_addr: "127.0.0.1:8080".into(),
            peer_addr: "127.0.0.1:7000".into(),
            nonce: Some([7; 32]),
        }
    }

    #[test]
    fn a_batch_of_thousands_of_tiny_entries_decodes() {
        // Noop entries are 3-4 bytes on the wire but ~56 in memory: the decode limit must allow
        // for that growth, or every catch-up batch of small entries is refused.
        let entries = (1..=5000)
            .map(|index| Entry {
                term: 1,
                index,
                payload: EntryPayload::Noop,
            })
            .collect();
        let frame = Frame::Raft(Envelope {
            from: 1,
            to: 2,
            msg: Message::AppendRequest {
                term: 1,
                prev: LogId::default(),
                entries,
                commit: 0,
            },
        });
        let bytes = encode_frame(&frame).expect("encode");
        assert_eq!(decode_frame(&bytes, 16 << 20).expect("decode"), frame);
    }

    #[test]
    fn frames_roundtrip() {
        for frame in [hello(), append()] {
            let bytes = encode_frame(&frame).unwrap();
            assert_eq!(bytes[0], PROTOCOL_VERSION);
            assert_eq!(decode_frame(&bytes, MAX).unwrap(), frame);
        }
    }

    #[test]
    fn wrong_version_byte_is_refused() {
        let mut bytes = encode_frame(&hello()).unwrap().to_vec();
        bytes[0] = PROTOCOL_VERSION + 1;
        assert!(matches!(
            decode_frame(&bytes, MAX),
            Err(FrameError::WrongVersion { got, .. }) if got == PROTOCOL_VERSION + 1
        ));
    }

    #[test]
    fn empty_frame_is_refused() {
        assert!(matches!(decode_frame(&[], MAX), Err(FrameError::Empty)));
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = encode_frame(&append()).unwrap();
        for len in 0..bytes.len() {
            assert!(decode_frame(&bytes[..len], MAX).is_err(), "prefix {len}");
        }
    }

    #[test]
    fn trailing_garbage_is_refused() {
        let mut bytes = encode_frame(&append()).unwrap().to_vec();
        bytes.extend_from_slice(&[0, 1, 2]);
        assert!(matches!(
            decode_frame(&bytes, MAX),
            Err(FrameError::TrailingBytes { extra: 3 })
        ));
    }

    #[test]
    fn oversized_frame_is_refused() {
        let bytes = encode_frame(&append()).unwrap();
        assert!(matches!(
            decode_frame(&bytes, bytes.len() - 1),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn forged_string_length_does_not_allocate() {
        // Version, variant 0 (Hello), then a string announcing 2^40 bytes (varint tag 253 = u64).
        let mut bytes = vec![PROTOCOL_VERSION, 0, 253];
        bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(matches!(
            decode_frame(&bytes, MAX),
            Err(FrameError::Decode(
                bincode::error::DecodeError::LimitExceeded
            ))
        ));
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..300 {
            let mut bytes = vec![PROTOCOL_VERSION];
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                bytes.push(seed as u8);
            }
            let _ = decode_frame(&bytes, MAX);
        }
    }
}
