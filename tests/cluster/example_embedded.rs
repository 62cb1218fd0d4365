//! Runs the `embedded_counter` example's logic in-process and checks its results, and checks
//! that its state machine never applies an entry twice across restarts.

#[allow(dead_code)]
#[path = "../../examples/embedded_counter.rs"]
mod example;

use bytes::Bytes;
use example::{CounterMachine, CounterSnapshot, CounterState, Op, Options};
use raftix::core::{Entry, EntryPayload};
use raftix::state_machine::StateMachine;

fn entry(index: u64, payload: EntryPayload) -> Entry {
    Entry {
        term: 1,
        index,
        payload,
    }
}

fn add(index: u64, n: i64) -> Entry {
    entry(index, EntryPayload::Command(Op::Add(n).encode()))
}

#[test]
fn ops_round_trip_and_garbage_is_refused() {
    for op in [Op::Add(0), Op::Add(-42), Op::Add(i64::MAX), Op::Reset] {
        assert_eq!(Op::decode(&op.encode()), Some(op));
    }
    for junk in [&b""[..], b"add", b"add x", b"reset now", b"ADD 1", b"\xff"] {
        assert_eq!(Op::decode(junk), None, "{junk:?}");
    }
}

#[test]
fn machine_applies_in_order_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = CounterMachine::open(dir.path()).unwrap();
    assert_eq!(m.applied_index(), 0);

    let out = m
        .apply(&[
            entry(1, EntryPayload::Noop),
            add(2, 5),
            add(3, -2),
            entry(4, EntryPayload::Command(Bytes::from_static(b"bogus"))),
        ])
        .unwrap();
    assert_eq!(
        out,
        vec![
            Bytes::new(),
            Bytes::from("5"),
            Bytes::from("3"),
            Bytes::from("error: not a counter command")
        ]
    );
    assert_eq!(
        m.state(),
        CounterState {
            applied: 4,
            value: 3
        }
    );
    let view = m.view();

    // A noop alone advances the applied index and leaves the value.
    assert_eq!(
        m.apply(&[entry(5, EntryPayload::Noop)]).unwrap(),
        vec![Bytes::new()]
    );
    assert_eq!(
        m.state(),
        CounterState {
            applied: 5,
            value: 3
        }
    );
    assert_eq!(view.get(), m.state());

    // Overflow is refused deterministically and still consumes the index.
    m.apply(&[add(6, i64::MAX)]).unwrap();
    assert_eq!(
        m.state(),
        CounterState {
            applied: 6,
            value: 3
        }
    );

    // A gap or a replay is refused rather than applied.
    assert!(m.apply(&[add(8, 1)]).is_err());
    assert!(m.apply(&[add(6, 1)]).is_err());
    assert_eq!(
        m.state(),
        CounterState {
            applied: 6,
            value: 3
        }
    );

    drop(m);
    let mut again = CounterMachine::open(dir.path()).unwrap();
    assert_eq!(
        again.state(),
        CounterState {
            applied: 6,
            value: 3
        }
    );
    again
        .apply(&[
            entry(7, EntryPayload::Command(Op::Reset.encode())),
            add(8, 9),
        ])
        .unwrap();
    drop(again);
    assert_eq!(
        CounterMachine::open(dir.path()).unwrap().state(),
        CounterState {
            applied: 8,
            value: 9
        }
    );
}

#[test]
fn snapshot_restores_into_another_machine_and_damage_is_refused() {
    let src_dir = tempfile::tempdir().unwrap();
    let mut src = CounterMachine::open(src_dir.path()).unwrap();
    src.apply(&[add(1, 40), add(2, 2)]).unwrap();
    let source = src.snapshot().unwrap();
    // Later writes do not reach the captured state.
    src.apply(&[add(3, 100)]).unwrap();
    let mut bytes = Vec::new();
    source.write_to(&mut bytes).unwrap();
    assert_eq!(
        CounterSnapshot::decode(&bytes[..].try_into().unwrap())
            .unwrap()
            .value,
        42
    );

    let dst_dir = tempfile::tempdir().unwrap();
    let mut dst = CounterMachine::open(dst_dir.path()).unwrap();
    dst.apply(&[add(1, -5)]).unwrap();
    let view = dst.view();
    for cut in 0..bytes.len() {
        assert!(dst.restore(2, &mut &bytes[..cut]).is_err(), "cut {cut}");
    }
    for pos in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[pos] ^= 0x04;
        assert!(dst.restore(2, &mut &damaged[..]).is_err(), "byte {pos}");
    }
    let mut longer = bytes.clone();
    longer.push(b'\n');
    assert!(dst.restore(2, &mut &longer[..]).is_err());
    let unchanged = CounterState {
        applied: 1,
        value: -5,
    };
    assert_eq!(dst.state(), unchanged);

    dst.restore(2, &mut &bytes[..]).unwrap();
    let restored = CounterState {
        applied: 2,
        value: 42,
    };
    assert_eq!(dst.state(), restored);
    assert_eq!(view.get(), restored);
    drop(dst);
    let mut dst = CounterMachine::open(dst_dir.path()).unwrap();
    assert_eq!(dst.state(), restored);
    dst.apply(&[add(3, 1)]).unwrap();
    assert_eq!(dst.state().value, 43);
}

#[test]
fn a_leftover_temp_file_is_ignored_and_garbage_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = CounterMachine::open(dir.path()).unwrap();
    m.apply(&[add(1, 7)]).unwrap();
    drop(m);
    // A crash between writing the temp file and the rename leaves the old state in force.
    std::fs::write(
        dir.path().join(format!("{}.tmp", example::STATE_FILE)),
        "applied=99\nvalue=99\n",
    )
    .unwrap();
    assert_eq!(
        CounterMachine::open(dir.path()).unwrap().state(),
        CounterState {
            applied: 1,
            value: 7
        }
    );

    std::fs::write(dir.path().join(example::STATE_FILE), "nonsense").unwrap();
    assert!(CounterMachine::open(dir.path()).is_err());
}

#[actix_rt::test]
async fn the_example_converges_and_restarts_without_reapplying() {
    let base = tempfile::tempdir().unwrap();
    let adds = vec![3, 4, 5, -2, 100];
    let sum: i64 = adds.iter().sum();
    let options = Options {
        data_dir: Some(base.path().to_path_buf()),
        adds: adds.clone(),
        quiet: true,
    };

    let first = example::run(options.clone()).await.expect("first run");
    assert_eq!(first.initial, 0);
    assert_eq!(first.finals.len(), 3);
    // The example sends its first add to a follower, which names the leader.
    assert!(first.redirects >= 1, "{first:?}");
    let applied = first.finals.values().map(|s| s.applied).max().unwrap();
    for (id, state) in &first.finals {
        assert_eq!(state.value, sum, "node {id}: {state:?}");
        // The leader's noop plus one entry per add, at least.
        assert!(state.applied > adds.len() as u64, "node {id}: {state:?}");
    }

    // Reopening each node's machine from its file gives back exactly what it had: nothing is
    // re-applied, nothing is lost.
    for (id, dir) in &first.sm_dirs {
        let reopened = CounterMachine::open(dir).unwrap().state();
        assert_eq!(reopened, first.finals[id], "node {id}");
        assert_eq!(reopened.value, sum);
    }

    // `shutdown()` resolves only after each node's storage threads closed their LMDB envs, so
    // the same data dirs can be reopened in this process right away.
    // Restarting the whole cluster on the same data replays the log to the nodes, but each
    // machine starts after its applied index: the counter continues from `sum`, not `2 * sum`
    // plus replays.
    let second = example::run(options).await.expect("second run");
    assert_eq!(second.initial, sum);
    for (id, state) in &second.finals {
        assert_eq!(state.value, 2 * sum, "node {id}: {state:?}");
        assert!(state.applied > applied, "node {id}: {state:?}");
        assert_eq!(
            CounterMachine::open(&second.sm_dirs[id]).unwrap().state(),
            *state,
            "node {id}"
        );
    }
}
