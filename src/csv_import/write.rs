//! Writes checked rows in one transaction: into temporary staging tables
//! (PostgreSQL: `COPY`; SQLite: one prepared insert per row), compared with
//! the stored rows in one query, then set-based upserts whose `WHERE … IS
//! DISTINCT FROM …` leaves unchanged rows untouched, so that they fire no
//! trigger and record no change. A dry run, or a file that changes
//! nothing, rolls back after the comparison.

// Dynamic SQL here comes from `sql.rs` and this module's constants; every
// value from the file is a bound parameter or travels through COPY.
use sqlx::{AssertSqlSafe, Encode, Executor, FromRow, IntoArguments, Pool, Transaction, Type};

use super::sql::{
    DOMAINS, GRANTS, ITSM_USERS, MEMBERSHIPS, ORGANISATIONS, PORTAL_ORGANISATIONS, PORTAL_USERS,
    Stage, USERS, count_sql, delete_children_sql, insert_children_sql, upsert_sql,
};
use super::{CsvError, Format, Options, OrgRow, Progress, Rows, UserRow};
use crate::db::{Cell, Database, DbError, Dialect, fetch_revision};
use crate::model::ALL_GROUPS;
use crate::time::Timestamp;

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
    match db {
        Database::Postgres(pool) => Tx::write(pool, rows, options, now, progress).await,
        Database::Sqlite(pool) => Tx::write(pool, rows, options, now, progress).await,
    }
}

/// The import's transaction.
struct Tx<D: Dialect>(Transaction<'static, D>);

impl<D> Tx<D>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    D::Arguments: IntoArguments<D>,
    (i64,): for<'r> FromRow<'r, D::Row>,
    (i64, i64): for<'r> FromRow<'r, D::Row>,
    for<'q> Option<&'q str>: Encode<'q, D> + Type<D>,
{
    /// Runs one statement built from this module's constants; `binds` are
    /// `$1`, `$2`, ….
    async fn run(&mut self, what: &str, sql: &str, binds: &[Option<&str>]) -> Result<(), DbError> {
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for bind in binds {
            query = query.bind(*bind);
        }
        query
            .execute(&mut *self.0)
            .await
            .map_err(|e| DbError::Import(format!("{what}: {e}")))?;
        Ok(())
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
        let sql = format!(
            "CREATE TEMP TABLE {} ({}{key}){}",
            stage.name,
            columns.join(", "),
            D::TEMP_ON_COMMIT
        );
        self.run(stage.name, &sql, &[]).await?;
        if let Some(index) = index {
            self.run(stage.name, &index, &[]).await?;
        }
        Ok(())
    }

    async fn drop_stages(&mut self, stages: &[&Stage]) -> Result<(), DbError> {
        for stage in stages {
            if let Some(sql) = D::drop_temp(stage.name) {
                self.run(stage.name, &sql, &[]).await?;
            }
        }
        Ok(())
    }

    /// Copies rows into a staging table.
    async fn stage<'r, const N: usize>(
        &mut self,
        stage: &Stage,
        rows: impl Iterator<Item = [Cell<'r>; N]> + Send,
        progress: Option<&Progress>,
    ) -> Result<(), DbError> {
        let names: Vec<&str> = stage.columns.iter().map(|(n, _)| *n).collect();
        D::copy_rows(&mut self.0, stage.name, &names, rows, |staged| {
            progress.inspect(|p| p.staged(staged));
        })
        .await
        .map_err(|e| DbError::Import(format!("{}: {e}", stage.name)))
    }

    /// Planner statistics for the staged rows, where the database does not
    /// gather them by itself.
    async fn analyze(&mut self, stages: &[&Stage]) -> Result<(), DbError> {
        for stage in stages {
            if let Some(sql) = D::analyze_temp(stage.name) {
                self.run(stage.name, &sql, &[]).await?;
            }
        }
        Ok(())
    }

    async fn counts(&mut self, sql: &str) -> Result<(usize, usize), DbError> {
        let (new, changed): (i64, i64) = sqlx::query_as(AssertSqlSafe(sql))
            .fetch_one(&mut *self.0)
            .await
            .map_err(|e| DbError::Import(format!("comparing: {e}")))?;
        let count = |n: i64| usize::try_from(n).unwrap_or(0);
        Ok((count(new), count(changed)))
    }

    async fn finish(self, commit: bool) -> Result<(), DbError> {
        if commit {
            self.0.commit().await?;
        } else {
            self.0.rollback().await?;
        }
        Ok(())
    }

    /// [`apply`] on one dialect.
    async fn write(
        pool: &Pool<D>,
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
        let mut tx = Tx(pool.begin().await.map_err(DbError::from)?);
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
                D::begin_bulk(&mut tx.0).await?;
            }
            let time = now.to_string();
            let upsert = upsert_sql(target, &D::time_param(1));
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
                let insert = insert_children_sql(child, &D::time_param(1));
                let binds = if child.added_at.is_some() {
                    vec![Some(time.as_str())]
                } else {
                    Vec::new()
                };
                tx.run(child.table, &insert, &binds).await?;
            }
            if bulk {
                D::end_bulk(&mut tx.0).await?;
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
            revision: fetch_revision(pool, D::REVISION).await?,
        })
    }
}
