//! Sources: where records come from. Each implements `aiops_pipeline::source::Source` and
//! decides how its work is split between the workers.
//!
//! - [`file::FileSource`]: NAB CSV, JSON lines or Influx lines; batches of lines go to the
//!   workers in turn, so parsing runs on every worker.
//! - `parquet::ParquetSource` (feature `parquet`): a Parquet file of metrics.
//! - [`stdin::StdinSource`]: lines from standard input, read by worker 0.
//! - [`synthetic::SyntheticSource`]: seasonal series with injected anomalies of known kinds and
//!   times; each worker generates its share of the series.
//! - `kafka::KafkaSource` (feature `kafka`): one consumer per worker in one consumer group,
//!   with checkpoints; `kafka_range::KafkaRangeSource`: a time range of topics, for replays.

pub mod file;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "kafka")]
pub mod kafka_range;
#[cfg(feature = "parquet")]
pub mod parquet;
pub mod stdin;
pub mod synthetic;

use aiops_pipeline::dataflow::RecordFormats;
use aiops_schemas::{Format, ParseOptions};

/// The format a single-format source parses with.
pub(crate) fn single_format(format: Format, base: &ParseOptions) -> RecordFormats {
    RecordFormats::single(format, base.clone())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use aiops_pipeline::Counters;
    use aiops_pipeline::source::SourceContext;

    /// A context whose messages nobody reads, for tests of a single source.
    pub(crate) fn context() -> SourceContext {
        let (output, _) = std::sync::mpsc::sync_channel(1024);
        SourceContext {
            output,
            counters: Arc::new(Counters::default()),
        }
    }
}
