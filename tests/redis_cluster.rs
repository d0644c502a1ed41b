//! The production path on a real Redis Cluster (three primaries, three replicas): `aiops run`
//! writes each tenant's events to its shard (stream entries replicated before `SPUBLISH`), two
//! gateways subscribe with sharded pub/sub, and WebSocket clients get every event exactly
//! once, through the `kill -9` of the primary holding the tenant's shard mid-stream: the
//! gateways reconnect and catch up from the stream, and a client that resumes with `since`
//! after the failover gets what it missed.

#![cfg(all(feature = "kafka", feature = "redis"))]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use aiops_gateway::RunningGateway;
use serde_json::json;
use support::cluster::RedisCluster;
use support::group::{TENANT, config, produce_synthetic, reference_by_id, synthetic};
use support::ws::{self, Client, connect, subscribed_to_anomalies, token};
use support::{Broker, Pipeline, Redis, Service, serial};

/// Every event a client receives until `quiet` passes without a message, in order of
/// arrival, and how many gap notices it got.
async fn collect(mut client: Client, quiet: Duration) -> (Vec<String>, usize) {
    let (mut ids, mut gaps) = (Vec::new(), 0);
    while let Some(message) = client.next(quiet).await {
        match message["type"].as_str() {
            Some("event") => ids.push(
                message["event"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ),
            Some("gap") => gaps += 1,
            _ => {}
        }
    }
    (ids, gaps)
}

fn exactly_once(what: &str, got: &[String], expected: &BTreeSet<String>) {
    let distinct: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(
        got.len(),
        distinct.len(),
        "{what}: {} events twice",
        got.len() - distinct.len()
    );
    let missing: Vec<&String> = expected.difference(&distinct).collect();
    let unexpected: Vec<&String> = distinct.difference(expected).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "{what}: {} missing {missing:?}, {} unexpected {unexpected:?}",
        missing.len(),
        unexpected.len()
    );
}

#[test]
fn a_failover_in_a_redis_cluster_loses_no_event_for_gateways_and_resuming_clients() {
    if !support::available(&[Service::Tansu, Service::Redis]) {
        return;
    }
    // One service-starting test at a time; the guard stays outside the async part.
    let _serial = serial();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(failover());
}

async fn failover() {
    // The gateways run in this process: their warnings (reconnections) go to the test's output.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("aiops_gateway=debug")
        .try_init();
    let mut cluster = RedisCluster::start();
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let stream = synthetic(40, 4000, 300);
    let reference = reference_by_id(&stream);
    let expected: BTreeSet<String> = reference.keys().cloned().collect();

    // The pipeline's configuration, pointed at the cluster.
    let unused = Redis::reserve();
    let mut run_config = config(&broker, &unused, 0, "clustered", dir.path());
    run_config.redis_url = cluster.url();
    let path = run_config.write(dir.path(), "run.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("[redis]\n", "[redis]\ncluster = true\n");
    std::fs::write(&path, text).unwrap();

    let gateway = |url: String| {
        let mut config = ws::config(Some(url));
        config.broker.redis_cluster = true;
        RunningGateway::start(config).unwrap()
    };
    let (first, second) = (gateway(cluster.url()), gateway(cluster.url()));
    let on_first = subscribed_to_anomalies(first.address, TENANT).await;
    let on_second = subscribed_to_anomalies(second.address, TENANT).await;
    let mut leaving = subscribed_to_anomalies(second.address, TENANT).await;

    let address = broker.address();
    let paced = stream.clone();
    let producer = std::thread::spawn(move || {
        produce_synthetic(&address, "metrics", &paced, &["--rate", "10000"]);
    });
    let pipeline = Pipeline::start(&path, &["--exit-when-idle", "5s"]);
    let first_task = tokio::spawn(collect(on_first, Duration::from_secs(20)));
    let second_task = tokio::spawn(collect(on_second, Duration::from_secs(20)));

    // Some events flow; one client then drops its connection and remembers the last it had.
    let mut before = Vec::new();
    while before.len() < 20 {
        let Some(message) = leaving.next(Duration::from_secs(60)).await else {
            panic!("no events reached the clients");
        };
        if message["type"] == "event" {
            before.push(message["event"]["id"].as_str().unwrap().to_owned());
        }
    }
    drop(leaving);

    // The primary of the tenant's shard dies mid-stream; its replica takes over.
    let log_key = aiops_schemas::anomalies_log_key(TENANT);
    let (killed, took) = tokio::task::block_in_place(|| cluster.fail_over(&log_key));
    eprintln!("killed primary {killed}; a replica took over in {took:?}");

    // The client comes back on the other gateway with `since` = the last event it had.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut resumed = connect(first.address, &token(TENANT, &["anomalies"], 60))
        .await
        .unwrap();
    let since = before.last().unwrap().clone();
    let reply = resumed
        .subscribe(json!({"type": "subscribe", "channel": "anomalies", "since": since}))
        .await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    let resumed_task = tokio::spawn(collect(resumed, Duration::from_secs(20)));

    producer.join().unwrap();
    let lines = tokio::task::block_in_place(|| pipeline.wait(Duration::from_secs(240)));
    let (first_ids, first_gaps) = first_task.await.unwrap();
    let (second_ids, second_gaps) = second_task.await.unwrap();
    let (resumed_ids, resumed_gaps) = resumed_task.await.unwrap();
    assert_eq!(
        (first_gaps, second_gaps, resumed_gaps),
        (0, 0, 0),
        "no client was told it missed events"
    );
    eprintln!(
        "{} reference events; first gateway's client {}, second's {}, resumed {} + {} before",
        expected.len(),
        first_ids.len(),
        second_ids.len(),
        resumed_ids.len(),
        before.len()
    );
    // What the stream on the cluster holds, for the diagnosis of a failure below.
    let in_stream: BTreeSet<String> = tokio::task::block_in_place(|| {
        let client = redis::cluster::ClusterClient::new(cluster.live_urls()).unwrap();
        let mut connection = client.get_connection().unwrap();
        support::read_stream(&mut connection, &log_key)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    });
    eprintln!(
        "the stream holds {} of the reference's events; pipeline said:\n{}",
        in_stream.intersection(&expected).count(),
        lines
            .iter()
            .filter(|l| l.contains("redis") || l.contains("stopped"))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("retrying") || l.contains("reachable again")),
        "the sink saw the failover:\n{}",
        lines.join("\n")
    );
    exactly_once("client of the first gateway", &first_ids, &expected);
    exactly_once("client of the second gateway", &second_ids, &expected);
    let mut resumed_all = before.clone();
    resumed_all.extend(resumed_ids);
    exactly_once(
        "the client that resumed with since",
        &resumed_all,
        &expected,
    );
    first.shutdown(Duration::from_secs(2)).await;
    second.shutdown(Duration::from_secs(2)).await;
}
