//! The history model: one client operation on one key, with its call and return times, what it
//! asked for ([`KvInput`]) and what the client observed ([`KvOutputObs`]).
//!
//! Times are any monotonic integer clock (nanoseconds or microseconds since the test started)
//! shared by every client. A `None` return time, or an [`KvOutputObs::Unknown`] output, marks an
//! indeterminate operation: it may have taken effect at any instant after its call, or never.
//! Operations that certainly failed (refused before reaching the log) should be left out.

use std::fmt;

/// A register value: `None` is an absent key.
pub type Value = Option<Vec<u8>>;

/// What the client asked for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvInput {
    /// Read the key.
    Read,
    /// Set the key to a value.
    Write(Vec<u8>),
    /// Compare-and-swap: if the key holds `expected` (`None`: absent), set it to `new` (`None`:
    /// delete it).
    Cas {
        /// Value required for the swap.
        expected: Value,
        /// Value stored by the swap.
        new: Value,
    },
    /// Remove the key.
    Delete,
}

/// What the client observed when the operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvOutputObs {
    /// A read returned this value (`None`: absent).
    ReadValue(Value),
    /// A write was acknowledged.
    WriteOk,
    /// A compare-and-swap was evaluated.
    CasResult {
        /// Whether the swap happened.
        swapped: bool,
    },
    /// A delete was acknowledged.
    DeleteOk,
    /// No answer (timeout, lost connection): the operation may or may not have taken effect, at
    /// any time after its call.
    Unknown,
}

/// One operation of one client on one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Operation {
    /// The client that issued it (for reports only: the checker does not assume clients are
    /// sequential).
    pub client: u64,
    /// When the client sent the request.
    pub call: u64,
    /// When the client received the answer; `None` if it never did.
    pub ret: Option<u64>,
    /// What was asked.
    pub input: KvInput,
    /// What was observed.
    pub output: KvOutputObs,
}

/// An [`Operation`] tagged with its key, for whole-history checks.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyedOperation {
    /// The key the operation touched.
    pub key: String,
    /// The operation.
    pub op: Operation,
}

impl Operation {
    /// A read over `[call, ret]` that returned `value` (`None`: absent).
    pub fn read(client: u64, call: u64, ret: u64, value: Option<&[u8]>) -> Operation {
        Operation::new(
            client,
            call,
            Some(ret),
            KvInput::Read,
            KvOutputObs::ReadValue(value.map(<[u8]>::to_vec)),
        )
    }

    /// An acknowledged write of `value` over `[call, ret]`.
    pub fn write(client: u64, call: u64, ret: u64, value: &[u8]) -> Operation {
        let input = KvInput::Write(value.to_vec());
        Operation::new(client, call, Some(ret), input, KvOutputObs::WriteOk)
    }

    /// A compare-and-swap over `[call, ret]` with its observed outcome.
    pub fn cas(
        client: u64,
        call: u64,
        ret: u64,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        swapped: bool,
    ) -> Operation {
        let input = KvInput::Cas {
            expected: expected.map(<[u8]>::to_vec),
            new: new.map(<[u8]>::to_vec),
        };
        Operation::new(
            client,
            call,
            Some(ret),
            input,
            KvOutputObs::CasResult { swapped },
        )
    }

    /// An acknowledged delete over `[call, ret]`.
    pub fn delete(client: u64, call: u64, ret: u64) -> Operation {
        Operation::new(
            client,
            call,
            Some(ret),
            KvInput::Delete,
            KvOutputObs::DeleteOk,
        )
    }

    /// An operation called at `call` that never returned (indeterminate).
    pub fn indeterminate(client: u64, call: u64, input: KvInput) -> Operation {
        Operation::new(client, call, None, input, KvOutputObs::Unknown)
    }

    /// Any operation.
    pub fn new(
        client: u64,
        call: u64,
        ret: Option<u64>,
        input: KvInput,
        output: KvOutputObs,
    ) -> Operation {
        Operation {
            client,
            call,
            ret,
            input,
            output,
        }
    }

    /// Whether the operation is indeterminate: no return, or an [`KvOutputObs::Unknown`] output.
    pub fn is_indeterminate(&self) -> bool {
        self.ret.is_none() || self.output == KvOutputObs::Unknown
    }

    /// Tags the operation with its key.
    pub fn on(self, key: impl Into<String>) -> KeyedOperation {
        KeyedOperation {
            key: key.into(),
            op: self,
        }
    }

    /// Why the operation cannot be checked (return before call, output of another kind of
    /// operation), or `None` if it is well formed.
    pub fn malformation(&self) -> Option<String> {
        if let Some(ret) = self.ret {
            if ret < self.call {
                return Some(format!(
                    "returns at {ret}, before its call at {}",
                    self.call
                ));
            }
        }
        let fits = matches!(
            (&self.input, &self.output),
            (_, KvOutputObs::Unknown)
                | (KvInput::Read, KvOutputObs::ReadValue(_))
                | (KvInput::Write(_), KvOutputObs::WriteOk)
                | (KvInput::Cas { .. }, KvOutputObs::CasResult { .. })
                | (KvInput::Delete, KvOutputObs::DeleteOk)
        );
        (!fits).then(|| {
            format!(
                "output {:?} does not answer input {:?}",
                self.output, self.input
            )
        })
    }
}

/// Formats a value for humans: `absent`, a quoted string when it is printable UTF-8, hex
/// otherwise.
pub fn show_value(value: &Value) -> String {
    match value {
        None => "absent".to_string(),
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}"),
            _ => {
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                format!("0x{hex}")
            }
        },
    }
}

impl fmt::Display for KvInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvInput::Read => write!(f, "read"),
            KvInput::Write(v) => write!(f, "write {}", show_value(&Some(v.clone()))),
            KvInput::Cas { expected, new } => {
                write!(f, "cas {} -> {}", show_value(expected), show_value(new))
            }
            KvInput::Delete => write!(f, "delete"),
        }
    }
}

impl fmt::Display for KvOutputObs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvOutputObs::ReadValue(v) => write!(f, "{}", show_value(v)),
            KvOutputObs::WriteOk | KvOutputObs::DeleteOk => write!(f, "ok"),
            KvOutputObs::CasResult { swapped: true } => write!(f, "swapped"),
            KvOutputObs::CasResult { swapped: false } => write!(f, "not swapped"),
            KvOutputObs::Unknown => write!(f, "unknown"),
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ret = match self.ret {
            Some(ret) => ret.to_string(),
            None => "never".to_string(),
        };
        write!(
            f,
            "client {:>3}  [{:>8} .. {:>8}]  {} => {}",
            self.client, self.call, ret, self.input, self.output
        )
    }
}
