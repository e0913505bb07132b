//! Keeps the served snapshot following the database: wakes on `NOTIFY` (or
//! a poll tick), reads the transactions committed after the applied
//! revision, applies them and publishes once per batch. Missed
//! notifications and dropped connections are caught up from the change log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use serde_json::Value;
use sqlx::postgres::PgListener;
use tokio::sync::watch;

use super::{Database, DbError};
use crate::flags::Flag;
use crate::model::{Company, Group, OrgAccess, Status, UserAccess, UserKind};
use crate::snapshot::{ApplyError, OrgFields, Role, Snapshot, TicketFields, UserFields};
use crate::store::Store;
use crate::telemetry::metrics::{APPLY_DURATION, CHANGE_LAG, REFRESH_ERRORS};
use crate::time::Timestamp;

/// How the follower learns of changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    /// PostgreSQL `LISTEN` (with a poll every interval as a safety net).
    Listen,
    /// Read the change log every interval.
    Poll,
}

/// One row of the change log.
#[derive(Debug, Clone)]
pub(crate) struct ChangeRow {
    pub table: String,
    pub op: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// Complete transactions, in commit order, up to `revision`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Batch {
    pub revision: u64,
    /// A bulk change (import, TRUNCATE): reload in full.
    pub bulk: bool,
    pub changes: Vec<ChangeRow>,
    /// When the last transaction committed (Unix seconds, database clock).
    pub committed_at: Option<f64>,
}

/// A SQLite change-log row: revision, table, op, old and new images, and
/// when it was written (Unix seconds).
type SqliteChange = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<f64>,
);

/// Transactions read per batch on PostgreSQL.
const PG_BATCH: i64 = 1000;

impl Database {
    /// The committed changes after revision `after`, whole transactions
    /// only; a bulk batch (reload in full) when some of them were pruned.
    pub(crate) async fn changes_since(&self, after: u64) -> Result<Option<Batch>, DbError> {
        let batch = self.read_changes(after).await?;
        // Read after the changes: a prune that raced the read shows here.
        let floor = self.pruned_floor().await?;
        if floor <= after {
            return Ok(batch);
        }
        tracing::warn!(
            applied = after,
            pruned = floor,
            "changes after the applied revision were pruned from the log; reloading in full"
        );
        Ok(Some(Batch {
            revision: batch.map_or(floor, |b| b.revision.max(floor)),
            bulk: true,
            changes: Vec::new(),
            committed_at: None,
        }))
    }

    async fn read_changes(&self, after: u64) -> Result<Option<Batch>, DbError> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        match self {
            Database::Postgres(pool) => {
                let txns: Vec<(i64, bool, Option<f64>)> = sqlx::query_as(
                    "SELECT revision, bulk, extract(epoch FROM committed_at)::float8 \
                     FROM ticket_authz_transactions WHERE revision > $1 ORDER BY revision LIMIT $2",
                )
                .bind(after)
                .bind(PG_BATCH)
                .fetch_all(pool)
                .await?;
                let Some(&(last, _, committed_at)) = txns.last() else {
                    return Ok(None);
                };
                let mut batch = Batch {
                    revision: u64::try_from(last).unwrap_or(0),
                    bulk: txns.iter().any(|(_, bulk, _)| *bulk),
                    changes: Vec::new(),
                    committed_at,
                };
                if !batch.bulk {
                    let mut rows = sqlx::query_as::<_, (String, String, Option<String>, Option<String>)>(
                        "SELECT c.table_name, c.op::text, c.old_row::text, c.new_row::text \
                         FROM ticket_authz_changes c JOIN ticket_authz_transactions t ON t.xid = c.xid \
                         WHERE t.revision > $1 AND t.revision <= $2 ORDER BY t.revision, c.seq",
                    )
                    .bind(after)
                    .bind(last)
                    .fetch(pool);
                    while let Some((table, op, old, new)) = rows.try_next().await? {
                        batch.changes.push(ChangeRow {
                            table,
                            op,
                            old,
                            new,
                        });
                    }
                }
                Ok(Some(batch))
            }
            Database::Sqlite(pool) => {
                // A reader sees only committed transactions, so reading every
                // newer row never splits one.
                let rows: Vec<SqliteChange> = sqlx::query_as(
                    "SELECT revision, table_name, op, old_row, new_row, (julianday(changed_at) - 2440587.5) * 86400.0 \
                     FROM ticket_authz_changes WHERE revision > ? ORDER BY revision",
                )
                .bind(after)
                .fetch_all(pool)
                .await?;
                let Some((last, committed_at)) = rows.last().map(|r| (r.0, r.5)) else {
                    return Ok(None);
                };
                Ok(Some(Batch {
                    revision: u64::try_from(last).unwrap_or(0),
                    bulk: rows.iter().any(|r| r.2 == "B"),
                    committed_at,
                    changes: rows
                        .into_iter()
                        .map(|(_, table, op, old, new, _)| ChangeRow {
                            table,
                            op,
                            old,
                            new,
                        })
                        .collect(),
                }))
            }
        }
    }
}

fn row_error(table: &str, message: impl Into<String>) -> ApplyError {
    ApplyError::Row {
        table: table.to_owned(),
        message: message.into(),
    }
}

fn parse(table: &str, text: &Option<String>) -> Result<Value, ApplyError> {
    let text = text
        .as_deref()
        .ok_or_else(|| row_error(table, "missing row image"))?;
    serde_json::from_str(text).map_err(|e| row_error(table, e.to_string()))
}

fn text(table: &str, row: &Value, field: &str) -> Result<String, ApplyError> {
    row.get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| row_error(table, format!("field {field}: missing")))
}

fn optional(row: &Value, field: &str) -> Option<String> {
    row.get(field).and_then(Value::as_str).map(str::to_owned)
}

fn ticket_fields(row: &Value) -> Result<TicketFields, ApplyError> {
    let created = text("tickets", row, "created_at")?;
    let status = text("tickets", row, "status")?;
    Ok(TicketFields {
        id: text("tickets", row, "id")?,
        created_at: created
            .parse::<Timestamp>()
            .map_err(|e| row_error("tickets", format!("field created_at: {e}")))?,
        requester: text("tickets", row, "requester_id")?,
        organisation: optional(row, "organisation_id"),
        group: optional(row, "group_id"),
        assignee: optional(row, "assignee_id"),
        status: Status::parse(&status)
            .ok_or_else(|| row_error("tickets", format!("field status: `{status}`")))?,
    })
}

/// Tables whose changes are applied row by row.
const ROW_BY_ROW: [&str; 14] = [
    "tickets",
    "ticket_ccs",
    "ticket_participants",
    "users",
    "user_organisations",
    "grants",
    "organisation_access_managers",
    "organisations",
    "organisation_domains",
    "partnerships",
    "groups",
    "profiles",
    "profile_flags",
    "companies",
];

/// Deleting a row of these cascades through many tables (and is rare):
/// a full reload applies it.
const RELOAD_ON_DELETE: [&str; 4] = ["organisations", "groups", "profiles", "companies"];

/// Whether every change of a batch can be applied row by row.
fn incremental(batch: &Batch) -> bool {
    !batch.bulk
        && batch.changes.iter().all(|c| {
            let table = c.table.as_str();
            ROW_BY_ROW.contains(&table) && !(c.op == "D" && RELOAD_ON_DELETE.contains(&table))
        })
}

fn timestamp(table: &str, row: &Value, field: &str) -> Result<Timestamp, ApplyError> {
    text(table, row, field)?
        .parse::<Timestamp>()
        .map_err(|e| row_error(table, format!("field {field}: {e}")))
}

fn count(table: &str, row: &Value, field: &str) -> Result<u32, ApplyError> {
    row.get(field)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| row_error(table, format!("field {field}: not a count")))
}

/// The ids of an update's old and new image; a changed id is applied by a
/// full reload (every reference to it moves too).
fn same_id(table: &str, c: &ChangeRow, new: &Value) -> Result<(), ApplyError> {
    if c.op == "U" && text(table, &parse(table, &c.old)?, "id")? != text(table, new, "id")? {
        return Err(ApplyError::Reload(format!("{table}: an id changed")));
    }
    Ok(())
}

fn group(row: &Value) -> Result<Group, ApplyError> {
    let t = "groups";
    Ok(Group {
        id: text(t, row, "id")?,
        name: text(t, row, "name")?,
        parent: optional(row, "parent_id"),
        propagate: boolean(t, row, "propagate")?,
        open_ticket_limit: count(t, row, "open_ticket_limit")?,
        enforce_open_limit: boolean(t, row, "enforce_open_limit")?,
        total_ticket_limit: count(t, row, "total_ticket_limit")?,
    })
}

/// Applies an insert or update of an organisation, group, profile or
/// company.
fn apply_shape(next: &mut Snapshot, c: &ChangeRow) -> Result<(), ApplyError> {
    let table = c.table.as_str();
    let new = parse(table, &c.new)?;
    same_id(table, c, &new)?;
    match table {
        "organisations" => {
            let access = text(table, &new, "ticket_access")?;
            next.upsert_org(&OrgFields {
                id: text(table, &new, "id")?,
                name: text(table, &new, "name")?,
                access: OrgAccess::parse(&access)
                    .ok_or_else(|| row_error(table, format!("field ticket_access: `{access}`")))?,
            });
            Ok(())
        }
        "groups" => next.upsert_group(&group(&new)?),
        "profiles" => {
            next.upsert_profile(&text(table, &new, "id")?, &text(table, &new, "name")?);
            Ok(())
        }
        _ => next.upsert_company(&Company {
            id: text(table, &new, "id")?,
            name: text(table, &new, "name")?,
            parent: optional(&new, "parent_id"),
            owner: optional(&new, "owner_id"),
        }),
    }
}

/// A boolean column: PostgreSQL's JSON has booleans, SQLite's has 0 and 1.
fn boolean(table: &str, row: &Value, field: &str) -> Result<bool, ApplyError> {
    match row.get(field) {
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Number(n)) => Ok(n.as_i64() != Some(0)),
        _ => Err(row_error(table, format!("field {field}: not a boolean"))),
    }
}

fn user_fields(row: &Value) -> Result<UserFields, ApplyError> {
    let created = text("users", row, "created_at")?;
    let kind = text("users", row, "kind")?;
    let access = text("users", row, "ticket_access")?;
    Ok(UserFields {
        id: text("users", row, "id")?,
        email: optional(row, "email"),
        name: optional(row, "name"),
        created_at: created
            .parse::<Timestamp>()
            .map_err(|e| row_error("users", format!("field created_at: {e}")))?,
        kind: UserKind::parse(&kind)
            .ok_or_else(|| row_error("users", format!("field kind: `{kind}`")))?,
        suspended: boolean("users", row, "suspended")?,
        ticket_access: UserAccess::parse(&access)
            .ok_or_else(|| row_error("users", format!("field ticket_access: `{access}`")))?,
        default_organisation: optional(row, "default_organisation_id"),
        company: optional(row, "company_id"),
        company_scoped: boolean("users", row, "company_scoped")?,
    })
}

/// Applies one row image of a link table: memberships, grants, access
/// managers, domains, partnerships, profile flags.
fn apply_link(
    next: &mut Snapshot,
    table: &str,
    row: &Value,
    present: bool,
) -> Result<(), ApplyError> {
    match table {
        "user_organisations" => next.set_membership(
            &text(table, row, "user_id")?,
            &text(table, row, "organisation_id")?,
            present,
        ),
        "grants" => next.set_grant(
            &text(table, row, "user_id")?,
            &text(table, row, "profile_id")?,
            optional(row, "group_id").as_deref(),
            present,
        ),
        "organisation_access_managers" => next.set_access_manager(
            &text(table, row, "organisation_id")?,
            &text(table, row, "user_id")?,
            present,
        ),
        "organisation_domains" => next.set_domain(
            &text(table, row, "organisation_id")?,
            &text(table, row, "domain")?,
            timestamp(table, row, "added_at")?,
            present,
        ),
        "partnerships" => next.set_partnership(
            &text(table, row, "partner_id")?,
            &text(table, row, "client_id")?,
            timestamp(table, row, "since")?,
            present,
        ),
        "profile_flags" => {
            let name = text(table, row, "flag")?;
            let flag = Flag::parse(&name)
                .ok_or_else(|| row_error(table, format!("field flag: `{name}`")))?;
            next.set_profile_flag(&text(table, row, "profile_id")?, flag, present)
        }
        _ => Err(row_error(table, "not a link table".to_owned())),
    }
}

/// Applies a batch of row-by-row changes (see `ROW_BY_ROW`) to a copy of
/// `base` (sharing every chunk it does not touch).
fn apply(base: &Snapshot, batch: &Batch) -> Result<Snapshot, ApplyError> {
    let mut next = base.clone();
    for c in &batch.changes {
        match (c.table.as_str(), c.op.as_str()) {
            ("tickets", "I" | "U") => {
                let new = ticket_fields(&parse("tickets", &c.new)?)?;
                if c.op == "U" {
                    let old = text("tickets", &parse("tickets", &c.old)?, "id")?;
                    if old != new.id {
                        next.delete_ticket(&old);
                    }
                }
                next.upsert_ticket(&new)?;
            }
            ("tickets", "D") => {
                next.delete_ticket(&text("tickets", &parse("tickets", &c.old)?, "id")?)
            }
            (table @ ("ticket_ccs" | "ticket_participants"), op) => {
                let role = if table == "ticket_ccs" {
                    Role::Cc
                } else {
                    Role::Participant
                };
                if op != "I" {
                    let old = parse(table, &c.old)?;
                    next.set_ticket_person(
                        &text(table, &old, "ticket_id")?,
                        &text(table, &old, "user_id")?,
                        role,
                        false,
                    )?;
                }
                if op != "D" {
                    let new = parse(table, &c.new)?;
                    next.set_ticket_person(
                        &text(table, &new, "ticket_id")?,
                        &text(table, &new, "user_id")?,
                        role,
                        true,
                    )?;
                }
            }
            ("users", "I" | "U") => {
                let new = user_fields(&parse("users", &c.new)?)?;
                if c.op == "U" {
                    let old = text("users", &parse("users", &c.old)?, "id")?;
                    if old != new.id {
                        next.delete_user(&old);
                    }
                }
                next.upsert_user(&new)?;
            }
            ("users", "D") => next.delete_user(&text("users", &parse("users", &c.old)?, "id")?),
            (
                table @ ("user_organisations"
                | "grants"
                | "organisation_access_managers"
                | "organisation_domains"
                | "partnerships"
                | "profile_flags"),
                op,
            ) => {
                if op != "I" {
                    apply_link(&mut next, table, &parse(table, &c.old)?, false)?;
                }
                if op != "D" {
                    apply_link(&mut next, table, &parse(table, &c.new)?, true)?;
                }
            }
            ("organisations" | "groups" | "profiles" | "companies", "I" | "U") => {
                apply_shape(&mut next, c)?
            }
            (table, op) => return Err(row_error(table, format!("cannot apply `{op}` row by row"))),
        }
    }
    next.set_revision(batch.revision);
    Ok(next)
}

/// A full, consistent reload (bulk changes, and tables not applied row by
/// row yet).
async fn reload(db: &Database, store: &Store) -> Result<Snapshot, String> {
    store.note_full_load();
    db.snapshot().await
}

/// Applies everything committed after the store's revision.
async fn sync(db: &Database, store: &Store) {
    loop {
        let Some(base) = store.current() else {
            return;
        };
        let batch = match db.changes_since(base.revision()).await {
            Ok(Some(batch)) => batch,
            Ok(None) => return,
            Err(e) => {
                metrics::counter!(REFRESH_ERRORS, "kind" => "read").increment(1);
                tracing::warn!(error = %e, "reading the change log failed; retrying on the next wake-up");
                return;
            }
        };
        let started = Instant::now();
        let applied = if incremental(&batch) {
            match apply(&base, &batch) {
                Ok(next) => Ok(next),
                Err(ApplyError::Reload(why)) => {
                    tracing::debug!(revision = batch.revision, why, "reloading in full");
                    reload(db, store).await
                }
                Err(e) => {
                    metrics::counter!(REFRESH_ERRORS, "kind" => "apply").increment(1);
                    tracing::warn!(error = %e, revision = batch.revision, "row-by-row apply failed; reloading");
                    reload(db, store).await
                }
            }
        } else {
            reload(db, store).await
        };
        match applied {
            Ok(next) => {
                let revision = next.revision();
                metrics::histogram!(APPLY_DURATION).record(started.elapsed().as_secs_f64());
                store.publish(next);
                if let Some(committed) = batch.committed_at {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64());
                    // Clocks of two machines: a negative lag is skew, not speed.
                    metrics::histogram!(CHANGE_LAG).record((now - committed).max(0.0));
                }
                tracing::debug!(
                    revision,
                    changes = batch.changes.len(),
                    bulk = batch.bulk,
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "changes applied"
                );
            }
            Err(cause) => {
                metrics::counter!(REFRESH_ERRORS, "kind" => "held_back").increment(1);
                tracing::error!(revision = batch.revision, error = %cause, "changes held back: serving the last valid revision");
                store.hold_back(batch.revision, cause);
                return;
            }
        }
    }
}

/// Follows the database until `stop` turns true.
pub async fn follow(
    db: Database,
    store: Arc<Store>,
    notify: Notify,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut listener: Option<PgListener> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        sync(&db, &store).await;
        if *stop.borrow() {
            return;
        }
        match (&db, notify) {
            (Database::Postgres(pool), Notify::Listen) => {
                if listener.is_none() {
                    match PgListener::connect_with(pool).await {
                        Ok(mut l) => match l.listen("ticket_authz").await {
                            Ok(()) => {
                                listener = Some(l);
                                backoff = Duration::from_millis(100);
                                // Anything committed while not listening.
                                continue;
                            }
                            Err(e) => tracing::warn!(error = %e, "LISTEN failed"),
                        },
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot open the notification connection")
                        }
                    }
                    tokio::select! {
                        _ = stop.changed() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
                if let Some(l) = listener.as_mut() {
                    tokio::select! {
                        _ = stop.changed() => return,
                        received = tokio::time::timeout(interval, l.try_recv()) => match received {
                            // A notification, or the interval's safety-net sync.
                            Ok(Ok(Some(_))) | Err(_) => {}
                            // The connection dropped; it reconnects on the next
                            // call, and the sync catches up what was missed.
                            Ok(Ok(None)) => tracing::warn!("notification connection lost; reconnecting and catching up"),
                            Ok(Err(e)) => {
                                tracing::warn!(error = %e, "notification connection failed; reconnecting");
                                listener = None;
                            }
                        }
                    }
                }
            }
            _ => {
                tokio::select! {
                    _ = stop.changed() => return,
                    () = tokio::time::sleep(interval) => {}
                }
            }
        }
    }
}
