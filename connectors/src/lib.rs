//! Where aiops reads records and writes its output: the connectors at the edges of the
//! pipeline, each an implementation of `aiops_pipeline`'s [`Source`] or [`Sink`].
//!
//! - [`source`]: NAB CSV, JSON lines and Influx lines from files and stdin, the synthetic
//!   generator, Parquet files of metrics (feature `parquet`), and Kafka topics, live in a
//!   consumer group with checkpoints or as a time range for replays (feature `kafka`).
//! - [`sink`]: JSON lines and dead-letter files, the in-process bus the embedded gateway reads,
//!   Redis pub/sub and streams (feature `redis`), Kafka topics (feature `kafka`) and Parquet
//!   files of events (feature `parquet`).
//! - [`changes`] (feature `redis`): notifications over Redis that a detector configuration
//!   changed, from the configuration API to the pipelines' model watches.
//! - [`checkpoint`] (feature `redis`): the pipeline's checkpoints in Redis, fenced per partition.
//!
//! Failures are the pipeline's [`aiops_pipeline::Error`]: a source or sink that fails stops
//! the run that drives it, and the runner reports it.
//!
//! [`Source`]: aiops_pipeline::source::Source
//! [`Sink`]: aiops_pipeline::sink::Sink

#[cfg(feature = "redis")]
pub mod changes;
#[cfg(feature = "redis")]
pub mod checkpoint;
#[cfg(feature = "redis")]
pub mod redis_client;
pub mod sink;
pub mod source;
