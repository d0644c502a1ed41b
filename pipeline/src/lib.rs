//! The aiops dataflow and everything around it: sources, sinks, configuration and the runner.
//!
//! - [`dataflow`]: the timely graph, one extension trait per stage (parse, features, detect,
//!   alerts).
//! - [`source`]: files (NAB CSV, JSON lines, Influx lines), stdin, and the synthetic generator.
//! - [`sink`]: JSON lines, dead-letter files, and the in-process [`sink::bus::Bus`].
//! - [`runner`]: starts the workers, drives the sources, delivers the output.
//! - [`config`]: the TOML configuration (parsing and templates).
//!
//! Algorithms live in `aiops-operators`; this crate only moves data between them.

pub mod config;
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
pub use runner::{RunOptions, RunSummary, run, system_now};
