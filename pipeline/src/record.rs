//! The records that flow between the stages of the dataflow, and out of it.
//!
//! Every record keeps its source position: `partition` (a source-wide partition number; 0 for
//! files and generators, see [`crate::source::kafka::PartitionId`] for Kafka) and `seq` (a
//! file's line number, a Kafka offset, a generator's tick and series). The score stage sorts each
//! epoch by position, which is what makes a series' points reach it in source order whatever the
//! number of workers, and checkpoints group series state by partition.

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use aiops_schemas::{AnomalyEvent, Format, MetricPoint, Series, SeriesKey, TimestampMs};

/// A record as a source read it, not parsed yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawRecord {
    /// Position within the partition.
    pub seq: u64,
    /// The partition it came from.
    pub partition: u32,
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
    pub partition: u32,
    /// The point.
    pub point: MetricPoint,
}

/// A series' checkpointed state, sent into the dataflow to the worker that owns the series
/// before any later point of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesState {
    /// The partition the series' points come from.
    pub partition: u32,
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
    pub partition: u32,
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

/// A persisting drift asks for its template to be retrained on the drifted series' recent
/// points.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrainRequest {
    /// The template.
    pub template: String,
    /// The version that was scoring when the drift was seen.
    pub version: String,
    /// The series that drifted.
    pub series: Arc<Series>,
    /// Its points since the drift began, in time order.
    pub points: Vec<(TimestampMs, f64)>,
    /// The running version's combined score of each of those points (`None`: warming up):
    /// how the incumbent actually did, which a new version has to beat.
    pub scores: Vec<Option<f64>>,
    /// Which test fired on which stream, in words.
    pub reason: String,
}
