//! Why a client subcommand failed, and the exit status each failure maps to.

/// Exit status: success.
pub const EXIT_OK: u8 = 0;
/// Exit status: the cluster could not answer (no endpoint reachable, no leader, outcome unknown,
/// a server-side failure, an unreadable answer), or local I/O failed.
pub const EXIT_UNAVAILABLE: u8 = 1;
/// Exit status: usage error (reported by clap before anything is sent).
pub const EXIT_USAGE: u8 = 2;
/// Exit status: the key does not exist (`get`).
pub const EXIT_NOT_FOUND: u8 = 3;
/// Exit status: a compare-and-swap did not swap, or a transaction's guard did not hold.
pub const EXIT_NOT_SWAPPED: u8 = 4;
/// Exit status: the request is invalid (refused by the server with a 4xx other than a missing
/// key, or by the client before sending, such as an empty key).
pub const EXIT_INVALID: u8 = 5;

/// The exit statuses, as shown at the end of every client subcommand's `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit status:
  0  success (also `del` of an absent key: it prints deleted=false)
  1  the cluster could not answer: no endpoint reachable, no leader, too busy (429),
     outcome unknown (a write that may or may not have been applied), a server-side
     failure, or a local I/O error (reading stdin, writing stdout)
  2  usage error
  3  key not found (get)
  4  compare-and-swap not swapped (cas; the current value is printed), or a
     transaction guard that did not hold (txn; nothing was applied)
  5  invalid request, refused by the server (4xx) or by the client (e.g. an empty key)";

/// A failed client command.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Every endpoint refused the connection or did not answer.
    #[error("no endpoint reachable: {0}")]
    Unreachable(String),
    /// Endpoints answered but none knows a leader (503).
    #[error("no leader: {0}")]
    NoLeader(String),
    /// Every node asked refused the request as too busy (429: too many requests in flight).
    #[error("too many requests in flight, retry later: {0}")]
    Busy(String),
    /// A write was sent but its answer was lost or timed out: it may or may not be applied.
    #[error("outcome unknown (the write may or may not have been applied): {0}")]
    OutcomeUnknown(String),
    /// The key does not exist.
    #[error("key {0:?} not found")]
    NotFound(String),
    /// The request was refused as invalid (by the server or before sending).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The server failed (5xx other than 503/504) or answered something unexpected.
    #[error("server error: {0}")]
    Server(String),
    /// An answer that could not be understood.
    #[error("unreadable answer from {from}: {detail}")]
    BadAnswer {
        /// The endpoint that answered.
        from: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
    /// Reading the value from stdin failed.
    #[error("cannot read the value from stdin: {0}")]
    Stdin(std::io::Error),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

impl ClientError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::NotFound(_) => EXIT_NOT_FOUND,
            ClientError::Invalid(_) => EXIT_INVALID,
            ClientError::Unreachable(_)
            | ClientError::NoLeader(_)
            | ClientError::Busy(_)
            | ClientError::OutcomeUnknown(_)
            | ClientError::Server(_)
            | ClientError::BadAnswer { .. }
            | ClientError::Setup(_)
            | ClientError::Stdin(_)
            | ClientError::Output(_) => EXIT_UNAVAILABLE,
        }
    }
}
