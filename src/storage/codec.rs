//! The one place that turns values into bytes and back (bincode 2, standard configuration), plus
//! checksummed records.
//!
//! A sealed record is the CRC-32 (IEEE, 4 bytes little-endian) of the payload followed by the
//! payload. Everything the storage layer writes to LMDB is sealed and verified on read; the peer
//! transport can use the same functions for its frames (pass its own size limit to
//! [`decode_limited`]). Swapping the encoding for another codec means changing this file only.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Upper bound on anything this module decodes by default (64 MiB).
pub const DEFAULT_DECODE_LIMIT: usize = 64 * 1024 * 1024;

/// Length of the checksum that prefixes a sealed record.
pub const CHECKSUM_LEN: usize = 4;

/// Why encoding, decoding or unsealing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The value could not be encoded.
    #[error("encoding failed: {0}")]
    Encode(String),
    /// The bytes are not a valid encoding of the expected type.
    #[error("undecodable bytes: {0}")]
    Decode(String),
    /// The bytes are larger than the decoder accepts.
    #[error("{len} bytes exceed the decoding limit of {limit} bytes")]
    TooLarge {
        /// Length of the input.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The value decoded but did not use all the bytes.
    #[error("{0} trailing bytes after the encoded value")]
    TrailingBytes(usize),
    /// A sealed record is shorter than its checksum.
    #[error("record of {0} bytes is too short to hold a checksum")]
    TooShort(usize),
    /// A sealed record's checksum does not match its payload.
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    ChecksumMismatch {
        /// Checksum stored in the record.
        stored: u32,
        /// Checksum computed over the payload.
        computed: u32,
    },
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes `value` with bincode 2 (standard configuration).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| CodecError::Encode(e.to_string()))
}

/// Decodes a `T` from exactly `bytes`, accepting at most [`DEFAULT_DECODE_LIMIT`] bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_limited(bytes, DEFAULT_DECODE_LIMIT)
}

/// Decodes a `T` from exactly `bytes`, refusing inputs longer than `limit` bytes.
///
/// The decoder also never allocates more than [`DEFAULT_DECODE_LIMIT`] bytes, whatever length
/// prefixes the input claims, so this is safe on untrusted (network) input.
pub fn decode_limited<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, CodecError> {
    if bytes.len() > limit {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    let cfg = config().with_limit::<DEFAULT_DECODE_LIMIT>();
    let (value, used) = bincode::serde::decode_from_slice(bytes, cfg)
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes(bytes.len() - used));
    }
    Ok(value)
}

/// Prefixes `payload` with its CRC-32 (little-endian).
pub fn seal(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CHECKSUM_LEN + payload.len());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Verifies a record made by [`seal`] and returns its payload.
pub fn unseal(record: &[u8]) -> Result<&[u8], CodecError> {
    let (head, payload) = match record.split_first_chunk::<CHECKSUM_LEN>() {
        Some(split) => split,
        None => return Err(CodecError::TooShort(record.len())),
    };
    let stored = u32::from_le_bytes(*head);
    let computed = crc32fast::hash(payload);
    if stored != computed {
        return Err(CodecError::ChecksumMismatch { stored, computed });
    }
    Ok(payload)
}

/// Encodes `value` and seals the result.
pub fn encode_sealed<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    encode(value).map(|payload| seal(&payload))
}

/// Unseals `record` and decodes its payload (default limit).
pub fn decode_sealed<T: DeserializeOwned>(record: &[u8]) -> Result<T, CodecError> {
    decode(unseal(record)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Entry, EntryPayload, HardState};
    use bytes::Bytes;

    fn entry() -> Entry {
        Entry {
            term: 3,
            index: 42,
            payload: EntryPayload::Command(Bytes::from_static(b"hello")),
        }
    }

    #[test]
    fn roundtrip_plain_and_sealed() {
        let e = entry();
        let plain: Entry = decode(&encode(&e).unwrap()).unwrap();
        assert_eq!(plain, e);
        let hs = HardState {
            term: 9,
            voted_for: Some(2),
        };
        let sealed = encode_sealed(&hs).unwrap();
        assert_eq!(decode_sealed::<HardState>(&sealed).unwrap(), hs);
    }

    #[test]
    fn checksum_mismatch_is_detected() {
        let mut sealed = encode_sealed(&entry()).unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 0x01;
        assert!(matches!(
            unseal(&sealed),
            Err(CodecError::ChecksumMismatch { .. })
        ));
        sealed[last] ^= 0x01;
        sealed[0] ^= 0x80;
        assert!(matches!(
            decode_sealed::<Entry>(&sealed),
            Err(CodecError::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn short_record_and_limits() {
        assert_eq!(unseal(&[1, 2, 3]), Err(CodecError::TooShort(3)));
        let bytes = encode(&entry()).unwrap();
        assert!(matches!(
            decode_limited::<Entry>(&bytes, 4),
            Err(CodecError::TooLarge { limit: 4, .. })
        ));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode::<Entry>(&longer), Err(CodecError::TrailingBytes(1)));
        assert!(matches!(
            decode::<Entry>(&bytes[..3]),
            Err(CodecError::Decode(_))
        ));
    }

    #[test]
    fn huge_length_prefix_is_refused_without_allocating() {
        // A Vec<u8> claiming u64::MAX / 2 elements (varint 0xFD + 8 bytes).
        let mut evil = vec![0xFD];
        evil.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
        assert!(decode_limited::<Vec<u8>>(&evil, 1024).is_err());
    }
}
