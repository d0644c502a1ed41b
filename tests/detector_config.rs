//! Detector configurations end to end, on real services: a tansu broker, redis-server, an
//! `aiops run` process reading the model store, and a gateway serving the configuration API
//! and the WebSocket. A client changes a configuration over HTTP; a WebSocket client on the
//! `config` channel receives `config_applied` for that version; the events after it carry the
//! new version and follow the new parameters; no point is lost or scored twice; no restart.
//! The pipeline polls the store only every minute: the change reaches it as the API's
//! notification over Redis.

#![cfg(all(feature = "kafka", feature = "redis"))]

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{Value, json};

use aiops_gateway::RunningGateway;
use aiops_gateway::auth::{Claims, mint};
use support::http::{noise, request as http};
use support::{Broker, Pipeline, Redis, RunConfig, Service, serial};

const TENANT: &str = "shop";
const BASE_MS: i64 = 1_700_000_000_000;

/// Points `from..to` of one series: a single-point spike of +15 at every i % 100 == 50 (from
/// 150), and, when `shifts`, six points raised by 15 from every i % 200 == 120.
fn points(from: u64, to: u64, shifts: bool) -> Vec<(u64, f64)> {
    (from..to)
        .map(|i| {
            let spike = i >= 150 && i % 100 == 50;
            let shifted = shifts && (120..126).contains(&(i % 200));
            let value = noise(i) + if spike || shifted { 15.0 } else { 0.0 };
            (i, value)
        })
        .collect()
}

fn produce(broker: &Broker, points: &[(u64, f64)]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.address())
        .create()
        .unwrap();
    for (i, value) in points {
        let record = json!({
            "tenant": TENANT, "name": "latency", "labels": {"svc": "checkout"},
            "timestamp": BASE_MS + *i as i64 * 60_000, "value": value
        })
        .to_string();
        loop {
            // Keyed by series, as `aiops produce` does: one series' points stay in one
            // partition, in order. (Regression: unkeyed, they were spread over both partitions
            // and read out of order, and two spikes were lost to that, not to the pipeline.)
            let keyed = BaseRecord::to("metrics")
                .key("shop/latency")
                .payload(&record);
            match producer.send(keyed) {
                Ok(()) => break,
                Err((_, _)) => {
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

fn document(min_duration: u32) -> Value {
    json!({
        "description": "checkout latency",
        "match": {"metric": "latency", "labels": {"svc": "checkout"}},
        "detectors": [{"kind": "zscore"}, {"kind": "mad"}],
        "ensemble": {"method": "mean"},
        "alert": {"warning": 5.0, "critical": 8.0, "clear": 3.0, "min_duration": min_duration}
    })
}

/// What the WebSocket client received, each message with when.
type Seen = [(Instant, Value)];

/// Whether a WebSocket message is the `config_applied` of version `version` of `checkout`.
fn is_applied(message: &Value, version: u64) -> bool {
    message["channel"] == "config"
        && message["event"]["type"] == "config_applied"
        && message["event"]["name"] == "checkout"
        && message["event"]["version"] == version
}

/// The index of the point an event is about.
fn index(event: &Value) -> u64 {
    ((event["timestamp"].as_i64().unwrap() - BASE_MS) / 60_000) as u64
}

#[test]
fn a_configuration_changed_over_http_is_confirmed_over_websocket_and_scores_the_next_points() {
    if !support::available(&[Service::Tansu, Service::Redis]) {
        return;
    }
    let _serial = serial();
    let (broker, redis) = (Broker::start(), Redis::start());
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("models");
    broker.ensure_topic("metrics", 2);

    // The gateway with the configuration API on the store the pipeline reads.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut settings = support::ws::config(Some(redis.url(0)));
    settings.api.store = Some(store_dir.clone());
    // As `aiops gateway` mounts it with a Redis broker: each change is also announced over
    // Redis, which is how the pipeline (polling the store only every minute here) learns of it.
    let notifier = aiops_connectors::changes::ChangeNotifier::new(&redis.url(0)).unwrap();
    let api = aiops_control::router(Arc::new(
        aiops_control::ApiState::new(
            Arc::new(aiops_models::sqlite::SqliteStore::open(&store_dir).unwrap()),
            aiops_gateway::Authenticator::from_config(&settings.auth).unwrap(),
            aiops_operators::Registry::builtin(),
        )
        .with_change_hook(Arc::new(move |stored| {
            notifier
                .notify(&format!(
                    "{}/{}@{}",
                    stored.tenant, stored.name, stored.version
                ))
                .unwrap();
        })),
    ));
    let gateway = runtime
        .block_on(async { RunningGateway::start_with_routes(settings, api) })
        .unwrap();
    let token = mint(
        &support::ws::key(),
        &Claims {
            tenant: TENANT.into(),
            channels: vec!["anomalies".into(), "config".into()],
            exp: support::ws::now() + 600,
            nbf: None,
            sub: Some("alice".into()),
            aud: None,
            iss: None,
            scope: Some("detectors:read detectors:write".into()),
        },
    )
    .unwrap();
    let mut client = runtime.block_on(async {
        let mut client = support::ws::connect(gateway.address, &token).await.unwrap();
        for channel in ["config", "anomalies"] {
            let reply = client
                .subscribe(json!({"type": "subscribe", "channel": channel}))
                .await;
            assert_eq!(reply["type"], "subscribed", "{reply}");
        }
        client
    });
    // Everything the WebSocket client receives, with when.
    let mut received: Vec<(Instant, Value)> = Vec::new();
    let wait_for = |client: &mut support::ws::Client,
                    received: &mut Vec<(Instant, Value)>,
                    timeout: Duration,
                    done: &dyn Fn(&Seen) -> bool| {
        let deadline = Instant::now() + timeout;
        while !done(received) && Instant::now() < deadline {
            if let Some(message) =
                runtime.block_on(client.next(deadline.saturating_duration_since(Instant::now())))
            {
                received.push((Instant::now(), message));
            }
        }
        done(received)
    };
    let applied =
        |version: u64| move |seen: &Seen| seen.iter().any(|(_, m)| is_applied(m, version));

    // Version 1 before the pipeline starts: it loads it with the store.
    let (status, etag, created) = http(
        gateway.address,
        "POST",
        "/api/v1/detectors",
        &token,
        &[],
        Some(&json!({"name": "checkout", "config": document(1), "reason": "watch checkout"})),
    );
    assert_eq!((status, etag.as_deref()), (201, Some("\"1\"")), "{created}");

    let phase_one = points(0, 1000, false);
    produce(&broker, &phase_one);
    let run_config = RunConfig {
        brokers: broker.address(),
        topic: "metrics".into(),
        group: "config-e2e".into(),
        redis_url: redis.url(0),
        checkpoint_dir: dir.path().join("state"),
        workers: 2,
        extra: format!(
            "[models]\ndir = \"{}\"\npoll_ms = 60000\n",
            store_dir.display()
        ),
    }
    .write(dir.path(), "run.toml");
    let pipeline = Pipeline::start(&run_config, &["--exit-when-idle", "12s"]);
    let spikes_one: BTreeSet<u64> = (150..1000).filter(|i| i % 100 == 50).collect();
    let caught_phase_one = |seen: &Seen| {
        let events: BTreeSet<u64> = seen
            .iter()
            .filter(|(_, m)| m["channel"] == "anomalies")
            .map(|(_, m)| index(&m["event"]))
            .collect();
        spikes_one.is_subset(&events)
    };
    assert!(
        wait_for(
            &mut client,
            &mut received,
            Duration::from_secs(90),
            &|seen| { applied(1)(seen) && caught_phase_one(seen) }
        ),
        "version 1 confirmed and every phase-one spike caught: {:#?}\n{}",
        received.iter().map(|(_, m)| m).collect::<Vec<_>>(),
        pipeline.stderr.lock().unwrap().join("\n")
    );

    // Version 2: two points in a row above the warning, so single-point spikes stop paging.
    let (status, etag, updated) = http(
        gateway.address,
        "PUT",
        "/api/v1/detectors/checkout",
        &token,
        &[("If-Match", "\"1\"")],
        Some(&json!({"config": document(2), "reason": "spikes are noise"})),
    );
    let put_returned = Instant::now();
    assert_eq!((status, etag.as_deref()), (200, Some("\"2\"")), "{updated}");
    assert!(
        wait_for(
            &mut client,
            &mut received,
            Duration::from_secs(30),
            &applied(2)
        ),
        "config_applied for version 2: {:#?}",
        received.iter().map(|(_, m)| m).collect::<Vec<_>>()
    );
    let (confirmed_at, confirmed) = received.iter().find(|(_, m)| is_applied(m, 2)).unwrap();
    let confirmation = confirmed_at.saturating_duration_since(put_returned);
    eprintln!("PUT returned → config_applied on the WebSocket: {confirmation:?}");
    let notice = &confirmed["event"];
    assert_eq!(notice["tenant"], TENANT);
    assert!(notice["instance"].as_str().is_some_and(|i| !i.is_empty()));
    let events_before: usize = received
        .iter()
        .filter(|(_, m)| m["channel"] == "anomalies")
        .count();

    // Phase two: spikes and sustained shifts, scored by version 2.
    let phase_two = points(1000, 2000, true);
    produce(&broker, &phase_two);
    let shifts: Vec<u64> = (1000..2000).filter(|i| i % 200 == 120).collect();
    let caught_shifts = |seen: &Seen| {
        shifts.iter().all(|start| {
            seen.iter().any(|(_, m)| {
                m["channel"] == "anomalies" && (*start..start + 6).contains(&index(&m["event"]))
            })
        })
    };
    assert!(
        wait_for(
            &mut client,
            &mut received,
            Duration::from_secs(60),
            &caught_shifts
        ),
        "every shift caught under version 2: {:#?}",
        received.iter().map(|(_, m)| m).collect::<Vec<_>>()
    );
    let stderr = pipeline.wait(Duration::from_secs(60));
    // Late events, if any.
    wait_for(&mut client, &mut received, Duration::from_secs(2), &|_| {
        false
    });

    let events: Vec<&Value> = received
        .iter()
        .filter(|(_, m)| m["channel"] == "anomalies")
        .map(|(_, m)| &m["event"])
        .collect();
    let diagnosis = format!(
        "{:#?}\n{}",
        events
            .iter()
            .map(|e| (index(e), e["model_version"].clone(), e["score"].clone()))
            .collect::<Vec<_>>(),
        stderr.join("\n")
    );
    for event in &events[..events_before] {
        assert_eq!(event["model_version"], "shop.checkout@1", "{diagnosis}");
        assert_eq!(event["template"], "checkout", "{diagnosis}");
    }
    for event in &events[events_before..] {
        let at = index(event);
        assert!(
            at >= 1000,
            "a phase-one point scored after the change: {diagnosis}"
        );
        assert_eq!(event["model_version"], "shop.checkout@2", "{diagnosis}");
        assert!(
            (120..126).contains(&(at % 200)),
            "version 2 raised on a single-point spike at {at}: {diagnosis}"
        );
    }
    // No event twice; every point scored once.
    let ids: BTreeSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "{diagnosis}");
    let summary = stderr
        .iter()
        .find(|l| l.contains("aiops run: stopped after"))
        .unwrap_or_else(|| panic!("{diagnosis}"));
    assert!(
        summary.contains(": 2,000 points") || summary.contains(": 2000 points"),
        "{summary}"
    );
    let stream_ids = redis.stream_ids(0, TENANT);
    assert_eq!(stream_ids.len(), events.len(), "{diagnosis}");
    // The history shows both versions, who made them and why.
    let (status, _, history) = http(
        gateway.address,
        "GET",
        "/api/v1/detectors/checkout/history",
        &token,
        &[],
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(history["audit"][1]["who"], "alice");
    assert_eq!(history["audit"][1]["why"], "spikes are noise");
    assert_eq!(
        history["audit"][1]["diff"][0]["path"],
        "/alert/min_duration"
    );
    runtime.block_on(gateway.shutdown(Duration::from_secs(2)));
}
