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
mod check;

use std::str::FromStr;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};

pub use capture::{Installed, REVISION_SQL, Removed};
pub use check::check;

use crate::db::{Pruned, redact};
use crate::mapping::{Database, Mapping, MappingError};

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
            Database::MySql if !(url.starts_with("mysql://") || url.starts_with("mariadb://")) => {
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
        if !(url.starts_with("mysql://") || url.starts_with("mariadb://")) {
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
