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
//! itself instead, by asking whether the tails are Gaussian:
//!
//! - the level is an exponentially weighted mean of the value (`alpha`), learnt with values
//!   clipped to `clip_sigma` noise sigmas, so an incident does not drag it far;
//! - the noise sigma comes from successive differences (see [`Jitter`]), which a slow cycle, a
//!   trend or a level shift hardly move;
//! - the share of 20-point windows with a point beyond 3σ is counted with fading weights
//!   (`memory` points) and a prior of a Gaussian's share (5.3 %); where it runs above
//!   `max_excess` times that, the tails are heavier than a Gaussian's and the detector abstains. Otherwise a residual of z
//!   sigmas has the tail probability of a Gaussian z, made likelier by the observed excess, and
//!   scores its sigma-equivalent beyond `offset` (3), three points of score per `offset`, like
//!   the newcomer and stuck detectors: the ensemble's warning level 2 needs a 5σ surprise.
//!
//! Counting windows rather than points keeps an incident from teaching the detector that the
//! tails are heavy: a level shift and the level's catching up stray for a dozen points but hit
//! two or three windows, while a series that keeps producing outliers hits window after window.

use serde::{Deserialize, Serialize};

use aiops_schemas::Band;

use super::{Detector, Score, Snapshot};
use crate::calibration::{sigma_of_tail, tail_of_sigma};
use crate::error::{Error, Result};
use crate::features::{Features, Input, Jitter};
use crate::params;

/// Registry name.
pub const KIND: &str = "residual";
const SNAPSHOT_VERSION: u16 = 1;

/// Points per window of the tails' judgement.
const WINDOW: u8 = 20;
/// The share of windows of 20 Gaussian points with one beyond 3σ: 1 − (1 − 0.0027)^20.
const GAUSSIAN_SHARE: f64 = 0.052_632;
/// Weight, in windows, of the prior on the share. The prior is twice the share at which the
/// detector abstains: a series has to show about 15 windows (300 points) of Gaussian tails
/// before it speaks, so a short series of unknown tails stays unjudged.
const PRIOR_WINDOWS: f64 = 15.0;

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
    /// Points after which a past point's weight in the share beyond 3σ has fallen to 1/e.
    pub memory: f64,
    /// The share beyond 3σ, as a multiple of a Gaussian's, above which the detector abstains.
    pub max_excess: f64,
    /// The sigma-equivalent that scores 0; each `offset / 3` beyond it adds 1.
    pub offset: f64,
    /// Values farther than this many noise sigmas from the level are learnt clipped.
    pub clip_sigma: f64,
}

impl Default for ResidualConfig {
    fn default() -> Self {
        ResidualConfig {
            input: Input::Value,
            alpha: 0.1,
            warmup: 30,
            memory: 2_000.0,
            max_excess: 3.0,
            offset: 3.0,
            clip_sigma: 4.0,
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
            ],
        )?;
        if !(self.memory.is_finite() && self.memory >= 10.0) {
            return Err(Error::config(
                KIND,
                format!("memory must be at least 10 points, not {}", self.memory),
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
    /// Fading counts of windows learnt and of those with a point beyond 3σ.
    weight: f64,
    beyond: f64,
    /// Points of the current window so far, and whether one of them went beyond 3σ.
    window_points: u8,
    window_hit: bool,
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
        self.state
            .jitter
            .sigma(1.0)
            .filter(|s| *s > 0.0)
            .map(|s| s * (1.0 + alpha / (2.0 - alpha)).sqrt())
    }

    /// The share beyond 3σ as a multiple of a Gaussian's.
    fn excess(&self) -> f64 {
        let state = &self.state;
        let prior = 2.0 * self.config.max_excess * GAUSSIAN_SHARE;
        let share = (state.beyond + PRIOR_WINDOWS * prior) / (state.weight + PRIOR_WINDOWS);
        share / GAUSSIAN_SHARE
    }

    /// The residual in sigmas, and its score unless the tails are not Gaussian; `None` while
    /// warming up.
    fn judge(&self, x: f64, sigma: Option<f64>) -> Option<(f64, Option<f64>, f64)> {
        if self.state.count < self.config.warmup {
            return None;
        }
        let sigma = sigma?;
        let z = (x - self.state.level).abs() / sigma;
        let excess = self.excess();
        let offset = self.config.offset;
        let score = (excess <= self.config.max_excess).then(|| {
            // The tail is only made likelier below, so a residual within `offset` scores 0:
            // most points skip the costly tail functions.
            if z <= offset {
                return 0.0;
            }
            // A share of windows hit `excess` times a Gaussian's makes any one point about as
            // much likelier to stray.
            let surprise = sigma_of_tail(tail_of_sigma(z) * excess.max(1.0));
            3.0 * (surprise - offset).max(0.0) / offset
        });
        Some((z, score, sigma))
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
        let (_, score, sigma) = self.judge(features.get(self.config.input), self.sigma())?;
        let score = score?;
        let (level, offset) = (self.state.level, self.config.offset);
        Some(Score {
            score,
            expected: Band {
                lower: level - offset * sigma,
                upper: level + offset * sigma,
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
        // One noise estimate serves the judgement and the clipping.
        let sigma = self.sigma();
        let judged = self.judge(x, sigma);
        let state = &mut self.state;
        state.count = state.count.saturating_add(1);
        // The tails are judged by windows of WINDOW points: the share of windows with a point
        // beyond 3σ. An incident and its aftermath (the level catching up after a shift) hit
        // two or three windows however many of their points stray; outliers that keep coming
        // hit window after window.
        if let Some((z, _, _)) = judged {
            state.window_hit |= z > 3.0;
            state.window_points += 1;
            if state.window_points == WINDOW {
                let keep = 1.0 - f64::from(WINDOW) / self.config.memory;
                state.weight = state.weight * keep + 1.0;
                state.beyond = state.beyond * keep + f64::from(u8::from(state.window_hit));
                state.window_points = 0;
                state.window_hit = false;
            }
        }
        state.jitter.update(x);
        let learnt = match sigma {
            Some(sigma) if state.count > 1 => {
                let limit = self.config.clip_sigma * sigma;
                state.level + (x - state.level).clamp(-limit, limit)
            }
            _ => x,
        };
        let weight = self.config.alpha.max(1.0 / f64::from(state.count));
        state.level += weight * (learnt - state.level);
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::encode(KIND, SNAPSHOT_VERSION, &self.state)
    }

    fn restore(&mut self, snapshot: &Snapshot) -> Result<()> {
        let state: ResidualState = snapshot.decode(KIND, SNAPSHOT_VERSION)?;
        let sane = state.level.is_finite()
            && state.weight.is_finite()
            && state.weight >= 0.0
            && state.beyond >= 0.0
            && state.beyond <= state.weight
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

    /// A Gaussian draw (Box–Muller) from a SplitMix64 stream.
    struct Normal(crate::rng::Rng);

    impl Normal {
        fn next(&mut self) -> f64 {
            let u1 = 1.0 - (self.0.next() >> 11) as f64 / (1u64 << 53) as f64;
            let u2 = (self.0.next() >> 11) as f64 / (1u64 << 53) as f64;
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        }
    }

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

    /// A daily cycle of 4 noise sigmas' amplitude over 1,440 points, with Gaussian noise.
    fn cycle(normal: &mut Normal, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                100.0
                    + 20.0 * (std::f64::consts::TAU * i as f64 / 1440.0).sin()
                    + 5.0 * normal.next()
            })
            .collect()
    }

    #[test]
    fn a_spike_inside_a_daily_cycle_is_caught_and_the_noise_is_not() {
        let mut normal = Normal(crate::rng::Rng(11));
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
        let mut normal = Normal(crate::rng::Rng(5));
        let mut d = Residual::new(ResidualConfig::default()).unwrap();
        // Student-like noise: a Gaussian divided by the root of an independent chi-square of
        // one degree of freedom's worth, every tenth point a burst of ten times the noise.
        let values: Vec<f64> = (0..3000)
            .map(|i| {
                let scale = if i % 10 == 0 { 10.0 } else { 1.0 };
                50.0 + scale * normal.next()
            })
            .collect();
        let heard = values
            .iter()
            .enumerate()
            .filter(|&(i, &v)| d.observe(&Features::first(i as i64, v)).is_some())
            .count();
        assert!(heard < 300, "spoke on {heard} of 3000 points");
        assert!(d.excess() > ResidualConfig::default().max_excess);
    }

    #[test]
    fn an_incident_does_not_teach_it_heavy_tails_and_the_state_restores() {
        let mut normal = Normal(crate::rng::Rng(2));
        let mut d = Residual::new(ResidualConfig::default()).unwrap();
        let quiet: Vec<f64> = (0..3000).map(|_| 10.0 + normal.next()).collect();
        alarms(&mut d, &quiet);
        let before = d.excess();
        // A level shift of 8 sigmas for 50 points, then back.
        let shifted: Vec<f64> = (0..50).map(|_| 18.0 + normal.next()).collect();
        assert_eq!(alarms(&mut d, &shifted).first(), Some(&0));
        let back: Vec<f64> = (0..200).map(|_| 10.0 + normal.next()).collect();
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
        let mut bad = d.state;
        bad.beyond = bad.weight + 1.0;
        assert!(
            e.restore(&Snapshot::encode(KIND, SNAPSHOT_VERSION, &bad))
                .is_err()
        );
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
        ] {
            assert!(Residual::new(bad).is_err(), "{bad:?}");
        }
    }
}
