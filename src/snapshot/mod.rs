//! The immutable, indexed picture of one data revision that every decision
//! and list is computed from.
//!
//! Strings are interned into per-kind [`Table`]s; relations are kept as
//! [`SortedSeq`] posting lists ordered by the byte order of the ids they
//! point to, so lists page by merging and checks cost a few lookups. All
//! containers are copy-on-write, so the next revision can be derived from
//! this one by copying only the chunks a change touches.

mod apply;
mod build;
mod change;
mod detached;
mod export;
pub use apply::ApplyError;
pub use build::SnapshotError;
pub use change::{
    Change, OrgFields, Role, SectionEntity, SectionLink, SectionRow, TicketFields, UserFields,
};
pub use detached::{HandleEpoch, TicketFacts};
pub use sharded::ShardedMap;
pub mod cow;
mod members;
mod replace;
pub mod sections;
mod sections_apply;
mod sharded;
mod structure;
mod table;

use compact_str::CompactString;
use smallvec::SmallVec;

pub use cow::{Cursor, SeqIter, SortedSeq};
pub use members::{Membership, Via};
pub use table::{Idx, Keyed, NONE, Table, UNKNOWN};

use crate::flags::FlagSet;
use crate::model::{OrgAccess, Status, UserAccess, UserKind};
use crate::time::Timestamp;

/// The grant scope `*` in [`GrantRow::group`].
pub const ALL: Idx = u32::MAX - 1;

#[derive(Debug, Clone)]
pub struct DomainRow {
    pub name: Box<str>,
    pub added_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct OrgRow {
    pub id: CompactString,
    pub name: Box<str>,
    pub access: OrgAccess,
    pub domains: Vec<DomainRow>,
    /// Sorted handles of the users who may change the access settings.
    pub access_managers: Vec<Idx>,
    /// Partnerships in which this organisation is the client: (partner, since).
    pub partners: Vec<(Idx, Timestamp)>,
    /// Partnerships in which this organisation is the partner: (client, since).
    pub clients: Vec<(Idx, Timestamp)>,
    /// Tickets of this organisation, by ticket id.
    pub tickets: SortedSeq<Idx>,
    /// Members (explicit or derived), by user id.
    pub members: SortedSeq<Idx>,
    /// Members whose own setting is `organisation`, by user id: the viewers
    /// of this organisation's tickets when it is not shared.
    pub org_access_members: SortedSeq<Idx>,
}

#[derive(Debug, Clone)]
pub struct CompanyRow {
    pub id: CompactString,
    pub name: Box<str>,
    pub parent: Idx,
    /// The owner's reach is checked from the company side (walking up the
    /// parents of the company asked about), so neither children nor owned
    /// companies are kept.
    pub owner: Idx,
    /// Tickets whose requester belongs to this company, by ticket id: what a
    /// company-scoped agent's group access can reach.
    pub requested: SortedSeq<Idx>,
}

/// A (requester, creation time in nanoseconds) key of a limit index,
/// packed to 12 bytes because there is one per ticket with a group (two
/// while it is open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(C, packed(4))]
pub struct RequesterTime {
    pub requester: Idx,
    pub time: i64,
}

impl RequesterTime {
    pub fn new(requester: Idx, time: i64) -> Self {
        Self { requester, time }
    }
}

/// Creation-time indexes of one group's tickets, for ticket limits.
#[derive(Debug, Clone, Default)]
pub struct LimitIndex {
    pub all: SortedSeq<i64>,
    pub open: SortedSeq<i64>,
    pub by_requester: SortedSeq<RequesterTime>,
    pub open_by_requester: SortedSeq<RequesterTime>,
}

impl LimitIndex {
    /// Tickets created in `[from, to]`, all or only open ones, of one
    /// requester or of everyone.
    pub fn count(
        &self,
        requester: Option<Idx>,
        open_only: bool,
        from: Timestamp,
        to: Timestamp,
    ) -> usize {
        let (from, to) = (from.nanos(), to.nanos());
        match requester {
            None => {
                let seq = if open_only { &self.open } else { &self.all };
                seq.count_before(|t| *t <= to)
                    .saturating_sub(seq.count_before(|t| *t < from))
            }
            Some(user) => {
                let seq = if open_only {
                    &self.open_by_requester
                } else {
                    &self.by_requester
                };
                let (from, to) = (RequesterTime::new(user, from), RequesterTime::new(user, to));
                seq.count_before(|e| *e <= to)
                    .saturating_sub(seq.count_before(|e| *e < from))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct GroupRow {
    pub id: CompactString,
    pub name: Box<str>,
    pub parent: Idx,
    pub propagate: bool,
    pub open_ticket_limit: u32,
    pub enforce_open_limit: bool,
    pub total_ticket_limit: u32,
    pub children: Vec<Idx>,
    /// Tickets of exactly this group, by ticket id.
    pub tickets: SortedSeq<Idx>,
    /// Agents with a grant on exactly this group whose profile holds IR, by
    /// user id (suspension and company scope are checked when listing).
    pub ir_grantees: SortedSeq<Idx>,
    pub limits: LimitIndex,
}

impl GroupRow {
    /// A group with no tickets or grantees yet, below `parent`.
    pub(crate) fn new(g: &crate::model::Group, parent: Idx) -> Self {
        Self {
            id: g.id.as_str().into(),
            name: g.name.as_str().into(),
            parent,
            propagate: g.propagate,
            open_ticket_limit: g.open_ticket_limit,
            enforce_open_limit: g.enforce_open_limit,
            total_ticket_limit: g.total_ticket_limit,
            children: Vec::new(),
            tickets: SortedSeq::default(),
            ir_grantees: SortedSeq::default(),
            limits: LimitIndex::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProfileRow {
    pub id: CompactString,
    pub name: Box<str>,
    pub flags: FlagSet,
    /// Users holding at least one grant of this profile, by handle: whose
    /// IR postings follow this profile's flags.
    pub grantees: SortedSeq<Idx>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantRow {
    pub profile: Idx,
    /// A group handle, or [`ALL`].
    pub group: Idx,
}

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: CompactString,
    pub name: Option<Box<str>>,
    pub email: Option<Box<str>>,
    pub created_at: Timestamp,
    pub kind: UserKind,
    pub suspended: bool,
    pub access: UserAccess,
    /// Explicit memberships, sorted handles.
    pub explicit_orgs: Vec<Idx>,
    /// Every membership (explicit, domain, partnership), sorted handles;
    /// inline because a check reads it and most users have few.
    pub orgs: SmallVec<[Idx; 4]>,
    pub default_org: Idx,
    pub company: Idx,
    pub company_scoped: bool,
    /// Inline for the same reason as `orgs`.
    pub grants: SmallVec<[GrantRow; 3]>,
    /// Tickets this user requested, is assigned, CC'd or took part in, by
    /// ticket id: the user clause of the visibility filter.
    pub involved: SortedSeq<Idx>,
}

impl UserRow {
    pub fn email_domain(&self) -> Option<&str> {
        self.email.as_deref().and_then(crate::model::email_domain)
    }

    pub fn is_member(&self, org: Idx) -> bool {
        org != NONE && self.orgs.binary_search(&org).is_ok()
    }
}

/// CCs and participants, boxed because most tickets have none.
#[derive(Debug, Clone, Default)]
pub struct TicketPeople {
    pub ccs: Vec<Idx>,
    pub participants: Vec<Idx>,
}

#[derive(Debug, Clone)]
pub struct TicketRow {
    pub id: CompactString,
    pub created_at: Timestamp,
    pub requester: Idx,
    pub organisation: Idx,
    pub group: Idx,
    pub assignee: Idx,
    pub status: Status,
    pub people: Option<Box<TicketPeople>>,
}

impl TicketRow {
    pub fn ccs(&self) -> &[Idx] {
        self.people.as_deref().map_or(&[], |p| &p.ccs)
    }

    pub fn participants(&self) -> &[Idx] {
        self.people.as_deref().map_or(&[], |p| &p.participants)
    }
}

/// Implements [`Keyed`] for rows whose id is the field `id`, with the
/// vacant row each builds from an id.
macro_rules! keyed {
    ($($row:ty => |$id:ident| $vacant:expr;)+) => {
        $(impl Keyed for $row {
            fn key(&self) -> &str {
                &self.id
            }

            fn vacant($id: CompactString) -> Self {
                $vacant
            }
        })+
    };
}

// Vacant rows hold no relation and grant nothing: a suspended user with no
// memberships or grants, groups and organisations with no members or
// tickets, a ticket nobody is on.
keyed! {
    OrgRow => |id| Self {
        id,
        name: Box::default(),
        access: OrgAccess::Own,
        domains: Vec::new(),
        access_managers: Vec::new(),
        partners: Vec::new(),
        clients: Vec::new(),
        tickets: SortedSeq::default(),
        members: SortedSeq::default(),
        org_access_members: SortedSeq::default(),
    };
    CompanyRow => |id| Self {
        id,
        name: Box::default(),
        parent: NONE,
        owner: NONE,
        requested: SortedSeq::default(),
    };
    GroupRow => |id| Self {
        id,
        name: Box::default(),
        parent: NONE,
        propagate: false,
        open_ticket_limit: 0,
        enforce_open_limit: false,
        total_ticket_limit: 0,
        children: Vec::new(),
        tickets: SortedSeq::default(),
        ir_grantees: SortedSeq::default(),
        limits: LimitIndex::default(),
    };
    ProfileRow => |id| Self {
        id,
        name: Box::default(),
        flags: FlagSet::default(),
        grantees: SortedSeq::default(),
    };
    UserRow => |id| Self {
        id,
        name: None,
        email: None,
        created_at: Timestamp::from_nanos(0),
        kind: UserKind::EndUser,
        suspended: true,
        access: UserAccess::Own,
        explicit_orgs: Vec::new(),
        orgs: SmallVec::new(),
        default_org: NONE,
        company: NONE,
        company_scoped: true,
        grants: SmallVec::new(),
        involved: SortedSeq::default(),
    };
    TicketRow => |id| Self {
        id,
        created_at: Timestamp::from_nanos(0),
        requester: NONE,
        organisation: NONE,
        group: NONE,
        assignee: NONE,
        status: Status::Closed,
        people: None,
    };
}

/// Lower-cased email domain → the organisations listing it (by handle),
/// with `added_at`.
pub type DomainIndex = ShardedMap<Vec<(Idx, Timestamp)>>;

/// Lower-cased email domain → the users with an email there, by handle:
/// whose memberships a domain or partnership change can alter.
pub type EmailIndex = ShardedMap<SortedSeq<Idx>>;

/// One revision of the data, indexed for decisions and lists.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub(crate) revision: u64,
    /// Which full build this snapshot descends from (see [`HandleEpoch`]).
    pub(crate) lineage: u64,
    pub(crate) fixed_now: Option<Timestamp>,
    pub(crate) orgs: Table<OrgRow>,
    pub(crate) companies: Table<CompanyRow>,
    pub(crate) groups: Table<GroupRow>,
    pub(crate) profiles: Table<ProfileRow>,
    pub(crate) users: Table<UserRow>,
    pub(crate) tickets: Table<TicketRow>,
    pub(crate) domains: DomainIndex,
    pub(crate) email_users: EmailIndex,
    /// Superadmins, by user id.
    pub(crate) superadmins: SortedSeq<Idx>,
    /// Agents with a grant on `*` whose profile holds IR, by user id.
    pub(crate) all_group_ir: SortedSeq<Idx>,
    /// Every ticket, by ticket id.
    pub(crate) all_tickets: SortedSeq<Idx>,
    /// The service-desk sections (access model §8).
    pub(crate) sections: sections::SectionTables,
}

/// Entity counts of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    pub organisations: usize,
    pub companies: usize,
    pub groups: usize,
    pub profiles: usize,
    pub users: usize,
    pub tickets: usize,
}

impl Snapshot {
    /// The data revision this snapshot holds.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn set_revision(&mut self, revision: u64) {
        self.revision = revision;
    }

    /// Fixes the clock for ticket limits (a dataset's `now`; `None`: the
    /// wall clock), as a dataset file does.
    pub fn fix_now(&mut self, now: Option<Timestamp>) {
        self.fixed_now = now;
    }

    /// The clock the data fixes for ticket limits (a dataset's `now`), if any.
    pub fn fixed_now(&self) -> Option<Timestamp> {
        self.fixed_now
    }

    pub fn stats(&self) -> Stats {
        Stats {
            organisations: self.orgs.len(),
            companies: self.companies.len(),
            groups: self.groups.len(),
            profiles: self.profiles.len(),
            users: self.users.len(),
            tickets: self.tickets.len(),
        }
    }

    /// Whether the data holds a user with this id.
    pub fn knows_user(&self, id: &str) -> bool {
        self.users.lookup(id).is_some()
    }

    /// Whether the data holds an organisation with this id.
    pub fn knows_organisation(&self, id: &str) -> bool {
        self.orgs.lookup(id).is_some()
    }

    /// Whether the data holds a group with this id.
    pub fn knows_group(&self, id: &str) -> bool {
        self.groups.lookup(id).is_some()
    }

    /// [`LimitIndex::count`] by ids, for what counts ticket limits
    /// elsewhere (the ticket cache's SQL) to be compared with: `None` when
    /// the group, or the requester, is unknown.
    pub fn limit_count(
        &self,
        group: &str,
        requester: Option<&str>,
        open_only: bool,
        from: Timestamp,
        to: Timestamp,
    ) -> Option<usize> {
        let (_, row) = self.groups.get(group)?;
        let requester = match requester {
            None => None,
            Some(id) => Some(self.users.lookup(id)?),
        };
        Some(row.limits.count(requester, open_only, from, to))
    }

    /// Whether `ancestor` is a proper ancestor of `group`.
    pub(crate) fn is_group_ancestor(&self, ancestor: Idx, group: Idx) -> bool {
        let mut current = self.groups[group].parent;
        // The validator rejects cycles; the bound only guards against a bug.
        for _ in 0..self.groups.len() {
            if current == NONE {
                return false;
            }
            if current == ancestor {
                return true;
            }
            current = self.groups[current].parent;
        }
        false
    }

    /// Ancestors of a group, nearest first.
    pub(crate) fn group_ancestors(&self, group: Idx) -> impl Iterator<Item = Idx> + '_ {
        let mut current = self.groups[group].parent;
        let mut budget = self.groups.len();
        std::iter::from_fn(move || {
            if current == NONE || budget == 0 {
                return None;
            }
            budget -= 1;
            let found = current;
            current = self.groups[current].parent;
            Some(found)
        })
    }

    /// A group and its descendants.
    pub(crate) fn group_subtree(&self, group: Idx) -> Vec<Idx> {
        let mut out = vec![group];
        let mut next = 0;
        while let Some(&g) = out.get(next) {
            out.extend(self.groups[g].children.iter().copied());
            next += 1;
        }
        out
    }

    /// A company and its ancestors, nearest first.
    pub(crate) fn company_chain(&self, company: Idx) -> impl Iterator<Item = Idx> + '_ {
        let mut current = company;
        let mut budget = self.companies.len();
        std::iter::from_fn(move || {
            if current == NONE || budget == 0 {
                return None;
            }
            budget -= 1;
            let found = current;
            current = self.companies[current].parent;
            Some(found)
        })
    }
}

/// Every membership of a user with its reason, recomputed from the rules
/// (for explanations; decisions use the materialised `UserRow::orgs`).
pub fn members_of(snap: &Snapshot, user: &UserRow) -> Vec<Membership> {
    members::derive(
        &user.explicit_orgs,
        user.email_domain(),
        user.created_at,
        &snap.orgs,
        &snap.domains,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::generate::{Spec, generate};

    /// `ticket_authz_snapshot_entities` reads these counts: a row deleted
    /// row by row must leave them at once, not at the next full load.
    #[test]
    fn deleted_rows_leave_the_entity_counts() {
        let data = generate(&Spec {
            users: 50,
            organisations: 4,
            companies: 3,
            groups: 4,
            profiles: 3,
            tickets: 80,
            seed: 5,
        });
        let mut snap = Snapshot::build(&data).unwrap();
        let before = snap.stats();
        let ticket = data.tickets[0].id.clone();
        snap.delete_ticket(&ticket);
        snap.delete_ticket(&ticket);
        let unreferenced = data
            .users
            .iter()
            .find(|u| {
                data.tickets.iter().all(|t| t.requester != u.id)
                    && data
                        .companies
                        .iter()
                        .all(|c| c.owner.as_ref() != Some(&u.id))
            })
            .unwrap();
        snap.delete_user(&unreferenced.id);
        let after = snap.stats();
        assert_eq!(after.tickets, before.tickets - 1);
        assert_eq!(after.users, before.users - 1);
        assert!(snap.tickets.get(&ticket).is_none());
    }
}
