//! The sequence detector: how surprising the step the series just took is, given the steps it
//! has taken before from the same place.
//!
//! Values are read as one of `levels` equal slices of the range the series has shown (its
//! fading minimum and maximum, as in the range detector). The detector counts, for every run
//! of `order` levels, which level came next; the score of a point is the surprise
//! `-ln p(level | previous levels)` of its level, with add-`smoothing` estimates. A series that
//! always climbs from low to high through the middle makes a jump straight from low to high
//! surprising even though both values are ordinary: the kind of context novelty the contextual
//! anomaly detectors (CAD, HTM) on the NAB scoreboard look for, at a fraction of their cost.
//!
//! Counts fade with a half-life, so habits the series has dropped are forgotten.

use serde::{Deserialize, Serialize};

use aiops_schemas::Band;

use super::{Detector, Score, Snapshot};
use crate::error::{Error, Result};
use crate::features::{FadingRange, Features, Input, RangeFade};
use crate::params;

/// Registry name.
pub const KIND: &str = "sequence";
const SNAPSHOT_VERSION: u16 = 1;
/// Most levels.
pub const MAX_LEVELS: usize = 32;
/// Longest context.
pub const MAX_ORDER: usize = 3;

/// Parameters of the sequence detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SequenceConfig {
    /// The feature read.
    pub input: Input,
    /// Slices the range is cut into.
    pub levels: usize,
    /// Previous levels a step is conditioned on.
    pub order: usize,
    /// Pseudo-count added to every next level.
    pub smoothing: f64,
    /// Points after which counts have halved.
    pub half_life: f64,
    /// Points after which the remembered extremes have faded halfway back to the mean.
    pub range_half_life: f64,
    /// Points learnt before the first score.
    pub warmup: u32,
}

impl Default for SequenceConfig {
    fn default() -> Self {
        SequenceConfig {
            input: Input::Value,
            levels: 8,
            order: 2,
            smoothing: 0.1,
            half_life: 20_000.0,
            range_half_life: 20_000.0,
            warmup: 50,
        }
    }
}

impl SequenceConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        if !(2..=MAX_LEVELS).contains(&self.levels) {
            return Err(Error::config(
                KIND,
                format!("levels must be 2 to {MAX_LEVELS}, not {}", self.levels),
            ));
        }
        if !(1..=MAX_ORDER).contains(&self.order) {
            return Err(Error::config(
                KIND,
                format!("order must be 1 to {MAX_ORDER}, not {}", self.order),
            ));
        }
        params::positive(
            KIND,
            &[
                ("smoothing", self.smoothing),
                ("half_life", self.half_life),
                ("range_half_life", self.range_half_life),
            ],
        )
    }

    fn contexts(&self) -> usize {
        self.levels.pow(self.order as u32)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SequenceState {
    /// Counts of the next level by context: `counts[context * levels + next]`.
    counts: Vec<f32>,
    /// Total count by context.
    totals: Vec<f32>,
    /// Weight the next count is added with (grows instead of fading every count).
    weight: f32,
    /// The last `order` levels as a context index, and how many levels it holds so far.
    context: u32,
    filled: u8,
    /// The range the levels slice.
    range: FadingRange,
}

/// The sequence detector for one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    config: SequenceConfig,
    state: SequenceState,
    growth: f32,
    range_fade: RangeFade,
}

impl Sequence {
    /// A detector with no history.
    pub fn new(config: SequenceConfig) -> Result<Sequence> {
        config.validate()?;
        let contexts = config.contexts();
        Ok(Sequence {
            growth: (std::f64::consts::LN_2 / config.half_life).exp() as f32,
            range_fade: RangeFade::with_half_life(config.range_half_life),
            state: SequenceState {
                counts: vec![0.0; contexts * config.levels],
                totals: vec![0.0; contexts],
                weight: 1.0,
                context: 0,
                filled: 0,
                range: FadingRange::new(),
            },
            config,
        })
    }

    /// The level of `x` in the range seen so far (the range as it will be once `x` is in it).
    fn level(&self, x: f64) -> usize {
        let low = self.state.range.low().min(x);
        let high = self.state.range.high().max(x);
        if high <= low {
            return 0;
        }
        let slice = ((x - low) / (high - low) * self.config.levels as f64) as usize;
        slice.min(self.config.levels - 1)
    }
}

impl Detector for Sequence {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(self.config).unwrap_or_default()
    }

    fn score(&self, features: &Features) -> Option<Score> {
        let s = &self.state;
        if s.range.count() < u64::from(self.config.warmup.max(1))
            || usize::from(s.filled) < self.config.order
        {
            return None;
        }
        let x = features.get(self.config.input);
        let levels = self.config.levels;
        let context = s.context as usize;
        let seen = f64::from(s.counts[context * levels + self.level(x)]) / f64::from(s.weight);
        let total = f64::from(s.totals[context]) / f64::from(s.weight);
        let alpha = self.config.smoothing;
        let p = (seen + alpha) / (total + alpha * levels as f64);
        Some(Score {
            score: -p.ln(),
            expected: Band {
                lower: s.range.low(),
                upper: s.range.high(),
            },
        })
    }

    fn update(&mut self, features: &Features) {
        let x = features.get(self.config.input);
        if !x.is_finite() {
            return;
        }
        let level = self.level(x);
        let levels = self.config.levels;
        let order = self.config.order;
        let s = &mut self.state;
        if usize::from(s.filled) >= order {
            let context = s.context as usize;
            s.counts[context * levels + level] += s.weight;
            s.totals[context] += s.weight;
            s.weight *= self.growth;
            if s.weight > 1e20 {
                let scale = 1.0 / s.weight;
                s.counts.iter_mut().for_each(|c| *c *= scale);
                s.totals.iter_mut().for_each(|c| *c *= scale);
                s.weight = 1.0;
            }
        }
        let contexts = levels.pow(order as u32);
        s.context = ((s.context as usize * levels + level) % contexts) as u32;
        s.filled = s.filled.saturating_add(1);
        s.range.update(x, self.range_fade);
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::encode(KIND, SNAPSHOT_VERSION, &self.state)
    }

    fn restore(&mut self, snapshot: &Snapshot) -> Result<()> {
        let state: SequenceState = snapshot.decode(KIND, SNAPSHOT_VERSION)?;
        let contexts = self.config.contexts();
        if state.counts.len() != contexts * self.config.levels
            || state.totals.len() != contexts
            || state.context as usize >= contexts
        {
            return Err(Error::SnapshotCorrupt {
                kind: KIND.into(),
                message: format!(
                    "the snapshot does not fit {} levels of order {}",
                    self.config.levels, self.config.order
                ),
            });
        }
        self.state = state;
        Ok(())
    }

    fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + 4 * (self.state.counts.capacity() + self.state.totals.capacity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(d: &mut Sequence, values: impl IntoIterator<Item = f64>) {
        for (i, v) in values.into_iter().enumerate() {
            d.update(&Features::first(i as i64, v));
        }
    }

    #[test]
    fn an_ordinary_value_after_an_unusual_step_is_surprising() {
        let mut d = Sequence::new(SequenceConfig::default()).unwrap();
        // A staircase 0, 1, ..., 7, 0, 1, ...: each level always follows the one below.
        feed(&mut d, (0..2000).map(|i| f64::from(i % 8)));
        // After ..., 2, 3 the series goes to 4, never to 7.
        let usual = d.score(&Features::first(0, 0.0)).unwrap().score;
        let mut e = d.clone();
        feed(&mut e, [1.0, 2.0, 3.0]);
        let next = e.score(&Features::first(0, 4.0)).unwrap().score;
        let jump = e.score(&Features::first(0, 7.0)).unwrap().score;
        assert!(next < 0.1, "next {next}");
        assert!(jump > 5.0, "jump {jump}");
        assert!(usual < 0.1, "usual {usual}");
    }

    #[test]
    fn snapshots_round_trip_and_are_checked() {
        let mut d = Sequence::new(SequenceConfig::default()).unwrap();
        feed(&mut d, (0..300).map(|i| f64::from(i % 5)));
        let mut e = Sequence::new(SequenceConfig::default()).unwrap();
        e.restore(&d.snapshot()).unwrap();
        assert_eq!(d, e);
        let mut other = Sequence::new(SequenceConfig {
            levels: 4,
            ..SequenceConfig::default()
        })
        .unwrap();
        assert!(other.restore(&d.snapshot()).is_err());
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        for config in [
            SequenceConfig {
                levels: 1,
                ..SequenceConfig::default()
            },
            SequenceConfig {
                order: 4,
                ..SequenceConfig::default()
            },
            SequenceConfig {
                smoothing: 0.0,
                ..SequenceConfig::default()
            },
        ] {
            assert!(Sequence::new(config).is_err(), "{config:?}");
        }
    }
}
