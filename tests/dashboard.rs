//! The live dashboard in a real browser: headless Chromium (Debian's), driven through
//! playwright-core by `tests/browser/dashboard-driver.cjs`. Screenshots are kept in
//! `target/browser/`.

mod support;

use support::Service;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use support::ws::{event, publish, token};

/// The browser, one command at a time.
struct Browser {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Browser {
    fn launch() -> Browser {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut child = support::playwright_node()
            .arg(root.join("tests/browser/dashboard-driver.cjs"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs (scripts/services install)");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Browser {
            child,
            stdin,
            stdout,
        }
    }

    /// Sends a command and returns its reply; panics with the page's state when it failed.
    fn call(&mut self, command: Value) -> Value {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let reply: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("driver reply {line:?}: {e}"));
        assert_eq!(reply["ok"], true, "{command} failed: {reply:#}");
        reply
    }

    fn snapshot(&mut self) -> Value {
        self.call(json!({"cmd": "snapshot"}))["snapshot"].clone()
    }

    fn screenshot(&mut self, name: &str) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        self.call(json!({"cmd": "screenshot", "path": path}));
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "a screenshot of {size} bytes is not a page");
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// Closes the browser; the page's console errors.
    fn close(mut self) -> Vec<String> {
        let reply = self.call(json!({"cmd": "close"}));
        let _ = self.child.wait();
        reply["console_errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e.as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn rows(snapshot: &Value) -> Vec<String> {
    snapshot["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Console errors other than the failed WebSocket handshakes a reconnect loop logs by design.
fn unexpected(errors: Vec<String>) -> Vec<String> {
    errors
        .into_iter()
        .filter(|e| !e.contains("WebSocket connection to"))
        .collect()
}

#[test]
fn the_demo_prints_a_dashboard_url_that_shows_its_anomalies_in_a_browser() {
    if !support::available(&[Service::Playwright, Service::Chromium]) {
        return;
    }
    let _serial = support::serial();
    let port = support::free_port();
    let mut demo = support::aiops()
        .args([
            "demo",
            "--duration",
            "12s",
            "--series",
            "20",
            "--rate",
            "2000",
        ])
        .args(["--anomaly-gap", "200", "--json"])
        .args(["--serve", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = demo.stdout.take().unwrap();
    let printed = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
            .filter_map(|e| e["id"].as_str().map(str::to_owned))
            .collect::<BTreeSet<String>>()
    });
    let stderr = demo.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
    let url = lines
        .find_map(|line| {
            line.split_whitespace()
                .find(|w| w.starts_with("http://") && w.contains("#token="))
                .map(str::to_owned)
        })
        .expect("the demo prints the dashboard's URL with a token");
    std::thread::spawn(move || lines.for_each(drop));

    let started = Instant::now();
    let mut browser = Browser::launch();
    browser.call(json!({"cmd": "open", "url": url}));
    browser.call(json!({"cmd": "wait_state", "state": "live", "timeout_ms": 15000}));
    let reply = browser.call(json!({"cmd": "wait_rows", "at_least": 5, "timeout_ms": 20000}));
    eprintln!(
        "first 5 anomaly rows {:.1} s after the page opened",
        started.elapsed().as_secs_f64()
    );
    let seen = reply["snapshot"].clone();
    assert!(
        seen["sparklines"].as_u64().unwrap() >= 1,
        "a sparkline per affected series: {seen:#}"
    );
    assert!(
        !seen["address"].as_str().unwrap().contains("token="),
        "the token leaves the address bar once read: {}",
        seen["address"]
    );
    let path = browser.screenshot("dashboard-demo.png");
    let shown = rows(&browser.snapshot());
    let errors = unexpected(browser.close());
    assert!(errors.is_empty(), "console errors: {errors:?}");

    let _ = demo.wait();
    let printed = printed.join().unwrap();
    let shown_set: BTreeSet<String> = shown.iter().cloned().collect();
    assert_eq!(
        shown.len(),
        shown_set.len(),
        "a row per event, no duplicates"
    );
    let strangers: Vec<&String> = shown_set.difference(&printed).collect();
    assert!(
        strangers.is_empty(),
        "every row is an event the demo emitted: {strangers:?}"
    );
    eprintln!(
        "{} rows on the page, {} events printed by the demo; screenshot {}",
        shown.len(),
        printed.len(),
        path.display()
    );
}

/// A gateway process on `port` with Redis at `redis_url`, using the tests' key.
fn gateway(port: u16, redis_url: &str, dir: &std::path::Path) -> Child {
    support::gateway_process(port, redis_url, dir, "")
}

#[test]
fn the_dashboard_reconnects_after_a_gateway_restart_and_resumes_without_gap_or_duplicate() {
    if !support::available(&[Service::Playwright, Service::Chromium, Service::Redis]) {
        return;
    }
    let _serial = support::serial();
    let redis = support::Redis::start();
    let url = redis.url(0);
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let mut gateway_process = gateway(port, &url, dir.path());
    let token = token("acme", &["anomalies", "drift"], 3600);

    let mut browser = Browser::launch();
    browser.call(json!({"cmd": "open", "url": format!("http://127.0.0.1:{port}/#token={token}")}));
    browser.call(json!({"cmd": "wait_state", "state": "live"}));

    let publish_events = |range: std::ops::Range<usize>| {
        for i in range {
            let id = format!("e{i}");
            let severity = if i % 3 == 0 { "critical" } else { "warning" };
            publish(&url, "acme", &id, &event("acme", &id, "cpu", severity));
            // Another tenant's events never reach this token's page.
            let other = format!("other{i}");
            publish(
                &url,
                "globex",
                &other,
                &event("globex", &other, "cpu", severity),
            );
        }
    };
    publish_events(0..5);
    let ids = |range: std::ops::Range<usize>| range.map(|i| format!("e{i}")).collect::<Vec<_>>();
    browser.call(json!({"cmd": "wait_ids", "ids": ids(0..5)}));

    // A drift event on the tenant's drift channel shows in the drift table.
    let drift = json!({
        "schema_version": 1, "id": "d1", "tenant": "acme", "template": "default",
        "series": {"key": "00000000000000ff", "name": "cpu", "labels": {"host": "web-1"}},
        "feature": "value", "test": "ks", "statistic": 0.41, "threshold": 0.2,
        "reference": {"start": 0, "end": 1}, "live": {"start": 1, "end": 2},
        "timestamp": 1_700_000_000_000i64, "model_version": "builtin-1"
    });
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut connection = client.get_connection().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        redis::cmd("PUBLISH")
            .arg(aiops_schemas::drift_channel("acme"))
            .arg(drift.to_string())
            .query::<i64>(&mut connection)
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        if browser.snapshot()["drift"] == json!(["d1"]) {
            break;
        }
        assert!(Instant::now() < deadline, "the drift event shows");
    }

    // The gateway dies; events keep coming into Redis while the page is cut off.
    let _ = gateway_process.kill();
    let _ = gateway_process.wait();
    browser.call(json!({"cmd": "wait_state", "state": "reconnecting", "timeout_ms": 10000}));
    publish_events(5..10);
    let mut gateway_process = gateway(port, &url, dir.path());

    let reply = browser.call(json!({"cmd": "wait_ids", "ids": ids(0..10), "timeout_ms": 30000}));
    browser.call(json!({"cmd": "wait_state", "state": "live"}));
    // Live events after the resume arrive too.
    publish_events(10..12);
    let reply_after = browser.call(json!({"cmd": "wait_ids", "ids": ids(0..12)}));
    let shown = rows(&reply_after["snapshot"]);
    let expected: BTreeSet<String> = ids(0..12).into_iter().collect();
    assert_eq!(
        shown.iter().cloned().collect::<BTreeSet<_>>(),
        expected,
        "exactly this tenant's events: {:#}",
        reply["snapshot"]
    );
    assert_eq!(shown.len(), 12, "no event shown twice: {shown:?}");
    let newest_first: Vec<String> = ids(0..12).into_iter().rev().collect();
    assert_eq!(shown, newest_first, "newest first, in stream order");
    assert_eq!(reply_after["snapshot"]["counters"]["events"], "12");
    browser.screenshot("dashboard-resumed.png");
    let errors = unexpected(browser.close());
    assert!(errors.is_empty(), "console errors: {errors:?}");
    let _ = gateway_process.kill();
    let _ = gateway_process.wait();
}

#[test]
fn a_bad_token_is_refused_and_the_page_says_so() {
    if !support::available(&[Service::Playwright, Service::Chromium, Service::Redis]) {
        return;
    }
    let _serial = support::serial();
    let redis = support::Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let mut gateway_process = gateway(port, &redis.url(0), dir.path());
    // Signed with another key.
    let forged = aiops_gateway::auth::mint(
        &aiops_gateway::config::KeyConfig {
            kid: Some("test".into()),
            algorithm: "HS256".into(),
            secret: Some("another-secret-another-secret-0123456789".into()),
            secret_file: None,
            public_key_file: None,
        },
        &aiops_gateway::Claims {
            tenant: "acme".into(),
            channels: vec!["*".into()],
            exp: support::ws::now() + 3600,
            nbf: None,
            sub: None,
            aud: None,
            iss: None,
            scope: None,
        },
    )
    .unwrap();
    let mut browser = Browser::launch();
    browser.call(json!({"cmd": "open", "url": format!("http://127.0.0.1:{port}/#token={forged}")}));
    let reply = browser.call(json!({"cmd": "wait_state", "state": "failed", "timeout_ms": 30000}));
    assert!(rows(&reply["snapshot"]).is_empty());
    let _ = browser.close();
    let _ = gateway_process.kill();
    let _ = gateway_process.wait();
}
