//! The synthetic source: many seasonal series with injected anomalies of known kinds and times,
//! deterministic for a seed whatever the number of workers.
//!
//! Each series is one of five metric shapes (CPU, request rate, latency, queue depth, memory),
//! with its own level, daily and weekly seasonality, and Gaussian noise. Anomalies are injected
//! per series at random but reproducible ticks: spikes, dips, level shifts, variance bursts,
//! flatlines and slow ramps, each 7 to 12 noise standard deviations strong (ramps reach that at
//! their end). [`SyntheticSource::injected`] lists them, so a run can be scored against them.
//!
//! Series `i` belongs to worker `i % peers`; each series has its own random streams, seeded from
//! the seed and `i`, so the values never depend on how the series are spread.

use std::collections::{BTreeMap, HashMap};
use std::f64::consts::TAU;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use aiops_schemas::{Format, Labels, Limits, MetricPoint, Series, SeriesKey, TimestampMs};

use super::single_format;
use aiops_pipeline::dataflow::RecordFormats;
use aiops_pipeline::record::{PartitionId, SourcePoint};
use aiops_pipeline::source::{Batch, Poll, Source, SourceContext, WorkerSource};
use aiops_pipeline::{Error, Result};
use aiops_schemas::ParseOptions;

const DAY_MS: f64 = 86_400_000.0;
const WEEK_MS: f64 = 7.0 * DAY_MS;
/// Points per epoch the generator aims at when it runs unpaced.
const POINTS_PER_EPOCH: u64 = 4096;
/// No anomaly before this tick: detectors need a history first.
pub const FIRST_ANOMALY_TICK: u64 = 300;
/// Ticks between anomalies of one series, at least.
const MIN_ANOMALY_GAP: u64 = 400;

/// Parameters of the generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticConfig {
    /// Number of series.
    pub series: usize,
    /// Tenant of every series.
    pub tenant: String,
    /// Event time between two points of a series, in milliseconds.
    pub interval_ms: i64,
    /// Event time of the first point.
    pub start_ms: TimestampMs,
    /// Points per series to generate; `None` runs until stopped.
    pub ticks: Option<u64>,
    /// Wall-clock pace in points per second over all series; `None` runs as fast as possible.
    pub points_per_second: Option<f64>,
    /// Seed of every random choice.
    pub seed: u64,
    /// Mean number of ticks between two anomalies of one series.
    pub mean_anomaly_gap: u64,
    /// A lasting change of behaviour, for watching drift monitoring and retraining work.
    pub regime_change: Option<RegimeChange>,
}

/// From a tick on, some series behave differently for good: noisier and at another level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegimeChange {
    /// The first tick of the new behaviour.
    pub at_tick: u64,
    /// Every how many series one changes (1: all of them; series 0 always does).
    #[serde(default = "one")]
    pub every: usize,
    /// Factor on the noise's standard deviation.
    #[serde(default = "one_f")]
    pub noise_factor: f64,
    /// Level shift, in standard deviations of the old noise.
    #[serde(default)]
    pub level_shift: f64,
}

fn one() -> usize {
    1
}

fn one_f() -> f64 {
    1.0
}

impl RegimeChange {
    /// Whether series `index` changes.
    pub fn applies_to(&self, index: usize) -> bool {
        index.is_multiple_of(self.every.max(1))
    }
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            series: 1000,
            tenant: "demo".to_owned(),
            interval_ms: 60_000,
            // 2024-01-01T00:00:00Z
            start_ms: 1_704_067_200_000,
            ticks: None,
            points_per_second: None,
            seed: 1,
            mean_anomaly_gap: 3000,
            regime_change: None,
        }
    }
}

/// Kinds of injected anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// One point far above normal.
    Spike,
    /// One point far below normal.
    Dip,
    /// The level moves up or down for a while, then back.
    LevelShift,
    /// The noise grows sixfold for a while.
    VarianceBurst,
    /// The value freezes for a while.
    Flatline,
    /// A slow ramp away from normal, then a drop back.
    Ramp,
}

impl AnomalyKind {
    const ALL: [AnomalyKind; 6] = [
        AnomalyKind::Spike,
        AnomalyKind::Dip,
        AnomalyKind::LevelShift,
        AnomalyKind::VarianceBurst,
        AnomalyKind::Flatline,
        AnomalyKind::Ramp,
    ];

    /// The kind's name as written in reports.
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::Spike => "spike",
            AnomalyKind::Dip => "dip",
            AnomalyKind::LevelShift => "level_shift",
            AnomalyKind::VarianceBurst => "variance_burst",
            AnomalyKind::Flatline => "flatline",
            AnomalyKind::Ramp => "ramp",
        }
    }
}

/// One anomaly the generator injected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InjectedAnomaly {
    /// The series' key.
    pub series: SeriesKey,
    /// The series' index in the generator.
    pub index: usize,
    /// What was injected.
    pub kind: AnomalyKind,
    /// Event time of its first point.
    pub start: TimestampMs,
    /// Event time of its last point.
    pub end: TimestampMs,
}

/// Events after an anomaly's last point that still count as catching it, in points.
pub const SCORE_SLACK: u64 = 5;

/// How many of the injected anomalies a run caught, by kind, and how many of its events fell
/// outside every anomaly (see [`SyntheticSource::score`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InjectedScore {
    /// Anomalies injected and caught, by kind.
    pub per_kind: BTreeMap<AnomalyKind, KindScore>,
    /// Events in all.
    pub events: u64,
    /// Events outside every injected anomaly.
    pub outside: u64,
    /// Of those, events in a series' first points, before any anomaly can be injected.
    pub outside_young: u64,
}

/// Anomalies of one kind: injected, and caught by an event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindScore {
    /// Injected (and over early enough to be caught).
    pub injected: u64,
    /// Caught by an event.
    pub caught: u64,
}

impl InjectedScore {
    /// Anomalies injected and caught, over every kind.
    pub fn total(&self) -> KindScore {
        self.per_kind
            .values()
            .fold(KindScore::default(), |sum, kind| KindScore {
                injected: sum.injected + kind.injected,
                caught: sum.caught + kind.caught,
            })
    }

    /// The share of injected anomalies caught (1 when none was injected).
    pub fn recall(&self) -> f64 {
        let total = self.total();
        if total.injected == 0 {
            1.0
        } else {
            total.caught as f64 / total.injected as f64
        }
    }

    /// The share of events outside every injected anomaly (0 without events).
    pub fn outside_share(&self) -> f64 {
        if self.events == 0 {
            0.0
        } else {
            self.outside as f64 / self.events as f64
        }
    }
}

impl std::fmt::Display for InjectedScore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total = self.total();
        write!(
            f,
            "injected anomalies caught: {}/{} ({:.1} %)",
            total.caught,
            total.injected,
            100.0 * self.recall()
        )?;
        if !self.per_kind.is_empty() {
            let kinds = self
                .per_kind
                .iter()
                .map(|(kind, score)| format!("{} {}/{}", kind.name(), score.caught, score.injected))
                .collect::<Vec<_>>()
                .join(", ");
            write!(f, " ({kinds})")?;
        }
        write!(
            f,
            "; events outside any injected anomaly: {} of {} ({:.1} %), {} of them in the first {} points of a series",
            self.outside,
            self.events,
            100.0 * self.outside_share(),
            self.outside_young,
            FIRST_ANOMALY_TICK,
        )
    }
}

/// The generator as a pipeline source.
#[derive(Debug, Clone)]
pub struct SyntheticSource {
    config: SyntheticConfig,
    series: Arc<Vec<Arc<Series>>>,
    progress: Arc<Vec<AtomicU64>>,
    started: Instant,
}

impl SyntheticSource {
    /// A generator; fails on an empty or invalid configuration.
    pub fn new(config: SyntheticConfig, workers: usize) -> Result<SyntheticSource> {
        if config.series == 0 {
            return Err(Error::config("synthetic source needs at least one series"));
        }
        if config.interval_ms <= 0 {
            return Err(Error::config("synthetic interval must be positive"));
        }
        if config
            .points_per_second
            .is_some_and(|r| !(r.is_finite() && r > 0.0))
        {
            return Err(Error::config(
                "synthetic rate must be a positive number of points per second",
            ));
        }
        let series = (0..config.series)
            .map(|i| series_identity(&config, i).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(SyntheticSource {
            series: Arc::new(series),
            progress: Arc::new((0..workers.max(1)).map(|_| AtomicU64::new(0)).collect()),
            config,
            started: Instant::now(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SyntheticConfig {
        &self.config
    }

    /// The key of series `index`.
    pub fn series_key(&self, index: usize) -> Option<SeriesKey> {
        self.series.get(index).map(|s| s.key())
    }

    /// Ticks every worker has generated so far.
    pub fn ticks_done(&self) -> u64 {
        self.progress
            .iter()
            .map(|p| p.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    }

    /// The anomalies injected into the first `ticks` points of every series, by start time.
    pub fn injected(&self, ticks: u64) -> Vec<InjectedAnomaly> {
        let mut all = Vec::new();
        for (index, series) in self.series.iter().enumerate() {
            let mut schedule = Schedule::new(&self.config, index);
            while let Some(anomaly) = schedule.upcoming {
                if anomaly.start >= ticks {
                    break;
                }
                all.push(InjectedAnomaly {
                    series: series.key(),
                    index,
                    kind: anomaly.kind,
                    start: self.config.start_ms + anomaly.start as i64 * self.config.interval_ms,
                    end: self.config.start_ms + anomaly.end as i64 * self.config.interval_ms,
                });
                schedule.plan_after(anomaly.end);
            }
        }
        all.sort_by_key(|a| (a.start, a.index));
        all
    }

    /// How well `events` (series and event time of each) found the anomalies injected into
    /// the first `ticks` points of every series. An event counts for an anomaly from its first
    /// point to [`SCORE_SLACK`] points after its last; anomalies that end too close to `ticks`
    /// for an event to have followed are left out of the recall.
    pub fn score(&self, events: &[(SeriesKey, TimestampMs)], ticks: u64) -> InjectedScore {
        let config = &self.config;
        let slack = SCORE_SLACK as i64 * config.interval_ms;
        let horizon = config.start_ms + ticks as i64 * config.interval_ms;
        let injected = self.injected(ticks);
        let mut spans: HashMap<SeriesKey, Vec<(TimestampMs, TimestampMs)>> = HashMap::new();
        for anomaly in &injected {
            spans
                .entry(anomaly.series)
                .or_default()
                .push((anomaly.start, anomaly.end + slack));
        }
        let mut times: HashMap<SeriesKey, Vec<TimestampMs>> = HashMap::new();
        for (key, timestamp) in events {
            times.entry(*key).or_default().push(*timestamp);
        }
        let mut score = InjectedScore {
            events: events.len() as u64,
            ..InjectedScore::default()
        };
        for anomaly in injected.iter().filter(|a| a.end + slack < horizon) {
            let entry = score.per_kind.entry(anomaly.kind).or_default();
            entry.injected += 1;
            let hit = times.get(&anomaly.series).is_some_and(|times| {
                times
                    .iter()
                    .any(|t| (anomaly.start..=anomaly.end + slack).contains(t))
            });
            entry.caught += u64::from(hit);
        }
        let young_until = config.start_ms + FIRST_ANOMALY_TICK as i64 * config.interval_ms;
        for (key, timestamp) in events {
            let inside = spans.get(key).is_some_and(|spans| {
                spans
                    .iter()
                    .any(|(from, to)| (from..=to).contains(&timestamp))
            });
            if !inside {
                score.outside += 1;
                score.outside_young += u64::from(*timestamp < young_until);
            }
        }
        score
    }

    fn ticks_per_epoch(&self) -> u64 {
        if self.config.points_per_second.is_some() {
            1
        } else {
            (POINTS_PER_EPOCH / self.config.series as u64).max(1)
        }
    }
}

impl Source for SyntheticSource {
    fn describe(&self) -> String {
        format!(
            "synthetic ({} series, seed {})",
            self.config.series, self.config.seed
        )
    }

    fn formats(&self, base: &ParseOptions) -> RecordFormats {
        // Generated points are never parsed; the format only has to exist.
        single_format(Format::Json, base)
    }

    fn open(
        &self,
        index: usize,
        peers: usize,
        _context: &SourceContext,
    ) -> Result<Box<dyn WorkerSource>> {
        let generators = (index..self.config.series)
            .step_by(peers.max(1))
            .map(|i| SeriesGenerator::new(&self.config, i, self.series[i].clone()))
            .collect();
        Ok(Box::new(SyntheticWorker {
            config: self.config.clone(),
            generators,
            tick: 0,
            ticks_per_epoch: self.ticks_per_epoch(),
            progress: self.progress.clone(),
            index,
            started: self.started,
        }))
    }
}

/// The name, labels and tenant of series `i`.
fn series_identity(config: &SyntheticConfig, i: usize) -> Result<Series> {
    const REGIONS: [&str; 3] = ["eu-west", "us-east", "ap-south"];
    let shape = Shape::of(i);
    let host = i / Shape::COUNT;
    let labels = Labels::from_pairs([
        ("host", format!("host-{host:04}")),
        ("region", REGIONS[host % REGIONS.len()].to_owned()),
    ])
    .map_err(|e| Error::config(e.to_string()))?;
    Series::new(
        config.tenant.clone(),
        shape.metric(),
        labels,
        &Limits::default(),
    )
    .map_err(|e| Error::config(format!("synthetic tenant: {e}")))
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Cpu,
    Requests,
    Latency,
    QueueDepth,
    Memory,
}

impl Shape {
    const COUNT: usize = 5;

    fn of(i: usize) -> Shape {
        [
            Shape::Cpu,
            Shape::Requests,
            Shape::Latency,
            Shape::QueueDepth,
            Shape::Memory,
        ][i % Shape::COUNT]
    }

    fn metric(self) -> &'static str {
        match self {
            Shape::Cpu => "cpu_usage_percent",
            Shape::Requests => "http_requests_per_second",
            Shape::Latency => "http_latency_p99_ms",
            Shape::QueueDepth => "queue_depth",
            Shape::Memory => "memory_used_bytes",
        }
    }
}

/// SplitMix64: small, fast, and good enough for test data.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, index: usize, stream: u64) -> Rng {
        let mut rng = Rng(seed
            ^ (index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)
            ^ stream.wrapping_mul(0x8CB9_2BA7_2F3D_8DD7));
        rng.next_u64();
        rng
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Standard normal (Box–Muller, one of the pair).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
    }
}

#[derive(Debug, Clone, Copy)]
struct PlannedAnomaly {
    kind: AnomalyKind,
    start: u64,
    end: u64,
    /// Strength in noise standard deviations, signed.
    strength: f64,
}

/// When a series' anomalies happen: its own random stream, independent of the noise.
#[derive(Debug, Clone)]
struct Schedule {
    rng: Rng,
    mean_gap: u64,
    upcoming: Option<PlannedAnomaly>,
}

impl Schedule {
    fn new(config: &SyntheticConfig, index: usize) -> Schedule {
        let mut schedule = Schedule {
            rng: Rng::new(config.seed, index, 2),
            mean_gap: config.mean_anomaly_gap.max(1),
            upcoming: None,
        };
        let first = FIRST_ANOMALY_TICK + schedule.rng.below(config.mean_anomaly_gap.max(1));
        schedule.plan(first);
        schedule
    }

    fn plan_after(&mut self, end: u64) {
        let gap = MIN_ANOMALY_GAP + (-(1.0 - self.rng.unit()).ln() * self.mean_gap as f64) as u64;
        self.plan(end + gap);
    }

    fn plan(&mut self, start: u64) {
        let kind = AnomalyKind::ALL[self.rng.below(AnomalyKind::ALL.len() as u64) as usize];
        let length = match kind {
            AnomalyKind::Spike | AnomalyKind::Dip => 1,
            AnomalyKind::LevelShift => 100 + self.rng.below(200),
            AnomalyKind::VarianceBurst => 30 + self.rng.below(60),
            AnomalyKind::Flatline => 60 + self.rng.below(120),
            AnomalyKind::Ramp => 120 + self.rng.below(240),
        };
        let sign = if self.rng.unit() < 0.5 { -1.0 } else { 1.0 };
        let magnitude = self.rng.range(7.0, 12.0);
        let strength = match kind {
            AnomalyKind::Spike => magnitude,
            AnomalyKind::Dip => -magnitude,
            _ => sign * magnitude,
        };
        self.upcoming = Some(PlannedAnomaly {
            kind,
            start,
            end: start + length - 1,
            strength,
        });
    }
}

/// One series' generator.
#[derive(Debug, Clone)]
struct SeriesGenerator {
    series: Arc<Series>,
    index: usize,
    base: f64,
    daily: f64,
    weekly: f64,
    phase: f64,
    noise: f64,
    floor: f64,
    rng: Rng,
    schedule: Schedule,
    active: Option<PlannedAnomaly>,
    last: f64,
    regime: Option<RegimeChange>,
}

impl SeriesGenerator {
    fn new(config: &SyntheticConfig, index: usize, series: Arc<Series>) -> SeriesGenerator {
        let mut params = Rng::new(config.seed, index, 1);
        // (base, daily amplitude, weekly amplitude, noise), each relative to the base where
        // the shape scales with its level.
        let (base, daily, weekly, noise) = match Shape::of(index) {
            Shape::Cpu => {
                let noise = params.range(1.0, 2.5);
                (
                    params.range(20.0, 50.0),
                    noise * params.range(2.0, 4.0),
                    noise,
                    noise,
                )
            }
            Shape::Requests => {
                let base = params.range(200.0, 2000.0);
                let noise = base * params.range(0.01, 0.03);
                (base, noise * params.range(3.0, 5.0), noise * 1.5, noise)
            }
            Shape::Latency => {
                let base = params.range(80.0, 300.0);
                let noise = base * params.range(0.02, 0.05);
                (base, noise * params.range(1.0, 2.0), 0.0, noise)
            }
            Shape::QueueDepth => {
                let base = params.range(20.0, 100.0);
                (base, 0.0, 0.0, params.range(2.0, 5.0))
            }
            Shape::Memory => {
                let base = params.range(2e9, 8e9);
                let noise = base * 0.002;
                (base, noise * params.range(2.0, 3.0), 0.0, noise)
            }
        };
        SeriesGenerator {
            series,
            index,
            base,
            daily,
            weekly,
            phase: params.range(0.0, TAU),
            noise,
            floor: 0.0,
            rng: Rng::new(config.seed, index, 3),
            schedule: Schedule::new(config, index),
            active: None,
            last: base,
            regime: config.regime_change.filter(|r| r.applies_to(index)),
        }
    }

    fn value(&mut self, tick: u64, time_ms: f64) -> f64 {
        if self.active.is_none()
            && let Some(next) = self.schedule.upcoming
            && next.start == tick
        {
            self.active = Some(next);
            self.schedule.plan_after(next.end);
        }
        let seasonal = self.base
            + self.daily * (TAU * time_ms / DAY_MS + self.phase).sin()
            + self.weekly * (TAU * time_ms / WEEK_MS + self.phase).sin();
        let mut noise = self.noise * self.rng.normal();
        let mut value = seasonal;
        if let Some(regime) = self.regime.filter(|r| tick >= r.at_tick) {
            noise *= regime.noise_factor;
            value += regime.level_shift * self.noise;
        }
        if let Some(anomaly) = self.active {
            let progress = (tick - anomaly.start) as f64 / (anomaly.end - anomaly.start + 1) as f64;
            match anomaly.kind {
                AnomalyKind::Spike | AnomalyKind::Dip | AnomalyKind::LevelShift => {
                    value += anomaly.strength * self.noise;
                }
                AnomalyKind::VarianceBurst => noise *= 6.0,
                AnomalyKind::Flatline => {
                    value = self.last;
                    noise = 0.0;
                }
                AnomalyKind::Ramp => value += anomaly.strength * self.noise * progress,
            }
            if tick >= anomaly.end {
                self.active = None;
            }
        }
        let value = (value + noise).max(self.floor);
        self.last = value;
        value
    }
}

struct SyntheticWorker {
    config: SyntheticConfig,
    generators: Vec<SeriesGenerator>,
    tick: u64,
    ticks_per_epoch: u64,
    progress: Arc<Vec<AtomicU64>>,
    index: usize,
    started: Instant,
}

impl WorkerSource for SyntheticWorker {
    fn poll(&mut self) -> Result<Poll> {
        if self.config.ticks.is_some_and(|limit| self.tick >= limit) || self.generators.is_empty() {
            return Ok(Poll::Done);
        }
        if let Some(rate) = self.config.points_per_second {
            let due = Duration::from_secs_f64(self.tick as f64 * self.config.series as f64 / rate);
            let elapsed = self.started.elapsed();
            if elapsed < due {
                std::thread::sleep((due - elapsed).min(Duration::from_millis(5)));
                return Ok(Poll::Idle);
            }
        }
        let epoch = self.tick / self.ticks_per_epoch;
        let last_tick =
            ((epoch + 1) * self.ticks_per_epoch).min(self.config.ticks.unwrap_or(u64::MAX));
        let series_count = self.config.series as u64;
        let mut points =
            Vec::with_capacity(self.generators.len() * (last_tick - self.tick) as usize);
        while self.tick < last_tick {
            let timestamp = self.config.start_ms + self.tick as i64 * self.config.interval_ms;
            for generator in &mut self.generators {
                let value = generator.value(self.tick, timestamp as f64);
                points.push(SourcePoint {
                    seq: self.tick * series_count + generator.index as u64,
                    partition: PartitionId::default(),
                    point: MetricPoint {
                        series: generator.series.clone(),
                        timestamp,
                        value,
                    },
                });
            }
            self.tick += 1;
        }
        if let Some(progress) = self.progress.get(self.index) {
            progress.store(self.tick, Ordering::Relaxed);
        }
        Ok(Poll::Ready {
            epoch,
            batch: Batch::Points(points),
        })
    }

    fn next_epoch(&self) -> u64 {
        self.tick / self.ticks_per_epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(config: &SyntheticConfig, peers: usize) -> Vec<(u64, String, i64, f64)> {
        let source = SyntheticSource::new(config.clone(), peers).unwrap();
        let mut all = Vec::new();
        for index in 0..peers {
            let mut worker = source
                .open(index, peers, &crate::source::tests::context())
                .unwrap();
            let mut last_epoch = None;
            while let Poll::Ready {
                epoch,
                batch: Batch::Points(points),
            } = worker.poll().unwrap()
            {
                assert!(last_epoch < Some(epoch));
                last_epoch = Some(epoch);
                all.extend(points.into_iter().map(|p| {
                    (
                        p.seq,
                        p.point.series.to_string(),
                        p.point.timestamp,
                        p.point.value,
                    )
                }));
            }
        }
        all.sort_by_key(|p| p.0);
        all
    }

    #[test]
    fn output_does_not_depend_on_the_number_of_workers() {
        let config = SyntheticConfig {
            series: 7,
            ticks: Some(500),
            ..SyntheticConfig::default()
        };
        let one = generate(&config, 1);
        assert_eq!(one.len(), 7 * 500);
        assert_eq!(one, generate(&config, 3));
        let other_seed = generate(&SyntheticConfig { seed: 2, ..config }, 1);
        assert_ne!(one, other_seed);
    }

    #[test]
    fn injected_anomalies_are_listed_and_shape_the_values() {
        let config = SyntheticConfig {
            series: 20,
            ticks: Some(4000),
            mean_anomaly_gap: 500,
            ..SyntheticConfig::default()
        };
        let source = SyntheticSource::new(config.clone(), 1).unwrap();
        let injected = source.injected(4000);
        assert!(injected.len() > 20, "{}", injected.len());
        let kinds: std::collections::BTreeSet<_> = injected.iter().map(|a| a.kind).collect();
        assert_eq!(kinds.len(), 6, "{kinds:?}");
        assert!(
            injected
                .iter()
                .all(|a| a.start >= config.start_ms + 300 * 60_000 && a.end >= a.start)
        );
        // A spike stands out of its neighbours in the generated values.
        let points = generate(&config, 1);
        let spike = injected
            .iter()
            .find(|a| a.kind == AnomalyKind::Spike)
            .unwrap();
        let value_at = |t: i64| {
            points
                .iter()
                .find(|p| p.2 == t && p.0 % 20 == spike.index as u64)
                .unwrap()
                .3
        };
        let before = value_at(spike.start - 60_000);
        let during = value_at(spike.start);
        assert!(during > before, "{before} → {during}");
    }

    #[test]
    fn invalid_configurations_are_rejected() {
        let bad = [
            SyntheticConfig {
                series: 0,
                ..SyntheticConfig::default()
            },
            SyntheticConfig {
                interval_ms: 0,
                ..SyntheticConfig::default()
            },
            SyntheticConfig {
                points_per_second: Some(0.0),
                ..SyntheticConfig::default()
            },
            SyntheticConfig {
                tenant: "no spaces".into(),
                ..SyntheticConfig::default()
            },
        ];
        for config in bad {
            assert!(
                SyntheticSource::new(config.clone(), 1).is_err(),
                "{config:?}"
            );
        }
    }
}
