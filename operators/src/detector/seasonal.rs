//! The seasonal detector: distance from what this phase of the series' cycle usually looks like.
//!
//! Traffic, CPU and queue depth follow the day; a value that is normal at noon is an incident
//! at 3 am, and a level detector sees neither the missing noon peak nor the 3 am spike. This
//! detector finds the period online and scores the residual against a per-phase profile:
//!
//! - **Period.** Exponentially weighted autocorrelations of the (slowly de-meaned) series are
//!   kept for every lag up to `max_period` (one multiply-add per lag per point). Every
//!   `check_every` points the period becomes the smallest lag whose autocorrelation is a local
//!   peak within `harmonic` of the highest peak and at least `min_correlation`; no such lag means
//!   no period, and the model degrades to a level model.
//! - **Profile.** Additive Holt-Winters without trend: a level, smoothed by `level_alpha`, plus
//!   one seasonal offset per phase, smoothed by `season_alpha` each time its phase comes round.
//!   When the period changes the offsets restart from the last cycle seen.
//! - **Score.** The residual against level + offset, in units of its exponentially weighted mean
//!   absolute size (times √(π/2), a standard deviation for normal residuals). Residuals are
//!   clipped at `clip_sigma` before they are learnt, so an incident does not teach the profile.
//!
//! Points are assumed evenly spaced: the phase advances by one per point.

use serde::{Deserialize, Serialize};

use aiops_schemas::Band;

use super::{Detector, Score, Snapshot};
use crate::error::{Error, Result};
use crate::features::{Features, Input};
use crate::params;

/// Registry name.
pub const KIND: &str = "seasonal";
const SNAPSHOT_VERSION: u16 = 1;
/// Mean absolute deviation × this estimates σ for normal data (√(π/2)).
const MEAN_AD_TO_SIGMA: f64 = 1.253_314_137_315_500_3;
/// Longest period supported.
pub const MAX_PERIOD: usize = 4096;

/// Parameters of the seasonal detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeasonalConfig {
    /// The feature scored.
    pub input: Input,
    /// Shortest period looked for, in points.
    pub min_period: usize,
    /// Longest period looked for, in points (memory and time per point grow with it).
    pub max_period: usize,
    /// Points between period checks.
    pub check_every: u32,
    /// Smallest autocorrelation at the period for the series to count as seasonal.
    pub min_correlation: f64,
    /// A shorter lag wins over the highest peak if its autocorrelation is this share of it.
    pub harmonic: f64,
    /// Points after which the autocorrelations' memory has halved.
    pub correlation_half_life: f64,
    /// Smoothing of the level.
    pub level_alpha: f64,
    /// Smoothing of each phase's offset, per cycle.
    pub season_alpha: f64,
    /// Smoothing of the residuals' mean absolute size.
    pub scale_alpha: f64,
    /// Residuals beyond this many sigmas are learnt as if they were this large.
    pub clip_sigma: f64,
    /// Points learnt before the first score.
    pub warmup: u32,
    /// Half-width of the expected band, in sigmas.
    pub band_sigma: f64,
    /// Smallest residual scale, as a fraction of the series' typical magnitude.
    pub relative_min_scale: f64,
}

impl Default for SeasonalConfig {
    fn default() -> Self {
        SeasonalConfig {
            input: Input::Value,
            min_period: 4,
            max_period: 400,
            check_every: 64,
            min_correlation: 0.3,
            harmonic: 0.8,
            correlation_half_life: 2000.0,
            level_alpha: 0.05,
            season_alpha: 0.2,
            scale_alpha: 0.02,
            clip_sigma: 4.0,
            warmup: 100,
            band_sigma: 3.0,
            relative_min_scale: 1e-4,
        }
    }
}

impl SeasonalConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        if self.min_period < 2 || self.min_period > self.max_period || self.max_period > MAX_PERIOD
        {
            return Err(Error::config(
                KIND,
                format!(
                    "periods must satisfy 2 ≤ min_period ≤ max_period ≤ {MAX_PERIOD} (got {} and {})",
                    self.min_period, self.max_period
                ),
            ));
        }
        if self.check_every == 0 {
            return Err(Error::config(KIND, "check_every must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.min_correlation) || !(0.0..=1.0).contains(&self.harmonic) {
            return Err(Error::config(
                KIND,
                "min_correlation and harmonic must be between 0 and 1",
            ));
        }
        for (name, alpha) in [
            ("level_alpha", self.level_alpha),
            ("season_alpha", self.season_alpha),
            ("scale_alpha", self.scale_alpha),
        ] {
            params::alpha(&format!("{KIND} {name}"), alpha)?;
        }
        params::positive(
            KIND,
            &[
                ("correlation_half_life", self.correlation_half_life),
                ("clip_sigma", self.clip_sigma),
                ("band_sigma", self.band_sigma),
            ],
        )?;
        params::non_negative(KIND, &[("relative_min_scale", self.relative_min_scale)])
    }
}

/// What the detector has learnt about one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SeasonalState {
    /// The last `max_period + 1` values, oldest overwritten first.
    recent: Vec<f32>,
    /// Slot of the next value in `recent`.
    head: u32,
    /// Points seen (saturating).
    count: u32,
    /// Slow mean the autocorrelations are taken around, and its magnitude for the scale floor.
    mean: f64,
    magnitude: f64,
    /// Exponentially weighted lagged products: `products[k]` for lag k (0: the variance).
    products: Vec<f32>,
    /// The period in force (0: none) and the phase of the next point.
    period: u32,
    phase: u32,
    /// Seasonal offsets by phase (empty without a period).
    offsets: Vec<f32>,
    level: f64,
    /// Exponentially weighted mean absolute residual.
    scale: f64,
}

/// The seasonal detector for one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Seasonal {
    config: SeasonalConfig,
    state: SeasonalState,
    /// Weight of a new product in the autocorrelations.
    correlation_weight: f32,
}

impl Seasonal {
    /// A detector with no history.
    pub fn new(config: SeasonalConfig) -> Result<Seasonal> {
        config.validate()?;
        Ok(Seasonal {
            correlation_weight: (1.0
                - (-std::f64::consts::LN_2 / config.correlation_half_life).exp())
                as f32,
            state: SeasonalState {
                recent: vec![0.0; config.max_period + 1],
                head: 0,
                count: 0,
                mean: 0.0,
                magnitude: 0.0,
                products: vec![0.0; config.max_period + 1],
                period: 0,
                phase: 0,
                offsets: Vec::new(),
                level: 0.0,
                scale: 0.0,
            },
            config,
        })
    }

    /// The period in force, in points (`None` when the series shows none).
    pub fn period(&self) -> Option<usize> {
        (self.state.period > 0).then_some(self.state.period as usize)
    }

    /// The value `lag` points before the newest one (lag 0: the newest).
    #[inline]
    fn back(&self, lag: usize) -> f32 {
        let len = self.state.recent.len();
        self.state.recent[(self.state.head as usize + len - 1 - lag) % len]
    }

    fn expected(&self) -> f64 {
        let s = &self.state;
        let offset = if s.period > 0 {
            f64::from(s.offsets[s.phase as usize])
        } else {
            0.0
        };
        s.level + offset
    }

    fn sigma(&self) -> f64 {
        let floor = self.config.relative_min_scale * self.state.magnitude.max(1e-12);
        (self.state.scale * MEAN_AD_TO_SIGMA).max(floor)
    }

    /// The autocorrelation at each lag, from the lagged products.
    fn choose_period(&self) -> u32 {
        let products = &self.state.products;
        let variance = f64::from(products[0]);
        if variance <= 0.0 {
            return 0;
        }
        let seen = (self.state.count as usize).saturating_sub(1);
        let top = self.config.max_period.min(seen / 2);
        if top < self.config.min_period + 1 {
            return 0;
        }
        let rho = |k: usize| f64::from(products[k]) / variance;
        let peaks: Vec<(usize, f64)> = (self.config.min_period..top)
            .filter(|&k| rho(k) >= rho(k - 1) && rho(k) >= rho(k + 1))
            .map(|k| (k, rho(k)))
            .collect();
        let best = peaks.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        if best < self.config.min_correlation {
            return 0;
        }
        peaks
            .iter()
            .find(|p| p.1 >= best * self.config.harmonic && p.1 >= self.config.min_correlation)
            .map_or(0, |p| p.0 as u32)
    }

    /// Starts the profile for a new period from the last cycle seen.
    fn restart_profile(&mut self, period: u32) {
        let p = period as usize;
        let available = (self.state.count as usize).min(self.state.recent.len());
        self.state.period = period;
        self.state.phase = 0;
        if period == 0 || available < p {
            self.state.period = 0;
            self.state.offsets = Vec::new();
            return;
        }
        // The next point is phase 0 and one period after the value p - 1 points back.
        let cycle: Vec<f64> = (0..p).rev().map(|lag| f64::from(self.back(lag))).collect();
        let mean = cycle.iter().sum::<f64>() / p as f64;
        self.state.offsets = cycle.iter().map(|v| (v - mean) as f32).collect();
        self.state.level = mean;
    }
}

impl Detector for Seasonal {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(self.config).unwrap_or_default()
    }

    #[inline]
    fn score(&self, features: &Features) -> Option<Score> {
        if self.state.count < self.config.warmup.max(1) {
            return None;
        }
        let x = features.get(self.config.input);
        let expected = self.expected();
        let sigma = self.sigma();
        let half_band = self.config.band_sigma * sigma;
        Some(Score {
            score: ((x - expected) / sigma).abs(),
            expected: Band {
                lower: expected - half_band,
                upper: expected + half_band,
            },
        })
    }

    fn update(&mut self, features: &Features) {
        let x = features.get(self.config.input);
        if !x.is_finite() {
            return;
        }
        let config = self.config;
        let first = self.state.count == 0;
        // Learn the profile from the residual, clipped.
        let expected = self.expected();
        let residual = x - expected;
        if first {
            self.state.level = x;
            self.state.mean = x;
            self.state.magnitude = x.abs();
        } else {
            let sigma = self.sigma();
            let limit = config.clip_sigma * sigma;
            let clipped = if self.state.scale > 0.0 {
                residual.clamp(-limit, limit)
            } else {
                residual
            };
            let s = &mut self.state;
            s.scale += config.scale_alpha * (clipped.abs() - s.scale);
            let learnt = expected + clipped;
            if s.period > 0 {
                let phase = s.phase as usize;
                let offset = f64::from(s.offsets[phase]);
                s.level += config.level_alpha * ((learnt - offset) - s.level);
                let new_offset = offset + config.season_alpha * ((learnt - s.level) - offset);
                s.offsets[phase] = new_offset as f32;
                s.phase = (s.phase + 1) % s.period;
            } else {
                s.level += config.level_alpha * (learnt - s.level);
            }
            let slow = 1.0 / config.max_period as f64;
            s.mean += slow * (x - s.mean);
            s.magnitude += slow * (x.abs() - s.magnitude);
        }
        // Autocorrelations: one multiply-add per lag against the values already held.
        let centered = (x - self.state.mean) as f32;
        let held = (self.state.count as usize).min(config.max_period);
        let w = self.correlation_weight;
        let mean = self.state.mean as f32;
        let len = self.state.recent.len();
        let head = self.state.head as usize;
        {
            let s = &mut self.state;
            s.products[0] += w * (centered * centered - s.products[0]);
            for lag in 1..=held {
                let past = s.recent[(head + len - lag) % len] - mean;
                s.products[lag] += w * (centered * past - s.products[lag]);
            }
            s.recent[head] = x as f32;
            s.head = ((head + 1) % len) as u32;
            s.count = s.count.saturating_add(1);
        }
        if self.state.count.is_multiple_of(config.check_every) {
            let period = self.choose_period();
            if period != self.state.period {
                self.restart_profile(period);
            }
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::encode(KIND, SNAPSHOT_VERSION, &self.state)
    }

    fn restore(&mut self, snapshot: &Snapshot) -> Result<()> {
        let state: SeasonalState = snapshot.decode(KIND, SNAPSHOT_VERSION)?;
        let size = self.config.max_period + 1;
        let consistent = state.recent.len() == size
            && state.products.len() == size
            && (state.head as usize) < size
            && state.offsets.len() == state.period as usize
            && (state.period == 0 || state.phase < state.period);
        if !consistent {
            return Err(Error::SnapshotCorrupt {
                kind: KIND.into(),
                message: format!(
                    "the snapshot does not fit a max_period of {}",
                    self.config.max_period
                ),
            });
        }
        self.state = state;
        Ok(())
    }

    fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + 4 * (self.state.recent.capacity()
                + self.state.products.capacity()
                + self.state.offsets.capacity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A daily-like cycle of `period` points: a plateau for the first third, low otherwise,
    /// with a little deterministic noise.
    fn cycle_value(i: usize, period: usize) -> f64 {
        let base = if i % period < period / 3 { 80.0 } else { 20.0 };
        base + ((i * 7919) % 13) as f64 / 13.0
    }

    fn feed(d: &mut Seasonal, values: impl IntoIterator<Item = f64>) {
        for (i, v) in values.into_iter().enumerate() {
            d.update(&Features::first(i as i64, v));
        }
    }

    #[test]
    fn finds_the_period_and_scores_a_missing_peak() {
        let mut d = Seasonal::new(SeasonalConfig::default()).unwrap();
        feed(&mut d, (0..2000).map(|i| cycle_value(i, 48)));
        assert_eq!(d.period(), Some(48));
        // The next point (2000 % 48 = 32, low phase) at the high value is far off...
        let next = 2000;
        assert!(next % 48 >= 16);
        let wrong = d.score(&Features::first(0, 80.0)).unwrap().score;
        let right = d
            .score(&Features::first(0, cycle_value(next, 48)))
            .unwrap()
            .score;
        assert!(wrong > 10.0 && right < 3.0, "wrong {wrong}, right {right}");
        // ...while a level model would have found 80 quite ordinary for this series.
    }

    #[test]
    fn a_series_without_a_cycle_has_no_period() {
        let mut d = Seasonal::new(SeasonalConfig::default()).unwrap();
        // A pseudo-random walk.
        let mut x = 0.0;
        let mut seed = 12345u64;
        feed(
            &mut d,
            (0..3000).map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                x += ((seed >> 33) as f64 / (1u64 << 31) as f64) - 0.5;
                x
            }),
        );
        assert_eq!(d.period(), None);
        assert!(d.score(&Features::first(0, x)).unwrap().score < 3.0);
    }

    #[test]
    fn snapshots_round_trip_and_are_checked() {
        let mut d = Seasonal::new(SeasonalConfig::default()).unwrap();
        feed(&mut d, (0..500).map(|i| cycle_value(i, 24)));
        let mut e = Seasonal::new(SeasonalConfig::default()).unwrap();
        e.restore(&d.snapshot()).unwrap();
        assert_eq!(d, e);
        let mut other = Seasonal::new(SeasonalConfig {
            max_period: 100,
            ..SeasonalConfig::default()
        })
        .unwrap();
        assert!(other.restore(&d.snapshot()).is_err());
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        for config in [
            SeasonalConfig {
                min_period: 1,
                ..SeasonalConfig::default()
            },
            SeasonalConfig {
                max_period: MAX_PERIOD + 1,
                ..SeasonalConfig::default()
            },
            SeasonalConfig {
                level_alpha: 0.0,
                ..SeasonalConfig::default()
            },
            SeasonalConfig {
                check_every: 0,
                ..SeasonalConfig::default()
            },
        ] {
            assert!(Seasonal::new(config).is_err(), "{config:?}");
        }
    }
}
