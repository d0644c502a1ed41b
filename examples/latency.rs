//! End-to-end latency for `scripts/bench-kafka`: subscribes to a tenant's anomaly channel and,
//! for each event, takes the time it arrives minus the event's own timestamp. With
//! `aiops produce --timestamps-now`, that timestamp is when the point was produced, so this is
//! produce → Kafka → aiops run → Redis → subscriber. Timestamps are whole milliseconds, so each
//! figure may read up to 1 ms high.
//!
//! Usage: cargo run --release --example latency -- REDIS_URL TENANT SECONDS

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: latency REDIS_URL TENANT SECONDS");
        std::process::exit(2);
    }
    let seconds: u64 = args[3].parse().expect("SECONDS is a number");
    let client = redis::Client::open(args[1].as_str()).expect("redis url");
    let mut connection = client.get_connection().expect("redis connection");
    connection
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut pubsub = connection.as_pubsub();
    pubsub
        .subscribe(format!("aiops:{{{}}}:anomalies", args[2]))
        .expect("subscribe");
    println!("latency: subscribed");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        let Ok(message) = pubsub.get_message() else {
            continue;
        };
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
            * 1000.0;
        let event: serde_json::Value =
            serde_json::from_slice(message.get_payload_bytes()).expect("event JSON");
        if let Some(timestamp) = event["timestamp"].as_i64() {
            latencies.push(now_ms - timestamp as f64);
        }
    }
    if latencies.is_empty() {
        println!("latency: no events in {seconds} s");
        return;
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "latency produce → redis subscriber over {} events: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        latencies[latencies.len() - 1]
    );
}
