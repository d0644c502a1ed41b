//! The one error type of `aiops-operators`: bad detector configuration and unusable snapshots.

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong when building or restoring operators. Scoring itself never fails.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A template names a detector kind the registry does not know.
    #[error("unknown detector {kind:?}; known detectors: {}", known.join(", "))]
    UnknownDetector {
        /// The kind asked for.
        kind: String,
        /// The kinds the registry knows.
        known: Vec<String>,
    },
    /// A configuration value is missing, of the wrong type or out of range.
    #[error("invalid {what} configuration: {message}")]
    InvalidConfig {
        /// What was being configured (`zscore`, `alert`, `template "web"`, ...).
        what: String,
        /// What is wrong, in words.
        message: String,
    },
    /// A snapshot was taken from a different kind of detector than the one restoring it.
    #[error("snapshot is of a {found:?} detector, not {expected:?}")]
    SnapshotKind {
        /// The restoring detector's kind.
        expected: String,
        /// The kind recorded in the snapshot.
        found: String,
    },
    /// A snapshot was written in a format version this build does not read.
    #[error("{kind} snapshot has format version {found}; this build reads version {expected}")]
    SnapshotVersion {
        /// The detector kind.
        kind: String,
        /// The version this build reads.
        expected: u16,
        /// The version in the snapshot.
        found: u16,
    },
    /// A snapshot's bytes do not decode into valid state.
    #[error("{kind} snapshot is corrupt: {message}")]
    SnapshotCorrupt {
        /// The detector kind.
        kind: String,
        /// What failed.
        message: String,
    },
}

impl Error {
    pub(crate) fn config(what: impl Into<String>, message: impl Into<String>) -> Error {
        Error::InvalidConfig {
            what: what.into(),
            message: message.into(),
        }
    }
}
