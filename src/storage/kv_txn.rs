//! Multi-key transactions of the key-value state machine: guards, operations and their limits.
//!
//! A [`KvCommand::Txn`](super::KvCommand::Txn) is one log entry: every [`TxnGuard`] is checked
//! against the state before the entry, and only if all of them hold are the [`TxnOp`]s applied,
//! in order, in the same LMDB write transaction. Otherwise nothing changes. The limits below are
//! checked while applying, identically on every replica; a transaction over them is rejected.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::kv_command::MAX_KEY_LEN;

/// Most guards one transaction may carry.
pub const MAX_TXN_GUARDS: usize = 128;
/// Most operations one transaction may carry.
pub const MAX_TXN_OPS: usize = 128;

/// A condition on one key that must hold for a transaction to apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnGuard {
    /// The key (1 to [`MAX_KEY_LEN`] bytes).
    pub key: String,
    /// What the key's current value must be.
    pub expect: GuardExpect,
}

/// What a [`TxnGuard`] requires of its key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GuardExpect {
    /// The key must not exist.
    Absent,
    /// The key must exist, with any value.
    Present,
    /// The key must exist with exactly this value.
    Equals(Bytes),
}

impl GuardExpect {
    /// Whether the guard holds for a key whose current value is `current` (`None`: absent).
    pub fn holds(&self, current: Option<&[u8]>) -> bool {
        match (self, current) {
            (GuardExpect::Absent, None) => true,
            (GuardExpect::Present, Some(_)) => true,
            (GuardExpect::Equals(want), Some(have)) => want.as_ref() == have,
            _ => false,
        }
    }
}

/// One write of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    /// Set `key` to `value`.
    Put {
        /// The key (1 to [`MAX_KEY_LEN`] bytes).
        key: String,
        /// The new value.
        value: Bytes,
    },
    /// Remove `key` (whether or not it exists).
    Delete {
        /// The key (1 to [`MAX_KEY_LEN`] bytes).
        key: String,
    },
}

impl TxnOp {
    /// The key the operation writes.
    pub fn key(&self) -> &str {
        match self {
            TxnOp::Put { key, .. } | TxnOp::Delete { key } => key,
        }
    }
}

/// Why a key is invalid, if it is: keys are 1 to [`MAX_KEY_LEN`] bytes.
pub(crate) fn key_error(key: &str) -> Option<String> {
    let len = key.len();
    (len == 0 || len > MAX_KEY_LEN)
        .then(|| format!("key must be 1 to {MAX_KEY_LEN} bytes, got {len}"))
}

/// Checks a transaction against the limits; the error is the rejection reason.
pub(crate) fn validate_txn(guards: &[TxnGuard], ops: &[TxnOp]) -> Result<(), String> {
    if guards.len() > MAX_TXN_GUARDS {
        return Err(format!(
            "transaction has {} guards, at most {MAX_TXN_GUARDS} are allowed",
            guards.len()
        ));
    }
    if ops.len() > MAX_TXN_OPS {
        return Err(format!(
            "transaction has {} operations, at most {MAX_TXN_OPS} are allowed",
            ops.len()
        ));
    }
    for (i, guard) in guards.iter().enumerate() {
        if let Some(e) = key_error(&guard.key) {
            return Err(format!("guard {i}: {e}"));
        }
    }
    for (i, op) in ops.iter().enumerate() {
        if let Some(e) = key_error(op.key()) {
            return Err(format!("operation {i}: {e}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_hold_as_documented() {
        let v = Bytes::from_static(b"v");
        assert!(GuardExpect::Absent.holds(None));
        assert!(!GuardExpect::Absent.holds(Some(b"v")));
        assert!(GuardExpect::Present.holds(Some(b"")));
        assert!(!GuardExpect::Present.holds(None));
        assert!(GuardExpect::Equals(v.clone()).holds(Some(b"v")));
        assert!(!GuardExpect::Equals(v.clone()).holds(Some(b"w")));
        assert!(!GuardExpect::Equals(v).holds(None));
    }

    #[test]
    fn limits_name_the_offender() {
        let op = |key: &str| TxnOp::Delete { key: key.into() };
        assert!(validate_txn(&[], &[]).is_ok());
        let too_many = vec![op("k"); MAX_TXN_OPS + 1];
        assert!(validate_txn(&[], &too_many)
            .unwrap_err()
            .contains("129 operations"));
        let err = validate_txn(&[], &[op("a"), op("")]).unwrap_err();
        assert!(err.starts_with("operation 1:"), "{err}");
        let guard = TxnGuard {
            key: "x".repeat(MAX_KEY_LEN + 1),
            expect: GuardExpect::Present,
        };
        assert!(validate_txn(&[guard], &[])
            .unwrap_err()
            .starts_with("guard 0:"));
    }
}
