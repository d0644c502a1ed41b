//! The range detector: values beyond anything the series has shown.
//!
//! Operational series have a working range (a CPU between 20 and 60 %, a latency between 40
//! and 90 ms), and the incidents that matter most often take them out of it: a new maximum, a
//! floor never seen. Residual detectors miss this on series that are spiky inside their range,
//! and flag every ordinary spike instead. This detector remembers the lowest and highest values
//! seen and scores only the excess beyond them, as a share of the range: a value `tolerance` of
//! the range beyond it scores 3 (the usual alert level), twice that 6, and so on; values inside
//! score 0.
//!
//! The remembered extremes fade toward the series' mean with a half-life, so a spike long ago
//! does not widen the range forever and a series that moved to a new regime gets a new range.

use serde::{Deserialize, Serialize};

use aiops_schemas::Band;

use super::{Detector, Score, Snapshot};
use crate::error::Result;
use crate::features::{FadingRange, Features, Input, Jitter, RangeFade};
use crate::params;

/// Registry name.
pub const KIND: &str = "range";
const SNAPSHOT_VERSION: u16 = 2;

/// Parameters of the range detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RangeConfig {
    /// The feature scored.
    pub input: Input,
    /// Excess beyond the range, as a share of the range, that scores 3.
    pub tolerance: f64,
    /// Points after which the extremes have faded halfway back toward the mean.
    pub half_life: f64,
    /// Points learnt before the first score.
    pub warmup: u32,
    /// Smoothing factor in (0, 1] of an exponentially weighted mean the range is taken of
    /// instead of the raw input (1: the raw input). A smoothed range catches sustained shifts
    /// (a burst of activity, a plateau) whose single points stay inside the raw range.
    pub smooth: f64,
    /// The least excess that scores 3, in units of the series' point-to-point noise (its
    /// standard deviation estimated from successive differences, carried through the
    /// smoothing); 0: off. A record of pure noise beats the previous one by a fraction of that
    /// noise, so without a floor every new record of a noisy series is an anomaly.
    pub noise_floor: f64,
}

impl Default for RangeConfig {
    fn default() -> Self {
        RangeConfig {
            input: Input::Value,
            tolerance: 0.05,
            half_life: 5_000.0,
            warmup: 50,
            smooth: 1.0,
            noise_floor: 0.0,
        }
    }
}

impl RangeConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        params::positive(
            KIND,
            &[("tolerance", self.tolerance), ("half_life", self.half_life)],
        )?;
        params::alpha(KIND, self.smooth)?;
        params::non_negative(KIND, &[("noise_floor", self.noise_floor)])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct RangeState {
    range: FadingRange,
    /// The smoothed input (when smoothing), before the newest point.
    smoothed: Option<f64>,
    /// The point-to-point noise of the (smoothed) input.
    jitter: Jitter,
}

/// The state as format version 1 wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct RangeStateV1 {
    range: FadingRange,
    smoothed: Option<f64>,
}

/// The range detector for one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    config: RangeConfig,
    state: RangeState,
    fade: RangeFade,
}

impl Range {
    /// A detector with no history.
    pub fn new(config: RangeConfig) -> Result<Range> {
        config.validate()?;
        Ok(Range {
            fade: RangeFade::with_half_life(config.half_life),
            config,
            state: RangeState {
                range: FadingRange::new(),
                smoothed: None,
                jitter: Jitter::default(),
            },
        })
    }

    /// The range and the slack beyond it that scores 3; `None` while warming up.
    #[inline]
    fn bounds(&self) -> Option<(f64, f64, f64)> {
        let range = self.state.range;
        if range.count() < u64::from(self.config.warmup.max(1)) {
            return None;
        }
        let (low, high) = (range.low(), range.high());
        // A flat history has no width to measure by; a tenth of its level (or 1) stands in.
        let width = if high > low {
            high - low
        } else {
            0.1 * high.abs().max(1.0)
        };
        let mut slack = self.config.tolerance * width;
        if self.config.noise_floor > 0.0
            && let Some(sigma) = self.state.jitter.sigma(self.config.smooth)
        {
            slack = slack.max(self.config.noise_floor * sigma);
        }
        Some((low, high, slack))
    }

    /// The input with smoothing applied, given the point's raw input.
    #[inline]
    fn smoothed(&self, raw: f64) -> f64 {
        match self.state.smoothed {
            Some(previous) => previous + self.config.smooth * (raw - previous),
            None => raw,
        }
    }
}

impl Detector for Range {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(self.config).unwrap_or_default()
    }

    #[inline]
    fn score(&self, features: &Features) -> Option<Score> {
        let (low, high, slack) = self.bounds()?;
        let x = self.smoothed(features.get(self.config.input));
        let excess = (x - high).max(low - x).max(0.0);
        Some(Score {
            score: 3.0 * excess / slack,
            expected: Band {
                lower: low - slack,
                upper: high + slack,
            },
        })
    }

    /// The excess is a share of the series' own range already.
    fn self_calibrated(&self) -> bool {
        true
    }

    #[inline]
    fn update(&mut self, features: &Features) {
        let raw = features.get(self.config.input);
        if !raw.is_finite() {
            return;
        }
        let x = self.smoothed(raw);
        let state = &mut self.state;
        // Only a floor needs the noise estimate; without one the point costs what it did.
        if self.config.noise_floor > 0.0 {
            state.jitter.update(x);
        }
        if self.config.smooth < 1.0 {
            state.smoothed = Some(x);
        }
        state.range.update(x, self.fade);
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::encode(KIND, SNAPSHOT_VERSION, &self.state)
    }

    fn restore(&mut self, snapshot: &Snapshot) -> Result<()> {
        self.state = if snapshot.version == 1 {
            // Written before the noise estimate existed: it starts from the next point.
            let old: RangeStateV1 = snapshot.decode(KIND, 1)?;
            RangeState {
                range: old.range,
                smoothed: old.smoothed,
                jitter: Jitter::default(),
            }
        } else {
            snapshot.decode(KIND, SNAPSHOT_VERSION)?
        };
        Ok(())
    }

    fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(d: &mut Range, values: impl IntoIterator<Item = f64>) {
        for (i, v) in values.into_iter().enumerate() {
            d.update(&Features::first(i as i64, v));
        }
    }

    #[test]
    fn scores_only_the_excess_beyond_the_range_seen() {
        let mut d = Range::new(RangeConfig {
            warmup: 10,
            half_life: 1e12,
            ..RangeConfig::default()
        })
        .unwrap();
        assert_eq!(d.score(&Features::first(0, 5.0)), None);
        // A spiky series between 10 and 20: spikes to 20 are ordinary.
        feed(
            &mut d,
            (0..200).map(|i| if i % 10 == 0 { 20.0 } else { 10.0 }),
        );
        assert!(d.score(&Features::first(0, 20.0)).unwrap().score < 1e-6);
        assert_eq!(d.score(&Features::first(0, 10.0)).unwrap().score, 0.0);
        // 0.5 beyond a range of 10 is the 5 % tolerance: score 3; 1.0 beyond scores 6.
        let s = d.score(&Features::first(0, 20.5)).unwrap().score;
        assert!((s - 3.0).abs() < 1e-9, "{s}");
        let s = d.score(&Features::first(0, 9.0)).unwrap().score;
        assert!((s - 6.0).abs() < 1e-9, "{s}");
    }

    #[test]
    fn old_extremes_fade() {
        let mut d = Range::new(RangeConfig {
            warmup: 10,
            half_life: 100.0,
            ..RangeConfig::default()
        })
        .unwrap();
        feed(
            &mut d,
            std::iter::once(100.0).chain((0..2000).map(|i| f64::from(i % 2))),
        );
        // The early 100 has faded: 5 is now far outside the working range of 0..1.
        assert!(d.score(&Features::first(0, 5.0)).unwrap().score > 30.0);
        // A flat series still scores departures.
        let mut flat = Range::new(RangeConfig::default()).unwrap();
        feed(&mut flat, (0..100).map(|_| 7.0));
        assert!(flat.score(&Features::first(0, 8.0)).unwrap().score > 3.0);
        assert_eq!(flat.score(&Features::first(0, 7.0)).unwrap().score, 0.0);
    }

    #[test]
    fn a_smoothed_range_catches_a_sustained_shift_its_single_points_hide() {
        let config = RangeConfig {
            warmup: 10,
            half_life: 1e12,
            ..RangeConfig::default()
        };
        // Alternating 0 and 10: every single point of a run of 9s lies inside the raw range,
        // but the run's mean (9) lies far above the history's mean (5).
        let history = (0..400).map(|i| if i % 2 == 0 { 0.0 } else { 10.0 });
        let mut raw = Range::new(config).unwrap();
        let mut smoothed = Range::new(RangeConfig {
            smooth: 0.1,
            ..config
        })
        .unwrap();
        feed(&mut raw, history.clone());
        feed(&mut smoothed, history);
        let mut raw_max = 0.0f64;
        let mut smoothed_max = 0.0f64;
        for i in 0..30 {
            let features = Features::first(400 + i, 9.0);
            raw_max = raw_max.max(raw.score(&features).unwrap().score);
            smoothed_max = smoothed_max.max(smoothed.score(&features).unwrap().score);
            raw.update(&features);
            smoothed.update(&features);
        }
        assert_eq!(raw_max, 0.0);
        // Beyond the tolerance (score 3) while the raw range sees nothing.
        assert!(smoothed_max > 3.0, "{smoothed_max}");
        assert!(
            RangeConfig {
                smooth: 0.0,
                ..RangeConfig::default()
            }
            .validate()
            .is_err()
        );
    }

    /// Stationary Gaussian noise (xorshift and Box-Muller, fixed seeds).
    fn noise(seed: u64, n: usize) -> Vec<f64> {
        let mut state = seed | 1;
        let mut uniform = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            ((state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let (u, v) = (uniform(), uniform());
                100.0 + 5.0 * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
            })
            .collect()
    }

    /// Points scoring at the alert level (2) after `from`, over `series` noise series.
    fn alarms_on_noise(config: RangeConfig, series: u64, from: usize) -> usize {
        (0..series)
            .map(|s| {
                let mut d = Range::new(config).unwrap();
                noise(s + 1, 1_300)
                    .into_iter()
                    .enumerate()
                    .filter(|&(i, v)| {
                        let f = Features::first(i as i64, v);
                        let alarmed = d.score(&f).is_some_and(|s| s.score >= 2.0);
                        d.update(&f);
                        alarmed && i >= from
                    })
                    .count()
            })
            .sum()
    }

    #[test]
    fn a_noise_floor_keeps_the_records_of_pure_noise_quiet_and_still_sees_a_spike() {
        // Without a floor every new record of noise beats the last by a share of the range:
        // one alarm every few hundred points.
        let bare = alarms_on_noise(RangeConfig::default(), 100, 300);
        let floored = RangeConfig {
            noise_floor: 2.0,
            ..RangeConfig::default()
        };
        let quiet = alarms_on_noise(floored, 100, 300);
        assert!(bare >= 100, "{bare} alarms without a floor");
        // 100 series × 1,000 points: at most 0.1 per 1,000 points.
        assert!(quiet <= 10, "{quiet} alarms with a floor of 2");
        // The floor is in noise units: a spike of 8σ on the same noise still scores far above 3.
        let mut d = Range::new(floored).unwrap();
        feed(&mut d, noise(7, 500));
        let spike = d
            .score(&Features::first(0, 100.0 + 8.0 * 5.0 + 20.0))
            .unwrap()
            .score;
        assert!(spike > 6.0, "{spike}");
        // The smoothed range's floor is in the smoothed input's noise: also quiet.
        let smoothed = RangeConfig {
            smooth: 0.1,
            tolerance: 0.1,
            noise_floor: 1.5,
            ..RangeConfig::default()
        };
        let bare_smoothed = alarms_on_noise(
            RangeConfig {
                noise_floor: 0.0,
                ..smoothed
            },
            100,
            300,
        );
        let quiet_smoothed = alarms_on_noise(smoothed, 100, 300);
        assert!(
            quiet_smoothed * 5 < bare_smoothed.max(1),
            "{quiet_smoothed} vs {bare_smoothed}"
        );
        assert!(
            RangeConfig {
                noise_floor: -1.0,
                ..RangeConfig::default()
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn a_version_1_snapshot_still_restores() {
        let mut d = Range::new(RangeConfig::default()).unwrap();
        feed(&mut d, (0..100).map(f64::from));
        let old = Snapshot::encode(
            KIND,
            1,
            &RangeStateV1 {
                range: d.state.range,
                smoothed: d.state.smoothed,
            },
        );
        let mut e = Range::new(RangeConfig::default()).unwrap();
        e.restore(&old).unwrap();
        assert_eq!(e.state.range, d.state.range);
        assert_eq!(e.state.jitter, Jitter::default());
    }

    #[test]
    fn snapshots_round_trip() {
        let mut d = Range::new(RangeConfig::default()).unwrap();
        feed(&mut d, (0..100).map(f64::from));
        let mut e = Range::new(RangeConfig::default()).unwrap();
        e.restore(&d.snapshot()).unwrap();
        assert_eq!(d, e);
    }
}
