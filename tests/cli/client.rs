//! The client subcommands (`put`, `get`, `del`, `cas`, `list`, `status`, `members`, `log`) run as
//! the built binary against real 3-node clusters of `raftix serve` processes: output, exit
//! statuses, leader following and failover.

use crate::support::process;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use process::{alloc_ports, ProcCluster};
use serde_json::Value;

/// What one run of the client printed and how it exited.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

fn run_with_stdin(endpoints: &str, args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_raftix"))
        .args(args)
        .args(["--endpoints", endpoints])
        .env_remove("RAFTIX_ENDPOINTS")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn raftix");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait for raftix");
    Run {
        code: status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn run(endpoints: &str, args: &[&str]) -> Run {
    run_with_stdin(endpoints, args, b"")
}

/// Asserts the exit status, showing the run and the node logs otherwise.
fn expect(cluster: &ProcCluster, run: Run, code: i32, what: &str) -> Run {
    if run.code != code {
        cluster.fail(&format!("{what}: expected exit {code}, got {run:?}"));
    }
    run
}

/// Endpoint list with node `first` first, then the others by id (`host:port`, no scheme).
fn endpoints(cluster: &ProcCluster, first: u64) -> String {
    let mut ids = vec![first];
    ids.extend(cluster.ids().into_iter().filter(|&id| id != first));
    ids.iter()
        .map(|&id| format!("127.0.0.1:{}", cluster.node(id).http_port))
        .collect::<Vec<_>>()
        .join(",")
}

fn start() -> (ProcCluster, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let cluster = ProcCluster::start(3, dir);
    let (leader, _) = cluster.wait_leader(Duration::from_secs(10));
    (cluster, leader)
}

fn follower_of(cluster: &ProcCluster, leader: u64) -> u64 {
    cluster
        .ids()
        .into_iter()
        .find(|&id| id != leader)
        .expect("a follower")
}

/// The index in `OK index=N term=T`.
fn index_of(cluster: &ProcCluster, run: &Run) -> u64 {
    run.stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix("index="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| cluster.fail(&format!("no index= in {run:?}")))
}

/// Waits (bounded, polling status) until node `id` has applied `index`.
fn wait_applied(cluster: &ProcCluster, id: u64, index: u64) {
    cluster.wait_for(
        Duration::from_secs(10),
        &format!("node {id} to apply {index}"),
        || {
            let applied = cluster.status(id)?["applied"].as_u64()?;
            (applied >= index).then_some(())
        },
    );
}

#[test]
fn key_value_commands_through_a_follower_and_their_exit_codes() {
    let (cluster, leader) = start();
    let follower = follower_of(&cluster, leader);
    let eps = endpoints(&cluster, follower);

    // put/get round trip, the follower listed first; a key needing percent-encoding.
    let put = expect(
        &cluster,
        run(&eps, &["put", "dir/a key", "hello"]),
        0,
        "put",
    );
    assert!(put.stdout.starts_with("OK index="), "{put:?}");
    wait_applied(&cluster, follower, index_of(&cluster, &put));
    let get = expect(&cluster, run(&eps, &["get", "dir/a key"]), 0, "get");
    assert_eq!(get.stdout, "hello", "bytes exactly, no newline in a pipe");
    let json = expect(
        &cluster,
        run(&eps, &["get", "dir/a key", "--json"]),
        0,
        "get --json",
    )
    .json();
    assert_eq!(json["key"], "dir/a key");
    assert_eq!(json["value"], "hello");
    assert!(json["index"].as_u64().is_some(), "{json}");

    // VALUE `-` reads stdin, bytes that are not UTF-8 included.
    let raw = [b'x', 0, 0xff, b'\n'];
    let put = expect(
        &cluster,
        run_with_stdin(&eps, &["put", "bin", "-"], &raw),
        0,
        "put -",
    );
    wait_applied(&cluster, follower, index_of(&cluster, &put));
    let get = Command::new(env!("CARGO_BIN_EXE_raftix"))
        .args(["get", "bin", "--endpoints", &eps])
        .output()
        .expect("run get");
    assert_eq!(get.stdout, raw);

    let missing = expect(
        &cluster,
        run(&eps, &["get", "nope"]),
        3,
        "get of a missing key",
    );
    assert!(missing.stderr.contains("not found"), "{missing:?}");

    // CAS: a match swaps (0); a mismatch does not (4) and shows the current value.
    let cas = [
        "cas",
        "dir/a key",
        "--expected",
        "hello",
        "--value",
        "world",
    ];
    let ok = expect(&cluster, run(&eps, &cas), 0, "cas that matches");
    assert!(ok.stdout.starts_with("OK swapped"), "{ok:?}");
    let cas = [
        "cas",
        "dir/a key",
        "--expected",
        "hello",
        "--value",
        "again",
    ];
    let not = expect(&cluster, run(&eps, &cas), 4, "cas that does not match");
    assert!(not.stdout.contains("current=world"), "{not:?}");
    let cas = ["cas", "fresh", "--expect-absent", "--value", "1", "--json"];
    let json = expect(&cluster, run(&eps, &cas), 0, "cas --expect-absent").json();
    assert_eq!(json["swapped"], true);
    let cas = ["cas", "fresh", "--expected", "1", "--delete"];
    expect(&cluster, run(&eps, &cas), 0, "cas --delete");

    // del: of a present key, then of the absent key (still a success).
    let del = expect(&cluster, run(&eps, &["del", "dir/a key"]), 0, "del");
    assert!(del.stdout.contains("deleted=true"), "{del:?}");
    let del = expect(&cluster, run(&eps, &["del", "dir/a key"]), 0, "del again");
    assert!(del.stdout.contains("deleted=false"), "{del:?}");

    // Invalid input: refused by the client (empty key) or the server (limit out of range): 5.
    let empty = expect(&cluster, run(&eps, &["put", "", "x"]), 5, "empty key");
    assert!(empty.stderr.contains("key is empty"), "{empty:?}");
    let bad = expect(
        &cluster,
        run(&eps, &["list", "--limit", "5000"]),
        5,
        "bad limit",
    );
    assert!(bad.stderr.contains("limit must be"), "{bad:?}");
    // A usage error is clap's 2.
    expect(
        &cluster,
        run(&eps, &["cas", "k", "--value", "v"]),
        2,
        "cas without expectation",
    );
}

#[test]
fn list_all_follows_pages() {
    let (cluster, leader) = start();
    let eps = endpoints(&cluster, leader);
    let mut last = 0;
    for i in 0..5 {
        let put = run(&eps, &["put", &format!("page/{i}"), &format!("v{i}")]);
        last = index_of(&cluster, &expect(&cluster, put, 0, "put page key"));
    }
    expect(&cluster, run(&eps, &["put", "other", "x"]), 0, "put other");
    wait_applied(&cluster, leader, last);

    let one = run(
        &eps,
        &["list", "--prefix", "page/", "--limit", "2", "--json"],
    );
    let one = expect(&cluster, one, 0, "one page").json();
    assert_eq!(one["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(one["next"], "page/1");

    let all = run(
        &eps,
        &["list", "--prefix", "page/", "--limit", "2", "--all"],
    );
    let all = expect(&cluster, all, 0, "list --all");
    let expected: Vec<String> = (0..5).map(|i| format!("page/{i}\tv{i}")).collect();
    assert_eq!(all.stdout.lines().collect::<Vec<_>>(), expected);

    let args = [
        "list", "--prefix", "page/", "--limit", "2", "--all", "--json",
    ];
    let json = expect(&cluster, run(&eps, &args), 0, "list --all --json").json();
    assert_eq!(json["items"].as_array().map(Vec::len), Some(5));
    assert_eq!(json["next"], Value::Null);

    let after = run(&eps, &["list", "--prefix", "page/", "--after", "page/3"]);
    let after = expect(&cluster, after, 0, "list --after");
    assert_eq!(after.stdout, "page/4\tv4\n");

    // An empty listing says so (on stderr: a script reading lines still sees none).
    let none = expect(
        &cluster,
        run(&eps, &["list", "--prefix", "nothing/"]),
        0,
        "empty list",
    );
    assert_eq!(none.stdout, "", "{none:?}");
    assert!(
        none.stderr.contains("no keys start with \"nothing/\""),
        "{none:?}"
    );
}

#[test]
fn txn_applies_all_or_nothing_and_flags_that_do_not_apply_are_not_offered() {
    let (cluster, leader) = start();
    let eps = endpoints(&cluster, leader);
    expect(&cluster, run(&eps, &["put", "acct/a", "10"]), 0, "put");
    let applied = run(
        &eps,
        &[
            "txn",
            "--if",
            "acct/a=10",
            "--if-absent",
            "acct/b",
            "--put",
            "acct/a=5",
            "--put",
            "acct/b=5",
        ],
    );
    let applied = expect(&cluster, applied, 0, "txn whose guards hold");
    assert!(
        applied
            .stdout
            .starts_with("OK applied 2 operation(s) index="),
        "{applied:?}"
    );
    let refused = run(&eps, &["txn", "--if", "acct/a=10", "--delete", "acct/b"]);
    let refused = expect(&cluster, refused, 4, "txn whose guard fails");
    assert!(
        refused
            .stdout
            .starts_with("NOT APPLIED: guard 1 (acct/a = \"10\") did not hold"),
        "{refused:?}"
    );
    let get = expect(&cluster, run(&eps, &["get", "acct/b"]), 0, "get");
    assert_eq!(
        get.stdout.trim_end(),
        "5",
        "nothing of the refused txn was applied"
    );

    // --ack is a write's flag, --consistency a read's: neither is offered where it means nothing.
    for args in [
        &["get", "acct/a", "--ack", "all"][..],
        &["put", "k", "v", "--consistency", "stale"],
    ] {
        let wrong = run(&eps, args);
        assert_eq!(wrong.code, 2, "{args:?} is a usage error: {wrong:?}");
        assert!(wrong.stderr.contains("unexpected argument"), "{wrong:?}");
    }
}

#[test]
fn status_members_and_log_in_both_forms() {
    let (cluster, leader) = start();
    let follower = follower_of(&cluster, leader);
    let eps = endpoints(&cluster, follower);
    let put = expect(&cluster, run(&eps, &["put", "k", "v"]), 0, "put");
    cluster.wait_converged(index_of(&cluster, &put), Duration::from_secs(10));

    let human = expect(&cluster, run(&eps, &["status"]), 0, "status");
    assert!(human.stdout.contains("FOLLOWER"), "{human:?}");
    assert!(human.stdout.contains("health    ACTIVE"), "{human:?}");
    assert!(
        human.stdout.contains(&format!("leader    {leader} at")),
        "{human:?}"
    );
    let json = expect(
        &cluster,
        run(&eps, &["status", "--json"]),
        0,
        "status --json",
    )
    .json();
    assert_eq!(json["id"].as_u64(), Some(follower));
    assert_eq!(json["leader"].as_u64(), Some(leader));

    // members asks the leader (it alone knows the lag).
    let human = expect(&cluster, run(&eps, &["members"]), 0, "members");
    let lines: Vec<&str> = human.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "header, 3 members, footnote: {human:?}");
    assert!(lines[0].starts_with("ID  ROLE"), "{human:?}");
    let leader_row = format!("{leader}*  leader    ACTIVE");
    assert!(
        lines.iter().any(|l| l.starts_with(&leader_row)),
        "{human:?}"
    );
    assert!(
        lines[1..4].iter().all(|l| l.contains("ACTIVE")),
        "each member's health state as the leader sees it: {human:?}"
    );
    let json = expect(
        &cluster,
        run(&eps, &["members", "--json"]),
        0,
        "members --json",
    )
    .json();
    assert_eq!(json["members"].as_array().map(Vec::len), Some(3));
    assert_eq!(json["id"].as_u64(), Some(leader));

    let human = expect(&cluster, run(&eps, &["log", "--from", "1"]), 0, "log");
    assert!(
        human
            .stdout
            .lines()
            .next()
            .is_some_and(|l| l.contains("noop")),
        "{human:?}"
    );
    assert!(human.stdout.contains("put k = v"), "{human:?}");
    let json = run(&eps, &["log", "--from", "1", "--limit", "1", "--json"]);
    let json = expect(&cluster, json, 0, "log --json").json();
    assert_eq!(json["entries"].as_array().map(Vec::len), Some(1));
    assert_eq!(json["entries"][0]["type"], "noop");
}

#[test]
fn failover_dead_endpoints_and_a_killed_leader() {
    let (mut cluster, leader) = start();
    let dead = alloc_ports(2);
    let dead_eps = format!("127.0.0.1:{},http://127.0.0.1:{}", dead[0], dead[1]);

    // A dead first endpoint is skipped.
    let eps = format!("{},{}", dead_eps, endpoints(&cluster, leader));
    expect(
        &cluster,
        run(&eps, &["put", "a", "1"]),
        0,
        "put past dead endpoints",
    );

    // Nothing reachable: exit 1, saying so.
    let none = expect(
        &cluster,
        run(&dead_eps, &["get", "a"]),
        1,
        "all endpoints dead",
    );
    assert!(none.stderr.contains("no endpoint reachable"), "{none:?}");

    // Kill -9 the leader; once a new leader exists, a put listing the dead node first works.
    let eps = endpoints(&cluster, leader);
    cluster.kill9(leader);
    let (new_leader, _) = cluster.wait_leader(Duration::from_secs(10));
    assert_ne!(new_leader, leader);
    let put = expect(
        &cluster,
        run(&eps, &["put", "b", "2"]),
        0,
        "put after the kill",
    );
    cluster.wait_converged(index_of(&cluster, &put), Duration::from_secs(10));
    let get = expect(&cluster, run(&eps, &["get", "b"]), 0, "get after the kill");
    assert_eq!(get.stdout, "2");
}

#[test]
fn consistency_and_ack_levels() {
    let (cluster, leader) = start();
    let follower = follower_of(&cluster, leader);
    let eps = endpoints(&cluster, follower);
    let all = expect(
        &cluster,
        run(&eps, &["put", "lvl", "1", "--ack", "all"]),
        0,
        "put --ack all",
    );
    assert!(all.stdout.starts_with("OK index="), "{all:?}");
    // --ack all answered only once every voter applied it: even a stale read on the
    // follower sees it at once.
    let stale = expect(
        &cluster,
        run(&eps, &["get", "lvl", "--consistency", "stale"]),
        0,
        "stale get",
    );
    assert_eq!(stale.stdout, "1");
    for level in ["linearizable", "lease", "all"] {
        let got = expect(
            &cluster,
            run(&eps, &["get", "lvl", "--consistency", level]),
            0,
            level,
        );
        assert_eq!(got.stdout, "1", "{level}");
    }
    let leader_ack = expect(
        &cluster,
        run(&eps, &["put", "lvl", "2", "--ack", "leader", "--json"]),
        0,
        "put --ack leader",
    );
    assert_eq!(leader_ack.json()["ack"], "leader");
    // CAS has no answer before it runs: --ack leader is refused by the server (exit 5).
    expect(
        &cluster,
        run(
            &eps,
            &[
                "cas",
                "lvl",
                "--expected",
                "2",
                "--value",
                "3",
                "--ack",
                "leader",
            ],
        ),
        5,
        "cas --ack leader",
    );
    expect(
        &cluster,
        run(&eps, &["get", "lvl", "--consistency", "eventual"]),
        2,
        "bad level",
    );
}

#[test]
fn transfer_leader_command() {
    let (cluster, leader) = start();
    let follower = follower_of(&cluster, leader);
    let eps = endpoints(&cluster, leader);
    let to = follower.to_string();
    let done = expect(
        &cluster,
        run(&eps, &["transfer-leader", "--to", &to]),
        0,
        "transfer-leader",
    );
    assert!(
        done.stdout.starts_with(&format!("OK leader={follower} ")),
        "{done:?}"
    );
    expect(
        &cluster,
        run(&eps, &["transfer-leader", "--to", "99"]),
        5,
        "unknown target",
    );
}
