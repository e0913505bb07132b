//! The compared questions: (user, ticket) pairs drawn from the generated
//! data so that every rule of `view` and `comment` is exercised, with
//! allows and denies: requesters, assignees, CC'd users, participants,
//! agents with and without grants reaching the ticket (company-scoped and
//! on `*` among them), members of the ticket's organisation, users at a
//! partner's domain, explicit members, other end-users, superadmins and
//! suspended users.

use std::collections::HashMap;

use ticket_authz::generate::{AGENT_USER, NARROW_USER, WIDE_USER};
use ticket_authz::model::{ALL_GROUPS, Dataset, UserKind, email_domain};

use crate::facts::Facts;

/// Why a pair was drawn; the agreement check counts allows per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Requester,
    Assignee,
    Cc,
    Participant,
    /// A random agent, on a ticket its IR grants reach half the time.
    Agent,
    /// A company-scoped agent, on a ticket of its company's requesters.
    ScopedAgent,
    /// An agent holding a grant on `*`.
    StarAgent,
    /// `generate::AGENT_USER`: lead profile on one root group.
    LeadAgent,
    /// `generate::WIDE_USER`: IR on every root group.
    WideAgent,
    /// A member (by any rule) of the ticket's organisation.
    OrgMember,
    /// A user at a partner's domain, on a ticket of a client organisation.
    PartnerDomain,
    /// A user with explicit memberships, on a ticket of one of them.
    ExplicitMember,
    /// Any end-user on any ticket.
    EndUser,
    Superadmin,
    /// A suspended user, on a ticket it requested when there is one.
    Suspended,
    /// `generate::NARROW_USER`: requested ten tickets.
    Narrow,
}

impl Kind {
    pub const ALL: [Kind; 16] = [
        Kind::Requester,
        Kind::Assignee,
        Kind::Cc,
        Kind::Participant,
        Kind::Agent,
        Kind::ScopedAgent,
        Kind::StarAgent,
        Kind::LeadAgent,
        Kind::WideAgent,
        Kind::OrgMember,
        Kind::PartnerDomain,
        Kind::ExplicitMember,
        Kind::EndUser,
        Kind::Superadmin,
        Kind::Suspended,
        Kind::Narrow,
    ];
}

/// One compared question, asked for both `view` and `comment`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub user: String,
    pub ticket: String,
    pub kind: Kind,
}

/// Indexes of the dataset the sampler draws from (positions in the
/// dataset's vectors).
struct Pools<'d> {
    data: &'d Dataset,
    facts: &'d Facts,
    agents: Vec<usize>,
    scoped_agents: Vec<usize>,
    star_agents: Vec<usize>,
    end_users: Vec<usize>,
    superadmins: Vec<usize>,
    suspended: Vec<usize>,
    explicit: Vec<usize>,
    assigned: Vec<usize>,
    with_ccs: Vec<usize>,
    with_participants: Vec<usize>,
    by_org: HashMap<&'d str, Vec<usize>>,
    by_requester: HashMap<&'d str, Vec<usize>>,
    by_requester_company: HashMap<&'d str, Vec<usize>>,
    members: HashMap<&'d str, Vec<usize>>,
    by_domain: HashMap<String, Vec<usize>>,
}

fn pick<T: Copy>(rng: &mut fastrand::Rng, items: &[T]) -> Option<T> {
    (!items.is_empty()).then(|| items[rng.usize(0..items.len())])
}

impl<'d> Pools<'d> {
    fn new(data: &'d Dataset, facts: &'d Facts) -> Pools<'d> {
        let mut pools = Pools {
            data,
            facts,
            agents: Vec::new(),
            scoped_agents: Vec::new(),
            star_agents: Vec::new(),
            end_users: Vec::new(),
            superadmins: Vec::new(),
            suspended: Vec::new(),
            explicit: Vec::new(),
            assigned: Vec::new(),
            with_ccs: Vec::new(),
            with_participants: Vec::new(),
            by_org: HashMap::new(),
            by_requester: HashMap::new(),
            by_requester_company: HashMap::new(),
            members: HashMap::new(),
            by_domain: HashMap::new(),
        };
        let mut company_of: HashMap<&str, &str> = HashMap::new();
        for (i, u) in data.users.iter().enumerate() {
            match u.kind {
                UserKind::Agent => {
                    pools.agents.push(i);
                    if u.company_scoped && u.company.is_some() {
                        pools.scoped_agents.push(i);
                    }
                    let star = |s: Option<&std::collections::BTreeSet<String>>| {
                        s.is_some_and(|s| s.contains(ALL_GROUPS))
                    };
                    if star(facts.ir_scopes.get(i)) || star(facts.iw_scopes.get(i)) {
                        pools.star_agents.push(i);
                    }
                }
                UserKind::EndUser => pools.end_users.push(i),
                UserKind::Superadmin => pools.superadmins.push(i),
            }
            if u.suspended {
                pools.suspended.push(i);
            }
            if !u.organisations.is_empty() {
                pools.explicit.push(i);
            }
            if let Some(c) = &u.company {
                company_of.insert(&u.id, c);
            }
            for org in facts.memberships.get(i).into_iter().flatten() {
                pools.members.entry(org.as_str()).or_default().push(i);
            }
            if let Some(d) = u.email.as_deref().and_then(email_domain) {
                pools
                    .by_domain
                    .entry(d.to_ascii_lowercase())
                    .or_default()
                    .push(i);
            }
        }
        for (i, t) in data.tickets.iter().enumerate() {
            if t.assignee.is_some() {
                pools.assigned.push(i);
            }
            if !t.ccs.is_empty() {
                pools.with_ccs.push(i);
            }
            if !t.participants.is_empty() {
                pools.with_participants.push(i);
            }
            if let Some(o) = &t.organisation {
                pools.by_org.entry(o).or_default().push(i);
            }
            pools.by_requester.entry(&t.requester).or_default().push(i);
            if let Some(c) = company_of.get(t.requester.as_str()) {
                pools.by_requester_company.entry(c).or_default().push(i);
            }
        }
        pools
    }

    /// Whether the IR grants of user `u` reach ticket `t`'s group.
    fn reaches(&self, u: usize, t: usize) -> bool {
        let scopes = self.facts.scopes_of(self.data.tickets[t].group.as_deref());
        self.facts
            .ir_scopes
            .get(u)
            .is_some_and(|ir| scopes.iter().any(|s| ir.contains(s)))
    }

    /// A ticket among `candidates` that `u`'s IR grants reach, if a few
    /// random tries find one.
    fn reached(&self, rng: &mut fastrand::Rng, u: usize, candidates: &[usize]) -> Option<usize> {
        (0..64)
            .filter_map(|_| pick(rng, candidates))
            .find(|&t| self.reaches(u, t))
    }

    fn pair(&self, rng: &mut fastrand::Rng, kind: Kind) -> Option<(String, usize)> {
        let data = self.data;
        let user = |i: usize| data.users[i].id.clone();
        let all: usize = data.tickets.len();
        let any_ticket = |rng: &mut fastrand::Rng| (all > 0).then(|| rng.usize(0..all));
        match kind {
            Kind::Requester => {
                let t = any_ticket(rng)?;
                Some((data.tickets[t].requester.clone(), t))
            }
            Kind::Assignee => {
                let t = pick(rng, &self.assigned)?;
                Some((data.tickets[t].assignee.clone()?, t))
            }
            Kind::Cc => {
                let t = pick(rng, &self.with_ccs)?;
                Some((data.tickets[t].ccs.first()?.clone(), t))
            }
            Kind::Participant => {
                let t = pick(rng, &self.with_participants)?;
                Some((data.tickets[t].participants.first()?.clone(), t))
            }
            Kind::Agent => {
                let u = pick(rng, &self.agents)?;
                let t = if rng.bool() {
                    (0..64)
                        .filter_map(|_| any_ticket(rng))
                        .find(|&t| self.reaches(u, t))
                } else {
                    None
                };
                Some((user(u), t.or_else(|| any_ticket(rng))?))
            }
            Kind::ScopedAgent => {
                let u = pick(rng, &self.scoped_agents)?;
                let company = data.users[u].company.as_deref()?;
                let own = self
                    .by_requester_company
                    .get(company)
                    .map_or(&[][..], Vec::as_slice);
                let t = self
                    .reached(rng, u, own)
                    .or_else(|| pick(rng, own))
                    .or_else(|| any_ticket(rng))?;
                Some((user(u), t))
            }
            Kind::StarAgent => Some((user(pick(rng, &self.star_agents)?), any_ticket(rng)?)),
            Kind::LeadAgent => Some((AGENT_USER.to_owned(), any_ticket(rng)?)),
            Kind::WideAgent => Some((WIDE_USER.to_owned(), any_ticket(rng)?)),
            Kind::OrgMember => {
                let t = any_ticket(rng)?;
                let org = data.tickets[t].organisation.as_deref()?;
                let u = pick(rng, self.members.get(org)?)?;
                Some((user(u), t))
            }
            Kind::PartnerDomain => {
                let count = data.partnerships.len();
                let partnership = &data.partnerships[(count > 0).then(|| rng.usize(0..count))?];
                let t = pick(rng, self.by_org.get(partnership.client.as_str())?)?;
                let partner = data
                    .organisations
                    .iter()
                    .find(|o| o.id == partnership.partner)?;
                let domain = partner.domains.first()?.domain.to_ascii_lowercase();
                let u = pick(rng, self.by_domain.get(&domain)?)?;
                Some((user(u), t))
            }
            Kind::ExplicitMember => {
                let u = pick(rng, &self.explicit)?;
                let org = data.users[u].organisations.first()?;
                let t = self
                    .by_org
                    .get(org.as_str())
                    .and_then(|ts| pick(rng, ts))
                    .or_else(|| any_ticket(rng))?;
                Some((user(u), t))
            }
            Kind::EndUser => Some((user(pick(rng, &self.end_users)?), any_ticket(rng)?)),
            Kind::Superadmin => Some((user(pick(rng, &self.superadmins)?), any_ticket(rng)?)),
            Kind::Suspended => {
                let u = pick(rng, &self.suspended)?;
                let t = self
                    .by_requester
                    .get(data.users[u].id.as_str())
                    .and_then(|ts| pick(rng, ts))
                    .or_else(|| any_ticket(rng))?;
                Some((user(u), t))
            }
            Kind::Narrow => {
                let own = self
                    .by_requester
                    .get(NARROW_USER)
                    .map_or(&[][..], Vec::as_slice);
                let t = if rng.bool() { pick(rng, own) } else { None };
                Some((NARROW_USER.to_owned(), t.or_else(|| any_ticket(rng))?))
            }
        }
    }
}

/// `n` pairs cycling through every [`Kind`]; a kind the data cannot supply
/// (no suspended user in a tiny dataset, say) falls back to a requester.
/// The same data, `n` and seed always give the same pairs.
pub fn sample(data: &Dataset, facts: &Facts, n: usize, seed: u64) -> Vec<Probe> {
    let pools = Pools::new(data, facts);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let kind = Kind::ALL[i % Kind::ALL.len()];
        let drawn = pools
            .pair(&mut rng, kind)
            .map(|pair| (pair, kind))
            .or_else(|| {
                pools
                    .pair(&mut rng, Kind::Requester)
                    .map(|p| (p, Kind::Requester))
            });
        if let Some(((user, t), kind)) = drawn {
            out.push(Probe {
                user,
                ticket: data.tickets[t].id.clone(),
                kind,
            });
        }
    }
    out
}
