//! `aiops`: streaming anomaly detection for operational metrics.
//!
//! Subcommands live in [`cli`]; each parses its arguments with clap, builds a pipeline from the
//! library crates, and reports in words.

/// Writes a line to standard error, ignoring a closed stream (`aiops demo 2>&1 | head`), where
/// `eprintln!` would panic.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Like [`note!`] without the line end (progress bars).
macro_rules! note_inline {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

mod cli;
mod error;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
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
