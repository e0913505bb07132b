//! Writes a dataset into the database in one transaction (`import`).

// Dynamic SQL here is built from this module's table and column constants
// only; every value is a bound parameter.
use sqlx::{AssertSqlSafe, PgConnection, Postgres, Sqlite, SqliteConnection, Transaction};

use super::{Database, DbError, TABLES};
use crate::model::{Dataset, GrantScope};

/// One column of a table's rows, typed for binding.
enum Col {
    Text(Vec<Option<String>>),
    Time(Vec<String>),
    Int(Vec<i64>),
    Bool(Vec<bool>),
}

impl Col {
    fn len(&self) -> usize {
        match self {
            Col::Text(v) => v.len(),
            Col::Time(v) => v.len(),
            Col::Int(v) => v.len(),
            Col::Bool(v) => v.len(),
        }
    }
}

/// The rows of one table, column by column.
struct Rows {
    table: &'static str,
    columns: Vec<(&'static str, Col)>,
}

impl Rows {
    fn len(&self) -> usize {
        self.columns.first().map_or(0, |(_, c)| c.len())
    }
}

fn text<T>(items: &[T], f: impl Fn(&T) -> Option<String>) -> Col {
    Col::Text(items.iter().map(f).collect())
}

/// Keeps the first of each repeated entry. A file may list a grant, a
/// membership, a CC or a flag twice, which means what listing it once does
/// (the rules read them as sets); the tables' keys hold each once.
fn distinct<T: std::hash::Hash + Eq + Clone>(mut items: Vec<T>) -> Vec<T> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    items.retain(|item| seen.insert(item.clone()));
    items
}

/// The dataset as table rows, parents before children. Company owners are
/// written after users (the two tables reference each other).
fn rows(data: &Dataset) -> Vec<Rows> {
    let org_domains: Vec<(&str, &crate::model::Domain)> = data
        .organisations
        .iter()
        .flat_map(|o| o.domains.iter().map(move |d| (o.id.as_str(), d)))
        .collect();
    let managers: Vec<(&str, &str)> = distinct(
        data.organisations
            .iter()
            .flat_map(|o| {
                o.access_managers
                    .iter()
                    .map(move |u| (o.id.as_str(), u.as_str()))
            })
            .collect(),
    );
    let flags: Vec<(&str, &str)> = distinct(
        data.profiles
            .iter()
            .flat_map(|p| p.flags.iter().map(move |f| (p.id.as_str(), f.name())))
            .collect(),
    );
    let memberships: Vec<(&str, &str)> = distinct(
        data.users
            .iter()
            .flat_map(|u| {
                u.organisations
                    .iter()
                    .map(move |o| (u.id.as_str(), o.as_str()))
            })
            .collect(),
    );
    let grants: Vec<(&str, &str, Option<&str>)> = distinct(
        data.users
            .iter()
            .flat_map(|u| {
                u.grants.iter().map(move |g| {
                    let group = match &g.group {
                        GrantScope::All => None,
                        GrantScope::Group(id) => Some(id.as_str()),
                    };
                    (u.id.as_str(), g.profile.as_str(), group)
                })
            })
            .collect(),
    );
    let pairs = |list: &dyn Fn(&crate::model::Ticket) -> &Vec<String>| -> Vec<(String, String)> {
        data.tickets
            .iter()
            .flat_map(|t| list(t).iter().map(move |u| (t.id.clone(), u.clone())))
            .collect()
    };
    let ccs = distinct(pairs(&|t| &t.ccs));
    let participants = distinct(pairs(&|t| &t.participants));
    let s = |v: &str| Some(v.to_owned());
    vec![
        Rows {
            table: "organisations",
            columns: vec![
                ("id", text(&data.organisations, |o| s(&o.id))),
                ("name", text(&data.organisations, |o| s(&o.name))),
                (
                    "ticket_access",
                    text(&data.organisations, |o| s(o.ticket_access.name())),
                ),
            ],
        },
        Rows {
            table: "organisation_domains",
            columns: vec![
                ("organisation_id", text(&org_domains, |(o, _)| s(o))),
                ("domain", text(&org_domains, |(_, d)| s(&d.domain))),
                (
                    "added_at",
                    Col::Time(
                        org_domains
                            .iter()
                            .map(|(_, d)| d.added_at.to_string())
                            .collect(),
                    ),
                ),
            ],
        },
        Rows {
            table: "partnerships",
            columns: vec![
                ("partner_id", text(&data.partnerships, |p| s(&p.partner))),
                ("client_id", text(&data.partnerships, |p| s(&p.client))),
                (
                    "since",
                    Col::Time(
                        data.partnerships
                            .iter()
                            .map(|p| p.since.to_string())
                            .collect(),
                    ),
                ),
            ],
        },
        Rows {
            table: "groups",
            columns: vec![
                ("id", text(&data.groups, |g| s(&g.id))),
                ("name", text(&data.groups, |g| s(&g.name))),
                ("parent_id", text(&data.groups, |g| g.parent.clone())),
                (
                    "propagate",
                    Col::Bool(data.groups.iter().map(|g| g.propagate).collect()),
                ),
                (
                    "open_ticket_limit",
                    Col::Int(
                        data.groups
                            .iter()
                            .map(|g| i64::from(g.open_ticket_limit))
                            .collect(),
                    ),
                ),
                (
                    "enforce_open_limit",
                    Col::Bool(data.groups.iter().map(|g| g.enforce_open_limit).collect()),
                ),
                (
                    "total_ticket_limit",
                    Col::Int(
                        data.groups
                            .iter()
                            .map(|g| i64::from(g.total_ticket_limit))
                            .collect(),
                    ),
                ),
            ],
        },
        Rows {
            table: "profiles",
            columns: vec![
                ("id", text(&data.profiles, |p| s(&p.id))),
                ("name", text(&data.profiles, |p| s(&p.name))),
            ],
        },
        Rows {
            table: "profile_flags",
            columns: vec![
                ("profile_id", text(&flags, |(p, _)| s(p))),
                ("flag", text(&flags, |(_, f)| s(f))),
            ],
        },
        Rows {
            table: "companies",
            columns: vec![
                ("id", text(&data.companies, |c| s(&c.id))),
                ("name", text(&data.companies, |c| s(&c.name))),
                ("parent_id", text(&data.companies, |c| c.parent.clone())),
            ],
        },
        Rows {
            table: "users",
            columns: vec![
                ("id", text(&data.users, |u| s(&u.id))),
                ("email", text(&data.users, |u| u.email.clone())),
                ("name", text(&data.users, |u| u.name.clone())),
                (
                    "created_at",
                    Col::Time(
                        data.users
                            .iter()
                            .map(|u| u.created_at.to_string())
                            .collect(),
                    ),
                ),
                ("kind", text(&data.users, |u| s(u.kind.name()))),
                (
                    "suspended",
                    Col::Bool(data.users.iter().map(|u| u.suspended).collect()),
                ),
                (
                    "ticket_access",
                    text(&data.users, |u| s(u.ticket_access.name())),
                ),
                (
                    "default_organisation_id",
                    text(&data.users, |u| u.default_organisation.clone()),
                ),
                ("company_id", text(&data.users, |u| u.company.clone())),
                (
                    "company_scoped",
                    Col::Bool(data.users.iter().map(|u| u.company_scoped).collect()),
                ),
            ],
        },
        Rows {
            table: "user_organisations",
            columns: vec![
                ("user_id", text(&memberships, |(u, _)| s(u))),
                ("organisation_id", text(&memberships, |(_, o)| s(o))),
            ],
        },
        Rows {
            table: "organisation_access_managers",
            columns: vec![
                ("organisation_id", text(&managers, |(o, _)| s(o))),
                ("user_id", text(&managers, |(_, u)| s(u))),
            ],
        },
        Rows {
            table: "grants",
            columns: vec![
                ("user_id", text(&grants, |(u, _, _)| s(u))),
                ("profile_id", text(&grants, |(_, p, _)| s(p))),
                ("group_id", text(&grants, |(_, _, g)| g.map(str::to_owned))),
            ],
        },
        Rows {
            table: "tickets",
            columns: vec![
                ("id", text(&data.tickets, |t| s(&t.id))),
                (
                    "created_at",
                    Col::Time(
                        data.tickets
                            .iter()
                            .map(|t| t.created_at.to_string())
                            .collect(),
                    ),
                ),
                ("requester_id", text(&data.tickets, |t| s(&t.requester))),
                (
                    "organisation_id",
                    text(&data.tickets, |t| t.organisation.clone()),
                ),
                ("group_id", text(&data.tickets, |t| t.group.clone())),
                ("assignee_id", text(&data.tickets, |t| t.assignee.clone())),
                ("status", text(&data.tickets, |t| s(t.status.name()))),
            ],
        },
        Rows {
            table: "ticket_ccs",
            columns: vec![
                ("ticket_id", text(&ccs, |(t, _)| s(t))),
                ("user_id", text(&ccs, |(_, u)| s(u))),
            ],
        },
        Rows {
            table: "ticket_participants",
            columns: vec![
                ("ticket_id", text(&participants, |(t, _)| s(t))),
                ("user_id", text(&participants, |(_, u)| s(u))),
            ],
        },
    ]
}

fn owners(data: &Dataset) -> Vec<(String, String)> {
    data.companies
        .iter()
        .filter_map(|c| c.owner.clone().map(|o| (c.id.clone(), o)))
        .collect()
}

/// Rows per statement for PostgreSQL's array inserts.
const PG_BATCH: usize = 50_000;

fn slice<T: Clone>(v: &[T], from: usize, to: usize) -> Vec<T> {
    v.get(from..to.min(v.len())).unwrap_or_default().to_vec()
}

async fn insert_pg(tx: &mut Transaction<'_, Postgres>, rows: &Rows) -> Result<(), DbError> {
    let names: Vec<&str> = rows.columns.iter().map(|(n, _)| *n).collect();
    let arrays: Vec<String> = rows
        .columns
        .iter()
        .enumerate()
        .map(|(i, (_, c))| match c {
            Col::Text(_) => format!("${}::text[]", i + 1),
            Col::Time(_) => format!("${}::text[]::timestamptz[]", i + 1),
            Col::Int(_) => format!("${}::bigint[]", i + 1),
            Col::Bool(_) => format!("${}::boolean[]", i + 1),
        })
        .collect();
    // Table and column names are constants of this module, never input.
    let sql = format!(
        "INSERT INTO {} ({}) SELECT * FROM UNNEST({})",
        rows.table,
        names.join(", "),
        arrays.join(", ")
    );
    let mut from = 0;
    while from < rows.len() {
        let to = from + PG_BATCH;
        let mut query = sqlx::query(AssertSqlSafe(sql.as_str()));
        for (_, col) in &rows.columns {
            query = match col {
                Col::Text(v) => query.bind(slice(v, from, to)),
                Col::Time(v) => query.bind(slice(v, from, to)),
                Col::Int(v) => query.bind(slice(v, from, to)),
                Col::Bool(v) => query.bind(slice(v, from, to)),
            };
        }
        query
            .execute(&mut **tx)
            .await
            .map_err(|e| DbError::Import(format!("{}: {e}", rows.table)))?;
        from = to;
    }
    Ok(())
}

async fn insert_sqlite(tx: &mut Transaction<'_, Sqlite>, rows: &Rows) -> Result<(), DbError> {
    let names: Vec<&str> = rows.columns.iter().map(|(n, _)| *n).collect();
    let marks = vec!["?"; names.len()].join(", ");
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({marks})",
        rows.table,
        names.join(", ")
    );
    for i in 0..rows.len() {
        let mut query = sqlx::query(AssertSqlSafe(sql.as_str()));
        for (_, col) in &rows.columns {
            query = match col {
                Col::Text(v) => query.bind(v.get(i).cloned().flatten()),
                Col::Time(v) => query.bind(v.get(i).cloned()),
                Col::Int(v) => query.bind(v.get(i).copied()),
                Col::Bool(v) => query.bind(v.get(i).copied()),
            };
        }
        query
            .execute(&mut **tx)
            .await
            .map_err(|e| DbError::Import(format!("{}: {e}", rows.table)))?;
    }
    Ok(())
}

/// Makes the rest of a PostgreSQL transaction one bulk change: the triggers
/// record no row images and the commit marks its revision as bulk, so
/// followers reload in full once instead of replaying every row.
pub(crate) async fn bulk_pg(tx: &mut PgConnection) -> Result<(), DbError> {
    sqlx::query("SET LOCAL ticket_authz.bulk = 'on'")
        .execute(tx)
        .await?;
    Ok(())
}

/// SQLite's bulk change, opened: row changes are not logged until
/// [`end_bulk_sqlite`].
pub(crate) async fn begin_bulk_sqlite(tx: &mut SqliteConnection) -> Result<(), DbError> {
    sqlx::query("UPDATE ticket_authz_state SET bulk = 1 WHERE id = 1")
        .execute(tx)
        .await?;
    Ok(())
}

/// Closes SQLite's bulk change: one `B` row (one revision) stands for
/// everything written since [`begin_bulk_sqlite`].
pub(crate) async fn end_bulk_sqlite(tx: &mut SqliteConnection) -> Result<(), DbError> {
    sqlx::query("INSERT INTO ticket_authz_changes (table_name, op) VALUES ('*', 'B')")
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE ticket_authz_state SET bulk = 0 WHERE id = 1")
        .execute(tx)
        .await?;
    Ok(())
}

impl Database {
    /// Writes `data` in one transaction, all or nothing; `replace` deletes
    /// everything first. Readers see one bulk change and reload in full.
    /// Returns the revision after the import.
    pub async fn import(&self, data: &Dataset, replace: bool) -> Result<u64, DbError> {
        let tables = rows(data);
        let owners = owners(data);
        match self {
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                bulk_pg(&mut tx).await?;
                // Registers the transaction even when nothing else is written.
                sqlx::query("SELECT ticket_authz_register_transaction()")
                    .execute(&mut *tx)
                    .await?;
                if replace {
                    sqlx::query(AssertSqlSafe(format!(
                        "TRUNCATE {} CASCADE",
                        TABLES.join(", ")
                    )))
                    .execute(&mut *tx)
                    .await?;
                }
                for rows in &tables {
                    insert_pg(&mut tx, rows).await?;
                }
                let (ids, owner_ids): (Vec<String>, Vec<String>) = owners.into_iter().unzip();
                sqlx::query(
                    "UPDATE companies c SET owner_id = o.owner FROM UNNEST($1::text[], $2::text[]) AS o(id, owner) WHERE c.id = o.id",
                )
                .bind(ids)
                .bind(owner_ids)
                .execute(&mut *tx)
                .await
                .map_err(|e| DbError::Import(format!("companies: {e}")))?;
                tx.commit().await?;
            }
            Database::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("PRAGMA defer_foreign_keys = ON")
                    .execute(&mut *tx)
                    .await?;
                begin_bulk_sqlite(&mut tx).await?;
                if replace {
                    for table in TABLES {
                        sqlx::query(AssertSqlSafe(format!("DELETE FROM {table}")))
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                for rows in &tables {
                    insert_sqlite(&mut tx, rows).await?;
                }
                for (id, owner) in owners {
                    sqlx::query("UPDATE companies SET owner_id = ? WHERE id = ?")
                        .bind(owner)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| DbError::Import(format!("companies: {e}")))?;
                }
                end_bulk_sqlite(&mut tx).await?;
                tx.commit().await?;
            }
        }
        self.revision().await
    }
}
