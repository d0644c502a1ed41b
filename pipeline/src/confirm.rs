//! Confirmations of detector configurations: once every worker of this process scores with a
//! publication of the model watch, each configuration version in it that was not confirmed yet
//! gets a `config_applied` notice (a delete too, marked `deleted`), and each version this build
//! refused a `config_rejected` with the reason. The runner sends the notices to the sink, which
//! publishes them on the tenant's `config` channel.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use aiops_models::watch::{ActiveModels, ConfigKey};
use aiops_schemas::{ConfigNotice, ConfigNoticeKind, TimestampMs};

/// What this instance has confirmed so far.
#[derive(Debug)]
pub struct Confirmations {
    instance: String,
    workers: usize,
    /// The newest publication each worker reported running.
    applied: HashMap<usize, u64>,
    /// The publications some worker runs, until every worker runs a later one.
    running: BTreeMap<u64, Arc<ActiveModels>>,
    /// The publication last confirmed.
    confirmed_publication: u64,
    /// The version confirmed per configuration, and whether it was a delete.
    confirmed: BTreeMap<ConfigKey, (u64, bool)>,
    /// The refused version told per configuration.
    refused: BTreeMap<ConfigKey, u64>,
}

impl Confirmations {
    /// Confirmations for `instance` once all `workers` of this process report a publication.
    pub fn new(instance: impl Into<String>, workers: usize) -> Confirmations {
        Confirmations {
            instance: instance.into(),
            workers: workers.max(1),
            applied: HashMap::new(),
            running: BTreeMap::new(),
            confirmed_publication: 0,
            confirmed: BTreeMap::new(),
            refused: BTreeMap::new(),
        }
    }

    /// This instance's name, as notices carry it.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Worker `worker` runs `active` now; the notices that makes due: what the publication
    /// every worker runs holds that was not confirmed yet (so a steady flow of later changes
    /// cannot hold a confirmation back).
    pub fn on_applied(
        &mut self,
        worker: usize,
        active: Arc<ActiveModels>,
        now: TimestampMs,
    ) -> Vec<ConfigNotice> {
        let newest = self.applied.entry(worker).or_default();
        *newest = (*newest).max(active.publication);
        self.running.insert(active.publication, active);
        if self.applied.len() < self.workers {
            return Vec::new();
        }
        let Some(everywhere) = self.applied.values().min().copied() else {
            return Vec::new();
        };
        // Publications older than the one every worker runs are done with.
        self.running = self.running.split_off(&everywhere);
        if everywhere <= self.confirmed_publication {
            return Vec::new();
        }
        let Some(current) = self.running.get(&everywhere).cloned() else {
            return Vec::new();
        };
        self.confirmed_publication = everywhere;
        let mut notices = Vec::new();
        let notice = |kind, (tenant, name): &ConfigKey, version| {
            ConfigNotice::new(kind, (tenant, name, version), &self.instance, now)
        };
        for (key, (stored, _)) in &current.configs {
            if self.confirmed.get(key) != Some(&(stored.version, false)) {
                notices.push(notice(ConfigNoticeKind::ConfigApplied, key, stored.version));
            }
        }
        for (key, version) in &current.deleted {
            if self.confirmed.get(key) != Some(&(*version, true)) {
                let mut deleted = notice(ConfigNoticeKind::ConfigApplied, key, *version);
                deleted.deleted = true;
                notices.push(deleted);
            }
        }
        for (key, (version, reason)) in &current.rejected {
            if self.refused.get(key) != Some(version) {
                let mut refused = notice(ConfigNoticeKind::ConfigRejected, key, *version);
                refused.reason = Some(reason.clone());
                notices.push(refused);
            }
        }
        for notice in &notices {
            let key = (notice.tenant.clone(), notice.name.clone());
            match notice.kind {
                ConfigNoticeKind::ConfigApplied => {
                    self.confirmed.insert(key, (notice.version, notice.deleted));
                }
                ConfigNoticeKind::ConfigRejected => {
                    self.refused.insert(key, notice.version);
                }
            }
        }
        notices
    }
}

/// This process's name for notices: the host name (a pod's name under Kubernetes) and the
/// process id.
pub fn instance_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiops_models::Actor;
    use aiops_models::ModelStore;
    use aiops_models::detectors::{ConfigChange, ConfigStore, Expected, presets};
    use aiops_models::sqlite::SqliteStore;
    use aiops_models::watch::ModelWatch;

    fn change(store: &SqliteStore, name: &str, expected: Expected, preset: Option<usize>) {
        store
            .change_config(
                &ConfigChange {
                    tenant: "acme".into(),
                    name: name.into(),
                    expected,
                    document: preset.map(|p| presets()[p].config.clone()),
                    reverted_to: None,
                },
                &Actor::new("test", "test"),
            )
            .unwrap();
    }

    #[test]
    fn each_version_is_confirmed_once_every_worker_runs_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let watch = ModelWatch::new();
        change(&store, "web", Expected::Absent, Some(0));
        assert!(watch.refresh(&store as &dyn ModelStore).unwrap());
        let mut confirmations = Confirmations::new("host:1", 2);
        // One of two workers is not enough.
        assert!(confirmations.on_applied(0, watch.current(), 10).is_empty());
        let notices = confirmations.on_applied(1, watch.current(), 11);
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].kind, ConfigNoticeKind::ConfigApplied);
        assert_eq!((notices[0].name.as_str(), notices[0].version), ("web", 1));
        assert_eq!(notices[0].id, "acme.web@1/host:1/applied");
        // Reported again: nothing new.
        assert!(confirmations.on_applied(0, watch.current(), 12).is_empty());

        // An update and a second configuration: only what changed is confirmed.
        change(&store, "web", Expected::Version(1), Some(1));
        change(&store, "db", Expected::Absent, Some(2));
        assert!(watch.refresh(&store as &dyn ModelStore).unwrap());
        assert!(confirmations.on_applied(0, watch.current(), 13).is_empty());
        let mut told: Vec<(String, u64)> = confirmations
            .on_applied(1, watch.current(), 14)
            .into_iter()
            .map(|n| (n.name, n.version))
            .collect();
        told.sort();
        assert_eq!(told, [("db".to_owned(), 1), ("web".to_owned(), 2)]);

        // A delete is confirmed as such.
        change(&store, "db", Expected::Version(1), None);
        assert!(watch.refresh(&store as &dyn ModelStore).unwrap());
        confirmations.on_applied(0, watch.current(), 15);
        let notices = confirmations.on_applied(1, watch.current(), 16);
        assert_eq!(notices.len(), 1);
        assert!(notices[0].deleted);
        assert_eq!((notices[0].name.as_str(), notices[0].version), ("db", 2));
    }

    #[test]
    fn confirmations_follow_what_every_worker_runs_not_the_newest_publication() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let watch = ModelWatch::new();
        let versions = |notices: Vec<ConfigNotice>| -> Vec<u64> {
            notices.into_iter().map(|n| n.version).collect()
        };
        change(&store, "web", Expected::Absent, Some(0));
        watch.refresh(&store as &dyn ModelStore).unwrap();
        let first = watch.current();
        change(&store, "web", Expected::Version(1), Some(1));
        watch.refresh(&store as &dyn ModelStore).unwrap();
        let second = watch.current();
        let mut confirmations = Confirmations::new("host:1", 2);
        // Worker 0 runs version 2, worker 1 still version 1: version 1 is what is live.
        assert!(confirmations.on_applied(0, second.clone(), 10).is_empty());
        assert_eq!(versions(confirmations.on_applied(1, first, 11)), [1]);
        // A later change is published (and worker 0 takes it) before worker 1 catches up:
        // version 2 is confirmed as soon as both run it, not held back by version 3.
        change(&store, "web", Expected::Version(2), Some(2));
        watch.refresh(&store as &dyn ModelStore).unwrap();
        assert!(confirmations.on_applied(0, watch.current(), 12).is_empty());
        assert_eq!(versions(confirmations.on_applied(1, second, 13)), [2]);
        assert_eq!(
            versions(confirmations.on_applied(1, watch.current(), 14)),
            [3]
        );
    }

    #[test]
    fn a_version_this_build_cannot_run_is_refused_and_the_one_before_keeps_running() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let watch = ModelWatch::new();
        change(&store, "web", Expected::Absent, Some(0));
        watch.refresh(&store as &dyn ModelStore).unwrap();
        let mut confirmations = Confirmations::new("host:1", 1);
        assert_eq!(confirmations.on_applied(0, watch.current(), 10).len(), 1);
        // Written past the API's checks (another build's detector kind, say).
        let mut unknown = presets()[0].config.clone();
        unknown.detectors[0].kind = "detector-of-a-newer-build".into();
        store
            .change_config(
                &ConfigChange {
                    tenant: "acme".into(),
                    name: "web".into(),
                    expected: Expected::Version(1),
                    document: Some(unknown),
                    reverted_to: None,
                },
                &Actor::new("test", "test"),
            )
            .unwrap();
        watch.refresh(&store as &dyn ModelStore).unwrap();
        let notices = confirmations.on_applied(0, watch.current(), 11);
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert_eq!(notices[0].kind, ConfigNoticeKind::ConfigRejected);
        assert_eq!(notices[0].version, 2);
        assert!(
            notices[0]
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("detector-of-a-newer-build")),
            "{notices:?}"
        );
        // Version 1 still runs for the tenant.
        let running = &watch.current().configs[&("acme".to_owned(), "web".to_owned())];
        assert_eq!(running.0.version, 1);
        // Told once.
        assert!(confirmations.on_applied(0, watch.current(), 12).is_empty());
        // A process that starts now runs version 1 too (not nothing).
        let restarted = ModelWatch::new();
        restarted.refresh(&store as &dyn ModelStore).unwrap();
        let running = &restarted.current().configs[&("acme".to_owned(), "web".to_owned())];
        assert_eq!(running.0.version, 1);
    }

    #[test]
    fn the_instance_name_has_a_host_and_a_process() {
        let name = instance_name();
        assert!(
            name.ends_with(&format!(":{}", std::process::id())),
            "{name}"
        );
        assert!(name.len() > 2);
    }
}
