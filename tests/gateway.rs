//! The WebSocket gateway against a real redis-server and real WebSocket clients: delivery,
//! filters, resume without gap or duplicate, a Redis restart, slow clients.

mod support;

use support::Service;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aiops_gateway::RunningGateway;
use serde_json::json;
use support::Redis;
use support::ws::{config, connect, event, publish, subscribed_to_anomalies, token};

const SHORT: Duration = Duration::from_millis(400);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_events_reach_subscribers_through_their_filters_and_tenant() {
    if !support::available(&[Service::Redis]) {
        return;
    }
    let redis = Redis::start();
    let gateway = RunningGateway::start(config(Some(redis.url(0)))).unwrap();
    let mut everything = connect(gateway.address, &token("acme", &["anomalies"], 60))
        .await
        .unwrap();
    let mut cpu_only = connect(gateway.address, &token("acme", &["*"], 60))
        .await
        .unwrap();
    let mut critical_only = connect(gateway.address, &token("acme", &["anomalies"], 60))
        .await
        .unwrap();
    let mut other_tenant = connect(gateway.address, &token("globex", &["anomalies"], 60))
        .await
        .unwrap();
    let reply = everything
        .subscribe(json!({"type": "subscribe", "id": 1, "channel": "anomalies"}))
        .await;
    assert_eq!(
        reply,
        json!({"type": "subscribed", "id": 1, "channel": "anomalies", "replayed": 0})
    );
    cpu_only
        .subscribe(
            json!({"type": "subscribe", "channel": "anomalies", "filter": {"metric": "cpu*"}}),
        )
        .await;
    critical_only
        .subscribe(json!({"type": "subscribe", "channel": "anomalies", "filter": {"min_severity": "critical"}}))
        .await;
    other_tenant
        .subscribe(json!({"type": "subscribe", "channel": "anomalies"}))
        .await;

    let url = redis.url(0);
    publish(
        &url,
        "acme",
        "e1",
        &event("acme", "e1", "cpu_usage", "warning"),
    );
    publish(
        &url,
        "acme",
        "e2",
        &event("acme", "e2", "mem_used", "critical"),
    );
    publish(
        &url,
        "acme",
        "e2",
        &event("acme", "e2", "mem_used", "critical"),
    );
    publish(
        &url,
        "globex",
        "g1",
        &event("globex", "g1", "cpu_usage", "critical"),
    );

    assert_eq!(
        everything.event_ids(SHORT).await,
        ["e1", "e2"],
        "the repeated id is delivered once"
    );
    assert_eq!(cpu_only.event_ids(SHORT).await, ["e1"]);
    assert_eq!(critical_only.event_ids(SHORT).await, ["e2"]);
    assert_eq!(other_tenant.event_ids(SHORT).await, ["g1"]);
    gateway.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_a_disconnect_has_no_gap_and_no_duplicate() {
    if !support::available(&[Service::Redis]) {
        return;
    }
    let redis = Redis::start();
    let url = redis.url(0);
    let gateway = RunningGateway::start(config(Some(url.clone()))).unwrap();
    let credentials = token("acme", &["anomalies"], 60);
    let mut first = connect(gateway.address, &credentials).await.unwrap();
    first
        .subscribe(json!({"type": "subscribe", "channel": "anomalies"}))
        .await;
    for i in 0..5 {
        let id = format!("e{i}");
        publish(&url, "acme", &id, &event("acme", &id, "cpu", "warning"));
    }
    let seen = first.event_ids(SHORT).await;
    assert_eq!(seen.len(), 5);
    drop(first);

    // Missed while away.
    for i in 5..10 {
        let id = format!("e{i}");
        publish(&url, "acme", &id, &event("acme", &id, "cpu", "warning"));
    }
    // Published while the client resumes: some land in history, some live, some in both.
    let racer_url = url.clone();
    let racer = std::thread::spawn(move || {
        for i in 10..60 {
            let id = format!("e{i}");
            publish(
                &racer_url,
                "acme",
                &id,
                &event("acme", &id, "cpu", "warning"),
            );
            std::thread::sleep(Duration::from_micros(300));
        }
    });
    let mut second = connect(gateway.address, &credentials).await.unwrap();
    let reply = second
        .subscribe(json!({"type": "subscribe", "id": 2, "channel": "anomalies", "since": seen.last().unwrap()}))
        .await;
    assert_eq!(reply["type"], "subscribed");
    racer.join().unwrap();
    let resumed = second.event_ids(SHORT).await;
    let expected: Vec<String> = (5..60).map(|i| format!("e{i}")).collect();
    assert_eq!(
        resumed, expected,
        "every missed event once, in order, then live"
    );

    // Too far back: told so explicitly.
    let mut third = connect(gateway.address, &credentials).await.unwrap();
    third
        .subscribe(json!({"type": "subscribe", "channel": "anomalies", "since": "never-existed"}))
        .await;
    let notice = third.next(SHORT).await.unwrap();
    assert_eq!(notice["type"], "gap");
    gateway.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_keep_receiving_after_a_redis_restart() {
    if !support::available(&[Service::Redis]) {
        return;
    }
    let mut redis = Redis::start();
    let url = redis.url(0);
    let gateway = RunningGateway::start(config(Some(url.clone()))).unwrap();
    let mut client = subscribed_to_anomalies(gateway.address, "acme").await;
    publish(
        &url,
        "acme",
        "before",
        &event("acme", "before", "cpu", "warning"),
    );
    assert_eq!(client.event_ids(SHORT).await, ["before"]);

    redis.crash_and_restart(Duration::from_millis(500));
    // Wait until the gateway has resubscribed (it reports ready again).
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut delivered = Vec::new();
    let mut n = 0;
    while delivered.is_empty() && Instant::now() < deadline {
        let id = format!("after{n}");
        publish(&url, "acme", &id, &event("acme", &id, "cpu", "warning"));
        delivered = client.event_ids(Duration::from_millis(300)).await;
        n += 1;
    }
    assert!(!delivered.is_empty(), "events flow again after the restart");
    // Whatever was published while the gateway reconnected came through the stream's catch-up.
    let mut all: BTreeSet<String> = delivered.into_iter().collect();
    all.extend(client.event_ids(SHORT).await);
    let published: BTreeSet<String> = (0..n).map(|i| format!("after{i}")).collect();
    assert_eq!(
        all, published,
        "nothing published after the restart is missing"
    );
    gateway.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_disconnected_while_a_fast_one_keeps_its_latency() {
    if !support::available(&[Service::Redis]) {
        return;
    }
    let redis = Redis::start();
    let url = redis.url(0);
    let mut settings = config(Some(url.clone()));
    settings.limits.client_queue = 32;
    let gateway = RunningGateway::start(settings).unwrap();
    let mut slow = subscribed_to_anomalies(gateway.address, "acme").await;
    let mut fast = subscribed_to_anomalies(gateway.address, "acme").await;

    // Large events, faster than a client that never reads can take them.
    let padding = "x".repeat(16 * 1024);
    let publisher_url = url.clone();
    let publisher = std::thread::spawn(move || {
        let mut sent = Vec::new();
        for i in 0..600 {
            let id = format!("big{i}");
            let mut payload: serde_json::Value =
                serde_json::from_str(&event("acme", &id, "cpu", "warning")).unwrap();
            payload["padding"] = padding.clone().into();
            payload["sent_us"] = (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_micros() as u64)
                .into();
            publish(&publisher_url, "acme", &id, &payload.to_string());
            sent.push(id);
            std::thread::sleep(Duration::from_micros(500));
        }
        sent
    });
    let mut latencies = Vec::new();
    let mut received = 0;
    while let Some(message) = fast.next(Duration::from_millis(800)).await {
        if message["type"] == "event" {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_micros() as u64;
            latencies.push(now.saturating_sub(message["event"]["sent_us"].as_u64().unwrap_or(now)));
            received += 1;
        }
    }
    let sent = publisher.join().unwrap();
    assert_eq!(received, sent.len(), "the fast client got everything");
    latencies.sort_unstable();
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!(
        "fast client beside a slow one: {received} events, p50 {} µs, p99 {p99} µs",
        latencies[latencies.len() / 2]
    );
    assert!(p99 < 50_000, "fast client p99 {p99} µs");
    assert_eq!(slow.close_code(Duration::from_secs(5)).await, Some(4008));
    assert!(gateway.metrics.slow_disconnects.get() >= 1);
    gateway.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_connections_with_going_away() {
    let gateway = RunningGateway::start(config(None)).unwrap();
    let mut client = subscribed_to_anomalies(gateway.address, "acme").await;
    let closing = tokio::spawn(async move { client.close_code(Duration::from_secs(5)).await });
    gateway.shutdown(Duration::from_secs(2)).await;
    assert_eq!(closing.await.unwrap(), Some(1001));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_memory_broker_serves_live_events_and_resume() {
    let gateway = RunningGateway::start(config(None)).unwrap();
    let memory = gateway.memory.clone().unwrap();
    let mut client = subscribed_to_anomalies(gateway.address, "acme").await;
    memory.publish(
        &aiops_schemas::anomalies_channel("acme"),
        &event("acme", "m1", "cpu", "warning"),
    );
    memory.publish(
        &aiops_schemas::anomalies_channel("acme"),
        &event("acme", "m2", "cpu", "warning"),
    );
    assert_eq!(client.event_ids(SHORT).await, ["m1", "m2"]);
    let mut again = connect(gateway.address, &token("acme", &["anomalies"], 60))
        .await
        .unwrap();
    let reply = again
        .subscribe(json!({"type": "subscribe", "channel": "anomalies", "since": "m1"}))
        .await;
    assert_eq!(reply["replayed"], 1);
    assert_eq!(again.event_ids(SHORT).await, ["m2"]);
    gateway.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_its_events_through_an_in_process_gateway_fed_by_the_bus() {
    use std::io::BufRead;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let port = support::free_port();
    let mut demo = std::process::Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args([
            "demo",
            "--duration",
            "10s",
            "--series",
            "20",
            "--rate",
            "2000",
            "--anomaly-gap",
            "200",
            "--json",
        ])
        .args(["--serve", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = demo.stderr.take().unwrap();
    let url = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| {
                line.split_whitespace()
                    .find(|w| w.starts_with("ws://"))
                    .map(str::to_owned)
            })
    })
    .await
    .unwrap()
    .expect("the demo prints its WebSocket address");
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (ws, _) = tokio_tungstenite::client_async(url.into_client_request().unwrap(), stream)
        .await
        .unwrap();
    let mut client = support::ws::Client { ws };
    client
        .subscribe(json!({"type": "subscribe", "channel": "anomalies"}))
        .await;
    let received = client.event_ids(Duration::from_secs(12)).await;
    let output = demo.wait_with_output().unwrap();
    let printed: BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!received.is_empty(), "events came over the WebSocket");
    assert!(
        received.iter().all(|id| printed.contains(id)),
        "the same events the demo printed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_metrics_are_read_by_an_independent_prometheus_parser() {
    if !support::available(&[Service::Redis, Service::Pyarrow]) {
        return;
    }
    let redis = Redis::start();
    let gateway = RunningGateway::start(config(Some(redis.url(0)))).unwrap();
    let mut client = subscribed_to_anomalies(gateway.address, "acme").await;
    let url = redis.url(0);
    for i in 0..3 {
        let id = format!("m{i}");
        publish(&url, "acme", &id, &event("acme", &id, "cpu", "warning"));
    }
    assert_eq!(client.event_ids(Duration::from_secs(5)).await.len(), 3);
    // A refused token is counted too.
    assert!(connect(gateway.address, "not-a-token").await.is_err());
    let address = gateway.admin_address.unwrap().to_string();
    let body = tokio::task::spawn_blocking(move || support::scrape(&address).unwrap())
        .await
        .unwrap();
    let families = support::parse_prometheus(&body);
    assert_eq!(families["aiops_gateway_open_connections"][0], "gauge");
    assert_eq!(families["aiops_gateway_open_connections"][1][0], 1.0);
    assert_eq!(families["aiops_gateway_subscriptions"][1][0], 1.0);
    assert_eq!(families["aiops_gateway_events"][0], "counter");
    assert_eq!(families["aiops_gateway_events"][1][0], 3.0);
    assert_eq!(families["aiops_gateway_frames"][1][0], 3.0);
    assert_eq!(families["aiops_gateway_rejected_auth"][1][0], 1.0);
    assert_eq!(families.as_object().unwrap().len(), 13);
    gateway.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_sharing_one_redis_serve_the_same_stream_and_resume_across_each_other() {
    if !support::available(&[Service::Redis]) {
        return;
    }
    let redis = Redis::start();
    let url = redis.url(0);
    let first = RunningGateway::start(config(Some(url.clone()))).unwrap();
    let second = RunningGateway::start(config(Some(url.clone()))).unwrap();
    let mut on_first = subscribed_to_anomalies(first.address, "acme").await;
    let mut on_second = subscribed_to_anomalies(second.address, "acme").await;
    for i in 0..6 {
        let id = format!("s{i}");
        publish(&url, "acme", &id, &event("acme", &id, "cpu", "warning"));
    }
    let expected: Vec<String> = (0..6).map(|i| format!("s{i}")).collect();
    assert_eq!(on_first.event_ids(SHORT).await, expected);
    assert_eq!(on_second.event_ids(SHORT).await, expected);

    // A client of the first gateway loses it (it shuts down) and resumes on the second from
    // the last id it saw: what was published meanwhile arrives once, in order.
    drop(on_first);
    first.shutdown(Duration::from_secs(2)).await;
    for i in 6..9 {
        let id = format!("s{i}");
        publish(&url, "acme", &id, &event("acme", &id, "cpu", "warning"));
    }
    let mut moved = connect(second.address, &token("acme", &["anomalies"], 60))
        .await
        .unwrap();
    let reply = moved
        .subscribe(json!({"type": "subscribe", "channel": "anomalies", "since": "s5"}))
        .await;
    assert_eq!(reply["replayed"], 3, "{reply}");
    assert_eq!(moved.event_ids(SHORT).await, ["s6", "s7", "s8"]);
    assert_eq!(on_second.event_ids(SHORT).await, ["s6", "s7", "s8"]);
    second.shutdown(Duration::from_secs(2)).await;
}

/// This process's resident memory, from `/proc/self/status` (`VmRSS`), in KiB.
fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_from_an_id_not_in_a_long_history_cost_a_page_not_the_stream() {
    if !support::available(&[Service::Redis]) {
        return;
    }
    let redis = Redis::start();
    let url = redis.url(0);
    // 100,000 events of about 200 bytes: a 20 MB stream.
    {
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut connection = client.get_connection().unwrap();
        let padding = "p".repeat(120);
        for chunk in 0..100 {
            let mut pipe = redis::pipe();
            for n in 0..1_000 {
                let id = format!("h{chunk}-{n}");
                let payload = json!({"id": id, "tenant": "acme", "padding": padding}).to_string();
                pipe.cmd("XADD")
                    .arg(aiops_schemas::anomalies_log_key("acme"))
                    .arg("*")
                    .arg("id")
                    .arg(&id)
                    .arg("event")
                    .arg(payload)
                    .ignore();
            }
            pipe.query::<()>(&mut connection).unwrap();
        }
    }
    let gateway = RunningGateway::start(config(Some(url.clone()))).unwrap();
    let credentials = token("acme", &["anomalies"], 60);
    let before = resident_kib();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(resident_kib(), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let resumes = (0..50).map(|_| {
        let credentials = credentials.clone();
        let address = gateway.address;
        tokio::spawn(async move {
            let mut client = connect(address, &credentials).await.unwrap();
            client
                .send(
                    json!({"type": "subscribe", "channel": "anomalies", "since": "not-in-history"}),
                )
                .await;
            let mut messages = Vec::new();
            while messages.len() < 2 {
                let Some(message) = client.next(Duration::from_secs(30)).await else {
                    break;
                };
                messages.push(message);
            }
            (client, messages)
        })
    });
    let mut clients = Vec::new();
    for resume in resumes.collect::<Vec<_>>() {
        let (client, messages) = resume.await.unwrap();
        let kinds: Vec<&str> = messages
            .iter()
            .map(|m| m["type"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            kinds,
            ["subscribed", "gap"],
            "subscribed, told of the gap, then live: {messages:?}"
        );
        clients.push(client);
    }
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    let growth_mib = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(before)
        / 1024;
    eprintln!(
        "50 resumes from an id not in 100,000 entries: resident memory grew {growth_mib} MiB"
    );
    // Four searches at a time, each keeping one page (1,000 entries of ~200 bytes: 0.2 MB),
    // plus 50 connections on both sides; reading the stream into memory would be 50 x 20 MB.
    // Measured: 8 MiB (debug build); the bound leaves room for allocator noise.
    assert!(growth_mib < 40, "grew {growth_mib} MiB");
    publish(
        &url,
        "acme",
        "live-1",
        &event("acme", "live-1", "cpu", "warning"),
    );
    for client in &mut clients {
        let live = client.next(Duration::from_secs(10)).await.unwrap();
        assert_eq!(live["type"], "event", "{live}");
        assert_eq!(live["event"]["id"], "live-1", "{live}");
    }
    gateway.shutdown(Duration::from_secs(2)).await;
}
