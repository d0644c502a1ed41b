//! Reading a stretch of a Kafka topic by time, for training (feature `kafka`): every partition
//! from the first offset at or after `from` (the broker's offsets-for-times) up to the end it
//! had when the read began, keeping the points whose event time lies in `[from, to]`.
//!
//! It never joins the live consumer group and never commits: a throwaway group id, no
//! auto-commit. A broker that cannot answer offsets-for-times is read from each partition's
//! start instead, which costs time but not correctness, since points are filtered by their own
//! timestamps.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use aiops_schemas::{MetricPoint, ParseOptions, SeriesCache, TimestampMs, parse_record_cached};

use super::kafka::client_config;
use crate::config::{KafkaConfig, TopicConfig};
use crate::error::{Error, Result};
use crate::runner::system_now;

/// What a range read found.
#[derive(Debug, Default)]
pub struct RangeRead {
    /// Points in the range, in partition then offset order (each series in time order, as
    /// producers key by series).
    pub points: Vec<MetricPoint>,
    /// Messages read.
    pub messages: u64,
    /// Messages that did not parse or validate.
    pub rejected: u64,
    /// Whether the broker answered offsets-for-times (else partitions were read from the start).
    pub seeked_by_time: bool,
}

/// Reads `topic` between `from` and `to` (event time, inclusive; `None`: unbounded). Gives up
/// after `timeout` without progress.
pub fn read_range(
    config: &KafkaConfig,
    topic: &TopicConfig,
    base: &ParseOptions,
    from: Option<TimestampMs>,
    to: Option<TimestampMs>,
    timeout: Duration,
) -> Result<RangeRead> {
    let kafka = |what: &str, e: rdkafka::error::KafkaError| {
        Error::Kafka(format!("{what} {} on {}: {e}", topic.name, config.brokers))
    };
    let mut client = client_config(config);
    client
        .set(
            "group.id",
            format!("aiops-range-{}-{}", std::process::id(), system_now()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest");
    let consumer: BaseConsumer = client
        .create()
        .map_err(|e| kafka("cannot create a consumer for", e))?;
    let metadata = consumer
        .fetch_metadata(Some(&topic.name), timeout)
        .map_err(|e| kafka("cannot read the metadata of", e))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic.name)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(Error::Kafka(format!(
            "topic {} has no partitions on {} (does it exist?)",
            topic.name, config.brokers
        )));
    }

    // Where each partition starts and ends.
    let mut ends = BTreeMap::new();
    let mut starts = BTreeMap::new();
    for &partition in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(&topic.name, partition, timeout)
            .map_err(|e| kafka("cannot read the offsets of", e))?;
        starts.insert(partition, low);
        ends.insert(partition, high);
    }
    let mut seeked_by_time = false;
    if let Some(from) = from {
        let mut wanted = TopicPartitionList::new();
        for &partition in &partitions {
            wanted
                .add_partition_offset(&topic.name, partition, Offset::Offset(from))
                .map_err(|e| kafka("cannot ask offsets of", e))?;
        }
        if let Ok(found) = consumer.offsets_for_times(wanted, timeout) {
            seeked_by_time = true;
            for element in found.elements() {
                let start = match element.offset() {
                    Offset::Offset(offset) => offset,
                    // No message at or after `from`: nothing to read there.
                    Offset::End => ends.get(&element.partition()).copied().unwrap_or(0),
                    _ => {
                        seeked_by_time = false;
                        continue;
                    }
                };
                starts.insert(element.partition(), start);
            }
        }
    }

    let mut assignment = TopicPartitionList::new();
    let mut remaining = BTreeMap::new();
    for &partition in &partitions {
        let (start, end) = (starts[&partition], ends[&partition]);
        if start < end {
            assignment
                .add_partition_offset(&topic.name, partition, Offset::Offset(start))
                .map_err(|e| kafka("cannot assign", e))?;
            remaining.insert(partition, end);
        }
    }
    let mut read = RangeRead {
        seeked_by_time,
        ..RangeRead::default()
    };
    if remaining.is_empty() {
        return Ok(read);
    }
    consumer
        .assign(&assignment)
        .map_err(|e| kafka("cannot assign the partitions of", e))?;

    let mut options = base.clone();
    if topic.tenant.is_some() {
        options.fixed_tenant = topic.tenant.clone();
    }
    if topic.precision.is_some() {
        options.precision = topic.precision;
    }
    let mut cache = SeriesCache::new(4096);
    let mut last_progress = Instant::now();
    while !remaining.is_empty() {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            if last_progress.elapsed() > timeout {
                return Err(Error::Kafka(format!(
                    "reading {} stalled before the end of the range ({} partitions unfinished)",
                    topic.name,
                    remaining.len()
                )));
            }
            continue;
        };
        let message = message.map_err(|e| kafka("cannot read", e))?;
        last_progress = Instant::now();
        let partition = message.partition();
        if let Some(&end) = remaining.get(&partition)
            && message.offset() + 1 >= end
        {
            remaining.remove(&partition);
        }
        read.messages += 1;
        let received = message.timestamp().to_millis().unwrap_or_else(system_now);
        let Some(payload) = message.payload() else {
            read.rejected += 1;
            continue;
        };
        match parse_record_cached(topic.format, payload, &options, received, &mut cache) {
            Ok(points) => read.points.extend(points.into_iter().filter(|p| {
                from.is_none_or(|f| p.timestamp >= f) && to.is_none_or(|t| p.timestamp <= t)
            })),
            Err(_) => read.rejected += 1,
        }
    }
    Ok(read)
}
