//! The ensemble: one score per point out of several detectors' scores.
//!
//! Detectors already speak the same unit (sigma-equivalents), so combining is a choice of how
//! much agreement to ask for: `max` alerts when any detector is alarmed (most sensitive), `min`
//! only when all are (fewest false alarms), `mean` weighs them by `weights` (default 1 each).
//! Detectors still warming up abstain. The expected band is the weighted mean of the bands.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use aiops_schemas::{Band, Contribution};

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
}

/// Parameters of the ensemble.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnsembleConfig {
    /// How scores are combined.
    pub method: Combine,
    /// Weight per detector kind for `mean` (missing kinds weigh 1).
    pub weights: BTreeMap<String, f64>,
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
            None => Ok(()),
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
        let (mut lower, mut upper) = (0.0, 0.0);
        for (kind, score) in kinds.iter().zip(scores) {
            let Some(score) = score else { continue };
            let weight = self.weight(kind);
            if weight == 0.0 {
                continue;
            }
            total_weight += weight;
            sum += weight * score.score;
            max = max.max(score.score);
            min = min.min(score.score);
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
