//! Counters shared by the workers and whoever reports on them (the status line, the metrics
//! endpoint, tests).
//!
//! Workers add per batch, not per point, so the atomics stay off the hot path; stage timings
//! are one clock reading at each end of a batch.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
    const ALL: [Stage; 4] = [Stage::Parse, Stage::Score, Stage::Drift, Stage::Sink];

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

/// A latency histogram with fixed buckets, lock-free.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Per bucket (not cumulative), and one past the last bound.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The samples of a histogram family member, in text format (`labels` like `stage="x",`).
    fn render(&self, name: &str, labels: &str, out: &mut String) {
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.counts[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let braces = labels.trim_end_matches(',');
        if braces.is_empty() {
            let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
        } else {
            let _ = writeln!(
                out,
                "{name}_sum{{{braces}}} {sum}\n{name}_count{{{braces}}} {cumulative}"
            );
        }
    }
}

/// Live counters of a running pipeline.
#[derive(Debug, Default)]
pub struct Counters {
    records_in: AtomicU64,
    points_in: AtomicU64,
    points_scored: AtomicU64,
    dead_letters: AtomicU64,
    events_out: AtomicU64,
    critical_out: AtomicU64,
    series: AtomicU64,
    unmatched: AtomicU64,
    state_bytes: AtomicU64,
    restored: AtomicU64,
    restore_failures: AtomicU64,
    checkpoints: AtomicU64,
    model_swaps: AtomicU64,
    drift_events: AtomicU64,
    retrain_requests: AtomicU64,
    partitions: AtomicU64,
    assignments: AtomicU64,
    consumer_lag: Mutex<BTreeMap<usize, u64>>,
    stages: [Histogram; Stage::ALL.len()],
    /// Nanoseconds each worker spent in timed stages.
    busy_ns: Mutex<BTreeMap<usize, u64>>,
    checkpoint_duration: Histogram,
    /// When the last checkpoint completed, in ms since the Unix epoch (0: none yet).
    last_checkpoint_ms: AtomicU64,
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
                    self.$field.fetch_add(n, Ordering::Relaxed);
                }
            }
        )*
    };
}

impl Stats {
    /// The reading in Prometheus' text exposition format, each metric with its help and type.
    pub fn prometheus(&self) -> String {
        let metrics: [(&str, &str, &str, u64); 18] = [
            (
                "aiops_records_in_total",
                "counter",
                "Raw records read from the source.",
                self.records_in,
            ),
            (
                "aiops_points_in_total",
                "counter",
                "Valid points that entered the dataflow.",
                self.points_in,
            ),
            (
                "aiops_points_scored_total",
                "counter",
                "Points that went through the detectors.",
                self.points_scored,
            ),
            (
                "aiops_dead_letters_total",
                "counter",
                "Records that failed to parse or validate.",
                self.dead_letters,
            ),
            (
                "aiops_anomalies_out_total",
                "counter",
                "Anomaly events emitted.",
                self.events_out,
            ),
            (
                "aiops_critical_out_total",
                "counter",
                "Critical anomaly events emitted.",
                self.critical_out,
            ),
            (
                "aiops_series",
                "gauge",
                "Distinct series with state.",
                self.series,
            ),
            (
                "aiops_unmatched_points_total",
                "counter",
                "Points of series no template matched.",
                self.unmatched,
            ),
            (
                "aiops_state_bytes",
                "gauge",
                "Bytes of per-series detector state.",
                self.state_bytes,
            ),
            (
                "aiops_restored_series_total",
                "counter",
                "Series restored from a checkpoint.",
                self.restored,
            ),
            (
                "aiops_restore_failures_total",
                "counter",
                "Checkpointed series that no longer fit their template.",
                self.restore_failures,
            ),
            (
                "aiops_checkpoints_total",
                "counter",
                "Checkpoints written.",
                self.checkpoints,
            ),
            (
                "aiops_model_swaps_total",
                "counter",
                "Series moved to a newly activated model version.",
                self.model_swaps,
            ),
            (
                "aiops_drift_events_total",
                "counter",
                "Drift events emitted.",
                self.drift_events,
            ),
            (
                "aiops_retrain_requests_total",
                "counter",
                "Retraining requests of the drift stage.",
                self.retrain_requests,
            ),
            (
                "aiops_partitions",
                "gauge",
                "Source partitions this process reads.",
                self.partitions,
            ),
            (
                "aiops_partition_assignments_total",
                "counter",
                "Partition assignments received (rebalances that gave this process partitions).",
                self.assignments,
            ),
            (
                "aiops_consumer_lag",
                "gauge",
                "Messages behind the end of the assigned partitions.",
                self.consumer_lag,
            ),
        ];
        let mut out = String::with_capacity(metrics.len() * 160);
        for (name, kind, help, value) in metrics {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        }
        out
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

    /// Sets how many source partitions this process reads.
    pub fn set_partitions(&self, partitions: u64) {
        self.partitions.store(partitions, Ordering::Relaxed);
    }

    /// Records the time a stage took over one batch, and adds it to the worker's busy time
    /// (`worker` is `None` for work outside the timely workers, like the sink).
    pub fn time_stage(&self, stage: Stage, worker: Option<usize>, elapsed: Duration) {
        self.stages[stage as usize].observe(elapsed);
        if let Some(worker) = worker {
            let mut busy = self.busy_ns.lock().unwrap_or_else(|e| e.into_inner());
            *busy.entry(worker).or_default() += elapsed.as_nanos() as u64;
        }
    }

    /// The timings of one stage.
    pub fn stage(&self, stage: Stage) -> &Histogram {
        &self.stages[stage as usize]
    }

    /// Records a completed checkpoint: how long completing it took, and when it completed.
    pub fn checkpoint_completed(&self, elapsed: Duration) {
        self.checkpoint_duration.observe(elapsed);
        self.last_checkpoint_ms
            .store(crate::system_now().max(1) as u64, Ordering::Relaxed);
    }

    /// Everything in Prometheus' text exposition format: the counters of [`Stats`], the stage
    /// latency histograms, each worker's busy time, checkpoint duration and age.
    pub fn prometheus(&self) -> String {
        let mut out = self.read().prometheus();
        out.push_str(
            "# HELP aiops_stage_seconds Time a stage spent on one batch (parse; score: one epoch of a worker; drift; sink: one message on the delivering thread, checkpoint bookkeeping included).\n# TYPE aiops_stage_seconds histogram\n",
        );
        for stage in Stage::ALL {
            self.stages[stage as usize].render(
                "aiops_stage_seconds",
                &format!("stage=\"{}\",", stage.name()),
                &mut out,
            );
        }
        out.push_str("# HELP aiops_worker_busy_seconds_total Time each timely worker spent in the parse, score and drift stages.\n# TYPE aiops_worker_busy_seconds_total counter\n");
        let busy = self.busy_ns.lock().map(|b| b.clone()).unwrap_or_default();
        for (worker, ns) in busy {
            let _ = writeln!(
                out,
                "aiops_worker_busy_seconds_total{{worker=\"{worker}\"}} {}",
                ns as f64 / 1e9
            );
        }
        out.push_str("# HELP aiops_checkpoint_duration_seconds Time to complete a checkpoint (flush the sink, save state, commit offsets).\n# TYPE aiops_checkpoint_duration_seconds histogram\n");
        self.checkpoint_duration
            .render("aiops_checkpoint_duration_seconds", "", &mut out);
        let last = self.last_checkpoint_ms.load(Ordering::Relaxed);
        if last > 0 {
            let age = (crate::system_now() as u64).saturating_sub(last) as f64 / 1000.0;
            let _ = write!(
                out,
                "# HELP aiops_checkpoint_age_seconds Time since the last completed checkpoint.\n# TYPE aiops_checkpoint_age_seconds gauge\naiops_checkpoint_age_seconds {age}\n"
            );
        }
        out
    }

    /// Sets one worker's consumer lag (a level, not a count); the reading is the sum.
    pub fn set_consumer_lag_of(&self, worker: usize, lag: u64) {
        let mut lags = self.consumer_lag.lock().unwrap_or_else(|e| e.into_inner());
        lags.insert(worker, lag);
    }

    /// Reads every counter.
    pub fn read(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            records_in: get(&self.records_in),
            points_in: get(&self.points_in),
            points_scored: get(&self.points_scored),
            dead_letters: get(&self.dead_letters),
            events_out: get(&self.events_out),
            critical_out: get(&self.critical_out),
            series: get(&self.series),
            unmatched: get(&self.unmatched),
            state_bytes: get(&self.state_bytes),
            restored: get(&self.restored),
            restore_failures: get(&self.restore_failures),
            checkpoints: get(&self.checkpoints),
            model_swaps: get(&self.model_swaps),
            drift_events: get(&self.drift_events),
            retrain_requests: get(&self.retrain_requests),
            partitions: get(&self.partitions),
            assignments: get(&self.assignments),
            consumer_lag: self
                .consumer_lag
                .lock()
                .map_or(0, |lags| lags.values().sum()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let histogram = Histogram::default();
        histogram.observe(Duration::from_micros(5)); // ≤ 10 µs
        histogram.observe(Duration::from_micros(700)); // ≤ 1 ms
        histogram.observe(Duration::from_secs(9)); // +Inf only
        let mut out = String::new();
        histogram.render("x_seconds", "stage=\"a\",", &mut out);
        assert!(
            out.contains("x_seconds_bucket{stage=\"a\",le=\"0.00001\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{stage=\"a\",le=\"0.0005\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{stage=\"a\",le=\"0.001\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{stage=\"a\",le=\"5\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{stage=\"a\",le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("x_seconds_count{stage=\"a\"} 3\n"), "{out}");
        assert!(
            out.contains("x_seconds_sum{stage=\"a\"} 9.000705\n"),
            "{out}"
        );
        assert_eq!(histogram.count(), 3);
    }

    #[test]
    fn busy_time_adds_up_per_worker_and_checkpoint_age_appears_after_one() {
        let counters = Counters::default();
        assert!(
            !counters
                .prometheus()
                .contains("aiops_checkpoint_age_seconds ")
        );
        counters.time_stage(Stage::Parse, Some(0), Duration::from_millis(2));
        counters.time_stage(Stage::Score, Some(0), Duration::from_millis(3));
        counters.time_stage(Stage::Score, Some(1), Duration::from_millis(1));
        counters.time_stage(Stage::Sink, None, Duration::from_millis(50));
        counters.checkpoint_completed(Duration::from_millis(4));
        let page = counters.prometheus();
        assert!(
            page.contains("aiops_worker_busy_seconds_total{worker=\"0\"} 0.005\n"),
            "{page}"
        );
        assert!(
            page.contains("aiops_worker_busy_seconds_total{worker=\"1\"} 0.001\n"),
            "{page}"
        );
        assert!(!page.contains("worker=\"None\""));
        assert_eq!(counters.stage(Stage::Score).count(), 2);
        assert_eq!(counters.stage(Stage::Sink).count(), 1);
        assert!(
            page.contains("aiops_checkpoint_duration_seconds_count 1\n"),
            "{page}"
        );
        assert!(page.contains("aiops_checkpoint_age_seconds 0"), "{page}");
    }
}
