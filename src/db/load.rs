//! Reads the whole database, with its revision, in one consistent read, and
//! validates it as a dataset (same checks, same errors as a file).

use std::collections::HashMap;

use futures_util::TryStreamExt;
// Dynamic SQL here is assembled from this module's constants only (table
// and column names, timestamp expressions); request data never reaches it.
use sqlx::AssertSqlSafe;

use super::{Database, DbError};
use crate::dataset::raw::{
    RawCompany, RawDataset, RawDomain, RawGrant, RawGroup, RawId, RawOrganisation, RawPartnership,
    RawProfile, RawTicket, RawUser,
};
use crate::model::Dataset;

/// The data of one revision.
#[derive(Debug)]
pub struct Loaded {
    pub dataset: Dataset,
    pub revision: u64,
}

fn id(s: String) -> RawId {
    RawId(s)
}

/// Positions of ids in a list, for attaching child rows.
fn positions<T>(items: &[T], key: impl Fn(&T) -> &str) -> HashMap<String, usize> {
    items
        .iter()
        .enumerate()
        .map(|(i, t)| (key(t).to_owned(), i))
        .collect()
}

/// Attaches a child row to its parent, or reports a dangling one (the
/// schema's foreign keys make that impossible; this guards manual edits).
fn attach<'a, T>(
    items: &'a mut [T],
    at: &HashMap<String, usize>,
    parent: &str,
    table: &str,
) -> Result<&'a mut T, DbError> {
    at.get(parent)
        .and_then(|i| items.get_mut(*i))
        .ok_or_else(|| DbError::Invalid(format!("{table}: row refers to unknown `{parent}`")))
}

/// The SQL text of every read; `ts` renders a timestamp column as RFC 3339.
struct Queries {
    ts: fn(&str) -> String,
}

impl Queries {
    fn sql(&self, template: &str, ts_columns: &[&str]) -> String {
        let mut sql = template.to_owned();
        for col in ts_columns {
            sql = sql.replace(&format!("{{{col}}}"), &(self.ts)(col));
        }
        sql
    }
}

fn pg_ts(col: &str) -> String {
    format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
}

fn sqlite_ts(col: &str) -> String {
    col.to_owned()
}

/// Reads every table through `$conn` (a `&mut` connection of either kind).
macro_rules! read_all {
    ($conn:expr, $q:expr) => {{
        let q: &Queries = $q;
        let mut raw = RawDataset::default();
        let mut rows = sqlx::query_as::<_, (String, String, String)>(
            "SELECT id, name, ticket_access FROM organisations ORDER BY id",
        )
        .fetch(&mut *$conn);
        while let Some((i, name, access)) = rows.try_next().await? {
            raw.organisations.push(RawOrganisation {
                id: id(i),
                name: Some(name),
                ticket_access: Some(access),
                ..RawOrganisation::default()
            });
        }
        drop(rows);
        let orgs = positions(&raw.organisations, |o| o.id.0.as_str());
        let sql = q.sql("SELECT organisation_id, domain, {added_at} FROM organisation_domains ORDER BY organisation_id, domain", &["added_at"]);
        let mut rows = sqlx::query_as::<_, (String, String, String)>(AssertSqlSafe(sql.as_str())).fetch(&mut *$conn);
        while let Some((org, domain, added_at)) = rows.try_next().await? {
            attach(&mut raw.organisations, &orgs, &org, "organisation_domains")?
                .domains
                .push(RawDomain { domain, added_at });
        }
        drop(rows);
        let sql = q.sql("SELECT partner_id, client_id, {since} FROM partnerships ORDER BY partner_id, client_id", &["since"]);
        let mut rows = sqlx::query_as::<_, (String, String, String)>(AssertSqlSafe(sql.as_str())).fetch(&mut *$conn);
        while let Some((partner, client, since)) = rows.try_next().await? {
            raw.partnerships.push(RawPartnership { partner: id(partner), client: id(client), since });
        }
        drop(rows);
        let mut rows = sqlx::query_as::<_, (String, String, Option<String>, bool, i64, bool, i64)>(
            "SELECT id, name, parent_id, propagate, CAST(open_ticket_limit AS BIGINT), enforce_open_limit, \
             CAST(total_ticket_limit AS BIGINT) FROM groups ORDER BY id",
        )
        .fetch(&mut *$conn);
        while let Some((i, name, parent, propagate, open, enforce, total)) = rows.try_next().await? {
            raw.groups.push(RawGroup {
                id: id(i),
                name: Some(name),
                parent: parent.map(id),
                propagate,
                open_ticket_limit: u32::try_from(open).map_err(|_| DbError::Invalid("groups.open_ticket_limit out of range".into()))?,
                enforce_open_limit: enforce,
                total_ticket_limit: u32::try_from(total).map_err(|_| DbError::Invalid("groups.total_ticket_limit out of range".into()))?,
            });
        }
        drop(rows);
        let mut rows = sqlx::query_as::<_, (String, String)>("SELECT id, name FROM profiles ORDER BY id").fetch(&mut *$conn);
        while let Some((i, name)) = rows.try_next().await? {
            raw.profiles.push(RawProfile { id: id(i), name: Some(name), flags: Vec::new() });
        }
        drop(rows);
        let profiles = positions(&raw.profiles, |p| p.id.0.as_str());
        let mut rows = sqlx::query_as::<_, (String, String)>("SELECT profile_id, flag FROM profile_flags ORDER BY profile_id, flag")
            .fetch(&mut *$conn);
        while let Some((profile, flag)) = rows.try_next().await? {
            attach(&mut raw.profiles, &profiles, &profile, "profile_flags")?.flags.push(flag);
        }
        drop(rows);
        let mut rows = sqlx::query_as::<_, (String, String, Option<String>, Option<String>)>(
            "SELECT id, name, parent_id, owner_id FROM companies ORDER BY id",
        )
        .fetch(&mut *$conn);
        while let Some((i, name, parent, owner)) = rows.try_next().await? {
            raw.companies.push(RawCompany { id: id(i), name: Some(name), parent: parent.map(id), owner: owner.map(id) });
        }
        drop(rows);
        let sql = q.sql(
            "SELECT id, email, name, {created_at}, kind, suspended, ticket_access, default_organisation_id, company_id, \
             company_scoped FROM users ORDER BY id",
            &["created_at"],
        );
        type UserRow = (String, Option<String>, Option<String>, String, String, bool, String, Option<String>, Option<String>, bool);
        let mut rows = sqlx::query_as::<_, UserRow>(AssertSqlSafe(sql.as_str())).fetch(&mut *$conn);
        while let Some((i, email, name, created_at, kind, suspended, access, default_org, company, scoped)) = rows.try_next().await? {
            raw.users.push(RawUser {
                id: id(i),
                email,
                name,
                created_at: Some(created_at),
                kind: Some(kind),
                suspended,
                ticket_access: Some(access),
                organisations: Vec::new(),
                default_organisation: default_org.map(id),
                company: company.map(id),
                company_scoped: scoped,
                grants: Vec::new(),
            });
        }
        drop(rows);
        let users = positions(&raw.users, |u| u.id.0.as_str());
        let mut rows = sqlx::query_as::<_, (String, String)>(
            "SELECT user_id, organisation_id FROM user_organisations ORDER BY user_id, organisation_id",
        )
        .fetch(&mut *$conn);
        while let Some((user, org)) = rows.try_next().await? {
            attach(&mut raw.users, &users, &user, "user_organisations")?.organisations.push(id(org));
        }
        drop(rows);
        let mut rows = sqlx::query_as::<_, (String, String)>(
            "SELECT organisation_id, user_id FROM organisation_access_managers ORDER BY organisation_id, user_id",
        )
        .fetch(&mut *$conn);
        while let Some((org, user)) = rows.try_next().await? {
            attach(&mut raw.organisations, &orgs, &org, "organisation_access_managers")?.access_managers.push(id(user));
        }
        drop(rows);
        let mut rows = sqlx::query_as::<_, (String, String, Option<String>)>(
            "SELECT user_id, profile_id, group_id FROM grants ORDER BY user_id, profile_id, group_id",
        )
        .fetch(&mut *$conn);
        while let Some((user, profile, group)) = rows.try_next().await? {
            attach(&mut raw.users, &users, &user, "grants")?.grants.push(RawGrant {
                profile: id(profile),
                group: id(group.unwrap_or_else(|| crate::model::ALL_GROUPS.to_owned())),
            });
        }
        drop(rows);
        let sql = q.sql(
            "SELECT id, {created_at}, requester_id, organisation_id, group_id, assignee_id, status FROM tickets ORDER BY id",
            &["created_at"],
        );
        type TicketRow = (String, String, String, Option<String>, Option<String>, Option<String>, String);
        let mut rows = sqlx::query_as::<_, TicketRow>(AssertSqlSafe(sql.as_str())).fetch(&mut *$conn);
        while let Some((i, created_at, requester, org, group, assignee, status)) = rows.try_next().await? {
            raw.tickets.push(RawTicket {
                id: id(i),
                created_at: Some(created_at),
                requester: Some(id(requester)),
                organisation: org.map(id),
                group: group.map(id),
                assignee: assignee.map(id),
                ccs: Vec::new(),
                participants: Vec::new(),
                status: Some(status),
            });
        }
        drop(rows);
        let tickets = positions(&raw.tickets, |t| t.id.0.as_str());
        for (table, participants) in [("ticket_ccs", false), ("ticket_participants", true)] {
            let sql = format!("SELECT ticket_id, user_id FROM {table} ORDER BY ticket_id, user_id");
            let mut rows = sqlx::query_as::<_, (String, String)>(AssertSqlSafe(sql.as_str())).fetch(&mut *$conn);
            while let Some((ticket, user)) = rows.try_next().await? {
                let t = attach(&mut raw.tickets, &tickets, &ticket, table)?;
                if participants {
                    t.participants.push(id(user));
                } else {
                    t.ccs.push(id(user));
                }
            }
        }
        raw
    }};
}

fn validate(raw: &RawDataset, revision: i64) -> Result<Loaded, DbError> {
    let loaded =
        crate::dataset::from_raw("database", raw).map_err(|e| DbError::Invalid(e.to_string()))?;
    Ok(Loaded {
        dataset: loaded.dataset,
        revision: u64::try_from(revision).unwrap_or(0),
    })
}

impl Database {
    /// Reads every table and the revision they are at, in one consistent
    /// read, and validates the result.
    pub async fn load(&self) -> Result<Loaded, DbError> {
        match self {
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await?;
                let revision: i64 = sqlx::query_scalar("SELECT ticket_authz_revision()")
                    .fetch_one(&mut *tx)
                    .await?;
                let raw = read_all!(tx, &Queries { ts: pg_ts });
                tx.commit().await?;
                validate(&raw, revision)
            }
            Database::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let revision: i64 =
                    sqlx::query_scalar("SELECT revision FROM ticket_authz_revision")
                        .fetch_one(&mut *tx)
                        .await?;
                let raw = read_all!(tx, &Queries { ts: sqlite_ts });
                tx.commit().await?;
                validate(&raw, revision)
            }
        }
    }
}
