//! Peer authentication with a shared cluster secret: a challenge-response handshake that proves
//! both ends hold the secret, then an HMAC on every frame.
//!
//! # Handshake (on every new connection)
//! 1. The connecting node sends its `Hello` with a fresh random nonce.
//! 2. The listener answers `Challenge { nonce, proof }`: its own fresh nonce and
//!    `HMAC(secret, "raftix/v1/listener" ‖ T)`, where the transcript `T` is
//!    `SHA-256(Hello frame bytes) ‖ listener nonce`. The connector checks the proof, so a process
//!    without the secret cannot pose as a peer and receive the log.
//! 3. The connector answers `Auth { proof }` with `HMAC(secret, "raftix/v1/connector" ‖ T)`. The
//!    listener checks it before it accepts anything, including the Hello's addresses.
//!
//! Both nonces are fresh, so a recorded handshake replayed on a new connection fails: the
//! listener's new nonce changes `T`.
//!
//! # Frames
//! Each later frame carries a 32-byte tag `HMAC(K, seq ‖ frame)`, where the session key
//! `K = HMAC(secret, "raftix/v1/session" ‖ T)` is unique to the connection and `seq` counts the
//! frames of the connection from 0. A forged or altered frame, a frame replayed within the
//! connection (its `seq` differs) or taken from another connection (its `K` differs), or frames
//! dropped or reordered by a man in the middle all fail the check, which closes the connection.
//!
//! The secret itself never crosses the network and never appears in `Debug` output.

use std::fmt;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// Length of a handshake nonce.
pub const NONCE_LEN: usize = 32;
/// Length of a proof or frame tag (HMAC-SHA-256).
pub const TAG_LEN: usize = 32;
/// Shortest accepted cluster secret, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

/// A handshake nonce.
pub type Nonce = [u8; NONCE_LEN];
/// A handshake proof or frame tag.
pub type Tag = [u8; TAG_LEN];

type HmacSha256 = Hmac<Sha256>;

/// The secret every node of a cluster shares. `Debug` never shows it.
#[derive(Clone)]
pub struct ClusterSecret(Arc<Vec<u8>>);

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterSecret(<redacted>)")
    }
}

impl PartialEq for ClusterSecret {
    fn eq(&self, other: &Self) -> bool {
        // Configuration comparison only (never on the network path).
        self.0 == other.0
    }
}

impl Eq for ClusterSecret {}

/// Why a secret was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the cluster secret is {len} bytes long; at least {MIN_SECRET_LEN} are needed (use e.g. `openssl rand -hex 32`)")]
pub struct ShortSecret {
    /// Its length.
    pub len: usize,
}

impl ClusterSecret {
    /// A secret from its bytes; at least [`MIN_SECRET_LEN`] of them.
    pub fn new(bytes: Vec<u8>) -> Result<Self, ShortSecret> {
        if bytes.len() < MIN_SECRET_LEN {
            return Err(ShortSecret { len: bytes.len() });
        }
        Ok(Self(Arc::new(bytes)))
    }

    fn mac(&self, label: &[u8], transcript: &[u8]) -> Tag {
        let mut mac = keyed(&self.0);
        mac.update(label);
        mac.update(transcript);
        mac.finalize().into_bytes().into()
    }
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

/// A fresh random nonce (from the thread's cryptographically secure generator).
pub fn fresh_nonce() -> Nonce {
    rand::random()
}

/// The state both ends derive from a handshake.
pub struct Handshake {
    transcript: [u8; 32 + NONCE_LEN],
}

impl Handshake {
    /// The handshake of a connection whose Hello frame was `hello` (its exact bytes) and whose
    /// listener chose `listener_nonce`.
    pub fn new(hello: &[u8], listener_nonce: &Nonce) -> Self {
        let mut transcript = [0u8; 32 + NONCE_LEN];
        transcript[..32].copy_from_slice(&Sha256::digest(hello));
        transcript[32..].copy_from_slice(listener_nonce);
        Self { transcript }
    }

    /// What the listener sends to prove it holds the secret.
    pub fn listener_proof(&self, secret: &ClusterSecret) -> Tag {
        secret.mac(b"raftix/v1/listener", &self.transcript)
    }

    /// What the connector sends to prove it holds the secret.
    pub fn connector_proof(&self, secret: &ClusterSecret) -> Tag {
        secret.mac(b"raftix/v1/connector", &self.transcript)
    }

    /// Whether `got` equals `expected`, in constant time.
    pub fn proof_matches(expected: &Tag, got: &Tag) -> bool {
        // Comparing the HMACs of both under a throwaway key keeps the comparison
        // constant-time without another dependency.
        let key = fresh_nonce();
        let mut a = keyed(&key);
        a.update(expected);
        let mut b = keyed(&key);
        b.update(got);
        a.verify(&b.finalize().into_bytes()).is_ok()
    }

    /// The sealer (connector side) of the connection's frames.
    pub fn sealer(&self, secret: &ClusterSecret) -> FrameSealer {
        FrameSealer {
            key: keyed(&secret.mac(b"raftix/v1/session", &self.transcript)),
            seq: 0,
        }
    }

    /// The opener (listener side) of the connection's frames.
    pub fn opener(&self, secret: &ClusterSecret) -> FrameOpener {
        FrameOpener {
            key: keyed(&secret.mac(b"raftix/v1/session", &self.transcript)),
            seq: 0,
        }
    }
}

fn frame_tag(key: &HmacSha256, seq: u64, frame: &[u8]) -> HmacSha256 {
    let mut mac = key.clone();
    mac.update(&seq.to_be_bytes());
    mac.update(frame);
    mac
}

/// Appends the tag to each frame a connection sends.
pub struct FrameSealer {
    key: HmacSha256,
    seq: u64,
}

impl FrameSealer {
    /// `frame` followed by its tag; the next frame gets the next sequence number.
    pub fn seal(&mut self, frame: &[u8]) -> Bytes {
        let tag = frame_tag(&self.key, self.seq, frame)
            .finalize()
            .into_bytes();
        self.seq += 1;
        let mut out = BytesMut::with_capacity(frame.len() + TAG_LEN);
        out.extend_from_slice(frame);
        out.put_slice(&tag);
        out.freeze()
    }
}

/// Why a sealed frame was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    /// Shorter than a tag.
    #[error("frame of {0} bytes cannot carry an authentication tag")]
    TooShort(usize),
    /// The tag does not match: forged, altered, replayed or out of order.
    #[error("frame {seq} fails its authentication tag (forged, altered, replayed or reordered)")]
    BadTag {
        /// The sequence number expected.
        seq: u64,
    },
}

/// Checks and strips the tag of each frame a connection receives.
pub struct FrameOpener {
    key: HmacSha256,
    seq: u64,
}

impl FrameOpener {
    /// The frame without its tag, if the tag is right for the next sequence number.
    pub fn open<'a>(&mut self, sealed: &'a [u8]) -> Result<&'a [u8], OpenError> {
        let split = sealed
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(OpenError::TooShort(sealed.len()))?;
        let (frame, tag) = sealed.split_at(split);
        frame_tag(&self.key, self.seq, frame)
            .verify_slice(tag)
            .map_err(|_| OpenError::BadTag { seq: self.seq })?;
        self.seq += 1;
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(b: u8) -> ClusterSecret {
        ClusterSecret::new(vec![b; 32]).expect("long enough")
    }

    #[test]
    fn short_secrets_are_refused_and_debug_redacts() {
        assert_eq!(
            ClusterSecret::new(vec![1; 15]).unwrap_err(),
            ShortSecret { len: 15 }
        );
        let s = ClusterSecret::new(b"correct horse battery".to_vec()).expect("long enough");
        assert!(!format!("{s:?}").contains("horse"));
    }

    #[test]
    fn proofs_depend_on_the_secret_the_hello_and_the_nonce() {
        let n = fresh_nonce();
        let h = Handshake::new(b"hello", &n);
        let p = h.listener_proof(&secret(1));
        assert!(Handshake::proof_matches(&p, &h.listener_proof(&secret(1))));
        assert!(!Handshake::proof_matches(&p, &h.listener_proof(&secret(2))));
        assert!(!Handshake::proof_matches(
            &p,
            &h.connector_proof(&secret(1))
        ));
        let other_hello = Handshake::new(b"hellO", &n);
        assert!(!Handshake::proof_matches(
            &p,
            &other_hello.listener_proof(&secret(1))
        ));
        let other_nonce = Handshake::new(b"hello", &fresh_nonce());
        assert!(!Handshake::proof_matches(
            &p,
            &other_nonce.listener_proof(&secret(1))
        ));
    }

    #[test]
    fn frames_open_in_order_and_nothing_forged_replayed_or_foreign_opens() {
        let h = Handshake::new(b"hello", &fresh_nonce());
        let mut sealer = h.sealer(&secret(1));
        let mut opener = h.opener(&secret(1));
        let a = sealer.seal(b"frame a");
        let b = sealer.seal(b"frame b");
        assert_eq!(opener.open(&a).expect("first"), b"frame a");
        // Replaying `a` where `b` is expected fails.
        assert_eq!(opener.open(&a), Err(OpenError::BadTag { seq: 1 }));
        let mut opener = h.opener(&secret(1));
        // Skipping `a` (reordering, dropping) fails.
        assert!(opener.open(&b).is_err());
        // One flipped bit anywhere fails.
        let mut opener = h.opener(&secret(1));
        for i in 0..a.len() {
            let mut forged = a.to_vec();
            forged[i] ^= 0x01;
            assert!(opener.open(&forged).is_err(), "bit flip at {i} accepted");
        }
        // Another connection's key (other nonce) or another secret fails.
        let other = Handshake::new(b"hello", &fresh_nonce());
        assert!(other.opener(&secret(1)).open(&a).is_err());
        assert!(h.opener(&secret(2)).open(&a).is_err());
        assert_eq!(opener.open(b"short"), Err(OpenError::TooShort(5)));
    }
}
