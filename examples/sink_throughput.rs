//! Events per second through the Redis sink, as `aiops run` writes them: each event appended to
//! its tenant's stream and published, in batches of 500, over 16 tenants. Run against one node
//! and against a Redis Cluster on the same machine to compare them (`scripts/bench-redis-cluster`
//! starts both and prints the ratio).
//!
//!   cargo run --release --example sink_throughput -- URL [--cluster] [--replicas N] [EVENTS]
//!
//! On a cluster, URL lists seed nodes separated by commas; `--replicas` is the sink's
//! `[redis] replicas` (default: 1 on a cluster, 0 on one node).

use std::sync::Arc;
use std::time::Instant;

use aiops_connectors::sink::redis::RedisSink;
use aiops_connectors::source::synthetic::{SyntheticConfig, SyntheticSource};
use aiops_pipeline::config::RedisConfig;
use aiops_pipeline::sink::{Collect, Sink};
use aiops_pipeline::{RunOptions, run};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(url) = args.first().cloned() else {
        eprintln!("usage: sink_throughput URL [--cluster] [--replicas N] [EVENTS]");
        std::process::exit(2);
    };
    let (mut cluster, mut replicas, mut count) = (false, None, 200_000usize);
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--cluster" => cluster = true,
            "--replicas" => replicas = rest.next().and_then(|n| n.parse::<u32>().ok()),
            number => count = number.parse().expect("EVENTS: a number"),
        }
    }

    // Real events to write: the detectors' on a synthetic stream, copied under other ids and
    // tenants up to the count.
    let source = SyntheticSource::new(
        SyntheticConfig {
            series: 50,
            ticks: Some(2_000),
            mean_anomaly_gap: 200,
            ..SyntheticConfig::default()
        },
        1,
    )
    .expect("a synthetic source");
    let mut collected = Collect::default();
    run(Arc::new(source), &mut collected, RunOptions::new(1), |_| {}).expect("a run");
    assert!(
        !collected.events.is_empty(),
        "the synthetic stream gave events"
    );
    let events: Vec<_> = (0..count)
        .map(|i| {
            let mut event = collected.events[i % collected.events.len()].clone();
            event.id = format!("{i:016x}{}", &event.id[..16.min(event.id.len())]);
            event.tenant = format!("tenant-{}", i % 16);
            event
        })
        .collect();

    let mut sink = RedisSink::new(RedisConfig {
        url: url.clone(),
        stream_maxlen: 100_000,
        give_up_after_ms: 30_000,
        cluster,
        replicas,
    })
    .expect("a sink");
    sink.events(&events[..500.min(events.len())])
        .expect("a first batch");
    let started = Instant::now();
    for batch in events.chunks(500) {
        sink.events(batch).expect("a batch written");
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}{}: {count} events in {seconds:.2} s: {:.0} events/s",
        if cluster { "cluster" } else { "one node" },
        replicas.map_or(String::new(), |r| format!(", replicas {r}")),
        count as f64 / seconds
    );
}
