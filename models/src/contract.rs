//! The behaviour every [`ModelStore`] must have, as one function each implementation's tests
//! call (the embedded store in its unit tests; the Scylla store where a Scylla is reachable).

use std::sync::Arc;

use aiops_operators::{Registry, Template};
use aiops_schemas::{Labels, Limits, MetricPoint, Series};

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
