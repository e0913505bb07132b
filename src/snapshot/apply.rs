//! One-row changes applied to a snapshot in place (what
//! `Snapshot::apply` dispatches to): tickets, CCs, participants, users,
//! explicit memberships, grants and access managers.
//! Each touches only the postings of that row, copying the chunks it writes
//! (the previous snapshot keeps its own).

use smallvec::SmallVec;

use super::{
    Idx, NONE, RequesterTime, Role, Snapshot, TicketFields, TicketPeople, TicketRow, UNKNOWN,
    UserFields,
};
use crate::model::{UserAccess, UserKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("ticket `{ticket}`: field {field}: unknown {target} `{value}`")]
    Dangling {
        ticket: String,
        field: &'static str,
        target: &'static str,
        value: String,
    },
    #[error("{table}: {message}")]
    Row { table: String, message: String },
}

impl Snapshot {
    /// Adds the ticket's postings (`add`) or removes them.
    fn ticket_postings(&mut self, idx: Idx, add: bool) {
        let Snapshot {
            tickets,
            users,
            orgs,
            groups,
            companies,
            ..
        } = self;
        let tickets = &*tickets;
        let row: &TicketRow = &tickets[idx];
        let by_id = |a: &Idx, b: &Idx| tickets.id(*a).cmp(tickets.id(*b));
        let mut people: SmallVec<[Idx; 4]> = [row.requester, row.assignee]
            .into_iter()
            .chain(row.ccs().iter().copied())
            .chain(row.participants().iter().copied())
            .filter(|u| *u != NONE)
            .collect();
        people.sort_unstable();
        people.dedup();
        for u in people {
            if let Some(user) = users.row_mut(u) {
                user.involved.toggle(idx, add, by_id);
            }
        }
        // `row_mut(NONE)` is `None`: tickets without an organisation skip this.
        if let Some(org) = orgs.row_mut(row.organisation) {
            org.tickets.toggle(idx, add, by_id);
        }
        let company = users[row.requester].company;
        if let Some(c) = companies.row_mut(company) {
            c.requested.toggle(idx, add, by_id);
        }
        if let Some(g) = groups.row_mut(row.group) {
            g.tickets.toggle(idx, add, by_id);
            // Limit indexes are multisets: one entry per ticket.
            let time = row.created_at.nanos();
            let key = RequesterTime::new(row.requester, time);
            g.limits.all.count_in(time, add, i64::cmp);
            g.limits.by_requester.count_in(key, add, RequesterTime::cmp);
            if row.status.is_open() {
                g.limits.open.count_in(time, add, i64::cmp);
                g.limits
                    .open_by_requester
                    .count_in(key, add, RequesterTime::cmp);
            }
        }
    }

    fn resolve_user(&self, ticket: &str, field: &'static str, id: &str) -> Result<Idx, ApplyError> {
        self.users.lookup(id).ok_or_else(|| ApplyError::Dangling {
            ticket: ticket.to_owned(),
            field,
            target: "user",
            value: id.to_owned(),
        })
    }

    /// Inserts or updates a ticket (its CCs and participants are kept).
    pub fn upsert_ticket(&mut self, t: &TicketFields) -> Result<(), ApplyError> {
        let dangling = |field, target, value: &str| ApplyError::Dangling {
            ticket: t.id.clone(),
            field,
            target,
            value: value.to_owned(),
        };
        // An empty requester is nobody, as in `build`.
        let requester = if t.requester.is_empty() {
            UNKNOWN
        } else {
            self.resolve_user(&t.id, "requester", &t.requester)?
        };
        let assignee = match &t.assignee {
            Some(a) => self.resolve_user(&t.id, "assignee", a)?,
            None => NONE,
        };
        let organisation = match &t.organisation {
            Some(o) => self
                .orgs
                .lookup(o)
                .ok_or_else(|| dangling("organisation", "organisation", o))?,
            None => NONE,
        };
        let group = match &t.group {
            Some(g) => self
                .groups
                .lookup(g)
                .ok_or_else(|| dangling("group", "group", g))?,
            None => NONE,
        };
        match self.tickets.lookup(&t.id) {
            Some(idx) => {
                self.ticket_postings(idx, false);
                if let Some(row) = self.tickets.row_mut(idx) {
                    row.created_at = t.created_at;
                    row.requester = requester;
                    row.organisation = organisation;
                    row.group = group;
                    row.assignee = assignee;
                    row.status = t.status;
                }
                self.ticket_postings(idx, true);
            }
            None => {
                let idx = self.tickets.push(TicketRow {
                    id: t.id.as_str().into(),
                    created_at: t.created_at,
                    requester,
                    organisation,
                    group,
                    assignee,
                    status: t.status,
                    people: None,
                });
                let tickets = &self.tickets;
                self.all_tickets
                    .insert_unique(idx, |a, b| tickets.id(*a).cmp(tickets.id(*b)));
                self.ticket_postings(idx, true);
            }
        }
        Ok(())
    }

    /// Deletes a ticket; an unknown one is already gone.
    pub fn delete_ticket(&mut self, id: &str) {
        let Some(idx) = self.tickets.lookup(id) else {
            return;
        };
        self.ticket_postings(idx, false);
        let tickets = &self.tickets;
        self.all_tickets
            .remove(&idx, |a, b| tickets.id(*a).cmp(tickets.id(*b)));
        self.tickets.remove(id);
    }

    /// Puts a user on a ticket's CC or participant list, or takes them off.
    /// Taking someone off a ticket that is gone does nothing.
    pub fn set_ticket_person(
        &mut self,
        ticket: &str,
        user: &str,
        role: Role,
        present: bool,
    ) -> Result<(), ApplyError> {
        let Some(idx) = self.tickets.lookup(ticket) else {
            if present {
                return Err(ApplyError::Row {
                    table: "ticket_ccs/ticket_participants".into(),
                    message: format!("unknown ticket `{ticket}`"),
                });
            }
            return Ok(());
        };
        let field = match role {
            Role::Cc => "ccs",
            Role::Participant => "participants",
        };
        let uidx = match self.users.lookup(user) {
            Some(u) => u,
            None if !present => return Ok(()),
            None => {
                return Err(ApplyError::Dangling {
                    ticket: ticket.to_owned(),
                    field,
                    target: "user",
                    value: user.to_owned(),
                });
            }
        };
        self.ticket_postings(idx, false);
        if let Some(row) = self.tickets.row_mut(idx) {
            let people = row
                .people
                .get_or_insert_with(|| Box::new(TicketPeople::default()));
            let list = match role {
                Role::Cc => &mut people.ccs,
                Role::Participant => &mut people.participants,
            };
            match (list.binary_search(&uidx), present) {
                (Err(at), true) => list.insert(at, uidx),
                (Ok(at), false) => {
                    list.remove(at);
                }
                _ => {}
            }
            if people.ccs.is_empty() && people.participants.is_empty() {
                row.people = None;
            }
        }
        self.ticket_postings(idx, true);
        Ok(())
    }
}

impl Snapshot {
    /// Adds a user's postings (`add`) or removes them: organisation member
    /// lists, superadmins, IR grantee lists, and its requested tickets in its
    /// company's list. (The email and profile indexes change only with the
    /// email and the grants: see `upsert_user`, `set_grant`, `delete_user`.)
    fn user_postings(&mut self, uidx: Idx, add: bool) {
        let Snapshot {
            users,
            orgs,
            companies,
            tickets,
            superadmins,
            ..
        } = self;
        let users = &*users;
        let tickets = &*tickets;
        let row = &users[uidx];
        let by_user = |a: &Idx, b: &Idx| users.id(*a).cmp(users.id(*b));
        let by_ticket = |a: &Idx, b: &Idx| tickets.id(*a).cmp(tickets.id(*b));
        for &o in &row.orgs {
            if let Some(org) = orgs.row_mut(o) {
                org.members.toggle(uidx, add, by_user);
                if row.access == UserAccess::Organisation {
                    org.org_access_members.toggle(uidx, add, by_user);
                }
            }
        }
        if row.kind == UserKind::Superadmin {
            superadmins.toggle(uidx, add, by_user);
        }
        if let Some(company) = companies.row_mut(row.company) {
            for &t in row.involved.iter() {
                if tickets[t].requester == uidx {
                    company.requested.toggle(t, add, by_ticket);
                }
            }
        }
        self.ir_postings(uidx, add);
    }

    /// Lists (`add`) or unlists a user under its lower-cased email domain.
    fn index_email(&mut self, uidx: Idx, domain: Option<&str>, add: bool) {
        let Some(domain) = domain else {
            return;
        };
        if let Some(users) = self.email_users.entry(domain) {
            users.toggle(uidx, add, Idx::cmp);
        }
        self.email_users
            .remove_if(domain, super::SortedSeq::is_empty);
    }

    /// Recomputes a user's memberships from its explicit ones, email and
    /// creation time.
    pub(super) fn derive_orgs(&self, uidx: Idx) -> smallvec::SmallVec<[Idx; 4]> {
        let row = &self.users[uidx];
        super::members::organisations(&super::members_of(self, row))
    }

    /// Changes a user through `change`, keeping every index in step.
    fn edit_user(&mut self, uidx: Idx, change: impl FnOnce(&mut super::UserRow)) {
        self.user_postings(uidx, false);
        if let Some(row) = self.users.row_mut(uidx) {
            change(row);
        }
        let orgs = self.derive_orgs(uidx);
        if let Some(row) = self.users.row_mut(uidx) {
            row.orgs = orgs;
        }
        self.user_postings(uidx, true);
    }

    /// Inserts or updates a user (memberships and grants are kept).
    pub fn upsert_user(&mut self, u: &UserFields) -> Result<(), ApplyError> {
        let dangling = |field, target, value: &str| ApplyError::Row {
            table: "users".into(),
            message: format!("user `{}`: field {field}: unknown {target} `{value}`", u.id),
        };
        let default_org = match &u.default_organisation {
            Some(o) => self
                .orgs
                .lookup(o)
                .ok_or_else(|| dangling("default_organisation_id", "organisation", o))?,
            None => NONE,
        };
        let company = match &u.company {
            Some(c) => self
                .companies
                .lookup(c)
                .ok_or_else(|| dangling("company_id", "company", c))?,
            None => NONE,
        };
        let uidx = match self.users.lookup(&u.id) {
            Some(uidx) => {
                let old = self.users[uidx].email_domain().map(str::to_ascii_lowercase);
                let new = u
                    .email
                    .as_deref()
                    .and_then(crate::model::email_domain)
                    .map(str::to_ascii_lowercase);
                if old != new {
                    self.index_email(uidx, old.as_deref(), false);
                    self.index_email(uidx, new.as_deref(), true);
                }
                uidx
            }
            None => {
                let uidx = self.users.push(super::UserRow {
                    id: u.id.as_str().into(),
                    name: None,
                    email: None,
                    created_at: u.created_at,
                    kind: u.kind,
                    suspended: u.suspended,
                    access: u.ticket_access,
                    explicit_orgs: Vec::new(),
                    orgs: smallvec::SmallVec::new(),
                    default_org,
                    company,
                    company_scoped: u.company_scoped,
                    grants: smallvec::SmallVec::new(),
                    involved: super::SortedSeq::default(),
                });
                let domain = u
                    .email
                    .as_deref()
                    .and_then(crate::model::email_domain)
                    .map(str::to_ascii_lowercase);
                self.index_email(uidx, domain.as_deref(), true);
                uidx
            }
        };
        self.edit_user(uidx, |row| {
            row.name = u.name.as_deref().map(Into::into);
            row.email = u.email.as_deref().map(Into::into);
            row.created_at = u.created_at;
            row.kind = u.kind;
            row.suspended = u.suspended;
            row.access = u.ticket_access;
            row.default_org = default_org;
            row.company = company;
            row.company_scoped = u.company_scoped;
        });
        Ok(())
    }

    /// Deletes a user: its postings go, and it is taken off the tickets it
    /// was CC'd on, took part in or was assigned (the database sends those
    /// row changes too, possibly after this one).
    pub fn delete_user(&mut self, id: &str) {
        let Some(uidx) = self.users.lookup(id) else {
            return;
        };
        self.user_postings(uidx, false);
        let domain = self.users[uidx].email_domain().map(str::to_ascii_lowercase);
        self.index_email(uidx, domain.as_deref(), false);
        let profiles: Vec<Idx> = self.users[uidx].grants.iter().map(|g| g.profile).collect();
        for p in profiles {
            if let Some(row) = self.profiles.row_mut(p) {
                row.grantees.toggle(uidx, false, Idx::cmp);
            }
        }
        let involved: Vec<Idx> = self.users[uidx].involved.iter().copied().collect();
        for t in involved {
            self.ticket_postings(t, false);
            if let Some(row) = self.tickets.row_mut(t) {
                if row.assignee == uidx {
                    row.assignee = NONE;
                }
                // A mapped source's tickets outlive their requester, who
                // is then nobody (our own schema refuses the delete).
                if row.requester == uidx {
                    row.requester = UNKNOWN;
                }
                if let Some(people) = row.people.as_deref_mut() {
                    people.ccs.retain(|u| *u != uidx);
                    people.participants.retain(|u| *u != uidx);
                }
            }
            self.ticket_postings(t, true);
        }
        self.users.remove(id);
    }

    /// Adds (`present`) or removes an explicit membership.
    pub fn set_membership(
        &mut self,
        user: &str,
        org: &str,
        present: bool,
    ) -> Result<(), ApplyError> {
        let (Some(uidx), Some(oidx)) = (self.users.lookup(user), self.orgs.lookup(org)) else {
            return if present {
                Err(ApplyError::Row {
                    table: "user_organisations".into(),
                    message: format!("unknown user `{user}` or organisation `{org}`"),
                })
            } else {
                Ok(())
            };
        };
        self.edit_user(uidx, |row| {
            match (row.explicit_orgs.binary_search(&oidx), present) {
                (Err(at), true) => row.explicit_orgs.insert(at, oidx),
                (Ok(at), false) => {
                    row.explicit_orgs.remove(at);
                }
                _ => {}
            }
        });
        Ok(())
    }

    /// Adds (`present`) or removes a grant; `group` None is every group.
    pub fn set_grant(
        &mut self,
        user: &str,
        profile: &str,
        group: Option<&str>,
        present: bool,
    ) -> Result<(), ApplyError> {
        let uidx = self.users.lookup(user);
        let pidx = self.profiles.lookup(profile);
        let gidx = match group {
            None => Some(super::ALL),
            Some(g) => self.groups.lookup(g),
        };
        let (Some(uidx), Some(pidx), Some(gidx)) = (uidx, pidx, gidx) else {
            return if present {
                Err(ApplyError::Row {
                    table: "grants".into(),
                    message: format!("unknown user `{user}`, profile `{profile}` or group"),
                })
            } else {
                Ok(())
            };
        };
        let grant = super::GrantRow {
            profile: pidx,
            group: gidx,
        };
        self.edit_user(uidx, |row| {
            let at = row.grants.iter().position(|g| *g == grant);
            match (at, present) {
                (None, true) => row.grants.push(grant),
                (Some(i), false) => {
                    row.grants.remove(i);
                }
                _ => {}
            }
        });
        let holds = self.users[uidx].grants.iter().any(|g| g.profile == pidx);
        if let Some(row) = self.profiles.row_mut(pidx) {
            row.grantees.toggle(uidx, holds, Idx::cmp);
        }
        Ok(())
    }

    /// Adds (`present`) or removes an organisation's access manager.
    pub fn set_access_manager(
        &mut self,
        org: &str,
        user: &str,
        present: bool,
    ) -> Result<(), ApplyError> {
        let (Some(oidx), Some(uidx)) = (self.orgs.lookup(org), self.users.lookup(user)) else {
            return if present {
                Err(ApplyError::Row {
                    table: "organisation_access_managers".into(),
                    message: format!("unknown organisation `{org}` or user `{user}`"),
                })
            } else {
                Ok(())
            };
        };
        if let Some(row) = self.orgs.row_mut(oidx) {
            match (row.access_managers.binary_search(&uidx), present) {
                (Err(at), true) => row.access_managers.insert(at, uidx),
                (Ok(at), false) => {
                    row.access_managers.remove(at);
                }
                _ => {}
            }
        }
        Ok(())
    }
}
