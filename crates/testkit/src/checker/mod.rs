//! A linearizability checker for key-value histories.
//!
//! Record what each client did ([`Operation`]: call time, return time, input, observed output),
//! then ask whether some order of the operations, each placed at one instant between its call
//! and its return, explains every observed output on a register per key that starts absent.
//! Keys are independent registers, so [`check_history`] splits the history by key and checks
//! each with [`check_key`] (linearizability is compositional).
//!
//! The search (described in `search.rs`) is Wing & Gong's with Lowe's memoization, as in
//! Porcupine. Indeterminate operations (never returned, or
//! [`KvOutputObs::Unknown`]) may take effect at any instant after their call, or never. The
//! search is bounded ([`CheckConfig`]): beyond the budget the answer is "too complex", never a
//! hang.
//!
//! ```
//! use raftix_testkit::checker::{check_key, Operation};
//! let history = [
//!     Operation::write(1, 0, 10, b"a"),
//!     Operation::read(2, 5, 15, Some(b"a")),
//!     Operation::read(3, 20, 30, None), // stale: the write completed at 10
//! ];
//! assert!(!check_key(&history).is_linearizable());
//! ```

mod history;
mod memo;
mod report;
mod search;

use std::collections::BTreeMap;
use std::fmt;

pub use history::{show_value, KeyedOperation, KvInput, KvOutputObs, Operation, Value};
pub use report::Violation;
pub use search::{CheckConfig, Stats};

/// The verdict on one key's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckResult {
    /// A linearization exists.
    Linearizable(Stats),
    /// None exists; the report says where the search got stuck.
    NotLinearizable(Box<Violation>),
    /// The search budget ran out before a verdict.
    TooComplex(Stats),
    /// An operation cannot be checked (index in the history, reason).
    Malformed {
        /// Index of the operation.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
}

impl CheckResult {
    /// Whether the history was proven linearizable.
    pub fn is_linearizable(&self) -> bool {
        matches!(self, CheckResult::Linearizable(_))
    }

    /// Whether the history was proven not linearizable.
    pub fn is_violation(&self) -> bool {
        matches!(self, CheckResult::NotLinearizable(_))
    }
}

/// Checks one key's history with the default budget.
pub fn check_key(history: &[Operation]) -> CheckResult {
    check_key_with(history, &CheckConfig::default())
}

/// Checks one key's history with the given budget.
pub fn check_key_with(history: &[Operation], config: &CheckConfig) -> CheckResult {
    for (index, op) in history.iter().enumerate() {
        if let Some(reason) = op.malformation() {
            return CheckResult::Malformed { index, reason };
        }
    }
    match search::search(history, config) {
        search::Outcome::Linearizable(stats) => CheckResult::Linearizable(stats),
        search::Outcome::Exhausted(stats) => CheckResult::TooComplex(stats),
        search::Outcome::Violation(stuck, _) => {
            CheckResult::NotLinearizable(Box::new(Violation::new(history, &stuck)))
        }
    }
}

/// What a successful whole-history check covered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Keys checked.
    pub keys: usize,
    /// Operations checked, summed over keys.
    pub ops: usize,
    /// Search steps, summed over keys.
    pub steps: u64,
}

/// Why a whole history did not pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckError {
    /// A key's history is not linearizable.
    NotLinearizable(Box<Violation>),
    /// A key's search ran out of budget (nothing was proven either way for it).
    TooComplex {
        /// The key.
        key: String,
        /// What the search spent.
        stats: Stats,
    },
    /// An operation cannot be checked.
    Malformed {
        /// Its index in the whole history.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::NotLinearizable(v) => write!(f, "{v}"),
            CheckError::TooComplex { key, stats } => write!(
                f,
                "key {key:?}: too complex to check ({} operations, {} steps, {} states, {:?})",
                stats.ops, stats.steps, stats.states, stats.elapsed
            ),
            CheckError::Malformed { index, reason } => {
                write!(f, "operation {index} cannot be checked: {reason}")
            }
        }
    }
}

impl std::error::Error for CheckError {}

/// Checks a multi-key history with the default budget: each key on its own, stopping at the
/// first key that fails (keys in sorted order).
pub fn check_history(history: &[KeyedOperation]) -> Result<Summary, CheckError> {
    check_history_with(history, &CheckConfig::default())
}

/// Checks a multi-key history with the given budget per key.
pub fn check_history_with(
    history: &[KeyedOperation],
    config: &CheckConfig,
) -> Result<Summary, CheckError> {
    let mut by_key: BTreeMap<&str, Vec<Operation>> = BTreeMap::new();
    for (index, keyed) in history.iter().enumerate() {
        if let Some(reason) = keyed.op.malformation() {
            return Err(CheckError::Malformed { index, reason });
        }
        by_key
            .entry(keyed.key.as_str())
            .or_default()
            .push(keyed.op.clone());
    }
    let mut summary = Summary::default();
    for (key, ops) in by_key {
        match check_key_with(&ops, config) {
            CheckResult::Linearizable(stats) => {
                summary.keys += 1;
                summary.ops += stats.ops;
                summary.steps += stats.steps;
            }
            CheckResult::NotLinearizable(mut violation) => {
                violation.key = Some(key.to_string());
                return Err(CheckError::NotLinearizable(violation));
            }
            CheckResult::TooComplex(stats) => {
                let key = key.to_string();
                return Err(CheckError::TooComplex { key, stats });
            }
            CheckResult::Malformed { reason, .. } => {
                // Unreachable: every operation was validated above.
                return Err(CheckError::Malformed { index: 0, reason });
            }
        }
    }
    Ok(summary)
}
