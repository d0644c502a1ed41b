//! The jump detector: change points, the last few points far on one side from the median of
//! those before them, in units of the series' usual step between points. It sees a level that
//! moves at once by many of its usual steps, on a series that wanders too much for a level, a
//! range or a seasonal profile to say what is normal.
//!
//! A random walk (a price, a queue that drains and fills, a pace that drifts) strays from any
//! long-run level by dozens of its noise sigmas in the normal course of things, so the residual
//! detectors either alarm all the time on it or, like `residual`, abstain; the range detector
//! waits for a value beyond everything seen, and a trending series makes new records all the
//! time. What stays stable on such a series is the size of its steps. This detector takes the
//! median of `window` points as the reference (one outlier among them does not move it): the
//! points before the last `confirm`, which must all lie beyond it on one side, the scored
//! point last. The smallest of their distances from the reference is measured in mean absolute
//! steps, averaged over a fading memory of `memory` steps: short, because a change point often
//! changes the noise too, and the series is judged against its recent behaviour. With `confirm`
//! 2, a level that moved is seen on its second point and a lone spike, which the range and
//! residual detectors judge, is no jump. Only steps that move the value are averaged: a series
//! that mostly repeats (a count at rest) and moves in bursts is measured by the size of its
//! moves. A step is learnt as at most four times the mean step, so a jump does not teach the
//! detector that jumps are usual.
//!
//! The distances are scored by their own tail, fitted per series: the share of points beyond 3
//! mean steps and an exponential tail beyond that, with the mean excess of those points (peaks
//! over a threshold), both with fading counts over `tail_memory` points and a prior of a
//! Laplace tail (5 % beyond 3 mean steps, a mean excess of 1) weighing 100 points and 5
//! exceedances. A series whose steps have heavy tails (a price moves by ten mean steps now and
//! then) learns a long tail and is judged by it; one excess is learnt as at most four times
//! the mean excess, so repeated incidents do not become the tail. A distance's tail
//! probability is scored as its sigma-equivalent beyond `offset`, three points per `offset`,
//! like the residual and stuck detectors: under the prior, a jump needs 14.4 mean steps to
//! reach the ensemble's warning level 2 (a 5σ surprise).
//!
//! With `wander` W it speaks only on series that wander: ones that set records (a value
//! beyond every one before it) at least W times as often as a stationary series would
//! ([`Records`]), and abstains on the others, where the level, range and seasonal detectors
//! judge. Measured over the corpora of `aiops eval` (docs/detection.md, "Change points"), the
//! jump detector on every series costs NAB more than it gains elsewhere; on wandering series
//! only (`wander` 2, `offset` 1.25) it is part of the default template.

use serde::{Deserialize, Serialize};

use aiops_schemas::Band;

use super::{Detector, Score, Snapshot};
use crate::calibration::{score_beyond, sigma_of_tail, tail_of_sigma};
use crate::error::{Error, Result};
use crate::features::{Features, Input, Jitter, Records};
use crate::params;

/// Registry name.
pub const KIND: &str = "jump";
const SNAPSHOT_VERSION: u16 = 2;

/// Most points in the reference window.
pub const MAX_WINDOW: usize = 15;
/// Most points in a row a jump must hold for.
pub const MAX_CONFIRM: usize = 4;
/// Points kept: the reference window and the points that confirm a jump, but the newest.
const HISTORY: usize = MAX_WINDOW + MAX_CONFIRM - 1;
/// Largest `offset`: the sigma-equivalent of the smallest tail probability is about 37.5, and
/// an offset near it would put the expected band at infinity.
const MAX_OFFSET: f64 = 30.0;
/// Distance, in mean steps, beyond which the tail is fitted (a Laplace tail puts 5 % there).
const TAIL_START: f64 = 3.0;
/// Weight, in points, of the prior (a Laplace tail) on the share beyond `TAIL_START`.
const PRIOR_POINTS: f64 = 100.0;
/// Weight, in exceedances, of the prior (a Laplace tail: 1 mean step) on their mean excess.
const PRIOR_EXCEEDANCES: f64 = 5.0;
/// One excess is learnt as at most this many times the mean excess, so an incident does not
/// teach the detector that incidents are usual.
const EXCESS_CAP: f64 = 4.0;
/// Records added to both counts of [`Records::ratio`] for `wander`: a series counts as
/// wandering only once it has set about this many records more than a stationary one would.
const WANDER_PRIOR: f64 = 10.0;
/// Largest `wander_memory`: beyond, the counts' per-point factor rounds to 1 and they no
/// longer fade.
const MAX_WANDER_MEMORY: f64 = 1e9;

/// Parameters of the jump detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JumpConfig {
    /// The feature watched.
    pub input: Input,
    /// Points whose median is the reference (1 to 15).
    pub window: u8,
    /// Points in a row, the scored one last, that must all lie beyond the reference on the
    /// same side (1 to 4); the distance scored is the smallest of theirs. At 2, a single
    /// spike (which the range and residual detectors judge) is no jump, and a level that
    /// moved is seen on its second point.
    pub confirm: u8,
    /// Steps after which a past step's weight has fallen to 1/e.
    pub memory: f64,
    /// Points after which a past point's weight in the fitted tail has fallen to 1/e.
    pub tail_memory: f64,

    /// The sigma-equivalent that scores 0; each `offset / 3` beyond it adds 1.
    pub offset: f64,
    /// Speak only on series that wander: ones that set records (a value beyond every one
    /// before it) at least this many times as often as a stationary series would, over the
    /// last `wander_memory` points or so (0: on every series). Elsewhere the detector abstains
    /// and the level, range and seasonal detectors judge.
    pub wander: f64,
    /// Points after which a past point's weight in the record counts has fallen to 1/e.
    pub wander_memory: f64,
}

impl Default for JumpConfig {
    fn default() -> Self {
        JumpConfig {
            input: Input::Value,
            window: 5,
            confirm: 2,
            memory: 50.0,
            tail_memory: 1_000.0,
            offset: 3.0,
            wander: 0.0,
            wander_memory: 300.0,
        }
    }
}

impl JumpConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        params::positive(KIND, &[("offset", self.offset)])?;
        if self.offset > MAX_OFFSET {
            return Err(Error::config(
                KIND,
                format!("offset must be at most {MAX_OFFSET}, not {}", self.offset),
            ));
        }
        if !(1..=MAX_WINDOW).contains(&usize::from(self.window)) {
            return Err(Error::config(
                KIND,
                format!(
                    "window must be 1 to {MAX_WINDOW} points, not {}",
                    self.window
                ),
            ));
        }
        if !(1..=MAX_CONFIRM).contains(&usize::from(self.confirm)) {
            return Err(Error::config(
                KIND,
                format!(
                    "confirm must be 1 to {MAX_CONFIRM} points, not {}",
                    self.confirm
                ),
            ));
        }
        if !(self.tail_memory.is_finite() && self.tail_memory >= PRIOR_POINTS) {
            return Err(Error::config(
                KIND,
                format!(
                    "tail_memory must be at least {PRIOR_POINTS} points, not {}",
                    self.tail_memory
                ),
            ));
        }
        if !(self.wander == 0.0 || (self.wander.is_finite() && self.wander >= 1.0)) {
            return Err(Error::config(
                KIND,
                format!(
                    "wander must be 0 (every series) or a ratio of at least 1, not {}",
                    self.wander
                ),
            ));
        }
        if !(self.wander_memory >= 1.0 && self.wander_memory <= MAX_WANDER_MEMORY) {
            return Err(Error::config(
                KIND,
                format!(
                    "wander_memory must be 1 to {MAX_WANDER_MEMORY} points, not {}",
                    self.wander_memory
                ),
            ));
        }
        // The fading count of records never exceeds the memory, so the ratio never exceeds
        // this: a larger `wander` would silence the detector for good.
        let reachable = 1.0 + self.wander_memory / WANDER_PRIOR;
        if self.wander > reachable {
            return Err(Error::config(
                KIND,
                format!(
                    "wander {} can never be reached with wander_memory {} (at most {reachable}): \
                     lower wander or lengthen wander_memory",
                    self.wander, self.wander_memory
                ),
            ));
        }
        if !(self.memory.is_finite() && self.memory >= f64::from(Jitter::MIN_COUNT)) {
            return Err(Error::config(
                KIND,
                format!(
                    "memory must be at least {} steps, not {}",
                    Jitter::MIN_COUNT,
                    self.memory
                ),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
struct JumpState {
    /// The last points learnt, oldest first; the first `len` are valid.
    recent: [f64; HISTORY],
    /// Valid points in `recent`.
    len: u8,
    /// The mean absolute step, of the steps that move the value (encoded as the last point,
    /// the mean and the steps learnt: the layout this state had before it was a `Jitter`).
    steps: Jitter,
    /// The tail of the distances, with fading counts: points learnt, points beyond
    /// `TAIL_START`, and their excesses beyond it summed (in mean steps).
    tail_points: f64,
    tail_beyond: f64,
    tail_excess: f64,
    /// How often the series sets records (for `wander`).
    records: Records,
}

/// The state as format version 1 wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
struct JumpStateV1 {
    recent: [f64; HISTORY],
    len: u8,
    steps: Jitter,
    tail_points: f64,
    tail_beyond: f64,
    tail_excess: f64,
}

/// The jump detector for one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Jump {
    config: JumpConfig,
    /// The tail probability of `offset`'s sigma-equivalent: what scores 0, fixed by the
    /// configuration.
    offset_tail: f64,
    /// What the tail's and the record counts' weights keep per point (from `tail_memory` and
    /// `wander_memory`), fixed by the configuration.
    tail_keep: f64,
    wander_keep: f64,
    state: JumpState,
}

impl Jump {
    /// A detector with no history.
    pub fn new(config: JumpConfig) -> Result<Jump> {
        config.validate()?;
        Ok(Jump {
            config,
            offset_tail: tail_of_sigma(config.offset),
            tail_keep: 1.0 - 1.0 / config.tail_memory,
            wander_keep: 1.0 - 1.0 / config.wander_memory,
            state: JumpState::default(),
        })
    }

    /// Points kept: the window and the confirming points before the newest.
    fn history(&self) -> usize {
        usize::from(self.config.window) + usize::from(self.config.confirm) - 1
    }

    /// The median of the window, the points before the confirming ones; `None` until enough
    /// points were learnt.
    fn reference(&self) -> Option<f64> {
        let len = usize::from(self.state.len);
        if len < self.history() {
            return None;
        }
        let window = usize::from(self.config.window);
        let mut sorted = [0.0; MAX_WINDOW];
        let sorted = &mut sorted[..window];
        sorted.copy_from_slice(&self.state.recent[..window]);
        sorted.sort_unstable_by(f64::total_cmp);
        let upper = sorted[window / 2];
        // Halves first: the sum of two values near f64::MAX would overflow.
        Some(if window % 2 == 0 {
            0.5 * sorted[window / 2 - 1] + 0.5 * upper
        } else {
            upper
        })
    }

    /// How far `x` and the confirming points before it lie from the reference, in mean steps:
    /// the smallest of their distances when all lie on one side, else 0. With the reference and
    /// the mean step; `None` while either is unknown.
    fn distance(&self, x: f64) -> Option<(f64, f64, f64)> {
        let step = self.mean_step()?;
        let reference = self.reference()?;
        let window = usize::from(self.config.window);
        let confirming = &self.state.recent[window..self.history()];
        let side = (x - reference).signum();
        let mut nearest = (x - reference).abs();
        for &p in confirming {
            let d = p - reference;
            if d.signum() != side || d == 0.0 {
                return Some((0.0, reference, step));
            }
            nearest = nearest.min(d.abs());
        }
        // A distance beyond f64's range (a subnormal step, values near its limits) is as far
        // as a distance goes, not unknown: the biggest jumps must be scored and learnt.
        let distance = nearest / step;
        (!distance.is_nan()).then_some((distance.min(f64::MAX), reference, step))
    }

    /// The share of points beyond `TAIL_START` and their mean excess, priors included.
    fn tail(&self) -> (f64, f64) {
        let state = &self.state;
        let share = (state.tail_beyond + PRIOR_POINTS * (-TAIL_START).exp())
            / (state.tail_points + PRIOR_POINTS);
        let excess =
            (state.tail_excess + PRIOR_EXCEEDANCES) / (state.tail_beyond + PRIOR_EXCEEDANCES);
        (share, excess)
    }

    /// How likely a distance of `distance` mean steps or more is: the fitted exponential tail
    /// beyond `TAIL_START`; below it `share^(d / TAIL_START)`, which is 1 at the reference,
    /// meets the share at `TAIL_START`, and is the prior's Laplace tail `e^(−d)` under the
    /// prior. (A Laplace curve scaled to meet a small fitted share would call a point on the
    /// reference itself unlikely.)
    fn tail_probability(&self, distance: f64) -> f64 {
        let (share, excess) = self.tail();
        if distance <= TAIL_START {
            share.powf(distance / TAIL_START)
        } else {
            share * (-(distance - TAIL_START) / excess).exp()
        }
    }

    /// The distance, in mean steps, whose tail probability is `offset`'s: what scores 0.
    fn usual_distance(&self) -> f64 {
        let (share, excess) = self.tail();
        let p = self.offset_tail;
        if p >= share {
            TAIL_START * p.ln() / share.ln()
        } else {
            TAIL_START + excess * (share / p).ln()
        }
    }

    /// The mean absolute step; `None` before `MIN_STEPS` steps, or when the series has not
    /// moved (no scale to measure a jump by).
    fn mean_step(&self) -> Option<f64> {
        let step = self.state.steps.mean_abs_diff()?;
        (step > 0.0 && step.is_finite()).then_some(step)
    }

    /// Whether the series wanders enough for the detector to speak (always without `wander`).
    #[inline]
    fn speaks(&self) -> bool {
        self.config.wander == 0.0 || self.state.records.ratio(WANDER_PRIOR) >= self.config.wander
    }

    /// The score of a point at `distance` mean steps from `reference`.
    fn judge(&self, distance: f64, reference: f64, step: f64) -> Score {
        let sigma = sigma_of_tail(self.tail_probability(distance));
        let usual = self.usual_distance() * step;
        Score {
            score: score_beyond(sigma, self.config.offset),
            expected: Band {
                lower: reference - usual,
                upper: reference + usual,
            },
        }
    }

    /// Learns `x`, whose distance (if known) was measured before it.
    fn learn(&mut self, x: f64, distance: Option<f64>) {
        if let Some(distance) = distance {
            let (_, excess) = self.tail();
            let keep = self.tail_keep;
            let state = &mut self.state;
            state.tail_points = state.tail_points * keep + 1.0;
            state.tail_beyond *= keep;
            state.tail_excess *= keep;
            if distance > TAIL_START {
                state.tail_beyond += 1.0;
                state.tail_excess += (distance - TAIL_START).min(EXCESS_CAP * excess);
            }
        }
        let history = self.history();
        let state = &mut self.state;
        state.records.update(x, self.wander_keep);
        // Only steps that move the value: measured by its steps of zero, every burst of a
        // count at rest would be dozens of usual steps (NAB's rogue-agent key series raised
        // 112 false alarms that way).
        state.steps.update_with(x, self.config.memory, true);
        let len = usize::from(state.len);
        if len < history {
            state.recent[len] = x;
            state.len += 1;
        } else {
            state.recent.copy_within(1..history, 0);
            state.recent[history - 1] = x;
        }
    }
}

impl Detector for Jump {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(self.config).unwrap_or_default()
    }

    #[inline]
    fn score(&self, features: &Features) -> Option<Score> {
        let x = features.get(self.config.input);
        if !x.is_finite() {
            return None;
        }
        if !self.speaks() {
            return None;
        }
        let (distance, reference, step) = self.distance(x)?;
        Some(self.judge(distance, reference, step))
    }

    /// The tail fitted to the series' own distances is its calibration.
    fn self_calibrated(&self) -> bool {
        true
    }

    #[inline]
    fn update(&mut self, features: &Features) {
        let x = features.get(self.config.input);
        if x.is_finite() {
            let distance = self.distance(x).map(|(d, _, _)| d);
            self.learn(x, distance);
        }
    }

    /// Scoring and learning measure the same distance (a sort of the window): once.
    #[inline]
    fn observe(&mut self, features: &Features) -> Option<Score> {
        let x = features.get(self.config.input);
        if !x.is_finite() {
            return None;
        }
        let measured = self.distance(x);
        let score = measured
            .filter(|_| self.speaks())
            .map(|(distance, reference, step)| self.judge(distance, reference, step));
        self.learn(x, measured.map(|(d, _, _)| d));
        score
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::encode(KIND, SNAPSHOT_VERSION, &self.state)
    }

    fn restore(&mut self, snapshot: &Snapshot) -> Result<()> {
        let mut state: JumpState = if snapshot.version == 1 {
            // Written before the record counts existed: they start from the next point.
            let old: JumpStateV1 = snapshot.decode(KIND, 1)?;
            JumpState {
                recent: old.recent,
                len: old.len,
                steps: old.steps,
                tail_points: old.tail_points,
                tail_beyond: old.tail_beyond,
                tail_excess: old.tail_excess,
                records: Records::new(),
            }
        } else {
            snapshot.decode(KIND, SNAPSHOT_VERSION)?
        };
        let history = self.history();
        let len = usize::from(state.len);
        if len > history
            || !state.recent[..len].iter().all(|v| v.is_finite())
            || !state.steps.is_sane()
            // Only moves are learnt, so a mean step of 0 with steps learnt would never move
            // again (every step capped at four times 0).
            || !state.steps.is_moves_consistent()
            || ![
                state.tail_points,
                state.tail_beyond,
                state.tail_excess,
            ]
            .iter()
            .all(|v| v.is_finite() && *v >= 0.0)
            || state.tail_beyond > state.tail_points
            || !state.records.is_sane()
        {
            return Err(Error::SnapshotCorrupt {
                kind: KIND.into(),
                message: format!(
                    "more than {history} points are kept, or a value is negative, not finite or \
                     inconsistent"
                ),
            });
        }
        // Counts learnt under a longer `wander_memory` than this configuration's: as high as
        // they can be under this one (after the check: `min` would turn a NaN into the cap).
        state.records.cap_counts(self.config.wander_memory);
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

    /// Scores every point before learning it; the scores.
    fn scores(d: &mut Jump, values: &[f64]) -> Vec<f64> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                d.observe(&Features::first(i as i64, v))
                    .map_or(0.0, |s| s.score)
            })
            .collect()
    }

    /// A random walk of Gaussian steps with standard deviation 1, from 100.
    fn walk(rng: &mut Rng, n: usize) -> Vec<f64> {
        let mut x = 100.0;
        (0..n)
            .map(|_| {
                x += rng.normal();
                x
            })
            .collect()
    }

    #[test]
    fn a_level_jump_on_a_random_walk_is_seen_at_once_and_the_wander_is_not() {
        let mut rng = Rng(3);
        let mut values = walk(&mut rng, 600);
        // A change point: the level moves by 25 step sigmas (22 mean steps) and stays.
        for v in &mut values[400..] {
            *v += 25.0;
        }
        let mut d = Jump::new(JumpConfig::default()).unwrap();
        let s = scores(&mut d, &values);
        // The first point of the new level could be a spike; the second confirms the jump.
        assert_eq!(s[400], 0.0);
        assert!(s[401] >= 2.0, "the jump scored {}", s[401]);
        let loud = s[..400].iter().filter(|&&x| x >= 2.0).count();
        assert_eq!(loud, 0, "the walk itself raised {loud} points");
        // The window's median follows the new level once most of the window is new.
        assert!(s[404..].iter().all(|&x| x < 2.0));
    }

    #[test]
    fn the_fitted_tail_makes_usual_big_steps_quiet() {
        // Steps that are mostly small with a jump of 20 step sigmas every 40 points: after a
        // while such jumps are the series' habit, and score far less than the first ones.
        let mut rng = Rng(8);
        let mut x = 0.0;
        let jumpy: Vec<f64> = (0..2000)
            .map(|i| {
                x += rng.normal() + if i % 40 == 0 { 20.0 } else { 0.0 };
                x
            })
            .collect();
        let mut d = Jump::new(JumpConfig::default()).unwrap();
        let s = scores(&mut d, &jumpy);
        let late: Vec<f64> = (1521..2000).step_by(40).map(|i| s[i]).collect();
        let first = s[41..=121].iter().step_by(40).cloned().fold(0.0, f64::max);
        let loudest_late = late.iter().cloned().fold(0.0, f64::max);
        assert!(first >= 2.0, "the first jumps scored at most {first}");
        assert!(
            loudest_late < 0.5 * first,
            "usual jumps still score {loudest_late} (first: {first})"
        );
    }

    #[test]
    fn a_huge_jump_does_not_stretch_the_tail_so_a_later_one_is_still_seen() {
        // One level shift of 1,000 step sigmas, then a walk, then a jump of 30: learnt whole,
        // the first one's excess would make the fitted tail's mean excess about 150 mean steps
        // and the second jump ordinary; learnt as at most four times the mean excess, the
        // tail barely moves.
        let mut rng = Rng(21);
        let mut values = walk(&mut rng, 900);
        for v in &mut values[300..] {
            *v += 1_000.0;
        }
        for v in &mut values[700..] {
            *v += 30.0;
        }
        let mut d = Jump::new(JumpConfig::default()).unwrap();
        let s = scores(&mut d, &values);
        assert!(s[301] >= 2.0, "the huge jump scored {}", s[301]);
        let (_, excess) = d.tail();
        assert!(
            excess < 3.0,
            "mean excess {excess} mean steps after one huge jump"
        );
        assert!(s[701] >= 2.0, "the later jump scored {}", s[701]);
    }

    #[test]
    fn a_spike_is_no_jump_and_teaches_little() {
        let mut rng = Rng(5);
        let mut values = walk(&mut rng, 300);
        values[200] += 1e6;
        let mut d = Jump::new(JumpConfig::default()).unwrap();
        let s = scores(&mut d, &values);
        assert!(
            s.iter().all(|&x| x < 2.0),
            "{:?}",
            s.iter().cloned().fold(0.0, f64::max)
        );
        // The spike's two steps count as four mean steps each, so the walk after it is
        // judged as before and a jump later is still seen on its second point.
        let step = d.mean_step().unwrap();
        assert!(step < 3.0, "mean step {step}");
        let level = values[299] + 30.0;
        d.observe(&Features::first(300, level));
        assert!(d.score(&Features::first(301, level)).unwrap().score >= 2.0);

        // With `confirm` 1 the spike itself is scored.
        let mut single = Jump::new(JumpConfig {
            confirm: 1,
            ..JumpConfig::default()
        })
        .unwrap();
        assert!(scores(&mut single, &values)[200] > 10.0);
    }

    #[test]
    fn with_wander_it_speaks_on_a_trend_and_abstains_on_stationary_noise() {
        let config = JumpConfig {
            wander: 2.0,
            offset: 1.25,
            ..JumpConfig::default()
        };
        // Stationary Gaussian noise with a level shift of 25 sigmas halfway: a few records,
        // not a wandering series; the level and range detectors judge the shift.
        let mut spoke = 0;
        for seed in 0..20 {
            let mut rng = Rng(100 + seed);
            let mut d = Jump::new(config).unwrap();
            for i in 0..2_000 {
                let level = if i >= 1_000 { 25.0 } else { 0.0 };
                let f = Features::first(i, level + rng.normal());
                spoke += usize::from(d.observe(&f).is_some());
            }
        }
        assert_eq!(spoke, 0, "spoke on {spoke} points of stationary noise");
        // A noisy trend (a record nearly every other point) with a jump of 25 sigmas: it
        // speaks, and the jump scores a warning on its second point.
        let mut rng = Rng(7);
        let values: Vec<f64> = (0..600)
            .map(|i| 0.5 * i as f64 + rng.normal() + if i >= 400 { 25.0 } else { 0.0 })
            .collect();
        let mut d = Jump::new(config).unwrap();
        let s: Vec<Option<Score>> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| d.observe(&Features::first(i as i64, v)))
            .collect();
        assert!(s[100..].iter().all(Option::is_some));
        let jump = s[401].as_ref().map_or(0.0, |s| s.score);
        assert!(jump >= 2.0, "the jump scored {jump}");
        // Scoring then learning (the trait's path) answers exactly as `observe` does.
        let mut apart = Jump::new(config).unwrap();
        for (i, (&v, expected)) in values.iter().zip(&s).enumerate() {
            let f = Features::first(i as i64, v);
            assert_eq!(apart.score(&f), *expected, "point {i}");
            apart.update(&f);
        }
        // Without `wander` the same detector speaks on the noise too.
        let mut always = Jump::new(JumpConfig {
            wander: 0.0,
            ..config
        })
        .unwrap();
        let mut rng = Rng(100);
        let heard = (0..200)
            .filter(|&i| always.observe(&Features::first(i, rng.normal())).is_some())
            .count();
        assert!(heard > 150, "{heard}");
    }

    #[test]
    fn a_flat_series_has_no_scale_and_says_nothing() {
        let mut d = Jump::new(JumpConfig::default()).unwrap();
        let s: Vec<Option<Score>> = (0..50)
            .map(|i| d.observe(&Features::first(i, 7.0)))
            .collect();
        assert!(s.iter().all(Option::is_none));
        assert!(d.score(&Features::first(50, 1e300)).is_none());
    }

    #[test]
    fn invalid_parameters_are_refused_with_their_name() {
        type Change = fn(&mut JumpConfig);
        let cases: [(Change, &str); 15] = [
            (|c| c.window = 0, "window"),
            (|c| c.window = 16, "window"),
            (|c| c.confirm = 0, "confirm"),
            (|c| c.confirm = 5, "confirm"),
            (|c| c.offset = 31.0, "offset"),
            (|c| c.memory = 5.0, "memory"),
            (|c| c.tail_memory = 99.0, "tail_memory"),
            (|c| c.offset = 0.0, "offset"),
            (|c| c.offset = f64::NAN, "offset"),
            (|c| c.wander = 0.5, "wander"),
            (|c| c.wander = f64::INFINITY, "wander"),
            (|c| c.wander_memory = 0.0, "wander_memory"),
            (|c| c.wander_memory = 1e10, "wander_memory"),
            // Counts fading over 5 points reach at most 5: a ratio of (5 + 10) / 10.
            (
                |c| {
                    c.wander = 2.0;
                    c.wander_memory = 5.0;
                },
                "never be reached",
            ),
            (|c| c.tail_memory = f64::NAN, "tail_memory"),
        ];
        for (change, name) in cases {
            let mut config = JumpConfig::default();
            change(&mut config);
            let err = Jump::new(config).unwrap_err().to_string();
            assert!(err.contains(name), "{name}: {err}");
        }
    }

    #[test]
    fn snapshots_round_trip_and_corrupt_ones_are_refused() {
        let mut rng = Rng(9);
        let values = walk(&mut rng, 200);
        let mut d = Jump::new(JumpConfig::default()).unwrap();
        scores(&mut d, &values);
        let mut copy = Jump::new(JumpConfig::default()).unwrap();
        copy.restore(&d.snapshot()).unwrap();
        assert_eq!(copy, d);

        // The state's layout, field by field (the mean step is a `Jitter`: last point, mean,
        // steps learnt), so each part can be corrupted on its own.
        #[derive(Debug, Clone, Copy, Serialize)]
        struct Layout {
            recent: [f64; HISTORY],
            len: u8,
            last: Option<f64>,
            mean_step: f64,
            steps: u32,
            tail_points: f64,
            tail_beyond: f64,
            tail_excess: f64,
            records_low: f64,
            records_high: f64,
            records_seen: u64,
            records_observed: f64,
            records_expected: f64,
        }
        let state = &d.state;
        let good = Layout {
            recent: state.recent,
            len: state.len,
            last: values.last().copied(),
            mean_step: d.mean_step().unwrap(),
            steps: 199,
            tail_points: state.tail_points,
            tail_beyond: state.tail_beyond,
            tail_excess: state.tail_excess,
            records_low: values.iter().copied().fold(f64::INFINITY, f64::min),
            records_high: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            records_seen: 200,
            records_observed: state.records.observed,
            records_expected: state.records.expected,
        };
        let mut same = Jump::new(JumpConfig::default()).unwrap();
        same.restore(&Snapshot::encode(KIND, SNAPSHOT_VERSION, &good))
            .unwrap();
        assert_eq!(same, d, "the layout is the state's");

        for corrupt in [
            Layout { len: 7, ..good },
            Layout {
                mean_step: 0.0,
                ..good
            },
            Layout {
                mean_step: -1.0,
                ..good
            },
            Layout {
                tail_excess: f64::NAN,
                ..good
            },
            Layout {
                tail_beyond: good.tail_points + 1.0,
                ..good
            },
            Layout {
                last: Some(f64::INFINITY),
                ..good
            },
            Layout {
                records_observed: -1.0,
                ..good
            },
            Layout {
                records_low: good.records_high + 1.0,
                ..good
            },
            Layout {
                records_expected: f64::NAN,
                ..good
            },
        ] {
            let snapshot = Snapshot::encode(KIND, SNAPSHOT_VERSION, &corrupt);
            let mut target = Jump::new(JumpConfig::default()).unwrap();
            let before = target.clone();
            assert!(target.restore(&snapshot).is_err(), "{corrupt:?}");
            assert_eq!(target, before);
        }

        // Counts learnt under a longer memory are capped at what this one can reach.
        let long = Layout {
            records_observed: 900.0,
            records_expected: 800.0,
            ..good
        };
        let mut short = Jump::new(JumpConfig::default()).unwrap();
        short
            .restore(&Snapshot::encode(KIND, SNAPSHOT_VERSION, &long))
            .unwrap();
        assert_eq!(
            (short.state.records.observed, short.state.records.expected),
            (300.0, 300.0)
        );

        // A snapshot from before the record counts restores all else; they start afresh.
        let old = JumpStateV1 {
            recent: state.recent,
            len: state.len,
            steps: state.steps,
            tail_points: state.tail_points,
            tail_beyond: state.tail_beyond,
            tail_excess: state.tail_excess,
        };
        let mut upgraded = Jump::new(JumpConfig::default()).unwrap();
        upgraded.restore(&Snapshot::encode(KIND, 1, &old)).unwrap();
        assert_eq!(upgraded.state.records, Records::new());
        assert_eq!(
            JumpState {
                records: state.records,
                ..upgraded.state
            },
            d.state
        );
    }

    #[test]
    fn the_expected_band_holds_the_points_that_score_zero() {
        let mut rng = Rng(12);
        let values = walk(&mut rng, 300);
        let mut d = Jump::new(JumpConfig {
            confirm: 1,
            ..JumpConfig::default()
        })
        .unwrap();
        scores(&mut d, &values);
        let probe = Features::first(300, values[299]);
        let band = d.score(&probe).unwrap().expected;
        for x in [band.lower + 1e-6, band.upper - 1e-6] {
            assert_eq!(d.score(&Features::first(300, x)).unwrap().score, 0.0);
        }
        for x in [band.lower - 1.0, band.upper + 1.0] {
            assert!(d.score(&Features::first(300, x)).unwrap().score > 0.0);
        }
    }

    #[test]
    fn a_point_on_the_reference_scores_nothing_at_any_offset() {
        // Regression: below 3 mean steps the tail was a Laplace curve scaled to meet the
        // fitted share; on quiet series (a share far below the prior's) it called a point on
        // the median itself unlikely, and at offset 1 every point scored a warning.
        let mut rng = Rng(21);
        let noise: Vec<f64> = (0..3000).map(|_| 10.0 + rng.normal()).collect();
        let mut d = Jump::new(JumpConfig {
            offset: 1.0,
            confirm: 1,
            ..JumpConfig::default()
        })
        .unwrap();
        let s = scores(&mut d, &noise);
        assert!(d.tail().0 < (-TAIL_START).exp(), "share {}", d.tail().0);
        let reference = d.reference().unwrap();
        let at = d.score(&Features::first(3000, reference)).unwrap();
        assert_eq!(at.score, 0.0);
        assert!(at.expected.lower <= reference && reference <= at.expected.upper);
        // A warning at offset 1 is a surprise of 5/3 σ, one point in ten or so under the
        // model: the noise may reach it that often (within twice), not at every point.
        let loud = s[100..].iter().filter(|&&x| x >= 2.0).count();
        let expected = tail_of_sigma(1.0 + 2.0 / 3.0) * 2900.0;
        assert!(
            (loud as f64) < 2.0 * expected,
            "{loud} of 2900 noise points scored a warning at offset 1 (about {expected:.0} expected)"
        );
    }

    #[test]
    fn values_at_the_limits_of_f64_neither_panic_nor_go_unscored() {
        let mut d = Jump::new(JumpConfig::default()).unwrap();
        let extremes: Vec<f64> = (0..60)
            .map(|i| if i % 2 == 0 { f64::MAX } else { -f64::MAX })
            .collect();
        for s in scores(&mut d, &extremes) {
            assert!(s.is_finite() && s >= 0.0);
        }
        // Steps of the smallest subnormal, then a jump of 1: a distance beyond f64's range.
        let mut tiny = Jump::new(JumpConfig::default()).unwrap();
        let creep: Vec<f64> = (0..40).map(|i| f64::from(i % 2) * 5e-324).collect();
        scores(&mut tiny, &creep);
        tiny.observe(&Features::first(40, 1.0));
        let jump = tiny.score(&Features::first(41, 1.0)).unwrap();
        assert!(
            jump.score >= 2.0 && jump.score.is_finite(),
            "{}",
            jump.score
        );
        assert!(tiny.score(&Features::first(42, f64::NAN)).is_none());
    }

    #[test]
    fn a_snapshot_for_a_longer_history_is_refused_by_a_shorter_one() {
        let mut rng = Rng(4);
        let values = walk(&mut rng, 100);
        let mut long = Jump::new(JumpConfig {
            window: 9,
            ..JumpConfig::default()
        })
        .unwrap();
        scores(&mut long, &values);
        let mut short = Jump::new(JumpConfig::default()).unwrap();
        let before = short.clone();
        assert!(short.restore(&long.snapshot()).is_err());
        assert_eq!(short, before);
    }
}
