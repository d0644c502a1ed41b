//! `aiops replay`: a file or a time range of a Kafka topic through the same dataflow and
//! templates as `aiops run` (the model store's active versions included), as fast as the
//! machine allows, with the events of the range written in a deterministic order.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use aiops_connectors::source::file::{DirectorySource, FileSource};
use aiops_evaluation::backtest::{self, EventAt, Figures, Labels, PointAt, ScoredPoint};
use aiops_models::open_store;
use aiops_models::watch::ModelWatch;
use aiops_pipeline::run as run_pipeline;
use aiops_pipeline::sink::Collect;
use aiops_pipeline::source::Source;
use aiops_schemas::{AnomalyEvent, TimestampMs};

use super::history::{HistoryArgs, parse_time};
use super::output::count;
use super::{PipelineArgs, create_file, emit};
use crate::error::{Error, Result};

/// Arguments of `aiops replay`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    aiops replay --input last-week.jsonl -o events.jsonl\n  \
    aiops replay --topic metrics --brokers kafka:9092 --from 2026-11-27T14:00:00Z --to 2026-11-27T16:00:00Z\n  \
    aiops replay -c aiops.toml --topic metrics --from 2026-11-27T14:00:00Z --warmup 1d")]
pub struct ReplayArgs {
    /// What to replay.
    #[command(flatten)]
    history: HistoryArgs,

    /// Read these offsets of the topic instead of a time range: `PARTITION:FIRST-END,...`
    /// (END exclusive; empty for the partition's end), e.g. `0:100-500,1:0-`; partitions not
    /// named are not read.
    #[arg(long, value_name = "SPEC", requires = "topic")]
    offsets: Option<String>,

    /// Publish the events of the range to this Redis (`redis://host:port/db`), as the live
    /// pipeline would (pub/sub and the capped stream). A replay publishes nothing unless asked.
    #[cfg(feature = "redis")]
    #[arg(long, value_name = "URL")]
    publish_to: Option<String>,

    /// Write events from this time on (RFC 3339 or milliseconds since the epoch).
    #[arg(long)]
    from: Option<String>,

    /// Write events up to this time.
    #[arg(long)]
    to: Option<String>,

    /// How much history before --from warms the detectors up: `all` (the whole file or topic,
    /// so the state is the live pipeline's) or a duration (`6h`, `1d`).
    #[arg(long, default_value = "all")]
    warmup: String,

    /// Write the events here (JSON lines) instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,

    /// Also write the events of the range as a Parquet file (schema: see `aiops_connectors::sink::parquet`).
    #[cfg(feature = "parquet")]
    #[arg(long, value_name = "FILE")]
    parquet: Option<PathBuf>,

    /// Also write every point of the range with its score and expected band, as JSON lines
    /// sorted by series then time (for plots).
    #[arg(long, value_name = "FILE")]
    scores: Option<PathBuf>,

    /// Write the backtest report here: `report.html` (self-contained: figures and, per series,
    /// a plot of values, expected band, events and labelled incidents) and `report.json`.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,

    /// Also replay with this configuration's templates and compare the figures side by side
    /// (repeatable; needs --labels).
    #[arg(long, value_name = "FILE", requires = "labels")]
    compare: Vec<PathBuf>,

    /// Also replay with each detector of the default template alone, side by side (needs
    /// --labels).
    #[arg(long, requires = "labels")]
    each_detector: bool,

    /// Labelled incidents to evaluate the replay against: NAB's window file, a JSON list of
    /// `{"series", "start", "end"}`, or a CSV with `timestamp` and `label` columns (its file
    /// name is the series).
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,

    /// Write the evaluation's figures here as JSON (with --labels).
    #[arg(long, value_name = "FILE", requires = "labels")]
    figures: Option<PathBuf>,

    /// Model store whose active versions score the replay [default: `[models]` of the
    /// configuration, if set; else the configured templates].
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,

    /// Print no summary on standard error.
    #[arg(long, short = 'q')]
    quiet: bool,

    #[command(flatten)]
    pipeline: PipelineArgs,
}

pub fn run(args: ReplayArgs) -> Result<()> {
    let started = Instant::now();
    let config = args.pipeline.load_config()?;
    let mut options = args.pipeline.run_options(&config)?;
    let from = args.from.as_deref().map(parse_time).transpose()?;
    let to = args.to.as_deref().map(parse_time).transpose()?;
    let read_from = match (args.warmup.as_str(), from) {
        ("all", _) | (_, None) => None,
        (duration, Some(from)) => {
            let warmup = humantime::parse_duration(duration).map_err(|e| {
                Error::Usage(format!(
                    "--warmup {duration:?}: {e} (use `all` or e.g. `6h`)"
                ))
            })?;
            Some(from - warmup.as_millis() as TimestampMs)
        }
    };

    // The versions a live pipeline would run now, fixed for the whole replay.
    if args.store.is_some() || config.models.dir.is_some() || config.models.scylla.is_some() {
        let store = open_store(&config.models, args.store.as_deref())?;
        let watch = ModelWatch::new();
        watch.refresh(store.as_ref())?;
        options.models = Some(watch);
    }

    let history = &args.history;
    let offsets = args.offsets.as_deref().map(parse_offsets).transpose()?;
    let source = make_source(history, &config, read_from, offsets.as_deref())?;
    let description = source.describe();
    options.samples = args.scores.is_some() || args.labels.is_some() || args.report.is_some();
    let labels = args.labels.as_deref().map(read_labels).transpose()?;
    let warning_of: std::collections::BTreeMap<String, f64> = options
        .templates
        .templates()
        .iter()
        .map(|t| (t.name.clone(), t.alert.warning))
        .collect();
    let mut sink = Collect::default();
    let mut progress = Progress::new(!args.quiet, || expected_records(history));
    let summary = run_pipeline(source, &mut sink, options, |stats| {
        progress.show(stats.records_in)
    })?;
    progress.finish();

    // Deterministic output: the events of the range in (time, series, id) order, whatever the
    // number of workers and however their output interleaved.
    let samples = std::mem::take(&mut sink.samples);
    let mut events: Vec<AnomalyEvent> = sink
        .events
        .into_iter()
        .filter(|e| from.is_none_or(|f| e.timestamp >= f) && to.is_none_or(|t| e.timestamp <= t))
        .collect();
    events.sort_by(|a, b| {
        (a.timestamp, a.series.key, &a.id).cmp(&(b.timestamp, b.series.key, &b.id))
    });
    #[cfg(feature = "redis")]
    if let Some(url) = &args.publish_to {
        use aiops_pipeline::sink::Sink;
        let mut redis =
            aiops_connectors::sink::redis::RedisSink::new(aiops_pipeline::config::RedisConfig {
                url: url.clone(),
                stream_maxlen: 100_000,
                give_up_after_ms: 30_000,
                cluster: false,
                replicas: None,
            })?;
        for chunk in events.chunks(1000) {
            redis.events(chunk)?;
        }
        redis.flush()?;
    }
    let mut text = Vec::with_capacity(events.len() * 512);
    for event in &events {
        // Serializing an event cannot fail.
        serde_json::to_writer(&mut text, event).unwrap_or_default();
        text.push(b'\n');
    }
    // The range's figures, once, for the comparison, the report and --figures.
    let no_labels = Labels::default();
    let evaluation = (labels.is_some() || args.report.is_some()).then(|| {
        let labels = labels.as_ref().unwrap_or(&no_labels);
        evaluate_replay(labels, &events, &samples, &warning_of, from, to)
    });
    // The same replay under other configurations, for the side-by-side table.
    let mut comparisons = Vec::new();
    if let (Some(labels), Some(primary)) = (&labels, &evaluation)
        && (!args.compare.is_empty() || args.each_detector)
    {
        let primary = primary.clone();
        comparisons.push((
            args.pipeline
                .config_name()
                .unwrap_or_else(|| "built-in templates".to_owned()),
            primary,
        ));
        for (name, templates) in alternatives(&args, &config)? {
            let mut options = args.pipeline.run_options(&config)?;
            let warning_of: std::collections::BTreeMap<String, f64> = templates
                .templates()
                .iter()
                .map(|t| (t.name.clone(), t.alert.warning))
                .collect();
            options.templates = templates;
            options.samples = true;
            let mut sink = Collect::default();
            let source = make_source(history, &config, read_from, offsets.as_deref())?;
            run_pipeline(source, &mut sink, options, |_| {})?;
            let events: Vec<AnomalyEvent> = sink
                .events
                .into_iter()
                .filter(|e| {
                    from.is_none_or(|f| e.timestamp >= f) && to.is_none_or(|t| e.timestamp <= t)
                })
                .collect();
            let figures = evaluate_replay(labels, &events, &sink.samples, &warning_of, from, to);
            if !args.quiet {
                note!("aiops replay: compared {name}: {} events", figures.events);
            }
            comparisons.push((name, figures));
        }
    }
    if let (Some(dir), Some(overall)) = (&args.report, &evaluation) {
        let labels = labels.as_ref().unwrap_or(&no_labels);
        let written = write_report(
            dir,
            &description,
            (labels, overall),
            (&events, &samples),
            &warning_of,
            (from, to),
            (&comparisons, &groups_of(history)),
        )?;
        if !args.quiet {
            note!("aiops replay: report in {}", written.display());
        }
    }
    if let (Some(_), Some(figures)) = (&labels, &evaluation) {
        if let Some(path) = &args.figures {
            let mut file = create_file(path)?;
            serde_json::to_writer_pretty(&mut file, &figures)
                .map_err(std::io::Error::from)
                .and_then(|()| file.flush())
                .map_err(|source| Error::Write {
                    path: path.display().to_string(),
                    source,
                })?;
        }
        if !args.quiet {
            let show = |x: Option<f64>| x.map_or("-".to_owned(), |x| format!("{x:.3}"));
            let e = &figures.event_wise;
            note!(
                "aiops replay: {} incidents, {} events: event-wise precision {} recall {} F1 {}; median delay {}",
                figures.incidents,
                figures.events,
                show(e.precision),
                show(e.recall),
                show(e.f1),
                figures
                    .median_delay_ms
                    .map_or("-".to_owned(), |d| humantime::format_duration(
                        std::time::Duration::from_millis(d as u64)
                    )
                    .to_string())
            );
            if let Some(p) = &figures.point_wise {
                note!(
                    "aiops replay: point-wise precision {} recall {} F1 {}",
                    show(p.precision),
                    show(p.recall),
                    show(p.f1)
                );
            }
            if let Some(nab) = &figures.nab {
                let score = |x: Option<f64>| x.map_or("-".to_owned(), |x| format!("{x:.2}"));
                note!(
                    "aiops replay: NAB standard score {} at the template's threshold, {} swept \
                     (threshold {:.4}, {} of {} windows)",
                    score(nab.at_threshold),
                    score(nab.swept),
                    nab.swept_threshold,
                    nab.detected,
                    nab.windows
                );
            }
        }
    }
    if let Some(path) = &args.scores {
        write_scores(path, samples, from, to)?;
    }
    #[cfg(feature = "parquet")]
    if let Some(path) = &args.parquet {
        aiops_connectors::sink::parquet::write_events(path, &events)?;
    }
    match &args.output {
        Some(path) => {
            let mut file = create_file(path)?;
            file.write_all(&text)
                .and_then(|()| file.flush())
                .map_err(|source| Error::Write {
                    path: path.display().to_string(),
                    source,
                })?;
        }
        None => emit(&String::from_utf8_lossy(&text))?,
    }
    if !args.quiet {
        let stats = summary.stats;
        let seconds = started.elapsed().as_secs_f64();
        note!(
            "aiops replay: {description}: {} points ({} dead letters) in {seconds:.2} s, {} points/s; {} events in the range ({} in all)",
            count(stats.points_in),
            count(stats.dead_letters),
            count((stats.points_in as f64 / seconds.max(1e-9)) as u64),
            count(events.len() as u64),
            count(stats.events_out),
        );
    }
    Ok(())
}

/// Records the input holds, for the progress bar: lines of a file or the files under a
/// directory; unknown for a topic (the bar then counts only).
fn expected_records(history: &HistoryArgs) -> Option<u64> {
    let input = history.input.as_ref()?;
    let count = |path: &std::path::Path| -> u64 {
        std::fs::read(path).map_or(0, |bytes| {
            bytes.iter().filter(|&&b| b == b'\n').count() as u64
        })
    };
    if input.is_dir() {
        let source = DirectorySource::new(input, history.format()).ok()?;
        Some(source.files().iter().map(|f| count(f.path())).sum())
    } else {
        Some(count(input))
    }
}

/// A progress bar on standard error, drawn only when it is a terminal.
struct Progress {
    total: Option<u64>,
    enabled: bool,
    drawn: bool,
}

impl Progress {
    /// `total` is asked for only when the bar is drawn: counting a file's lines reads it whole.
    fn new(wanted: bool, total: impl FnOnce() -> Option<u64>) -> Progress {
        use std::io::IsTerminal;
        let enabled = wanted && std::io::stderr().is_terminal();
        Progress {
            total: if enabled { total() } else { None },
            enabled,
            drawn: false,
        }
    }

    fn show(&mut self, done: u64) {
        if !self.enabled {
            return;
        }
        self.drawn = true;
        match self.total.filter(|&t| t > 0) {
            Some(total) => {
                let share = (done as f64 / total as f64).min(1.0);
                let filled = (share * 30.0) as usize;
                eprint!(
                    "\r[{}{}] {:>3.0}% {} records",
                    "#".repeat(filled),
                    " ".repeat(30 - filled),
                    share * 100.0,
                    count(done)
                );
            }
            None => eprint!("\r{} records", count(done)),
        }
    }

    fn finish(&self) {
        if self.drawn {
            note_inline!("\n");
        }
    }
}

/// The group of each series' metric for the report's per-group table: for a directory input,
/// the folder of the file a CSV series is named after (NAB's categories); otherwise none (the
/// metric is its own group).
fn groups_of(history: &HistoryArgs) -> std::collections::BTreeMap<String, String> {
    let Some(input) = history.input.as_ref().filter(|i| i.is_dir()) else {
        return Default::default();
    };
    let Ok(source) = DirectorySource::new(input, history.format()) else {
        return Default::default();
    };
    source
        .files()
        .iter()
        .filter_map(|f| {
            let folder = f
                .path()
                .parent()?
                .file_name()?
                .to_string_lossy()
                .into_owned();
            Some((f.metric_name(), folder))
        })
        .collect()
}

/// Per-group sums of the series' figures, aggregated with polars (feature `polars`).
#[cfg(feature = "polars")]
fn group_figures(
    reports: &[aiops_evaluation::report::SeriesReport],
    groups_of: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<aiops_evaluation::report::GroupFigures>> {
    use aiops_evaluation::aggregate::{SeriesCounts, by_group};
    let rows: Vec<SeriesCounts> = reports
        .iter()
        .map(|r| {
            let metric = r.name.split('{').next().unwrap_or(&r.name);
            SeriesCounts {
                group: groups_of
                    .get(metric)
                    .cloned()
                    .unwrap_or_else(|| metric.to_owned()),
                incidents: r.figures.incidents,
                caught: r.figures.event_wise.true_positives,
                events: r.figures.events,
                events_inside: r.figures.events - r.figures.event_wise.false_positives,
            }
        })
        .collect();
    Ok(by_group(&rows)?)
}

/// Without polars the report has no per-group table.
#[cfg(not(feature = "polars"))]
fn group_figures(
    _: &[aiops_evaluation::report::SeriesReport],
    _: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<aiops_evaluation::report::GroupFigures>> {
    Ok(Vec::new())
}

/// `PARTITION:FIRST-END,...` as (partition, first, end).
fn parse_offsets(spec: &str) -> Result<Vec<(i32, i64, Option<i64>)>> {
    let bad = |part: &str| {
        Error::Usage(format!(
            "--offsets {part:?}: expected PARTITION:FIRST-END (END may be empty), e.g. 0:100-500"
        ))
    };
    spec.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|part| {
            let (partition, range) = part.split_once(':').ok_or_else(|| bad(part))?;
            let (first, end) = range.split_once('-').ok_or_else(|| bad(part))?;
            let partition: i32 = partition.trim().parse().map_err(|_| bad(part))?;
            let first: i64 = first.trim().parse().map_err(|_| bad(part))?;
            let end: Option<i64> = match end.trim() {
                "" => None,
                end => Some(end.parse().map_err(|_| bad(part))?),
            };
            if partition < 0 || first < 0 || end.is_some_and(|e| e < first) {
                return Err(bad(part));
            }
            Ok((partition, first, end))
        })
        .collect()
}

/// The source the arguments name.
fn make_source(
    history: &HistoryArgs,
    config: &aiops_pipeline::PipelineConfig,
    read_from: Option<TimestampMs>,
    offsets: Option<&[(i32, i64, Option<i64>)]>,
) -> Result<Arc<dyn Source>> {
    Ok(match (&history.input, &history.topic) {
        (Some(input), _) if input.is_dir() => {
            Arc::new(DirectorySource::new(input, history.format())?)
        }
        #[cfg(feature = "parquet")]
        (Some(input), _)
            if input
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("parquet")) =>
        {
            Arc::new(aiops_connectors::source::parquet::ParquetSource::new(
                input,
            )?)
        }
        (Some(input), _) => Arc::new(FileSource::new(input, history.format())?),
        (None, Some(topic)) => topic_source(history, config, topic, read_from, offsets)?,
        (None, None) => return Err(Error::Usage("give --input FILE or --topic TOPIC".into())),
    })
}

/// The other configurations to compare: each --compare file's templates, and with
/// --each-detector the default template reduced to each of its detectors in turn.
fn alternatives(
    args: &ReplayArgs,
    config: &aiops_pipeline::PipelineConfig,
) -> Result<Vec<(String, Arc<aiops_operators::TemplateSet>)>> {
    let mut out = Vec::new();
    for path in &args.compare {
        let other = aiops_pipeline::PipelineConfig::from_file(path)?;
        out.push((path.display().to_string(), other.template_set()?));
    }
    if args.each_detector {
        let base = config.template_set()?;
        let templates = base.templates().to_vec();
        let index = templates
            .iter()
            .position(|t| t.name == "default")
            .unwrap_or(0);
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for detector in &templates[index].detectors {
            let mut reduced = templates.clone();
            reduced[index].detectors = vec![detector.clone()];
            let n = seen.entry(detector.kind.clone()).or_default();
            *n += 1;
            let name = if *n == 1 {
                format!("{} alone", detector.kind)
            } else {
                format!("{} alone ({})", detector.kind, n)
            };
            let set = aiops_operators::TemplateSet::new(reduced, base.registry().clone())
                .map_err(aiops_pipeline::Error::from)?;
            out.push((name, Arc::new(set)));
        }
    }
    Ok(out)
}

/// Writes `report.html` and `report.json` under `dir`; returns the HTML file's path.
fn write_report(
    dir: &std::path::Path,
    title: &str,
    (labels, overall): (&Labels, &Figures),
    (events, samples): (&[AnomalyEvent], &[aiops_pipeline::record::ScoreSample]),
    warning_of: &std::collections::BTreeMap<String, f64>,
    (from, to): (Option<TimestampMs>, Option<TimestampMs>),
    (comparisons, groups_of): (
        &[(String, Figures)],
        &std::collections::BTreeMap<String, String>,
    ),
) -> Result<PathBuf> {
    use aiops_evaluation::report::{self, PlotPoint, SeriesReport};
    use std::collections::BTreeMap;
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.display().to_string(),
        source,
    })?;
    let in_range = |t: TimestampMs| from.is_none_or(|f| t >= f) && to.is_none_or(|u| t <= u);
    // Per series: its name, points and flags, in time order.
    let mut by_series: BTreeMap<String, (String, String, Vec<PlotPoint>, Vec<PointAt>)> =
        BTreeMap::new();
    for sample in samples.iter().filter(|s| in_range(s.timestamp)) {
        let series = sample.series.as_ref();
        let key = series.key().to_string();
        let entry = by_series.entry(key.clone()).or_insert_with(|| {
            let labels: Vec<String> = series
                .labels()
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect();
            let name = if labels.is_empty() {
                series.name().to_owned()
            } else {
                format!("{}{{{}}}", series.name(), labels.join(","))
            };
            (name, series.name().to_owned(), Vec::new(), Vec::new())
        });
        entry.2.push(PlotPoint {
            timestamp: sample.timestamp,
            value: sample.value,
            band: sample.expected.map(|b| (b.lower, b.upper)),
        });
        entry.3.push(scored_point(sample, warning_of).at());
    }
    // Each series' events, grouped once rather than searched for every series.
    let mut events_of: BTreeMap<String, Vec<TimestampMs>> = BTreeMap::new();
    for event in events {
        events_of
            .entry(event.series.key.to_string())
            .or_default()
            .push(event.timestamp);
    }
    let mut reports = Vec::with_capacity(by_series.len());
    for (key, (name, metric, mut points, flags)) in by_series {
        points.sort_by_key(|p| p.timestamp);
        let series_events: Vec<EventAt> = events_of
            .remove(&key)
            .unwrap_or_default()
            .into_iter()
            .map(|timestamp| EventAt {
                key: key.clone(),
                metric: metric.clone(),
                timestamp,
            })
            .collect();
        let figures = backtest::evaluate(
            labels,
            &[(key.clone(), metric.clone())],
            &series_events,
            Some(&flags),
        );
        reports.push(SeriesReport {
            incidents: labels.of(&key, &metric).to_vec(),
            events: series_events.iter().map(|e| e.timestamp).collect(),
            key,
            name,
            points,
            figures,
        });
    }
    reports.sort_by(|a, b| a.name.cmp(&b.name));
    let title = format!("aiops backtest: {title}");
    let html_path = dir.join("report.html");
    let write = |path: &std::path::Path, text: String| {
        std::fs::write(path, text).map_err(|source| Error::Write {
            path: path.display().to_string(),
            source,
        })
    };
    let groups = group_figures(&reports, groups_of)?;
    write(
        &html_path,
        report::html(&title, overall, &reports, comparisons, &groups),
    )?;
    write(
        &dir.join("report.json"),
        report::figures_json(&title, overall, &reports, comparisons, &groups),
    )?;
    Ok(html_path)
}

/// Reads labels, telling the format from the file (see [`Labels::parse`]); a label column's
/// series is named after the file.
fn read_labels(path: &std::path::Path) -> Result<Labels> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read labels {name}: {e}")))?;
    let series = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Labels::parse(&name, &series, &text)?)
}

/// A scored point as the evaluation sees it, with its template's warning level (a template
/// without one never flags).
fn scored_point(
    sample: &aiops_pipeline::record::ScoreSample,
    warning_of: &std::collections::BTreeMap<String, f64>,
) -> ScoredPoint {
    ScoredPoint {
        key: sample.series.key().to_string(),
        metric: sample.series.name().to_owned(),
        timestamp: sample.timestamp,
        score: sample.score,
        warning: warning_of
            .get(&sample.model.template)
            .copied()
            .unwrap_or(f64::INFINITY),
    }
}

/// The figures of the range's events and points against the labels.
fn evaluate_replay(
    labels: &Labels,
    events: &[AnomalyEvent],
    samples: &[aiops_pipeline::record::ScoreSample],
    warning_of: &std::collections::BTreeMap<String, f64>,
    from: Option<TimestampMs>,
    to: Option<TimestampMs>,
) -> Figures {
    let points: Vec<ScoredPoint> = samples
        .iter()
        .map(|s| scored_point(s, warning_of))
        .collect();
    let events: Vec<EventAt> = events
        .iter()
        .map(|e| EventAt {
            key: e.series.key.to_string(),
            metric: e.series.name.clone(),
            timestamp: e.timestamp,
        })
        .collect();
    backtest::evaluate_range(labels, &events, &points, from, to)
}

/// Writes the scored points of the range, by series then time, one JSON object per line.
fn write_scores(
    path: &std::path::Path,
    mut samples: Vec<aiops_pipeline::record::ScoreSample>,
    from: Option<TimestampMs>,
    to: Option<TimestampMs>,
) -> Result<()> {
    samples
        .retain(|s| from.is_none_or(|f| s.timestamp >= f) && to.is_none_or(|t| s.timestamp <= t));
    samples.sort_by_key(|s| (s.series.key(), s.timestamp));
    let mut out = create_file(path)?;
    let failed = |source| Error::Write {
        path: path.display().to_string(),
        source,
    };
    for sample in &samples {
        let series = sample.series.as_ref();
        let line = serde_json::json!({
            "series_key": series.key(),
            "tenant": series.tenant(),
            "metric": series.name(),
            "labels": series.labels(),
            "timestamp": sample.timestamp,
            "value": sample.value,
            "score": sample.score,
            "lower": sample.expected.map(|b| b.lower),
            "upper": sample.expected.map(|b| b.upper),
            "model_version": sample.model.version,
        });
        serde_json::to_writer(&mut out, &line).map_err(|e| failed(e.into()))?;
        out.write_all(b"\n").map_err(failed)?;
    }
    out.flush().map_err(failed)
}

#[cfg(feature = "kafka")]
fn topic_source(
    history: &HistoryArgs,
    config: &aiops_pipeline::PipelineConfig,
    topic: &str,
    read_from: Option<TimestampMs>,
    offsets: Option<&[(i32, i64, Option<i64>)]>,
) -> Result<Arc<dyn Source>> {
    use aiops_connectors::source::kafka_range::{KafkaRangeSource, RangePlan};
    let (kafka, topic_config) = history.kafka(config, topic)?;
    let plan = match offsets {
        Some(offsets) => RangePlan::new(&kafka, &topic_config, None, Duration::from_secs(30))?
            .with_offsets(offsets)?,
        None => RangePlan::new(&kafka, &topic_config, read_from, Duration::from_secs(30))?,
    };
    Ok(Arc::new(KafkaRangeSource::new(kafka, topic_config, plan)))
}

#[cfg(not(feature = "kafka"))]
fn topic_source(
    _: &HistoryArgs,
    _: &aiops_pipeline::PipelineConfig,
    _: &str,
    _: Option<TimestampMs>,
    _: Option<&[(i32, i64, Option<i64>)]>,
) -> Result<Arc<dyn Source>> {
    super::history::no_kafka()
}
