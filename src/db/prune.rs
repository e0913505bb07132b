//! Change-log retention: deletes what every follower has long applied and
//! records how far it went, so a follower that was further behind knows it
//! must reload in full rather than miss changes.

use std::time::Duration;

use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::dialect::fetch_revision;
use super::{Database, DbError, Dialect};

/// The highest revision whose changes may be gone from the log.
const PRUNED_FLOOR: &str = "SELECT revision FROM ticket_authz_pruned WHERE id = 1";

/// What a prune removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Transactions (PostgreSQL) or change rows (SQLite) deleted.
    pub deleted: u64,
    /// The highest revision that may now be missing from the log.
    pub floor: u64,
}

impl Database {
    /// Deletes the change log older than `older_than`, always keeping the
    /// latest revision (it is what `ticket_authz_revision()` reports, so
    /// revisions never go backwards).
    pub async fn prune(&self, older_than: Duration) -> Result<Pruned, DbError> {
        match self {
            Database::Postgres(pool) => prune(pool, older_than).await,
            Database::Sqlite(pool) => prune(pool, older_than).await,
        }
    }

    /// The highest revision whose changes may be gone from the log.
    pub(crate) async fn pruned_floor(&self) -> Result<u64, DbError> {
        match self {
            Database::Postgres(pool) => fetch_revision(pool, PRUNED_FLOOR).await,
            Database::Sqlite(pool) => fetch_revision(pool, PRUNED_FLOOR).await,
        }
    }
}

/// Deletes and raises the floor in one transaction, so a follower never
/// sees the log shortened without the floor that says so.
async fn prune<D>(pool: &Pool<D>, older_than: Duration) -> Result<Pruned, DbError>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    D::Arguments: IntoArguments<D>,
    (i64,): for<'r> FromRow<'r, D::Row>,
    for<'q> i64: Encode<'q, D> + Type<D>,
{
    let mut tx = pool.begin().await?;
    let gone = D::prune_log(&mut tx, older_than).await?;
    let floor: i64 = sqlx::query_scalar(D::RAISE_FLOOR)
        .bind(gone.iter().copied().max().unwrap_or(0))
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Pruned {
        deleted: gone.len() as u64,
        floor: u64::try_from(floor).unwrap_or(0),
    })
}
