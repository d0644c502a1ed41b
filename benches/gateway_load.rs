//! Load test of the WebSocket gateway: N real WebSocket connections (each authenticated with a
//! JWT) subscribed across tenants, events published into Redis at a set rate, and the figures
//! that matter: publish → client-receive latency, connection time, resident memory per
//! connection.
//!
//! `cargo bench --bench gateway_load -- [--connections 10000] [--tenants 100] [--rate 1000]
//! [--seconds 20] [--parallel 16] [--stuck 0] [--pad 0] [--send-buffer 131072] [--check --max-rss-mib M --close-within-s S]`.
//! `--send-buffer` is the gateway's `limits.send_buffer_bytes` (0: the kernel's autotuning).
//! With `--stuck N`, N of the connections (spread over the tenants) subscribe and then never
//! read, with a 4 KiB receive buffer: the gateway must close them (4008) and keep delivering to
//! the others; the closes are timed by sampling the gateway's slow-disconnect counter every
//! 100 ms, and afterwards each non-reader reads what it was sent to see whether its last frame
//! is the 4008 close. `--pad B` adds B bytes to each event, so that non-readers fill their socket
//! buffers sooner. `--check` makes the run a test: it exits 1 unless every reader got every
//! event, every non-reader was closed within S seconds of the start of publishing, and the
//! gateway's resident memory never went above M MiB. It starts its own redis-server and an
//! `aiops gateway` process (so the gateway's memory is measured alone); each event fans out to
//! connections / tenants clients.

mod support;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use aiops_gateway::auth::{Claims, mint};
use aiops_gateway::config::KeyConfig;
use support::{Reaper, free_port, percentile, wait_for};

const SECRET: &str = "gateway-load-secret-0123456789abcdef";

struct Options {
    parallel: usize,
    connections: usize,
    tenants: usize,
    rate: u64,
    seconds: u64,
    stuck: usize,
    pad: usize,
    check: bool,
    max_rss_mib: u64,
    close_within_s: u64,
    send_buffer: u64,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    Options {
        parallel: value("--parallel", 16).max(1) as usize,
        connections: value("--connections", 10_000) as usize,
        tenants: value("--tenants", 100).max(1) as usize,
        rate: value("--rate", 1_000).max(1),
        seconds: value("--seconds", 20),
        stuck: value("--stuck", 0) as usize,
        pad: value("--pad", 0) as usize,
        check: args.iter().any(|a| a == "--check"),
        max_rss_mib: value("--max-rss-mib", 256),
        close_within_s: value("--close-within-s", 30),
        send_buffer: value("--send-buffer", 128 * 1024),
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let options = options();
    let dir = std::env::temp_dir().join(format!("aiops-gateway-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (redis_port, gateway_port, admin_port) = (free_port(), free_port(), free_port());
    let redis = Command::new("redis-server")
        .args([
            "--port",
            &redis_port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (scripts/services install)");
    let mut reaper = Reaper(vec![redis]);
    wait_for(redis_port);
    let redis_url = format!("redis://127.0.0.1:{redis_port}");
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{gateway_port}\"\nadmin_listen = \"127.0.0.1:{admin_port}\"\n[broker]\nredis_url = \"{redis_url}\"\n\
             [[auth.keys]]\nkid = \"load\"\nalgorithm = \"HS256\"\nsecret = \"{SECRET}\"\n\
             [limits]\nmax_connections = {}\nconnections_per_ip_per_s = 1000000\nsend_buffer_bytes = {}\n",
            options.connections + 100,
            options.send_buffer
        ),
    )
    .unwrap();
    let gateway = Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args(["gateway", "--config"])
        .arg(&config)
        .stderr(Stdio::null())
        .spawn()
        .expect("aiops gateway");
    let gateway_pid = gateway.id();
    reaper.0.push(gateway);
    wait_for(gateway_port);
    std::thread::sleep(Duration::from_millis(300));
    let rss_before = rss_kib(gateway_pid);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let key = KeyConfig {
        kid: Some("load".into()),
        algorithm: "HS256".into(),
        secret: Some(SECRET.into()),
        secret_file: None,
        public_key_file: None,
    };
    let exp = now_us() / 1_000_000 + 3600;
    let tokens: Vec<String> = (0..options.tenants)
        .map(|t| {
            let claims = Claims {
                tenant: format!("tenant{t}"),
                channels: vec!["anomalies".into()],
                exp,
                nbf: None,
                sub: None,
                aud: None,
                iss: None,
                scope: None,
            };
            mint(&key, &claims).unwrap()
        })
        .collect();

    // Every `every`-th connection is stuck: it never reads after subscribing.
    let every = options
        .connections
        .checked_div(options.stuck)
        .unwrap_or(0)
        .max(1);
    let is_stuck =
        |i: usize| options.stuck > 0 && i.is_multiple_of(every) && i / every < options.stuck;
    let stuck_held: Arc<std::sync::Mutex<Vec<tokio_tungstenite::WebSocketStream<TcpStream>>>> =
        Arc::default();
    let latencies: Arc<std::sync::Mutex<Vec<f64>>> = Arc::default();
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (connect_times, failures) = runtime.block_on(async {
        // Connection attempts in flight at once: the time measured is one connection's, not
        // a queue's.
        let semaphore = Arc::new(tokio::sync::Semaphore::new(options.parallel));
        let mut handles = Vec::with_capacity(options.connections);
        for i in 0..options.connections {
            let permit = semaphore.clone().acquire_owned().await.unwrap();
            let token = tokens[i % options.tenants].clone();
            let (latencies, received, stop) = (latencies.clone(), received.clone(), stop.clone());
            let stuck = is_stuck(i);
            let stuck_held = stuck_held.clone();
            handles.push(tokio::spawn(async move {
                let started = Instant::now();
                let mut request = format!("ws://127.0.0.1:{gateway_port}/")
                    .into_client_request()
                    .unwrap();
                request
                    .headers_mut()
                    .insert("authorization", format!("Bearer {token}").parse().unwrap());
                let socket = tokio::net::TcpSocket::new_v4().ok()?;
                if stuck {
                    socket.set_recv_buffer_size(4096).ok()?;
                }
                let stream = socket
                    .connect(std::net::SocketAddr::from(([127, 0, 0, 1], gateway_port)))
                    .await
                    .ok()?;
                let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
                    .await
                    .ok()?;
                let connect = started.elapsed();
                ws.send(Message::text(
                    r#"{"type":"subscribe","channel":"anomalies"}"#,
                ))
                .await
                .ok()?;
                let _subscribed = ws.next().await?;
                drop(permit);
                if stuck {
                    stuck_held.lock().unwrap().push(ws);
                    return Some(connect);
                }
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        match tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
                            Ok(Some(Ok(Message::Text(text)))) => {
                                let now = now_us();
                                if let Some(at) = text.find("\"sent_us\":") {
                                    let digits: String = text[at + 10..]
                                        .chars()
                                        .take_while(char::is_ascii_digit)
                                        .collect();
                                    if let Ok(sent) = digits.parse::<u64>() {
                                        mine.push(now.saturating_sub(sent) as f64 / 1000.0);
                                        received.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                            }
                            Ok(Some(Ok(_))) | Err(_) => {}
                            _ => break,
                        }
                    }
                    latencies.lock().unwrap().extend(mine);
                });
                Some(connect)
            }));
        }
        let mut times = Vec::new();
        let mut failures = 0;
        for handle in handles {
            match handle.await.ok().flatten() {
                Some(time) => times.push(time.as_secs_f64() * 1000.0),
                None => failures += 1,
            }
        }
        (times, failures)
    });
    std::thread::sleep(Duration::from_secs(2));
    let rss_after = rss_kib(gateway_pid);
    let per_connection_kib =
        (rss_after.saturating_sub(rss_before)) as f64 / connect_times.len().max(1) as f64;

    // Publish at the rate, round-robin over tenants, the way the pipeline writes events.
    let client = redis::Client::open(redis_url.as_str()).unwrap();
    let mut connection = client.get_connection().unwrap();
    let total = options.rate * options.seconds;
    let started = Instant::now();
    // Every 100 ms: the gateway's resident memory and its count of slow consumers closed, so
    // each close is timed to within 100 ms of the start of publishing.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            let (mut peak_rss, mut closes, mut seen) = (0u64, Vec::new(), 0u64);
            while sampling.load(Ordering::Relaxed) {
                peak_rss = peak_rss.max(rss_kib(gateway_pid));
                let count = scrape_counter(admin_port, "aiops_gateway_slow_disconnects_total");
                let at = started.elapsed().as_secs_f64();
                closes.extend(std::iter::repeat_n(at, count.saturating_sub(seen) as usize));
                seen = seen.max(count);
                std::thread::sleep(Duration::from_millis(100));
            }
            (peak_rss, closes)
        })
    };
    let mut per_tenant: HashMap<usize, u64> = HashMap::new();
    let padding = "p".repeat(options.pad);
    for n in 0..total {
        let due = Duration::from_secs_f64(n as f64 / options.rate as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        let tenant = n as usize % options.tenants;
        *per_tenant.entry(tenant).or_default() += 1;
        let payload = format!(
            r#"{{"schema_version":1,"id":"load-{n}","tenant":"tenant{tenant}","series":{{"key":"00000000000000ff","name":"cpu","labels":{{}}}},"severity":"warning","padding":"{padding}","sent_us":{}}}"#,
            now_us()
        );
        redis::pipe()
            .cmd("XADD")
            .arg(aiops_schemas::anomalies_log_key(&format!("tenant{tenant}")))
            .arg("MAXLEN")
            .arg("~")
            .arg(10000)
            .arg("*")
            .arg("id")
            .arg(format!("load-{n}"))
            .arg("event")
            .arg(&payload)
            .ignore()
            .cmd("PUBLISH")
            .arg(aiops_schemas::anomalies_channel(&format!("tenant{tenant}")))
            .arg(&payload)
            .ignore()
            .query::<()>(&mut connection)
            .unwrap();
    }
    let publish_seconds = started.elapsed().as_secs_f64();
    let slow_closed_by_end = scrape_counter(admin_port, "aiops_gateway_slow_disconnects_total");
    std::thread::sleep(Duration::from_secs(2));
    sampling.store(false, Ordering::Relaxed);
    let (peak_rss, closes) = sampler.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(800));
    // Each non-reader now reads what it was sent: does it end with the 4008 close frame?
    let held = std::mem::take(&mut *stuck_held.lock().unwrap());
    let stuck_count = held.len();
    let ends = runtime.block_on(async {
        let drains = held.into_iter().map(|mut ws| async move {
            let drained = async {
                while let Some(message) = ws.next().await {
                    match message {
                        Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                        Ok(_) => {}
                        Err(_) => return None,
                    }
                }
                None
            };
            tokio::time::timeout(Duration::from_secs(10), drained)
                .await
                .ok()
                .flatten()
        });
        futures_util::future::join_all(drains).await
    });
    let got_4008 = ends.iter().filter(|code| **code == Some(4008)).count();
    drop(runtime);

    let mut latencies = std::mem::take(&mut *latencies.lock().unwrap());
    latencies.sort_by(f64::total_cmp);
    let mut connects = connect_times;
    connects.sort_by(f64::total_cmp);
    let connected = connects.len();
    let expected: u64 = per_tenant
        .iter()
        .map(|(t, events)| {
            events
                * (0..options.connections)
                    .filter(|i| i % options.tenants == *t && !is_stuck(*i))
                    .count() as u64
        })
        .sum();
    println!(
        "gateway load: {} connections ({} failed), {} tenants, {} events in {:.1} s ({:.0} events/s), {} deliveries of {} expected",
        connected,
        failures,
        options.tenants,
        total,
        publish_seconds,
        total as f64 / publish_seconds,
        received.load(Ordering::Relaxed),
        expected
    );
    println!(
        "connect with JWT: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&connects, 0.5),
        percentile(&connects, 0.99),
        connects.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "publish → client receive: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "gateway resident memory: {rss_before} KiB idle, {rss_after} KiB with {connected} subscribed connections: {per_connection_kib:.1} KiB per connection"
    );
    let last_close = closes.last().copied();
    if options.stuck > 0 {
        println!(
            "stuck clients: {stuck_count} that never read; closed as slow (4008) by the end of publishing: {slow_closed_by_end}, {} in all; closes at {} s after publishing started (first, median, last); {got_4008} found the 4008 close frame when they read at last",
            closes.len(),
            match (closes.first(), last_close) {
                (Some(first), Some(last)) =>
                    format!("{first:.1}, {:.1}, {last:.1}", closes[closes.len() / 2]),
                _ => "-".into(),
            },
        );
    }
    println!(
        "gateway peak resident memory while publishing: {} KiB",
        peak_rss
    );
    let _ = std::fs::remove_dir_all(&dir);
    if options.check {
        let mut failed = Vec::new();
        if received.load(Ordering::Relaxed) < expected {
            failed.push(format!(
                "readers got {} of {expected} deliveries",
                received.load(Ordering::Relaxed)
            ));
        }
        if closes.len() < stuck_count {
            failed.push(format!(
                "{} of {stuck_count} non-readers closed as slow",
                closes.len()
            ));
        }
        if last_close.is_some_and(|at| at > options.close_within_s as f64) {
            failed.push(format!(
                "the last non-reader was closed {:.1} s after publishing started (limit {} s)",
                last_close.unwrap_or_default(),
                options.close_within_s
            ));
        }
        if peak_rss > options.max_rss_mib * 1024 {
            failed.push(format!(
                "peak resident memory {peak_rss} KiB above {} MiB",
                options.max_rss_mib
            ));
        }
        if failures > 0 {
            failed.push(format!("{failures} connections failed"));
        }
        if failed.is_empty() {
            println!("check: passed");
        } else {
            println!("check: FAILED: {}", failed.join("; "));
            // `exit` runs no destructors: stop redis-server and the gateway first.
            drop(reaper);
            std::process::exit(1);
        }
    }
}

/// A counter's value on the gateway's admin endpoint.
fn scrape_counter(port: u16, name: &str) -> u64 {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
    let mut page = String::new();
    let _ = stream.read_to_string(&mut page);
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}
