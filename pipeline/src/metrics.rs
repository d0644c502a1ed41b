//! Counters shared by the workers and whoever reports on them (the status line, tests).
//!
//! Workers add per batch, not per point, so the atomics stay off the hot path.

use std::sync::atomic::{AtomicU64, Ordering};

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
    consumer_lag: std::sync::Mutex<std::collections::BTreeMap<usize, u64>>,
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
        let metrics: [(&str, &str, &str, u64); 17] = [
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
    }

    /// Sets how many source partitions this process reads.
    pub fn set_partitions(&self, partitions: u64) {
        self.partitions.store(partitions, Ordering::Relaxed);
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
            consumer_lag: self
                .consumer_lag
                .lock()
                .map_or(0, |lags| lags.values().sum()),
        }
    }
}
