//! The records that flow between the stages of the dataflow.
//!
//! Every record keeps `seq`, its position in the source's order (a file's line number, a
//! generator's tick and series). The feature stage sorts each epoch by it, which is what makes a
//! series' points reach the stateful stages in the same order whatever the number of workers.

use serde::{Deserialize, Serialize};

use aiops_operators::{Combined, DetectorScores, Features};
use aiops_schemas::{Format, MetricPoint};

/// A record as a source read it, not parsed yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawRecord {
    /// Position in the source's order.
    pub seq: u64,
    /// The bytes as received.
    pub bytes: Vec<u8>,
}

/// A validated point with its position in the source's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourcePoint {
    /// Position in the source's order; records of one source have distinct positions.
    pub seq: u64,
    /// The point.
    pub point: MetricPoint,
}

/// A record that failed to parse or validate, with why. Nothing is dropped silently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Position in the source's order.
    pub seq: u64,
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

/// A point with its features and the index of the template that scores its series.
#[derive(Debug, Clone, PartialEq)]
pub struct FeaturedPoint {
    /// Position in the source's order.
    pub seq: u64,
    /// The point.
    pub point: MetricPoint,
    /// Index of the series' template in the pipeline's `TemplateSet`.
    pub template: u16,
    /// The point's features.
    pub features: Features,
}

/// A point with every detector's score and the ensemble's.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredPoint {
    /// Position in the source's order.
    pub seq: u64,
    /// The point.
    pub point: MetricPoint,
    /// Index of the series' template.
    pub template: u16,
    /// Each detector's score.
    pub scores: DetectorScores,
    /// The ensemble's score, once a detector is warm.
    pub combined: Option<Combined>,
}
