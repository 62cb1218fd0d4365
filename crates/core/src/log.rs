//! The in-memory view of the replicated log held by the core.
//!
//! Owns the entries after the last compaction point and answers the questions the protocol asks
//! of a log (term at an index, conflicts, batches to send). It performs no I/O: durability is the
//! storage layer's job, driven by the core's `Persist` actions. Must not import actix, heed or tokio.

use super::types::{Entry, Index, LogId, Term};

/// Entries `base.index + 1 ..= last_index()`, contiguous.
#[derive(Debug, Clone, Default)]
pub struct RaftLog {
    /// The entry just before `entries[0]`: `(0, 0)` for a log that was never compacted.
    base: LogId,
    /// Invariant: `entries[i].index == base.index + 1 + i` and terms never decrease.
    entries: Vec<Entry>,
}

impl RaftLog {
    /// A log recovered from storage: `entries` must follow `base` contiguously.
    pub fn new(base: LogId, entries: Vec<Entry>) -> Self {
        debug_assert!(entries
            .iter()
            .enumerate()
            .all(|(i, e)| e.index == base.index + 1 + i as u64));
        Self { base, entries }
    }

    /// The entry just before the first one held (`(0, 0)` if nothing was compacted).
    pub fn base(&self) -> LogId {
        self.base
    }

    /// Drops the entries up to and including `index` (which must be held).
    pub fn compact_to(&mut self, index: Index) {
        let Some(term) = self.term_at(index) else {
            return;
        };
        if index <= self.base.index {
            return;
        }
        let drop = (index - self.base.index) as usize;
        self.entries.drain(..drop.min(self.entries.len()));
        self.base = LogId::new(term, index);
    }

    /// Discards every entry: the log now continues right after `base` (a snapshot).
    pub fn reset_to(&mut self, base: LogId) {
        self.entries.clear();
        self.base = base;
    }

    /// Id of the last entry, or the base when empty.
    pub fn last_id(&self) -> LogId {
        self.entries.last().map(Entry::log_id).unwrap_or(self.base)
    }

    /// Index of the last entry (0 for an empty log).
    pub fn last_index(&self) -> Index {
        self.last_id().index
    }

    /// Index of the first entry held in memory.
    pub fn first_index(&self) -> Index {
        self.base.index + 1
    }

    /// Term of the entry at `index`, `None` if it is beyond the end or compacted away.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.base.index {
            return Some(self.base.term);
        }
        self.get(index).map(|e| e.term)
    }

    /// The entry at `index`, if held.
    pub fn get(&self, index: Index) -> Option<&Entry> {
        if index <= self.base.index {
            return None;
        }
        self.entries.get((index - self.base.index - 1) as usize)
    }

    /// Whether the log holds an entry with this id (or it is the base).
    pub fn matches(&self, id: LogId) -> bool {
        self.term_at(id.index) == Some(id.term)
    }

    /// Entries from `from` on, at most `max_entries` of them and at most `max_bytes` in size
    /// (at least one entry when any exists, so a large entry still makes progress).
    pub fn slice(&self, from: Index, max_entries: usize, max_bytes: usize) -> Vec<Entry> {
        if from <= self.base.index || from > self.last_index() {
            return Vec::new();
        }
        let start = (from - self.base.index - 1) as usize;
        let mut bytes = 0usize;
        let mut out = Vec::new();
        for entry in self.entries[start..].iter().take(max_entries.max(1)) {
            bytes += entry.approx_size();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(entry.clone());
        }
        out
    }

    /// Entries in `lo ..= hi` (clamped to what is held).
    pub fn range(&self, lo: Index, hi: Index) -> Vec<Entry> {
        let lo = lo.max(self.first_index());
        let hi = hi.min(self.last_index());
        if lo > hi {
            return Vec::new();
        }
        let start = (lo - self.base.index - 1) as usize;
        let end = (hi - self.base.index) as usize;
        self.entries[start..end].to_vec()
    }

    /// Appends entries that continue the log exactly.
    pub fn append(&mut self, entries: Vec<Entry>) {
        debug_assert!(entries
            .first()
            .is_none_or(|e| e.index == self.last_index() + 1));
        self.entries.extend(entries);
    }

    /// Index of the first of `entries` that this log does not hold with the same term.
    pub fn first_conflict(&self, entries: &[Entry]) -> Option<Index> {
        entries
            .iter()
            .find(|e| self.term_at(e.index) != Some(e.term))
            .map(|e| e.index)
    }

    /// Removes every entry at or after `index`.
    pub fn truncate_from(&mut self, index: Index) {
        let keep = index.saturating_sub(self.base.index + 1) as usize;
        self.entries.truncate(keep);
    }

    /// The last entry at or before `index` whose term is at most `term`: where a leader and a
    /// follower can next expect to agree (etcd's findConflictByTerm, used for fast back-off).
    pub fn last_at_or_before(&self, index: Index, term: Term) -> LogId {
        let mut i = index.min(self.last_index());
        while i > self.base.index {
            match self.term_at(i) {
                Some(t) if t <= term => return LogId::new(t, i),
                _ => i -= 1,
            }
        }
        self.base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::EntryPayload;

    fn log_of(terms: &[Term]) -> RaftLog {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, &term)| Entry {
                term,
                index: i as u64 + 1,
                payload: EntryPayload::Noop,
            })
            .collect();
        RaftLog::new(LogId::default(), entries)
    }

    #[test]
    fn term_at_covers_base_entries_and_beyond() {
        let log = log_of(&[1, 1, 2]);
        assert_eq!(log.term_at(0), Some(0));
        assert_eq!(log.term_at(3), Some(2));
        assert_eq!(log.term_at(4), None);
        assert_eq!(log.last_id(), LogId::new(2, 3));
    }

    #[test]
    fn last_at_or_before_skips_whole_terms() {
        let log = log_of(&[1, 1, 2, 2, 4, 4]);
        assert_eq!(log.last_at_or_before(6, 3), LogId::new(2, 4));
        assert_eq!(log.last_at_or_before(6, 1), LogId::new(1, 2));
        assert_eq!(log.last_at_or_before(100, 9), LogId::new(4, 6));
        assert_eq!(log.last_at_or_before(6, 0), LogId::new(0, 0));
    }

    #[test]
    fn slice_respects_byte_budget_but_sends_at_least_one() {
        let log = log_of(&[1, 1, 1]);
        assert_eq!(log.slice(1, 10, 1).len(), 1);
        assert_eq!(log.slice(1, 2, 1 << 20).len(), 2);
        assert!(log.slice(4, 10, 100).is_empty());
    }

    #[test]
    fn compaction_keeps_later_entries_and_the_base_term() {
        let mut log = log_of(&[1, 1, 2, 2, 3]);
        log.compact_to(3);
        assert_eq!(log.base(), LogId::new(2, 3));
        assert_eq!(log.first_index(), 4);
        assert_eq!(log.term_at(3), Some(2));
        assert_eq!(log.term_at(2), None);
        assert_eq!(log.slice(4, 10, 1 << 20).len(), 2);
        assert!(log.slice(3, 10, 1 << 20).is_empty());
        log.reset_to(LogId::new(7, 20));
        assert_eq!(log.last_id(), LogId::new(7, 20));
        assert!(log.matches(LogId::new(7, 20)));
    }

    #[test]
    fn truncate_and_conflict_detection() {
        let mut log = log_of(&[1, 1, 2]);
        let incoming = vec![
            Entry {
                term: 1,
                index: 2,
                payload: EntryPayload::Noop,
            },
            Entry {
                term: 3,
                index: 3,
                payload: EntryPayload::Noop,
            },
        ];
        assert_eq!(log.first_conflict(&incoming), Some(3));
        log.truncate_from(3);
        assert_eq!(log.last_index(), 2);
    }
}
