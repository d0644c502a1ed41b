//! Page–Hinkley test (Page 1954, Hinkley 1971): a cumulative sum of the stream's deviations
//! from its running mean that signals when the sum climbs (or falls) further than `threshold`
//! from its lowest (highest) point, i.e. when the mean has moved up (down) for long enough.
//!
//! `delta` is the size of change the test tolerates. Both `delta` and `threshold` are given in
//! units of the stream's standard deviation measured over the first `min_points` points
//! (`units = "sigma"`, the default), so one configuration fits streams of any scale; River and
//! MOA take them in the stream's own units (`units = "absolute"`).

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::features::EwStats;
use crate::params;

/// In which units `delta` and `threshold` are given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Units {
    /// Multiples of the standard deviation of the first `min_points` points.
    Sigma,
    /// The stream's own units.
    Absolute,
}

/// Which changes of the mean the test reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Increases only.
    Up,
    /// Decreases only.
    Down,
    /// Both.
    Both,
}

/// Page–Hinkley's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PageHinkleyConfig {
    /// Points observed before the test may fire (and over which the sigma unit is measured).
    pub min_points: u64,
    /// Tolerated drift of the mean per point.
    pub delta: f64,
    /// How far the cumulative sum must move from its extreme to signal.
    pub threshold: f64,
    /// Forgetting factor of the cumulative sums, in (0, 1]: 1 remembers everything.
    pub alpha: f64,
    /// Units of `delta` and `threshold`.
    pub units: Units,
    /// Which changes to report.
    pub direction: Direction,
}

impl Default for PageHinkleyConfig {
    fn default() -> Self {
        PageHinkleyConfig {
            min_points: 30,
            delta: 0.5,
            threshold: 20.0,
            alpha: 1.0,
            units: Units::Sigma,
            direction: Direction::Both,
        }
    }
}

impl PageHinkleyConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        params::non_negative("page_hinkley", &[("delta", self.delta)])?;
        params::positive("page_hinkley", &[("threshold", self.threshold)])?;
        params::alpha("page_hinkley", self.alpha)?;
        if self.min_points < 2 {
            return Err(crate::Error::config(
                "page_hinkley",
                "min_points must be at least 2",
            ));
        }
        Ok(())
    }
}

/// A detected change of the mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PageHinkleyAlarm {
    /// How far the cumulative sum had moved from its extreme, in the configured units.
    pub statistic: f64,
    /// The threshold, in the same units.
    pub threshold: f64,
    /// Whether the mean went up.
    pub up: bool,
}

/// The test's state; it starts over after every alarm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageHinkley {
    config: PageHinkleyConfig,
    /// Running mean (plain) and, during warm-up, the spread that fixes the sigma unit.
    stats: EwStats,
    /// Scale of `delta` and `threshold` in stream units, fixed when warm-up ends.
    unit: f64,
    up_sum: f64,
    up_min: f64,
    down_sum: f64,
    down_max: f64,
}

impl PageHinkley {
    /// A fresh test.
    pub fn new(config: PageHinkleyConfig) -> Result<PageHinkley> {
        config.validate()?;
        Ok(PageHinkley::fresh(config))
    }

    fn fresh(config: PageHinkleyConfig) -> PageHinkley {
        PageHinkley {
            config,
            stats: EwStats::new(),
            unit: 1.0,
            up_sum: 0.0,
            up_min: 0.0,
            down_sum: 0.0,
            down_max: 0.0,
        }
    }

    /// Adds a point; returns an alarm if the mean changed. Non-finite points are ignored.
    pub fn update(&mut self, x: f64) -> Option<PageHinkleyAlarm> {
        if !x.is_finite() {
            return None;
        }
        // The smallest alpha makes EwStats weigh every point 1/n: a plain running mean.
        self.stats.update(x, f64::MIN_POSITIVE);
        let count = self.stats.count();
        if count < self.config.min_points {
            return None;
        }
        if count == self.config.min_points {
            self.unit = match self.config.units {
                Units::Absolute => 1.0,
                // A constant warm-up has no spread; fall back to the scale of its values so a
                // later jump is still measured in sensible units.
                Units::Sigma => {
                    let std = self.stats.std();
                    if std > 0.0 {
                        std
                    } else {
                        self.stats.mean().abs().max(1.0) * 1e-3
                    }
                }
            };
        }
        let deviation = x - self.stats.mean();
        let delta = self.config.delta * self.unit;
        let alpha = self.config.alpha;
        self.up_sum = alpha * self.up_sum + deviation - delta;
        self.up_min = self.up_min.min(self.up_sum);
        self.down_sum = alpha * self.down_sum + deviation + delta;
        self.down_max = self.down_max.max(self.down_sum);
        let up = (self.up_sum - self.up_min) / self.unit;
        let down = (self.down_max - self.down_sum) / self.unit;
        let threshold = self.config.threshold;
        let alarm = match self.config.direction {
            Direction::Up | Direction::Both if up > threshold => Some((up, true)),
            Direction::Down | Direction::Both if down > threshold => Some((down, false)),
            _ => None,
        };
        alarm.map(|(statistic, up)| {
            *self = PageHinkley::fresh(self.config);
            PageHinkleyAlarm {
                statistic,
                threshold,
                up,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::test_noise as noise;

    #[test]
    fn by_hand_in_absolute_units() {
        // min_points 2, delta 0, threshold 2.5: after 0, 0 the mean is 0; then 2, 2 push the
        // up sum to (2 − 2/3) = 1.33, then + (2 − 1) = 2.33, then 3 adds 3 − 1.4 = 1.6 → 3.93.
        let mut test = PageHinkley::new(PageHinkleyConfig {
            min_points: 2,
            delta: 0.0,
            threshold: 2.5,
            units: Units::Absolute,
            direction: Direction::Up,
            ..PageHinkleyConfig::default()
        })
        .unwrap();
        for x in [0.0, 0.0, 2.0, 2.0] {
            assert_eq!(test.update(x), None);
        }
        let alarm = test.update(3.0).expect("alarm");
        assert!(
            (alarm.statistic - (4.0 / 3.0 + 1.0 + 1.6)).abs() < 1e-9,
            "{alarm:?}"
        );
        assert!(alarm.up);
        // It starts over.
        assert_eq!(test.stats.count(), 0);
    }

    #[test]
    fn stationary_noise_raises_no_alarm_in_sigma_units_at_any_scale() {
        for scale in [1e-3, 1.0, 1e6] {
            let mut test = PageHinkley::new(PageHinkleyConfig::default()).unwrap();
            let mut seed = 5;
            let alarms = (0..20_000)
                .filter(|_| {
                    test.update(100.0 * scale + scale * noise(&mut seed))
                        .is_some()
                })
                .count();
            assert_eq!(alarms, 0, "scale {scale}");
        }
    }

    #[test]
    fn shifts_up_and_down_are_caught_with_their_direction() {
        for (shift, up) in [(2.0, true), (-2.0, false)] {
            let mut test = PageHinkley::new(PageHinkleyConfig::default()).unwrap();
            let mut seed = 9;
            for _ in 0..1000 {
                assert_eq!(test.update(noise(&mut seed)), None);
            }
            let (delay, alarm) = (1..=200)
                .find_map(|i| test.update(noise(&mut seed) + shift).map(|a| (i, a)))
                .expect("a 2 σ shift is caught");
            assert!(delay <= 30, "delay {delay}");
            assert_eq!(alarm.up, up);
        }
    }

    #[test]
    fn direction_filters_alarms() {
        let mut test = PageHinkley::new(PageHinkleyConfig {
            direction: Direction::Up,
            ..PageHinkleyConfig::default()
        })
        .unwrap();
        let mut seed = 1;
        for _ in 0..500 {
            test.update(noise(&mut seed));
        }
        assert!((0..500).all(|_| test.update(noise(&mut seed) - 3.0).is_none()));
    }
}
