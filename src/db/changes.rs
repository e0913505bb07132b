//! Reading the change log of our own schema: whole committed transactions
//! after a revision, as raw rows (table, op, JSON images). The two
//! dialects' SQL side by side; decoding is `decode.rs`'s.

use futures_util::TryStreamExt;

use super::{Database, DbError};

/// One row of the change log.
#[derive(Debug, Clone)]
pub(super) struct ChangeRow {
    pub table: String,
    pub op: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// Complete transactions, in commit order, up to `revision`.
#[derive(Debug, Clone, Default)]
pub(super) struct LogBatch {
    pub revision: u64,
    /// A bulk change (import, TRUNCATE): reload in full.
    pub bulk: bool,
    pub rows: Vec<ChangeRow>,
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
    /// The change-log rows of the transactions committed after `after`
    /// (up to `PG_BATCH` of them on PostgreSQL), or `None` when there is
    /// none. A bulk batch carries no rows.
    pub(super) async fn read_changes(&self, after: u64) -> Result<Option<LogBatch>, DbError> {
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
        }
    }
}
