//! What the pipeline emits: anomaly events, drift events, and the channel names they travel on.
//!
//! Both event types carry `schema_version` so consumers can tell formats apart, and a
//! deterministic `id` (a hash of what the event is about, never of when it was produced), so a
//! replay after a crash yields the same ids and consumers can drop duplicates.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::SCHEMA_VERSION;
use crate::series::{Labels, Series, SeriesKey, write_canonical};
use crate::time::TimestampMs;

/// How bad an anomaly is, as decided by the alert policy's thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Above the warning threshold.
    Warning,
    /// Above the critical threshold.
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        })
    }
}

/// The range of values a detector considered normal for a point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Band {
    /// Lowest normal value.
    pub lower: f64,
    /// Highest normal value.
    pub upper: f64,
}

/// One detector's share in an ensemble decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// The detector's registry name (`zscore`, `mad`, ...).
    pub detector: String,
    /// Its score for the point, in the same unit as [`AnomalyEvent::score`].
    pub score: f64,
}

/// The series an event is about, without the tenant (which the event carries at top level).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesRef {
    /// The series key (16 hex digits).
    pub key: SeriesKey,
    /// The metric name.
    pub name: String,
    /// The labels.
    pub labels: Labels,
}

impl From<&Series> for SeriesRef {
    fn from(series: &Series) -> SeriesRef {
        SeriesRef {
            key: series.key(),
            name: series.name().to_owned(),
            labels: series.labels().clone(),
        }
    }
}

/// An anomaly: the alert policy decided that a point (and the incident it opens or escalates)
/// deserves someone's attention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyEvent {
    /// Format version of this record; see [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Deterministic id: see [`anomaly_id`].
    pub id: String,
    /// The tenant the series belongs to.
    pub tenant: String,
    /// The series.
    pub series: SeriesRef,
    /// The point's own timestamp, milliseconds since the Unix epoch.
    pub timestamp: TimestampMs,
    /// When the incident began: the first point of the run that crossed the warning threshold.
    pub onset: TimestampMs,
    /// The observed value.
    pub value: f64,
    /// The range the detectors expected.
    pub expected: Band,
    /// Anomaly score in sigma-equivalent units: the number of standard deviations of a normal
    /// distribution whose two-sided tail is as unlikely as this point (3 ≈ 1 in 370).
    pub score: f64,
    /// Warning or critical.
    pub severity: Severity,
    /// True when this event raises an open incident from warning to critical.
    #[serde(default)]
    pub escalation: bool,
    /// The detector (or `ensemble`) whose score decided.
    pub detector: String,
    /// The detector template that scored the series.
    pub template: String,
    /// The model version that scored the point.
    pub model_version: String,
    /// Each detector's score for the point.
    pub contributions: Vec<Contribution>,
}

/// Which statistical test noticed a drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftTest {
    /// Population stability index between binned distributions.
    Psi,
    /// Two-sample Kolmogorov–Smirnov statistic.
    Ks,
    /// First Wasserstein (earth mover's) distance.
    Wasserstein,
    /// ADWIN change detection on a score stream.
    Adwin,
    /// Page–Hinkley change detection on a score stream.
    PageHinkley,
}

/// A time range, both ends in milliseconds since the Unix epoch, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    /// First timestamp in the range.
    pub start: TimestampMs,
    /// Last timestamp in the range.
    pub end: TimestampMs,
}

/// A drift: the live distribution of a feature or of detector scores has moved away from the
/// reference the active model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftEvent {
    /// Format version of this record; see [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Deterministic id: see [`drift_id`].
    pub id: String,
    /// The tenant.
    pub tenant: String,
    /// The detector template whose inputs drifted.
    pub template: String,
    /// The series, when the drift is about one series rather than the whole template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<SeriesRef>,
    /// The feature or score stream tested (`value`, `rate`, `score:zscore`, ...).
    pub feature: String,
    /// The test that fired.
    pub test: DriftTest,
    /// The test's statistic.
    pub statistic: f64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// The reference window.
    pub reference: TimeRange,
    /// The live window compared with it.
    pub live: TimeRange,
    /// When the drift was detected (event time of the last live point).
    pub timestamp: TimestampMs,
    /// The active model version the reference belongs to.
    pub model_version: String,
}

/// What a pipeline says about a detector configuration version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigNoticeKind {
    /// The version is live in this pipeline instance: every point scored after it used it.
    ConfigApplied,
    /// The instance cannot run the version (the previous one, if any, keeps running).
    ConfigRejected,
}

/// A pipeline instance's notice about a configuration version, on the tenant's `config`
/// channel: what the UI's optimistic update waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigNotice {
    /// Format version of this record; see [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `<tenant>.<name>@<version>/<instance>/<applied|rejected>`: one per instance and version.
    pub id: String,
    /// Applied or rejected.
    #[serde(rename = "type")]
    pub kind: ConfigNoticeKind,
    /// The tenant.
    pub tenant: String,
    /// The configuration's name.
    pub name: String,
    /// Its version.
    pub version: u64,
    /// True when the version is a delete: the configuration no longer runs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// The pipeline instance (host and process) that applied or refused it.
    pub instance: String,
    /// When, milliseconds since the Unix epoch (wall clock of the instance).
    pub at: TimestampMs,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ConfigNotice {
    /// A notice with its id.
    pub fn new(
        kind: ConfigNoticeKind,
        (tenant, name, version): (&str, &str, u64),
        instance: &str,
        at: TimestampMs,
    ) -> ConfigNotice {
        let outcome = match kind {
            ConfigNoticeKind::ConfigApplied => "applied",
            ConfigNoticeKind::ConfigRejected => "rejected",
        };
        ConfigNotice {
            schema_version: SCHEMA_VERSION,
            id: format!("{tenant}.{name}@{version}/{instance}/{outcome}"),
            kind,
            tenant: tenant.to_owned(),
            name: name.to_owned(),
            version,
            deleted: false,
            instance: instance.to_owned(),
            at,
            reason: None,
        }
    }
}

/// The id of an anomaly event: 32 hex digits of XXH3-128 over the series' canonical form, the
/// point's timestamp, the detector and the model version. The same point scored by the same
/// model always gets the same id, in any process and after any restart.
pub fn anomaly_id(
    series: &Series,
    timestamp: TimestampMs,
    detector: &str,
    model_version: &str,
) -> String {
    let mut bytes = Vec::with_capacity(96);
    write_canonical(&mut bytes, series.tenant(), series.name(), series.labels());
    bytes.push(0xFF);
    bytes.extend_from_slice(&timestamp.to_le_bytes());
    bytes.extend_from_slice(detector.as_bytes());
    bytes.push(0xFF);
    bytes.extend_from_slice(model_version.as_bytes());
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes))
}

/// The id of a drift event: 32 hex digits of XXH3-128 over tenant, template, series key (if
/// any), feature, test and the live window's end.
pub fn drift_id(
    tenant: &str,
    template: &str,
    series: Option<SeriesKey>,
    feature: &str,
    test: DriftTest,
    live_end: TimestampMs,
) -> String {
    let mut bytes = Vec::with_capacity(96);
    for part in [tenant, template, feature] {
        bytes.extend_from_slice(part.as_bytes());
        bytes.push(0xFF);
    }
    bytes.extend_from_slice(&series.map_or(0, |k| k.0).to_le_bytes());
    bytes.push(test as u8);
    bytes.extend_from_slice(&live_end.to_le_bytes());
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes))
}

impl AnomalyEvent {
    /// The schema version this crate writes.
    pub const SCHEMA_VERSION: u32 = SCHEMA_VERSION;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    fn series(name: &str) -> Series {
        Series::new("acme", name, Labels::new(), &Limits::default()).unwrap()
    }

    #[test]
    fn anomaly_ids_are_deterministic_and_discriminating() {
        let s = series("cpu");
        let id = anomaly_id(&s, 1000, "ensemble", "v1");
        assert_eq!(id.len(), 32);
        assert_eq!(id, anomaly_id(&s, 1000, "ensemble", "v1"));
        assert_ne!(id, anomaly_id(&s, 1001, "ensemble", "v1"));
        assert_ne!(id, anomaly_id(&s, 1000, "zscore", "v1"));
        assert_ne!(id, anomaly_id(&s, 1000, "ensemble", "v2"));
        assert_ne!(id, anomaly_id(&series("mem"), 1000, "ensemble", "v1"));
    }
}
