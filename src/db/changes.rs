//! Reading the change log of our own schema: whole committed transactions
//! after a revision, as raw rows (table, op, JSON images). Each dialect's
//! SQL is its `Dialect::read_log`; decoding is `decode.rs`'s.

use sqlx::{Postgres, Sqlite};

use super::dialect::Dialect;
use super::{Database, DbError};

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
pub(crate) struct LogBatch {
    pub revision: u64,
    /// A bulk change (import, TRUNCATE): reload in full.
    pub bulk: bool,
    pub rows: Vec<ChangeRow>,
    /// When the last transaction committed (Unix seconds, database clock).
    pub committed_at: Option<f64>,
}

impl Database {
    /// The change-log rows of the transactions committed after `after` (a
    /// bounded number of them on PostgreSQL), or `None` when there is none.
    /// A bulk batch carries no rows.
    pub(super) async fn read_changes(&self, after: u64) -> Result<Option<LogBatch>, DbError> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        match self {
            Database::Postgres(pool) => Postgres::read_log(pool, after).await,
            Database::Sqlite(pool) => Sqlite::read_log(pool, after).await,
        }
    }
}
