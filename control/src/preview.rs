//! Preview: what a draft configuration would have raised over a range of the tenant's recent
//! data, next to what the live configuration raised, through the replay path (the same
//! sources and dataflow as `aiops replay`, so the draft's events equal a replay of it).
//!
//! The data comes from a [`PreviewData`] the command that mounts the API provides: a time range
//! of the metrics topic, or a file in the embedded mode. Only the caller's tenant's series can
//! match: the draft runs as the tenant's own template and nothing else runs, so another
//! tenant's points in the same topic are read, counted as unmatched and never scored or shown.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use aiops_operators::{Registry, Template, TemplateSet};
use aiops_pipeline::record::ScoreSample;
use aiops_pipeline::source::Source;
use aiops_pipeline::{RunOptions, run};
use aiops_schemas::{AnomalyEvent, Series, SeriesKey, TimestampMs};

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
/// raises on every point costs a counter, not memory. With `chart`, also keeps the values of
/// the range's series, decimated, for a chart of what the draft flagged.
struct RangeSink {
    range: (TimestampMs, TimestampMs),
    count: usize,
    kept: Vec<AnomalyEvent>,
    chart: Option<Chart>,
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

    fn samples(&mut self, samples: &[ScoreSample]) -> aiops_pipeline::Result<()> {
        if let Some(chart) = &mut self.chart {
            for sample in samples {
                if (self.range.0..=self.range.1).contains(&sample.timestamp) {
                    chart.add(sample);
                }
            }
        }
        Ok(())
    }
}

/// Most series a preview charts (the first by name and labels).
pub const MAX_CHART_SERIES: usize = 20;
/// Most points per charted series: a longer range is decimated to this many or fewer.
pub const MAX_CHART_POINTS: usize = 400;
/// Series followed while a preview runs, before the [`MAX_CHART_SERIES`] shown are chosen.
const CHART_CANDIDATES: usize = 4 * MAX_CHART_SERIES;

/// One series' values over a range, thinned as they come: points are taken in buckets of
/// `stride` consecutive points, each bucket kept as its point farthest from the series' mean so
/// far; when twice the wanted number of points is held, pairs of buckets merge and the stride
/// doubles. So memory stays bounded over any range, the points stay evenly spread in time,
/// and a spike survives thinning (a chart that dropped the spikes would show a draft's flags
/// floating above a flat line).
#[derive(Debug, Clone)]
struct Decimated {
    series: Arc<Series>,
    seen: u64,
    /// Sum and count of the finite values seen, for their mean.
    sum: f64,
    finite: u64,
    stride: u64,
    /// The current bucket's point so far, and how many points it has taken.
    bucket: Option<(TimestampMs, f64)>,
    in_bucket: u64,
    points: Vec<(TimestampMs, f64)>,
}

impl Decimated {
    fn new(series: Arc<Series>) -> Decimated {
        Decimated {
            series,
            seen: 0,
            sum: 0.0,
            finite: 0,
            stride: 1,
            bucket: None,
            in_bucket: 0,
            points: Vec::new(),
        }
    }

    fn mean(&self) -> f64 {
        if self.finite == 0 {
            0.0
        } else {
            self.sum / self.finite as f64
        }
    }

    fn add(&mut self, timestamp: TimestampMs, value: f64) {
        self.seen = self.seen.saturating_add(1);
        if !value.is_finite() {
            return;
        }
        self.sum += value;
        self.finite += 1;
        let mean = self.mean();
        self.bucket = Some(match self.bucket {
            Some(kept) if (kept.1 - mean).abs() >= (value - mean).abs() => kept,
            _ => (timestamp, value),
        });
        self.in_bucket += 1;
        if self.in_bucket >= self.stride {
            self.points.extend(self.bucket.take());
            self.in_bucket = 0;
            if self.points.len() >= 2 * MAX_CHART_POINTS {
                self.points = thin(&self.points, 2, mean);
                self.stride = self.stride.saturating_mul(2);
            }
        }
    }

    /// As JSON, thinned once more to at most [`MAX_CHART_POINTS`] points.
    fn to_json(&self) -> Value {
        let mut held = self.points.clone();
        held.extend(self.bucket);
        let step = held.len().div_ceil(MAX_CHART_POINTS).max(1);
        let points = thin(&held, step, self.mean());
        json!({
            "key": self.series.key(),
            "name": self.series.name(),
            "labels": self.series.labels(),
            "count": self.seen,
            "points": points.iter().map(|(t, v)| json!([t, v])).collect::<Vec<_>>(),
        })
    }
}

/// Every run of `step` points as the one farthest from `mean` (the first of equals).
fn thin(points: &[(TimestampMs, f64)], step: usize, mean: f64) -> Vec<(TimestampMs, f64)> {
    points
        .chunks(step.max(1))
        .filter_map(|chunk| {
            chunk.iter().copied().reduce(|kept, next| {
                if (next.1 - mean).abs() > (kept.1 - mean).abs() {
                    next
                } else {
                    kept
                }
            })
        })
        .collect()
}

/// The values of the first [`CHART_CANDIDATES`] series seen.
#[derive(Debug, Default)]
struct Chart {
    series: HashMap<SeriesKey, Decimated>,
}

impl Chart {
    fn add(&mut self, sample: &ScoreSample) {
        let key = sample.series.key();
        if !self.series.contains_key(&key) && self.series.len() >= CHART_CANDIDATES {
            return;
        }
        self.series
            .entry(key)
            .or_insert_with(|| Decimated::new(sample.series.clone()))
            .add(sample.timestamp, sample.value);
    }

    /// The first `limit` series by name and labels, as JSON.
    fn into_json(self, limit: usize) -> Vec<Value> {
        let mut series: Vec<Decimated> = self.series.into_values().collect();
        series.sort_by(|a, b| {
            (a.series.name(), a.series.labels().to_string())
                .cmp(&(b.series.name(), b.series.labels().to_string()))
        });
        series.iter().take(limit).map(Decimated::to_json).collect()
    }
}

/// Where preview data comes from.
pub trait PreviewData: Send + Sync {
    /// A source of the points from `read_from` (or the start of the data) on.
    fn source(&self, read_from: Option<TimestampMs>) -> Result<Arc<dyn Source>, String>;

    /// Where the data is, for the answer (`kafka:metrics`, a file path).
    fn describe(&self) -> String;

    /// The time of the newest point, when the data knows it better than the clock does (a
    /// generator running ahead of real time); `None`: the data is live, its newest point is
    /// about now.
    fn newest(&self) -> Option<TimestampMs> {
        None
    }
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
    /// The values over the range of the first [`MAX_CHART_SERIES`] series the draft matched
    /// (by name and labels), each decimated to at most [`MAX_CHART_POINTS`] points:
    /// `{"key", "name", "labels", "count", "points": [[t, v], ...]}`, for a chart of what it
    /// flagged.
    pub series: Vec<Value>,
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

/// What one run of a template over the data gave.
struct Run {
    count: usize,
    events: Vec<AnomalyEvent>,
    points_scored: u64,
    chart: Option<Chart>,
}

/// Runs `template` alone, as the tenant's, from `read_from` to the end of the data into
/// `sink` (with every scored point's sample when `samples`); returns the points scored.
/// Stopped, and refused, at [`TIME_LIMIT`]: a range or a data set too large for a preview is
/// refused rather than allowed to hold a core for as long as it takes.
fn run_limited<S: aiops_pipeline::sink::Sink>(
    data: &dyn PreviewData,
    registry: &Registry,
    tenant: &str,
    mut template: Template,
    read_from: TimestampMs,
    sink: &mut S,
    samples: bool,
) -> Result<u64, String> {
    template.matcher.tenant = Some(tenant.to_owned());
    let templates = TemplateSet::only(vec![template], registry.clone());
    let source = data.source(Some(read_from))?;
    let options = RunOptions {
        templates: Arc::new(templates),
        progress_interval: Duration::from_secs(3600),
        samples,
        ..RunOptions::new(1)
    };
    let stop = options.stop.clone();
    let timed_out = Arc::new(AtomicBool::new(false));
    let (finished, wait) = std::sync::mpsc::channel::<()>();
    let timer = {
        let timed_out = timed_out.clone();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(TIME_LIMIT) {
                timed_out.store(true, Ordering::Relaxed);
                stop.store(true, Ordering::Relaxed);
            }
        })
    };
    let summary = run(source, sink, options, |_| {});
    drop(finished);
    let _ = timer.join();
    let summary = summary.map_err(|e| e.to_string())?;
    if timed_out.load(Ordering::Relaxed) {
        return Err(format!(
            "it ran longer than {} s; narrow the range or the warm-up",
            TIME_LIMIT.as_secs()
        ));
    }
    Ok(summary.stats.points_scored)
}

/// Runs `template` over the data; keeps the events and (with `chart`) the values within
/// `range`.
fn run_alone(
    data: &dyn PreviewData,
    registry: &Registry,
    tenant: &str,
    template: Template,
    read_from: TimestampMs,
    range: (TimestampMs, TimestampMs),
    chart: bool,
) -> Result<Run, String> {
    let mut sink = RangeSink {
        range,
        count: 0,
        kept: Vec::new(),
        chart: chart.then(Chart::default),
    };
    let points_scored = run_limited(
        data, registry, tenant, template, read_from, &mut sink, chart,
    )?;
    let mut events = sink.kept;
    events.sort_by(|a, b| {
        (a.timestamp, a.series.key, &a.id).cmp(&(b.timestamp, b.series.key, &b.id))
    });
    Ok(Run {
        count: sink.count,
        events,
        points_scored,
        chart: sink.chart,
    })
}

impl Run {
    fn raised(self, version: String) -> (Raised, Option<Chart>) {
        (
            Raised {
                version,
                truncated: self.count > self.events.len(),
                count: self.count,
                events: self.events,
                points_scored: self.points_scored,
            },
            self.chart,
        )
    }
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
    let window = (range.from, range.to);
    let (draft, live) = std::thread::scope(|scope| {
        let live = live.map(|(version, template)| {
            scope.spawn(move || {
                run_alone(data, registry, tenant, template, read_from, window, false)
                    .map(|run| run.raised(version.to_string()).0)
            })
        });
        let draft = run_alone(data, registry, tenant, draft, read_from, window, true)
            .map(|run| run.raised("draft".to_owned()));
        let live = live.map(|handle| {
            handle
                .join()
                .unwrap_or_else(|_| Err("the live configuration's run panicked".to_owned()))
        });
        (draft, live)
    });
    let (draft, chart) = draft?;
    Ok(Preview {
        data: data.describe(),
        from: range.from,
        to: range.to,
        draft,
        live: live.transpose()?,
        series: chart.map_or_else(Vec::new, |chart| chart.into_json(MAX_CHART_SERIES)),
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// Most series a search returns.
pub const MAX_FOUND_SERIES: usize = 100;
/// Most recent points returned per series found.
pub const MAX_FOUND_POINTS: usize = 300;

/// What a series search found.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    /// Where the points came from.
    pub data: String,
    /// Start of the window searched.
    pub from: TimestampMs,
    /// Its end: the newest point seen, or the time of the request.
    pub to: TimestampMs,
    /// The series, by name and labels: `{"key", "name", "labels", "count", "points"}` with the
    /// last [`MAX_FOUND_POINTS`] points of each.
    pub items: Vec<Value>,
    /// Whether more series matched than [`MAX_FOUND_SERIES`].
    pub truncated: bool,
}

/// A series found: who it is, how many points it had, its last points.
type FoundSeries = (
    Arc<Series>,
    u64,
    std::collections::VecDeque<(TimestampMs, f64)>,
);

/// Keeps the last points of each series found (at most [`MAX_FOUND_SERIES`] + 1 series, so
/// that "more than that" is known).
struct FoundSink {
    series: HashMap<SeriesKey, FoundSeries>,
    newest: Option<TimestampMs>,
}

impl aiops_pipeline::sink::Sink for FoundSink {
    fn events(&mut self, _: &[AnomalyEvent]) -> aiops_pipeline::Result<()> {
        Ok(())
    }

    fn samples(&mut self, samples: &[ScoreSample]) -> aiops_pipeline::Result<()> {
        for sample in samples {
            self.newest = self.newest.max(Some(sample.timestamp));
            let key = sample.series.key();
            if !self.series.contains_key(&key) && self.series.len() > MAX_FOUND_SERIES {
                continue;
            }
            let (_, count, points) = self
                .series
                .entry(key)
                .or_insert_with(|| (sample.series.clone(), 0, Default::default()));
            *count = count.saturating_add(1);
            if sample.value.is_finite() {
                if points.len() == MAX_FOUND_POINTS {
                    points.pop_front();
                }
                points.push_back((sample.timestamp, sample.value));
            }
        }
        Ok(())
    }
}

/// The tenant's series that `matcher` (metric and label globs) selects among the points of
/// the last `window_ms` of `data` (before [`PreviewData::newest`], or now), with their last
/// points. The search runs the cheapest detector over what it reads (the replay path scores
/// what it reads), bounded by [`TIME_LIMIT`] like a preview.
pub fn find_series(
    data: &dyn PreviewData,
    registry: &Registry,
    tenant: &str,
    matcher: aiops_operators::Matcher,
    window_ms: TimestampMs,
    now: TimestampMs,
) -> Result<Found, String> {
    let end = data.newest().unwrap_or(now);
    let read_from = end.saturating_sub(window_ms);
    let template = Template {
        name: "series-search".to_owned(),
        version: format!("{tenant}.series-search"),
        matcher,
        detectors: vec![aiops_operators::DetectorSpec::new("zscore")],
        ..Template::light()
    };
    let mut sink = FoundSink {
        series: HashMap::new(),
        newest: None,
    };
    run_limited(data, registry, tenant, template, read_from, &mut sink, true)?;
    let to = sink.newest.unwrap_or(end);
    let from = to.saturating_sub(window_ms);
    let truncated = sink.series.len() > MAX_FOUND_SERIES;
    let mut found: Vec<_> = sink
        .series
        .into_values()
        .map(|(series, count, points)| {
            let points: Vec<Value> = points
                .into_iter()
                .filter(|(t, _)| *t >= from)
                .map(|(t, v)| json!([t, v]))
                .collect();
            (series, count, points)
        })
        .filter(|(_, _, points)| !points.is_empty())
        .collect();
    found.sort_by(|a, b| {
        (a.0.name(), a.0.labels().to_string()).cmp(&(b.0.name(), b.0.labels().to_string()))
    });
    found.truncate(MAX_FOUND_SERIES);
    Ok(Found {
        data: data.describe(),
        from,
        to,
        items: found
            .into_iter()
            .map(|(series, count, points)| {
                json!({
                    "key": series.key(),
                    "name": series.name(),
                    "labels": series.labels(),
                    "count": count,
                    "points": points,
                })
            })
            .collect(),
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> Arc<Series> {
        Arc::new(
            Series::new(
                "acme",
                "latency",
                aiops_schemas::Labels::default(),
                &aiops_schemas::Limits::default(),
            )
            .unwrap(),
        )
    }

    #[test]
    fn thinning_keeps_the_spikes_and_stays_bounded() {
        let mut chart = Decimated::new(series());
        // 100,000 points of a flat line with a spike every 9,973 points.
        for i in 0..100_000i64 {
            let value = if i % 9_973 == 500 {
                50.0
            } else {
                (i % 7) as f64 * 0.01
            };
            chart.add(i * 1_000, value);
            assert!(chart.points.len() < 2 * MAX_CHART_POINTS);
        }
        let json = chart.to_json();
        let points = json["points"].as_array().unwrap();
        assert!(points.len() <= MAX_CHART_POINTS, "{}", points.len());
        assert!(points.len() >= MAX_CHART_POINTS / 2, "{}", points.len());
        assert_eq!(json["count"], 100_000);
        let spikes: Vec<i64> = points
            .iter()
            .filter(|p| p[1].as_f64().unwrap() == 50.0)
            .map(|p| p[0].as_i64().unwrap() / 1_000)
            .collect();
        let expected: Vec<i64> = (0..100_000).filter(|i| i % 9_973 == 500).collect();
        assert_eq!(spikes, expected, "every spike survives");
        let times: Vec<i64> = points.iter().map(|p| p[0].as_i64().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_short_series_is_kept_whole() {
        let mut chart = Decimated::new(series());
        for i in 0..10 {
            chart.add(i, i as f64);
        }
        chart.add(10, f64::NAN);
        let json = chart.to_json();
        assert_eq!(json["points"].as_array().unwrap().len(), 10);
        assert_eq!(json["count"], 11);
    }
}
