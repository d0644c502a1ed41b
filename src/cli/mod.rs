//! Command-line interface: one module per subcommand.

mod demo;
mod detect;
mod detectors;
mod eval;
mod gateway;
mod history;
mod models;
mod nab;
mod output;
#[cfg(feature = "kafka")]
mod produce;
mod replay;
#[cfg(all(feature = "kafka", feature = "redis"))]
mod run;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::{Args, Parser, Subcommand};

use aiops_pipeline::{PipelineConfig, RunOptions};

use crate::error::{Error, Result};
pub(crate) use output::emit;

/// Streaming anomaly detection for operational metrics.
///
/// Metrics go in (files, stdin, a synthetic generator; Kafka in production), flow through a
/// timely dataflow of feature and detector operators, and anomaly events come out as JSON.
#[derive(Debug, Parser)]
#[command(name = "aiops", version, about, long_about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,

    /// How messages on standard error are written: plain lines, or one JSON object per line
    /// (timestamp, level, target, message, fields) for log collectors. `AIOPS_LOG` filters
    /// them by level and target (default `info`).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "AIOPS_LOG_FORMAT"
    )]
    pub log_format: crate::logging::LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the detectors over a file (or stdin) and write anomaly events as JSON lines.
    Detect(detect::DetectArgs),
    /// Generate seasonal metrics with injected anomalies and watch them being caught live.
    Demo(demo::DemoArgs),
    /// The production pipeline: metrics from Kafka, anomaly events to Redis, checkpointed.
    #[cfg(all(feature = "kafka", feature = "redis"))]
    Run(run::RunArgs),
    /// Send a file or synthetic series to a Kafka topic, keyed by series.
    #[cfg(feature = "kafka")]
    Produce(produce::ProduceArgs),
    /// The WebSocket gateway: tenants' anomaly streams to authenticated subscribers.
    Gateway(gateway::GatewayArgs),
    /// Mint a development token for the gateway.
    Token(gateway::TokenArgs),
    /// Run detectors over the Numenta Anomaly Benchmark and score them by its rules.
    Nab(nab::NabArgs),
    /// Detection quality over several labelled corpora: composite F1, false alarms, delay,
    /// leave-one-corpus-out; templates, detectors, the rolling z-score and peers side by side.
    Eval(eval::EvalArgs),
    /// Model versions: list, show, diff, activate, roll back, delete, audit log.
    Models(models::ModelsArgs),
    /// Train a template on a stretch of history, evaluate it, register (and activate) it.
    Train(models::TrainArgs),
    /// A file or a time range of a Kafka topic through the pipeline, for backtests.
    Replay(replay::ReplayArgs),
    /// Detector configurations through the gateway's API: list, show, apply, delete, history,
    /// revert, preview.
    Detectors(detectors::DetectorsArgs),
}

/// Options every pipeline-running command takes.
#[derive(Debug, Args)]
struct PipelineArgs {
    /// Timely worker threads.
    #[arg(long, short = 'w', default_value_t = default_workers(), value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: u16,

    /// TOML configuration: parsing options and detector templates (see aiops.example.toml).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
}

fn default_workers() -> u16 {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8) as u16)
}

impl PipelineArgs {
    fn load_config(&self) -> Result<PipelineConfig> {
        match &self.config {
            Some(path) => Ok(PipelineConfig::from_file(path)?),
            None => Ok(PipelineConfig::default()),
        }
    }

    /// The configuration file's name, if one was given.
    fn config_name(&self) -> Option<String> {
        self.config.as_ref().map(|p| p.display().to_string())
    }

    /// Run options from the configuration, with a stop flag that Ctrl-C sets.
    fn run_options(&self, config: &PipelineConfig) -> Result<RunOptions> {
        let mut options = RunOptions::new(usize::from(self.workers));
        options.templates = config.template_set()?;
        options.parse = config.parse.clone();
        options.stop = stop_on_ctrl_c();
        Ok(options)
    }
}

/// A flag set on the first Ctrl-C or SIGTERM (the run then drains and reports); a second one
/// exits at once.
pub(crate) fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // Fails only if a handler is already installed, which this process never does twice.
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, std::sync::atomic::Ordering::Relaxed) {
            std::process::exit(130);
        }
    });
    stop
}

/// Creates a file for writing, naming it in the error.
pub(crate) fn create_file(path: &Path) -> Result<std::io::BufWriter<std::fs::File>> {
    std::fs::File::create(path)
        .map(std::io::BufWriter::new)
        .map_err(|source| Error::Write {
            path: path.display().to_string(),
            source,
        })
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Detect(args) => detect::run(args),
        Command::Demo(args) => demo::run(args),
        #[cfg(all(feature = "kafka", feature = "redis"))]
        Command::Run(args) => run::run(args),
        #[cfg(feature = "kafka")]
        Command::Produce(args) => produce::run(args),
        Command::Gateway(args) => gateway::run_gateway(args),
        Command::Token(args) => gateway::run_token(args),
        Command::Nab(args) => nab::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Models(args) => models::run(args),
        Command::Train(args) => models::run_train(args),
        Command::Replay(args) => replay::run(args),
        Command::Detectors(args) => detectors::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command's arguments are well formed (regression: `aiops detectors revert` had a
    /// `version` argument beside clap's own `--version`, which panicked at parse time).
    #[test]
    fn every_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
