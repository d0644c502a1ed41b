//! Sources: where records come from. Each worker gets its own [`WorkerSource`] from a
//! [`Source`], and the sources decide how the work is split between workers.
//!
//! - [`file::FileSource`]: NAB CSV, JSON lines or Influx lines; batches of lines go to the
//!   workers in turn, so parsing runs on every worker.
//! - `parquet::ParquetSource` (feature `parquet`): a Parquet file of metrics.
//! - [`stdin::StdinSource`]: lines from standard input, read by worker 0.
//! - [`synthetic::SyntheticSource`]: seasonal series with injected anomalies of known kinds and
//!   times; each worker generates its share of the series.
//! - `kafka::KafkaSource` (feature `kafka`): one consumer per worker in one consumer group,
//!   with checkpoints.

pub mod file;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "kafka")]
pub mod kafka_range;
#[cfg(feature = "parquet")]
pub mod parquet;
pub mod stdin;
pub mod synthetic;

use std::sync::Arc;
use std::sync::mpsc::SyncSender;

use aiops_schemas::{Format, ParseOptions};

use crate::checkpoint::{PartitionCheckpoint, StateStore};
use crate::dataflow::{Output, RecordFormats};
use crate::error::Result;
use crate::metrics::Counters;
use crate::record::{RawRecord, SeriesState, SourcePoint};

/// What a source delivers in one epoch.
#[derive(Debug)]
pub enum Batch {
    /// Records to parse with the source's format.
    Raw(Vec<RawRecord>),
    /// Points that need no parsing.
    Points(Vec<SourcePoint>),
    /// Checkpointed state of series whose partitions this worker was just given; it must
    /// reach the score stage before their next points.
    Restore(Vec<SeriesState>),
    /// Partitions this worker no longer reads.
    Revoked(Vec<u32>),
}

/// The answer to [`WorkerSource::poll`].
#[derive(Debug)]
pub enum Poll {
    /// A batch of records, all in `epoch`.
    Ready {
        /// The batch's epoch; a worker's epochs never decrease.
        epoch: u64,
        /// The records.
        batch: Batch,
    },
    /// Nothing right now; poll again after stepping the dataflow.
    Idle,
    /// This worker's share is exhausted.
    Done,
}

/// One worker's share of a source.
pub trait WorkerSource {
    /// The next batch, if any.
    fn poll(&mut self) -> Result<Poll>;

    /// The smallest epoch this worker may still send; the worker's inputs advance to it.
    fn next_epoch(&self) -> u64;
}

/// Messages from a source's own threads to the thread that drives the pipeline.
#[derive(Debug)]
pub enum SourceControl {
    /// Partitions given to a worker, with their latest checkpoint (if any).
    Assigned {
        /// The worker.
        worker: usize,
        /// (partition, checkpoint) pairs.
        partitions: Vec<(u32, Option<PartitionCheckpoint>)>,
    },
    /// Partitions taken from a worker, after a checkpoint covering all it read of them.
    Revoked {
        /// The worker.
        worker: usize,
        /// The partitions.
        partitions: Vec<u32>,
    },
}

/// What a source gets to open its workers' shares.
#[derive(Clone)]
pub struct SourceContext {
    /// The driver's channel, for [`SourceControl`] messages.
    pub output: SyncSender<Output>,
    /// Live counters (consumer lag).
    pub counters: Arc<Counters>,
}

/// A source whose progress can be checkpointed: the runner stores series state with the
/// matching positions and hands the positions back to the source to commit.
pub trait Checkpointing: Send + Sync {
    /// Epochs between two checkpoint boundaries.
    fn every(&self) -> u64;

    /// Where checkpoints are kept.
    fn store(&self) -> &dyn StateStore;

    /// The (topic, partition) of a partition number.
    fn partition_name(&self, partition: u32) -> Option<(String, i32)>;

    /// Records that everything before these offsets is processed and checkpointed (Kafka:
    /// commits them to the consumer group).
    fn commit(&self, offsets: &[(u32, i64)]) -> Result<()>;

    /// Tells the source that the checkpoint at `boundary` is complete (revocations wait for
    /// one that covers what they read).
    fn completed(&self, boundary: u64);
}

/// A source of records for a whole pipeline.
pub trait Source: Send + Sync {
    /// A short description for status lines (`file machine.csv (csv)`).
    fn describe(&self) -> String;

    /// How the source's raw records are parsed, given the configured options.
    fn formats(&self, base: &ParseOptions) -> RecordFormats;

    /// Worker `index` of `peers`' share of the source.
    fn open(
        &self,
        index: usize,
        peers: usize,
        context: &SourceContext,
    ) -> Result<Box<dyn WorkerSource>>;

    /// Checkpoint support, if the source has positions worth checkpointing.
    fn checkpointing(&self) -> Option<Arc<dyn Checkpointing>> {
        None
    }
}

/// The format a single-format source parses with.
pub(crate) fn single_format(format: Format, base: &ParseOptions) -> RecordFormats {
    RecordFormats::single(format, base.clone())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A context whose messages nobody reads, for tests of a single source.
    pub(crate) fn context() -> SourceContext {
        let (output, _) = std::sync::mpsc::sync_channel(1024);
        SourceContext {
            output,
            counters: Arc::new(Counters::default()),
        }
    }
}
