//! Detector configurations: a tenant's named, versioned choice of detectors for the series it
//! matches — the resource the configuration API serves — with the built-in presets a
//! configuration can start from, and the checks that turn a bad document into errors that
//! point at the field.
//!
//! A configuration is everything a template holds but its name's scope and its version: which
//! series (metric and label globs; the tenant is the owner's, never written), the feature
//! stage, the detectors and their parameters, the ensemble and the alert policy. Every change
//! makes a new immutable version (numbers never reused, even after a delete and re-create, so an
//! `ETag` never names two documents) and an entry in an append-only audit log with who, why and
//! the diff. [`ConfigStore`] is where they live; the SQLite store implements it beside the model
//! versions, and [`crate::contract::check_config_store`] is the behaviour every store must have.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use aiops_operators::{
    AlertConfig, DetectorSpec, EnsembleConfig, FeatureConfig, Matcher, Registry, Template,
};
use aiops_schemas::TimestampMs;

use crate::error::Result;
use crate::{Actor, json_changes};

/// Longest configuration name.
pub const MAX_NAME_BYTES: usize = 64;
/// Most detectors in one configuration (each costs state and time per point of every series):
/// what a series' chain can run, so a configuration saved here is one the pipeline can build.
pub const MAX_DETECTORS: usize = aiops_operators::MAX_DETECTORS;
/// Longest description or reason.
pub const MAX_TEXT_BYTES: usize = 2_000;
/// Most label conditions in a matcher.
pub const MAX_LABELS: usize = 32;
/// Most live configurations per tenant: every one is a template each of the tenant's new
/// series is matched against, and a change re-selects every series.
pub const MAX_CONFIGS_PER_TENANT: usize = 100;

/// Which of the tenant's series a configuration applies to; every given glob must match.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeriesMatcher {
    /// Glob on the metric name (`*` any run of characters, `?` one character).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Globs on label values; the label must be present.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// What a user writes: a configuration's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorDocument {
    /// What it is for, in words.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The preset it started from, if any (informative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// Which series.
    #[serde(default, rename = "match")]
    pub matcher: SeriesMatcher,
    /// The feature stage.
    #[serde(default)]
    pub features: FeatureConfig,
    /// The detectors, at least one.
    pub detectors: Vec<DetectorSpec>,
    /// How their scores are combined.
    #[serde(default)]
    pub ensemble: EnsembleConfig,
    /// When scores become events.
    #[serde(default)]
    pub alert: AlertConfig,
}

impl DetectorDocument {
    /// The template the pipeline runs for `tenant`'s configuration `name` at `version`.
    pub fn template(&self, tenant: &str, name: &str, version: u64) -> Template {
        Template {
            name: name.to_owned(),
            version: config_version_id(tenant, name, version),
            matcher: Matcher {
                tenant: None,
                metric: self.matcher.metric.clone(),
                labels: self.matcher.labels.clone(),
            },
            features: self.features,
            detectors: self.detectors.clone(),
            ensemble: self.ensemble.clone(),
            alert: self.alert,
        }
    }

    /// The document as a JSON value (it always encodes).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The version id events produced by a configuration carry: `<tenant>.<name>@<version>`.
pub fn config_version_id(tenant: &str, name: &str, version: u64) -> String {
    format!("{tenant}.{name}@{version}")
}

/// One version of a configuration, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredConfig {
    /// The owning tenant.
    pub tenant: String,
    /// The configuration's name, unique within the tenant.
    pub name: String,
    /// Its version, from 1, never reused.
    pub version: u64,
    /// The content; `None` for the version that deleted it.
    pub document: Option<DetectorDocument>,
    /// Who made this version.
    pub updated_by: String,
    /// When (milliseconds since the Unix epoch).
    pub updated_at: TimestampMs,
    /// Why, as they said.
    pub reason: String,
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigAction {
    /// A configuration appeared.
    Create,
    /// Its content changed.
    Update,
    /// It was deleted.
    Delete,
    /// An earlier version's content became the current one.
    Revert,
}

/// One changed field between two versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    /// JSON pointer to the field in the document (`/alert/warning`).
    pub path: String,
    /// Its value before, as JSON (`null` when absent).
    pub before: String,
    /// Its value after, as JSON (`null` when absent).
    pub after: String,
}

/// One line of the configurations' audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigAuditEntry {
    /// Position in the log, from 1 (across all tenants: gaps in one tenant's view are other
    /// tenants' entries).
    pub seq: u64,
    /// When.
    pub at: TimestampMs,
    /// The tenant.
    pub tenant: String,
    /// The configuration.
    pub name: String,
    /// The version the change made.
    pub version: u64,
    /// What it did.
    pub action: ConfigAction,
    /// Who.
    pub who: String,
    /// Why.
    pub why: String,
    /// For a revert, the version whose content came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverted_to: Option<u64>,
    /// What changed against the version before.
    pub diff: Vec<FieldChange>,
}

/// The version a writer believes is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// The configuration must not exist (or be deleted): a create.
    Absent,
    /// Its current version must be this one.
    Version(u64),
    /// Any live version (`If-Match: *`).
    Any,
}

/// A change to make.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigChange {
    /// The tenant.
    pub tenant: String,
    /// The configuration.
    pub name: String,
    /// What the writer saw; a mismatch is [`crate::Error::ConfigConflict`].
    pub expected: Expected,
    /// The new content; `None` deletes.
    pub document: Option<DetectorDocument>,
    /// For a revert, the version whose content this is.
    pub reverted_to: Option<u64>,
}

impl ConfigChange {
    /// The audit action this change is, given the current version.
    pub fn action(&self, current: Option<&StoredConfig>) -> ConfigAction {
        let live = current.is_some_and(|c| c.document.is_some());
        match (&self.document, self.reverted_to, live) {
            (None, _, _) => ConfigAction::Delete,
            (Some(_), Some(_), _) => ConfigAction::Revert,
            (Some(_), None, false) => ConfigAction::Create,
            (Some(_), None, true) => ConfigAction::Update,
        }
    }

    /// Whether the change makes a configuration appear (a create, or a re-create after a
    /// delete): what counts against [`MAX_CONFIGS_PER_TENANT`].
    pub fn creates(&self, current: Option<&StoredConfig>) -> bool {
        self.document.is_some() && current.is_none_or(|c| c.document.is_none())
    }

    /// Refuses a create when the tenant already has `live` configurations, the most it may.
    pub fn check_room(&self, current: Option<&StoredConfig>, live: usize) -> Result<()> {
        if self.creates(current) && live >= MAX_CONFIGS_PER_TENANT {
            return Err(crate::Error::ConfigLimit {
                tenant: self.tenant.clone(),
                limit: MAX_CONFIGS_PER_TENANT,
            });
        }
        Ok(())
    }

    /// Checks the change against the current version; the new version's number.
    pub fn check(&self, current: Option<&StoredConfig>) -> Result<u64> {
        let live = current.filter(|c| c.document.is_some());
        let conflict = || crate::Error::ConfigConflict {
            tenant: self.tenant.clone(),
            name: self.name.clone(),
            current: live.cloned().map(Box::new),
        };
        match (self.expected, live) {
            (Expected::Absent, None) => {}
            (Expected::Version(expected), Some(live)) if live.version == expected => {}
            (Expected::Any, Some(_)) => {}
            (Expected::Any, None) => {
                return Err(crate::Error::ConfigNotFound {
                    tenant: self.tenant.clone(),
                    name: self.name.clone(),
                });
            }
            (Expected::Version(_), None) if current.is_none() || self.document.is_none() => {
                return Err(crate::Error::ConfigNotFound {
                    tenant: self.tenant.clone(),
                    name: self.name.clone(),
                });
            }
            _ => return Err(conflict()),
        }
        Ok(current.map_or(1, |c| c.version.saturating_add(1)))
    }

    /// The stored version and audit entry this change makes over `current`.
    pub fn apply(
        &self,
        current: Option<&StoredConfig>,
        actor: &Actor,
        at: TimestampMs,
        seq: u64,
    ) -> Result<(StoredConfig, ConfigAuditEntry)> {
        let version = self.check(current)?;
        let before = current
            .and_then(|c| c.document.as_ref())
            .map_or(Value::Null, DetectorDocument::to_value);
        let after = self
            .document
            .as_ref()
            .map_or(Value::Null, DetectorDocument::to_value);
        let stored = StoredConfig {
            tenant: self.tenant.clone(),
            name: self.name.clone(),
            version,
            document: self.document.clone(),
            updated_by: actor.who.clone(),
            updated_at: at,
            reason: actor.why.clone(),
        };
        let entry = ConfigAuditEntry {
            seq,
            at,
            tenant: self.tenant.clone(),
            name: self.name.clone(),
            version,
            action: self.action(current),
            who: actor.who.clone(),
            why: actor.why.clone(),
            reverted_to: self.reverted_to,
            diff: json_changes(&before, &after)
                .into_iter()
                .map(|(path, before, after)| FieldChange {
                    path,
                    before,
                    after,
                })
                .collect(),
        };
        Ok((stored, entry))
    }
}

/// Where configurations and their audit log live. Each change is atomic with its audit entry,
/// and checked against the writer's expected version inside the same transaction, so two
/// writers with the same version cannot both succeed.
pub trait ConfigStore: Send + Sync {
    /// Makes a new version (create, update, delete or revert), checked against
    /// `change.expected`.
    fn change_config(&self, change: &ConfigChange, actor: &Actor) -> Result<StoredConfig>;

    /// The newest version of a configuration, including one that deleted it.
    fn config(&self, tenant: &str, name: &str) -> Result<Option<StoredConfig>>;

    /// The tenant's live configurations (newest version of each, deleted ones left out), by
    /// name; every tenant's when `tenant` is `None` (for the pipeline).
    fn configs(&self, tenant: Option<&str>) -> Result<Vec<StoredConfig>>;

    /// Every version of a configuration, oldest first.
    fn config_versions(&self, tenant: &str, name: &str) -> Result<Vec<StoredConfig>>;

    /// The audit entries of a configuration, oldest first.
    fn config_audit(&self, tenant: &str, name: &str) -> Result<Vec<ConfigAuditEntry>>;

    /// A number that changes whenever any configuration changes, cheap to poll.
    fn config_generation(&self) -> Result<u64>;
}

/// Whether `name` can name a configuration: 1–64 bytes of lower-case ASCII letters, digits,
/// `-` and `_`, starting with a letter or digit (it appears in paths, keys and event fields).
pub fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'0'..=b'9'))
        && name.len() <= MAX_NAME_BYTES
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_'))
}

/// A field a document got wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// JSON pointer (RFC 6901) to the field, from the document's root.
    pub pointer: String,
    /// What is wrong and what would be right.
    pub message: String,
}

impl FieldError {
    fn new(pointer: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

/// Escapes a key for a JSON pointer (RFC 6901: `~` as `~0`, `/` as `~1`).
pub fn pointer_segment(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Reads and checks a document: its structure (unknown fields, wrong types), then every part's
/// values, building each detector once. All the errors found, each at its field.
pub fn parse_document(
    value: &Value,
    registry: &Registry,
) -> std::result::Result<DetectorDocument, Vec<FieldError>> {
    let document: DetectorDocument = match serde_path_to_error::deserialize(value) {
        Ok(document) => document,
        Err(error) => {
            let pointer = path_pointer(error.path());
            return Err(vec![FieldError::new(pointer, error.inner().to_string())]);
        }
    };
    let errors = check_document(&document, registry);
    if errors.is_empty() {
        Ok(document)
    } else {
        Err(errors)
    }
}

/// A serde path (`detectors[1].window`) as a JSON pointer (`/detectors/1/window`).
fn path_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                pointer.push('/');
                pointer.push_str(&pointer_segment(key));
            }
            Segment::Unknown => {}
        }
    }
    pointer
}

/// The value errors of a structurally valid document.
pub fn check_document(document: &DetectorDocument, registry: &Registry) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if document.description.len() > MAX_TEXT_BYTES {
        errors.push(FieldError::new(
            "/description",
            format!("at most {MAX_TEXT_BYTES} bytes"),
        ));
    }
    if let Some(preset) = &document.preset
        && !presets().iter().any(|p| p.name == *preset)
    {
        errors.push(FieldError::new(
            "/preset",
            format!(
                "no preset {preset:?}; the presets are {}",
                presets()
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if let Some(metric) = &document.matcher.metric
        && (metric.is_empty() || metric.len() > 256)
    {
        errors.push(FieldError::new(
            "/match/metric",
            "a glob of 1 to 256 bytes, or leave it out to match every metric",
        ));
    }
    if document.matcher.labels.len() > MAX_LABELS {
        errors.push(FieldError::new(
            "/match/labels",
            format!("at most {MAX_LABELS} label conditions"),
        ));
    }
    for (key, glob) in &document.matcher.labels {
        if key.is_empty() || key.len() > 128 || glob.len() > 256 {
            errors.push(FieldError::new(
                format!("/match/labels/{}", pointer_segment(key)),
                "a label name of 1 to 128 bytes and a glob of at most 256",
            ));
        }
    }
    if document.detectors.is_empty() {
        errors.push(FieldError::new(
            "/detectors",
            "at least one detector is needed",
        ));
    }
    if document.detectors.len() > MAX_DETECTORS {
        errors.push(FieldError::new(
            "/detectors",
            format!("at most {MAX_DETECTORS} detectors"),
        ));
    }
    for (index, spec) in document.detectors.iter().enumerate() {
        if let Err(error) = registry.build(spec) {
            let pointer = format!("/detectors/{index}");
            let field = match &error {
                aiops_operators::Error::UnknownDetector { .. } => Some("kind".to_owned()),
                _ => named_field(&error.to_string(), spec.params.keys()),
            };
            errors.push(FieldError::new(
                match field {
                    Some(field) => format!("{pointer}/{}", pointer_segment(&field)),
                    None => pointer,
                },
                error.to_string(),
            ));
        }
    }
    let sections: [(&str, std::result::Result<(), aiops_operators::Error>, Value); 3] = [
        (
            "features",
            document.features.validate(),
            serde_json::to_value(document.features).unwrap_or_default(),
        ),
        (
            "ensemble",
            document.ensemble.validate(),
            serde_json::to_value(&document.ensemble).unwrap_or_default(),
        ),
        (
            "alert",
            document.alert.validate(),
            serde_json::to_value(document.alert).unwrap_or_default(),
        ),
    ];
    for (section, checked, value) in sections {
        if let Err(error) = checked {
            let message = error.to_string();
            let keys = value
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>());
            let field = keys.and_then(|keys| named_field(&message, keys.iter()));
            errors.push(FieldError::new(
                match field {
                    Some(field) => format!("/{section}/{}", pointer_segment(&field)),
                    None => format!("/{section}"),
                },
                message,
            ));
        }
    }
    errors
}

/// The field an operators error message names: serde's "unknown field `x`", or the first of
/// `keys` the message mentions as a word.
fn named_field<'a>(message: &str, keys: impl Iterator<Item = &'a String>) -> Option<String> {
    if let Some(rest) = message.split("unknown field `").nth(1) {
        return rest.split('`').next().map(str::to_owned);
    }
    let words: Vec<&str> = message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let keys: Vec<&String> = keys.collect();
    words
        .iter()
        .find_map(|word| keys.iter().find(|key| key.as_str() == *word))
        .map(|key| (*key).clone())
}

/// A starting point for a configuration, with what it is for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preset {
    /// Its name (what a document's `preset` names).
    pub name: &'static str,
    /// A title for people.
    pub title: &'static str,
    /// What it catches.
    pub catches: &'static str,
    /// What it deliberately lets pass.
    pub ignores: &'static str,
    /// The configuration it starts a document with (no matcher: the user says which series).
    pub config: DetectorDocument,
}

fn spec(kind: &str, params: &[(&str, Value)]) -> DetectorSpec {
    let mut spec = DetectorSpec::new(kind);
    for (name, value) in params {
        spec.params.insert((*name).to_owned(), value.clone());
    }
    spec
}

fn preset_document(
    name: &str,
    detectors: Vec<DetectorSpec>,
    alert: AlertConfig,
) -> DetectorDocument {
    DetectorDocument {
        description: String::new(),
        preset: Some(name.to_owned()),
        matcher: SeriesMatcher::default(),
        features: FeatureConfig::default(),
        detectors,
        ensemble: Template::default().ensemble,
        alert,
    }
}

/// The built-in presets. Their parameters are the detectors' documented ones (see
/// docs/detection.md), chosen per kind of series; each is checked by the same validation as a
/// user's document.
pub fn presets() -> Vec<Preset> {
    use serde_json::json;
    let calibrated = Template::default().alert;
    vec![
        Preset {
            name: "request-latency",
            title: "Request latency",
            catches: "spikes and sustained rises of a latency (p50/p99) series, and shifts of \
                      its level after a deploy",
            ignores: "the single slow requests a heavy tail always has: one point above the \
                      recent range must exceed it clearly before it counts",
            config: preset_document(
                "request-latency",
                vec![
                    spec("range", &[]),
                    spec("mad", &[]),
                    spec(
                        "range",
                        &[("smooth", json!(0.1)), ("tolerance", json!(0.1))],
                    ),
                ],
                calibrated,
            ),
        },
        Preset {
            name: "error-rate",
            title: "Error rate",
            catches: "bursts of errors and a rate that steps up and stays up",
            ignores: "isolated errors of a series that is mostly zero (two points in a row \
                      must be unusual), and drops in the error rate",
            config: preset_document(
                "error-rate",
                vec![spec("range", &[]), spec("zscore", &[])],
                AlertConfig {
                    min_duration: 2,
                    ..calibrated
                },
            ),
        },
        Preset {
            name: "traffic-daily",
            title: "Traffic with a daily cycle",
            catches: "traffic that breaks its usual daily pattern: a dip at the hour it is \
                      normally busy, a surge at night",
            ignores: "the daily swing itself once the cycle is learnt (a day of history), and \
                      slow growth over weeks",
            config: preset_document(
                "traffic-daily",
                vec![
                    spec("seasonal", &[("level_alpha", json!(0.02))]),
                    spec("range", &[]),
                ],
                calibrated,
            ),
        },
        Preset {
            name: "saturation",
            title: "Saturation (CPU, memory, disk, queue depth)",
            catches: "slow creep towards a limit and sudden jumps in use",
            ignores: "short bursts that come back within a few points",
            config: preset_document(
                "saturation",
                vec![
                    spec(
                        "range",
                        &[("smooth", json!(0.1)), ("tolerance", json!(0.1))],
                    ),
                    spec("zscore", &[("input", json!("delta"))]),
                ],
                AlertConfig {
                    min_duration: 3,
                    ..calibrated
                },
            ),
        },
        Preset {
            name: "business-kpi",
            title: "Business KPI (orders, sign-ups, revenue)",
            catches: "a KPI that leaves its daily and weekly shape, in either direction, and \
                      shapes of the series never seen before",
            ignores: "noise within the usual spread of the hour; it waits two points before \
                      raising, so it is slower than the operational presets",
            config: preset_document(
                "business-kpi",
                vec![
                    spec("seasonal", &[("level_alpha", json!(0.02))]),
                    spec("mad", &[]),
                    spec("sequence", &[]),
                ],
                AlertConfig {
                    min_duration: 2,
                    ..calibrated
                },
            ),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn registry() -> Registry {
        Registry::builtin()
    }

    #[test]
    fn every_preset_passes_the_checks_a_user_document_gets() {
        for preset in presets() {
            let value = preset.config.to_value();
            let parsed = parse_document(&value, &registry());
            assert_eq!(parsed.as_ref().err(), None, "preset {}", preset.name);
            assert_eq!(parsed.unwrap(), preset.config);
        }
    }

    #[test]
    fn structural_errors_point_at_the_field() {
        let cases = [
            (
                json!({"detectors": [{"kind": "zscore"}], "alert": {"warning": "high"}}),
                "/alert/warning",
            ),
            (
                json!({"detectors": [{"kind": "zscore"}], "colour": "red"}),
                "/colour",
            ),
            (
                json!({"match": {"metric": 3}, "detectors": []}),
                "/match/metric",
            ),
            (json!({}), ""),
        ];
        for (document, pointer) in cases {
            let errors = parse_document(&document, &registry()).unwrap_err();
            assert_eq!(errors[0].pointer, pointer, "{document}: {errors:?}");
        }
    }

    #[test]
    fn value_errors_are_all_reported_each_at_its_field() {
        let document = json!({
            "detectors": [
                {"kind": "zscore"},
                {"kind": "no-such-detector"},
                {"kind": "mad", "window": 0},
                {"kind": "mad", "windw": 30}
            ],
            "alert": {"warning": 9.0, "critical": 2.0},
            "preset": "nonsense",
            "match": {"labels": {"": "x"}}
        });
        let errors = parse_document(&document, &registry()).unwrap_err();
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        for expected in [
            "/detectors/1/kind",
            "/detectors/2/window",
            "/detectors/3/windw",
            "/preset",
            "/match/labels/",
        ] {
            assert!(pointers.contains(&expected), "{expected} in {errors:#?}");
        }
        assert!(
            pointers.iter().any(|p| p.starts_with("/alert")),
            "{errors:#?}"
        );
        assert!(errors.iter().all(|e| !e.message.is_empty()));
    }

    #[test]
    fn an_empty_detector_list_is_refused() {
        let errors = parse_document(&json!({"detectors": []}), &registry()).unwrap_err();
        assert_eq!(errors[0].pointer, "/detectors");
    }

    #[test]
    fn pointers_escape_slashes_and_tildes() {
        assert_eq!(pointer_segment("a/b~c"), "a~1b~0c");
    }

    #[test]
    fn names_are_short_lower_case_words() {
        for good in ["checkout-latency", "a", "db_01", &"x".repeat(64)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "",
            "-lead",
            "Upper",
            "a b",
            "a/b",
            "../x",
            "é",
            &"x".repeat(65),
            "a%2Fb",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    fn stored(version: u64, live: bool) -> StoredConfig {
        StoredConfig {
            tenant: "acme".into(),
            name: "web".into(),
            version,
            document: live.then(|| presets()[0].config.clone()),
            updated_by: "alice".into(),
            updated_at: 0,
            reason: String::new(),
        }
    }

    fn change(expected: Expected, live: bool) -> ConfigChange {
        ConfigChange {
            tenant: "acme".into(),
            name: "web".into(),
            expected,
            document: live.then(|| presets()[1].config.clone()),
            reverted_to: None,
        }
    }

    #[test]
    fn expected_versions_decide_between_write_conflict_and_not_found() {
        // Create over nothing, and over a deleted version (numbering goes on).
        assert_eq!(change(Expected::Absent, true).check(None).unwrap(), 1);
        assert_eq!(
            change(Expected::Absent, true)
                .check(Some(&stored(4, false)))
                .unwrap(),
            5
        );
        // Create over a live one: conflict, with the current version attached.
        match change(Expected::Absent, true).check(Some(&stored(2, true))) {
            Err(crate::Error::ConfigConflict { current, .. }) => {
                assert_eq!(current.unwrap().version, 2);
            }
            other => panic!("{other:?}"),
        }
        // Update at the right and at a stale version.
        assert_eq!(
            change(Expected::Version(2), true)
                .check(Some(&stored(2, true)))
                .unwrap(),
            3
        );
        assert!(matches!(
            change(Expected::Version(1), true).check(Some(&stored(2, true))),
            Err(crate::Error::ConfigConflict { .. })
        ));
        // If-Match: * takes any live version, and needs one.
        assert_eq!(
            change(Expected::Any, true)
                .check(Some(&stored(7, true)))
                .unwrap(),
            8
        );
        assert!(matches!(
            change(Expected::Any, true).check(Some(&stored(7, false))),
            Err(crate::Error::ConfigNotFound { .. })
        ));
        // Update or delete of what does not exist.
        assert!(matches!(
            change(Expected::Version(1), true).check(None),
            Err(crate::Error::ConfigNotFound { .. })
        ));
        assert!(matches!(
            change(Expected::Version(3), false).check(Some(&stored(3, false))),
            Err(crate::Error::ConfigNotFound { .. })
        ));
    }

    #[test]
    fn a_change_records_its_action_and_diff() {
        let actor = Actor::new("bob", "quieter");
        let current = stored(1, true);
        let (version, entry) = change(Expected::Version(1), true)
            .apply(Some(&current), &actor, 42, 7)
            .unwrap();
        assert_eq!((version.version, entry.version, entry.seq), (2, 2, 7));
        assert_eq!(entry.action, ConfigAction::Update);
        assert_eq!((entry.who.as_str(), entry.why.as_str()), ("bob", "quieter"));
        assert!(
            entry.diff.iter().any(|c| c.path == "/preset"),
            "{:?}",
            entry.diff
        );
        let (_, deleted) = change(Expected::Version(2), false)
            .apply(Some(&version), &actor, 43, 8)
            .unwrap();
        assert_eq!(deleted.action, ConfigAction::Delete);
    }

    #[test]
    fn a_configuration_runs_as_a_template_without_a_tenant_glob() {
        let mut document = presets()[0].config.clone();
        document.matcher.metric = Some("http_*".into());
        let template = document.template("acme", "web", 3);
        assert_eq!(template.version, "acme.web@3");
        assert_eq!(template.matcher.tenant, None);
        assert_eq!(template.matcher.metric.as_deref(), Some("http_*"));
        template.validate(&Registry::builtin()).unwrap();
    }
}
