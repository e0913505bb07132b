//! A mapped source as a [`ChangeSource`]: the capture's log read in one
//! consistent snapshot, each changed source row turned into the keys of
//! our rows it determines (the mapping's rules), and those rows read again
//! in the same snapshot (see `reread.rs`). Woken by a poll on MariaDB,
//! which has no notification a trigger could send; on PostgreSQL by the
//! commit trigger's `NOTIFY`, with the poll as a safety net.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use super::capture::{self, Logged};
use super::check::rule_sql;
use super::conn::{Conn, Pool};
use super::decode::{Known, Misses};
use super::reread::{self, Outcome};
use super::{Columns, MappedDb, MappedError};
use crate::db::Listen;
use crate::follow::{Batch, ChangeSource, Reload, SourceError};
use crate::mapping::{Determines, Mapping};
use crate::snapshot::Snapshot;
use crate::telemetry::metrics::metrics;

/// Log rows one batch takes at most; more is a bulk change (an import, a
/// mass update), cheaper to read whole than key by key.
const MAX_ROWS: u64 = 20_000;

/// The keys of our rows to read again, by entity.
pub(super) type Keys = BTreeMap<&'static str, BTreeSet<String>>;

/// What the follower knows of the source beyond the served snapshot.
#[derive(Debug)]
pub(super) struct State {
    /// The revision the rest describes.
    pub at: u64,
    pub columns: Columns,
    pub known: Known,
    pub misses: Misses,
}

/// A helpdesk's database followed through a mapping.
#[derive(Debug)]
pub struct MappedSource {
    db: MappedDb,
    mapping: Arc<Mapping>,
    interval: Duration,
    state: Option<State>,
    listen: Listen,
}

impl From<MappedError> for SourceError {
    fn from(e: MappedError) -> Self {
        match e {
            MappedError::Invalid { revision, cause } => SourceError::Invalid { revision, cause },
            e => SourceError::Read(e.to_string()),
        }
    }
}

impl MappedSource {
    /// Follows `db` through `mapping`, reading its log every `interval`.
    pub fn new(db: MappedDb, mapping: Arc<Mapping>, interval: Duration) -> Self {
        MappedSource {
            db,
            mapping,
            interval,
            state: None,
            listen: Listen::default(),
        }
    }

    /// Sets the unresolved-reference gauges from what the state holds:
    /// every entity the mapping reads, zero included.
    fn export_unresolved(&self) {
        let Some(state) = &self.state else {
            return;
        };
        let counts = state.misses.counts();
        for entity in self.mapping.entities.keys() {
            let tables = self.mapping.tables_of(entity);
            let n = counts.get(entity).copied().unwrap_or(0);
            metrics()
                .unresolved_references(entity, tables.join(","))
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// The batch after `after`: `Ok(None)` when nothing newer committed.
    async fn batch(&mut self, after: u64) -> Result<Option<Batch>, MappedError> {
        let mut snap = self.db.pool.snapshot().await?;
        let Some(log) = capture::read_log(&mut snap.conn(), after, MAX_ROWS).await? else {
            return Ok(None);
        };
        let revision = log.revision;
        let reload = |why: Reload, revision: u64| {
            Ok(Some(Batch {
                revision,
                changes: Vec::new(),
                reload: Some(why),
                committed_at: None,
            }))
        };
        if log.floor > after {
            return reload(Reload::Gap { floor: log.floor }, revision.max(log.floor));
        }
        if log.bulk {
            return reload(Reload::Bulk, revision);
        }
        // The state must describe the served snapshot; after a failed
        // apply or a held-back load it may not, and a full read resets it.
        let Some(state) = self.state.as_mut().filter(|s| s.at == after) else {
            return reload(
                Reload::Wide("the follower's view of the source starts again".to_owned()),
                revision,
            );
        };
        let committed_at = log.committed_at;
        let mut tx = snap.conn();
        let keys = match determine(&mut tx, &self.mapping, &state.columns, &log.rows).await? {
            Ok(keys) => keys,
            Err(why) => return reload(why, revision),
        };
        // A failed read leaves the state untouched (the batch is read again
        // on the next poll); a batch that does not decode is held back,
        // and what the state holds then is not the served snapshot's.
        let outcome = match reread::changes(&mut tx, &self.mapping, state, keys, revision).await {
            Err(e @ MappedError::Invalid { .. }) => {
                self.state = None;
                return Err(e);
            }
            other => other?,
        };
        if let Err(e) = snap.commit().await {
            // The state moved on with a batch that is not applied.
            self.state = None;
            return Err(e);
        }
        match outcome {
            Outcome::Changes(changes) => {
                state.at = revision;
                self.export_unresolved();
                Ok(Some(Batch {
                    revision,
                    changes,
                    reload: None,
                    committed_at,
                }))
            }
            Outcome::Reload(why) => reload(why, revision),
        }
    }
}

/// A value of a captured image as a key (`None`: SQL NULL).
fn key_of(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(u8::from(*b).to_string()),
        other => Some(other.to_string()),
    }
}

/// The keys the logged rows determine, by the mapping's rules: a column of
/// the old or new image, or a rule query run with an image's columns
/// bound. An image that cannot be read asks for a full reload.
async fn determine(
    conn: &mut Conn<'_>,
    mapping: &Mapping,
    columns: &Columns,
    log: &[Logged],
) -> Result<Result<Keys, Reload>, MappedError> {
    let database = conn.database();
    let mut keys = Keys::new();
    for row in log {
        let Some(table) = mapping.tables.get(&row.table) else {
            return Ok(Err(Reload::Undecodable(format!(
                "a change of `{}`, which the mapping does not follow",
                row.table
            ))));
        };
        for image in [&row.old, &row.new].into_iter().flatten() {
            let Ok(serde_json::Value::Object(image)) = serde_json::from_str(image) else {
                return Ok(Err(Reload::Undecodable(format!(
                    "a captured row of `{}` that is not a JSON object",
                    row.table
                ))));
            };
            for rule in &table.rules {
                let out = keys.entry(rule.entity.name).or_default();
                match &rule.how {
                    Determines::Column(column) => {
                        out.extend(image.get(column).and_then(key_of));
                    }
                    Determines::Query(params) => {
                        let sql = rule_sql(database, params, &table.name, columns);
                        let values: Vec<Option<String>> = params
                            .bindings()
                            .iter()
                            .map(|name| image.get(name).and_then(key_of))
                            .collect();
                        out.extend(conn.first_column(sql, &values).await?.into_iter().flatten());
                    }
                }
            }
        }
    }
    Ok(Ok(keys))
}

impl ChangeSource for MappedSource {
    async fn load(&mut self) -> Result<Snapshot, SourceError> {
        self.state = None;
        let (loaded, state) = self.db.load_state(&self.mapping).await?;
        for (entity, n) in &loaded.unresolved {
            tracing::info!(
                entity,
                references = n,
                "references to ids the source does not hold were left out"
            );
        }
        self.state = Some(state);
        self.export_unresolved();
        Ok(loaded.snapshot)
    }

    async fn changes_after(&mut self, after: u64) -> Result<Option<Batch>, SourceError> {
        self.batch(after).await.map_err(SourceError::from)
    }

    async fn wait(&mut self) {
        match &self.db.pool {
            Pool::Postgres(pool) => {
                let pool = pool.clone();
                self.listen.wait(&pool, self.interval).await
            }
            Pool::MySql(_) => tokio::time::sleep(self.interval).await,
        }
    }
}
