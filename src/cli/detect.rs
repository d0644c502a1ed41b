//! `aiops detect`: the dataflow over one file (or stdin), events out as JSON lines.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};

use aiops_connectors::sink::{DeadLetterFile, JsonLines};
use aiops_connectors::source::file::FileSource;
use aiops_connectors::source::stdin::StdinSource;
use aiops_pipeline::record::DeadLetter;
use aiops_pipeline::sink::{Fanout, Sink};
use aiops_pipeline::source::Source;
use aiops_pipeline::{Cluster, run as run_pipeline};
use aiops_schemas::{AnomalyEvent, Format, Precision};

use super::output::count;
use super::{PipelineArgs, create_file};
use crate::error::{Error, Result};

/// Arguments of `aiops detect`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    aiops detect --input machine_temperature.csv\n  \
    aiops detect -i metrics.jsonl -o events.jsonl --dead-letters rejected.jsonl\n  \
    telegraf --test | aiops detect -i - --format influx\n  \
    aiops detect -i big.jsonl -o events-0.jsonl --cluster-hosts hosts.txt --process 0   # and 1, 2... elsewhere")]
pub struct DetectArgs {
    /// Input file, or `-` for standard input.
    #[arg(long, short = 'i', value_name = "FILE")]
    input: PathBuf,

    /// Record format; detected from the file name or its first line when left out.
    #[arg(long, short = 'f', value_enum)]
    format: Option<FormatArg>,

    /// Write events here (JSON lines) instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,

    /// Write rejected records here (JSON lines with the reason and the original record).
    #[arg(long, value_name = "FILE")]
    dead_letters: Option<PathBuf>,

    /// Tenant of records that name none.
    #[arg(long)]
    tenant: Option<String>,

    /// Unit of integer timestamps [default: ns for influx, ms otherwise].
    #[arg(long, value_parser = ["ns", "us", "ms", "s"])]
    precision: Option<String>,

    /// Print no summary on standard error.
    #[arg(long, short = 'q')]
    quiet: bool,

    #[command(flatten)]
    pipeline: PipelineArgs,

    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Running as one process of a timely cluster.
#[derive(Debug, Args)]
struct ClusterArgs {
    /// A file of `host:port` lines, one per process of a timely cluster (the same file for
    /// every process); each process reads its share of the input, series are exchanged between
    /// processes, and each process writes the events of the series it scored.
    #[arg(long, value_name = "FILE", requires = "process")]
    cluster_hosts: Option<PathBuf>,

    /// This process's index in --cluster-hosts (from 0).
    #[arg(long, value_name = "N", requires = "cluster_hosts")]
    process: Option<usize>,
}

impl ClusterArgs {
    fn cluster(&self) -> Result<Option<Cluster>> {
        let (Some(path), Some(process)) = (&self.cluster_hosts, self.process) else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Usage(format!(
                "cannot read the cluster hosts file {}: {e}",
                path.display()
            ))
        })?;
        let addresses: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        Ok(Some(Cluster { process, addresses }))
    }
}

/// Record formats, as named on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    /// NAB-style `timestamp,value` rows.
    Csv,
    /// One JSON object (or array of objects) per line.
    Json,
    /// InfluxDB line protocol, as Telegraf writes it.
    Influx,
}

impl From<FormatArg> for Format {
    fn from(format: FormatArg) -> Format {
        match format {
            FormatArg::Csv => Format::Csv,
            FormatArg::Json => Format::Json,
            FormatArg::Influx => Format::Influx,
        }
    }
}

/// Keeps the first few rejected records so the summary can show what went wrong.
#[derive(Default)]
struct RejectedSample(Vec<DeadLetter>);

impl Sink for RejectedSample {
    fn events(&mut self, _events: &[AnomalyEvent]) -> aiops_pipeline::Result<()> {
        Ok(())
    }

    fn dead_letters(&mut self, letters: &[DeadLetter]) -> aiops_pipeline::Result<()> {
        let room = 3usize.saturating_sub(self.0.len());
        self.0.extend(letters.iter().take(room).cloned());
        Ok(())
    }
}

pub fn run(args: DetectArgs) -> Result<()> {
    let mut config = args.pipeline.load_config()?;
    if let Some(tenant) = &args.tenant {
        config.parse.default_tenant = tenant.clone();
    }
    if let Some(precision) = &args.precision {
        config.parse.precision = Some(precision.parse::<Precision>().map_err(Error::Usage)?);
    }
    let mut options = args.pipeline.run_options(&config)?;
    options.cluster = args.cluster.cluster()?;
    let source: Arc<dyn Source> = if args.input.as_os_str() == "-" {
        let format = args.format.ok_or_else(|| {
            Error::Usage("reading standard input needs --format (csv, json or influx)".into())
        })?;
        Arc::new(StdinSource::new(format.into()))
    } else {
        Arc::new(FileSource::new(&args.input, args.format.map(Format::from))?)
    };

    let mut sample = RejectedSample::default();
    let mut sinks: Vec<Box<dyn Sink + '_>> = Vec::new();
    match &args.output {
        Some(path) => sinks.push(Box::new(JsonLines::new(
            path.display().to_string(),
            create_file(path)?,
        ))),
        None => sinks.push(Box::new(JsonLines::new(
            "standard output",
            std::io::stdout().lock(),
        ))),
    }
    if let Some(path) = &args.dead_letters {
        sinks.push(Box::new(DeadLetterFile::new(
            path.display().to_string(),
            create_file(path)?,
        )));
    }
    let description = source.describe();
    sinks.push(Box::new(&mut sample));
    let summary = run_pipeline(source, Fanout(sinks), options, |_| {})?;
    if args.quiet {
        return Ok(());
    }
    let stats = summary.stats;
    note!(
        "aiops detect: {} points of {} series from {description} in {:.2} s ({} points/s): {} anomalies ({} critical), {} rejected records",
        count(stats.points_in),
        count(stats.series),
        summary.elapsed.as_secs_f64(),
        count(summary.points_per_second() as u64),
        count(stats.events_out),
        count(stats.critical_out),
        count(stats.dead_letters),
    );
    for letter in &sample.0 {
        note!("  rejected line {}: {}", letter.seq + 1, letter.reason);
    }
    if stats.dead_letters > 0 && args.dead_letters.is_none() {
        note!("  (keep every rejected record with --dead-letters FILE)");
    }
    Ok(())
}
