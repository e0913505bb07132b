//! Reading a mapping's entities from the source: each query as a derived
//! table with every column cast to text, so that one decoding serves every
//! SQL type and both of MySQL's protocols; all rows, or those whose column
//! holds one of some values (a re-read by key, bound, never spliced).

use std::collections::BTreeMap;

use sqlx::mysql::MySqlConnection;
use sqlx::{AssertSqlSafe, Row};

use super::MappedError;
use super::check::Columns;
use super::decode::Rows;
use crate::mapping::{EntityQuery, Mapping};

/// Values bound in one `IN (…)`: far below MySQL's 65,535 placeholders.
const CHUNK: usize = 1000;

/// The query's rows, as text, where `column` is one of `values` (or all).
fn select_sql(
    query: &EntityQuery,
    columns: &[&'static str],
    filter: Option<(&str, usize)>,
) -> String {
    let cols: Vec<String> = columns
        .iter()
        .map(|c| format!("CAST(ta_m.`{c}` AS CHAR) AS `{c}`"))
        .collect();
    // Column names are our entities' (constants); the query is the
    // mapping's, which its author wrote for this database.
    let mut sql = format!("SELECT {} FROM ({}\n) ta_m", cols.join(", "), query.sql);
    if let Some((column, n)) = filter {
        let marks = vec!["?"; n].join(", ");
        sql.push_str(&format!(" WHERE ta_m.`{column}` IN ({marks})"));
    }
    sql
}

async fn fetch(
    conn: &mut MySqlConnection,
    sql: String,
    values: &[String],
) -> Result<Vec<Vec<Option<String>>>, MappedError> {
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for v in values {
        q = q.bind(v);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.try_get::<Option<String>, _>(i).map_err(MappedError::from))
                .collect()
        })
        .collect()
}

/// Every row of every entity the mapping gives.
pub(super) async fn read_all(
    conn: &mut MySqlConnection,
    mapping: &Mapping,
    columns: &Columns,
) -> Result<BTreeMap<&'static str, Rows>, MappedError> {
    let mut out = BTreeMap::new();
    for (name, query) in &mapping.entities {
        let cols = columns.get(name).cloned().unwrap_or_default();
        let started = std::time::Instant::now();
        let rows = fetch(conn, select_sql(query, &cols, None), &[]).await?;
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
    conn: &mut MySqlConnection,
    query: &EntityQuery,
    columns: &[&'static str],
    column: &str,
    values: &[String],
) -> Result<Rows, MappedError> {
    let mut rows = Vec::new();
    for chunk in values.chunks(CHUNK) {
        let sql = select_sql(query, columns, Some((column, chunk.len())));
        rows.extend(fetch(conn, sql, chunk).await?);
    }
    Ok(Rows {
        columns: columns.to_vec(),
        rows,
    })
}
