//! Named merge functions for the `custom:NAME` strategy, and the built-in ones.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use super::decimal::Decimal;
use super::json_set;

/// A custom merge of two concurrent versions' values (both present, not tombstones).
///
/// Must be deterministic (a pure function of its arguments, the same in every region: no
/// clock, randomness, counters or local configuration), or regions diverge. It should also be
/// commutative, associative and idempotent, so that the merged value does not depend on the
/// order in which conflicts are folded (the canonical `(hlc, origin)` order). `None`: cannot
/// merge these values (the conflict falls back to latest-timestamp, counted as failed).
pub trait MergeResolver: Send + Sync {
    /// The merge of `a` and `b`, values of `key`; `None` if they cannot be merged.
    fn merge(&self, key: &str, a: &Bytes, b: &Bytes) -> Option<Bytes>;
}

impl<F> MergeResolver for F
where
    F: Fn(&str, &Bytes, &Bytes) -> Option<Bytes> + Send + Sync,
{
    fn merge(&self, key: &str, a: &Bytes, b: &Bytes) -> Option<Bytes> {
        self(key, a, b)
    }
}

/// The merge resolvers known by name (`custom:NAME` strategies).
#[derive(Clone)]
pub struct Resolvers {
    by_name: BTreeMap<String, Arc<dyn MergeResolver>>,
}

impl Resolvers {
    /// With the built-ins: `max` and `min` (decimal numbers, integer or float text, compared
    /// exactly; the result is the original bytes of the chosen value, numerically equal values
    /// being told apart by their bytes), `union` (JSON arrays as sets: the sorted, deduplicated
    /// union of their elements in canonical JSON).
    pub fn with_builtins() -> Resolvers {
        let mut resolvers = Resolvers {
            by_name: BTreeMap::new(),
        };
        resolvers.register("max", Arc::new(Extreme(Ordering::Greater)));
        resolvers.register("min", Arc::new(Extreme(Ordering::Less)));
        resolvers.register("union", Arc::new(Union));
        resolvers
    }

    /// Registers `resolver` under `name` (replacing a resolver of that name, built-ins
    /// included). It is used by the strategy `custom:NAME`, whose name is 1 to 64 bytes of
    /// letters, digits, `-`, `_` and `.`: a resolver under another name is never used.
    pub fn register(&mut self, name: &str, resolver: Arc<dyn MergeResolver>) {
        self.by_name.insert(name.to_string(), resolver);
    }

    /// The resolver registered under `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn MergeResolver>> {
        self.by_name.get(name)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }
}

impl fmt::Debug for Resolvers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolvers")
            .field("names", &self.names())
            .finish()
    }
}

/// `max` (keeps the `Greater` value) or `min` (`Less`): numerically, then by bytes.
struct Extreme(Ordering);

impl MergeResolver for Extreme {
    fn merge(&self, _key: &str, a: &Bytes, b: &Bytes) -> Option<Bytes> {
        let order = Decimal::parse(a)?
            .cmp(&Decimal::parse(b)?)
            .then_with(|| a.cmp(b));
        Some(if order == self.0 {
            a.clone()
        } else {
            b.clone()
        })
    }
}

/// `union`: JSON arrays as sets.
struct Union;

impl MergeResolver for Union {
    fn merge(&self, _key: &str, a: &Bytes, b: &Bytes) -> Option<Bytes> {
        json_set::union(a, b).map(Bytes::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge(name: &str, a: &str, b: &str) -> Option<String> {
        let resolvers = Resolvers::with_builtins();
        let resolver = resolvers.get(name).expect("built-in");
        resolver
            .merge(
                "k",
                &Bytes::from(a.to_string()),
                &Bytes::from(b.to_string()),
            )
            .map(|merged| String::from_utf8(merged.to_vec()).expect("utf-8"))
    }

    #[test]
    fn builtins_are_registered() {
        assert_eq!(Resolvers::with_builtins().names(), ["max", "min", "union"]);
    }

    #[test]
    fn max_and_min_keep_the_original_bytes_of_the_chosen_number() {
        assert_eq!(merge("max", "10", "9.5").as_deref(), Some("10"));
        assert_eq!(merge("max", "9.5", "10").as_deref(), Some("10"));
        assert_eq!(merge("min", "10", " 9.50 ").as_deref(), Some(" 9.50 "));
        assert_eq!(merge("max", "-1", "-2e0").as_deref(), Some("-1"));
        assert_eq!(merge("min", "1e3", "999").as_deref(), Some("999"));
    }

    #[test]
    fn max_and_min_break_numeric_ties_by_bytes_so_they_commute() {
        assert_eq!(merge("max", "1.0", "1"), merge("max", "1", "1.0"));
        assert_eq!(merge("min", "1.0", "1"), merge("min", "1", "1.0"));
        assert_ne!(merge("max", "1.0", "1"), merge("min", "1.0", "1"));
    }

    #[test]
    fn max_and_min_cannot_merge_what_is_not_a_number() {
        assert_eq!(merge("max", "10", "ten"), None);
        assert_eq!(merge("min", "[1]", "2"), None);
        assert_eq!(merge("max", "", "2"), None);
    }

    #[test]
    fn union_merges_json_arrays_and_refuses_others() {
        assert_eq!(
            merge("union", "[2,1]", "[3, 2]").as_deref(),
            Some("[1,2,3]")
        );
        assert_eq!(merge("union", "[1]", "{}"), None);
    }

    #[test]
    fn an_application_registers_closures_and_replaces_builtins() {
        let mut resolvers = Resolvers::with_builtins();
        resolvers.register(
            "concat-sorted",
            Arc::new(|_key: &str, a: &Bytes, b: &Bytes| {
                let (low, high) = if a <= b { (a, b) } else { (b, a) };
                Some(Bytes::from([&low[..], &high[..]].concat()))
            }),
        );
        resolvers.register("max", Arc::new(|_: &str, _: &Bytes, _: &Bytes| None));
        assert_eq!(resolvers.names(), ["concat-sorted", "max", "min", "union"]);
        let resolver = resolvers.get("concat-sorted").expect("registered");
        assert_eq!(
            resolver.merge("k", &Bytes::from("b"), &Bytes::from("a")),
            Some(Bytes::from("ab"))
        );
        let max = resolvers.get("max").expect("registered");
        assert_eq!(max.merge("k", &Bytes::from("1"), &Bytes::from("2")), None);
        assert!(format!("{resolvers:?}").contains("concat-sorted"));
    }
}
