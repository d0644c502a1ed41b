//! The behaviour every [`ModelStore`] (and every [`ConfigStore`]) must have, as one function each implementation's tests
//! call (the embedded store in its unit tests; the Scylla store where a Scylla is reachable).

use std::sync::Arc;

use aiops_operators::{Registry, Template};
use aiops_schemas::{Labels, Limits, MetricPoint, Series};

use super::detectors::{ConfigChange, ConfigStore};
use super::train::{TrainOptions, train};
use super::{Actor, AuditAction, ModelScope, ModelStore, ModelVersion};
use crate::error::Error;

/// How a test damages a stored artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// Flip bytes in it.
    Corrupt,
    /// Remove it.
    Remove,
}

/// Trains the light template (named `template`) on one synthetic series and registers it in
/// `template`'s scope, by `tester`.
pub fn register_trained(store: &dyn ModelStore, template: &str, seed: u64) -> ModelVersion {
    let parameters = Template {
        name: template.to_owned(),
        ..Template::light()
    };
    register_version(
        store,
        ModelScope::template(template),
        parameters,
        seed,
        &Actor::new("tester", "contract"),
    )
}

/// Trains `parameters` on one synthetic series of tenant `acme` (values varied by `seed`) and
/// registers the result in `scope`: a real version with a real artifact, for tests.
pub fn register_version(
    store: &dyn ModelStore,
    scope: ModelScope,
    parameters: Template,
    seed: u64,
    actor: &Actor,
) -> ModelVersion {
    let series = Arc::new(Series::new("acme", "cpu", Labels::new(), &Limits::default()).unwrap());
    let points = (0..200).map(|i| MetricPoint {
        series: series.clone(),
        timestamp: i * 60_000,
        value: 10.0 + ((i as u64 * 7919 + seed) % 13) as f64,
    });
    let trained = train(
        &parameters,
        &Registry::builtin(),
        points,
        "contract",
        TrainOptions::default(),
        None,
    )
    .unwrap();
    let model = trained.new_model(scope, parameters, format!("seed {seed}"));
    store
        .register(model, &trained.artifact.encode(), actor)
        .unwrap()
}

/// Runs the contract against an empty store; `damage` breaks a version's stored artifact.
pub fn check_store(store: &dyn ModelStore, damage: &dyn Fn(&str, Damage)) {
    let alice = Actor::new("alice", "first model");
    let web = ModelScope::template("web");
    assert!(store.list(None).unwrap().is_empty());
    assert!(store.active().unwrap().is_empty());
    assert!(store.audit().unwrap().is_empty());

    // Register: numbered per scope, stored as given.
    let v1 = register_trained(store, "web", 1);
    let v2 = register_trained(store, "web", 2);
    let other = register_trained(store, "db", 3);
    assert_eq!((v1.id.as_str(), v2.id.as_str()), ("web-v1", "web-v2"));
    assert_eq!(other.id, "db-v1");
    assert_eq!(store.get("web-v1").unwrap(), v1);
    assert_eq!(
        store.list(None).unwrap(),
        vec![v1.clone(), v2.clone(), other]
    );
    assert_eq!(store.list(Some("web")).unwrap().len(), 2);
    assert!(
        store.active().unwrap().is_empty(),
        "registering does not activate"
    );
    assert!(matches!(
        store.get("web-v9"),
        Err(Error::ModelNotFound { .. })
    ));

    // Activate, activate, roll back, roll back too far, roll back to a named version.
    let generation = store.generation().unwrap();
    store.activate("web-v1", &alice).unwrap();
    assert!(store.generation().unwrap() > generation);
    assert_eq!(store.active().unwrap()[&web], "web-v1");
    store
        .activate("web-v2", &Actor::new("bob", "retrained"))
        .unwrap();
    assert_eq!(store.active().unwrap()[&web], "web-v2");
    let back = store
        .rollback(&web, None, &Actor::new("carol", "v2 too noisy"))
        .unwrap();
    assert_eq!(back.id, "web-v1");
    assert_eq!(store.active().unwrap()[&web], "web-v1");
    let err = store
        .rollback(&web, None, &Actor::new("carol", "again"))
        .unwrap_err();
    assert!(matches!(err, Error::ModelConflict(_)), "{err}");
    assert_eq!(store.active().unwrap()[&web], "web-v1");
    store
        .rollback(&web, Some("web-v2"), &Actor::new("carol", "forward"))
        .unwrap();
    assert_eq!(store.active().unwrap()[&web], "web-v2");
    assert!(store.rollback(&web, Some("db-v1"), &alice).is_err());

    // Delete: not the active version; then it is gone with its artifact.
    assert!(matches!(
        store.delete("web-v2", &alice),
        Err(Error::ModelConflict(_))
    ));
    store
        .delete("web-v1", &Actor::new("dave", "cleanup"))
        .unwrap();
    assert!(matches!(
        store.get("web-v1"),
        Err(Error::ModelNotFound { .. })
    ));
    assert!(matches!(
        store.activate("web-v1", &alice),
        Err(Error::ModelNotFound { .. })
    ));

    // A damaged artifact is refused with a clear error and the active version stays.
    for (seed, how) in [(4, Damage::Corrupt), (5, Damage::Remove)] {
        let broken = register_trained(store, "web", seed);
        assert_eq!(
            store.artifact(&broken.id).unwrap().len() as u64,
            broken.artifact.bytes
        );
        damage(&broken.id, how);
        let err = store.activate(&broken.id, &alice).unwrap_err();
        assert!(
            matches!(&err, Error::ModelArtifact { model, .. } if *model == broken.id),
            "{err}"
        );
        assert!(store.artifact(&broken.id).is_err());
        assert_eq!(store.active().unwrap()[&web], "web-v2");
    }

    // Every step is in the audit log, in order, with who and why.
    let audit = store.audit().unwrap();
    let steps: Vec<(AuditAction, &str, &str)> = audit
        .iter()
        .map(|e| (e.action, e.model.as_str(), e.who.as_str()))
        .collect();
    use AuditAction::*;
    assert_eq!(
        steps,
        vec![
            (Register, "web-v1", "tester"),
            (Register, "web-v2", "tester"),
            (Register, "db-v1", "tester"),
            (Activate, "web-v1", "alice"),
            (Activate, "web-v2", "bob"),
            (Rollback, "web-v1", "carol"),
            (Rollback, "web-v2", "carol"),
            (Delete, "web-v1", "dave"),
            (Register, "web-v3", "tester"),
            (Register, "web-v4", "tester"),
        ]
    );
    assert!(
        audit
            .windows(2)
            .all(|w| w[0].seq < w[1].seq && w[0].at <= w[1].at)
    );
    assert_eq!(audit[4].previous.as_deref(), Some("web-v1"));
    assert_eq!(audit[5].why, "v2 too noisy");
}

/// Runs the configuration contract against a store without configurations: versions,
/// expected-version checks, deletes and re-creates, reverts, tenants kept apart, the audit
/// log's contents, the generation, and two writers racing on one version.
pub fn check_config_store(store: &(dyn ConfigStore + Sync)) {
    use crate::detectors::{ConfigAction, Expected, presets};

    let alice = Actor::new("alice", "first cut");
    let bob = Actor::new("bob", "quieter");
    let change = |tenant: &str, expected, document: Option<usize>| ConfigChange {
        tenant: tenant.to_owned(),
        name: "web".to_owned(),
        expected,
        document: document.map(|i| presets()[i].config.clone()),
        reverted_to: None,
    };
    assert!(store.configs(Some("acme")).unwrap().is_empty());
    assert_eq!(store.config("acme", "web").unwrap(), None);
    let generation = store.config_generation().unwrap();

    // Create, then update at the version read.
    let v1 = store
        .change_config(&change("acme", Expected::Absent, Some(0)), &alice)
        .unwrap();
    assert_eq!((v1.version, v1.updated_by.as_str()), (1, "alice"));
    assert_eq!(v1.document.as_ref(), Some(&presets()[0].config));
    assert!(store.config_generation().unwrap() > generation);
    let v2 = store
        .change_config(&change("acme", Expected::Version(1), Some(1)), &bob)
        .unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(store.config("acme", "web").unwrap(), Some(v2.clone()));

    // Stale writers and a second create conflict, naming the current version; nothing is
    // written by a refused change.
    for refused in [
        change("acme", Expected::Version(1), Some(2)),
        change("acme", Expected::Absent, Some(2)),
    ] {
        match store.change_config(&refused, &alice) {
            Err(Error::ConfigConflict { current, .. }) => {
                assert_eq!(current.map(|c| c.version), Some(2));
            }
            other => panic!("{refused:?} gave {other:?}"),
        }
    }
    assert_eq!(store.config_versions("acme", "web").unwrap().len(), 2);

    // Another tenant's configuration of the same name is its own.
    assert!(matches!(
        store.change_config(&change("globex", Expected::Version(2), Some(3)), &alice),
        Err(Error::ConfigNotFound { .. })
    ));
    let theirs = store
        .change_config(&change("globex", Expected::Absent, Some(3)), &alice)
        .unwrap();
    assert_eq!(theirs.version, 1);
    assert_eq!(store.configs(Some("acme")).unwrap(), vec![v2.clone()]);
    assert_eq!(store.configs(Some("globex")).unwrap(), vec![theirs.clone()]);
    assert_eq!(store.configs(None).unwrap().len(), 2);

    // Revert to version 1's content: a new version.
    let reverted = store
        .change_config(
            &ConfigChange {
                reverted_to: Some(1),
                ..change("acme", Expected::Version(2), Some(0))
            },
            &bob,
        )
        .unwrap();
    assert_eq!(reverted.version, 3);
    assert_eq!(reverted.document, v1.document);

    // Delete: gone from the list, its version kept; a re-create numbers on.
    let deleted = store
        .change_config(&change("acme", Expected::Version(3), None), &alice)
        .unwrap();
    assert_eq!((deleted.version, deleted.document.as_ref()), (4, None));
    assert!(store.configs(Some("acme")).unwrap().is_empty());
    assert!(matches!(
        store.change_config(&change("acme", Expected::Version(4), None), &alice),
        Err(Error::ConfigNotFound { .. })
    ));
    let again = store
        .change_config(&change("acme", Expected::Absent, Some(4)), &alice)
        .unwrap();
    assert_eq!(again.version, 5);

    // The audit log: every change, who, why, what it did, the diff.
    let audit = store.config_audit("acme", "web").unwrap();
    let actions: Vec<(u64, ConfigAction, &str)> = audit
        .iter()
        .map(|e| (e.version, e.action, e.who.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            (1, ConfigAction::Create, "alice"),
            (2, ConfigAction::Update, "bob"),
            (3, ConfigAction::Revert, "bob"),
            (4, ConfigAction::Delete, "alice"),
            (5, ConfigAction::Create, "alice"),
        ]
    );
    assert_eq!(audit[1].why, "quieter");
    assert_eq!(audit[2].reverted_to, Some(1));
    assert!(audit.iter().all(|e| !e.diff.is_empty()), "{audit:#?}");
    assert!(audit.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(
        audit[1].diff.iter().any(|c| c.path == "/preset"),
        "{:?}",
        audit[1].diff
    );
    assert_eq!(store.config_audit("globex", "web").unwrap().len(), 1);

    // Two writers with the same version: exactly one succeeds.
    let outcomes: Vec<bool> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..2)
            .map(|i| {
                let (attempt, alice) = (change("acme", Expected::Version(5), Some(i)), &alice);
                scope.spawn(move || store.change_config(&attempt, alice).is_ok())
            })
            .collect();
        writers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(
        outcomes.iter().filter(|won| **won).count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(store.config("acme", "web").unwrap().unwrap().version, 6);

    // A tenant has at most MAX_CONFIGS_PER_TENANT; a delete makes room; others are not held.
    let make = |tenant: &str, name: String, expected| ConfigChange {
        tenant: tenant.to_owned(),
        name,
        expected,
        document: Some(presets()[0].config.clone()),
        reverted_to: None,
    };
    for n in 0..crate::detectors::MAX_CONFIGS_PER_TENANT {
        store
            .change_config(&make("crowded", format!("c{n}"), Expected::Absent), &alice)
            .unwrap();
    }
    let one_more = make("crowded", "one-more".into(), Expected::Absent);
    assert!(matches!(
        store.change_config(&one_more, &alice),
        Err(Error::ConfigLimit { .. })
    ));
    // Updates of existing ones go on, and a delete makes room.
    store
        .change_config(&make("crowded", "c0".into(), Expected::Version(1)), &alice)
        .unwrap();
    let delete = ConfigChange {
        document: None,
        ..make("crowded", "c1".into(), Expected::Version(1))
    };
    store.change_config(&delete, &alice).unwrap();
    store.change_config(&one_more, &alice).unwrap();
    // Another tenant is not held by this one's count.
    store
        .change_config(&make("roomy", "c0".into(), Expected::Absent), &alice)
        .unwrap();
}
