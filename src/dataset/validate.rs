//! Turns a raw dataset into a validated one, collecting every problem with
//! the entity and field it concerns. Nothing is returned when any is found.

mod sections;

use std::collections::{HashMap, HashSet};

use super::raw::{RawDataset, RawId};
use super::{Assertion, Expect, OwnedRequest, Problem};
use crate::core::Reason;
use crate::flags::{Flag, FlagSet};
use crate::model::{
    ALL_GROUPS, Company, Dataset, Domain, Grant, GrantScope, Group, MAX_ID_BYTES, OrgAccess,
    Organisation, Partnership, Profile, ResourceKind, Status, Ticket, User, UserAccess, UserKind,
};
use crate::time::Timestamp;

struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn report(&mut self, entity: &str, field: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            entity: entity.to_owned(),
            field: field.to_owned(),
            message: message.into(),
        });
    }

    fn timestamp(&mut self, entity: &str, field: &str, text: Option<&str>) -> Timestamp {
        match text {
            None => {
                self.report(entity, field, "required");
                Timestamp::default()
            }
            Some(text) => text.parse().unwrap_or_else(|e| {
                self.report(entity, field, format!("{e}"));
                Timestamp::default()
            }),
        }
    }

    fn name(&mut self, entity: &str, name: Option<&str>) -> String {
        match name {
            Some(name) => name.to_owned(),
            None => {
                self.report(entity, "name", "required");
                String::new()
            }
        }
    }

    fn choice<T>(
        &mut self,
        entity: &str,
        field: &str,
        text: Option<&str>,
        parse: fn(&str) -> Option<T>,
        names: &[&str],
    ) -> T
    where
        T: Default,
    {
        let Some(text) = text else {
            return T::default();
        };
        parse(text).unwrap_or_else(|| {
            self.report(
                entity,
                field,
                format!(
                    "unknown value `{text}`, expected one of {}",
                    names.join(", ")
                ),
            );
            T::default()
        })
    }

    /// Checks an id's shape; `*` is refused where a group id is defined or
    /// referenced.
    fn id_shape(&mut self, entity: &str, field: &str, id: &RawId, group: bool) {
        if let Some(problem) = id_problem(&id.0, group) {
            self.report(entity, field, problem);
        }
    }

    fn reference(
        &mut self,
        entity: &str,
        field: &str,
        id: &RawId,
        known: &HashSet<&str>,
        what: &str,
    ) -> String {
        self.id_shape(entity, field, id, what == "group");
        if !id.0.is_empty() && !known.contains(id.0.as_str()) {
            self.report(entity, field, format!("unknown {what} `{}`", id.0));
        }
        id.0.clone()
    }

    fn references(
        &mut self,
        entity: &str,
        field: &str,
        ids: &[RawId],
        known: &HashSet<&str>,
        what: &str,
    ) -> Vec<String> {
        ids.iter()
            .map(|id| self.reference(entity, field, id, known, what))
            .collect()
    }

    /// Defines the ids of one kind, reporting empty, oversized and duplicate ones.
    fn define<'a>(
        &mut self,
        kind: &str,
        ids: impl Iterator<Item = &'a RawId>,
        group: bool,
    ) -> HashSet<&'a str> {
        let mut seen = HashSet::new();
        for (i, id) in ids.enumerate() {
            let entity = format!("{kind}s[{i}]");
            self.id_shape(&entity, "id", id, group);
            if !seen.insert(id.0.as_str()) {
                self.report(&format!("{kind} `{}`", id.0), "id", "duplicate id");
            }
        }
        seen
    }
}

fn entity(kind: &str, id: &RawId) -> String {
    format!("{kind} `{}`", id.0)
}

/// What is wrong with an id's shape, if anything: empty, longer than
/// [`MAX_ID_BYTES`], or `*` where a group id is meant.
pub(crate) fn id_problem(id: &str, group: bool) -> Option<String> {
    if id.is_empty() {
        Some("must not be empty".to_owned())
    } else if id.len() > MAX_ID_BYTES {
        Some(format!(
            "is {} bytes long, more than the limit of {MAX_ID_BYTES}",
            id.len()
        ))
    } else if group && id == ALL_GROUPS {
        Some("`*` is reserved for \"all groups\" and is not a group id".to_owned())
    } else {
        None
    }
}

/// Whether a domain name is plausible: dot-separated labels of letters,
/// digits and hyphens, none empty, none starting or ending with a hyphen.
pub(crate) fn valid_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

/// `local@domain`: a non-empty local part without spaces or control
/// characters and a valid domain after the last `@`.
pub(crate) fn valid_email(email: &str) -> bool {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && email.len() <= 254
                && !local.chars().any(|c| c.is_whitespace() || c.is_control())
                && valid_domain(domain)
        }
        None => false,
    }
}

/// Reports every parent cycle among `parents` (id → parent id).
fn cycles(check: &mut Checker, kind: &str, parents: &HashMap<&str, &str>) {
    let mut done: HashSet<&str> = HashSet::new();
    let mut ids: Vec<&&str> = parents.keys().collect();
    ids.sort_unstable();
    for &start in ids {
        let mut path: Vec<&str> = Vec::new();
        let mut on_path: HashSet<&str> = HashSet::new();
        let mut current = Some(start);
        while let Some(id) = current {
            if done.contains(id) {
                break;
            }
            if !on_path.insert(id) {
                let from = path.iter().position(|p| *p == id).unwrap_or(0);
                let mut cycle: Vec<&str> = path.get(from..).unwrap_or_default().to_vec();
                cycle.push(id);
                check.report(
                    &format!("{kind} `{id}`"),
                    "parent",
                    format!("parent cycle: {}", cycle.join(" → ")),
                );
                break;
            }
            path.push(id);
            current = parents.get(id).copied();
        }
        done.extend(path);
    }
}

pub(super) fn validate(raw: &RawDataset) -> Result<(Dataset, Vec<Assertion>), Vec<Problem>> {
    let mut check = Checker {
        problems: Vec::new(),
    };
    let org_ids = check.define(
        "organisation",
        raw.organisations.iter().map(|o| &o.id),
        false,
    );
    let company_ids = check.define("company", raw.companies.iter().map(|c| &c.id), false);
    let group_ids = check.define("group", raw.groups.iter().map(|g| &g.id), true);
    let profile_ids = check.define("profile", raw.profiles.iter().map(|p| &p.id), false);
    let user_ids = check.define("user", raw.users.iter().map(|u| &u.id), false);
    check.define("ticket", raw.tickets.iter().map(|t| &t.id), false);

    let now = raw
        .now
        .as_deref()
        .map(|text| check.timestamp("dataset", "now", Some(text)));

    let mut organisations = Vec::with_capacity(raw.organisations.len());
    for o in &raw.organisations {
        let e = entity("organisation", &o.id);
        let mut domains: Vec<Domain> = Vec::with_capacity(o.domains.len());
        for d in &o.domains {
            let lower = d.domain.to_ascii_lowercase();
            if !valid_domain(&lower) {
                check.report(
                    &e,
                    "domains.domain",
                    format!("`{}` is not a domain name", d.domain),
                );
            } else if domains.iter().any(|x| x.domain == lower) {
                check.report(
                    &e,
                    "domains.domain",
                    format!("`{}` is listed twice", d.domain),
                );
            }
            let added_at = check.timestamp(&e, "domains.added_at", Some(&d.added_at));
            domains.push(Domain {
                domain: lower,
                added_at,
            });
        }
        organisations.push(Organisation {
            id: o.id.0.clone(),
            name: check.name(&e, o.name.as_deref()),
            ticket_access: check.choice(
                &e,
                "ticket_access",
                o.ticket_access.as_deref(),
                OrgAccess::parse,
                OrgAccess::NAMES,
            ),
            domains,
            access_managers: check.references(
                &e,
                "access_managers",
                &o.access_managers,
                &user_ids,
                "user",
            ),
        });
    }

    let mut partnerships = Vec::with_capacity(raw.partnerships.len());
    let mut pairs = HashSet::new();
    for (i, p) in raw.partnerships.iter().enumerate() {
        let e = format!("partnerships[{i}] ({} → {})", p.partner.0, p.client.0);
        let partner = check.reference(&e, "partner", &p.partner, &org_ids, "organisation");
        let client = check.reference(&e, "client", &p.client, &org_ids, "organisation");
        if partner == client {
            check.report(&e, "client", "an organisation cannot be its own partner");
        }
        if !pairs.insert((partner.clone(), client.clone())) {
            check.report(&e, "client", "duplicate partnership");
        }
        partnerships.push(Partnership {
            partner,
            client,
            since: check.timestamp(&e, "since", Some(&p.since)),
        });
    }

    let mut companies = Vec::with_capacity(raw.companies.len());
    let mut company_parents = HashMap::new();
    for c in &raw.companies {
        let e = entity("company", &c.id);
        let parent = c
            .parent
            .as_ref()
            .map(|p| check.reference(&e, "parent", p, &company_ids, "company"));
        if let Some(p) = &c.parent {
            company_parents.insert(c.id.0.as_str(), p.0.as_str());
        }
        companies.push(Company {
            id: c.id.0.clone(),
            name: check.name(&e, c.name.as_deref()),
            parent,
            owner: c
                .owner
                .as_ref()
                .map(|o| check.reference(&e, "owner", o, &user_ids, "user")),
        });
    }
    cycles(&mut check, "company", &company_parents);

    let mut groups = Vec::with_capacity(raw.groups.len());
    let mut group_parents = HashMap::new();
    for g in &raw.groups {
        let e = entity("group", &g.id);
        let parent = g
            .parent
            .as_ref()
            .map(|p| check.reference(&e, "parent", p, &group_ids, "group"));
        if let Some(p) = &g.parent {
            group_parents.insert(g.id.0.as_str(), p.0.as_str());
        }
        groups.push(Group {
            id: g.id.0.clone(),
            name: check.name(&e, g.name.as_deref()),
            parent,
            propagate: g.propagate,
            open_ticket_limit: g.open_ticket_limit,
            enforce_open_limit: g.enforce_open_limit,
            total_ticket_limit: g.total_ticket_limit,
        });
    }
    cycles(&mut check, "group", &group_parents);

    let mut profiles = Vec::with_capacity(raw.profiles.len());
    for p in &raw.profiles {
        let e = entity("profile", &p.id);
        let mut flags = FlagSet::EMPTY;
        for name in &p.flags {
            match Flag::parse(name) {
                Some(flag) => flags.insert(flag),
                None => check.report(
                    &e,
                    "flags",
                    format!("unknown flag `{name}` (flags are upper-case names such as IR or IW)"),
                ),
            }
        }
        profiles.push(Profile {
            id: p.id.0.clone(),
            name: check.name(&e, p.name.as_deref()),
            flags,
        });
    }

    let mut users = Vec::with_capacity(raw.users.len());
    for u in &raw.users {
        let e = entity("user", &u.id);
        if let Some(email) = u.email.as_deref().filter(|m| !valid_email(m)) {
            check.report(
                &e,
                "email",
                format!("`{email}` is not an email address (local@domain)"),
            );
        }
        let mut grants = Vec::with_capacity(u.grants.len());
        for g in &u.grants {
            let profile =
                check.reference(&e, "grants.profile", &g.profile, &profile_ids, "profile");
            let group = if g.group.0 == ALL_GROUPS {
                GrantScope::All
            } else {
                GrantScope::Group(check.reference(
                    &e,
                    "grants.group",
                    &g.group,
                    &group_ids,
                    "group",
                ))
            };
            grants.push(Grant { profile, group });
        }
        users.push(User {
            id: u.id.0.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            created_at: check.timestamp(&e, "created_at", u.created_at.as_deref()),
            kind: check.choice(
                &e,
                "kind",
                u.kind.as_deref(),
                UserKind::parse,
                UserKind::NAMES,
            ),
            suspended: u.suspended,
            ticket_access: check.choice(
                &e,
                "ticket_access",
                u.ticket_access.as_deref(),
                UserAccess::parse,
                UserAccess::NAMES,
            ),
            organisations: check.references(
                &e,
                "organisations",
                &u.organisations,
                &org_ids,
                "organisation",
            ),
            default_organisation: u
                .default_organisation
                .as_ref()
                .map(|o| check.reference(&e, "default_organisation", o, &org_ids, "organisation")),
            company: u
                .company
                .as_ref()
                .map(|c| check.reference(&e, "company", c, &company_ids, "company")),
            company_scoped: u.company_scoped,
            grants,
        });
    }

    let mut tickets = Vec::with_capacity(raw.tickets.len());
    for t in &raw.tickets {
        let e = entity("ticket", &t.id);
        let requester = match &t.requester {
            Some(r) => check.reference(&e, "requester", r, &user_ids, "user"),
            None => {
                check.report(&e, "requester", "required");
                String::new()
            }
        };
        tickets.push(Ticket {
            id: t.id.0.clone(),
            created_at: check.timestamp(&e, "created_at", t.created_at.as_deref()),
            requester,
            organisation: t
                .organisation
                .as_ref()
                .map(|o| check.reference(&e, "organisation", o, &org_ids, "organisation")),
            group: t
                .group
                .as_ref()
                .map(|g| check.reference(&e, "group", g, &group_ids, "group")),
            assignee: t
                .assignee
                .as_ref()
                .map(|a| check.reference(&e, "assignee", a, &user_ids, "user")),
            ccs: check.references(&e, "ccs", &t.ccs, &user_ids, "user"),
            participants: check.references(&e, "participants", &t.participants, &user_ids, "user"),
            status: check.choice(
                &e,
                "status",
                t.status.as_deref(),
                Status::parse,
                Status::NAMES,
            ),
        });
    }

    let sections = sections::validate(
        &mut check,
        raw,
        &sections::Known {
            users: &user_ids,
            companies: &company_ids,
            groups: &group_ids,
        },
    );
    let assertions = assertions(&mut check, raw);
    if check.problems.is_empty() {
        Ok((
            Dataset {
                now,
                organisations,
                partnerships,
                companies,
                groups,
                profiles,
                users,
                tickets,
                sections,
            },
            assertions,
        ))
    } else {
        Err(check.problems)
    }
}

fn assertions(check: &mut Checker, raw: &RawDataset) -> Vec<Assertion> {
    let text = |id: &Option<RawId>| id.as_ref().map(|i| i.0.clone()).unwrap_or_default();
    let mut out = Vec::with_capacity(raw.assertions.len());
    for (index, a) in raw.assertions.iter().enumerate() {
        let e = format!("assertions[{index}]");
        let ids = |list: &[RawId]| list.iter().map(|i| i.0.clone()).collect::<Vec<_>>();
        if let Some(listed) = &a.visible_resources {
            if a.visible_tickets.is_some() || a.viewers.is_some() {
                check.report(
                    &e,
                    "visible_resources",
                    "an assertion lists one of visible_tickets, viewers or visible_resources",
                );
                continue;
            }
            let kind = match listed.kind.as_deref() {
                None => {
                    check.report(&e, "visible_resources.kind", "required");
                    continue;
                }
                Some(name) => match ResourceKind::parse(name) {
                    Some(kind) => kind,
                    None => {
                        check.report(
                            &e,
                            "visible_resources.kind",
                            format!(
                                "unknown value `{name}`, expected one of {}",
                                ResourceKind::NAMES.join(", ")
                            ),
                        );
                        continue;
                    }
                },
            };
            match &a.user {
                Some(user) => out.push(Assertion::VisibleResources {
                    index,
                    user: user.0.clone(),
                    kind,
                    ids: ids(&listed.ids),
                }),
                None => check.report(&e, "user", "required with visible_resources"),
            }
            continue;
        }
        match (&a.visible_tickets, &a.viewers) {
            (Some(_), Some(_)) => check.report(
                &e,
                "viewers",
                "an assertion lists either visible_tickets or viewers, not both",
            ),
            (Some(list), None) => match &a.user {
                Some(user) => out.push(Assertion::VisibleTickets {
                    index,
                    user: user.0.clone(),
                    tickets: ids(list),
                }),
                None => check.report(&e, "user", "required with visible_tickets"),
            },
            (None, Some(list)) => match &a.ticket {
                Some(ticket) => out.push(Assertion::Viewers {
                    index,
                    ticket: ticket.0.clone(),
                    users: ids(list),
                }),
                None => check.report(&e, "ticket", "required with viewers"),
            },
            (None, None) => {
                let expect = match a.expect.as_deref() {
                    Some("allow") => Expect::Allow,
                    Some("deny") => Expect::Deny,
                    Some("invalid") => Expect::Invalid,
                    Some(other) => {
                        check.report(
                            &e,
                            "expect",
                            format!(
                                "unknown value `{other}`, expected one of allow, deny, invalid"
                            ),
                        );
                        continue;
                    }
                    None => {
                        check.report(&e, "expect", "required (allow, deny or invalid)");
                        continue;
                    }
                };
                let mut reason_of = |field: &str, value: &Option<String>| {
                    value.as_deref().and_then(|name| {
                        let parsed = Reason::parse(name);
                        if parsed.is_none() {
                            check.report(&e, field, format!("unknown reason `{name}`"));
                        }
                        parsed
                    })
                };
                let reason = reason_of("reason", &a.reason);
                let warning = reason_of("warning", &a.warning);
                out.push(Assertion::Check {
                    index,
                    request: OwnedRequest {
                        user: text(&a.user),
                        action: a.action.clone(),
                        ticket: text(&a.ticket),
                        organisation: text(&a.organisation),
                        group: text(&a.group),
                        company: text(&a.company),
                        flag: a.flag.clone().unwrap_or_default(),
                        resource: text(&a.resource),
                    },
                    expect,
                    reason,
                    warning,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_domains() {
        assert!(valid_email("ann@acme.example"));
        assert!(valid_email("\"odd@local\"@acme.example"));
        assert!(!valid_email("ann"));
        assert!(!valid_email("@acme.example"));
        assert!(!valid_email("ann@"));
        assert!(!valid_email("ann smith@acme.example"));
        assert!(!valid_email("ann@acme..example"));
        assert!(!valid_email("ann@-acme.example"));
        assert!(valid_domain("sub.acme.example"));
        assert!(!valid_domain("acme.example."));
    }
}
