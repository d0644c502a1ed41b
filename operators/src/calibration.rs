//! Calibration: a detector's raw score restated against that detector's own recent scores on
//! the same series, so that detectors of different kinds, and series of different noise, speak
//! one language before the ensemble combines them. Two methods:
//!
//! - **Envelope** (the default). A score counts by how far it goes beyond the largest score the
//!   detector has given on this series lately: `3 · (score - envelope) / (tolerance · envelope)`,
//!   0 inside the envelope; so beyond it by `tolerance` (5 %) scores 3, like the range
//!   detector's excess beyond the value range. The envelope is the running maximum of past
//!   scores, fading with a half-life so that one huge incident does not mask the next for
//!   ever. Evaluated on the NAB corpus this ranked anomalies across series far better than tail
//!   probabilities: what operators call an incident is mostly a surprise bigger than any recent
//!   one, and a residual detector's everyday maxima are exactly the noise it should not page on.
//! - **Tail**. The tail probability of the score under an exponentially forgetting histogram of
//!   past scores on a log scale (4 bins per doubling, 72 bins: 288 bytes), beyond the `(1 - tail)`
//!   quantile an exponential tail fitted to the scores above it (peaks over threshold with a
//!   generalized Pareto tail of shape 0), returned as the sigma-equivalent of that probability
//!   with [`sigma_of_tail`].
//!
//! Detectors whose score is already relative to the series (the range detector's excess is a
//! share of the series' own range) are not calibrated again.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::params;

/// Bins per doubling of `1 + score`.
const BINS_PER_OCTAVE: f64 = 4.0;
/// Number of bins: scores up to 2^18 (about 260,000 sigma) get a bin of their own.
pub const BINS: usize = 72;
/// Smallest tail probability given, so sigmas stay finite.
const MIN_TAIL: f64 = 1e-300;

/// How raw scores are restated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationMethod {
    /// Excess over the fading maximum of past scores.
    #[default]
    Envelope,
    /// Tail probability under a histogram of past scores.
    Tail,
}

/// Parameters of calibration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalibrationConfig {
    /// The method.
    pub method: CalibrationMethod,
    /// Points after which a past score's weight (tail) or the envelope's height (envelope) has
    /// halved.
    pub half_life: f64,
    /// Scores learnt before calibrated scores are given.
    pub warmup: u32,
    /// Envelope: the excess over the envelope, as a share of it, that scores 3.
    pub tolerance: f64,
    /// Tail: the share beyond which the exponential tail takes over from the histogram.
    pub tail: f64,
    /// Envelope: a score raises the envelope to at most this many times its height (`inf`: no
    /// limit). An incident is then learnt as "bigger than usual", not as the new usual, and
    /// does not hide the next incident of its size for half-lives to come; a real change of
    /// regime still lifts the envelope by this factor per point, so it catches up in a few.
    pub learn_cap: f64,
}

impl Default for CalibrationConfig {
    fn default() -> Self {
        CalibrationConfig {
            method: CalibrationMethod::Envelope,
            half_life: 1000.0,
            warmup: 100,
            tolerance: 0.05,
            tail: 0.02,
            learn_cap: 3.0,
        }
    }
}

impl CalibrationConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        params::positive(
            "calibration",
            &[("half_life", self.half_life), ("tolerance", self.tolerance)],
        )?;
        if self.learn_cap.is_nan() || self.learn_cap < 1.0 {
            return Err(Error::config(
                "calibration",
                format!(
                    "learn_cap must be 1 or more (inf for no limit), not {}",
                    self.learn_cap
                ),
            ));
        }
        if !(self.tail > 0.0 && self.tail < 0.5) {
            return Err(Error::config(
                "calibration",
                format!("tail must be in (0, 0.5), not {}", self.tail),
            ));
        }
        Ok(())
    }

    /// The factor a past score's weight or the envelope shrinks by per point.
    fn fade(&self) -> f64 {
        (-std::f64::consts::LN_2 / self.half_life).exp()
    }
}

/// What one series has seen of one detector's raw scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Calibrator {
    /// The envelope method's state.
    Envelope(Envelope),
    /// The tail method's state.
    Tail(TailHistogram),
}

impl Calibrator {
    /// Nothing seen yet, for `method`.
    pub fn new(method: CalibrationMethod) -> Calibrator {
        match method {
            CalibrationMethod::Envelope => Calibrator::Envelope(Envelope::default()),
            CalibrationMethod::Tail => Calibrator::Tail(TailHistogram::new()),
        }
    }

    /// Calibrates a raw score against what was seen before, then learns it; `None` while
    /// warming up. A calibrator of another method than configured starts afresh.
    pub fn calibrate(&mut self, config: &CalibrationConfig, raw: f64) -> Option<f64> {
        match (config.method, &mut *self) {
            (CalibrationMethod::Envelope, Calibrator::Envelope(e)) => {
                let score = e.score(config, raw);
                e.update(config, raw);
                score
            }
            (CalibrationMethod::Tail, Calibrator::Tail(h)) => {
                let tail = h.tail_probability(config, raw);
                h.update(config, raw);
                tail.map(sigma_of_tail)
            }
            (method, _) => {
                *self = Calibrator::new(method);
                self.calibrate(config, raw)
            }
        }
    }

    /// Bytes held, for state accounting.
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + match self {
                Calibrator::Envelope(_) => 0,
                Calibrator::Tail(h) => h.bins.capacity() * std::mem::size_of::<f32>(),
            }
    }
}

/// The envelope method's state: the fading maximum of past scores.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Envelope {
    height: f64,
    count: u32,
}

impl Envelope {
    /// The score's excess over the envelope, sigma-equivalent; `None` while warming up or while
    /// every past score was zero.
    pub fn score(&self, config: &CalibrationConfig, raw: f64) -> Option<f64> {
        if !self.scoring(config) {
            return None;
        }
        Some(3.0 * (raw - self.height).max(0.0) / (config.tolerance * self.height))
    }

    /// Whether warm-up is over and there is a height to score against.
    fn scoring(&self, config: &CalibrationConfig) -> bool {
        self.count >= config.warmup.max(1) && self.height > 0.0
    }

    /// Learns a raw score: past warm-up, at most `learn_cap` times the current height.
    pub fn update(&mut self, config: &CalibrationConfig, raw: f64) {
        if !raw.is_finite() {
            return;
        }
        let learnt = if self.scoring(config) {
            raw.min(config.learn_cap * self.height)
        } else {
            raw
        };
        self.height = learnt.max(self.height * config.fade());
        self.count = self.count.saturating_add(1);
    }
}

/// The tail method's state: an exponentially forgetting histogram of past scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TailHistogram {
    bins: Vec<f32>,
    /// Sum of the bins.
    total: f32,
    /// Weight the next score is added with.
    weight: f32,
    /// Scores learnt (saturating).
    count: u32,
}

impl Default for TailHistogram {
    fn default() -> Self {
        TailHistogram::new()
    }
}

#[inline]
fn position(score: f64) -> f64 {
    (1.0 + score.max(0.0)).log2() * BINS_PER_OCTAVE
}

#[inline]
fn score_at(position: f64) -> f64 {
    (position / BINS_PER_OCTAVE).exp2() - 1.0
}

impl TailHistogram {
    /// Nothing seen yet.
    pub fn new() -> TailHistogram {
        TailHistogram {
            bins: vec![0.0; BINS],
            total: 0.0,
            weight: 1.0,
            count: 0,
        }
    }
    /// Scores learnt so far.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The probability that a score at least this high comes from the distribution seen so far;
    /// `None` before `warmup` scores.
    pub fn tail_probability(&self, config: &CalibrationConfig, score: f64) -> Option<f64> {
        if self.count < config.warmup.max(1) || self.total <= 0.0 {
            return None;
        }
        let total = f64::from(self.total);
        let at = position(score);
        let bin = (at as usize).min(BINS - 1);
        let above: f64 = self.bins[bin + 1..].iter().map(|&m| f64::from(m)).sum();
        let inside = f64::from(self.bins[bin]) * (1.0 - (at - bin as f64).clamp(0.0, 1.0));
        let empirical = (above + inside) / total;
        if empirical >= config.tail {
            return Some(empirical.min(1.0));
        }
        // Past the (1 - tail) quantile: an exponential tail fitted to the scores beyond it.
        let (threshold, mean_excess) = self.tail_fit(config.tail);
        let excess = (score - threshold).max(0.0);
        let tail = config.tail * (-excess / mean_excess).exp();
        Some(tail.clamp(MIN_TAIL, config.tail))
    }

    /// The (1 - `share`) quantile of the scores seen and their mean excess over it.
    fn tail_fit(&self, share: f64) -> (f64, f64) {
        let total = f64::from(self.total);
        let target = share * total;
        let mut mass_above = 0.0;
        let mut bin = BINS;
        // Walk down from the top until `share` of the mass is above.
        while bin > 0 {
            let m = f64::from(self.bins[bin - 1]);
            if mass_above + m >= target {
                break;
            }
            mass_above += m;
            bin -= 1;
        }
        let threshold = if bin == 0 {
            0.0
        } else {
            // Interpolate inside the bin that straddles the quantile.
            let m = f64::from(self.bins[bin - 1]).max(f64::MIN_POSITIVE);
            let fraction = ((target - mass_above) / m).clamp(0.0, 1.0);
            score_at(bin as f64 - fraction)
        };
        let mut excess = 0.0;
        let mut mass = 0.0;
        for (j, &m) in self.bins.iter().enumerate().skip(bin.saturating_sub(1)) {
            let center = score_at(j as f64 + 0.5);
            if center > threshold {
                excess += f64::from(m) * (center - threshold);
                mass += f64::from(m);
            }
        }
        // Too few scores above to fit: fall back on the width of a bin there.
        let floor = (score_at(position(threshold) + 1.0) - threshold).max(1e-9);
        let mean_excess = if mass > 0.0 {
            (excess / mass).max(floor)
        } else {
            floor
        };
        (threshold, mean_excess)
    }

    /// Learns a raw score.
    pub fn update(&mut self, config: &CalibrationConfig, score: f64) {
        if !score.is_finite() {
            return;
        }
        let bin = (position(score) as usize).min(BINS - 1);
        self.bins[bin] += self.weight;
        self.total += self.weight;
        self.count = self.count.saturating_add(1);
        // Rather than fading every bin on every point, the weight of new scores grows; the bins
        // are rescaled only when the weights get large.
        self.weight /= config.fade() as f32;
        if self.weight > 1e20 {
            let scale = 1.0 / self.weight;
            self.bins.iter_mut().for_each(|m| *m *= scale);
            self.total *= scale;
            self.weight = 1.0;
        }
    }

    /// Bytes held, for state accounting.
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.bins.capacity() * std::mem::size_of::<f32>()
    }
}

/// The score of the self-calibrated detectors (newcomer, stuck, residual, jump): a
/// sigma-equivalent's excess beyond `offset`, three points per `offset`, so a surprise of
/// `offset` scores 0 and one of `offset · 5/3` (5σ at the usual 3) the ensemble's warning 2.
pub fn score_beyond(sigma: f64, offset: f64) -> f64 {
    3.0 * (sigma - offset).max(0.0) / offset
}

/// The sigma-equivalent of a two-sided normal tail probability: the `s` with
/// `P(|Z| ≥ s) = p` for a standard normal `Z`. 0 for `p ≥ 1`; about 37.5 at the smallest `p`.
pub fn sigma_of_tail(p: f64) -> f64 {
    if p.is_nan() || p >= 1.0 {
        return 0.0;
    }
    let p = p.max(MIN_TAIL);
    // The upper quantile of p/2.
    -normal_quantile(p / 2.0)
}

/// The two-sided normal tail probability of a sigma-equivalent: `P(|Z| ≥ s)`.
pub fn tail_of_sigma(sigma: f64) -> f64 {
    if sigma <= 0.0 {
        1.0
    } else {
        erfc(sigma / std::f64::consts::SQRT_2)
    }
}

/// `P(X ≥ x)` for `X` chi-squared with `2k` degrees of freedom: Fisher's combined tail
/// probability of `k` independent tails whose logs sum to `−x/2`. Below about 1e-320 it is 0,
/// which [`sigma_of_tail`] treats as its smallest tail anyway.
pub fn fisher_tail(x: f64, k: u32) -> f64 {
    let half = x / 2.0;
    let (mut term, mut sum) = (1.0, 1.0);
    for j in 1..k {
        term *= half / f64::from(j);
        sum += term;
    }
    ((-half).exp() * sum).min(1.0)
}

/// The standard normal quantile (P. J. Acklam's rational approximation, relative error below
/// 1.2e-9, refined by one Halley step on `erfc`).
// The coefficients are quoted as published.
#[allow(clippy::excessive_precision)]
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const LOW: f64 = 0.02425;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    };
    // One Halley step; skipped where the density underflows.
    let e = 0.5 * erfc(-x / std::f64::consts::SQRT_2) - p;
    let density = (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
    if density > 0.0 && e.is_finite() {
        let u = e / density;
        x - u / (1.0 + x * u / 2.0)
    } else {
        x
    }
}

/// The complementary error function (W. J. Cody's rational approximations, relative error
/// about 1e-15 in double precision).
// The coefficients are quoted as published.
#[allow(clippy::excessive_precision)]
fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 0.5 {
        return 1.0 - erf_small(x);
    }
    if x > 27.3 {
        return 0.0;
    }
    let (p, q): (&[f64], &[f64]) = if x <= 4.0 {
        (
            &[
                5.641_884_969_886_700_9e-1,
                8.883_149_794_388_376,
                6.611_919_063_714_163e1,
                2.986_351_381_974_001_3e2,
                8.819_522_212_417_691e2,
                1.712_047_612_634_070_7e3,
                2.051_078_377_826_071_6e3,
                1.230_339_354_797_997_2e3,
                2.153_115_354_744_038_3e-8,
            ],
            &[
                1.574_492_611_070_983_4e1,
                1.176_939_508_913_125e2,
                5.371_811_018_620_098_6e2,
                1.621_389_574_566_690_3e3,
                3.290_799_235_733_459_7e3,
                4.362_619_090_143_247e3,
                3.439_367_674_143_721_6e3,
                1.230_339_354_803_749_5e3,
            ],
        )
    } else {
        let z = 1.0 / (x * x);
        const P: [f64; 6] = [
            3.053_266_349_612_323_4e-1,
            3.603_448_999_498_044_5e-1,
            1.257_817_261_112_292_6e-1,
            1.608_378_514_874_227_5e-2,
            6.587_491_615_298_378e-4,
            1.631_538_713_730_709_6e-2,
        ];
        const Q: [f64; 5] = [
            2.568_520_192_289_822,
            1.872_952_849_923_460_4,
            5.279_051_029_514_284e-1,
            6.051_834_131_244_132e-2,
            2.335_204_976_268_691_8e-3,
        ];
        let mut num = P[5] * z;
        let mut den = z;
        for i in 0..4 {
            num = (num + P[i]) * z;
            den = (den + Q[i]) * z;
        }
        let r = z * (num + P[4]) / (den + Q[4]);
        let r = (1.0 / std::f64::consts::PI.sqrt() - r) / x;
        return r * (-x * x).exp();
    };
    let mut num = p[8] * x;
    let mut den = x;
    for i in 0..7 {
        num = (num + p[i]) * x;
        den = (den + q[i]) * x;
    }
    let r = (num + p[7]) / (den + q[7]);
    r * (-x * x).exp()
}

/// erf for |x| < 0.5 (Cody).
// The coefficients are quoted as published.
#[allow(clippy::excessive_precision)]
fn erf_small(x: f64) -> f64 {
    const A: [f64; 5] = [
        3.161_123_743_870_565_6,
        1.138_641_541_510_501_6e2,
        3.774_852_376_853_020_2e2,
        3.209_377_589_138_469_5e3,
        1.857_777_061_846_031_5e-1,
    ];
    const B: [f64; 4] = [
        2.360_129_095_234_412_2e1,
        2.440_246_379_344_441_7e2,
        1.282_616_526_077_372_3e3,
        2.844_236_833_439_170_6e3,
    ];
    let z = x * x;
    let mut num = A[4] * z;
    let mut den = z;
    for i in 0..3 {
        num = (num + A[i]) * z;
        den = (den + B[i]) * z;
    }
    x * (num + A[3]) / (den + B[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_tails_match_tables() {
        // P(|Z| ≥ s) from standard tables.
        for (sigma, p) in [
            (1.0, 0.317_310_507_862_914_1),
            (2.0, 0.045_500_263_896_358_4),
            (3.0, 0.002_699_796_063_260_2),
            (5.0, 5.733_031_437_583_892e-7),
            (8.0, 1.244_192_114_854_357_4e-15),
        ] {
            let tail = tail_of_sigma(sigma);
            assert!(
                (tail - p).abs() <= 1e-12 * p.max(1e-3),
                "{sigma}: {tail} vs {p}"
            );
            let back = sigma_of_tail(p);
            assert!((back - sigma).abs() < 1e-7, "{p}: {back} vs {sigma}");
        }
        assert_eq!(sigma_of_tail(1.0), 0.0);
        assert!(sigma_of_tail(0.0).is_finite() && sigma_of_tail(0.0) > 37.0);
        let mut previous = 0.0;
        for k in 1..600 {
            let s = sigma_of_tail(10f64.powf(-f64::from(k) / 2.0));
            assert!(s > previous, "not increasing at 1e-{}", f64::from(k) / 2.0);
            previous = s;
        }
    }

    fn tail_config(half_life: f64) -> CalibrationConfig {
        CalibrationConfig {
            method: CalibrationMethod::Tail,
            half_life,
            warmup: 10,
            ..CalibrationConfig::default()
        }
    }

    fn trained(scores: impl IntoIterator<Item = f64>) -> (TailHistogram, CalibrationConfig) {
        let config = tail_config(1e9);
        let mut calibrator = TailHistogram::new();
        for s in scores {
            calibrator.update(&config, s);
        }
        (calibrator, config)
    }

    #[test]
    fn probabilities_follow_the_scores_seen() {
        // Scores spread evenly over 0..10: P(score ≥ 5) is about one half.
        let (c, config) = trained((0..10_000).map(|i| f64::from(i % 1000) / 100.0));
        let half = c.tail_probability(&config, 5.0).unwrap();
        assert!((half - 0.5).abs() < 0.05, "{half}");
        let tenth = c.tail_probability(&config, 9.0).unwrap();
        assert!((tenth - 0.1).abs() < 0.03, "{tenth}");
        assert_eq!(c.tail_probability(&config, 0.0), Some(1.0));
        // Beyond everything seen, the exponential tail keeps ordering scores.
        let (p11, p20, p40) = (
            c.tail_probability(&config, 11.0).unwrap(),
            c.tail_probability(&config, 20.0).unwrap(),
            c.tail_probability(&config, 40.0).unwrap(),
        );
        assert!(
            p11 < 0.02 && p20 < p11 && p40 < p20 && p40 > 0.0,
            "{p11} {p20} {p40}"
        );
    }

    #[test]
    fn the_same_raw_score_is_rarer_on_a_quieter_series() {
        let (quiet, config) = trained((0..2000).map(|i| f64::from(i % 10) / 10.0));
        let (noisy, _) = trained((0..2000).map(|i| f64::from(i % 10)));
        let on_quiet = quiet.tail_probability(&config, 6.0).unwrap();
        let on_noisy = noisy.tail_probability(&config, 6.0).unwrap();
        assert!(on_quiet < on_noisy / 100.0, "{on_quiet} vs {on_noisy}");
    }

    #[test]
    fn warms_up_and_forgets() {
        let config = tail_config(100.0);
        let mut c = TailHistogram::new();
        for _ in 0..9 {
            c.update(&config, 1.0);
        }
        assert_eq!(c.tail_probability(&config, 1.0), None);
        c.update(&config, 1.0);
        assert!(c.tail_probability(&config, 1.0).is_some());
        // After many half-lives of scores at 10, a score of 10 is ordinary.
        assert!(c.tail_probability(&config, 10.0).unwrap() < 1e-3);
        for _ in 0..3000 {
            c.update(&config, 10.0);
        }
        assert!(c.tail_probability(&config, 10.0).unwrap() > 0.1);
        // Scores keep being learnt without overflow.
        for _ in 0..100_000 {
            c.update(&config, 3.0);
        }
        assert!(c.total.is_finite() && c.total > 0.0);
        assert!(c.tail_probability(&config, 3.0).unwrap() > 0.1);
    }

    #[test]
    fn envelopes_score_only_surprises_bigger_than_recent_ones() {
        let config = CalibrationConfig {
            warmup: 3,
            half_life: 100.0,
            ..CalibrationConfig::default()
        };
        let mut c = Calibrator::new(CalibrationMethod::Envelope);
        for raw in [1.0, 4.0, 2.0] {
            assert_eq!(c.calibrate(&config, raw), None);
        }
        // The envelope is 4 (faded a little): 3 and 4 are inside, 4.2 is 5 % beyond.
        assert_eq!(c.calibrate(&config, 3.0), Some(0.0));
        let beyond = c
            .calibrate(&config, 4.2 * 0.5f64.powf(2.0 / 100.0))
            .unwrap();
        assert!((beyond - 3.0).abs() < 1e-9, "{beyond}");
        // After a few half-lives of small scores the envelope has come down again.
        for _ in 0..500 {
            c.calibrate(&config, 0.5);
        }
        assert!(c.calibrate(&config, 2.0).unwrap() > 3.0);
    }

    /// Calibrates `raws` in turn, returning the last point's score.
    fn calibrate_all(config: &CalibrationConfig, raws: impl IntoIterator<Item = f64>) -> f64 {
        let mut c = Calibrator::new(CalibrationMethod::Envelope);
        let mut last = None;
        for raw in raws {
            last = c.calibrate(config, raw);
        }
        last.expect("warm-up is over")
    }

    #[test]
    fn an_incident_does_not_hide_the_next_of_its_size() {
        let quiet = || std::iter::repeat_n(1.0, 200);
        let incident_then_quiet_then_incident = |config: &CalibrationConfig| {
            calibrate_all(
                config,
                quiet()
                    .chain([100.0])
                    .chain(std::iter::repeat_n(1.0, 100))
                    .chain([100.0]),
            )
        };
        let capped = CalibrationConfig::default();
        assert_eq!(capped.learn_cap, 3.0);
        // The first incident lifted the envelope to 3, not 100, so the second scores about a
        // third of the first: still hundreds of times the alert level.
        let second = incident_then_quiet_then_incident(&capped);
        let first = calibrate_all(&capped, quiet().chain([100.0]));
        assert!(
            second > first / 3.5 && second > 1000.0,
            "{first} then {second}"
        );
        let uncapped = CalibrationConfig {
            learn_cap: f64::INFINITY,
            ..capped
        };
        // Uncapped, the envelope remembers 100 (faded to 93): the second is barely beyond it.
        let hidden = incident_then_quiet_then_incident(&uncapped);
        assert!(hidden < 10.0, "{hidden}");
    }

    #[test]
    fn a_new_regime_lifts_the_capped_envelope_within_a_few_points() {
        let config = CalibrationConfig::default();
        let shifted = |points| {
            calibrate_all(
                &config,
                std::iter::repeat_n(1.0, 200).chain(std::iter::repeat_n(100.0, points)),
            )
        };
        // ×3 per point: 1 → 3 → 9 → 27 → 81 → 100 (at the fifth point of the new regime).
        assert!(shifted(4) > 0.0);
        assert_eq!(shifted(6), 0.0);
    }

    #[test]
    fn a_learn_cap_below_one_is_refused() {
        for cap in [0.5, 0.0, f64::NAN] {
            let config = CalibrationConfig {
                learn_cap: cap,
                ..CalibrationConfig::default()
            };
            let message = config.validate().unwrap_err().to_string();
            assert!(message.contains("learn_cap must be 1 or more"), "{message}");
        }
    }

    #[test]
    fn a_calibrator_of_another_method_starts_afresh() {
        let mut c = Calibrator::new(CalibrationMethod::Tail);
        let config = CalibrationConfig {
            warmup: 1,
            ..CalibrationConfig::default()
        };
        assert_eq!(c.calibrate(&config, 1.0), None);
        assert!(matches!(c, Calibrator::Envelope(_)));
        assert_eq!(c.calibrate(&config, 1.0), Some(0.0));
    }
}
