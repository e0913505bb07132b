//! Changes to the shape around users and tickets: organisations, their
//! domains and partnerships, groups, profiles and their flags, companies.
//! Wide effects are bounded by indexes: a domain or partnership change
//! re-derives only the users with an email at the domains involved; a
//! profile's IR flag re-posts only its grantees; a group's parent change
//! rewires two children lists. Deleting an organisation, group, profile or company
//! is left to a full reload (rare, and cascading through many tables).

use super::{
    ApplyError, CompanyRow, DomainRow, GroupRow, Idx, Keyed, NONE, OrgFields, OrgRow, ProfileRow,
    Snapshot, SortedSeq, Table,
};
use crate::flags::Flag;
use crate::model::{Company, Group, UserAccess, UserKind};
use crate::time::Timestamp;

fn row_error(table: &str, message: String) -> ApplyError {
    ApplyError::Row {
        table: table.to_owned(),
        message,
    }
}

/// Moves group `child` from `old`'s children to `new`'s, keeping each list
/// in handle order (the order a build gives).
fn rewire(groups: &mut Table<GroupRow>, child: Idx, old: Idx, new: Idx) {
    if old == new {
        return;
    }
    if let Some(row) = groups.row_mut(old) {
        row.children.retain(|c| *c != child);
    }
    if let Some(row) = groups.row_mut(new) {
        let at = row.children.partition_point(|c| *c < child);
        row.children.insert(at, child);
    }
}

/// Whether making `parent` the parent of `child` would close a loop, in a
/// table of `len` rows (no valid chain is longer).
fn closes_loop(parent_of: impl Fn(Idx) -> Idx, len: usize, child: Idx, parent: Idx) -> bool {
    let mut at = parent;
    for _ in 0..=len {
        if at == NONE {
            return false;
        }
        if at == child {
            return true;
        }
        at = parent_of(at);
    }
    true
}

impl Snapshot {
    /// Re-derives the memberships of `users`, touching only the member
    /// lists of organisations they join or leave.
    fn refresh_memberships(&mut self, users: &[Idx]) {
        for &u in users {
            let new = self.derive_orgs(u);
            let Snapshot {
                users: table, orgs, ..
            } = self;
            let table = &*table;
            let row = &table[u];
            if row.orgs == new {
                continue;
            }
            let by_user = |a: &Idx, b: &Idx| table.id(*a).cmp(table.id(*b));
            let org_access = row.access == UserAccess::Organisation;
            for (list, add) in [(&row.orgs, false), (&new, true)] {
                let other = if add { &row.orgs } else { &new };
                for &o in list.iter().filter(|o| !other.contains(o)) {
                    if let Some(org) = orgs.row_mut(o) {
                        org.members.toggle(u, add, by_user);
                        if org_access {
                            org.org_access_members.toggle(u, add, by_user);
                        }
                    }
                }
            }
            if let Some(row) = self.users.row_mut(u) {
                row.orgs = new;
            }
        }
    }

    /// Users with an email at one of `org`'s domains: whose membership of
    /// `org` and of its clients follows its domains and partnerships.
    fn domain_users(&self, org: Idx) -> Vec<Idx> {
        let mut out: Vec<Idx> = self.orgs[org]
            .domains
            .iter()
            .filter_map(|d| self.email_users.get(&d.name))
            .flat_map(|users| users.iter().copied())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Inserts or updates an organisation.
    pub fn upsert_org(&mut self, o: &OrgFields) {
        match self.orgs.lookup(&o.id) {
            Some(idx) => {
                if let Some(row) = self.orgs.row_mut(idx) {
                    row.name = o.name.as_str().into();
                    row.access = o.access;
                }
            }
            None => {
                // A new organisation has no relations yet: the vacant row
                // with its name and setting.
                self.orgs.push(OrgRow {
                    name: o.name.as_str().into(),
                    access: o.access,
                    ..OrgRow::vacant(o.id.as_str().into())
                });
            }
        }
    }

    /// Adds, re-dates (`present`) or removes one of an organisation's
    /// domains; the users with an email there are re-derived.
    pub fn set_domain(
        &mut self,
        org: &str,
        domain: &str,
        added_at: Timestamp,
        present: bool,
    ) -> Result<(), ApplyError> {
        let Some(oidx) = self.orgs.lookup(org) else {
            return if present {
                Err(row_error(
                    "organisation_domains",
                    format!("unknown organisation `{org}`"),
                ))
            } else {
                Ok(())
            };
        };
        let domain = domain.to_ascii_lowercase();
        if let Some(row) = self.orgs.row_mut(oidx) {
            match (row.domains.iter().position(|d| *d.name == *domain), present) {
                (Some(i), true) => row.domains[i].added_at = added_at,
                (Some(i), false) => {
                    row.domains.remove(i);
                }
                (None, true) => row.domains.push(DomainRow {
                    name: domain.as_str().into(),
                    added_at,
                }),
                (None, false) => {}
            }
        }
        if let Some(listed) = self.domains.entry(&domain) {
            listed.retain(|(o, _)| *o != oidx);
            if present {
                let at = listed.partition_point(|(o, _)| *o < oidx);
                listed.insert(at, (oidx, added_at));
            }
        }
        self.domains.remove_if(&domain, Vec::is_empty);
        let users: Vec<Idx> = self
            .email_users
            .get(&domain)
            .map(|u| u.iter().copied().collect())
            .unwrap_or_default();
        self.refresh_memberships(&users);
        Ok(())
    }

    /// Adds, re-dates (`present`) or removes the partnership in which
    /// `partner` serves `client`; the partner's domain users are re-derived.
    pub fn set_partnership(
        &mut self,
        partner: &str,
        client: &str,
        since: Timestamp,
        present: bool,
    ) -> Result<(), ApplyError> {
        let (Some(p), Some(c)) = (self.orgs.lookup(partner), self.orgs.lookup(client)) else {
            return if present {
                Err(row_error(
                    "partnerships",
                    format!("unknown organisation `{partner}` or `{client}`"),
                ))
            } else {
                Ok(())
            };
        };
        let set = |list: &mut Vec<(Idx, Timestamp)>, other: Idx| {
            list.retain(|(o, _)| *o != other);
            if present {
                list.push((other, since));
            }
        };
        if let Some(row) = self.orgs.row_mut(c) {
            set(&mut row.partners, p);
        }
        if let Some(row) = self.orgs.row_mut(p) {
            set(&mut row.clients, c);
        }
        let users = self.domain_users(p);
        self.refresh_memberships(&users);
        Ok(())
    }

    /// Inserts or updates a group. A parent that would close a loop is an
    /// error (the caller reloads, and a reload holds the data back).
    pub fn upsert_group(&mut self, g: &Group) -> Result<(), ApplyError> {
        let parent = match &g.parent {
            Some(p) => self.groups.lookup(p).ok_or_else(|| {
                row_error(
                    "groups",
                    format!("group `{}`: field parent_id: unknown group `{p}`", g.id),
                )
            })?,
            None => NONE,
        };
        let idx = match self.groups.lookup(&g.id) {
            Some(idx) => idx,
            None => self.groups.push(GroupRow::new(g, NONE)),
        };
        let groups = &self.groups;
        if closes_loop(|i| groups[i].parent, groups.len(), idx, parent) {
            return Err(row_error(
                "groups",
                format!(
                    "group `{}`: field parent_id: `{}` would make a parent cycle",
                    g.id,
                    g.parent.as_deref().unwrap_or_default()
                ),
            ));
        }
        let old_parent = self.groups[idx].parent;
        rewire(&mut self.groups, idx, old_parent, parent);
        if let Some(row) = self.groups.row_mut(idx) {
            row.name = g.name.as_str().into();
            row.parent = parent;
            row.propagate = g.propagate;
            row.open_ticket_limit = g.open_ticket_limit;
            row.enforce_open_limit = g.enforce_open_limit;
            row.total_ticket_limit = g.total_ticket_limit;
        }
        Ok(())
    }

    /// Inserts or renames a profile (its flags are rows of their own).
    pub fn upsert_profile(&mut self, id: &str, name: &str) {
        match self.profiles.lookup(id) {
            Some(idx) => {
                if let Some(row) = self.profiles.row_mut(idx) {
                    row.name = name.into();
                }
            }
            None => {
                self.profiles.push(ProfileRow {
                    id: id.into(),
                    name: name.into(),
                    flags: Default::default(),
                    grantees: SortedSeq::default(),
                });
            }
        }
    }

    /// Gives a profile a flag (`present`) or takes it away. Only IR is
    /// indexed (who may list a group's tickets), so only an IR change
    /// re-posts the profile's grantees.
    pub fn set_profile_flag(
        &mut self,
        profile: &str,
        flag: Flag,
        present: bool,
    ) -> Result<(), ApplyError> {
        let Some(pidx) = self.profiles.lookup(profile) else {
            return if present {
                Err(row_error(
                    "profile_flags",
                    format!("unknown profile `{profile}`"),
                ))
            } else {
                Ok(())
            };
        };
        if self.profiles[pidx].flags.contains(flag) == present {
            return Ok(());
        }
        let grantees: Vec<Idx> = if flag == Flag::IR {
            self.profiles[pidx].grantees.iter().copied().collect()
        } else {
            Vec::new()
        };
        for &u in &grantees {
            self.ir_postings(u, false);
        }
        if let Some(row) = self.profiles.row_mut(pidx) {
            if present {
                row.flags.insert(flag);
            } else {
                row.flags.remove(flag);
            }
        }
        for &u in &grantees {
            self.ir_postings(u, true);
        }
        Ok(())
    }

    /// Adds an agent's IR postings (`add`) or removes them.
    pub(super) fn ir_postings(&mut self, uidx: Idx, add: bool) {
        let Snapshot {
            users,
            groups,
            profiles,
            all_group_ir,
            ..
        } = self;
        let users = &*users;
        let row = &users[uidx];
        if row.kind != UserKind::Agent {
            return;
        }
        let by_user = |a: &Idx, b: &Idx| users.id(*a).cmp(users.id(*b));
        for g in &row.grants {
            if !profiles[g.profile].flags.contains(Flag::IR) {
                continue;
            }
            if g.group == super::ALL {
                all_group_ir.toggle(uidx, add, by_user);
            } else if let Some(group) = groups.row_mut(g.group) {
                group.ir_grantees.toggle(uidx, add, by_user);
            }
        }
    }

    /// Inserts or updates a company. A parent that would close a loop is an
    /// error, as for groups.
    pub fn upsert_company(&mut self, c: &Company) -> Result<(), ApplyError> {
        let unknown = |field: &str, target: &str, value: &str| {
            row_error(
                "companies",
                format!(
                    "company `{}`: field {field}: unknown {target} `{value}`",
                    c.id
                ),
            )
        };
        let parent = match &c.parent {
            Some(p) => self
                .companies
                .lookup(p)
                .ok_or_else(|| unknown("parent_id", "company", p))?,
            None => NONE,
        };
        let owner = match &c.owner {
            Some(o) => self
                .users
                .lookup(o)
                .ok_or_else(|| unknown("owner_id", "user", o))?,
            None => NONE,
        };
        let idx = match self.companies.lookup(&c.id) {
            Some(idx) => idx,
            None => self.companies.push(CompanyRow {
                id: c.id.as_str().into(),
                name: c.name.as_str().into(),
                parent: NONE,
                owner: NONE,
                requested: SortedSeq::default(),
            }),
        };
        let companies = &self.companies;
        if closes_loop(|i| companies[i].parent, companies.len(), idx, parent) {
            return Err(row_error(
                "companies",
                format!(
                    "company `{}`: field parent_id: `{}` would make a parent cycle",
                    c.id,
                    c.parent.as_deref().unwrap_or_default()
                ),
            ));
        }
        if let Some(row) = self.companies.row_mut(idx) {
            row.name = c.name.as_str().into();
            row.parent = parent;
            row.owner = owner;
        }
        Ok(())
    }
}
