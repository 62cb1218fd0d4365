//! Apply callbacks of the key-value state machine: after each batch of entries is durably
//! applied, an observer the embedding application registered
//! ([`KvStateMachine::set_apply_observer`](super::KvStateMachine::set_apply_observer)) is told
//! which keys changed and how. It runs on the applier's thread: keep it short (hand the changes
//! to a channel). Entries answered from the exactly-once table (retries) are not reported again.

use std::sync::Arc;

use bytes::Bytes;

use super::kv_command::{KvCommand, KvOutput};
use super::kv_reader::KvReader;
use super::kv_request::{KvRequest, KvResponse};
use super::kv_txn::TxnOp;
use crate::core::{Entry, EntryPayload, Index};

/// One key changed by an applied entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedChange {
    /// The entry's index.
    pub index: Index,
    /// The key.
    pub key: String,
    /// Its value now (`None`: deleted).
    pub value: Option<Bytes>,
    /// The region the change came from, when it was shipped from another region.
    pub origin: Option<String>,
}

/// Receives the changes of each applied batch.
pub type ApplyObserver = Arc<dyn Fn(&[AppliedChange]) + Send + Sync>;

/// The command and output of an applied entry, when it carried a fresh command.
fn command_and_output(entry: &Entry, output: &[u8]) -> Option<(KvCommand, KvOutput)> {
    let EntryPayload::Command(bytes) = &entry.payload else {
        return None;
    };
    if KvRequest::is_request(bytes) {
        let request = KvRequest::decode(bytes).ok()?;
        let response = KvResponse::decode(output).ok()?;
        (!response.duplicate).then_some((request.command, response.output))
    } else {
        Some((
            KvCommand::decode(bytes).ok()?,
            KvOutput::decode(output).ok()?,
        ))
    }
}

/// The changes made by `entries`, whose outputs are `outputs` (values of changes shipped from
/// another region are read back from `reader`, after the commit).
pub(crate) fn changes_of(
    entries: &[Entry],
    outputs: &[Bytes],
    reader: &KvReader,
) -> Vec<AppliedChange> {
    let mut changes = Vec::new();
    for (entry, output) in entries.iter().zip(outputs) {
        let Some((command, output)) = command_and_output(entry, output) else {
            continue;
        };
        let index = entry.index;
        let mut local = |key: String, value: Option<Bytes>| {
            changes.push(AppliedChange {
                index,
                key,
                value,
                origin: None,
            })
        };
        match (command, output) {
            (KvCommand::Put { key, value }, KvOutput::Put) => local(key, Some(value)),
            (KvCommand::Delete { key }, KvOutput::Delete { existed: true }) => local(key, None),
            (KvCommand::Cas { key, value, .. }, KvOutput::Cas { swapped: true, .. }) => {
                local(key, value)
            }
            (
                KvCommand::Txn { ops, .. },
                KvOutput::Txn {
                    succeeded: true, ..
                },
            ) => {
                for op in ops {
                    match op {
                        TxnOp::Put { key, value } => local(key, Some(value)),
                        TxnOp::Delete { key } => local(key, None),
                    }
                }
            }
            (
                KvCommand::RegionApply {
                    from, mutations, ..
                },
                KvOutput::RegionApplied { .. },
            ) => {
                for m in mutations {
                    let value = reader.get(&m.key).ok().flatten();
                    changes.push(AppliedChange {
                        index,
                        key: m.key,
                        value,
                        origin: Some(from.clone()),
                    });
                }
            }
            _ => {}
        }
    }
    changes
}
