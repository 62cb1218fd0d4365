//! The client subcommands against a `raftix serve` process with access control: `--token` and
//! `RAFTIX_TOKEN` are sent as bearer tokens; without one the server refuses.

use crate::support::process;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use process::{cli_with_token as run, ProcCluster};

const ADMIN: &str = "cli-admin-secret";
const READER: &str = "cli-reader-secret";

#[test]
fn token_flag_and_env_authenticate_the_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tokens.toml");
    std::fs::write(
        &file,
        format!(
            "[[tokens]]\nname = \"ops\"\ntoken = \"{ADMIN}\"\nrole = \"admin\"\n\
             [[tokens]]\nname = \"viewer\"\ntoken = \"{READER}\"\nrole = \"read\"\n"
        ),
    )
    .expect("write token file");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let file = file.to_str().expect("utf-8").to_string();
    let cluster = ProcCluster::start_with(1, dir, &["--token-file", &file]);
    let endpoint = format!("127.0.0.1:{}", cluster.node(1).http_port);

    // --token: retried until the node elected itself.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, out, err) = run(&endpoint, None, &["put", "k", "v", "--token", ADMIN]);
        if code == 0 {
            assert!(out.starts_with("OK"), "{out}");
            break;
        }
        if Instant::now() > deadline {
            cluster.fail(&format!(
                "put with --token never succeeded: {code} {out} {err}"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // No token: refused, and the error says why.
    let (code, out, err) = run(&endpoint, None, &["get", "k"]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("token"), "{err}");
    // RAFTIX_TOKEN with a read token: reads work, writes are forbidden.
    let (code, out, err) = run(&endpoint, Some(READER), &["get", "k"]);
    assert_eq!((code, out.trim()), (0, "v"), "{err}");
    let (code, _, err) = run(&endpoint, Some(READER), &["put", "k", "w"]);
    assert_ne!(code, 0);
    assert!(err.contains("read"), "{err}");
    // The secrets are not in the node's log.
    let log = std::fs::read_to_string(&cluster.node(1).log_path).unwrap_or_default();
    assert!(!log.contains(ADMIN) && !log.contains(READER), "{log}");
    assert!(log.contains("access control on"), "{log}");
}
