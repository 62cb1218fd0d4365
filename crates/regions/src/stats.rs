//! Conflict statistics.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Outcome;

/// How many conflicts were resolved, in total and by strategy, and how many custom merges
/// failed (latest-timestamp decided instead). Updated while applying the log, so every node of
/// a region counts the same.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictStats {
    /// Conflicts resolved.
    pub total: u64,
    /// Conflicts resolved, by strategy text (`latest-timestamp`, `custom:max`, ...).
    pub by_strategy: BTreeMap<String, u64>,
    /// Conflicts where a custom merge failed and latest-timestamp decided.
    pub failed: u64,
}

impl ConflictStats {
    /// Counts `outcome` if it is a conflict (applied and obsolete versions are not conflicts).
    pub fn record(&mut self, outcome: &Outcome) {
        if let Outcome::Conflict {
            strategy, failed, ..
        } = outcome
        {
            self.total = self.total.saturating_add(1);
            let count = self.by_strategy.entry(strategy.clone()).or_default();
            *count = count.saturating_add(1);
            if *failed {
                self.failed = self.failed.saturating_add(1);
            }
        }
    }
}
