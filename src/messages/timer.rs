//! Messages to the `ElectionTimer` actor.

use actix::Message;

/// Node -> timer: (re)start the election timer with a fresh random timeout. Any earlier arming
/// is superseded; the `ElectionTimedOut` it may still deliver carries its old epoch.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct ArmElection {
    /// Epoch to report back when the timeout fires.
    pub epoch: u64,
}

/// Node -> timer: start (`true`) or stop (`false`) the leader's heartbeat interval.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct SetHeartbeat(pub bool);
