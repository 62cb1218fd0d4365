//! The `clock` fault: a node restarted under libfaketime (Debian's `faketime`, through
//! `LD_PRELOAD`) with its clock running fast or slow, or its wall clock shifted, for the fault's
//! duration. The skews the schedule draws stay within the bounds lease reads are documented to
//! tolerate (README, "Clock faults"): a follower's clock at most 1.5 times fast, a leader's at
//! least 2/3 of real speed, the monotonic clock unmoved by wall-clock shifts; a run with lease
//! reads and clock faults must stay linearizable.

use std::fmt;
use std::path::Path;
use std::process::Command;

use super::rng::Rng;

/// Where Debian's `faketime` package puts the library.
pub const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// How a node's clock is skewed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockSkew {
    /// Every clock, the monotonic one included, runs at this percentage of real speed.
    Rate(u32),
    /// The wall clock is shifted by this many seconds; the monotonic clock is untouched.
    WallShift(i64),
}

impl ClockSkew {
    /// A skew within the documented bounds: 1.3 times fast, 0.8 times slow, or the wall clock
    /// an hour ahead or behind.
    pub fn within_bounds(rng: &mut Rng) -> ClockSkew {
        match rng.below(4) {
            0 => ClockSkew::Rate(130),
            1 => ClockSkew::Rate(80),
            2 => ClockSkew::WallShift(3600),
            _ => ClockSkew::WallShift(-3600),
        }
    }

    /// Sets up `cmd` to run under this skew; an error when libfaketime is missing.
    pub fn apply(self, cmd: &mut Command) -> Result<(), String> {
        if !Path::new(FAKETIME_LIB).exists() {
            return Err(format!(
                "{FAKETIME_LIB} is missing (apt-get install faketime)"
            ));
        }
        cmd.env("LD_PRELOAD", FAKETIME_LIB);
        match self {
            ClockSkew::Rate(percent) => {
                let rate = f64::from(percent) / 100.0;
                cmd.env("FAKETIME", format!("+0 x{rate}"));
            }
            ClockSkew::WallShift(secs) => {
                cmd.env("FAKETIME", format!("{secs:+}"))
                    .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
            }
        }
        Ok(())
    }
}

impl fmt::Display for ClockSkew {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClockSkew::Rate(percent) => write!(f, "clock at {percent} % of real speed"),
            ClockSkew::WallShift(secs) => write!(f, "wall clock shifted by {secs:+} s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skews_are_written_as_libfaketime_reads_them() {
        let mut cmd = Command::new("true");
        if ClockSkew::WallShift(-3600).apply(&mut cmd).is_err() {
            return; // no libfaketime here: nothing to check
        }
        let env: Vec<_> = cmd
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect();
        assert!(env.contains(&("FAKETIME".into(), Some("-3600".into()))));
        assert!(env.contains(&("FAKETIME_DONT_FAKE_MONOTONIC".into(), Some("1".into()))));
    }
}
