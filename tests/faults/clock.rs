//! Clock faults and lease reads (README, "Reads": `lease` relies on clocks). Three real `raftix
//! serve` processes, every peer link through a proxy the test cuts; the followers run under
//! libfaketime (Debian's `faketime`, `LD_PRELOAD`), their clocks fast by a factor. Node 1 leads
//! and serves `consistency=lease` reads; each round writes a value, cuts node 1 off in both
//! directions, writes a new value through the other two until one is acknowledged, and records
//! every lease read node 1 answered meanwhile. A read that started after the new value was
//! acknowledged and returned the old one is stale: lease reads were not linearizable.
//!
//! The documented bound: a follower ignores campaigns for the minimum election timeout (150 ms)
//! on its own clock, the leader's lease lasts 150 ms - `--lease-drift-ms` (50 ms) from the start
//! of a heartbeat round a quorum answered, so followers' clocks may run up to 1.5 times fast.
//! A factor of 6 must produce a stale read (the unsafe region is real and the test can see it);
//! factors of 1.25 and a wall clock an hour ahead (the monotonic clock untouched: leases use the
//! monotonic clock) must not.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::link_proxy::LinkProxy;
use crate::support::process::{self, alloc_ports, ProcCluster};

const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
/// Heartbeats every 10 ms: followers with clocks 6 times fast (election timeouts of 25-50 ms
/// real) must keep hearing their leader while the links are up.
const HEARTBEAT_MS: &str = "10";

/// How the followers' clocks are skewed.
#[derive(Clone, Copy, Debug)]
enum Skew {
    /// Every clock (monotonic included) runs this many times fast.
    Fast(f64),
    /// The wall clock is an hour ahead; the monotonic clock is untouched.
    WallClockAhead,
}

impl Skew {
    fn env(self) -> Vec<(&'static str, String)> {
        let mut env = vec![("LD_PRELOAD", FAKETIME_LIB.to_string())];
        match self {
            Skew::Fast(factor) => env.push(("FAKETIME", format!("+0 x{factor}"))),
            Skew::WallClockAhead => {
                env.push(("FAKETIME", "+3600".into()));
                env.push(("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()));
            }
        }
        env
    }
}

/// Three nodes whose every directed peer link goes through its own proxy.
struct SkewedCluster {
    children: Vec<Child>,
    http: Vec<u16>,
    /// `proxies[i][j]`: node i+1's link to node j+1.
    proxies: Vec<Vec<Option<LinkProxy>>>,
    client: Client,
    _dir: tempfile::TempDir,
}

impl SkewedCluster {
    fn start(skew: Skew) -> Self {
        let dir = ProcCluster::temp_dir("raftix-clock-");
        let ports = alloc_ports(6);
        let peer = |i: usize| ports[2 * i];
        let http: Vec<u16> = (0..3).map(|i| ports[2 * i + 1]).collect();
        let proxies: Vec<Vec<Option<LinkProxy>>> = (0..3)
            .map(|i| {
                (0..3)
                    .map(|j| (i != j).then(|| LinkProxy::start(format!("127.0.0.1:{}", peer(j)))))
                    .collect()
            })
            .collect();
        let children = (0..3)
            .map(|i| {
                let cluster: Vec<String> = (0..3)
                    .map(|j| match &proxies[i][j] {
                        Some(proxy) => format!("{}={}", j + 1, proxy.addr),
                        None => format!("{}=127.0.0.1:{}", j + 1, peer(j)),
                    })
                    .collect();
                let mut cmd = Command::new(process::raftix_bin());
                cmd.arg("serve")
                    .args(["--id", &(i + 1).to_string()])
                    .arg("--data-dir")
                    .arg(dir.path().join(format!("n{}", i + 1)))
                    .args(["--listen-peer", &format!("127.0.0.1:{}", peer(i))])
                    .args(["--listen-http", &format!("127.0.0.1:{}", http[i])])
                    .args(["--cluster", &cluster.join(",")])
                    .args(["--heartbeat-interval-ms", HEARTBEAT_MS])
                    .args(["--log-map-size", &process::MAP_SIZE.to_string()])
                    .args(["--sm-map-size", &process::MAP_SIZE.to_string()])
                    .env("RUST_LOG", "info")
                    .stdin(Stdio::null());
                if i > 0 {
                    cmd.envs(skew.env());
                }
                spawn_logged(cmd, &dir.path().join(format!("node{}.log", i + 1)))
            })
            .collect();
        SkewedCluster {
            children,
            http,
            proxies,
            client: process::http_client(),
            _dir: dir,
        }
    }

    fn url(&self, id: usize, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http[id - 1])
    }

    fn status(&self, id: usize) -> Option<Value> {
        let resp = self
            .client
            .get(self.url(id, "/v1/status"))
            .timeout(Duration::from_millis(300))
            .send()
            .ok()?;
        resp.json().ok()
    }

    fn leader(&self) -> Option<usize> {
        (1..=3).find(|&id| self.status(id).is_some_and(|s| s["role"] == "LEADER"))
    }

    /// Waits until node 1 leads (asking the current leader to hand over).
    fn make_node_1_lead(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match self.leader() {
                Some(1) => return,
                Some(other) => {
                    let _ = self
                        .client
                        .post(self.url(other, "/v1/cluster/transfer-leader"))
                        .json(&serde_json::json!({"to": 1}))
                        .timeout(Duration::from_secs(2))
                        .send();
                }
                None => {}
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("node 1 did not take the lead within 20 s");
    }

    fn set_node_1_cut(&self, cut: bool) {
        for (i, row) in self.proxies.iter().enumerate() {
            for (j, proxy) in row.iter().enumerate() {
                if let Some(proxy) = proxy.as_ref().filter(|_| i == 0 || j == 0) {
                    if cut {
                        proxy.cut();
                    } else {
                        proxy.heal();
                    }
                }
            }
        }
    }

    /// `PUT` on node `id` itself: a follower answers 307 instead of forwarding (node 1 is still
    /// reachable over HTTP, and would take the write it cannot replicate).
    fn put(&self, id: usize, key: &str, value: &str) -> Option<StatusCode> {
        self.client
            .put(self.url(id, &format!("/v1/kv/{key}?redirect=true")))
            .body(value.to_string())
            .timeout(Duration::from_secs(1))
            .send()
            .ok()
            .map(|r| r.status())
    }

    /// One round: returns whether node 1 answered a stale lease read.
    fn round(&self, n: u32) -> bool {
        self.make_node_1_lead();
        let key = format!("round{n}");
        assert_eq!(
            self.put(1, &key, "old"),
            Some(StatusCode::OK),
            "write the old value"
        );
        let acked_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (client, url) = (
                self.client.clone(),
                self.url(1, &format!("/v1/kv/{key}?consistency=lease")),
            );
            let (acked_at, stop) = (acked_at.clone(), stop.clone());
            thread::spawn(move || {
                let mut stale = false;
                while !stop.load(Ordering::SeqCst) {
                    let started = Instant::now();
                    let Ok(resp) = client.get(&url).timeout(Duration::from_millis(500)).send()
                    else {
                        continue;
                    };
                    if resp.status() != StatusCode::OK {
                        continue;
                    }
                    let body = resp.text().unwrap_or_default();
                    let acked = *acked_at.lock().expect("acked_at");
                    if body == "old" && acked.is_some_and(|at| started > at) {
                        stale = true;
                    }
                }
                stale
            })
        };
        self.set_node_1_cut(true);
        let cut_at = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(5);
        'write: while Instant::now() < deadline {
            for id in [2, 3] {
                if self.put(id, &key, "new") == Some(StatusCode::OK) {
                    *acked_at.lock().expect("acked_at") = Some(Instant::now());
                    break 'write;
                }
            }
            thread::sleep(Duration::from_millis(2));
        }
        let acked_after = acked_at.lock().expect("acked_at").map(|at| at - cut_at);
        eprintln!("round {n}: the new value was acknowledged {acked_after:?} after the cut");
        let acked = acked_after.is_some();
        thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::SeqCst);
        let stale = reader.join().expect("reader thread");
        self.set_node_1_cut(false);
        assert!(
            acked,
            "round {n}: nodes 2 and 3 never acknowledged the new value"
        );
        stale
    }
}

impl Drop for SkewedCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_logged(mut cmd: Command, log: &Path) -> Child {
    let file = std::fs::File::create(log).expect("node log");
    cmd.stdout(file.try_clone().expect("log handle"))
        .stderr(file)
        .spawn()
        .expect("spawn raftix serve")
}

/// Whether libfaketime is here; if not, says so (and fails under CI).
fn faketime_available() -> bool {
    if Path::new(FAKETIME_LIB).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but {FAKETIME_LIB} is missing: apt-get install faketime"
    );
    eprintln!("skipped: {FAKETIME_LIB} is missing (apt-get install faketime)");
    false
}

/// Rounds with a stale lease read, out of `rounds`.
fn stale_rounds(skew: Skew, rounds: u32, stop_at_first: bool) -> u32 {
    let cluster = SkewedCluster::start(skew);
    let mut stale = 0;
    for n in 0..rounds {
        if cluster.round(n) {
            stale += 1;
            if stop_at_first {
                break;
            }
        }
    }
    eprintln!("{skew:?}: {stale} of {rounds} rounds had a stale lease read");
    stale
}

#[test]
fn followers_clocks_far_beyond_the_drift_bound_make_lease_reads_stale() {
    if !faketime_available() {
        return;
    }
    assert!(
        stale_rounds(Skew::Fast(6.0), 30, true) > 0,
        "followers' clocks 6 times fast must let a new leader commit while node 1 still serves \
         lease reads (if this passes, the test cannot see the unsafe region)"
    );
}

#[test]
fn clocks_within_the_documented_bounds_keep_lease_reads_linearizable() {
    if !faketime_available() {
        return;
    }
    assert_eq!(
        stale_rounds(Skew::Fast(1.25), 10, false),
        0,
        "clocks 1.25 times fast"
    );
    assert_eq!(
        stale_rounds(Skew::WallClockAhead, 5, false),
        0,
        "wall clocks an hour ahead"
    );
}
