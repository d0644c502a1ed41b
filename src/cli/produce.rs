//! `aiops produce`: a file or the synthetic generator into a Kafka topic, keyed by series.
//!
//! Keys are series keys (16 hex digits), so all points of a series land in one partition, in
//! order. JSON and Influx lines are sent unchanged (the key is that of the line's first series;
//! a line that does not parse is sent without a key, which is how the dead-letter path can be
//! exercised); CSV rows become JSON points named after the file.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Args;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

use aiops_connectors::source::file::FileSource;
use aiops_connectors::source::synthetic::{SyntheticConfig, SyntheticSource};
use aiops_pipeline::config::{KafkaConfig, TopicConfig};
use aiops_pipeline::source::{Batch, Poll, Source, SourceContext};
use aiops_schemas::{Format, MetricPoint, ParseOptions, parse::csv::is_header, parse_record};

use super::output::count;
use super::{create_file, stop_on_ctrl_c};
use crate::error::{Error, Result};

/// Arguments of `aiops produce`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    aiops produce --topic metrics --input machine_temperature.csv\n  \
    aiops produce --topic metrics --synthetic --series 1000 --points 5000 --rate 100000\n  \
    aiops produce --topic metrics --synthetic --truth injected.jsonl   # and list the anomalies")]
pub struct ProduceArgs {
    /// Kafka bootstrap brokers.
    #[arg(long, env = "AIOPS_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,

    /// The topic to write to (created with --partitions if missing).
    #[arg(long, short = 't')]
    topic: String,

    /// Partitions of the topic if it has to be created.
    #[arg(long, default_value_t = 4)]
    partitions: i32,

    /// A file of records (NAB CSV, JSON lines, Influx lines).
    #[arg(long, short = 'i', value_name = "FILE", conflicts_with = "synthetic")]
    input: Option<PathBuf>,

    /// The file's format; detected from its name or first line when left out.
    #[arg(long, short = 'f', value_parser = ["csv", "json", "influx"])]
    format: Option<String>,

    /// Tenant of CSV rows and synthetic series.
    #[arg(long, default_value = "default")]
    tenant: String,

    /// Generate synthetic series instead of reading a file.
    #[arg(long, required_unless_present = "input")]
    synthetic: bool,

    /// Synthetic series.
    #[arg(long, default_value_t = 100)]
    series: usize,

    /// Points per synthetic series (runs until Ctrl-C when left out).
    #[arg(long)]
    points: Option<u64>,

    /// Mean points between two injected anomalies of a synthetic series.
    #[arg(long, default_value_t = 3000)]
    anomaly_gap: u64,

    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Write the injected anomalies here as JSON lines (synthetic only).
    #[arg(long, value_name = "FILE")]
    truth: Option<PathBuf>,

    /// Stamp synthetic points with the time they are sent instead of their event time (for
    /// end-to-end latency measurements).
    #[arg(long)]
    timestamps_now: bool,

    /// Messages per second; 0 sends as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,

    /// How long the producer may wait to fill a batch (librdkafka's linger.ms): lower for
    /// latency, higher for throughput.
    #[arg(long, default_value_t = 5)]
    linger_ms: u32,

    /// Print no progress and no summary.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// Paces, sends and counts.
struct Sender {
    producer: BaseProducer,
    topic: String,
    rate: f64,
    started: Instant,
    sent: u64,
    bytes: u64,
    total: Option<u64>,
    quiet: bool,
    last_progress: Instant,
}

impl Sender {
    fn send(&mut self, key: Option<&[u8]>, payload: &[u8]) -> Result<()> {
        if self.rate > 0.0 {
            let due = Duration::from_secs_f64(self.sent as f64 / self.rate);
            let elapsed = self.started.elapsed();
            if due > elapsed {
                std::thread::sleep(due - elapsed);
            }
        }
        let mut record = BaseRecord::to(&self.topic).payload(payload);
        if let Some(key) = key {
            record = record.key(key);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((error, _)) => {
                    return Err(Error::Usage(format!(
                        "cannot produce to {}: {error}",
                        self.topic
                    )));
                }
            }
        }
        self.sent += 1;
        self.bytes += payload.len() as u64;
        if self.sent.is_multiple_of(1024) {
            self.producer.poll(Duration::ZERO);
            self.progress(false);
        }
        Ok(())
    }

    fn progress(&mut self, last: bool) {
        if self.quiet || (!last && self.last_progress.elapsed() < Duration::from_millis(200)) {
            return;
        }
        self.last_progress = Instant::now();
        let rate = self.sent as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        let bar = match self.total {
            Some(total) if total > 0 => {
                let done = (self.sent as f64 / total as f64).min(1.0);
                let filled = (done * 30.0) as usize;
                format!(
                    "[{}{}] {:>3.0}% {}/{}",
                    "#".repeat(filled),
                    ".".repeat(30 - filled),
                    done * 100.0,
                    count(self.sent),
                    count(total)
                )
            }
            _ => count(self.sent),
        };
        note_inline!("\r{bar} messages, {} msg/s   ", count(rate as u64));
        if last {
            note_inline!("\n");
        }
    }
}

pub fn run(args: ProduceArgs) -> Result<()> {
    if !(args.rate.is_finite() && args.rate >= 0.0) {
        return Err(Error::Usage(format!(
            "--rate must be zero or positive, not {}",
            args.rate
        )));
    }
    let kafka = KafkaConfig {
        brokers: args.brokers.clone(),
        group: "aiops-produce".into(),
        topics: vec![TopicConfig {
            name: args.topic.clone(),
            format: Format::Json,
            tenant: None,
            precision: None,
        }],
        dead_letter_suffix: ".dlq".into(),
        anomalies_topic: None,
        options: Default::default(),
        instance_id: None,
        rejoin_stalled_after_ms: aiops_pipeline::config::DEFAULT_REJOIN_STALLED_MS,
    };
    kafka.validate()?;
    aiops_connectors::source::kafka::ensure_topics(
        &kafka,
        &[(args.topic.as_str(), args.partitions.max(1))],
    )?;
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("linger.ms", args.linger_ms.to_string())
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .map_err(|e| {
            Error::Usage(format!(
                "cannot create a producer for {}: {e}",
                args.brokers
            ))
        })?;
    let mut sender = Sender {
        producer,
        topic: args.topic.clone(),
        rate: args.rate,
        started: Instant::now(),
        sent: 0,
        bytes: 0,
        total: None,
        quiet: args.quiet,
        last_progress: Instant::now(),
    };
    let stop = stop_on_ctrl_c();
    match &args.input {
        Some(path) => produce_file(&args, path, &mut sender, &stop)?,
        None => produce_synthetic(&args, &mut sender, &stop)?,
    }
    sender.progress(true);
    let unsent = sender.producer.flush(Duration::from_secs(60));
    let elapsed = sender.started.elapsed().as_secs_f64();
    if let Err(error) = unsent {
        return Err(Error::Usage(format!(
            "{} messages were not acknowledged within 60 s: {error}",
            sender.producer.in_flight_count()
        )));
    }
    if !args.quiet {
        note!(
            "aiops produce: {} messages ({} bytes) to {} in {elapsed:.2} s ({} msg/s)",
            count(sender.sent),
            count(sender.bytes),
            args.topic,
            count((sender.sent as f64 / elapsed.max(1e-9)) as u64),
        );
    }
    Ok(())
}

fn produce_file(
    args: &ProduceArgs,
    path: &PathBuf,
    sender: &mut Sender,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<()> {
    let format = match args.format.as_deref() {
        Some("csv") => Some(Format::Csv),
        Some("json") => Some(Format::Json),
        Some("influx") => Some(Format::Influx),
        _ => None,
    };
    let source = FileSource::new(path, format)?;
    let format = source.format();
    let options = ParseOptions {
        default_tenant: args.tenant.clone(),
        csv_metric: source.metric_name(),
        ..ParseOptions::default()
    };
    let file = std::fs::File::open(path)
        .map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?;
    let lines = BufReader::new(file).lines();
    let mut first = true;
    for line in lines {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let line =
            line.map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?;
        let header = first && format == Format::Csv && is_header(&line);
        first = false;
        if header || line.trim().is_empty() {
            continue;
        }
        let parsed = parse_record(
            format,
            line.as_bytes(),
            &options,
            aiops_pipeline::system_now(),
        );
        match (format, parsed) {
            (Format::Csv, Ok(points)) => {
                let json = serde_json::to_vec(&points[0]).unwrap_or_default();
                sender.send(Some(points[0].series.key().to_string().as_bytes()), &json)?;
            }
            (_, Ok(points)) => sender.send(
                Some(points[0].series.key().to_string().as_bytes()),
                line.as_bytes(),
            )?,
            // Sent as is, without a key: the pipeline's dead-letter path will say what is wrong.
            (_, Err(_)) => sender.send(None, line.as_bytes())?,
        }
    }
    Ok(())
}

fn produce_synthetic(
    args: &ProduceArgs,
    sender: &mut Sender,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<()> {
    let config = SyntheticConfig {
        series: args.series,
        tenant: args.tenant.clone(),
        ticks: args.points,
        seed: args.seed,
        mean_anomaly_gap: args.anomaly_gap.max(1),
        ..SyntheticConfig::default()
    };
    let generator = Arc::new(SyntheticSource::new(config.clone(), 1)?);
    sender.total = args.points.map(|p| p * args.series as u64);
    let (output, _unused) = std::sync::mpsc::sync_channel(1);
    let context = SourceContext {
        output,
        counters: Arc::new(aiops_pipeline::Counters::default()),
    };
    let mut worker = generator.open(0, 1, &context)?;
    while !stop.load(Ordering::Relaxed) {
        match worker.poll()? {
            Poll::Ready {
                batch: Batch::Points(points),
                ..
            } => {
                for generated in points {
                    let mut point: MetricPoint = generated.point;
                    if args.timestamps_now {
                        point.timestamp = aiops_pipeline::system_now();
                    }
                    let json = serde_json::to_vec(&point).unwrap_or_default();
                    sender.send(Some(point.series.key().to_string().as_bytes()), &json)?;
                }
            }
            Poll::Ready { .. } | Poll::Idle => {}
            Poll::Done => break,
        }
    }
    if let Some(path) = &args.truth {
        let mut file = create_file(path)?;
        let ticks = generator.ticks_done();
        for anomaly in generator.injected(ticks) {
            let line = serde_json::to_string(&anomaly).unwrap_or_default();
            writeln!(file, "{line}").map_err(|source| Error::Write {
                path: path.display().to_string(),
                source,
            })?;
        }
        file.flush().map_err(|source| Error::Write {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(())
}
