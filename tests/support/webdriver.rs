//! A small W3C WebDriver client for the dashboard's browser test: it starts Debian's
//! `chromedriver`, opens one headless Chromium session and speaks the protocol's JSON over
//! blocking HTTP (reqwest, already a dev-dependency), so no browser is downloaded and no async
//! runtime is needed next to the blocking process harness.
//!
//! Included by `dashboard_browser.rs` as a module; cargo also builds it as a test target of its
//! own, which holds no tests.
#![allow(dead_code)]

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::blocking::Client;
use serde_json::{json, Value};

/// The key under which WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long chromedriver gets to answer `/status` after it starts.
const DRIVER_START: Duration = Duration::from_secs(15);

/// Chromium flags for headless use as root on this machine (DESIGN.md section 7), without the
/// per-run `--user-data-dir`.
pub const CHROMIUM_FLAGS: [&str; 10] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--window-size=1400,1250",
];

/// The first of `names` found as an executable file on `PATH` (or as an absolute path).
pub fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|name| {
        let direct = Path::new(name);
        if direct.is_absolute() {
            return direct.is_file().then(|| direct.to_path_buf());
        }
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// Where Chromium and chromedriver are, if both are installed. Debian's `/usr/bin/chromium` is
/// a shell wrapper: the real binary is preferred when present.
pub fn find_browser() -> Option<(PathBuf, PathBuf)> {
    let chromium = find_program(&[
        "/usr/lib/chromium/chromium",
        "chromium",
        "chromium-browser",
        "google-chrome",
    ])?;
    let driver = find_program(&["chromedriver"])?;
    Some((chromium, driver))
}

/// One chromedriver process with one Chromium session; both end on drop.
pub struct Browser {
    http: Client,
    base: String,
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}

impl Browser {
    /// Starts `driver` (logging to `log`), waits until it is ready, and opens a headless session
    /// of `chromium` with a fresh profile directory.
    pub fn launch(chromium: &Path, driver: &Path, log: &Path) -> Result<Self, String> {
        Self::launch_with(chromium, driver, log, &[])
    }

    /// [`Browser::launch`] with `extra` Chromium flags (e.g.
    /// `--ignore-certificate-errors-spki-list=...` to trust test certificates).
    pub fn launch_with(
        chromium: &Path,
        driver: &Path,
        log: &Path,
        extra: &[String],
    ) -> Result<Self, String> {
        let port = free_port()?;
        let log_file = File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let err_file = log_file.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", driver.display()))?;
        let profile = tempfile::Builder::new()
            .prefix("raftix-chromium-")
            .tempdir()
            .map_err(|e| format!("profile dir: {e}"))?;
        let http = Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let mut browser = Browser {
            http,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            driver: child,
            _profile: profile,
        };
        browser.wait_ready()?;
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!(
            "--user-data-dir={}",
            browser._profile.path().display()
        ));
        args.extend(extra.iter().cloned());
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let answer = browser.call(reqwest::Method::POST, "/session", Some(caps))?;
        browser.session = answer["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no sessionId in {answer}"))?
            .to_string();
        Ok(browser)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.driver.try_wait() {
                return Err(format!("chromedriver exited at start ({status})"));
            }
            let ready = self
                .http
                .get(format!("{}/status", self.base))
                .timeout(Duration::from_secs(2))
                .send()
                .ok()
                .and_then(|r| r.json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                return Ok(());
            }
            if start.elapsed() > DRIVER_START {
                return Err(format!("chromedriver not ready within {DRIVER_START:?}"));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// One WebDriver command; answers its `value`, or the driver's error as text.
    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let resp = request
            .send()
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = resp.status();
        let body: Value = resp
            .json()
            .map_err(|e| format!("{method} {path}: unreadable answer ({status}): {e}"))?;
        if !status.is_success() {
            return Err(format!("{method} {path}: {status}: {}", body["value"]));
        }
        Ok(body["value"].clone())
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Loads `url` and waits for the page load.
    pub fn goto(&self, url: &str) -> Result<(), String> {
        self.call(
            reqwest::Method::POST,
            &self.session_path("/url"),
            Some(json!({ "url": url })),
        )
        .map(drop)
    }

    /// Runs `script` (a function body; `return` gives the result) in the page.
    pub fn script(&self, script: &str) -> Result<Value, String> {
        self.call(
            reqwest::Method::POST,
            &self.session_path("/execute/sync"),
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// The element matching the CSS `selector`.
    pub fn find(&self, selector: &str) -> Result<String, String> {
        let found = self.call(
            reqwest::Method::POST,
            &self.session_path("/element"),
            Some(json!({ "using": "css selector", "value": selector })),
        )?;
        found[ELEMENT_KEY]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no element reference for {selector}: {found}"))
    }

    /// Types `text` into `element` as keystrokes.
    pub fn type_into(&self, element: &str, text: &str) -> Result<(), String> {
        self.call(
            reqwest::Method::POST,
            &self.session_path(&format!("/element/{element}/value")),
            Some(json!({ "text": text })),
        )
        .map(drop)
    }

    /// Clicks `element`.
    pub fn click(&self, element: &str) -> Result<(), String> {
        self.call(
            reqwest::Method::POST,
            &self.session_path(&format!("/element/{element}/click")),
            Some(json!({})),
        )
        .map(drop)
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    pub fn screenshot(&self, path: &Path) -> Result<(), String> {
        let encoded = self.call(
            reqwest::Method::GET,
            &self.session_path("/screenshot"),
            None,
        )?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .map_err(|e| format!("screenshot is not base64: {e}"))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .http
                .delete(format!("{}/session/{}", self.base, self.session))
                .timeout(Duration::from_secs(10))
                .send();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
