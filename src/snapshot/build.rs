//! Builds a whole snapshot from a validated dataset (the initial load).

/// Id → handle maps for the build. Every ticket resolves its requester
/// and assignee through one, so the hasher is foldhash (seeded per
/// process, as the snapshot's own id index) rather than SipHash.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use super::members;
use super::{
    ALL, CompanyRow, DomainIndex, DomainRow, EmailIndex, GrantRow, GroupRow, Idx, LimitIndex, NONE,
    OrgRow, ProfileRow, RequesterTime, Snapshot, SortedSeq, Table, TicketPeople, TicketRow,
    UNKNOWN, UserRow,
};
use crate::flags::Flag;
use crate::model::{Dataset, GrantScope, UserAccess, UserKind};

/// A dataset that does not hold together. The dataset validator reports
/// these for files, with file context; for data read from the database
/// this is the check (the schema enforces the rest).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("{entity} `{id}`: field {field}: unknown {target} `{value}`")]
    Dangling {
        entity: &'static str,
        id: String,
        field: &'static str,
        target: &'static str,
        value: String,
    },
    #[error("too many {0} for 32-bit handles")]
    TooMany(&'static str),
    #[error("{entity} `{id}`: field parent: parent cycle")]
    Cycle { entity: &'static str, id: String },
}

/// Finds a parent cycle among `parents` (handle → parent handle or NONE).
pub(super) fn find_cycle(parents: &[Idx]) -> Option<usize> {
    // 0 = unvisited, 1 = on the current path, 2 = done.
    let mut state = vec![0u8; parents.len()];
    for start in 0..parents.len() {
        let mut path = Vec::new();
        let mut at = start;
        loop {
            match state.get(at).copied() {
                Some(0) => {
                    state[at] = 1;
                    path.push(at);
                    match parents.get(at) {
                        Some(&p) if p != NONE => at = p as usize,
                        _ => break,
                    }
                }
                Some(1) => return Some(at),
                _ => break,
            }
        }
        for p in path {
            state[p] = 2;
        }
    }
    None
}

fn handles<'a>(
    ids: impl Iterator<Item = &'a str>,
    what: &'static str,
) -> Result<HashMap<&'a str, Idx>, SnapshotError> {
    ids.enumerate()
        .map(|(i, id)| {
            Idx::try_from(i)
                .ok()
                .filter(|h| *h < ALL)
                .map(|h| (id, h))
                .ok_or(SnapshotError::TooMany(what))
        })
        .collect()
}

struct Resolver<'a> {
    entity: &'static str,
    id: &'a str,
}

impl Resolver<'_> {
    fn one(
        &self,
        map: &HashMap<&str, Idx>,
        field: &'static str,
        target: &'static str,
        value: &str,
    ) -> Result<Idx, SnapshotError> {
        map.get(value)
            .copied()
            .ok_or_else(|| SnapshotError::Dangling {
                entity: self.entity,
                id: self.id.to_owned(),
                field,
                target,
                value: value.to_owned(),
            })
    }

    fn opt(
        &self,
        map: &HashMap<&str, Idx>,
        field: &'static str,
        target: &'static str,
        value: Option<&str>,
    ) -> Result<Idx, SnapshotError> {
        value.map_or(Ok(NONE), |v| self.one(map, field, target, v))
    }

    fn many(
        &self,
        map: &HashMap<&str, Idx>,
        field: &'static str,
        target: &'static str,
        values: &[String],
    ) -> Result<Vec<Idx>, SnapshotError> {
        let mut out = values
            .iter()
            .map(|v| self.one(map, field, target, v))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

impl Snapshot {
    /// Builds the snapshot of a dataset at revision 0.
    pub fn build(data: &Dataset) -> Result<Snapshot, SnapshotError> {
        // Users and tickets get handles in id order, so the lists built
        // below come out sorted without a sort per list.
        let mut users_sorted: Vec<&crate::model::User> = data.users.iter().collect();
        users_sorted.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        let mut tickets_sorted: Vec<&crate::model::Ticket> = data.tickets.iter().collect();
        tickets_sorted.sort_unstable_by(|a, b| a.id.cmp(&b.id));

        let org_h = handles(
            data.organisations.iter().map(|o| o.id.as_str()),
            "organisations",
        )?;
        let company_h = handles(data.companies.iter().map(|c| c.id.as_str()), "companies")?;
        let group_h = handles(data.groups.iter().map(|g| g.id.as_str()), "groups")?;
        let profile_h = handles(data.profiles.iter().map(|p| p.id.as_str()), "profiles")?;
        let user_h = handles(users_sorted.iter().map(|u| u.id.as_str()), "users")?;
        if tickets_sorted.len() >= ALL as usize {
            return Err(SnapshotError::TooMany("tickets"));
        }

        // Organisations, domains and partnerships.
        let mut org_rows = Vec::with_capacity(data.organisations.len());
        let mut domains = DomainIndex::default();
        for (i, org) in data.organisations.iter().enumerate() {
            let r = Resolver {
                entity: "organisation",
                id: &org.id,
            };
            let handle = Idx::try_from(i).unwrap_or(NONE);
            for d in &org.domains {
                if let Some(listed) = domains.entry(&d.domain.to_ascii_lowercase()) {
                    listed.push((handle, d.added_at));
                }
            }
            org_rows.push(OrgRow {
                id: org.id.as_str().into(),
                name: org.name.as_str().into(),
                access: org.ticket_access,
                domains: org
                    .domains
                    .iter()
                    .map(|d| DomainRow {
                        name: d.domain.to_ascii_lowercase().into_boxed_str(),
                        added_at: d.added_at,
                    })
                    .collect(),
                access_managers: r.many(
                    &user_h,
                    "access_managers",
                    "user",
                    &org.access_managers,
                )?,
                partners: Vec::new(),
                clients: Vec::new(),
                tickets: SortedSeq::default(),
                members: SortedSeq::default(),
                org_access_members: SortedSeq::default(),
            });
        }
        for p in &data.partnerships {
            let r = Resolver {
                entity: "partnership",
                id: &p.partner,
            };
            let partner = r.one(&org_h, "partner", "organisation", &p.partner)?;
            let client = r.one(&org_h, "client", "organisation", &p.client)?;
            org_rows[client as usize].partners.push((partner, p.since));
            org_rows[partner as usize].clients.push((client, p.since));
        }

        // Companies.
        let mut company_rows = Vec::with_capacity(data.companies.len());
        for c in &data.companies {
            let r = Resolver {
                entity: "company",
                id: &c.id,
            };
            company_rows.push(CompanyRow {
                id: c.id.as_str().into(),
                name: c.name.as_str().into(),
                parent: r.opt(&company_h, "parent", "company", c.parent.as_deref())?,
                owner: r.opt(&user_h, "owner", "user", c.owner.as_deref())?,
                requested: SortedSeq::default(),
            });
        }

        let company_parents: Vec<Idx> = company_rows.iter().map(|c| c.parent).collect();
        if let Some(i) = find_cycle(&company_parents) {
            return Err(SnapshotError::Cycle {
                entity: "company",
                id: company_rows[i].id.to_string(),
            });
        }

        // Groups and profiles.
        let mut group_rows = Vec::with_capacity(data.groups.len());
        for g in &data.groups {
            let r = Resolver {
                entity: "group",
                id: &g.id,
            };
            group_rows.push(GroupRow::new(
                g,
                r.opt(&group_h, "parent", "group", g.parent.as_deref())?,
            ));
        }
        for i in 0..group_rows.len() {
            let parent = group_rows[i].parent;
            if parent != NONE {
                group_rows[parent as usize]
                    .children
                    .push(Idx::try_from(i).unwrap_or(NONE));
            }
        }
        let group_parents: Vec<Idx> = group_rows.iter().map(|g| g.parent).collect();
        if let Some(i) = find_cycle(&group_parents) {
            return Err(SnapshotError::Cycle {
                entity: "group",
                id: group_rows[i].id.to_string(),
            });
        }
        let mut profile_rows: Vec<ProfileRow> = data
            .profiles
            .iter()
            .map(|p| ProfileRow {
                id: p.id.as_str().into(),
                name: p.name.as_str().into(),
                flags: p.flags,
                grantees: SortedSeq::default(),
            })
            .collect();

        // Users, with memberships materialised.
        let orgs = Table::from_rows(org_rows);
        let mut user_rows = Vec::with_capacity(users_sorted.len());
        for u in &users_sorted {
            let r = Resolver {
                entity: "user",
                id: &u.id,
            };
            let explicit_orgs =
                r.many(&org_h, "organisations", "organisation", &u.organisations)?;
            let memberships = members::derive(
                &explicit_orgs,
                u.email.as_deref().and_then(crate::model::email_domain),
                u.created_at,
                &orgs,
                &domains,
            );
            let mut grants = smallvec::SmallVec::with_capacity(u.grants.len());
            for g in &u.grants {
                grants.push(GrantRow {
                    profile: r.one(&profile_h, "grants.profile", "profile", &g.profile)?,
                    group: match &g.group {
                        GrantScope::All => ALL,
                        GrantScope::Group(id) => r.one(&group_h, "grants.group", "group", id)?,
                    },
                });
            }
            user_rows.push(UserRow {
                id: u.id.as_str().into(),
                name: u.name.as_deref().map(Into::into),
                email: u.email.as_deref().map(Into::into),
                created_at: u.created_at,
                kind: u.kind,
                suspended: u.suspended,
                access: u.ticket_access,
                orgs: members::organisations(&memberships),
                explicit_orgs,
                default_org: r.opt(
                    &org_h,
                    "default_organisation",
                    "organisation",
                    u.default_organisation.as_deref(),
                )?,
                company: r.opt(&company_h, "company", "company", u.company.as_deref())?,
                company_scoped: u.company_scoped,
                grants,
                involved: SortedSeq::default(),
            });
        }

        // User-side lists, built in user-id order so they come out sorted.
        let mut org_members: Vec<Vec<Idx>> = vec![Vec::new(); orgs.len()];
        let mut org_access_members: Vec<Vec<Idx>> = vec![Vec::new(); orgs.len()];
        let mut group_ir: Vec<Vec<Idx>> = vec![Vec::new(); group_rows.len()];
        let mut all_group_ir = Vec::new();
        let mut superadmins = Vec::new();
        for (i, u) in user_rows.iter().enumerate() {
            let handle = Idx::try_from(i).unwrap_or(NONE);
            for &org in &u.orgs {
                org_members[org as usize].push(handle);
                if u.access == UserAccess::Organisation {
                    org_access_members[org as usize].push(handle);
                }
            }
            match u.kind {
                UserKind::Superadmin => superadmins.push(handle),
                UserKind::Agent => {
                    for g in &u.grants {
                        if !profile_rows[g.profile as usize].flags.contains(Flag::IR) {
                            continue;
                        }
                        let list = if g.group == ALL {
                            &mut all_group_ir
                        } else {
                            &mut group_ir[g.group as usize]
                        };
                        if list.last() != Some(&handle) {
                            list.push(handle);
                        }
                    }
                }
                UserKind::EndUser => {}
            }
        }
        let mut orgs = orgs;
        for (org, (members, access_members)) in
            org_members.into_iter().zip(org_access_members).enumerate()
        {
            if let Some(row) = orgs.row_mut(Idx::try_from(org).unwrap_or(NONE)) {
                row.members = SortedSeq::from_sorted(members);
                row.org_access_members = SortedSeq::from_sorted(access_members);
            }
        }
        for (row, list) in group_rows.iter_mut().zip(group_ir) {
            row.ir_grantees = SortedSeq::from_sorted(list);
        }

        // Tickets and their posting lists, in ticket-id order.
        let mut ticket_rows = Vec::with_capacity(tickets_sorted.len());
        let mut org_tickets: Vec<Vec<Idx>> = vec![Vec::new(); orgs.len()];
        let mut group_tickets: Vec<Vec<Idx>> = vec![Vec::new(); group_rows.len()];
        let mut company_tickets: Vec<Vec<Idx>> = vec![Vec::new(); company_rows.len()];
        let mut involved: Vec<Vec<Idx>> = vec![Vec::new(); user_rows.len()];
        let mut limit_rows: Vec<[Vec<RequesterTime>; 2]> =
            vec![[Vec::new(), Vec::new()]; group_rows.len()];
        for (i, t) in tickets_sorted.iter().enumerate() {
            let handle = Idx::try_from(i).unwrap_or(NONE);
            let r = Resolver {
                entity: "ticket",
                id: &t.id,
            };
            // An empty requester is nobody (a mapped source's requester
            // it does not know): someone, but no user asking.
            let requester = if t.requester.is_empty() {
                UNKNOWN
            } else {
                r.one(&user_h, "requester", "user", &t.requester)?
            };
            let organisation = r.opt(
                &org_h,
                "organisation",
                "organisation",
                t.organisation.as_deref(),
            )?;
            let group = r.opt(&group_h, "group", "group", t.group.as_deref())?;
            let assignee = r.opt(&user_h, "assignee", "user", t.assignee.as_deref())?;
            let ccs = r.many(&user_h, "ccs", "user", &t.ccs)?;
            let participants = r.many(&user_h, "participants", "user", &t.participants)?;
            for user in [requester, assignee]
                .into_iter()
                .chain(ccs.iter().copied())
                .chain(participants.iter().copied())
            {
                if let Some(list) = involved.get_mut(user as usize)
                    && list.last() != Some(&handle)
                {
                    list.push(handle);
                }
            }
            if organisation != NONE {
                org_tickets[organisation as usize].push(handle);
            }
            let company = user_rows
                .get(requester as usize)
                .map_or(NONE, |u| u.company);
            if company != NONE {
                company_tickets[company as usize].push(handle);
            }
            if group != NONE {
                group_tickets[group as usize].push(handle);
                let slot = &mut limit_rows[group as usize];
                let key = RequesterTime::new(requester, t.created_at.nanos());
                slot[0].push(key);
                if t.status.is_open() {
                    slot[1].push(key);
                }
            }
            let people = if ccs.is_empty() && participants.is_empty() {
                None
            } else {
                Some(Box::new(TicketPeople { ccs, participants }))
            };
            ticket_rows.push(TicketRow {
                id: t.id.as_str().into(),
                created_at: t.created_at,
                requester,
                organisation,
                group,
                assignee,
                status: t.status,
                people,
            });
        }
        for (org, list) in org_tickets.into_iter().enumerate() {
            if let Some(row) = orgs.row_mut(Idx::try_from(org).unwrap_or(NONE)) {
                row.tickets = SortedSeq::from_sorted(list);
            }
        }
        for (row, list) in company_rows.iter_mut().zip(company_tickets) {
            row.requested = SortedSeq::from_sorted(list);
        }
        for ((row, list), [mut all, mut open]) in
            group_rows.iter_mut().zip(group_tickets).zip(limit_rows)
        {
            row.tickets = SortedSeq::from_sorted(list);
            let mut times: Vec<i64> = all.iter().map(|e| e.time).collect();
            times.sort_unstable();
            let mut open_times: Vec<i64> = open.iter().map(|e| e.time).collect();
            open_times.sort_unstable();
            all.sort_unstable();
            open.sort_unstable();
            row.limits = LimitIndex {
                all: SortedSeq::from_sorted(times),
                open: SortedSeq::from_sorted(open_times),
                by_requester: SortedSeq::from_sorted(all),
                open_by_requester: SortedSeq::from_sorted(open),
            };
        }
        for (row, list) in user_rows.iter_mut().zip(involved) {
            row.involved = SortedSeq::from_sorted(list);
        }

        // Users by email domain and by profile granted, in handle order.
        let mut by_domain: HashMap<String, Vec<Idx>> = HashMap::default();
        let mut grantees: Vec<Vec<Idx>> = vec![Vec::new(); profile_rows.len()];
        for (i, u) in user_rows.iter().enumerate() {
            let handle = Idx::try_from(i).unwrap_or(NONE);
            if let Some(domain) = u.email_domain() {
                by_domain
                    .entry(domain.to_ascii_lowercase())
                    .or_default()
                    .push(handle);
            }
            for g in &u.grants {
                if let Some(list) = grantees.get_mut(g.profile as usize)
                    && list.last() != Some(&handle)
                {
                    list.push(handle);
                }
            }
        }
        let mut email_users = EmailIndex::default();
        for (domain, users) in by_domain {
            if let Some(entry) = email_users.entry(&domain) {
                *entry = SortedSeq::from_sorted(users);
            }
        }
        for (row, list) in profile_rows.iter_mut().zip(grantees) {
            row.grantees = SortedSeq::from_sorted(list);
        }

        let ticket_count = ticket_rows.len();
        let mut snap = Snapshot {
            revision: 0,
            lineage: super::detached::next_lineage(),
            fixed_now: data.now,
            orgs,
            companies: Table::from_rows(company_rows),
            groups: Table::from_rows(group_rows),
            profiles: Table::from_rows(profile_rows),
            users: Table::from_rows(user_rows),
            tickets: Table::from_rows(ticket_rows),
            domains,
            email_users,
            superadmins: SortedSeq::from_sorted(superadmins),
            all_group_ir: SortedSeq::from_sorted(all_group_ir),
            all_tickets: SortedSeq::from_sorted(
                (0..ticket_count)
                    .map(|i| Idx::try_from(i).unwrap_or(NONE))
                    .collect(),
            ),
            sections: super::sections::SectionTables::default(),
        };
        snap.sections = super::sections::SectionTables::build(&data.sections, &snap)?;
        Ok(snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_parent_cycles_and_accepts_forests() {
        assert_eq!(find_cycle(&[NONE, 0, 0, 1]), None);
        assert!(find_cycle(&[1, 0]).is_some());
        assert!(find_cycle(&[0]).is_some());
        assert!(find_cycle(&[NONE, 2, 3, 1]).is_some());
        assert_eq!(find_cycle(&[]), None);
    }
}
