//! The records that flow between the stages of the dataflow, and out of it.
//!
//! Every record keeps its source position: `partition` (a [`PartitionId`]: topic and partition
//! for Kafka, the file's index for files, 0 for generators) and `seq` (a
//! file's line number, a Kafka offset, a generator's tick and series). The score stage sorts each
//! epoch by position, which is what makes a series' points reach it in source order whatever the
//! number of workers, and checkpoints group series state by partition.

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use aiops_schemas::{AnomalyEvent, Format, MetricPoint, Series, SeriesKey, TimestampMs};

/// A source-wide partition number: the topic's index (in configuration order) in the high 16
/// bits, the partition in the low 16 (so at most 65,536 partitions per topic).
///
/// Every record carries one: sources without topics (files, stdin, the generator) use topic
/// indexes for their files and partition 0.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct PartitionId(pub u32);

impl PartitionId {
    /// The id of `partition` of the topic at `topic_index`.
    pub fn new(topic_index: usize, partition: i32) -> PartitionId {
        PartitionId(((topic_index as u32 & 0xFFFF) << 16) | (partition as u32 & 0xFFFF))
    }

    /// The topic's index.
    pub fn topic_index(self) -> usize {
        (self.0 >> 16) as usize
    }

    /// The partition within the topic.
    pub fn partition(self) -> i32 {
        (self.0 & 0xFFFF) as i32
    }
}

impl std::fmt::Display for PartitionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.topic_index(), self.partition())
    }
}

/// A record as a source read it, not parsed yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawRecord {
    /// Position within the partition.
    pub seq: u64,
    /// The partition it came from.
    pub partition: PartitionId,
    /// Timestamp for points that carry none: the Kafka message's timestamp, or the time the
    /// record was read.
    pub received: TimestampMs,
    /// The Kafka message key, if any (kept for the dead-letter topic).
    pub key: Option<Vec<u8>>,
    /// The bytes as received.
    pub bytes: Vec<u8>,
}

/// A validated point with its source position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourcePoint {
    /// Position within the partition; points of one partition have distinct positions.
    pub seq: u64,
    /// The partition it came from.
    pub partition: PartitionId,
    /// The point.
    pub point: MetricPoint,
}

/// A series' checkpointed state, sent into the dataflow to the worker that owns the series
/// before any later point of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesState {
    /// The partition the series' points come from.
    pub partition: PartitionId,
    /// The series.
    pub key: SeriesKey,
    /// The encoded `aiops_operators::ChainSnapshot`.
    pub state: Vec<u8>,
}

/// A record that failed to parse or validate, with why. Nothing is dropped silently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Position within the partition.
    pub seq: u64,
    /// The partition it came from.
    pub partition: PartitionId,
    /// The Kafka message key, if any.
    pub key: Option<Vec<u8>>,
    /// The format it was parsed as.
    pub format: Format,
    /// A stable identifier of the reason (see `aiops_schemas::Error::kind`).
    pub kind: String,
    /// The reason, in words.
    pub reason: String,
    /// The record's original bytes.
    pub bytes: Vec<u8>,
}

impl DeadLetter {
    /// A JSON line for a dead-letter file: the reason and the record (as text when it is
    /// UTF-8, else base64 under `record_base64`).
    pub fn to_json(&self) -> serde_json::Value {
        use base64::Engine as _;
        let mut value = serde_json::json!({
            "seq": self.seq,
            "format": self.format,
            "kind": self.kind,
            "reason": self.reason,
        });
        match std::str::from_utf8(&self.bytes) {
            Ok(text) => value["record"] = text.into(),
            Err(_) => {
                value["record_base64"] = base64::engine::general_purpose::STANDARD
                    .encode(&self.bytes)
                    .into()
            }
        }
        value
    }
}

/// Which template and model version scored a point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelTag {
    /// The template's name.
    pub template: String,
    /// The version stamped on its events.
    pub version: String,
}

/// One scored point, for the drift stage: the feature it watches and the combined score.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreSample {
    /// The series.
    pub series: Arc<Series>,
    /// The point's timestamp.
    pub timestamp: TimestampMs,
    /// The point's value.
    pub value: f64,
    /// The ensemble's score (`None` while the detectors warm up).
    pub score: Option<f64>,
    /// The band the detectors expected (`None` while they warm up).
    pub expected: Option<aiops_schemas::Band>,
    /// Who scored it.
    pub model: Arc<ModelTag>,
    /// Changes whenever a model swap replaced the series' learnt state.
    pub generation: u32,
}

/// What the score stage emits: anomaly events and, when the drift stage runs, a sample per
/// scored point.
#[derive(Debug, Clone, PartialEq)]
pub enum Scored {
    /// An anomaly event (boxed: events are rare and large, samples are many and small).
    Event(Box<AnomalyEvent>),
    /// A scored point.
    Sample(ScoreSample),
}

/// What the drift stage sends the retrainer (defined beside the retrainer, in `aiops-models`).
pub use aiops_models::retrain::RetrainRequest;
