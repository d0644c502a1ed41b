//! Counters shared by the workers and whoever reports on them (the status line, the metrics
//! endpoint, tests), declared once on the shared telemetry registry.
//!
//! Workers add per batch, not per point, so the atomics stay off the hot path; stage timings
//! are one clock reading at each end of a batch.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aiops_telemetry::MetricsRegistry;
use aiops_telemetry::metrics::{CountGauge, Counter, Family, FloatCounter, Histogram};
use prometheus_client::encoding::EncodeLabelSet;

/// The stages whose work is timed, as `aiops_stage_seconds{stage="..."}` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Parsing and validating a batch of raw records.
    Parse,
    /// Features, detectors and alert policy over one epoch of a worker's points.
    Score,
    /// The drift tests over a batch of score samples.
    Drift,
    /// One message on the delivering thread: a batch written to the sink (Redis, files), or
    /// the checkpoint bookkeeping that passes through the same thread.
    Sink,
}

impl Stage {
    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Parse => "parse",
            Stage::Score => "score",
            Stage::Drift => "drift",
            Stage::Sink => "sink",
        }
    }
}

/// Upper bounds of the latency buckets, in seconds (10 µs to 5 s).
const BUCKETS: [f64; 12] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    stage: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabel {
    worker: u64,
}

/// Live counters of a running pipeline.
#[derive(Debug)]
pub struct Counters {
    records_in: Counter,
    points_in: Counter,
    points_scored: Counter,
    dead_letters: Counter,
    events_out: Counter,
    critical_out: Counter,
    series: CountGauge,
    unmatched: Counter,
    state_bytes: CountGauge,
    restored: Counter,
    restore_failures: Counter,
    checkpoints: Counter,
    model_swaps: Counter,
    drift_events: Counter,
    retrain_requests: Counter,
    partitions: CountGauge,
    assignments: Counter,
    /// The sum over workers of `lag_by_worker`.
    consumer_lag: CountGauge,
    lag_by_worker: Mutex<BTreeMap<usize, u64>>,
    /// Each stage's member of the `aiops_stage_seconds` family, by `Stage as usize`: taken
    /// once, so timing a batch touches no lock or hash of the family.
    stages: [Histogram; 4],
    /// Seconds each worker spent in timed stages.
    busy: Family<WorkerLabel, FloatCounter>,
    checkpoint_duration: Histogram,
    /// When the last checkpoint completed, in ms since the Unix epoch (0: none yet).
    last_checkpoint_ms: Arc<AtomicU64>,
    registry: MetricsRegistry,
}

/// A reading of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Raw records read from the source (file lines, messages).
    pub records_in: u64,
    /// Valid points that entered the dataflow.
    pub points_in: u64,
    /// Points that went through the detectors.
    pub points_scored: u64,
    /// Records that failed to parse or validate.
    pub dead_letters: u64,
    /// Anomaly events emitted.
    pub events_out: u64,
    /// Of which critical.
    pub critical_out: u64,
    /// Distinct series with state.
    pub series: u64,
    /// Points of series no template matched (not scored).
    pub unmatched: u64,
    /// Bytes of per-series state of the feature, detector and alert stages.
    pub state_bytes: u64,
    /// Series whose state was restored from a checkpoint.
    pub restored: u64,
    /// Checkpointed series states that no longer fit their template and were dropped.
    pub restore_failures: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Series switched to a newly activated (or rolled back) model version.
    pub model_swaps: u64,
    /// Drift events emitted.
    pub drift_events: u64,
    /// Retraining requests of the drift stage (a drift that persisted).
    pub retrain_requests: u64,
    /// Source partitions this process reads now (0 for sources without partitions).
    pub partitions: u64,
    /// Partition assignments this process received (each rebalance that gave it partitions).
    pub assignments: u64,
    /// Messages behind the end of the assigned partitions, at the last statistics report.
    pub consumer_lag: u64,
}

macro_rules! adders {
    ($($field:ident => $method:ident),* $(,)?) => {
        $(
            #[doc = concat!("Adds to `", stringify!($field), "`.")]
            #[inline]
            pub fn $method(&self, n: u64) {
                if n > 0 {
                    self.$field.inc_by(n);
                }
            }
        )*
    };
}

impl Default for Counters {
    fn default() -> Self {
        let mut r = MetricsRegistry::new();
        let stages = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        // Every stage on the page from the start (zeros), as dashboards expect.
        let stage_histograms =
            [Stage::Parse, Stage::Score, Stage::Drift, Stage::Sink].map(|stage| {
                stages.get_or_create_owned(&StageLabel {
                    stage: stage.name(),
                })
            });
        r.register(
            "aiops_stage_seconds",
            "Time a stage spent on one batch (parse; score: one epoch of a worker; drift; sink: one message on the delivering thread, checkpoint bookkeeping included).",
            stages,
        );
        let busy = Family::default();
        r.register(
            "aiops_worker_busy_seconds",
            "Time each timely worker spent in the parse, score and drift stages.",
            busy.clone(),
        );
        let last_checkpoint_ms = Arc::new(AtomicU64::new(0));
        let last = last_checkpoint_ms.clone();
        Counters {
            records_in: r.counter("aiops_records_in", "Raw records read from the source."),
            points_in: r.counter("aiops_points_in", "Valid points that entered the dataflow."),
            points_scored: r.counter(
                "aiops_points_scored",
                "Points that went through the detectors.",
            ),
            dead_letters: r.counter(
                "aiops_dead_letters",
                "Records that failed to parse or validate.",
            ),
            events_out: r.counter("aiops_anomalies_out", "Anomaly events emitted."),
            critical_out: r.counter("aiops_critical_out", "Critical anomaly events emitted."),
            series: r.gauge("aiops_series", "Distinct series with state."),
            unmatched: r.counter(
                "aiops_unmatched_points",
                "Points of series no template matched.",
            ),
            state_bytes: r.gauge("aiops_state_bytes", "Bytes of per-series detector state."),
            restored: r.counter(
                "aiops_restored_series",
                "Series restored from a checkpoint.",
            ),
            restore_failures: r.counter(
                "aiops_restore_failures",
                "Checkpointed series that no longer fit their template.",
            ),
            checkpoints: r.counter("aiops_checkpoints", "Checkpoints written."),
            model_swaps: r.counter(
                "aiops_model_swaps",
                "Series moved to a newly activated model version.",
            ),
            drift_events: r.counter("aiops_drift_events", "Drift events emitted."),
            retrain_requests: r.counter(
                "aiops_retrain_requests",
                "Retraining requests of the drift stage.",
            ),
            partitions: r.gauge("aiops_partitions", "Source partitions this process reads."),
            assignments: r.counter(
                "aiops_partition_assignments",
                "Partition assignments received (rebalances that gave this process partitions).",
            ),
            consumer_lag: r.gauge(
                "aiops_consumer_lag",
                "Messages behind the end of the assigned partitions.",
            ),
            lag_by_worker: Mutex::default(),
            stages: stage_histograms,
            busy,
            checkpoint_duration: r.histogram(
                "aiops_checkpoint_duration_seconds",
                "Time to complete a checkpoint (flush the sink, save state, commit offsets).",
                &BUCKETS,
            ),
            last_checkpoint_ms: {
                // Before the first checkpoint, the time since the counters were made (the
                // process started): present from the first scrape, so an alert on it fires for a
                // pipeline that never completes one. (Regression: it was absent until then.)
                let started = crate::system_now().max(0) as u64;
                r.gauge_fn(
                    "aiops_checkpoint_age_seconds",
                    "Time since the last completed checkpoint (since the start, before the first).",
                    move || {
                        let since = match last.load(Ordering::Relaxed) {
                            0 => started,
                            at => at,
                        };
                        Some(
                            (crate::system_now().max(0) as u64).saturating_sub(since) as f64
                                / 1000.0,
                        )
                    },
                );
                last_checkpoint_ms
            },
            registry: r,
        }
    }
}

impl Counters {
    adders! {
        records_in => add_records_in,
        points_in => add_points_in,
        points_scored => add_points_scored,
        dead_letters => add_dead_letters,
        events_out => add_events_out,
        critical_out => add_critical_out,
        series => add_series,
        unmatched => add_unmatched,
        state_bytes => add_state_bytes,
        restored => add_restored,
        restore_failures => add_restore_failures,
        checkpoints => add_checkpoints,
        model_swaps => add_model_swaps,
        drift_events => add_drift_events,
        retrain_requests => add_retrain_requests,
        assignments => add_assignments,
    }

    /// A series' state was dropped (a restored state that no longer fits its template
    /// replaced one the worker held): one series fewer.
    pub fn remove_series(&self, series: u64) {
        self.series.dec_by(series);
    }

    /// Sets how many source partitions this process reads.
    pub fn set_partitions(&self, partitions: u64) {
        self.partitions.set(partitions);
    }

    /// Records the time a stage took over one batch, and adds it to the worker's busy time
    /// (`worker` is `None` for work outside the timely workers, like the sink).
    pub fn time_stage(&self, stage: Stage, worker: Option<usize>, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        self.stages[stage as usize].observe(seconds);
        if let Some(worker) = worker {
            self.busy
                .get_or_create(&WorkerLabel {
                    worker: worker as u64,
                })
                .inc_by(seconds);
        }
    }

    /// Records a completed checkpoint: how long completing it took, and when it completed.
    pub fn checkpoint_completed(&self, elapsed: Duration) {
        self.checkpoint_duration.observe(elapsed.as_secs_f64());
        self.last_checkpoint_ms
            .store(crate::system_now().max(1) as u64, Ordering::Relaxed);
    }

    /// Everything in Prometheus' text exposition format: the counters of [`Stats`], the stage
    /// latency histograms, each worker's busy time, checkpoint duration and age.
    pub fn prometheus(&self) -> String {
        self.registry.render()
    }

    /// Sets one worker's consumer lag (a level, not a count); the reading is the sum.
    pub fn set_consumer_lag_of(&self, worker: usize, lag: u64) {
        let mut lags = self.lag_by_worker.lock().unwrap_or_else(|e| e.into_inner());
        lags.insert(worker, lag);
        self.consumer_lag.set(
            lags.values()
                .fold(0u64, |sum, lag| sum.saturating_add(*lag)),
        );
    }

    /// Reads every counter.
    pub fn read(&self) -> Stats {
        Stats {
            records_in: self.records_in.get(),
            points_in: self.points_in.get(),
            points_scored: self.points_scored.get(),
            dead_letters: self.dead_letters.get(),
            events_out: self.events_out.get(),
            critical_out: self.critical_out.get(),
            series: self.series.get(),
            unmatched: self.unmatched.get(),
            state_bytes: self.state_bytes.get(),
            restored: self.restored.get(),
            restore_failures: self.restore_failures.get(),
            checkpoints: self.checkpoints.get(),
            model_swaps: self.model_swaps.get(),
            drift_events: self.drift_events.get(),
            retrain_requests: self.retrain_requests.get(),
            partitions: self.partitions.get(),
            assignments: self.assignments.get(),
            consumer_lag: self.consumer_lag.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many batches of `stage` the page says were timed.
    fn stage_count(page: &str, stage: Stage) -> u64 {
        let prefix = format!("aiops_stage_seconds_count{{stage=\"{}\"}} ", stage.name());
        page.lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .and_then(|count| count.parse().ok())
            .unwrap_or_else(|| panic!("no count of {stage:?}: {page}"))
    }

    #[test]
    fn every_family_keeps_its_name_type_and_help() {
        let counters = Counters::default();
        counters.add_records_in(7);
        counters.add_series(3);
        counters.set_consumer_lag_of(0, 5);
        counters.set_consumer_lag_of(1, 4);
        counters.set_consumer_lag_of(0, 2);
        let page = counters.prometheus();
        for (name, kind) in [
            ("aiops_records_in_total", "counter"),
            ("aiops_anomalies_out_total", "counter"),
            ("aiops_series", "gauge"),
            ("aiops_partition_assignments_total", "counter"),
            ("aiops_consumer_lag", "gauge"),
            ("aiops_stage_seconds", "histogram"),
            ("aiops_checkpoint_duration_seconds", "histogram"),
            ("aiops_checkpoint_age_seconds", "gauge"),
        ] {
            assert!(page.contains(&format!("# TYPE {name} {kind}\n")), "{page}");
        }
        assert!(
            page.contains("# HELP aiops_records_in_total Raw records read from the source.\n"),
            "{page}"
        );
        assert!(page.contains("aiops_records_in_total 7\n"), "{page}");
        assert!(page.contains("aiops_series 3\n"), "{page}");
        assert!(page.contains("aiops_consumer_lag 6\n"), "{page}");
        assert_eq!(counters.read().consumer_lag, 6);
        // Each worker's busy time appears once the worker has been timed; everything else
        // (the checkpoint age included) from the start.
        assert_eq!(page.matches("# TYPE ").count(), 21, "{page}");
    }

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let counters = Counters::default();
        counters.time_stage(Stage::Parse, None, Duration::from_micros(5)); // ≤ 10 µs
        counters.time_stage(Stage::Parse, None, Duration::from_micros(700)); // ≤ 1 ms
        counters.time_stage(Stage::Parse, None, Duration::from_secs(9)); // +Inf only
        let page = counters.prometheus();
        let bucket = |le: &str| {
            page.lines()
                .find(|line| {
                    line.starts_with("aiops_stage_seconds_bucket{")
                        && line.contains("stage=\"parse\"")
                        && line.contains(&format!("le=\"{le}\""))
                })
                .and_then(|line| line.rsplit(' ').next())
                .and_then(|count| count.parse::<u64>().ok())
        };
        // Bounds are written as prometheus-client formats floats; read them back as numbers.
        let bound = |value: f64| {
            page.lines()
                .filter(|line| line.starts_with("aiops_stage_seconds_bucket{"))
                .filter_map(|line| line.split("le=\"").nth(1)?.split('"').next())
                .find(|le| le.parse::<f64>().ok() == Some(value))
                .map(str::to_owned)
                .unwrap_or_else(|| panic!("no bucket {value}: {page}"))
        };
        assert_eq!(bucket(&bound(0.000_01)), Some(1), "{page}");
        assert_eq!(bucket(&bound(0.000_5)), Some(1), "{page}");
        assert_eq!(bucket(&bound(0.001)), Some(2), "{page}");
        assert_eq!(bucket(&bound(5.0)), Some(2), "{page}");
        assert_eq!(bucket("+Inf"), Some(3), "{page}");
        assert!(
            page.contains("aiops_stage_seconds_count{stage=\"parse\"} 3\n"),
            "{page}"
        );
        let sum: f64 = page
            .lines()
            .find_map(|line| line.strip_prefix("aiops_stage_seconds_sum{stage=\"parse\"} "))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no sum: {page}"));
        assert!((sum - 9.000_705).abs() < 1e-9, "{page}");
        assert_eq!(stage_count(&page, Stage::Parse), 3);
        assert_eq!(
            stage_count(&page, Stage::Score),
            0,
            "every stage is on the page"
        );
    }

    #[test]
    fn busy_time_adds_up_per_worker_and_checkpoint_age_is_there_from_the_start() {
        let counters = Counters::default();
        // Before any checkpoint: the age since the start, so an alert on it can fire.
        let before = counters.prometheus();
        assert!(
            before.contains("# TYPE aiops_checkpoint_age_seconds gauge\n"),
            "{before}"
        );
        assert!(
            before.contains("aiops_checkpoint_age_seconds 0"),
            "{before}"
        );
        counters.time_stage(Stage::Parse, Some(0), Duration::from_millis(2));
        counters.time_stage(Stage::Score, Some(0), Duration::from_millis(3));
        counters.time_stage(Stage::Score, Some(1), Duration::from_millis(1));
        counters.time_stage(Stage::Sink, None, Duration::from_millis(50));
        counters.checkpoint_completed(Duration::from_millis(4));
        let page = counters.prometheus();
        let busy = |worker: &str| -> f64 {
            page.lines()
                .find_map(|line| {
                    line.strip_prefix(&format!(
                        "aiops_worker_busy_seconds_total{{worker=\"{worker}\"}} "
                    ))
                })
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no busy time of worker {worker}: {page}"))
        };
        assert!((busy("0") - 0.005).abs() < 1e-12, "{page}");
        assert!((busy("1") - 0.001).abs() < 1e-12, "{page}");
        assert!(!page.contains("worker=\"None\""));
        assert!(
            page.contains("# TYPE aiops_worker_busy_seconds_total counter\n"),
            "{page}"
        );
        assert_eq!(stage_count(&page, Stage::Score), 2);
        assert_eq!(stage_count(&page, Stage::Sink), 1);
        assert!(
            page.contains("aiops_checkpoint_duration_seconds_count 1\n"),
            "{page}"
        );
        assert!(page.contains("aiops_checkpoint_age_seconds 0"), "{page}");
    }
}
