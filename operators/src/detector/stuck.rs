//! The stuck-value detector: a series that repeats its last value far longer than it ever does.
//!
//! A metric that stops moving is an incident of its own kind: an exporter that hangs and
//! re-sends its last sample, a counter that stopped, a gauge frozen by a crashed agent. Its
//! values stay inside every range and every residual is zero, so the other detectors see
//! nothing, or worse, a quieter series. This detector counts how long the value has repeated
//! exactly and scores how unlikely such a run is under the series' own habits of repeating.
//!
//! The habits are a two-state chain over the steps between successive points: a step either
//! repeats the value or changes it. `p` is the chance that a repeat follows a change and `q`
//! the chance that a repeat follows a repeat, both learnt with fading counts and a prior of
//! one half step for `p` and, for `q`, two steps at `√p`. A run of `k` repeats then has probability `p · q^(k−1)`, which is scored as
//! its sigma-equivalent beyond `offset` (3), three points of score per `offset`, like the
//! newcomer detector. It announces a run at a score of 3, a run as unlikely as a 6σ deviate: a
//! series is tested at every point, and runs of equal values are common enough in real data
//! (counts, quantised gauges) that 5σ raised on them.
//! A series of continuous readings that has never repeated is caught within a few points of
//! freezing; a count that is often 0 for a while needs a run much longer than its usual ones.
//!
//! While a run is alarming, its repeats are not learnt, so a stuck series does not teach the
//! detector that being stuck is normal; a run longer than `memory` points is the series' new
//! behaviour and is learnt. The detector speaks once per run, on the point that makes it
//! alarming (a score of `alarm`), and abstains on every other point: a stuck
//! stretch is one incident, and its later points are no more anomalous than the first.

use serde::{Deserialize, Serialize};

use aiops_schemas::Band;

use super::{Detector, Score, Snapshot};
use crate::calibration::{score_beyond, sigma_of_tail};
use crate::error::{Error, Result};
use crate::features::{Features, Input};
use crate::params;

/// Registry name.
pub const KIND: &str = "stuck";
const SNAPSHOT_VERSION: u16 = 1;

/// Parameters of the stuck-value detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StuckConfig {
    /// The feature watched.
    pub input: Input,
    /// Steps learnt before the first score.
    pub min_points: u32,
    /// Steps after which a past step's weight has fallen to 1/e.
    pub memory: f64,
    /// The sigma-equivalent that scores 0; each `offset / 3` beyond it adds 1.
    pub offset: f64,
    /// The score at which a run is announced (above the ensemble's warning level 2): the
    /// detector scores the first point of a run that reaches it and abstains on the others.
    pub alarm: f64,
}

impl Default for StuckConfig {
    fn default() -> Self {
        StuckConfig {
            input: Input::Value,
            min_points: 30,
            memory: 2_000.0,
            offset: 3.0,
            alarm: 3.0,
        }
    }
}

impl StuckConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        params::positive(KIND, &[("offset", self.offset), ("alarm", self.alarm)])?;
        if !(self.memory.is_finite() && self.memory >= 10.0) {
            return Err(Error::config(
                KIND,
                format!("memory must be at least 10 steps, not {}", self.memory),
            ));
        }
        Ok(())
    }
}

/// Weight, in steps, of the prior on the chance that a repeat follows a repeat.
const PRIOR_STEPS: f64 = 2.0;

/// Fading counts of steps by what preceded them.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
struct Habits {
    /// Steps that followed a change, and how many of them repeated.
    after_change: f64,
    repeats_after_change: f64,
    /// Steps that followed a repeat, and how many of them repeated.
    after_repeat: f64,
    repeats_after_repeat: f64,
    /// Mean absolute size of the steps that changed the value.
    step: f64,
    /// Steps learnt, saturating.
    steps: u32,
}

impl Habits {
    /// `p · q^(k−1)`: how likely a run of `k ≥ 1` repeats is.
    fn run_probability(&self, k: u32) -> f64 {
        let p = (self.repeats_after_change + 0.5) / (self.after_change + 1.0);
        // Before runs are seen, a repeat is taken to make the next one likelier (√p > p):
        // values that repeat at all usually do so in runs (a quantised reading, a count at
        // rest), so a series needs more than a few equal values in a row to alarm. Runs seen
        // move q to what they show.
        let q = (self.repeats_after_repeat + PRIOR_STEPS * p.sqrt())
            / (self.after_repeat + PRIOR_STEPS);
        p * q.powf(f64::from(k.saturating_sub(1)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
struct StuckState {
    habits: Habits,
    /// The last value learnt.
    last: Option<f64>,
    /// Repeats of `last` in a row, ending with it.
    run: u32,
    /// Whether the current run was announced.
    announced: bool,
}

/// The stuck-value detector for one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Stuck {
    config: StuckConfig,
    state: StuckState,
}

impl Stuck {
    /// A detector with no history.
    pub fn new(config: StuckConfig) -> Result<Stuck> {
        config.validate()?;
        Ok(Stuck {
            config,
            state: StuckState::default(),
        })
    }

    /// The score of a run of `k` repeats, 0 before `min_points` steps.
    fn run_score(&self, k: u32) -> f64 {
        let habits = &self.state.habits;
        if habits.steps < self.config.min_points || k == 0 {
            return 0.0;
        }
        let sigma = sigma_of_tail(habits.run_probability(k));
        let offset = self.config.offset;
        score_beyond(sigma, offset)
    }
}

impl Detector for Stuck {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(self.config).unwrap_or_default()
    }

    #[inline]
    fn score(&self, features: &Features) -> Option<Score> {
        let x = features.get(self.config.input);
        let last = self.state.last?;
        if x != last || self.state.habits.steps < self.config.min_points {
            return None;
        }
        // Only the point that makes the run alarming speaks: a long run is one incident, and
        // its later points are no more anomalous than any other point of it.
        let score = self.run_score(self.state.run.saturating_add(1));
        if self.state.announced || score < self.config.alarm {
            return None;
        }
        // Anything a usual step away from the frozen value would have been normal.
        let step = self.state.habits.step;
        Some(Score {
            score,
            expected: Band {
                lower: last - step,
                upper: last + step,
            },
        })
    }

    /// The run's probability under the series' own habits is its calibration.
    fn self_calibrated(&self) -> bool {
        true
    }

    /// Its priors are what make a run alarming on a young series too: a series that has
    /// barely repeated yet is expected to repeat rarely.
    fn judges_young_series(&self) -> bool {
        true
    }

    #[inline]
    fn update(&mut self, features: &Features) {
        let x = features.get(self.config.input);
        if !x.is_finite() {
            return;
        }
        let state = &mut self.state;
        let Some(last) = state.last.replace(x) else {
            return;
        };
        let repeat = x == last;
        let previous_run = state.run;
        let run = if repeat {
            previous_run.saturating_add(1)
        } else {
            0
        };
        state.run = run;
        let score = self.run_score(run);
        let state = &mut self.state;
        state.announced = repeat && (state.announced || score >= self.config.alarm);
        // An alarming run is not learnt until it has lasted long enough to be the new normal.
        if repeat && f64::from(run) <= self.config.memory && score > 0.0 {
            return;
        }
        let keep = 1.0 - 1.0 / self.config.memory;
        let habits = &mut self.state.habits;
        for count in [
            &mut habits.after_change,
            &mut habits.repeats_after_change,
            &mut habits.after_repeat,
            &mut habits.repeats_after_repeat,
        ] {
            *count *= keep;
        }
        let hit = f64::from(u8::from(repeat));
        if previous_run > 0 {
            habits.after_repeat += 1.0;
            habits.repeats_after_repeat += hit;
        } else {
            habits.after_change += 1.0;
            habits.repeats_after_change += hit;
        }
        habits.steps = habits.steps.saturating_add(1);
        if !repeat {
            let size = (x - last).abs();
            let weight = (1.0 / f64::from(habits.steps)).max(1.0 / self.config.memory);
            habits.step += weight * (size - habits.step);
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::encode(KIND, SNAPSHOT_VERSION, &self.state)
    }

    fn restore(&mut self, snapshot: &Snapshot) -> Result<()> {
        let state: StuckState = snapshot.decode(KIND, SNAPSHOT_VERSION)?;
        let habits = &state.habits;
        let counts = [
            habits.after_change,
            habits.repeats_after_change,
            habits.after_repeat,
            habits.repeats_after_repeat,
            habits.step,
        ];
        if !counts.iter().all(|c| c.is_finite() && *c >= 0.0)
            || habits.repeats_after_change > habits.after_change
            || habits.repeats_after_repeat > habits.after_repeat
            || state.last.is_some_and(|v| !v.is_finite())
        {
            return Err(Error::SnapshotCorrupt {
                kind: KIND.into(),
                message: "counts are negative, not finite or inconsistent".into(),
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

    /// Feeds `values`, returning the points (by index in `values`) that scored above 2.
    fn alarms(d: &mut Stuck, values: &[f64]) -> Vec<usize> {
        let mut raised = Vec::new();
        for (i, &v) in values.iter().enumerate() {
            let features = Features::first(i as i64, v);
            if d.observe(&features).is_some_and(|s| s.score >= 3.0) {
                raised.push(i);
            }
        }
        raised
    }

    /// Continuous readings: a level and a spread of uniform draws, never twice the same.
    fn noise(rng: &mut Rng, n: usize) -> Vec<f64> {
        (0..n)
            .map(|_| 50.0 + 10.0 * f64::from(rng.unit()))
            .collect()
    }

    #[test]
    fn a_frozen_reading_is_caught_within_a_few_points_and_not_learnt_as_normal() {
        let mut rng = Rng(7);
        let mut d = Stuck::new(StuckConfig::default()).unwrap();
        let mut values = noise(&mut rng, 500);
        assert!(alarms(&mut d, &values).is_empty());
        values = vec![values[499]; 100];
        let first = alarms(&mut d, &values);
        assert!(first.len() == 1 && first[0] <= 5, "{first:?}");
        // Unstuck, then stuck again: caught about as fast as the first time (only the run's
        // first, unalarming repeats were learnt; had all hundred been, q would be near 1).
        assert!(alarms(&mut d, &noise(&mut rng, 200)).is_empty());
        let second = alarms(&mut d, &[42.0; 100]);
        assert!(second.len() == 1 && second[0] <= first[0] + 1, "{second:?}");
    }

    #[test]
    fn a_count_that_often_rests_at_zero_alarms_only_on_a_much_longer_rest() {
        let mut rng = Rng(3);
        let mut d = Stuck::new(StuckConfig::default()).unwrap();
        // Bursts of counts between rests of 1 to 12 zeros.
        let mut values = Vec::new();
        while values.len() < 3000 {
            values.extend(std::iter::repeat_n(0.0, 1 + rng.below(12)));
            values.extend((0..1 + rng.below(5)).map(|_| 1.0 + rng.below(100) as f64));
        }
        assert!(alarms(&mut d, &values).is_empty());
        let long_rest = alarms(&mut d, &[0.0; 300]);
        assert!(long_rest.len() == 1 && long_rest[0] > 12, "{long_rest:?}");
    }

    #[test]
    fn a_series_constant_from_the_start_is_its_own_normal() {
        let mut d = Stuck::new(StuckConfig::default()).unwrap();
        assert!(alarms(&mut d, &[3.0; 5000]).is_empty());
        // A stuck series that stays stuck longer than the memory becomes the new normal.
        let mut rng = Rng(1);
        let mut e = Stuck::new(StuckConfig {
            memory: 100.0,
            ..StuckConfig::default()
        })
        .unwrap();
        alarms(&mut e, &noise(&mut rng, 300));
        let first = alarms(&mut e, &[1.0; 1000]);
        alarms(&mut e, &noise(&mut rng, 20));
        let again = alarms(&mut e, &[2.0; 1000]);
        assert!(first.len() == 1 && again.len() <= 1, "{first:?} {again:?}");
        assert!(
            again.first().is_none_or(|&a| a > 10 * first[0]),
            "{first:?} {again:?}"
        );
    }

    #[test]
    fn abstains_on_a_change_and_restores_its_state() {
        let mut rng = Rng(5);
        let mut d = Stuck::new(StuckConfig::default()).unwrap();
        assert_eq!(d.score(&Features::first(0, 1.0)), None);
        alarms(&mut d, &noise(&mut rng, 100));
        alarms(&mut d, &[7.0, 7.0]);
        assert_eq!(d.score(&Features::first(0, 8.0)), None);
        let score = (0..20)
            .find_map(|_| d.observe(&Features::first(0, 7.0)))
            .unwrap();
        assert!(score.score >= 3.0, "{score:?}");
        assert!(score.expected.lower < 7.0 && score.expected.upper > 7.0);
        assert_eq!(d.score(&Features::first(0, 7.0)), None, "announced once");
        let mut e = Stuck::new(StuckConfig::default()).unwrap();
        e.restore(&d.snapshot()).unwrap();
        assert_eq!(d, e);
        let mut bad = d.state;
        bad.habits.repeats_after_change = bad.habits.after_change + 1.0;
        assert!(
            e.restore(&Snapshot::encode(KIND, SNAPSHOT_VERSION, &bad))
                .is_err()
        );
        assert_eq!(d, e, "a refused snapshot leaves the state alone");
        for bad in [
            StuckConfig {
                memory: 5.0,
                ..StuckConfig::default()
            },
            StuckConfig {
                offset: 0.0,
                ..StuckConfig::default()
            },
        ] {
            assert!(Stuck::new(bad).is_err(), "{bad:?}");
        }
    }
}
