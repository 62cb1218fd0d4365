//! The linearizability checker on small hand-written histories: known-good ones pass, known-bad
//! ones are rejected with a report naming the operation that could not be placed.
//!
//! Times are abstract ticks; `[call, ret]` intervals that overlap are concurrent.

use raftix_testkit::checker::{
    check_history, check_key, check_key_with, CheckConfig, CheckError, CheckResult, KvInput,
    KvOutputObs, Operation as Op,
};

fn ok(history: &[Op]) {
    let result = check_key(history);
    assert!(
        result.is_linearizable(),
        "expected linearizable, got {result:?}"
    );
}

fn bad(history: &[Op]) -> raftix_testkit::checker::Violation {
    match check_key(history) {
        CheckResult::NotLinearizable(v) => {
            println!("{v}");
            *v
        }
        other => panic!("expected a violation, got {other:?}"),
    }
}

fn s(v: &str) -> Option<&[u8]> {
    Some(v.as_bytes())
}

#[test]
fn sequential_writes_and_reads_pass() {
    ok(&[]);
    ok(&[
        Op::read(1, 0, 1, None),
        Op::write(1, 2, 3, b"a"),
        Op::read(2, 4, 5, s("a")),
        Op::write(2, 6, 7, b"b"),
        Op::read(1, 8, 9, s("b")),
    ]);
}

#[test]
fn a_read_overlapping_a_write_may_see_either_value() {
    for seen in ["a", "b"] {
        ok(&[
            Op::write(1, 0, 5, b"a"),
            Op::write(1, 10, 30, b"b"),
            Op::read(2, 15, 25, s(seen)),
        ]);
    }
    // Touching intervals count as concurrent.
    ok(&[Op::write(1, 0, 10, b"a"), Op::read(2, 10, 12, None)]);
}

#[test]
fn cas_chains_pass() {
    ok(&[
        Op::cas(1, 0, 1, None, s("0"), true),
        Op::cas(2, 2, 3, s("0"), s("1"), true),
        Op::cas(3, 4, 5, s("0"), s("x"), false),
        Op::cas(1, 6, 7, s("1"), s("2"), true),
        Op::read(2, 8, 9, s("2")),
        Op::cas(3, 10, 11, s("2"), None, true),
        Op::read(1, 12, 13, None),
    ]);
    // Two concurrent CAS from the same value: exactly one wins, in either order.
    ok(&[
        Op::write(1, 0, 1, b"0"),
        Op::cas(2, 2, 10, s("0"), s("1"), false),
        Op::cas(3, 3, 9, s("0"), s("2"), true),
        Op::read(1, 11, 12, s("2")),
    ]);
}

#[test]
fn an_indeterminate_write_may_have_happened_or_not() {
    let pending = Op::indeterminate(9, 20, KvInput::Write(b"b".to_vec()));
    for seen in ["a", "b"] {
        ok(&[
            Op::write(1, 0, 10, b"a"),
            pending.clone(),
            Op::read(2, 30, 40, s(seen)),
        ]);
    }
    // It may take effect long after its call, between two later reads.
    ok(&[
        Op::write(1, 0, 10, b"a"),
        pending.clone(),
        Op::read(2, 30, 40, s("a")),
        Op::read(2, 50, 60, s("b")),
    ]);
    // A timeout at 25 (unknown output) does not bound when it took effect either.
    let timed_out = Op::new(9, 20, Some(25), pending.input.clone(), KvOutputObs::Unknown);
    ok(&[
        Op::write(1, 0, 10, b"a"),
        timed_out,
        Op::read(2, 30, 40, s("a")),
        Op::read(2, 50, 60, s("b")),
    ]);
    // An indeterminate CAS swaps only if its expected value is current when it lands.
    ok(&[
        Op::write(1, 0, 1, b"a"),
        Op::indeterminate(
            2,
            2,
            KvInput::Cas {
                expected: Some(b"a".to_vec()),
                new: None,
            },
        ),
        Op::read(1, 5, 6, s("a")),
        Op::read(1, 7, 8, None),
    ]);
}

#[test]
fn deletes_pass() {
    ok(&[
        Op::write(1, 0, 1, b"a"),
        Op::delete(2, 2, 3),
        Op::read(1, 4, 5, None),
        Op::cas(2, 6, 7, None, s("b"), true),
        Op::read(1, 8, 9, s("b")),
        Op::delete(1, 10, 20),
        Op::read(2, 12, 14, s("b")),
        Op::read(3, 15, 16, None),
    ]);
}

#[test]
fn a_stale_read_after_a_completed_write_is_rejected() {
    let v = bad(&[
        Op::write(1, 0, 10, b"a"),
        Op::write(1, 20, 30, b"b"),
        Op::read(2, 40, 50, s("a")),
    ]);
    assert_eq!(v.blocked, Op::read(2, 40, 50, s("a")));
    assert_eq!(v.state, Some(b"b".to_vec()));
    assert_eq!(v.linearized, 2);
    assert!(v.to_string().contains(">> client   2"), "{v}");
}

#[test]
fn a_read_of_a_value_never_written_is_rejected() {
    bad(&[Op::write(1, 0, 10, b"a"), Op::read(2, 5, 15, s("zzz"))]);
    bad(&[Op::read(2, 0, 1, s("a"))]);
}

#[test]
fn non_monotonic_reads_are_rejected() {
    // Both reads overlap the write, but new-then-old has no linearization.
    bad(&[
        Op::write(1, 0, 5, b"old"),
        Op::write(1, 10, 100, b"new"),
        Op::read(2, 20, 30, s("new")),
        Op::read(3, 40, 50, s("old")),
    ]);
    // Control: old-then-new is fine.
    ok(&[
        Op::write(1, 0, 5, b"old"),
        Op::write(1, 10, 100, b"new"),
        Op::read(2, 20, 30, s("old")),
        Op::read(3, 40, 50, s("new")),
    ]);
}

#[test]
fn a_swap_from_a_value_that_cannot_be_current_is_rejected() {
    bad(&[
        Op::write(1, 0, 10, b"a"),
        Op::write(2, 20, 30, b"b"),
        Op::cas(3, 40, 50, s("a"), s("c"), true),
    ]);
    // And a refused CAS whose expected value must have been current.
    bad(&[
        Op::write(1, 0, 10, b"a"),
        Op::cas(3, 20, 30, s("a"), s("c"), false),
    ]);
}

#[test]
fn a_lost_acknowledged_write_is_rejected() {
    bad(&[
        Op::write(1, 0, 10, b"a"),
        Op::read(2, 12, 14, s("a")),
        Op::write(3, 20, 30, b"c"),
        Op::write(4, 21, 29, b"d"),
        Op::read(2, 40, 50, s("c")),
        Op::read(2, 60, 70, s("a")),
    ]);
}

#[test]
fn two_swaps_from_the_same_value_are_rejected() {
    let history = [
        Op::write(1, 0, 1, b"0"),
        Op::cas(2, 2, 10, s("0"), s("1"), true),
        Op::cas(3, 3, 9, s("0"), s("2"), true),
    ];
    bad(&history);
    // Control: a concurrent write of the expected value between them explains both.
    let mut with_reset = history.to_vec();
    with_reset.push(Op::write(4, 4, 8, b"0"));
    ok(&with_reset);
}

#[test]
fn an_indeterminate_write_cannot_explain_a_read_before_its_call() {
    bad(&[
        Op::read(1, 0, 10, s("b")),
        Op::indeterminate(2, 20, KvInput::Write(b"b".to_vec())),
    ]);
}

#[test]
fn whole_histories_are_split_by_key() {
    // Each key alone is linearizable; mixed into one register they would not be.
    let history = vec![
        Op::write(1, 0, 10, b"a").on("x"),
        Op::write(2, 0, 10, b"b").on("y"),
        Op::read(3, 20, 30, s("a")).on("x"),
        Op::read(3, 31, 40, s("b")).on("y"),
    ];
    let summary = check_history(&history).expect("per-key linearizable");
    assert_eq!((summary.keys, summary.ops), (2, 4));

    let mut broken = history.clone();
    broken.push(Op::read(4, 50, 60, None).on("y"));
    match check_history(&broken) {
        Err(CheckError::NotLinearizable(v)) => {
            assert_eq!(v.key.as_deref(), Some("y"));
            assert!(
                v.to_string().starts_with("key \"y\": not linearizable"),
                "{v}"
            );
        }
        other => panic!("expected a violation on y, got {other:?}"),
    }
}

#[test]
fn malformed_operations_are_refused() {
    let backwards = Op::write(1, 10, 5, b"a");
    assert!(matches!(
        check_key(&[backwards]),
        CheckResult::Malformed { index: 0, .. }
    ));
    let mismatched = Op::new(1, 0, Some(1), KvInput::Read, KvOutputObs::WriteOk);
    let keyed = vec![Op::read(1, 0, 1, None).on("k"), mismatched.on("k")];
    assert!(matches!(
        check_history(&keyed),
        Err(CheckError::Malformed { index: 1, .. })
    ));
}

#[test]
fn an_exhausted_budget_is_reported_not_guessed() {
    // Many concurrent indeterminate writes make the search branch; two steps cannot settle it.
    let mut history: Vec<Op> = (0..10)
        .map(|c| Op::indeterminate(c, 0, KvInput::Write(vec![b'0' + c as u8])))
        .collect();
    history.push(Op::read(20, 1, 2, s("9")));
    let tiny = CheckConfig {
        max_steps: 2,
        time_budget: None,
    };
    assert!(matches!(
        check_key_with(&history, &tiny),
        CheckResult::TooComplex(_)
    ));
    ok(&history);
}
