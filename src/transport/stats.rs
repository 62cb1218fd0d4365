//! Counters of one [`PeerLink`](super::PeerLink), shared lock-free between the actor, its writer
//! task and any observer (metrics, dashboard, tests).

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// Where a link's connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// A connection attempt is under way; messages are queued (bounded).
    Connecting,
    /// The connection is up and the writer drains the queues.
    Connected,
    /// The last attempt failed or the connection was lost; messages are dropped until the next
    /// attempt starts.
    Backoff,
}

impl LinkState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => LinkState::Connected,
            2 => LinkState::Backoff,
            _ => LinkState::Connecting,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            LinkState::Connecting => 0,
            LinkState::Connected => 1,
            LinkState::Backoff => 2,
        }
    }
}

/// Live counters of a link. All counters only grow.
#[derive(Debug, Default)]
pub struct LinkStats {
    state: AtomicU8,
    sent: AtomicU64,
    bytes_sent: AtomicU64,
    dropped: AtomicU64,
    connects: AtomicU64,
    reconnects: AtomicU64,
    connect_failures: AtomicU64,
    encoded: AtomicU64,
    encoded_bytes: AtomicU64,
    encode_failures: AtomicU64,
    oversized: AtomicU64,
}

/// A point-in-time copy of a link's [`LinkStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStatsSnapshot {
    /// Whether a connection is currently up.
    pub connected: bool,
    /// Raft frames written and flushed to the socket (the Hello frame is not counted).
    pub sent: u64,
    /// Bytes of Raft frames flushed to the socket, length prefixes included.
    pub bytes_sent: u64,
    /// Messages dropped: link in backoff, queue full, unencodable, oversized, misaddressed, or
    /// lost with a failed connection.
    pub dropped: u64,
    /// Connections established.
    pub connects: u64,
    /// Connections established after a failed attempt or a lost connection.
    pub reconnects: u64,
    /// Connection attempts (TCP connect or Hello) that failed.
    pub connect_failures: u64,
    /// Messages encoded into frames.
    pub encoded: u64,
    /// Bytes produced by encoding (version byte included, length prefix excluded).
    pub encoded_bytes: u64,
    /// Messages that could not be encoded.
    pub encode_failures: u64,
    /// Messages dropped because their frame exceeded the maximum frame size.
    pub oversized: u64,
}

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident => $field:ident;)*) => {
        $(
            $(#[$doc])*
            pub(crate) fn $name(&self, n: u64) {
                self.$field.fetch_add(n, Ordering::Relaxed);
            }
        )*
    };
}

impl LinkStats {
    /// The link's current state.
    pub fn state(&self) -> LinkState {
        LinkState::from_u8(self.state.load(Ordering::Relaxed))
    }

    pub(crate) fn set_state(&self, state: LinkState) {
        self.state.store(state.as_u8(), Ordering::Relaxed);
    }

    counters! {
        /// Counts flushed frames.
        add_sent => sent;
        /// Counts flushed bytes.
        add_bytes_sent => bytes_sent;
        /// Counts dropped messages.
        add_dropped => dropped;
        /// Counts established connections.
        add_connects => connects;
        /// Counts re-established connections.
        add_reconnects => reconnects;
        /// Counts failed connection attempts.
        add_connect_failures => connect_failures;
        /// Counts encoded messages.
        add_encoded => encoded;
        /// Counts encoded bytes.
        add_encoded_bytes => encoded_bytes;
        /// Counts encoding failures.
        add_encode_failures => encode_failures;
        /// Counts oversized messages.
        add_oversized => oversized;
    }

    /// Copies the counters.
    pub fn snapshot(&self) -> LinkStatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LinkStatsSnapshot {
            connected: self.state() == LinkState::Connected,
            sent: get(&self.sent),
            bytes_sent: get(&self.bytes_sent),
            dropped: get(&self.dropped),
            connects: get(&self.connects),
            reconnects: get(&self.reconnects),
            connect_failures: get(&self.connect_failures),
            encoded: get(&self.encoded),
            encoded_bytes: get(&self.encoded_bytes),
            encode_failures: get(&self.encode_failures),
            oversized: get(&self.oversized),
        }
    }
}
