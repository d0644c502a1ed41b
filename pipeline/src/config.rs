//! Pipeline configuration: how records are parsed and which detector templates run, loaded
//! from a TOML file.
//!
//! ```toml
//! [parse]
//! default_tenant = "acme"
//!
//! [[templates]]
//! name = "latency"
//! match = { metric = "*latency*" }
//! detectors = [{ kind = "mad", window = 128 }]
//! alert = { warning = 4.0, critical = 7.0 }
//! ```
//!
//! Anything left out takes its default; series no template matches use the built-in
//! `default` template (z-score and MAD). `aiops.example.toml` at the repository root lists every
//! field.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use aiops_operators::{Registry, Template, TemplateSet};
use aiops_schemas::ParseOptions;

use crate::error::{Error, Result};

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// How records are parsed and validated.
    pub parse: ParseOptions,
    /// Detector templates, in match order.
    pub templates: Vec<Template>,
}

impl PipelineConfig {
    /// Reads and checks a TOML file.
    pub fn from_file(path: &Path) -> Result<PipelineConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
        let with_path = |message: String| Error::Config {
            path: Some(path.to_owned()),
            message,
        };
        let config: PipelineConfig = toml::from_str(&text).map_err(|e| with_path(e.to_string()))?;
        config
            .template_set()
            .map_err(|e| with_path(e.to_string()))?;
        Ok(config)
    }

    /// The validated templates, with the built-in detectors.
    pub fn template_set(&self) -> Result<Arc<TemplateSet>> {
        self.parse
            .limits
            .check_tenant(&self.parse.default_tenant)
            .map_err(|e| Error::config(format!("parse.default_tenant: {e}")))?;
        Ok(Arc::new(TemplateSet::new(
            self.templates.clone(),
            Registry::builtin(),
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load(text: &str) -> Result<PipelineConfig> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        PipelineConfig::from_file(file.path())
    }

    #[test]
    fn reads_templates_with_detector_parameters() {
        let config = load(
            r#"
            [parse]
            default_tenant = "acme"
            [[templates]]
            name = "latency"
            match = { metric = "*latency*", labels = { env = "prod" } }
            detectors = [{ kind = "mad", window = 128 }, { kind = "zscore", alpha = 0.1 }]
            ensemble = { method = "max" }
            alert = { warning = 4.0, critical = 7.0 }
            "#,
        )
        .unwrap();
        assert_eq!(config.parse.default_tenant, "acme");
        let set = config.template_set().unwrap();
        assert_eq!(set.templates().len(), 2, "plus the built-in default");
        assert_eq!(set.templates()[0].detectors[0].params["window"], 128);
        assert_eq!(set.templates()[0].alert.warning, 4.0);
    }

    #[test]
    fn the_example_configuration_at_the_repository_root_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../aiops.example.toml");
        let config = PipelineConfig::from_file(&path).unwrap();
        let set = config.template_set().unwrap();
        let names: Vec<_> = set.templates().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["latency", "default"]);
        // The documented defaults are the real ones.
        assert_eq!(config.parse, aiops_schemas::ParseOptions::default());
        let (documented, builtin) = (&set.templates()[1], aiops_operators::Template::default());
        assert_eq!(documented.alert, builtin.alert);
        assert_eq!(documented.ensemble, builtin.ensemble);
        assert_eq!(documented.features, builtin.features);
        assert_eq!(documented.version, builtin.version);
        let configs = |t: &aiops_operators::Template| -> Vec<serde_json::Value> {
            let built = t.build_detectors(set.registry()).unwrap();
            built.iter().map(|d| d.config()).collect()
        };
        assert_eq!(configs(documented), configs(&builtin));
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let err =
            load("[[templates]]\nname = \"x\"\ndetectors = [{ kind = \"mad\", window = 999 }]\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("invalid configuration in") && err.contains("window"),
            "{err}"
        );
        let err = load("[parse]\nbogus = 1\n").unwrap_err().to_string();
        assert!(err.contains("bogus"), "{err}");
        let err = load("[parse]\ndefault_tenant = \"a b\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("default_tenant"), "{err}");
        let err = PipelineConfig::from_file(Path::new("/nonexistent.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot read /nonexistent.toml"), "{err}");
    }
}
