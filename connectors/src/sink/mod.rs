//! Sinks: where the pipeline's output is written. JSON lines to any writer
//! ([`file::JsonLines`]), a dead-letter file ([`file::DeadLetterFile`]), and the in-process
//! broadcast [`bus::Bus`], the embedded default the gateway reads from; with features, Redis
//! (`redis::RedisSink`), Kafka dead-letter and anomalies topics (`kafka::KafkaSink`), and
//! Parquet files of events (`parquet::write_events`, feature `parquet`).

pub mod bus;
pub mod file;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "parquet")]
pub mod parquet;
#[cfg(feature = "redis")]
pub mod redis;

pub use file::{DeadLetterFile, JsonLines};
