//! The embedded model store: one SQLite database file (`models.db`) and the versions' trained
//! state as files under `artifacts/` beside it.
//!
//! SQLite's write-ahead log lets the running pipeline poll the store while `aiops models`
//! changes it from another process. The audit table refuses updates and deletes (triggers), so
//! the log stays append-only even for someone with the `sqlite3` shell.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::detectors::{ConfigAuditEntry, ConfigChange, ConfigStore, StoredConfig};
use super::{
    Actor, ArtifactRef, AuditAction, AuditEntry, ModelScope, ModelStore, ModelVersion, NewModel,
};
use crate::error::{Error, Result};
use aiops_schemas::system_now;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS versions (
    id TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    number INTEGER NOT NULL,
    record TEXT NOT NULL,
    UNIQUE (scope, number)
);
CREATE TABLE IF NOT EXISTS active (
    scope TEXT PRIMARY KEY,
    scope_record TEXT NOT NULL,
    model TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL,
    model TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS detector_versions (
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (tenant, name, version)
);
CREATE TABLE IF NOT EXISTS detector_audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS detector_audit_by_name ON detector_audit (tenant, name, seq);
CREATE TRIGGER IF NOT EXISTS detector_versions_no_update BEFORE UPDATE ON detector_versions
    BEGIN SELECT RAISE(ABORT, 'configuration versions are immutable'); END;
CREATE TRIGGER IF NOT EXISTS detector_versions_no_delete BEFORE DELETE ON detector_versions
    BEGIN SELECT RAISE(ABORT, 'configuration versions are immutable'); END;
CREATE TRIGGER IF NOT EXISTS detector_audit_no_update BEFORE UPDATE ON detector_audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS detector_audit_no_delete BEFORE DELETE ON detector_audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

/// See the module docs.
pub struct SqliteStore {
    connection: Mutex<Connection>,
    artifacts: PathBuf,
}

fn db(e: rusqlite::Error) -> Error {
    Error::model_store("", e)
}

fn json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::model_store("cannot encode a record", e))
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::model_store("unreadable record", e))
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<SqliteStore> {
        let dir = dir.as_ref();
        let artifacts = dir.join("artifacts");
        std::fs::create_dir_all(&artifacts)
            .map_err(|e| Error::io("cannot create", &artifacts, e))?;
        let path = dir.join("models.db");
        let connection = Connection::open(&path)
            .map_err(|e| Error::model_store(format!("cannot open {}", path.display()), e))?;
        // Another process (the pipeline, the CLI) may hold the write lock for a moment.
        connection
            .busy_timeout(Duration::from_secs(10))
            .map_err(db)?;
        connection.execute_batch(SCHEMA).map_err(db)?;
        Ok(SqliteStore {
            connection: Mutex::new(connection),
            artifacts,
        })
    }

    /// A counter of the `meta` table (0 when never set).
    fn meta(&self, key: &str) -> Result<u64> {
        self.with(|connection| {
            connection
                .query_row(
                    "SELECT COALESCE((SELECT value FROM meta WHERE key = ?1), 0)",
                    params![key],
                    |r| r.get::<_, i64>(0),
                )
                .map(|value| value as u64)
                .map_err(db)
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut connection = self
            .connection
            .lock()
            .map_err(|_| Error::model_store_message("a thread using the store panicked"))?;
        f(&mut connection)
    }

    fn write_artifact(&self, id: &str, bytes: &[u8]) -> Result<ArtifactRef> {
        use std::io::Write;
        let file = format!("{id}.model");
        let path = self.artifacts.join(&file);
        let temporary = self.artifacts.join(format!(".{file}.tmp"));
        let mut out = std::fs::File::create(&temporary)
            .map_err(|e| Error::io("cannot create", &temporary, e))?;
        out.write_all(bytes)
            .and_then(|()| out.sync_all())
            .map_err(|e| Error::io("cannot write", &temporary, e))?;
        std::fs::rename(&temporary, &path).map_err(|e| Error::io("cannot rename", &path, e))?;
        Ok(ArtifactRef::of(file, bytes))
    }

    fn read_checked(&self, version: &ModelVersion) -> Result<Vec<u8>> {
        let path = self.artifacts.join(&version.artifact.file);
        let unusable = |message: String| Error::ModelArtifact {
            model: version.id.clone(),
            message,
        };
        let bytes = std::fs::read(&path)
            .map_err(|e| unusable(format!("cannot read {}: {e}", path.display())))?;
        version.verify_artifact(bytes, &path.display().to_string())
    }

    /// Reads and checks a version's artifact down to every series' state.
    fn check_activatable(&self, version: &ModelVersion) -> Result<()> {
        version.check_artifact(&self.read_checked(version)?)
    }

    fn set_active(
        tx: &Transaction<'_>,
        version: &ModelVersion,
        action: AuditAction,
        actor: &Actor,
        push_history: bool,
    ) -> Result<()> {
        let key = version.scope.key();
        let previous: Option<String> = tx
            .query_row(
                "SELECT model FROM active WHERE scope = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        tx.execute(
            "INSERT INTO active (scope, scope_record, model) VALUES (?1, ?2, ?3)
             ON CONFLICT (scope) DO UPDATE SET model = excluded.model",
            params![key, json(&version.scope)?, version.id],
        )
        .map_err(db)?;
        if push_history {
            tx.execute(
                "INSERT INTO history (scope, model) VALUES (?1, ?2)",
                params![key, version.id],
            )
            .map_err(db)?;
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('generation', 1)
             ON CONFLICT (key) DO UPDATE SET value = value + 1",
            [],
        )
        .map_err(db)?;
        append_audit(tx, action, &version.id, &version.scope, previous, actor)
    }
}

fn append_audit(
    tx: &Transaction<'_>,
    action: AuditAction,
    model: &str,
    scope: &ModelScope,
    previous: Option<String>,
    actor: &Actor,
) -> Result<()> {
    let seq: i64 = tx
        .query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM audit", [], |r| {
            r.get(0)
        })
        .map_err(db)?;
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
    tx.execute(
        "INSERT INTO audit (seq, record) VALUES (?1, ?2)",
        params![seq, json(&entry)?],
    )
    .map_err(db)?;
    Ok(())
}

/// The text column of every row a query returns.
fn records(connection: &Connection, query: &str) -> Result<Vec<String>> {
    records_of(connection, query, [])
}

/// The first column (a JSON record) of every row of `query` with `params`.
fn records_of(
    connection: &Connection,
    query: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<String>> {
    let mut statement = connection.prepare(query).map_err(db)?;
    statement
        .query_map(params, |r| r.get::<_, String>(0))
        .map_err(db)?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(db)
}

fn load(connection: &Connection, id: &str) -> Result<ModelVersion> {
    let record: Option<String> = connection
        .query_row(
            "SELECT record FROM versions WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)?;
    match record {
        Some(record) => parse(&record),
        None => Err(Error::ModelNotFound { id: id.to_owned() }),
    }
}

impl ModelStore for SqliteStore {
    fn register(&self, model: NewModel, artifact: &[u8], actor: &Actor) -> Result<ModelVersion> {
        self.with(|connection| {
            let tx = connection.transaction().map_err(db)?;
            let key = model.scope.key();
            let number: i64 = tx
                .query_row(
                    "SELECT COALESCE(MAX(number), 0) + 1 FROM versions WHERE scope = ?1",
                    params![key],
                    |r| r.get(0),
                )
                .map_err(db)?;
            let number = number as u64;
            let id = ModelVersion::id_for(&model.scope, number);
            let artifact = self.write_artifact(&id, artifact)?;
            let version = ModelVersion {
                id: id.clone(),
                number,
                scope: model.scope,
                parameters: model.parameters,
                training: model.training,
                figures: model.figures,
                artifact,
                created_by: actor.who.clone(),
                created_at: system_now(),
                note: model.note,
            };
            let written = tx
                .execute(
                    "INSERT INTO versions (id, scope, number, record) VALUES (?1, ?2, ?3, ?4)",
                    params![id, key, number as i64, json(&version)?],
                )
                .map_err(db)
                .and_then(|_| {
                    append_audit(&tx, AuditAction::Register, &id, &version.scope, None, actor)
                })
                .and_then(|()| tx.commit().map_err(db));
            if let Err(error) = written {
                let _ = std::fs::remove_file(self.artifacts.join(&version.artifact.file));
                return Err(error);
            }
            Ok(version)
        })
    }

    fn get(&self, id: &str) -> Result<ModelVersion> {
        self.with(|connection| load(connection, id))
    }

    fn list(&self, template: Option<&str>) -> Result<Vec<ModelVersion>> {
        self.with(|connection| {
            let records = records(connection, "SELECT record FROM versions ORDER BY rowid")?;
            let mut versions = Vec::with_capacity(records.len());
            for record in records {
                let version: ModelVersion = parse(&record)?;
                if template.is_none_or(|t| version.scope.template == t) {
                    versions.push(version);
                }
            }
            Ok(versions)
        })
    }

    fn active(&self) -> Result<BTreeMap<ModelScope, String>> {
        self.with(|connection| {
            let mut statement = connection
                .prepare("SELECT scope_record, model FROM active")
                .map_err(db)?;
            let rows = statement
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(db)?
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(db)?;
            rows.into_iter()
                .map(|(scope, model)| Ok((parse(&scope)?, model)))
                .collect()
        })
    }

    fn activate(&self, id: &str, actor: &Actor) -> Result<()> {
        self.with(|connection| {
            let version = load(connection, id)?;
            self.check_activatable(&version)?;
            let tx = connection.transaction().map_err(db)?;
            SqliteStore::set_active(&tx, &version, AuditAction::Activate, actor, true)?;
            tx.commit().map_err(db)
        })
    }

    fn rollback(
        &self,
        scope: &ModelScope,
        to: Option<&str>,
        actor: &Actor,
    ) -> Result<ModelVersion> {
        self.with(|connection| {
            let key = scope.key();
            let tx = connection.transaction().map_err(db)?;
            let history: Vec<(i64, String)> = {
                let mut statement = tx
                    .prepare("SELECT seq, model FROM history WHERE scope = ?1 ORDER BY seq")
                    .map_err(db)?;
                statement
                    .query_map(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(db)?
                    .collect::<std::result::Result<_, _>>()
                    .map_err(db)?
            };
            let Some((_, current)) = history.last().cloned() else {
                return Err(Error::ModelConflict(format!(
                    "{scope} has no active version to roll back"
                )));
            };
            let (keep_upto, target) = match to {
                Some(id) => {
                    let version = load(&tx, id)?;
                    if version.scope != *scope {
                        return Err(Error::ModelConflict(format!(
                            "{id} belongs to {}, not {scope}",
                            version.scope
                        )));
                    }
                    (None, version)
                }
                None => {
                    // Walk back: the latest earlier activation of another version that still
                    // exists. Everything after it leaves the history, so a second rollback
                    // goes one step further back.
                    let earlier = history[..history.len() - 1]
                        .iter()
                        .rev()
                        .filter(|(_, model)| *model != current)
                        .find_map(|(seq, model)| Some((*seq, load(&tx, model).ok()?)));
                    let (seq, version) = earlier.ok_or_else(|| {
                        Error::ModelConflict(format!(
                            "{scope} has no earlier version to roll back to (active: {current})"
                        ))
                    })?;
                    (Some(seq), version)
                }
            };
            self.check_activatable(&target)?;
            if let Some(seq) = keep_upto {
                tx.execute(
                    "DELETE FROM history WHERE scope = ?1 AND seq > ?2",
                    params![key, seq],
                )
                .map_err(db)?;
            }
            SqliteStore::set_active(
                &tx,
                &target,
                AuditAction::Rollback,
                actor,
                keep_upto.is_none(),
            )?;
            tx.commit().map_err(db)?;
            Ok(target)
        })
    }

    fn delete(&self, id: &str, actor: &Actor) -> Result<()> {
        self.with(|connection| {
            let version = load(connection, id)?;
            let tx = connection.transaction().map_err(db)?;
            let active: Option<String> = tx
                .query_row(
                    "SELECT model FROM active WHERE scope = ?1",
                    params![version.scope.key()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?;
            if active.as_deref() == Some(id) {
                return Err(Error::ModelConflict(format!(
                    "{id} is the active version of {}: activate or roll back to another first",
                    version.scope
                )));
            }
            tx.execute("DELETE FROM versions WHERE id = ?1", params![id])
                .map_err(db)?;
            tx.execute("DELETE FROM history WHERE model = ?1", params![id])
                .map_err(db)?;
            append_audit(&tx, AuditAction::Delete, id, &version.scope, None, actor)?;
            tx.commit().map_err(db)?;
            // The record is gone; a leftover file would only waste space.
            let _ = std::fs::remove_file(self.artifacts.join(&version.artifact.file));
            Ok(())
        })
    }

    fn reject(&self, id: &str, actor: &Actor) -> Result<()> {
        self.with(|connection| {
            let version = load(connection, id)?;
            let tx = connection.transaction().map_err(db)?;
            append_audit(&tx, AuditAction::Reject, id, &version.scope, None, actor)?;
            tx.commit().map_err(db)
        })
    }

    fn artifact(&self, id: &str) -> Result<Vec<u8>> {
        let version = self.get(id)?;
        self.read_checked(&version)
    }

    fn audit(&self) -> Result<Vec<AuditEntry>> {
        self.with(|connection| {
            records(connection, "SELECT record FROM audit ORDER BY seq")?
                .iter()
                .map(|r| parse(r))
                .collect()
        })
    }

    fn config_store(&self) -> Option<&dyn ConfigStore> {
        Some(self)
    }

    fn generation(&self) -> Result<u64> {
        self.meta("generation")
    }
}

/// The live configurations (newest version of each, deletes left out) of `tenant`, or of
/// every tenant, by tenant and name.
fn live_configs(connection: &Connection, tenant: Option<&str>) -> Result<Vec<StoredConfig>> {
    let records = records_of(
        connection,
        "SELECT v.record FROM detector_versions v
         WHERE (?1 IS NULL OR v.tenant = ?1) AND v.version = (
             SELECT MAX(version) FROM detector_versions
             WHERE tenant = v.tenant AND name = v.name)
         ORDER BY v.tenant, v.name",
        params![tenant],
    )?;
    let mut out = Vec::new();
    for record in records {
        let stored: StoredConfig = parse(&record)?;
        if stored.document.is_some() {
            out.push(stored);
        }
    }
    Ok(out)
}

/// The newest version of a configuration, inside `connection`'s transaction if it is one.
fn newest_config(
    connection: &Connection,
    tenant: &str,
    name: &str,
) -> Result<Option<StoredConfig>> {
    let record: Option<String> = connection
        .query_row(
            "SELECT record FROM detector_versions WHERE tenant = ?1 AND name = ?2
             ORDER BY version DESC LIMIT 1",
            params![tenant, name],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)?;
    record.map(|r| parse(&r)).transpose()
}

impl ConfigStore for SqliteStore {
    fn change_config(&self, change: &ConfigChange, actor: &Actor) -> Result<StoredConfig> {
        self.with(|connection| {
            // Immediate: the write lock is taken before the read, so the version checked is
            // the version replaced, whichever process writes at the same moment.
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let current = newest_config(&tx, &change.tenant, &change.name)?;
            if change.creates(current.as_ref()) {
                let live = live_configs(&tx, Some(&change.tenant))?.len();
                change.check_room(current.as_ref(), live)?;
            }
            let seq: i64 = tx
                .query_row(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM detector_audit",
                    [],
                    |r| r.get(0),
                )
                .map_err(db)?;
            let (stored, entry) =
                change.apply(current.as_ref(), actor, system_now(), seq as u64)?;
            tx.execute(
                "INSERT INTO detector_versions (tenant, name, version, record) VALUES (?1, ?2, ?3, ?4)",
                params![stored.tenant, stored.name, stored.version as i64, json(&stored)?],
            )
            .map_err(db)?;
            tx.execute(
                "INSERT INTO detector_audit (seq, tenant, name, record) VALUES (?1, ?2, ?3, ?4)",
                params![seq, stored.tenant, stored.name, json(&entry)?],
            )
            .map_err(db)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('detector_generation', 1)
                 ON CONFLICT (key) DO UPDATE SET value = value + 1",
                [],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(stored)
        })
    }

    fn config(&self, tenant: &str, name: &str) -> Result<Option<StoredConfig>> {
        self.with(|connection| newest_config(connection, tenant, name))
    }

    fn configs(&self, tenant: Option<&str>) -> Result<Vec<StoredConfig>> {
        self.with(|connection| live_configs(connection, tenant))
    }

    fn config_versions(&self, tenant: &str, name: &str) -> Result<Vec<StoredConfig>> {
        self.with(|connection| {
            records_of(
                connection,
                "SELECT record FROM detector_versions WHERE tenant = ?1 AND name = ?2
                 ORDER BY version",
                params![tenant, name],
            )?
            .iter()
            .map(|record| parse(record))
            .collect()
        })
    }

    fn config_audit(&self, tenant: &str, name: &str) -> Result<Vec<ConfigAuditEntry>> {
        self.with(|connection| {
            records_of(
                connection,
                "SELECT record FROM detector_audit WHERE tenant = ?1 AND name = ?2 ORDER BY seq",
                params![tenant, name],
            )?
            .iter()
            .map(|record| parse(record))
            .collect()
        })
    }

    fn config_generation(&self) -> Result<u64> {
        self.meta("detector_generation")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Damage;

    #[test]
    fn the_embedded_store_keeps_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let artifacts = dir.path().join("artifacts");
        super::super::contract::check_store(&store, &|id, damage| {
            let path = artifacts.join(format!("{id}.model"));
            match damage {
                Damage::Corrupt => {
                    let mut bytes = std::fs::read(&path).unwrap();
                    let middle = bytes.len() / 2;
                    bytes[middle] ^= 0xFF;
                    std::fs::write(&path, bytes).unwrap();
                }
                Damage::Remove => std::fs::remove_file(&path).unwrap(),
            }
        });
    }

    #[test]
    fn the_embedded_store_keeps_the_configuration_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        super::super::contract::check_config_store(&store);
        // Reopened, it still has everything.
        drop(store);
        let store = SqliteStore::open(dir.path()).unwrap();
        assert!(!store.config_audit("acme", "web").unwrap().is_empty());
    }

    #[test]
    fn configuration_versions_and_their_audit_log_cannot_be_rewritten_through_sql() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        super::super::contract::check_config_store(&store);
        let connection = Connection::open(dir.path().join("models.db")).unwrap();
        for statement in [
            "UPDATE detector_audit SET record = 'x'",
            "DELETE FROM detector_audit",
            "UPDATE detector_versions SET record = 'x'",
            "DELETE FROM detector_versions",
        ] {
            let refused = connection.execute(statement, []);
            assert!(refused.is_err(), "{statement} was allowed");
        }
        assert!(!store.config_audit("acme", "web").unwrap().is_empty());
    }

    #[test]
    fn the_audit_log_cannot_be_rewritten_even_through_sql() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        super::super::contract::register_trained(&store, "web", 1);
        let connection = Connection::open(dir.path().join("models.db")).unwrap();
        let update = connection.execute("UPDATE audit SET record = 'x'", []);
        assert!(update.unwrap_err().to_string().contains("append-only"));
        assert!(connection.execute("DELETE FROM audit", []).is_err());
        assert_eq!(store.audit().unwrap().len(), 1);
    }

    #[test]
    fn two_handles_on_one_directory_see_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let pipeline = SqliteStore::open(dir.path()).unwrap();
        let cli = SqliteStore::open(dir.path()).unwrap();
        let before = pipeline.generation().unwrap();
        let version = super::super::contract::register_trained(&cli, "web", 1);
        cli.activate(&version.id, &Actor::new("cli", "test"))
            .unwrap();
        assert!(pipeline.generation().unwrap() > before);
        assert_eq!(
            pipeline.active().unwrap()[&ModelScope::template("web")],
            version.id
        );
    }
}
