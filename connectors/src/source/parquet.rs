//! A Parquet file of metrics as a source (feature `parquet`), for replays of exported history.
//!
//! Columns: `timestamp` (a timestamp of any unit, or int64 milliseconds since the epoch) and
//! `value` (any float or integer type) are required; `metric` or `name` (string) names the
//! series (else the file's stem, as for CSV); `tenant` (string) is optional; every other string
//! column is a label. Each row becomes one JSON record, so it is validated and dead-lettered
//! exactly like a JSON line. Batches of rows go to the workers in turn, like a file's lines.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use aiops_schemas::{Format, ParseOptions};

use super::single_format;
use aiops_pipeline::dataflow::RecordFormats;
use aiops_pipeline::record::{PartitionId, RawRecord};
use aiops_pipeline::source::{Batch, Poll, Source, SourceContext, WorkerSource};
use aiops_pipeline::{Error, Result};

/// Rows per batch.
const BATCH_ROWS: usize = 4096;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct ParquetSource {
    path: PathBuf,
}

impl ParquetSource {
    /// A Parquet source; its schema is checked now, so a file without `timestamp` or `value`
    /// is refused before anything runs.
    pub fn new(path: impl Into<PathBuf>) -> Result<ParquetSource> {
        let path = path.into();
        let source = ParquetSource { path };
        let reader = source.reader()?;
        let schema = arrow_array::RecordBatchReader::schema(&reader);
        for required in ["timestamp", "value"] {
            if schema.field_with_name(required).is_err() {
                return Err(Error::config(format!(
                    "{}: a metrics Parquet file needs a {required:?} column (columns: {})",
                    source.path.display(),
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        Ok(source)
    }

    fn reader(&self) -> Result<ParquetRecordBatchReader> {
        let file = File::open(&self.path).map_err(|e| Error::io("cannot read", &self.path, e))?;
        ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.with_batch_size(BATCH_ROWS).build())
            .map_err(|e| {
                Error::config(format!(
                    "{} is not a readable Parquet file: {e}",
                    self.path.display()
                ))
            })
    }

    fn metric_name(&self) -> String {
        metric_of(&self.path)
    }
}

fn metric_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "value".to_owned())
}

impl Source for ParquetSource {
    fn describe(&self) -> String {
        format!("parquet {}", self.path.display())
    }

    fn formats(&self, base: &ParseOptions) -> RecordFormats {
        single_format(Format::Json, base)
    }

    fn open(
        &self,
        index: usize,
        peers: usize,
        _context: &SourceContext,
    ) -> Result<Box<dyn WorkerSource>> {
        Ok(Box::new(ParquetWorker {
            reader: self.reader()?,
            metric: self.metric_name(),
            index: index as u64,
            peers: peers.max(1) as u64,
            batch: 0,
            rows: 0,
        }))
    }
}

struct ParquetWorker {
    reader: ParquetRecordBatchReader,
    metric: String,
    index: u64,
    peers: u64,
    /// The next batch's number.
    batch: u64,
    /// Rows before the next batch.
    rows: u64,
}

impl WorkerSource for ParquetWorker {
    fn poll(&mut self) -> Result<Poll> {
        for batch in self.reader.by_ref() {
            let batch =
                batch.map_err(|e| Error::config(format!("cannot read Parquet rows: {e}")))?;
            let (number, first_row) = (self.batch, self.rows);
            self.batch += 1;
            self.rows += batch.num_rows() as u64;
            if number % self.peers != self.index {
                continue;
            }
            let records = rows_as_json(&batch, &self.metric, first_row);
            return Ok(Poll::Ready {
                epoch: number,
                batch: Batch::Raw(records),
            });
        }
        Ok(Poll::Done)
    }

    fn next_epoch(&self) -> u64 {
        self.batch + (self.index + self.peers - self.batch % self.peers) % self.peers
    }
}

/// A column's value at `row` as milliseconds since the epoch, if it is a time.
fn millis(column: &dyn Array, row: usize) -> Option<i64> {
    if column.is_null(row) {
        return None;
    }
    Some(match column.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            column.as_primitive::<TimestampSecondType>().value(row) * 1000
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            column.as_primitive::<TimestampMillisecondType>().value(row)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            column.as_primitive::<TimestampMicrosecondType>().value(row) / 1000
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            column.as_primitive::<TimestampNanosecondType>().value(row) / 1_000_000
        }
        DataType::Int64 => column.as_primitive::<Int64Type>().value(row),
        _ => return None,
    })
}

/// A column's value at `row` as a number, if it is one.
fn number(column: &dyn Array, row: usize) -> Option<f64> {
    if column.is_null(row) {
        return None;
    }
    Some(match column.data_type() {
        DataType::Float64 => column.as_primitive::<Float64Type>().value(row),
        DataType::Float32 => f64::from(column.as_primitive::<Float32Type>().value(row)),
        DataType::Int64 => column.as_primitive::<Int64Type>().value(row) as f64,
        DataType::Int32 => f64::from(column.as_primitive::<Int32Type>().value(row)),
        _ => return None,
    })
}

fn text(column: &dyn Array, row: usize) -> Option<String> {
    if column.is_null(row) {
        return None;
    }
    match column.data_type() {
        DataType::Utf8 => Some(column.as_string::<i32>().value(row).to_owned()),
        DataType::LargeUtf8 => Some(column.as_string::<i64>().value(row).to_owned()),
        _ => None,
    }
}

/// Each row as a JSON record; a row whose time or value is missing or of another type still
/// becomes a record (without it), so the parse stage dead-letters it with the reason.
fn rows_as_json(batch: &RecordBatch, metric: &str, first_row: u64) -> Vec<RawRecord> {
    let schema = batch.schema();
    let column = |name: &str| schema.index_of(name).ok().map(|i| batch.column(i).clone());
    let (timestamp, value) = (column("timestamp"), column("value"));
    let name = column("metric").or_else(|| column("name"));
    let tenant = column("tenant");
    let labels: Vec<(String, Arc<dyn Array>)> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            !matches!(
                f.name().as_str(),
                "timestamp" | "value" | "metric" | "name" | "tenant"
            ) && matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8)
        })
        .map(|(i, f)| (f.name().clone(), batch.column(i).clone()))
        .collect();
    (0..batch.num_rows())
        .map(|row| {
            let mut record = serde_json::Map::new();
            let series = name
                .as_deref()
                .and_then(|c| text(c, row))
                .unwrap_or_else(|| metric.to_owned());
            record.insert("name".into(), series.into());
            if let Some(tenant) = tenant.as_deref().and_then(|c| text(c, row)) {
                record.insert("tenant".into(), tenant.into());
            }
            let labels: serde_json::Map<String, serde_json::Value> = labels
                .iter()
                .filter_map(|(key, c)| Some((key.clone(), text(c.as_ref(), row)?.into())))
                .collect();
            if !labels.is_empty() {
                record.insert("labels".into(), labels.into());
            }
            if let Some(t) = timestamp.as_deref().and_then(|c| millis(c, row)) {
                record.insert("timestamp".into(), t.into());
            }
            if let Some(v) = value.as_deref().and_then(|c| number(c, row)) {
                record.insert("value".into(), v.into());
            }
            RawRecord {
                seq: first_row + row as u64,
                partition: PartitionId::default(),
                received: aiops_schemas::system_now(),
                key: None,
                bytes: serde_json::Value::Object(record).to_string().into_bytes(),
            }
        })
        .collect()
}
