//! The MAD detector: distance from the rolling median, in robust standard deviations estimated
//! from the median absolute deviation.
//!
//! Where the z-score's mean and spread are dragged by every outlier, the median and MAD ignore
//! anything short of half the window, so the MAD detector keeps a tight band on spiky series. The
//! MAD is scaled by 1.4826 to estimate a normal standard deviation; when more than half the window
//! is one value (the MAD is zero) the mean absolute deviation, scaled by 1.2533, takes over, and
//! a floor keeps a flat series from dividing by zero.

use serde::{Deserialize, Serialize};

use aiops_schemas::Band;

use super::{Detector, Score, Snapshot};
use crate::error::{Error, Result};
use crate::features::{Features, Input, MAX_WINDOW, RollingWindow};
use crate::params;

/// Registry name.
pub const KIND: &str = "mad";
const SNAPSHOT_VERSION: u16 = 1;
/// MAD × this estimates σ for normal data.
const MAD_TO_SIGMA: f64 = 1.482_602_218_505_602;
/// Mean absolute deviation × this estimates σ for normal data (√(π/2)).
const MEAN_AD_TO_SIGMA: f64 = 1.253_314_137_315_500_3;

/// Parameters of the MAD detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MadConfig {
    /// The feature scored.
    pub input: Input,
    /// Points in the rolling window (1 to 255).
    pub window: usize,
    /// Points learnt before the first score (at most `window`).
    pub warmup: usize,
    /// Half-width of the expected band, in robust standard deviations.
    pub band_sigma: f64,
    /// Smallest robust standard deviation used, absolute.
    pub min_scale: f64,
    /// Smallest robust standard deviation used, as a fraction of |median|.
    pub relative_min_scale: f64,
}

impl Default for MadConfig {
    fn default() -> Self {
        MadConfig {
            input: Input::Value,
            window: 64,
            warmup: 16,
            band_sigma: 3.0,
            min_scale: 1e-9,
            relative_min_scale: 1e-4,
        }
    }
}

impl MadConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_WINDOW).contains(&self.window) {
            return Err(Error::config(
                KIND,
                format!(
                    "window must be 1 to {MAX_WINDOW} points, not {}",
                    self.window
                ),
            ));
        }
        if self.warmup == 0 || self.warmup > self.window {
            return Err(Error::config(
                KIND,
                format!(
                    "warmup must be 1 to window ({}) points, not {}",
                    self.window, self.warmup
                ),
            ));
        }
        params::positive(KIND, &[("band_sigma", self.band_sigma)])?;
        params::non_negative(
            KIND,
            &[
                ("min_scale", self.min_scale),
                ("relative_min_scale", self.relative_min_scale),
            ],
        )
    }
}

/// The MAD detector for one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Mad {
    config: MadConfig,
    window: RollingWindow,
}

impl Mad {
    /// A detector with no history.
    pub fn new(config: MadConfig) -> Result<Mad> {
        config.validate()?;
        Ok(Mad {
            window: RollingWindow::new(config.window)?,
            config,
        })
    }

    /// The median and the robust standard deviation of the window.
    fn center_and_scale(&self) -> Option<(f64, f64)> {
        let median = self.window.median()?;
        let mut scale = self.window.mad(median)? * MAD_TO_SIGMA;
        if scale == 0.0 {
            scale = self.window.mean_absolute_deviation(median)? * MEAN_AD_TO_SIGMA;
        }
        let floor = self
            .config
            .min_scale
            .max(self.config.relative_min_scale * median.abs());
        Some((median, scale.max(floor)))
    }
}

impl Detector for Mad {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(self.config).unwrap_or_default()
    }

    #[inline]
    fn score(&self, features: &Features) -> Option<Score> {
        if self.window.len() < self.config.warmup {
            return None;
        }
        let x = features.get(self.config.input);
        if !x.is_finite() {
            return None;
        }
        let (median, scale) = self.center_and_scale()?;
        let half_band = self.config.band_sigma * scale;
        Some(Score {
            score: ((x - median) / scale).abs(),
            expected: Band {
                lower: median - half_band,
                upper: median + half_band,
            },
        })
    }

    #[inline]
    fn update(&mut self, features: &Features) {
        self.window.push(features.get(self.config.input));
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::encode(KIND, SNAPSHOT_VERSION, &self.window)
    }

    fn restore(&mut self, snapshot: &Snapshot) -> Result<()> {
        let window: RollingWindow = snapshot.decode(KIND, SNAPSHOT_VERSION)?;
        if window.capacity() != self.config.window {
            return Err(Error::SnapshotCorrupt {
                kind: KIND.into(),
                message: format!(
                    "snapshot window holds {} points but this detector is configured for {}",
                    window.capacity(),
                    self.config.window
                ),
            });
        }
        self.window = window;
        Ok(())
    }

    fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>() - std::mem::size_of::<RollingWindow>()
            + self.window.size_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(i: i64, value: f64) -> Features {
        Features::first(i * 1000, value)
    }

    fn mad(window: usize, warmup: usize) -> Mad {
        Mad::new(MadConfig {
            window,
            warmup,
            ..MadConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn scores_distance_from_the_median_in_robust_sigmas() {
        let mut d = mad(5, 5);
        for (i, v) in [1.0, 2.0, 3.0, 4.0, 100.0].into_iter().enumerate() {
            assert_eq!(d.observe(&features(i as i64, v)), None, "warming up");
        }
        // Median 3, MAD 1: 3 + 2·1.4826 is two robust sigmas away; the 100 does not matter.
        let s = d.score(&features(5, 3.0 + 2.0 * MAD_TO_SIGMA)).unwrap();
        assert!((s.score - 2.0).abs() < 1e-12, "{}", s.score);
        assert!((s.expected.upper - (3.0 + 3.0 * MAD_TO_SIGMA)).abs() < 1e-12);
    }

    #[test]
    fn zero_mad_falls_back_to_the_mean_absolute_deviation() {
        let mut d = mad(10, 10);
        // Eight 5s and two 7s: MAD 0, mean absolute deviation 0.4.
        for (i, v) in [5.0, 5.0, 7.0, 5.0, 5.0, 5.0, 7.0, 5.0, 5.0, 5.0]
            .into_iter()
            .enumerate()
        {
            d.update(&features(i as i64, v));
        }
        let s = d.score(&features(10, 7.0)).unwrap();
        assert!(
            (s.score - 2.0 / (0.4 * MEAN_AD_TO_SIGMA)).abs() < 1e-9,
            "{}",
            s.score
        );
    }

    #[test]
    fn restore_checks_the_window_size() {
        let mut small = mad(8, 4);
        let mut large = mad(16, 4);
        for i in 0..20 {
            small.update(&features(i, i as f64));
        }
        let before = large.clone();
        assert!(large.restore(&small.snapshot()).is_err());
        assert_eq!(large, before);
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        for config in [
            MadConfig {
                window: 0,
                ..MadConfig::default()
            },
            MadConfig {
                window: 300,
                ..MadConfig::default()
            },
            MadConfig {
                warmup: 100,
                ..MadConfig::default()
            },
            MadConfig {
                warmup: 0,
                ..MadConfig::default()
            },
            MadConfig {
                band_sigma: 0.0,
                ..MadConfig::default()
            },
        ] {
            assert!(Mad::new(config).is_err(), "{config:?}");
        }
    }
}
