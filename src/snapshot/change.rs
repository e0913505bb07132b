//! A typed change to one row of the permission data: what every source
//! decodes its change log into and [`Snapshot::apply`] applies. Free of any
//! storage format: no table names, no SQL, no JSON.

use serde::{Deserialize, Serialize};

use super::{ApplyError, Snapshot};
use crate::flags::Flag;
use crate::model::{Company, Group, MemberRole, OrgAccess, Status, UserAccess, UserKind};
use crate::time::Timestamp;

/// A ticket row as stored (CCs and participants are rows of their own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketFields {
    pub id: String,
    pub created_at: Timestamp,
    pub requester: String,
    pub organisation: Option<String>,
    pub group: Option<String>,
    pub assignee: Option<String>,
    pub status: Status,
}

impl From<&crate::model::Ticket> for TicketFields {
    /// The ticket's own row, without its CCs and participants.
    fn from(t: &crate::model::Ticket) -> Self {
        TicketFields {
            id: t.id.clone(),
            created_at: t.created_at,
            requester: t.requester.clone(),
            organisation: t.organisation.clone(),
            group: t.group.clone(),
            assignee: t.assignee.clone(),
            status: t.status,
        }
    }
}

/// Which list of a ticket a person is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Cc,
    Participant,
}

/// A user row as stored (memberships and grants are rows of their own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFields {
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub created_at: Timestamp,
    pub kind: UserKind,
    pub suspended: bool,
    pub ticket_access: UserAccess,
    pub default_organisation: Option<String>,
    pub company: Option<String>,
    pub company_scoped: bool,
}

/// An organisation row as stored (domains, partnerships, members and
/// managers are rows of their own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgFields {
    pub id: String,
    pub name: String,
    pub access: OrgAccess,
}

/// The row of one service-desk section entity (access model §8) as
/// stored; its lists (members, groups, companies, users) are link rows of
/// their own ([`SectionLink`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SectionRow {
    Project {
        id: String,
        name: String,
        owner: Option<String>,
    },
    /// `parent` must be a task of the same project, and no ancestor of the
    /// task may be the task itself.
    Task {
        id: String,
        name: String,
        project: String,
        parent: Option<String>,
    },
    WikiPage {
        id: String,
        name: String,
    },
    InventoryItem {
        id: String,
        name: String,
        owner: Option<String>,
        public: bool,
    },
    Invoice {
        id: String,
        company: String,
    },
    Lead {
        id: String,
        name: String,
        company: Option<String>,
        owner: Option<String>,
    },
    AgendaEvent {
        id: String,
        name: String,
        owner: Option<String>,
        public: bool,
    },
    DownloadCategory {
        id: String,
        name: String,
    },
    Download {
        id: String,
        name: String,
        category: String,
    },
}

/// Which section entity a [`Change::DeleteSection`] removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SectionEntity {
    Project,
    Task,
    WikiPage,
    InventoryItem,
    Invoice,
    Lead,
    AgendaEvent,
    DownloadCategory,
    Download,
}

/// One entry of a section entity's lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SectionLink {
    ProjectMember {
        project: String,
        user: String,
        role: MemberRole,
    },
    TaskMember {
        task: String,
        user: String,
        role: MemberRole,
    },
    /// A group on a wiki page's write list (`write`) or read list.
    WikiGroup {
        page: String,
        group: String,
        write: bool,
    },
    ItemCompany {
        item: String,
        company: String,
    },
    /// A user an inventory item is associated with.
    ItemUser {
        item: String,
        user: String,
    },
    EventGroup {
        event: String,
        group: String,
    },
    CategoryGroup {
        category: String,
        group: String,
    },
}

/// One row change. Link rows are switched on (`present`) or off; an update
/// of a link row is its old image off, then its new image on. Deleting an
/// organisation, group, profile or company, or changing the id of one, has
/// no variant: it cascades through many rows, so a source asks for a full
/// reload instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// Inserts or updates a ticket; its CCs and participants are kept.
    UpsertTicket(TicketFields),
    /// Deletes a ticket; an unknown one is already gone.
    DeleteTicket { id: String },
    /// Puts a user on a ticket's CC or participant list, or takes them off.
    TicketPerson {
        ticket: String,
        user: String,
        role: Role,
        present: bool,
    },
    /// Inserts or updates a user; its memberships and grants are kept.
    UpsertUser(UserFields),
    /// Deletes a user, taking it off every ticket it was on.
    DeleteUser { id: String },
    /// An explicit membership of an organisation.
    Membership {
        user: String,
        organisation: String,
        present: bool,
    },
    /// A grant of a profile, on one group or (`group` None) on every group.
    Grant {
        user: String,
        profile: String,
        group: Option<String>,
        present: bool,
    },
    /// An organisation's access manager.
    AccessManager {
        organisation: String,
        user: String,
        present: bool,
    },
    /// One of an organisation's email domains; `present` with a known
    /// domain re-dates it.
    Domain {
        organisation: String,
        domain: String,
        added_at: Timestamp,
        present: bool,
    },
    /// The partnership in which `partner` serves `client`.
    Partnership {
        partner: String,
        client: String,
        since: Timestamp,
        present: bool,
    },
    /// One flag of a profile.
    ProfileFlag {
        profile: String,
        flag: Flag,
        present: bool,
    },
    /// Replaces a ticket's CCs or participants with `users` (a mapped
    /// source's re-read of one ticket's rows).
    TicketPeople {
        ticket: String,
        role: Role,
        users: Vec<String>,
    },
    /// Replaces a user's grants: (profile, group, or `None` for every
    /// group).
    Grants {
        user: String,
        grants: Vec<(String, Option<String>)>,
    },
    /// Replaces a profile's flags.
    ProfileFlags { profile: String, flags: Vec<Flag> },
    /// Inserts or updates an organisation.
    UpsertOrg(OrgFields),
    /// Inserts or updates a group; a parent that closes a loop is refused.
    UpsertGroup(Group),
    /// Inserts or renames a profile; its flags are rows of their own.
    UpsertProfile { id: String, name: String },
    /// Inserts or updates a company; a parent that closes a loop is refused.
    UpsertCompany(Company),
    /// Inserts or updates a section entity; its lists are kept. A task
    /// whose parent closes a loop or is in another project is refused.
    UpsertSection(SectionRow),
    /// Deletes a section entity; an unknown one is already gone. What
    /// refers to it (tasks of a project, subtasks, downloads of a
    /// category) is deleted by changes of its own.
    DeleteSection { entity: SectionEntity, id: String },
    /// Puts an entry on one of a section entity's lists, or takes it off.
    SectionLink { link: SectionLink, present: bool },
}

impl Snapshot {
    /// Applies one change in place, re-indexing only what it touches. On an
    /// error the snapshot may be part-changed: apply to a clone and drop it
    /// (as the follower does), never to a snapshot being served.
    pub fn apply(&mut self, change: &Change) -> Result<(), ApplyError> {
        match change {
            Change::UpsertTicket(t) => self.upsert_ticket(t),
            Change::DeleteTicket { id } => {
                self.delete_ticket(id);
                Ok(())
            }
            Change::TicketPerson {
                ticket,
                user,
                role,
                present,
            } => self.set_ticket_person(ticket, user, *role, *present),
            Change::UpsertUser(u) => self.upsert_user(u),
            Change::DeleteUser { id } => {
                self.delete_user(id);
                Ok(())
            }
            Change::Membership {
                user,
                organisation,
                present,
            } => self.set_membership(user, organisation, *present),
            Change::Grant {
                user,
                profile,
                group,
                present,
            } => self.set_grant(user, profile, group.as_deref(), *present),
            Change::AccessManager {
                organisation,
                user,
                present,
            } => self.set_access_manager(organisation, user, *present),
            Change::Domain {
                organisation,
                domain,
                added_at,
                present,
            } => self.set_domain(organisation, domain, *added_at, *present),
            Change::Partnership {
                partner,
                client,
                since,
                present,
            } => self.set_partnership(partner, client, *since, *present),
            Change::ProfileFlag {
                profile,
                flag,
                present,
            } => self.set_profile_flag(profile, *flag, *present),
            Change::TicketPeople {
                ticket,
                role,
                users,
            } => self.replace_ticket_people(ticket, *role, users),
            Change::Grants { user, grants } => self.replace_grants(user, grants),
            Change::ProfileFlags { profile, flags } => self.replace_profile_flags(profile, flags),
            Change::UpsertOrg(o) => {
                self.upsert_org(o);
                Ok(())
            }
            Change::UpsertGroup(g) => self.upsert_group(g),
            Change::UpsertProfile { id, name } => {
                self.upsert_profile(id, name);
                Ok(())
            }
            Change::UpsertCompany(c) => self.upsert_company(c),
            Change::UpsertSection(row) => self.upsert_section(row),
            Change::DeleteSection { entity, id } => {
                self.delete_section(*entity, id);
                Ok(())
            }
            Change::SectionLink { link, present } => self.set_section_link(link, *present),
        }
    }

    /// Applies `changes` in order and sets the revision they bring the
    /// snapshot to; stops at the first error (see [`Snapshot::apply`]).
    pub fn apply_all(&mut self, changes: &[Change], revision: u64) -> Result<(), ApplyError> {
        for change in changes {
            self.apply(change)?;
        }
        self.set_revision(revision);
        Ok(())
    }
}
