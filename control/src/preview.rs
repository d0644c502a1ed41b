//! Preview: what a draft configuration would have raised over a range of the tenant's recent
//! data, next to what the live configuration raised, through the replay path (the same
//! sources and dataflow as `aiops replay`, so the draft's events equal a replay of it).
//!
//! The data comes from a [`PreviewData`] the command that mounts the API provides: a time range
//! of the metrics topic, or a file in the embedded mode. Only the caller's tenant's series can
//! match: the draft runs as the tenant's own template and nothing else runs, so another
//! tenant's points in the same topic are read, counted as unmatched and never scored or shown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use aiops_operators::{Registry, Template, TemplateSet};
use aiops_pipeline::source::Source;
use aiops_pipeline::{RunOptions, run};
use aiops_schemas::{AnomalyEvent, TimestampMs};

/// Longest range a preview covers (a week: bounded work per request).
pub const MAX_RANGE_MS: TimestampMs = 7 * 24 * 3_600_000;
/// Default history before the range that warms the detectors up.
pub const DEFAULT_WARMUP_MS: TimestampMs = 24 * 3_600_000;
/// Most events returned per side (the count is always exact).
pub const MAX_EVENTS: usize = 5_000;
/// Longest a preview may run before it is stopped and refused (its work is bounded by this,
/// whatever the range and the data).
pub const TIME_LIMIT: Duration = Duration::from_secs(20);

/// Keeps the events of the range, at most [`MAX_EVENTS`], and counts them all: a draft that
/// raises on every point costs a counter, not memory.
struct RangeSink {
    range: (TimestampMs, TimestampMs),
    count: usize,
    kept: Vec<AnomalyEvent>,
}

impl aiops_pipeline::sink::Sink for RangeSink {
    fn events(&mut self, events: &[AnomalyEvent]) -> aiops_pipeline::Result<()> {
        for event in events {
            if (self.range.0..=self.range.1).contains(&event.timestamp) {
                self.count += 1;
                if self.kept.len() < MAX_EVENTS {
                    self.kept.push(event.clone());
                }
            }
        }
        Ok(())
    }
}

/// Where preview data comes from.
pub trait PreviewData: Send + Sync {
    /// A source of the points from `read_from` (or the start of the data) on.
    fn source(&self, read_from: Option<TimestampMs>) -> Result<Arc<dyn Source>, String>;

    /// Where the data is, for the answer (`kafka:metrics`, a file path).
    fn describe(&self) -> String;
}

/// What one configuration raised over the range.
#[derive(Debug, Clone, Serialize)]
pub struct Raised {
    /// The version previewed (`draft`, or the live version's number).
    pub version: String,
    /// How many events in the range.
    pub count: usize,
    /// The events in (time, series, id) order, at most [`MAX_EVENTS`].
    pub events: Vec<AnomalyEvent>,
    /// Whether `events` was cut at [`MAX_EVENTS`].
    pub truncated: bool,
    /// Points of the tenant's matching series scored (warm-up included).
    pub points_scored: u64,
}

/// A preview's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// Where the points came from.
    pub data: String,
    /// The range's start (milliseconds since the Unix epoch).
    pub from: TimestampMs,
    /// Its end.
    pub to: TimestampMs,
    /// The draft's events.
    pub draft: Raised,
    /// The live configuration's, when there is one.
    pub live: Option<Raised>,
    /// Wall time of the preview.
    pub elapsed_ms: u64,
}

/// The range asked for.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    /// Start.
    pub from: TimestampMs,
    /// End.
    pub to: TimestampMs,
    /// History before `from` read to warm up.
    pub warmup_ms: TimestampMs,
}

/// Runs `draft` (and `live`, beside it on another thread) over `range` of `data`.
pub fn preview(
    data: &dyn PreviewData,
    registry: &Registry,
    tenant: &str,
    draft: Template,
    live: Option<(u64, Template)>,
    range: Range,
) -> Result<Preview, String> {
    let started = Instant::now();
    let read_from = range.from.saturating_sub(range.warmup_ms);
    let one = |version: String, mut template: Template| -> Result<Raised, String> {
        template.matcher.tenant = Some(tenant.to_owned());
        let templates = TemplateSet::only(vec![template], registry.clone());
        let source = data.source(Some(read_from))?;
        let mut sink = RangeSink {
            range: (range.from, range.to),
            count: 0,
            kept: Vec::new(),
        };
        let options = RunOptions {
            templates: Arc::new(templates),
            progress_interval: Duration::from_secs(3600),
            ..RunOptions::new(1)
        };
        // Stopped at the time limit: a range or a data set too large for a preview is refused
        // rather than allowed to hold a core for as long as it takes.
        let stop = options.stop.clone();
        let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (finished, wait) = std::sync::mpsc::channel::<()>();
        let timer = {
            let timed_out = timed_out.clone();
            std::thread::spawn(move || {
                if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    wait.recv_timeout(TIME_LIMIT)
                {
                    timed_out.store(true, std::sync::atomic::Ordering::Relaxed);
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            })
        };
        let summary = run(source, &mut sink, options, |_| {});
        drop(finished);
        let _ = timer.join();
        let summary = summary.map_err(|e| e.to_string())?;
        if timed_out.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(format!(
                "it ran longer than {} s; narrow the range or the warm-up",
                TIME_LIMIT.as_secs()
            ));
        }
        let mut events = sink.kept;
        events.sort_by(|a, b| {
            (a.timestamp, a.series.key, &a.id).cmp(&(b.timestamp, b.series.key, &b.id))
        });
        Ok(Raised {
            version,
            count: sink.count,
            truncated: sink.count > events.len(),
            events,
            points_scored: summary.stats.points_scored,
        })
    };
    let (draft, live) = std::thread::scope(|scope| {
        let live = live.map(|(version, template)| {
            let one = &one;
            scope.spawn(move || one(version.to_string(), template))
        });
        let draft = one("draft".to_owned(), draft);
        let live = live.map(|handle| {
            handle
                .join()
                .unwrap_or_else(|_| Err("the live configuration's run panicked".to_owned()))
        });
        (draft, live)
    });
    Ok(Preview {
        data: data.describe(),
        from: range.from,
        to: range.to,
        draft: draft?,
        live: live.transpose()?,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}
