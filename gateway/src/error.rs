//! The one error type of `aiops-gateway`: what stops the gateway from starting or a key from
//! loading. Problems of one connection (a bad token, a bad frame) are answered on that
//! connection with a documented code and never become an `Error`.

use std::path::PathBuf;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error("invalid gateway configuration{}: {message}", path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    Config {
        /// The file, if any.
        path: Option<PathBuf>,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A signing or verification key is unusable.
    #[error("key {kid:?}: {message}")]
    Key {
        /// The key's id (or its position when it has none).
        kid: String,
        /// What is wrong with it.
        message: String,
    },
    /// The listening socket could not be opened.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The admin endpoint could not be started.
    #[error(transparent)]
    Admin(#[from] aiops_telemetry::Error),
    /// Redis could not be reached or refused a command.
    #[error("redis: {context}: {source}")]
    Redis {
        /// What was being done, on what.
        context: String,
        /// The client's error.
        source: redis::RedisError,
    },
}

impl Error {
    pub(crate) fn config(message: impl Into<String>) -> Error {
        Error::Config {
            path: None,
            message: message.into(),
        }
    }
}
