//! Hybrid logical clock timestamps.

use serde::{Deserialize, Serialize};

/// A hybrid logical clock timestamp: wall-clock milliseconds and a counter that orders events
/// within the same millisecond (or while the wall clock lags behind a timestamp already seen).
///
/// Ordered by `(physical_ms, logical)`. [`Hlc::default`] (zero) is "nothing seen".
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Hlc {
    /// Wall-clock milliseconds since the Unix epoch (as recorded in the log entry).
    pub physical_ms: u64,
    /// Counter of events at the same `physical_ms`.
    pub logical: u32,
}

impl Hlc {
    /// The timestamp of a new local event after `self`, with the event's wall-clock `now_ms`
    /// (deterministic: the caller passes the time recorded in the log entry).
    ///
    /// Always strictly greater than `self` (the counter carries into the milliseconds if it
    /// overflows), except at the very end of the range, where it saturates.
    pub fn tick(self, now_ms: u64) -> Hlc {
        if now_ms > self.physical_ms {
            return Hlc {
                physical_ms: now_ms,
                logical: 0,
            };
        }
        match self.logical.checked_add(1) {
            Some(logical) => Hlc {
                physical_ms: self.physical_ms,
                logical,
            },
            None if self.physical_ms < u64::MAX => Hlc {
                physical_ms: self.physical_ms + 1,
                logical: 0,
            },
            None => self,
        }
    }

    /// The clock after receiving `remote`: the greater of both (a following [`Hlc::tick`] then
    /// orders the next local event after it).
    pub fn observe(self, remote: Hlc) -> Hlc {
        self.max(remote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hlc(physical_ms: u64, logical: u32) -> Hlc {
        Hlc {
            physical_ms,
            logical,
        }
    }

    #[test]
    fn tick_takes_a_newer_wall_clock_and_resets_the_counter() {
        assert_eq!(hlc(100, 7).tick(150), hlc(150, 0));
        assert_eq!(Hlc::default().tick(1), hlc(1, 0));
    }

    #[test]
    fn tick_counts_when_the_wall_clock_is_equal_or_behind() {
        assert_eq!(hlc(100, 7).tick(100), hlc(100, 8));
        assert_eq!(hlc(100, 7).tick(20), hlc(100, 8));
        assert_eq!(Hlc::default().tick(0), hlc(0, 1));
    }

    #[test]
    fn tick_carries_a_full_counter_into_the_milliseconds() {
        assert_eq!(hlc(100, u32::MAX).tick(100), hlc(101, 0));
        assert_eq!(hlc(u64::MAX, u32::MAX).tick(0), hlc(u64::MAX, u32::MAX));
    }

    #[test]
    fn observe_keeps_the_greater_and_a_tick_after_it_is_later() {
        let local = hlc(100, 3);
        let remote = hlc(100, 9);
        assert_eq!(local.observe(remote), remote);
        assert_eq!(remote.observe(local), remote);
        assert!(local.observe(remote).tick(90) > remote);
        assert_eq!(hlc(200, 0).observe(hlc(100, 50)), hlc(200, 0));
    }

    #[test]
    fn orders_by_milliseconds_then_counter() {
        assert!(hlc(1, 9) < hlc(2, 0));
        assert!(hlc(2, 0) < hlc(2, 1));
    }
}
