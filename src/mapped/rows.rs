//! Reading a mapping's entities from the source: each query as a derived
//! table with every column cast to text, so that one decoding serves every
//! SQL type and both of MySQL's protocols; all rows, or those whose column
//! holds one of some values (a re-read by key, bound, never spliced).

use std::collections::BTreeMap;

use super::MappedError;
use super::check::Columns;
use super::conn::{Conn, as_text, quoted};
use super::decode::Rows;
use crate::mapping::{Database, EntityQuery, Mapping};

/// Values bound in one MySQL `IN (…)`: far below its 65,535 placeholders.
/// PostgreSQL takes any number as one array.
const CHUNK: usize = 1000;

/// The query's rows, as text, where `column` is one of `n` values (or
/// all). On PostgreSQL the values come as one `text[]`, cast to the
/// column's type so that an index on it serves; a column whose type has
/// no name fit to write is compared as text instead.
fn select_sql(
    database: Database,
    columns: &Columns,
    query: &EntityQuery,
    given: &[&'static str],
    filter: Option<(&'static str, usize)>,
) -> String {
    let cols: Vec<String> = given
        .iter()
        .map(|c| {
            let name = quoted(database, c);
            format!("{} AS {name}", as_text(database, &format!("ta_m.{name}")))
        })
        .collect();
    // Column names are our entities' (constants); the query is the
    // mapping's, which its author wrote for this database.
    let mut sql = format!("SELECT {} FROM ({}\n) ta_m", cols.join(", "), query.sql);
    if let Some((column, n)) = filter {
        let name = format!("ta_m.{}", quoted(database, column));
        match database {
            Database::MySql => {
                let marks = vec!["?"; n].join(", ");
                sql.push_str(&format!(" WHERE {name} IN ({marks})"));
            }
            Database::Postgres => match columns.entity_type(query.entity.name, column) {
                Some(kind) => sql.push_str(&format!(" WHERE {name} = ANY(CAST($1 AS {kind}[]))")),
                None => sql.push_str(&format!(" WHERE {} = ANY($1)", as_text(database, &name))),
            },
        }
    }
    sql
}

/// Every row of every entity the mapping gives.
pub(super) async fn read_all(
    conn: &mut Conn<'_>,
    mapping: &Mapping,
    columns: &Columns,
) -> Result<BTreeMap<&'static str, Rows>, MappedError> {
    let database = conn.database();
    let mut out = BTreeMap::new();
    for (name, query) in &mapping.entities {
        let cols = columns.get(name).cloned().unwrap_or_default();
        let started = std::time::Instant::now();
        let sql = select_sql(database, columns, query, &cols, None);
        let rows = conn.text_rows(sql, &[], None).await?;
        tracing::debug!(
            entity = name,
            rows = rows.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "read"
        );
        out.insert(
            *name,
            Rows {
                columns: cols,
                rows,
            },
        );
    }
    Ok(out)
}

/// The rows of one entity whose `column` holds one of `values`.
pub(super) async fn read_where(
    conn: &mut Conn<'_>,
    columns: &Columns,
    query: &EntityQuery,
    given: &[&'static str],
    column: &'static str,
    values: &[String],
) -> Result<Rows, MappedError> {
    let database = conn.database();
    let mut rows = Vec::new();
    match database {
        Database::MySql => {
            for chunk in values.chunks(CHUNK) {
                let sql = select_sql(database, columns, query, given, Some((column, chunk.len())));
                let bound: Vec<Option<String>> = chunk.iter().cloned().map(Some).collect();
                rows.extend(conn.text_rows(sql, &bound, None).await?);
            }
        }
        Database::Postgres => {
            let sql = select_sql(
                database,
                columns,
                query,
                given,
                Some((column, values.len())),
            );
            rows = conn.text_rows(sql, &[], Some(values)).await?;
        }
    }
    Ok(Rows {
        columns: given.to_vec(),
        rows,
    })
}
