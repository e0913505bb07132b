//! A helpdesk's own database read through a source mapping: the
//! connection, the change capture `migrate --mapping` installs beside the
//! source tables, the check of a mapping against the live tables, and the
//! follower that serves it.
//!
//! * `conn.rs`: MariaDB/MySQL and PostgreSQL behind the few reads the rest
//!   needs; nothing else here names a driver's connection.
//! * `capture/`: each database's capture (MariaDB: a revision counter
//!   whose row lock gives commit order; PostgreSQL: our own schema's
//!   commit-time numbering), its removal, the revision statement, pruning
//!   and the log read. `cascade.rs`: MariaDB's foreign-key actions, which
//!   fire no trigger.
//! * `check.rs`: every table, column and query of a mapping tried against
//!   the database before anything is installed or served.
//! * `rows.rs`, `decode.rs`, `reread.rs`, `source.rs`: the full read, its
//!   decoding into our entities, the re-read of what a batch determines,
//!   and the [`ChangeSource`](crate::follow::ChangeSource).
//!
//! The mapping file itself is `crate::mapping`'s.

mod capture;
mod cascade;
mod check;
mod conn;
mod decode;
mod reread;
mod rows;
mod source;

use std::str::FromStr;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub use capture::{Installed, POSTGRES_REVISION_SQL, REVISION_SQL, Removed};
pub use check::Columns;
pub use decode::{DecodeError, Rows, Unresolved};
pub use source::MappedSource;

use check::check;
use conn::Pool;
use decode::{Known, Misses};

use crate::db::{Pruned, redact};
use crate::mapping::{Database, Mapping, MappingError};
use crate::snapshot::Snapshot;

/// Whether `url` names a MariaDB/MySQL database.
pub fn is_mysql_url(url: &str) -> bool {
    url.starts_with("mysql://") || url.starts_with("mariadb://")
}

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The kind of database `url` names, when a mapping can follow it.
pub fn url_database(url: &str) -> Option<Database> {
    if is_mysql_url(url) {
        Some(Database::MySql)
    } else if is_postgres_url(url) {
        Some(Database::Postgres)
    } else {
        None
    }
}

/// Why a mapped source could not be used; nothing was installed.
#[derive(Debug, thiserror::Error)]
pub enum MappedError {
    #[error(
        "database url `{0}`: a mapped source needs mysql://…, mariadb://…, postgres://… or postgresql://…"
    )]
    Url(String),
    #[error("database url `{0}` names no database: add /NAME, the helpdesk's database")]
    NoDatabase(String),
    #[error("mapping {file} is for {database}, but the database url is `{url}`")]
    WrongDatabase {
        file: String,
        database: &'static str,
        url: String,
    },
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

/// A helpdesk's database (MariaDB/MySQL or PostgreSQL) followed through
/// a mapping.
#[derive(Debug, Clone)]
pub struct MappedDb {
    pool: Pool,
}

impl MappedDb {
    /// Connects to the source at `url` for `mapping`, which must be
    /// written for that kind of database.
    pub async fn connect(url: &str, mapping: &Mapping) -> Result<MappedDb, MappedError> {
        let redacted = redact(url);
        match url_database(url) {
            Some(kind) if kind == mapping.database => MappedDb::connect_url(url).await,
            Some(_) => Err(MappedError::WrongDatabase {
                file: mapping.file.clone(),
                database: mapping.database.name(),
                url: redacted,
            }),
            None if url.contains("://") => Err(MappedError::WrongDatabase {
                file: mapping.file.clone(),
                database: mapping.database.name(),
                url: redacted,
            }),
            None => Err(MappedError::Url(redacted)),
        }
    }

    /// Connects to the database at `url` (for what needs no mapping:
    /// pruning the capture's log, removing it).
    pub async fn connect_url(url: &str) -> Result<MappedDb, MappedError> {
        match url_database(url) {
            Some(Database::MySql) => connect_mysql(url).await,
            Some(Database::Postgres) => connect_postgres(url).await,
            None => Err(MappedError::Url(redact(url))),
        }
    }

    /// Installs (or re-installs) the change capture for `mapping`, after
    /// checking the mapping against the live tables.
    pub async fn install(&self, mapping: &Mapping) -> Result<Installed, MappedError> {
        capture::install(&self.pool, mapping).await
    }

    /// Whether the database holds a mapping's capture.
    pub async fn has_capture(&self) -> Result<bool, MappedError> {
        capture::present(&self.pool).await
    }

    /// Removes every object the capture installed.
    pub async fn uninstall(&self) -> Result<Removed, MappedError> {
        capture::uninstall(&self.pool).await
    }

    /// Fails unless the capture for exactly `mapping` is installed.
    pub async fn verify_capture(&self, mapping: &Mapping) -> Result<(), MappedError> {
        capture::verify(&self.pool, mapping).await
    }

    /// The latest committed revision (what [`REVISION_SQL`] or
    /// [`POSTGRES_REVISION_SQL`] reads).
    pub async fn revision(&self) -> Result<u64, MappedError> {
        capture::revision(&mut self.pool.acquire().await?.conn()).await
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
        let mut held = self.pool.acquire().await?;
        let columns = check(&mut held.conn(), mapping).await?;
        let mut snap = held.snapshot().await?;
        let revision = capture::revision(&mut snap.conn()).await?;
        let all = rows::read_all(&mut snap.conn(), mapping, &columns).await?;
        snap.commit().await?;
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

    /// The MariaDB/MySQL pool, when that is the kind.
    pub fn mysql_pool(&self) -> Option<&MySqlPool> {
        match &self.pool {
            Pool::MySql(p) => Some(p),
            Pool::Postgres(_) => None,
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A MariaDB/MySQL source. Sessions are UTC (datetimes read as UTC, as
/// the mappings assume) and keep MySQL's own `||` (sqlx would make it
/// concatenation), so that a mapping's queries mean what they mean in the
/// helpdesk.
async fn connect_mysql(url: &str) -> Result<MappedDb, MappedError> {
    let redacted = redact(url);
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
        // Whatever the server's default, a consistent snapshot is what
        // every read of a batch must share.
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
    Ok(MappedDb {
        pool: Pool::MySql(pool),
    })
}

/// A PostgreSQL source. Sessions are UTC, so that `timestamptz` values
/// read as text are UTC; each batch opens its own REPEATABLE READ
/// snapshot.
async fn connect_postgres(url: &str) -> Result<MappedDb, MappedError> {
    let redacted = redact(url);
    let options = PgConnectOptions::from_str(url)
        .map_err(|_| MappedError::Url(redacted.clone()))?
        .options([("TimeZone", "UTC")]);
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?;
    Ok(MappedDb {
        pool: Pool::Postgres(pool),
    })
}
