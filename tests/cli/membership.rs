//! `raftix member ...` and `raftix serve --join` against real `raftix serve` processes: output,
//! exit statuses, and a fourth node that joins a running cluster, catches up and is promoted.

use crate::support::extra_proc;
use crate::support::process;

use std::time::Duration;

use extra_proc::ExtraProc;
use process::{alloc_ports, ProcCluster};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

/// What one client run printed and how it exited.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `raftix ARGS --endpoints ENDPOINTS`.
fn run(endpoints: &str, args: &[&str]) -> Run {
    let (code, stdout, stderr) = process::run_raftix(&[args, &["--endpoints", endpoints]].concat());
    Run {
        code,
        stdout,
        stderr,
    }
}

/// Asserts the exit status, showing the run and the node logs otherwise.
fn expect(cluster: &ProcCluster, run: Run, code: i32, what: &str) -> Run {
    if run.code != code {
        cluster.fail(&format!("{what}: expected exit {code}, got {run:?}"));
    }
    run
}

/// Every node's endpoint, `host:port`, comma-separated.
fn endpoints(cluster: &ProcCluster) -> String {
    cluster
        .ids()
        .iter()
        .map(|&id| format!("127.0.0.1:{}", cluster.node(id).http_port))
        .collect::<Vec<_>>()
        .join(",")
}

/// `members --json` as the leader sees it: (id, suffrage) of every member.
fn suffrages(cluster: &ProcCluster, eps: &str) -> Vec<(u64, String)> {
    let list = expect(
        cluster,
        run(eps, &["member", "list", "--json"]),
        0,
        "member list",
    );
    let view: Value = serde_json::from_str(list.stdout.trim()).expect("member list JSON");
    view["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            let id = m["id"].as_u64().expect("id");
            (id, m["suffrage"].as_str().expect("suffrage").to_string())
        })
        .collect()
}

fn start() -> ProcCluster {
    let cluster = ProcCluster::start(3, tempfile::tempdir().expect("temp dir"));
    cluster.wait_leader(Duration::from_secs(10));
    cluster
}

#[test]
fn member_commands_add_promote_demote_and_remove_with_their_exit_codes() {
    let cluster = start();
    let eps = endpoints(&cluster);
    let peer = format!("127.0.0.1:{}", alloc_ports(1)[0]);

    let add = run(&eps, &["member", "add", "--id", "4", "--peer-addr", &peer]);
    let add = expect(&cluster, add, 0, "member add");
    assert!(
        add.stdout.starts_with("OK index=")
            && add.stdout.contains("changed=true voters=1,2,3 learners=4"),
        "{add:?}"
    );
    assert!(suffrages(&cluster, &eps).contains(&(4, "learner".to_string())));
    let human = expect(&cluster, run(&eps, &["member", "list"]), 0, "member list");
    assert!(
        human.stdout.lines().any(|l| l.starts_with("4   learner")),
        "{human:?}"
    );

    // A learner that never answered the leader is not caught up, however short the log.
    let early = expect(
        &cluster,
        run(&eps, &["member", "promote", "4"]),
        5,
        "promote a learner that never ran",
    );
    assert!(early.stderr.contains("409"), "{early:?}");
    assert!(
        early
            .stderr
            .contains("learner 4 has never answered the leader"),
        "the refusal says why: {early:?}"
    );
    let remove = expect(&cluster, run(&eps, &["member", "remove", "4"]), 0, "remove");
    assert!(
        remove
            .stdout
            .contains("changed=true voters=1,2,3 learners=-"),
        "{remove:?}"
    );
    assert!(!suffrages(&cluster, &eps).iter().any(|(id, _)| *id == 4));
    let again = expect(
        &cluster,
        run(&eps, &["member", "remove", "4"]),
        0,
        "remove again",
    );
    assert!(again.stdout.contains("changed=false"), "{again:?}");

    // Demote a live voter, then promote it back (it holds the whole log).
    let demote = expect(&cluster, run(&eps, &["member", "demote", "3"]), 0, "demote");
    assert!(
        demote.stdout.contains("voters=1,2 learners=3"),
        "{demote:?}"
    );
    assert!(suffrages(&cluster, &eps).contains(&(3, "learner".to_string())));
    let promote = expect(
        &cluster,
        run(&eps, &["member", "promote", "3", "--json"]),
        0,
        "promote",
    );
    let answer: Value = serde_json::from_str(promote.stdout.trim()).expect("JSON");
    assert_eq!(
        answer["voters"],
        serde_json::json!([1, 2, 3]),
        "{promote:?}"
    );
    assert!(suffrages(&cluster, &eps).contains(&(3, "voter".to_string())));

    // Refused by the server: exit 5 with its message.
    let unknown = expect(
        &cluster,
        run(&eps, &["member", "promote", "9"]),
        5,
        "promote 9",
    );
    assert!(unknown.stderr.contains("404"), "{unknown:?}");
    let voter = run(&eps, &["member", "add", "--id", "1", "--peer-addr", &peer]);
    let voter = expect(&cluster, voter, 5, "add a voter");
    assert!(voter.stderr.contains("already a voter"), "{voter:?}");
    let bad = run(
        &eps,
        &["member", "add", "--id", "5", "--peer-addr", "no-port"],
    );
    expect(&cluster, bad, 5, "add with a bad address");
    // Refused by clap: exit 2.
    expect(
        &cluster,
        run(&eps, &["member", "add", "--id", "0", "--peer-addr", &peer]),
        2,
        "id 0",
    );
    expect(
        &cluster,
        run(&eps, &["member", "promote", "four"]),
        2,
        "id four",
    );
    // Nothing reachable: exit 1.
    let dead = format!("127.0.0.1:{}", alloc_ports(1)[0]);
    let unreachable = run(&dead, &["member", "remove", "4", "--timeout-ms", "500"]);
    expect(&cluster, unreachable, 1, "unreachable");
}

#[test]
fn serve_join_adds_a_node_that_catches_up_and_becomes_a_voter() {
    let cluster = start();
    let eps = endpoints(&cluster);
    for i in 0..50 {
        cluster.put_ok(&format!("before-{i}"), format!("value {i}").as_bytes());
    }
    let join_urls: Vec<String> = cluster
        .ids()
        .iter()
        .map(|&id| format!("http://127.0.0.1:{}", cluster.node(id).http_port))
        .collect();
    let join = vec!["--join".to_string(), join_urls.join(",")];
    let ports = alloc_ports(4);
    let mut node4 = ExtraProc::spawn(4, cluster.dir(), ports[0], ports[1], &join);

    // Node 4 is promoted by itself once caught up, and holds the data written before it joined.
    cluster.wait_for(WAIT, "node 4 to become a voter", || {
        suffrages(&cluster, &eps)
            .contains(&(4, "voter".to_string()))
            .then_some(())
    });
    let value = node4.wait_for(WAIT, "before-49 on node 4", || node4.get_stale("before-49"));
    assert_eq!(value, b"value 49");
    assert_eq!(
        node4.get_stale("before-0").as_deref(),
        Some(&b"value 0"[..])
    );

    // Restarted with the same command line: --join is ignored, the recorded members are used.
    node4.stop();
    node4.start();
    let status = node4.wait_for(WAIT, "node 4 to know the leader again", || {
        node4
            .get_json("/v1/status")
            .filter(|s| s["leader"].is_u64())
    });
    assert!(
        status["members"]
            .as_array()
            .expect("members")
            .contains(&4.into()),
        "{status}"
    );
    assert!(
        node4.tail().contains("--join is ignored"),
        "{}",
        node4.tail()
    );
    cluster.put_ok("after-restart", b"yes");
    let value = node4.wait_for(WAIT, "after-restart on node 4", || {
        node4.get_stale("after-restart")
    });
    assert_eq!(value, b"yes");

    // With --learner the node stays a learner once caught up.
    let learner = [join.clone(), vec!["--learner".to_string()]].concat();
    let node5 = ExtraProc::spawn(5, cluster.dir(), ports[2], ports[3], &learner);
    node5.wait_for(WAIT, "after-restart on node 5", || {
        node5.get_stale("after-restart")
    });
    assert!(suffrages(&cluster, &eps).contains(&(5, "learner".to_string())));
    let status = node5.get_json("/v1/status").expect("status of node 5");
    assert_eq!(status["learners"], serde_json::json!([5]), "{status}");
}
