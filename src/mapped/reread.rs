//! A batch's keys read again and turned into typed changes. Parents
//! (organisations, groups, profiles, companies, users) first: an id that
//! appears and that some row named while it was unknown has those rows
//! read again too, by the column that names it; then the children by key.
//! Everything resolves against what the source holds after the batch, so
//! the changes leave the snapshot as a full read would.

use std::collections::{BTreeMap, HashSet};

use super::conn::Conn;
use super::decode::{Children, Parent, Parents, Rows};
use super::source::{Keys, State};
use super::{MappedError, rows};
use crate::follow::Reload;
use crate::mapping::Mapping;
use crate::model::{Group, User};
use crate::snapshot::{Change, OrgFields, Role, TicketFields, UserFields};

/// What a batch comes to.
pub(super) enum Outcome {
    Changes(Vec<Change>),
    /// A change that row-by-row cannot follow.
    Reload(Reload),
}

/// The rows that may name a parent's id: (entity, column).
fn dependents(parent: Parent) -> &'static [(&'static str, &'static str)] {
    match parent {
        Parent::Organisations => &[
            ("users", "default_organisation_id"),
            ("tickets", "organisation_id"),
            ("user_organisations", "organisation_id"),
            ("organisation_access_managers", "organisation_id"),
            ("organisation_domains", "organisation_id"),
            ("partnerships", "partner_id"),
            ("partnerships", "client_id"),
        ],
        Parent::Groups => &[
            ("groups", "parent_id"),
            ("grants", "group_id"),
            ("tickets", "group_id"),
        ],
        Parent::Profiles => &[("grants", "profile_id"), ("profile_flags", "profile_id")],
        Parent::Companies => &[("companies", "parent_id"), ("users", "company_id")],
        Parent::Users => &[
            ("tickets", "requester_id"),
            ("tickets", "assignee_id"),
            ("ticket_ccs", "user_id"),
            ("ticket_participants", "user_id"),
            ("grants", "user_id"),
            ("companies", "owner_id"),
            ("user_organisations", "user_id"),
            ("organisation_access_managers", "user_id"),
        ],
    }
}

/// Entities whose rows have no whole-set change: any change to them is
/// applied by a full read.
const READ_WHOLE: [&str; 4] = [
    "user_organisations",
    "organisation_access_managers",
    "organisation_domains",
    "partnerships",
];

/// The values of `column` in `rows`.
fn column_values(rows: &Rows, column: &str) -> Vec<String> {
    let Some(i) = rows.columns.iter().position(|c| *c == column) else {
        return Vec::new();
    };
    rows.rows
        .iter()
        .filter_map(|r| r.get(i).cloned().flatten())
        .collect()
}

fn append(all: &mut BTreeMap<&'static str, Rows>, entity: &'static str, got: Rows) {
    let held = all.entry(entity).or_insert_with(|| Rows {
        columns: got.columns.clone(),
        rows: Vec::new(),
    });
    held.rows.extend(got.rows);
}

/// Adds to `pending` the keys of the rows whose `column` names one of
/// `ids`, for each (entity, column) the mapping gives.
async fn find_dependents(
    conn: &mut Conn<'_>,
    mapping: &Mapping,
    state: &State,
    pending: &mut Keys,
    of: &[(&'static str, &'static str)],
    ids: &[String],
) -> Result<(), MappedError> {
    if ids.is_empty() {
        return Ok(());
    }
    for (entity, column) in of {
        let (Some(query), Some(cols)) = (mapping.entities.get(entity), state.columns.get(entity))
        else {
            continue;
        };
        if !cols.contains(column) {
            continue;
        }
        let got = rows::read_where(conn, &state.columns, query, cols, column, ids).await?;
        let keys = column_values(&got, query.entity.key);
        pending.entry(query.entity.name).or_default().extend(keys);
    }
    Ok(())
}

/// The changes that bring the served snapshot from `state.at` to
/// `revision`, given the keys the log determined; `state` is brought to
/// `revision` too.
pub(super) async fn changes(
    conn: &mut Conn<'_>,
    mapping: &Mapping,
    state: &mut State,
    mut pending: Keys,
    revision: u64,
) -> Result<Outcome, MappedError> {
    let mut all: BTreeMap<&'static str, Rows> = BTreeMap::new();
    let mut done = Keys::new();
    let mut gone_users: Vec<String> = Vec::new();
    // What the batch does to the state, applied once every read is done:
    // a read that fails half-way leaves the state as it was, so the next
    // poll starts this batch again instead of a full reload. Each key is
    // decided once per batch, so the state before it is what counts.
    let mut appeared: Vec<(Parent, String)> = Vec::new();
    let mut gone_ids: Vec<(Parent, String)> = Vec::new();

    // Parents until no new key turns up: an appearance can make rows of
    // other parents worth reading again (a group's subgroups, a company's
    // users).
    loop {
        let mut progressed = false;
        for parent in Parent::ALL {
            let entity = parent.entity();
            let fresh: Vec<String> = pending
                .get(entity)
                .into_iter()
                .flatten()
                .filter(|k| !done.get(entity).is_some_and(|d| d.contains(*k)))
                .cloned()
                .collect();
            if fresh.is_empty() {
                continue;
            }
            progressed = true;
            done.entry(entity)
                .or_default()
                .extend(fresh.iter().cloned());
            let (Some(query), Some(cols)) =
                (mapping.entities.get(entity), state.columns.get(entity))
            else {
                continue;
            };
            let got = rows::read_where(conn, &state.columns, query, cols, query.entity.key, &fresh)
                .await?;
            let present: HashSet<String> =
                column_values(&got, query.entity.key).into_iter().collect();
            append(&mut all, entity, got);
            let mut named = Vec::new();
            let mut gone = Vec::new();
            for key in fresh {
                let was = state.known.contains(parent, &key);
                let now = present.contains(&key);
                if now && !was {
                    if state.misses.ids.contains(&(parent, key.clone())) {
                        named.push(key.clone());
                    }
                    appeared.push((parent, key));
                } else if was && !now {
                    if parent != Parent::Users {
                        return Ok(Outcome::Reload(Reload::Wide(format!(
                            "{entity} `{key}` was deleted"
                        ))));
                    }
                    gone_ids.push((parent, key.clone()));
                    gone.push(key);
                }
            }
            find_dependents(
                conn,
                mapping,
                state,
                &mut pending,
                dependents(parent),
                &named,
            )
            .await?;
            // The rows naming a deleted user are read again too: the delete
            // takes the user off tickets itself, but a company it managed
            // keeps naming it, and each such reference is now a miss.
            find_dependents(
                conn,
                mapping,
                state,
                &mut pending,
                dependents(Parent::Users),
                &gone,
            )
            .await?;
            gone_users.extend(gone);
        }
        if !progressed {
            break;
        }
    }

    // A ticket is read with its people, so that a ticket seen again never
    // keeps lists it lost or misses ones it gained.
    let tickets: Vec<String> = pending
        .get("tickets")
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    for people in ["ticket_ccs", "ticket_participants"] {
        if mapping.entities.contains_key(people) {
            pending
                .entry(people)
                .or_default()
                .extend(tickets.iter().cloned());
        }
    }
    for (entity, keys) in &pending {
        if Parent::of(entity).is_some() || keys.is_empty() {
            continue;
        }
        if READ_WHOLE.contains(entity) {
            return Ok(Outcome::Reload(Reload::Wide(format!(
                "{entity} changed, which a mapped source reads in full"
            ))));
        }
        let (Some(query), Some(cols)) = (mapping.entities.get(entity), state.columns.get(entity))
        else {
            continue;
        };
        let keys: Vec<String> = keys.iter().cloned().collect();
        let got =
            rows::read_where(conn, &state.columns, query, cols, query.entity.key, &keys).await?;
        append(&mut all, query.entity.name, got);
    }

    let invalid = |e: super::DecodeError| MappedError::Invalid {
        revision,
        cause: e.to_string(),
    };
    for (parent, key) in appeared {
        state.misses.ids.remove(&(parent, key.clone()));
        state.known.insert(parent, key);
    }
    for (parent, key) in gone_ids {
        state.known.remove(parent, &key);
        // Rows still naming it are read again if it returns.
        state.misses.ids.insert((parent, key));
    }
    for (entity, keys) in &pending {
        for key in keys {
            state.misses.forget(entity, key);
        }
    }
    let html = mapping.html_names;
    let mut parents = Parents::read(&all, html).map_err(invalid)?;
    parents.resolve(&state.known, &mut state.misses);
    let children = Children::read(&all, html, &state.known, &mut state.misses).map_err(invalid)?;
    Ok(Outcome::Changes(assemble(
        parents, children, &pending, gone_users,
    )))
}

fn user_fields(u: User) -> UserFields {
    UserFields {
        id: u.id,
        email: u.email,
        name: u.name,
        created_at: u.created_at,
        kind: u.kind,
        suspended: u.suspended,
        ticket_access: u.ticket_access,
        default_organisation: u.default_organisation,
        company: u.company,
        company_scoped: u.company_scoped,
    }
}

/// The changes, in an order each can apply in: groups and companies go
/// in first without their references (a new group's parent may be newer
/// still, a new company's owner a new user, two groups may swap places),
/// then every row whole; deleted users last, once nothing re-read names
/// them.
fn assemble(
    parents: Parents,
    children: Children,
    pending: &Keys,
    gone_users: Vec<String>,
) -> Vec<Change> {
    let keys = |entity: &str| pending.get(entity).into_iter().flatten();
    let mut out = Vec::new();
    for o in parents.organisations {
        out.push(Change::UpsertOrg(OrgFields {
            id: o.id,
            name: o.name,
            access: o.ticket_access,
        }));
    }
    // Every group read again goes in without its parent first: two groups
    // swapping places would otherwise close a loop halfway through.
    for g in &parents.groups {
        out.push(Change::UpsertGroup(Group {
            parent: None,
            ..g.clone()
        }));
    }
    out.extend(parents.groups.into_iter().map(Change::UpsertGroup));
    for p in parents.profiles {
        out.push(Change::UpsertProfile {
            id: p.id,
            name: p.name,
        });
    }
    let mut flags: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    for (p, f) in &children.profile_flags {
        flags.entry(p).or_default().push(*f);
    }
    for profile in keys("profile_flags") {
        out.push(Change::ProfileFlags {
            profile: profile.clone(),
            flags: flags.remove(profile.as_str()).unwrap_or_default(),
        });
    }
    for c in &parents.companies {
        let mut bare = c.clone();
        bare.parent = None;
        bare.owner = None;
        out.push(Change::UpsertCompany(bare));
    }
    out.extend(
        parents
            .users
            .into_iter()
            .map(|u| Change::UpsertUser(user_fields(u))),
    );
    out.extend(parents.companies.into_iter().map(Change::UpsertCompany));
    let mut grants: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    for (u, p, g) in &children.grants {
        grants.entry(u).or_default().push((p.clone(), g.clone()));
    }
    for user in keys("grants") {
        out.push(Change::Grants {
            user: user.clone(),
            grants: grants.remove(user.as_str()).unwrap_or_default(),
        });
    }
    let present: HashSet<&str> = children.tickets.iter().map(|t| t.id.as_str()).collect();
    for id in keys("tickets").filter(|id| !present.contains(id.as_str())) {
        out.push(Change::DeleteTicket { id: id.clone() });
    }
    out.extend(
        children
            .tickets
            .iter()
            .map(|t| Change::UpsertTicket(TicketFields::from(t))),
    );
    for (entity, role, list) in [
        ("ticket_ccs", Role::Cc, &children.ccs),
        (
            "ticket_participants",
            Role::Participant,
            &children.participants,
        ),
    ] {
        let mut by_ticket: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (t, u) in list {
            by_ticket.entry(t).or_default().push(u.clone());
        }
        for ticket in keys(entity) {
            out.push(Change::TicketPeople {
                ticket: ticket.clone(),
                role,
                users: by_ticket.remove(ticket.as_str()).unwrap_or_default(),
            });
        }
    }
    out.extend(gone_users.into_iter().map(|id| Change::DeleteUser { id }));
    out
}
