//! ADWIN (Bifet & Gavaldà, "Learning from time-changing data with adaptive windowing", 2007):
//! a window over a stream that drops its oldest part whenever the means of an old and a recent
//! part differ by more than chance allows, so a drop is a detected change of the mean.
//!
//! The window is kept as an exponential histogram — rows of buckets holding 1, 2, 4, … points,
//! each with its sum and sum of squared deviations — so memory is O(M·log W) for a window of W
//! points and at most M buckets per row, and a check for a cut costs as much.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::params;

/// ADWIN's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdwinConfig {
    /// Confidence: a cut is made when the chance that the two parts have the same mean is
    /// below this. Smaller means fewer false alarms and later detections.
    pub delta: f64,
    /// Look for a cut every this many points (the check walks every bucket).
    pub clock: u32,
    /// Buckets per row before the two oldest are merged: more means finer cut points.
    pub max_buckets: usize,
    /// Neither part of a cut may hold fewer points than this.
    pub min_part: u64,
}

impl Default for AdwinConfig {
    fn default() -> Self {
        AdwinConfig {
            delta: 0.002,
            clock: 32,
            max_buckets: 5,
            min_part: 5,
        }
    }
}

impl AdwinConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        params::positive("adwin", &[("delta", self.delta)])?;
        if self.delta >= 1.0 || self.clock == 0 || self.max_buckets < 2 || self.min_part == 0 {
            return Err(crate::Error::config(
                "adwin",
                "delta must be in (0, 1), clock and min_part at least 1, max_buckets at least 2",
            ));
        }
        Ok(())
    }
}

/// Points are clamped to ±this before they are learnt: sums and squared deviations of values
/// near `f64::MAX` would overflow to infinity (two points of 1e308 already do), and a value this
/// far out is a change of the mean whatever its exact size.
const MAGNITUDE_LIMIT: f64 = 1e100;

/// Sum and sum of squared deviations of the points in one bucket; the count is implied by the
/// bucket's row (2^row points).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Bucket {
    sum: f64,
    squares: f64,
}

/// A detected change: the two parts' means differed by `difference`, more than `threshold`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdwinCut {
    /// |mean of the older part − mean of the newer part| at the cut.
    pub difference: f64,
    /// The bound it exceeded.
    pub threshold: f64,
    /// Points dropped from the window.
    pub dropped: u64,
}

/// The adaptive window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adwin {
    config: AdwinConfig,
    /// Row `i` holds buckets of 2^i points, oldest first; higher rows hold older points.
    rows: Vec<VecDeque<Bucket>>,
    width: u64,
    sum: f64,
    /// Sum of squared deviations from the window's mean.
    squares: f64,
    since_check: u32,
}

impl Adwin {
    /// An empty window.
    pub fn new(config: AdwinConfig) -> Result<Adwin> {
        config.validate()?;
        Ok(Adwin {
            config,
            rows: Vec::new(),
            width: 0,
            sum: 0.0,
            squares: 0.0,
            since_check: 0,
        })
    }

    /// Points in the window.
    pub fn width(&self) -> u64 {
        self.width
    }

    /// Mean of the window (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.width == 0 {
            0.0
        } else {
            self.sum / self.width as f64
        }
    }

    /// Adds a point; returns the cut if the window shrank because its mean changed. Non-finite
    /// points are ignored; finite ones beyond ±1e100 count as ±1e100.
    pub fn update(&mut self, x: f64) -> Option<AdwinCut> {
        if !x.is_finite() {
            return None;
        }
        let x = x.clamp(-MAGNITUDE_LIMIT, MAGNITUDE_LIMIT);
        if self.width > 0 {
            let before = self.width as f64;
            let deviation = x - self.sum / before;
            self.squares += before * deviation * deviation / (before + 1.0);
        }
        self.width += 1;
        self.sum += x;
        if self.rows.is_empty() {
            self.rows.push(VecDeque::new());
        }
        self.rows[0].push_back(Bucket {
            sum: x,
            squares: 0.0,
        });
        self.compress();
        self.since_check += 1;
        if self.since_check < self.config.clock {
            return None;
        }
        self.since_check = 0;
        let mut detected: Option<AdwinCut> = None;
        while let Some((difference, threshold)) = self.find_cut() {
            let dropped = self.drop_oldest();
            let cut = detected.get_or_insert(AdwinCut {
                difference,
                threshold,
                dropped: 0,
            });
            cut.dropped += dropped;
        }
        detected
    }

    /// Merges the two oldest buckets of any row that has grown past `max_buckets`.
    fn compress(&mut self) {
        let mut row = 0;
        while row < self.rows.len() && self.rows[row].len() > self.config.max_buckets {
            let size = (1u64 << row) as f64;
            let (Some(a), Some(b)) = (self.rows[row].pop_front(), self.rows[row].pop_front())
            else {
                break;
            };
            let gap = a.sum / size - b.sum / size;
            let merged = Bucket {
                sum: a.sum + b.sum,
                squares: a.squares + b.squares + size * size / (2.0 * size) * gap * gap,
            };
            if row + 1 == self.rows.len() {
                self.rows.push(VecDeque::new());
            }
            self.rows[row + 1].push_back(merged);
            row += 1;
        }
    }

    /// Oldest buckets first, with their sizes.
    fn buckets_oldest_first(&self) -> impl Iterator<Item = (u64, &Bucket)> {
        self.rows
            .iter()
            .enumerate()
            .rev()
            .flat_map(|(row, buckets)| buckets.iter().map(move |b| (1u64 << row, b)))
    }

    /// The first split, oldest side first, whose two parts' means differ by more than ADWIN's
    /// bound; returns (difference, bound).
    fn find_cut(&self) -> Option<(f64, f64)> {
        if self.width < 2 * self.config.min_part {
            return None;
        }
        let width = self.width as f64;
        let variance = self.squares / width;
        // δ' = δ / ln(W): the union bound over the cut points examined.
        let log_term = (2.0 * width.ln().max(1.0) / self.config.delta).ln();
        let mut old_count = 0u64;
        let mut old_sum = 0.0;
        for (size, bucket) in self.buckets_oldest_first() {
            old_count += size;
            old_sum += bucket.sum;
            let new_count = self.width - old_count;
            if new_count < self.config.min_part {
                break;
            }
            if old_count < self.config.min_part {
                continue;
            }
            let (n0, n1) = (old_count as f64, new_count as f64);
            let difference = (old_sum / n0 - (self.sum - old_sum) / n1).abs();
            let m = 1.0 / (1.0 / n0 + 1.0 / n1);
            let bound = (2.0 / m * variance * log_term).sqrt() + 2.0 / (3.0 * m) * log_term;
            if difference > bound {
                return Some((difference, bound));
            }
        }
        None
    }

    /// Drops the oldest bucket; returns how many points it held.
    fn drop_oldest(&mut self) -> u64 {
        let Some(row) = self.rows.iter().rposition(|r| !r.is_empty()) else {
            return 0;
        };
        let Some(bucket) = self.rows[row].pop_front() else {
            return 0;
        };
        let size = 1u64 << row;
        let rest = self.width - size;
        if rest == 0 {
            self.width = 0;
            self.sum = 0.0;
            self.squares = 0.0;
        } else {
            let (n_b, n_r) = (size as f64, rest as f64);
            let rest_sum = self.sum - bucket.sum;
            let gap = bucket.sum / n_b - rest_sum / n_r;
            self.squares =
                (self.squares - bucket.squares - n_b * n_r / (n_b + n_r) * gap * gap).max(0.0);
            self.sum = rest_sum;
            self.width = rest;
        }
        while self.rows.last().is_some_and(VecDeque::is_empty) {
            self.rows.pop();
        }
        size
    }

    /// Heap bytes held (for state-size accounting).
    pub fn size_bytes(&self) -> usize {
        self.rows
            .iter()
            .map(|r| r.capacity() * std::mem::size_of::<Bucket>())
            .sum::<usize>()
            + self.rows.capacity() * std::mem::size_of::<VecDeque<Bucket>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::test_noise as noise;

    /// Regression: two points near `f64::MAX` (found by the `adwin_never_holds_more_than_it_was_given`
    /// property test) summed to infinity and the mean was no longer finite.
    #[test]
    fn values_near_the_largest_float_keep_the_window_finite_and_still_cut() {
        let mut adwin = Adwin::new(AdwinConfig {
            clock: 1,
            ..AdwinConfig::default()
        })
        .unwrap();
        for _ in 0..100 {
            adwin.update(1.0);
        }
        let mut cut = None;
        for x in [8.408513908586246e307, 1.0989371040610713e308].repeat(20) {
            cut = cut.or(adwin.update(x));
            assert!(adwin.mean().is_finite() && adwin.squares.is_finite());
        }
        assert!(cut.is_some_and(|c| c.difference.is_finite()), "{cut:?}");
        assert!(adwin.mean() > 1e99);
    }

    #[test]
    fn window_statistics_match_brute_force() {
        let mut adwin = Adwin::new(AdwinConfig {
            clock: u32::MAX,
            ..AdwinConfig::default()
        })
        .unwrap();
        let mut seed = 7;
        let values: Vec<f64> = (0..1000).map(|_| noise(&mut seed) * 3.0 + 1.0).collect();
        for &x in &values {
            adwin.update(x);
        }
        let mean = values.iter().sum::<f64>() / 1000.0;
        let squares: f64 = values.iter().map(|x| (x - mean).powi(2)).sum();
        assert_eq!(adwin.width(), 1000);
        assert!((adwin.mean() - mean).abs() < 1e-9);
        assert!((adwin.squares - squares).abs() < 1e-6 * squares);
        // Buckets hold every point once, and rows never exceed max_buckets.
        let held: u64 = adwin.buckets_oldest_first().map(|(size, _)| size).sum();
        assert_eq!(held, 1000);
        assert!(adwin.rows.iter().all(|r| r.len() <= 5));
        let bucket_sum: f64 = adwin.buckets_oldest_first().map(|(_, b)| b.sum).sum();
        assert!((bucket_sum - adwin.sum).abs() < 1e-9);
    }

    #[test]
    fn stationary_noise_keeps_the_window_growing() {
        let mut adwin = Adwin::new(AdwinConfig::default()).unwrap();
        let mut seed = 11;
        let cuts = (0..20_000)
            .filter(|_| adwin.update(noise(&mut seed)).is_some())
            .count();
        assert_eq!(cuts, 0);
        assert_eq!(adwin.width(), 20_000);
    }

    #[test]
    fn a_mean_shift_is_cut_soon_and_the_window_forgets_the_old_mean() {
        let mut adwin = Adwin::new(AdwinConfig::default()).unwrap();
        let mut seed = 3;
        for _ in 0..2000 {
            assert!(adwin.update(noise(&mut seed)).is_none());
        }
        let delay = (1..=500)
            .find(|_| adwin.update(noise(&mut seed) + 1.0).is_some())
            .expect("a shift of 1 σ is detected");
        assert!(delay <= 100, "detected after {delay} points");
        for _ in 0..500 {
            adwin.update(noise(&mut seed) + 1.0);
        }
        assert!((adwin.mean() - 1.0).abs() < 0.1, "mean {}", adwin.mean());
        assert!(adwin.width() < 1000);
    }

    #[test]
    fn non_finite_points_are_ignored() {
        let mut adwin = Adwin::new(AdwinConfig::default()).unwrap();
        assert!(adwin.update(f64::NAN).is_none());
        assert!(adwin.update(f64::INFINITY).is_none());
        assert_eq!(adwin.width(), 0);
    }

    #[test]
    fn bad_parameters_are_refused() {
        for config in [
            AdwinConfig {
                delta: 0.0,
                ..AdwinConfig::default()
            },
            AdwinConfig {
                delta: 1.5,
                ..AdwinConfig::default()
            },
            AdwinConfig {
                max_buckets: 1,
                ..AdwinConfig::default()
            },
        ] {
            assert!(Adwin::new(config).is_err(), "{config:?}");
        }
    }
}
