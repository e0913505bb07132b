//! SQLite's side of `Dialect`: timestamps as RFC 3339 text, one writer at
//! a time (so every transaction reads consistently), one prepared insert
//! per row, and a change log of rows with a `B` row for a bulk change.

use std::sync::Arc;
use std::time::Duration;

// Dynamic SQL here is built from the callers' table and column constants
// only; every value is a bound parameter.
use sqlx::{AssertSqlSafe, Sqlite, SqliteConnection, SqlitePool};

use super::{Cell, Column, Dialect, STAGED_EVERY, TimeWindow};
use crate::db::DbError;
use crate::db::changes::{ChangeRow, LogBatch};
use crate::time::Timestamp;

/// A change-log row: revision, table, op, old and new images, and when it
/// was written (Unix seconds).
type LogRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<f64>,
);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

impl Dialect for Sqlite {
    type Time = String;

    fn time_column(col: &str) -> String {
        col.to_owned()
    }

    fn time(text: String) -> Result<Timestamp, DbError> {
        text.parse()
            .map_err(|e| DbError::Invalid(format!("timestamp: {e}")))
    }

    fn time_param(n: usize) -> String {
        format!("${n}")
    }

    type IdList = String;

    fn id_list(col: &str, from: &str) -> String {
        format!("(SELECT json_group_array({col}) {from})")
    }

    fn ids(value: String) -> Result<Vec<String>, DbError> {
        serde_json::from_str(&value).map_err(|e| DbError::Invalid(format!("id list: {e}")))
    }

    const BYTE_ORDER: &'static str = "";

    type IdsArg = String;

    fn ids_arg(ids: Vec<String>) -> String {
        serde_json::Value::from(ids).to_string()
    }

    fn each(n: usize, alias: &str) -> String {
        format!("json_each(${n}) AS {alias}")
    }

    fn each_pair(a: usize, b: usize, alias: &str) -> String {
        format!(
            "(SELECT f.value AS first, s.value AS second \
              FROM json_each(${a}) f JOIN json_each(${b}) s ON s.key = f.key) AS {alias}"
        )
    }

    fn per_row(source: &str, inner: &str) -> String {
        format!(
            "SELECT x.value AS id FROM {source}, \
             json_each((SELECT json_group_array(id) FROM ({inner}) y)) x"
        )
    }

    type TimeKey = i64;

    /// Timestamps are text with any offset; `unixepoch` puts them on one
    /// scale, in whole seconds.
    fn time_key(col: &str) -> String {
        format!("unixepoch({col})")
    }

    /// `unixepoch` rounds to milliseconds before it truncates to seconds,
    /// so a key can be one second off: rows keyed within a second of
    /// either end are compared exactly, by their text.
    fn time_window(from: Timestamp, to: Timestamp) -> TimeWindow<i64> {
        let from = from.nanos().div_euclid(1_000_000_000);
        let to = to.nanos().div_euclid(1_000_000_000);
        TimeWindow {
            inside: (from.saturating_add(2), to.saturating_sub(2)),
            edges: Some([
                (from.saturating_sub(1), from.saturating_add(1)),
                (to.saturating_sub(1), to.saturating_add(1)),
            ]),
        }
    }

    const REVISION: &'static str = "SELECT revision FROM ticket_authz_revision";

    const TOUCHES_TICKET: &'static str = "((c.table_name = 'tickets' \
             AND (json_extract(c.new_row, '$.id') = $2 OR json_extract(c.old_row, '$.id') = $2)) \
         OR (c.table_name IN ('ticket_ccs', 'ticket_participants') \
             AND (json_extract(c.new_row, '$.ticket_id') = $2 OR json_extract(c.old_row, '$.ticket_id') = $2)))";

    fn freshness_columns(touched: &str) -> String {
        format!(
            "(SELECT coalesce(max(revision), 0) FROM ticket_authz_changes) AS revision, \
             (NOT EXISTS (SELECT 1 FROM ticket_authz_changes c \
                          WHERE c.revision > $1 AND (c.op = 'B' OR {touched})) \
              AND (SELECT p.revision FROM ticket_authz_pruned p WHERE p.id = 1) <= $1) AS unchanged"
        )
    }

    const CONSISTENT_READ: Option<&'static str> = None;

    const RAISE_FLOOR: &'static str = "UPDATE ticket_authz_pruned SET revision = max(revision, ?) WHERE id = 1 RETURNING revision";

    const TEMP_ON_COMMIT: &'static str = "";

    fn drop_temp(name: &str) -> Option<String> {
        Some(format!("DROP TABLE IF EXISTS temp.{name}"))
    }

    fn analyze_temp(_: &str) -> Option<String> {
        None
    }

    async fn migrate(pool: &SqlitePool) -> Result<(), DbError> {
        MIGRATOR.run(pool).await?;
        Ok(())
    }

    async fn begin_bulk(conn: &mut SqliteConnection) -> Result<(), DbError> {
        sqlx::query("UPDATE ticket_authz_state SET bulk = 1 WHERE id = 1")
            .execute(conn)
            .await?;
        Ok(())
    }

    /// One `B` row (one revision) stands for everything written since
    /// [`Dialect::begin_bulk`].
    async fn end_bulk(conn: &mut SqliteConnection) -> Result<(), DbError> {
        sqlx::query("INSERT INTO ticket_authz_changes (table_name, op) VALUES ('*', 'B')")
            .execute(&mut *conn)
            .await?;
        sqlx::query("UPDATE ticket_authz_state SET bulk = 0 WHERE id = 1")
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn begin_import(conn: &mut SqliteConnection) -> Result<(), DbError> {
        sqlx::query("PRAGMA defer_foreign_keys = ON")
            .execute(&mut *conn)
            .await?;
        Self::begin_bulk(conn).await
    }

    async fn clear(conn: &mut SqliteConnection, tables: &[&str]) -> Result<(), DbError> {
        for table in tables {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    async fn insert_columns(
        conn: &mut SqliteConnection,
        table: &str,
        columns: &[(&str, Column)],
    ) -> Result<(), DbError> {
        let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
        let marks = vec!["?"; names.len()].join(", ");
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES ({marks})",
            names.join(", ")
        );
        let len = columns.first().map_or(0, |(_, c)| c.len());
        for i in 0..len {
            let mut query = sqlx::query(AssertSqlSafe(sql.as_str()));
            for (_, col) in columns {
                query = match col {
                    Column::Text(v) => query.bind(v.get(i).cloned().flatten()),
                    Column::Time(v) => query.bind(v.get(i).cloned()),
                    Column::Int(v) => query.bind(v.get(i).copied()),
                    Column::Bool(v) => query.bind(v.get(i).copied()),
                };
            }
            query
                .execute(&mut *conn)
                .await
                .map_err(|e| DbError::Import(format!("{table}: {e}")))?;
        }
        Ok(())
    }

    async fn set_owners(
        conn: &mut SqliteConnection,
        owners: Vec<(String, String)>,
    ) -> Result<(), DbError> {
        for (id, owner) in owners {
            sqlx::query("UPDATE companies SET owner_id = ? WHERE id = ?")
                .bind(owner)
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(|e| DbError::Import(format!("companies: {e}")))?;
        }
        Ok(())
    }

    async fn copy_rows<'r, const N: usize>(
        conn: &mut SqliteConnection,
        table: &str,
        columns: &[&str],
        rows: impl Iterator<Item = [Cell<'r>; N]> + Send,
        mut staged: impl FnMut(u64) + Send,
    ) -> Result<(), sqlx::Error> {
        let marks: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
        let sql: Arc<str> = Arc::from(format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            columns.join(", "),
            marks.join(", ")
        ));
        let mut count = 0u64;
        for row in rows {
            let mut query = sqlx::query(AssertSqlSafe(Arc::clone(&sql)));
            for cell in row {
                query = match cell {
                    Cell::Text(text) => query.bind(text),
                    Cell::Bool(flag) => query.bind(flag),
                };
            }
            query.execute(&mut *conn).await?;
            count += 1;
            if count.is_multiple_of(STAGED_EVERY) {
                staged(count);
            }
        }
        Ok(())
    }

    async fn read_log(pool: &SqlitePool, after: i64) -> Result<Option<LogBatch>, DbError> {
        // A reader sees only committed transactions, so reading every
        // newer row never splits one.
        let rows: Vec<LogRow> = sqlx::query_as(
            "SELECT revision, table_name, op, old_row, new_row, (julianday(changed_at) - 2440587.5) * 86400.0 \
             FROM ticket_authz_changes WHERE revision > ? ORDER BY revision",
        )
        .bind(after)
        .fetch_all(pool)
        .await?;
        let Some((last, committed_at)) = rows.last().map(|r| (r.0, r.5)) else {
            return Ok(None);
        };
        Ok(Some(LogBatch {
            revision: u64::try_from(last).unwrap_or(0),
            bulk: rows.iter().any(|r| r.2 == "B"),
            committed_at,
            rows: rows
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

    async fn prune_log(
        conn: &mut SqliteConnection,
        older_than: Duration,
    ) -> Result<Vec<i64>, sqlx::Error> {
        sqlx::query_scalar(
            "DELETE FROM ticket_authz_changes \
             WHERE changed_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?) \
               AND revision < (SELECT max(revision) FROM ticket_authz_changes) \
             RETURNING revision",
        )
        .bind(format!("-{} seconds", older_than.as_secs_f64()))
        .fetch_all(conn)
        .await
    }
}
