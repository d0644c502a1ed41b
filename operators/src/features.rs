//! Feature engineering: the per-series statistics detectors and drift tests are built from.
//!
//! - [`EwStats`]: exponentially weighted mean and variance (West's update), with a warm start
//!   that behaves like a plain running mean until the EWMA's memory is filled.
//! - [`RollingWindow`]: the last N values with robust statistics (median, quantiles, MAD) in
//!   O(log N) per query and O(N) bytes moved per push.
//! - [`Jitter`]: the noise of a series from its successive differences.
//! - [`Records`]: how often a series sets records, against how often a stationary one would.
//! - [`FeatureExtractor`]: turns a series' raw points into [`Features`] (value, delta, rate of
//!   change per second, gap, EWMA mean and spread) for the stages downstream.

use serde::{Deserialize, Serialize};

use aiops_schemas::TimestampMs;

use crate::error::{Error, Result};

/// Median over mean of |x − y| for independent Gaussian x, y: 0.6745·√2 / (2/√π).
const GAUSSIAN_MEDIAN_OVER_MEAN_STEP: f64 = 0.845_347;

/// The mean absolute difference between successive inputs: a scale of the series' noise that
/// level shifts and slow trends hardly move (unlike its standard deviation), averaged plainly
/// over the first points and then over a fading window.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Jitter {
    last: Option<f64>,
    mean_abs_diff: f64,
    count: u32,
}

impl Jitter {
    /// Differences averaged before the estimate is trusted.
    pub const MIN_COUNT: u32 = 10;
    /// Longest memory, in differences.
    const MEMORY: f64 = 500.0;
    /// One difference moves the estimate by at most this many times its value, so a spike
    /// (two huge differences) does not pass for noise.
    const CAP: f64 = 4.0;

    /// Learns the next input.
    pub fn update(&mut self, x: f64) {
        self.update_with(x, Self::MEMORY, false);
    }

    /// Learns the next input with a memory of `memory` differences (at least 1). With
    /// `moves_only`, a repeat of the last input is no difference: a series that mostly rests
    /// (a count at 0) is measured by the size of its moves. A difference beyond f64's range
    /// (inputs near its limits) is not learnt.
    pub fn update_with(&mut self, x: f64, memory: f64, moves_only: bool) {
        if let Some(last) = self.last.replace(x) {
            let mut diff = (x - last).abs();
            if !diff.is_finite() || (moves_only && diff == 0.0) {
                return;
            }
            if self.count >= Self::MIN_COUNT {
                diff = diff.min(Self::CAP * self.mean_abs_diff);
            }
            self.count = self.count.saturating_add(1);
            let weight = (1.0 / f64::from(self.count)).max(1.0 / memory);
            self.mean_abs_diff += weight * (diff - self.mean_abs_diff);
        }
    }

    /// The mean absolute difference; `None` until enough differences were seen.
    pub fn mean_abs_diff(&self) -> Option<f64> {
        (self.count >= Self::MIN_COUNT).then_some(self.mean_abs_diff)
    }

    /// Whether differences were learnt exactly when the mean is positive, as `moves_only`
    /// learning keeps it (a restored mean of 0 after moves would never move again).
    pub fn is_moves_consistent(&self) -> bool {
        (self.count == 0) == (self.mean_abs_diff == 0.0)
    }

    /// The standard deviation of the input if it is independent Gaussian noise passed through
    /// an exponentially weighted mean of factor `smooth` (1: raw): for raw noise
    /// E|x − y| = 2σ/√π; smoothing multiplies the differences' scale by √(2a) relative to the
    /// smoothed series' own spread. `None` until enough differences were seen.
    pub fn sigma(&self, smooth: f64) -> Option<f64> {
        (self.count >= Self::MIN_COUNT)
            .then(|| self.mean_abs_diff * std::f64::consts::PI.sqrt() / (2.0 * smooth.sqrt()))
    }

    /// Whether the step from the last input to `x` is smaller than the median step of Gaussian
    /// noise with this estimate's mean step (0.845 of it); `None` until the estimate is
    /// trusted. Gaussian noise has half its steps below; a series that mostly repeats or
    /// creeps, with rare large jumps carrying its mean step, has far more.
    pub fn below_gaussian_median(&self, x: f64) -> Option<bool> {
        let last = self.last?;
        (self.count >= Self::MIN_COUNT)
            .then(|| (x - last).abs() < GAUSSIAN_MEDIAN_OVER_MEAN_STEP * self.mean_abs_diff)
    }

    /// Whether a restored estimate is usable: finite and not negative.
    pub fn is_sane(&self) -> bool {
        self.mean_abs_diff.is_finite()
            && self.mean_abs_diff >= 0.0
            && self.last.is_none_or(f64::is_finite)
    }
}

/// Exponentially weighted mean and variance.
///
/// The weight of a new point is `max(alpha, 1/n)`, so the first points are averaged plainly
/// instead of dragging the mean from wherever the first value happened to be.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EwStats {
    mean: f64,
    variance: f64,
    count: u64,
}

impl EwStats {
    /// Empty statistics.
    pub const fn new() -> EwStats {
        EwStats {
            mean: 0.0,
            variance: 0.0,
            count: 0,
        }
    }

    /// Adds `x` with smoothing factor `alpha` in (0, 1]: larger forgets faster.
    #[inline]
    pub fn update(&mut self, x: f64, alpha: f64) {
        self.count += 1;
        let weight = alpha.max(1.0 / self.count as f64);
        let diff = x - self.mean;
        let increment = weight * diff;
        self.mean += increment;
        self.variance = (1.0 - weight) * (self.variance + diff * increment);
    }

    /// The weighted mean (0 before the first point).
    #[inline]
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// The weighted variance.
    #[inline]
    pub fn variance(&self) -> f64 {
        self.variance
    }

    /// The weighted standard deviation.
    #[inline]
    pub fn std(&self) -> f64 {
        self.variance.sqrt()
    }

    /// How many points were added.
    #[inline]
    pub fn count(&self) -> u64 {
        self.count
    }
}

impl Default for EwStats {
    fn default() -> Self {
        EwStats::new()
    }
}

/// The range a series has lately covered: its lowest and highest values, fading toward its
/// exponentially weighted mean so that an extreme long ago stops widening the range and a series
/// that moved to a new regime gets a new range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FadingRange {
    low: f64,
    high: f64,
    mean: EwStats,
}

/// How fast a [`FadingRange`] forgets, derived once from its half-life in points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeFade {
    /// The mean's smoothing factor.
    alpha: f64,
    /// The factor the distances of the extremes from the mean shrink by per point.
    factor: f64,
}

impl RangeFade {
    /// Extremes halfway back to the mean after `half_life` points.
    pub fn with_half_life(half_life: f64) -> RangeFade {
        RangeFade {
            alpha: 1.0 / half_life,
            factor: (-std::f64::consts::LN_2 / half_life).exp(),
        }
    }
}

impl FadingRange {
    /// Nothing seen: an empty range (low +∞, high −∞).
    pub const fn new() -> FadingRange {
        FadingRange {
            low: f64::INFINITY,
            high: f64::NEG_INFINITY,
            mean: EwStats::new(),
        }
    }

    /// Fades the extremes toward the mean, then takes in `x` (finite).
    #[inline]
    pub fn update(&mut self, x: f64, fade: RangeFade) {
        self.mean.update(x, fade.alpha);
        let center = self.mean.mean();
        if self.low.is_finite() {
            self.low = center - (center - self.low) * fade.factor;
            self.high = center + (self.high - center) * fade.factor;
        }
        self.low = self.low.min(x);
        self.high = self.high.max(x);
    }

    /// The lowest value, faded (+∞ before the first point).
    #[inline]
    pub fn low(&self) -> f64 {
        self.low
    }

    /// The highest value, faded (−∞ before the first point).
    #[inline]
    pub fn high(&self) -> f64 {
        self.high
    }

    /// How many points were taken in.
    #[inline]
    pub fn count(&self) -> u64 {
        self.mean.count()
    }
}

impl Default for FadingRange {
    fn default() -> Self {
        FadingRange::new()
    }
}

/// How often a series sets records (a value above every one before it, or below), against
/// how often a stationary series would: a measure of wandering that needs no model of the
/// series. Among `n` exchangeable values the newest is the highest with probability `1/n` and
/// the lowest with `1/n`, whatever their distribution, so a stationary series sets about
/// `2 ln n` records in its first `n` points; a random walk sets about `√n`, a trend nearly one
/// per point. Both counts fade over the same memory, so the ratio describes the recent points;
/// the extremes do not fade (a record is against the whole history).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Records {
    pub(crate) low: f64,
    pub(crate) high: f64,
    /// Points taken in.
    pub(crate) seen: u64,
    /// Records set, fading.
    pub(crate) observed: f64,
    /// Records a stationary series would have set over the same points, fading.
    pub(crate) expected: f64,
}

impl Records {
    /// Nothing seen.
    pub const fn new() -> Records {
        Records {
            low: f64::INFINITY,
            high: f64::NEG_INFINITY,
            seen: 0,
            observed: 0.0,
            expected: 0.0,
        }
    }

    /// Takes in `x` (finite); the counts keep `keep` (in [0, 1)) of their weight per point.
    #[inline]
    pub fn update(&mut self, x: f64, keep: f64) {
        if self.seen > 0 {
            let record = x > self.high || x < self.low;
            self.observed = self.observed * keep + f64::from(u8::from(record));
            // The first point after one other is a record for sure: 2 / 2.
            self.expected = self.expected * keep + 2.0 / (self.seen as f64 + 1.0);
        }
        self.seen = self.seen.saturating_add(1);
        self.low = self.low.min(x);
        self.high = self.high.max(x);
    }

    /// Records set over records expected, each with `prior` added (a series is taken as
    /// stationary until it has set `prior`-many records more than expected, or so): 1 for a
    /// stationary series, large for a trend.
    #[inline]
    pub fn ratio(&self, prior: f64) -> f64 {
        (self.observed + prior) / (self.expected + prior)
    }

    /// Whether restored state is consistent: counts finite and not negative, and extremes that
    /// are finite and ordered once a point was seen (before, as [`Records::new`]: infinite,
    /// nothing counted).
    pub fn is_sane(&self) -> bool {
        let counts = [self.observed, self.expected]
            .iter()
            .all(|v| v.is_finite() && *v >= 0.0);
        let extremes = if self.seen == 0 {
            self.low == f64::INFINITY
                && self.high == f64::NEG_INFINITY
                && self.observed == 0.0
                && self.expected == 0.0
        } else {
            self.low.is_finite() && self.high.is_finite() && self.low <= self.high
        };
        counts && extremes
    }

    /// Lowers both counts to at most `most`: what counts fading over a memory of `most` points
    /// can reach (a snapshot learnt under a longer memory).
    pub fn cap_counts(&mut self, most: f64) {
        self.observed = self.observed.min(most);
        self.expected = self.expected.min(most);
    }
}

impl Default for Records {
    fn default() -> Self {
        Records::new()
    }
}

/// The largest window a [`RollingWindow`] holds: slot indices are stored as bytes, which keeps
/// the sorted index at one byte per value.
pub const MAX_WINDOW: usize = 255;

/// The last `capacity` values of a series, kept both in arrival order (to know which value
/// leaves) and as a sorted index (for order statistics).
///
/// Memory is 9 bytes per value: the values themselves and a byte-sized sorted index into them.
#[derive(Debug, Clone)]
pub struct RollingWindow {
    /// Values by slot; slot `(head + i) % capacity` is the i-th oldest once full.
    values: Box<[f64]>,
    /// Slot numbers ordered by value.
    sorted: Vec<u8>,
    /// The slot the next value goes to.
    head: u8,
}

impl RollingWindow {
    /// An empty window of `capacity` values, 1 ≤ capacity ≤ [`MAX_WINDOW`].
    pub fn new(capacity: usize) -> Result<RollingWindow> {
        if !(1..=MAX_WINDOW).contains(&capacity) {
            return Err(Error::config(
                "rolling window",
                format!("window must hold 1 to {MAX_WINDOW} values, not {capacity}"),
            ));
        }
        Ok(RollingWindow {
            values: vec![0.0; capacity].into_boxed_slice(),
            sorted: Vec::with_capacity(capacity),
            head: 0,
        })
    }

    /// How many values it holds now.
    #[inline]
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether it holds nothing.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// How many values it holds when full.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.values.len()
    }

    #[inline]
    fn at(&self, rank: usize) -> f64 {
        self.values[self.sorted[rank] as usize]
    }

    /// Adds `x`, evicting the oldest value once full. Non-finite values are ignored: they
    /// have no place in an order statistic.
    pub fn push(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        let slot = self.head as usize;
        self.head = ((slot + 1) % self.values.len()) as u8;
        if self.sorted.len() < self.values.len() {
            self.values[slot] = x;
            let rank = self
                .sorted
                .partition_point(|&s| self.values[s as usize] <= x);
            self.sorted.insert(rank, slot as u8);
            return;
        }
        // Full: the new value takes the oldest value's slot, so its entry in the sorted index
        // only moves from the old value's rank to the new one's, in one rotation.
        let old = self.values[slot];
        let first = self
            .sorted
            .partition_point(|&s| self.values[s as usize] < old);
        let from = self.sorted[first..]
            .iter()
            .position(|&s| s as usize == slot)
            .map(|offset| first + offset)
            .or_else(|| self.sorted.iter().position(|&s| s as usize == slot))
            .unwrap_or(first);
        let rank = self
            .sorted
            .partition_point(|&s| self.values[s as usize] <= x);
        if rank > from {
            self.sorted[from..rank].rotate_left(1);
        } else {
            self.sorted[rank..=from].rotate_right(1);
        }
        self.values[slot] = x;
    }

    /// The `q`-quantile (0 ≤ q ≤ 1) by linear interpolation between order statistics;
    /// `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let position = q.clamp(0.0, 1.0) * (n - 1) as f64;
        let low = position.floor() as usize;
        let high = position.ceil() as usize;
        let fraction = position - low as f64;
        Some(self.at(low) + (self.at(high) - self.at(low)) * fraction)
    }

    /// The median; `None` when empty.
    pub fn median(&self) -> Option<f64> {
        let n = self.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(self.at(n / 2)),
            _ => Some((self.at(n / 2 - 1) + self.at(n / 2)) / 2.0),
        }
    }

    /// The median absolute deviation from `center` (usually the median), in O(log N): the
    /// distances below and above `center` are two sorted sequences, and the median of their
    /// union is found by one binary search for the split instead of sorting all distances.
    pub fn mad(&self, center: f64) -> Option<f64> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let split = self
            .sorted
            .partition_point(|&s| self.values[s as usize] < center);
        let below = |j: usize| center - self.at(split - 1 - j);
        let above = |j: usize| self.at(split + j) - center;
        let (below_len, above_len) = (split, n - split);
        Some(if n % 2 == 1 {
            split_two_sorted(&below, below_len, &above, above_len, n / 2 + 1).0
        } else {
            let (left, right) = split_two_sorted(&below, below_len, &above, above_len, n / 2);
            (left + right) / 2.0
        })
    }

    /// The mean absolute deviation from `center`, in O(N): the fallback scale when more than
    /// half the window is equal and the MAD is zero.
    pub fn mean_absolute_deviation(&self, center: f64) -> Option<f64> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let sum: f64 = self
            .sorted
            .iter()
            .map(|&s| (self.values[s as usize] - center).abs())
            .sum();
        Some(sum / n as f64)
    }

    /// The values from oldest to newest.
    pub fn iter_chronological(&self) -> impl Iterator<Item = f64> + '_ {
        let n = self.len();
        let cap = self.values.len();
        let start = if n == cap { self.head as usize } else { 0 };
        (0..n).map(move |i| self.values[(start + i) % cap])
    }

    /// Bytes held (inline and heap), for state accounting.
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.values.len() * 8 + self.sorted.capacity()
    }
}

/// Splits the union of two ascending sequences (given by index functions) so that its `take`
/// smallest elements are on the left (1 ≤ take ≤ a_len + b_len); returns the largest element
/// on the left and the smallest on the right (infinity when the right is empty). The search is
/// on how many of the left elements come from `a`, with selects rather than branches, since the
/// comparisons are unpredictable.
fn split_two_sorted(
    a: &impl Fn(usize) -> f64,
    a_len: usize,
    b: &impl Fn(usize) -> f64,
    b_len: usize,
    take: usize,
) -> (f64, f64) {
    let (mut low, mut high) = (take.saturating_sub(b_len), take.min(a_len));
    while low < high {
        let i = (low + high) / 2;
        // i < high ≤ a_len, and 1 ≤ take - i ≤ b_len, so both reads are in range.
        let more_from_a = a(i) < b(take - i - 1);
        low = if more_from_a { i + 1 } else { low };
        high = if more_from_a { high } else { i };
    }
    let (i, j) = (low, take - low);
    let left = match (i, j) {
        (0, _) => b(j - 1),
        (_, 0) => a(i - 1),
        _ => a(i - 1).max(b(j - 1)),
    };
    let right_a = if i < a_len { a(i) } else { f64::INFINITY };
    let right_b = if j < b_len { b(j) } else { f64::INFINITY };
    (left, right_a.min(right_b))
}

impl PartialEq for RollingWindow {
    fn eq(&self, other: &Self) -> bool {
        self.capacity() == other.capacity()
            && self.iter_chronological().eq(other.iter_chronological())
    }
}

/// The serialized form of a window: its capacity and its values, oldest first.
#[derive(Serialize, Deserialize)]
struct WindowState {
    capacity: u16,
    values: Vec<f64>,
}

impl Serialize for RollingWindow {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        WindowState {
            capacity: self.capacity() as u16,
            values: self.iter_chronological().collect(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RollingWindow {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let state = WindowState::deserialize(deserializer)?;
        let mut window = RollingWindow::new(state.capacity as usize).map_err(D::Error::custom)?;
        if state.values.len() > window.capacity() {
            return Err(D::Error::custom(
                "window holds more values than its capacity",
            ));
        }
        if state.values.iter().any(|v| !v.is_finite()) {
            return Err(D::Error::custom("window holds a non-finite value"));
        }
        state.values.into_iter().for_each(|v| window.push(v));
        Ok(window)
    }
}

/// Which feature a detector looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// The observed value.
    #[default]
    Value,
    /// The change since the previous point.
    Delta,
    /// The change per second since the previous point (for counters and gauges sampled
    /// irregularly).
    Rate,
    /// The exponentially weighted mean of the values before this one.
    EwmaMean,
    /// The exponentially weighted standard deviation of the values before this one.
    EwmaStd,
}

/// What the feature stage knows about one point of one series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Features {
    /// The point's timestamp.
    pub timestamp: TimestampMs,
    /// The observed value.
    pub value: f64,
    /// Value minus the previous value (0 for a series' first point).
    pub delta: f64,
    /// `delta` per second of the gap (0 for the first point, or when the gap is zero).
    pub rate: f64,
    /// Milliseconds since the previous point (0 for the first point).
    pub gap_ms: i64,
    /// EWMA of the values before this one (equal to `value` for the first point).
    pub ewma_mean: f64,
    /// EW standard deviation of the values before this one.
    pub ewma_std: f64,
}

impl Features {
    /// The feature named by `input`.
    #[inline]
    pub fn get(&self, input: Input) -> f64 {
        match input {
            Input::Value => self.value,
            Input::Delta => self.delta,
            Input::Rate => self.rate,
            Input::EwmaMean => self.ewma_mean,
            Input::EwmaStd => self.ewma_std,
        }
    }

    /// Features of a point with no history, for tests and benches.
    pub fn first(timestamp: TimestampMs, value: f64) -> Features {
        Features {
            timestamp,
            value,
            delta: 0.0,
            rate: 0.0,
            gap_ms: 0,
            ewma_mean: value,
            ewma_std: 0.0,
        }
    }
}

/// Configuration of the feature stage.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureConfig {
    /// Smoothing factor of the EWMA features, in (0, 1].
    pub alpha: f64,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig { alpha: 0.05 }
    }
}

impl FeatureConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        crate::params::alpha("features", self.alpha)
    }
}

/// Per-series state of the feature stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureExtractor {
    previous: Option<(TimestampMs, f64)>,
    stats: EwStats,
}

impl FeatureExtractor {
    /// Points learnt so far.
    pub fn points(&self) -> u64 {
        self.stats.count()
    }

    /// A series with no history.
    pub fn new() -> FeatureExtractor {
        FeatureExtractor {
            previous: None,
            stats: EwStats::new(),
        }
    }

    /// Computes the features of the next point and learns from it. Returns `None` (and learns
    /// nothing) for a non-finite value, so one bad point cannot poison the series' state.
    pub fn next(
        &mut self,
        config: &FeatureConfig,
        timestamp: TimestampMs,
        value: f64,
    ) -> Option<Features> {
        if !value.is_finite() {
            return None;
        }
        let (delta, rate, gap_ms) = match self.previous {
            None => (0.0, 0.0, 0),
            Some((t0, v0)) => {
                let gap = timestamp.saturating_sub(t0);
                let delta = value - v0;
                let rate = if gap > 0 {
                    delta * 1000.0 / gap as f64
                } else {
                    0.0
                };
                (delta, rate, gap)
            }
        };
        let (ewma_mean, ewma_std) = if self.stats.count() == 0 {
            (value, 0.0)
        } else {
            (self.stats.mean(), self.stats.std())
        };
        self.stats.update(value, config.alpha);
        self.previous = Some((timestamp, value));
        Some(Features {
            timestamp,
            value,
            delta,
            rate,
            gap_ms,
            ewma_mean,
            ewma_std,
        })
    }

    /// Bytes held, for state accounting.
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

impl Default for FeatureExtractor {
    fn default() -> Self {
        FeatureExtractor::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The record ratio of each of `series` series of `n` points drawn by `draw`, after `from`.
    fn record_ratios(
        series: u64,
        n: usize,
        from: usize,
        mut draw: impl FnMut(&mut crate::rng::Rng, usize) -> f64,
    ) -> Vec<f64> {
        (0..series)
            .flat_map(|seed| {
                let mut rng = crate::rng::Rng(seed);
                let mut records = Records::new();
                let mut ratios = Vec::new();
                for i in 0..n {
                    records.update(draw(&mut rng, i), 1.0 - 1.0 / 300.0);
                    if i >= from {
                        ratios.push(records.ratio(10.0));
                    }
                }
                ratios
            })
            .collect()
    }

    #[test]
    fn records_tell_a_wandering_series_from_a_stationary_one() {
        // Stationary noise, Gaussian or heavy-tailed: records as often as expected.
        let gaussian = record_ratios(50, 2_000, 100, |rng, _| rng.normal());
        let heavy = record_ratios(50, 2_000, 100, |rng, _| rng.normal().powi(3));
        for ratios in [&gaussian, &heavy] {
            let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
            assert!((0.8..1.25).contains(&mean), "mean ratio {mean} on noise");
            let high = ratios.iter().filter(|r| **r >= 2.0).count();
            assert!(
                high * 100 < ratios.len(),
                "{high} of {} at 2 or more",
                ratios.len()
            );
        }
        // A Gaussian random walk and a noisy trend: records far more often.
        let mut level = 0.0;
        let walk = record_ratios(50, 2_000, 500, |rng, i| {
            if i == 0 {
                level = 0.0;
            }
            level += rng.normal();
            level
        });
        // A walk's records thin out like 1/√n, a stationary series' like 1/n: far above 1 on
        // average, but a long walk spends stretches below 2.
        let mean = walk.iter().sum::<f64>() / walk.len() as f64;
        let high = walk.iter().filter(|r| **r >= 2.0).count();
        assert!(mean > 1.6, "mean ratio {mean} on random walks");
        assert!(
            high * 4 > walk.len(),
            "{high} of {} at 2 or more",
            walk.len()
        );
        let trend = record_ratios(10, 1_000, 200, |rng, i| 0.5 * i as f64 + rng.normal());
        let least = trend.iter().cloned().fold(f64::INFINITY, f64::min);
        assert!(least > 3.0, "a trend's ratio fell to {least}");
        // Without fading, the expected count after n points is exactly 2 (H_n − 1), and a rising
        // series sets a record at every point but the first.
        let mut records = Records::new();
        for i in 0..100 {
            records.update(f64::from(i), 1.0);
        }
        let harmonic: f64 = (1..=100).map(|k| 1.0 / f64::from(k)).sum();
        assert!((records.expected - 2.0 * (harmonic - 1.0)).abs() < 1e-9);
        assert_eq!(records.observed, 99.0);
        // The state a snapshot may hold.
        let mut records = Records::new();
        assert!(
            !Records {
                observed: 1.0,
                ..records
            }
            .is_sane()
        );
        assert!(records.is_sane());
        records.update(1.0, 0.5);
        assert!(records.is_sane());
        assert!(
            !Records {
                observed: -1.0,
                ..records
            }
            .is_sane()
        );
        assert!(
            !Records {
                expected: f64::NAN,
                ..records
            }
            .is_sane()
        );
        assert!(
            !Records {
                low: 2.0,
                ..records
            }
            .is_sane()
        );
        assert!(!Records { seen: 0, ..records }.is_sane());
    }

    #[test]
    fn ewstats_starts_as_a_plain_mean() {
        let mut s = EwStats::new();
        for x in [1.0, 2.0, 3.0] {
            s.update(x, 0.01);
        }
        assert!((s.mean() - 2.0).abs() < 1e-12);
        // Population variance of 1, 2, 3 is 2/3.
        assert!((s.variance() - 2.0 / 3.0).abs() < 1e-12, "{}", s.variance());
    }

    #[test]
    fn ewstats_forgets_at_rate_alpha() {
        let mut s = EwStats::new();
        for _ in 0..1000 {
            s.update(10.0, 0.1);
        }
        assert_eq!(s.mean(), 10.0);
        assert_eq!(s.variance(), 0.0);
        s.update(20.0, 0.1);
        assert!((s.mean() - 11.0).abs() < 1e-12);
    }

    #[test]
    fn window_order_statistics() {
        let mut w = RollingWindow::new(5).unwrap();
        assert_eq!(w.median(), None);
        for x in [5.0, 1.0, 4.0, 2.0, 3.0] {
            w.push(x);
        }
        assert_eq!(w.median(), Some(3.0));
        assert_eq!(w.quantile(0.0), Some(1.0));
        assert_eq!(w.quantile(1.0), Some(5.0));
        assert_eq!(w.quantile(0.25), Some(2.0));
        assert_eq!(w.mad(3.0), Some(1.0));
        // 5 leaves: window is 1 4 2 3 10.
        w.push(10.0);
        assert_eq!(
            w.iter_chronological().collect::<Vec<_>>(),
            [1.0, 4.0, 2.0, 3.0, 10.0]
        );
        assert_eq!(w.median(), Some(3.0));
        assert_eq!(w.mad(3.0), Some(1.0));
        assert!(RollingWindow::new(0).is_err());
        assert!(RollingWindow::new(256).is_err());
    }

    #[test]
    fn window_of_equal_values_has_zero_mad() {
        let mut w = RollingWindow::new(8).unwrap();
        for _ in 0..20 {
            w.push(7.0);
        }
        assert_eq!(w.median(), Some(7.0));
        assert_eq!(w.mad(7.0), Some(0.0));
        assert_eq!(w.mean_absolute_deviation(7.0), Some(0.0));
    }

    #[test]
    fn rate_is_per_second_across_gaps() {
        let config = FeatureConfig::default();
        let mut f = FeatureExtractor::new();
        let first = f.next(&config, 0, 100.0).unwrap();
        assert_eq!((first.delta, first.rate, first.gap_ms), (0.0, 0.0, 0));
        let second = f.next(&config, 10_000, 150.0).unwrap();
        assert_eq!(
            (second.delta, second.rate, second.gap_ms),
            (50.0, 5.0, 10_000)
        );
        // A long gap makes a small rate, not a large one.
        let third = f.next(&config, 3_610_000, 200.0).unwrap();
        assert!((third.rate - 50.0 / 3600.0).abs() < 1e-12);
        assert_eq!(third.ewma_mean, 125.0);
    }

    #[test]
    fn non_finite_values_are_skipped_without_touching_state() {
        let config = FeatureConfig::default();
        let mut f = FeatureExtractor::new();
        f.next(&config, 0, 1.0);
        let before = f.clone();
        assert_eq!(f.next(&config, 1, f64::NAN), None);
        assert_eq!(f.next(&config, 1, f64::INFINITY), None);
        assert_eq!(f, before);
    }

    fn brute_median(values: &[f64]) -> f64 {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    }

    proptest! {
        #[test]
        fn window_matches_brute_force(
            capacity in 1usize..40,
            values in proptest::collection::vec(prop_oneof![-1e6f64..1e6, (0i32..5).prop_map(f64::from)], 1..200),
        ) {
            let mut w = RollingWindow::new(capacity).unwrap();
            for (i, &x) in values.iter().enumerate() {
                w.push(x);
                let start = (i + 1).saturating_sub(capacity);
                let live = &values[start..=i];
                prop_assert_eq!(w.iter_chronological().collect::<Vec<_>>(), live.to_vec());
                let median = brute_median(live);
                prop_assert_eq!(w.median(), Some(median));
                let deviations: Vec<f64> = live.iter().map(|v| (v - median).abs()).collect();
                let mad = w.mad(median).unwrap();
                let expected = brute_median(&deviations);
                prop_assert!((mad - expected).abs() <= 1e-9 * expected.abs().max(1.0), "{} vs {}", mad, expected);
            }
        }

        #[test]
        fn window_survives_serde(capacity in 1usize..30, values in proptest::collection::vec(-1e3f64..1e3, 0..80)) {
            let mut w = RollingWindow::new(capacity).unwrap();
            values.iter().for_each(|&v| w.push(v));
            let bytes = postcard::to_stdvec(&w).unwrap();
            let back: RollingWindow = postcard::from_bytes(&bytes).unwrap();
            prop_assert_eq!(&back, &w);
            prop_assert_eq!(back.median(), w.median());
        }
    }
}
