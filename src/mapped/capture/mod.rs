//! The change capture `migrate --mapping` installs beside the source
//! tables, one kind per database (`mysql.rs`, `postgres.rs`), and what the
//! follower reads of it: each object named `ticket_authz_*`, the source's
//! own tables never altered.

mod mysql;
mod postgres;

use std::time::Duration;

pub use mysql::REVISION_SQL;
pub use postgres::REVISION_SQL as POSTGRES_REVISION_SQL;

use super::MappedError;
use super::conn::{Conn, Pool};
use crate::db::Pruned;
use crate::mapping::Mapping;

/// What an install did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub tables: usize,
    pub triggers: usize,
    /// Triggers of tables the mapping no longer follows, dropped.
    pub dropped: usize,
    /// The revision the install took: every follower that applied less
    /// reloads in full once, as after a prune.
    pub revision: u64,
}

/// What an uninstall removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub triggers: usize,
    pub tables: usize,
}

/// One captured row change: the table and the images of the columns the
/// rules read, as JSON objects of text.
pub(in crate::mapped) struct Logged {
    pub table: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// What the log holds after a revision, read in one snapshot.
pub(in crate::mapped) struct Log {
    /// The latest committed revision.
    pub revision: u64,
    /// The highest revision whose changes may be gone.
    pub floor: u64,
    /// A bulk change (a TRUNCATE, or more rows than a batch reads): the
    /// rows are not read.
    pub bulk: bool,
    pub rows: Vec<Logged>,
    /// When the last of the batch's transactions committed (Unix seconds).
    pub committed_at: Option<f64>,
}

/// The latest committed revision, in whatever `conn` reads.
pub(super) async fn revision(conn: &mut Conn<'_>) -> Result<u64, MappedError> {
    match conn {
        Conn::MySql(c) => Ok(sqlx::query_scalar(REVISION_SQL).fetch_one(&mut **c).await?),
        Conn::Postgres(c) => {
            let r: i64 = sqlx::query_scalar(POSTGRES_REVISION_SQL)
                .fetch_one(&mut **c)
                .await?;
            Ok(u64::try_from(r).unwrap_or(0))
        }
    }
}

/// DDL built from names the server returned: only plain identifiers are
/// ever written back into a statement.
pub(super) fn plain(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

pub(super) async fn install(pool: &Pool, mapping: &Mapping) -> Result<Installed, MappedError> {
    match pool {
        Pool::MySql(p) => mysql::install(p, mapping).await,
        Pool::Postgres(p) => postgres::install(p, mapping).await,
    }
}

pub(super) async fn uninstall(pool: &Pool) -> Result<Removed, MappedError> {
    match pool {
        Pool::MySql(p) => mysql::uninstall(p).await,
        Pool::Postgres(p) => postgres::uninstall(p).await,
    }
}

/// `serve` never installs: it starts only on the capture of its mapping.
pub(super) async fn verify(pool: &Pool, mapping: &Mapping) -> Result<(), MappedError> {
    match pool {
        Pool::MySql(p) => mysql::verify(p, mapping).await,
        Pool::Postgres(p) => postgres::verify(p, mapping).await,
    }
}

/// Deletes the log older than `older_than` and raises the floor.
pub(super) async fn prune(pool: &Pool, older_than: Duration) -> Result<Pruned, MappedError> {
    match pool {
        Pool::MySql(p) => mysql::prune(p, older_than).await,
        Pool::Postgres(p) => postgres::prune(p, older_than).await,
    }
}

/// Whether the database holds a mapping's capture (PostgreSQL: told apart
/// from our own schema's change log, which `prune` migrates first).
pub(super) async fn present(pool: &Pool) -> Result<bool, MappedError> {
    match pool {
        Pool::MySql(_) => Ok(true),
        Pool::Postgres(p) => postgres::present(p).await,
    }
}

/// The log after `after`, in the snapshot `conn` reads; `None` when
/// nothing newer committed.
pub(super) async fn read_log(
    conn: &mut Conn<'_>,
    after: u64,
    max_rows: u64,
) -> Result<Option<Log>, MappedError> {
    match conn {
        Conn::MySql(c) => mysql::read_log(c, after, max_rows).await,
        Conn::Postgres(c) => postgres::read_log(c, after, max_rows).await,
    }
}
