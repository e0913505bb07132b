//! Writes checked rows in one transaction: into temporary staging tables
//! (PostgreSQL: `COPY`; SQLite: one prepared insert per row), compared with
//! the stored rows in one query, then set-based upserts whose `WHERE … IS
//! DISTINCT FROM …` leaves unchanged rows untouched, so that they fire no
//! trigger and record no change. A dry run, or a file that changes
//! nothing, rolls back after the comparison.

// Dynamic SQL here comes from `sql.rs` and this module's constants; every
// value from the file is a bound parameter or travels through COPY.
use std::sync::Arc;

use sqlx::{AssertSqlSafe, Postgres, Sqlite, Transaction};

use super::sql::{
    DOMAINS, GRANTS, ITSM_USERS, MEMBERSHIPS, ORGANISATIONS, PORTAL_ORGANISATIONS, PORTAL_USERS,
    Stage, USERS, count_sql, delete_children_sql, insert_children_sql, upsert_sql,
};
use super::{CsvError, Format, Options, OrgRow, Progress, Rows, UserRow};
use crate::db::{Database, DbError};
use crate::model::ALL_GROUPS;
use crate::time::Timestamp;

/// A staged value.
#[derive(Debug, Clone, Copy)]
enum Cell<'a> {
    Text(Option<&'a str>),
    Bool(Option<bool>),
}

fn user_cells(u: &UserRow) -> [Cell<'_>; 8] {
    [
        Cell::Text(Some(&u.id)),
        Cell::Text(u.email.as_deref()),
        Cell::Text(u.name.as_deref()),
        Cell::Text(u.kind.map(|k| k.name())),
        Cell::Bool(u.suspended),
        Cell::Text(u.ticket_access.map(|a| a.name())),
        Cell::Text(u.default_organisation.as_deref()),
        Cell::Text(u.company.as_deref()),
    ]
}

fn organisation_cells(o: &OrgRow) -> [Cell<'_>; 3] {
    [
        Cell::Text(Some(&o.id)),
        Cell::Text(Some(&o.name)),
        Cell::Text(o.ticket_access.map(|a| a.name())),
    ]
}

/// One row in PostgreSQL's COPY text format.
fn copy_line(out: &mut Vec<u8>, cells: &[Cell<'_>]) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match cell {
            Cell::Text(None) | Cell::Bool(None) => out.extend_from_slice(b"\\N"),
            Cell::Bool(Some(b)) => out.push(if *b { b't' } else { b'f' }),
            Cell::Text(Some(text)) => {
                for byte in text.bytes() {
                    match byte {
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        b'\r' => out.extend_from_slice(b"\\r"),
                        other => out.push(other),
                    }
                }
            }
        }
    }
    out.push(b'\n');
}

/// COPY data is sent in pieces of about this size.
const COPY_CHUNK: usize = 1 << 20;

/// Rows staged between two progress updates.
const PROGRESS_EVERY: u64 = 4096;

/// The import's transaction, on either kind of database.
enum Tx {
    Pg(Transaction<'static, Postgres>),
    Lite(Transaction<'static, Sqlite>),
}

/// Runs the same code against either transaction (each arm is typed for
/// its own database).
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            Tx::Pg($conn) => $body,
            Tx::Lite($conn) => $body,
        }
    };
}

impl Tx {
    async fn begin(db: &Database) -> Result<Tx, DbError> {
        Ok(match db {
            Database::Postgres(pool) => Tx::Pg(pool.begin().await?),
            Database::Sqlite(pool) => Tx::Lite(pool.begin().await?),
        })
    }

    /// Runs one statement built from this module's constants; `binds` are
    /// `$1`, `$2`, ….
    async fn run(&mut self, what: &str, sql: &str, binds: &[Option<&str>]) -> Result<u64, DbError> {
        let result = on_tx!(self, tx => {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for bind in binds {
                query = query.bind(*bind);
            }
            query.execute(&mut **tx).await.map(|done| done.rows_affected())
        });
        result.map_err(|e| DbError::Import(format!("{what}: {e}")))
    }

    /// The import time as SQL: a bound RFC 3339 text, typed where needed.
    fn time_param(&self) -> &'static str {
        match self {
            Tx::Pg(_) => "CAST($1 AS timestamptz)",
            Tx::Lite(_) => "$1",
        }
    }

    async fn create(&mut self, stage: &Stage) -> Result<(), DbError> {
        let columns: Vec<String> = stage
            .columns
            .iter()
            .map(|(name, ty)| format!("{name} {ty}"))
            .collect();
        let key = match stage.columns.get(..stage.key) {
            Some(key) if !key.is_empty() => {
                let names: Vec<&str> = key.iter().map(|(n, _)| *n).collect();
                format!(", PRIMARY KEY ({})", names.join(", "))
            }
            _ => String::new(),
        };
        let index = match stage.columns.first() {
            Some((first, _)) if stage.key == 0 => Some(format!(
                "CREATE INDEX {name}_{first} ON {name} ({first})",
                name = stage.name
            )),
            _ => None,
        };
        // PostgreSQL drops the table with the transaction; SQLite keeps
        // temporary tables for the connection, so `drop_stages` removes them.
        let on_commit = match self {
            Tx::Pg(_) => " ON COMMIT DROP",
            Tx::Lite(_) => "",
        };
        let sql = format!(
            "CREATE TEMP TABLE {} ({}{key}){on_commit}",
            stage.name,
            columns.join(", ")
        );
        self.run(stage.name, &sql, &[]).await?;
        if let Some(index) = index {
            self.run(stage.name, &index, &[]).await?;
        }
        Ok(())
    }

    async fn drop_stages(&mut self, stages: &[&Stage]) -> Result<(), DbError> {
        if let Tx::Lite(_) = self {
            for stage in stages {
                let sql = format!("DROP TABLE IF EXISTS temp.{}", stage.name);
                self.run(stage.name, &sql, &[]).await?;
            }
        }
        Ok(())
    }

    /// Copies rows into a staging table.
    async fn stage<'r, const N: usize>(
        &mut self,
        stage: &Stage,
        rows: impl Iterator<Item = [Cell<'r>; N]>,
        progress: Option<&Progress>,
    ) -> Result<(), DbError> {
        let names: Vec<&str> = stage.columns.iter().map(|(n, _)| *n).collect();
        let fail = |e: sqlx::Error| DbError::Import(format!("{}: {e}", stage.name));
        let mut staged = 0u64;
        match self {
            Tx::Pg(tx) => {
                let sql = format!("COPY {} ({}) FROM STDIN", stage.name, names.join(", "));
                let mut copy = tx.copy_in_raw(&sql).await.map_err(fail)?;
                let mut buffer = Vec::with_capacity(COPY_CHUNK + 4096);
                for row in rows {
                    copy_line(&mut buffer, &row);
                    if buffer.len() >= COPY_CHUNK {
                        copy.send(buffer.as_slice()).await.map_err(fail)?;
                        buffer.clear();
                    }
                    staged += 1;
                    if staged.is_multiple_of(PROGRESS_EVERY) {
                        progress.inspect(|p| p.staged(staged));
                    }
                }
                copy.send(buffer.as_slice()).await.map_err(fail)?;
                copy.finish().await.map_err(fail)?;
            }
            Tx::Lite(tx) => {
                let marks: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
                let sql: Arc<str> = Arc::from(format!(
                    "INSERT INTO {} ({}) VALUES ({})",
                    stage.name,
                    names.join(", "),
                    marks.join(", ")
                ));
                for row in rows {
                    let mut query = sqlx::query(AssertSqlSafe(Arc::clone(&sql)));
                    for cell in row {
                        query = match cell {
                            Cell::Text(text) => query.bind(text),
                            Cell::Bool(flag) => query.bind(flag),
                        };
                    }
                    query.execute(&mut **tx).await.map_err(fail)?;
                    staged += 1;
                    if staged.is_multiple_of(PROGRESS_EVERY) {
                        progress.inspect(|p| p.staged(staged));
                    }
                }
            }
        }
        Ok(())
    }

    /// Planner statistics for the staged rows (PostgreSQL does not gather
    /// them for temporary tables by itself).
    async fn analyze(&mut self, stages: &[&Stage]) -> Result<(), DbError> {
        if let Tx::Pg(_) = self {
            for stage in stages {
                self.run(stage.name, &format!("ANALYZE {}", stage.name), &[])
                    .await?;
            }
        }
        Ok(())
    }

    async fn counts(&mut self, sql: &str) -> Result<(usize, usize), DbError> {
        let (new, changed): (i64, i64) = on_tx!(self, tx => {
            sqlx::query_as::<_, (i64, i64)>(AssertSqlSafe(sql)).fetch_one(&mut **tx).await
        })
        .map_err(|e| DbError::Import(format!("comparing: {e}")))?;
        let count = |n: i64| usize::try_from(n).unwrap_or(0);
        Ok((count(new), count(changed)))
    }

    async fn begin_bulk(&mut self) -> Result<(), DbError> {
        match self {
            Tx::Pg(tx) => crate::db::bulk_pg(tx).await,
            Tx::Lite(tx) => crate::db::begin_bulk_sqlite(tx).await,
        }
    }

    async fn end_bulk(&mut self) -> Result<(), DbError> {
        match self {
            Tx::Pg(_) => Ok(()),
            Tx::Lite(tx) => crate::db::end_bulk_sqlite(tx).await,
        }
    }

    async fn finish(self, commit: bool) -> Result<(), DbError> {
        on_tx!(self, tx => if commit { tx.commit().await } else { tx.rollback().await })?;
        Ok(())
    }
}

/// What the write found and did.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub new: usize,
    pub changed: usize,
    pub written: bool,
    pub bulk: bool,
    pub revision: u64,
}

/// Stages `rows`, compares them with the database and, unless this is a
/// dry run or nothing would change, writes them.
pub(crate) async fn apply(
    db: &Database,
    rows: &Rows,
    options: &Options,
    now: Timestamp,
    progress: &Progress,
) -> Result<Outcome, CsvError> {
    let target = match options.format {
        Format::PortalUsers => &PORTAL_USERS,
        Format::ItsmUsers => &ITSM_USERS,
        Format::PortalOrganisations => &PORTAL_ORGANISATIONS,
    };
    let mut stages = vec![target.stage];
    stages.extend(target.children.iter().map(|c| c.stage));
    let mut tx = Tx::begin(db).await?;
    for stage in &stages {
        tx.create(stage).await?;
    }
    progress.start_staging(u64::try_from(rows.len()).unwrap_or(u64::MAX));
    match rows {
        Rows::Users(users) => {
            tx.stage(&USERS, users.iter().map(user_cells), Some(progress))
                .await?;
            let memberships = users.iter().flat_map(|u| {
                u.organisations
                    .iter()
                    .map(|o| [Cell::Text(Some(&u.id)), Cell::Text(Some(o))])
            });
            tx.stage(&MEMBERSHIPS, memberships, None).await?;
            if let Some(grant) = &options.grant {
                let group = (grant.group != ALL_GROUPS).then_some(grant.group.as_str());
                let sql = format!(
                    "INSERT INTO {} (user_id, profile_id, group_id) SELECT id, $1, $2 FROM {}",
                    GRANTS.name, USERS.name
                );
                tx.run(GRANTS.name, &sql, &[Some(grant.profile.as_str()), group])
                    .await?;
            }
        }
        Rows::Organisations(organisations) => {
            tx.stage(
                &ORGANISATIONS,
                organisations.iter().map(organisation_cells),
                Some(progress),
            )
            .await?;
            let domains = organisations.iter().flat_map(|o| {
                o.domains
                    .iter()
                    .map(|d| [Cell::Text(Some(&o.id)), Cell::Text(Some(d))])
            });
            tx.stage(&DOMAINS, domains, None).await?;
        }
    }
    tx.analyze(&stages).await?;
    progress.step("comparing");
    let (new, changed) = tx.counts(&count_sql(target)).await?;
    let written = !options.dry_run && new + changed > 0;
    let bulk = written && new + changed > options.bulk_threshold;
    if written {
        progress.step("writing");
        if bulk {
            tx.begin_bulk().await?;
        }
        let time = now.to_string();
        let upsert = upsert_sql(target, tx.time_param());
        let binds = if target.created_at.is_some() {
            vec![Some(time.as_str())]
        } else {
            Vec::new()
        };
        tx.run(target.table, &upsert, &binds).await?;
        for child in target.children {
            if child.replace {
                tx.run(child.table, &delete_children_sql(child), &[])
                    .await?;
            }
            let insert = insert_children_sql(child, tx.time_param());
            let binds = if child.added_at.is_some() {
                vec![Some(time.as_str())]
            } else {
                Vec::new()
            };
            tx.run(child.table, &insert, &binds).await?;
        }
        if bulk {
            tx.end_bulk().await?;
        }
    }
    tx.drop_stages(&stages).await?;
    tx.finish(written).await?;
    progress.end();
    Ok(Outcome {
        new,
        changed,
        written,
        bulk,
        revision: db.revision().await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_what_copy_reads_specially() {
        let mut out = Vec::new();
        copy_line(
            &mut out,
            &[
                Cell::Text(Some("a\tb\\c\nd")),
                Cell::Text(None),
                Cell::Bool(Some(true)),
            ],
        );
        assert_eq!(out, b"a\\tb\\\\c\\nd\t\\N\tt\n");
    }
}
