//! Reads the whole database, with its revision, in one consistent read,
//! straight into domain values. The schema enforces references, enums and
//! id shapes; `Snapshot::build` checks what it cannot (parent cycles,
//! dangling references after manual edits).

/// Positions of parent rows by id; one entry per ticket, so foldhash.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use futures_util::TryStreamExt;
// Dynamic SQL here is assembled from this module's constants only (table
// and column names, timestamp expressions); request data never reaches it.
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Executor, IntoArguments, Pool, Type};

use super::dialect::fetch_revision;
use super::{Database, DbError, Dialect};
use crate::flags::{Flag, FlagSet};
use crate::follow::SourceError;
use crate::model::{
    Company, Dataset, Domain, Grant, GrantScope, Group, OrgAccess, Organisation, Partnership,
    Profile, Status, Ticket, User, UserAccess, UserKind,
};

/// The data of one revision.
#[derive(Debug)]
pub struct Loaded {
    pub dataset: Dataset,
    pub revision: u64,
}

fn invalid(what: impl Into<String>) -> DbError {
    DbError::Invalid(what.into())
}

/// Positions of ids in a list, for attaching child rows.
pub(super) fn positions<T>(items: &[T], key: impl Fn(&T) -> &str) -> HashMap<String, usize> {
    items
        .iter()
        .enumerate()
        .map(|(i, t)| (key(t).to_owned(), i))
        .collect()
}

/// Attaches a child row to its parent, or reports a dangling one (the
/// schema's foreign keys make that impossible; this guards manual edits).
pub(super) fn attach<'a, T>(
    items: &'a mut [T],
    at: &HashMap<String, usize>,
    parent: &str,
    table: &str,
) -> Result<&'a mut T, DbError> {
    at.get(parent)
        .and_then(|i| items.get_mut(*i))
        .ok_or_else(|| invalid(format!("{table}: row refers to unknown `{parent}`")))
}

pub(super) fn choice<T>(
    table: &str,
    id: &str,
    field: &str,
    text: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, DbError> {
    parse(text).ok_or_else(|| {
        invalid(format!(
            "{table} `{id}`: field {field}: unknown value `{text}`"
        ))
    })
}

/// A `users` row; `T` is how the dialect sends a timestamp.
type UserRow<T> = (
    String,
    Option<String>,
    Option<String>,
    T,
    String,
    bool,
    String,
    Option<String>,
    Option<String>,
    bool,
);

/// A `tickets` row; `T` is how the dialect sends a timestamp.
type TicketRow<T> = (
    String,
    T,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

fn sql<D: Dialect>(template: &str, columns: &[&str]) -> String {
    let mut out = template.to_owned();
    for col in columns {
        out = out.replace(&format!("{{{col}}}"), &D::time_column(col));
    }
    out
}

/// What a load reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every table.
    Everything,
    /// The permission graph: every table but tickets, CCs and participants
    /// (the ticket cache reads those by key); the sections included.
    Graph,
}

/// Reads the revision, then every table, one query per table in key order,
/// in one transaction that sees one snapshot of the database.
async fn load<D>(pool: &Pool<D>, scope: Scope) -> Result<Loaded, DbError>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    D::Arguments: IntoArguments<D>,
    usize: ColumnIndex<D::Row>,
    for<'r> String: Decode<'r, D>,
    String: Type<D>,
    for<'r> bool: Decode<'r, D>,
    bool: Type<D>,
    for<'r> i64: Decode<'r, D>,
    i64: Type<D>,
{
    let mut tx = pool.begin().await?;
    if let Some(consistent) = D::CONSISTENT_READ {
        sqlx::query(consistent).execute(&mut *tx).await?;
    }
    let revision = fetch_revision(&mut *tx, D::REVISION).await?;
    let mut data = Dataset::default();
    let mut rows = sqlx::query_as::<_, (String, String, String)>(
        "SELECT id, name, ticket_access FROM organisations ORDER BY id",
    )
    .fetch(&mut *tx);
    while let Some((id, name, access)) = rows.try_next().await? {
        let ticket_access = choice(
            "organisation",
            &id,
            "ticket_access",
            &access,
            OrgAccess::parse,
        )?;
        data.organisations.push(Organisation {
            id,
            name,
            ticket_access,
            domains: Vec::new(),
            access_managers: Vec::new(),
        });
    }
    drop(rows);
    let orgs = positions(&data.organisations, |o| o.id.as_str());
    let q = sql::<D>(
        "SELECT organisation_id, domain, {added_at} FROM organisation_domains ORDER BY organisation_id, domain",
        &["added_at"],
    );
    let mut rows =
        sqlx::query_as::<_, (String, String, D::Time)>(AssertSqlSafe(q.as_str())).fetch(&mut *tx);
    while let Some((org, domain, added_at)) = rows.try_next().await? {
        let added_at = D::time(added_at)?;
        attach(&mut data.organisations, &orgs, &org, "organisation_domains")?
            .domains
            .push(Domain {
                domain: domain.to_ascii_lowercase(),
                added_at,
            });
    }
    drop(rows);
    let q = sql::<D>(
        "SELECT partner_id, client_id, {since} FROM partnerships ORDER BY partner_id, client_id",
        &["since"],
    );
    let mut rows =
        sqlx::query_as::<_, (String, String, D::Time)>(AssertSqlSafe(q.as_str())).fetch(&mut *tx);
    while let Some((partner, client, since)) = rows.try_next().await? {
        data.partnerships.push(Partnership {
            partner,
            client,
            since: D::time(since)?,
        });
    }
    drop(rows);
    let mut rows = sqlx::query_as::<_, (String, String, Option<String>, bool, i64, bool, i64)>(
            "SELECT id, name, parent_id, propagate, CAST(open_ticket_limit AS BIGINT), enforce_open_limit, \
             CAST(total_ticket_limit AS BIGINT) FROM groups ORDER BY id",
        )
        .fetch(&mut *tx);
    while let Some((id, name, parent, propagate, open, enforce, total)) = rows.try_next().await? {
        let limit = |n: i64, field: &str| {
            u32::try_from(n)
                .map_err(|_| invalid(format!("group `{id}`: field {field}: {n} is out of range")))
        };
        data.groups.push(Group {
            open_ticket_limit: limit(open, "open_ticket_limit")?,
            total_ticket_limit: limit(total, "total_ticket_limit")?,
            id,
            name,
            parent,
            propagate,
            enforce_open_limit: enforce,
        });
    }
    drop(rows);
    let mut rows =
        sqlx::query_as::<_, (String, String)>("SELECT id, name FROM profiles ORDER BY id")
            .fetch(&mut *tx);
    while let Some((id, name)) = rows.try_next().await? {
        data.profiles.push(Profile {
            id,
            name,
            flags: FlagSet::EMPTY,
        });
    }
    drop(rows);
    let profiles = positions(&data.profiles, |p| p.id.as_str());
    let mut rows = sqlx::query_as::<_, (String, String)>(
        "SELECT profile_id, flag FROM profile_flags ORDER BY profile_id, flag",
    )
    .fetch(&mut *tx);
    while let Some((profile, flag)) = rows.try_next().await? {
        let parsed = Flag::parse(&flag).ok_or_else(|| {
            invalid(format!(
                "profile `{profile}`: field flags: unknown flag `{flag}`"
            ))
        })?;
        attach(&mut data.profiles, &profiles, &profile, "profile_flags")?
            .flags
            .insert(parsed);
    }
    drop(rows);
    let mut rows = sqlx::query_as::<_, (String, String, Option<String>, Option<String>)>(
        "SELECT id, name, parent_id, owner_id FROM companies ORDER BY id",
    )
    .fetch(&mut *tx);
    while let Some((id, name, parent, owner)) = rows.try_next().await? {
        data.companies.push(Company {
            id,
            name,
            parent,
            owner,
        });
    }
    drop(rows);
    let q = sql::<D>(
        "SELECT id, email, name, {created_at}, kind, suspended, ticket_access, default_organisation_id, company_id, \
             company_scoped FROM users ORDER BY id",
        &["created_at"],
    );
    let mut rows = sqlx::query_as::<_, UserRow<D::Time>>(AssertSqlSafe(q.as_str())).fetch(&mut *tx);
    while let Some((
        id,
        email,
        name,
        created_at,
        kind,
        suspended,
        access,
        default_organisation,
        company,
        company_scoped,
    )) = rows.try_next().await?
    {
        data.users.push(User {
            created_at: D::time(created_at)?,
            kind: choice("user", &id, "kind", &kind, UserKind::parse)?,
            ticket_access: choice("user", &id, "ticket_access", &access, UserAccess::parse)?,
            id,
            email,
            name,
            suspended,
            organisations: Vec::new(),
            default_organisation,
            company,
            company_scoped,
            grants: Vec::new(),
        });
    }
    drop(rows);
    let users = positions(&data.users, |u| u.id.as_str());
    let mut rows = sqlx::query_as::<_, (String, String)>(
        "SELECT user_id, organisation_id FROM user_organisations ORDER BY user_id, organisation_id",
    )
    .fetch(&mut *tx);
    while let Some((user, org)) = rows.try_next().await? {
        attach(&mut data.users, &users, &user, "user_organisations")?
            .organisations
            .push(org);
    }
    drop(rows);
    let mut rows = sqlx::query_as::<_, (String, String)>(
            "SELECT organisation_id, user_id FROM organisation_access_managers ORDER BY organisation_id, user_id",
        )
        .fetch(&mut *tx);
    while let Some((org, user)) = rows.try_next().await? {
        attach(
            &mut data.organisations,
            &orgs,
            &org,
            "organisation_access_managers",
        )?
        .access_managers
        .push(user);
    }
    drop(rows);
    let mut rows = sqlx::query_as::<_, (String, String, Option<String>)>(
        "SELECT user_id, profile_id, group_id FROM grants ORDER BY user_id, profile_id, group_id",
    )
    .fetch(&mut *tx);
    while let Some((user, profile, group)) = rows.try_next().await? {
        attach(&mut data.users, &users, &user, "grants")?
            .grants
            .push(Grant {
                profile,
                group: group.map_or(GrantScope::All, GrantScope::Group),
            });
    }
    drop(rows);
    data.sections = super::sections::load_sections::<D>(&mut *tx).await?;
    if scope == Scope::Graph {
        tx.commit().await?;
        return Ok(Loaded {
            dataset: data,
            revision,
        });
    }
    let q = sql::<D>(
        "SELECT id, {created_at}, requester_id, organisation_id, group_id, assignee_id, status FROM tickets ORDER BY id",
        &["created_at"],
    );
    let mut rows =
        sqlx::query_as::<_, TicketRow<D::Time>>(AssertSqlSafe(q.as_str())).fetch(&mut *tx);
    while let Some((id, created_at, requester, organisation, group, assignee, status)) =
        rows.try_next().await?
    {
        data.tickets.push(Ticket {
            created_at: D::time(created_at)?,
            status: choice("ticket", &id, "status", &status, Status::parse)?,
            id,
            requester,
            organisation,
            group,
            assignee,
            ccs: Vec::new(),
            participants: Vec::new(),
        });
    }
    drop(rows);
    let tickets = positions(&data.tickets, |t| t.id.as_str());
    for (table, participants) in [("ticket_ccs", false), ("ticket_participants", true)] {
        let q = format!("SELECT ticket_id, user_id FROM {table} ORDER BY ticket_id, user_id");
        let mut rows =
            sqlx::query_as::<_, (String, String)>(AssertSqlSafe(q.as_str())).fetch(&mut *tx);
        while let Some((ticket, user)) = rows.try_next().await? {
            let t = attach(&mut data.tickets, &tickets, &ticket, table)?;
            if participants {
                t.participants.push(user);
            } else {
                t.ccs.push(user);
            }
        }
    }
    tx.commit().await?;
    Ok(Loaded {
        dataset: data,
        revision,
    })
}

impl Database {
    /// The snapshot of the database at its revision: a consistent load, then
    /// the build on a blocking thread. The first load and every full reload
    /// go through here; its error tells a failed read (retried) from data
    /// that makes no valid snapshot (held back).
    pub async fn snapshot(&self) -> Result<crate::snapshot::Snapshot, SourceError> {
        self.snapshot_of(Scope::Everything).await
    }

    /// [`Database::snapshot`] of what `scope` names.
    pub async fn snapshot_of(
        &self,
        scope: Scope,
    ) -> Result<crate::snapshot::Snapshot, SourceError> {
        let read = |e: &dyn std::fmt::Display| SourceError::Read(e.to_string());
        let loaded = self.load_scope(scope).await.map_err(|e| match e {
            // Data the schema let through that no snapshot may hold (a
            // dangling reference, an unknown value): held back like a
            // failed build, not retried on every wake-up. The revision is
            // the batch's that asked for the load.
            DbError::Invalid(cause) => SourceError::Invalid { revision: 0, cause },
            e => read(&e),
        })?;
        let revision = loaded.revision;
        tokio::task::spawn_blocking(move || {
            let mut snap = crate::snapshot::Snapshot::build(&loaded.dataset).map_err(|e| {
                SourceError::Invalid {
                    revision,
                    cause: e.to_string(),
                }
            })?;
            snap.set_revision(revision);
            Ok(snap)
        })
        .await
        .map_err(|e| read(&e))?
    }

    /// Reads every table and the revision they are at, in one consistent
    /// read.
    pub async fn load(&self) -> Result<Loaded, DbError> {
        self.load_scope(Scope::Everything).await
    }

    /// [`Database::load`] of what `scope` names.
    pub async fn load_scope(&self, scope: Scope) -> Result<Loaded, DbError> {
        match self {
            Database::Postgres(pool) => load(pool, scope).await,
            Database::Sqlite(pool) => load(pool, scope).await,
        }
    }
}
