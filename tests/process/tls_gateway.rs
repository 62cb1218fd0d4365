//! The HTTPS gateway with real `raftix serve` processes: a 3-node cluster whose gateways
//! require client certificates serves the CLI over TLS, forwards and redirects to the leader
//! over TLS, and refuses plain HTTP, clients without a certificate and clients of another CA;
//! `optional` client auth; TLS configuration errors.

use crate::support::extra_proc;
use crate::support::process;
use crate::support::wait::child_exits;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use extra_proc::ExtraProc;
use process::{alloc_ports, https_client, raftix_bin, ProcCluster};
use raftix::tls::certs::{self, CertsRequest};
use raftix::tls::{http_client_config, ClientIdentity};
use reqwest::StatusCode;
use serde_json::Value;

const LEADER_TIMEOUT: Duration = Duration::from_secs(15);

fn tempdir() -> tempfile::TempDir {
    ProcCluster::temp_dir("raftix-tls-")
}

/// Test certificates for nodes 1..=n and the named clients, in `dir`.
fn make_certs(dir: &Path, nodes: u64, clients: &[&str]) {
    certs::generate(&CertsRequest {
        out: dir.to_owned(),
        nodes: (1..=nodes).collect(),
        hosts: certs::DEFAULT_HOSTS.iter().map(|h| h.to_string()).collect(),
        clients: clients.iter().map(|c| c.to_string()).collect(),
        days: 2,
        force: false,
    })
    .expect("generate certificates");
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_owned()
}

/// The flags of a node serving HTTPS with its certificate from `certs` (plus `more`).
fn tls_flags(certs: &Path, more: &[&str]) -> Vec<String> {
    let mut flags = vec![
        "--tls-cert".to_string(),
        path_str(&certs.join("node-{id}.pem")),
        "--tls-key".to_string(),
        path_str(&certs.join("node-{id}-key.pem")),
    ];
    flags.extend(more.iter().map(|s| s.to_string()));
    flags
}

fn client_identity(dir: &Path, name: &str) -> ClientIdentity {
    ClientIdentity {
        cert: certs::client_cert_path(dir, name),
        key: certs::client_key_path(dir, name),
    }
}

/// Runs the `raftix` CLI with `args`; `RAFTIX_*` variables of the environment are cleared.
fn cli(args: &[String]) -> Output {
    Command::new(raftix_bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("RAFTIX_ENDPOINTS")
        .env_remove("RAFTIX_CACERT")
        .env_remove("RAFTIX_CERT")
        .env_remove("RAFTIX_KEY")
        .env_remove("RAFTIX_TOKEN")
        .output()
        .expect("run raftix")
}

fn shown(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn https_cluster_with_required_client_certificates() {
    let dir = tempdir();
    let cert_dir = dir.path().join("certs");
    make_certs(&cert_dir, 3, &["admin"]);
    let other_dir = dir.path().join("other-ca");
    make_certs(&other_dir, 0, &["intruder"]);
    let ca = cert_dir.join(certs::CA_CERT);
    let admin = client_identity(&cert_dir, "admin");

    let harness_tls = http_client_config(Some(&ca), Some(&admin)).expect("client TLS");
    let flags = tls_flags(&cert_dir, &["--tls-client-ca", &path_str(&ca)]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let cluster = ProcCluster::start_https(3, tempdir(), &flags, https_client(harness_tls));
    let (leader, _) = cluster.wait_leader(LEADER_TIMEOUT);
    let follower = cluster.follower_of(leader);
    let client = cluster.client();
    let follower_url = client.base(follower);
    let leader_url = client.base(leader);
    assert!(follower_url.starts_with("https://"), "{follower_url}");

    let tls_args = |identity: Option<&ClientIdentity>, ca: &Path| {
        let mut a = args(&["--endpoints", &follower_url, "--cacert", &path_str(ca)]);
        if let Some(id) = identity {
            a.extend(args(&[
                "--cert",
                &path_str(&id.cert),
                "--key",
                &path_str(&id.key),
            ]));
        }
        a
    };

    // The CLI writes on a follower: it answers 307 to the leader's https:// URL, which the CLI
    // follows over TLS.
    let mut put = args(&["put", "greeting", "hello"]);
    put.extend(tls_args(Some(&admin), &ca));
    let out = cli(&put);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("OK"),
        "{}",
        shown(&out)
    );

    // Read back from the follower with --cacert (and the client certificate the nodes require).
    let mut get = args(&["get", "greeting"]);
    get.extend(tls_args(Some(&admin), &ca));
    let out = cli(&get);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello");

    // A write sent to the follower without ?redirect is forwarded to the leader over TLS: the
    // follower presents its node certificate, which the leader requires.
    let http = https_client(http_client_config(Some(&ca), Some(&admin)).expect("tls"));
    let resp = http
        .put(format!("{follower_url}/v1/kv/forwarded"))
        .body("through the follower")
        .send()
        .expect("PUT on the follower");
    let forwarded_to = resp
        .headers()
        .get("x-raftix-forwarded-to")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert_eq!(resp.status(), StatusCode::OK, "{:?}", resp.text());
    assert_eq!(forwarded_to.as_deref(), Some(leader_url.as_str()));
    assert_eq!(
        client.get(leader, "forwarded").as_deref(),
        Some(&b"through the follower"[..])
    );

    // Redirects and leader URLs name the leader's https:// address.
    let resp = http
        .put(format!("{follower_url}/v1/kv/r?redirect=true"))
        .body("x")
        .send()
        .expect("PUT with redirect");
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = resp.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert_eq!(location, format!("{leader_url}/v1/kv/r?redirect=true"));
    let body: Value = resp.json().expect("json");
    assert_eq!(body["leader"]["url"], leader_url.as_str());

    // Every member's published address is https, and the dashboard's view of the cluster
    // (which asks every node over TLS) reaches all of them.
    let view: Value = http
        .get(format!("{follower_url}/v1/cluster"))
        .send()
        .expect("cluster")
        .json()
        .expect("json");
    let members = view["members"].as_array().expect("members");
    assert_eq!(members.len(), 3, "{view}");
    for m in members {
        let addr = m["http_addr"].as_str().unwrap_or_default();
        assert!(addr.starts_with("https://127.0.0.1:"), "{view}");
    }
    let seen: Value = cluster.wait_for(Duration::from_secs(10), "dashboard view", || {
        let v: Value = http
            .get(format!("{follower_url}/api/status"))
            .send()
            .ok()?
            .json()
            .ok()?;
        let nodes = v["nodes"].as_array()?;
        (nodes.len() == 3 && nodes.iter().all(|n| n.get("error").is_none())).then_some(v)
    });
    assert_eq!(seen["leader"], leader, "{seen}");

    // Plain HTTP to the TLS port gets no answer.
    let plain = process::http_client()
        .get(format!(
            "http://127.0.0.1:{}/v1/status",
            cluster.node(follower).http_port
        ))
        .send();
    assert!(plain.is_err(), "plain HTTP must fail: {plain:?}");
    let out = cli(&args(&[
        "get",
        "greeting",
        "--endpoints",
        &format!("http://127.0.0.1:{}", cluster.node(follower).http_port),
        "--timeout-ms",
        "2000",
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));

    // Without a client certificate the handshake fails: exit 1, no value printed.
    let mut no_cert = args(&["get", "greeting", "--timeout-ms", "2000"]);
    no_cert.extend(tls_args(None, &ca));
    let out = cli(&no_cert);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(out.stdout.is_empty(), "{}", shown(&out));
    let resp = https_client(http_client_config(Some(&ca), None).expect("tls"))
        .get(format!("{follower_url}/v1/status"))
        .send();
    assert!(resp.is_err(), "no client certificate: {resp:?}");

    // A client certificate of another CA is refused.
    let intruder = client_identity(&other_dir, "intruder");
    let mut wrong_ca = args(&["get", "greeting", "--timeout-ms", "2000"]);
    wrong_ca.extend(tls_args(Some(&intruder), &ca));
    let out = cli(&wrong_ca);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(out.stdout.is_empty(), "{}", shown(&out));

    // A client that does not trust the cluster's CA refuses the nodes.
    let mut untrusting = args(&["get", "greeting", "--timeout-ms", "2000"]);
    untrusting.extend(tls_args(Some(&admin), &other_dir.join(certs::CA_CERT)));
    let out = cli(&untrusting);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.to_lowercase().contains("certificate"),
        "{}",
        shown(&out)
    );
}

#[test]
fn optional_client_auth_serves_clients_without_certificates() {
    let dir = tempdir();
    let cert_dir = dir.path().join("certs");
    make_certs(&cert_dir, 1, &["admin"]);
    let other_dir = dir.path().join("other-ca");
    make_certs(&other_dir, 0, &["intruder"]);
    let ca = cert_dir.join(certs::CA_CERT);
    let flags = tls_flags(
        &cert_dir,
        &[
            "--tls-client-ca",
            &path_str(&ca),
            "--tls-client-auth",
            "optional",
        ],
    );
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let anonymous = http_client_config(Some(&ca), None).expect("tls");
    let cluster = ProcCluster::start_https(1, tempdir(), &flags, https_client(anonymous));
    cluster.wait_leader(LEADER_TIMEOUT);
    let url = cluster.client().base(1);

    // RAFTIX_CACERT works like --cacert.
    let out = Command::new(raftix_bin())
        .args(["put", "k", "v", "--endpoints", &url])
        .env("RAFTIX_CACERT", &ca)
        .env_remove("RAFTIX_CERT")
        .env_remove("RAFTIX_KEY")
        .env_remove("RAFTIX_TOKEN")
        .output()
        .expect("run raftix");
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));

    let admin = client_identity(&cert_dir, "admin");
    let mut with_cert = args(&["get", "k", "--endpoints", &url, "--cacert", &path_str(&ca)]);
    with_cert.extend(args(&[
        "--cert",
        &path_str(&admin.cert),
        "--key",
        &path_str(&admin.key),
    ]));
    let out = cli(&with_cert);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "v");

    // A certificate that is presented must still chain to the client CA.
    let intruder = client_identity(&other_dir, "intruder");
    let mut bad = args(&["get", "k", "--endpoints", &url, "--cacert", &path_str(&ca)]);
    bad.extend(args(&[
        "--cert",
        &path_str(&intruder.cert),
        "--key",
        &path_str(&intruder.key),
    ]));
    bad.extend(args(&["--timeout-ms", "2000"]));
    let out = cli(&bad);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));

    // Plain HTTP to this HTTPS node: the error suggests https://.
    let plain = url.replacen("https://", "http://", 1);
    let out = cli(&args(&[
        "get",
        "k",
        "--endpoints",
        &plain,
        "--timeout-ms",
        "2000",
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("try {url}")),
        "{}",
        shown(&out)
    );
}

/// A node added later (its certificate made with the CA already in the directory) joins an
/// HTTPS cluster that requires client certificates: `serve --join https://...` and the
/// promotion after it use the node's own certificate and CA.
#[test]
fn a_node_with_a_certificate_of_the_same_ca_joins_an_https_cluster() {
    let dir = tempdir();
    let cert_dir = dir.path().join("certs");
    make_certs(&cert_dir, 3, &["admin"]);
    let ca = cert_dir.join(certs::CA_CERT);
    let flags = tls_flags(&cert_dir, &["--tls-client-ca", &path_str(&ca)]);
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let harness = http_client_config(Some(&ca), Some(&client_identity(&cert_dir, "admin")))
        .expect("client TLS");
    let http = https_client(harness.clone());
    let cluster = ProcCluster::start_https(3, tempdir(), &flag_refs, https_client(harness));
    let (leader, _) = cluster.wait_leader(LEADER_TIMEOUT);
    cluster.put_ok("before", b"joined later");

    // Node 4's certificate comes from the same CA, made while the cluster runs.
    let added = certs::generate(&CertsRequest {
        out: cert_dir.clone(),
        nodes: vec![4],
        hosts: vec!["127.0.0.1".into()],
        clients: vec![],
        days: 2,
        force: false,
    })
    .expect("node 4 certificate");
    assert!(!added.ca_created, "the CA in the directory is reused");

    let join_urls: Vec<String> = cluster
        .ids()
        .iter()
        .map(|&id| cluster.client().base(id))
        .collect();
    let mut join = vec!["--join".to_string(), join_urls.join(",")];
    join.extend(flags.iter().map(|f| f.replace("{id}", "4")));
    let ports = alloc_ports(2);
    let node4 = ExtraProc::spawn(4, cluster.dir(), ports[0], ports[1], &join);
    let leader_url = cluster.client().base(leader);
    let status: Value =
        cluster.wait_for(Duration::from_secs(30), "node 4 to become a voter", || {
            let s: Value = http
                .get(format!("{leader_url}/v1/status"))
                .send()
                .ok()?
                .json()
                .ok()?;
            s["members"].as_array()?.contains(&4.into()).then_some(s)
        });
    assert!(
        status["members"].as_array().is_some_and(|m| m.len() == 4),
        "{status}"
    );
    let node4_url = format!("https://127.0.0.1:{}", ports[1]);
    let value = cluster.wait_for(Duration::from_secs(10), "node 4 to serve the data", || {
        let resp = http
            .get(format!("{node4_url}/v1/kv/before?consistency=stale"))
            .send()
            .ok()?;
        resp.status()
            .is_success()
            .then(|| resp.bytes().ok())
            .flatten()
    });
    assert_eq!(&value[..], b"joined later", "{}", node4.tail());
}

/// `serve` with broken TLS settings: exit 2 naming the setting or file, data dir untouched.
#[test]
fn tls_configuration_errors_exit_2_before_starting() {
    let dir = tempdir();
    let cert_dir = dir.path().join("certs");
    make_certs(&cert_dir, 1, &[]);
    let data_dir = dir.path().join("data");
    let cert = path_str(&certs::node_cert_path(&cert_dir, 1));
    let key = path_str(&certs::node_key_path(&cert_dir, 1));
    let missing = path_str(&dir.path().join("missing.pem"));
    let serve = |extra: &[&str]| {
        let mut a = args(&[
            "serve",
            "--id",
            "1",
            "--data-dir",
            &path_str(&data_dir),
            "--listen-peer",
            "127.0.0.1:1",
            "--listen-http",
            "127.0.0.1:2",
            "--cluster",
            "1=127.0.0.1:1",
        ]);
        a.extend(args(extra));
        cli(&a)
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--tls-cert", &cert], "--tls-key"),
        (vec!["--tls-key", &key], "--tls-cert"),
        (vec!["--tls-client-ca", &cert], "--tls-cert"),
        (
            vec![
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--tls-client-auth",
                "required",
            ],
            "--tls-client-ca",
        ),
        (
            vec![
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--tls-client-auth",
                "sometimes",
            ],
            "sometimes",
        ),
        (
            vec!["--tls-cert", &missing, "--tls-key", &key],
            "missing.pem",
        ),
        (vec!["--tls-cert", &cert, "--tls-key", &cert], "node-1.pem"),
        (
            vec![
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--tls-client-ca",
                &missing,
            ],
            "missing.pem",
        ),
    ];
    for (extra, expected) in cases {
        let out = serve(&extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", shown(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(expected),
            "{extra:?}: expected {expected:?} in {}",
            shown(&out)
        );
        assert!(
            !data_dir.exists(),
            "{extra:?}: the data dir must not be created"
        );
    }
}

/// `raftix up --tls --nodes 1`: the node serves HTTPS with certificates made in DATA_DIR/certs,
/// which a second run reuses; Ctrl-C stops it cleanly.
#[test]
fn up_tls_serves_https_with_certificates_kept_in_the_data_dir() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::Instant;

    let tmp = tempdir();
    let data = tmp.path().join("data");
    let ca = data.join("certs").join(certs::CA_CERT);
    let mut first_ca: Option<Vec<u8>> = None;
    for run in 1..=2 {
        let ports = alloc_ports(2);
        let (peer, http) = (ports[0], ports[1]);
        let mut child = Command::new(raftix_bin())
            .args(["up", "--tls", "--nodes", "1"])
            .args(["--base-peer-port", &peer.to_string()])
            .args(["--base-http-port", &http.to_string()])
            .arg("--data-dir")
            .arg(&data)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn raftix up");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("first line");
        assert!(
            line.starts_with(&format!("node 1: https://127.0.0.1:{http}/")),
            "run {run}: {line}"
        );
        let ca_now = std::fs::read(&ca).expect("ca.pem made by up --tls");
        match &first_ca {
            None => first_ca = Some(ca_now),
            Some(first) => assert_eq!(first, &ca_now, "the second run reuses the CA"),
        }

        let url = format!("https://127.0.0.1:{http}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = cli(&args(&[
                "put",
                "k",
                "v",
                "--endpoints",
                &url,
                "--cacert",
                &path_str(&ca),
                "--timeout-ms",
                "1000",
            ]));
            if out.status.code() == Some(0) {
                break;
            }
            assert!(Instant::now() < deadline, "run {run}: {}", shown(&out));
            std::thread::sleep(Duration::from_millis(50));
        }
        let pid = i32::try_from(child.id()).expect("pid");
        // SAFETY: kill(2) on our own child, which has not been reaped.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let status = child_exits(
            &mut child,
            Duration::from_secs(20),
            "raftix up after Ctrl-C",
        );
        assert_eq!(status.code(), Some(0), "run {run}");
    }
}
