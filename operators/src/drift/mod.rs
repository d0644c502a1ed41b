//! Drift tests: has a stream stopped looking like the reference window its model was trained
//! on? Distances between windows (population stability index, Kolmogorov–Smirnov,
//! Wasserstein) watch the distribution of a feature; ADWIN and Page–Hinkley watch the mean of a
//! score stream point by point.
//!
//! [`StreamDrift`] runs all five on one stream and reports [`DriftAlarm`]s. A window test
//! fires only after its statistic stayed above the threshold for `persistence` checks in a row
//! (metrics are autocorrelated, so one check proves little), and then stays quiet until the
//! statistic falls back or the reference is replaced ([`StreamDrift::rebase`], done when a new
//! model is activated).

mod adwin;
mod distance;
mod page_hinkley;

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use aiops_schemas::{DriftTest, TimeRange, TimestampMs};

pub use adwin::{Adwin, AdwinConfig, AdwinCut};
pub use distance::{
    kolmogorov_smirnov, kolmogorov_smirnov_critical, population_stability_index, wasserstein,
};
pub use page_hinkley::{Direction, PageHinkley, PageHinkleyAlarm, PageHinkleyConfig, Units};

use crate::error::{Error, Result};
use crate::params;

/// Parameters of the window tests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WindowTestsConfig {
    /// Points in the reference window (the first points seen after a (re)base).
    pub reference: usize,
    /// Points in the live window compared with it.
    pub live: usize,
    /// Compare every this many points.
    pub stride: usize,
    /// Checks in a row above the threshold before a window test fires.
    pub persistence: u32,
    /// Equal-frequency bins of the population stability index.
    pub psi_bins: usize,
    /// Population stability index that counts as drift (0.25 is the customary "major shift").
    pub psi_threshold: f64,
    /// Significance of the Kolmogorov–Smirnov test.
    pub ks_alpha: f64,
    /// Wasserstein distance that counts as drift, in standard deviations of the reference.
    pub wasserstein_threshold: f64,
}

impl Default for WindowTestsConfig {
    fn default() -> Self {
        WindowTestsConfig {
            reference: 600,
            live: 200,
            stride: 25,
            persistence: 3,
            psi_bins: 10,
            psi_threshold: 0.25,
            ks_alpha: 1e-4,
            wasserstein_threshold: 0.5,
        }
    }
}

/// Which tests run on a stream, and their parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriftConfig {
    /// The tests to run.
    pub tests: Vec<DriftTest>,
    /// Window tests' parameters.
    pub windows: WindowTestsConfig,
    /// ADWIN's parameters.
    pub adwin: AdwinConfig,
    /// Page–Hinkley's parameters.
    pub page_hinkley: PageHinkleyConfig,
}

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig {
            tests: ALL_TESTS.to_vec(),
            windows: WindowTestsConfig::default(),
            adwin: AdwinConfig::default(),
            page_hinkley: PageHinkleyConfig::default(),
        }
    }
}

/// Every test, in the order alarms are reported.
pub const ALL_TESTS: [DriftTest; 5] = [
    DriftTest::Psi,
    DriftTest::Ks,
    DriftTest::Wasserstein,
    DriftTest::Adwin,
    DriftTest::PageHinkley,
];

impl DriftConfig {
    /// Checks every parameter.
    pub fn validate(&self) -> Result<()> {
        let w = &self.windows;
        if w.reference < 10 || w.live < 10 || w.stride == 0 || w.persistence == 0 || w.psi_bins < 2
        {
            return Err(Error::config(
                "drift",
                "windows.reference and windows.live must be at least 10, stride and persistence \
                 at least 1, psi_bins at least 2",
            ));
        }
        params::positive(
            "drift",
            &[
                ("windows.psi_threshold", w.psi_threshold),
                ("windows.wasserstein_threshold", w.wasserstein_threshold),
            ],
        )?;
        if !(w.ks_alpha > 0.0 && w.ks_alpha < 1.0) {
            return Err(Error::config(
                "drift",
                format!("windows.ks_alpha must be in (0, 1), not {}", w.ks_alpha),
            ));
        }
        self.adwin.validate()?;
        self.page_hinkley.validate()
    }

    fn runs(&self, test: DriftTest) -> bool {
        self.tests.contains(&test)
    }
}

/// One test's verdict that the stream drifted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriftAlarm {
    /// The test.
    pub test: DriftTest,
    /// Its statistic.
    pub statistic: f64,
    /// The threshold the statistic crossed.
    pub threshold: f64,
    /// The reference window (event time of its first and last point).
    pub reference: TimeRange,
    /// The live window the statistic describes.
    pub live: TimeRange,
}

/// Standard normal-ish noise for the tests (sum of 12 uniforms − 6) from a seeded LCG, so
/// every test run sees the same stream.
#[cfg(test)]
pub(crate) fn test_noise(seed: &mut u64) -> f64 {
    (0..12)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (*seed >> 11) as f64 / (1u64 << 53) as f64
        })
        .sum::<f64>()
        - 6.0
}

/// Index of a window test in the per-test arrays.
const WINDOW_TESTS: [DriftTest; 3] = [DriftTest::Psi, DriftTest::Ks, DriftTest::Wasserstein];

/// All five drift tests on one stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamDrift {
    config: DriftConfig,
    /// Reference values, sorted ascending once full.
    reference: Vec<f64>,
    reference_range: Option<TimeRange>,
    /// Reference mean and standard deviation, the Wasserstein unit.
    reference_std: f64,
    live: VecDeque<(TimestampMs, f64)>,
    since_check: usize,
    /// Consecutive checks above threshold, per window test.
    streak: [u32; 3],
    /// Window tests that fired and have not fallen back below their threshold.
    latched: [bool; 3],
    adwin: Adwin,
    page_hinkley: PageHinkley,
    /// Start of the score window ADWIN and Page–Hinkley have been watching.
    sequential_since: Option<TimestampMs>,
    /// Scratch space for the sorted live window, kept between checks to save an allocation.
    #[serde(skip)]
    sorted_live: Vec<f64>,
}

impl StreamDrift {
    /// A monitor that takes its reference from the first points it sees.
    pub fn new(config: DriftConfig) -> Result<StreamDrift> {
        config.validate()?;
        Ok(StreamDrift {
            reference: Vec::with_capacity(config.windows.reference),
            reference_range: None,
            reference_std: 0.0,
            live: VecDeque::with_capacity(config.windows.live),
            since_check: 0,
            streak: [0; 3],
            latched: [false; 3],
            adwin: Adwin::new(config.adwin)?,
            page_hinkley: PageHinkley::new(config.page_hinkley)?,
            sequential_since: None,
            sorted_live: Vec::new(),
            config,
        })
    }

    /// Forgets the reference and every test's state: the next points form a new reference.
    /// Called when a new model becomes active, since the reference belongs to a model.
    pub fn rebase(&mut self) {
        let config = std::mem::take(&mut self.config);
        // The configuration was validated when this monitor was made.
        if let Ok(fresh) = StreamDrift::new(config) {
            *self = fresh;
        }
    }

    /// The live window: the latest points (after the reference filled), oldest first.
    pub fn live(&self) -> impl Iterator<Item = (TimestampMs, f64)> + '_ {
        self.live.iter().copied()
    }

    /// Whether the reference window is full (window tests run only then).
    pub fn has_reference(&self) -> bool {
        self.reference_range.is_some() && self.reference.len() >= self.config.windows.reference
    }

    /// Adds a point and returns the tests that fired on it. Non-finite values are skipped.
    pub fn update(&mut self, timestamp: TimestampMs, value: f64) -> Vec<DriftAlarm> {
        let mut alarms = Vec::new();
        if !value.is_finite() {
            return alarms;
        }
        let windows = self.config.windows;
        if self.reference.len() < windows.reference {
            self.reference.push(value);
            let range = self.reference_range.get_or_insert(TimeRange {
                start: timestamp,
                end: timestamp,
            });
            range.end = timestamp;
            if self.reference.len() == windows.reference {
                self.freeze_reference();
            }
            return alarms;
        }
        let reference = self.reference_range.unwrap_or(TimeRange {
            start: timestamp,
            end: timestamp,
        });
        let since = *self.sequential_since.get_or_insert(timestamp);
        let sequential_live = TimeRange {
            start: since,
            end: timestamp,
        };
        if self.config.runs(DriftTest::Adwin)
            && let Some(cut) = self.adwin.update(value)
        {
            alarms.push(DriftAlarm {
                test: DriftTest::Adwin,
                statistic: cut.difference,
                threshold: cut.threshold,
                reference,
                live: sequential_live,
            });
        }
        if self.config.runs(DriftTest::PageHinkley)
            && let Some(alarm) = self.page_hinkley.update(value)
        {
            alarms.push(DriftAlarm {
                test: DriftTest::PageHinkley,
                statistic: alarm.statistic,
                threshold: alarm.threshold,
                reference,
                live: sequential_live,
            });
        }
        if !alarms.is_empty() {
            self.sequential_since = None;
        }

        if self.live.len() == windows.live {
            self.live.pop_front();
        }
        self.live.push_back((timestamp, value));
        self.since_check += 1;
        if self.live.len() == windows.live && self.since_check >= windows.stride {
            self.since_check = 0;
            self.check_windows(reference, &mut alarms);
        }
        alarms
    }

    fn freeze_reference(&mut self) {
        self.reference.sort_by(f64::total_cmp);
        let n = self.reference.len() as f64;
        let mean = self.reference.iter().sum::<f64>() / n;
        let variance = self
            .reference
            .iter()
            .map(|x| (x - mean).powi(2))
            .sum::<f64>()
            / n;
        // A constant reference has no spread: measure distances against a sliver of its level
        // so that any change registers and no change stays 0.
        self.reference_std = variance.sqrt().max(mean.abs().max(1.0) * 1e-9);
    }

    fn check_windows(&mut self, reference: TimeRange, alarms: &mut Vec<DriftAlarm>) {
        let windows = self.config.windows;
        let mut live = std::mem::take(&mut self.sorted_live);
        live.clear();
        live.extend(self.live.iter().map(|&(_, v)| v));
        live.sort_unstable_by(f64::total_cmp);
        let live_range = TimeRange {
            start: self.live.front().map_or(0, |p| p.0),
            end: self.live.back().map_or(0, |p| p.0),
        };
        for (index, test) in WINDOW_TESTS.into_iter().enumerate() {
            if !self.config.runs(test) {
                continue;
            }
            let (statistic, threshold) = match test {
                DriftTest::Psi => (
                    population_stability_index(&self.reference, &live, windows.psi_bins),
                    windows.psi_threshold,
                ),
                DriftTest::Ks => (
                    kolmogorov_smirnov(&self.reference, &live),
                    kolmogorov_smirnov_critical(windows.ks_alpha, self.reference.len(), live.len()),
                ),
                _ => (
                    wasserstein(&self.reference, &live) / self.reference_std,
                    windows.wasserstein_threshold,
                ),
            };
            if statistic <= threshold {
                self.streak[index] = 0;
                self.latched[index] = false;
                continue;
            }
            self.streak[index] += 1;
            if self.streak[index] >= windows.persistence && !self.latched[index] {
                self.latched[index] = true;
                alarms.push(DriftAlarm {
                    test,
                    statistic,
                    threshold,
                    reference,
                    live: live_range,
                });
            }
        }
        // Empty but allocated: the next check reuses it, and state comparisons ignore it.
        live.clear();
        self.sorted_live = live;
    }

    /// Heap bytes held (for state-size accounting).
    pub fn size_bytes(&self) -> usize {
        (self.reference.capacity() + self.sorted_live.capacity()) * 8
            + self.live.capacity() * std::mem::size_of::<(TimestampMs, f64)>()
            + self.adwin.size_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::test_noise as noise;

    fn run(
        monitor: &mut StreamDrift,
        from: i64,
        count: i64,
        value: impl Fn(i64, f64) -> f64,
        seed: &mut u64,
    ) -> Vec<(i64, DriftAlarm)> {
        (from..from + count)
            .flat_map(|t| {
                let x = value(t, noise(seed));
                monitor.update(t, x).into_iter().map(move |a| (t, a))
            })
            .collect()
    }

    #[test]
    fn stationary_noise_raises_no_alarm() {
        let mut monitor = StreamDrift::new(DriftConfig::default()).unwrap();
        let mut seed = 17;
        let alarms = run(&mut monitor, 0, 20_000, |_, e| 50.0 + 2.0 * e, &mut seed);
        assert!(alarms.is_empty(), "{alarms:?}");
        assert!(monitor.has_reference());
    }

    #[test]
    fn a_mean_shift_fires_every_test_once_soon_after_the_change() {
        let mut monitor = StreamDrift::new(DriftConfig::default()).unwrap();
        let mut seed = 23;
        assert!(run(&mut monitor, 0, 2000, |_, e| e, &mut seed).is_empty());
        let alarms = run(&mut monitor, 2000, 2000, |_, e| 3.0 + e, &mut seed);
        for test in ALL_TESTS {
            let fired: Vec<_> = alarms.iter().filter(|(_, a)| a.test == test).collect();
            assert!(!fired.is_empty(), "{test:?} never fired");
            let (at, alarm) = fired[0];
            assert!(*at - 2000 <= 250, "{test:?} fired at {at}");
            assert!(alarm.statistic > alarm.threshold);
            assert_eq!(alarm.reference, TimeRange { start: 0, end: 599 });
            assert!(alarm.live.end == *at && alarm.live.start <= *at);
            if matches!(
                test,
                DriftTest::Psi | DriftTest::Ks | DriftTest::Wasserstein
            ) {
                assert_eq!(fired.len(), 1, "{test:?} latched after firing");
            }
        }
    }

    #[test]
    fn a_variance_change_is_seen_by_the_distribution_tests() {
        let mut monitor = StreamDrift::new(DriftConfig {
            tests: vec![DriftTest::Ks, DriftTest::Psi, DriftTest::Wasserstein],
            ..DriftConfig::default()
        })
        .unwrap();
        let mut seed = 29;
        assert!(run(&mut monitor, 0, 1000, |_, e| e, &mut seed).is_empty());
        let alarms = run(&mut monitor, 1000, 1000, |_, e| 4.0 * e, &mut seed);
        let tests: Vec<_> = alarms.iter().map(|(_, a)| a.test).collect();
        assert!(tests.contains(&DriftTest::Ks), "{tests:?}");
        assert!(tests.contains(&DriftTest::Wasserstein), "{tests:?}");
        assert!(tests.contains(&DriftTest::Psi), "{tests:?}");
    }

    #[test]
    fn rebase_takes_a_new_reference() {
        let mut monitor = StreamDrift::new(DriftConfig::default()).unwrap();
        let mut seed = 31;
        run(&mut monitor, 0, 1000, |_, e| e, &mut seed);
        assert!(!run(&mut monitor, 1000, 1000, |_, e| 5.0 + e, &mut seed).is_empty());
        monitor.rebase();
        assert!(!monitor.has_reference());
        let after = run(&mut monitor, 2000, 5000, |_, e| 5.0 + e, &mut seed);
        assert!(after.is_empty(), "{after:?}");
        assert!(monitor.has_reference());
    }

    #[test]
    fn a_constant_stream_and_its_jump() {
        let mut monitor = StreamDrift::new(DriftConfig::default()).unwrap();
        for t in 0..2000 {
            assert!(monitor.update(t, 7.0).is_empty());
        }
        let alarms: Vec<_> = (2000..2400).flat_map(|t| monitor.update(t, 8.0)).collect();
        assert!(alarms.iter().any(|a| a.test == DriftTest::Wasserstein));
        assert!(alarms.iter().all(|a| a.statistic.is_finite()));
    }

    #[test]
    fn non_finite_values_are_skipped_and_bad_config_refused() {
        let mut monitor = StreamDrift::new(DriftConfig::default()).unwrap();
        assert!(monitor.update(0, f64::NAN).is_empty());
        assert!(monitor.reference.is_empty());
        let bad = DriftConfig {
            windows: WindowTestsConfig {
                ks_alpha: 0.0,
                ..WindowTestsConfig::default()
            },
            ..DriftConfig::default()
        };
        assert!(StreamDrift::new(bad).is_err());
    }

    #[test]
    fn state_stays_bounded_on_a_long_stream() {
        let mut monitor = StreamDrift::new(DriftConfig::default()).unwrap();
        let mut seed = 41;
        run(&mut monitor, 0, 2000, |_, e| e, &mut seed);
        let early = monitor.size_bytes();
        run(
            &mut monitor,
            2000,
            50_000,
            |t, e| e + (t as f64 / 5000.0).sin(),
            &mut seed,
        );
        let late = monitor.size_bytes();
        eprintln!(
            "drift state of one stream: {early} bytes after 2,000 points, {late} after 52,000"
        );
        assert!(late <= 12 * 1024, "{late}");
        assert!(late <= early + 2048, "{early} -> {late}");
    }

    #[test]
    fn snapshot_round_trip_continues_identically() {
        let mut monitor = StreamDrift::new(DriftConfig::default()).unwrap();
        let mut seed = 37;
        run(&mut monitor, 0, 1500, |_, e| e, &mut seed);
        let bytes = postcard::to_allocvec(&monitor).unwrap();
        let mut restored: StreamDrift = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(restored, monitor);
        let mut seed_b = seed;
        let a = run(&mut monitor, 1500, 1000, |_, e| 2.0 + e, &mut seed);
        let b = run(&mut restored, 1500, 1000, |_, e| 2.0 + e, &mut seed_b);
        assert_eq!(a.len(), b.len());
        assert!(!a.is_empty());
    }
}
