//! The change capture `migrate --mapping` installs beside a MariaDB/MySQL
//! source: a one-row revision counter, a change log and three triggers per
//! followed table, all named `ticket_authz_*`; the source's own tables are
//! never altered. Also its removal, its check at start-up and pruning.
//!
//! Why the numbering follows commit order: each trigger takes the next
//! revision from the counter row with `SELECT … FOR UPDATE` and writes it
//! back, so the row's exclusive lock is held from a transaction's first
//! captured write until it commits or rolls back. A second writer of any
//! followed table waits on that lock before it can number anything, so it
//! numbers after the first has committed; a rollback undoes its counter
//! update with its changes and leaves no hole. docs/mapping.md says what
//! that costs writers.

use std::time::Duration;

use sqlx::mysql::{MySqlConnection, MySqlPool, MySqlRow};
use sqlx::{AssertSqlSafe, Connection, Row};

use super::{Installed, Log, Logged, Removed, plain};
use crate::db::Pruned;
use crate::mapped::MappedError;
use crate::mapped::conn::Conn;
use crate::mapping::{Mapping, SourceTable};

/// The revision statement writers use for `min_revision`: after their
/// commit it gives a revision at which their writes are served.
pub const REVISION_SQL: &str = "SELECT revision FROM ticket_authz_revision WHERE id = 1";

/// The capture's tables: created once, kept by a re-install.
const TABLES_SQL: [&str; 5] = [
    "CREATE TABLE IF NOT EXISTS ticket_authz_revision (
        id TINYINT PRIMARY KEY,
        revision BIGINT UNSIGNED NOT NULL
    ) ENGINE=InnoDB",
    "INSERT IGNORE INTO ticket_authz_revision (id, revision) VALUES (1, 0)",
    "CREATE TABLE IF NOT EXISTS ticket_authz_changes (
        revision BIGINT UNSIGNED PRIMARY KEY,
        table_name VARCHAR(64) NOT NULL,
        op CHAR(1) NOT NULL,
        old_row LONGTEXT NULL,
        new_row LONGTEXT NULL,
        changed_at DECIMAL(20, 6) NOT NULL
    ) ENGINE=InnoDB",
    // The highest revision whose changes may be gone, and what the capture
    // records: a row of its own so that pruning and start-up checks never
    // take the writers' counter lock.
    "CREATE TABLE IF NOT EXISTS ticket_authz_pruned (
        id TINYINT PRIMARY KEY,
        revision BIGINT UNSIGNED NOT NULL,
        capture TEXT NOT NULL
    ) ENGINE=InnoDB",
    "INSERT IGNORE INTO ticket_authz_pruned (id, revision, capture) VALUES (1, 0, '')",
];

/// The capture's tables, for removal.
const OUR_TABLES: [&str; 3] = [
    "ticket_authz_changes",
    "ticket_authz_pruned",
    "ticket_authz_revision",
];

/// The session mode triggers are created under (a trigger keeps it). Not
/// strict: a trigger failing would fail the helpdesk's own write.
const TRIGGER_SQL_MODE: &str = "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'";

/// Our triggers in the current database: (name, table).
const OUR_TRIGGERS: &str = "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS \
     WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME LIKE 'ticket\\_authz\\_%' \
     ORDER BY TRIGGER_NAME";

fn json_image(table: &SourceTable, row: &str) -> String {
    let members: Vec<String> = table
        .captured_columns()
        .iter()
        // As text, as the re-reads cast every value: a key from an image
        // and a key from a re-read are then the same string.
        .map(|c| format!("'{c}', CAST({row}.`{c}` AS CHAR)"))
        .collect();
    format!("JSON_OBJECT({})", members.join(", "))
}

/// The names of one table's three triggers.
fn trigger_names(table: &str) -> [String; 3] {
    ["i", "u", "d"].map(|suffix| format!("ticket_authz_{table}_{suffix}"))
}

/// The three triggers of one table (insert, update, delete). Names and
/// columns passed the mapping's identifier check, so they can be written
/// into DDL. `SYSDATE(6)` is the time of the write itself; `UTC_TIMESTAMP`
/// would be the statement's start, before any wait on the counter.
fn triggers(table: &SourceTable, or_replace: bool) -> [String; 3] {
    let t = &table.name;
    let [ni, nu, nd] = trigger_names(t);
    let create = if or_replace {
        "CREATE OR REPLACE TRIGGER"
    } else {
        "CREATE TRIGGER"
    };
    let one = |name: &str, event: &str, op: char, old: &str, new: &str| {
        format!(
            "{create} `{name}` AFTER {event} ON `{t}` FOR EACH ROW
BEGIN
  DECLARE r BIGINT UNSIGNED;
  SELECT revision + 1 INTO r FROM ticket_authz_revision WHERE id = 1 FOR UPDATE;
  UPDATE ticket_authz_revision SET revision = r WHERE id = 1;
  INSERT INTO ticket_authz_changes (revision, table_name, op, old_row, new_row, changed_at)
  VALUES (r, '{t}', '{op}', {old}, {new}, UNIX_TIMESTAMP(SYSDATE(6)));
END"
        )
    };
    [
        one(&ni, "INSERT", 'I', "NULL", &json_image(table, "NEW")),
        one(
            &nu,
            "UPDATE",
            'U',
            &json_image(table, "OLD"),
            &json_image(table, "NEW"),
        ),
        one(&nd, "DELETE", 'D', &json_image(table, "OLD"), "NULL"),
    ]
}

async fn our_triggers(conn: &mut MySqlConnection) -> Result<Vec<(String, String)>, MappedError> {
    Ok(sqlx::query_as(OUR_TRIGGERS).fetch_all(conn).await?)
}

async fn execute(conn: &mut MySqlConnection, sql: String) -> Result<(), MappedError> {
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await?;
    Ok(())
}

pub(super) async fn install(pool: &MySqlPool, mapping: &Mapping) -> Result<Installed, MappedError> {
    let mut conn = pool.acquire().await?.detach();
    // Nothing is created until the whole mapping has been tried.
    crate::mapped::check::check(&mut Conn::MySql(&mut conn), mapping).await?;
    execute(&mut conn, TRIGGER_SQL_MODE.to_owned()).await?;
    let version: String = sqlx::query_scalar("SELECT VERSION()")
        .fetch_one(&mut conn)
        .await?;
    // MariaDB swaps a trigger in place; MySQL has no CREATE OR REPLACE
    // TRIGGER, so a re-install drops first (writes in that instant are not
    // captured, which the revision bump below makes every follower reload
    // over).
    let mariadb = version.contains("MariaDB");
    // Cascades that cannot be captured refuse the install before anything
    // is created, as a bad mapping does.
    let cascades = crate::mapped::cascade::triggers(&mut conn, mapping, mariadb).await?;
    for sql in TABLES_SQL {
        execute(&mut conn, sql.to_owned()).await?;
    }
    let mut wanted: Vec<String> = mapping
        .tables
        .keys()
        .flat_map(|t| trigger_names(t))
        .collect();
    wanted.extend(cascades.iter().map(|c| c.name.clone()));
    let mut dropped = 0;
    for (name, _) in our_triggers(&mut conn).await? {
        let stale = !wanted.contains(&name);
        if plain(&name) && (stale || !mariadb) {
            execute(&mut conn, format!("DROP TRIGGER IF EXISTS `{name}`")).await?;
            dropped += usize::from(stale);
        }
    }
    let mut count = 0;
    for table in mapping.tables.values() {
        for sql in triggers(table, mariadb) {
            execute(&mut conn, sql).await?;
            count += 1;
        }
    }
    for cascade in cascades {
        execute(&mut conn, cascade.sql).await?;
        count += 1;
    }
    // One revision for the install itself, recorded as the pruned floor:
    // a follower of the old capture cannot know what changed under it.
    let mut tx = conn.begin().await?;
    sqlx::query("UPDATE ticket_authz_revision SET revision = revision + 1 WHERE id = 1")
        .execute(&mut *tx)
        .await?;
    let revision: u64 = sqlx::query_scalar(REVISION_SQL).fetch_one(&mut *tx).await?;
    sqlx::query("UPDATE ticket_authz_pruned SET revision = ?, capture = ? WHERE id = 1")
        .bind(revision)
        .bind(mapping.capture_spec())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    conn.close().await?;
    Ok(Installed {
        tables: mapping.tables.len(),
        triggers: count,
        dropped,
        revision,
    })
}

pub(super) async fn uninstall(pool: &MySqlPool) -> Result<Removed, MappedError> {
    let mut conn = pool.acquire().await?;
    let mut triggers = 0;
    for (name, _) in our_triggers(&mut conn).await? {
        if plain(&name) {
            execute(&mut conn, format!("DROP TRIGGER IF EXISTS `{name}`")).await?;
            triggers += 1;
        }
    }
    let mut tables = 0;
    for table in OUR_TABLES {
        if table_exists(&mut conn, table).await? {
            execute(&mut conn, format!("DROP TABLE `{table}`")).await?;
            tables += 1;
        }
    }
    Ok(Removed { triggers, tables })
}

async fn table_exists(conn: &mut MySqlConnection, table: &str) -> Result<bool, MappedError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
    )
    .bind(table)
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// `serve` never installs: it starts only on the capture of its mapping.
pub(super) async fn verify(pool: &MySqlPool, mapping: &Mapping) -> Result<(), MappedError> {
    let mut conn = pool.acquire().await?;
    let hint = format!(
        "run `ticket-authz migrate --mapping {} --database-url …` first",
        mapping.file
    );
    for table in OUR_TABLES {
        if !table_exists(&mut conn, table).await? {
            return Err(MappedError::Capture(format!(
                "--mapping {}: the change capture is not installed (no table {table}); {hint}",
                mapping.file
            )));
        }
    }
    let spec: String = sqlx::query_scalar("SELECT capture FROM ticket_authz_pruned WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    if spec != mapping.capture_spec() {
        return Err(MappedError::Capture(format!(
            "--mapping {}: the installed change capture is another mapping's (it records `{spec}`); {hint}",
            mapping.file
        )));
    }
    let present = our_triggers(&mut conn).await?;
    for (table, name) in mapping
        .tables
        .keys()
        .flat_map(|t| trigger_names(t).map(|n| (t, n)))
    {
        if !present.iter().any(|(n, on)| *n == name && on == table) {
            return Err(MappedError::Capture(format!(
                "--mapping {}: trigger {name} on `{table}` is missing; {hint}",
                mapping.file
            )));
        }
    }
    // A foreign key added since the install changes rows unlogged.
    for cascade in crate::mapped::cascade::triggers(&mut conn, mapping, false).await? {
        if !present
            .iter()
            .any(|(n, on)| *n == cascade.name && *on == cascade.table)
        {
            return Err(MappedError::Capture(format!(
                "--mapping {}: trigger {} on `{}` (for a foreign key's cascade) is missing; {hint}",
                mapping.file, cascade.name, cascade.table
            )));
        }
    }
    Ok(())
}

/// Deletes and raises the floor in one transaction, so a follower never
/// sees the log shortened without the floor that says so. Rows of a
/// writer still in progress have higher revisions than any committed one
/// (numbering waits for commits), so they are never touched.
pub(super) async fn prune(pool: &MySqlPool, older_than: Duration) -> Result<Pruned, MappedError> {
    let mut tx = pool.begin().await?;
    let last: Option<u64> = sqlx::query_scalar(
        "SELECT MAX(revision) FROM ticket_authz_changes \
         WHERE changed_at < UNIX_TIMESTAMP(SYSDATE(6)) - ?",
    )
    .bind(older_than.as_secs_f64())
    .fetch_one(&mut *tx)
    .await?;
    let deleted = match last {
        Some(last) => sqlx::query("DELETE FROM ticket_authz_changes WHERE revision <= ?")
            .bind(last)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
        None => 0,
    };
    sqlx::query("UPDATE ticket_authz_pruned SET revision = GREATEST(revision, ?) WHERE id = 1")
        .bind(last.unwrap_or(0))
        .execute(&mut *tx)
        .await?;
    let floor: u64 = sqlx::query_scalar("SELECT revision FROM ticket_authz_pruned WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Pruned { deleted, floor })
}

/// The log after `after`, read in the caller's snapshot; `None` when
/// nothing newer committed. Each captured row has a revision of its own,
/// so more than `max_rows` revisions is a bulk change, not read.
pub(super) async fn read_log(
    conn: &mut MySqlConnection,
    after: u64,
    max_rows: u64,
) -> Result<Option<Log>, MappedError> {
    let revision: u64 = sqlx::query_scalar(REVISION_SQL)
        .fetch_one(&mut *conn)
        .await?;
    if revision <= after {
        return Ok(None);
    }
    let floor: u64 = sqlx::query_scalar("SELECT revision FROM ticket_authz_pruned WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    let mut log = Log {
        revision,
        floor,
        bulk: revision - after > max_rows,
        rows: Vec::new(),
        committed_at: None,
    };
    if floor > after || log.bulk {
        return Ok(Some(log));
    }
    let rows = sqlx::query(
        "SELECT table_name, old_row, new_row, CAST(changed_at AS DOUBLE) \
         FROM ticket_authz_changes WHERE revision > ? AND revision <= ? ORDER BY revision",
    )
    .bind(after)
    .bind(revision)
    .fetch_all(&mut *conn)
    .await?;
    log.committed_at = match rows.last() {
        Some(row) => Some(row.try_get::<f64, _>(3)?),
        None => None,
    };
    log.rows = rows
        .iter()
        .map(|r: &MySqlRow| {
            Ok(Logged {
                table: r.try_get(0)?,
                old: r.try_get(1)?,
                new: r.try_get(2)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Some(log))
}
