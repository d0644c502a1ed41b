//! The command's error type: what the user did wrong or what the machine refused, in words.

/// A `Result` whose error is the command's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline could not start or run.
    #[error(transparent)]
    Pipeline(#[from] aiops_pipeline::Error),
    /// The model store, training or retraining failed.
    #[error(transparent)]
    Models(#[from] aiops_models::Error),
    /// The gateway could not start.
    #[error(transparent)]
    Gateway(#[from] aiops_gateway::Error),
    /// An evaluation could not run.
    #[error(transparent)]
    Evaluation(#[from] aiops_evaluation::Error),
    /// The admin endpoint could not be started.
    #[error(transparent)]
    Admin(#[from] aiops_telemetry::Error),
    /// The async runtime (or another thread the command needs) could not be started: a
    /// failure of the machine, not of the arguments.
    #[error("cannot start {what}: {source}")]
    Runtime {
        /// What could not start.
        what: &'static str,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// An argument is invalid.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The configuration API could not be reached, or refused a request (its message, and
    /// each field it pointed at).
    #[error("{0}")]
    Api(String),
    /// A file could not be created or written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether the failure is a closed stdout (`aiops detect ... | head`): not worth a message.
    pub fn is_broken_pipe(&self) -> bool {
        match self {
            Error::Pipeline(aiops_pipeline::Error::Sink { source, .. })
            | Error::Write { source, .. } => source.kind() == std::io::ErrorKind::BrokenPipe,
            _ => false,
        }
    }
}
