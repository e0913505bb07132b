//! A mapping tried against the live source before anything is installed
//! or served: every followed table exists, is InnoDB and has the columns
//! the capture records; every query prepares and gives its entity's
//! columns. Each problem is a [`MappingError`] naming the file, the line
//! and the member, as the file's own checks do.

use std::collections::BTreeMap;

use sqlx::mysql::MySqlConnection;
use sqlx::{AssertSqlSafe, Column, Executor, SqlSafeStr, Statement};

use super::MappedError;
use crate::mapping::{Database, Determines, Mapping, MappingError};

/// How a query is tried: as the derived table the follower's re-reads
/// select from, so a query that cannot be one fails here and not later.
pub(super) fn probe(sql: &str) -> String {
    format!("SELECT * FROM ({sql}\n) ta_m WHERE 1 = 0")
}

/// The column names a statement gives, or the database's complaint.
async fn columns(conn: &mut MySqlConnection, sql: String) -> Result<Vec<String>, String> {
    match conn.prepare(AssertSqlSafe(sql).into_sql_str()).await {
        Ok(statement) => Ok(statement
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect()),
        Err(sqlx::Error::Database(e)) => Err(e.message().to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// The columns each entity's query gives, in its order (by entity).
pub type Columns = BTreeMap<&'static str, Vec<&'static str>>;

/// Checks `mapping` against the database `conn` is connected to; the
/// columns each query gives.
pub async fn check(conn: &mut MySqlConnection, mapping: &Mapping) -> Result<Columns, MappedError> {
    let invalid = |line: usize, at: String, problem: String| {
        MappedError::Mapping(MappingError::Invalid {
            file: mapping.file.clone(),
            line,
            at,
            problem,
        })
    };
    let schema: Option<String> = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(&mut *conn)
        .await?;
    let schema = schema.unwrap_or_default();
    for table in mapping.tables.values() {
        let found: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT TABLE_TYPE, ENGINE FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
        )
        .bind(&table.name)
        .fetch_optional(&mut *conn)
        .await?;
        let at = format!("tables.{}", table.name);
        match found {
            None => {
                return Err(invalid(
                    table.line,
                    at,
                    format!("no table `{}` in database `{schema}`", table.name),
                ));
            }
            Some((kind, _)) if kind != "BASE TABLE" => {
                return Err(invalid(
                    table.line,
                    at,
                    format!(
                        "`{}` is a {}: triggers need a base table; follow the tables it reads",
                        table.name,
                        kind.to_lowercase()
                    ),
                ));
            }
            Some((_, engine))
                if !engine
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case("InnoDB")) =>
            {
                return Err(invalid(
                    table.line,
                    at,
                    format!(
                        "`{}` uses the {} engine: the capture needs InnoDB, whose writes commit and roll back with the triggers' log",
                        table.name,
                        engine.as_deref().unwrap_or("unknown")
                    ),
                ));
            }
            Some(_) => {}
        }
        let present: Vec<String> = sqlx::query_scalar(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
        )
        .bind(&table.name)
        .fetch_all(&mut *conn)
        .await?;
        for rule in &table.rules {
            let (member, names): (&str, Vec<&str>) = match &rule.how {
                Determines::Column(c) => ("column", vec![c.as_str()]),
                Determines::Query(p) => ("query", p.names().collect()),
            };
            let at = format!("tables.{}.{}.{member}", table.name, rule.entity.name);
            if let Some(missing) = names
                .iter()
                .find(|n| !present.iter().any(|p| p.eq_ignore_ascii_case(n)))
            {
                return Err(invalid(
                    rule.line,
                    at,
                    format!("no column `{missing}` in table `{}`", table.name),
                ));
            }
            if let Determines::Query(params) = &rule.how {
                let sql = params.render(Database::MySql);
                match columns(conn, sql).await {
                    Err(e) => return Err(invalid(rule.line, at, format!("the query fails: {e}"))),
                    Ok(cols) if cols.len() != 1 => {
                        return Err(invalid(
                            rule.line,
                            at,
                            format!(
                                "the query gives {} columns; it must give one, the {} keys",
                                cols.len(),
                                rule.entity.key
                            ),
                        ));
                    }
                    Ok(_) => {}
                }
            }
        }
    }
    let mut out = Columns::new();
    for query in mapping.entities.values() {
        let entity = query.entity;
        let at = format!("entities.{}.query", entity.name);
        let gives = match columns(conn, probe(&query.sql)).await {
            Ok(cols) => cols,
            Err(e) => return Err(invalid(query.line, at, format!("the query fails: {e}"))),
        };
        let listed = |names: &mut dyn Iterator<Item = &str>| names.collect::<Vec<_>>().join(", ");
        if let Some(extra) = gives.iter().find(|g| entity.column(g).is_none()) {
            return Err(invalid(
                query.line,
                at,
                format!(
                    "the query gives a column `{extra}`, which {} does not have (it has {})",
                    entity.name,
                    listed(&mut entity.columns.iter().map(|c| c.name))
                ),
            ));
        }
        if let Some(missing) = entity
            .columns
            .iter()
            .find(|c| c.required && !gives.iter().any(|g| g == c.name))
        {
            return Err(invalid(
                query.line,
                at,
                format!(
                    "the query gives no column `{}`, which {} requires (it gives {})",
                    missing.name,
                    entity.name,
                    listed(&mut gives.iter().map(String::as_str))
                ),
            ));
        }
        let names = gives
            .iter()
            .filter_map(|g| entity.column(g).map(|c| c.name))
            .collect();
        out.insert(entity.name, names);
    }
    Ok(out)
}
