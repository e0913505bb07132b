//! PostgreSQL's side of `Dialect`: timestamps as epoch microseconds,
//! `REPEATABLE READ` loads, array inserts and `COPY`, the transaction-level
//! change log with a `SET LOCAL` bulk marker.

use std::time::Duration;

// Dynamic SQL here is built from the callers' table and column constants
// only; every value is bound or travels through COPY.
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Postgres};

use futures_util::TryStreamExt as _;

use super::{Cell, Column, Dialect, STAGED_EVERY, TimeWindow};
use crate::db::DbError;
use crate::db::changes::{ChangeRow, LogBatch};
use crate::time::Timestamp;

/// Rows per statement for the array inserts.
const BATCH: usize = 50_000;

/// Transactions read per change-log batch.
const LOG_BATCH: i64 = 1000;

/// COPY data is sent in pieces of about this size.
const COPY_CHUNK: usize = 1 << 20;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

fn slice<T: Clone>(v: &[T], from: usize, to: usize) -> Vec<T> {
    v.get(from..to.min(v.len())).unwrap_or_default().to_vec()
}

/// One row in COPY's text format.
fn copy_line(out: &mut Vec<u8>, cells: &[Cell<'_>]) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match cell {
            Cell::Text(None) | Cell::Bool(None) => out.extend_from_slice(b"\\N"),
            Cell::Bool(Some(b)) => out.push(if *b { b't' } else { b'f' }),
            Cell::Text(Some(text)) => {
                for byte in text.bytes() {
                    match byte {
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        b'\r' => out.extend_from_slice(b"\\r"),
                        other => out.push(other),
                    }
                }
            }
        }
    }
    out.push(b'\n');
}

impl Dialect for Postgres {
    type Time = i64;

    fn time_column(col: &str) -> String {
        format!("CAST(round(extract(epoch FROM {col}) * 1000000) AS BIGINT)")
    }

    fn time(micros: i64) -> Result<Timestamp, DbError> {
        Ok(Timestamp::from_nanos(micros.saturating_mul(1000)))
    }

    fn time_param(n: usize) -> String {
        format!("CAST(${n} AS timestamptz)")
    }

    type IdList = Vec<String>;

    fn id_list(col: &str, from: &str) -> String {
        format!("ARRAY(SELECT {col} {from})")
    }

    fn ids(value: Vec<String>) -> Result<Vec<String>, DbError> {
        Ok(value)
    }

    const BYTE_ORDER: &'static str = " COLLATE \"C\"";

    type IdsArg = Vec<String>;

    fn ids_arg(ids: Vec<String>) -> Vec<String> {
        ids
    }

    fn each(n: usize, alias: &str) -> String {
        format!("unnest(CAST(${n} AS text[])) AS {alias}(value)")
    }

    fn each_pair(a: usize, b: usize, alias: &str) -> String {
        format!("unnest(CAST(${a} AS text[]), CAST(${b} AS text[])) AS {alias}(first, second)")
    }

    fn per_row(source: &str, inner: &str) -> String {
        format!("SELECT x.id AS id FROM {source} CROSS JOIN LATERAL ({inner}) x")
    }

    type TimeKey = String;

    fn time_key(col: &str) -> String {
        col.to_owned()
    }

    /// `timestamptz` holds microseconds: the window is exact once its ends
    /// are rounded inwards to whole microseconds.
    fn time_window(from: Timestamp, to: Timestamp) -> TimeWindow<String> {
        let micros = |nanos: i64| Timestamp::from_nanos(nanos.saturating_mul(1000)).to_string();
        let (from, to) = (from.nanos(), to.nanos());
        let first = from.div_euclid(1000) + i64::from(from.rem_euclid(1000) != 0);
        let last = to.div_euclid(1000);
        TimeWindow {
            inside: (micros(first), micros(last)),
            edges: None,
        }
    }

    const REVISION: &'static str = "SELECT ticket_authz_revision()";

    const TOUCHES_TICKET: &'static str = "((c.table_name = 'tickets' AND (c.new_row ->> 'id' = $2 OR c.old_row ->> 'id' = $2)) \
         OR (c.table_name IN ('ticket_ccs', 'ticket_participants') \
             AND (c.new_row ->> 'ticket_id' = $2 OR c.old_row ->> 'ticket_id' = $2)))";

    fn freshness_columns(touched: &str) -> String {
        // Transactions after $1 are few (the graph follows within
        // milliseconds): the revision index finds them, their changes are
        // found by xid.
        format!(
            "ticket_authz_revision() AS revision, \
             (NOT EXISTS (SELECT 1 FROM ticket_authz_transactions x \
                          WHERE x.revision > $1 AND (x.bulk OR EXISTS (\
                              SELECT 1 FROM ticket_authz_changes c WHERE c.xid = x.xid AND {touched}))) \
              AND (SELECT p.revision FROM ticket_authz_pruned p) <= $1) AS unchanged"
        )
    }

    const CONSISTENT_READ: Option<&'static str> =
        Some("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");

    const RAISE_FLOOR: &'static str =
        "UPDATE ticket_authz_pruned SET revision = greatest(revision, $1) RETURNING revision";

    const TEMP_ON_COMMIT: &'static str = " ON COMMIT DROP";

    fn drop_temp(_: &str) -> Option<String> {
        None
    }

    fn analyze_temp(name: &str) -> Option<String> {
        Some(format!("ANALYZE {name}"))
    }

    async fn migrate(pool: &PgPool) -> Result<(), DbError> {
        MIGRATOR.run(pool).await?;
        Ok(())
    }

    async fn begin_bulk(conn: &mut PgConnection) -> Result<(), DbError> {
        sqlx::query("SET LOCAL ticket_authz.bulk = 'on'")
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn end_bulk(_: &mut PgConnection) -> Result<(), DbError> {
        Ok(())
    }

    async fn begin_import(conn: &mut PgConnection) -> Result<(), DbError> {
        Self::begin_bulk(&mut *conn).await?;
        sqlx::query("SELECT ticket_authz_register_transaction()")
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn clear(conn: &mut PgConnection, tables: &[&str]) -> Result<(), DbError> {
        sqlx::query(AssertSqlSafe(format!(
            "TRUNCATE {} CASCADE",
            tables.join(", ")
        )))
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn insert_columns(
        conn: &mut PgConnection,
        table: &str,
        columns: &[(&str, Column)],
    ) -> Result<(), DbError> {
        let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
        let arrays: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, (_, c))| match c {
                Column::Text(_) => format!("${}::text[]", i + 1),
                Column::Time(_) => format!("${}::text[]::timestamptz[]", i + 1),
                Column::Int(_) => format!("${}::bigint[]", i + 1),
                Column::Bool(_) => format!("${}::boolean[]", i + 1),
            })
            .collect();
        let sql = format!(
            "INSERT INTO {table} ({}) SELECT * FROM UNNEST({})",
            names.join(", "),
            arrays.join(", ")
        );
        let len = columns.first().map_or(0, |(_, c)| c.len());
        let mut from = 0;
        while from < len {
            let to = from + BATCH;
            let mut query = sqlx::query(AssertSqlSafe(sql.as_str()));
            for (_, col) in columns {
                query = match col {
                    Column::Text(v) => query.bind(slice(v, from, to)),
                    Column::Time(v) => query.bind(slice(v, from, to)),
                    Column::Int(v) => query.bind(slice(v, from, to)),
                    Column::Bool(v) => query.bind(slice(v, from, to)),
                };
            }
            query
                .execute(&mut *conn)
                .await
                .map_err(|e| DbError::Import(format!("{table}: {e}")))?;
            from = to;
        }
        Ok(())
    }

    async fn set_owners(
        conn: &mut PgConnection,
        owners: Vec<(String, String)>,
    ) -> Result<(), DbError> {
        let (ids, owner_ids): (Vec<String>, Vec<String>) = owners.into_iter().unzip();
        sqlx::query(
            "UPDATE companies c SET owner_id = o.owner FROM UNNEST($1::text[], $2::text[]) AS o(id, owner) WHERE c.id = o.id",
        )
        .bind(ids)
        .bind(owner_ids)
        .execute(conn)
        .await
        .map_err(|e| DbError::Import(format!("companies: {e}")))?;
        Ok(())
    }

    async fn copy_rows<'r, const N: usize>(
        conn: &mut PgConnection,
        table: &str,
        columns: &[&str],
        rows: impl Iterator<Item = [Cell<'r>; N]> + Send,
        mut staged: impl FnMut(u64) + Send,
    ) -> Result<(), sqlx::Error> {
        let sql = format!("COPY {table} ({}) FROM STDIN", columns.join(", "));
        let mut copy = conn.copy_in_raw(&sql).await?;
        let mut buffer = Vec::with_capacity(COPY_CHUNK + 4096);
        let mut count = 0u64;
        for row in rows {
            copy_line(&mut buffer, &row);
            if buffer.len() >= COPY_CHUNK {
                copy.send(buffer.as_slice()).await?;
                buffer.clear();
            }
            count += 1;
            if count.is_multiple_of(STAGED_EVERY) {
                staged(count);
            }
        }
        copy.send(buffer.as_slice()).await?;
        copy.finish().await?;
        Ok(())
    }

    async fn read_log(pool: &PgPool, after: i64) -> Result<Option<LogBatch>, DbError> {
        let txns: Vec<(i64, bool, Option<f64>)> = sqlx::query_as(
            "SELECT revision, bulk, extract(epoch FROM committed_at)::float8 \
             FROM ticket_authz_transactions WHERE revision > $1 ORDER BY revision LIMIT $2",
        )
        .bind(after)
        .bind(LOG_BATCH)
        .fetch_all(pool)
        .await?;
        let Some(&(last, _, committed_at)) = txns.last() else {
            return Ok(None);
        };
        let mut batch = LogBatch {
            revision: u64::try_from(last).unwrap_or(0),
            bulk: txns.iter().any(|(_, bulk, _)| *bulk),
            rows: Vec::new(),
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
                batch.rows.push(ChangeRow {
                    table,
                    op,
                    old,
                    new,
                });
            }
        }
        Ok(Some(batch))
    }

    async fn prune_log(
        conn: &mut PgConnection,
        older_than: Duration,
    ) -> Result<Vec<i64>, sqlx::Error> {
        sqlx::query_scalar(
            "WITH gone AS ( \
                 DELETE FROM ticket_authz_transactions \
                 WHERE revision IS NOT NULL \
                   AND committed_at < clock_timestamp() - make_interval(secs => $1) \
                   AND revision < (SELECT max(revision) FROM ticket_authz_transactions) \
                 RETURNING xid, revision), \
             dropped AS (DELETE FROM ticket_authz_changes c USING gone WHERE c.xid = gone.xid) \
             SELECT revision FROM gone",
        )
        .bind(older_than.as_secs_f64())
        .fetch_all(conn)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_what_copy_reads_specially() {
        let mut out = Vec::new();
        copy_line(
            &mut out,
            &[
                Cell::Text(Some("a\tb\\c\nd")),
                Cell::Text(None),
                Cell::Bool(Some(true)),
            ],
        );
        assert_eq!(out, b"a\\tb\\\\c\\nd\t\\N\tt\n");
    }
}
