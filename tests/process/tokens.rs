//! Replicated API tokens with real `raftix serve` processes: a token created through one node
//! authenticates on the others once replicated, after every node was killed and restarted, on a
//! follower that caught up from a snapshot while the token was created, on a node that joined
//! later (`serve --join` with `RAFTIX_TOKEN`), and in a new cluster restored from a backup.

use crate::support::authed;
use crate::support::extra_proc;
use crate::support::process;

use std::process::{Child, Command};

use authed::{call, leader_port, ports_of, token_names, wait, WAIT};
use extra_proc::ExtraProc;
use process::{alloc_ports, http_client, raftix_bin, ProcCluster, MAP_SIZE};
use reqwest::Method;
use serde_json::json;

/// Writes `key` through the leader with `token`, retrying while there is none.
fn put(ports: &[(u64, u16)], token: &str, key: &str) {
    wait(&format!("PUT {key}"), || {
        let port = leader_port(ports, Some(token));
        let (status, _) = call(
            Method::PUT,
            port,
            &format!("/v1/kv/{key}"),
            Some(token),
            Some(json!("v")),
        );
        (status == 200).then_some(())
    })
}

/// Creates token `name` with `role` through the node on `port`; returns its secret.
fn create(port: u16, admin: Option<&str>, name: &str, role: &str) -> String {
    wait(&format!("creation of token {name}"), || {
        let (status, body) = call(
            Method::POST,
            port,
            "/v1/auth/tokens",
            admin,
            Some(json!({"name": name, "role": role})),
        );
        match status {
            201 => Some(body["token"].as_str().expect("secret").to_string()),
            503 | 0 => None,
            other => panic!("creating {name}: {other} {body}"),
        }
    })
}

/// Waits until the node on `port` refuses requests without a token and accepts `token`.
fn wait_token_works(port: u16, token: &str, what: &str) {
    wait(what, || {
        let (without, _) = call(Method::GET, port, "/v1/status", None, None);
        let (with, _) = call(Method::GET, port, "/v1/status", Some(token), None);
        (without == 401 && with == 200).then_some(())
    });
}

/// Spawns `raftix serve` for node `id` joining through `join` with `RAFTIX_TOKEN` = `token`,
/// logging to `dir/node<id>.log`.
fn spawn_joiner(dir: &std::path::Path, id: u64, join: &str, token: &str) -> (Child, u16) {
    let ports = alloc_ports(2);
    let log = std::fs::File::create(dir.join(format!("node{id}.log"))).expect("log");
    let mut cmd = process::serve_command(id, &dir.join(format!("n{id}")), ports[0], ports[1]);
    cmd.args(["--join", join]).env("RAFTIX_TOKEN", token);
    let child = process::spawn_logged(&mut cmd, log, "the joiner");
    (child, ports[1])
}

#[test]
fn a_token_works_on_every_node_after_replication_restarts_snapshots_and_joins() {
    let mut cluster = ProcCluster::start_with(
        3,
        tempfile::tempdir().expect("tempdir"),
        &["--snapshot-entries", "40", "--snapshot-keep", "5"],
    );
    let (leader, _) = cluster.wait_leader(WAIT);
    let ports = ports_of(&cluster);
    let followers: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|&id| id != leader)
        .collect();
    let (a, b) = (followers[0], followers[1]);

    // The first admin token, through follower a (forwarded to the leader): access control on.
    let root = create(cluster.node(a).http_port, None, "root", "admin");
    for id in cluster.ids() {
        wait_token_works(cluster.node(id).http_port, &root, "root on every node");
    }
    // A write token created through follower b, used on follower a.
    let app = create(cluster.node(b).http_port, Some(&root), "app", "write");
    wait_token_works(cluster.node(a).http_port, &app, "app replicated to a");
    let (status, body) = call(
        Method::PUT,
        cluster.node(a).http_port,
        "/v1/kv/from-a",
        Some(&app),
        Some(json!("1")),
    );
    assert_eq!(status, 200, "{body}");

    // Follower a misses a token's creation and enough writes for the leader to compact its log:
    // it catches up from a snapshot, which carries the token.
    cluster.kill9(a);
    let late = create(cluster.node(leader).http_port, Some(&root), "late", "read");
    for i in 0..120 {
        put(&ports, &app, &format!("k{i}"));
    }
    cluster.restart(a);
    wait_token_works(
        cluster.node(a).http_port,
        &late,
        "late on the follower after catching up",
    );
    let log = std::fs::read_to_string(&cluster.node(a).log_path).expect("log");
    assert!(
        log.contains("snapshot received"),
        "the follower caught up from a snapshot"
    );

    // Every node killed and restarted: the tokens are durable.
    for id in cluster.ids() {
        cluster.kill9(id);
    }
    for id in cluster.ids() {
        cluster.restart(id);
    }
    for id in cluster.ids() {
        let port = cluster.node(id).http_port;
        wait_token_works(port, &root, "root after a restart");
        wait_token_works(port, &late, "late after a restart");
    }

    // A revoked token is refused everywhere, also after a restart (retried while the restarted
    // cluster has no leader yet).
    let revoke_through = cluster.node(b).http_port;
    wait("the revocation", || {
        let (status, body) = call(
            Method::DELETE,
            revoke_through,
            "/v1/auth/tokens/app",
            Some(&root),
            None,
        );
        match status {
            200 => Some(()),
            503 | 0 => None,
            other => panic!("revoking app: {other} {body}"),
        }
    });
    for id in cluster.ids() {
        let port = cluster.node(id).http_port;
        wait("the revocation on every node", || {
            let (status, _) = call(Method::GET, port, "/v1/status", Some(&app), None);
            (status == 401).then_some(())
        });
    }

    // A new node joins with RAFTIX_TOKEN (an admin token), is promoted, and knows the tokens.
    let join = format!("http://127.0.0.1:{}", cluster.node(b).http_port);
    let (joiner, port4) = spawn_joiner(cluster.dir(), 4, &join, &root);
    let _joiner = KillOnDrop(joiner);
    wait_token_works(port4, &late, "the tokens on the joined node");
    wait("node 4 promoted to voter", || {
        let (status, body) = call(Method::GET, port4, "/v1/status", Some(&root), None);
        let voters = body["members"].as_array()?;
        (status == 200 && voters.contains(&json!(4))).then_some(())
    });
    let (status, _) = call(Method::GET, port4, "/v1/status", Some(&app), None);
    assert_eq!(
        status, 401,
        "the revoked token is refused on the new node too"
    );
}

/// A child process killed and reaped when dropped (also when a test panics).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn tokens_travel_in_backups_to_a_restored_cluster() {
    let cluster = ProcCluster::start(3, tempfile::tempdir().expect("tempdir"));
    let (leader, _) = cluster.wait_leader(WAIT);
    let port = cluster.node(leader).http_port;
    let root = create(port, None, "root", "admin");
    let reader = create(port, Some(&root), "viewer", "read");
    put(&ports_of(&cluster), &root, "kept");

    let work = tempfile::tempdir().expect("tempdir");
    let backup = work.path().join("backup.snap");
    let resp = http_client()
        .get(format!("http://127.0.0.1:{port}/v1/admin/backup"))
        .bearer_auth(&root)
        .send()
        .expect("backup");
    assert_eq!(resp.status().as_u16(), 200);
    std::fs::write(&backup, resp.bytes().expect("backup bytes")).expect("write backup");
    // A backup needs an admin token.
    let (status, _) = call(Method::GET, port, "/v1/admin/backup", Some(&reader), None);
    assert_eq!(status, 403);
    drop(cluster);

    let new_dir = tempfile::tempdir().expect("tempdir");
    let ports = alloc_ports(6);
    let members = (1..=3u64)
        .map(|id| format!("{id}=127.0.0.1:{}", ports[2 * (id as usize - 1)]))
        .collect::<Vec<_>>()
        .join(",");
    for id in 1..=3u64 {
        let data_dir = new_dir.path().join(format!("n{id}"));
        let out = Command::new(raftix_bin())
            .args(["restore", "--from"])
            .arg(&backup)
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--id", &id.to_string(), "--cluster", &members])
            .args(["--sm-map-size", &MAP_SIZE.to_string()])
            .args(["--log-map-size", &MAP_SIZE.to_string()])
            .env("RUST_LOG", "warn")
            .output()
            .expect("restore");
        assert!(out.status.success(), "restore {id}: {out:?}");
    }
    let flags = vec!["--cluster".to_string(), members];
    let nodes: Vec<ExtraProc> = (1..=3u64)
        .map(|id| {
            let i = 2 * (id as usize - 1);
            ExtraProc::spawn(id, new_dir.path(), ports[i], ports[i + 1], &flags)
        })
        .collect();
    let restored: Vec<(u64, u16)> = nodes.iter().map(|n| (n.id, n.http_port)).collect();
    for node in &nodes {
        wait_token_works(
            node.http_port,
            &reader,
            "the read token in the restored cluster",
        );
    }
    let leader = leader_port(&restored, Some(&root));
    let (status, _) = call(Method::GET, leader, "/v1/kv/kept", Some(&reader), None);
    assert_eq!(status, 200);
    let (status, list) = call(Method::GET, leader, "/v1/auth/tokens", Some(&root), None);
    assert_eq!(status, 200, "{list}");
    let names = token_names(&list);
    assert_eq!(names, ["root", "viewer"]);
    let text = std::fs::read(&backup).expect("backup");
    for secret in [&root, &reader] {
        assert!(
            !text.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the backup holds a secret"
        );
    }
}
