//! The one error type of `aiops-models`: what a store, training or retraining could not do.

use std::path::PathBuf;

/// The error of a database client or codec (rusqlite, scylla, serde_json), kept as the cause of
/// ours.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a model operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file of the store could not be created, written or renamed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`cannot create`, ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A setting or an argument is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A template is invalid.
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
    /// The store's database failed or refused an operation.
    #[error("model store: {}", describe(context, .source))]
    ModelStore {
        /// What was being done.
        context: String,
        /// The database's (or the record codec's) error, when there is one.
        #[source]
        source: Option<Cause>,
    },
    /// The operation does not make sense in the store's current state (deleting the active
    /// version, rolling back with no earlier version).
    #[error("{0}")]
    ModelConflict(String),
    /// A configuration changed since the writer read it (or exists when it meant to create
    /// it).
    #[error("detector configuration {name:?} of tenant {tenant:?} is at {}; read it again and reapply your change", match current { Some(c) => format!("version {}", c.version), None => "no version (deleted)".to_owned() })]
    ConfigConflict {
        /// The tenant.
        tenant: String,
        /// The configuration.
        name: String,
        /// Its current version, when it has a live one.
        current: Option<Box<crate::detectors::StoredConfig>>,
    },
    /// A tenant has as many configurations as it may.
    #[error(
        "tenant {tenant:?} has {limit} detector configurations, the most a tenant may have; delete one first"
    )]
    ConfigLimit {
        /// The tenant.
        tenant: String,
        /// The limit.
        limit: usize,
    },
    /// No such configuration (or it was deleted).
    #[error("tenant {tenant:?} has no detector configuration {name:?}")]
    ConfigNotFound {
        /// The tenant.
        tenant: String,
        /// The name asked for.
        name: String,
    },
}

/// "context: cause", either part left out when there is none.
fn describe(context: &str, source: &Option<Cause>) -> String {
    match (context.is_empty(), source) {
        (_, None) => context.to_owned(),
        (true, Some(cause)) => cause.to_string(),
        (false, Some(cause)) => format!("{context}: {cause}"),
    }
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
        Error::Config(message.into())
    }

    /// A store failure: what was being done, and the database's error.
    pub(crate) fn model_store(context: impl Into<String>, source: impl Into<Cause>) -> Error {
        Error::ModelStore {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// A store failure with no underlying error.
    pub(crate) fn model_store_message(context: impl Into<String>) -> Error {
        Error::ModelStore {
            context: context.into(),
            source: None,
        }
    }
}
