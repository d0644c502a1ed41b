//! The aiops dataflow and its driver: the stages, the records between them, checkpoints,
//! configuration and the runner.
//!
//! - [`dataflow`]: the timely graph, one extension trait per stage (parse, score, drift).
//! - [`record`]: what flows between sources, stages and sinks.
//! - [`source`] and [`sink`]: what a source and a sink are to the runner (traits); the
//!   sources and sinks themselves (files, stdin, the generator, Kafka, Redis, the bus,
//!   Parquet) are the `aiops-connectors` crate.
//! - [`runner`]: starts the workers, drives the sources, delivers the output, completes
//!   checkpoints.
//! - [`checkpoint`]: series state stored with the source positions it reflects.
//! - [`config`]: the TOML configuration.
//!
//! Versioned models (store, training, retraining, the watch that swaps versions in) are the
//! `aiops-models` crate; the score stage runs what its watch says is active.
//!
//! Algorithms live in `aiops-operators`; this crate only moves data between them.

pub mod checkpoint;
pub mod config;
pub mod confirm;
pub mod dataflow;
pub mod error;
pub mod metrics;
pub mod record;
pub mod runner;
pub mod sink;
pub mod source;

pub use config::PipelineConfig;
pub use error::{Error, Result};
pub use metrics::{Counters, Stats};
pub use runner::{Cluster, RunOptions, RunSummary, run, system_now};
