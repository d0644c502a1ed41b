//! `aiops`: streaming anomaly detection for operational metrics.
//!
//! Subcommands live in [`cli`]; each parses its arguments with clap, builds a pipeline from the
//! library crates, and reports in words.

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
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
