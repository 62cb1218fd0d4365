//! Unit tests of defaults, TOML parsing, cluster parsing and every validation rule.

use std::collections::BTreeMap;
use std::path::Path;

use super::*;

fn cluster3() -> BTreeMap<u64, String> {
    (1..=3)
        .map(|i| (i, format!("127.0.0.1:{}", 7000 + i)))
        .collect()
}

fn valid() -> NodeConfig {
    NodeConfig::with_defaults(1, "/tmp/n1", "127.0.0.1:7001", "127.0.0.1:8001", cluster3())
}

/// Validates `c`, expecting an error about `key` whose message contains every one of `needles`.
fn rejects(c: NodeConfig, key: &str, needles: &[&str]) {
    let err = match c.validate() {
        Ok(()) => panic!("expected an error about {key}"),
        Err(e) => e,
    };
    assert_eq!(err.key(), Some(key), "wrong key in: {err}");
    let msg = err.to_string();
    for needle in needles {
        assert!(msg.contains(needle), "`{msg}` lacks `{needle}`");
    }
}

#[test]
fn defaults_are_the_documented_values_and_valid() {
    let c = valid();
    assert_eq!(c.cluster_name, "raftix");
    assert_eq!(c.election_timeout_min_ms, 150);
    assert_eq!(c.election_timeout_max_ms, 300);
    assert_eq!(c.heartbeat_interval_ms, 50);
    assert_eq!(c.max_entries_per_msg, 512);
    assert_eq!(c.max_bytes_per_msg, 1 << 20);
    assert_eq!(c.max_inflight, 64);
    assert_eq!(c.max_frame_bytes, 16 << 20);
    assert_eq!(c.log_map_size, 1 << 30);
    assert_eq!(c.sm_map_size, 1 << 30);
    assert!(c.pre_vote && c.check_quorum);
    assert_eq!(c.proposal_timeout_ms, 5000);
    assert_eq!(c.advertise_http(), "127.0.0.1:8001");
    assert!(c.validate().is_ok());
}

#[test]
fn minimal_toml_gets_defaults_and_integer_cluster_keys() {
    let text = r#"
        id = 2
        data_dir = "d"
        listen_peer = "0.0.0.0:7002"
        listen_http = "0.0.0.0:8002"
        advertise_http = "node2.example:8002"
        [cluster]
        1 = "node1.example:7001"
        2 = "node2.example:7002"
        3 = "node3.example:7003"
    "#;
    let c = match NodeConfig::from_toml_str(text, Path::new("t.toml")) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(c.id, 2);
    assert_eq!(
        c.cluster.get(&3).map(String::as_str),
        Some("node3.example:7003")
    );
    assert_eq!(c.advertise_http(), "node2.example:8002");
    assert_eq!(c.heartbeat_interval_ms, DEFAULT_HEARTBEAT_INTERVAL_MS);
    assert_eq!(c.peers().map(|(id, _)| id).collect::<Vec<_>>(), [1, 3]);
    let core = c.core_config();
    assert_eq!(core.initial.voters.len(), 3);
    assert_eq!(core.id, 2);
}

#[test]
fn unknown_toml_key_is_rejected_with_its_name() {
    let text = "id = 1\nheartbeat_ms = 10\n";
    let err = PartialConfig::from_toml_str(text, Path::new("x.toml")).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("heartbeat_ms"), "{msg}");
    assert!(msg.contains("x.toml"), "{msg}");
    let full = "id = 1\ndata_dir = \"d\"\nlisten_peer = \"a:1\"\nlisten_http = \"a:2\"\n\
                bogus = true\n[cluster]\n1 = \"a:1\"\n";
    let err = NodeConfig::from_toml_str(full, Path::new("x.toml")).unwrap_err();
    assert!(err.to_string().contains("bogus"), "{err}");
}

#[test]
fn wrongly_typed_toml_value_is_rejected() {
    let err = PartialConfig::from_toml_str("id = \"one\"\n", Path::new("x.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::ParseFile { .. }), "{err}");
}

#[test]
fn overlay_prefers_the_upper_layer_and_keeps_the_rest() {
    let file = PartialConfig {
        id: Some(1),
        heartbeat_interval_ms: Some(20),
        max_inflight: Some(8),
        ..PartialConfig::default()
    };
    let flags = PartialConfig {
        heartbeat_interval_ms: Some(30),
        pre_vote: Some(false),
        ..PartialConfig::default()
    };
    let merged = file.overlay(flags).expect("overlay");
    assert_eq!(merged.id, Some(1));
    assert_eq!(merged.heartbeat_interval_ms, Some(30));
    assert_eq!(merged.max_inflight, Some(8));
    assert_eq!(merged.pre_vote, Some(false));
}

#[test]
fn build_reports_each_missing_required_setting_by_flag() {
    let full = PartialConfig {
        id: Some(1),
        data_dir: Some("d".into()),
        listen_peer: Some("127.0.0.1:7001".into()),
        listen_http: Some("127.0.0.1:8001".into()),
        cluster: Some(cluster3()),
        ..PartialConfig::default()
    };
    assert!(full.clone().build().is_ok());
    type Remove = fn(&mut PartialConfig);
    let cases: [(&str, Remove); 5] = [
        ("--id", |p| p.id = None),
        ("--data-dir", |p| p.data_dir = None),
        ("--listen-peer", |p| p.listen_peer = None),
        ("--listen-http", |p| p.listen_http = None),
        ("--cluster", |p| p.cluster = None),
    ];
    for (flag, remove) in cases {
        let mut p = full.clone();
        remove(&mut p);
        let err = p.build().unwrap_err();
        assert!(matches!(err, ConfigError::Missing { .. }), "{err}");
        assert!(err.to_string().contains(flag), "{err} lacks {flag}");
    }
}

#[test]
fn parse_cluster_accepts_lists_and_names_bad_items() {
    let c = parse_cluster(" 1=127.0.0.1:7001, 2=host-b:7002,3=[::1]:7003 ,").unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!(c[&2], "host-b:7002");
    assert_eq!(c[&3], "[::1]:7003");
    for (text, bad_item, why) in [
        ("1=a:1,2a:2", "2a:2", "ID=HOST:PORT"),
        ("1=a:1,x=b:2", "x=b:2", "not a node id"),
        ("0=a:1", "0=a:1", "greater than 0"),
        ("1=a:1,1=b:2", "1=b:2", "more than once"),
        ("1=a", "1=a", "HOST:PORT"),
        ("1=a:99999", "1=a:99999", "port"),
        ("1=a:0", "1=a:0", "port"),
        ("1=:7001", "1=:7001", "host"),
        ("1=a b:7001", "1=a b:7001", "host"),
    ] {
        let err = parse_cluster(text).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&format!("`{bad_item}`")), "{text}: {msg}");
        assert!(msg.contains(why), "{text}: {msg}");
        assert!(msg.contains("--cluster"), "{text}: {msg}");
    }
}

#[test]
fn id_must_be_non_zero_and_a_member() {
    let mut c = valid();
    c.id = 0;
    rejects(c, "id", &["--id", "`0`"]);
    let mut c = valid();
    c.id = 7;
    rejects(c, "id", &["--id", "`7`", "1, 2, 3"]);
}

#[test]
fn cluster_must_be_non_empty_with_valid_distinct_addresses() {
    let mut c = valid();
    c.cluster.clear();
    c.id = 1;
    rejects(c, "cluster", &["--cluster"]);
    let mut c = valid();
    c.cluster.insert(0, "127.0.0.1:7009".into());
    rejects(c, "cluster", &["0=127.0.0.1:7009"]);
    let mut c = valid();
    c.cluster.insert(2, "127.0.0.1:7001".into());
    rejects(c, "cluster", &["2=127.0.0.1:7001", "node 1"]);
    let mut c = valid();
    c.cluster.insert(3, "nocolon".into());
    rejects(c, "cluster", &["3=nocolon"]);
}

#[test]
fn addresses_must_be_host_port() {
    let mut c = valid();
    c.listen_peer = "127.0.0.1".into();
    rejects(c, "listen_peer", &["--listen-peer", "`127.0.0.1`"]);
    let mut c = valid();
    c.listen_http = "127.0.0.1:http".into();
    rejects(c, "listen_http", &["--listen-http", "`127.0.0.1:http`"]);
    let mut c = valid();
    c.advertise_http = Some("[nope]:8001".into());
    rejects(c, "advertise_http", &["--advertise-http", "IPv6"]);
    let mut c = valid();
    c.advertise_http = Some("example.com:0".into());
    rejects(c, "advertise_http", &["must not be 0"]);
    let mut c = valid();
    c.listen_http = c.listen_peer.clone();
    rejects(c, "listen_http", &["--listen-peer"]);
    // Port 0 (any free port) is fine for a listener, and IPv6 works in brackets.
    let mut c = valid();
    c.listen_http = "[::]:0".into();
    assert!(c.validate().is_ok());
}

#[test]
fn timeouts_must_be_ordered_and_non_zero() {
    let mut c = valid();
    c.election_timeout_max_ms = 150;
    rejects(
        c,
        "election_timeout_max_ms",
        &["--election-timeout-max-ms", "`150`", "= 150"],
    );
    let mut c = valid();
    c.heartbeat_interval_ms = 150;
    rejects(
        c,
        "heartbeat_interval_ms",
        &["--heartbeat-interval-ms", "`150`"],
    );
    let mut c = valid();
    c.election_timeout_min_ms = 0;
    rejects(
        c,
        "election_timeout_min_ms",
        &["--election-timeout-min-ms", "`0`"],
    );
    let mut c = valid();
    c.heartbeat_interval_ms = 0;
    rejects(c, "heartbeat_interval_ms", &["greater than 0"]);
    let mut c = valid();
    c.proposal_timeout_ms = 0;
    rejects(c, "proposal_timeout_ms", &["--proposal-timeout-ms"]);
}

#[test]
fn client_size_limits_must_fit_lmdb_and_frames() {
    let mut c = valid();
    c.max_key_bytes = 512;
    rejects(c, "max_key_bytes", &["LMDB"]);
    let mut c = valid();
    c.max_value_bytes = c.max_frame_bytes;
    rejects(c, "max_value_bytes", &["--max-frame-bytes"]);
    let mut c = valid();
    c.max_value_bytes = 0;
    rejects(c, "max_value_bytes", &["greater than 0"]);
    let mut c = valid();
    c.max_value_bytes = 4 << 20;
    c.max_key_bytes = 64;
    assert!(
        c.validate().is_ok(),
        "smaller keys and bigger values within the frame are fine"
    );
}

#[test]
fn sizes_must_be_non_zero_and_messages_fit_frames() {
    type Set = fn(&mut NodeConfig);
    let zeroes: [(&str, Set); 6] = [
        ("max_entries_per_msg", |c| c.max_entries_per_msg = 0),
        ("max_bytes_per_msg", |c| c.max_bytes_per_msg = 0),
        ("max_inflight", |c| c.max_inflight = 0),
        ("max_frame_bytes", |c| c.max_frame_bytes = 0),
        ("log_map_size", |c| c.log_map_size = 0),
        ("sm_map_size", |c| c.sm_map_size = 0),
    ];
    for (key, zero) in zeroes {
        let mut c = valid();
        zero(&mut c);
        rejects(c, key, &[&flag_of(key), "`0`"]);
    }
    let mut c = valid();
    c.max_bytes_per_msg = c.max_frame_bytes;
    rejects(c, "max_bytes_per_msg", &["--max-frame-bytes", "16777216"]);
}

#[test]
fn names_must_be_non_empty() {
    let mut c = valid();
    c.cluster_name = " ".into();
    rejects(c, "cluster_name", &["--cluster-name"]);
    let mut c = valid();
    c.data_dir = "".into();
    rejects(c, "data_dir", &["--data-dir"]);
}

fn with_tokens(extra: &str) -> Result<NodeConfig, ConfigError> {
    let text = format!(
        "id = 1\ndata_dir = \"d\"\nlisten_peer = \"127.0.0.1:7001\"\nlisten_http = \"127.0.0.1:8001\"\n\
         [cluster]\n1 = \"127.0.0.1:7001\"\n{extra}"
    );
    NodeConfig::from_toml_str(&text, Path::new("x.toml"))
}

#[test]
fn tokens_parse_and_debug_redacts_the_secrets() {
    let config = with_tokens(
        "[[tokens]]\nname = \"ops\"\ntoken = \"very-secret-admin\"\nrole = \"admin\"\n\
         [[tokens]]\nname = \"app\"\ntoken = \"very-secret-app\"\nrole = \"write\"\nprefix = \"app/\"\n",
    )
    .unwrap();
    assert!(config.auth_enabled());
    assert_eq!(config.tokens[1].role, super::TokenRole::Write);
    assert_eq!(config.tokens[1].prefix.as_deref(), Some("app/"));
    let debug = format!("{config:?} {config:#?}");
    assert!(!debug.contains("very-secret"), "{debug}");
    assert!(
        debug.contains("ops") && debug.contains("<redacted>"),
        "{debug}"
    );
    assert!(!with_tokens("").unwrap().auth_enabled());
}

#[test]
fn bad_tokens_are_refused_without_quoting_the_secret() {
    for (extra, why) in [
        (
            "[[tokens]]\nname = \"a\"\ntoken = \"short\"\nrole = \"read\"\n",
            "at least 8",
        ),
        (
            "[[tokens]]\nname = \"a\"\ntoken = \"secret-one\"\nrole = \"admin\"\nprefix = \"x\"\n",
            "admin token cannot have a prefix",
        ),
        (
            "[[tokens]]\nname = \"a\"\ntoken = \"secret-one\"\nrole = \"read\"\n\
             [[tokens]]\nname = \"a\"\ntoken = \"secret-two\"\nrole = \"read\"\n",
            "unique",
        ),
        (
            "[[tokens]]\nname = \"a\"\ntoken = \"secret-one\"\nrole = \"read\"\n\
             [[tokens]]\nname = \"b\"\ntoken = \"secret-one\"\nrole = \"read\"\n",
            "same secret",
        ),
    ] {
        let err = with_tokens(extra).unwrap_err().to_string();
        assert!(err.contains(why), "{err}");
        assert!(!err.contains("secret-"), "{err}");
    }
    let err = with_tokens("[[tokens]]\nname = \"a\"\ntoken = \"secret-one\"\nrole = \"root\"\n")
        .unwrap_err();
    assert!(matches!(err, ConfigError::ParseFile { .. }), "{err}");
}

#[test]
fn token_file_must_be_private_and_adds_its_tokens() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.toml");
    std::fs::write(
        &path,
        "[[tokens]]\nname = \"ops\"\ntoken = \"file-secret-123\"\nrole = \"admin\"\n",
    )
    .unwrap();
    let partial = PartialConfig {
        id: Some(1),
        data_dir: Some("d".into()),
        listen_peer: Some("127.0.0.1:7001".into()),
        listen_http: Some("127.0.0.1:8001".into()),
        cluster: Some(BTreeMap::from([(1, "127.0.0.1:7001".to_string())])),
        token_file: Some(path.clone()),
        ..PartialConfig::default()
    };
    for mode in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = partial.clone().build().unwrap_err();
        assert!(matches!(err, ConfigError::TokenFile { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("chmod 600") && text.contains("--token-file"),
            "{text}"
        );
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = partial.clone().build().unwrap();
    assert_eq!(config.tokens.len(), 1);
    assert_eq!(config.tokens[0].name, "ops");
    // A malformed file is reported by line, without its content.
    std::fs::write(
        &path,
        "[[tokens]]\nname = \"x\"\ntoken = \"leaky-secret\"\nrole = 5\n",
    )
    .unwrap();
    let err = partial.build().unwrap_err().to_string();
    assert!(
        err.contains("line") && !err.contains("leaky-secret"),
        "{err}"
    );
}

/// A config file with the TLS keys `tls` (top-level, before `[cluster]`).
fn with_tls(tls: &str) -> Result<NodeConfig, ConfigError> {
    let text = format!(
        "id = 1\ndata_dir = \"d\"\nlisten_peer = \"127.0.0.1:7001\"\nlisten_http = \"127.0.0.1:8001\"\n\
         {tls}\n[cluster]\n1 = \"127.0.0.1:7001\"\n"
    );
    PartialConfig::from_toml_str(&text, Path::new("x.toml"))?.build()
}

#[test]
fn tls_keys_parse_and_combine() {
    let plain = with_tls("").unwrap();
    assert!(!plain.gateway_https());
    assert_eq!(plain.client_auth(), ClientAuth::None);
    assert_eq!(plain.published_http_addr(), "127.0.0.1:8001");
    assert_eq!(plain.http_base_url(), "http://127.0.0.1:8001");

    let https = with_tls("tls_cert = \"c.pem\"\ntls_key = \"k.pem\"").unwrap();
    assert!(https.gateway_https());
    assert_eq!(https.client_auth(), ClientAuth::None);
    assert_eq!(https.gateway_trust_ca(), None);
    assert_eq!(https.published_http_addr(), "https://127.0.0.1:8001");
    assert_eq!(https.http_base_url(), "https://127.0.0.1:8001");

    let mtls =
        with_tls("tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\ntls_client_ca = \"ca.pem\"").unwrap();
    assert_eq!(
        mtls.client_auth(),
        ClientAuth::Required,
        "required by default with a client CA"
    );
    assert_eq!(mtls.gateway_trust_ca(), Some(Path::new("ca.pem")));
    let optional = with_tls(
        "tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\ntls_client_ca = \"ca.pem\"\n\
         tls_client_auth = \"optional\"\ntls_ca = \"peers.pem\"",
    )
    .unwrap();
    assert_eq!(optional.client_auth(), ClientAuth::Optional);
    assert_eq!(optional.gateway_trust_ca(), Some(Path::new("peers.pem")));

    let refused = [
        ("tls_cert = \"c.pem\"", "tls_cert", "--tls-key"),
        ("tls_key = \"k.pem\"", "tls_key", "--tls-cert"),
        ("tls_ca = \"ca.pem\"", "tls_ca", "--tls-cert"),
        (
            "tls_client_auth = \"none\"",
            "tls_client_auth",
            "--tls-cert",
        ),
        (
            "tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\ntls_client_auth = \"optional\"",
            "tls_client_auth",
            "--tls-client-ca",
        ),
    ];
    for (tls, key, needle) in refused {
        let err = with_tls(tls).expect_err(tls);
        assert_eq!(err.key(), Some(key), "{tls}: {err}");
        assert!(err.to_string().contains(needle), "{tls}: {err}");
    }
    let err = with_tls("tls_client_auth = \"sometimes\"").expect_err("unknown mode");
    assert!(err.to_string().contains("sometimes"), "{err}");
}
