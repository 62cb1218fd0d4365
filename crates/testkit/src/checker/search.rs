//! The linearizability search for one register (one key): Wing & Gong's algorithm with Lowe's
//! memoization, in the style of Porcupine.
//!
//! Call and return events are put in one doubly linked list in time order (calls before returns
//! at equal times, so touching intervals count as concurrent). The search walks the list from the
//! head: at a call it tries to linearize that operation now (the register model must accept its
//! observed output), and if the configuration (operations linearized, register state) was never
//! seen (nor one that dominates it, see `memo.rs`), lifts the call and its return out of the
//! list, pushes the choice and restarts from the head. Reaching a return event means that operation's return passed without it being
//! linearized: the search backtracks, putting the last choice back and trying the next call after
//! it. The history is linearizable once every determinate operation is linearized; indeterminate
//! operations (no return, or unknown output) have their return at infinity, so they may be
//! linearized at any point after their call or left out ("never happened").
//!
//! Indeterminate operations multiply the configurations, so the search prunes those another
//! configuration dominates: see `memo.rs` (fewer indeterminate operations used is better),
//! `earlier_twins` (identical pending ones are interchangeable), and the loop (candidates are
//! tried determinate first; an indeterminate operation that changes nothing, or is overwritten
//! by the very next write, is never linearized).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::history::{KvInput, KvOutputObs, Operation};
use super::memo::{Linearized, Memo};

/// No node (end of list).
const NIL: usize = usize::MAX;
/// The list head sentinel.
const HEAD: usize = 0;

/// Bounds on one key's search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckConfig {
    /// Most search steps (tried linearization points plus backtracks) per key.
    pub max_steps: u64,
    /// Wall-clock budget per key; `None` for no limit.
    pub time_budget: Option<Duration>,
}

impl Default for CheckConfig {
    /// 20 million steps and 10 s per key. A linearizable history of a few hundred operations
    /// per key takes thousands of steps; proving a violation in one can take millions (a step is
    /// ~0.1-0.2 µs in a debug build).
    fn default() -> Self {
        CheckConfig {
            max_steps: 20_000_000,
            time_budget: Some(Duration::from_secs(10)),
        }
    }
}

/// What one search cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Operations checked (indeterminate reads, which cannot matter, are not counted).
    pub ops: usize,
    /// Search steps taken.
    pub steps: u64,
    /// Configurations (linearized set, state) memoized.
    pub states: usize,
    /// Time spent.
    pub elapsed: Duration,
}

/// Where the search got furthest before failing, in indices of the input history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stuck {
    /// The longest linearizable prefix found, in linearization order.
    pub prefix: Vec<usize>,
    /// The register value after that prefix (interned id resolved).
    pub state: Option<Vec<u8>>,
    /// The operation whose return was reached without a legal linearization point.
    pub blocked: usize,
}

/// The outcome of one search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every determinate operation linearized.
    Linearizable(Stats),
    /// No linearization exists.
    Violation(Stuck, Stats),
    /// The budget ran out first.
    Exhausted(Stats),
}

/// One operation compiled to interned values (0 = absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Step {
    /// A read that saw this value.
    Read(u32),
    /// A write, a delete (of 0), acknowledged or not.
    Set(u32),
    /// A CAS that swapped.
    CasSwapped { expected: u32, new: u32 },
    /// A CAS that did not swap.
    CasRefused { expected: u32 },
    /// A CAS of unknown outcome: swaps iff the value matches.
    CasMaybe { expected: u32, new: u32 },
}

impl Step {
    /// The register state after this step from `state`, or `None` if the observed output is
    /// impossible there.
    fn apply(self, state: u32) -> Option<u32> {
        match self {
            Step::Read(v) => (v == state).then_some(state),
            Step::Set(v) => Some(v),
            Step::CasSwapped { expected, new } => (expected == state).then_some(new),
            Step::CasRefused { expected } => (expected != state).then_some(state),
            Step::CasMaybe { expected, new } => Some(if expected == state { new } else { state }),
        }
    }
}

/// Interns values so states are small integers.
#[derive(Default)]
struct Interner {
    ids: HashMap<Vec<u8>, u32>,
    values: Vec<Vec<u8>>,
}

impl Interner {
    fn id(&mut self, value: &Option<Vec<u8>>) -> u32 {
        let Some(bytes) = value else { return 0 };
        if let Some(&id) = self.ids.get(bytes) {
            return id;
        }
        self.values.push(bytes.clone());
        let id = u32::try_from(self.values.len()).unwrap_or(u32::MAX);
        self.ids.insert(bytes.clone(), id);
        id
    }

    fn value(&self, id: u32) -> Option<Vec<u8>> {
        let index = usize::try_from(id).ok()?.checked_sub(1)?;
        self.values.get(index).cloned()
    }
}

/// Compiles one operation; `None` for one that cannot affect the outcome (indeterminate read).
fn compile(op: &Operation, interner: &mut Interner) -> Option<Step> {
    let unknown = op.is_indeterminate();
    Some(match (&op.input, &op.output) {
        (KvInput::Read, _) if unknown => return None,
        (KvInput::Read, KvOutputObs::ReadValue(v)) => Step::Read(interner.id(v)),
        (KvInput::Read, _) => return None,
        (KvInput::Write(v), _) => Step::Set(interner.id(&Some(v.clone()))),
        (KvInput::Delete, _) => Step::Set(0),
        (KvInput::Cas { expected, new }, output) => {
            let (expected, new) = (interner.id(expected), interner.id(new));
            match output {
                _ if unknown => Step::CasMaybe { expected, new },
                KvOutputObs::CasResult { swapped: true } => Step::CasSwapped { expected, new },
                _ => Step::CasRefused { expected },
            }
        }
    })
}

/// The event list (dancing links over call/return nodes; node 0 is the head).
struct Events {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For each node: the operation (index into the compiled list).
    op: Vec<usize>,
    /// For each call node: its return node; `NIL` for return nodes.
    ret_of: Vec<usize>,
}

impl Events {
    /// Builds the list from (call, return) times; `None` returns go last.
    fn new(times: &[(u64, Option<u64>)]) -> Events {
        // (time, is_infinite, is_return, op): calls sort before returns at equal times.
        let mut events: Vec<(bool, u64, bool, usize)> = Vec::with_capacity(times.len() * 2);
        for (i, &(call, ret)) in times.iter().enumerate() {
            events.push((false, call, false, i));
            events.push((ret.is_none(), ret.unwrap_or(0), true, i));
        }
        events.sort_unstable();
        let n = events.len() + 1;
        let mut list = Events {
            next: (1..=n).map(|i| if i == n { NIL } else { i }).collect(),
            prev: (0..n).map(|i| i.wrapping_sub(1)).collect(),
            op: vec![NIL; n],
            ret_of: vec![NIL; n],
        };
        let mut call_node = vec![NIL; times.len()];
        for (k, &(_, _, is_return, i)) in events.iter().enumerate() {
            let node = k + 1;
            list.op[node] = i;
            if is_return {
                list.ret_of[call_node[i]] = node;
            } else {
                call_node[i] = node;
            }
        }
        list.prev[HEAD] = NIL;
        list
    }

    fn unlink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = node;
        if n != NIL {
            self.prev[n] = node;
        }
    }

    /// Removes a call and its return.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(self.ret_of[call]);
    }

    /// Undoes the matching [`Events::lift`] (choices are undone in reverse order).
    fn unlift(&mut self, call: usize) {
        self.relink(self.ret_of[call]);
        self.relink(call);
    }
}

/// Checks one key's history against a register that starts absent.
pub(crate) fn search(history: &[Operation], config: &CheckConfig) -> Outcome {
    let started = Instant::now();
    let mut interner = Interner::default();
    let mut steps = Vec::new();
    let mut origin = Vec::new();
    let mut times = Vec::new();
    let mut determinate = Vec::new();
    for (i, op) in history.iter().enumerate() {
        if let Some(step) = compile(op, &mut interner) {
            steps.push(step);
            origin.push(i);
            let unknown = op.is_indeterminate();
            times.push((op.call, if unknown { None } else { op.ret }));
            determinate.push(!unknown);
        }
    }
    let mut list = Events::new(&times);
    let twin = earlier_twins(&steps, &times, &determinate);
    // Each operation's bit, in the determinate or the indeterminate set.
    let mut counts = (0, 0);
    let slot: Vec<usize> = determinate
        .iter()
        .map(|&d| {
            let next = if d { &mut counts.0 } else { &mut counts.1 };
            *next += 1;
            *next - 1
        })
        .collect();
    let mut remaining = counts.0;
    let mut linearized = Linearized::new(counts.0, counts.1);
    let mut memo = Memo::default();
    // (call lifted, state before it, pass it was chosen in)
    let mut stack: Vec<(usize, u32, bool)> = Vec::new();
    // Each configuration's candidates are tried in two passes: determinate operations first,
    // then indeterminate ones, so the configurations that leave indeterminate operations unused
    // (which dominate those using them, see `memo.rs`) are explored and memoized first.
    let mut late = false;
    let mut best: Option<Stuck> = None;
    let mut state = 0u32;
    let mut entry = list.next[HEAD];
    let mut count: u64 = 0;
    let stats = |count, memo: &Memo| Stats {
        ops: steps.len(),
        steps: count,
        states: memo.len(),
        elapsed: started.elapsed(),
    };
    while remaining > 0 {
        count += 1;
        let out_of_time =
            count.is_multiple_of(1024) && config.time_budget.is_some_and(|b| started.elapsed() > b);
        if count > config.max_steps || out_of_time {
            return Outcome::Exhausted(stats(count, &memo));
        }
        if entry != NIL && list.ret_of[entry] != NIL {
            let i = list.op[entry];
            if determinate[i] == late {
                entry = list.next[entry];
                continue;
            }
            if let Some(after) = steps[i].apply(state) {
                // Pruned, each for a configuration that dominates it: an indeterminate operation
                // that changes nothing (leave it out); one with an earlier identical twin still
                // pending (use the twin); a write right after an indeterminate operation (leave
                // that one out: its effect is overwritten unseen).
                let overwrites = matches!(steps[i], Step::Set(_))
                    && stack
                        .last()
                        .is_some_and(|&(c, _, _)| !determinate[list.op[c]]);
                let useless = overwrites
                    || !determinate[i]
                        && (after == state
                            || twin[i].is_some_and(|t| !linearized.has(false, slot[t])));
                linearized.set(determinate[i], slot[i], true);
                if !useless && memo.visit(&linearized, after) {
                    stack.push((entry, state, late));
                    state = after;
                    list.lift(entry);
                    remaining -= usize::from(determinate[i]);
                    entry = list.next[HEAD];
                    late = false;
                    continue;
                }
                linearized.set(determinate[i], slot[i], false);
            }
            entry = list.next[entry];
            continue;
        }
        if !late && counts.1 > 0 {
            late = true;
            entry = list.next[HEAD];
            continue;
        }
        // A return (or the end) reached with its operation unlinearized: dead end.
        if best.as_ref().is_none_or(|b| stack.len() > b.prefix.len()) && entry != NIL {
            best = Some(Stuck {
                prefix: stack.iter().map(|&(c, _, _)| origin[list.op[c]]).collect(),
                state: interner.value(state),
                blocked: origin[list.op[entry]],
            });
        }
        let Some((call, before, pass)) = stack.pop() else {
            let stuck = best.unwrap_or(Stuck {
                prefix: Vec::new(),
                state: None,
                blocked: 0,
            });
            return Outcome::Violation(stuck, stats(count, &memo));
        };
        let i = list.op[call];
        linearized.set(determinate[i], slot[i], false);
        state = before;
        list.unlift(call);
        remaining += usize::from(determinate[i]);
        entry = list.next[call];
        late = pass;
    }
    Outcome::Linearizable(stats(count, &memo))
}

/// For each indeterminate operation, the one called just before it with the same step, if any.
///
/// Two pending indeterminate operations with the same step are interchangeable (both were called,
/// neither ever returns), so the search only linearizes one once every earlier twin is: the
/// linearized twins are always the earliest ones, which keeps their permutations out of the
/// search.
fn earlier_twins(
    steps: &[Step],
    times: &[(u64, Option<u64>)],
    determinate: &[bool],
) -> Vec<Option<usize>> {
    let mut order: Vec<usize> = (0..steps.len()).filter(|&i| !determinate[i]).collect();
    order.sort_by_key(|&i| (times[i].0, i));
    let mut last: HashMap<Step, usize> = HashMap::new();
    let mut twin = vec![None; steps.len()];
    for i in order {
        twin[i] = last.insert(steps[i], i);
    }
    twin
}
