//! Credentials of the gateway: the static and replicated tokens a node accepts ([`Tokens`]),
//! what a presented secret turns out to be ([`Lookup`]) and who it authenticates ([`Principal`]).
//! The middleware using them is [`super::auth`].

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::config::{TokenConfig, TokenRole};
use crate::storage::KvReader;

/// The tokens a node accepts: static ones and, through the state machine, replicated ones
/// (none at all: access control off).
#[derive(Clone, Default)]
pub struct Tokens {
    tokens: Arc<Vec<TokenConfig>>,
    replicated: Option<KvReader>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tokens({} static, replicated {})",
            self.tokens.len(),
            if self.replicated.is_some() {
                "on"
            } else {
                "off"
            }
        )
    }
}

/// Who a request authenticated as: a token's name, role and prefix (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name.
    pub name: String,
    /// What it may do.
    pub role: TokenRole,
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// Whether it is a replicated token (else a static one).
    pub replicated: bool,
}

impl Principal {
    fn of_static(token: &TokenConfig) -> Self {
        Self {
            name: token.name.clone(),
            role: token.role,
            prefix: token.prefix.clone(),
            replicated: false,
        }
    }
}

/// What a presented secret is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A valid token.
    Found(Principal),
    /// A replicated token past its expiry: its name.
    Expired(String),
    /// No token has this secret.
    Unknown,
}

/// How the gateway treated a request, for the handlers (in the request's extensions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Access control is off on this node: no token was needed.
    Off,
    /// Authenticated as this token.
    Token(Principal),
}

/// SHA-256 of a secret (what replicated tokens store).
pub fn secret_sha256(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// Milliseconds since the Unix epoch by this node's clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

impl Tokens {
    /// The static tokens of a configuration, plus the replicated tokens of the state machine
    /// `replicated` reads (when given).
    pub fn new(tokens: Vec<TokenConfig>, replicated: Option<KvReader>) -> Self {
        Self {
            tokens: Arc::new(tokens),
            replicated,
        }
    }

    /// The static tokens.
    pub fn static_tokens(&self) -> &[TokenConfig] {
        &self.tokens
    }

    /// Whether access control is on: some static token is configured or some replicated token
    /// exists (as of the last applied batch, kept in memory: no storage read per request; a
    /// state machine that could not be read back counts as "on", fail closed).
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty() || self.replicated.as_ref().is_some_and(KvReader::tokens_exist)
    }

    /// The static token whose secret is `secret`, compared in constant time (every token is
    /// compared).
    pub fn find_static(&self, secret: &[u8]) -> Option<&TokenConfig> {
        let mut found = None;
        for token in self.tokens.iter() {
            if constant_time_eq(token.token.as_bytes(), secret) {
                found = Some(token);
            }
        }
        found
    }

    /// The token whose secret is `secret`: static tokens first, then the replicated ones (by
    /// the secret's SHA-256, compared again in constant time), refusing expired ones.
    pub fn find(&self, secret: &[u8]) -> Lookup {
        if let Some(token) = self.find_static(secret) {
            return Lookup::Found(Principal::of_static(token));
        }
        let Some(kv) = &self.replicated else {
            return Lookup::Unknown;
        };
        let hash = secret_sha256(secret);
        match kv.token_by_secret_hash(&hash) {
            Ok(Some((name, token))) if constant_time_eq(&token.secret_sha256, &hash) => {
                if token.expired_at(now_ms()) {
                    Lookup::Expired(name)
                } else {
                    Lookup::Found(Principal {
                        name,
                        role: token.role,
                        prefix: token.prefix,
                        replicated: true,
                    })
                }
            }
            Ok(_) => Lookup::Unknown,
            Err(e) => {
                tracing::error!("cannot read the replicated tokens: {e}");
                Lookup::Unknown
            }
        }
    }
}

/// Equality of two byte strings in time depending only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for i in 0..len {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}
