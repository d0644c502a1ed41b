//! Checks that a broker serves a partition from any offset: reads one partition from the given
//! offset for five seconds and reports the first offset served and every offset that was not
//! the next one. A Kafka-protocol broker must start exactly at the offset asked for, even one
//! inside a record batch, and never serve an offset twice; aiops's checkpoints resume
//! partitions from such offsets after every rebalance, and replays start from them.
//!
//! `cargo run --release --example fetch_probe -- BROKERS TOPIC PARTITION OFFSET`
//!
//! It found that tansu 0.6's in-memory engine does neither: asked for an offset inside a batch
//! it starts at the next batch (the records between are never served), and at the end of the
//! partition it serves the last batch's tail again. Its SQLite engine serves both correctly.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [brokers, topic, partition, offset] = args.as_slice() else {
        return Err("usage: fetch_probe BROKERS TOPIC PARTITION OFFSET".into());
    };
    let (partition, offset): (i32, i64) = (partition.parse()?, offset.parse()?);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("fetch-probe-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    consumer.assign(&assignment)?;
    let started = Instant::now();
    let (mut next, mut first, mut served, mut wrong) = (offset, None, 0u64, 0u64);
    while started.elapsed() < Duration::from_secs(5) {
        let Some(message) = consumer.poll(Duration::from_millis(50)) else {
            continue;
        };
        let message = message?;
        served += 1;
        first.get_or_insert(message.offset());
        if message.offset() != next {
            wrong += 1;
            println!("served offset {} where {next} was next", message.offset());
        }
        next = next.max(message.offset() + 1);
    }
    println!(
        "asked for {topic}/{partition} from {offset}: first served {first:?}, {served} messages, \
         {wrong} out of order, next offset {next}"
    );
    Ok(())
}
