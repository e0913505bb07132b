//! The two kinds of database a mapping can follow, MariaDB/MySQL and
//! PostgreSQL, behind the few operations the reads need: rows as text,
//! the columns (and PostgreSQL types) a statement gives, and a consistent
//! read-only snapshot. Everything above this file is written once.

use sqlx::mysql::{MySql, MySqlConnection, MySqlPool, MySqlRow};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool, Postgres};
use sqlx::{AssertSqlSafe, Column, Connection, Executor, Row, SqlSafeStr, Statement, Transaction};

use super::MappedError;
use crate::mapping::Database;

/// Every read of a batch sees one committed state: the revision, the log
/// up to it and the rows it determines.
const MYSQL_SNAPSHOT: &str = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY";
const POSTGRES_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

/// A source's connection pool.
#[derive(Debug, Clone)]
pub(super) enum Pool {
    MySql(MySqlPool),
    Postgres(PgPool),
}

/// One connection taken from a [`Pool`].
pub(super) enum Held {
    MySql(PoolConnection<MySql>),
    Postgres(PoolConnection<Postgres>),
}

/// A read-only transaction on one consistent snapshot.
pub(super) enum Snap<'c> {
    MySql(Transaction<'c, MySql>),
    Postgres(Transaction<'c, Postgres>),
}

/// A connection, borrowed for some reads.
pub(super) enum Conn<'c> {
    MySql(&'c mut MySqlConnection),
    Postgres(&'c mut PgConnection),
}

impl Pool {
    pub async fn acquire(&self) -> Result<Held, MappedError> {
        Ok(match self {
            Pool::MySql(p) => Held::MySql(p.acquire().await?),
            Pool::Postgres(p) => Held::Postgres(p.acquire().await?),
        })
    }

    /// A read-only transaction on one consistent snapshot.
    pub async fn snapshot(&self) -> Result<Snap<'static>, MappedError> {
        Ok(match self {
            Pool::MySql(p) => Snap::MySql(p.begin_with(MYSQL_SNAPSHOT).await?),
            Pool::Postgres(p) => Snap::Postgres(p.begin_with(POSTGRES_SNAPSHOT).await?),
        })
    }

    pub async fn close(&self) {
        match self {
            Pool::MySql(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

impl Held {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Held::MySql(c) => Conn::MySql(c),
            Held::Postgres(c) => Conn::Postgres(c),
        }
    }

    /// A consistent snapshot on this connection.
    pub async fn snapshot(&mut self) -> Result<Snap<'_>, MappedError> {
        Ok(match self {
            Held::MySql(c) => Snap::MySql(c.begin_with(MYSQL_SNAPSHOT).await?),
            Held::Postgres(c) => Snap::Postgres(c.begin_with(POSTGRES_SNAPSHOT).await?),
        })
    }
}

impl Snap<'_> {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Snap::MySql(tx) => Conn::MySql(tx),
            Snap::Postgres(tx) => Conn::Postgres(tx),
        }
    }

    pub async fn commit(self) -> Result<(), MappedError> {
        match self {
            Snap::MySql(tx) => tx.commit().await?,
            Snap::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

/// A column a statement gives: its name and, on PostgreSQL, its type's
/// OID (what a bound text value is cast to when compared with it).
pub(super) struct Described {
    pub name: String,
    pub oid: Option<u32>,
}

impl Conn<'_> {
    pub fn database(&self) -> Database {
        match self {
            Conn::MySql(_) => Database::MySql,
            Conn::Postgres(_) => Database::Postgres,
        }
    }

    /// Every row of `sql`, each column read as text. `values` are bound
    /// in order, as text; on PostgreSQL `array`, when given, is bound
    /// after them as one `text[]`.
    pub async fn text_rows(
        &mut self,
        sql: String,
        values: &[Option<String>],
        array: Option<&[String]>,
    ) -> Result<Vec<Vec<Option<String>>>, MappedError> {
        fn texts<R: Row>(rows: &[R]) -> Result<Vec<Vec<Option<String>>>, MappedError>
        where
            for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            usize: sqlx::ColumnIndex<R>,
        {
            rows.iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| r.try_get::<Option<String>, _>(i).map_err(MappedError::from))
                        .collect()
                })
                .collect()
        }
        match self {
            Conn::MySql(conn) => {
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for v in values {
                    q = q.bind(v);
                }
                texts(&q.fetch_all(&mut **conn).await?)
            }
            Conn::Postgres(conn) => {
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for v in values {
                    q = q.bind(v);
                }
                if let Some(array) = array {
                    q = q.bind(array.to_vec());
                }
                texts(&q.fetch_all(&mut **conn).await?)
            }
        }
    }

    /// Column 0 of every row of `sql`, as text whatever its SQL type (a
    /// rule query's keys); `values` are bound in order, as text.
    pub async fn first_column(
        &mut self,
        sql: String,
        values: &[Option<String>],
    ) -> Result<Vec<Option<String>>, MappedError> {
        match self {
            Conn::MySql(conn) => {
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for v in values {
                    q = q.bind(v);
                }
                let rows = q.fetch_all(&mut **conn).await?;
                Ok(rows.iter().map(first_as_text).collect::<Result<_, _>>()?)
            }
            // The query is wrapped to give text (see `check::rule_sql`).
            Conn::Postgres(_) => Ok(self
                .text_rows(sql, values, None)
                .await?
                .into_iter()
                .map(|r| r.into_iter().next().flatten())
                .collect()),
        }
    }

    /// The columns `sql` gives, or the database's complaint.
    pub async fn describe(&mut self, sql: String) -> Result<Vec<Described>, String> {
        fn complaint(e: sqlx::Error) -> String {
            match e {
                sqlx::Error::Database(e) => e.message().to_owned(),
                e => e.to_string(),
            }
        }
        let sql = AssertSqlSafe(sql).into_sql_str();
        fn named<C: Column>(columns: &[C], oid: impl Fn(&C) -> Option<u32>) -> Vec<Described> {
            columns
                .iter()
                .map(|c| Described {
                    name: c.name().to_owned(),
                    oid: oid(c),
                })
                .collect()
        }
        match self {
            Conn::MySql(conn) => {
                let statement = conn.prepare(sql).await.map_err(complaint)?;
                Ok(named(statement.columns(), |_| None))
            }
            Conn::Postgres(conn) => {
                let statement = conn.prepare(sql).await.map_err(complaint)?;
                Ok(named(statement.columns(), |c| {
                    c.type_info().oid().map(|o| o.0)
                }))
            }
        }
    }
}

/// Column 0 of a MySQL row, as text whatever its SQL type.
fn first_as_text(row: &MySqlRow) -> Result<Option<String>, sqlx::Error> {
    if let Ok(v) = row.try_get::<Option<String>, _>(0) {
        return Ok(v);
    }
    if let Ok(v) = row.try_get::<Option<i64>, _>(0) {
        return Ok(v.map(|n| n.to_string()));
    }
    if let Ok(v) = row.try_get::<Option<u64>, _>(0) {
        return Ok(v.map(|n| n.to_string()));
    }
    row.try_get::<Option<f64>, _>(0)
        .map(|v| v.map(|n| n.to_string()))
}

/// An identifier of the mapping's (a table or column that passed its
/// plain-identifier check, or one of our entities' columns) quoted for
/// the dialect.
pub(super) fn quoted(database: Database, name: &str) -> String {
    match database {
        Database::MySql => format!("`{name}`"),
        Database::Postgres => format!("\"{name}\""),
    }
}

/// `expr` cast to the dialect's text type.
pub(super) fn as_text(database: Database, expr: &str) -> String {
    match database {
        Database::MySql => format!("CAST({expr} AS CHAR)"),
        Database::Postgres => format!("CAST({expr} AS TEXT)"),
    }
}
