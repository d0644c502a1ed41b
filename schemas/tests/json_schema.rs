//! The JSON Schema files in `schemas/json-schema/` describe exactly what the types serialize:
//! every sample validates, and removing or mistyping a field is caught.

use std::sync::Arc;

use aiops_schemas::{
    AnomalyEvent, Band, Contribution, DriftEvent, DriftTest, Labels, Limits, MetricPoint, Series,
    SeriesRef, Severity, TimeRange, anomaly_id, drift_id,
};
use serde_json::{Value, json};

fn validator(file: &str) -> jsonschema::Validator {
    let path = format!("{}/json-schema/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let schema: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn series() -> Series {
    let labels = Labels::from_pairs([("host", "a"), ("dc", "eu")]).unwrap();
    Series::new("acme", "cpu", labels, &Limits::default()).unwrap()
}

fn anomaly() -> AnomalyEvent {
    let s = series();
    AnomalyEvent {
        schema_version: AnomalyEvent::SCHEMA_VERSION,
        id: anomaly_id(&s, 1_000, "ensemble", "builtin-1"),
        tenant: s.tenant().to_owned(),
        series: SeriesRef::from(&s),
        timestamp: 1_000,
        onset: 900,
        value: 97.5,
        expected: Band {
            lower: 10.0,
            upper: 60.0,
        },
        score: 7.25,
        severity: Severity::Critical,
        escalation: false,
        detector: "ensemble".into(),
        template: "default".into(),
        model_version: "builtin-1".into(),
        contributions: vec![Contribution {
            detector: "zscore".into(),
            score: 7.25,
        }],
    }
}

fn drift() -> DriftEvent {
    let s = series();
    DriftEvent {
        schema_version: 1,
        id: drift_id(
            "acme",
            "default",
            Some(s.key()),
            "value",
            DriftTest::Ks,
            2_000,
        ),
        tenant: "acme".into(),
        template: "default".into(),
        series: Some(SeriesRef::from(&s)),
        feature: "value".into(),
        test: DriftTest::Ks,
        statistic: 0.4,
        threshold: 0.2,
        reference: TimeRange { start: 0, end: 999 },
        live: TimeRange {
            start: 1_000,
            end: 2_000,
        },
        timestamp: 2_000,
        model_version: "builtin-1".into(),
    }
}

fn assert_valid(validator: &jsonschema::Validator, value: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{value}: {errors:?}");
}

#[test]
fn anomaly_events_match_their_schema() {
    let v = validator("anomaly-event.schema.json");
    let event = serde_json::to_value(anomaly()).unwrap();
    assert_valid(&v, &event);
    // The schema is strict enough to notice drift between code and file.
    for field in ["id", "series", "expected", "severity", "contributions"] {
        let mut broken = event.clone();
        broken.as_object_mut().unwrap().remove(field);
        assert!(
            !v.is_valid(&broken),
            "schema accepts an event without {field}"
        );
    }
    let mut broken = event.clone();
    broken["severity"] = json!("meh");
    assert!(!v.is_valid(&broken));
    let mut broken = event;
    broken["surprise"] = json!(1);
    assert!(!v.is_valid(&broken));
}

#[test]
fn drift_events_match_their_schema() {
    let v = validator("drift-event.schema.json");
    let event = serde_json::to_value(drift()).unwrap();
    assert_valid(&v, &event);
    let mut without_series = drift();
    without_series.series = None;
    assert_valid(&v, &serde_json::to_value(without_series).unwrap());
    let mut broken = event;
    broken["test"] = json!("chi2");
    assert!(!v.is_valid(&broken));
}

#[test]
fn metric_points_match_their_schema() {
    let v = validator("metric-point.schema.json");
    let point = MetricPoint::new(Arc::new(series()), 1_000, 0.5, &Limits::default()).unwrap();
    let value = serde_json::to_value(&point).unwrap();
    assert_valid(&v, &value);
    let mut broken = value;
    broken["tenant"] = json!("a:b");
    assert!(!v.is_valid(&broken));
}

#[test]
fn events_round_trip_through_json() {
    let event = anomaly();
    let back: AnomalyEvent = serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
    assert_eq!(back, event);
    let event = drift();
    let back: DriftEvent = serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
    assert_eq!(back, event);
}
