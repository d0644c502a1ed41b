//! The residual detector: a point's distance from the series' local level, in units of the
//! series' own point-to-point noise, scored by its Gaussian tail, on series whose residuals have
//! Gaussian tails, and silent on the others.
//!
//! The range detector sees values beyond anything the series has shown; a spike of seven noise
//! sigmas at the trough of a daily cycle stays inside that range. The other residual detectors
//! (seasonal, z-score, the forecasters) see it, but their scores go through the envelope
//! calibration, which asks for a residual more than twice the largest of the last thousand
//! points: right for the heavy tails of many real series, far too deaf on series whose noise is
//! Gaussian, where a 7σ residual is a one in a hundred billion event. This detector calibrates
//! itself instead, by asking whether the noise is Gaussian:
//!
//! - the level is an exponentially weighted mean of the value (`alpha`), learnt with values
//!   clipped to `clip_sigma` noise sigmas, so an incident does not drag it far; after
//!   `shift_points` points in a row beyond the clip on one side the level moves to their mean,
//!   so a level shift is learnt in a few points instead of straying for dozens;
//! - the value expected next is the level plus a learnt share (at most `max_phi`) of the last
//!   deviation from it: noise that carries over from point to point (utilisation, queue
//!   lengths) is scored by what is new in each point, not by how far it has wandered;
//! - the noise sigma comes from successive differences (see [`Jitter`]), which a slow cycle, a
//!   trend or a level shift hardly move, turned into the sigma of what is new in a point by
//!   the learnt share;
//! - three shares, each with fading weights (`memory` points), say whether the noise is
//!   Gaussian. The tails: the share of 20-point windows with a residual between 3σ and
//!   `incident_sigma`, against a Gaussian's 5.3 % and a prior of twice `max_excess` times it;
//!   above `max_excess` times a Gaussian's, the noise itself strays too often. The incidents:
//!   the share of windows with a residual beyond `incident_sigma`; above
//!   `max_incident_share`, the series strays so often that its "incidents" are its noise. The
//!   bulk: the share of steps smaller than a Gaussian's median step (half, for Gaussian
//!   noise); above `max_small_steps`, the series mostly repeats or creeps and moves by jumps,
//!   which no Gaussian describes. The detector abstains unless all three hold. Otherwise a
//!   residual of z sigmas has the tail probability of a Gaussian z, made likelier by the
//!   observed excess, and scores its sigma-equivalent beyond `offset` (3), three points of
//!   score per `offset`, like the newcomer and stuck detectors: the ensemble's warning level 2
//!   needs a 5σ surprise.
//!
//! Keeping incidents out of the tails' evidence is what lets the detector speak on a series
//! with frequent incidents: a spike of 10σ every 150 points is, to the band between 3σ and
//! 5σ, no evidence of heavy tails, while Laplace noise, measured in this detector's sigma
//! (from its mean step), lands there 6.4 times as often as Gaussian noise (1.72 % of points
//! against 0.27 %). Counting windows rather than points keeps a burst from
//! counting more than once.

use serde::{Deserialize, Serialize};

use aiops_schemas::Band;

use super::{Detector, Score, Snapshot};
use crate::calibration::{score_beyond, sigma_of_tail, tail_of_sigma};
use crate::error::{Error, Result};
use crate::features::{Features, Input, Jitter};
use crate::params;

/// Registry name.
pub const KIND: &str = "residual";
const SNAPSHOT_VERSION: u16 = 2;

/// Points per window of the tails' judgement.
const WINDOW: u8 = 20;
/// The share of windows of 20 Gaussian points with one beyond 3σ: 1 − (1 − 0.0027)^20 (those
/// beyond 5σ are too rare to change it).
const GAUSSIAN_SHARE: f64 = 0.052_632;
/// Weight, in windows, of the prior on the tails' share. The prior is twice the share at which
/// the detector abstains: a series has to show about 8 windows (150 points) of Gaussian tails
/// before it speaks, so a short series of unknown tails stays unjudged.
const PRIOR_WINDOWS: f64 = 5.0;
/// Weight, in steps, of the prior (a Gaussian's half) on the share of small steps.
const SMALL_STEPS_PRIOR: f64 = 20.0;
/// Largest `max_phi`: beyond it the series is nearly a random walk, not noise around a level,
/// and its deviations (σ/√(1 − φ²): 1.7σ at 0.8) would reach the 4σ clip all the time.
const PHI_CEILING: f64 = 0.8;
/// Memory, in points, of the lag-one coefficient.
const LAG_MEMORY: f64 = 500.0;

/// Parameters of the residual detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResidualConfig {
    /// The feature scored.
    pub input: Input,
    /// Smoothing factor in (0, 1] of the level.
    pub alpha: f64,
    /// Points learnt before the first score.
    pub warmup: u32,
    /// Points after which a past point's weight in the shares has fallen to 1/e.
    pub memory: f64,
    /// The share of windows with a residual between 3σ and `incident_sigma`, as a multiple of
    /// a Gaussian's, above which the detector abstains.
    pub max_excess: f64,
    /// The sigma-equivalent that scores 0; each `offset / 3` beyond it adds 1.
    pub offset: f64,
    /// Values farther than this many noise sigmas from the level are learnt clipped.
    pub clip_sigma: f64,
    /// A residual beyond this many sigmas is an incident, not evidence about the noise's tails
    /// (`inf`: every residual beyond 3σ is evidence, and no incident is ever counted).
    pub incident_sigma: f64,
    /// The share of windows with an incident above which the detector abstains.
    pub max_incident_share: f64,
    /// The share of steps smaller than a Gaussian's median step above which the detector
    /// abstains (Gaussian noise: 0.5).
    pub max_small_steps: f64,
    /// Points in a row beyond `clip_sigma` on one side after which the level moves to their
    /// mean (0: never).
    pub shift_points: u32,
    /// Predict from the last deviation from the level (an AR(1) on the deviations, its
    /// coefficient learnt, at most this; 0: the level alone), so autocorrelated noise is
    /// scored by its innovations.
    pub max_phi: f64,
}

impl Default for ResidualConfig {
    fn default() -> Self {
        ResidualConfig {
            input: Input::Value,
            alpha: 0.05,
            warmup: 30,
            memory: 2_000.0,
            max_excess: 2.75,
            offset: 3.0,
            clip_sigma: 4.0,
            incident_sigma: 5.0,
            max_incident_share: 0.2,
            max_small_steps: 0.6,
            shift_points: 3,
            max_phi: 0.5,
        }
    }
}

impl ResidualConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        params::alpha(KIND, self.alpha)?;
        params::positive(
            KIND,
            &[
                ("max_excess", self.max_excess),
                ("offset", self.offset),
                ("clip_sigma", self.clip_sigma),
                ("max_incident_share", self.max_incident_share),
                ("max_small_steps", self.max_small_steps),
            ],
        )?;
        if !(0.0..=PHI_CEILING).contains(&self.max_phi) {
            return Err(Error::config(
                KIND,
                format!(
                    "max_phi must be in [0, {PHI_CEILING}] (0: the level alone), not {}",
                    self.max_phi
                ),
            ));
        }
        let least_memory = 2.0 * f64::from(WINDOW);
        if !(self.memory.is_finite() && self.memory >= least_memory) {
            return Err(Error::config(
                KIND,
                format!(
                    "memory must be at least {least_memory} points (two windows), not {}",
                    self.memory
                ),
            ));
        }
        if self.shift_points == 1 {
            return Err(Error::config(
                KIND,
                "shift_points must be 0 (never) or at least 2: at 1 every spike would move \
                 the level onto itself",
            ));
        }
        if self.incident_sigma.is_nan() || self.incident_sigma <= 3.0 {
            return Err(Error::config(
                KIND,
                format!(
                    "incident_sigma must be above 3 (the tails' band starts there), not {}",
                    self.incident_sigma
                ),
            ));
        }
        if self.warmup < Jitter::MIN_COUNT + 1 {
            return Err(Error::config(
                KIND,
                format!(
                    "warmup must be at least {}, not {}",
                    Jitter::MIN_COUNT + 1,
                    self.warmup
                ),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
struct ResidualState {
    /// The level, an exponentially weighted mean.
    level: f64,
    /// Points learnt, saturating.
    count: u32,
    /// The point-to-point noise.
    jitter: Jitter,
    /// Fading counts of windows learnt, of those with a residual in the tails' band and of
    /// those with an incident.
    windows: f64,
    band_windows: f64,
    incidents: f64,
    /// Points of the current window so far, and what they showed.
    window_points: u8,
    window_in_band: bool,
    window_incident: bool,
    /// Fading counts of steps, and of those smaller than a Gaussian's median step.
    steps: f64,
    small_steps: f64,
    /// Points in a row beyond the clip on the side `run_side` (+1 or −1), and their sum.
    run_points: u32,
    run_side: i8,
    run_sum: f64,
    /// Fading sums of the deviation times the previous one, and of the previous one squared;
    /// the previous deviation, clipped.
    lag_product: f64,
    lag_square: f64,
    last_deviation: f64,
}

/// What [`Residual::judge`] finds of a point.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Judgement {
    /// The residual, in noise sigmas.
    z: f64,
    /// Its score; `None` where the noise is not Gaussian (the detector abstains).
    score: Option<f64>,
    /// The noise sigma it was measured in.
    sigma: f64,
}

/// The residual detector for one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Residual {
    config: ResidualConfig,
    state: ResidualState,
}

impl Residual {
    /// A detector with no history.
    pub fn new(config: ResidualConfig) -> Result<Residual> {
        config.validate()?;
        Ok(Residual {
            config,
            state: ResidualState::default(),
        })
    }

    /// The residual's standard deviation: the noise's, widened by the level's own error.
    fn sigma(&self) -> Option<f64> {
        let alpha = self.config.alpha;
        // Successive differences of an AR(1) with coefficient phi have 2(1 − phi) times its
        // variance, its innovations (1 − phi²) times: their ratio is (1 + phi) / 2.
        let phi = self.phi();
        self.state
            .jitter
            .sigma(1.0)
            .filter(|s| *s > 0.0)
            .map(|s| s * (1.0 + alpha / (2.0 - alpha)).sqrt() * (1.0 + phi).sqrt())
    }

    /// The learnt lag-one coefficient of the deviations from the level, in [0, `max_phi`].
    fn phi(&self) -> f64 {
        let state = &self.state;
        if self.config.max_phi <= 0.0 || state.count < self.config.warmup || state.lag_square <= 0.0
        {
            return 0.0;
        }
        let phi = state.lag_product / state.lag_square;
        // Sums this large cannot come from values the schema admits (|x| ≤ 1e150), but a NaN
        // here would reach `clamp`'s bounds through the sigma and panic there.
        if phi.is_finite() {
            phi.clamp(0.0, self.config.max_phi)
        } else {
            0.0
        }
    }

    /// The value expected next: the level plus the carried part of the last deviation.
    fn expected(&self) -> f64 {
        self.state.level + self.phi() * self.state.last_deviation
    }

    /// The share of windows with a residual in the tails' band, as a multiple of a Gaussian's.
    fn excess(&self) -> f64 {
        let state = &self.state;
        let prior = 2.0 * self.config.max_excess * GAUSSIAN_SHARE;
        let share = (state.band_windows + PRIOR_WINDOWS * prior) / (state.windows + PRIOR_WINDOWS);
        share / GAUSSIAN_SHARE
    }

    /// The share of windows with an incident (a prior of none, weighing `PRIOR_WINDOWS`).
    fn incident_share(&self) -> f64 {
        self.state.incidents / (self.state.windows + PRIOR_WINDOWS)
    }

    /// The share of steps smaller than a Gaussian's median step (a prior of a half).
    fn small_step_share(&self) -> f64 {
        let state = &self.state;
        (state.small_steps + SMALL_STEPS_PRIOR * 0.5) / (state.steps + SMALL_STEPS_PRIOR)
    }

    /// Whether the noise looks Gaussian enough to be scored by its tail.
    fn gaussian(&self, excess: f64) -> bool {
        excess <= self.config.max_excess
            && self.incident_share() <= self.config.max_incident_share
            && self.small_step_share() <= self.config.max_small_steps
    }

    /// The residual in sigmas, and its score unless the noise is not Gaussian; `None` while
    /// warming up.
    fn judge(&self, x: f64, expected: f64, sigma: Option<f64>) -> Option<Judgement> {
        if self.state.count < self.config.warmup {
            return None;
        }
        let sigma = sigma?;
        let z = (x - expected).abs() / sigma;
        let excess = self.excess();
        let offset = self.config.offset;
        let score = self.gaussian(excess).then(|| {
            // The tail is only made likelier below, so a residual within `offset` scores 0:
            // most points skip the costly tail functions.
            if z <= offset {
                return 0.0;
            }
            // A share of windows hit `excess` times a Gaussian's makes any one point about as
            // much likelier to stray.
            let surprise = sigma_of_tail(tail_of_sigma(z) * excess.max(1.0));
            score_beyond(surprise, offset)
        });
        Some(Judgement { z, score, sigma })
    }

    /// Counts the residual `z` into the current window, closing it after `WINDOW` points.
    fn count_window(&mut self, z: f64) {
        let incident_sigma = self.config.incident_sigma;
        let keep = 1.0 - f64::from(WINDOW) / self.config.memory;
        let state = &mut self.state;
        state.window_in_band |= z > 3.0 && z <= incident_sigma;
        state.window_incident |= z > incident_sigma;
        state.window_points += 1;
        if state.window_points == WINDOW {
            state.windows = state.windows * keep + 1.0;
            state.band_windows =
                state.band_windows * keep + f64::from(u8::from(state.window_in_band));
            state.incidents = state.incidents * keep + f64::from(u8::from(state.window_incident));
            state.window_points = 0;
            state.window_in_band = false;
            state.window_incident = false;
        }
    }

    /// Follows points beyond the clip; true when `shift_points` of them in a row on one side
    /// moved the level to their mean.
    fn follow_shift(&mut self, x: f64, side: i8) -> bool {
        let state = &mut self.state;
        if side != 0 && side == state.run_side && state.run_points > 0 {
            state.run_points = state.run_points.saturating_add(1);
            state.run_sum += x;
        } else {
            state.run_side = side;
            state.run_points = u32::from(side != 0);
            state.run_sum = x;
        }
        let shift = self.config.shift_points;
        if shift > 0 && state.run_points >= shift {
            state.level = state.run_sum / f64::from(state.run_points);
            state.run_points = 0;
            state.last_deviation = 0.0;
            return true;
        }
        false
    }
}

impl Detector for Residual {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(self.config).unwrap_or_default()
    }

    #[inline]
    fn score(&self, features: &Features) -> Option<Score> {
        let expected = self.expected();
        let Judgement { score, sigma, .. } =
            self.judge(features.get(self.config.input), expected, self.sigma())?;
        let score = score?;
        let offset = self.config.offset;
        Some(Score {
            score,
            expected: Band {
                lower: expected - offset * sigma,
                upper: expected + offset * sigma,
            },
        })
    }

    /// A Gaussian tail, on series shown to have one, is its calibration.
    fn self_calibrated(&self) -> bool {
        true
    }

    #[inline]
    fn update(&mut self, features: &Features) {
        let x = features.get(self.config.input);
        if !x.is_finite() {
            return;
        }
        // One noise estimate and one expected value serve the judgement and the clipping.
        let sigma = self.sigma();
        let expected = self.expected();
        if let Some(judgement) = self.judge(x, expected, sigma) {
            self.count_window(judgement.z);
        }
        let step_keep = 1.0 - 1.0 / self.config.memory;
        let state = &mut self.state;
        state.count = state.count.saturating_add(1);
        if let Some(small) = state.jitter.below_gaussian_median(x) {
            state.steps = state.steps * step_keep + 1.0;
            state.small_steps = state.small_steps * step_keep + f64::from(u8::from(small));
        }
        state.jitter.update(x);
        let learnt = match sigma {
            Some(sigma) if state.count > 1 => {
                let limit = self.config.clip_sigma * sigma;
                // Beyond the clip is judged on what the point brings that was not expected,
                // the quantity scored; the level learns its own deviation, clipped.
                let innovation = x - expected;
                let side = if innovation > limit {
                    1
                } else if innovation < -limit {
                    -1
                } else {
                    0
                };
                let deviation = x - state.level;
                if side == 0 {
                    // Only points within the clip teach the carried share: a spike's or a
                    // shift's deviation would pull it towards 1 and echo into the next point.
                    let lag_keep = 1.0 - 1.0 / LAG_MEMORY;
                    state.lag_product =
                        state.lag_product * lag_keep + deviation * state.last_deviation;
                    state.lag_square = state.lag_square * lag_keep + state.last_deviation.powi(2);
                    state.last_deviation = deviation;
                } else {
                    state.last_deviation = 0.0;
                }
                if self.follow_shift(x, side) {
                    return;
                }
                self.state.level + deviation.clamp(-limit, limit)
            }
            _ => x,
        };
        let state = &mut self.state;
        let weight = self.config.alpha.max(1.0 / f64::from(state.count));
        state.level += weight * (learnt - state.level);
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::encode(KIND, SNAPSHOT_VERSION, &self.state)
    }

    fn restore(&mut self, snapshot: &Snapshot) -> Result<()> {
        let state: ResidualState = snapshot.decode(KIND, SNAPSHOT_VERSION)?;
        let counts = |part: f64, whole: f64| part >= 0.0 && part <= whole;
        let sane = state.level.is_finite()
            && state.windows.is_finite()
            && state.steps.is_finite()
            && state.run_sum.is_finite()
            && state.lag_product.is_finite()
            && state.lag_square.is_finite()
            && state.lag_square >= 0.0
            && state.last_deviation.is_finite()
            && counts(state.band_windows, state.windows)
            && counts(state.incidents, state.windows)
            && counts(state.small_steps, state.steps)
            && state.window_points < WINDOW
            && state.jitter.is_sane();
        if !sane {
            return Err(Error::SnapshotCorrupt {
                kind: KIND.into(),
                message: "level or counts are not finite or inconsistent".into(),
            });
        }
        self.state = state;
        Ok(())
    }

    fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::rng::Rng;

    /// Scores every point before learning it; the points scoring above 2.
    fn alarms(d: &mut Residual, values: &[f64]) -> Vec<usize> {
        values
            .iter()
            .enumerate()
            .filter(|&(i, &v)| {
                d.observe(&Features::first(i as i64, v))
                    .is_some_and(|s| s.score > 2.0)
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// How many of the points the detector scored rather than abstained on.
    fn spoken(d: &mut Residual, values: &[f64]) -> usize {
        values
            .iter()
            .enumerate()
            .filter(|&(i, &v)| d.observe(&Features::first(i as i64, v)).is_some())
            .count()
    }

    /// A daily cycle of 4 noise sigmas' amplitude over 1,440 points, with Gaussian noise.
    fn cycle(normal: &mut Rng, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                100.0
                    + 20.0 * (std::f64::consts::TAU * i as f64 / 1440.0).sin()
                    + 5.0 * normal.normal()
            })
            .collect()
    }

    #[test]
    fn a_spike_inside_a_daily_cycle_is_caught_and_the_noise_is_not() {
        let mut normal = Rng(11);
        let mut d = Residual::new(ResidualConfig::default()).unwrap();
        let mut values = cycle(&mut normal, 3000);
        assert!(alarms(&mut d.clone(), &values).is_empty());
        // Seven noise sigmas up at the trough, where the range has seen far higher values.
        values[2520] = 100.0 - 20.0 + 35.0;
        values[2700] -= 40.0;
        assert_eq!(alarms(&mut d, &values), [2520, 2700]);
    }

    #[test]
    fn heavy_tails_make_it_abstain() {
        let mut normal = Rng(5);
        let mut d = Residual::new(ResidualConfig::default()).unwrap();
        // Gaussian noise with every tenth point drawn ten times as wide.
        let values: Vec<f64> = (0..3000)
            .map(|i| {
                let scale = if i % 10 == 0 { 10.0 } else { 1.0 };
                50.0 + scale * normal.normal()
            })
            .collect();
        let heard = spoken(&mut d, &values);
        assert!(heard < 300, "spoke on {heard} of 3000 points");
        assert!(d.excess() > ResidualConfig::default().max_excess);
    }

    #[test]
    fn an_incident_does_not_teach_it_heavy_tails_and_the_state_restores() {
        let mut normal = Rng(2);
        let mut d = Residual::new(ResidualConfig::default()).unwrap();
        let quiet: Vec<f64> = (0..3000).map(|_| 10.0 + normal.normal()).collect();
        alarms(&mut d, &quiet);
        let before = d.excess();
        // A level shift of 8 sigmas for 50 points, then back.
        let shifted: Vec<f64> = (0..50).map(|_| 18.0 + normal.normal()).collect();
        assert_eq!(alarms(&mut d, &shifted).first(), Some(&0));
        let back: Vec<f64> = (0..200).map(|_| 10.0 + normal.normal()).collect();
        alarms(&mut d, &back);
        // Two shifts hit a few windows: the share grows, but the detector still speaks.
        assert!(
            d.excess() < ResidualConfig::default().max_excess,
            "{before} → {}",
            d.excess()
        );
        assert_eq!(alarms(&mut d.clone(), &[18.0]), [0]);
        let mut e = Residual::new(ResidualConfig::default()).unwrap();
        e.restore(&d.snapshot()).unwrap();
        assert_eq!(d, e);
        let corrupt: [fn(&mut ResidualState); 5] = [
            |s| s.band_windows = s.windows + 1.0,
            |s| s.incidents = s.windows + 1.0,
            |s| s.small_steps = s.steps + 1.0,
            |s| s.lag_square = -1.0,
            |s| s.last_deviation = f64::NAN,
        ];
        for corrupt in corrupt {
            let mut bad = d.state;
            corrupt(&mut bad);
            assert!(
                e.restore(&Snapshot::encode(KIND, SNAPSHOT_VERSION, &bad))
                    .is_err()
            );
        }
        assert_eq!(d, e, "a refused snapshot leaves the state alone");
        for bad in [
            ResidualConfig {
                alpha: 0.0,
                ..ResidualConfig::default()
            },
            ResidualConfig {
                warmup: 3,
                ..ResidualConfig::default()
            },
            ResidualConfig {
                memory: 1.0,
                ..ResidualConfig::default()
            },
            ResidualConfig {
                incident_sigma: 3.0,
                ..ResidualConfig::default()
            },
            ResidualConfig {
                max_small_steps: f64::NAN,
                ..ResidualConfig::default()
            },
            ResidualConfig {
                max_phi: 0.9,
                ..ResidualConfig::default()
            },
            ResidualConfig {
                shift_points: 1,
                ..ResidualConfig::default()
            },
            ResidualConfig {
                memory: 39.0,
                ..ResidualConfig::default()
            },
        ] {
            assert!(Residual::new(bad).is_err(), "{bad:?}");
        }
    }

    /// Gaussian noise with an incident every 150 points from point 75: spikes of 8σ and level
    /// shifts of ±8σ in turn, what a young service's first days can look like.
    fn incidents_every_150(normal: &mut Rng, n: usize) -> (Vec<f64>, Vec<usize>) {
        let mut level = 50.0;
        let mut starts = Vec::new();
        let values = (0..n)
            .map(|i| {
                let mut x = level + normal.normal();
                if i % 150 == 75 {
                    starts.push(i);
                    match (i / 150) % 3 {
                        0 => x += 8.0,
                        1 => {
                            level += 8.0;
                            x += 8.0;
                        }
                        _ => {
                            level -= 8.0;
                            x -= 8.0;
                        }
                    }
                }
                x
            })
            .collect();
        (values, starts)
    }

    #[test]
    fn frequent_incidents_do_not_pass_for_heavy_tails() {
        let mut normal = Rng(23);
        let (values, starts) = incidents_every_150(&mut normal, 1500);
        let mut d = Residual::new(ResidualConfig::default()).unwrap();
        let heard = alarms(&mut d, &values);
        // It speaks once the prior has been outweighed (about 450 points here, three of
        // whose incidents fell in its evidence) and then catches every incident.
        let later: Vec<usize> = starts.iter().copied().filter(|&s| s >= 450).collect();
        let caught = later.iter().filter(|s| heard.contains(s)).count();
        assert_eq!(caught, later.len(), "{heard:?}");
        // A shift scores until the level has moved: its first `shift_points` points.
        assert!(
            heard
                .iter()
                .all(|h| starts.iter().any(|s| (*s..*s + 3).contains(h))),
            "alarms off the incidents: {heard:?}"
        );
        // Counting every residual beyond 3σ as evidence of heavy tails, and following a shift
        // only by the clipped mean, teaches the detector the incidents are its noise.
        let mut naive = Residual::new(ResidualConfig {
            incident_sigma: f64::INFINITY,
            shift_points: 0,
            ..ResidualConfig::default()
        })
        .unwrap();
        let naive_heard = alarms(&mut naive, &values);
        assert!(
            naive_heard.len() < caught / 2,
            "{naive_heard:?} against {caught}"
        );
    }

    #[test]
    fn a_level_shift_is_learnt_in_shift_points() {
        let mut normal = Rng(31);
        let mut d = Residual::new(ResidualConfig::default()).unwrap();
        let quiet: Vec<f64> = (0..1000).map(|_| 10.0 + normal.normal()).collect();
        assert!(alarms(&mut d, &quiet).is_empty());
        let shifted: Vec<f64> = (0..100).map(|_| 20.0 + normal.normal()).collect();
        // The first points of the shift are the incident; then the level has moved.
        let heard = alarms(&mut d, &shifted);
        assert_eq!(heard.first(), Some(&0));
        assert!(heard.iter().all(|&i| i < 3), "{heard:?}");
        assert!((d.state.level - 20.0).abs() < 1.0, "{}", d.state.level);
    }

    #[test]
    fn a_series_of_repeats_and_jumps_is_not_taken_for_gaussian() {
        let mut rng = crate::rng::Rng(7);
        let mut normal = Rng(8);
        let mut d = Residual::new(ResidualConfig::default()).unwrap();
        // A quantised gauge: it holds its value four steps in five, then moves by a jump.
        let mut x = 40.0;
        let values: Vec<f64> = (0..3000)
            .map(|_| {
                if rng.next().is_multiple_of(5) {
                    x = (x + 3.0 * normal.normal()).round();
                }
                x
            })
            .collect();
        let heard = spoken(&mut d, &values);
        assert!(heard < 100, "spoke on {heard} of 3000 points");
        // Not the small steps alone: its sigma, learnt from steps that are mostly 0, makes
        // every move an incident too (the next test isolates the small-step guard).
        assert!(d.small_step_share() > 0.7, "{}", d.small_step_share());
        assert!(d.incident_share() > 0.2, "{}", d.incident_share());
        // Gaussian noise takes half its steps below the median step.
        let mut g = Residual::new(ResidualConfig::default()).unwrap();
        let noise: Vec<f64> = (0..3000).map(|_| 40.0 + normal.normal()).collect();
        alarms(&mut g, &noise);
        let share = g.small_step_share();
        assert!((0.45..0.55).contains(&share), "{share}");
        assert!(g.incident_share() < 0.05, "{}", g.incident_share());
    }

    #[test]
    fn the_small_step_guard_alone_silences_the_detector() {
        let mut normal = Rng(12);
        let noise: Vec<f64> = (0..3000).map(|_| 40.0 + normal.normal()).collect();
        let mut d = Residual::new(ResidualConfig::default()).unwrap();
        assert!(spoken(&mut d, &noise) > 2000);
        let next = Features::first(3000, 40.0);
        assert!(d.score(&next).is_some());
        // The same history, but nine steps in ten below a Gaussian's median step: only that
        // share differs, and the detector abstains.
        let mut creeping = d.clone();
        creeping.state.small_steps = 0.9 * creeping.state.steps;
        assert!(creeping.gaussian(creeping.excess()) != d.gaussian(d.excess()));
        assert!(creeping.score(&next).is_none());
        // With the guard above that share it speaks again.
        creeping.config.max_small_steps = 0.95;
        assert!(creeping.score(&next).is_some());
    }

    #[test]
    fn autocorrelated_noise_is_scored_by_its_innovations() {
        let mut normal = Rng(41);
        // Utilisation-like noise: an AR(1) of coefficient 0.6, a spike of 8 innovation sigmas
        // every 200 points from point 300.
        let mut carried = 0.0;
        let mut spikes = Vec::new();
        let values: Vec<f64> = (0..2000)
            .map(|i| {
                carried = 0.6 * carried + normal.normal();
                if i >= 300 && i % 200 == 100 {
                    spikes.push(i);
                    40.0 + carried + 8.0
                } else {
                    40.0 + carried
                }
            })
            .collect();
        let mut d = Residual::new(ResidualConfig::default()).unwrap();
        let heard = alarms(&mut d, &values);
        assert_eq!(d.phi(), 0.5, "0.6 is learnt up to the cap");
        assert!(spikes.iter().all(|s| heard.contains(s)), "{heard:?}");
        assert!(
            heard.len() <= spikes.len() + 1,
            "{heard:?} against {spikes:?}"
        );
        // Scored against the level alone, the carried noise strays like heavy tails.
        let mut level_only = Residual::new(ResidualConfig {
            max_phi: 0.0,
            ..ResidualConfig::default()
        })
        .unwrap();
        let heard = alarms(&mut level_only, &values);
        assert!(heard.len() < spikes.len() / 2, "{heard:?}");
        // Below the cap, the learnt share is the deviations' own coefficient.
        let mut carried = 0.0;
        let mild: Vec<f64> = (0..3000)
            .map(|_| {
                carried = 0.3 * carried + normal.normal();
                40.0 + carried
            })
            .collect();
        let mut d = Residual::new(ResidualConfig::default()).unwrap();
        alarms(&mut d, &mild);
        assert!((0.2..0.4).contains(&d.phi()), "{}", d.phi());
    }
}
