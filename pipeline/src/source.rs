//! What a source of records is to the pipeline: each worker gets its own [`WorkerSource`]
//! from a [`Source`], and the source decides how the work is split between workers. Sources
//! with positions worth keeping implement [`Checkpointing`].
//!
//! The sources themselves (files, stdin, the generator, Kafka) are in `aiops-connectors`.

use std::sync::Arc;
use std::sync::mpsc::SyncSender;

use aiops_schemas::ParseOptions;

use crate::checkpoint::{PartitionCheckpoint, StateStore};
use crate::dataflow::{Output, RecordFormats};
use crate::error::Result;
use crate::metrics::Counters;
use crate::record::{PartitionId, RawRecord, SeriesState, SourcePoint};

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
    Revoked(Vec<PartitionId>),
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
        partitions: Vec<(PartitionId, Option<PartitionCheckpoint>)>,
    },
    /// Partitions taken from a worker, after a checkpoint covering all it read of them.
    Revoked {
        /// The worker.
        worker: usize,
        /// The partitions.
        partitions: Vec<PartitionId>,
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
    fn partition_name(&self, partition: PartitionId) -> Option<(String, i32)>;

    /// Records that everything before these offsets is processed and checkpointed (Kafka:
    /// commits them to the consumer group).
    fn commit(&self, offsets: &[(PartitionId, i64)]) -> Result<()>;

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
