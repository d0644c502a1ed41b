//! The one error type of `aiops-pipeline`: what stops a pipeline from starting or running.
//!
//! Bad records are not errors here: they become dead letters and the stream goes on.

use std::path::PathBuf;

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
    /// Kafka refused or failed an operation.
    #[error("kafka: {0}")]
    Kafka(String),
    /// Redis refused or failed an operation.
    #[error("redis: {0}")]
    Redis(String),
    /// The input's format could not be recognised.
    #[error("cannot tell the format of {path}: name it with --format (csv, json or influx)")]
    UnknownFormat {
        /// The input file.
        path: PathBuf,
    },
    /// A detector template is invalid.
    #[error(transparent)]
    Operators(#[from] aiops_operators::Error),
    /// No model version has this id.
    #[error("no model version {id:?}; `aiops models list` shows the versions there are")]
    ModelNotFound {
        /// The id asked for.
        id: String,
    },
    /// A model version's trained state is missing or does not check out.
    #[error("model {model}: its trained state is unusable: {message}")]
    ModelArtifact {
        /// The version.
        model: String,
        /// What is wrong.
        message: String,
    },
    /// The model store's database failed or refused an operation.
    #[error("model store: {0}")]
    ModelStore(String),
    /// The operation does not make sense in the store's current state (deleting the active
    /// version, rolling back with no earlier version).
    #[error("{0}")]
    ModelConflict(String),
    /// The dataflow runtime failed to start or a worker failed.
    #[error("dataflow failed: {0}")]
    Dataflow(String),
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Error {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Error {
        Error::Config {
            path: None,
            message: message.into(),
        }
    }
}
