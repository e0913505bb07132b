//! Change-log retention: deletes what every follower has long applied and
//! records how far it went, so a follower that was further behind knows it
//! must reload in full rather than miss changes.

use std::time::Duration;

use super::{Database, DbError};

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
        let seconds = older_than.as_secs_f64();
        // Each dialect deletes in one transaction and raises the floor in
        // the same one; only the statements differ.
        let (gone, floor): (Vec<i64>, i64) = match self {
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let gone: Vec<i64> = sqlx::query_scalar(
                    "WITH gone AS ( \
                         DELETE FROM ticket_authz_transactions \
                         WHERE revision IS NOT NULL \
                           AND committed_at < clock_timestamp() - make_interval(secs => $1) \
                           AND revision < (SELECT max(revision) FROM ticket_authz_transactions) \
                         RETURNING xid, revision), \
                     dropped AS (DELETE FROM ticket_authz_changes c USING gone WHERE c.xid = gone.xid) \
                     SELECT revision FROM gone",
                )
                .bind(seconds)
                .fetch_all(&mut *tx)
                .await?;
                let floor: i64 = sqlx::query_scalar(
                    "UPDATE ticket_authz_pruned SET revision = greatest(revision, $1) RETURNING revision",
                )
                .bind(gone.iter().copied().max().unwrap_or(0))
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                (gone, floor)
            }
            Database::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let gone: Vec<i64> = sqlx::query_scalar(
                    "DELETE FROM ticket_authz_changes \
                     WHERE changed_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?) \
                       AND revision < (SELECT max(revision) FROM ticket_authz_changes) \
                     RETURNING revision",
                )
                .bind(format!("-{seconds} seconds"))
                .fetch_all(&mut *tx)
                .await?;
                let floor: i64 = sqlx::query_scalar(
                    "UPDATE ticket_authz_pruned SET revision = max(revision, ?) WHERE id = 1 RETURNING revision",
                )
                .bind(gone.iter().copied().max().unwrap_or(0))
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                (gone, floor)
            }
        };
        Ok(Pruned {
            deleted: gone.len() as u64,
            floor: u64::try_from(floor).unwrap_or(0),
        })
    }

    /// The highest revision whose changes may be gone from the log.
    pub(crate) async fn pruned_floor(&self) -> Result<u64, DbError> {
        let floor: i64 = match self {
            Database::Postgres(pool) => {
                sqlx::query_scalar("SELECT revision FROM ticket_authz_pruned WHERE id = 1")
                    .fetch_one(pool)
                    .await?
            }
            Database::Sqlite(pool) => {
                sqlx::query_scalar("SELECT revision FROM ticket_authz_pruned WHERE id = 1")
                    .fetch_one(pool)
                    .await?
            }
        };
        Ok(u64::try_from(floor).unwrap_or(0))
    }
}
