//! Replicated API tokens: bearer tokens an admin creates over the API, stored in the key-value
//! state machine so every node knows them.
//!
//! Nothing here ever sees a secret: a [`KvCommand::TokenPut`](super::KvCommand::TokenPut) carries
//! the SHA-256 of the secret (the node that handles the request generates the secret, hashes it
//! and shows it once to the caller), so neither the replicated log, the snapshots nor the store
//! hold anything that authenticates.
//!
//! Databases (in the state machine environment, written in the apply transaction):
//! - `tokens`: name -> sealed [`StoredToken`];
//! - `token_hashes`: SHA-256 of the secret (32 bytes) -> sealed name, to find a token from the
//!   secret a client presents. Snapshots carry only `tokens`; a restore rebuilds this index.
//!
//! Executing the commands is deterministic (no clock): expiry is a timestamp stored with the
//! token and checked by the gateway when the token is presented.

use heed::types::{Bytes as RawBytes, Str};
use heed::{Database, RoTxn, RwTxn, WithoutTls};
use serde::{Deserialize, Serialize};

use crate::config::TokenRole;

use super::codec;
use super::error::StorageError;
use super::kv_command::{KvOutput, MAX_KEY_LEN};
use super::kv_reader::{KvDbs, KvReader};

/// Name of the replicated tokens database.
pub const TOKENS_DB: &str = "tokens";
/// Name of the index of replicated tokens by the SHA-256 of their secret.
pub const TOKEN_HASHES_DB: &str = "token_hashes";
/// Longest token name, in bytes.
pub const MAX_TOKEN_NAME_LEN: usize = 128;

/// A replicated token as the log and the store hold it: its role, scope and lifetime, and the
/// SHA-256 of its secret (never the secret). `Debug` does not show the hash.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredToken {
    /// What it may do.
    pub role: TokenRole,
    /// Only keys starting with this (read and write tokens only).
    pub prefix: Option<String>,
    /// SHA-256 of the secret.
    pub secret_sha256: [u8; 32],
    /// When it was created (Unix milliseconds, the handling node's clock).
    pub created_at_ms: u64,
    /// When it stops being accepted (Unix milliseconds), if ever.
    pub expires_at_ms: Option<u64>,
}

impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredToken")
            .field("role", &self.role)
            .field("prefix", &self.prefix)
            .field("secret_sha256", &"<redacted>")
            .field("created_at_ms", &self.created_at_ms)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

impl StoredToken {
    /// Whether it has expired at `now_ms` (Unix milliseconds).
    pub fn expired_at(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|at| now_ms >= at)
    }
}

/// The two databases of the replicated tokens.
#[derive(Clone)]
pub(crate) struct TokenTables {
    pub(crate) records: Database<'static, Str, RawBytes>,
    pub(crate) by_hash: Database<'static, RawBytes, RawBytes>,
}

/// Why a token name or record is invalid (the same on every replica), if it is.
pub fn token_error(name: &str, token: Option<&StoredToken>) -> Option<String> {
    let len = name.len();
    if len == 0 || len > MAX_TOKEN_NAME_LEN {
        return Some(format!(
            "the token name must be 1 to {MAX_TOKEN_NAME_LEN} bytes, got {len}"
        ));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("the token name must not hold spaces or control characters".to_string());
    }
    let token = token?;
    match (&token.prefix, token.role) {
        (Some(_), TokenRole::Admin) => {
            Some("an admin token cannot have a prefix (it may do everything)".to_string())
        }
        (Some(p), _) if p.is_empty() || p.len() > MAX_KEY_LEN => Some(format!(
            "the prefix must be 1 to {MAX_KEY_LEN} bytes (leave it out for every key)"
        )),
        _ => None,
    }
}

fn corrupt(what: impl std::fmt::Display) -> StorageError {
    StorageError::corrupt(format!("replicated tokens: {what}"))
}

impl KvDbs {
    /// Creates token `name` unless one of that name exists (`created: false`). A `bootstrap`
    /// creation (made without a token while access control was off) is rejected once any token
    /// exists: whoever created that one turned access control on meanwhile.
    pub(crate) fn token_put(
        &self,
        txn: &mut RwTxn<'_>,
        name: &str,
        token: &StoredToken,
        bootstrap: bool,
    ) -> Result<KvOutput, StorageError> {
        let err = |e| self.ctx.err(e);
        let t = &self.tokens;
        if bootstrap && !t.records.is_empty(txn).map_err(err)? {
            return Ok(KvOutput::Rejected {
                reason: "access control was turned on meanwhile (another token was created): \
                         create tokens with an admin token"
                    .to_string(),
            });
        }
        if t.records.get(txn, name).map_err(err)?.is_some() {
            return Ok(KvOutput::TokenPut { created: false });
        }
        if t.by_hash
            .get(txn, &token.secret_sha256)
            .map_err(err)?
            .is_some()
        {
            return Ok(KvOutput::Rejected {
                reason: "another token has the same secret".to_string(),
            });
        }
        t.records
            .put(txn, name, &codec::encode_sealed(token)?)
            .map_err(err)?;
        t.by_hash
            .put(txn, &token.secret_sha256, &codec::encode_sealed(name)?)
            .map_err(err)?;
        Ok(KvOutput::TokenPut { created: true })
    }

    /// Revokes token `name`; `existed: false` when there was none.
    pub(crate) fn token_delete(
        &self,
        txn: &mut RwTxn<'_>,
        name: &str,
    ) -> Result<KvOutput, StorageError> {
        let err = |e| self.ctx.err(e);
        let Some(token) = self.token_record(txn, name)? else {
            return Ok(KvOutput::TokenDelete { existed: false });
        };
        self.tokens.records.delete(txn, name).map_err(err)?;
        if !self
            .tokens
            .by_hash
            .delete(txn, &token.secret_sha256)
            .map_err(err)?
        {
            return Err(corrupt(format!(
                "token {name:?} is missing from the index by secret"
            )));
        }
        Ok(KvOutput::TokenDelete { existed: true })
    }

    /// The record of token `name`.
    fn token_record(
        &self,
        txn: &RoTxn<'_, WithoutTls>,
        name: &str,
    ) -> Result<Option<StoredToken>, StorageError> {
        if name.is_empty() || name.len() > MAX_TOKEN_NAME_LEN {
            return Ok(None);
        }
        match self
            .tokens
            .records
            .get(txn, name)
            .map_err(|e| self.ctx.err(e))?
        {
            Some(raw) => codec::decode_sealed(raw)
                .map(Some)
                .map_err(|e| corrupt(format!("token {name:?}: {e}"))),
            None => Ok(None),
        }
    }

    /// Rebuilds the index by secret from the records (after a restore).
    pub(crate) fn token_rebuild_index(&self, txn: &mut RwTxn<'_>) -> Result<(), StorageError> {
        let err = |e| self.ctx.err(e);
        self.tokens.by_hash.clear(txn).map_err(err)?;
        let mut pairs = Vec::new();
        for item in self.tokens.records.iter(txn).map_err(err)? {
            let (name, raw) = item.map_err(err)?;
            let token: StoredToken =
                codec::decode_sealed(raw).map_err(|e| corrupt(format!("token {name:?}: {e}")))?;
            pairs.push((name.to_string(), token.secret_sha256));
        }
        for (name, hash) in pairs {
            self.tokens
                .by_hash
                .put(txn, &hash, &codec::encode_sealed(&name)?)
                .map_err(err)?;
        }
        Ok(())
    }
}

impl KvReader {
    /// The replicated token whose secret has this SHA-256, with its name.
    pub fn token_by_secret_hash(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<(String, StoredToken)>, StorageError> {
        let dbs = self.dbs();
        let txn = dbs.env.read_txn().map_err(|e| dbs.ctx.err(e))?;
        let Some(raw) = dbs
            .tokens
            .by_hash
            .get(&txn, hash)
            .map_err(|e| dbs.ctx.err(e))?
        else {
            return Ok(None);
        };
        let name: String =
            codec::decode_sealed(raw).map_err(|e| corrupt(format!("index by secret: {e}")))?;
        let token = dbs.token_record(&txn, &name)?.ok_or_else(|| {
            corrupt(format!(
                "the index by secret names token {name:?}, which does not exist"
            ))
        })?;
        Ok(Some((name, token)))
    }

    /// Every replicated token, by name.
    pub fn tokens(&self) -> Result<Vec<(String, StoredToken)>, StorageError> {
        let dbs = self.dbs();
        let txn = dbs.env.read_txn().map_err(|e| dbs.ctx.err(e))?;
        let mut out = Vec::new();
        for item in dbs.tokens.records.iter(&txn).map_err(|e| dbs.ctx.err(e))? {
            let (name, raw) = item.map_err(|e| dbs.ctx.err(e))?;
            let token: StoredToken =
                codec::decode_sealed(raw).map_err(|e| corrupt(format!("token {name:?}: {e}")))?;
            out.push((name.to_string(), token));
        }
        Ok(out)
    }

    /// Whether any replicated token exists (then access control is on).
    pub fn has_tokens(&self) -> Result<bool, StorageError> {
        let dbs = self.dbs();
        let txn = dbs.env.read_txn().map_err(|e| dbs.ctx.err(e))?;
        let empty = dbs
            .tokens
            .records
            .is_empty(&txn)
            .map_err(|e| dbs.ctx.err(e))?;
        Ok(!empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(role: TokenRole, prefix: Option<&str>) -> StoredToken {
        StoredToken {
            role,
            prefix: prefix.map(Into::into),
            secret_sha256: [7; 32],
            created_at_ms: 1,
            expires_at_ms: Some(10),
        }
    }

    #[test]
    fn names_and_scopes_are_checked() {
        assert!(token_error("ci", Some(&token(TokenRole::Write, Some("app/")))).is_none());
        assert!(token_error("", None).is_some());
        assert!(token_error("two words", None).is_some());
        assert!(token_error(&"n".repeat(MAX_TOKEN_NAME_LEN + 1), None).is_some());
        assert!(token_error("root", Some(&token(TokenRole::Admin, Some("a")))).is_some());
        assert!(token_error("app", Some(&token(TokenRole::Read, Some("")))).is_some());
    }

    #[test]
    fn expiry_and_debug() {
        let t = token(TokenRole::Read, None);
        assert!(!t.expired_at(9));
        assert!(t.expired_at(10));
        assert!(!format!("{t:?}").contains("7, 7"));
    }
}
