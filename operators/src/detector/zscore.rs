//! The z-score detector: distance from an exponentially weighted mean, in exponentially weighted
//! standard deviations.
//!
//! Cheap (24 bytes of learnt state, a handful of flops per point) and quick to adapt, it is the
//! first line of most alerting. Two details keep it honest on real series: outliers are clipped
//! to `clip_sigma` before they are learnt, so one spike does not inflate the spread and hide the
//! next; and the spread has a floor, so a perfectly flat series does not divide by zero.

use serde::{Deserialize, Serialize};

use aiops_schemas::Band;

use super::{Detector, Score, Snapshot};
use crate::error::{Error, Result};
use crate::features::{EwStats, Features, Input};
use crate::params;

/// Registry name.
pub const KIND: &str = "zscore";
const SNAPSHOT_VERSION: u16 = 1;

/// Parameters of the z-score detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZScoreConfig {
    /// The feature scored.
    pub input: Input,
    /// EWMA smoothing factor in (0, 1]; the memory is about `1/alpha` points.
    pub alpha: f64,
    /// Points learnt before the first score.
    pub warmup: u32,
    /// Half-width of the expected band, in standard deviations.
    pub band_sigma: f64,
    /// Deviations beyond this many standard deviations are learnt as if they were this large.
    pub clip_sigma: f64,
    /// Smallest standard deviation used, absolute.
    pub min_std: f64,
    /// Smallest standard deviation used, as a fraction of |mean|.
    pub relative_min_std: f64,
}

impl Default for ZScoreConfig {
    fn default() -> Self {
        ZScoreConfig {
            input: Input::Value,
            alpha: 0.02,
            warmup: 30,
            band_sigma: 3.0,
            clip_sigma: 4.0,
            min_std: 1e-9,
            relative_min_std: 1e-4,
        }
    }
}

impl ZScoreConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        params::alpha(KIND, self.alpha)?;
        params::positive(
            KIND,
            &[
                ("band_sigma", self.band_sigma),
                ("clip_sigma", self.clip_sigma),
            ],
        )?;
        params::non_negative(
            KIND,
            &[
                ("min_std", self.min_std),
                ("relative_min_std", self.relative_min_std),
            ],
        )
    }
}

/// The z-score detector for one series.
#[derive(Debug, Clone, PartialEq)]
pub struct ZScore {
    config: ZScoreConfig,
    stats: EwStats,
}

impl ZScore {
    /// A detector with no history.
    pub fn new(config: ZScoreConfig) -> Result<ZScore> {
        config.validate()?;
        Ok(ZScore {
            config,
            stats: EwStats::new(),
        })
    }

    fn spread(&self) -> f64 {
        let floor = self
            .config
            .min_std
            .max(self.config.relative_min_std * self.stats.mean().abs());
        self.stats.std().max(floor)
    }

    fn warm(&self) -> bool {
        self.stats.count() >= u64::from(self.config.warmup)
    }
}

impl Detector for ZScore {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(self.config).unwrap_or_default()
    }

    #[inline]
    fn score(&self, features: &Features) -> Option<Score> {
        if !self.warm() {
            return None;
        }
        let x = features.get(self.config.input);
        if !x.is_finite() {
            return None;
        }
        let (mean, spread) = (self.stats.mean(), self.spread());
        let half_band = self.config.band_sigma * spread;
        Some(Score {
            score: ((x - mean) / spread).abs(),
            expected: Band {
                lower: mean - half_band,
                upper: mean + half_band,
            },
        })
    }

    #[inline]
    fn update(&mut self, features: &Features) {
        let mut x = features.get(self.config.input);
        if !x.is_finite() {
            return;
        }
        if self.warm() {
            let (mean, limit) = (self.stats.mean(), self.config.clip_sigma * self.spread());
            x = mean + (x - mean).clamp(-limit, limit);
        }
        self.stats.update(x, self.config.alpha);
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::encode(KIND, SNAPSHOT_VERSION, &self.stats)
    }

    fn restore(&mut self, snapshot: &Snapshot) -> Result<()> {
        let stats: EwStats = snapshot.decode(KIND, SNAPSHOT_VERSION)?;
        if !(stats.mean().is_finite() && stats.variance().is_finite() && stats.variance() >= 0.0) {
            return Err(Error::SnapshotCorrupt {
                kind: KIND.into(),
                message: "mean or variance is not a finite number".into(),
            });
        }
        self.stats = stats;
        Ok(())
    }

    fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(i: i64, value: f64) -> Features {
        Features::first(i * 1000, value)
    }

    #[test]
    fn warms_up_then_scores_distance_in_standard_deviations() {
        let mut z = ZScore::new(ZScoreConfig {
            warmup: 4,
            alpha: 0.01,
            ..ZScoreConfig::default()
        })
        .unwrap();
        // 9, 11, 9, 11: plain mean 10 and population variance 1 during warm-up.
        for (i, v) in [9.0, 11.0, 9.0, 11.0].into_iter().enumerate() {
            assert_eq!(z.observe(&features(i as i64, v)), None);
        }
        let s = z.score(&features(4, 13.0)).unwrap();
        assert!((s.score - 3.0).abs() < 1e-12, "{}", s.score);
        assert!((s.expected.lower - 7.0).abs() < 1e-12);
        assert!((s.expected.upper - 13.0).abs() < 1e-12);
    }

    #[test]
    fn clipping_keeps_a_spike_from_hiding_the_next() {
        let config = ZScoreConfig {
            warmup: 10,
            ..ZScoreConfig::default()
        };
        let mut clipped = ZScore::new(config).unwrap();
        let mut unclipped = ZScore::new(ZScoreConfig {
            clip_sigma: 1e9,
            ..config
        })
        .unwrap();
        for i in 0..200 {
            let v = if i % 2 == 0 { 9.0 } else { 11.0 };
            clipped.update(&features(i, v));
            unclipped.update(&features(i, v));
        }
        clipped.update(&features(200, 1000.0));
        unclipped.update(&features(200, 1000.0));
        let next = features(201, 20.0);
        assert!(clipped.score(&next).unwrap().score > 5.0);
        assert!(unclipped.score(&next).unwrap().score < 1.0);
    }

    #[test]
    fn flat_series_uses_the_spread_floor() {
        let mut z = ZScore::new(ZScoreConfig::default()).unwrap();
        for i in 0..100 {
            z.update(&features(i, 100.0));
        }
        assert_eq!(z.score(&features(100, 100.0)).unwrap().score, 0.0);
        let s = z.score(&features(100, 101.0)).unwrap().score;
        assert!(s.is_finite() && s > 10.0, "{s}");
    }

    #[test]
    fn restore_rejects_foreign_and_corrupt_snapshots() {
        let mut z = ZScore::new(ZScoreConfig::default()).unwrap();
        z.update(&features(0, 1.0));
        let before = z.clone();
        let foreign = Snapshot::encode("mad", 1, &0u8);
        assert!(z.restore(&foreign).is_err());
        let nan = Snapshot::encode(KIND, SNAPSHOT_VERSION, &(f64::NAN, 1.0f64, 3u64));
        assert!(z.restore(&nan).is_err());
        assert_eq!(z, before);
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        for config in [
            ZScoreConfig {
                alpha: 0.0,
                ..ZScoreConfig::default()
            },
            ZScoreConfig {
                alpha: f64::NAN,
                ..ZScoreConfig::default()
            },
            ZScoreConfig {
                band_sigma: -1.0,
                ..ZScoreConfig::default()
            },
            ZScoreConfig {
                min_std: -1.0,
                ..ZScoreConfig::default()
            },
        ] {
            assert!(ZScore::new(config).is_err(), "{config:?}");
        }
    }
}
