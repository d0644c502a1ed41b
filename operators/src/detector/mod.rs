//! The `Detector` plugin trait, the registry that builds detectors by name, and the built-in
//! detectors.
//!
//! A detector sees one series, point by point, as [`Features`]. For each point it first gives a
//! [`Score`] computed from what it learnt *before* the point (no look-ahead), then learns from
//! it. Scores are in sigma-equivalent units (see [`Score::score`]), so detectors of different
//! kinds can be compared and combined by the [`crate::ensemble`].
//!
//! Which detectors run on which series is configuration: a template lists [`DetectorSpec`]s and
//! the [`Registry`] turns each into a boxed detector. New kinds plug in with
//! [`Registry::register`].

pub mod iforest;
pub mod jump;
#[cfg(feature = "lstm")]
pub mod lstm;
pub mod mad;
pub mod newcomer;
pub mod range;
pub mod residual;
pub mod seasonal;
pub mod sequence;
pub mod stuck;
pub mod zscore;

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use aiops_schemas::Band;

use crate::error::{Error, Result};
use crate::features::Features;

pub use iforest::{IForest, IForestConfig};
pub use jump::{Jump, JumpConfig};
#[cfg(feature = "lstm")]
pub use lstm::{Lstm, LstmConfig};
pub use mad::{Mad, MadConfig};
pub use newcomer::{Newcomer, NewcomerConfig};
pub use range::{Range, RangeConfig};
pub use residual::{Residual, ResidualConfig};
pub use seasonal::{Seasonal, SeasonalConfig};
pub use sequence::{Sequence, SequenceConfig};
pub use stuck::{Stuck, StuckConfig};
pub use zscore::{ZScore, ZScoreConfig};

/// A detector's judgement of one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// How unusual the point is, in sigma-equivalent units: the number of standard deviations
    /// of a normal distribution whose two-sided tail is as unlikely. Non-negative; 3 is about
    /// one point in 370 under the detector's model of normal.
    pub score: f64,
    /// The values the detector considered normal for this point.
    pub expected: Band,
}

/// A detector's learnt state, tagged with its kind and format version, as bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The registry name of the detector that wrote it.
    pub kind: String,
    /// The format version of `state`.
    pub version: u16,
    /// The state, encoded with postcard.
    pub state: Vec<u8>,
}

impl Snapshot {
    /// Encodes `state` as the snapshot of a `kind` detector in format `version`.
    pub fn encode<T: Serialize>(kind: &str, version: u16, state: &T) -> Snapshot {
        Snapshot {
            kind: kind.to_owned(),
            version,
            // postcard only fails on writers and unsupported types; detector state is neither.
            state: postcard::to_stdvec(state).unwrap_or_default(),
        }
    }

    /// Decodes the state, checking that it was written by a `kind` detector in `version`.
    pub fn decode<T: DeserializeOwned>(&self, kind: &str, version: u16) -> Result<T> {
        if self.kind != kind {
            return Err(Error::SnapshotKind {
                expected: kind.to_owned(),
                found: self.kind.clone(),
            });
        }
        if self.version != version {
            return Err(Error::SnapshotVersion {
                kind: kind.to_owned(),
                expected: version,
                found: self.version,
            });
        }
        postcard::from_bytes(&self.state).map_err(|e| Error::SnapshotCorrupt {
            kind: kind.to_owned(),
            message: e.to_string(),
        })
    }
}

/// A streaming anomaly detector for one series.
///
/// Implementations must be deterministic (same points, same scores) and must never panic on
/// finite input; the feature stage never passes non-finite values.
pub trait Detector: Send + fmt::Debug {
    /// The registry name of this kind (`zscore`, `mad`, ...).
    fn kind(&self) -> &'static str;

    /// The parameters this detector was built with, as JSON.
    fn config(&self) -> serde_json::Value;

    /// Scores a point against the state learnt so far, without learning from it. `None` while
    /// warming up.
    fn score(&self, features: &Features) -> Option<Score>;

    /// Learns from a point.
    fn update(&mut self, features: &Features);

    /// Whether the score is already relative to the series' own history, so the ensemble
    /// should not calibrate it again (see [`crate::calibration`]).
    fn self_calibrated(&self) -> bool {
        false
    }

    /// Whether this detector's scores already weigh how little of the series it has seen, so
    /// the higher bar the alert policy sets for young series need not hold them back (the
    /// stuck detector: a run as unlikely as a 6σ deviate under priors that a short history
    /// barely moves). See [`crate::AlertConfig::young_points`].
    fn judges_young_series(&self) -> bool {
        false
    }

    /// Scores a point, then learns from it: the streaming step.
    fn observe(&mut self, features: &Features) -> Option<Score> {
        let score = self.score(features);
        self.update(features);
        score
    }

    /// The learnt state.
    fn snapshot(&self) -> Snapshot;

    /// Replaces the learnt state with a snapshot's. On error the state is unchanged.
    fn restore(&mut self, snapshot: &Snapshot) -> Result<()>;

    /// Bytes of state held for the series (inline and heap), for capacity planning.
    fn state_bytes(&self) -> usize;

    /// The learnt state in two parts: neural weights as named tensors, and a snapshot of the
    /// rest. Model artifacts keep the tensors as safetensors. Detectors without weights give
    /// their whole snapshot and no tensors.
    fn snapshot_split(&self) -> (Snapshot, Vec<WeightTensor>) {
        (self.snapshot(), Vec::new())
    }

    /// Restores from the two parts of [`Detector::snapshot_split`]. On error the state is
    /// unchanged.
    fn restore_split(&mut self, snapshot: &Snapshot, weights: &[WeightTensor]) -> Result<()> {
        if let Some(extra) = weights.first() {
            return Err(Error::SnapshotCorrupt {
                kind: self.kind().into(),
                message: format!("has no weights, but tensor {:?} was given", extra.name),
            });
        }
        self.restore(snapshot)
    }
}

/// A named array of neural weights, row-major `f32`, as safetensors keeps them.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightTensor {
    /// The name, unique within its detector (`gates.weight`).
    pub name: String,
    /// The shape; the product of its dimensions is the number of values.
    pub shape: Vec<usize>,
    /// The values.
    pub values: Vec<f32>,
}

/// One detector in a template: its kind and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorSpec {
    /// The registry name.
    pub kind: String,
    /// The parameters; what is not given takes the detector's default.
    #[serde(flatten)]
    pub params: serde_json::Map<String, serde_json::Value>,
}

impl DetectorSpec {
    /// A spec with default parameters.
    pub fn new(kind: &str) -> DetectorSpec {
        DetectorSpec {
            kind: kind.to_owned(),
            params: serde_json::Map::new(),
        }
    }
}

/// Builds a detector from its parameters.
pub type Factory = fn(&serde_json::Value) -> Result<Box<dyn Detector>>;

/// Detector kinds by name.
#[derive(Debug, Clone)]
pub struct Registry {
    factories: BTreeMap<String, Factory>,
}

impl Registry {
    /// A registry of the built-in detectors.
    pub fn builtin() -> Registry {
        let mut registry = Registry {
            factories: BTreeMap::new(),
        };
        registry.register(zscore::KIND, |params| {
            Ok(Box::new(ZScore::new(parse_params(zscore::KIND, params)?)?))
        });
        registry.register(mad::KIND, |params| {
            Ok(Box::new(Mad::new(parse_params(mad::KIND, params)?)?))
        });
        registry.register(iforest::KIND, |params| {
            Ok(Box::new(IForest::new(parse_params(
                iforest::KIND,
                params,
            )?)?))
        });
        #[cfg(feature = "lstm")]
        registry.register(lstm::KIND, |params| {
            Ok(Box::new(Lstm::new(parse_params(lstm::KIND, params)?)?))
        });
        registry.register(seasonal::KIND, |params| {
            Ok(Box::new(Seasonal::new(parse_params(
                seasonal::KIND,
                params,
            )?)?))
        });
        registry.register(sequence::KIND, |params| {
            Ok(Box::new(Sequence::new(parse_params(
                sequence::KIND,
                params,
            )?)?))
        });
        registry.register(newcomer::KIND, |params| {
            Ok(Box::new(Newcomer::new(parse_params(
                newcomer::KIND,
                params,
            )?)?))
        });
        registry.register(residual::KIND, |params| {
            Ok(Box::new(Residual::new(parse_params(
                residual::KIND,
                params,
            )?)?))
        });
        registry.register(jump::KIND, |params| {
            Ok(Box::new(Jump::new(parse_params(jump::KIND, params)?)?))
        });
        registry.register(stuck::KIND, |params| {
            Ok(Box::new(Stuck::new(parse_params(stuck::KIND, params)?)?))
        });
        registry.register(range::KIND, |params| {
            Ok(Box::new(Range::new(parse_params(range::KIND, params)?)?))
        });
        registry
    }

    /// Adds (or replaces) a kind.
    pub fn register(&mut self, kind: &str, factory: Factory) {
        self.factories.insert(kind.to_owned(), factory);
    }

    /// The known kinds, sorted.
    pub fn kinds(&self) -> Vec<String> {
        self.factories.keys().cloned().collect()
    }

    /// Builds the detector a spec describes.
    pub fn build(&self, spec: &DetectorSpec) -> Result<Box<dyn Detector>> {
        let factory = self
            .factories
            .get(&spec.kind)
            .ok_or_else(|| Error::UnknownDetector {
                kind: spec.kind.clone(),
                known: self.kinds(),
            })?;
        factory(&serde_json::Value::Object(spec.params.clone()))
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::builtin()
    }
}

/// Reads a detector's parameters, naming the detector in the error.
pub fn parse_params<T: DeserializeOwned>(kind: &str, params: &serde_json::Value) -> Result<T> {
    serde_json::from_value(params.clone()).map_err(|e| Error::config(kind, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_builds_builtins_and_names_unknown_kinds() {
        let registry = Registry::builtin();
        let mut expected = vec![
            "iforest", "jump", "mad", "newcomer", "range", "residual", "seasonal", "sequence",
            "stuck", "zscore",
        ];
        if cfg!(feature = "lstm") {
            expected.insert(2, "lstm");
        }
        assert_eq!(registry.kinds(), expected);
        let z = registry.build(&DetectorSpec::new("zscore")).unwrap();
        assert_eq!(z.kind(), "zscore");
        let err = registry.build(&DetectorSpec::new("prophet")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "unknown detector \"prophet\"; known detectors: {}",
                expected.join(", ")
            )
        );
    }

    #[test]
    fn registry_rejects_bad_parameters_with_the_detector_name() {
        let registry = Registry::builtin();
        let mut spec = DetectorSpec::new("mad");
        spec.params.insert("window".into(), serde_json::json!(1000));
        let err = registry.build(&spec).unwrap_err().to_string();
        assert!(err.contains("mad") && err.contains("1000"), "{err}");
        let mut spec = DetectorSpec::new("zscore");
        spec.params.insert("alpah".into(), serde_json::json!(0.1));
        let err = registry.build(&spec).unwrap_err().to_string();
        assert!(err.contains("zscore") && err.contains("alpah"), "{err}");
    }

    #[test]
    fn snapshots_check_kind_and_version() {
        let s = Snapshot::encode("zscore", 1, &(1u8, 2.0f64));
        assert_eq!(s.decode::<(u8, f64)>("zscore", 1), Ok((1, 2.0)));
        assert!(matches!(
            s.decode::<(u8, f64)>("mad", 1),
            Err(Error::SnapshotKind { .. })
        ));
        assert!(matches!(
            s.decode::<(u8, f64)>("zscore", 2),
            Err(Error::SnapshotVersion { .. })
        ));
        let truncated = Snapshot {
            state: vec![1],
            ..s
        };
        assert!(matches!(
            truncated.decode::<(u8, f64)>("zscore", 1),
            Err(Error::SnapshotCorrupt { .. })
        ));
    }
}
