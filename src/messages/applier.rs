//! Messages to the `Applier` actor.

use actix::Message;

use crate::core::Entry;

/// Node -> applier: apply these committed entries (contiguous, in order), then report
/// `Applied`.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Apply {
    /// Committed entries.
    pub entries: Vec<Entry>,
}
