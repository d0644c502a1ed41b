//! Pure streaming algorithms of aiops: no I/O, no threads, no clocks, so every piece can be
//! tested point by point and run anywhere the dataflow puts it.
//!
//! - [`features`]: EWMA statistics, rolling windows with robust statistics, rate of change.
//! - [`detector`]: the [`Detector`] plugin trait, its [`Registry`], and the built-in z-score and
//!   MAD detectors with snapshot/restore of their state.
//! - [`calibration`]: raw scores as tail probabilities against each detector's own history.
//! - [`ensemble`]: calibrating and combining detectors' scores into one.
//! - [`alert`]: the policy that turns scores into incidents (threshold, minimum duration,
//!   hysteresis, cooldown, warning/critical, a higher bar for young series).
//! - [`drift`]: has a stream moved away from its model's reference window (PSI,
//!   Kolmogorov–Smirnov, Wasserstein, ADWIN, Page–Hinkley)?
//! - [`template`]: which of the above run on which series.
//! - [`chain`]: the per-series chain a template describes, stage by stage or all at once.
//!
//! Scores everywhere are sigma-equivalents: how many standard deviations of a normal
//! distribution would make a point this unlikely.

pub mod alert;
pub mod calibration;
pub mod chain;
pub mod detector;
pub mod drift;
pub mod ensemble;
pub mod error;
pub mod features;
mod params;
mod rng;
pub mod template;

pub use alert::{Alert, AlertConfig, AlertState};
pub use calibration::{
    CalibrationConfig, CalibrationMethod, Calibrator, fisher_tail, sigma_of_tail, tail_of_sigma,
};
pub use chain::{
    CHAIN_SNAPSHOT_VERSION, ChainSnapshot, ChainStep, DetectorScores, MAX_DETECTORS, SeriesChain,
    SeriesDetectors, build_event,
};
pub use detector::{Detector, DetectorSpec, Registry, Score, Snapshot, WeightTensor};
pub use ensemble::{Combine, Combined, EnsembleConfig, EnsembleState};
pub use error::{Error, Result};
pub use features::{
    EwStats, FadingRange, FeatureConfig, FeatureExtractor, Features, Input, RangeFade,
    RollingWindow,
};
pub use template::{Matcher, Template, TemplateSet};
