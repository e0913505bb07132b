//! A helpdesk's own database read through a source mapping: the
//! connection, the change capture `migrate --mapping` installs beside the
//! source tables, and the check of a mapping against the live tables.
//!
//! * `capture.rs`: the MariaDB/MySQL capture (a revision counter whose row
//!   lock gives commit order, a change log, three triggers per table), its
//!   removal, the revision statement and pruning.
//! * `check.rs`: every table, column and query of a mapping tried against
//!   the database before anything is installed or served.
//!
//! The mapping file itself is `crate::mapping`'s; this module only reads
//! and installs. The follower that serves a mapped source comes next (see
//! docs/mapping.md's status).

mod capture;
mod cascade;
mod check;
mod decode;
mod reread;
mod rows;
mod source;

use std::str::FromStr;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};

pub use capture::{Installed, REVISION_SQL, Removed};
pub use check::{Columns, check};
pub use decode::{DecodeError, Rows, Unresolved};
pub use source::MappedSource;

use decode::{Known, Misses};
use sqlx::Connection;

use crate::db::{Pruned, redact};
use crate::mapping::{Database, Mapping, MappingError};
use crate::snapshot::Snapshot;

/// Whether `url` names a MariaDB/MySQL database, the one kind of mapped
/// source there is today.
pub fn is_mysql_url(url: &str) -> bool {
    url.starts_with("mysql://") || url.starts_with("mariadb://")
}

/// Why a mapped source could not be used; nothing was installed.
#[derive(Debug, thiserror::Error)]
pub enum MappedError {
    #[error("database url `{0}`: a mapped source needs mysql://… or mariadb://…")]
    Url(String),
    #[error("database url `{0}` names no database: add /NAME, the helpdesk's database")]
    NoDatabase(String),
    #[error("mapping {file} is for {database}, but the database url is `{url}`")]
    WrongDatabase {
        file: String,
        database: &'static str,
        url: String,
    },
    #[error(
        "mapping {0} is for postgres: PostgreSQL as a mapped source is not available yet (issue 18)"
    )]
    PostgresNotYet(String),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Mapping(#[from] MappingError),
    /// The installed capture is missing or is another mapping's.
    #[error("{0}")]
    Capture(String),
    /// The source's data at `revision` makes no valid snapshot (a parent
    /// cycle, a value no reading makes sense of): held back.
    #[error("revision {revision}: {cause}")]
    Invalid { revision: u64, cause: String },
}

/// A mapped source read whole at one revision.
#[derive(Debug)]
pub struct Loaded {
    pub snapshot: Snapshot,
    /// References left out because they name nothing the mapping gives.
    pub unresolved: Unresolved,
}

/// A mapped source read whole at one revision, as our dataset.
#[derive(Debug)]
pub struct Read {
    pub revision: u64,
    pub dataset: crate::model::Dataset,
    /// References left out because they name nothing the mapping gives.
    pub unresolved: Unresolved,
    /// What a follower continues from: the ids held and the misses.
    columns: Columns,
    known: Known,
    misses: Misses,
}

/// A MariaDB/MySQL database followed through a mapping.
#[derive(Debug, Clone)]
pub struct MappedDb {
    pool: MySqlPool,
}

impl MappedDb {
    /// Connects to the source at `url` for `mapping`. Sessions are UTC
    /// (datetimes read as UTC, as the mappings assume) and keep MySQL's
    /// own `||` (sqlx would make it concatenation), so that a mapping's
    /// queries mean what they mean in the helpdesk.
    pub async fn connect(url: &str, mapping: &Mapping) -> Result<MappedDb, MappedError> {
        let redacted = redact(url);
        match mapping.database {
            Database::Postgres => return Err(MappedError::PostgresNotYet(mapping.file.clone())),
            Database::MySql if !is_mysql_url(url) => {
                return Err(if url.contains("://") {
                    MappedError::WrongDatabase {
                        file: mapping.file.clone(),
                        database: mapping.database.name(),
                        url: redacted,
                    }
                } else {
                    MappedError::Url(redacted)
                });
            }
            Database::MySql => {}
        }
        MappedDb::connect_url(url).await
    }

    /// Connects to the MariaDB/MySQL database at `url` (for what needs no
    /// mapping: pruning the capture's log).
    pub async fn connect_url(url: &str) -> Result<MappedDb, MappedError> {
        let redacted = redact(url);
        if !is_mysql_url(url) {
            return Err(MappedError::Url(redacted));
        }
        let url = url.replacen("mariadb://", "mysql://", 1);
        let options = MySqlConnectOptions::from_str(&url)
            .map_err(|_| MappedError::Url(redacted.clone()))?
            .pipes_as_concat(false)
            .timezone(Some("+00:00".to_owned()));
        if options.get_database().is_none_or(str::is_empty) {
            return Err(MappedError::NoDatabase(redacted));
        }
        let pool = MySqlPoolOptions::new()
            .max_connections(4)
            // Whatever the server's default, a consistent snapshot is
            // what every read of a batch must share.
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::raw_sql("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                        .execute(conn)
                        .await
                        .map(drop)
                })
            })
            .connect_with(options)
            .await?;
        Ok(MappedDb { pool })
    }

    /// Installs (or re-installs) the change capture for `mapping`, after
    /// checking the mapping against the live tables.
    pub async fn install(&self, mapping: &Mapping) -> Result<Installed, MappedError> {
        capture::install(&self.pool, mapping).await
    }

    /// Removes every object the capture installed.
    pub async fn uninstall(&self) -> Result<Removed, MappedError> {
        capture::uninstall(&self.pool).await
    }

    /// Fails unless the capture for exactly `mapping` is installed.
    pub async fn verify_capture(&self, mapping: &Mapping) -> Result<(), MappedError> {
        capture::verify(&self.pool, mapping).await
    }

    /// The latest committed revision (what [`REVISION_SQL`] reads).
    pub async fn revision(&self) -> Result<u64, MappedError> {
        Ok(sqlx::query_scalar(REVISION_SQL)
            .fetch_one(&self.pool)
            .await?)
    }

    /// Every entity of `mapping`, read in one consistent snapshot at the
    /// revision it shows, as a snapshot of what resolves. The mapping is
    /// tried against the live tables first, as at start-up.
    pub async fn load(&self, mapping: &Mapping) -> Result<Loaded, MappedError> {
        let (loaded, _) = self.load_state(mapping).await?;
        Ok(loaded)
    }

    /// [`MappedDb::load`], with what a follower continues from.
    async fn load_state(&self, mapping: &Mapping) -> Result<(Loaded, source::State), MappedError> {
        let read = self.read(mapping).await?;
        let revision = read.revision;
        // A cycle is in the source's rows: the message names the tables.
        let group_tables = mapping.tables_of("groups").join(", ");
        let company_tables = mapping.tables_of("companies").join(", ");
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let built = Snapshot::build(&read.dataset);
            tracing::debug!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "snapshot built"
            );
            let mut snapshot = built.map_err(|e| {
                let cause = match &e {
                    crate::snapshot::SnapshotError::Cycle { entity, .. } => {
                        let tables = if *entity == "group" {
                            &group_tables
                        } else {
                            &company_tables
                        };
                        format!("{e} (source table {tables})")
                    }
                    _ => e.to_string(),
                };
                MappedError::Invalid { revision, cause }
            })?;
            snapshot.set_revision(revision);
            let state = source::State {
                at: revision,
                columns: read.columns,
                known: read.known,
                misses: read.misses,
            };
            let loaded = Loaded {
                snapshot,
                unresolved: read.unresolved,
            };
            Ok((loaded, state))
        })
        .await
        .map_err(|e| MappedError::Capture(format!("the load stopped: {e}")))?
    }

    /// Every entity of `mapping` as our dataset, read in one consistent
    /// snapshot, before any snapshot is built from it.
    pub async fn read(&self, mapping: &Mapping) -> Result<Read, MappedError> {
        let mut conn = self.pool.acquire().await?;
        let columns = check(&mut conn, mapping).await?;
        let mut tx = conn.begin_with(source::SNAPSHOT).await?;
        let revision: u64 = sqlx::query_scalar(REVISION_SQL).fetch_one(&mut *tx).await?;
        let all = rows::read_all(&mut tx, mapping, &columns).await?;
        tx.commit().await?;
        let html = mapping.html_names;
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let decoded = decode::dataset(&all, html);
            tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "decoded");
            let (dataset, known, misses) = decoded.map_err(|e| MappedError::Invalid {
                revision,
                cause: e.to_string(),
            })?;
            Ok(Read {
                revision,
                dataset,
                unresolved: misses.counts(),
                columns,
                known,
                misses,
            })
        })
        .await
        .map_err(|e| MappedError::Capture(format!("the read stopped: {e}")))?
    }

    /// Deletes the change log older than `older_than`.
    pub async fn prune(&self, older_than: std::time::Duration) -> Result<Pruned, MappedError> {
        capture::prune(&self.pool, older_than).await
    }

    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
