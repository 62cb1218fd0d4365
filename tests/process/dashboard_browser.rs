//! The dashboard in a real browser: a 3-node cluster of `raftix serve` processes, headless
//! Chromium driven through chromedriver (WebDriver), a put typed into the page, and a kill -9
//! of the leader watched from the page; and a cluster serving HTTPS with access control, whose
//! dashboard Chromium loads over TLS, asks for a token, and shows the cluster once it is typed.
//!
//! Needs Debian's `chromium` and `chromium-driver` packages. Without them the test fails when
//! `CI` is set (CI must run it; `.ci/run` installs them) and is skipped loudly otherwise.
//! Screenshots go to `<target dir>/dashboard-before.png`, `dashboard-after.png` and
//! `dashboard-tls.png`.

use crate::support::process;
use crate::support::webdriver;

use std::io::Write;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use process::ProcCluster;
use raftix::tls::certs::{self, CertsRequest};
use serde_json::Value;
use webdriver::{find_browser, Browser};

const LEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the page to show something.
const PAGE_TIMEOUT: Duration = Duration::from_secs(20);
/// Pause between two looks at the page.
const PAGE_POLL: Duration = Duration::from_millis(100);

/// What the page shows, read from its DOM (it may not be loaded yet: nothing here throws).
const SNAPSHOT_JS: &str = r#"
const text = (id) => { const e = document.getElementById(id); return e ? e.textContent : null; };
return {
  cards: [...document.querySelectorAll('#nodes .node-card')].map((c) => ({
    id: Number(c.dataset.nodeId), role: c.dataset.role, health: c.dataset.health,
    state: c.dataset.state ?? null,
    version: c.querySelector('[data-field=version]')?.textContent ?? null,
    uptime: c.querySelector('[data-field=uptime]')?.textContent ?? null,
    disk: c.querySelector('[data-field=disk]')?.textContent ?? null,
    last_seen: c.querySelector('[data-field=last-seen]')?.textContent ?? null })),
  quorum: text('summary-quorum'),
  charts: [...document.querySelectorAll('#charts .chart')].map((c) => ({
    name: c.dataset.chart, svg: c.querySelector('svg') !== null,
    points: [...c.querySelectorAll('polyline')].map((p) => p.getAttribute('points')).join('|') })),
  actions: [...document.querySelectorAll('#actions button[data-action]')].map((b) => ({
    action: b.dataset.action, node: Number(b.dataset.node), armed: b.dataset.armed === 'true',
    text: b.textContent })),
  kv: [...document.querySelectorAll('#kv-view tr[data-key]')].map((r) => ({
    key: r.dataset.key, value: r.cells[1].textContent })),
  log: [...document.querySelectorAll('#log-view tr[data-index]')].map((r) => ({
    index: Number(r.dataset.index), committed: r.dataset.committed === 'true',
    text: r.cells[2].textContent })),
  history: [...document.querySelectorAll('#command-history li')].map((l) => ({
    ok: l.dataset.ok === 'true', text: l.textContent })),
  regions_hidden: document.getElementById('regions-panel')?.hidden ?? null,
  conflicts_hidden: document.getElementById('conflicts-panel')?.hidden ?? null,
  regions: [...document.querySelectorAll('#regions-view tr[data-region]')].map((r) => ({
    region: r.dataset.region, connected: r.dataset.connected === 'true', lag: Number(r.dataset.lag),
    last_error: r.querySelector('[data-field=last_error]').textContent })),
  regions_info: text('regions-info'),
  conflicts_info: text('conflicts-info'),
  leader: text('summary-leader'),
  connection: document.getElementById('connection')?.dataset.state ?? null,
  connection_text: text('connection'),
};
"#;

/// The directory cargo builds into (screenshots are test artifacts kept there).
fn target_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().map(PathBuf::from).unwrap_or(tmp)
}

/// Chromium and chromedriver, or `None` when the test must be skipped (panics under CI).
fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    if let Some(found) = find_browser() {
        return Some(found);
    }
    let help = "chromium and chromedriver are needed: apt-get install -y chromium chromium-driver";
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but the dashboard browser test cannot run: {help}");
    }
    // Straight to stderr: libtest would capture (and hide) an `eprintln!` of a passing test.
    let bar = "#".repeat(78);
    let _ = writeln!(
        std::io::stderr(),
        "\n{bar}\nSKIPPED dashboard_browser: {help}\n{bar}\n"
    );
    None
}

/// The cluster and the browser pointed at one node's dashboard.
struct Fixture {
    cluster: ProcCluster,
    browser: Browser,
    screenshot_on_failure: PathBuf,
}

impl Fixture {
    fn snapshot(&self) -> Value {
        self.browser
            .script(SNAPSHOT_JS)
            .unwrap_or_else(|e| self.cluster.fail(&format!("cannot read the page: {e}")))
    }

    /// Polls the page until `check` accepts what it shows, or fails (with a screenshot, the last
    /// snapshot and the node logs) after [`PAGE_TIMEOUT`].
    fn wait_page<T>(&self, what: &str, mut check: impl FnMut(&Value) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            let page = self.snapshot();
            if let Some(found) = check(&page) {
                return found;
            }
            if start.elapsed() > PAGE_TIMEOUT {
                let shot = match self.browser.screenshot(&self.screenshot_on_failure) {
                    Ok(()) => format!("screenshot: {}", self.screenshot_on_failure.display()),
                    Err(e) => format!("no screenshot: {e}"),
                };
                self.cluster.fail(&format!(
                    "timed out after {PAGE_TIMEOUT:?} waiting for the page to show {what}\n{shot}\nlast page snapshot: {page:#}"
                ));
            }
            thread::sleep(PAGE_POLL);
        }
    }

    fn must<T>(&self, what: &str, result: Result<T, String>) -> T {
        result.unwrap_or_else(|e| self.cluster.fail(&format!("{what}: {e}")))
    }

    /// Types `command` into the command box and submits it; waits for its answer.
    fn run_command(&self, command: &str) {
        let input = self.must("find #command-input", self.browser.find("#command-input"));
        self.must("type the command", self.browser.type_into(&input, command));
        let submit = self.must("find #command-submit", self.browser.find("#command-submit"));
        self.must("click Run", self.browser.click(&submit));
        self.wait_page(&format!("a successful answer to {command:?}"), |page| {
            let history = page["history"].as_array()?;
            let latest = history.first()?;
            assert!(
                latest["ok"] == true || !latest["text"].as_str()?.starts_with(command),
                "the command failed: {latest}"
            );
            (latest["ok"] == true && latest["text"].as_str()?.starts_with(command)).then_some(())
        });
    }
}

fn cards(page: &Value) -> Vec<(u64, String, String)> {
    page["cards"]
        .as_array()
        .map(|cards| {
            cards
                .iter()
                .map(|c| {
                    let field = |k: &str| c[k].as_str().unwrap_or_default().to_string();
                    (
                        c["id"].as_u64().unwrap_or(0),
                        field("role"),
                        field("health"),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The ids of the cards showing a healthy `LEADER`.
fn leaders(page: &Value) -> Vec<u64> {
    cards(page)
        .into_iter()
        .filter(|(_, role, health)| role == "LEADER" && health == "up")
        .map(|(id, _, _)| id)
        .collect()
}

/// The leader id in the page's header.
fn summary_leader(page: &Value) -> Option<u64> {
    page["leader"].as_str()?.parse().ok()
}

/// The keys the key-value view lists, in order.
fn kv_keys(page: &Value) -> Option<Vec<&str>> {
    Some(
        page["kv"]
            .as_array()?
            .iter()
            .filter_map(|r| r["key"].as_str())
            .collect(),
    )
}

fn shows_key(page: &Value, key: &str, value: &str) -> bool {
    page["kv"]
        .as_array()
        .is_some_and(|kv| kv.iter().any(|r| r["key"] == key && r["value"] == value))
}

fn shows_committed_put(page: &Value, key: &str) -> bool {
    let wanted = format!("PUT {key} = ");
    page["log"].as_array().is_some_and(|log| {
        log.iter().any(|e| {
            e["committed"] == true && e["text"].as_str().is_some_and(|t| t.starts_with(&wanted))
        })
    })
}

fn assert_png(path: &PathBuf) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
        "{} is not a plausible screenshot ({} bytes)",
        path.display(),
        bytes.len()
    );
}

#[test]
fn dashboard_follows_the_cluster_through_a_leader_kill() {
    let Some((chromium, driver)) = browser_binaries() else {
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("raftix-dash-")
        .tempdir()
        .expect("tempdir");
    let cluster = ProcCluster::start(3, dir);
    let (leader, _) = cluster.wait_leader(LEADER_TIMEOUT);
    // The page is served by a follower, so that killing the leader leaves it up.
    let page_node = cluster.follower_of(leader);
    let driver_log = cluster.dir().join("chromedriver.log");
    let browser = Browser::launch(&chromium, &driver, &driver_log)
        .unwrap_or_else(|e| cluster.fail(&format!("cannot start headless Chromium: {e}")));
    let target = target_dir();
    let mut fx = Fixture {
        cluster,
        browser,
        screenshot_on_failure: target.join("dashboard-failure.png"),
    };
    let url = format!("http://127.0.0.1:{}/", fx.cluster.node(page_node).http_port);
    fx.must(&format!("load {url}"), fx.browser.goto(&url));

    // Three healthy nodes, exactly one of them the leader.
    fx.wait_page(
        "3 healthy, ACTIVE node cards and exactly one leader",
        |page| {
            let cards = cards(page);
            let healthy = cards.len() == 3 && cards.iter().all(|(_, _, h)| h == "up");
            let active = page["cards"]
                .as_array()
                .is_some_and(|c| c.iter().all(|card| card["state"] == "ACTIVE"));
            (healthy && active && leaders(page) == [leader]).then_some(())
        },
    );
    let page = fx.snapshot();
    assert_eq!(page["regions_hidden"], true, "no --region: {page:#}");
    // Facts: each node's version, uptime and disk use, and whether the cluster has a quorum.
    for card in page["cards"].as_array().expect("cards") {
        assert_eq!(card["version"], env!("CARGO_PKG_VERSION"), "{page:#}");
        assert!(
            card["uptime"].as_str().is_some_and(|u| u.ends_with(" s")),
            "{page:#}"
        );
        assert!(
            card["disk"].as_str().is_some_and(|d| d.contains("(log ")),
            "{page:#}"
        );
    }
    assert_eq!(
        page["quorum"], "quorum OK, tolerates 1 more failure",
        "{page:#}"
    );
    assert_eq!(page["conflicts_hidden"], true, "no --region: {page:#}");

    // A put typed into the command box shows up in the key-value view and the log.
    fx.run_command("SET dash-key hello from chromium");
    fx.wait_page(
        "dash-key in the KV view and a committed PUT in the log",
        |page| {
            (shows_key(page, "dash-key", "hello from chromium")
                && shows_committed_put(page, "dash-key"))
            .then_some(())
        },
    );
    // History: six SVG charts drawn by the node; the write chart moves as writes go on.
    let drawn = |page: &Value, name: &str| -> Option<String> {
        let chart = page["charts"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == name)?;
        let points = chart["points"].as_str()?;
        (chart["svg"] == true && !points.is_empty()).then(|| points.to_string())
    };
    let earlier = fx.wait_page("six charts, the write chart with a line", |page| {
        let all = page["charts"].as_array()?.len() == 6
            && page["charts"].as_array()?.iter().all(|c| c["svg"] == true);
        if all {
            drawn(page, "writes")
        } else {
            None
        }
    });
    fx.run_command("SET chart-key 1");
    fx.run_command("SET chart-key 2");
    fx.wait_page("the write chart redrawn with the new writes", |page| {
        drawn(page, "writes").filter(|now| *now != earlier)
    });
    let before = target.join("dashboard-before.png");
    fx.must("screenshot", fx.browser.screenshot(&before));

    // The "Make leader" action on the third node (neither the leader nor the page's node) asks
    // for a confirming click, then moves the leader there.
    let third = fx
        .cluster
        .ids()
        .into_iter()
        .find(|&id| id != leader && id != page_node)
        .expect("a third node");
    let button = format!("#actions button[data-action=transfer][data-node=\"{third}\"]");
    let first = fx.must("find Make leader", fx.browser.find(&button));
    fx.must("click Make leader", fx.browser.click(&first));
    fx.wait_page("the transfer button armed", |page| {
        page["actions"]
            .as_array()?
            .iter()
            .any(|b| b["action"] == "transfer" && b["node"] == third && b["armed"] == true)
            .then_some(())
    });
    let again = fx.must("find the armed button", fx.browser.find(&button));
    fx.must("confirm Make leader", fx.browser.click(&again));
    fx.wait_page("the leader moved to the third node", |page| {
        (summary_leader(page) == Some(third) && leaders(page) == [third]).then_some(())
    });
    let leader = third;

    // kill -9 the leader: the page shows another leader and the old one down.
    fx.cluster.kill9(leader);
    let new_leader = fx.wait_page("a new leader and the old leader's card down", |page| {
        let old_down = cards(page)
            .iter()
            .any(|(id, role, health)| *id == leader && health == "down" && role == "DOWN");
        let seen = page["cards"].as_array().is_some_and(|cards| {
            cards.iter().any(|c| {
                c["id"] == leader
                    && c["last_seen"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("unreachable; last seen "))
            })
        });
        let old_down = old_down && seen && page["quorum"] == "quorum OK, tolerates 0 more failures";
        match leaders(page)[..] {
            [new] if new != leader && old_down && summary_leader(page) == Some(new) => Some(new),
            _ => None,
        }
    });
    assert_ne!(new_leader, leader);

    // Commands still work through the surviving follower after the failover.
    fx.run_command("SET after-failover still writable");
    fx.wait_page("after-failover in the KV view", |page| {
        (shows_key(page, "after-failover", "still writable") && page["connection"] == "ok")
            .then_some(())
    });
    let after = target.join("dashboard-after.png");
    fx.must("screenshot", fx.browser.screenshot(&after));
    assert_png(&before);
    assert_png(&after);

    // The key browser: filter by prefix, write a key with the editor, delete it (two clicks).
    let prefix = fx.must("find the prefix box", fx.browser.find("#kv-prefix"));
    fx.must("type a prefix", fx.browser.type_into(&prefix, "dash"));
    fx.wait_page("only keys starting with dash", |page| {
        (kv_keys(page)? == ["dash-key"]).then_some(())
    });
    let key = fx.must("find the editor's key", fx.browser.find("#kv-edit-key"));
    fx.must("type the key", fx.browser.type_into(&key, "dash-edited"));
    let value = fx.must("find the editor's value", fx.browser.find("#kv-edit-value"));
    fx.must(
        "type the value",
        fx.browser.type_into(&value, "saved from the browser"),
    );
    let save = fx.must("find Save", fx.browser.find("#kv-save"));
    fx.must("click Save", fx.browser.click(&save));
    fx.wait_page("the saved key in the filtered view", |page| {
        shows_key(page, "dash-edited", "saved from the browser").then_some(())
    });
    let delete = "#kv-view button[data-kv=delete][data-key=\"dash-edited\"]";
    let first = fx.must("find Delete", fx.browser.find(delete));
    fx.must("click Delete", fx.browser.click(&first));
    let again = fx.must("find the armed Delete", fx.browser.find(delete));
    fx.must("confirm Delete", fx.browser.click(&again));
    fx.wait_page("the deleted key gone", |page| {
        (kv_keys(page)? == ["dash-key"]).then_some(())
    });
    assert_eq!(
        fx.cluster.get(new_leader, "dash-edited"),
        None,
        "the delete reached the cluster"
    );
}

#[test]
fn dashboard_shows_region_links_and_conflicts() {
    let Some((chromium, driver)) = browser_binaries() else {
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("raftix-dash-region-")
        .tempdir()
        .expect("tempdir");
    let cluster = ProcCluster::start_with(1, dir, &["--region", "eu"]);
    cluster.wait_leader(LEADER_TIMEOUT);
    let base = format!("http://127.0.0.1:{}", cluster.node(1).http_port);
    // A remote region nobody serves: the link stays down, with an error, one write behind.
    let dead = process::alloc_ports(1)[0];
    let added = process::http_client()
        .post(format!("{base}/v1/regions"))
        .json(&serde_json::json!({"id": "us", "endpoints": [format!("127.0.0.1:{dead}")]}))
        .send()
        .unwrap_or_else(|e| cluster.fail(&format!("POST /v1/regions: {e}")));
    assert_eq!(added.status().as_u16(), 201);
    cluster.put_ok("waiting-for-us", b"v");
    let driver_log = cluster.dir().join("chromedriver.log");
    let browser = Browser::launch(&chromium, &driver, &driver_log)
        .unwrap_or_else(|e| cluster.fail(&format!("cannot start headless Chromium: {e}")));
    let target = target_dir();
    let fx = Fixture {
        cluster,
        browser,
        screenshot_on_failure: target.join("dashboard-region-failure.png"),
    };
    fx.must(
        &format!("load {base}/"),
        fx.browser.goto(&format!("{base}/")),
    );
    let page = fx.wait_page(
        "the Regions panel with the link to us down and its error",
        |page| {
            let row = page["regions"].as_array()?.first()?.clone();
            (page["regions_hidden"] == false
                && row["region"] == "us"
                && row["connected"] == false
                && row["lag"] == 1
                && row["last_error"] != "–")
                .then(|| page.clone())
        },
    );
    assert!(
        page["regions_info"]
            .as_str()
            .is_some_and(|t| t.contains("region eu")),
        "{page:#}"
    );
    let page = fx.wait_page("the Conflicts panel", |page| {
        (page["conflicts_hidden"] == false && page["conflicts_info"].as_str()?.contains("resolved"))
            .then(|| page.clone())
    });
    assert!(
        page["conflicts_info"]
            .as_str()
            .is_some_and(|t| t.starts_with("0 resolved, 0 failed merge(s), 0 key(s) with siblings")),
        "{page:#}"
    );
    // The region change is described in the log view.
    fx.wait_page("the region change in the log", |page| {
        page["log"]
            .as_array()?
            .iter()
            .any(|e| {
                e["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("REGION add region "))
            })
            .then_some(())
    });
    let shot = target.join("dashboard-regions.png");
    fx.must("screenshot", fx.browser.screenshot(&shot));
    assert_png(&shot);
}

/// SHA-256 (with ring, through rustls) of `data`.
fn sha256(data: &[u8]) -> Vec<u8> {
    let provider = rustls::crypto::ring::default_provider();
    let hash = provider
        .cipher_suites
        .iter()
        .find_map(|suite| match suite {
            rustls::SupportedCipherSuite::Tls13(s)
                if s.common.hash_provider.algorithm()
                    == rustls::crypto::hash::HashAlgorithm::SHA256 =>
            {
                Some(s.common.hash_provider)
            }
            _ => None,
        })
        .expect("a SHA-256 suite");
    hash.hash(data).as_ref().to_vec()
}

/// The base64 SHA-256 of the public key of the certificate in `pem`: what Chromium's
/// `--ignore-certificate-errors-spki-list` takes to trust that certificate.
fn spki_hash(pem: &std::path::Path) -> String {
    let der = raftix::tls::load_certs(pem, "certificate").expect("certificate")[0].clone();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("parse certificate");
    base64::engine::general_purpose::STANDARD.encode(sha256(cert.tbs_certificate.subject_pki.raw))
}

/// What the page shows about TLS and access control.
const TLS_JS: &str = r#"
const form = document.getElementById('token-form');
return { protocol: document.location.protocol, asks_token: form ? !form.hidden : null,
         message: document.getElementById('token-message')?.textContent ?? null };
"#;

#[test]
fn dashboard_over_https_asks_for_a_token_then_shows_the_cluster() {
    let Some((chromium, driver)) = browser_binaries() else {
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("raftix-dash-tls-")
        .tempdir()
        .expect("tempdir");
    let cert_dir = dir.path().join("certs");
    certs::generate(&CertsRequest {
        out: cert_dir.clone(),
        nodes: vec![1, 2, 3],
        hosts: vec!["127.0.0.1".into()],
        clients: vec![],
        days: 2,
        force: false,
    })
    .expect("certificates");
    const TOKEN: &str = "dashboard-viewer-secret";
    let token_file = dir.path().join("tokens.toml");
    std::fs::write(
        &token_file,
        format!("[[tokens]]\nname = \"viewer\"\ntoken = \"{TOKEN}\"\nrole = \"read\"\n"),
    )
    .expect("token file");
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    let path = |p: std::path::PathBuf| p.to_str().expect("utf-8").to_owned();
    let flags = [
        "--tls-cert".to_string(),
        path(cert_dir.join("node-{id}.pem")),
        "--tls-key".to_string(),
        path(cert_dir.join("node-{id}-key.pem")),
        "--tls-ca".to_string(),
        path(cert_dir.join(certs::CA_CERT)),
        "--token-file".to_string(),
        path(token_file),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    // The harness trusts the test CA and sends the token with every request.
    let tls = raftix::tls::http_client_config(Some(&cert_dir.join(certs::CA_CERT)), None)
        .expect("client TLS");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {TOKEN}").parse().expect("header"),
    );
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(4))
        .default_headers(headers)
        .use_preconfigured_tls((*tls).clone())
        .build()
        .expect("HTTPS client");
    let cluster = ProcCluster::start_https(3, dir, &flags, http);
    let (leader, _) = cluster.wait_leader(LEADER_TIMEOUT);

    // Chromium trusts exactly the three node certificates.
    let spki: Vec<String> = (1..=3)
        .map(|id| spki_hash(&certs::node_cert_path(&cert_dir, id)))
        .collect();
    let trust = format!("--ignore-certificate-errors-spki-list={}", spki.join(","));
    let driver_log = cluster.dir().join("chromedriver.log");
    let browser = Browser::launch_with(&chromium, &driver, &driver_log, &[trust])
        .unwrap_or_else(|e| cluster.fail(&format!("cannot start headless Chromium: {e}")));
    let target = target_dir();
    let fx = Fixture {
        cluster,
        browser,
        screenshot_on_failure: target.join("dashboard-tls-failure.png"),
    };
    let url = fx.cluster.client().base(1) + "/";
    assert!(url.starts_with("https://"), "{url}");
    fx.must(&format!("load {url}"), fx.browser.goto(&url));

    // Loaded over TLS; the API answers 401 without a token, so the page asks for one.
    let page = fx.wait_page("the token form on an https page", |_| {
        let tls = fx.browser.script(TLS_JS).ok()?;
        (tls["protocol"] == "https:" && tls["asks_token"] == true).then_some(tls)
    });
    assert!(
        page["message"]
            .as_str()
            .is_some_and(|m| m.contains("token")),
        "{page}"
    );
    assert!(
        cards(&fx.snapshot())
            .iter()
            .all(|(_, _, health)| health != "up"),
        "nothing is shown healthy before the token is given"
    );

    let input = fx.must("find #token-input", fx.browser.find("#token-input"));
    fx.must("type the token", fx.browser.type_into(&input, TOKEN));
    let submit = fx.must("find #token-submit", fx.browser.find("#token-submit"));
    fx.must("click Use token", fx.browser.click(&submit));
    fx.wait_page(
        "3 healthy node cards and the leader, over https with the token",
        |page| {
            let cards = cards(page);
            let healthy = cards.len() == 3 && cards.iter().all(|(_, _, h)| h == "up");
            (healthy && leaders(page) == [leader] && summary_leader(page) == Some(leader))
                .then_some(())
        },
    );
    let tls = fx.must("read the page", fx.browser.script(TLS_JS));
    assert_eq!(tls["asks_token"], false, "the form is gone: {tls}");
    let shot = target.join("dashboard-tls.png");
    fx.must("screenshot", fx.browser.screenshot(&shot));
    assert_png(&shot);
}
