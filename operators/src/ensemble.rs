//! The ensemble: one score per point out of several detectors' scores.
//!
//! With `calibrate` on (the default), each detector's raw score is first turned into a tail
//! probability against that detector's own recent scores on the series (see
//! [`crate::calibration`]) and back into a sigma-equivalent, so a z-score that is always noisy on
//! one series and a seasonal residual that is always quiet on another weigh what their rarity
//! says, not what their units say. Then the scores are combined: `max` alerts when any detector
//! is alarmed (most sensitive), `min` only when all are (fewest false alarms), `mean` weighs them
//! by `weights` (default 1 each), `fisher` adds up the evidence of the detectors' tail
//! probabilities as if they were independent (Fisher's method). Detectors still warming up
//! abstain. The expected band is the weighted mean of the bands.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use aiops_schemas::{Band, Contribution};

use crate::calibration::{
    CalibrationConfig, Calibrator, fisher_tail, sigma_of_tail, tail_of_sigma,
};
use crate::detector::{DetectorSpec, Score};
use crate::error::{Error, Result};

/// How scores are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// Weighted mean of the scores.
    #[default]
    Mean,
    /// The highest score.
    Max,
    /// The lowest score.
    Min,
    /// Fisher's method on the tail probabilities of the scores.
    Fisher,
}

/// Parameters of the ensemble.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnsembleConfig {
    /// How scores are combined.
    pub method: Combine,
    /// Weight per detector kind for `mean` (missing kinds weigh 1).
    pub weights: BTreeMap<String, f64>,
    /// Calibrate each detector's scores against its own history before combining.
    pub calibrate: bool,
    /// How calibration learns.
    pub calibration: CalibrationConfig,
    /// After a high score, later scores count only where they rise above it; its memory halves
    /// every this many points (0: off). One incident then gives one detection, not a burst.
    pub suppress_half_life: f64,
}

impl Default for EnsembleConfig {
    fn default() -> Self {
        EnsembleConfig {
            method: Combine::default(),
            weights: BTreeMap::new(),
            calibrate: false,
            calibration: CalibrationConfig::default(),
            suppress_half_life: 0.0,
        }
    }
}

impl EnsembleConfig {
    /// Checks that weights are non-negative and finite.
    pub fn validate(&self) -> Result<()> {
        match self
            .weights
            .iter()
            .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
        {
            Some((kind, w)) => Err(Error::config(
                "ensemble",
                format!("weight of {kind:?} must be zero or positive, not {w}"),
            )),
            None => self.calibration.validate(),
        }
    }

    /// The weight of a detector kind.
    pub fn weight(&self, kind: &str) -> f64 {
        self.weights.get(kind).copied().unwrap_or(1.0)
    }

    /// Combines the scores of one point. `scores[i]` belongs to the detector of kind `kinds[i]`.
    /// `None` when every detector abstains (or every one that answered has weight zero).
    pub fn combine(&self, kinds: &[&str], scores: &[Option<Score>]) -> Option<Combined> {
        let mut total_weight = 0.0;
        let (mut sum, mut max, mut min) = (0.0, f64::NEG_INFINITY, f64::INFINITY);
        let (mut log_tails, mut voters) = (0.0, 0u32);
        let (mut lower, mut upper) = (0.0, 0.0);
        for (kind, score) in kinds.iter().zip(scores) {
            let Some(score) = score else { continue };
            let weight = self.weight(kind);
            if weight == 0.0 {
                continue;
            }
            total_weight += weight;
            sum += weight * score.score;
            max = max.max(weight * score.score);
            min = min.min(score.score);
            // Only Fisher's method needs the tails, and erfc is the costliest step here.
            if self.method == Combine::Fisher {
                log_tails += tail_of_sigma(score.score).max(1e-300).ln();
                voters += 1;
            }
            lower += weight * score.expected.lower;
            upper += weight * score.expected.upper;
        }
        if total_weight == 0.0 {
            return None;
        }
        let score = match self.method {
            Combine::Mean => sum / total_weight,
            Combine::Max => max,
            Combine::Min => min,
            Combine::Fisher => sigma_of_tail(fisher_tail(-2.0 * log_tails, voters)),
        };
        Some(Combined {
            score,
            expected: Band {
                lower: lower / total_weight,
                upper: upper / total_weight,
            },
        })
    }
}

/// What the ensemble learns per series: one calibrator per detector, and the memory of recent
/// combined scores that suppression compares against.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EnsembleState {
    calibrators: Vec<Calibrator>,
    /// The fading memory of recent combined scores that a score must rise above.
    bar: f64,
}

impl EnsembleState {
    /// State for a series with `detectors` detectors.
    pub fn new(detectors: usize, config: &EnsembleConfig) -> EnsembleState {
        EnsembleState {
            calibrators: vec![Calibrator::new(config.calibration.method); detectors],
            bar: 0.0,
        }
    }

    /// Calibrates the detectors' raw scores in place (when configured; `self_calibrated[i]`
    /// exempts detector i), learning from them, combines them, and applies suppression. A
    /// detector whose calibrator is still warming up abstains.
    pub fn combine(
        &mut self,
        config: &EnsembleConfig,
        kinds: &[&str],
        self_calibrated: &[bool],
        scores: &mut [Option<Score>],
    ) -> Option<Combined> {
        if config.calibrate {
            for ((score, calibrator), exempt) in scores
                .iter_mut()
                .zip(&mut self.calibrators)
                .zip(self_calibrated)
            {
                if *exempt {
                    continue;
                }
                if let Some(s) = score {
                    match calibrator.calibrate(&config.calibration, s.score) {
                        Some(calibrated) => s.score = calibrated,
                        None => *score = None,
                    }
                }
            }
        }
        let mut combined = config.combine(kinds, scores)?;
        if config.suppress_half_life > 0.0 {
            let raw = combined.score;
            if raw <= self.bar {
                combined.score = 0.0;
            }
            let fade = (-std::f64::consts::LN_2 / config.suppress_half_life).exp();
            self.bar = raw.max(self.bar * fade);
        }
        Some(combined)
    }

    /// Whether this state belongs to an ensemble of `detectors` detectors (one calibrator
    /// each), as a restored snapshot must.
    pub fn fits(&self, detectors: usize) -> bool {
        self.calibrators.len() == detectors
    }

    /// Adds fresh calibrators up to `detectors` (detectors appended to a template since this
    /// state was saved); never removes any.
    pub fn grow(&mut self, detectors: usize, config: &EnsembleConfig) {
        if detectors > self.calibrators.len() {
            self.calibrators
                .resize(detectors, Calibrator::new(config.calibration.method));
        }
    }

    /// Bytes held, for state accounting.
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .calibrators
                .iter()
                .map(Calibrator::size_bytes)
                .sum::<usize>()
    }
}

/// The ensemble's judgement of one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Combined {
    /// The combined score, sigma-equivalent.
    pub score: f64,
    /// The combined expected band.
    pub expected: Band,
}

/// The per-detector contributions of a point, for the event: one per detector that scored.
pub fn contributions(detectors: &[DetectorSpec], scores: &[Option<f64>]) -> Vec<Contribution> {
    detectors
        .iter()
        .zip(scores)
        .filter_map(|(spec, score)| {
            score.map(|score| Contribution {
                detector: spec.kind.clone(),
                score,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(score: f64, lower: f64, upper: f64) -> Option<Score> {
        Some(Score {
            score,
            expected: Band { lower, upper },
        })
    }

    #[test]
    fn methods_combine_as_documented() {
        let kinds = ["zscore", "mad"];
        let scores = [score(2.0, 0.0, 10.0), score(6.0, 2.0, 4.0)];
        let mean = EnsembleConfig::default().combine(&kinds, &scores).unwrap();
        assert_eq!(mean.score, 4.0);
        assert_eq!(
            mean.expected,
            Band {
                lower: 1.0,
                upper: 7.0
            }
        );
        let max = EnsembleConfig {
            method: Combine::Max,
            ..Default::default()
        };
        assert_eq!(max.combine(&kinds, &scores).unwrap().score, 6.0);
        let min = EnsembleConfig {
            method: Combine::Min,
            ..Default::default()
        };
        assert_eq!(min.combine(&kinds, &scores).unwrap().score, 2.0);
        let weighted = EnsembleConfig {
            weights: [("mad".to_owned(), 3.0)].into(),
            ..Default::default()
        };
        assert_eq!(weighted.combine(&kinds, &scores).unwrap().score, 5.0);
    }

    #[test]
    fn warming_detectors_abstain() {
        let kinds = ["zscore", "mad"];
        let config = EnsembleConfig::default();
        assert_eq!(config.combine(&kinds, &[None, None]), None);
        assert_eq!(
            config
                .combine(&kinds, &[None, score(3.0, 0.0, 1.0)])
                .unwrap()
                .score,
            3.0
        );
        let specs = [DetectorSpec::new("zscore"), DetectorSpec::new("mad")];
        let c = contributions(&specs, &[None, Some(3.0)]);
        assert_eq!(
            c,
            [Contribution {
                detector: "mad".into(),
                score: 3.0
            }]
        );
    }

    #[test]
    fn negative_weights_are_rejected() {
        let config = EnsembleConfig {
            weights: [("mad".to_owned(), -1.0)].into(),
            ..Default::default()
        };
        assert!(config.validate().is_err());
    }
}
