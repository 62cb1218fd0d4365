//! How `GET /v1/log` and the dashboard's `GET /api/logs` show log entries: typed views of an
//! entry and of the command it holds, from which the answers and their OpenAPI schemas derive.
//!
//! A byte string is shown as text when it is UTF-8; otherwise its text field is null and the
//! same name with `_base64` holds it encoded. With `max_value_bytes`, values longer than that
//! are cut, and the same name with `_size` gives their whole size.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use utoipa::ToSchema;

use super::shown_value::shown;
use crate::core::{Entry, EntryPayload, Membership};
use crate::storage::kv_regions::RegionChange;
use crate::storage::{GuardExpect, KvCommand, KvRequest, TxnGuard, TxnOp};

/// One log entry as shown by `GET /v1/log` (and, with `committed`, by `GET /api/logs`).
#[derive(Serialize, ToSchema)]
pub struct LogEntryView {
    /// Index.
    pub index: u64,
    /// Term.
    pub term: u64,
    /// `noop`, `command` or `config`.
    #[serde(rename = "type")]
    pub kind: EntryKind,
    /// What the entry holds: a key-value command, a configuration, or null for a no-op.
    pub command: Option<EntryCommand>,
    /// `GET /api/logs` only: whether this node knows the entry committed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed: Option<bool>,
}

/// What kind of entry it is.
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A new leader's empty entry.
    Noop,
    /// A state machine command.
    Command,
    /// A membership configuration.
    Config,
}

/// The content of a command or configuration entry.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum EntryCommand {
    /// A key-value command.
    Command(CommandView),
    /// A configuration: who votes, who learns, and their peer addresses.
    Config(ConfigView),
}

/// A configuration entry's members.
#[derive(Serialize, ToSchema)]
pub struct ConfigView {
    /// Voting members.
    pub voters: BTreeSet<u64>,
    /// Non-voting members.
    pub learners: BTreeSet<u64>,
    /// Peer address by member id (JSON object keys are strings).
    #[schema(value_type = BTreeMap<String, String>)]
    pub addrs: BTreeMap<u64, String>,
}

/// A key-value command with the idempotency key it was proposed with, if any.
#[derive(Serialize, ToSchema)]
pub struct CommandView {
    /// The command (`op` says which).
    #[serde(flatten)]
    pub command: KvCommandView,
    /// The client's idempotency key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A byte string as text (null when absent or not UTF-8).
type Text = Option<String>;

/// A key-value command, tagged by `op`.
#[derive(Serialize, ToSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum KvCommandView {
    /// `PUT /v1/kv/{key}`.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: Text,
        /// The value, base64, when not UTF-8.
        #[serde(skip_serializing_if = "Option::is_none")]
        value_base64: Text,
        /// The value's whole size in bytes, when the value shown is cut.
        #[serde(skip_serializing_if = "Option::is_none")]
        value_size: Option<usize>,
    },
    /// `DELETE /v1/kv/{key}`.
    Delete {
        /// The key.
        key: String,
    },
    /// `POST /v1/kv/{key}/cas`.
    Cas {
        /// The key.
        key: String,
        /// The value required (null: absent).
        expected: Text,
        /// `expected`, base64, when not UTF-8.
        #[serde(skip_serializing_if = "Option::is_none")]
        expected_base64: Text,
        /// `expected`'s whole size in bytes, when what is shown is cut.
        #[serde(skip_serializing_if = "Option::is_none")]
        expected_size: Option<usize>,
        /// The value set (null: delete).
        value: Text,
        /// `value`, base64, when not UTF-8.
        #[serde(skip_serializing_if = "Option::is_none")]
        value_base64: Text,
        /// `value`'s whole size in bytes, when what is shown is cut.
        #[serde(skip_serializing_if = "Option::is_none")]
        value_size: Option<usize>,
    },
    /// `POST /v1/txn`.
    Txn {
        /// The guards.
        guards: Vec<GuardView>,
        /// The operations.
        ops: Vec<TxnOpView>,
    },
    /// A replicated token was created (never its secret's hash).
    TokenPut {
        /// Its name.
        name: String,
        /// `admin`, `write` or `read`.
        role: String,
        /// The key prefix it is limited to.
        prefix: Option<String>,
        /// When it expires, in milliseconds since the Unix epoch.
        expires_at_ms: Option<u64>,
    },
    /// A replicated token was revoked.
    TokenDelete {
        /// Its name.
        name: String,
    },
    /// A change of the multi-region registry or settings.
    Region {
        /// The change in words (`add region us at http://...`).
        change: String,
    },
    /// Mutations shipped from another region.
    RegionApply {
        /// The origin region.
        from: String,
        /// What the origin recorded this region acknowledged.
        after: u64,
        /// How many mutations.
        mutations: usize,
        /// Their outbox sequence numbers, `first..=last`.
        seqs: Option<String>,
    },
    /// A remote region acknowledged this region's outbox up to `seq`.
    RegionAcked {
        /// The remote region.
        region: String,
        /// The outbox sequence number acknowledged.
        seq: u64,
    },
    /// A payload this version cannot decode.
    Unknown {
        /// The bytes as text.
        raw: Text,
        /// The bytes, base64, when not UTF-8.
        #[serde(skip_serializing_if = "Option::is_none")]
        raw_base64: Text,
        /// Their whole size, when what is shown is cut.
        #[serde(skip_serializing_if = "Option::is_none")]
        raw_size: Option<usize>,
    },
}

/// A transaction operation, tagged by `op`.
#[derive(Serialize, ToSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum TxnOpView {
    /// Set the key.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: Text,
        /// The value, base64, when not UTF-8.
        #[serde(skip_serializing_if = "Option::is_none")]
        value_base64: Text,
        /// The value's whole size in bytes, when the value shown is cut.
        #[serde(skip_serializing_if = "Option::is_none")]
        value_size: Option<usize>,
    },
    /// Remove the key.
    Delete {
        /// The key.
        key: String,
    },
}

/// A transaction guard: `expect` (`absent`/`present`) or `equals`.
#[derive(Serialize, ToSchema)]
pub struct GuardView {
    /// The key.
    pub key: String,
    /// `absent` or `present`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<&'static str>,
    /// The value the key must hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equals: Text,
    /// `equals`, base64, when not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equals_base64: Text,
    /// `equals`' whole size in bytes, when what is shown is cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equals_size: Option<usize>,
}

impl LogEntryView {
    /// The view of `entry`, values whole.
    pub fn of(entry: &Entry) -> Self {
        Self::cut(entry, None)
    }

    /// The view of `entry` with values longer than `max_value_bytes` cut.
    pub fn cut(entry: &Entry, max_value_bytes: Option<usize>) -> Self {
        let (kind, command) = match &entry.payload {
            EntryPayload::Noop => (EntryKind::Noop, None),
            EntryPayload::Command(bytes) => (
                EntryKind::Command,
                Some(EntryCommand::Command(CommandView::decode(
                    bytes,
                    max_value_bytes,
                ))),
            ),
            EntryPayload::Config(members) => (
                EntryKind::Config,
                Some(EntryCommand::Config(ConfigView::of(members))),
            ),
        };
        LogEntryView {
            index: entry.index,
            term: entry.term,
            kind,
            command,
            committed: None,
        }
    }
}

impl ConfigView {
    fn of(members: &Membership) -> Self {
        ConfigView {
            voters: members.voters.clone(),
            learners: members.learners.clone(),
            addrs: members.addrs.clone(),
        }
    }
}

impl CommandView {
    /// A command entry's payload (with or without an idempotency key), values longer than
    /// `limit` cut; an undecodable payload is shown raw.
    pub fn decode(bytes: &[u8], limit: Option<usize>) -> Self {
        let decoded = if KvRequest::is_request(bytes) {
            KvRequest::decode(bytes).map(|r| (r.command, r.request_id))
        } else {
            KvCommand::decode(bytes).map(|c| (c, None))
        };
        match decoded {
            Ok((command, request_id)) => CommandView {
                command: KvCommandView::of(command, limit),
                request_id,
            },
            Err(_) => {
                let raw = shown(Some(bytes), limit);
                CommandView {
                    command: KvCommandView::Unknown {
                        raw: raw.text,
                        raw_base64: raw.base64,
                        raw_size: raw.size,
                    },
                    request_id: None,
                }
            }
        }
    }
}

impl KvCommandView {
    fn of(command: KvCommand, limit: Option<usize>) -> Self {
        match command {
            KvCommand::Put { key, value } => {
                let value = shown(Some(&value), limit);
                KvCommandView::Put {
                    key,
                    value: value.text,
                    value_base64: value.base64,
                    value_size: value.size,
                }
            }
            KvCommand::Delete { key } => KvCommandView::Delete { key },
            KvCommand::Cas {
                key,
                expected,
                value,
            } => {
                let expected = shown(expected.as_deref(), limit);
                let value = shown(value.as_deref(), limit);
                KvCommandView::Cas {
                    key,
                    expected: expected.text,
                    expected_base64: expected.base64,
                    expected_size: expected.size,
                    value: value.text,
                    value_base64: value.base64,
                    value_size: value.size,
                }
            }
            KvCommand::Txn { guards, ops } => KvCommandView::Txn {
                guards: guards
                    .into_iter()
                    .map(|guard| GuardView::of(guard, limit))
                    .collect(),
                ops: ops
                    .into_iter()
                    .map(|op| match op {
                        TxnOp::Put { key, value } => {
                            let value = shown(Some(&value), limit);
                            TxnOpView::Put {
                                key,
                                value: value.text,
                                value_base64: value.base64,
                                value_size: value.size,
                            }
                        }
                        TxnOp::Delete { key } => TxnOpView::Delete { key },
                    })
                    .collect(),
            },
            KvCommand::TokenPut { name, token, .. } => KvCommandView::TokenPut {
                name,
                role: token.role.as_str().to_string(),
                prefix: token.prefix,
                expires_at_ms: token.expires_at_ms,
            },
            KvCommand::TokenDelete { name } => KvCommandView::TokenDelete { name },
            KvCommand::Region(change) => KvCommandView::Region {
                change: describe_region_change(&change),
            },
            KvCommand::RegionApply {
                from,
                after,
                mutations,
            } => KvCommandView::RegionApply {
                from,
                after,
                mutations: mutations.len(),
                seqs: mutations
                    .first()
                    .zip(mutations.last())
                    .map(|(first, last)| format!("{}..={}", first.seq, last.seq)),
            },
            KvCommand::RegionAcked { region, seq } => KvCommandView::RegionAcked { region, seq },
        }
    }
}

impl GuardView {
    fn of(guard: TxnGuard, limit: Option<usize>) -> Self {
        let (expect, equals) = match guard.expect {
            GuardExpect::Absent => (Some("absent"), None),
            GuardExpect::Present => (Some("present"), None),
            GuardExpect::Equals(value) => (None, Some(value)),
        };
        let equals = shown(equals.as_deref(), limit);
        GuardView {
            key: guard.key,
            expect,
            equals: equals.text,
            equals_base64: equals.base64,
            equals_size: equals.size,
        }
    }
}

/// A region change in words, for the log views (`add region us at http://...`).
fn describe_region_change(change: &RegionChange) -> String {
    match change {
        RegionChange::Add { id, endpoints, .. } => {
            format!("add region {id} at {}", endpoints.join(", "))
        }
        RegionChange::Remove { id } => format!("remove region {id}"),
        RegionChange::SetPrimary { id: Some(id) } => format!("make {id} the primary region"),
        RegionChange::SetPrimary { id: None } => "clear the primary region".to_string(),
        RegionChange::SetPolicy(policy) => {
            let prefixes: Vec<String> = policy
                .prefixes
                .iter()
                .map(|(prefix, strategy)| format!(", {prefix}* {strategy}"))
                .collect();
            format!(
                "set the conflict policy (default {}{})",
                policy.default,
                prefixes.concat()
            )
        }
        RegionChange::SetAck { mode, timeout_ms } => format!(
            "acknowledge writes {} (waiting up to {timeout_ms} ms)",
            mode.as_str()
        ),
    }
}

#[cfg(test)]
#[path = "log_view_tests.rs"]
mod tests;
