//! Anomaly events as a Parquet file (feature `parquet`), for notebooks and warehouses.
//!
//! One row per event, Snappy-compressed, in this schema (the JSON event's fields, flattened):
//!
//! | column | Arrow type | meaning |
//! |---|---|---|
//! | `id` | utf8 | the event's deterministic id |
//! | `schema_version` | uint32 | the event format version |
//! | `tenant` | utf8 | |
//! | `series_key` | utf8 | the series key, 16 hex digits |
//! | `metric` | utf8 | the metric name |
//! | `labels` | utf8 | the labels as a JSON object |
//! | `timestamp` | timestamp[ms, UTC] | the point's time |
//! | `onset` | timestamp[ms, UTC] | when the incident began |
//! | `value` | float64 | the observed value |
//! | `expected_lower`, `expected_upper` | float64 | the band the detectors expected |
//! | `score` | float64 | the combined score |
//! | `severity` | utf8 | `warning` or `critical` |
//! | `escalation` | bool | raised an open incident to critical |
//! | `detector`, `template`, `model_version` | utf8 | who scored it |
//! | `contributions` | utf8 | each detector's score, as a JSON array of `{detector, score}` |

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, StringBuilder, TimestampMillisecondBuilder, UInt32Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use aiops_schemas::AnomalyEvent;

use aiops_pipeline::{Error, Result};

/// Rows per record batch (and row group at most).
const BATCH_ROWS: usize = 65_536;

/// The Arrow schema of the event files; see the module docs.
pub fn event_schema() -> Arc<Schema> {
    let utc = Some(Arc::from("UTC"));
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    let float = |name: &str| Field::new(name, DataType::Float64, false);
    let time = |name: &str| {
        Field::new(
            name,
            DataType::Timestamp(TimeUnit::Millisecond, utc.clone()),
            false,
        )
    };
    Arc::new(Schema::new(vec![
        text("id"),
        Field::new("schema_version", DataType::UInt32, false),
        text("tenant"),
        text("series_key"),
        text("metric"),
        text("labels"),
        time("timestamp"),
        time("onset"),
        float("value"),
        float("expected_lower"),
        float("expected_upper"),
        float("score"),
        text("severity"),
        Field::new("escalation", DataType::Boolean, false),
        text("detector"),
        text("template"),
        text("model_version"),
        text("contributions"),
    ]))
}

fn batch(schema: &Arc<Schema>, events: &[AnomalyEvent]) -> Result<RecordBatch> {
    let n = events.len();
    let strings = || StringBuilder::with_capacity(n, n * 16);
    let (mut id, mut tenant, mut key, mut metric, mut labels) =
        (strings(), strings(), strings(), strings(), strings());
    let (mut severity, mut detector, mut template, mut version, mut contributions) =
        (strings(), strings(), strings(), strings(), strings());
    let mut schema_version = UInt32Builder::with_capacity(n);
    let utc = "UTC";
    let mut timestamp = TimestampMillisecondBuilder::with_capacity(n).with_timezone(utc);
    let mut onset = TimestampMillisecondBuilder::with_capacity(n).with_timezone(utc);
    let floats = || Float64Builder::with_capacity(n);
    let (mut value, mut lower, mut upper, mut score) = (floats(), floats(), floats(), floats());
    let mut escalation = BooleanBuilder::with_capacity(n);
    for event in events {
        id.append_value(&event.id);
        schema_version.append_value(event.schema_version);
        tenant.append_value(&event.tenant);
        key.append_value(event.series.key.to_string());
        metric.append_value(&event.series.name);
        labels.append_value(serde_json::to_string(&event.series.labels).unwrap_or_default());
        timestamp.append_value(event.timestamp);
        onset.append_value(event.onset);
        value.append_value(event.value);
        lower.append_value(event.expected.lower);
        upper.append_value(event.expected.upper);
        score.append_value(event.score);
        severity.append_value(event.severity.to_string());
        escalation.append_value(event.escalation);
        detector.append_value(&event.detector);
        template.append_value(&event.template);
        version.append_value(&event.model_version);
        contributions.append_value(serde_json::to_string(&event.contributions).unwrap_or_default());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(schema_version.finish()),
        Arc::new(tenant.finish()),
        Arc::new(key.finish()),
        Arc::new(metric.finish()),
        Arc::new(labels.finish()),
        Arc::new(timestamp.finish()),
        Arc::new(onset.finish()),
        Arc::new(value.finish()),
        Arc::new(lower.finish()),
        Arc::new(upper.finish()),
        Arc::new(score.finish()),
        Arc::new(severity.finish()),
        Arc::new(escalation.finish()),
        Arc::new(detector.finish()),
        Arc::new(template.finish()),
        Arc::new(version.finish()),
        Arc::new(contributions.finish()),
    ];
    RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| Error::config(format!("cannot build the Parquet batch: {e}")))
}

/// Writes `events` to a Parquet file at `path` (replacing it); returns the rows written.
pub fn write_events(path: &Path, events: &[AnomalyEvent]) -> Result<u64> {
    let file = std::fs::File::create(path).map_err(|e| Error::io("cannot create", path, e))?;
    let schema = event_schema();
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let failed = |e: parquet::errors::ParquetError| Error::Sink {
        sink: format!("parquet {}", path.display()),
        source: std::io::Error::other(e.to_string()),
    };
    let mut writer =
        ArrowWriter::try_new(file, schema.clone(), Some(properties)).map_err(failed)?;
    for chunk in events.chunks(BATCH_ROWS) {
        writer.write(&batch(&schema, chunk)?).map_err(failed)?;
    }
    writer.close().map_err(failed)?;
    Ok(events.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiops_schemas::{Band, Contribution, Labels, SeriesKey, SeriesRef, Severity};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn event(i: i64) -> AnomalyEvent {
        AnomalyEvent {
            schema_version: 1,
            id: format!("{i:032x}"),
            tenant: "acme".into(),
            series: SeriesRef {
                key: SeriesKey(0xabc + i as u64),
                name: "cpu".into(),
                labels: Labels::from_pairs([("host", "a")]).unwrap(),
            },
            timestamp: 1_700_000_000_000 + i,
            onset: 1_700_000_000_000,
            value: i as f64,
            expected: Band {
                lower: 0.0,
                upper: 1.0,
            },
            score: 4.5,
            severity: Severity::Critical,
            escalation: i % 2 == 0,
            detector: "ensemble".into(),
            template: "default".into(),
            model_version: "default-v2".into(),
            contributions: vec![Contribution {
                detector: "zscore".into(),
                score: 4.5,
            }],
        }
    }

    #[test]
    fn events_round_trip_through_the_parquet_reader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.parquet");
        let events: Vec<AnomalyEvent> = (0..3).map(event).collect();
        assert_eq!(write_events(&path, &events).unwrap(), 3);
        let file = std::fs::File::open(&path).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 3);
        assert_eq!(batches[0].schema().fields(), event_schema().fields());
        let keys = batches[0]
            .column_by_name("series_key")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        assert_eq!(keys.value(0), "0000000000000abc");
    }
}
