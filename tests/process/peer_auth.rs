//! Peer authentication with real processes: a 3-node cluster sharing a cluster secret, and rogue
//! `raftix serve` processes that try to take part in it (one with a wrong secret that makes
//! itself leader and tries to append to the real nodes, one without a secret doing the same, and
//! one with a wrong secret impersonating node 3 and campaigning). None of them gets a frame
//! through: the real cluster's term, leader and log are unchanged afterwards, every real node
//! counts the refused connections, and the cluster keeps serving writes. The same with mutual
//! TLS between peers: a rogue with a certificate from another CA gets nothing through.

use crate::support::extra_proc;
use crate::support::process;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use extra_proc::ExtraProc;
use process::{alloc_ports, http_client, ProcCluster};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

fn secret_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write secret");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

/// `raftix_peer_refused_total{reason="auth"}` of the node at `http_port`.
fn refused_auth(http_port: u16) -> Option<u64> {
    let text = http_client()
        .get(format!("http://127.0.0.1:{http_port}/metrics"))
        .send()
        .ok()?
        .text()
        .ok()?;
    Some(
        text.lines()
            .find(|l| l.starts_with("raftix_peer_refused_total{reason=\"auth\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0, |v| v as u64),
    )
}

/// (term, leader, last log index) of a node.
fn raft_state(status: &Value) -> (u64, u64, u64) {
    (
        status["term"].as_u64().expect("term"),
        status["leader"].as_u64().expect("leader"),
        status["last_log_index"].as_u64().expect("last_log_index"),
    )
}

#[test]
fn rogue_processes_without_the_secret_cannot_vote_append_or_disturb_the_cluster() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = secret_file(dir.path(), "secret", "the-real-cluster-secret-0123456789");
    let wrong = secret_file(dir.path(), "wrong", "a-guessed-cluster-secret-987654321");
    let good_flag = good.to_string_lossy().into_owned();
    let cluster = ProcCluster::start_with(3, dir, &["--cluster-secret-file", good_flag.as_str()]);
    cluster.wait_leader(WAIT);
    for i in 0..20 {
        cluster.put_ok(&format!("k{i}"), b"v");
    }
    cluster.wait_converged(21, WAIT);
    let before: Vec<(u64, u64, u64)> = cluster
        .ids()
        .into_iter()
        .map(|id| raft_state(&cluster.status_wait(id)))
        .collect();
    assert!(
        before.windows(2).all(|w| w[0] == w[1]),
        "settled: {before:?}"
    );
    let refused_before: Vec<u64> = cluster
        .ids()
        .into_iter()
        .map(|id| refused_auth(cluster.node(id).http_port).expect("metrics"))
        .collect();

    let real = |id: u64| format!("{id}=127.0.0.1:{}", cluster.node(id).peer_port);
    let rogue_dir = cluster.dir().join("rogues");
    std::fs::create_dir_all(&rogue_dir).expect("rogue dir");
    let ports = alloc_ports(6);
    let wrong_flag = wrong.to_string_lossy().into_owned();
    // Rogues 9 and 8 are the only voters of their own configuration, with the real nodes as
    // their learners: they elect themselves and try to append to the real nodes.
    let as_leader = |id: u64, peer: u16, secret: Option<&str>| {
        let mut args = vec![
            "--cluster".to_string(),
            format!("{id}=127.0.0.1:{peer},{},{},{}", real(1), real(2), real(3)),
            "--learners".into(),
            "1,2,3".into(),
        ];
        if let Some(path) = secret {
            args.extend(["--cluster-secret-file".into(), path.to_string()]);
        }
        args
    };
    let rogue_wrong = ExtraProc::spawn(
        9,
        &rogue_dir,
        ports[0],
        ports[1],
        &as_leader(9, ports[0], Some(&wrong_flag)),
    );
    let rogue_open = ExtraProc::spawn(
        8,
        &rogue_dir,
        ports[2],
        ports[3],
        &as_leader(8, ports[2], None),
    );
    // Rogue 3 impersonates node 3 with the wrong secret: it campaigns to nodes 1 and 2.
    let impostor_dir = rogue_dir.join("impostor");
    std::fs::create_dir_all(&impostor_dir).expect("impostor dir");
    let impostor = ExtraProc::spawn(
        3,
        &impostor_dir,
        ports[4],
        ports[5],
        &[
            "--cluster".into(),
            format!(
                "1=127.0.0.1:{},2=127.0.0.1:{},3=127.0.0.1:{}",
                cluster.node(1).peer_port,
                cluster.node(2).peer_port,
                ports[4]
            ),
            "--cluster-secret-file".into(),
            wrong_flag.clone(),
        ],
    );
    for rogue in [&rogue_wrong, &rogue_open] {
        rogue.wait_for(WAIT, "the rogue to lead its own configuration", || {
            let s = rogue.get_json("/v1/status")?;
            (s["role"] == "LEADER").then_some(())
        });
    }
    impostor.wait_for(WAIT, "the impostor to campaign", || {
        let s = impostor.get_json("/v1/status")?;
        (s["role"] != "LEADER").then_some(())
    });
    // Every real node refuses the rogues' connections, repeatedly (they keep retrying).
    for (i, id) in cluster.ids().into_iter().enumerate() {
        let port = cluster.node(id).http_port;
        cluster.wait_for(WAIT, &format!("node {id} to refuse the rogues"), || {
            (refused_auth(port)? >= refused_before[i] + 4).then_some(())
        });
    }
    let after: Vec<(u64, u64, u64)> = cluster
        .ids()
        .into_iter()
        .map(|id| raft_state(&cluster.status_wait(id)))
        .collect();
    assert_eq!(
        after, before,
        "the rogues changed the real cluster's term, leader or log"
    );
    // The rogues got nothing: no key of the real cluster reached them.
    assert_eq!(rogue_wrong.get_stale("k0"), None);
    assert_eq!(rogue_open.get_stale("k0"), None);
    assert!(
        std::fs::read_to_string(&rogue_wrong.log_path)
            .expect("rogue log")
            .contains("failed to prove it holds the cluster secret"),
        "the rogue with the wrong secret refused the real nodes' proof: {}",
        rogue_wrong.tail()
    );
    // The real cluster still serves writes.
    cluster.put_ok("after-rogues", b"ok");
    // Neither secret appears in any log, /v1/status or /metrics.
    for id in cluster.ids() {
        let node = cluster.node(id);
        let log = std::fs::read_to_string(&node.log_path).expect("node log");
        let status = cluster.status_wait(id).to_string();
        let metrics = http_client()
            .get(format!("http://127.0.0.1:{}/metrics", node.http_port))
            .send()
            .and_then(|r| r.text())
            .expect("metrics");
        for text in [&log, &status, &metrics] {
            assert!(
                !text.contains("the-real-cluster-secret"),
                "node {id} shows the secret"
            );
        }
    }
    for rogue in [&rogue_wrong, &rogue_open] {
        let log = std::fs::read_to_string(&rogue.log_path).expect("rogue log");
        assert!(
            !log.contains("a-guessed-cluster-secret"),
            "a rogue logged its secret"
        );
    }
    drop((rogue_wrong, rogue_open, impostor));
}

/// Runs `raftix certs --out DIR --nodes ...`.
fn make_certs(dir: &Path, nodes: &str) {
    let status = std::process::Command::new(process::raftix_bin())
        .args(["certs", "--out"])
        .arg(dir)
        .args(["--nodes", nodes])
        .status()
        .expect("run raftix certs");
    assert!(status.success(), "raftix certs failed");
}

fn peer_tls_flags(certs: &Path, id: &str) -> Vec<String> {
    vec![
        "--peer-tls-ca".into(),
        certs.join("ca.pem").to_string_lossy().into_owned(),
        "--peer-tls-cert".into(),
        certs
            .join(format!("node-{id}.pem"))
            .to_string_lossy()
            .into_owned(),
        "--peer-tls-key".into(),
        certs
            .join(format!("node-{id}-key.pem"))
            .to_string_lossy()
            .into_owned(),
    ]
}

#[test]
fn with_peer_tls_a_rogue_with_another_cas_certificate_gets_nothing_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    let rogue_certs = dir.path().join("rogue-certs");
    make_certs(&certs, "1,2,3");
    make_certs(&rogue_certs, "9");
    let flags = peer_tls_flags(&certs, "{id}");
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let cluster = ProcCluster::start_with(3, dir, &flag_refs);
    cluster.wait_leader(WAIT);
    for i in 0..10 {
        cluster.put_ok(&format!("k{i}"), b"v");
    }
    cluster.wait_converged(11, WAIT);
    let before: Vec<(u64, u64, u64)> = cluster
        .ids()
        .into_iter()
        .map(|id| raft_state(&cluster.status_wait(id)))
        .collect();
    let refused_before: Vec<u64> = cluster
        .ids()
        .into_iter()
        .map(|id| refused_auth(cluster.node(id).http_port).expect("metrics"))
        .collect();
    let real = |id: u64| format!("{id}=127.0.0.1:{}", cluster.node(id).peer_port);
    let rogue_dir = cluster.dir().join("rogues");
    std::fs::create_dir_all(&rogue_dir).expect("rogue dir");
    let ports = alloc_ports(2);
    let mut args = vec![
        "--cluster".to_string(),
        format!(
            "9=127.0.0.1:{},{},{},{}",
            ports[0],
            real(1),
            real(2),
            real(3)
        ),
        "--learners".into(),
        "1,2,3".into(),
    ];
    args.extend(peer_tls_flags(&rogue_certs, "9"));
    let rogue = ExtraProc::spawn(9, &rogue_dir, ports[0], ports[1], &args);
    rogue.wait_for(WAIT, "the rogue to lead its own configuration", || {
        let s = rogue.get_json("/v1/status")?;
        (s["role"] == "LEADER").then_some(())
    });
    for (i, id) in cluster.ids().into_iter().enumerate() {
        let port = cluster.node(id).http_port;
        cluster.wait_for(WAIT, &format!("node {id} to refuse the rogue"), || {
            (refused_auth(port)? >= refused_before[i] + 2).then_some(())
        });
    }
    let after: Vec<(u64, u64, u64)> = cluster
        .ids()
        .into_iter()
        .map(|id| raft_state(&cluster.status_wait(id)))
        .collect();
    assert_eq!(after, before, "the rogue changed the real cluster");
    assert_eq!(rogue.get_stale("k0"), None);
    cluster.put_ok("after-rogue", b"ok");
}

#[test]
fn a_node_refuses_to_start_with_another_nodes_peer_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    make_certs(&certs, "1,2");
    let ports = alloc_ports(2);
    let output = std::process::Command::new(process::raftix_bin())
        .arg("serve")
        .args(["--id", "1"])
        .arg("--data-dir")
        .arg(dir.path().join("n1"))
        .args(["--listen-peer", &format!("127.0.0.1:{}", ports[0])])
        .args(["--listen-http", &format!("127.0.0.1:{}", ports[1])])
        .args(["--cluster", &format!("1=127.0.0.1:{}", ports[0])])
        .args(peer_tls_flags(&certs, "2"))
        .output()
        .expect("run raftix serve");
    assert!(
        !output.status.success(),
        "started with node 2's certificate"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("node 2's certificate, but this is node 1"),
        "{stderr}"
    );
}
