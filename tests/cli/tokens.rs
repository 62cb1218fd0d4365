//! `raftix token create|list|revoke` against a `raftix serve` process: bootstrap of access
//! control with the first admin token, the secret printed once, scoped and expiring tokens,
//! revocation, and the secrets kept out of the log and the node's output.

use crate::support::process;

use std::time::{Duration, Instant};

use process::{cli_with_token as run, ProcCluster};

#[test]
fn tokens_are_created_listed_used_and_revoked_from_the_command_line() {
    let cluster = ProcCluster::start(1, tempfile::tempdir().expect("tempdir"));
    cluster.wait_leader(Duration::from_secs(20));
    let endpoint = format!("127.0.0.1:{}", cluster.node(1).http_port);

    // Usage errors: a bad role or lifetime never reaches the server.
    for line in [
        "token create --name x --role owner",
        "token create --name x --role read --expires-in 0",
        "token create --name x --role read --expires-in 5x",
    ] {
        let args: Vec<&str> = line.split(' ').collect();
        let (code, _, err) = run(&endpoint, None, &args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
    // The first token must be an admin token (exit 5, and the message says why).
    let (code, _, err) = run(
        &endpoint,
        None,
        &["token", "create", "--name", "viewer", "--role", "read"],
    );
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("lock you out"), "{err}");

    // Bootstrap: the secret alone on stdout, what was created on stderr.
    let deadline = Instant::now() + Duration::from_secs(20);
    let root = loop {
        let (code, out, err) = run(
            &endpoint,
            None,
            &["token", "create", "--name", "root", "--role", "admin"],
        );
        if code == 0 {
            assert!(err.contains("shown only this once"), "{err}");
            assert!(err.contains("root") && err.contains("admin"), "{err}");
            break out;
        }
        assert!(Instant::now() < deadline, "create root: {code} {out} {err}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(root.lines().count(), 1, "{root}");
    let root = root.trim().to_string();
    assert!(root.starts_with("rxt_"), "{root}");

    // Access control is on: nothing without a token.
    let (code, _, err) = run(&endpoint, None, &["put", "k", "v"]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("401"), "{err}");

    // A scoped, expiring write token, created with RAFTIX_TOKEN; JSON output.
    let (code, out, err) = run(
        &endpoint,
        Some(&root),
        &[
            "token",
            "create",
            "--name",
            "ci",
            "--role",
            "write",
            "--prefix",
            "ci/",
            "--expires-in",
            "1h",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let created: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(created["prefix"], serde_json::json!("ci/"));
    assert!(created["expires_at"].is_string(), "{created}");
    let ci = created["token"].as_str().expect("secret").to_string();
    // The same name again: refused (exit 5).
    let (code, _, err) = run(
        &endpoint,
        Some(&root),
        &["token", "create", "--name", "ci", "--role", "read"],
    );
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("exists"), "{err}");

    // Use: within its prefix only; a read/write token cannot manage tokens.
    let (code, out, err) = run(&endpoint, None, &["put", "ci/x", "1", "--token", &ci]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = run(&endpoint, Some(&ci), &["put", "other", "1"]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("403"), "{err}");
    let (code, _, err) = run(&endpoint, Some(&ci), &["token", "list"]);
    assert_eq!(code, 5, "{err}");

    // The list: every token, no secret.
    let (code, out, err) = run(&endpoint, Some(&root), &["token", "list"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("EXPIRES"),
        "{out}"
    );
    let ci_row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&ci_row[..4], ["ci", "write", "ci/", "replicated"], "{out}");
    assert!(ci_row[4].ends_with('Z'), "{out}");
    let root_row: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(root_row, ["root", "admin", "-", "replicated", "-"], "{out}");
    assert!(!out.contains(&root) && !out.contains(&ci));

    // The log names the token entries, without secrets.
    let (code, out, err) = run(&endpoint, Some(&root), &["log"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("token put root role=admin"), "{out}");
    assert!(out.contains("token put ci role=write"), "{out}");
    assert!(!out.contains(&root) && !out.contains(&ci), "{out}");

    // Revocation: the token is refused at once (one node), a second revocation is exit 5.
    let (code, out, err) = run(&endpoint, Some(&root), &["token", "revoke", "ci"]);
    assert_eq!((code, out.trim()), (0, "OK revoked ci"), "{err}");
    let (code, out, err) = run(&endpoint, Some(&ci), &["get", "ci/x"]);
    assert_eq!(code, 5, "{out}{err}");
    let (code, _, err) = run(&endpoint, Some(&root), &["token", "revoke", "ci"]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("404"), "{err}");

    // The node never logged a secret.
    let log = std::fs::read_to_string(&cluster.node(1).log_path).unwrap_or_default();
    assert!(log.contains("replicated token created"), "{log}");
    assert!(!log.contains(&root) && !log.contains(&ci), "{log}");
}
