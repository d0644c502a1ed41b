//! How the running pipeline learns that the active versions (or the tenants' detector
//! configurations) changed: [`ModelWatch::refresh`]
//! (called by a polling thread, [`ModelWatch::spawn_poller`]) compares the store's generation
//! with the one it loaded, loads the active versions and their trained state, and publishes
//! them; the score stage checks [`ModelWatch::publication`] between two epochs and swaps.
//!
//! A version whose state cannot be loaded (its artifact went missing or corrupt after it was
//! activated) is not published: the version already running keeps running, and the error is
//! kept for the status line.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use aiops_operators::{Registry, Template, TemplateSet};

use super::artifact::ModelArtifact;
use super::detectors::{ConfigStore, StoredConfig};
use super::{ModelScope, ModelStore, ModelVersion};
use crate::error::Result;

/// An active version, loaded.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    /// The version's record.
    pub version: ModelVersion,
    /// The template the pipeline runs for it (parameters stamped with the version id).
    pub template: Template,
    /// Its trained state.
    pub state: Arc<ModelArtifact>,
}

/// A tenant's configuration, by tenant and name.
pub type ConfigKey = (String, String);

/// The active versions and detector configurations as last published.
#[derive(Debug, Clone, Default)]
pub struct ActiveModels {
    /// Publication number, from 1 (0: nothing published yet).
    pub publication: u64,
    /// Loaded versions by scope.
    pub models: BTreeMap<ModelScope, LoadedModel>,
    /// The live detector configurations this build can run, each as the template it runs.
    pub configs: BTreeMap<ConfigKey, (StoredConfig, Template)>,
    /// Configurations deleted since the watch started, with the version that deleted them.
    pub deleted: BTreeMap<ConfigKey, u64>,
    /// Live configuration versions this build cannot run, and why (the previous version of
    /// the configuration, if it had one that runs, keeps running).
    pub rejected: BTreeMap<ConfigKey, (u64, String)>,
}

impl ActiveModels {
    /// The version running for `template` (for every tenant), if any.
    pub fn for_template(&self, template: &str) -> Option<&LoadedModel> {
        self.models.get(&ModelScope::template(template))
    }

    /// The configured templates with the active versions in place: a template with a version
    /// for every tenant runs that version's parameters; a tenant's own version runs, for that
    /// tenant only, just before it in match order.
    pub fn apply(&self, base: &TemplateSet) -> TemplateSet {
        let mut templates =
            Vec::with_capacity(base.templates().len() + self.models.len() + self.configs.len());
        // A tenant's own configurations come first, in name order: they apply to that tenant
        // only (tenant names have no glob characters, so the glob is an exact match).
        for ((tenant, _), (_, template)) in &self.configs {
            let mut template = template.clone();
            template.matcher.tenant = Some(tenant.clone());
            templates.push(template);
        }
        for template in base.templates() {
            for (scope, model) in &self.models {
                let Some(tenant) = &scope.tenant else {
                    continue;
                };
                // A tenant the template does not cover gets no variant of it either.
                let covered = template
                    .matcher
                    .tenant
                    .as_deref()
                    .is_none_or(|glob| aiops_operators::template::glob_match(glob, tenant));
                if scope.template == template.name && covered {
                    let mut variant = model.template.clone();
                    variant.matcher = template.matcher.clone();
                    variant.matcher.tenant = Some(tenant.clone());
                    templates.push(variant);
                }
            }
            match self.for_template(&template.name) {
                Some(model) => templates.push(Template {
                    matcher: template.matcher.clone(),
                    ..model.template.clone()
                }),
                None => templates.push(template.clone()),
            }
        }
        TemplateSet::with_variants(templates, base.registry().clone())
    }
}

/// See the module docs.
#[derive(Default)]
pub struct ModelWatch {
    current: RwLock<Arc<ActiveModels>>,
    publication: AtomicU64,
    /// The store's model and configuration generations last loaded.
    loaded_generation: Mutex<Option<(u64, u64)>>,
    /// Set (and signalled) by [`ModelWatch::wake`].
    wakeup: (Mutex<bool>, std::sync::Condvar),
    last_error: Mutex<Option<String>>,
}

impl ModelWatch {
    /// A watch with nothing published.
    pub fn new() -> Arc<ModelWatch> {
        Arc::new(ModelWatch::default())
    }

    /// The publication number: changes whenever new versions are published.
    pub fn publication(&self) -> u64 {
        self.publication.load(Ordering::Acquire)
    }

    /// What was last published.
    pub fn current(&self) -> Arc<ActiveModels> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The last version that could not be loaded, and why.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Loads and publishes the active versions if the store's generation moved. Returns
    /// whether something new was published.
    pub fn refresh(&self, store: &dyn ModelStore) -> Result<bool> {
        let configs = store.config_store();
        let generation = (
            store.generation()?,
            configs.map_or(Ok(0), |c| c.config_generation())?,
        );
        let mut loaded = self
            .loaded_generation
            .lock()
            .map_err(|_| crate::Error::model_store_message("model watch poisoned"))?;
        if *loaded == Some(generation) {
            return Ok(false);
        }
        let previous = self.current();
        let registry = Registry::builtin();
        let mut models = BTreeMap::new();
        let mut failure = None;
        for (scope, id) in store.active()? {
            let unchanged = previous.models.get(&scope).filter(|m| m.version.id == id);
            if let Some(model) = unchanged {
                models.insert(scope, model.clone());
                continue;
            }
            match load(store, &id, &registry) {
                Ok(model) => {
                    models.insert(scope, model);
                }
                Err(error) => {
                    // Keep what runs now for this scope.
                    let running = previous.models.get(&scope);
                    let name = running.map_or("the configured template", |m| &m.version.id);
                    failure = Some(format!("{error}; {name} keeps running"));
                    if let Some(model) = running {
                        models.insert(scope, model.clone());
                    }
                }
            }
        }
        let (configs, deleted, rejected) = match configs {
            Some(store) => load_configs(store, &previous, &registry)?,
            None => Default::default(),
        };
        *loaded = Some(generation);
        if let Ok(mut last) = self.last_error.lock() {
            *last = failure;
        }
        let publication = self.publication() + 1;
        let active = Arc::new(ActiveModels {
            publication,
            models,
            configs,
            deleted,
            rejected,
        });
        match self.current.write() {
            Ok(mut current) => *current = active,
            Err(poisoned) => *poisoned.into_inner() = active,
        }
        self.publication.store(publication, Ordering::Release);
        Ok(true)
    }

    /// Makes the poller look at the store now rather than at its next tick: what a
    /// notification of a change (the configuration API's, over Redis) calls.
    pub fn wake(&self) {
        let (woken, signal) = &self.wakeup;
        if let Ok(mut woken) = woken.lock() {
            *woken = true;
            signal.notify_all();
        }
    }

    /// Waits up to `interval`, or until [`ModelWatch::wake`]; whether it was woken (the
    /// wake-up is then used up).
    fn pause(&self, interval: Duration) -> bool {
        let (woken, signal) = &self.wakeup;
        let Ok(guard) = woken.lock() else {
            std::thread::sleep(interval);
            return false;
        };
        match signal.wait_timeout_while(guard, interval, |woken| !*woken) {
            Ok((mut woken, _)) => std::mem::replace(&mut *woken, false),
            Err(_) => false,
        }
    }

    /// Polls `store` every `interval` (at once when woken) until `stop` is set.
    pub fn spawn_poller(
        self: Arc<Self>,
        store: Arc<dyn ModelStore>,
        interval: Duration,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("aiops-models".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Err(error) = self.refresh(store.as_ref())
                        && let Ok(mut last) = self.last_error.lock()
                    {
                        *last = Some(error.to_string());
                    }
                    // Until the next tick or a wake-up, looking at `stop` every 100 ms.
                    let next = std::time::Instant::now() + interval;
                    loop {
                        let left = next.saturating_duration_since(std::time::Instant::now());
                        if stop.load(Ordering::Relaxed) || left.is_zero() {
                            break;
                        }
                        if self.pause(left.min(Duration::from_millis(100))) {
                            break;
                        }
                    }
                }
            })
    }
}

/// What [`load_configs`] finds: the configurations that run, the deleted ones, the refused ones.
type LoadedConfigs = (
    BTreeMap<ConfigKey, (StoredConfig, Template)>,
    BTreeMap<ConfigKey, u64>,
    BTreeMap<ConfigKey, (u64, String)>,
);

/// The live configurations as templates this build can run; one it cannot (a detector kind it
/// was built without) is refused, and the version of it that ran before keeps running.
fn load_configs(
    store: &dyn ConfigStore,
    previous: &ActiveModels,
    registry: &Registry,
) -> Result<LoadedConfigs> {
    let mut configs = BTreeMap::new();
    let mut rejected = BTreeMap::new();
    for stored in store.configs(None)? {
        let key = (stored.tenant.clone(), stored.name.clone());
        let Some(document) = &stored.document else {
            continue;
        };
        let template = document.template(&stored.tenant, &stored.name, stored.version);
        match template.validate(registry) {
            Ok(()) => {
                configs.insert(key, (stored, template));
            }
            Err(error) => {
                rejected.insert(key.clone(), (stored.version, error.to_string()));
                // The version that ran before keeps running: the one this watch ran, or after
                // a restart the newest earlier version this build can run.
                let fallback = match previous.configs.get(&key) {
                    Some(running) => Some(running.clone()),
                    None => newest_runnable(store, &stored, registry)?,
                };
                if let Some(running) = fallback {
                    configs.insert(key, running);
                }
            }
        }
    }
    let mut deleted = previous.deleted.clone();
    for key in previous.configs.keys() {
        if configs.contains_key(key) || rejected.contains_key(key) {
            continue;
        }
        if let Some(gone) = store.config(&key.0, &key.1)? {
            deleted.insert(key.clone(), gone.version);
        }
    }
    // A configuration created again after a delete is live, not deleted.
    deleted.retain(|key, _| !configs.contains_key(key));
    Ok((configs, deleted, rejected))
}

/// The newest version before `refused` (back to the last delete) that validates here.
fn newest_runnable(
    store: &dyn ConfigStore,
    refused: &StoredConfig,
    registry: &Registry,
) -> Result<Option<(StoredConfig, Template)>> {
    let versions = store.config_versions(&refused.tenant, &refused.name)?;
    for earlier in versions.into_iter().rev() {
        if earlier.version >= refused.version {
            continue;
        }
        let Some(document) = &earlier.document else {
            // Deleted before: nothing ran after that.
            return Ok(None);
        };
        let template = document.template(&earlier.tenant, &earlier.name, earlier.version);
        if template.validate(registry).is_ok() {
            return Ok(Some((earlier, template)));
        }
    }
    Ok(None)
}

fn load(store: &dyn ModelStore, id: &str, registry: &Registry) -> Result<LoadedModel> {
    let version = store.get(id)?;
    let bytes = store.artifact(id)?;
    let state = ModelArtifact::decode(id, &bytes)?;
    let template = version.template();
    template.validate(registry)?;
    state.check(id, &template, registry)?;
    Ok(LoadedModel {
        version,
        template,
        state: Arc::new(state),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Actor;
    use crate::contract::register_version;
    use crate::sqlite::SqliteStore;
    use aiops_operators::{Matcher, Template};
    use aiops_schemas::{Labels, Limits, Series};

    fn series(tenant: &str) -> Arc<Series> {
        Arc::new(Series::new(tenant, "cpu", Labels::new(), &Limits::default()).unwrap())
    }

    fn register(store: &SqliteStore, tenant: Option<&str>, warning: f64) -> String {
        let mut parameters = Template {
            name: "web".into(),
            ..Template::light()
        };
        parameters.alert.warning = warning;
        let scope = ModelScope {
            template: "web".into(),
            tenant: tenant.map(str::to_owned),
        };
        let actor = Actor::new("t", "t");
        let version = register_version(store, scope, parameters, 7, &actor);
        store.activate(&version.id, &actor).unwrap();
        version.id
    }

    #[test]
    fn a_tenants_own_version_runs_for_that_tenant_and_the_shared_one_for_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let shared = register(&store, None, 6.0);
        let own = register(&store, Some("acme"), 4.0);
        assert_eq!((shared.as_str(), own.as_str()), ("web-v1", "acme.web-v1"));
        let watch = ModelWatch::new();
        assert!(watch.refresh(&store).unwrap());
        assert!(!watch.refresh(&store).unwrap(), "nothing changed since");
        let base = TemplateSet::new(
            vec![Template {
                name: "web".into(),
                matcher: Matcher {
                    metric: Some("cpu*".into()),
                    ..Matcher::default()
                },
                ..Template::light()
            }],
            Registry::builtin(),
        )
        .unwrap();
        let applied = watch.current().apply(&base);
        let pick = |tenant: &str| applied.select(&series(tenant)).unwrap().1.clone();
        let (for_acme, for_others) = (pick("acme"), pick("globex"));
        assert_eq!(for_acme.version, "acme.web-v1");
        assert_eq!(for_acme.alert.warning, 4.0);
        assert_eq!(for_others.version, "web-v1");
        assert_eq!(for_others.alert.warning, 6.0);
        // The configured matcher still applies to both.
        assert_eq!(for_acme.matcher.metric.as_deref(), Some("cpu*"));
        let memory = Series::new("acme", "memory", Labels::new(), &Limits::default()).unwrap();
        assert_eq!(applied.select(&memory).unwrap().1.name, "default");
    }

    #[test]
    fn a_wake_up_makes_the_poller_look_now_not_at_its_next_tick() {
        use crate::detectors::{ConfigChange, ConfigStore, Expected, presets};
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let watch = ModelWatch::new();
        let stop = Arc::new(AtomicBool::new(false));
        let poller = watch
            .clone()
            .spawn_poller(store.clone(), Duration::from_secs(3600), stop.clone())
            .unwrap();
        // The first look happens at once.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while watch.publication() == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(watch.publication(), 1);
        store
            .change_config(
                &ConfigChange {
                    tenant: "acme".into(),
                    name: "web".into(),
                    expected: Expected::Absent,
                    document: Some(presets()[0].config.clone()),
                    reverted_to: None,
                },
                &Actor::new("t", "t"),
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(watch.publication(), 1, "no look before the hour is up");
        watch.wake();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while watch.publication() == 1 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(watch.publication(), 2);
        assert!(
            watch
                .current()
                .configs
                .contains_key(&("acme".into(), "web".into()))
        );
        stop.store(true, Ordering::Relaxed);
        poller.join().unwrap();
    }
}
