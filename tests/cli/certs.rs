//! `raftix certs` as a user runs it: the files it writes, their modes, refusing to overwrite,
//! reusing the CA to add a node later, and bad input.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use raftix::tls::{self, certs};

fn raftix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_raftix"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap_or_else(|e| panic!("cannot run raftix: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn certs_makes_a_ca_nodes_and_clients_then_adds_a_node_with_the_same_ca() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out_dir = tmp.path().join("certs");
    let dir = out_dir.to_str().expect("utf-8 path");
    let out = raftix(&[
        "certs",
        "--out",
        dir,
        "--nodes",
        "1,2,3",
        "--clients",
        "admin",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut expected = vec!["ca.pem".to_string(), "ca-key.pem".to_string()];
    for id in 1..=3 {
        expected.push(format!("node-{id}.pem"));
        expected.push(format!("node-{id}-key.pem"));
    }
    expected.extend([
        "client-admin.pem".to_string(),
        "client-admin-key.pem".to_string(),
    ]);
    for name in &expected {
        let path = out_dir.join(name);
        let want = if name.ends_with("-key.pem") {
            0o600
        } else {
            0o644
        };
        assert_eq!(mode(&path), want, "{name}");
        assert!(
            text(&out).contains(&path.display().to_string()),
            "{name} listed"
        );
    }
    for id in 1..=3 {
        assert_eq!(
            tls::cert_file_node_id(&certs::node_cert_path(&out_dir, id)).expect("node id"),
            id
        );
    }

    // Running it again would overwrite node 1: refused, exit 2, nothing changed.
    let before = std::fs::read(out_dir.join("node-1-key.pem")).expect("key");
    let again = raftix(&["certs", "--out", dir, "--nodes", "1,4"]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(
        text(&again).contains("node-1.pem") && text(&again).contains("--force"),
        "{}",
        text(&again)
    );
    assert!(!out_dir.join("node-4.pem").exists());
    assert_eq!(
        std::fs::read(out_dir.join("node-1-key.pem")).expect("key"),
        before
    );

    // Adding node 4 later reuses the CA: node 1's configuration trusts it.
    let ca = std::fs::read(out_dir.join("ca.pem")).expect("ca");
    let add = raftix(&[
        "certs",
        "--out",
        dir,
        "--nodes",
        "4",
        "--hosts",
        "node4.example.com,10.0.0.4",
    ]);
    assert_eq!(add.status.code(), Some(0), "{}", text(&add));
    assert!(text(&add).contains("reusing the CA"), "{}", text(&add));
    assert_eq!(std::fs::read(out_dir.join("ca.pem")).expect("ca"), ca);
    let node4 = tls::TlsFiles {
        ca: out_dir.join("ca.pem"),
        cert: certs::node_cert_path(&out_dir, 4),
        key: certs::node_key_path(&out_dir, 4),
    };
    tls::peer_client_config(&node4).expect("node 4 loads");
    assert_eq!(tls::cert_file_node_id(&node4.cert).expect("id"), 4);

    // --force overwrites.
    let forced = raftix(&["certs", "--out", dir, "--nodes", "1", "--force"]);
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced));
    assert_ne!(
        std::fs::read(out_dir.join("node-1-key.pem")).expect("key"),
        before
    );
    assert_eq!(mode(&out_dir.join("node-1-key.pem")), 0o600);
}

#[test]
fn certs_refuses_bad_input_with_exit_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("c");
    let dir = dir.to_str().expect("utf-8");
    for (args, expected) in [
        (vec!["--nodes", "0"], "greater than 0"),
        (vec!["--nodes", "x"], "--nodes"),
        (vec!["--nodes", "1", "--hosts", "not a host"], "not a host"),
        (vec!["--clients", "a/b"], "client name"),
        (vec!["--nodes", "1", "--days", "0"], "--days"),
    ] {
        let mut all = vec!["certs", "--out", dir];
        all.extend(args);
        let out = raftix(&all);
        assert_eq!(out.status.code(), Some(2), "{all:?}: {}", text(&out));
        assert!(text(&out).contains(expected), "{all:?}: {}", text(&out));
    }
    assert!(!Path::new(dir).exists(), "nothing written");
}
