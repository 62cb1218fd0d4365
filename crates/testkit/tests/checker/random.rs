//! The linearizability checker on generated histories: clients run against a real sequential
//! register, each operation taking effect at one instant strictly inside its interval, so every
//! history is linearizable by construction and must pass. Then one read is changed to a value no
//! linearization allows, and the history must be rejected. Every failure prints its seed;
//! `RAFTIX_CHECKER_SEED=N` reruns one seed. Also a guard against exponential blow-up.

use std::time::{Duration, Instant};

use raftix_testkit::checker::{
    check_history, check_key, CheckResult, KeyedOperation, KvInput, KvOutputObs, Operation,
};

/// splitmix64: a tiny deterministic generator, so a seed reproduces a history exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Where a client is with its current operation (an index into the history).
#[derive(Clone, Copy)]
enum Client {
    Idle,
    Called(usize),
    TimedOut(usize),
    Applied(usize),
}

/// Generates a linearizable history of `len` operations by `clients` clients over values
/// `v0..v{values}`; about 5% of operations end indeterminate (never answered, or timed out
/// before or after taking effect, or abandoned without taking effect).
fn generate(seed: u64, len: usize, clients: usize, values: u64) -> Vec<Operation> {
    let mut rng = Rng(seed);
    let mut register: Option<Vec<u8>> = None;
    let mut ops: Vec<Operation> = Vec::new();
    let mut state = vec![Client::Idle; clients];
    let mut now = 0u64;
    let value = |rng: &mut Rng| format!("v{}", rng.below(values)).into_bytes();
    while ops.len() < len || state.iter().any(|c| !matches!(c, Client::Idle)) {
        now += 1 + rng.below(3);
        let c = rng.below(clients as u64) as usize;
        state[c] = match state[c] {
            Client::Idle if ops.len() < len => {
                let input = match rng.below(10) {
                    0..=3 => KvInput::Read,
                    4..=6 => KvInput::Write(value(&mut rng)),
                    7 | 8 => KvInput::Cas {
                        expected: if rng.chance(50) {
                            register.clone()
                        } else {
                            Some(value(&mut rng))
                        },
                        new: if rng.chance(90) {
                            Some(value(&mut rng))
                        } else {
                            None
                        },
                    },
                    _ => KvInput::Delete,
                };
                let op = Operation::new(c as u64, now, None, input, KvOutputObs::Unknown);
                ops.push(op);
                Client::Called(ops.len() - 1)
            }
            Client::Idle => Client::Idle,
            Client::Called(_) if rng.chance(2) => Client::Idle, // abandoned, never applied
            Client::Called(i) if rng.chance(2) => {
                ops[i].ret = Some(now); // timed out; lands later
                Client::TimedOut(i)
            }
            Client::Called(i) | Client::TimedOut(i) => {
                let output = apply(&mut register, &ops[i].input);
                if ops[i].ret.is_some() {
                    Client::Idle
                } else {
                    ops[i].output = output;
                    Client::Applied(i)
                }
            }
            Client::Applied(i) => {
                if rng.chance(2) {
                    ops[i].output = KvOutputObs::Unknown; // applied, answer lost
                } else {
                    ops[i].ret = Some(now);
                }
                Client::Idle
            }
        };
    }
    ops
}

/// The sequential register.
fn apply(register: &mut Option<Vec<u8>>, input: &KvInput) -> KvOutputObs {
    match input {
        KvInput::Read => KvOutputObs::ReadValue(register.clone()),
        KvInput::Write(v) => {
            *register = Some(v.clone());
            KvOutputObs::WriteOk
        }
        KvInput::Delete => {
            *register = None;
            KvOutputObs::DeleteOk
        }
        KvInput::Cas { expected, new } => {
            let swapped = register == expected;
            if swapped {
                register.clone_from(new);
            }
            KvOutputObs::CasResult { swapped }
        }
    }
}

/// The value `op` certainly leaves in the register, if it is determinate and unconditional
/// (acknowledged write or delete, swapped CAS).
fn certainly_sets(op: &Operation) -> Option<Option<Vec<u8>>> {
    if op.is_indeterminate() {
        return None;
    }
    match (&op.input, &op.output) {
        (KvInput::Write(v), _) => Some(Some(v.clone())),
        (KvInput::Delete, _) => Some(None),
        (KvInput::Cas { new, .. }, KvOutputObs::CasResult { swapped: true }) => Some(new.clone()),
        _ => None,
    }
}

/// Whether `op` might leave `v` in the register.
fn may_set(op: &Operation, v: &Option<Vec<u8>>) -> bool {
    match &op.input {
        KvInput::Read => false,
        KvInput::Write(w) => Some(w) == v.as_ref(),
        KvInput::Delete => v.is_none(),
        KvInput::Cas { new, .. } => {
            new == v && op.output != (KvOutputObs::CasResult { swapped: false })
        }
    }
}

/// Changes one read so that no linearization allows it, preferring a stale value (every op that
/// could set it precedes a completed overwrite that precedes the read) over a value never
/// written. Returns the index changed.
fn break_one_read(ops: &mut [Operation], rng: &mut Rng, values: u64) -> usize {
    let reads: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].input == KvInput::Read && !ops[i].is_indeterminate())
        .collect();
    let candidates: Vec<Option<Vec<u8>>> = std::iter::once(None)
        .chain((0..values).map(|k| Some(format!("v{k}").into_bytes())))
        .collect();
    let start = rng.below(reads.len().max(1) as u64) as usize;
    for r in reads.iter().cycle().skip(start).take(reads.len()) {
        let read_call = ops[*r].call;
        for v in &candidates {
            let setters_end = ops.iter().filter(|op| may_set(op, v)).map(|op| match op {
                op if op.is_indeterminate() => u64::MAX,
                op => op.ret.unwrap_or(u64::MAX),
            });
            let last_setter = setters_end.max().unwrap_or(0);
            let overwritten = ops.iter().any(|w| {
                certainly_sets(w).is_some_and(|x| x != *v)
                    && w.call > last_setter
                    && w.ret.is_some_and(|ret| ret < read_call)
            });
            if overwritten {
                ops[*r].output = KvOutputObs::ReadValue(v.clone());
                return *r;
            }
        }
    }
    let r = reads[start % reads.len()];
    ops[r].output = KvOutputObs::ReadValue(Some(b"never written".to_vec()));
    r
}

fn seeds(default: std::ops::Range<u64>) -> Vec<u64> {
    match std::env::var("RAFTIX_CHECKER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => vec![seed],
        None => default.collect(),
    }
}

#[test]
fn generated_histories_pass_and_one_broken_read_is_rejected() {
    let mut stale = 0;
    for seed in seeds(0..300) {
        let (clients, values) = (2 + seed as usize % 5, 2 + seed % 4);
        let mut ops = generate(seed, 60, clients, values);
        let result = check_key(&ops);
        assert!(
            result.is_linearizable(),
            "seed {seed}: a history built from a register was not accepted: {result:?}\n{ops:#?}"
        );
        let mut rng = Rng(seed ^ 0xdead_beef);
        let broken = break_one_read(&mut ops, &mut rng, values);
        stale += usize::from(
            ops[broken].output != KvOutputObs::ReadValue(Some(b"never written".to_vec())),
        );
        match check_key(&ops) {
            CheckResult::NotLinearizable(_) => {}
            other => panic!(
                "seed {seed}: changed read {broken} ({}) but got {other:?}",
                ops[broken]
            ),
        }
    }
    // Most mutations are the subtle kind (a value that was written, but is stale).
    assert!(stale > 150, "only {stale} stale-value mutations");
}

#[test]
fn three_hundred_ops_by_eight_clients_check_quickly() {
    // Generous bound (debug build): a memoized search takes milliseconds here; an exponential
    // one would take far longer than a second.
    const BOUND: Duration = Duration::from_secs(1);
    for seed in seeds(1000..1004) {
        let ops = generate(seed, 300, 8, 3);
        let started = Instant::now();
        let result = check_key(&ops);
        let took = started.elapsed();
        assert!(result.is_linearizable(), "seed {seed}: {result:?}");
        assert!(took < BOUND, "seed {seed}: 300 ops took {took:?}");
        // Proving a violation is costlier (every prefix before it is exhausted) but still
        // within the default budget for these seeds (tens of milliseconds each in debug).
        let mut broken = ops.clone();
        let index = break_one_read(&mut broken, &mut Rng(seed), 3);
        match check_key(&broken) {
            CheckResult::NotLinearizable(v) => assert!(v.window.contains(&v.blocked), "{v}"),
            other => panic!("seed {seed}: broke read {index} but got {other:?}"),
        }
    }
}

#[test]
fn a_multi_key_history_checks_per_key() {
    for seed in seeds(2000..2003) {
        let mut history: Vec<KeyedOperation> = Vec::new();
        for key in 0..10 {
            let ops = generate(seed * 100 + key, 300, 8, 3);
            history.extend(ops.into_iter().map(|op| op.on(format!("key-{key}"))));
        }
        let started = Instant::now();
        let summary = check_history(&history).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(summary.keys, 10, "seed {seed}");
        assert!(started.elapsed() < Duration::from_secs(10), "seed {seed}");
    }
}
