//! Sources: where records come from. Each worker gets its own [`WorkerSource`] from a
//! [`Source`], and the sources decide how the work is split between workers.
//!
//! - [`file::FileSource`]: NAB CSV, JSON lines or Influx lines; batches of lines go to the
//!   workers in turn, so parsing runs on every worker.
//! - [`stdin::StdinSource`]: lines from standard input, read by worker 0.
//! - [`synthetic::SyntheticSource`]: seasonal series with injected anomalies of known kinds and
//!   times; each worker generates its share of the series.

pub mod file;
pub mod stdin;
pub mod synthetic;

use aiops_schemas::{Format, ParseOptions};

use crate::error::Result;
use crate::record::{RawRecord, SourcePoint};

/// What a source delivers in one epoch.
#[derive(Debug)]
pub enum Batch {
    /// Records to parse with the source's format.
    Raw(Vec<RawRecord>),
    /// Points that need no parsing.
    Points(Vec<SourcePoint>),
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

    /// The smallest epoch this worker may still send; the worker's input advances to it.
    fn next_epoch(&self) -> u64;
}

/// A source of records for a whole pipeline.
pub trait Source: Send + Sync {
    /// A short description for status lines (`file machine.csv (csv)`).
    fn describe(&self) -> String;

    /// The format of raw records (irrelevant for sources that deliver points).
    fn format(&self) -> Format;

    /// Adjusts parse options to the source (a CSV file names its metric after itself).
    fn parse_options(&self, base: &ParseOptions) -> ParseOptions {
        base.clone()
    }

    /// Worker `index` of `peers`' share of the source.
    fn open(&self, index: usize, peers: usize) -> Result<Box<dyn WorkerSource>>;
}
