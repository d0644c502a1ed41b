//! The baseline for `scripts/bench-kafka`: a plain rdkafka consumer that reads a topic from the
//! beginning and does nothing with the messages, so its rate is what the broker and the client
//! library can deliver on this machine.
//!
//! Usage: cargo run --release --example raw_consume -- BROKERS TOPIC EXPECTED_MESSAGES

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: raw_consume BROKERS TOPIC EXPECTED_MESSAGES");
        std::process::exit(2);
    }
    let expected: u64 = args[3].parse().expect("EXPECTED_MESSAGES is a number");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args[1])
        .set("group.id", format!("raw-consume-{}", std::process::id()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        // The same fetch setting aiops run uses; tansu 0.6 holds every fetch this long, so with
        // librdkafka's default of 500 ms the baseline would measure the broker's waiting.
        .set("fetch.wait.max.ms", "5")
        .create()
        .expect("consumer");
    consumer.subscribe(&[&args[2]]).expect("subscribe");
    let (mut count, mut bytes) = (0u64, 0u64);
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    while count < expected {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                first.get_or_insert_with(Instant::now);
                last = Instant::now();
                count += 1;
                bytes += message.payload().map_or(0, |p| p.len() as u64);
            }
            Some(Err(error)) => eprintln!("raw_consume: {error}"),
            None if first.is_some_and(|_| last.elapsed() > Duration::from_secs(5)) => break,
            None => {}
        }
    }
    let seconds = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64());
    println!(
        "raw consume: {count} messages ({bytes} bytes) in {seconds:.2} s: {:.0} messages/s",
        count as f64 / seconds.max(1e-9)
    );
}
