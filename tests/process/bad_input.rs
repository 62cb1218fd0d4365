//! Tier-4 tests: real `raftix serve` processes fed bad input: garbage on the peer port, damaged or
//! foreign data directories, bad flags.

use crate::support::process;

use std::convert::Infallible;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use heed::byteorder::BigEndian;
use heed::types::{Bytes, U64};
use heed::{CommitOrAbort, Database, EnvOpenOptions};
use process::{alloc_ports, raftix_bin, snapshot_dir, ProcCluster, MAP_SIZE};
use raftix::transport::{encode_frame, Frame};

const LEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a node refusing its data dir may take to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

fn tempdir() -> tempfile::TempDir {
    ProcCluster::temp_dir("raftix-bad-")
}

/// Pseudo-random bytes (xorshift64*), seeded from the clock; the seed is printed.
fn random_bytes(len: usize) -> Vec<u8> {
    let mut x = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("random bytes seed: {x:#x}");
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

/// Waits up to 3 s for the peer to close `stream`: a read returning EOF or a reset.
fn assert_closed_by_peer(mut stream: TcpStream, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(3);
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {} // the listener never writes, but tolerate it
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return, // reset: closed with our unread bytes in its buffer
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the node did not close the connection within 3 s"
        );
    }
}

/// Opens a raw TCP connection to node `id`'s peer port and writes `bytes` (a write error means
/// the node already closed the connection, which is fine).
fn send_raw(cluster: &ProcCluster, id: u64, bytes: &[u8]) -> TcpStream {
    let mut stream =
        TcpStream::connect(("127.0.0.1", cluster.node(id).peer_port)).expect("connect peer port");
    let _ = stream.write_all(bytes);
    stream
}

/// A length-delimited frame (4-byte big-endian length prefix) around `body`.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

#[test]
fn random_bytes_on_peer_port_do_not_hurt_the_node() {
    let mut cluster = ProcCluster::start(3, tempdir());
    let (leader, term) = cluster.wait_leader(LEADER_TIMEOUT);
    let follower = cluster.follower_of(leader);
    cluster.put_ok("before", b"1");

    // (a) Random bytes, then end of stream: however the first 4 bytes read as a length, the node
    // sees an oversized frame, an undecodable one, or a stream ending mid-frame.
    let stream = send_raw(&cluster, follower, &random_bytes(10 * 1024));
    let _ = stream.shutdown(Shutdown::Write);
    assert_closed_by_peer(stream, "random bytes");

    // (b) A length prefix of 4 GiB - 1, far above --max-frame-bytes, and nothing after it.
    let stream = send_raw(&cluster, follower, &[0xFF; 4]);
    assert_closed_by_peer(stream, "length prefix 0xFFFFFFFF");

    // (c) A complete frame of a valid length whose body is garbage: right version byte, then
    // bytes that are no Frame; then a wrong version byte.
    let mut body = vec![raftix::transport::PROTOCOL_VERSION];
    body.extend_from_slice(&[0xFF; 31]);
    let stream = send_raw(&cluster, follower, &framed(&body));
    assert_closed_by_peer(stream, "valid-length frame with a garbage body");
    let stream = send_raw(&cluster, follower, &framed(&[0x7F, 0, 1, 2, 3]));
    assert_closed_by_peer(stream, "frame with an unknown protocol version");

    // (d) A well-formed Hello from another cluster.
    let hello = encode_frame(&Frame::Hello {
        cluster: "someone-else".into(),
        from: leader,
        to: follower,
        http_addr: "127.0.0.1:1".into(),
        peer_addr: "127.0.0.1:2".into(),
        nonce: None,
    })
    .unwrap();
    let stream = send_raw(&cluster, follower, &framed(&hello));
    assert_closed_by_peer(stream, "Hello from a foreign cluster");

    // The node said why it closed each connection, and is still alive and well.
    let log_path = cluster.node(follower).log_path.clone();
    cluster.wait_for(
        Duration::from_secs(5),
        "5 'closing peer connection' warnings in the follower's log",
        || {
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            (log.matches("closing peer connection").count() >= 5).then_some(())
        },
    );
    assert!(cluster.is_alive(follower), "node {follower} died");
    let mut last = 0;
    for i in 0..5 {
        let (index, _) = cluster.put_ok(&format!("after-{i}"), b"2");
        last = last.max(index);
    }
    cluster.wait_for(
        Duration::from_secs(10),
        &format!("node {follower} to apply index {last}"),
        || (cluster.status(follower)?["applied"].as_u64()? >= last).then_some(()),
    );
    assert_eq!(cluster.get(follower, "after-4").as_deref(), Some(&b"2"[..]));
    let status = cluster.status_wait(follower);
    assert_eq!(status["role"], "FOLLOWER", "{status}");
    assert_eq!(
        status["term"].as_u64(),
        Some(term),
        "the garbage caused an election: {status}"
    );
}

type EntriesDb<'e> = Database<'e, U64<BigEndian>, Bytes>;

/// Opens the log environment in `log_dir` the way src/storage/lmdb.rs does (two named databases,
/// the node's map size), replaces the stored value of entry `index` by `damage(old value)`, and
/// returns the old value.
fn rewrite_log_entry(log_dir: &Path, index: u64, damage: impl FnOnce(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let mut options = EnvOpenOptions::new().read_txn_without_tls();
    options.map_size(MAP_SIZE).max_dbs(2);
    // SAFETY: the node that owns this environment has exited; nothing else has it open.
    let env = unsafe { options.open(log_dir) }.expect("open the log environment");
    let rtxn = env.read_txn().expect("read txn");
    let entries: EntriesDb<'_> = env
        .open_databases_and_commit(rtxn, |dbo, rtxn| -> Result<_, heed::Error> {
            let db = dbo.open_database::<U64<BigEndian>, Bytes>(rtxn, Some("entries"))?;
            Ok(CommitOrAbort::<_, Infallible>::Commit(db))
        })
        .expect("open the entries database")
        .unwrap_commit()
        .expect("the entries database exists");
    let mut wtxn = env.write_txn().expect("write txn");
    let old = entries
        .get(&wtxn, &index)
        .expect("read entry")
        .unwrap_or_else(|| panic!("no log entry {index}"))
        .to_vec();
    let new = damage(&old);
    entries.put(&mut wtxn, &index, &new).expect("write entry");
    wtxn.commit().expect("commit");
    drop(env);
    old
}

/// Starts a one-node cluster, writes 5 keys, stops it (SIGTERM) and returns it with the log index
/// of the third write.
fn stopped_node_with_data() -> (ProcCluster, u64) {
    let mut cluster = ProcCluster::start(1, tempdir());
    cluster.wait_leader(LEADER_TIMEOUT);
    let mut indexes = Vec::new();
    for i in 0..5 {
        indexes.push(
            cluster
                .put_ok(&format!("k{i}"), format!("value {i}").as_bytes())
                .0,
        );
    }
    cluster.stop(1);
    (cluster, indexes[2])
}

/// Starts node 1 of `cluster` on its (damaged) data dir and checks that it exits non-zero within
/// a few seconds, leaving every file of the data dir as it was. Returns its stderr.
fn assert_refuses_to_start(cluster: &mut ProcCluster, extra: &[&str]) -> String {
    let data_dir = cluster.node(1).data_dir.clone();
    let before = snapshot_dir(&data_dir);
    let (status, stderr) = cluster.run_expecting_exit(1, extra, EXIT_TIMEOUT);
    assert!(
        !status.success(),
        "the node started: {status}; stderr:\n{stderr}"
    );
    assert_eq!(status.code(), Some(1), "exit status; stderr:\n{stderr}");
    eprintln!("refused to start, as expected; stderr:\n{stderr}");
    let after = snapshot_dir(&data_dir);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "the failed start added or removed files"
    );
    for (path, bytes) in &before {
        assert!(
            after[path] == *bytes,
            "the failed start modified {}",
            path.display()
        );
    }
    stderr
}

#[test]
fn corrupt_data_dir_refuses_to_start() {
    let (mut cluster, index) = stopped_node_with_data();
    let log_dir = cluster.node(1).data_dir.join("log");
    rewrite_log_entry(&log_dir, index, |old| {
        let mut new = old.to_vec();
        *new.last_mut().unwrap() ^= 0xFF; // the last byte of the payload, after the CRC
        new
    });
    let stderr = assert_refuses_to_start(&mut cluster, &[]);
    assert!(
        stderr.contains("checksum") && stderr.contains(&format!("log entry {index}")),
        "stderr does not name the checksum failure of entry {index}:\n{stderr}"
    );
}

#[test]
fn truncated_entry_refuses_to_start() {
    let (mut cluster, index) = stopped_node_with_data();
    let log_dir = cluster.node(1).data_dir.join("log");
    rewrite_log_entry(&log_dir, index, |old| old[..3].to_vec());
    let stderr = assert_refuses_to_start(&mut cluster, &[]);
    assert!(
        stderr.contains(&format!("log entry {index}")) && stderr.contains("corrupt"),
        "stderr does not name the damaged entry {index}:\n{stderr}"
    );
}

#[test]
fn foreign_cluster_data_dir_refuses_to_start() {
    let mut cluster = ProcCluster::start_with(1, tempdir(), &["--cluster-name", "a"]);
    cluster.wait_leader(LEADER_TIMEOUT);
    cluster.put_ok("k", b"v");
    cluster.stop(1);
    let stderr = assert_refuses_to_start(&mut cluster, &["--cluster-name", "b"]);
    assert!(
        stderr.contains("\"a\"") && stderr.contains("\"b\""),
        "stderr does not name both cluster names:\n{stderr}"
    );
    // The refused start damaged nothing: with the right name the node comes back with its data.
    cluster.restart(1);
    cluster.wait_leader(LEADER_TIMEOUT);
    assert_eq!(cluster.get(1, "k").as_deref(), Some(&b"v"[..]));
}

#[test]
fn newer_format_refuses_to_start() {
    let (mut cluster, _) = stopped_node_with_data();
    let id_path = cluster.node(1).data_dir.join("raftix-identity.json");
    let mut identity: serde_json::Value =
        serde_json::from_slice(&fs::read(&id_path).expect("read identity")).expect("parse");
    let current = identity["format_version"].as_u64().expect("format_version");
    identity["format_version"] = (current + 1).into();
    fs::write(&id_path, serde_json::to_vec_pretty(&identity).unwrap()).expect("write identity");
    let stderr = assert_refuses_to_start(&mut cluster, &[]);
    assert!(
        stderr.contains(&format!("format version {}", current + 1))
            && stderr.contains(&format!("up to version {current}")),
        "stderr does not name both format versions:\n{stderr}"
    );
}

#[test]
fn bad_flags_are_reported_before_anything_starts() {
    let dir = tempdir();
    let ports = alloc_ports(2);
    let peer = format!("127.0.0.1:{}", ports[0]);
    let http = format!("127.0.0.1:{}", ports[1]);
    let cluster = format!("1={peer}");
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "bad port in --cluster",
            vec!["--listen-http", &http, "--cluster", "1=127.0.0.1:x"],
            "1=127.0.0.1:x",
        ),
        (
            "--id not in --cluster",
            vec!["--listen-http", &http, "--cluster", "2=127.0.0.1:7002"],
            "not a member",
        ),
        (
            "election timeout min >= max",
            vec![
                "--listen-http",
                &http,
                "--cluster",
                &cluster,
                "--election-timeout-min-ms",
                "300",
                "--election-timeout-max-ms",
                "200",
            ],
            "election",
        ),
        (
            "missing --listen-http",
            vec!["--cluster", &cluster],
            "listen",
        ),
        (
            "unknown flag",
            vec!["--listen-http", &http, "--cluster", &cluster, "--bogus"],
            "--bogus",
        ),
    ];
    for (i, (what, args, mention)) in cases.into_iter().enumerate() {
        let data_dir = dir.path().join(format!("never-created-{i}"));
        let mut cmd = Command::new(raftix_bin());
        cmd.arg("serve")
            .args(["--id", "1", "--listen-peer", &peer])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(&args);
        let out = cmd.output().expect("run raftix serve");
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("{what}: {stderr}");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{what}: exit status; stderr:\n{stderr}"
        );
        assert!(
            stderr.contains("error"),
            "{what}: no error message:\n{stderr}"
        );
        assert!(
            stderr.contains(mention),
            "{what}: stderr does not mention {mention:?}:\n{stderr}"
        );
        assert!(!data_dir.exists(), "{what}: the data dir was created");
    }
}

/// Restarting a node with other voters is refused (it could elect two leaders); an operator's
/// explicit `--force-new-cluster` turns one survivor of a lost quorum into a one-node cluster
/// with all its data.
#[test]
fn other_voters_are_refused_and_force_new_cluster_recovers_a_survivor() {
    let mut cluster = ProcCluster::start(3, tempfile::tempdir().expect("tempdir"));
    cluster.wait_leader(Duration::from_secs(10));
    for i in 0..5 {
        cluster.put_ok(&format!("k{i}"), b"kept");
    }
    cluster.wait_converged(6, Duration::from_secs(10));
    for id in cluster.ids() {
        cluster.stop(id);
    }
    let alone = format!("1=127.0.0.1:{}", cluster.node(1).peer_port);
    cluster.reconfigure(alone.clone(), Vec::new());
    let (status, stderr) = cluster.run_expecting_exit(1, &[], Duration::from_secs(10));
    assert!(!status.success(), "a changed voter set must be refused");
    assert!(
        stderr.contains("[1, 2, 3]") && stderr.contains("--force-new-cluster"),
        "{stderr}"
    );
    cluster.reconfigure(alone, vec!["--force-new-cluster".to_string()]);
    cluster.restart(1);
    cluster.wait_for(Duration::from_secs(10), "node 1 leads alone", || {
        cluster
            .status(1)
            .filter(|s| s["role"] == "LEADER")
            .map(|_| ())
    });
    for i in 0..5 {
        assert_eq!(
            cluster.get(1, &format!("k{i}")).as_deref(),
            Some(&b"kept"[..]),
            "k{i} survived"
        );
    }
    assert!(
        cluster.put(1, "after", b"recovery").acked().is_some(),
        "the recovered cluster takes writes"
    );
}

#[test]
fn a_second_serve_on_a_running_nodes_data_dir_is_refused_naming_its_pid() {
    let cluster = ProcCluster::start(3, tempdir());
    let (leader, term) = cluster.wait_leader(LEADER_TIMEOUT);
    cluster.put_ok("before", b"1");
    // Node 2 again, on its data dir but on other ports (as a second `raftix up` told to pick
    // other ports would start it): it must not open the LMDB envs nor campaign.
    let ports = alloc_ports(2);
    let mut second = Command::new(raftix_bin());
    let normal = cluster.command(2, &[]);
    let mut args = normal.get_args();
    while let Some(arg) = args.next() {
        second.arg(arg);
        let port = match arg.to_str() {
            Some("--listen-peer") => ports[0],
            Some("--listen-http") => ports[1],
            _ => continue,
        };
        args.next();
        second.arg(format!("127.0.0.1:{port}"));
    }
    let err_path = cluster.dir().join("second-serve.stderr");
    let mut child = second
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("spawn the second serve");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > EXIT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "a second serve on node 2's data dir still ran after {EXIT_TIMEOUT:?}; stderr:\n{}",
                fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = fs::read_to_string(&err_path).expect("read stderr");
    assert_eq!(
        status.code(),
        Some(1),
        "the second serve ran; stderr:\n{stderr}"
    );
    let pid = cluster.pid(2);
    assert!(
        stderr.contains(&format!("PID {pid}")) && stderr.contains("raftix.lock"),
        "the refusal must name the holder's PID {pid} and the lock file: {stderr}"
    );
    // The running cluster noticed nothing: same leader and term, writes still commit.
    let after = cluster.status_wait(leader);
    assert_eq!(
        (after["role"].as_str(), after["term"].as_u64()),
        (Some("LEADER"), Some(term)),
        "the cluster was disturbed: {after}"
    );
    cluster.put_ok("after", b"2");
    assert_eq!(cluster.get(2, "before").as_deref(), Some(&b"1"[..]));
}
