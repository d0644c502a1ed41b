//! Figures of the configuration API that its issue names.
//!
//! 1. **Confirmation latency**: from an HTTP `PUT` of a configuration returning to the
//!    `config_applied` of that version arriving on a WebSocket, over `--changes` changes, while
//!    a pipeline scores `--rate` points/s of `--series` synthetic series. The pipeline (two
//!    workers, the light detectors, a Redis sink to a real redis-server, the model store polled
//!    every `--poll-ms`, 1,000 by default as in `[models]`) and the gateway (Redis broker,
//!    the API on the same store) run in this process; the changes alternate the configuration's
//!    warning threshold, so every one is a real new version.
//! 2. **Preview**: `POST /api/v1/detectors/{name}/preview` over 24 h of one tenant's data
//!    (`--preview-series` series at one point a minute), through the `aiops gateway` binary
//!    reading a file (the embedded mode), repeated `--previews` times.
//!
//! `cargo bench --bench config_api -- [--changes 100] [--rate 100000] [--series 1000]
//! [--poll-ms 1000] [--no-notify] [--preview-series 100] [--previews 5]`. By default the API
//! tells the pipeline of each change over Redis, as `aiops gateway` and `aiops run` do with
//! a Redis configured; `--no-notify` measures the poll alone.

mod support;

#[path = "../tests/support/http.rs"]
mod http;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use aiops_connectors::changes::{ChangeNotifier, spawn_listener};
use aiops_connectors::sink::redis::RedisSink;
use aiops_connectors::source::synthetic::{SyntheticConfig, SyntheticSource};
use aiops_gateway::RunningGateway;
use aiops_gateway::auth::{Claims, mint};
use aiops_gateway::config::{GatewayConfig, KeyConfig};
use aiops_models::ModelStore;
use aiops_models::sqlite::SqliteStore;
use aiops_models::watch::ModelWatch;
use aiops_pipeline::config::RedisConfig;
use aiops_pipeline::{RunOptions, run};
use support::{Reaper, free_port, percentile, wait_for};

const SECRET: &str = "config-api-bench-secret-0123456789";

fn value(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn value_flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

fn key() -> KeyConfig {
    KeyConfig {
        kid: Some("bench".into()),
        algorithm: "HS256".into(),
        secret: Some(SECRET.into()),
        secret_file: None,
        public_key_file: None,
    }
}

fn token(tenant: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    mint(
        &key(),
        &Claims {
            tenant: tenant.into(),
            channels: vec!["config".into()],
            exp: now + 3600,
            nbf: None,
            sub: Some("bench".into()),
            aud: None,
            iss: None,
            scope: Some("detectors:read detectors:write".into()),
        },
    )
    .unwrap()
}

fn light(warning: f64) -> Value {
    json!({
        "match": {"metric": "cpu*"},
        "detectors": [{"kind": "zscore"}, {"kind": "mad"}],
        "ensemble": {"method": "mean"},
        "alert": {"warning": warning, "critical": 12.0, "clear": 3.0}
    })
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    confirmation_latency(&dir);
    preview(&dir);
}

fn confirmation_latency(dir: &tempfile::TempDir) {
    let (changes, rate, series, poll_ms) = (
        value("--changes", 100),
        value("--rate", 100_000),
        value("--series", 1_000),
        value("--poll-ms", 1_000),
    );
    let pause_ms = value("--pause-ms", 0);
    let redis_port = free_port();
    let _redis = Reaper(vec![
        Command::new("redis-server")
            .args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/services install)"),
    ]);
    wait_for(redis_port);
    let redis_url = format!("redis://127.0.0.1:{redis_port}");
    let store_dir = dir.path().join("models");
    let store: Arc<dyn ModelStore> = Arc::new(SqliteStore::open(&store_dir).unwrap());

    // The gateway with the API, in this process.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut settings = GatewayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: None,
        ..GatewayConfig::default()
    };
    settings.broker.redis_url = Some(redis_url.clone());
    settings.auth.keys = vec![key()];
    let mut state = aiops_control::ApiState::new(
        Arc::new(SqliteStore::open(&store_dir).unwrap()),
        aiops_gateway::Authenticator::from_config(&settings.auth).unwrap(),
        aiops_operators::Registry::builtin(),
    );
    if !value_flag("--no-notify") {
        // As `aiops gateway` does with a Redis broker: tell the pipelines of each change.
        let notifier = ChangeNotifier::new(&redis_url).unwrap();
        state = state.with_change_hook(Arc::new(move |stored| {
            let _ = notifier.notify(&format!(
                "{}/{}@{}",
                stored.tenant, stored.name, stored.version
            ));
        }));
    }
    let api = aiops_control::router(Arc::new(state));
    let gateway = runtime
        .block_on(async { RunningGateway::start_with_routes(settings, api) })
        .unwrap();
    let address = gateway.address;
    let token = token("demo");
    let (status, _, created) = http::request(
        address,
        "POST",
        "/api/v1/detectors",
        &token,
        &[],
        Some(&json!({"name": "cpu", "config": light(5.0)})),
    );
    assert_eq!(status, 201, "{created}");

    // The pipeline, in this process, at the rate.
    let watch = ModelWatch::new();
    watch.refresh(store.as_ref()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let poller = watch
        .clone()
        .spawn_poller(store.clone(), Duration::from_millis(poll_ms), stop.clone())
        .unwrap();
    let notified = !value_flag("--no-notify");
    if notified {
        // As `aiops run` does with a model store and Redis: look at the store when told.
        let woken = watch.clone();
        spawn_listener(&redis_url, stop.clone(), move || woken.wake()).unwrap();
    }
    let source = Arc::new(
        SyntheticSource::new(
            SyntheticConfig {
                series: series as usize,
                tenant: "demo".into(),
                points_per_second: Some(rate as f64),
                ..SyntheticConfig::default()
            },
            2,
        )
        .unwrap(),
    );
    // Every series on light detectors (the configuration's cpu series on its own): what is
    // measured is the confirmation under load, not the default ensemble's cost per point.
    let light_default = aiops_operators::Template {
        name: "default".into(),
        ..aiops_operators::Template::light()
    };
    let options = RunOptions {
        models: Some(watch),
        stop: stop.clone(),
        templates: Arc::new(
            aiops_operators::TemplateSet::new(
                vec![light_default],
                aiops_operators::Registry::builtin(),
            )
            .unwrap(),
        ),
        ..RunOptions::new(2)
    };
    let counters = options.counters.clone();
    let sink = RedisSink::new(RedisConfig {
        url: redis_url,
        stream_maxlen: 10_000,
        give_up_after_ms: 30_000,
        cluster: false,
        replicas: None,
    })
    .unwrap();
    let pipeline = std::thread::spawn(move || run(source, sink, options, |_| {}));

    let mut client = runtime.block_on(async {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{address}/").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        ws.send(Message::text(
            json!({"type": "subscribe", "channel": "config"}).to_string(),
        ))
        .await
        .unwrap();
        let _subscribed = ws.next().await;
        ws
    });
    // Wait for version 1 to be live, and the points to flow.
    let mut wait_applied = |version: u64, deadline: Instant| -> Option<Instant> {
        use futures_util::StreamExt;
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = runtime
                .block_on(async { tokio::time::timeout(left, client.next()).await })
                .ok()??
                .ok()?;
            let text = message.into_text().ok()?;
            let message: Value = serde_json::from_str(&text).unwrap_or_default();
            if message["event"]["type"] == "config_applied"
                && message["event"]["version"] == version
            {
                return Some(Instant::now());
            }
        }
        None
    };
    wait_applied(1, Instant::now() + Duration::from_secs(30)).expect("version 1 applied");
    // Until the pipeline keeps up with the rate (two seconds in a row at 90 % of it or more).
    let steady_deadline = Instant::now() + Duration::from_secs(60);
    let mut steady = 0;
    while steady < 2 && Instant::now() < steady_deadline {
        let before = counters.read().points_in;
        std::thread::sleep(Duration::from_secs(1));
        let per_second = counters.read().points_in - before;
        steady = if per_second as f64 >= 0.9 * rate as f64 {
            steady + 1
        } else {
            0
        };
    }
    let points_before = counters.read().points_in;
    let started = Instant::now();
    let mut latencies = Vec::new();
    for change in 0..changes {
        let version = change + 1;
        let warning = if change % 2 == 0 { 6.0 } else { 5.0 };
        let (status, _, body) = http::request(
            address,
            "PUT",
            "/api/v1/detectors/cpu",
            &token,
            &[("If-Match", &format!("\"{version}\""))],
            Some(&json!({"config": light(warning)})),
        );
        let returned = Instant::now();
        assert_eq!(status, 200, "{body}");
        let applied = wait_applied(version + 1, returned + Duration::from_secs(30))
            .unwrap_or_else(|| panic!("version {} never confirmed", version + 1));
        latencies.push(applied.duration_since(returned).as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(pause_ms));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let points = counters.read().points_in - points_before;
    stop.store(true, Ordering::Relaxed);
    let _ = pipeline.join();
    let _ = poller.join();
    latencies.sort_by(f64::total_cmp);
    println!(
        "PUT returned → config_applied on the WebSocket, {} changes while {:.0} points/s were scored ({} series, poll every {poll_ms} ms, {}): p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        latencies.len(),
        points as f64 / elapsed,
        series,
        if notified {
            "changes notified over Redis"
        } else {
            "no notifications: the poll alone"
        },
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
    );
    runtime.block_on(gateway.shutdown(Duration::from_secs(2)));
}

fn preview(dir: &tempfile::TempDir) {
    let (series, previews) = (value("--preview-series", 100), value("--previews", 5));
    let start_ms = 1_700_006_400_000;
    let data = dir.path().join("day.jsonl");
    std::fs::write(
        &data,
        http::points("shop", series as usize, 1_440, start_ms),
    )
    .unwrap();
    let port = free_port();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:0\"\n\
             [[auth.keys]]\nkid = \"bench\"\nalgorithm = \"HS256\"\nsecret = \"{SECRET}\"\n\
             [api]\nstore = \"{}\"\npreview_input = \"{}\"\n",
            dir.path().join("preview-models").display(),
            data.display()
        ),
    )
    .unwrap();
    let _gateway = Reaper(vec![
        Command::new(env!("CARGO_BIN_EXE_aiops"))
            .args(["gateway", "--config"])
            .arg(&config)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ]);
    wait_for(port);
    let address = format!("127.0.0.1:{port}").parse().unwrap();
    let token = token("shop");
    let preset = |warning: f64| http::preset_document("request-latency", warning);
    let (status, _, _) = http::request(
        address,
        "POST",
        "/api/v1/detectors",
        &token,
        &[],
        Some(&json!({"name": "latency", "config": preset(2.0)})),
    );
    assert_eq!(status, 201);
    let mut walls = Vec::new();
    let mut last = Value::Null;
    for _ in 0..previews {
        let started = Instant::now();
        let (status, _, answer) = http::request(
            address,
            "POST",
            "/api/v1/detectors/latency/preview",
            &token,
            &[],
            Some(&json!({"config": preset(3.0), "from": start_ms, "to": start_ms + 86_400_000})),
        );
        walls.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status, 200, "{answer}");
        last = answer;
    }
    walls.sort_by(f64::total_cmp);
    println!(
        "preview over 24 h of {series} series ({} points scored per configuration; draft {} events, live {}), {} runs: p50 {:.0} ms, max {:.0} ms (HTTP request to answer)",
        last["draft"]["points_scored"],
        last["draft"]["count"],
        last["live"]["count"],
        walls.len(),
        percentile(&walls, 0.5),
        walls.last().copied().unwrap_or(f64::NAN),
    );
}
