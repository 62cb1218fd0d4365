//! What a failed check reports: the key, how far the best linearization got, the operation that
//! could not be placed, and a window of the history around it, formatted for a test to print.

use std::fmt;

use super::history::{show_value, Operation, Value};
use super::search::Stuck;

/// Most operations of the longest linearizable prefix shown (its last ones).
const RECENT: usize = 4;
/// Most overlapping operations shown.
const WINDOW: usize = 24;

/// A history with no linearization: the evidence, trimmed to the part that matters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The key (`None` when a single key's history was checked on its own).
    pub key: Option<String>,
    /// Operations in that key's history.
    pub ops_in_key: usize,
    /// Length of the longest linearizable prefix the search found.
    pub linearized: usize,
    /// The register's value after that prefix.
    pub state: Value,
    /// The operation that returned without any legal linearization point after that prefix.
    pub blocked: Operation,
    /// The last operations of that prefix, in linearization order (what set `state`).
    pub recent: Vec<Operation>,
    /// The operations whose intervals overlap the blocked one's, by call time (the blocked one
    /// included).
    pub window: Vec<Operation>,
}

impl Violation {
    /// Builds the report from where the search got stuck.
    pub(crate) fn new(history: &[Operation], stuck: &Stuck) -> Violation {
        let fallback = Operation::new(
            0,
            0,
            None,
            super::KvInput::Read,
            super::KvOutputObs::Unknown,
        );
        let blocked = history.get(stuck.blocked).cloned().unwrap_or(fallback);
        let recent = stuck.prefix[stuck.prefix.len().saturating_sub(RECENT)..]
            .iter()
            .filter_map(|&i| history.get(i).cloned())
            .collect();
        let (from, to) = (blocked.call, blocked.ret.unwrap_or(u64::MAX));
        let mut window: Vec<&Operation> = history
            .iter()
            .filter(|op| op.call <= to && op.ret.is_none_or(|ret| ret >= from))
            .collect();
        window.sort_by_key(|op| (op.call, op.ret));
        if window.len() > WINDOW {
            // Keep the operations called nearest the blocked one.
            let at = window.iter().position(|op| **op == blocked).unwrap_or(0);
            let start = at.saturating_sub(WINDOW / 2).min(window.len() - WINDOW);
            window = window[start..start + WINDOW].to_vec();
        }
        Violation {
            key: None,
            ops_in_key: history.len(),
            linearized: stuck.prefix.len(),
            state: stuck.state.clone(),
            blocked,
            recent,
            window: window.into_iter().cloned().collect(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "key {key:?}: ")?,
            None => write!(f, "key: ")?,
        }
        writeln!(
            f,
            "not linearizable ({} operations). The longest linearization found covers {}, leaving \
             the value {}; then no legal point exists for:",
            self.ops_in_key,
            self.linearized,
            show_value(&self.state)
        )?;
        writeln!(f, "  >> {}", self.blocked)?;
        if !self.recent.is_empty() {
            writeln!(f, "last operations of that linearization, in order:")?;
            for op in &self.recent {
                writeln!(f, "     {op}")?;
            }
        }
        writeln!(f, "operations overlapping it, by call time:")?;
        for op in &self.window {
            let mark = if *op == self.blocked { ">>" } else { "  " };
            writeln!(f, "  {mark} {op}")?;
        }
        Ok(())
    }
}
