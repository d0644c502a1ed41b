//! The model store on ScyllaDB (feature `scylla`): for several pipelines and trainers on
//! several machines sharing one store.
//!
//! Tables, in one keyspace: `versions` (one row per version, the record as JSON), `artifacts`
//! (the trained state as a blob with its checksum), `scopes` (per template and tenant: the
//! active version, the activation history and the next version number, as one JSON document
//! with a revision), `counters` (audit sequence and activation generation) and `audit`
//! (append-only, one partition, ordered by sequence). Changes of a scope and of the counters are
//! compare-and-set lightweight transactions on their revision, retried on conflict, so two
//! writers never lose each other's activation or number a version twice.
//!
//! Detector configurations: `detector_versions`, one row per version of a tenant's
//! configuration (partition: the tenant), carrying its audit entry, inserted `IF NOT EXISTS`;
//! the `detector_generation` and `detector_audit` counters. Nothing in the store updates or
//! deletes a row of it; unlike SQLite's triggers, a CQL shell with write permission could, so
//! give the service's role only `SELECT` and `MODIFY` and keep `DROP`/`ALTER` to operators.
//!
//! The contract test runs against a real cluster when `AIOPS_SCYLLA` names one
//! (`host:port`); the development machines of this project have none, so there it is skipped.

use std::collections::BTreeMap;

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::value::{CqlValue, Row};
use serde::{Deserialize, Serialize};

use super::contract::Damage;
use super::detectors::{ConfigAuditEntry, ConfigChange, ConfigStore, StoredConfig};
use super::{
    Actor, ArtifactRef, AuditAction, AuditEntry, ModelScope, ModelStore, ModelVersion, NewModel,
};
use crate::error::{Error, Result};
use aiops_schemas::system_now;

/// Attempts at a compare-and-set before giving up (another writer kept winning).
const CAS_ATTEMPTS: usize = 20;

fn db(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::model_store("scylla", e)
}

/// What the store keeps per scope.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ScopeDoc {
    scope: Option<ModelScope>,
    active: Option<String>,
    history: Vec<String>,
    next_number: u64,
}

/// See the module docs.
pub struct ScyllaStore {
    runtime: tokio::runtime::Runtime,
    session: Session,
    keyspace: String,
}

impl ScyllaStore {
    /// Connects to `nodes` (`host:port`, comma-separated) and creates the keyspace (replication
    /// factor `replication`) and tables if needed.
    pub fn connect(nodes: &str, keyspace: &str, replication: u32) -> Result<ScyllaStore> {
        if keyspace.is_empty()
            || !keyspace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(Error::config(format!(
                "scylla keyspace {keyspace:?}: use letters, digits and _"
            )));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(db)?;
        let session = runtime.block_on(async {
            let mut builder = SessionBuilder::new();
            for node in nodes.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                builder = builder.known_node(node);
            }
            builder.build().await.map_err(db)
        })?;
        let store = ScyllaStore {
            runtime,
            session,
            keyspace: keyspace.to_owned(),
        };
        let ks = &store.keyspace;
        for statement in [
            format!(
                "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = \
                 {{'class': 'SimpleStrategy', 'replication_factor': {replication}}}"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.versions (id text PRIMARY KEY, scope text, \
                 seq bigint, record text)"
            ),
            format!("CREATE TABLE IF NOT EXISTS {ks}.artifacts (id text PRIMARY KEY, bytes blob)"),
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.scopes (scope text PRIMARY KEY, doc text, \
                 revision bigint)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.counters (name text PRIMARY KEY, value bigint)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.audit (bucket int, seq bigint, record text, \
                 PRIMARY KEY (bucket, seq))"
            ),
            // One row per configuration version with its audit entry: the row is written with
            // IF NOT EXISTS, so the version check, the version and its audit entry are one
            // lightweight transaction, and two writers can never both make version n.
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.detector_versions (tenant text, name text, \
                 version bigint, record text, audit text, \
                 PRIMARY KEY ((tenant), name, version)) \
                 WITH CLUSTERING ORDER BY (name ASC, version DESC)"
            ),
        ] {
            store.execute(&statement, ())?;
        }
        Ok(store)
    }

    fn execute(
        &self,
        statement: &str,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<()> {
        self.runtime
            .block_on(self.session.query_unpaged(statement, values))
            .map(|_| ())
            .map_err(db)
    }

    /// Rows of a query, untyped.
    fn rows(
        &self,
        statement: &str,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<Vec<Row>> {
        let result = self
            .runtime
            .block_on(self.session.query_unpaged(statement, values))
            .map_err(db)?;
        let rows = result.into_rows_result().map_err(db)?;
        rows.rows::<Row>()
            .map_err(db)?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(db)
    }

    /// A lightweight transaction: whether it applied.
    fn applied(
        &self,
        statement: &str,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<bool> {
        let rows = self.rows(statement, values)?;
        Ok(matches!(
            rows.first().and_then(|r| r.columns.first()),
            Some(Some(CqlValue::Boolean(true)))
        ))
    }

    fn text(row: &Row, column: usize) -> Option<String> {
        match row.columns.get(column) {
            Some(Some(CqlValue::Text(text))) => Some(text.clone()),
            _ => None,
        }
    }

    fn bigint(row: &Row, column: usize) -> Option<i64> {
        match row.columns.get(column) {
            Some(Some(CqlValue::BigInt(value))) => Some(*value),
            _ => None,
        }
    }

    /// Reads a scope's document and revision (0: none yet).
    fn scope_doc(&self, key: &str) -> Result<(ScopeDoc, i64)> {
        let ks = &self.keyspace;
        let rows = self.rows(
            &format!("SELECT doc, revision FROM {ks}.scopes WHERE scope = ?"),
            (key,),
        )?;
        match rows.first() {
            Some(row) => {
                let doc = ScyllaStore::text(row, 0).unwrap_or_default();
                let doc: ScopeDoc = serde_json::from_str(&doc).map_err(db)?;
                Ok((doc, ScyllaStore::bigint(row, 1).unwrap_or(0)))
            }
            None => Ok((ScopeDoc::default(), 0)),
        }
    }

    /// Applies `change` to a scope's document with compare-and-set, retrying on conflict;
    /// returns what `change` returned on the attempt that applied.
    fn update_scope<T>(
        &self,
        scope: &ModelScope,
        mut change: impl FnMut(&mut ScopeDoc) -> Result<T>,
    ) -> Result<T> {
        let ks = &self.keyspace;
        let key = scope.key();
        for _ in 0..CAS_ATTEMPTS {
            let (mut doc, revision) = self.scope_doc(&key)?;
            doc.scope = Some(scope.clone());
            let out = change(&mut doc)?;
            let text = serde_json::to_string(&doc).map_err(db)?;
            let applied = if revision == 0 {
                self.applied(
                    &format!(
                        "INSERT INTO {ks}.scopes (scope, doc, revision) VALUES (?, ?, 1) \
                         IF NOT EXISTS"
                    ),
                    (&key, &text),
                )?
            } else {
                self.applied(
                    &format!(
                        "UPDATE {ks}.scopes SET doc = ?, revision = ? WHERE scope = ? \
                         IF revision = ?"
                    ),
                    (&text, revision + 1, &key, revision),
                )?
            };
            if applied {
                return Ok(out);
            }
        }
        Err(Error::model_store_message(format!(
            "{scope} kept changing under this writer; try again"
        )))
    }

    /// Adds one to a counter with compare-and-set; returns the new value.
    fn increment(&self, name: &str) -> Result<i64> {
        let ks = &self.keyspace;
        for _ in 0..CAS_ATTEMPTS {
            let rows = self.rows(
                &format!("SELECT value FROM {ks}.counters WHERE name = ?"),
                (name,),
            )?;
            let current = rows.first().and_then(|r| ScyllaStore::bigint(r, 0));
            let applied = match current {
                None => self.applied(
                    &format!("INSERT INTO {ks}.counters (name, value) VALUES (?, 1) IF NOT EXISTS"),
                    (name,),
                )?,
                Some(value) => self.applied(
                    &format!("UPDATE {ks}.counters SET value = ? WHERE name = ? IF value = ?"),
                    (value + 1, name, value),
                )?,
            };
            if applied {
                return Ok(current.unwrap_or(0) + 1);
            }
        }
        Err(Error::model_store_message(format!(
            "counter {name} kept changing under this writer; try again"
        )))
    }

    fn append_audit(
        &self,
        action: AuditAction,
        model: &str,
        scope: &ModelScope,
        previous: Option<String>,
        actor: &Actor,
    ) -> Result<()> {
        let seq = self.increment("audit")?;
        let entry = AuditEntry {
            seq: seq as u64,
            at: system_now(),
            who: actor.who.clone(),
            action,
            model: model.to_owned(),
            scope: scope.clone(),
            previous,
            why: actor.why.clone(),
        };
        let ks = &self.keyspace;
        self.execute(
            &format!("INSERT INTO {ks}.audit (bucket, seq, record) VALUES (0, ?, ?)"),
            (seq, serde_json::to_string(&entry).map_err(db)?),
        )
    }

    fn read_checked(&self, version: &ModelVersion) -> Result<Vec<u8>> {
        let ks = &self.keyspace;
        let unusable = |message: String| Error::ModelArtifact {
            model: version.id.clone(),
            message,
        };
        let rows = self.rows(
            &format!("SELECT bytes FROM {ks}.artifacts WHERE id = ?"),
            (&version.id,),
        )?;
        let bytes = match rows.first().and_then(|r| r.columns.first()) {
            Some(Some(CqlValue::Blob(bytes))) => bytes.clone(),
            _ => return Err(unusable("its artifact row is missing".into())),
        };
        version.verify_artifact(bytes, "the artifact")
    }

    fn check_activatable(&self, version: &ModelVersion) -> Result<()> {
        version.check_artifact(&self.read_checked(version)?)
    }

    fn set_active(
        &self,
        version: &ModelVersion,
        action: AuditAction,
        actor: &Actor,
        history: impl Fn(&mut Vec<String>),
    ) -> Result<()> {
        let previous = self.update_scope(&version.scope, |doc| {
            let previous = doc.active.replace(version.id.clone());
            history(&mut doc.history);
            Ok(previous)
        })?;
        self.increment("generation")?;
        self.append_audit(action, &version.id, &version.scope, previous, actor)
    }

    /// Breaks a version's stored artifact, for the contract test.
    #[doc(hidden)]
    pub fn damage(&self, id: &str, how: Damage) -> Result<()> {
        let ks = &self.keyspace;
        match how {
            Damage::Remove => {
                self.execute(&format!("DELETE FROM {ks}.artifacts WHERE id = ?"), (id,))
            }
            Damage::Corrupt => {
                let version = self.get(id)?;
                let mut bytes = self.read_checked(&version)?;
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0xFF;
                self.execute(
                    &format!("INSERT INTO {ks}.artifacts (id, bytes) VALUES (?, ?)"),
                    (id, bytes),
                )
            }
        }
    }
}

impl ModelStore for ScyllaStore {
    fn register(&self, model: NewModel, artifact: &[u8], actor: &Actor) -> Result<ModelVersion> {
        let number = self.update_scope(&model.scope, |doc| {
            doc.next_number = doc.next_number.max(1);
            let number = doc.next_number;
            doc.next_number += 1;
            Ok(number)
        })?;
        let id = ModelVersion::id_for(&model.scope, number);
        let ks = &self.keyspace;
        self.execute(
            &format!("INSERT INTO {ks}.artifacts (id, bytes) VALUES (?, ?)"),
            (&id, artifact.to_vec()),
        )?;
        let version = ModelVersion {
            id: id.clone(),
            number,
            scope: model.scope,
            parameters: model.parameters,
            training: model.training,
            figures: model.figures,
            artifact: ArtifactRef::of(format!("{ks}.artifacts/{id}"), artifact),
            created_by: actor.who.clone(),
            created_at: system_now(),
            note: model.note,
        };
        // A store-wide registration number, so listing keeps registration order.
        let seq = self.increment("versions")?;
        self.execute(
            &format!("INSERT INTO {ks}.versions (id, scope, seq, record) VALUES (?, ?, ?, ?)"),
            (
                &id,
                version.scope.key(),
                seq,
                serde_json::to_string(&version).map_err(db)?,
            ),
        )?;
        self.append_audit(AuditAction::Register, &id, &version.scope, None, actor)?;
        Ok(version)
    }

    fn get(&self, id: &str) -> Result<ModelVersion> {
        let ks = &self.keyspace;
        let rows = self.rows(
            &format!("SELECT record FROM {ks}.versions WHERE id = ?"),
            (id,),
        )?;
        match rows.first().and_then(|r| ScyllaStore::text(r, 0)) {
            Some(record) => serde_json::from_str(&record).map_err(db),
            None => Err(Error::ModelNotFound { id: id.to_owned() }),
        }
    }

    fn list(&self, template: Option<&str>) -> Result<Vec<ModelVersion>> {
        let ks = &self.keyspace;
        let mut versions: Vec<(i64, ModelVersion)> = Vec::new();
        for row in self.rows(&format!("SELECT seq, record FROM {ks}.versions"), ())? {
            let record = ScyllaStore::text(&row, 1).unwrap_or_default();
            let version: ModelVersion = serde_json::from_str(&record).map_err(db)?;
            if template.is_none_or(|t| version.scope.template == t) {
                versions.push((ScyllaStore::bigint(&row, 0).unwrap_or(0), version));
            }
        }
        // Oldest first, as the embedded store lists them.
        versions.sort_by_key(|(seq, _)| *seq);
        Ok(versions.into_iter().map(|(_, v)| v).collect())
    }

    fn active(&self) -> Result<BTreeMap<ModelScope, String>> {
        let ks = &self.keyspace;
        let mut active = BTreeMap::new();
        for row in self.rows(&format!("SELECT doc FROM {ks}.scopes"), ())? {
            let doc: ScopeDoc =
                serde_json::from_str(&ScyllaStore::text(&row, 0).unwrap_or_default())
                    .map_err(db)?;
            if let (Some(scope), Some(model)) = (doc.scope, doc.active) {
                active.insert(scope, model);
            }
        }
        Ok(active)
    }

    fn activate(&self, id: &str, actor: &Actor) -> Result<()> {
        let version = self.get(id)?;
        self.check_activatable(&version)?;
        self.set_active(&version, AuditAction::Activate, actor, |history| {
            history.push(version.id.clone())
        })
    }

    fn rollback(
        &self,
        scope: &ModelScope,
        to: Option<&str>,
        actor: &Actor,
    ) -> Result<ModelVersion> {
        let (doc, _) = self.scope_doc(&scope.key())?;
        let Some(current) = doc.history.last().cloned() else {
            return Err(Error::ModelConflict(format!(
                "{scope} has no active version to roll back"
            )));
        };
        let (target, keep) = match to {
            Some(id) => {
                let version = self.get(id)?;
                if version.scope != *scope {
                    return Err(Error::ModelConflict(format!(
                        "{id} belongs to {}, not {scope}",
                        version.scope
                    )));
                }
                (version, None)
            }
            None => {
                let earlier = doc.history[..doc.history.len() - 1]
                    .iter()
                    .enumerate()
                    .rev()
                    .filter(|(_, model)| **model != current)
                    .find_map(|(index, model)| Some((index, self.get(model).ok()?)));
                let (index, version) = earlier.ok_or_else(|| {
                    Error::ModelConflict(format!(
                        "{scope} has no earlier version to roll back to (active: {current})"
                    ))
                })?;
                (version, Some(index))
            }
        };
        self.check_activatable(&target)?;
        let id = target.id.clone();
        self.set_active(
            &target,
            AuditAction::Rollback,
            actor,
            |history| match keep {
                Some(index) => history.truncate(index + 1),
                None => history.push(id.clone()),
            },
        )?;
        Ok(target)
    }

    fn delete(&self, id: &str, actor: &Actor) -> Result<()> {
        let version = self.get(id)?;
        self.update_scope(&version.scope, |doc| {
            if doc.active.as_deref() == Some(id) {
                return Err(Error::ModelConflict(format!(
                    "{id} is the active version of {}: activate or roll back to another first",
                    version.scope
                )));
            }
            doc.history.retain(|model| model != id);
            Ok(())
        })?;
        let ks = &self.keyspace;
        self.execute(&format!("DELETE FROM {ks}.versions WHERE id = ?"), (id,))?;
        self.execute(&format!("DELETE FROM {ks}.artifacts WHERE id = ?"), (id,))?;
        self.append_audit(AuditAction::Delete, id, &version.scope, None, actor)
    }

    fn reject(&self, id: &str, actor: &Actor) -> Result<()> {
        let version = self.get(id)?;
        self.append_audit(AuditAction::Reject, id, &version.scope, None, actor)
    }

    fn artifact(&self, id: &str) -> Result<Vec<u8>> {
        let version = self.get(id)?;
        self.read_checked(&version)
    }

    fn audit(&self) -> Result<Vec<AuditEntry>> {
        let ks = &self.keyspace;
        self.rows(
            &format!("SELECT record FROM {ks}.audit WHERE bucket = 0 ORDER BY seq ASC"),
            (),
        )?
        .iter()
        .filter_map(|r| ScyllaStore::text(r, 0))
        .map(|record| serde_json::from_str(&record).map_err(db))
        .collect()
    }

    fn config_store(&self) -> Option<&dyn ConfigStore> {
        Some(self)
    }

    fn generation(&self) -> Result<u64> {
        let ks = &self.keyspace;
        let rows = self.rows(
            &format!("SELECT value FROM {ks}.counters WHERE name = 'generation'"),
            (),
        )?;
        Ok(rows
            .first()
            .and_then(|r| ScyllaStore::bigint(r, 0))
            .unwrap_or(0) as u64)
    }
}

impl ScyllaStore {
    /// Every version row of `tenant` (and `name`), newest version first per name.
    fn config_rows(
        &self,
        tenant: &str,
        name: Option<&str>,
    ) -> Result<Vec<(StoredConfig, ConfigAuditEntry)>> {
        let ks = &self.keyspace;
        let rows = match name {
            Some(name) => self.rows(
                &format!(
                    "SELECT record, audit FROM {ks}.detector_versions WHERE tenant = ? AND name = ?"
                ),
                (tenant, name),
            )?,
            None => self.rows(
                &format!("SELECT record, audit FROM {ks}.detector_versions WHERE tenant = ?"),
                (tenant,),
            )?,
        };
        rows.iter()
            .map(|row| {
                let record = ScyllaStore::text(row, 0).unwrap_or_default();
                let audit = ScyllaStore::text(row, 1).unwrap_or_default();
                Ok((
                    serde_json::from_str(&record).map_err(db)?,
                    serde_json::from_str(&audit).map_err(db)?,
                ))
            })
            .collect()
    }
}

impl ConfigStore for ScyllaStore {
    fn change_config(&self, change: &ConfigChange, actor: &Actor) -> Result<StoredConfig> {
        let ks = &self.keyspace;
        for _ in 0..CAS_ATTEMPTS {
            let current = self.config(&change.tenant, &change.name)?;
            // Checked before the sequence number is taken: a refused change leaves no gap.
            change.check(current.as_ref())?;
            if change.creates(current.as_ref()) {
                // Not atomic with the insert (no cross-partition transaction): two creates at
                // once may pass the limit by one each.
                let live = self.configs(Some(&change.tenant))?.len();
                change.check_room(current.as_ref(), live)?;
            }
            let seq = self.increment("detector_audit")?;
            let (stored, entry) =
                change.apply(current.as_ref(), actor, system_now(), seq as u64)?;
            let applied = self.applied(
                &format!(
                    "INSERT INTO {ks}.detector_versions (tenant, name, version, record, audit) \
                     VALUES (?, ?, ?, ?, ?) IF NOT EXISTS"
                ),
                (
                    &stored.tenant,
                    &stored.name,
                    stored.version as i64,
                    serde_json::to_string(&stored).map_err(db)?,
                    serde_json::to_string(&entry).map_err(db)?,
                ),
            )?;
            if applied {
                // The version is stored: a failed bump only delays pipelines to the next bump,
                // so it is logged, not reported as a failed change.
                if let Err(error) = self.increment("detector_generation") {
                    tracing::warn!(%error, "model store: a configuration was stored but the change counter was not bumped");
                }
                return Ok(stored);
            }
            // Another writer made this version first: look again (a stale expectation is then
            // a conflict).
        }
        Err(Error::model_store_message(format!(
            "configuration {:?} of tenant {:?} kept changing under this writer; try again",
            change.name, change.tenant
        )))
    }

    fn config(&self, tenant: &str, name: &str) -> Result<Option<StoredConfig>> {
        let ks = &self.keyspace;
        let rows = self.rows(
            &format!(
                "SELECT record FROM {ks}.detector_versions WHERE tenant = ? AND name = ? LIMIT 1"
            ),
            (tenant, name),
        )?;
        rows.first()
            .and_then(|row| ScyllaStore::text(row, 0))
            .map(|record| serde_json::from_str(&record).map_err(db))
            .transpose()
    }

    fn configs(&self, tenant: Option<&str>) -> Result<Vec<StoredConfig>> {
        let tenants: Vec<String> = match tenant {
            Some(tenant) => vec![tenant.to_owned()],
            None => {
                let ks = &self.keyspace;
                let rows = self.rows(
                    &format!("SELECT DISTINCT tenant FROM {ks}.detector_versions"),
                    (),
                )?;
                let mut tenants: Vec<String> = rows
                    .iter()
                    .filter_map(|r| ScyllaStore::text(r, 0))
                    .collect();
                tenants.sort();
                tenants
            }
        };
        let mut out = Vec::new();
        for tenant in tenants {
            let mut newest: BTreeMap<String, StoredConfig> = BTreeMap::new();
            for (stored, _) in self.config_rows(&tenant, None)? {
                let keep = newest
                    .get(&stored.name)
                    .is_none_or(|seen| seen.version < stored.version);
                if keep {
                    newest.insert(stored.name.clone(), stored);
                }
            }
            out.extend(newest.into_values().filter(|c| c.document.is_some()));
        }
        Ok(out)
    }

    fn config_versions(&self, tenant: &str, name: &str) -> Result<Vec<StoredConfig>> {
        let mut versions: Vec<StoredConfig> = self
            .config_rows(tenant, Some(name))?
            .into_iter()
            .map(|(stored, _)| stored)
            .collect();
        versions.sort_by_key(|v| v.version);
        Ok(versions)
    }

    fn config_audit(&self, tenant: &str, name: &str) -> Result<Vec<ConfigAuditEntry>> {
        let mut entries: Vec<ConfigAuditEntry> = self
            .config_rows(tenant, Some(name))?
            .into_iter()
            .map(|(_, entry)| entry)
            .collect();
        entries.sort_by_key(|e| e.seq);
        Ok(entries)
    }

    fn config_generation(&self) -> Result<u64> {
        let ks = &self.keyspace;
        let rows = self.rows(
            &format!("SELECT value FROM {ks}.counters WHERE name = 'detector_generation'"),
            (),
        )?;
        Ok(rows
            .first()
            .and_then(|r| ScyllaStore::bigint(r, 0))
            .unwrap_or(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs where `AIOPS_SCYLLA` names a cluster (`host:port`), in a keyspace of its own.
    #[test]
    fn the_scylla_store_keeps_the_contract() {
        let Ok(nodes) = std::env::var("AIOPS_SCYLLA") else {
            eprintln!("AIOPS_SCYLLA is not set: the Scylla contract test is skipped");
            return;
        };
        let keyspace = format!("aiops_test_{}_{}", std::process::id(), system_now());
        let store = ScyllaStore::connect(&nodes, &keyspace, 1).unwrap();
        super::super::contract::check_store(&store, &|id, how| store.damage(id, how).unwrap());
        super::super::contract::check_config_store(&store);
        store
            .execute(&format!("DROP KEYSPACE {keyspace}"), ())
            .unwrap();
    }
}
