//! `Applier`: the only writer of the state machine. Runs on its own arbiter (thread) so that
//! applying never stalls the node's mailbox. Applies committed entries in order and reports
//! each entry's output; a state machine error is fatal for the node. Group apply: every `Apply`
//! waiting in the mailbox goes into one state machine transaction (one durable commit).

use actix::{Actor, AsyncContext, Context, Handler, Recipient};

use std::sync::Arc;
use std::time::Instant;

use crate::messages::applier::Apply;
use crate::messages::node::{Applied, StorageFailed};
use crate::metrics::NodeMetrics;
use crate::state_machine::StateMachine;

/// Drives a [`StateMachine`] with committed entries.
pub struct Applier<S: StateMachine> {
    machine: Box<S>,
    on_applied: Recipient<Applied>,
    on_failure: Recipient<StorageFailed>,
    failed: bool,
    metrics: Arc<NodeMetrics>,
    /// Committed entries waiting for the next `ApplyBatch`, in log order.
    pending: Vec<crate::core::Entry>,
}

impl<S: StateMachine> Applier<S> {
    /// An applier for `machine`, reporting to the node.
    pub fn new(
        machine: S,
        on_applied: Recipient<Applied>,
        on_failure: Recipient<StorageFailed>,
        metrics: Arc<NodeMetrics>,
    ) -> Self {
        Self {
            machine: Box::new(machine),
            on_applied,
            on_failure,
            failed: false,
            metrics,
            pending: Vec::new(),
        }
    }
}

impl<S: StateMachine> Actor for Applier<S> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(usize::MAX);
    }
}

impl<S: StateMachine> Handler<Apply> for Applier<S> {
    type Result = ();

    /// Queues the entries; every `Apply` waiting in the mailbox is applied by one `ApplyBatch`
    /// (one state machine transaction) once the mailbox has drained.
    fn handle(&mut self, msg: Apply, ctx: &mut Context<Self>) {
        if self.failed || msg.entries.is_empty() {
            return;
        }
        if self.pending.is_empty() {
            ctx.notify(ApplyBatch);
        }
        self.pending.extend(msg.entries);
    }
}

/// Self-message: apply everything queued.
#[derive(actix::Message)]
#[rtype(result = "()")]
struct ApplyBatch;

impl<S: StateMachine> Handler<ApplyBatch> for Applier<S> {
    type Result = ();

    fn handle(&mut self, _: ApplyBatch, _: &mut Context<Self>) {
        let queued = std::mem::take(&mut self.pending);
        if self.failed {
            return;
        }
        let applied_before = self.machine.applied_index();
        let fresh: Vec<_> = queued
            .into_iter()
            .filter(|e| e.index > applied_before)
            .collect();
        if fresh.is_empty() {
            return;
        }
        let started = Instant::now();
        let result = self.machine.apply(&fresh);
        self.metrics.record_apply(fresh.len(), started.elapsed());
        match result {
            Ok(outputs) if outputs.len() == fresh.len() => {
                let outputs = fresh.iter().map(|e| e.log_id()).zip(outputs).collect();
                self.on_applied.do_send(Applied { outputs });
            }
            Ok(outputs) => {
                self.failed = true;
                let reason = format!(
                    "state machine returned {} outputs for {} entries",
                    outputs.len(),
                    fresh.len()
                );
                self.on_failure.do_send(StorageFailed { reason });
            }
            Err(err) => {
                self.failed = true;
                self.on_failure.do_send(StorageFailed {
                    reason: format!("state machine: {err}"),
                });
            }
        }
    }
}
