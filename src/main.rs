//! `aiops`: streaming anomaly detection for operational metrics.
//!
//! Subcommands live in [`cli`]; each parses its arguments with clap, builds a pipeline from the
//! library crates, and reports in words.

/// Writes a line to standard error, ignoring a closed stream (`aiops demo 2>&1 | head`), where
/// `eprintln!` would panic.
/// With `--log-format json` the line becomes a `tracing` event (target `aiops`) instead.
macro_rules! note {
    ($($arg:tt)*) => {{
        if $crate::logging::json() {
            tracing::info!(target: "aiops", "{}", format!($($arg)*));
        } else {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), $($arg)*);
        }
    }};
}

/// Like [`note!`] without the line end (progress bars); nothing with `--log-format json`,
/// where a redrawn line means nothing.
macro_rules! note_inline {
    ($($arg:tt)*) => {{
        if !$crate::logging::json() {
            use std::io::Write as _;
            let _ = write!(std::io::stderr(), $($arg)*);
        }
    }};
}

mod cli;
mod error;
mod logging;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    logging::init(args.log_format);
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is_broken_pipe() => ExitCode::SUCCESS,
        Err(error) => {
            // Every message already names its cause; no backtraces, no debug dumps.
            note!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
