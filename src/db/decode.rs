//! Our schema's change-log rows (table, op, JSON row images) decoded into
//! typed [`Change`]s; what row-by-row cannot apply becomes a full reload.
//! Errors name the table and the field.

use serde_json::Value;

use super::changes::{ChangeRow, LogBatch};
use crate::flags::Flag;
use crate::follow::{Batch, Reload};
use crate::model::{Company, Group, MemberRole, OrgAccess, Status, UserAccess, UserKind};
use crate::snapshot::{
    Change, OrgFields, Role, SectionEntity, SectionLink, SectionRow, TicketFields, UserFields,
};
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum DecodeError {
    #[error("{table}: {message}")]
    Row { table: String, message: String },
    /// Not an error in the data: a change that a full reload applies.
    #[error("{0}: applied by a full reload")]
    Wide(String),
}

/// A batch of decoded changes, or the reason it is applied by a full
/// reload.
pub(super) fn decode(log: LogBatch) -> Batch {
    let mut batch = Batch {
        revision: log.revision,
        changes: Vec::with_capacity(log.rows.len()),
        reload: None,
        committed_at: log.committed_at,
    };
    if log.bulk {
        batch.reload = Some(Reload::Bulk);
        batch.changes.clear();
        return batch;
    }
    for row in &log.rows {
        if let Err(e) = decode_row(row, &mut batch.changes) {
            batch.reload = Some(match e {
                DecodeError::Wide(_) => Reload::Wide(e.to_string()),
                DecodeError::Row { .. } => Reload::Undecodable(e.to_string()),
            });
            batch.changes.clear();
            return batch;
        }
    }
    batch
}

fn row_error(table: &str, message: impl Into<String>) -> DecodeError {
    DecodeError::Row {
        table: table.to_owned(),
        message: message.into(),
    }
}

fn parse(table: &str, text: &Option<String>) -> Result<Value, DecodeError> {
    let text = text
        .as_deref()
        .ok_or_else(|| row_error(table, "missing row image"))?;
    serde_json::from_str(text).map_err(|e| row_error(table, e.to_string()))
}

fn text(table: &str, row: &Value, field: &str) -> Result<String, DecodeError> {
    row.get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| row_error(table, format!("field {field}: missing")))
}

fn optional(row: &Value, field: &str) -> Option<String> {
    row.get(field).and_then(Value::as_str).map(str::to_owned)
}

fn timestamp(table: &str, row: &Value, field: &str) -> Result<Timestamp, DecodeError> {
    text(table, row, field)?
        .parse::<Timestamp>()
        .map_err(|e| row_error(table, format!("field {field}: {e}")))
}

fn count(table: &str, row: &Value, field: &str) -> Result<u32, DecodeError> {
    row.get(field)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| row_error(table, format!("field {field}: not a count")))
}

/// A boolean column: PostgreSQL's JSON has booleans, SQLite's has 0 and 1.
fn boolean(table: &str, row: &Value, field: &str) -> Result<bool, DecodeError> {
    match row.get(field) {
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Number(n)) => Ok(n.as_i64() != Some(0)),
        _ => Err(row_error(table, format!("field {field}: not a boolean"))),
    }
}

/// An enum column, parsed by `parse`.
fn named<T>(
    table: &str,
    row: &Value,
    field: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, DecodeError> {
    let value = text(table, row, field)?;
    parse(&value).ok_or_else(|| row_error(table, format!("field {field}: `{value}`")))
}

fn ticket_fields(row: &Value) -> Result<TicketFields, DecodeError> {
    let t = "tickets";
    Ok(TicketFields {
        id: text(t, row, "id")?,
        created_at: timestamp(t, row, "created_at")?,
        requester: text(t, row, "requester_id")?,
        organisation: optional(row, "organisation_id"),
        group: optional(row, "group_id"),
        assignee: optional(row, "assignee_id"),
        status: named(t, row, "status", Status::parse)?,
    })
}

fn user_fields(row: &Value) -> Result<UserFields, DecodeError> {
    let t = "users";
    Ok(UserFields {
        id: text(t, row, "id")?,
        email: optional(row, "email"),
        name: optional(row, "name"),
        created_at: timestamp(t, row, "created_at")?,
        kind: named(t, row, "kind", UserKind::parse)?,
        suspended: boolean(t, row, "suspended")?,
        ticket_access: named(t, row, "ticket_access", UserAccess::parse)?,
        default_organisation: optional(row, "default_organisation_id"),
        company: optional(row, "company_id"),
        company_scoped: boolean(t, row, "company_scoped")?,
    })
}

fn group(row: &Value) -> Result<Group, DecodeError> {
    let t = "groups";
    Ok(Group {
        id: text(t, row, "id")?,
        name: text(t, row, "name")?,
        parent: optional(row, "parent_id"),
        propagate: boolean(t, row, "propagate")?,
        open_ticket_limit: count(t, row, "open_ticket_limit")?,
        enforce_open_limit: boolean(t, row, "enforce_open_limit")?,
        total_ticket_limit: count(t, row, "total_ticket_limit")?,
    })
}

/// The change one image of a link table switches on (`present`) or off.
fn link(table: &str, row: &Value, present: bool) -> Result<Change, DecodeError> {
    Ok(match table {
        "user_organisations" => Change::Membership {
            user: text(table, row, "user_id")?,
            organisation: text(table, row, "organisation_id")?,
            present,
        },
        "grants" => Change::Grant {
            user: text(table, row, "user_id")?,
            profile: text(table, row, "profile_id")?,
            group: optional(row, "group_id"),
            present,
        },
        "organisation_access_managers" => Change::AccessManager {
            organisation: text(table, row, "organisation_id")?,
            user: text(table, row, "user_id")?,
            present,
        },
        "organisation_domains" => Change::Domain {
            organisation: text(table, row, "organisation_id")?,
            domain: text(table, row, "domain")?,
            added_at: timestamp(table, row, "added_at")?,
            present,
        },
        "partnerships" => Change::Partnership {
            partner: text(table, row, "partner_id")?,
            client: text(table, row, "client_id")?,
            since: timestamp(table, row, "since")?,
            present,
        },
        "profile_flags" => Change::ProfileFlag {
            profile: text(table, row, "profile_id")?,
            flag: named(table, row, "flag", Flag::parse)?,
            present,
        },
        "ticket_ccs" | "ticket_participants" => Change::TicketPerson {
            ticket: text(table, row, "ticket_id")?,
            user: text(table, row, "user_id")?,
            role: if table == "ticket_ccs" {
                Role::Cc
            } else {
                Role::Participant
            },
            present,
        },
        _ => return section_link(table, row, present),
    })
}

/// The change one image of a section list table switches on or off.
fn section_link(table: &str, row: &Value, present: bool) -> Result<Change, DecodeError> {
    let role = || named(table, row, "role", MemberRole::parse);
    let link = match table {
        "project_members" => SectionLink::ProjectMember {
            project: text(table, row, "project_id")?,
            user: text(table, row, "user_id")?,
            role: role()?,
        },
        "task_members" => SectionLink::TaskMember {
            task: text(table, row, "task_id")?,
            user: text(table, row, "user_id")?,
            role: role()?,
        },
        "wiki_page_groups" => SectionLink::WikiGroup {
            page: text(table, row, "wiki_page_id")?,
            group: text(table, row, "group_id")?,
            write: named(table, row, "access", |a| match a {
                "read" => Some(false),
                "write" => Some(true),
                _ => None,
            })?,
        },
        "inventory_item_companies" => SectionLink::ItemCompany {
            item: text(table, row, "inventory_item_id")?,
            company: text(table, row, "company_id")?,
        },
        "inventory_item_users" => SectionLink::ItemUser {
            item: text(table, row, "inventory_item_id")?,
            user: text(table, row, "user_id")?,
        },
        "agenda_event_groups" => SectionLink::EventGroup {
            event: text(table, row, "agenda_event_id")?,
            group: text(table, row, "group_id")?,
        },
        "download_category_groups" => SectionLink::CategoryGroup {
            category: text(table, row, "download_category_id")?,
            group: text(table, row, "group_id")?,
        },
        _ => return Err(row_error(table, "not a link table")),
    };
    Ok(Change::SectionLink { link, present })
}

/// A section entity's row from an image of its table.
fn section_row(table: &str, row: &Value) -> Result<SectionRow, DecodeError> {
    let id = text(table, row, "id")?;
    let name = || text(table, row, "name");
    Ok(match table {
        "projects" => SectionRow::Project {
            name: name()?,
            owner: optional(row, "owner_id"),
            id,
        },
        "tasks" => SectionRow::Task {
            name: name()?,
            project: text(table, row, "project_id")?,
            parent: optional(row, "parent_id"),
            id,
        },
        "wiki_pages" => SectionRow::WikiPage { name: name()?, id },
        "inventory_items" => SectionRow::InventoryItem {
            name: name()?,
            owner: optional(row, "owner_id"),
            public: boolean(table, row, "public")?,
            id,
        },
        "invoices" => SectionRow::Invoice {
            company: text(table, row, "company_id")?,
            id,
        },
        "leads" => SectionRow::Lead {
            name: name()?,
            company: optional(row, "company_id"),
            owner: optional(row, "owner_id"),
            id,
        },
        "agenda_events" => SectionRow::AgendaEvent {
            name: name()?,
            owner: optional(row, "owner_id"),
            public: boolean(table, row, "public")?,
            id,
        },
        "download_categories" => SectionRow::DownloadCategory { name: name()?, id },
        _ => SectionRow::Download {
            name: name()?,
            category: text(table, row, "category_id")?,
            id,
        },
    })
}

/// The entity a section table holds.
fn section_entity(table: &str) -> Option<SectionEntity> {
    Some(match table {
        "projects" => SectionEntity::Project,
        "tasks" => SectionEntity::Task,
        "wiki_pages" => SectionEntity::WikiPage,
        "inventory_items" => SectionEntity::InventoryItem,
        "invoices" => SectionEntity::Invoice,
        "leads" => SectionEntity::Lead,
        "agenda_events" => SectionEntity::AgendaEvent,
        "download_categories" => SectionEntity::DownloadCategory,
        "downloads" => SectionEntity::Download,
        _ => return None,
    })
}

/// The upsert of a ticket, a user or a section entity from its new image; an update that
/// changes the id deletes the old one first.
fn entity_change(
    c: &ChangeRow,
    out: &mut Vec<Change>,
    upsert: impl Fn(&Value) -> Result<(String, Change), DecodeError>,
    delete: impl Fn(String) -> Change,
) -> Result<(), DecodeError> {
    let table = c.table.as_str();
    if c.op == "D" {
        out.push(delete(text(table, &parse(table, &c.old)?, "id")?));
        return Ok(());
    }
    let (id, change) = upsert(&parse(table, &c.new)?)?;
    if c.op == "U" {
        let old = text(table, &parse(table, &c.old)?, "id")?;
        if old != id {
            out.push(delete(old));
        }
    }
    out.push(change);
    Ok(())
}

/// The upsert of an organisation, group, profile or company. Deleting one,
/// or changing its id, moves every reference to it: a full reload.
fn shape(c: &ChangeRow) -> Result<Change, DecodeError> {
    let table = c.table.as_str();
    if c.op == "D" {
        return Err(DecodeError::Wide(format!("{table}: a row deleted")));
    }
    let new = parse(table, &c.new)?;
    if c.op == "U" && text(table, &parse(table, &c.old)?, "id")? != text(table, &new, "id")? {
        return Err(DecodeError::Wide(format!("{table}: an id changed")));
    }
    Ok(match table {
        "organisations" => Change::UpsertOrg(OrgFields {
            id: text(table, &new, "id")?,
            name: text(table, &new, "name")?,
            access: named(table, &new, "ticket_access", OrgAccess::parse)?,
        }),
        "groups" => Change::UpsertGroup(group(&new)?),
        "profiles" => Change::UpsertProfile {
            id: text(table, &new, "id")?,
            name: text(table, &new, "name")?,
        },
        _ => Change::UpsertCompany(Company {
            id: text(table, &new, "id")?,
            name: text(table, &new, "name")?,
            parent: optional(&new, "parent_id"),
            owner: optional(&new, "owner_id"),
        }),
    })
}

/// Appends the changes of one change-log row to `out`.
fn decode_row(c: &ChangeRow, out: &mut Vec<Change>) -> Result<(), DecodeError> {
    let table = c.table.as_str();
    if !matches!(c.op.as_str(), "I" | "U" | "D") {
        return Err(row_error(
            table,
            format!("cannot apply `{}` row by row", c.op),
        ));
    }
    if let Some(entity) = section_entity(table) {
        return entity_change(
            c,
            out,
            |row| {
                let r = section_row(table, row)?;
                Ok((text(table, row, "id")?, Change::UpsertSection(r)))
            },
            |id| Change::DeleteSection { entity, id },
        );
    }
    match table {
        "tickets" => entity_change(
            c,
            out,
            |row| {
                let t = ticket_fields(row)?;
                Ok((t.id.clone(), Change::UpsertTicket(t)))
            },
            |id| Change::DeleteTicket { id },
        ),
        "users" => entity_change(
            c,
            out,
            |row| {
                let u = user_fields(row)?;
                Ok((u.id.clone(), Change::UpsertUser(u)))
            },
            |id| Change::DeleteUser { id },
        ),
        "organisations" | "groups" | "profiles" | "companies" => {
            out.push(shape(c)?);
            Ok(())
        }
        "ticket_ccs"
        | "ticket_participants"
        | "user_organisations"
        | "grants"
        | "organisation_access_managers"
        | "organisation_domains"
        | "partnerships"
        | "profile_flags"
        | "project_members"
        | "task_members"
        | "wiki_page_groups"
        | "inventory_item_companies"
        | "inventory_item_users"
        | "agenda_event_groups"
        | "download_category_groups" => {
            if c.op != "I" {
                out.push(link(table, &parse(table, &c.old)?, false)?);
            }
            if c.op != "D" {
                out.push(link(table, &parse(table, &c.new)?, true)?);
            }
            Ok(())
        }
        _ => Err(DecodeError::Wide(format!(
            "{table}: not applied row by row"
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn row(table: &str, op: &str, old: Option<&str>, new: Option<&str>) -> ChangeRow {
        ChangeRow {
            table: table.into(),
            op: op.into(),
            old: old.map(Into::into),
            new: new.map(Into::into),
        }
    }

    fn batch(rows: Vec<ChangeRow>) -> Batch {
        decode(LogBatch {
            revision: 7,
            bulk: false,
            rows,
            committed_at: None,
        })
    }

    #[test]
    fn an_update_of_a_link_row_is_its_old_image_off_then_its_new_one_on() {
        let b = batch(vec![row(
            "ticket_ccs",
            "U",
            Some(r#"{"ticket_id":"1","user_id":"a"}"#),
            Some(r#"{"ticket_id":"1","user_id":"b"}"#),
        )]);
        assert_eq!(b.reload, None);
        assert_eq!(
            b.changes,
            vec![
                Change::TicketPerson {
                    ticket: "1".into(),
                    user: "a".into(),
                    role: Role::Cc,
                    present: false
                },
                Change::TicketPerson {
                    ticket: "1".into(),
                    user: "b".into(),
                    role: Role::Cc,
                    present: true
                },
            ]
        );
    }

    #[test]
    fn deleting_or_renaming_an_organisation_reloads_and_a_bad_field_is_named() {
        let deleted = batch(vec![row("organisations", "D", Some(r#"{"id":"o"}"#), None)]);
        assert!(matches!(deleted.reload, Some(Reload::Wide(_))));
        assert!(deleted.changes.is_empty());
        let renamed = batch(vec![row(
            "groups",
            "U",
            Some(r#"{"id":"g"}"#),
            Some(r#"{"id":"h"}"#),
        )]);
        assert_eq!(
            renamed.reload,
            Some(Reload::Wide(
                "groups: an id changed: applied by a full reload".into()
            ))
        );
        let bad = batch(vec![row(
            "tickets",
            "I",
            None,
            Some(
                r#"{"id":"1","created_at":"2026-01-01T00:00:00Z","requester_id":"a","status":"lost"}"#,
            ),
        )]);
        assert_eq!(
            bad.reload,
            Some(Reload::Undecodable("tickets: field status: `lost`".into()))
        );
    }
}
