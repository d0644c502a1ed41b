//! `MetricPoint`: one observation of one series, the unit that flows through the pipeline.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::SCHEMA_VERSION;
use crate::error::Result;
use crate::limits::Limits;
use crate::series::{Labels, Series};
use crate::time::TimestampMs;

/// One observation. The series is shared (`Arc`) because a source produces many points of the
/// same series and the dataflow moves points between threads; cloning a point never copies names.
///
/// Wire form (JSON), flat so producers can write it by hand:
/// `{"schema_version":1,"tenant":"acme","name":"cpu","labels":{"host":"a"},"timestamp":1386018900000,"value":0.5}`
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// The series observed.
    pub series: Arc<Series>,
    /// When, in milliseconds since the Unix epoch.
    pub timestamp: TimestampMs,
    /// What was observed; always finite once validated.
    pub value: f64,
}

impl MetricPoint {
    /// Builds a point after checking the timestamp and value against `limits` (the series was
    /// checked when it was built).
    pub fn new(
        series: Arc<Series>,
        timestamp: TimestampMs,
        value: f64,
        limits: &Limits,
    ) -> Result<MetricPoint> {
        limits.check_timestamp(timestamp)?;
        limits.check_value(value)?;
        Ok(MetricPoint {
            series,
            timestamp,
            value,
        })
    }
}

#[derive(Serialize)]
struct PointOut<'a> {
    schema_version: u32,
    tenant: &'a str,
    name: &'a str,
    labels: &'a Labels,
    timestamp: TimestampMs,
    value: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PointIn {
    // A plain u32 like `PointOut`'s, not an Option: formats without field names (bincode,
    // which timely uses between processes) read the fields by position and type.
    #[serde(default)]
    #[allow(dead_code)]
    schema_version: u32,
    tenant: String,
    name: String,
    #[serde(default)]
    labels: Labels,
    timestamp: TimestampMs,
    value: f64,
}

impl Serialize for MetricPoint {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        PointOut {
            schema_version: SCHEMA_VERSION,
            tenant: self.series.tenant(),
            name: self.series.name(),
            labels: self.series.labels(),
            timestamp: self.timestamp,
            value: self.value,
        }
        .serialize(serializer)
    }
}

/// Reading a point back validates it with the default [`Limits`]; producers' records go through
/// the more forgiving parsers in [`crate::parse`] instead.
impl<'de> Deserialize<'de> for MetricPoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let raw = PointIn::deserialize(deserializer)?;
        let limits = Limits::default();
        let series = Series::new(raw.tenant, raw.name, raw.labels, &limits)
            .map_err(serde::de::Error::custom)?;
        MetricPoint::new(Arc::new(series), raw.timestamp, raw.value, &limits)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_round_trips_through_bincode() {
        // Regression: a timely cluster exchanges points between processes with bincode, and
        // an `Option<u32>` read where a `u32` was written failed every exchange.
        let limits = Limits::default();
        let labels = Labels::from_pairs([("host", "a"), ("dc", "x")]).unwrap();
        let series = Arc::new(Series::new("acme", "cpu", labels, &limits).unwrap());
        let point = MetricPoint::new(series, 1_386_018_900_000, 0.5, &limits).unwrap();
        let bytes = bincode::serialize(&point).unwrap();
        let back: MetricPoint = bincode::deserialize(&bytes).unwrap();
        assert_eq!(back, point);
        assert_eq!(back.series.key(), point.series.key());
    }

    #[test]
    fn point_round_trips_through_json() {
        let limits = Limits::default();
        let labels = Labels::from_pairs([("host", "a")]).unwrap();
        let series = Arc::new(Series::new("acme", "cpu", labels, &limits).unwrap());
        let point = MetricPoint::new(series, 1_386_018_900_000, 0.5, &limits).unwrap();
        let json = serde_json::to_string(&point).unwrap();
        assert_eq!(
            json,
            r#"{"schema_version":1,"tenant":"acme","name":"cpu","labels":{"host":"a"},"timestamp":1386018900000,"value":0.5}"#
        );
        assert_eq!(serde_json::from_str::<MetricPoint>(&json).unwrap(), point);
    }

    #[test]
    fn reading_a_point_validates_it() {
        let bad = r#"{"tenant":"a b","name":"cpu","timestamp":0,"value":1}"#;
        assert!(serde_json::from_str::<MetricPoint>(bad).is_err());
    }
}
