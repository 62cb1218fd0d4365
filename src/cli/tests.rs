//! Unit tests of flag parsing: `serve` flags over the config file, and `up`'s node plans.

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};

use clap::Parser;

use super::up::check_ports_free;
use super::*;
use crate::config::ConfigError;

pub(super) fn serve_args(args: &[&str]) -> ServeArgs {
    let argv = ["raftix", "serve"].iter().chain(args);
    match Cli::try_parse_from(argv) {
        Ok(Cli {
            command: Command::Serve(s),
        }) => *s,
        other => panic!("not a serve command: {other:?}"),
    }
}

fn up_args(args: &[&str]) -> Result<UpArgs, clap::Error> {
    let argv = ["raftix", "up"].iter().chain(args);
    match Cli::try_parse_from(argv)?.command {
        Command::Up(u) => Ok(u),
        other => panic!("not an up command: {other:?}"),
    }
}

pub(super) const REQUIRED: [&str; 10] = [
    "--id",
    "2",
    "--data-dir",
    "/tmp/x",
    "--listen-peer",
    "127.0.0.1:7002",
    "--listen-http",
    "127.0.0.1:8002",
    "--cluster",
    "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003",
];

#[test]
fn flags_alone_give_defaults() {
    let c = serve_args(&REQUIRED).into_config().unwrap();
    assert_eq!(c.id, 2);
    assert_eq!(c.cluster.len(), 3);
    assert_eq!(c.election_timeout_min_ms, 150);
    assert!(c.pre_vote && c.check_quorum);
    assert_eq!(c.advertise_http(), "127.0.0.1:8002");
}

#[test]
fn flags_override_the_file_and_the_file_fills_the_rest() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let toml = r#"
        id = 1
        data_dir = "/from/file"
        listen_peer = "127.0.0.1:7001"
        listen_http = "127.0.0.1:8001"
        heartbeat_interval_ms = 40
        max_inflight = 7
        pre_vote = true
        cluster_name = "filecluster"
        [cluster]
        1 = "127.0.0.1:7001"
    "#;
    file.write_all(toml.as_bytes()).unwrap();
    let path = file.path().to_str().unwrap();
    let c = serve_args(&[
        "--config",
        path,
        "--data-dir",
        "/from/flag",
        "--heartbeat-interval-ms",
        "60",
        "--no-pre-vote",
    ])
    .into_config()
    .unwrap();
    assert_eq!(c.id, 1);
    assert_eq!(c.data_dir, std::path::Path::new("/from/flag"));
    assert_eq!(c.heartbeat_interval_ms, 60);
    assert_eq!(c.max_inflight, 7);
    assert_eq!(c.cluster_name, "filecluster");
    assert!(!c.pre_vote);
    assert!(c.check_quorum);
}

#[test]
fn flags_replace_the_whole_cluster_of_the_file() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"[cluster]\n1 = \"127.0.0.1:7001\"\n9 = \"127.0.0.1:7009\"\n")
        .unwrap();
    let path = file.path().to_str().unwrap();
    let mut args = REQUIRED.to_vec();
    args.extend(["--config", path]);
    let c = serve_args(&args).into_config().unwrap();
    assert!(!c.cluster.contains_key(&9));
}

#[test]
fn snapshot_and_learner_flags_reach_the_config_and_override_the_file() {
    let c = serve_args(&REQUIRED).into_config().unwrap();
    assert_eq!(c.snapshot_entries, crate::config::DEFAULT_SNAPSHOT_ENTRIES);
    assert!(c.learners.is_empty());

    let mut file = tempfile::NamedTempFile::new().unwrap();
    let toml = "snapshot_entries = 7\nsnapshot_bytes = 8\nsnapshot_keep = 9\nlearners = [1]\n";
    file.write_all(toml.as_bytes()).unwrap();
    let path = file.path().to_str().unwrap();
    let mut args = REQUIRED.to_vec();
    args.extend(["--config", path]);
    let c = serve_args(&args).into_config().unwrap();
    assert_eq!(
        (c.snapshot_entries, c.snapshot_bytes, c.snapshot_keep),
        (7, 8, 9)
    );
    assert_eq!(c.learners.iter().copied().collect::<Vec<_>>(), [1]);

    args.extend([
        "--snapshot-entries",
        "100",
        "--snapshot-bytes",
        "0",
        "--snapshot-keep",
        "10",
        "--learners",
        "2,3",
    ]);
    let c = serve_args(&args).into_config().unwrap();
    assert_eq!(
        (c.snapshot_entries, c.snapshot_bytes, c.snapshot_keep),
        (100, 0, 10)
    );
    assert_eq!(c.learners.iter().copied().collect::<Vec<_>>(), [2, 3]);
    let core = c.core_config();
    assert_eq!(core.initial.voters.iter().copied().collect::<Vec<_>>(), [1]);

    let mut args = REQUIRED.to_vec();
    args.extend(["--learners", "4"]);
    let err = serve_args(&args).into_config().unwrap_err();
    assert_eq!(err.key(), Some("learners"), "{err}");
}

#[test]
fn join_needs_no_cluster_and_is_ignored_on_a_used_data_dir() {
    let argv = ["raftix", "serve", "--learner"];
    assert!(Cli::try_parse_from(argv).is_err(), "--learner needs --join");

    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let joining = [
        "--id",
        "4",
        "--data-dir",
        data_dir,
        "--listen-peer",
        "127.0.0.1:7004",
        "--listen-http",
        "127.0.0.1:8004",
        "--join",
        "127.0.0.1:8001,http://127.0.0.1:8002",
    ];
    let args = serve_args(&joining);
    assert_eq!(
        args.join.as_deref(),
        Some(
            &[
                "http://127.0.0.1:8001".to_string(),
                "http://127.0.0.1:8002".to_string()
            ][..]
        )
    );
    // A data dir with Raft data but neither a join record nor --cluster: told to give --cluster.
    std::fs::create_dir_all(dir.path().join("log")).unwrap();
    let err = join::prepare(&args).unwrap_err();
    assert!(err.to_string().contains("give --cluster"), "{err}");
    // With --cluster it just starts, without asking for a promotion.
    let mut with_cluster = joining.to_vec();
    with_cluster.extend(["--cluster", "4=127.0.0.1:7004"]);
    let (config, promotion) = join::prepare(&serve_args(&with_cluster)).unwrap();
    assert_eq!(config.cluster.len(), 1);
    assert!(promotion.is_none());
}

#[test]
fn missing_or_unreadable_file_and_bad_flags_are_errors() {
    let err = serve_args(&["--config", "/nonexistent/raftix.toml"])
        .into_config()
        .unwrap_err();
    assert!(matches!(err, ConfigError::ReadFile { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/raftix.toml"));

    let err = serve_args(&REQUIRED[..8]).into_config().unwrap_err();
    assert!(err.to_string().contains("--cluster"), "{err}");

    // A bad --cluster is refused while the flags are parsed (a usage error), naming the item.
    let mut args = REQUIRED.to_vec();
    args[9] = "1=127.0.0.1:7001,two=127.0.0.1:7002";
    let argv = ["raftix", "serve"].iter().chain(args.iter());
    let err = Cli::try_parse_from(argv).unwrap_err();
    assert!(err.to_string().contains("`two=127.0.0.1:7002`"), "{err}");

    let mut args = REQUIRED.to_vec();
    args.extend(["--max-bytes-per-msg", "100", "--max-frame-bytes", "100"]);
    let err = serve_args(&args).into_config().unwrap_err();
    assert_eq!(err.key(), Some("max_bytes_per_msg"), "{err}");
}

#[test]
fn up_nodes_must_be_odd_and_at_most_nine() {
    assert_eq!(up_args(&[]).unwrap().nodes, 3);
    assert_eq!(up_args(&["--nodes", "9"]).unwrap().nodes, 9);
    for bad in ["0", "2", "11", "x"] {
        let err = up_args(&["--nodes", bad]).unwrap_err();
        assert!(err.to_string().contains("--nodes"), "{err}");
    }
}

#[test]
fn up_plans_valid_serve_command_lines() {
    let args = up_args(&[
        "--nodes",
        "5",
        "--data-dir",
        "/tmp/up",
        "--heartbeat-interval-ms",
        "20",
    ]);
    let plans = args.unwrap().plan().unwrap();
    assert_eq!(plans.len(), 5);
    let last = &plans[4];
    assert_eq!((last.id, last.peer_port, last.http_port), (5, 7005, 8005));
    assert_eq!(last.data_dir, std::path::Path::new("/tmp/up/node5"));
    assert_eq!(plans[0].url(), "http://127.0.0.1:8001/");
    let argv: Vec<&str> = last.args.iter().filter_map(|a| a.to_str()).collect();
    let serve: Vec<&str> = argv[1..].to_vec();
    let c = serve_args(&serve).into_config().unwrap();
    assert_eq!(c.id, 5);
    assert_eq!(c.cluster.len(), 5);
    assert_eq!(c.cluster[&3], "127.0.0.1:7003");
    assert_eq!(c.heartbeat_interval_ms, 20);
}

#[test]
fn up_tls_plans_https_nodes_with_certificates_in_the_data_dir() {
    let plans = up_args(&["--tls", "--data-dir", "/tmp/up"])
        .unwrap()
        .plan()
        .unwrap();
    assert_eq!(plans[1].url(), "https://127.0.0.1:8002/");
    let argv: Vec<&str> = plans[1].args.iter().filter_map(|a| a.to_str()).collect();
    let c = serve_args(&argv[1..]).into_config().unwrap();
    assert!(c.gateway_https());
    assert_eq!(
        c.tls_cert.as_deref(),
        Some(std::path::Path::new("/tmp/up/certs/node-2.pem"))
    );
    assert_eq!(
        c.tls_key.as_deref(),
        Some(std::path::Path::new("/tmp/up/certs/node-2-key.pem"))
    );
    assert_eq!(
        c.gateway_trust_ca(),
        Some(std::path::Path::new("/tmp/up/certs/ca.pem"))
    );
    assert_eq!(
        c.client_auth(),
        crate::tls::ClientAuth::None,
        "browsers need no certificate"
    );
    let plain = up_args(&[]).unwrap().plan().unwrap();
    assert!(
        !plain[0].args.iter().any(|a| a == "--tls-cert"),
        "plain by default"
    );
}

#[test]
fn up_rejects_overlapping_or_overflowing_ports_and_bad_timing() {
    let err = up_args(&["--base-peer-port", "8000"])
        .unwrap()
        .plan()
        .unwrap_err();
    assert!(err.to_string().contains("overlap"), "{err}");
    assert_eq!(err.exit_code(), EXIT_USAGE);
    let err = up_args(&["--base-http-port", "65534"])
        .unwrap()
        .plan()
        .unwrap_err();
    assert!(err.to_string().contains("--base-http-port"), "{err}");
    let err = up_args(&["--heartbeat-interval-ms", "500"])
        .unwrap()
        .plan()
        .unwrap_err();
    assert!(err.to_string().contains("--heartbeat-interval-ms"), "{err}");
    assert_eq!(err.exit_code(), EXIT_USAGE);
}

#[test]
fn up_names_a_busy_port() {
    let Ok(busy) = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)) else {
        panic!("cannot bind a test port");
    };
    let port = busy.local_addr().unwrap().port();
    // Put node 1's HTTP port on the busy one; peer ports far away.
    let base_peer = if port > 30000 { 20000 } else { 40000 };
    let args = up_args(&[
        "--nodes",
        "1",
        "--base-http-port",
        &port.to_string(),
        "--base-peer-port",
        &base_peer.to_string(),
    ]);
    let plans = args.unwrap().plan().unwrap();
    let err = check_ports_free(&plans).unwrap_err();
    assert!(err.to_string().contains(&format!("port {port}")), "{err}");
    assert_eq!(err.exit_code(), EXIT_FAILURE);
}

#[test]
fn http_limit_flags_reach_the_config() {
    let mut args: Vec<&str> = REQUIRED.to_vec();
    args.extend([
        "--max-body-bytes",
        "65536",
        "--max-connections",
        "64",
        "--max-connection-rate",
        "8",
        "--client-request-timeout-ms",
        "700",
        "--client-disconnect-timeout-ms",
        "300",
        "--client-body-timeout-ms",
        "900",
        "--max-inflight-requests",
        "32",
        "--max-inflight-per-client",
        "4",
    ]);
    let c = serve_args(&args).into_config().expect("valid");
    assert_eq!(
        (c.max_body_bytes, c.max_connections, c.max_connection_rate),
        (65536, 64, 8)
    );
    assert_eq!(
        (
            c.client_request_timeout_ms,
            c.client_disconnect_timeout_ms,
            c.client_body_timeout_ms
        ),
        (700, 300, 900)
    );
    assert_eq!(
        (c.max_inflight_requests, c.max_inflight_per_client),
        (32, 4)
    );
}
