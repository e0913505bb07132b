//! Organisation membership (access model §2): explicit, by email domain, and
//! through one partnership hop. Used both to materialise memberships and to
//! explain them.

use super::{DomainIndex, Idx, OrgRow, Table};
use crate::time::Timestamp;

/// Why a user is a member of an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Listed in the user's `organisations`.
    Explicit,
    /// The email domain is the organisation's domain number `domain`, added
    /// at or before the user was created.
    Domain { domain: usize },
    /// A member of `partner` by its domain number `domain`, and the
    /// partnership `partner → org` started at or before the user was created.
    Partnership {
        partner: Idx,
        domain: usize,
        since: Timestamp,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    pub org: Idx,
    pub via: Via,
}

/// Every (organisation, reason) pair that makes a user a member.
pub fn derive(
    explicit: &[Idx],
    email_domain: Option<&str>,
    created_at: Timestamp,
    orgs: &Table<OrgRow>,
    domains: &DomainIndex,
) -> Vec<Membership> {
    let mut out: Vec<Membership> = explicit
        .iter()
        .map(|&org| Membership {
            org,
            via: Via::Explicit,
        })
        .collect();
    let Some(domain) = email_domain else {
        return out;
    };
    let domain = domain.to_ascii_lowercase();
    let Some(listed) = domains.get(domain.as_str()) else {
        return out;
    };
    for &(org, added_at) in listed {
        if added_at > created_at {
            continue;
        }
        let position = orgs[org]
            .domains
            .iter()
            .position(|d| *d.name == *domain)
            .unwrap_or(0);
        out.push(Membership {
            org,
            via: Via::Domain { domain: position },
        });
        for &(client, since) in &orgs[org].clients {
            if since <= created_at {
                out.push(Membership {
                    org: client,
                    via: Via::Partnership {
                        partner: org,
                        domain: position,
                        since,
                    },
                });
            }
        }
    }
    out
}

/// The sorted, de-duplicated organisations of a membership list.
pub fn organisations(memberships: &[Membership]) -> smallvec::SmallVec<[Idx; 4]> {
    let mut orgs: smallvec::SmallVec<[Idx; 4]> = memberships.iter().map(|m| m.org).collect();
    orgs.sort_unstable();
    orgs.dedup();
    orgs
}
