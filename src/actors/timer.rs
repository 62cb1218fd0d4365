//! `ElectionTimer`: the node's clock. Draws randomized election timeouts from a seeded RNG and
//! runs the leader's heartbeat interval. It never decides anything: it only reports
//! `LeaseExpired { epoch }` (after the minimum election timeout), `ElectionTimedOut { epoch }`
//! (after a random one) and `HeartbeatTick` to the node, whose core ignores stale epochs.
//!
//! Arming the election timer (which a follower does on every append it accepts) only records
//! two deadlines: a tick every [`TICKS_PER_TIMEOUT`]th of the minimum election timeout checks
//! them (as etcd counts ticks), so no timer is cancelled and armed again per append. A deadline
//! is reported at most one tick late, which only ever delays an election or the end of a
//! follower's lease (never shortens either).

use std::time::{Duration, Instant};

use actix::{Actor, AsyncContext, Context, Handler, Recipient, SpawnHandle};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use crate::messages::node::{ElectionTimedOut, HeartbeatTick, LeaseExpired};
use crate::messages::timer::{ArmElection, SetHeartbeat};

/// Timing settings of a node.
#[derive(Debug, Clone, Copy)]
pub struct TimerConfig {
    /// Shortest election timeout.
    pub election_min: Duration,
    /// Longest election timeout (exclusive).
    pub election_max: Duration,
    /// Leader heartbeat interval.
    pub heartbeat: Duration,
    /// Seed of the timeout randomness (logged at start so a run can be reproduced).
    pub seed: u64,
}

/// The election and heartbeat timer of one node.
pub struct ElectionTimer {
    cfg: TimerConfig,
    rng: SmallRng,
    on_timeout: Recipient<ElectionTimedOut>,
    on_lease: Recipient<LeaseExpired>,
    on_tick: Recipient<HeartbeatTick>,
    armed: Option<Armed>,
    heartbeat: Option<SpawnHandle>,
}

/// How many ticks check the deadlines during one minimum election timeout.
pub const TICKS_PER_TIMEOUT: u32 = 10;

/// The deadlines of the last `ArmElection`.
#[derive(Debug, Clone, Copy)]
struct Armed {
    epoch: u64,
    /// When the follower's lease on its leader ends (`None` once reported).
    lease_at: Option<Instant>,
    /// When the election timeout fires.
    election_at: Instant,
}

impl ElectionTimer {
    /// A timer reporting to the given recipients.
    pub fn new(
        cfg: TimerConfig,
        on_timeout: Recipient<ElectionTimedOut>,
        on_lease: Recipient<LeaseExpired>,
        on_tick: Recipient<HeartbeatTick>,
    ) -> Self {
        Self {
            rng: SmallRng::seed_from_u64(cfg.seed),
            cfg,
            on_timeout,
            on_lease,
            on_tick,
            armed: None,
            heartbeat: None,
        }
    }

    fn random_timeout(&mut self) -> Duration {
        let lo = self.cfg.election_min.as_micros() as u64;
        let hi = (self.cfg.election_max.as_micros() as u64).max(lo + 1);
        Duration::from_micros(self.rng.random_range(lo..hi))
    }
}

impl ElectionTimer {
    /// Reports the deadlines that passed.
    fn tick(&mut self) {
        let Some(armed) = self.armed.as_mut() else {
            return;
        };
        let now = Instant::now();
        let epoch = armed.epoch;
        if armed.lease_at.is_some_and(|at| now >= at) {
            armed.lease_at = None;
            self.on_lease.do_send(LeaseExpired { epoch });
        }
        if now >= armed.election_at {
            self.armed = None;
            self.on_timeout.do_send(ElectionTimedOut { epoch });
        }
    }
}

impl Actor for ElectionTimer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let tick = (self.cfg.election_min / TICKS_PER_TIMEOUT).max(Duration::from_millis(1));
        ctx.run_interval(tick, |timer, _| timer.tick());
    }
}

impl Handler<ArmElection> for ElectionTimer {
    type Result = ();

    fn handle(&mut self, msg: ArmElection, _: &mut Context<Self>) {
        let now = Instant::now();
        let timeout = self.random_timeout();
        self.armed = Some(Armed {
            epoch: msg.epoch,
            lease_at: Some(now + self.cfg.election_min),
            election_at: now + timeout,
        });
    }
}

impl Handler<SetHeartbeat> for ElectionTimer {
    type Result = ();

    fn handle(&mut self, msg: SetHeartbeat, ctx: &mut Context<Self>) {
        if let Some(handle) = self.heartbeat.take() {
            ctx.cancel_future(handle);
        }
        if msg.0 {
            let target = self.on_tick.clone();
            target.do_send(HeartbeatTick);
            self.heartbeat = Some(ctx.run_interval(self.cfg.heartbeat, move |_, _| {
                target.do_send(HeartbeatTick);
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::mpsc;
    use futures::StreamExt;

    /// What the timer reported, in order.
    #[derive(Debug, PartialEq, Eq)]
    enum Fired {
        Lease(u64),
        Election(u64),
    }

    /// Forwards the timer's reports to a channel.
    struct Recorder(mpsc::UnboundedSender<(Fired, Instant)>);

    impl Actor for Recorder {
        type Context = Context<Self>;
    }

    impl Handler<ElectionTimedOut> for Recorder {
        type Result = ();
        fn handle(&mut self, msg: ElectionTimedOut, _: &mut Context<Self>) {
            let _ = self
                .0
                .unbounded_send((Fired::Election(msg.epoch), Instant::now()));
        }
    }

    impl Handler<LeaseExpired> for Recorder {
        type Result = ();
        fn handle(&mut self, msg: LeaseExpired, _: &mut Context<Self>) {
            let _ = self
                .0
                .unbounded_send((Fired::Lease(msg.epoch), Instant::now()));
        }
    }

    impl Handler<HeartbeatTick> for Recorder {
        type Result = ();
        fn handle(&mut self, _: HeartbeatTick, _: &mut Context<Self>) {}
    }

    #[actix_rt::test]
    async fn rearming_moves_the_deadlines_and_only_the_last_arming_fires() {
        let cfg = TimerConfig {
            election_min: Duration::from_millis(150),
            election_max: Duration::from_millis(300),
            heartbeat: Duration::from_millis(20),
            seed: 7,
        };
        let (tx, mut rx) = mpsc::unbounded();
        let recorder = Recorder(tx).start();
        let timer = ElectionTimer::new(
            cfg,
            recorder.clone().recipient(),
            recorder.clone().recipient(),
            recorder.recipient(),
        )
        .start();
        // Re-armed every 20 ms for 200 ms (as appends keep coming): nothing may fire. The
        // minimum timeout is far above the re-arming period, so a loaded machine's late wake-up
        // does not let an earlier arming expire.
        for epoch in 1..=9 {
            timer.do_send(ArmElection { epoch });
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
        let last_armed = Instant::now();
        timer.do_send(ArmElection { epoch: 10 });
        let (lease, lease_at) = rx.next().await.expect("the lease report");
        let (election, election_at) = rx.next().await.expect("the election report");
        assert_eq!(lease, Fired::Lease(10), "earlier armings never fire");
        assert_eq!(election, Fired::Election(10));
        let tick = cfg.election_min / TICKS_PER_TIMEOUT;
        let lease_after = lease_at - last_armed;
        assert!(
            lease_after >= cfg.election_min,
            "the lease ends no earlier than the minimum timeout after the last arming: {lease_after:?}"
        );
        let election_after = election_at - last_armed;
        assert!(
            election_after <= cfg.election_max + 4 * tick + Duration::from_millis(100),
            "the election fires within the maximum timeout and a tick: {election_after:?}"
        );
        assert!(
            rx.try_recv().is_err(),
            "nothing else fires until the timer is armed again"
        );
    }
}
