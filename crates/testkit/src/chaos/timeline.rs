//! One clock for the whole run and the timeline of what the harness did.
//!
//! Operation times in the history and event times in the timeline are microseconds since the
//! same [`Clock`] started, so a violation's window can be laid next to the faults that were in
//! effect at that time. Every event is echoed to stderr as it happens (`[  12.345s] ...`) unless
//! the timeline is quiet.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Microseconds since the start of the run, shared by every thread.
#[derive(Clone, Copy, Debug)]
pub struct Clock(Instant);

impl Clock {
    /// A clock starting now.
    pub fn start() -> Clock {
        Clock(Instant::now())
    }

    /// Microseconds since the start.
    pub fn now_us(&self) -> u64 {
        self.0.elapsed().as_micros() as u64
    }
}

/// What kind of event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Progress of the run (setup, phases, verdicts).
    Info,
    /// A fault begins; `fault` names it.
    FaultStart,
    /// A fault ends (healed); `fault` names the one that began.
    FaultEnd,
    /// Something unexpected that is not in itself a failed check.
    Warning,
}

/// One timeline entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Microseconds since the start of the run.
    pub at_us: u64,
    /// What kind.
    pub kind: EventKind,
    /// Which fault, for fault events (a number per fault, from 1).
    pub fault: Option<u64>,
    /// What happened.
    pub text: String,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.kind {
            EventKind::Info => "",
            EventKind::FaultStart => "fault+ ",
            EventKind::FaultEnd => "fault- ",
            EventKind::Warning => "WARNING ",
        };
        let id = self.fault.map(|n| format!("#{n} ")).unwrap_or_default();
        write!(f, "[{}] {tag}{id}{}", secs(self.at_us), self.text)
    }
}

/// The current wall-clock time in UTC, `YYYY-MM-DDTHH:MM:SSZ` (node logs use wall-clock times;
/// the report gives the run's start so the two can be lined up).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    utc(secs)
}

/// Seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC, whole seconds).
pub fn utc(secs: u64) -> String {
    let formatted = i64::try_from(secs)
        .ok()
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
    formatted.unwrap_or_else(|| format!("{secs}s after the Unix epoch"))
}

/// `12.345s`, right-aligned, from microseconds.
pub fn secs(us: u64) -> String {
    format!("{:>8.3}s", us as f64 / 1e6)
}

/// The shared, append-only record of the run.
#[derive(Clone, Debug)]
pub struct Timeline {
    clock: Clock,
    events: Arc<Mutex<Vec<Event>>>,
    echo: bool,
}

impl Timeline {
    /// A timeline on `clock`; `echo` prints every event to stderr as it is recorded.
    pub fn new(clock: Clock, echo: bool) -> Timeline {
        Timeline {
            clock,
            events: Arc::new(Mutex::new(Vec::new())),
            echo,
        }
    }

    /// The run's clock.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    fn record(&self, kind: EventKind, fault: Option<u64>, text: String) {
        let event = Event {
            at_us: self.clock.now_us(),
            kind,
            fault,
            text,
        };
        if self.echo {
            eprintln!("{event}");
        }
        if let Ok(mut events) = self.events.lock() {
            events.push(event);
        }
    }

    /// Records progress.
    pub fn info(&self, text: impl Into<String>) {
        self.record(EventKind::Info, None, text.into());
    }

    /// Records something unexpected.
    pub fn warn(&self, text: impl Into<String>) {
        self.record(EventKind::Warning, None, text.into());
    }

    /// Records the start of fault number `id`.
    pub fn fault_start(&self, id: u64, text: impl Into<String>) {
        self.record(EventKind::FaultStart, Some(id), text.into());
    }

    /// Records the end of fault number `id`.
    pub fn fault_end(&self, id: u64, text: impl Into<String>) {
        self.record(EventKind::FaultEnd, Some(id), text.into());
    }

    /// Every event so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// The fault events of every fault in effect at some time within `[from_us, to_us]` (its
    /// start and, if it ended, its end), in order.
    pub fn faults_overlapping(&self, from_us: u64, to_us: u64) -> Vec<Event> {
        faults_overlapping(&self.events(), from_us, to_us)
    }
}

/// See [`Timeline::faults_overlapping`].
pub fn faults_overlapping(events: &[Event], from_us: u64, to_us: u64) -> Vec<Event> {
    let end_of = |id: u64| {
        events
            .iter()
            .find(|e| e.kind == EventKind::FaultEnd && e.fault == Some(id))
            .map(|e| e.at_us)
    };
    let overlapping: Vec<u64> = events
        .iter()
        .filter(|e| e.kind == EventKind::FaultStart && e.at_us <= to_us)
        .filter_map(|e| {
            let id = e.fault?;
            (end_of(id).unwrap_or(u64::MAX) >= from_us).then_some(id)
        })
        .collect();
    events
        .iter()
        .filter(|e| e.fault.is_some_and(|id| overlapping.contains(&id)))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at_us: u64, kind: EventKind, fault: Option<u64>) -> Event {
        Event {
            at_us,
            kind,
            fault,
            text: String::new(),
        }
    }

    #[test]
    fn overlapping_faults_are_the_ones_in_effect() {
        let events = vec![
            ev(0, EventKind::Info, None),
            ev(10, EventKind::FaultStart, Some(1)),
            ev(20, EventKind::FaultEnd, Some(1)),
            ev(30, EventKind::FaultStart, Some(2)),
            ev(40, EventKind::FaultEnd, Some(2)),
            ev(50, EventKind::FaultStart, Some(3)), // never healed
        ];
        let ids = |from, to| -> Vec<Option<u64>> {
            let mut v: Vec<_> = faults_overlapping(&events, from, to)
                .iter()
                .map(|e| e.fault)
                .collect();
            v.dedup();
            v
        };
        assert_eq!(ids(0, 5), Vec::<Option<u64>>::new());
        assert_eq!(ids(15, 16), vec![Some(1)]);
        assert_eq!(ids(19, 35), vec![Some(1), Some(2)]);
        assert_eq!(ids(45, 46), Vec::<Option<u64>>::new());
        assert_eq!(ids(60, 70), vec![Some(3)]);
    }

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn display_shows_time_and_fault() {
        let mut e = ev(1_234_567, EventKind::FaultStart, Some(4));
        e.text = "kill -9 node 2".into();
        assert_eq!(e.to_string(), "[   1.235s] fault+ #4 kill -9 node 2");
    }
}
