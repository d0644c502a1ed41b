//! Real services for the integration tests: a tansu broker and a redis-server per test, on free
//! loopback ports, that a test can kill and restart; and `aiops` processes to drive them.
//!
//! The binaries come from `scripts/services install` (tansu via `cargo install`, Redis from
//! Debian); `AIOPS_TANSU` may point at a tansu binary elsewhere.
//!
//! A test that needs any of them starts with `if !support::available(&[...]) { return; }`
//! (see [`available`]): on a fresh clone with only Rust, `cargo test` passes and says which
//! tests it skipped; `scripts/test` (and CI) sets `AIOPS_INTEGRATION=required`, which turns a
//! missing service into a failure.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One test at a time: each starts its own broker, Redis and pipelines, which would otherwise
/// fight over two cores and make timings meaningless.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Something beyond Rust that an integration test uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// The tansu Kafka broker (`AIOPS_TANSU`, `PATH` or `~/.cargo/bin`).
    Tansu,
    /// Debian's `redis-server`.
    Redis,
    /// Debian's `chromium`, headless.
    Chromium,
    /// `node` with playwright-core in `target/node` (drives Chromium).
    Playwright,
    /// The UI's own node modules (`npm ci` in `ui/`: playwright-core and axe-core for its
    /// browser scenarios).
    UiModules,
    /// The Python with pyarrow and prometheus_client in `target/py` (or `AIOPS_PYTHON`).
    Pyarrow,
    /// The `openssl` command (makes RSA and EC key pairs).
    Openssl,
    /// `kubectl` (with kustomize v4 or later) and `kubernetes-validate` in `target/py`.
    Kubernetes,
}

/// How missing services are treated, from `AIOPS_INTEGRATION`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Integration {
    /// Unset: a test whose services are missing is skipped, and says so.
    WhenInstalled,
    /// `required`: a missing service fails the test (scripts/test, CI).
    Required,
    /// `off`: every test that needs a service is skipped, installed or not (a quick run, and
    /// the check that every test declares what it uses: the helpers refuse undeclared use).
    Off,
}

fn integration() -> Integration {
    match std::env::var("AIOPS_INTEGRATION").as_deref() {
        Ok("required") => Integration::Required,
        Ok("off") => Integration::Off,
        _ => Integration::WhenInstalled,
    }
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

impl Service {
    fn installed(self) -> bool {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        match self {
            Service::Tansu => tansu_path().is_some(),
            Service::Redis => on_path("redis-server").is_some(),
            Service::Chromium => on_path("chromium").is_some(),
            Service::Playwright => {
                on_path("node").is_some()
                    && root
                        .join("target/node/node_modules/playwright-core/package.json")
                        .is_file()
            }
            Service::UiModules => {
                on_path("node").is_some()
                    && ["playwright-core", "axe-core"].iter().all(|module| {
                        root.join("ui/node_modules")
                            .join(module)
                            .join("package.json")
                            .is_file()
                    })
            }
            Service::Pyarrow => python().is_file(),
            Service::Openssl => on_path("openssl").is_some(),
            Service::Kubernetes => {
                on_path("kubectl").is_some()
                    && root.join("target/py/bin/kubernetes-validate").is_file()
            }
        }
    }

    /// Called by the helpers that use a service: under `AIOPS_INTEGRATION=off` a test that
    /// reaches one did not declare it in [`available`].
    fn used(self) {
        assert!(
            integration() != Integration::Off,
            "this test uses {self:?} but does not check support::available(&[Service::{self:?}, ..])"
        );
    }
}

/// Whether everything in `needs` is here. When not, and `AIOPS_INTEGRATION` is not
/// `required`, writes one "skipped" line to the terminal (past the test harness's capture, so
/// a plain `cargo test` shows it) and returns false: the test then returns without running.
pub fn available(needs: &[Service]) -> bool {
    let mode = integration();
    let missing: Vec<Service> = match mode {
        Integration::Off => needs.to_vec(),
        _ => needs.iter().copied().filter(|s| !s.installed()).collect(),
    };
    if missing.is_empty() {
        return true;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("an integration test")
        .to_string();
    assert!(
        mode != Integration::Required,
        "{test} needs {missing:?}, which are not installed: run scripts/services install"
    );
    let why = if mode == Integration::Off {
        "AIOPS_INTEGRATION=off".to_string()
    } else {
        format!("{missing:?} not installed; scripts/services install")
    };
    // Straight to the stream: the harness captures print!/eprint! of passing tests.
    let _ = writeln!(std::io::stderr(), "skipped: {test} ({why})");
    false
}

/// The Python that `scripts/services install` sets up in `target/py` (or `AIOPS_PYTHON`).
pub fn python() -> PathBuf {
    match std::env::var_os("AIOPS_PYTHON") {
        Some(python) => PathBuf::from(python),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/py/bin/python"),
    }
}

/// Headless Chromium as a command.
pub fn chromium() -> Command {
    Service::Chromium.used();
    Command::new("chromium")
}

/// `kubectl`, for `kubectl kustomize`.
pub fn kubectl() -> Command {
    Service::Kubernetes.used();
    Command::new("kubectl")
}

/// `kubernetes-validate` from `target/py`.
pub fn kubernetes_validate() -> Command {
    Service::Kubernetes.used();
    Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("target/py/bin/kubernetes-validate"))
}

/// The `openssl` command.
pub fn openssl() -> Command {
    Service::Openssl.used();
    Command::new("openssl")
}

/// `node` with `AIOPS_NODE_MODULES` pointing at playwright-core's `target/node/node_modules`.
pub fn playwright_node() -> Command {
    Service::Playwright.used();
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/node/node_modules");
    let mut node = Command::new("node");
    node.env("AIOPS_NODE_MODULES", modules);
    node
}

/// `node` for the UI's browser scenarios (`ui/e2e/`), with the UI's node modules.
pub fn ui_node() -> Command {
    Service::UiModules.used();
    Command::new("node")
}

/// The Python with pyarrow and prometheus_client.
pub fn pyarrow_python() -> Command {
    Service::Pyarrow.used();
    Command::new(python())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 20 s");
}

fn tansu_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("AIOPS_TANSU") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let home = std::env::var("HOME").unwrap_or_default();
    on_path("tansu")
        .or_else(|| Some(PathBuf::from(home).join(".cargo/bin/tansu")).filter(|p| p.is_file()))
}

fn find_tansu() -> PathBuf {
    Service::Tansu.used();
    tansu_path().expect("tansu not found: run scripts/services install (or set AIOPS_TANSU)")
}

/// Sends `signal` (`-TERM`, `-9`) to a child process and waits for it.
pub fn kill_child(child: &mut Child, signal: &str) {
    kill(child, signal);
}

fn kill(child: &mut Child, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// A tansu broker with SQLite storage (data and committed offsets survive restarts), or with
/// its in-memory storage (faster; nothing survives).
pub struct Broker {
    pub port: u16,
    db: PathBuf,
    memory: bool,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Broker {
    pub fn start() -> Broker {
        Broker::start_with(false)
    }

    /// Creates `topic` with `partitions` partitions if it does not exist.
    #[cfg(feature = "kafka")]
    pub fn ensure_topic(&self, topic: &str, partitions: i32) {
        let kafka = aiops_pipeline::config::KafkaConfig {
            brokers: self.address(),
            group: "setup".into(),
            topics: vec![],
            dead_letter_suffix: ".dlq".into(),
            anomalies_topic: None,
            options: Default::default(),
            instance_id: None,
            rejoin_stalled_after_ms: aiops_pipeline::config::DEFAULT_REJOIN_STALLED_MS,
        };
        aiops_connectors::source::kafka::ensure_topics(&kafka, &[(topic, partitions)]).unwrap();
    }

    pub fn start_in_memory() -> Broker {
        Broker::start_with(true)
    }

    fn start_with(memory: bool) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let mut broker = Broker {
            port: free_port(),
            db: dir.path().join("tansu.db"),
            memory,
            child: None,
            _dir: dir,
        };
        broker.launch();
        broker
    }

    fn launch(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        // tansu reads sqlite://FILE relative to its working directory.
        let child = Command::new(find_tansu())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .arg("--storage-engine")
            .arg(if self.memory {
                "memory://tansu/"
            } else {
                "sqlite://tansu.db"
            })
            .current_dir(self.db.parent().unwrap())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts");
        self.child = Some(child);
        wait_for_port(self.port, "tansu");
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `kill -9`, then start again on the same port and database.
    pub fn crash_and_restart(&mut self, down_for: Duration) {
        if let Some(mut child) = self.child.take() {
            kill(&mut child, "-9");
        }
        std::thread::sleep(down_for);
        self.launch();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(&mut child, "-9");
        }
    }
}

/// A redis-server with an append-only file synced on every write, so a restart keeps the
/// events written before it.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        let mut redis = Redis::reserve();
        redis.launch();
        redis
    }

    /// A port and a directory, with no server yet: see [`Redis::launch`].
    pub fn reserve() -> Redis {
        Redis {
            port: free_port(),
            child: None,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Starts the server (again).
    pub fn launch(&mut self) {
        Service::Redis.used();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (scripts/services install)");
        self.child = Some(child);
        wait_for_port(self.port, "redis-server");
    }

    pub fn url(&self, db: u8) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    /// `kill -9`, then start again on the same port and files.
    pub fn crash_and_restart(&mut self, down_for: Duration) {
        if let Some(mut child) = self.child.take() {
            kill(&mut child, "-9");
        }
        std::thread::sleep(down_for);
        self.launch();
    }

    /// Every entry of a tenant's event stream, in stream order: (event id, event JSON).
    pub fn stream(&self, db: u8, tenant: &str) -> Vec<(String, Vec<u8>)> {
        let client = redis::Client::open(self.url(db)).unwrap();
        let mut connection = client.get_connection().unwrap();
        read_stream(&mut connection, &aiops_schemas::anomalies_log_key(tenant))
    }

    /// Every event id in a tenant's stream, in stream order.
    pub fn stream_ids(&self, db: u8, tenant: &str) -> Vec<String> {
        self.stream(db, tenant)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    /// Subscribes to a channel; the receiver gets each message's payload.
    pub fn subscribe(&self, db: u8, channel_name: &str) -> Receiver<Vec<u8>> {
        let (sender, receiver) = channel();
        let url = self.url(db);
        let channel_name = channel_name.to_owned();
        let (ready, subscribed) = channel();
        std::thread::spawn(move || {
            let client = redis::Client::open(url).unwrap();
            let mut connection = client.get_connection().unwrap();
            let mut pubsub = connection.as_pubsub();
            pubsub.subscribe(&channel_name).unwrap();
            let _ = ready.send(());
            while let Ok(message) = pubsub.get_message() {
                if sender.send(message.get_payload_bytes().to_vec()).is_err() {
                    return;
                }
            }
        });
        subscribed
            .recv_timeout(Duration::from_secs(10))
            .expect("subscribed");
        receiver
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(&mut child, "-9");
        }
    }
}

pub fn aiops() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aiops"))
}

/// Runs `aiops produce` to completion.
pub fn produce(brokers: &str, args: &[&str]) {
    let output = aiops()
        .args(["produce", "--quiet", "--brokers", brokers])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "aiops produce failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// An `aiops run` configuration file.
pub struct RunConfig {
    pub brokers: String,
    pub topic: String,
    pub group: String,
    pub redis_url: String,
    pub checkpoint_dir: PathBuf,
    pub workers: usize,
    pub extra: String,
}

/// The production-path tests score with the light template (z-score and MAD): they test
/// delivery, not detection, and the default ensemble is 40–55 times slower per point,
/// which in a debug build would make their hundreds of thousands of points take minutes.
pub const LIGHT_DEFAULT_TEMPLATE: &str = "[[templates]]\nname = \"default\"\n\
     detectors = [{ kind = \"zscore\" }, { kind = \"mad\" }]\nensemble = { method = \"mean\" }\n\
     alert = { warning = 5.0, critical = 8.0, clear = 3.0 }\n";

/// The templates [`LIGHT_DEFAULT_TEMPLATE`] configures, read the way `aiops run` reads them,
/// for in-process reference runs.
pub fn light_default_templates() -> std::sync::Arc<aiops_operators::TemplateSet> {
    toml::from_str::<aiops_pipeline::PipelineConfig>(LIGHT_DEFAULT_TEMPLATE)
        .unwrap()
        .template_set()
        .unwrap()
}

impl RunConfig {
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        let text = format!(
            "[pipeline]\nworkers = {}\nepoch_ms = 2\nstatus_interval_s = 1\n\n\
             [kafka]\nbrokers = \"{}\"\ngroup = \"{}\"\ntopics = [{{ name = \"{}\" }}]\nrejoin_stalled_after_ms = 10000\n\n\
             [redis]\nurl = \"{}\"\ngive_up_after_ms = 60000\n\n\
             [checkpoint]\ndir = \"{}\"\ninterval_ms = 500\n\n\
             [kafka.options]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n\n{}\n{}",
            self.workers,
            self.brokers,
            self.group,
            self.topic,
            self.redis_url,
            self.checkpoint_dir.display(),
            self.extra,
            LIGHT_DEFAULT_TEMPLATE
        );
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// A running `aiops run`, its stderr collected.
pub struct Pipeline {
    child: Child,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Pipeline {
    pub fn start(config: &Path, args: &[&str]) -> Pipeline {
        let mut child = aiops()
            .arg("run")
            .arg("--config")
            .arg(config)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        Pipeline { child, stderr }
    }

    /// Waits until a line of stderr satisfies `predicate`; panics after `timeout`.
    pub fn wait_for_line(&self, timeout: Duration, predicate: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stderr.lock().unwrap().iter().any(|l| predicate(l)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "no such line within {timeout:?}:\n{}",
            self.stderr.lock().unwrap().join("\n")
        );
    }

    /// Waits until the status lines show points flowing (a rate above zero); false if they
    /// do not within `timeout` (nothing left to read, say).
    pub fn wait_until_consuming(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let consuming = self.stderr.lock().unwrap().iter().any(|line| {
                line.starts_with('[')
                    && line.contains(" points/s")
                    && !line.contains("] 0 points/s")
            });
            if consuming {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits for the process to exit by itself; panics with its stderr if it fails or hangs.
    pub fn wait(mut self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                let lines = self.stderr.lock().unwrap().clone();
                assert!(
                    status.success(),
                    "aiops run failed ({status}):\n{}",
                    lines.join("\n")
                );
                return lines;
            }
            if Instant::now() > deadline {
                kill(&mut self.child, "-9");
                panic!(
                    "aiops run did not finish within {timeout:?}:\n{}",
                    self.stderr.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill_9(mut self) -> Vec<String> {
        kill(&mut self.child, "-9");
        self.stderr.lock().unwrap().clone()
    }

    /// SIGTERM: the graceful path.
    pub fn terminate(mut self, timeout: Duration) -> Vec<String> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                kill(&mut self.child, "-9");
                panic!(
                    "aiops run ignored SIGTERM for {timeout:?}:\n{}",
                    self.stderr.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(100));
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            kill(&mut self.child, "-9");
        }
    }
}

pub fn id_set(ids: &[String]) -> BTreeSet<String> {
    ids.iter().cloned().collect()
}

/// An `aiops gateway` process on `port` with Redis at `redis_url` and the tests' key
/// ([`ws::key`]), its configuration written in `dir` with `extra` TOML after it (e.g. an
/// `[api]` table). Waits until it listens.
pub fn gateway_process(port: u16, redis_url: &str, dir: &Path, extra: &str) -> Child {
    let config = dir.join("gateway.toml");
    // As TOML by hand: the toml crate is built without its writer.
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\n[broker]\nredis_url = \"{redis_url}\"\n\
             [[auth.keys]]\nkid = \"test\"\nalgorithm = \"HS256\"\nsecret = \"{}\"\n{extra}",
            ws::SECRET
        ),
    )
    .unwrap();
    let child = aiops()
        .args(["gateway", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, "aiops gateway");
    child
}

/// `GET path` of a plain HTTP server: the status and the body; `None` while it does not answer.
pub fn http_get(address: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// `GET /metrics` of a plain HTTP server; `None` while it does not answer.
pub fn scrape(address: &str) -> Option<String> {
    let (status, body) = http_get(address, "/metrics")?;
    assert_eq!(status, 200, "{body}");
    Some(body)
}

/// Every entry of an event stream (`key`) on any Redis connection, a node's or a cluster's, in
/// stream order: (event id, event JSON).
pub fn read_stream(
    connection: &mut impl redis::ConnectionLike,
    key: &str,
) -> Vec<(String, Vec<u8>)> {
    type Entry = (String, Vec<(String, Vec<u8>)>);
    let entries: Vec<Entry> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query(connection)
        .unwrap();
    entries
        .into_iter()
        .map(|(_, fields)| {
            let field = |name: &str| {
                fields
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            (
                String::from_utf8_lossy(&field("id")).into_owned(),
                field("event"),
            )
        })
        .collect()
}

/// A Prometheus text page read by an independent parser (Python's `prometheus_client`, in
/// `target/py`): `{family: [type, [sample values...], [[sample name, {labels}]...]]}`. The parser strips `_total` from counter
/// family names and fails on anything that is not valid exposition format.
pub fn parse_prometheus(body: &str) -> serde_json::Value {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
families = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    # A gauge `x` beside a counter `x_total` is one family name in OpenMetrics: refuse the page.
    if f.name in families:
        sys.exit("two metric families named " + f.name)
    families[f.name] = (f.type, [s.value for s in f.samples], [[s.name, s.labels] for s in f.samples])
print(json.dumps(families))
"#;
    let mut child = pyarrow_python()
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("target/py has prometheus_client (scripts/services install)");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the parser refused the page:\n{body}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Appends a line to a file, for test logs kept on failure.
pub fn log(path: &Path, line: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(file, "{line}").unwrap();
}

/// WebSocket clients and gateways for the gateway tests.
/// An `aiops gateway` process with the configuration API on a store in `dir` (and previews
/// over `preview_input`), its in-memory broker, and the test key of [`ws::key`]; killed on drop.
pub struct ApiGateway {
    child: Child,
    pub address: std::net::SocketAddr,
}

impl ApiGateway {
    pub fn start(dir: &Path, preview_input: Option<&Path>) -> ApiGateway {
        let port = free_port();
        let config = dir.join("gateway.toml");
        let preview = preview_input
            .map(|p| format!("preview_input = \"{}\"\n", p.display()))
            .unwrap_or_default();
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:0\"\n\
                 [[auth.keys]]\nkid = \"test\"\nalgorithm = \"HS256\"\nsecret = \"{}\"\n\
                 [api]\nstore = \"{}\"\n{preview}",
                ws::SECRET,
                dir.join("models").display(),
            ),
        )
        .unwrap();
        let child = aiops()
            .args(["gateway", "--config"])
            .arg(&config)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port, "aiops gateway");
        ApiGateway {
            child,
            address: format!("127.0.0.1:{port}").parse().unwrap(),
        }
    }

    /// The store directory.
    pub fn store(dir: &Path) -> PathBuf {
        dir.join("models")
    }

    /// A token of `tenant` for `sub` with both detector scopes and the `config` channel.
    pub fn token(tenant: &str, sub: &str) -> String {
        aiops_gateway::auth::mint(
            &ws::key(),
            &aiops_gateway::auth::Claims {
                tenant: tenant.into(),
                channels: vec!["config".into()],
                exp: ws::now() + 600,
                nbf: None,
                sub: Some(sub.into()),
                aud: None,
                iss: None,
                scope: Some("detectors:read detectors:write".into()),
            },
        )
        .unwrap()
    }
}

impl Drop for ApiGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub mod cluster;
#[cfg(all(feature = "kafka", feature = "redis"))]
pub mod group;
pub mod http;

pub mod ws {
    use std::net::SocketAddr;
    use std::time::Duration;

    use futures_util::{SinkExt, StreamExt};
    use tokio::net::TcpStream;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    use aiops_gateway::auth::{Claims, mint};
    use aiops_gateway::config::{GatewayConfig, KeyConfig};

    pub const SECRET: &str = "integration-test-secret-0123456789abcdef";

    pub fn key() -> KeyConfig {
        KeyConfig {
            kid: Some("test".into()),
            algorithm: "HS256".into(),
            secret: Some(SECRET.into()),
            secret_file: None,
            public_key_file: None,
        }
    }

    /// A gateway configuration on a free port with the test key.
    pub fn config(redis_url: Option<String>) -> GatewayConfig {
        let mut config = GatewayConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            admin_listen: Some("127.0.0.1:0".parse().unwrap()),
            ..GatewayConfig::default()
        };
        config.broker.redis_url = redis_url;
        config.auth.keys = vec![key()];
        config
    }

    pub fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    /// A token for `tenant` granting `channels`, valid for `ttl_s` seconds.
    pub fn token(tenant: &str, channels: &[&str], ttl_s: i64) -> String {
        mint(
            &key(),
            &Claims {
                tenant: tenant.into(),
                channels: channels.iter().map(|c| c.to_string()).collect(),
                exp: (now() as i64 + ttl_s) as u64,
                nbf: None,
                sub: Some("test".into()),
                aud: None,
                iss: None,
                scope: None,
            },
        )
        .unwrap()
    }

    /// An anomaly event's JSON, as the pipeline writes it.
    pub fn event(tenant: &str, id: &str, metric: &str, severity: &str) -> String {
        serde_json::json!({
            "schema_version": 1, "id": id, "tenant": tenant,
            "series": {"key": "00000000000000ff", "name": metric, "labels": {"host": "web-1"}},
            "timestamp": 1_700_000_000_000i64, "onset": 1_700_000_000_000i64, "value": 42.0,
            "expected": {"lower": 0.0, "upper": 10.0}, "score": 9.0, "severity": severity,
            "escalation": false, "detector": "ensemble", "template": "default",
            "model_version": "builtin-1", "contributions": []
        })
        .to_string()
    }

    /// Writes an event the way the pipeline's Redis sink does: history first, then live.
    pub fn publish(redis_url: &str, tenant: &str, id: &str, payload: &str) {
        let client = redis::Client::open(redis_url).unwrap();
        let mut connection = client.get_connection().unwrap();
        redis::pipe()
            .cmd("XADD")
            .arg(aiops_schemas::anomalies_log_key(tenant))
            .arg("*")
            .arg("id")
            .arg(id)
            .arg("event")
            .arg(payload)
            .ignore()
            .cmd("PUBLISH")
            .arg(aiops_schemas::anomalies_channel(tenant))
            .arg(payload)
            .ignore()
            .query::<()>(&mut connection)
            .unwrap();
    }

    pub struct Client {
        pub ws: WebSocketStream<TcpStream>,
    }

    /// The status and JSON body of a refused upgrade.
    pub type Refusal = (u16, serde_json::Value);

    /// Connects with `Authorization: Bearer <token>` (or no header when `token` is empty).
    pub async fn connect(address: SocketAddr, token: &str) -> Result<Client, Refusal> {
        let mut request = format!("ws://{address}/").into_client_request().unwrap();
        if !token.is_empty() {
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let stream = TcpStream::connect(address).await.unwrap();
        match tokio_tungstenite::client_async(request, stream).await {
            Ok((ws, _)) => Ok(Client { ws }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                let body = response
                    .body()
                    .as_ref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(serde_json::Value::Null);
                Err((status, body))
            }
            Err(other) => panic!("connect: {other}"),
        }
    }

    /// A client of `tenant` with a token for the anomalies channel (60 s), subscribed to all
    /// of it.
    pub async fn subscribed_to_anomalies(address: SocketAddr, tenant: &str) -> Client {
        let mut client = connect(address, &token(tenant, &["anomalies"], 60))
            .await
            .unwrap();
        client
            .subscribe(serde_json::json!({"type": "subscribe", "channel": "anomalies"}))
            .await;
        client
    }

    impl Client {
        pub async fn send(&mut self, value: serde_json::Value) {
            self.ws
                .send(Message::text(value.to_string()))
                .await
                .unwrap();
        }

        /// The next JSON message, skipping control frames; `None` on timeout or close.
        pub async fn next(&mut self, timeout: Duration) -> Option<serde_json::Value> {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let message = tokio::time::timeout_at(deadline, self.ws.next())
                    .await
                    .ok()??
                    .ok()?;
                if let Message::Text(text) = message {
                    return serde_json::from_str(&text).ok();
                }
                if let Message::Close(_) = message {
                    return None;
                }
            }
        }

        /// Subscribes and waits for the reply.
        pub async fn subscribe(&mut self, request: serde_json::Value) -> serde_json::Value {
            self.send(request).await;
            self.next(Duration::from_secs(10))
                .await
                .expect("a reply to subscribe")
        }

        /// Waits for the server to close; its close code.
        pub async fn close_code(&mut self, timeout: Duration) -> Option<u16> {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                match tokio::time::timeout_at(deadline, self.ws.next()).await {
                    Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
                    Ok(Some(Ok(_))) => continue,
                    _ => return None,
                }
            }
        }

        /// Event ids received until `timeout` passes without one.
        pub async fn event_ids(&mut self, timeout: Duration) -> Vec<String> {
            let mut ids = Vec::new();
            while let Some(message) = self.next(timeout).await {
                if message["type"] == "event" {
                    ids.push(
                        message["event"]["id"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                }
            }
            ids
        }
    }
}
