//! Who sees what, as a predicate over ticket fields (access model §5): the
//! visibility filter, and the plan the visible-ticket list is merged from.

use crate::flags::Flag;
use crate::model::{UserAccess, UserKind};
use crate::snapshot::{ALL, Idx, NONE, Snapshot, TicketRow, UserRow};

/// The group part of what an agent sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupReach {
    /// Groups (exact, children listed separately) where the agent holds IR.
    pub groups: Vec<Idx>,
    /// IR on `*`: every ticket, those without a group too.
    pub any_group: bool,
    /// Company-scoped agents: only tickets whose requester is in this company.
    pub requester_company: Idx,
}

/// Everything one user may view, by relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub everything: bool,
    /// The user clause (requester, assignee, CC, participant); `NONE` when
    /// the user sees nothing at all.
    pub user: Idx,
    /// Organisations whose tickets the user views (org-view), sorted.
    pub orgs: Vec<Idx>,
    pub group: Option<GroupReach>,
}

impl Plan {
    pub(crate) fn nothing() -> Self {
        Plan {
            everything: false,
            user: NONE,
            orgs: Vec::new(),
            group: None,
        }
    }

    /// Derives what `user` sees from its memberships and grants.
    pub(crate) fn of(snap: &Snapshot, uidx: Idx, user: &UserRow) -> Self {
        if user.suspended {
            return Plan::nothing();
        }
        if user.kind == UserKind::Superadmin {
            return Plan {
                everything: true,
                ..Plan::nothing()
            };
        }
        let orgs: Vec<Idx> = user
            .orgs
            .iter()
            .copied()
            .filter(|&o| user.access == UserAccess::Organisation || snap.orgs[o].access.is_shared())
            .collect();
        let group =
            if user.kind == UserKind::Agent && !(user.company_scoped && user.company == NONE) {
                ir_groups(snap, user).map(|(groups, any_group)| GroupReach {
                    groups,
                    any_group,
                    requester_company: if user.company_scoped {
                        user.company
                    } else {
                        NONE
                    },
                })
            } else {
                None
            };
        let everything = group
            .as_ref()
            .is_some_and(|g| g.any_group && g.requester_company == NONE);
        if everything {
            return Plan {
                everything: true,
                ..Plan::nothing()
            };
        }
        Plan {
            everything: false,
            user: uidx,
            orgs,
            group,
        }
    }

    /// Whether a ticket passes this plan, judged from its fields alone.
    pub(crate) fn matches(&self, snap: &Snapshot, ticket: &TicketRow) -> bool {
        if self.everything {
            return true;
        }
        if self.user != NONE {
            let u = self.user;
            if ticket.requester == u
                || ticket.assignee == u
                || ticket.ccs().contains(&u)
                || ticket.participants().contains(&u)
            {
                return true;
            }
        }
        if ticket.organisation != NONE && self.orgs.binary_search(&ticket.organisation).is_ok() {
            return true;
        }
        match &self.group {
            None => false,
            Some(reach) => {
                let in_group = reach.any_group
                    || (ticket.group != NONE && reach.groups.binary_search(&ticket.group).is_ok());
                in_group
                    && (reach.requester_company == NONE
                        || snap.users[ticket.requester].company == reach.requester_company)
            }
        }
    }
}

/// Groups where an agent holds IR (each grant's group, plus its subtree
/// when it propagates), sorted, and whether IR is held on `*`. `None` when
/// IR is held nowhere.
fn ir_groups(snap: &Snapshot, user: &UserRow) -> Option<(Vec<Idx>, bool)> {
    let mut groups = Vec::new();
    let mut any = false;
    let mut held = false;
    for grant in &user.grants {
        if !snap.profiles[grant.profile].flags.contains(Flag::IR) {
            continue;
        }
        held = true;
        if grant.group == ALL {
            any = true;
        } else if snap.groups[grant.group].propagate {
            groups.extend(snap.group_subtree(grant.group));
        } else {
            groups.push(grant.group);
        }
    }
    groups.sort_unstable();
    groups.dedup();
    held.then_some((groups, any))
}

/// A group clause of a [`VisibilityFilter`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupClause {
    pub group_ids: Vec<String>,
    pub any_group: bool,
    pub requester_company_id: Option<String>,
}

/// The set of tickets a user may view, as a predicate over ticket fields:
/// a ticket is visible iff `everything`, or the user clause matches, or its
/// organisation is listed, or a group clause matches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VisibilityFilter {
    pub everything: bool,
    pub user_id: Option<String>,
    pub organisation_ids: Vec<String>,
    pub group_clauses: Vec<GroupClause>,
}

/// The visibility filter of a user; an unknown or suspended user's selects
/// nothing.
pub fn visibility_filter(snap: &Snapshot, user_id: &str) -> VisibilityFilter {
    let Some((uidx, user)) = snap.users.get(user_id) else {
        return VisibilityFilter::default();
    };
    let plan = Plan::of(snap, uidx, user);
    let mut organisation_ids: Vec<String> = plan
        .orgs
        .iter()
        .map(|&o| snap.orgs.id(o).to_owned())
        .collect();
    organisation_ids.sort_unstable();
    let group_clauses = plan
        .group
        .iter()
        .filter(|g| g.any_group || !g.groups.is_empty())
        .map(|g| {
            let mut group_ids: Vec<String> = if g.any_group {
                Vec::new()
            } else {
                g.groups
                    .iter()
                    .map(|&x| snap.groups.id(x).to_owned())
                    .collect()
            };
            group_ids.sort_unstable();
            GroupClause {
                group_ids,
                any_group: g.any_group,
                requester_company_id: (g.requester_company != NONE)
                    .then(|| snap.companies.id(g.requester_company).to_owned()),
            }
        })
        .collect();
    VisibilityFilter {
        everything: plan.everything,
        user_id: (plan.user != NONE).then(|| user.id.to_string()),
        organisation_ids,
        group_clauses,
    }
}
