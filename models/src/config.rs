//! The settings of the model store and of retraining, as the `[models]` and
//! `[drift.retrain]` tables of the TOML configuration hold them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// When a trained version becomes active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// If it beats the active version on the held-back tail (or none is active).
    Auto,
    /// Always.
    Always,
    /// Never: register only.
    Never,
}

/// Retraining on a persisting drift (needs `[models] dir`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrainConfig {
    /// Retrain when a drift persists.
    pub enabled: bool,
    /// Points of a series since its first drift alarm before retraining is asked for: the
    /// drift has persisted, and the new regime has enough points to learn from.
    pub after_points: usize,
    /// At most one retraining per template in this many seconds.
    pub min_interval_s: u64,
    /// Fraction of the points held back to evaluate the new version.
    pub holdout: f64,
    /// When the new version becomes active.
    pub activation: Activation,
}

impl Default for RetrainConfig {
    fn default() -> Self {
        RetrainConfig {
            enabled: true,
            after_points: 300,
            min_interval_s: 600,
            holdout: 0.2,
            activation: Activation::Auto,
        }
    }
}

/// The model store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsConfig {
    /// Directory of the embedded store (`models.db` and `artifacts/`); `aiops run` runs the
    /// active versions it holds and swaps in new ones as they are activated. Unset: `aiops
    /// run` runs the configured templates as they are.
    pub dir: Option<PathBuf>,
    /// How often `aiops run` looks for newly activated versions, in milliseconds.
    pub poll_ms: u64,
    /// ScyllaDB nodes (`host:port,host:port`) to keep the store on instead of `dir` (needs a
    /// build with the `scylla` feature).
    pub scylla: Option<String>,
    /// The ScyllaDB keyspace.
    pub keyspace: String,
    /// Replication factor of the keyspace when the store creates it.
    pub replication: u32,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            dir: None,
            poll_ms: 1000,
            scylla: None,
            keyspace: "aiops".to_owned(),
            replication: 3,
        }
    }
}
