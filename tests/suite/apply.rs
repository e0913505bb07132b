//! Incremental changes (tickets, CCs, participants, users, memberships,
//! grants, whole lists replaced at once, tickets whose requester is
//! nobody, organisations, domains, partnerships, groups, profile flags,
//! companies, and the service-desk sections' rows and lists) give the same answers as a fresh build of the changed data,
//! and leave the snapshot they started from untouched. Every change goes
//! through `Snapshot::apply`, as the follower's do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use proptest::prelude::*;
use ticket_authz::core::{self, Action, ActionInput, CheckRequest, Context, TicketFilter};
use ticket_authz::flags::Flag;
use ticket_authz::generate::{Spec, generate};
use ticket_authz::model::{
    AgendaEvent, Company, Dataset, Domain, Download, DownloadCategory, Grant, GrantScope, Group,
    InventoryItem, Invoice, Lead, MemberRole, OrgAccess, Organisation, Partnership, Project,
    SectionMember, Sections, Status, Task, User, UserAccess, UserKind, WikiPage,
};
use ticket_authz::snapshot::{
    Change, OrgFields, Role, SectionEntity, SectionLink, SectionRow, Snapshot, TicketFields,
    UserFields,
};
use ticket_authz::time::Timestamp;

#[derive(Debug, Clone)]
enum Step {
    Upsert {
        ticket: usize,
        requester: usize,
        org: Option<usize>,
        group: Option<usize>,
        assignee: Option<usize>,
        status: usize,
        day: i64,
    },
    Delete {
        ticket: usize,
    },
    Person {
        ticket: usize,
        user: usize,
        cc: bool,
        present: bool,
    },
    User {
        user: usize,
        suspended: bool,
        org_access: bool,
        kind: usize,
        company: Option<usize>,
        scoped: bool,
        email_org: Option<usize>,
        day: i64,
    },
    Membership {
        user: usize,
        org: usize,
        present: bool,
    },
    Grant {
        user: usize,
        profile: usize,
        group: Option<usize>,
        present: bool,
    },
    DeleteUser {
        user: usize,
    },
    /// Organisations 12..14 are new ids.
    Org {
        org: usize,
        access: usize,
    },
    Domain {
        org: usize,
        domain: usize,
        day: i64,
        present: bool,
    },
    Partnership {
        partner: usize,
        client: usize,
        day: i64,
        present: bool,
    },
    /// Groups 15..17 are new ids.
    Group {
        group: usize,
        parent: Option<usize>,
        propagate: bool,
        limits: (u32, bool, u32),
    },
    ProfileFlag {
        profile: usize,
        ir: bool,
        present: bool,
    },
    /// A ticket's whole CC or participant list replaced (a mapped re-read).
    People {
        ticket: usize,
        cc: bool,
        users: Vec<usize>,
    },
    /// A user's whole grant list replaced.
    Grants {
        user: usize,
        grants: Vec<(usize, Option<usize>)>,
    },
    /// A profile's whole flag set replaced (IR, IW, IM).
    Flags {
        profile: usize,
        flags: Vec<usize>,
    },
    /// Companies 8..10 are new ids.
    Company {
        company: usize,
        parent: Option<usize>,
        owner: Option<usize>,
    },
    /// A section entity's row (`entity` in the order of `ENTITIES`; odd
    /// `n` are new ids); `a`, `b` pick its references.
    SectionUpsert {
        entity: usize,
        n: usize,
        a: Option<usize>,
        b: Option<usize>,
        flag: bool,
    },
    SectionDelete {
        entity: usize,
        n: usize,
    },
    /// One entry of a section list (`link` picks the list).
    SectionLink {
        link: usize,
        n: usize,
        target: usize,
        manager: bool,
        present: bool,
    },
}

fn change() -> impl Strategy<Value = Step> {
    prop_oneof![
        (
            0usize..320,
            // 210 and above: nobody (an empty requester).
            0usize..220,
            proptest::option::of(0usize..12),
            proptest::option::of(0usize..15),
            proptest::option::of(0usize..210),
            0usize..6,
            0i64..500
        )
            .prop_map(|(ticket, requester, org, group, assignee, status, day)| {
                Step::Upsert {
                    ticket,
                    requester,
                    org,
                    group,
                    assignee,
                    status,
                    day,
                }
            }),
        (0usize..320).prop_map(|ticket| Step::Delete { ticket }),
        (0usize..320, 0usize..210, any::<bool>(), any::<bool>()).prop_map(
            |(ticket, user, cc, present)| Step::Person {
                ticket,
                user,
                cc,
                present
            }
        ),
        (
            0usize..210,
            any::<bool>(),
            any::<bool>(),
            0usize..3,
            proptest::option::of(0usize..8),
            any::<bool>(),
            proptest::option::of(0usize..12),
            -400i64..500
        )
            .prop_map(
                |(user, suspended, org_access, kind, company, scoped, email_org, day)| {
                    Step::User {
                        user,
                        suspended,
                        org_access,
                        kind,
                        company,
                        scoped,
                        email_org,
                        day,
                    }
                }
            ),
        (0usize..210, 0usize..12, any::<bool>())
            .prop_map(|(user, org, present)| Step::Membership { user, org, present }),
        (
            0usize..210,
            0usize..8,
            proptest::option::of(0usize..15),
            any::<bool>()
        )
            .prop_map(|(user, profile, group, present)| Step::Grant {
                user,
                profile,
                group,
                present
            }),
        (0usize..210).prop_map(|user| Step::DeleteUser { user }),
        (0usize..14, 0usize..3).prop_map(|(org, access)| Step::Org { org, access }),
        (0usize..14, 0usize..14, -400i64..500, any::<bool>()).prop_map(
            |(org, domain, day, present)| Step::Domain {
                org,
                domain,
                day,
                present
            }
        ),
        (0usize..14, 0usize..14, -400i64..500, any::<bool>()).prop_map(
            |(partner, client, day, present)| Step::Partnership {
                partner,
                client,
                day,
                present
            }
        ),
        (
            0usize..17,
            proptest::option::of(0usize..17),
            any::<bool>(),
            (0u32..4, any::<bool>(), 0u32..6)
        )
            .prop_map(|(group, parent, propagate, limits)| Step::Group {
                group,
                parent,
                propagate,
                limits
            }),
        (0usize..8, any::<bool>(), any::<bool>()).prop_map(|(profile, ir, present)| {
            Step::ProfileFlag {
                profile,
                ir,
                present,
            }
        }),
        (
            0usize..320,
            any::<bool>(),
            proptest::collection::vec(0usize..210, 0..4)
        )
            .prop_map(|(ticket, cc, users)| Step::People { ticket, cc, users }),
        (
            0usize..210,
            proptest::collection::vec((0usize..8, proptest::option::of(0usize..15)), 0..3)
        )
            .prop_map(|(user, grants)| Step::Grants { user, grants }),
        (0usize..8, proptest::collection::vec(0usize..3, 0..3))
            .prop_map(|(profile, flags)| Step::Flags { profile, flags }),
        (
            0usize..10,
            proptest::option::of(0usize..10),
            proptest::option::of(0usize..210)
        )
            .prop_map(|(company, parent, owner)| Step::Company {
                company,
                parent,
                owner
            }),
        (
            0usize..9,
            0usize..8,
            proptest::option::of(0usize..210),
            proptest::option::of(0usize..210),
            any::<bool>()
        )
            .prop_map(|(entity, n, a, b, flag)| Step::SectionUpsert {
                entity,
                n,
                a,
                b,
                flag
            }),
        (0usize..9, 0usize..8).prop_map(|(entity, n)| Step::SectionDelete { entity, n }),
        (
            0usize..7,
            0usize..8,
            0usize..210,
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(link, n, target, manager, present)| Step::SectionLink {
                link,
                n,
                target,
                manager,
                present
            }),
    ]
}

fn org_id(i: usize) -> String {
    format!("o-new-{i}")
}

/// Whether making `parent` the parent of `child` closes a loop, given each
/// id's parent.
fn loops(parents: &[(String, Option<String>)], child: &str, parent: Option<&str>) -> bool {
    let mut at = parent.map(str::to_owned);
    for _ in 0..=parents.len() {
        match at {
            None => return false,
            Some(ref id) if id == child => return true,
            Some(id) => {
                at = parents
                    .iter()
                    .find(|(c, _)| *c == id)
                    .and_then(|(_, p)| p.clone())
            }
        }
    }
    true
}

fn ticket_id(i: usize) -> String {
    format!("T{:08}", i)
}

/// Users 0..200 are generated; 200..210 are new ids.
fn user_id(i: usize) -> String {
    if i < 200 {
        format!("u-{i:07}")
    } else {
        format!("new-user-{i}")
    }
}

fn exists(data: &Dataset, id: &str) -> bool {
    data.users.iter().any(|u| u.id == id)
}

/// Applies a change to the dataset (the reference) and to the snapshot.
fn apply(data: &mut Dataset, snap: &mut Snapshot, c: &Step) {
    match c {
        Step::Upsert {
            ticket,
            requester,
            org,
            group,
            assignee,
            status,
            day,
        } => {
            let requester = if *requester >= 210 {
                String::new()
            } else {
                user_id(*requester)
            };
            let assignee = assignee.map(user_id);
            if !(requester.is_empty() || exists(data, &requester))
                || assignee.as_ref().is_some_and(|a| !exists(data, a))
            {
                return;
            }
            let fields = TicketFields {
                id: ticket_id(*ticket),
                created_at: Timestamp::from_unix_seconds(1_735_689_600 + day * 86_400),
                requester,
                organisation: org.map(|o| data.organisations[o].id.clone()),
                group: group.map(|g| data.groups[g].id.clone()),
                assignee,
                status: Status::ALL[*status],
            };
            snap.apply(&Change::UpsertTicket(fields.clone())).unwrap();
            match data.tickets.iter_mut().find(|t| t.id == fields.id) {
                Some(t) => {
                    t.created_at = fields.created_at;
                    t.requester = fields.requester;
                    t.organisation = fields.organisation;
                    t.group = fields.group;
                    t.assignee = fields.assignee;
                    t.status = fields.status;
                }
                None => data.tickets.push(ticket_authz::model::Ticket {
                    id: fields.id,
                    created_at: fields.created_at,
                    requester: fields.requester,
                    organisation: fields.organisation,
                    group: fields.group,
                    assignee: fields.assignee,
                    ccs: Vec::new(),
                    participants: Vec::new(),
                    status: fields.status,
                }),
            }
        }
        Step::Delete { ticket } => {
            snap.apply(&Change::DeleteTicket {
                id: ticket_id(*ticket),
            })
            .unwrap();
            data.tickets.retain(|t| t.id != ticket_id(*ticket));
        }
        Step::Person {
            ticket,
            user,
            cc,
            present,
        } => {
            let id = ticket_id(*ticket);
            let user = user_id(*user);
            if !exists(data, &user) {
                return;
            }
            let role = if *cc { Role::Cc } else { Role::Participant };
            let result = snap.apply(&Change::TicketPerson {
                ticket: id.clone(),
                user: user.clone(),
                role,
                present: *present,
            });
            match data.tickets.iter_mut().find(|t| t.id == id) {
                Some(t) => {
                    result.unwrap();
                    let list = if *cc { &mut t.ccs } else { &mut t.participants };
                    list.retain(|u| *u != user);
                    if *present {
                        list.push(user);
                    }
                }
                None => assert_eq!(result.is_err(), *present),
            }
        }
        Step::User {
            user,
            suspended,
            org_access,
            kind,
            company,
            scoped,
            email_org,
            day,
        } => {
            let id = user_id(*user);
            let fields = UserFields {
                id: id.clone(),
                email: email_org.map(|o| format!("{id}@org{o}.example")),
                name: None,
                created_at: Timestamp::from_unix_seconds(1_735_689_600 + day * 86_400),
                kind: UserKind::ALL[*kind],
                suspended: *suspended,
                ticket_access: if *org_access {
                    UserAccess::Organisation
                } else {
                    UserAccess::Own
                },
                default_organisation: None,
                company: company.map(|c| data.companies[c].id.clone()),
                company_scoped: *scoped,
            };
            snap.apply(&Change::UpsertUser(fields.clone())).unwrap();
            if !exists(data, &id) {
                data.users.push(User {
                    id: id.clone(),
                    email: None,
                    name: None,
                    created_at: fields.created_at,
                    kind: fields.kind,
                    suspended: false,
                    ticket_access: UserAccess::Own,
                    organisations: Vec::new(),
                    default_organisation: None,
                    company: None,
                    company_scoped: false,
                    grants: Vec::new(),
                });
            }
            let u = data.users.iter_mut().find(|u| u.id == id).unwrap();
            u.email = fields.email;
            u.created_at = fields.created_at;
            u.kind = fields.kind;
            u.suspended = fields.suspended;
            u.ticket_access = fields.ticket_access;
            u.default_organisation = None;
            u.company = fields.company;
            u.company_scoped = fields.company_scoped;
        }
        Step::Membership { user, org, present } => {
            let (id, org_id) = (user_id(*user), data.organisations[*org].id.clone());
            let Some(u) = data.users.iter_mut().find(|u| u.id == id) else {
                return;
            };
            snap.apply(&Change::Membership {
                user: id.clone(),
                organisation: org_id.clone(),
                present: *present,
            })
            .unwrap();
            u.organisations.retain(|o| *o != org_id);
            if *present {
                u.organisations.push(org_id);
            }
        }
        Step::Grant {
            user,
            profile,
            group,
            present,
        } => {
            let id = user_id(*user);
            let profile_id = data.profiles[*profile].id.clone();
            let group_id = group.map(|g| data.groups[g].id.clone());
            let Some(u) = data.users.iter_mut().find(|u| u.id == id) else {
                return;
            };
            snap.apply(&Change::Grant {
                user: id.clone(),
                profile: profile_id.clone(),
                group: group_id.clone(),
                present: *present,
            })
            .unwrap();
            let scope = group_id.map_or(GrantScope::All, GrantScope::Group);
            u.grants
                .retain(|g| !(g.profile == profile_id && g.group == scope));
            if *present {
                u.grants.push(Grant {
                    profile: profile_id,
                    group: scope,
                });
            }
        }
        Step::DeleteUser { user } => {
            let id = user_id(*user);
            if !exists(data, &id) {
                return;
            }
            snap.apply(&Change::DeleteUser { id: id.clone() }).unwrap();
            data.users.retain(|u| u.id != id);
            for t in &mut data.tickets {
                // Our schema refuses this delete; a mapped source's
                // tickets keep a requester who is then nobody.
                if t.requester == id {
                    t.requester = String::new();
                }
                t.ccs.retain(|u| *u != id);
                t.participants.retain(|u| *u != id);
                if t.assignee.as_deref() == Some(id.as_str()) {
                    t.assignee = None;
                }
            }
            for o in &mut data.organisations {
                o.access_managers.retain(|u| *u != id);
            }
            for c in &mut data.companies {
                if c.owner.as_deref() == Some(id.as_str()) {
                    c.owner = None;
                }
            }
            section_user_gone(data, snap, &id);
        }
        Step::SectionUpsert { .. } | Step::SectionDelete { .. } | Step::SectionLink { .. } => {
            apply_section(data, snap, c)
        }
        Step::Org { org, access } => {
            let id = data
                .organisations
                .get(*org)
                .map_or_else(|| org_id(*org), |o| o.id.clone());
            let access = [OrgAccess::Own, OrgAccess::ViewAll, OrgAccess::CommentAll][*access];
            snap.apply(&Change::UpsertOrg(OrgFields {
                id: id.clone(),
                name: format!("name of {id}"),
                access,
            }))
            .unwrap();
            match data.organisations.iter_mut().find(|o| o.id == id) {
                Some(o) => {
                    o.name = format!("name of {id}");
                    o.ticket_access = access;
                }
                None => data.organisations.push(Organisation {
                    id: id.clone(),
                    name: format!("name of {id}"),
                    ticket_access: access,
                    domains: Vec::new(),
                    access_managers: Vec::new(),
                }),
            }
        }
        Step::Domain {
            org,
            domain,
            day,
            present,
        } => {
            let Some(o) = data.organisations.get_mut(*org) else {
                return;
            };
            let name = format!("org{domain}.example");
            let added_at = Timestamp::from_unix_seconds(1_735_689_600 + day * 86_400);
            snap.apply(&Change::Domain {
                organisation: o.id.clone(),
                domain: name.clone(),
                added_at,
                present: *present,
            })
            .unwrap();
            match o.domains.iter_mut().find(|d| d.domain == name) {
                Some(d) if *present => d.added_at = added_at,
                Some(_) => o.domains.retain(|d| d.domain != name),
                None if *present => o.domains.push(Domain {
                    domain: name,
                    added_at,
                }),
                None => {}
            }
        }
        Step::Partnership {
            partner,
            client,
            day,
            present,
        } => {
            let (Some(p), Some(c)) = (
                data.organisations.get(*partner),
                data.organisations.get(*client),
            ) else {
                return;
            };
            if partner == client {
                return;
            }
            let (p, c) = (p.id.clone(), c.id.clone());
            let since = Timestamp::from_unix_seconds(1_735_689_600 + day * 86_400);
            snap.apply(&Change::Partnership {
                partner: p.clone(),
                client: c.clone(),
                since,
                present: *present,
            })
            .unwrap();
            data.partnerships
                .retain(|x| !(x.partner == p && x.client == c));
            if *present {
                data.partnerships.push(Partnership {
                    partner: p,
                    client: c,
                    since,
                });
            }
        }
        Step::Group {
            group,
            parent,
            propagate,
            limits,
        } => {
            let id = data
                .groups
                .get(*group)
                .map_or_else(|| format!("g-new-{group}"), |g| g.id.clone());
            let parent = parent
                .and_then(|p| data.groups.get(p))
                .map(|g| g.id.clone());
            let fields = Group {
                id: id.clone(),
                name: format!("name of {id}"),
                parent: parent.clone(),
                propagate: *propagate,
                open_ticket_limit: limits.0,
                enforce_open_limit: limits.1,
                total_ticket_limit: limits.2,
            };
            let parents: Vec<(String, Option<String>)> = data
                .groups
                .iter()
                .map(|g| (g.id.clone(), g.parent.clone()))
                .collect();
            let result = snap.apply(&Change::UpsertGroup(fields.clone()));
            if parent.as_deref() == Some(id.as_str()) || loops(&parents, &id, parent.as_deref()) {
                // Refused; the caller would reload, and the reload would
                // hold the data back. Start over from the last good state.
                assert!(result.is_err(), "a parent cycle must be refused");
                *snap = Snapshot::build(data).unwrap();
                return;
            }
            result.unwrap();
            let group = Group {
                id: id.clone(),
                name: fields.name,
                parent,
                propagate: *propagate,
                open_ticket_limit: limits.0,
                enforce_open_limit: limits.1,
                total_ticket_limit: limits.2,
            };
            match data.groups.iter_mut().find(|g| g.id == id) {
                Some(g) => *g = group,
                None => data.groups.push(group),
            }
        }
        Step::People { ticket, cc, users } => {
            let id = ticket_id(*ticket);
            let mut users: Vec<String> = users.iter().map(|u| user_id(*u)).collect();
            users.sort();
            users.dedup();
            users.retain(|u| exists(data, u));
            let role = if *cc { Role::Cc } else { Role::Participant };
            snap.apply(&Change::TicketPeople {
                ticket: id.clone(),
                role,
                users: users.clone(),
            })
            .unwrap();
            if let Some(t) = data.tickets.iter_mut().find(|t| t.id == id) {
                *(if *cc { &mut t.ccs } else { &mut t.participants }) = users;
            }
        }
        Step::Grants { user, grants } => {
            let id = user_id(*user);
            let mut wanted: Vec<(String, Option<String>)> = grants
                .iter()
                .map(|(p, g)| {
                    (
                        data.profiles[*p].id.clone(),
                        g.map(|g| data.groups[g].id.clone()),
                    )
                })
                .collect();
            wanted.sort();
            wanted.dedup();
            snap.apply(&Change::Grants {
                user: id.clone(),
                grants: wanted.clone(),
            })
            .unwrap();
            if let Some(u) = data.users.iter_mut().find(|u| u.id == id) {
                u.grants = wanted
                    .into_iter()
                    .map(|(profile, group)| Grant {
                        profile,
                        group: group.map_or(GrantScope::All, GrantScope::Group),
                    })
                    .collect();
            }
        }
        Step::Flags { profile, flags } => {
            let flags: Vec<Flag> = flags
                .iter()
                .map(|f| Flag::parse(["IR", "IW", "IM"][*f]).unwrap())
                .collect();
            let p = &mut data.profiles[*profile];
            snap.apply(&Change::ProfileFlags {
                profile: p.id.clone(),
                flags: flags.clone(),
            })
            .unwrap();
            p.flags = flags.into_iter().collect();
        }
        Step::ProfileFlag {
            profile,
            ir,
            present,
        } => {
            let flag = if *ir {
                Flag::IR
            } else {
                Flag::parse("IW").unwrap()
            };
            let p = &mut data.profiles[*profile];
            snap.apply(&Change::ProfileFlag {
                profile: p.id.clone(),
                flag,
                present: *present,
            })
            .unwrap();
            let mut flags = ticket_authz::flags::FlagSet::EMPTY;
            for f in p.flags.iter().filter(|f| *f != flag) {
                flags.insert(f);
            }
            if *present {
                flags.insert(flag);
            }
            p.flags = flags;
        }
        Step::Company {
            company,
            parent,
            owner,
        } => {
            let id = data
                .companies
                .get(*company)
                .map_or_else(|| format!("c-new-{company}"), |c| c.id.clone());
            let parent = parent
                .and_then(|p| data.companies.get(p))
                .map(|c| c.id.clone());
            let owner = owner.map(user_id).filter(|u| exists(data, u));
            let fields = Company {
                id: id.clone(),
                name: format!("name of {id}"),
                parent: parent.clone(),
                owner: owner.clone(),
            };
            let parents: Vec<(String, Option<String>)> = data
                .companies
                .iter()
                .map(|c| (c.id.clone(), c.parent.clone()))
                .collect();
            let result = snap.apply(&Change::UpsertCompany(fields.clone()));
            if parent.as_deref() == Some(id.as_str()) || loops(&parents, &id, parent.as_deref()) {
                assert!(result.is_err(), "a parent cycle must be refused");
                *snap = Snapshot::build(data).unwrap();
                return;
            }
            result.unwrap();
            let company = Company {
                id: id.clone(),
                name: fields.name,
                parent,
                owner,
            };
            match data.companies.iter_mut().find(|c| c.id == id) {
                Some(c) => *c = company,
                None => data.companies.push(company),
            }
        }
    }
}

/// Section ids: even numbers are in the base data, odd ones are new ids
/// that sort between them.
fn section_id(entity: usize, n: usize) -> String {
    const PREFIX: [&str; 9] = ["p", "t", "w", "i", "v", "l", "e", "c", "d"];
    format!("{}-{n}", PREFIX[entity % 9])
}

/// Sections over the generated users, companies and groups: four of each
/// entity (ids 0, 2, 4, 6), tasks in two projects with a chain of parents.
fn base_sections(data: &Dataset) -> Sections {
    let user = |i: usize| data.users[(i * 7) % data.users.len()].id.clone();
    let company = |i: usize| data.companies[i % data.companies.len()].id.clone();
    let group = |i: usize| data.groups[i % data.groups.len()].id.clone();
    let member = |i: usize| SectionMember {
        user: user(i),
        role: if i.is_multiple_of(2) {
            MemberRole::Manager
        } else {
            MemberRole::Member
        },
    };
    let mut s = Sections::default();
    for k in 0..4 {
        let n = 2 * k;
        s.projects.push(Project {
            id: section_id(0, n),
            name: "P".into(),
            owner: (k != 1).then(|| user(k)),
            members: vec![member(k + 1), member(k + 2)],
        });
        s.tasks.push(Task {
            id: section_id(1, n),
            name: "T".into(),
            project: section_id(0, 2 * (k % 2)),
            // t-0 ← t-4, t-2 ← t-6 (same project each).
            parent: (k >= 2).then(|| section_id(1, n - 4)),
            members: vec![member(k + 3)],
        });
        s.wiki_pages.push(WikiPage {
            id: section_id(2, n),
            name: "W".into(),
            read_groups: if k.is_multiple_of(2) {
                vec![]
            } else {
                vec![group(k)]
            },
            write_groups: vec![group(k + 1)],
        });
        s.inventory_items.push(InventoryItem {
            id: section_id(3, n),
            name: "I".into(),
            owner: Some(user(k + 4)),
            public: k == 3,
            companies: vec![company(k)],
            users: vec![user(k + 5)],
        });
        s.invoices.push(Invoice {
            id: section_id(4, n),
            company: company(k + 1),
        });
        s.leads.push(Lead {
            id: section_id(5, n),
            name: "L".into(),
            company: (k != 2).then(|| company(k)),
            owner: Some(user(k + 6)),
        });
        s.agenda_events.push(AgendaEvent {
            id: section_id(6, n),
            name: "E".into(),
            owner: Some(user(k + 7)),
            public: k == 0,
            groups: vec![group(k + 2)],
        });
        s.download_categories.push(DownloadCategory {
            id: section_id(7, n),
            name: "C".into(),
            groups: if k == 0 { vec![] } else { vec![group(k)] },
        });
        s.downloads.push(Download {
            id: section_id(8, n),
            name: "D".into(),
            category: section_id(7, 2 * (k % 3)),
        });
    }
    s
}

/// The ids of a task and every task below it, the task first.
fn subtree(s: &Sections, id: &str) -> Vec<String> {
    let mut out = vec![id.to_owned()];
    let mut next = 0;
    while let Some(at) = out.get(next).cloned() {
        out.extend(
            s.tasks
                .iter()
                .filter(|t| t.parent.as_deref() == Some(at.as_str()))
                .map(|t| t.id.clone()),
        );
        next += 1;
    }
    out
}

/// What the database's cascades do to the sections when a user goes: the
/// user's list entries are deleted, what they own is kept without owner.
/// Applied to the snapshot after the user's own delete, as a change log
/// may order them.
fn section_user_gone(data: &mut Dataset, snap: &mut Snapshot, id: &str) {
    let s = &mut data.sections;
    let mut changes = Vec::new();
    for p in &mut s.projects {
        if let Some(m) = p.members.iter().find(|m| m.user == id) {
            changes.push(Change::SectionLink {
                link: SectionLink::ProjectMember {
                    project: p.id.clone(),
                    user: id.to_owned(),
                    role: m.role,
                },
                present: false,
            });
        }
        p.members.retain(|m| m.user != id);
        if p.owner.as_deref() == Some(id) {
            p.owner = None;
            changes.push(Change::UpsertSection(SectionRow::Project {
                id: p.id.clone(),
                name: p.name.clone(),
                owner: None,
            }));
        }
    }
    for t in &mut s.tasks {
        if let Some(m) = t.members.iter().find(|m| m.user == id) {
            changes.push(Change::SectionLink {
                link: SectionLink::TaskMember {
                    task: t.id.clone(),
                    user: id.to_owned(),
                    role: m.role,
                },
                present: false,
            });
        }
        t.members.retain(|m| m.user != id);
    }
    for i in &mut s.inventory_items {
        if i.users.iter().any(|u| u == id) {
            changes.push(Change::SectionLink {
                link: SectionLink::ItemUser {
                    item: i.id.clone(),
                    user: id.to_owned(),
                },
                present: false,
            });
        }
        i.users.retain(|u| u != id);
        if i.owner.as_deref() == Some(id) {
            i.owner = None;
            changes.push(Change::UpsertSection(SectionRow::InventoryItem {
                id: i.id.clone(),
                name: i.name.clone(),
                owner: None,
                public: i.public,
            }));
        }
    }
    for l in &mut s.leads {
        if l.owner.as_deref() == Some(id) {
            l.owner = None;
            changes.push(Change::UpsertSection(SectionRow::Lead {
                id: l.id.clone(),
                name: l.name.clone(),
                company: l.company.clone(),
                owner: None,
            }));
        }
    }
    for e in &mut s.agenda_events {
        if e.owner.as_deref() == Some(id) {
            e.owner = None;
            changes.push(Change::UpsertSection(SectionRow::AgendaEvent {
                id: e.id.clone(),
                name: e.name.clone(),
                owner: None,
                public: e.public,
            }));
        }
    }
    for c in &changes {
        snap.apply(c).unwrap();
    }
}

const ENTITIES: [SectionEntity; 9] = [
    SectionEntity::Project,
    SectionEntity::Task,
    SectionEntity::WikiPage,
    SectionEntity::InventoryItem,
    SectionEntity::Invoice,
    SectionEntity::Lead,
    SectionEntity::AgendaEvent,
    SectionEntity::DownloadCategory,
    SectionEntity::Download,
];

/// Applies a section step to the dataset and the snapshot, as the
/// database would let it through (references exist, a parent in the same
/// project) and as its change log would carry it (cascades row by row).
fn apply_section(data: &mut Dataset, snap: &mut Snapshot, c: &Step) {
    let users: Vec<String> = data.users.iter().map(|u| u.id.clone()).collect();
    let user = |i: usize| users[i % users.len()].clone();
    let company = |i: usize| data.companies[i % data.companies.len()].id.clone();
    let group = |i: usize| data.groups[i % data.groups.len()].id.clone();
    match c {
        Step::SectionUpsert {
            entity,
            n,
            a,
            b,
            flag,
        } => {
            let id = section_id(*entity, *n);
            let s = &data.sections;
            let row = match entity {
                0 => SectionRow::Project {
                    id,
                    name: "P2".into(),
                    owner: a.map(user),
                },
                1 => {
                    let project = section_id(0, a.unwrap_or(0) % 8);
                    let parent = b.map(|b| section_id(1, b % 8));
                    if !s.projects.iter().any(|p| p.id == project)
                        || parent
                            .as_ref()
                            .is_some_and(|p| !s.tasks.iter().any(|t| t.id == *p))
                        || parent.as_deref() == Some(id.as_str())
                    {
                        return;
                    }
                    let parent_project = parent
                        .as_ref()
                        .and_then(|p| s.tasks.iter().find(|t| t.id == *p))
                        .map(|t| t.project.clone());
                    let moves_children = s.tasks.iter().any(|t| t.id == id && t.project != project)
                        && s.tasks
                            .iter()
                            .any(|t| t.parent.as_deref() == Some(id.as_str()));
                    // The schema refuses these (the composite key).
                    if parent_project.is_some_and(|p| p != project) || moves_children {
                        return;
                    }
                    let row = SectionRow::Task {
                        id: id.clone(),
                        name: "T2".into(),
                        project: project.clone(),
                        parent: parent.clone(),
                    };
                    // A cycle the schema lets through: refused, held back.
                    if parent.as_ref().is_some_and(|p| subtree(s, &id).contains(p)) {
                        assert!(snap.apply(&Change::UpsertSection(row)).is_err());
                        *snap = Snapshot::build(data).unwrap();
                        return;
                    }
                    row
                }
                2 => SectionRow::WikiPage {
                    id,
                    name: "W2".into(),
                },
                3 => SectionRow::InventoryItem {
                    id,
                    name: "I2".into(),
                    owner: a.map(user),
                    public: *flag,
                },
                4 => SectionRow::Invoice {
                    id,
                    company: company(a.unwrap_or(1)),
                },
                5 => SectionRow::Lead {
                    id,
                    name: "L2".into(),
                    company: a.map(company),
                    owner: b.map(user),
                },
                6 => SectionRow::AgendaEvent {
                    id,
                    name: "E2".into(),
                    owner: a.map(user),
                    public: *flag,
                },
                7 => SectionRow::DownloadCategory {
                    id,
                    name: "C2".into(),
                },
                _ => {
                    let category = section_id(7, a.unwrap_or(0) % 8);
                    if !s.download_categories.iter().any(|c| c.id == category) {
                        return;
                    }
                    SectionRow::Download {
                        id,
                        name: "D2".into(),
                        category,
                    }
                }
            };
            snap.apply(&Change::UpsertSection(row.clone())).unwrap();
            let s = &mut data.sections;
            macro_rules! upsert {
                ($list:expr, $id:expr, $new:expr, |$old:ident| $update:block) => {
                    match $list.iter_mut().find(|r| r.id == *$id) {
                        Some($old) => $update,
                        None => $list.push($new),
                    }
                };
            }
            match row {
                SectionRow::Project { id, name, owner } => upsert!(
                    s.projects,
                    &id,
                    Project {
                        id: id.clone(),
                        name: name.clone(),
                        owner: owner.clone(),
                        members: vec![]
                    },
                    |r| {
                        r.name = name;
                        r.owner = owner;
                    }
                ),
                SectionRow::Task {
                    id,
                    name,
                    project,
                    parent,
                } => upsert!(
                    s.tasks,
                    &id,
                    Task {
                        id: id.clone(),
                        name: name.clone(),
                        project: project.clone(),
                        parent: parent.clone(),
                        members: vec![]
                    },
                    |r| {
                        r.name = name;
                        r.project = project;
                        r.parent = parent;
                    }
                ),
                SectionRow::WikiPage { id, name } => upsert!(
                    s.wiki_pages,
                    &id,
                    WikiPage {
                        id: id.clone(),
                        name: name.clone(),
                        read_groups: vec![],
                        write_groups: vec![]
                    },
                    |r| {
                        r.name = name;
                    }
                ),
                SectionRow::InventoryItem {
                    id,
                    name,
                    owner,
                    public,
                } => upsert!(
                    s.inventory_items,
                    &id,
                    InventoryItem {
                        id: id.clone(),
                        name: name.clone(),
                        owner: owner.clone(),
                        public,
                        companies: vec![],
                        users: vec![]
                    },
                    |r| {
                        r.name = name;
                        r.owner = owner;
                        r.public = public;
                    }
                ),
                SectionRow::Invoice { id, company } => upsert!(
                    s.invoices,
                    &id,
                    Invoice {
                        id: id.clone(),
                        company: company.clone()
                    },
                    |r| {
                        r.company = company;
                    }
                ),
                SectionRow::Lead {
                    id,
                    name,
                    company,
                    owner,
                } => upsert!(
                    s.leads,
                    &id,
                    Lead {
                        id: id.clone(),
                        name: name.clone(),
                        company: company.clone(),
                        owner: owner.clone()
                    },
                    |r| {
                        r.name = name;
                        r.company = company;
                        r.owner = owner;
                    }
                ),
                SectionRow::AgendaEvent {
                    id,
                    name,
                    owner,
                    public,
                } => upsert!(
                    s.agenda_events,
                    &id,
                    AgendaEvent {
                        id: id.clone(),
                        name: name.clone(),
                        owner: owner.clone(),
                        public,
                        groups: vec![]
                    },
                    |r| {
                        r.name = name;
                        r.owner = owner;
                        r.public = public;
                    }
                ),
                SectionRow::DownloadCategory { id, name } => upsert!(
                    s.download_categories,
                    &id,
                    DownloadCategory {
                        id: id.clone(),
                        name: name.clone(),
                        groups: vec![]
                    },
                    |r| {
                        r.name = name;
                    }
                ),
                SectionRow::Download { id, name, category } => upsert!(
                    s.downloads,
                    &id,
                    Download {
                        id: id.clone(),
                        name: name.clone(),
                        category: category.clone()
                    },
                    |r| {
                        r.name = name;
                        r.category = category;
                    }
                ),
            }
        }
        Step::SectionDelete { entity, n } => {
            let id = section_id(*entity, *n);
            let s = &mut data.sections;
            // The cascade, the deleted row first (the order-free case).
            let mut gone: Vec<(SectionEntity, String)> = vec![(ENTITIES[*entity % 9], id.clone())];
            match entity % 9 {
                0 => {
                    let tasks: Vec<String> = s
                        .tasks
                        .iter()
                        .filter(|t| t.project == id)
                        .map(|t| t.id.clone())
                        .collect();
                    gone.extend(tasks.into_iter().map(|t| (SectionEntity::Task, t)));
                }
                1 => {
                    let below = subtree(s, &id);
                    gone.extend(below.into_iter().skip(1).map(|t| (SectionEntity::Task, t)));
                }
                7 => gone.extend(
                    s.downloads
                        .iter()
                        .filter(|d| d.category == id)
                        .map(|d| (SectionEntity::Download, d.id.clone())),
                ),
                _ => {}
            }
            for (entity, id) in &gone {
                snap.apply(&Change::DeleteSection {
                    entity: *entity,
                    id: id.clone(),
                })
                .unwrap();
                match entity {
                    SectionEntity::Project => s.projects.retain(|r| r.id != *id),
                    SectionEntity::Task => s.tasks.retain(|r| r.id != *id),
                    SectionEntity::WikiPage => s.wiki_pages.retain(|r| r.id != *id),
                    SectionEntity::InventoryItem => s.inventory_items.retain(|r| r.id != *id),
                    SectionEntity::Invoice => s.invoices.retain(|r| r.id != *id),
                    SectionEntity::Lead => s.leads.retain(|r| r.id != *id),
                    SectionEntity::AgendaEvent => s.agenda_events.retain(|r| r.id != *id),
                    SectionEntity::DownloadCategory => {
                        s.download_categories.retain(|r| r.id != *id)
                    }
                    SectionEntity::Download => s.downloads.retain(|r| r.id != *id),
                }
            }
            // Their list rows come after them: taking an entry off a row
            // that is gone changes nothing.
            snap.apply(&Change::SectionLink {
                link: SectionLink::ProjectMember {
                    project: id,
                    user: user(0),
                    role: MemberRole::Member,
                },
                present: false,
            })
            .unwrap();
        }
        Step::SectionLink {
            link,
            n,
            target,
            manager,
            present,
        } => {
            let s = &data.sections;
            let on = |e: usize| section_id(e, *n);
            let (link, known) = match link {
                0 => (
                    SectionLink::ProjectMember {
                        project: on(0),
                        user: user(*target),
                        role: if *manager {
                            MemberRole::Manager
                        } else {
                            MemberRole::Member
                        },
                    },
                    s.projects.iter().any(|r| r.id == on(0)),
                ),
                1 => (
                    SectionLink::TaskMember {
                        task: on(1),
                        user: user(*target),
                        role: if *manager {
                            MemberRole::Manager
                        } else {
                            MemberRole::Member
                        },
                    },
                    s.tasks.iter().any(|r| r.id == on(1)),
                ),
                2 => (
                    SectionLink::WikiGroup {
                        page: on(2),
                        group: group(*target),
                        write: *manager,
                    },
                    s.wiki_pages.iter().any(|r| r.id == on(2)),
                ),
                3 => (
                    SectionLink::ItemCompany {
                        item: on(3),
                        company: company(*target),
                    },
                    s.inventory_items.iter().any(|r| r.id == on(3)),
                ),
                4 => (
                    SectionLink::ItemUser {
                        item: on(3),
                        user: user(*target),
                    },
                    s.inventory_items.iter().any(|r| r.id == on(3)),
                ),
                5 => (
                    SectionLink::EventGroup {
                        event: on(6),
                        group: group(*target),
                    },
                    s.agenda_events.iter().any(|r| r.id == on(6)),
                ),
                _ => (
                    SectionLink::CategoryGroup {
                        category: on(7),
                        group: group(*target),
                    },
                    s.download_categories.iter().any(|r| r.id == on(7)),
                ),
            };
            if !known && *present {
                return;
            }
            // One row per entry: an update is the old entry off, then on.
            snap.apply(&Change::SectionLink {
                link: link.clone(),
                present: false,
            })
            .unwrap();
            if *present {
                snap.apply(&Change::SectionLink {
                    link: link.clone(),
                    present: true,
                })
                .unwrap();
            }
            let s = &mut data.sections;
            let set = |list: &mut Vec<String>, v: &str| {
                list.retain(|x| x != v);
                if *present {
                    list.push(v.to_owned());
                }
            };
            match link {
                SectionLink::ProjectMember {
                    project,
                    user,
                    role,
                } => {
                    if let Some(p) = s.projects.iter_mut().find(|p| p.id == project) {
                        p.members.retain(|m| m.user != user);
                        if *present {
                            p.members.push(SectionMember { user, role });
                        }
                    }
                }
                SectionLink::TaskMember { task, user, role } => {
                    if let Some(t) = s.tasks.iter_mut().find(|t| t.id == task) {
                        t.members.retain(|m| m.user != user);
                        if *present {
                            t.members.push(SectionMember { user, role });
                        }
                    }
                }
                SectionLink::WikiGroup { page, group, write } => {
                    if let Some(w) = s.wiki_pages.iter_mut().find(|w| w.id == page) {
                        set(
                            if write {
                                &mut w.write_groups
                            } else {
                                &mut w.read_groups
                            },
                            &group,
                        );
                    }
                }
                SectionLink::ItemCompany { item, company } => {
                    if let Some(i) = s.inventory_items.iter_mut().find(|i| i.id == item) {
                        set(&mut i.companies, &company);
                    }
                }
                SectionLink::ItemUser { item, user } => {
                    if let Some(i) = s.inventory_items.iter_mut().find(|i| i.id == item) {
                        set(&mut i.users, &user);
                    }
                }
                SectionLink::EventGroup { event, group } => {
                    if let Some(e) = s.agenda_events.iter_mut().find(|e| e.id == event) {
                        set(&mut e.groups, &group);
                    }
                }
                SectionLink::CategoryGroup { category, group } => {
                    if let Some(c) = s.download_categories.iter_mut().find(|c| c.id == category) {
                        set(&mut c.groups, &group);
                    }
                }
            }
        }
        _ => unreachable!("not a section step"),
    }
}

fn answers(snap: &Snapshot, data: &Dataset) -> Vec<String> {
    let now = Context::at(data.now.unwrap());
    let mut out = common::section_answers(snap, data);
    for (i, user) in data.users.iter().enumerate() {
        out.push(format!(
            "{} filter {:?}",
            user.id,
            core::visibility_filter(snap, &user.id)
        ));
        if i % 5 == 0 {
            let page =
                core::list_visible_tickets(snap, &user.id, &TicketFilter::default(), 1000, "")
                    .unwrap();
            out.push(format!("{} sees {:?}", user.id, page.ids));
        }
        for group in &data.groups {
            let req = CheckRequest {
                user: &user.id,
                action: ActionInput::Known(Action::Create),
                group: &group.id,
                ..CheckRequest::default()
            };
            let d = core::check(snap, &req, now).unwrap();
            out.push(format!(
                "{} create in {}: {} {:?} {:?}",
                user.id, group.id, d.allowed, d.reason, d.warning
            ));
        }
    }
    for i in (0..320).step_by(7) {
        let page = core::list_ticket_viewers(snap, &ticket_id(i), 1000, "").unwrap();
        out.push(format!("{} viewers {:?}", ticket_id(i), page.ids));
    }
    // Flags (profiles, propagation), edits, organisation and company
    // actions, for a sample of users.
    for user in data.users.iter().step_by(3) {
        let mut ask = |action: Action, field: &str, id: &str, flag: &str| {
            let mut req = CheckRequest {
                user: &user.id,
                action: ActionInput::Known(action),
                flag,
                ..CheckRequest::default()
            };
            match field {
                "group" => req.group = id,
                "ticket" => req.ticket = id,
                "organisation" => req.organisation = id,
                _ => req.company = id,
            }
            let d = core::check(snap, &req, now).unwrap();
            out.push(format!(
                "{} {} {id} {flag}: {} {:?}",
                user.id,
                action.name(),
                d.allowed,
                d.reason
            ));
        };
        for group in &data.groups {
            ask(Action::HasFlag, "group", &group.id, "IW");
            ask(Action::HasFlag, "group", &group.id, "IR");
        }
        for t in data.tickets.iter().step_by(11) {
            ask(Action::Edit, "ticket", &t.id, "");
            ask(Action::Comment, "ticket", &t.id, "");
        }
        for o in &data.organisations {
            ask(Action::ManageAccess, "organisation", &o.id, "");
        }
        for c in &data.companies {
            ask(Action::CompanyView, "company", &c.id, "");
            ask(Action::CompanyManage, "company", &c.id, "");
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn incremental_changes_equal_a_fresh_build(seed in any::<u64>(), changes in proptest::collection::vec(change(), 1..60)) {
        let mut data = generate(&Spec { users: 200, organisations: 12, companies: 8, groups: 15, profiles: 8, tickets: 300, seed });
        // Limits near what end-users (few tickets each) and agents (the
        // whole group, ~20) count, so every count shows in the decisions.
        for (i, g) in data.groups.iter_mut().enumerate() {
            let i = i as u32;
            if i.is_multiple_of(2) {
                g.open_ticket_limit = i % 3 + 1;
                g.total_ticket_limit = (i % 4) * 2;
            } else {
                g.open_ticket_limit = 8 + i % 7;
                g.total_ticket_limit = 14 + i % 9;
            }
            g.enforce_open_limit = i % 4 < 2;
        }
        data.sections = base_sections(&data);
        let mut snap = Snapshot::build(&data).unwrap();
        let original = snap.clone();
        let before = answers(&original, &data);
        let original_data = data.clone();
        for c in &changes {
            apply(&mut data, &mut snap, c);
        }
        let fresh = Snapshot::build(&data).unwrap();
        prop_assert_eq!(answers(&snap, &data), answers(&fresh, &data));
        prop_assert_eq!(answers(&original, &original_data), before);
    }
}
