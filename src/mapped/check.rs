//! A mapping tried against the live source before anything is installed
//! or served: every followed table exists, is InnoDB and has the columns
//! the capture records; every query prepares and gives its entity's
//! columns. Each problem is a [`MappingError`] naming the file, the line
//! and the member, as the file's own checks do.

use std::collections::BTreeMap;

use sqlx::mysql::MySqlConnection;
use sqlx::postgres::PgConnection;

use super::MappedError;
use super::conn::{Conn, Described};
use crate::mapping::{Database, Determines, Mapping, MappingError, Params, SourceTable};

/// How a query is tried: as the derived table the follower's re-reads
/// select from, so a query that cannot be one fails here and not later.
pub(super) fn probe(sql: &str) -> String {
    format!("SELECT * FROM ({sql}\n) ta_m WHERE 1 = 0")
}

/// What the reads need to know of the live source: the columns each
/// entity's query gives and, on PostgreSQL, the SQL types a bound text
/// value is cast to when compared with a column (a text parameter is
/// never equal to an integer there, and a cast column would use no index).
#[derive(Debug, Clone, Default)]
pub struct Columns {
    given: BTreeMap<&'static str, Vec<&'static str>>,
    entity_types: BTreeMap<(&'static str, &'static str), String>,
    table_types: BTreeMap<(String, String), String>,
}

impl Columns {
    /// The columns `entity`'s query gives, in its order.
    pub fn get(&self, entity: &str) -> Option<&Vec<&'static str>> {
        self.given.get(entity)
    }

    /// PostgreSQL: the type of column `column` of `entity`'s query.
    pub(super) fn entity_type(&self, entity: &'static str, column: &'static str) -> Option<&str> {
        self.entity_types.get(&(entity, column)).map(String::as_str)
    }

    /// PostgreSQL: the type of column `column` of source table `table`.
    pub(super) fn table_type(&self, table: &str, column: &str) -> Option<&str> {
        self.table_types
            .get(&(table.to_owned(), column.to_owned()))
            .map(String::as_str)
    }
}

/// A type name as `format_type` spells it (`integer`, `character
/// varying`, `public."Status"`), accepted for a cast only when it holds
/// nothing but what type names are made of: it is written into SQL.
fn safe_type(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" _.\"[]".contains(&b));
    ok.then(|| name.to_owned())
}

/// A rule query as the follower runs it: on PostgreSQL each `:name` is
/// cast to the type of the table's column `name` and the first column is
/// read as text.
pub(super) fn rule_sql(
    database: Database,
    params: &Params,
    table: &str,
    columns: &Columns,
) -> String {
    match database {
        Database::MySql => params.render(Database::MySql),
        Database::Postgres => {
            let sql = postgres_rule(params, table, columns);
            format!("WITH ta_r(k) AS ({sql}\n) SELECT CAST(k AS TEXT) FROM ta_r")
        }
    }
}

/// The rule query with its parameters cast, before the text wrapper.
fn postgres_rule(params: &Params, table: &str, columns: &Columns) -> String {
    params.render_with(|n, name| match columns.table_type(table, name) {
        Some(t) => format!("CAST(${n} AS {t})"),
        None => format!("${n}"),
    })
}

/// The columns of a followed table (with their PostgreSQL types), or what
/// keeps the capture from following it.
async fn table_columns(
    conn: &mut Conn<'_>,
    table: &SourceTable,
) -> Result<Result<Vec<(String, Option<String>)>, String>, MappedError> {
    match conn {
        Conn::MySql(c) => mysql_table(c, &table.name).await,
        Conn::Postgres(c) => postgres_table(c, &table.name).await,
    }
}

async fn mysql_table(
    conn: &mut MySqlConnection,
    name: &str,
) -> Result<Result<Vec<(String, Option<String>)>, String>, MappedError> {
    let schema: Option<String> = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(&mut *conn)
        .await?;
    let schema = schema.unwrap_or_default();
    let found: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT TABLE_TYPE, ENGINE FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    match found {
        None => return Ok(Err(format!("no table `{name}` in database `{schema}`"))),
        Some((kind, _)) if kind != "BASE TABLE" => {
            return Ok(Err(format!(
                "`{name}` is a {}: triggers need a base table; follow the tables it reads",
                kind.to_lowercase()
            )));
        }
        Some((_, engine))
            if !engine
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case("InnoDB")) =>
        {
            return Ok(Err(format!(
                "`{name}` uses the {} engine: the capture needs InnoDB, whose writes commit and roll back with the triggers' log",
                engine.as_deref().unwrap_or("unknown")
            )));
        }
        Some(_) => {}
    }
    let present: Vec<String> = sqlx::query_scalar(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
    )
    .bind(name)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Ok(present.into_iter().map(|c| (c, None)).collect()))
}

/// The table the name resolves to on the search path, as the mapping's
/// queries and the capture's triggers resolve it.
async fn postgres_table(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Result<Vec<(String, Option<String>)>, String>, MappedError> {
    let found: Option<(String, String)> = sqlx::query_as(
        "SELECT c.relkind::text, n.nspname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.oid = to_regclass(quote_ident($1))",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    match found.as_ref().map(|(k, _)| k.as_str()) {
        None => {
            let path: String = sqlx::query_scalar("SELECT current_setting('search_path')")
                .fetch_one(&mut *conn)
                .await?;
            return Ok(Err(format!(
                "no table `{name}` on the search path ({path})"
            )));
        }
        Some("r" | "p") => {}
        Some(kind) => {
            let what = match kind {
                "v" => "view",
                "m" => "materialized view",
                "f" => "foreign table",
                _ => "relation that is not a table",
            };
            return Ok(Err(format!(
                "`{name}` is a {what}: triggers need a base table; follow the tables it reads"
            )));
        }
    }
    let present: Vec<(String, String)> = sqlx::query_as(
        "SELECT a.attname::text, format_type(a.atttypid, NULL) FROM pg_attribute a \
         WHERE a.attrelid = to_regclass(quote_ident($1)) AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attnum",
    )
    .bind(name)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Ok(present
        .into_iter()
        .map(|(c, t)| (c, safe_type(&t)))
        .collect()))
}

/// PostgreSQL: the type names of the OIDs a statement's columns have.
async fn type_names(
    conn: &mut Conn<'_>,
    described: &[Described],
) -> Result<BTreeMap<u32, String>, MappedError> {
    let Conn::Postgres(c) = conn else {
        return Ok(BTreeMap::new());
    };
    let oids: Vec<i64> = described
        .iter()
        .filter_map(|d| d.oid.map(i64::from))
        .collect();
    let named: Vec<(i64, String)> =
        sqlx::query_as("SELECT o, format_type(o::oid, NULL) FROM unnest($1::int8[]) AS o")
            .bind(oids)
            .fetch_all(&mut **c)
            .await?;
    Ok(named
        .into_iter()
        .filter_map(|(o, t)| Some((u32::try_from(o).ok()?, safe_type(&t)?)))
        .collect())
}

/// Checks `mapping` against the database `conn` is connected to; the
/// columns each query gives.
pub(super) async fn check(conn: &mut Conn<'_>, mapping: &Mapping) -> Result<Columns, MappedError> {
    let invalid = |line: usize, at: String, problem: String| {
        MappedError::Mapping(MappingError::Invalid {
            file: mapping.file.clone(),
            line,
            at,
            problem,
        })
    };
    let database = conn.database();
    let mut out = Columns::default();
    for table in mapping.tables.values() {
        let present = match table_columns(conn, table).await? {
            Ok(present) => present,
            Err(problem) => {
                return Err(invalid(
                    table.line,
                    format!("tables.{}", table.name),
                    problem,
                ));
            }
        };
        for (column, kind) in &present {
            if let Some(kind) = kind {
                out.table_types
                    .insert((table.name.clone(), column.clone()), kind.clone());
            }
        }
        for rule in &table.rules {
            let (member, names): (&str, Vec<&str>) = match &rule.how {
                Determines::Column(c) => ("column", vec![c.as_str()]),
                Determines::Query(p) => ("query", p.names().collect()),
            };
            let at = format!("tables.{}.{}.{member}", table.name, rule.entity.name);
            if let Some(missing) = names
                .iter()
                .find(|n| !present.iter().any(|(p, _)| p.eq_ignore_ascii_case(n)))
            {
                return Err(invalid(
                    rule.line,
                    at,
                    format!("no column `{missing}` in table `{}`", table.name),
                ));
            }
            if let Determines::Query(params) = &rule.how {
                let sql = match database {
                    Database::MySql => params.render(Database::MySql),
                    Database::Postgres => postgres_rule(params, &table.name, &out),
                };
                match conn.describe(sql).await {
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
    for query in mapping.entities.values() {
        let entity = query.entity;
        let at = format!("entities.{}.query", entity.name);
        let described = match conn.describe(probe(&query.sql)).await {
            Ok(cols) => cols,
            Err(e) => return Err(invalid(query.line, at, format!("the query fails: {e}"))),
        };
        let types = type_names(conn, &described).await?;
        let gives: Vec<String> = described.iter().map(|d| d.name.clone()).collect();
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
        let mut names = Vec::new();
        for d in &described {
            let Some(column) = entity.column(&d.name) else {
                continue;
            };
            names.push(column.name);
            if let Some(kind) = d.oid.and_then(|o| types.get(&o)) {
                out.entity_types
                    .insert((entity.name, column.name), kind.clone());
            }
        }
        out.given.insert(entity.name, names);
    }
    Ok(out)
}
