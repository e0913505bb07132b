//! Derived relations (access model §2) evaluated on a snapshot: effective
//! flags, company reach, and their explanations.

use crate::flags::{Flag, FlagSet};
use crate::model::UserKind;
use crate::snapshot::{ALL, Idx, NONE, Snapshot, TicketRow, UNKNOWN, UserRow, Via};

use super::decision::Explain;

/// `flags(U, G)`; `group` is `NONE` for a ticket without a group, `ALL` to
/// ask for grants on `*` itself. End-users have no flags.
pub(crate) fn flags_on(snap: &Snapshot, user: &UserRow, group: Idx) -> FlagSet {
    if user.kind != UserKind::Agent {
        return FlagSet::EMPTY;
    }
    let mut flags = FlagSet::EMPTY;
    for grant in &user.grants {
        if grant_applies(snap, grant.group, group) {
            flags = flags.union(snap.profiles[grant.profile].flags);
        }
    }
    flags
}

/// Whether a grant on `granted` applies to `group` (the same group, `*`, or
/// a propagating ancestor).
pub(crate) fn grant_applies(snap: &Snapshot, granted: Idx, group: Idx) -> bool {
    if granted == ALL || granted == group {
        return true;
    }
    group != NONE
        && group != ALL
        && snap.groups[granted].propagate
        && snap.is_group_ancestor(granted, group)
}

/// Whether `user` holds `flag` in any group through any grant (CRM rules).
pub(crate) fn has_flag_anywhere(snap: &Snapshot, user: &UserRow, flag: Flag) -> bool {
    user.kind == UserKind::Agent
        && user
            .grants
            .iter()
            .any(|g| snap.profiles[g.profile].flags.contains(flag))
}

/// The company condition of grp(F): a company-scoped agent reaches only
/// tickets whose requester is in the agent's own company.
pub(crate) fn company_allows(snap: &Snapshot, user: &UserRow, ticket: &TicketRow) -> bool {
    !user.company_scoped
        || (user.company != NONE && snap.users[ticket.requester].company == user.company)
}

/// Whether company `company` is in reach(U).
pub(crate) fn in_reach(snap: &Snapshot, user_idx: Idx, user: &UserRow, company: Idx) -> bool {
    reach_via(snap, user_idx, user, company).is_some()
}

/// Why a company is in reach(U) (access model §2): the first company on
/// its way up to the root that is U's own or owned by U.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReachVia {
    /// `through` is U's company (the company itself or an ancestor).
    OwnCompany { through: Idx },
    /// `through` is owned by U (the company itself or an ancestor).
    Owned { through: Idx },
}

/// Whether `company` is in reach(U), and by which rule.
pub fn reach_via(snap: &Snapshot, user_idx: Idx, user: &UserRow, company: Idx) -> Option<ReachVia> {
    snap.company_chain(company).find_map(|c| {
        if c == user.company {
            Some(ReachVia::OwnCompany { through: c })
        } else if snap.companies[c].owner == user_idx {
            Some(ReachVia::Owned { through: c })
        } else {
            None
        }
    })
}

/// How one grant reaches a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantReach {
    /// The grant names the group itself.
    Direct,
    /// The grant is on `*`.
    All,
    /// The grant is on a propagating ancestor.
    Propagated,
}

/// One grant that gives flags on a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagSource {
    pub profile: Idx,
    /// The group the grant names (`ALL` for `*`).
    pub granted: Idx,
    pub reach: GrantReach,
}

/// `flags(U, G)` for one group and the grants that make it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFlags {
    /// `ALL` for the grants on `*` itself (what `has_flag` on `*` asks).
    pub group: Idx,
    pub flags: FlagSet,
    pub sources: Vec<FlagSource>,
}

/// Every group on which `user` holds flags (the `*` row first, then the
/// groups in handle order), each with the grants that apply by the rule of
/// [`flags_on`]. Empty for end-users and superadmins, who hold no flags.
pub fn effective_flags(snap: &Snapshot, user: &UserRow) -> Vec<GroupFlags> {
    if user.kind != UserKind::Agent || user.grants.is_empty() {
        return Vec::new();
    }
    let groups = (0..snap.groups.capacity())
        .filter_map(|g| Idx::try_from(g).ok())
        .filter(|&g| snap.groups.is_live(g));
    std::iter::once(ALL)
        .chain(groups)
        .filter_map(|group| {
            let sources: Vec<FlagSource> = user
                .grants
                .iter()
                .filter(|grant| grant_applies(snap, grant.group, group))
                .map(|grant| FlagSource {
                    profile: grant.profile,
                    granted: grant.group,
                    reach: if grant.group == group {
                        GrantReach::Direct
                    } else if grant.group == ALL {
                        GrantReach::All
                    } else {
                        GrantReach::Propagated
                    },
                })
                .collect();
            (!sources.is_empty()).then(|| GroupFlags {
                group,
                flags: flags_on(snap, user, group),
                sources,
            })
        })
        .collect()
}

pub(crate) fn group_name(snap: &Snapshot, group: Idx) -> &str {
    match group {
        ALL => "*",
        NONE => "(no group)",
        UNKNOWN => "(a group the data does not know)",
        g => snap.groups.id(g),
    }
}

/// Explains which grants give `flag` on `group`, or that none does.
pub(crate) fn explain_flag(
    snap: &Snapshot,
    user: &UserRow,
    group: Idx,
    flag: Flag,
    ex: &mut Explain,
) {
    if !ex.enabled() {
        return;
    }
    let target = group_name(snap, group);
    if user.kind != UserKind::Agent {
        ex.step(|| {
            format!(
                "no flag {flag} on {target}: only agents hold flags, {} is {}",
                user.id, user.kind
            )
        });
        return;
    }
    let mut found = false;
    for grant in &user.grants {
        let profile = &snap.profiles[grant.profile];
        if !profile.flags.contains(flag) || !grant_applies(snap, grant.group, group) {
            continue;
        }
        found = true;
        let granted = group_name(snap, grant.group);
        let why = if grant.group == ALL {
            " (* covers every group)".to_owned()
        } else if grant.group != group {
            format!(" ({granted} propagates to its children)")
        } else {
            String::new()
        };
        ex.step(|| {
            format!(
                "flag {flag} on {target} via grant {}@{granted}{why}",
                profile.id
            )
        });
    }
    if !found {
        ex.step(|| format!("no grant gives flag {flag} on {target}"));
    }
}

/// Explains every way `user` is a member of `org`, or that it is not.
pub(crate) fn explain_membership(snap: &Snapshot, user: &UserRow, org: Idx, ex: &mut Explain) {
    if !ex.enabled() || org == NONE {
        return;
    }
    let org_id = snap.orgs.id(org);
    let memberships = crate::snapshot::members_of(snap, user);
    let mut found = false;
    for m in memberships.iter().filter(|m| m.org == org) {
        found = true;
        let text = match m.via {
            Via::Explicit => format!("member of {org_id} (explicit membership)"),
            Via::Domain { domain } => {
                let d = &snap.orgs[org].domains[domain];
                format!(
                    "member of {org_id} via domain {} (added {}, user created {})",
                    d.name, d.added_at, user.created_at
                )
            }
            Via::Partnership {
                partner,
                domain,
                since,
            } => {
                let p = &snap.orgs[partner];
                format!(
                    "member of {org_id} via partnership {}→{org_id} since {since} (domain {} of {})",
                    p.id, p.domains[domain].name, p.id
                )
            }
        };
        ex.step(|| text);
    }
    if !found {
        ex.step(|| format!("not a member of {org_id}"));
    }
}
