//! Just enough W3C WebDriver (https://www.w3.org/TR/webdriver2/) to drive Debian's headless
//! Chromium through chromedriver: JSON over HTTP with reqwest's blocking client, so the tests
//! need no async runtime and no WebDriver crate.
//!
//! `Driver::start` installs chromium and chromium-driver with scripts/chromium.sh when either
//! is missing, starts chromedriver on a free port (the process is ours; `Drop` kills it by its
//! handle) and `Session::new` opens a browser with a fresh profile. The browser log (console
//! errors, CSP violations) is read through chromedriver's `se/log` endpoint, which it keeps
//! beside the W3C ones (chromium.googlesource.com: chrome/test/chromedriver/server/http_handler.cc).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key W3C WebDriver names an element reference by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process of ours.
pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::blocking::Client,
}

impl Driver {
    pub fn start() -> Driver {
        ensure_installed();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = driver.http.get(format!("{}/status", driver.base)).send() {
                if r.json::<Value>()
                    .is_ok_and(|v| v["value"]["ready"] == json!(true))
                {
                    return driver;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver on port {port} did not become ready in 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let ok = resp.status().is_success();
        let v: Value = resp
            .json()
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: answer is not JSON: {e}"));
        if ok {
            Ok(v["value"].clone())
        } else {
            Err(v["value"].clone())
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs scripts/chromium.sh when the browser or the driver is missing (a fresh machine).
fn ensure_installed() {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/chromium.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed ({:?}):\n{}{}",
        script.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout).trim_end());
}

/// One headless browser.
pub struct Session<'a> {
    driver: &'a Driver,
    id: String,
    _profile: tempfile::TempDir,
}

impl<'a> Session<'a> {
    pub fn new(driver: &'a Driver, width: u32, height: u32) -> Session<'a> {
        let profile = tempfile::tempdir().unwrap();
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={width},{height}"),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"}
        }}});
        let v = driver
            .call(reqwest::Method::POST, "/session", Some(caps))
            .unwrap_or_else(|e| panic!("new session: {e}"));
        let id = v["sessionId"].as_str().expect("sessionId").to_string();
        Session {
            driver,
            id,
            _profile: profile,
        }
    }

    fn post(&self, path: &str, body: Value) -> Result<Value, Value> {
        self.driver.call(
            reqwest::Method::POST,
            &format!("/session/{}{path}", self.id),
            Some(body),
        )
    }

    fn get(&self, path: &str) -> Result<Value, Value> {
        self.driver.call(
            reqwest::Method::GET,
            &format!("/session/{}{path}", self.id),
            None,
        )
    }

    pub fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url}))
            .unwrap_or_else(|e| panic!("navigate to {url}: {e}"));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns what it returns.
    pub fn eval(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .unwrap_or_else(|e| panic!("script {script}: {e}"))
    }

    /// Waits until `script` returns true (10 s at most).
    pub fn wait_for(&self, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.eval(script, json!([])) != json!(true) {
            assert!(Instant::now() < deadline, "timed out waiting for: {script}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The element `css` selects (the first).
    pub fn find(&self, css: &str) -> String {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .unwrap_or_else(|e| panic!("find {css}: {e}"));
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("find {css}: no element reference in {v}"))
            .to_string()
    }

    pub fn click(&self, css: &str) {
        let el = self.find(css);
        self.post(&format!("/element/{el}/click"), json!({}))
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Types `text` into the element `css` selects, as key presses (input events fire).
    pub fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css);
        self.post(&format!("/element/{el}/value"), json!({"text": text}))
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    pub fn clear(&self, css: &str) {
        let el = self.find(css);
        self.post(&format!("/element/{el}/clear"), json!({}))
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
    }

    /// The text of an open alert/confirm/prompt, if one is open.
    pub fn alert_text(&self) -> Option<String> {
        self.get("/alert/text")
            .ok()
            .map(|v| v.as_str().unwrap_or_default().to_string())
    }

    /// The browser's log since the last call (console messages, CSP violations, load errors).
    pub fn browser_log(&self) -> Vec<Value> {
        match self.post("/se/log", json!({"type": "browser"})) {
            Ok(Value::Array(entries)) => entries,
            other => panic!("reading the browser log: {other:?}"),
        }
    }

    pub fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let v = self
            .get("/screenshot")
            .unwrap_or_else(|e| panic!("screenshot: {e}"));
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 PNG"))
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        // Closes the browser; chromedriver's own Drop then ends chromedriver.
        let _ = self.driver.call(
            reqwest::Method::DELETE,
            &format!("/session/{}", self.id),
            None,
        );
    }
}
