//! Writes checked rows in one transaction: into temporary staging tables
//! (PostgreSQL: `COPY`; SQLite: one prepared insert per row), compared with
//! the stored rows in one query, then set-based upserts whose `WHERE … IS
//! DISTINCT FROM …` leaves unchanged rows untouched, so that they fire no
//! trigger and record no change. A dry run, or a file that changes
//! nothing, rolls back after the comparison.

// Dynamic SQL here is assembled from this module's table, column and
// expression constants only; every value from the file is a bound
// parameter or travels through COPY.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sqlx::{AssertSqlSafe, Postgres, Sqlite, Transaction};

use super::{CsvError, Format, Options, OrgRow, Progress, Rows, UserRow};
use crate::db::{Database, DbError};
use crate::model::ALL_GROUPS;
use crate::time::Timestamp;

/// What rows may refer to, read from the database before the file.
#[derive(Debug, Default)]
pub(crate) struct Known {
    organisation_ids: HashSet<String>,
    /// Lower-cased name → ids (names need not be unique).
    organisation_names: HashMap<String, Vec<String>>,
    companies: HashSet<String>,
}

/// Runs one read-only statement on either kind of database.
macro_rules! fetch_all {
    ($db:expr, $query:expr) => {
        match $db {
            Database::Postgres(pool) => $query.fetch_all(pool).await,
            Database::Sqlite(pool) => $query.fetch_all(pool).await,
        }
        .map_err(DbError::from)
    };
}

/// Whether a `count(*)` query for `id` finds a row.
async fn exists(db: &Database, sql: &'static str, id: &str) -> Result<bool, DbError> {
    let counts: Vec<i64> = fetch_all!(db, sqlx::query_scalar(sql).bind(id))?;
    Ok(counts.first().is_some_and(|n| *n > 0))
}

impl Known {
    pub(crate) async fn read(db: &Database, options: &Options) -> Result<Known, CsvError> {
        let mut known = Known::default();
        match options.format {
            Format::PortalUsers => {
                let rows: Vec<(String, String)> =
                    fetch_all!(db, sqlx::query_as("SELECT id, name FROM organisations"))?;
                for (id, name) in rows {
                    known
                        .organisation_names
                        .entry(name.trim().to_lowercase())
                        .or_default()
                        .push(id.clone());
                    known.organisation_ids.insert(id);
                }
            }
            Format::ItsmUsers => {
                let ids: Vec<String> =
                    fetch_all!(db, sqlx::query_scalar("SELECT id FROM companies"))?;
                known.companies = ids.into_iter().collect();
                if let Some(grant) = &options.grant {
                    let profiles = "SELECT count(*) FROM profiles WHERE id = $1";
                    if !exists(db, profiles, &grant.profile).await? {
                        return Err(CsvError::Option {
                            flag: "--profile",
                            message: format!("unknown profile `{}`", grant.profile),
                        });
                    }
                    let groups = "SELECT count(*) FROM groups WHERE id = $1";
                    if grant.group != ALL_GROUPS && !exists(db, groups, &grant.group).await? {
                        return Err(CsvError::Option {
                            flag: "--group",
                            message: format!(
                                "unknown group `{}` (`*` means every group)",
                                grant.group
                            ),
                        });
                    }
                }
            }
            Format::PortalOrganisations => {}
        }
        Ok(known)
    }

    /// An organisation by id, else by name (any case); an unknown or
    /// ambiguous name is an error message.
    pub(crate) fn organisation<'a>(&'a self, text: &str) -> Result<&'a str, String> {
        if let Some(id) = self.organisation_ids.get(text) {
            return Ok(id);
        }
        match self
            .organisation_names
            .get(&text.to_lowercase())
            .map(Vec::as_slice)
        {
            Some([id]) => Ok(id),
            Some(ids) if !ids.is_empty() => {
                let mut ids = ids.to_vec();
                ids.sort();
                Err(format!(
                    "organisation name `{text}` is ambiguous: ids {}; use the id",
                    ids.join(", ")
                ))
            }
            _ => Err(format!(
                "unknown organisation `{text}` (neither an id nor a name)"
            )),
        }
    }

    pub(crate) fn has_company(&self, id: &str) -> bool {
        self.companies.contains(id)
    }
}

/// A temporary table the rows are copied into; the first `key` columns
/// are its primary key, or, with `key` 0, the first column is indexed (the
/// comparison looks staged rows up by parent once per row).
struct Stage {
    name: &'static str,
    columns: &'static [(&'static str, &'static str)],
    key: usize,
}

const USERS: Stage = Stage {
    name: "ticket_authz_csv_users",
    columns: &[
        ("id", "text"),
        ("email", "text"),
        ("name", "text"),
        ("kind", "text"),
        ("suspended", "boolean"),
        ("ticket_access", "text"),
        ("default_organisation_id", "text"),
        ("company_id", "text"),
    ],
    key: 1,
};
const MEMBERSHIPS: Stage = Stage {
    name: "ticket_authz_csv_memberships",
    columns: &[("user_id", "text"), ("organisation_id", "text")],
    key: 2,
};
/// No key: `group_id` is NULL for a grant on every group.
const GRANTS: Stage = Stage {
    name: "ticket_authz_csv_grants",
    columns: &[
        ("user_id", "text"),
        ("profile_id", "text"),
        ("group_id", "text"),
    ],
    key: 0,
};
const ORGANISATIONS: Stage = Stage {
    name: "ticket_authz_csv_organisations",
    columns: &[("id", "text"), ("name", "text"), ("ticket_access", "text")],
    key: 1,
};
const DOMAINS: Stage = Stage {
    name: "ticket_authz_csv_domains",
    columns: &[("organisation_id", "text"), ("domain", "text")],
    key: 2,
};

/// How an upsert fills a column from the staged value `s.c`.
#[derive(Clone, Copy)]
enum Fill {
    /// The file's value, empty meaning NULL.
    Set,
    /// The file's value; when empty, what is stored, else this default
    /// (an SQL literal; `None` leaves NULL).
    Keep(Option<&'static str>),
}

/// A list of child rows of each staged row.
struct Child {
    table: &'static str,
    stage: &'static Stage,
    /// The column naming the parent, in both tables.
    parent: &'static str,
    items: &'static [&'static str],
    /// A column set to the import time on insert.
    added_at: Option<&'static str>,
    /// `true`: a row listing children replaces the stored ones (a row
    /// listing none leaves them); `false`: children are only added.
    replace: bool,
}

const USER_ORGANISATIONS: Child = Child {
    table: "user_organisations",
    stage: &MEMBERSHIPS,
    parent: "user_id",
    items: &["organisation_id"],
    added_at: None,
    replace: true,
};
const USER_GRANTS: Child = Child {
    table: "grants",
    stage: &GRANTS,
    parent: "user_id",
    items: &["profile_id", "group_id"],
    added_at: None,
    replace: false,
};
const ORGANISATION_DOMAINS: Child = Child {
    table: "organisation_domains",
    stage: &DOMAINS,
    parent: "organisation_id",
    items: &["domain"],
    added_at: Some("added_at"),
    replace: true,
};

/// What one format writes: the columns it carries (others are never
/// touched on existing rows and take the schema's defaults on new ones).
struct Target {
    table: &'static str,
    stage: &'static Stage,
    fields: &'static [(&'static str, Fill)],
    /// A column set to the import time on insert only.
    created_at: Option<&'static str>,
    children: &'static [Child],
}

const PORTAL_USERS: Target = Target {
    table: "users",
    stage: &USERS,
    fields: &[
        ("email", Fill::Set),
        ("name", Fill::Set),
        ("kind", Fill::Keep(Some("'end_user'"))),
        ("ticket_access", Fill::Keep(Some("'own'"))),
        ("default_organisation_id", Fill::Keep(None)),
    ],
    created_at: Some("created_at"),
    children: &[USER_ORGANISATIONS, USER_GRANTS],
};
const ITSM_USERS: Target = Target {
    table: "users",
    stage: &USERS,
    fields: &[
        ("email", Fill::Set),
        ("name", Fill::Set),
        ("suspended", Fill::Set),
        ("company_id", Fill::Set),
        ("kind", Fill::Keep(Some("'end_user'"))),
    ],
    created_at: Some("created_at"),
    children: &[USER_ORGANISATIONS, USER_GRANTS],
};
const PORTAL_ORGANISATIONS: Target = Target {
    table: "organisations",
    stage: &ORGANISATIONS,
    fields: &[
        ("name", Fill::Set),
        ("ticket_access", Fill::Keep(Some("'own'"))),
    ],
    created_at: None,
    children: &[ORGANISATION_DOMAINS],
};

/// The value a row would get for a field: `s` is the staged row, `t` the
/// stored one (NULL columns when new).
fn value(column: &str, fill: Fill) -> String {
    match fill {
        Fill::Set => format!("s.{column}"),
        Fill::Keep(Some(default)) => format!("coalesce(s.{column}, t.{column}, {default})"),
        Fill::Keep(None) => format!("coalesce(s.{column}, t.{column})"),
    }
}

/// Stored child `c` (a table name or alias) and staged child `m` are the
/// same row.
fn same_child(child: &Child, c: &str) -> String {
    let mut parts = vec![format!("{c}.{p} = m.{p}", p = child.parent)];
    for item in child.items {
        parts.push(format!("{c}.{item} IS NOT DISTINCT FROM m.{item}"));
    }
    parts.join(" AND ")
}

/// Whether staged parent `s` would change its stored children.
fn child_changes(child: &Child) -> String {
    let (stage, table, parent) = (child.stage.name, child.table, child.parent);
    let added = format!(
        "EXISTS (SELECT 1 FROM {stage} m WHERE m.{parent} = s.id AND NOT EXISTS (SELECT 1 FROM {table} c WHERE {}))",
        same_child(child, "c")
    );
    if !child.replace {
        return added;
    }
    format!(
        "{added} OR (EXISTS (SELECT 1 FROM {stage} m WHERE m.{parent} = s.id) AND EXISTS (SELECT 1 FROM {table} c WHERE c.{parent} = s.id AND NOT EXISTS (SELECT 1 FROM {stage} m WHERE {})))",
        same_child(child, "c")
    )
}

/// One row: how many staged rows are new, and how many would change a
/// stored row.
fn count_sql(target: &Target) -> String {
    let mut changed: Vec<String> = target
        .fields
        .iter()
        .map(|(c, fill)| format!("t.{c} IS DISTINCT FROM {}", value(c, *fill)))
        .collect();
    changed.extend(target.children.iter().map(child_changes));
    format!(
        "SELECT count(*) FILTER (WHERE t.id IS NULL), count(*) FILTER (WHERE t.id IS NOT NULL AND ({})) FROM {} s LEFT JOIN {} t ON t.id = s.id",
        changed.join(" OR "),
        target.stage.name,
        target.table
    )
}

/// Inserts new rows and updates changed ones; `time` is the import-time
/// expression.
fn upsert_sql(target: &Target, time: &str) -> String {
    let table = target.table;
    let mut columns = vec!["id".to_owned()];
    let mut values = vec!["s.id".to_owned()];
    for (c, fill) in target.fields {
        columns.push((*c).to_owned());
        values.push(value(c, *fill));
    }
    if let Some(created_at) = target.created_at {
        columns.push(created_at.to_owned());
        values.push(time.to_owned());
    }
    let set: Vec<String> = target
        .fields
        .iter()
        .map(|(c, _)| format!("{c} = excluded.{c}"))
        .collect();
    let differs: Vec<String> = target
        .fields
        .iter()
        .map(|(c, _)| format!("{table}.{c} IS DISTINCT FROM excluded.{c}"))
        .collect();
    // `WHERE true` keeps SQLite from reading `ON CONFLICT` as a join clause.
    format!(
        "INSERT INTO {table} ({}) SELECT {} FROM {} s LEFT JOIN {table} t ON t.id = s.id WHERE true \
         ON CONFLICT (id) DO UPDATE SET {} WHERE {}",
        columns.join(", "),
        values.join(", "),
        target.stage.name,
        set.join(", "),
        differs.join(" OR ")
    )
}

/// Removes stored children a replacing row no longer lists.
fn delete_children_sql(child: &Child) -> String {
    format!(
        "DELETE FROM {table} WHERE {parent} IN (SELECT {parent} FROM {stage}) AND NOT EXISTS (SELECT 1 FROM {stage} m WHERE {})",
        same_child(child, child.table),
        table = child.table,
        parent = child.parent,
        stage = child.stage.name
    )
}

/// Adds the staged children that are not stored yet.
fn insert_children_sql(child: &Child, time: &str) -> String {
    let mut columns = vec![child.parent.to_owned()];
    columns.extend(child.items.iter().map(|c| (*c).to_owned()));
    let mut values: Vec<String> = columns.iter().map(|c| format!("m.{c}")).collect();
    if let Some(added_at) = child.added_at {
        columns.push(added_at.to_owned());
        values.push(time.to_owned());
    }
    format!(
        "INSERT INTO {} ({}) SELECT {} FROM {} m WHERE true ON CONFLICT DO NOTHING",
        child.table,
        columns.join(", "),
        values.join(", "),
        child.stage.name
    )
}

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

    #[test]
    fn upserts_touch_only_the_columns_a_format_carries() {
        let sql = upsert_sql(&PORTAL_USERS, "$1");
        assert!(sql.contains("kind = excluded.kind"), "{sql}");
        assert!(!sql.contains("company_id"), "{sql}");
        assert!(!sql.contains("suspended"), "{sql}");
        assert!(!sql.contains("created_at ="), "{sql}");
        let sql = upsert_sql(&ITSM_USERS, "$1");
        assert!(!sql.contains("ticket_access"), "{sql}");
        assert!(!sql.contains("default_organisation_id"), "{sql}");
    }
}
