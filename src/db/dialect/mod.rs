//! The one seam between PostgreSQL and SQLite: `Dialect`, implemented for
//! `sqlx::Postgres` (`postgres.rs`) and `sqlx::Sqlite` (`sqlite.rs`), holds
//! everything that really differs; the rest of `db` and `csv_import` is
//! generic code over it, monomorphised per dialect (no `Any` driver, so the
//! load reads rows exactly as typed code would).
//!
//! What is the same on both is not here: placeholders are `$1`, `$2`, … on
//! both (sqlx's SQLite binding reads `$N` as the Nth argument), and the
//! schema's table and column names are shared.
//!
//! Generic code states the sqlx bounds it uses, as sqlx's own generic
//! executors do: `for<'c> &'c mut D::Connection: Executor<'c, Database = D>`
//! to run statements on a connection (or a `&Pool<D>`),
//! `D::Arguments: IntoArguments<D>` to bind, and `Decode`/`Type`/`Encode`
//! for each Rust type read or bound. Rust does not imply such bounds from a
//! trait's where-clause, so each generic function repeats the ones it needs.

mod postgres;
mod sqlite;

use std::future::Future;
use std::time::Duration;

use sqlx::{Decode, Encode, Executor, IntoArguments, Pool, Type};

use super::DbError;
use super::changes::LogBatch;
use crate::time::Timestamp;

/// A table's rows column by column, typed for binding (the import writes a
/// whole dataset this way).
#[derive(Debug)]
pub(crate) enum Column {
    Text(Vec<Option<String>>),
    /// RFC 3339 text.
    Time(Vec<String>),
    Int(Vec<i64>),
    Bool(Vec<bool>),
}

impl Column {
    pub(crate) fn len(&self) -> usize {
        match self {
            Column::Text(v) => v.len(),
            Column::Time(v) => v.len(),
            Column::Int(v) => v.len(),
            Column::Bool(v) => v.len(),
        }
    }
}

/// One value of a row streamed into a table (the CSV import's staging).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cell<'a> {
    Text(Option<&'a str>),
    Bool(Option<bool>),
}

/// What differs between the two databases. Implemented for `sqlx::Postgres`
/// and `sqlx::Sqlite` only; `Database` picks one per pool.
pub(crate) trait Dialect: sqlx::Database {
    /// How a timestamp column arrives as selected by [`Dialect::time_column`]:
    /// microseconds since the epoch on PostgreSQL, RFC 3339 text on SQLite.
    type Time: for<'r> Decode<'r, Self> + Type<Self> + Send + Unpin;

    /// The select-list expression for the timestamp column `col`.
    fn time_column(col: &str) -> String;

    /// A value of [`Dialect::time_column`] as a `Timestamp`.
    fn time(value: Self::Time) -> Result<Timestamp, DbError>;

    /// How a list of ids arrives as selected by [`Dialect::id_list`]: a
    /// text array on PostgreSQL, a JSON array in text on SQLite.
    type IdList: for<'r> Decode<'r, Self> + Type<Self> + Send + Unpin;

    /// A select-list expression collecting `SELECT {col} {from}` into one
    /// [`Dialect::IdList`] value (in no particular order).
    fn id_list(col: &str, from: &str) -> String;

    /// A value of [`Dialect::id_list`] as ids.
    fn ids(value: Self::IdList) -> Result<Vec<String>, DbError>;

    /// The bound RFC 3339 text `$n`, typed as a timestamp where the
    /// database needs it.
    fn time_param(n: usize) -> String;

    /// What follows a text expression to compare or order it in byte
    /// order: `COLLATE "C"` on PostgreSQL (the database's default collation
    /// may be another), nothing on SQLite (BINARY is byte order).
    const BYTE_ORDER: &'static str;

    /// A list of ids as it is bound: a text array on PostgreSQL, a JSON
    /// array in text on SQLite.
    type IdsArg: for<'q> Encode<'q, Self> + Type<Self> + Send;

    /// Ids as an [`Dialect::IdsArg`].
    fn ids_arg(ids: Vec<String>) -> Self::IdsArg;

    /// A FROM item `alias` with one row (column `value`) per id of the
    /// bound list `$n`.
    fn each(n: usize, alias: &str) -> String;

    /// A FROM item `alias` pairing the bound lists `$a` and `$b` element by
    /// element, as columns `first` and `second`.
    fn each_pair(a: usize, b: usize, alias: &str) -> String;

    /// A SELECT of one column `id`: for every row of the FROM items
    /// `source`, the rows of `inner` (a SELECT of `id`, with its own ORDER
    /// BY and LIMIT, referring to `source`): PostgreSQL's LATERAL, SQLite's
    /// correlated subquery collected into JSON and spread again.
    fn per_row(source: &str, inner: &str) -> String;

    /// How a timestamp column is keyed in the ticket-limit indexes, and
    /// how a key is bound (placed with [`Dialect::time_param`]).
    type TimeKey: for<'q> Encode<'q, Self> + Type<Self> + Send;

    /// The key expression of the timestamp column `col`.
    fn time_key(col: &str) -> String;

    /// The keys of the window `[from, to]`.
    fn time_window(from: Timestamp, to: Timestamp) -> TimeWindow<Self::TimeKey>;

    /// The latest committed revision, one `BIGINT` row.
    const REVISION: &'static str;

    /// The condition on a change-log row `c` that it touched the ticket
    /// `$2`: its row, a CC or a participant (old or new image).
    const TOUCHES_TICKET: &'static str;

    /// The select-list columns `revision` (`BIGINT`, the latest revision
    /// this statement sees) and `unchanged` (boolean: no change-log row
    /// `c` after revision `$1` satisfies `touched`, no bulk change after
    /// it, and the log is not pruned past it), for [`super::fresh`].
    fn freshness_columns(touched: &str) -> String;

    /// Run first in the transaction of the full load, to make its reads one
    /// consistent snapshot. SQLite's transactions already are.
    const CONSISTENT_READ: Option<&'static str>;

    /// The highest pruned revision raised to `$1` (at least), returning the
    /// new value; one `BIGINT` row.
    const RAISE_FLOOR: &'static str;

    /// How a temporary table ends: PostgreSQL drops it with the transaction;
    /// SQLite keeps it for the connection, so [`Dialect::drop_temp`] removes
    /// it.
    const TEMP_ON_COMMIT: &'static str;

    /// The statement removing the temporary table `name`, where the
    /// transaction does not.
    fn drop_temp(name: &str) -> Option<String>;

    /// The statement gathering planner statistics for the temporary table
    /// `name` (PostgreSQL does not do it by itself for temporary tables).
    fn analyze_temp(name: &str) -> Option<String>;

    /// Applies the schema migrations not applied yet.
    fn migrate(pool: &Pool<Self>) -> impl Future<Output = Result<(), DbError>> + Send;

    /// Makes the rest of the transaction one bulk change: no row images are
    /// recorded and followers reload in full once. Closed by
    /// [`Dialect::end_bulk`] before the commit.
    fn begin_bulk(conn: &mut Self::Connection) -> impl Future<Output = Result<(), DbError>> + Send;

    /// Ends a bulk change (SQLite writes its one `B` row here; PostgreSQL
    /// marks the revision at commit).
    fn end_bulk(conn: &mut Self::Connection) -> impl Future<Output = Result<(), DbError>> + Send;

    /// Opens an import's transaction: bulk, and what the database needs to
    /// accept the tables in order (PostgreSQL registers the transaction so
    /// that an import writing nothing still gets a revision; SQLite defers
    /// foreign keys, since companies and users refer to each other).
    fn begin_import(
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), DbError>> + Send;

    /// Deletes every row of `tables` (children first).
    fn clear(
        conn: &mut Self::Connection,
        tables: &[&str],
    ) -> impl Future<Output = Result<(), DbError>> + Send;

    /// Inserts rows given column by column; an error names `table`.
    fn insert_columns(
        conn: &mut Self::Connection,
        table: &str,
        columns: &[(&str, Column)],
    ) -> impl Future<Output = Result<(), DbError>> + Send;

    /// Sets `companies.owner_id` for each (company, owner).
    fn set_owners(
        conn: &mut Self::Connection,
        owners: Vec<(String, String)>,
    ) -> impl Future<Output = Result<(), DbError>> + Send;

    /// Streams rows into `table` (PostgreSQL: `COPY`; SQLite: one prepared
    /// insert per row), calling `staged` with the running count now and then.
    fn copy_rows<'r, const N: usize>(
        conn: &mut Self::Connection,
        table: &str,
        columns: &[&str],
        rows: impl Iterator<Item = [Cell<'r>; N]> + Send,
        staged: impl FnMut(u64) + Send,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Whole committed transactions after revision `after` (at most a
    /// batch of them on PostgreSQL), or `None` when there are none.
    fn read_log(
        pool: &Pool<Self>,
        after: i64,
    ) -> impl Future<Output = Result<Option<LogBatch>, DbError>> + Send;

    /// Deletes the change log older than `older_than`, keeping the latest
    /// revision; returns the revisions of what went (one per transaction on
    /// PostgreSQL, one per change row on SQLite).
    fn prune_log(
        conn: &mut Self::Connection,
        older_than: Duration,
    ) -> impl Future<Output = Result<Vec<i64>, sqlx::Error>> + Send;
}

/// A ticket-limit window `[from, to]` in keys of [`Dialect::time_key`]:
/// rows keyed within `inside` (inclusive) lie in the window; rows keyed
/// within an `edges` range must be compared by their exact time; any other
/// row lies outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimeWindow<K> {
    pub inside: (K, K),
    pub edges: Option<[(K, K); 2]>,
}

/// Rows streamed between two calls of [`Dialect::copy_rows`]'s `staged`.
pub(crate) const STAGED_EVERY: u64 = 4096;

/// Reads a revision number, one `BIGINT` row of `sql` ([`Dialect::REVISION`],
/// the pruned floor), through `conn`: a `&Pool<D>` or an open transaction's
/// connection.
pub(crate) async fn fetch_revision<'c, D, E>(conn: E, sql: &'static str) -> Result<u64, DbError>
where
    D: Dialect,
    E: Executor<'c, Database = D>,
    D::Arguments: IntoArguments<D>,
    (i64,): for<'r> sqlx::FromRow<'r, D::Row>,
{
    let revision: i64 = sqlx::query_scalar(sql).fetch_one(conn).await?;
    Ok(u64::try_from(revision).unwrap_or(0))
}
