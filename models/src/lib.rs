//! Versioned models: what a template learnt from a stretch of history, kept so that it can be
//! activated in a running pipeline, compared, and rolled back.
//!
//! - A [`ModelVersion`] is a template's parameters (features, detectors and their parameters,
//!   ensemble, alert policy), the state its chains learnt from a training range (an
//!   [`artifact::ModelArtifact`]: one chain snapshot per series, neural weights included), the
//!   training range, quality figures from a held-back tail, who made it and when.
//! - A [`ModelStore`] keeps versions, which one is active per template and tenant
//!   ([`ModelScope`]), the activation history rollback walks back through, and an append-only
//!   [`AuditEntry`] log of every operation. [`sqlite::SqliteStore`] is the embedded default:
//!   one SQLite database file, artifacts as files beside it, safe to share between the running
//!   pipeline and the `aiops models` command. `scylla::ScyllaStore` (feature `scylla`) keeps
//!   the same contract on a ScyllaDB cluster, for stores shared across machines.
//! - [`train`] replays points through a template's chains to make a version and evaluates it.
//! - [`retrain`] retrains a template when the drift stage sees a drift persist.
//! - [`watch::ModelWatch`] is how the running pipeline notices a newly activated version.
//! - [`detectors`] is the other resource the store keeps: a tenant's detector configurations,
//!   versioned, with their own append-only audit log ([`detectors::ConfigStore`]).
//! - [`contract`] is the behaviour every store must have, run against each implementation.

pub mod artifact;
pub mod config;
pub mod contract;
pub mod detectors;
pub mod error;
pub mod retrain;
#[cfg(feature = "scylla")]
pub mod scylla;
pub mod sqlite;
pub mod train;
pub mod watch;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use aiops_operators::Template;
use aiops_schemas::TimestampMs;

pub use error::{Error, Result};

/// Which series a version applies to: a template, for one tenant or for all of them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ModelScope {
    /// The template's name.
    pub template: String,
    /// The tenant, or `None` for every tenant without a version of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

impl ModelScope {
    /// A template for every tenant.
    pub fn template(template: &str) -> ModelScope {
        ModelScope {
            template: template.to_owned(),
            tenant: None,
        }
    }

    /// The key the store files the scope under.
    pub fn key(&self) -> String {
        match &self.tenant {
            Some(tenant) => format!("{tenant}/{}", self.template),
            None => format!("*/{}", self.template),
        }
    }
}

impl fmt::Display for ModelScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tenant {
            Some(tenant) => write!(f, "template {:?} of tenant {tenant:?}", self.template),
            None => write!(f, "template {:?}", self.template),
        }
    }
}

/// The stretch of history a version was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingRange {
    /// Where the points came from (a file path, `kafka:topic`, `drift`).
    pub source: String,
    /// Event time of the first point used.
    pub from: TimestampMs,
    /// Event time of the last point used (training and evaluation together).
    pub to: TimestampMs,
    /// Points used for training.
    pub training_points: u64,
    /// Points held back to evaluate the version.
    pub evaluation_points: u64,
    /// Series seen.
    pub series: u64,
}

/// What a new version is made of, before the store numbers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewModel {
    /// Which template (and tenant) it is for.
    pub scope: ModelScope,
    /// The template's parameters it was trained with.
    pub parameters: Template,
    /// What it was trained on.
    pub training: Option<TrainingRange>,
    /// Quality figures (see [`train::Evaluation`]), by name.
    pub figures: BTreeMap<String, f64>,
    /// A note from whoever made it.
    pub note: String,
}

/// Where a version's trained state is and how to recognise it intact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRef {
    /// File name under the store's artifact directory.
    pub file: String,
    /// Size in bytes.
    pub bytes: u64,
    /// XXH3-128 of the bytes, 32 hex digits.
    pub checksum: String,
}

impl ArtifactRef {
    /// The reference of `bytes` stored as `file`: their size and checksum.
    pub fn of(file: String, bytes: &[u8]) -> ArtifactRef {
        ArtifactRef {
            file,
            bytes: bytes.len() as u64,
            checksum: format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes)),
        }
    }
}

impl ModelVersion {
    /// Checks `bytes`, read from `place`, against the version's recorded size and checksum: the
    /// same test for every store.
    pub fn verify_artifact(&self, bytes: Vec<u8>, place: &str) -> Result<Vec<u8>> {
        if ArtifactRef::of(String::new(), &bytes).checksum != self.artifact.checksum
            || bytes.len() as u64 != self.artifact.bytes
        {
            return Err(crate::Error::ModelArtifact {
                model: self.id.clone(),
                message: format!(
                    "{place} does not match its checksum ({} bytes, {} expected)",
                    bytes.len(),
                    self.artifact.bytes
                ),
            });
        }
        Ok(bytes)
    }

    /// Whether verified artifact bytes restore into every series' chain of the version's
    /// template: what activation requires of every store.
    pub fn check_artifact(&self, bytes: &[u8]) -> Result<()> {
        let artifact = artifact::ModelArtifact::decode(&self.id, bytes)?;
        artifact.check(
            &self.id,
            &self.template(),
            &aiops_operators::Registry::builtin(),
        )
    }
}

/// A registered version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    /// `<template>-v<n>`, or `<tenant>.<template>-v<n>` for a tenant's own version; this is
    /// the `model_version` events scored by it carry.
    pub id: String,
    /// Its number within the scope, from 1.
    pub number: u64,
    /// Which template (and tenant) it is for.
    pub scope: ModelScope,
    /// The template's parameters.
    pub parameters: Template,
    /// What it was trained on.
    pub training: Option<TrainingRange>,
    /// Quality figures.
    pub figures: BTreeMap<String, f64>,
    /// Its trained state.
    pub artifact: ArtifactRef,
    /// Who registered it.
    pub created_by: String,
    /// When (milliseconds since the Unix epoch).
    pub created_at: TimestampMs,
    /// A note.
    pub note: String,
}

impl ModelVersion {
    /// The id of version `number` in `scope`.
    pub fn id_for(scope: &ModelScope, number: u64) -> String {
        match &scope.tenant {
            Some(tenant) => format!("{tenant}.{}-v{number}", scope.template),
            None => format!("{}-v{number}", scope.template),
        }
    }

    /// The template as the pipeline runs it: the version's parameters, stamped with the id.
    pub fn template(&self) -> Template {
        Template {
            name: self.scope.template.clone(),
            version: self.id.clone(),
            ..self.parameters.clone()
        }
    }
}

/// Who does something to the store, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// A user name or a component (`aiops run`, `drift`).
    pub who: String,
    /// The reason given.
    pub why: String,
}

impl Actor {
    /// An actor with a reason.
    pub fn new(who: impl Into<String>, why: impl Into<String>) -> Actor {
        Actor {
            who: who.into(),
            why: why.into(),
        }
    }
}

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// A version was registered.
    Register,
    /// A version became active.
    Activate,
    /// The active version was rolled back to an earlier one.
    Rollback,
    /// A version was deleted.
    Delete,
    /// A newly trained version was not activated (it did not beat the active one).
    Reject,
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuditAction::Register => "register",
            AuditAction::Activate => "activate",
            AuditAction::Rollback => "rollback",
            AuditAction::Delete => "delete",
            AuditAction::Reject => "reject",
        })
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When (milliseconds since the Unix epoch).
    pub at: TimestampMs,
    /// Who.
    pub who: String,
    /// What.
    pub action: AuditAction,
    /// The version acted on.
    pub model: String,
    /// Its scope.
    pub scope: ModelScope,
    /// The version active in the scope before (for activations and rollbacks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// Why.
    pub why: String,
}

/// Where versions, activations and the audit log live. Every implementation passes
/// [`contract::check_store`].
///
/// Each operation is atomic: a reader sees it completely or not at all, and its audit entry is
/// written in the same transaction.
pub trait ModelStore: Send + Sync {
    /// Stores a new version with its trained state (not active yet); numbers it within its
    /// scope.
    fn register(&self, model: NewModel, artifact: &[u8], actor: &Actor) -> Result<ModelVersion>;

    /// A version by id.
    fn get(&self, id: &str) -> Result<ModelVersion>;

    /// Every version, oldest first, optionally of one template only.
    fn list(&self, template: Option<&str>) -> Result<Vec<ModelVersion>>;

    /// The active version of every scope that has one.
    fn active(&self) -> Result<BTreeMap<ModelScope, String>>;

    /// Makes a version the active one of its scope. Its artifact is read and checked first: a
    /// version whose state is missing or corrupt is refused and the active one stays.
    fn activate(&self, id: &str, actor: &Actor) -> Result<()>;

    /// Goes back to the version active before the current one of `scope` (or to `to`), with
    /// the same checks as [`ModelStore::activate`]; returns the version now active.
    fn rollback(&self, scope: &ModelScope, to: Option<&str>, actor: &Actor)
    -> Result<ModelVersion>;

    /// Deletes a version that is not active, and its artifact.
    fn delete(&self, id: &str, actor: &Actor) -> Result<()>;

    /// Records in the audit log that a trained version was not activated.
    fn reject(&self, id: &str, actor: &Actor) -> Result<()>;

    /// A version's trained state, checked against its size and checksum.
    fn artifact(&self, id: &str) -> Result<Vec<u8>>;

    /// The audit log, oldest first.
    fn audit(&self) -> Result<Vec<AuditEntry>>;

    /// A number that changes whenever the set of active versions changes, cheap to poll.
    fn generation(&self) -> Result<u64>;

    /// The detector configurations kept beside the versions, when this store keeps them.
    fn config_store(&self) -> Option<&dyn detectors::ConfigStore> {
        None
    }
}

/// Opens the store the configuration names: ScyllaDB when `[models] scylla` is set (feature
/// `scylla`), else the embedded store in `dir` (default `aiops-models`).
pub fn open_store(
    config: &config::ModelsConfig,
    dir: Option<&std::path::Path>,
) -> Result<std::sync::Arc<dyn ModelStore>> {
    if let Some(nodes) = &config.scylla {
        #[cfg(feature = "scylla")]
        {
            return Ok(std::sync::Arc::new(scylla::ScyllaStore::connect(
                nodes,
                &config.keyspace,
                config.replication,
            )?));
        }
        #[cfg(not(feature = "scylla"))]
        {
            return Err(crate::Error::config(format!(
                "models.scylla = {nodes:?}, but this build has no ScyllaDB support: build with                  --features scylla"
            )));
        }
    }
    let dir = dir
        .map(std::path::Path::to_path_buf)
        .or_else(|| config.dir.clone())
        .unwrap_or_else(|| std::path::PathBuf::from("aiops-models"));
    Ok(std::sync::Arc::new(sqlite::SqliteStore::open(dir)?))
}

/// Differences between two versions' parameters, as `(path, left, right)` over their JSON
/// forms; an empty list means the parameters are identical.
pub fn diff_parameters(left: &Template, right: &Template) -> Vec<(String, String, String)> {
    let left = serde_json::to_value(left).unwrap_or_default();
    let right = serde_json::to_value(right).unwrap_or_default();
    let mut out = Vec::new();
    diff_values(&mut Vec::new(), &left, &right, &mut |path, a, b| {
        out.push((path.join("."), a, b));
    });
    // The version stamp is not a parameter.
    out.retain(|(path, _, _)| path != "version");
    out
}

/// Differences between two JSON documents as `(JSON pointer, left, right)`, values as JSON
/// (`null` where absent).
pub fn json_changes(
    left: &serde_json::Value,
    right: &serde_json::Value,
) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    diff_values(&mut Vec::new(), left, right, &mut |path, a, b| {
        let pointer: String = path
            .iter()
            .map(|segment| format!("/{}", detectors::pointer_segment(segment)))
            .collect();
        out.push((pointer, a, b));
    });
    out
}

/// Calls `found` with the path to each differing leaf (arrays of different lengths are one
/// leaf).
fn diff_values(
    path: &mut Vec<String>,
    left: &serde_json::Value,
    right: &serde_json::Value,
    found: &mut dyn FnMut(&[String], String, String),
) {
    use serde_json::Value;
    match (left, right) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let missing = Value::Null;
                path.push(key.clone());
                diff_values(
                    path,
                    a.get(key).unwrap_or(&missing),
                    b.get(key).unwrap_or(&missing),
                    found,
                );
                path.pop();
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                path.push(i.to_string());
                diff_values(path, x, y, found);
                path.pop();
            }
        }
        (a, b) if a != b => found(path, a.to_string(), b.to_string()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiops_operators::DetectorSpec;

    #[test]
    fn ids_name_template_tenant_and_number() {
        assert_eq!(
            ModelVersion::id_for(&ModelScope::template("web"), 3),
            "web-v3"
        );
        let scope = ModelScope {
            template: "web".into(),
            tenant: Some("acme".into()),
        };
        assert_eq!(ModelVersion::id_for(&scope, 12), "acme.web-v12");
        assert_eq!(scope.key(), "acme/web");
    }

    #[test]
    fn parameter_diff_names_what_changed() {
        let a = Template::light();
        let mut b = Template::light();
        b.alert.warning = 6.5;
        b.detectors[1] = DetectorSpec::new("zscore");
        b.version = "other".into();
        let diff = diff_parameters(&a, &b);
        let paths: Vec<&str> = diff.iter().map(|(p, _, _)| p.as_str()).collect();
        assert!(paths.contains(&"alert.warning"), "{diff:?}");
        assert!(paths.contains(&"detectors.1.kind"), "{diff:?}");
        assert!(!paths.contains(&"version"));
        assert!(diff_parameters(&a, &a).is_empty());
    }
}
