//! Wire types of aiops, shared by the pipeline and the gateway, and the parsers that read
//! producers' records.
//!
//! - [`MetricPoint`] and [`Series`]: what flows in. A series is (tenant, name, sorted labels)
//!   and has a stable [`SeriesKey`]: see [`series`] for the exact hash.
//! - [`AnomalyEvent`] and [`DriftEvent`]: what flows out, with deterministic ids. JSON Schema
//!   files for both (and for points) live in `schemas/json-schema/`.
//! - [`parse`]: JSON, InfluxDB line protocol and NAB CSV records into validated points.
//! - [`keys`]: the names of the Redis channels and keys events travel on, and their parsing.
//! - [`Limits`]: what a record may hold. Every rejection is an [`Error`] that says what to fix.
//!
//! This crate depends on serde only (and xxhash for the keys), so any tool can use it.

pub mod error;
pub mod event;
pub mod glob;
pub mod keys;
pub mod limits;
pub mod parse;
pub mod point;
pub mod series;
pub mod time;

pub use error::{Error, Field, Format, Result};
pub use event::{
    AnomalyEvent, Band, ConfigNotice, ConfigNoticeKind, Contribution, DriftEvent, DriftTest,
    SeriesRef, Severity, TimeRange, anomaly_id, drift_id,
};
pub use keys::{
    CONFIG_CHANGES_CHANNEL, Channel, ChannelKey, anomalies_channel, anomalies_log_key,
    config_channel, config_log_key, drift_channel, redis_nodes,
};
pub use limits::Limits;
pub use parse::{ParseOptions, SeriesCache, parse_record, parse_record_cached};
pub use point::MetricPoint;
pub use series::{Labels, Series, SeriesKey};
pub use time::{Precision, TimestampMs, format_rfc3339, parse_timestamp, system_now};

/// The `schema_version` this crate writes into points and events. Readers accept records
/// without the field as version 1.
pub const SCHEMA_VERSION: u32 = 1;
