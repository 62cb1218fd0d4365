//! Commands of the built-in key-value state machine and their outputs, with their byte encoding.
//!
//! A [`KvCommand`] is the payload of a log entry (bare, or wrapped in a
//! [`KvRequest`](super::KvRequest)); a [`KvOutput`] is what applying it returned. Both use the
//! storage codec (bincode 2), which encodes an enum variant as its index: new variants are only
//! ever appended, so older encodings keep decoding. [`KvOutput::Noop`] encodes as the empty byte string, the
//! output the [`StateMachine`](crate::state_machine::StateMachine) contract gives entries without
//! a command.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::codec::{self, CodecError};
use super::kv_tokens::StoredToken;
use super::kv_txn::{TxnGuard, TxnOp};

/// Longest key accepted, in bytes (LMDB's default maximum key size).
pub const MAX_KEY_LEN: usize = 511;

/// A change to the key-value store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvCommand {
    /// Set `key` to `value`.
    Put {
        /// The key (1 to [`MAX_KEY_LEN`] bytes).
        key: String,
        /// The new value.
        value: Bytes,
    },
    /// Remove `key`.
    Delete {
        /// The key.
        key: String,
    },
    /// Compare-and-swap: if the current value of `key` equals `expected` (`None`: absent), set it
    /// to `value` (`None`: delete it).
    Cas {
        /// The key.
        key: String,
        /// Value required for the swap; `None` requires the key to be absent.
        expected: Option<Bytes>,
        /// Value to store on success; `None` deletes the key.
        value: Option<Bytes>,
    },
    /// Atomic transaction: if every guard holds (checked against the state before the entry),
    /// apply every operation in order; otherwise change nothing. See [`super::kv_txn`] for limits.
    Txn {
        /// Conditions that must all hold.
        guards: Vec<TxnGuard>,
        /// Writes applied, in order, when they do.
        ops: Vec<TxnOp>,
    },
    /// Create a replicated API token (see [`super::kv_tokens`]); never replaces an existing one.
    TokenPut {
        /// Its name.
        name: String,
        /// Role, scope, lifetime and the SHA-256 of its secret.
        token: StoredToken,
        /// Made without a token while access control was off: refused once any token exists.
        bootstrap: bool,
    },
    /// Revoke a replicated API token.
    TokenDelete {
        /// Its name.
        name: String,
    },
    /// Change the multi-region registry or settings (see [`super::kv_regions`]).
    Region(super::kv_regions::RegionChange),
    /// Apply mutations shipped from another region.
    RegionApply {
        /// The origin region.
        from: String,
        /// The origin's record of what this region acknowledged (or was not meant to get: a
        /// region re-added after a removal gets the writes made from then on): everything up to
        /// it counts as applied here.
        after: u64,
        /// Consecutive entries of its outbox.
        mutations: Vec<super::kv_regions::RemoteMutation>,
    },
    /// A remote region acknowledged this region's outbox up to `seq`.
    RegionAcked {
        /// The remote region.
        region: String,
        /// The highest sequence it applied.
        seq: u64,
    },
}

impl KvCommand {
    /// The key a single-key command touches; the empty string for [`KvCommand::Txn`], which may
    /// touch several (see [`KvCommand::keys`]), and for token commands, which touch none.
    pub fn key(&self) -> &str {
        match self {
            KvCommand::Put { key, .. } | KvCommand::Delete { key } | KvCommand::Cas { key, .. } => {
                key
            }
            KvCommand::Txn { .. }
            | KvCommand::TokenPut { .. }
            | KvCommand::TokenDelete { .. }
            | KvCommand::Region(_)
            | KvCommand::RegionApply { .. }
            | KvCommand::RegionAcked { .. } => "",
        }
    }

    /// Every key the command reads or writes, in order (guards, then operations, for a `Txn`;
    /// none for token commands).
    pub fn keys(&self) -> Vec<&str> {
        match self {
            KvCommand::Txn { guards, ops } => guards
                .iter()
                .map(|g| g.key.as_str())
                .chain(ops.iter().map(TxnOp::key))
                .collect(),
            KvCommand::TokenPut { .. }
            | KvCommand::TokenDelete { .. }
            | KvCommand::Region(_)
            | KvCommand::RegionAcked { .. } => Vec::new(),
            KvCommand::RegionApply { mutations, .. } => {
                mutations.iter().map(|m| m.key.as_str()).collect()
            }
            single => vec![single.key()],
        }
    }

    /// Encodes the command as a log entry payload.
    pub fn encode(&self) -> Bytes {
        encode_infallible(self)
    }

    /// Decodes a log entry payload.
    pub fn decode(bytes: &[u8]) -> Result<KvCommand, CodecError> {
        codec::decode(bytes)
    }
}

/// What applying one entry produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOutput {
    /// The put was applied.
    Put,
    /// The delete was applied.
    Delete {
        /// Whether the key existed.
        existed: bool,
    },
    /// The compare-and-swap was evaluated.
    Cas {
        /// Whether the value matched and the swap happened.
        swapped: bool,
        /// The key's value after the operation.
        current: Option<Bytes>,
    },
    /// The command was refused (malformed, or an invalid key); every replica refuses it alike.
    Rejected {
        /// Why.
        reason: String,
    },
    /// The entry carried no command, or had already been applied before.
    Noop,
    /// The transaction was evaluated.
    Txn {
        /// Whether every guard held and the operations were applied.
        succeeded: bool,
        /// Index of the first guard that did not hold (`None` when the transaction succeeded).
        failed_guard: Option<u32>,
        /// One output per operation, in order ([`KvOutput::Put`] or [`KvOutput::Delete`]); empty
        /// when the transaction did not apply.
        results: Vec<KvOutput>,
    },
    /// A token creation was evaluated.
    TokenPut {
        /// False when a token of that name already exists (nothing changed).
        created: bool,
    },
    /// A token revocation was applied.
    TokenDelete {
        /// Whether the token existed.
        existed: bool,
    },
    /// A region registry or settings change, or an acknowledgement, was applied.
    Region,
    /// Mutations from another region were applied.
    RegionApplied {
        /// The highest of its sequence numbers applied here.
        applied: u64,
    },
}

impl KvOutput {
    /// Encodes the output (`Noop` is the empty byte string).
    pub fn encode(&self) -> Bytes {
        match self {
            KvOutput::Noop => Bytes::new(),
            other => encode_infallible(other),
        }
    }

    /// Decodes an output (the empty byte string is `Noop`).
    pub fn decode(bytes: &[u8]) -> Result<KvOutput, CodecError> {
        if bytes.is_empty() {
            return Ok(KvOutput::Noop);
        }
        codec::decode(bytes)
    }
}

/// Encodes plain data that bincode cannot fail on (strings, bytes, options, enums).
///
/// Should the impossible happen the result is empty: a command then decodes as malformed and is
/// rejected alike by every replica, rather than crashing the node.
pub(crate) fn encode_infallible<T: Serialize>(value: &T) -> Bytes {
    codec::encode(value).map(Bytes::from).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_outputs_roundtrip() {
        let cmds = [
            KvCommand::Put {
                key: "a".into(),
                value: Bytes::from_static(b"1"),
            },
            KvCommand::Delete { key: "b".into() },
            KvCommand::Cas {
                key: "c".into(),
                expected: None,
                value: Some(Bytes::from_static(b"x")),
            },
            KvCommand::Txn {
                guards: vec![TxnGuard {
                    key: "g".into(),
                    expect: crate::storage::GuardExpect::Equals(Bytes::from_static(b"1")),
                }],
                ops: vec![TxnOp::Delete { key: "d".into() }],
            },
            KvCommand::TokenPut {
                name: "ci".into(),
                token: StoredToken {
                    role: crate::config::TokenRole::Write,
                    prefix: Some("ci/".into()),
                    secret_sha256: [3; 32],
                    created_at_ms: 5,
                    expires_at_ms: None,
                },
                bootstrap: false,
            },
            KvCommand::TokenDelete { name: "ci".into() },
        ];
        for cmd in cmds {
            assert_eq!(KvCommand::decode(&cmd.encode()).unwrap(), cmd);
        }
        let outs = [
            KvOutput::Put,
            KvOutput::Delete { existed: true },
            KvOutput::Cas {
                swapped: false,
                current: Some(Bytes::from_static(b"y")),
            },
            KvOutput::Rejected {
                reason: "no".into(),
            },
            KvOutput::Noop,
            KvOutput::Txn {
                succeeded: false,
                failed_guard: Some(3),
                results: vec![],
            },
            KvOutput::TokenPut { created: true },
            KvOutput::TokenDelete { existed: false },
        ];
        for out in outs {
            assert_eq!(KvOutput::decode(&out.encode()).unwrap(), out);
        }
        assert!(KvOutput::Noop.encode().is_empty());
        assert!(KvCommand::decode(b"\xff\xff\xff").is_err());
        // Variant indexes are part of the log format: existing ones must never move.
        let tags: Vec<u8> = [
            KvCommand::Put {
                key: "a".into(),
                value: Bytes::new(),
            },
            KvCommand::Delete { key: "a".into() },
            KvCommand::Txn {
                guards: vec![],
                ops: vec![],
            },
            KvCommand::TokenDelete { name: "t".into() },
        ]
        .iter()
        .map(|c| c.encode()[0])
        .collect();
        assert_eq!(tags, [0, 1, 3, 5]);
        assert_eq!(KvOutput::Rejected { reason: "".into() }.encode()[0], 3);
    }
}
