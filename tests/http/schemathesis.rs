//! Schemathesis against `GET /openapi.json` of a real `raftix serve` node: it generates requests
//! from the document (valid and invalid ones, boundary values, unsupported methods, stateful
//! sequences) and checks every answer.
//!
//! Checks enabled (see docs/security.md, "Fuzzing", for the two that are not):
//! `not_a_server_error`, `status_code_conformance`, `content_type_conformance`,
//! `response_headers_conformance`, `response_schema_conformance`, `use_after_free`,
//! `ensure_resource_availability`, `missing_required_header`, `ignored_auth`,
//! `unsupported_method`, `allow_header_conformance`. Any finding fails the test, with
//! schemathesis's report (each failure comes with a curl command reproducing it).
//!
//! The `schemathesis` command comes from `SCHEMATHESIS` (a path), else
//! `<target dir>/schemathesis-venv/bin/schemathesis` (where `.ci/run` installs it from PyPI),
//! else `PATH`. Without it the test fails when `CI` is set and is skipped loudly otherwise.
//! `SCHEMATHESIS_EXAMPLES` sets the examples per operation (default 100: about 30 s);
//! `SCHEMATHESIS_SEED` replays a run (the seed is printed).

use crate::support::process;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use process::ProcCluster;

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
    response_headers_conformance,response_schema_conformance,use_after_free,\
    ensure_resource_availability,missing_required_header,ignored_auth,unsupported_method,\
    allow_header_conformance";
const DEFAULT_EXAMPLES: &str = "100";
/// Longest a run may take before the test gives up on it.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

/// The directory cargo builds into.
fn target_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().map(PathBuf::from).unwrap_or(tmp)
}

/// Whether `path` runs as `schemathesis --version`.
fn runs(path: &Path) -> bool {
    Command::new(path)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The schemathesis command, or `None` when the test must be skipped (panics under CI).
fn schemathesis() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(path) = std::env::var_os("SCHEMATHESIS") {
        candidates.push(PathBuf::from(path));
    }
    for base in [
        target_dir(),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
    ] {
        candidates.push(base.join("schemathesis-venv/bin/schemathesis"));
    }
    candidates.push(PathBuf::from("schemathesis"));
    if let Some(found) = candidates.into_iter().find(|c| runs(c)) {
        return Some(found);
    }
    let help = "schemathesis is needed: python3 -m venv target/schemathesis-venv && \
                target/schemathesis-venv/bin/pip install schemathesis (or set SCHEMATHESIS)";
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but the schemathesis test cannot run: {help}");
    }
    // Straight to stderr: libtest would capture (and hide) an `eprintln!` of a passing test.
    let bar = "#".repeat(78);
    let _ = writeln!(
        std::io::stderr(),
        "\n{bar}\nSKIPPED api_schemathesis: {help}\n{bar}\n"
    );
    None
}

#[test]
fn schemathesis_finds_nothing_against_openapi_json() {
    let Some(schemathesis) = schemathesis() else {
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("raftix-schemathesis-")
        .tempdir()
        .expect("tempdir");
    let work = dir.path().join("schemathesis");
    std::fs::create_dir_all(&work).expect("work dir");
    let mut cluster = ProcCluster::start(1, dir);
    cluster.wait_leader(Duration::from_secs(10));
    cluster.put_ok("seeded", b"a value for the stateful phase to find");

    let examples =
        std::env::var("SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| DEFAULT_EXAMPLES.into());
    let seed = std::env::var("SCHEMATHESIS_SEED").unwrap_or_else(|_| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .subsec_nanos();
        (nanos % 1_000_000_000).to_string()
    });
    let url = format!(
        "http://127.0.0.1:{}/openapi.json",
        cluster.node(1).http_port
    );
    eprintln!(
        "{} run {url}: {examples} examples per operation, seed {seed} (replay with \
         SCHEMATHESIS_SEED={seed})",
        schemathesis.display()
    );
    let output_path = work.join("output.txt");
    let output = std::fs::File::create(&output_path).expect("output file");
    // Its working directory is the temp dir: hypothesis keeps its example database there.
    let mut cmd = Command::new(&schemathesis);
    cmd.current_dir(&work)
        .args(["run", &url])
        .args(["--checks", CHECKS])
        .args(["--max-examples", &examples])
        .args(["--seed", &seed])
        .args(["--workers", "1"])
        .args(["--request-timeout", "10"])
        .args(["--max-failures", "20"])
        .env("NO_COLOR", "1");
    let mut child = process::spawn_logged(&mut cmd, output, "schemathesis");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let report = std::fs::read_to_string(&output_path).unwrap_or_default();
    eprintln!("{report}");
    eprintln!("schemathesis took {:?}", started.elapsed());
    let Some(status) = status else {
        cluster.fail(&format!("schemathesis ran longer than {RUN_TIMEOUT:?}"));
    };
    assert!(
        cluster.is_alive(1),
        "the node died during the run:\n{}",
        cluster.log_tails()
    );
    if !status.success() {
        cluster.fail(&format!(
            "schemathesis found problems (exit {status}, seed {seed}); its report is above"
        ));
    }
    // Exit status 0 is the verdict; this guards against a run that tested nothing.
    assert!(
        report
            .lines()
            .any(|l| l.contains(" generated, ") && l.trim_end().ends_with(" passed")),
        "schemathesis exited 0 but reports no passing test cases"
    );
}
