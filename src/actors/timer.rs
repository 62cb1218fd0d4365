//! `ElectionTimer`: the node's clock. Draws randomized election timeouts from a seeded RNG and
//! runs the leader's heartbeat interval. It never decides anything: it only reports
//! `LeaseExpired { epoch }` (after the minimum election timeout), `ElectionTimedOut { epoch }`
//! (after a random one) and `HeartbeatTick` to the node, whose core ignores stale epochs,
//! so a cancelled timer that fires late is harmless.

use std::time::Duration;

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
    election: Option<SpawnHandle>,
    lease: Option<SpawnHandle>,
    heartbeat: Option<SpawnHandle>,
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
            election: None,
            lease: None,
            heartbeat: None,
        }
    }

    fn random_timeout(&mut self) -> Duration {
        let lo = self.cfg.election_min.as_micros() as u64;
        let hi = (self.cfg.election_max.as_micros() as u64).max(lo + 1);
        Duration::from_micros(self.rng.random_range(lo..hi))
    }
}

impl Actor for ElectionTimer {
    type Context = Context<Self>;
}

impl Handler<ArmElection> for ElectionTimer {
    type Result = ();

    fn handle(&mut self, msg: ArmElection, ctx: &mut Context<Self>) {
        if let Some(handle) = self.election.take() {
            ctx.cancel_future(handle);
        }
        if let Some(handle) = self.lease.take() {
            ctx.cancel_future(handle);
        }
        let lease_target = self.on_lease.clone();
        let epoch = msg.epoch;
        self.lease = Some(ctx.run_later(self.cfg.election_min, move |_, _| {
            lease_target.do_send(LeaseExpired { epoch });
        }));
        let timeout = self.random_timeout();
        let target = self.on_timeout.clone();
        let epoch = msg.epoch;
        self.election = Some(ctx.run_later(timeout, move |_, _| {
            target.do_send(ElectionTimedOut { epoch });
        }));
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
