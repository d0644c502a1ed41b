//! The one error type of `aiops-pipeline`: what stops a pipeline from starting or running.
//!
//! Bad records are not errors here: they become dead letters and the stream goes on.

use std::path::PathBuf;

/// The error of a client library (rdkafka, redis, rusqlite, scylla, serde_json), kept as the
/// cause of ours.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// "context: cause", either part left out when there is none.
fn describe(context: &str, source: &Option<Cause>) -> String {
    match (context.is_empty(), source) {
        (_, None) => context.to_owned(),
        (true, Some(cause)) => cause.to_string(),
        (false, Some(cause)) => format!("{context}: {cause}"),
    }
}

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a pipeline could not start or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened, read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`cannot read`, `cannot create`, ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Writing to a sink failed (a closed pipe, a full disk).
    #[error("cannot write {sink}: {source}")]
    Sink {
        /// Which sink.
        sink: String,
        /// The reason.
        source: std::io::Error,
    },
    /// The configuration file or a configuration value is invalid.
    #[error("invalid configuration{}: {message}", path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    Config {
        /// The file it came from, if any.
        path: Option<PathBuf>,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A checkpoint file exists but cannot be used.
    #[error(
        "checkpoint {path} is unusable: {message}; move it away to start that partition afresh"
    )]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A shared checkpoint store refused a save: another process claimed the partition since.
    #[error(
        "checkpoint of {topic}/{partition} not saved: another process owns the partition now (a rebalance moved it); its checkpoint stands"
    )]
    CheckpointFenced {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// Kafka refused or failed an operation.
    #[error("kafka: {}", describe(context, .source))]
    Kafka {
        /// What was being done, on what.
        context: String,
        /// The client library's error, when there is one.
        #[source]
        source: Option<Cause>,
    },
    /// Redis refused or failed an operation.
    #[error("redis: {}", describe(context, .source))]
    Redis {
        /// What was being done, on what.
        context: String,
        /// The client library's error, when there is one.
        #[source]
        source: Option<Cause>,
    },
    /// The input's format could not be recognised.
    #[error("cannot tell the format of {path}: name it with --format (csv, json or influx)")]
    UnknownFormat {
        /// The input file.
        path: PathBuf,
    },
    /// A detector template is invalid.
    #[error(transparent)]
    Operators(#[from] aiops_operators::Error),
    /// The model store, training or retraining failed.
    #[error(transparent)]
    Models(#[from] aiops_models::Error),
    /// The dataflow runtime failed to start or a worker failed.
    #[error("dataflow failed: {0}")]
    Dataflow(String),
}

impl Error {
    /// A file operation failed: what was being done, on which file, and why.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// A Kafka failure: what was being done, and the client's error.
    pub fn kafka(context: impl Into<String>, source: impl Into<Cause>) -> Error {
        Error::Kafka {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// A Kafka failure found by us (a stall, a missing partition), with no client error.
    pub fn kafka_message(context: impl Into<String>) -> Error {
        Error::Kafka {
            context: context.into(),
            source: None,
        }
    }

    /// A Redis failure: what was being done, and the client's error.
    pub fn redis(context: impl Into<String>, source: impl Into<Cause>) -> Error {
        Error::Redis {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// An invalid setting, with what to change.
    pub fn config(message: impl Into<String>) -> Error {
        Error::Config {
            path: None,
            message: message.into(),
        }
    }
}
