//! The one way tests wait for something: poll a probe until it says "done", or fail after a
//! deadline with what was awaited and the last thing the probe saw.
//!
//! A probe returns `Ok(value)` when the condition holds, or `Err(observation)` to keep waiting;
//! the last observation is in the panic message, so a timeout says what the test saw, not only
//! that it gave up. [`wait_until`] polls from a plain thread, [`wait_until_async`] from an async
//! test (tokio's clock, so paused time works).

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

/// How often a probe is polled.
pub const POLL_EVERY: Duration = Duration::from_millis(10);

/// Polls `probe` every [`POLL_EVERY`] until it returns `Ok`, and returns its value; panics after
/// `timeout` with `what` and the last observation.
pub fn wait_until<T, O: Debug>(
    timeout: Duration,
    what: &str,
    probe: impl FnMut() -> Result<T, O>,
) -> T {
    match poll_until(timeout, probe) {
        Ok(value) => value,
        Err(seen) => panic!("timed out after {timeout:?} waiting for {what}; last seen: {seen:?}"),
    }
}

/// Polls `probe` every [`POLL_EVERY`] until it returns `Ok`; after `timeout`, the last
/// observation, for a caller that fails in its own way (with node logs, say).
pub fn poll_until<T, O>(
    timeout: Duration,
    mut probe: impl FnMut() -> Result<T, O>,
) -> Result<T, O> {
    let deadline = Instant::now() + timeout;
    loop {
        match probe() {
            Ok(value) => return Ok(value),
            Err(seen) if Instant::now() >= deadline => return Err(seen),
            Err(_) => std::thread::sleep(POLL_EVERY),
        }
    }
}

/// [`wait_until`] for async tests: `probe` is awaited, and the pause between polls is tokio's.
pub async fn wait_until_async<T, O: Debug, F: Future<Output = Result<T, O>>>(
    timeout: Duration,
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) if tokio::time::Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {seen:?}")
            }
            Err(_) => tokio::time::sleep(POLL_EVERY).await,
        }
    }
}

/// `Ok(())` when `holds`, else `Err(seen)`: a probe from a condition and what to show if it
/// never holds.
pub fn check<O>(holds: bool, seen: O) -> Result<(), O> {
    if holds {
        Ok(())
    } else {
        Err(seen)
    }
}

/// Waits up to `timeout` for `child` to exit and returns its status; kills it and panics naming
/// `what` if it is still running then.
pub fn child_exits(
    child: &mut std::process::Child,
    timeout: Duration,
    what: &str,
) -> std::process::ExitStatus {
    let exited = poll_until(timeout, || match child.try_wait() {
        Ok(Some(status)) => Ok(status),
        Ok(None) => Err(None),
        Err(e) => Err(Some(e.to_string())),
    });
    match exited {
        Ok(status) => status,
        Err(seen) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {timeout:?} (killed); last error: {seen:?}")
        }
    }
}
