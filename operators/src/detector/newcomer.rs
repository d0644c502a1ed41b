//! The newcomer detector: speaks for a series' first points, while the other detectors and
//! their calibration have no basis yet, and then falls silent.
//!
//! A series deployed yesterday has a few dozen points. A z-score against them is not a normal
//! deviate: its mean and spread are themselves uncertain, so the next point follows a Student t
//! distribution with n − 1 degrees of freedom, scaled by `s·√(1 + 1/n)`. This detector scores
//! that t value as the sigma-equivalent of its tail (Wallace's approximation), so a spike among
//! twelve points weighs what it should — less than among a thousand. The score it gives is the
//! excess of that sigma-equivalent over `offset` (3), three points of score per `offset`: the
//! ensemble's warning level 2 needs a 5σ-equivalent surprise, which pure luck gives about once
//! in two million points. Values more than
//! `clip_sigma` spreads away are learnt clipped, so one incident does not hide the next. After
//! `handover` points it abstains: the calibrated detectors have taken over.

use serde::{Deserialize, Serialize};

use aiops_schemas::Band;

use super::{Detector, Score, Snapshot};
use crate::calibration::score_beyond;
use crate::error::{Error, Result};
use crate::features::{EwStats, Features, Input};
use crate::params;

/// Registry name.
pub const KIND: &str = "newcomer";
const SNAPSHOT_VERSION: u16 = 1;

/// Parameters of the newcomer detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewcomerConfig {
    /// The feature scored.
    pub input: Input,
    /// Points learnt before the first score.
    pub min_points: u32,
    /// Points after which it abstains.
    pub handover: u32,
    /// The sigma-equivalent that scores 0; each `offset / 3` beyond it adds 1.
    pub offset: f64,
    /// Values farther than this many spreads from the mean are learnt clipped.
    pub clip_sigma: f64,
}

impl Default for NewcomerConfig {
    fn default() -> Self {
        NewcomerConfig {
            input: Input::Value,
            min_points: 8,
            handover: 100,
            offset: 3.0,
            clip_sigma: 4.0,
        }
    }
}

impl NewcomerConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        params::positive(
            KIND,
            &[("offset", self.offset), ("clip_sigma", self.clip_sigma)],
        )?;
        if self.min_points < 3 {
            return Err(Error::config(
                KIND,
                format!("min_points must be 3 or more, not {}", self.min_points),
            ));
        }
        Ok(())
    }
}

/// The newcomer detector for one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Newcomer {
    config: NewcomerConfig,
    /// Mean and variance of the values learnt, plain (the smoothing factor is far below 1/n
    /// for every n before the handover).
    stats: EwStats,
}

/// Small enough that [`EwStats`] weighs every point 1/n: a plain running mean and variance.
const PLAIN: f64 = 1e-12;

impl Newcomer {
    /// A detector with no history.
    pub fn new(config: NewcomerConfig) -> Result<Newcomer> {
        config.validate()?;
        Ok(Newcomer {
            config,
            stats: EwStats::new(),
        })
    }

    /// The sample standard deviation, floored so a flat start still has a scale.
    fn spread(&self) -> f64 {
        let n = self.stats.count() as f64;
        let sample = (self.stats.variance() * n / (n - 1.0).max(1.0))
            .max(0.0)
            .sqrt();
        sample.max(1e-9).max(1e-4 * self.stats.mean().abs())
    }

    fn speaking(&self) -> bool {
        (u64::from(self.config.min_points)..u64::from(self.config.handover))
            .contains(&self.stats.count())
    }
}

/// The sigma-equivalent of a Student t value with `dof` degrees of freedom (Wallace 1959:
/// `z = √(ν·ln(1 + t²/ν))·(8ν + 1)/(8ν + 3)`, good to a few hundredths in the tails).
fn sigma_of_t(t: f64, dof: f64) -> f64 {
    let t = t.abs();
    (dof * (t * t / dof).ln_1p()).sqrt() * (8.0 * dof + 1.0) / (8.0 * dof + 3.0)
}

impl Detector for Newcomer {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(self.config).unwrap_or_default()
    }

    #[inline]
    fn score(&self, features: &Features) -> Option<Score> {
        if !self.speaking() {
            return None;
        }
        let x = features.get(self.config.input);
        let (n, mean) = (self.stats.count() as f64, self.stats.mean());
        let scale = self.spread() * (1.0 + 1.0 / n).sqrt();
        let sigma = sigma_of_t((x - mean) / scale, n - 1.0);
        let offset = self.config.offset;
        Some(Score {
            score: score_beyond(sigma, offset),
            expected: Band {
                lower: mean - offset * scale,
                upper: mean + offset * scale,
            },
        })
    }

    /// The t distribution is its calibration.
    fn self_calibrated(&self) -> bool {
        true
    }

    #[inline]
    fn update(&mut self, features: &Features) {
        let mut x = features.get(self.config.input);
        let count = self.stats.count();
        if !x.is_finite() || count >= u64::from(self.config.handover) {
            return;
        }
        if count >= u64::from(self.config.min_points) {
            let (mean, limit) = (self.stats.mean(), self.config.clip_sigma * self.spread());
            x = mean + (x - mean).clamp(-limit, limit);
        }
        self.stats.update(x, PLAIN);
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

    fn feed(d: &mut Newcomer, values: &[f64]) {
        for (i, &v) in values.iter().enumerate() {
            d.update(&Features::first(i as i64, v));
        }
    }

    #[test]
    fn the_sigma_of_a_t_value_tends_to_the_normal_one_and_is_smaller_with_few_points() {
        assert!((sigma_of_t(3.0, 10_000.0) - 3.0).abs() < 0.01);
        assert!(sigma_of_t(3.0, 10.0) < 2.6);
        // t = 4.587 is the two-sided 0.1 % point of t with 10 degrees of freedom: 3.29σ.
        assert!(
            (sigma_of_t(4.587, 10.0) - 3.29).abs() < 0.05,
            "{}",
            sigma_of_t(4.587, 10.0)
        );
    }

    #[test]
    fn speaks_from_min_points_to_the_handover_and_sees_a_spike_among_a_few_points() {
        let mut d = Newcomer::new(NewcomerConfig::default()).unwrap();
        let noise = [10.0, 10.4, 9.7, 10.1, 9.9, 10.3, 9.6, 10.0, 10.2, 9.8];
        assert_eq!(d.score(&Features::first(0, 30.0)), None);
        feed(&mut d, &noise);
        // An ordinary value scores 0, a spike of fifty spreads scores far above the warning.
        assert_eq!(d.score(&Features::first(0, 10.3)).unwrap().score, 0.0);
        assert!(d.score(&Features::first(0, 20.0)).unwrap().score > 3.0);
        // The spike is learnt clipped: the next one is still seen.
        d.update(&Features::first(10, 20.0));
        assert!(d.score(&Features::first(0, 20.0)).unwrap().score > 3.0);
        for i in 0..100 {
            d.update(&Features::first(11 + i, 10.0));
        }
        assert_eq!(d.score(&Features::first(0, 1e6)), None, "handed over");
        let mut e = Newcomer::new(NewcomerConfig::default()).unwrap();
        e.restore(&d.snapshot()).unwrap();
        assert_eq!(d, e);
        assert!(
            NewcomerConfig {
                min_points: 2,
                ..NewcomerConfig::default()
            }
            .validate()
            .is_err()
        );
    }
}
