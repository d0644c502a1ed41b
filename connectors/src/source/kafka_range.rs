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
use aiops_pipeline::config::{KafkaConfig, TopicConfig};
use aiops_pipeline::dataflow::RecordFormats;
use aiops_pipeline::record::{PartitionId, RawRecord};
use aiops_pipeline::source::{Batch, Poll, Source, SourceContext, WorkerSource};
use aiops_pipeline::{Error, Result};
use aiops_schemas::system_now;

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
    let plan = RangePlan::new(config, topic, from, timeout)?;
    let kafka = |what: &str, e: rdkafka::error::KafkaError| {
        Error::kafka(format!("{what} {} on {}", topic.name, config.brokers), e)
    };
    let consumer = plan.consumer(config)?;
    let ends = &plan.ends;
    let starts = &plan.starts;
    let partitions: Vec<i32> = ends.keys().copied().collect();
    let seeked_by_time = plan.seeked_by_time;
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

    let options = topic_options(topic, base);
    let mut cache = SeriesCache::new(4096);
    let mut last_progress = Instant::now();
    while !remaining.is_empty() {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            if last_progress.elapsed() > timeout {
                return Err(Error::kafka_message(format!(
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

/// Where a range read starts and ends in each partition of a topic.
#[derive(Debug, Clone)]
pub struct RangePlan {
    topic: String,
    /// First offset to read, per partition.
    pub starts: BTreeMap<i32, i64>,
    /// Offset after the last one to read (the end when the plan was made), per partition.
    pub ends: BTreeMap<i32, i64>,
    /// Whether the broker answered offsets-for-times.
    pub seeked_by_time: bool,
}

impl RangePlan {
    /// Asks the broker for the topic's partitions, their ends, and (with `from`) the first
    /// offset at or after `from`.
    pub fn new(
        config: &KafkaConfig,
        topic: &TopicConfig,
        from: Option<TimestampMs>,
        timeout: Duration,
    ) -> Result<RangePlan> {
        let kafka = |what: &str, e: rdkafka::error::KafkaError| {
            Error::kafka(format!("{what} {} on {}", topic.name, config.brokers), e)
        };
        let consumer = throwaway_consumer(config)?;
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
            return Err(Error::kafka_message(format!(
                "topic {} has no partitions on {} (does it exist?)",
                topic.name, config.brokers
            )));
        }
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
        Ok(RangePlan {
            topic: topic.name.clone(),
            starts,
            ends,
            seeked_by_time,
        })
    }

    /// Narrows the plan to explicit offsets: `(partition, first, end)`, `end` exclusive and
    /// `None` for the partition's end; partitions not named are not read. Offsets outside what
    /// the broker holds are clamped to it.
    pub fn with_offsets(mut self, offsets: &[(i32, i64, Option<i64>)]) -> Result<RangePlan> {
        let mut starts = BTreeMap::new();
        let mut ends = BTreeMap::new();
        for &(partition, first, end) in offsets {
            let (Some(&low), Some(&high)) =
                (self.starts.get(&partition), self.ends.get(&partition))
            else {
                return Err(Error::kafka_message(format!(
                    "topic {} has no partition {partition}",
                    self.topic
                )));
            };
            let end = end.unwrap_or(high).min(high);
            starts.insert(partition, first.max(low).min(end));
            ends.insert(partition, end);
        }
        self.starts = starts;
        self.ends = ends;
        self.seeked_by_time = false;
        Ok(self)
    }

    /// A consumer of a throwaway group (never committed).
    fn consumer(&self, config: &KafkaConfig) -> Result<BaseConsumer> {
        throwaway_consumer(config)
    }

    /// Messages in the plan.
    pub fn messages(&self) -> i64 {
        self.ends
            .iter()
            .map(|(p, end)| (end - self.starts.get(p).copied().unwrap_or(*end)).max(0))
            .sum()
    }
}

fn throwaway_consumer(config: &KafkaConfig) -> Result<BaseConsumer> {
    let mut client = client_config(config);
    client
        // As the live consumer: a broker that holds fetches (tansu does) answers sooner.
        .set("fetch.wait.max.ms", "5")
        .set(
            "group.id",
            format!("aiops-range-{}-{}", std::process::id(), system_now()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest");
    client.create().map_err(|e| {
        Error::kafka(
            format!("cannot create a consumer for {}", config.brokers),
            e,
        )
    })
}

fn topic_options(topic: &TopicConfig, base: &ParseOptions) -> ParseOptions {
    let mut options = base.clone();
    if topic.tenant.is_some() {
        options.fixed_tenant = topic.tenant.clone();
    }
    if topic.precision.is_some() {
        options.precision = topic.precision;
    }
    options
}

/// A planned range of one topic as a dataflow source: worker `i` of `n` reads the partitions
/// whose number is `i` modulo `n`, from the plan's start to its end, then is done. Records keep
/// their partition and offset, as the live Kafka source gives them, so the dataflow scores them
/// exactly as it would live.
pub struct KafkaRangeSource {
    config: KafkaConfig,
    topic: TopicConfig,
    plan: RangePlan,
}

impl KafkaRangeSource {
    /// A source over `plan`.
    pub fn new(config: KafkaConfig, topic: TopicConfig, plan: RangePlan) -> KafkaRangeSource {
        KafkaRangeSource {
            config,
            topic,
            plan,
        }
    }
}

impl Source for KafkaRangeSource {
    fn describe(&self) -> String {
        format!(
            "kafka {} on {} ({} messages in range)",
            self.topic.name,
            self.config.brokers,
            self.plan.messages()
        )
    }

    fn formats(&self, base: &ParseOptions) -> RecordFormats {
        RecordFormats::per_topic(vec![(self.topic.format, topic_options(&self.topic, base))])
    }

    fn open(
        &self,
        index: usize,
        peers: usize,
        _context: &SourceContext,
    ) -> Result<Box<dyn WorkerSource>> {
        let consumer = self.plan.consumer(&self.config)?;
        let mut assignment = TopicPartitionList::new();
        let mut remaining = BTreeMap::new();
        for (&partition, &end) in &self.plan.ends {
            let start = self.plan.starts.get(&partition).copied().unwrap_or(end);
            if partition as usize % peers.max(1) != index || start >= end {
                continue;
            }
            assignment
                .add_partition_offset(&self.plan.topic, partition, Offset::Offset(start))
                .map_err(|e| Error::kafka(format!("cannot assign {}", self.plan.topic), e))?;
            remaining.insert(partition, end);
        }
        if !remaining.is_empty() {
            consumer
                .assign(&assignment)
                .map_err(|e| Error::kafka(format!("cannot assign {}", self.plan.topic), e))?;
        }
        Ok(Box::new(RangeWorker {
            consumer,
            remaining,
            epoch: 0,
            last_progress: Instant::now(),
        }))
    }
}

struct RangeWorker {
    consumer: BaseConsumer,
    /// End offset per partition not finished yet.
    remaining: BTreeMap<i32, i64>,
    epoch: u64,
    last_progress: Instant,
}

/// Messages per batch of a range worker.
const RANGE_BATCH: usize = 4096;
/// A range read gives up after this long without a message.
const RANGE_STALL: Duration = Duration::from_secs(60);

impl WorkerSource for RangeWorker {
    fn poll(&mut self) -> Result<Poll> {
        if self.remaining.is_empty() {
            return Ok(Poll::Done);
        }
        let mut records = Vec::new();
        let mut wait = Duration::from_millis(100);
        while records.len() < RANGE_BATCH && !self.remaining.is_empty() {
            let Some(message) = self.consumer.poll(wait) else {
                break;
            };
            wait = Duration::ZERO;
            let message = message.map_err(|e| Error::kafka("cannot read the range", e))?;
            let partition = message.partition();
            let Some(&end) = self.remaining.get(&partition) else {
                continue;
            };
            if message.offset() >= end {
                self.remaining.remove(&partition);
                continue;
            }
            if message.offset() + 1 >= end {
                self.remaining.remove(&partition);
            }
            records.push(RawRecord {
                seq: message.offset() as u64,
                partition: PartitionId::new(0, partition),
                received: message.timestamp().to_millis().unwrap_or_else(system_now),
                key: message.key().map(<[u8]>::to_vec),
                bytes: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            });
        }
        if records.is_empty() {
            if self.last_progress.elapsed() > RANGE_STALL {
                return Err(Error::kafka_message(format!(
                    "the range read stalled: {} partitions unfinished",
                    self.remaining.len()
                )));
            }
            return Ok(if self.remaining.is_empty() {
                Poll::Done
            } else {
                Poll::Idle
            });
        }
        self.last_progress = Instant::now();
        let epoch = self.epoch;
        self.epoch += 1;
        Ok(Poll::Ready {
            epoch,
            batch: Batch::Raw(records),
        })
    }

    fn next_epoch(&self) -> u64 {
        self.epoch
    }
}
