//! Conflict strategies and the per-key-prefix policy that picks one.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Resolvers;

/// How a conflict between concurrent versions of a key is resolved.
///
/// Written (Display, FromStr, and serde, as a string) as `latest-timestamp`, `lww-register`,
/// `multi-value` or `custom:NAME`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Strategy {
    /// The greater `(hlc, origin region id)` wins.
    LatestTimestamp,
    /// The greater `(physical_ms, origin is the primary region, origin region id)` wins:
    /// wall-clock last-writer-wins, the primary region winning ties.
    LwwRegister,
    /// All concurrent versions are kept as siblings until a write that has seen them.
    MultiValue,
    /// The values are merged by the resolver registered under this name ([`Resolvers`]).
    Custom(String),
}

/// The longest name of a custom resolver, in bytes.
const MAX_RESOLVER_NAME_BYTES: usize = 64;

impl Strategy {
    /// The prefix of a custom strategy's text form.
    pub const CUSTOM_PREFIX: &'static str = "custom:";
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::LatestTimestamp => f.write_str("latest-timestamp"),
            Strategy::LwwRegister => f.write_str("lww-register"),
            Strategy::MultiValue => f.write_str("multi-value"),
            Strategy::Custom(name) => write!(f, "{}{name}", Strategy::CUSTOM_PREFIX),
        }
    }
}

impl FromStr for Strategy {
    type Err = String;

    fn from_str(text: &str) -> Result<Strategy, String> {
        match text {
            "latest-timestamp" => return Ok(Strategy::LatestTimestamp),
            "lww-register" => return Ok(Strategy::LwwRegister),
            "multi-value" => return Ok(Strategy::MultiValue),
            _ => {}
        }
        let Some(name) = text.strip_prefix(Strategy::CUSTOM_PREFIX) else {
            return Err(format!(
                "unknown conflict strategy {text:?}: expected latest-timestamp, lww-register, \
                 multi-value or custom:NAME"
            ));
        };
        if name.is_empty() || name.len() > MAX_RESOLVER_NAME_BYTES {
            return Err(format!(
                "conflict strategy {text:?}: the resolver name must be 1 to \
                 {MAX_RESOLVER_NAME_BYTES} bytes"
            ));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(format!(
                "conflict strategy {text:?}: the resolver name contains {bad:?}: only letters, \
                 digits, '-', '_' and '.' are allowed"
            ));
        }
        Ok(Strategy::Custom(name.to_string()))
    }
}

impl TryFrom<String> for Strategy {
    type Error = String;

    fn try_from(text: String) -> Result<Strategy, String> {
        text.parse()
    }
}

impl From<Strategy> for String {
    fn from(strategy: Strategy) -> String {
        strategy.to_string()
    }
}

/// Which strategy resolves the conflicts of a key: the strategy of the longest configured key
/// prefix that the key starts with, else `default`.
///
/// Every region must use the same policy (and the same resolvers), or they resolve the same
/// conflict differently and do not converge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictPolicy {
    /// The strategy of keys no prefix matches.
    pub default: Strategy,
    /// Key prefix -> strategy. The empty prefix matches every key.
    pub prefixes: BTreeMap<String, Strategy>,
}

impl Default for ConflictPolicy {
    /// `latest-timestamp` for every key.
    fn default() -> ConflictPolicy {
        ConflictPolicy {
            default: Strategy::LatestTimestamp,
            prefixes: BTreeMap::new(),
        }
    }
}

impl ConflictPolicy {
    /// The strategy of `key`: that of the longest prefix in `prefixes` the key starts with, else
    /// `default`.
    pub fn strategy_for(&self, key: &str) -> &Strategy {
        (0..=key.len())
            .rev()
            .filter(|end| key.is_char_boundary(*end))
            .find_map(|end| self.prefixes.get(&key[..end]))
            .unwrap_or(&self.default)
    }

    /// The custom resolver names this policy uses that `resolvers` does not know, sorted (for a
    /// configuration error; conflicts on such keys fall back to latest-timestamp as failed).
    pub fn unknown_resolvers(&self, resolvers: &Resolvers) -> Vec<String> {
        let mut unknown: Vec<String> = std::iter::once(&self.default)
            .chain(self.prefixes.values())
            .filter_map(|strategy| match strategy {
                Strategy::Custom(name) if resolvers.get(name).is_none() => Some(name.clone()),
                _ => None,
            })
            .collect();
        unknown.sort();
        unknown.dedup();
        unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        for strategy in [
            Strategy::LatestTimestamp,
            Strategy::LwwRegister,
            Strategy::MultiValue,
            Strategy::Custom("max".to_string()),
            Strategy::Custom("my.app-merge_2".to_string()),
        ] {
            let text = strategy.to_string();
            assert_eq!(text.parse::<Strategy>(), Ok(strategy.clone()), "{text}");
            let json = serde_json::to_string(&strategy).expect("serializes");
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(
                serde_json::from_str::<Strategy>(&json).expect("deserializes"),
                strategy
            );
        }
        assert_eq!(Strategy::Custom("union".into()).to_string(), "custom:union");
    }

    #[test]
    fn refuses_unknown_names_and_bad_custom_names() {
        for bad in [
            "",
            "latest",
            "Latest-Timestamp",
            "custom:",
            "custom:a b",
            "custom:a:b",
            "max",
        ] {
            assert!(bad.parse::<Strategy>().is_err(), "{bad:?} accepted");
        }
        assert!(format!("custom:{}", "x".repeat(65))
            .parse::<Strategy>()
            .is_err());
        assert!(serde_json::from_str::<Strategy>("\"nope\"").is_err());
    }

    #[test]
    fn strategy_for_picks_the_longest_matching_prefix() {
        let policy = ConflictPolicy {
            default: Strategy::LatestTimestamp,
            prefixes: [
                ("cart/".to_string(), Strategy::MultiValue),
                ("cart/vip/".to_string(), Strategy::LwwRegister),
                ("count".to_string(), Strategy::Custom("max".to_string())),
            ]
            .into_iter()
            .collect(),
        };
        assert_eq!(policy.strategy_for("cart/1"), &Strategy::MultiValue);
        assert_eq!(policy.strategy_for("cart/vip/1"), &Strategy::LwwRegister);
        assert_eq!(policy.strategy_for("cart/vip/"), &Strategy::LwwRegister);
        assert_eq!(policy.strategy_for("cart"), &Strategy::LatestTimestamp);
        assert_eq!(
            policy.strategy_for("counter"),
            &Strategy::Custom("max".to_string())
        );
        assert_eq!(policy.strategy_for(""), &Strategy::LatestTimestamp);
        assert_eq!(policy.strategy_for("é/x"), &Strategy::LatestTimestamp);
    }

    #[test]
    fn the_empty_prefix_matches_every_key() {
        let mut policy = ConflictPolicy::default();
        assert_eq!(policy.strategy_for("any"), &Strategy::LatestTimestamp);
        policy.prefixes.insert(String::new(), Strategy::MultiValue);
        assert_eq!(policy.strategy_for("any"), &Strategy::MultiValue);
        assert_eq!(policy.strategy_for(""), &Strategy::MultiValue);
    }

    #[test]
    fn unknown_resolvers_lists_custom_names_not_registered() {
        let policy = ConflictPolicy {
            default: Strategy::Custom("nope".to_string()),
            prefixes: [
                ("a".to_string(), Strategy::Custom("max".to_string())),
                ("b".to_string(), Strategy::Custom("also-nope".to_string())),
                ("c".to_string(), Strategy::Custom("nope".to_string())),
            ]
            .into_iter()
            .collect(),
        };
        assert_eq!(
            policy.unknown_resolvers(&Resolvers::with_builtins()),
            ["also-nope", "nope"]
        );
    }

    #[test]
    fn a_policy_round_trips_through_the_storage_codec_and_json() {
        let policy = ConflictPolicy {
            default: Strategy::LwwRegister,
            prefixes: [
                ("cart/".to_string(), Strategy::MultiValue),
                ("n/".to_string(), Strategy::Custom("max".to_string())),
            ]
            .into_iter()
            .collect(),
        };
        let encoded = crate::wire::encode(&policy).expect("encodes");
        let decoded: ConflictPolicy = crate::wire::decode(&encoded).expect("decodes");
        assert_eq!(decoded, policy);
        let json = serde_json::to_value(&policy).expect("to JSON");
        assert_eq!(
            json,
            serde_json::json!({
                "default": "lww-register",
                "prefixes": {"cart/": "multi-value", "n/": "custom:max"}
            })
        );
        let garbled = crate::wire::encode(&"custom:".to_string()).expect("encodes");
        assert!(crate::wire::decode::<Strategy>(&garbled).is_err());
    }
}
