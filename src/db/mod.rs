//! The SQL source of truth: connecting, migrating, importing datasets and
//! loading the data with its revision. PostgreSQL in production, SQLite as
//! the embedded default; the schema is in `migrations/` and documented in
//! `docs/schema.md`.

mod changes;
mod decode;
mod dialect;
mod fresh;
mod lists;
mod load;
mod prune;
mod sections;
mod source;
mod store;
mod tickets;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Postgres, Sqlite};

pub(crate) use dialect::{Cell, Dialect, TimeWindow, fetch_revision};
pub use fresh::ReadAt;
pub use lists::LimitCounts;
pub use load::{Loaded, Scope as LoadScope};
pub use prune::Pruned;
pub use source::{DbSource, Listen, Notify};

/// Every table holding data, children before parents (the delete order).
pub(crate) const TABLES: [&str; 30] = [
    "downloads",
    "download_category_groups",
    "download_categories",
    "agenda_event_groups",
    "agenda_events",
    "leads",
    "invoices",
    "inventory_item_users",
    "inventory_item_companies",
    "inventory_items",
    "wiki_page_groups",
    "wiki_pages",
    "task_members",
    "tasks",
    "project_members",
    "projects",
    "ticket_participants",
    "ticket_ccs",
    "tickets",
    "grants",
    "organisation_access_managers",
    "user_organisations",
    "companies",
    "users",
    "profile_flags",
    "profiles",
    "groups",
    "partnerships",
    "organisation_domains",
    "organisations",
];

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database url `{0}`: expected postgres://…, postgresql://… or sqlite://PATH")]
    Url(String),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("import: {0}")]
    Import(String),
    #[error("{0}")]
    Invalid(String),
}

/// A connection pool to one of the supported databases.
#[derive(Debug, Clone)]
pub enum Database {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Hides the password of a URL for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:****{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Whether `url` names a database kind this service speaks.
pub fn is_supported_url(url: &str) -> bool {
    is_postgres_url(url) || url.starts_with("sqlite:")
}

impl Database {
    /// Connects; a `sqlite://PATH` whose file does not exist is created.
    pub async fn connect(url: &str) -> Result<Database, DbError> {
        Self::connect_with(url, None).await
    }

    /// Connects with a pool of at most `max_connections` (default 8 on
    /// PostgreSQL, 4 on SQLite), besides the one LISTEN holds.
    pub async fn connect_with(
        url: &str,
        max_connections: Option<u32>,
    ) -> Result<Database, DbError> {
        if is_postgres_url(url) {
            // No JIT: every statement here is short, and the planner's
            // estimates for the list statements' LATERAL branches (which a
            // probe usually skips) pass the JIT threshold, adding ~100 ms
            // of compilation to a millisecond query.
            let options = PgConnectOptions::from_str(url)?.options([("jit", "off")]);
            let pool = PgPoolOptions::new()
                .max_connections(max_connections.unwrap_or(8))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            Ok(Database::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .foreign_keys(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections.unwrap_or(4))
                .connect_with(options)
                .await?;
            Ok(Database::Sqlite(pool))
        } else {
            Err(DbError::Url(redact(url)))
        }
    }

    /// Applies the schema migrations that are not applied yet.
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self {
            Database::Postgres(pool) => Dialect::migrate(pool).await,
            Database::Sqlite(pool) => Dialect::migrate(pool).await,
        }
    }

    /// The latest committed revision.
    pub async fn revision(&self) -> Result<u64, DbError> {
        match self {
            Database::Postgres(pool) => fetch_revision(pool, Postgres::REVISION).await,
            Database::Sqlite(pool) => fetch_revision(pool, Sqlite::REVISION).await,
        }
    }

    pub async fn close(&self) {
        match self {
            Database::Postgres(pool) => pool.close().await,
            Database::Sqlite(pool) => pool.close().await,
        }
    }
}
