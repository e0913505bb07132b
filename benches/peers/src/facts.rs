//! The facts the peers are given precomputed, derived straight from the
//! dataset by the access model's definitions (§2), independently of the
//! decision core's snapshot: organisation memberships, the grant scopes of
//! each user per flag, and the grant scopes that reach each group. The
//! rules of §3 that combine them stay in the peers' policies.

use std::collections::{BTreeSet, HashMap};

use ticket_authz::flags::Flag;
use ticket_authz::model::{ALL_GROUPS, Dataset, GrantScope, email_domain};
use ticket_authz::time::Timestamp;

/// Precomputed relations, indexed like `Dataset::users` and by group id.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Per user (dataset order): every organisation it is a member of,
    /// explicitly, by email domain or through one partnership hop.
    pub memberships: Vec<BTreeSet<String>>,
    /// Per user: the scopes (group ids, or `*`) of its grants whose profile
    /// holds IR. Kept for end-users too: the policies ignore them.
    pub ir_scopes: Vec<BTreeSet<String>>,
    /// Per user: the same for IW.
    pub iw_scopes: Vec<BTreeSet<String>>,
    /// Per group id, and for `*` (a ticket without a group): the grant
    /// scopes that reach it: itself, each ancestor that propagates, and `*`.
    pub group_scopes: HashMap<String, Vec<String>>,
}

impl Facts {
    pub fn derive(data: &Dataset) -> Facts {
        Facts {
            memberships: memberships(data),
            ir_scopes: scopes_with(data, Flag::IR),
            iw_scopes: scopes_with(data, Flag::IW),
            group_scopes: group_scopes(data),
        }
    }

    /// The grant scopes that reach a ticket's group (`None`: no group).
    pub fn scopes_of(&self, group: Option<&str>) -> &[String] {
        self.group_scopes
            .get(group.unwrap_or(ALL_GROUPS))
            .map_or(&[], Vec::as_slice)
    }
}

/// Membership rules 1–3 of §2: explicit; by a domain added no later than
/// the user was created; by a partner's such domain, the partnership
/// having started no later than the user was created.
fn memberships(data: &Dataset) -> Vec<BTreeSet<String>> {
    let mut by_domain: HashMap<String, Vec<(&str, Timestamp)>> = HashMap::new();
    for org in &data.organisations {
        for d in &org.domains {
            by_domain
                .entry(d.domain.to_ascii_lowercase())
                .or_default()
                .push((&org.id, d.added_at));
        }
    }
    let mut clients: HashMap<&str, Vec<(&str, Timestamp)>> = HashMap::new();
    for p in &data.partnerships {
        clients
            .entry(&p.partner)
            .or_default()
            .push((&p.client, p.since));
    }
    data.users
        .iter()
        .map(|user| {
            let mut orgs: BTreeSet<String> = user.organisations.iter().cloned().collect();
            let created = user.created_at;
            let domain = user
                .email
                .as_deref()
                .and_then(email_domain)
                .map(str::to_ascii_lowercase);
            let listed = domain.and_then(|d| by_domain.get(&d));
            for &(org, added) in listed.into_iter().flatten() {
                if added > created {
                    continue;
                }
                orgs.insert(org.to_owned());
                for &(client, since) in clients.get(org).into_iter().flatten() {
                    if since <= created {
                        orgs.insert(client.to_owned());
                    }
                }
            }
            orgs
        })
        .collect()
}

/// Per user, the scopes of the grants whose profile holds `flag`.
fn scopes_with(data: &Dataset, flag: Flag) -> Vec<BTreeSet<String>> {
    let holds: HashMap<&str, bool> = data
        .profiles
        .iter()
        .map(|p| (p.id.as_str(), p.flags.contains(flag)))
        .collect();
    data.users
        .iter()
        .map(|user| {
            user.grants
                .iter()
                .filter(|g| holds.get(g.profile.as_str()).copied().unwrap_or(false))
                .map(|g| match &g.group {
                    GrantScope::All => ALL_GROUPS.to_owned(),
                    GrantScope::Group(id) => id.clone(),
                })
                .collect()
        })
        .collect()
}

/// Per group: itself, its propagating ancestors and `*`; and `*` alone for
/// tickets without a group (§2, effective flags).
fn group_scopes(data: &Dataset) -> HashMap<String, Vec<String>> {
    let groups: HashMap<&str, (Option<&str>, bool)> = data
        .groups
        .iter()
        .map(|g| (g.id.as_str(), (g.parent.as_deref(), g.propagate)))
        .collect();
    let mut out: HashMap<String, Vec<String>> = data
        .groups
        .iter()
        .map(|g| {
            let mut scopes = vec![g.id.clone()];
            let mut seen = BTreeSet::from([g.id.as_str()]);
            let mut next = g.parent.as_deref();
            // A validated dataset has no cycles; `seen` guards anyway.
            while let Some(id) = next.filter(|id| seen.insert(id)) {
                let (parent, propagate) = groups.get(id).copied().unwrap_or((None, false));
                if propagate {
                    scopes.push(id.to_owned());
                }
                next = parent;
            }
            scopes.push(ALL_GROUPS.to_owned());
            (g.id.clone(), scopes)
        })
        .collect();
    out.insert(ALL_GROUPS.to_owned(), vec![ALL_GROUPS.to_owned()]);
    out
}
