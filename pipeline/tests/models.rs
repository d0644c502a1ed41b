//! Model versions in a running pipeline: activating and rolling back swap the version that
//! scores without a restart, without losing or scoring twice any point, and events say which
//! version scored them; a version whose state breaks after activation is not loaded and the
//! running one stays.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aiops_connectors::source::synthetic::{SyntheticConfig, SyntheticSource};
use aiops_models::contract::register_version;
use aiops_models::sqlite::SqliteStore;
use aiops_models::watch::ModelWatch;
use aiops_models::{Actor, AuditAction, ModelScope, ModelStore, ModelVersion};
use aiops_operators::{Registry, Template, TemplateSet};
use aiops_pipeline::sink::Sink;
use aiops_pipeline::{RunOptions, run};
use aiops_schemas::AnomalyEvent;

/// Events shared with the test thread while the pipeline runs.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<AnomalyEvent>>>);

impl Sink for Shared {
    fn events(&mut self, events: &[AnomalyEvent]) -> aiops_pipeline::Result<()> {
        self.0.lock().unwrap().extend_from_slice(events);
        Ok(())
    }
}

impl Shared {
    fn count_of(&self, version: &str) -> usize {
        let events = self.0.lock().unwrap();
        events.iter().filter(|e| e.model_version == version).count()
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

fn light(warning: f64) -> Template {
    let mut template = Template {
        name: "default".into(),
        ..Template::light()
    };
    template.alert.warning = warning;
    template
}

fn register(store: &dyn ModelStore, parameters: Template, note: &str) -> ModelVersion {
    register_version(
        store,
        ModelScope::template("default"),
        parameters,
        1,
        &Actor::new("test", note),
    )
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn activate_then_roll_back_while_running_and_events_carry_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ModelStore> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let v1 = register(store.as_ref(), light(5.0), "v1");
    let v2 = register(store.as_ref(), light(4.0), "v2");
    store
        .activate(&v1.id, &Actor::new("alice", "first"))
        .unwrap();

    let watch = ModelWatch::new();
    watch.refresh(store.as_ref()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let poller = watch
        .clone()
        .spawn_poller(store.clone(), Duration::from_millis(20), stop.clone())
        .unwrap();

    let config = SyntheticConfig {
        series: 40,
        points_per_second: Some(40_000.0),
        mean_anomaly_gap: 400,
        ..SyntheticConfig::default()
    };
    let source = Arc::new(SyntheticSource::new(config, 2).unwrap());
    let sink = Shared::default();
    let options = RunOptions {
        templates: Arc::new(TemplateSet::new(vec![light(5.0)], Registry::builtin()).unwrap()),
        stop: stop.clone(),
        models: Some(watch.clone()),
        ..RunOptions::new(2)
    };
    let pipeline = {
        let sink = sink.clone();
        std::thread::spawn(move || run(source, sink, options, |_| {}))
    };

    wait_for("events of v1", || sink.count_of(&v1.id) >= 20);
    store
        .activate(&v2.id, &Actor::new("bob", "lower threshold"))
        .unwrap();
    wait_for("events of v2", || sink.count_of(&v2.id) >= 20);
    let before_rollback = sink.len();
    store
        .rollback(
            &ModelScope::template("default"),
            None,
            &Actor::new("carol", "too noisy"),
        )
        .unwrap();
    wait_for("events of v1 again", || {
        let events = sink.0.lock().unwrap();
        events[before_rollback..]
            .iter()
            .filter(|e| e.model_version == v1.id)
            .count()
            >= 20
    });
    stop.store(true, Ordering::Relaxed);
    let summary = pipeline.join().unwrap().unwrap();
    poller.join().unwrap();

    // Nothing lost, nothing scored twice.
    assert_eq!(summary.stats.points_scored, summary.stats.points_in);
    assert!(summary.stats.model_swaps >= 2 * 40, "{:?}", summary.stats);
    let events = sink.0.lock().unwrap();
    let unique: BTreeSet<(String, i64)> = events
        .iter()
        .map(|e| {
            (
                e.series.name.clone() + &format!("{:?}", e.series.labels),
                e.timestamp,
            )
        })
        .collect();
    assert_eq!(unique.len(), events.len(), "a point raised two events");
    // Per series, the versions come in order: v1, then v2, then v1 again; never back and forth.
    let mut runs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut ordered: Vec<&AnomalyEvent> = events.iter().collect();
    ordered.sort_by_key(|e| e.timestamp);
    for event in ordered {
        let key = format!("{}{:?}", event.series.name, event.series.labels);
        let seen = runs.entry(key).or_default();
        if seen.last() != Some(&event.model_version) {
            seen.push(event.model_version.clone());
        }
    }
    for (series, versions) in &runs {
        assert!(versions.len() <= 3, "{series}: {versions:?}");
        for pair in versions.windows(2) {
            assert_ne!(pair[0], pair[1]);
        }
    }
    assert!(
        events
            .iter()
            .all(|e| e.model_version == v1.id || e.model_version == v2.id)
    );

    // The audit log holds every step, with who and why.
    let steps: Vec<(AuditAction, String, String)> = store
        .audit()
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.model, e.who))
        .collect();
    let expect = |a, m: &str, w: &str| (a, m.to_owned(), w.to_owned());
    assert_eq!(
        steps,
        vec![
            expect(AuditAction::Register, &v1.id, "test"),
            expect(AuditAction::Register, &v2.id, "test"),
            expect(AuditAction::Activate, &v1.id, "alice"),
            expect(AuditAction::Activate, &v2.id, "bob"),
            expect(AuditAction::Rollback, &v1.id, "carol"),
        ]
    );
}

#[test]
fn a_version_whose_state_breaks_after_activation_is_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let v1 = register(&store, light(5.0), "v1");
    let v2 = register(&store, light(4.0), "v2");
    store.activate(&v1.id, &Actor::new("a", "b")).unwrap();
    let watch = ModelWatch::new();
    assert!(watch.refresh(&store).unwrap());
    assert_eq!(
        watch.current().for_template("default").unwrap().version.id,
        v1.id
    );

    store.activate(&v2.id, &Actor::new("a", "b")).unwrap();
    // The artifact goes missing between activation and the pipeline's next poll.
    std::fs::remove_file(dir.path().join("artifacts").join(&v2.artifact.file)).unwrap();
    assert!(watch.refresh(&store).unwrap());
    let current = watch.current();
    assert_eq!(current.for_template("default").unwrap().version.id, v1.id);
    let error = watch.last_error().unwrap();
    assert!(
        error.contains(&v2.id) && error.contains(&format!("{} keeps running", v1.id)),
        "{error}"
    );
}
