//! Static bearer tokens (access control of the HTTP gateway).
//!
//! Tokens come from the config file (`[[tokens]]` tables) and/or a token file given with
//! `--token-file` (`token_file` in the config file), which holds the same `[[tokens]]` tables and
//! must not be readable by group or others:
//!
//! ```toml
//! [[tokens]]
//! name = "ops"            # shown in logs instead of the secret
//! token = "s3cret-admin"  # what clients send as `Authorization: Bearer s3cret-admin`
//! role = "admin"          # read | write | admin
//!
//! [[tokens]]
//! name = "app"
//! token = "s3cret-app"
//! role = "write"
//! prefix = "app/"         # optional: only keys starting with this
//! ```
//!
//! No token at all means access control is off. The secrets never appear in `Debug` output.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// What a token may do; each role includes the ones before it.
/// Replicated tokens store it in the log and snapshots (bincode: by variant index): never reorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenRole {
    /// Reads: keys, status, cluster view, log, metrics, OpenAPI document.
    Read,
    /// Reads and key writes (`/v1/kv*`, `/v1/txn`, `/api/command`).
    Write,
    /// Everything: membership, snapshots, backups, leadership transfer.
    Admin,
}

impl TokenRole {
    /// `read`, `write` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenRole::Read => "read",
            TokenRole::Write => "write",
            TokenRole::Admin => "admin",
        }
    }

    /// Parses `read`, `write` or `admin`.
    pub fn parse(text: &str) -> Option<TokenRole> {
        match text {
            "read" => Some(TokenRole::Read),
            "write" => Some(TokenRole::Write),
            "admin" => Some(TokenRole::Admin),
            _ => None,
        }
    }
}

/// One static token. `Debug` shows the name, role and prefix, never the secret; `Serialize`
/// carries it (settings are combined through serde), so whatever prints a configuration must
/// redact it (see `NodeConfig`'s `tokens`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// A name for logs and error messages.
    pub name: String,
    /// The secret clients send as `Authorization: Bearer <token>`.
    pub token: String,
    /// What it may do.
    pub role: TokenRole,
    /// Only keys starting with this (read and write tokens only).
    #[serde(default)]
    pub prefix: Option<String>,
}

impl fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .field("token", &"<redacted>")
            .field("role", &self.role)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// The content of a token file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    #[serde(default)]
    tokens: Vec<TokenConfig>,
}

/// Reads the tokens of a token file; refuses a file readable by group or others.
pub fn load_token_file(path: &Path) -> Result<Vec<TokenConfig>, ConfigError> {
    let bad = |reason: String| ConfigError::TokenFile {
        path: path.to_owned(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    check_private(path, &meta).map_err(bad)?;
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    // The TOML error could quote a line holding a secret: report only where it is.
    let file: TokenFile = toml::from_str(&text).map_err(|e| {
        let at = e
            .span()
            .map(|s| {
                let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                format!(" at line {line}")
            })
            .unwrap_or_default();
        bad(format!(
            "not a valid token file{at}: expected [[tokens]] tables with name, token, role and an optional prefix"
        ))
    })?;
    Ok(file.tokens)
}

#[cfg(unix)]
pub(super) fn check_private(path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "it is readable or writable by group or others (mode {mode:03o}); run `chmod 600 {}`",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
pub(super) fn check_private(_: &Path, _: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}

/// Checks names, secrets and prefixes. Error values name the token, never quote its secret.
pub(super) fn check_tokens(tokens: &[TokenConfig]) -> Result<(), ConfigError> {
    let mut names = std::collections::BTreeSet::new();
    for (i, t) in tokens.iter().enumerate() {
        if t.name.trim().is_empty() {
            return Err(ConfigError::invalid(
                "tokens",
                format!("token #{}", i + 1),
                "every token needs a non-empty name",
            ));
        }
        if !names.insert(t.name.as_str()) {
            return Err(ConfigError::invalid(
                "tokens",
                &t.name,
                "token names must be unique",
            ));
        }
        if t.token.len() < 8 || t.token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::invalid(
                "tokens",
                &t.name,
                "the secret must be at least 8 characters without spaces",
            ));
        }
        if tokens[..i].iter().any(|o| o.token == t.token) {
            return Err(ConfigError::invalid(
                "tokens",
                &t.name,
                "two tokens have the same secret",
            ));
        }
        match (&t.prefix, t.role) {
            (Some(_), TokenRole::Admin) => {
                return Err(ConfigError::invalid(
                    "tokens",
                    &t.name,
                    "an admin token cannot have a prefix (it may do everything)",
                ))
            }
            (Some(p), _) if p.is_empty() => {
                return Err(ConfigError::invalid(
                    "tokens",
                    &t.name,
                    "the prefix must not be empty (leave it out for every key)",
                ))
            }
            _ => {}
        }
    }
    Ok(())
}
