//! The aiops dataflow and everything around it: sources, sinks, configuration and the runner.
//!
//! - [`dataflow`]: the timely graph, one extension trait per stage (parse, score).
//! - [`source`]: files (NAB CSV, JSON lines, Influx lines), stdin, the synthetic generator,
//!   and Kafka (feature `kafka`).
//! - [`sink`]: JSON lines, dead-letter files, the in-process [`sink::bus::Bus`], Redis (feature
//!   `redis`) and Kafka (feature `kafka`).
//! - [`runner`]: starts the workers, drives the sources, delivers the output, completes
//!   checkpoints.
//! - [`checkpoint`]: series state stored with the source positions it reflects.
//! - [`config`]: the TOML configuration.
//! - [`models`]: versioned models (store, training, hot swap) and their audit log.
//!
//! Algorithms live in `aiops-operators`; this crate only moves data between them.

pub mod checkpoint;
pub mod config;
pub mod dataflow;
pub mod error;
pub mod metrics;
pub mod models;
pub mod record;
pub mod runner;
pub mod sink;
pub mod source;

pub use config::PipelineConfig;
pub use error::{Error, Result};
pub use metrics::{Counters, Stats};
pub use runner::{Cluster, RunOptions, RunSummary, run, system_now};
