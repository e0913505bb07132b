//! A deterministic synthetic dataset of any size, shared by the benchmarks,
//! the property tests and `ticket-authz generate`.

use crate::flags::{FLAG_NAMES, Flag, FlagSet};
use crate::model::{
    Company, Dataset, Domain, Grant, GrantScope, Group, OrgAccess, Organisation, Partnership,
    Profile, Status, Ticket, User, UserAccess, UserKind,
};
use crate::time::Timestamp;

/// Sizes of a generated dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub users: usize,
    pub organisations: usize,
    pub companies: usize,
    pub groups: usize,
    pub profiles: usize,
    pub tickets: usize,
    pub seed: u64,
}

/// A user who sees (almost) every ticket through group grants: IR on every
/// root group, all of which propagate.
pub const WIDE_USER: &str = "bench-wide";
/// An end-user who requested exactly ten tickets and sees nothing else.
pub const NARROW_USER: &str = "bench-narrow";
/// An agent with IW, IM, IC and SI on one propagating root group.
pub const AGENT_USER: &str = "bench-agent";

/// The ids of a dataset's agents, in file order: the users the load
/// generator and the benches draw "a random agent" from.
pub fn agent_ids(data: &Dataset) -> Vec<&str> {
    data.users
        .iter()
        .filter(|u| u.kind == UserKind::Agent)
        .map(|u| u.id.as_str())
        .collect()
}

impl Spec {
    /// The benchmark shape scaled to `tickets`: one user per ten
    /// tickets, one organisation per 500, 200 groups and 50 profiles.
    pub fn scaled(tickets: usize) -> Spec {
        Spec {
            users: (tickets / 10).max(50),
            organisations: (tickets / 500).max(10),
            companies: (tickets / 1000).max(5),
            groups: 200,
            profiles: 50,
            tickets,
            seed: 7,
        }
    }
}

const DAY: i64 = 86_400;
/// 2025-01-01T00:00:00Z
const EPOCH_2025: i64 = 1_735_689_600;

fn at(days_after_2025: i64, rng: &mut fastrand::Rng) -> Timestamp {
    Timestamp::from_unix_seconds(EPOCH_2025 + days_after_2025 * DAY + rng.i64(0..DAY))
}

/// Generates a valid dataset; the same spec always gives the same data.
pub fn generate(spec: &Spec) -> Dataset {
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    let org_id = |i: usize| format!("org-{i:05}");
    let user_id = |i: usize| format!("u-{i:07}");

    let mut organisations: Vec<Organisation> = (0..spec.organisations)
        .map(|i| Organisation {
            id: org_id(i),
            name: format!("Organisation {i}"),
            ticket_access: match rng.u8(0..10) {
                0..=5 => OrgAccess::Own,
                6..=8 => OrgAccess::ViewAll,
                _ => OrgAccess::CommentAll,
            },
            domains: vec![Domain {
                domain: format!("org{i}.example"),
                added_at: Timestamp::from_unix_seconds(EPOCH_2025 - 400 * DAY),
            }],
            access_managers: Vec::new(),
        })
        .collect();
    // Every twentieth organisation is a partner of the next three.
    let mut partnerships = Vec::new();
    for p in (0..spec.organisations).step_by(20) {
        for c in 1..=3 {
            if p + c < spec.organisations {
                partnerships.push(Partnership {
                    partner: org_id(p),
                    client: org_id(p + c),
                    since: Timestamp::from_unix_seconds(EPOCH_2025 - 200 * DAY),
                });
            }
        }
    }

    let companies: Vec<Company> = (0..spec.companies)
        .map(|i| Company {
            id: format!("co-{i:05}"),
            name: format!("Company {i}"),
            parent: (i >= 10 && rng.bool()).then(|| format!("co-{:05}", rng.usize(0..i))),
            owner: None,
        })
        .collect();

    // Groups: a forest of 20 propagating roots, the rest below them.
    let roots = (spec.groups / 5).clamp(1, 20);
    let groups: Vec<Group> = (0..spec.groups)
        .map(|i| Group {
            id: format!("g-{i:03}"),
            name: format!("Group {i}"),
            parent: (i >= roots).then(|| format!("g-{:03}", rng.usize(0..i))),
            propagate: i < roots || rng.bool(),
            open_ticket_limit: if i % 10 == 0 { 50 } else { 0 },
            enforce_open_limit: i % 20 == 0,
            total_ticket_limit: if i % 10 == 0 { 5000 } else { 0 },
        })
        .collect();

    let mut profiles: Vec<Profile> = (0..spec.profiles)
        .map(|i| {
            let mut flags: FlagSet = [Flag::IR].into_iter().collect();
            for name in FLAG_NAMES {
                if let Some(flag) = Flag::parse(name).filter(|_| rng.u8(0..6) == 0) {
                    flags.insert(flag);
                }
            }
            Profile {
                id: format!("p-{i:02}"),
                name: format!("Profile {i}"),
                flags,
            }
        })
        .collect();
    profiles.push(Profile {
        id: "p-reader".into(),
        name: "Reader".into(),
        flags: [Flag::IR].into_iter().collect(),
    });
    profiles.push(Profile {
        id: "p-lead".into(),
        name: "Lead".into(),
        flags: [Flag::IR, Flag::IW, Flag::IM, Flag::IC, Flag::SI, Flag::CR]
            .into_iter()
            .collect(),
    });

    let mut users: Vec<User> = Vec::with_capacity(spec.users + 3);
    let mut agents = Vec::new();
    let mut end_users = Vec::new();
    let mut home_org = Vec::with_capacity(spec.users);
    for i in 0..spec.users {
        let kind = match i % 1000 {
            0 => UserKind::Superadmin,
            1..=50 => UserKind::Agent,
            _ => UserKind::EndUser,
        };
        let org = rng.usize(0..spec.organisations.max(1));
        home_org.push(org);
        let mut grants = Vec::new();
        if kind == UserKind::Agent {
            for _ in 0..rng.usize(1..=3) {
                let grant = Grant {
                    profile: format!("p-{:02}", rng.usize(0..spec.profiles.max(1))),
                    group: if rng.u8(0..20) == 0 {
                        GrantScope::All
                    } else {
                        GrantScope::Group(format!("g-{:03}", rng.usize(0..spec.groups.max(1))))
                    },
                };
                // A grant drawn twice is one grant (the database's key);
                // the draws still happen, so the rest of the data is the
                // same as before.
                if !grants.contains(&grant) {
                    grants.push(grant);
                }
            }
            agents.push(i);
        } else if kind == UserKind::EndUser {
            end_users.push(i);
        }
        users.push(User {
            id: user_id(i),
            email: Some(if kind == UserKind::EndUser {
                format!("user{i}@org{org}.example")
            } else {
                format!("staff{i}@desk.example")
            }),
            name: None,
            created_at: at(rng.i64(-300..500), &mut rng),
            kind,
            suspended: rng.u16(0..500) == 0,
            ticket_access: if rng.u8(0..5) == 0 {
                UserAccess::Organisation
            } else {
                UserAccess::Own
            },
            organisations: if rng.u8(0..10) == 0 {
                vec![org_id(rng.usize(0..spec.organisations.max(1)))]
            } else {
                Vec::new()
            },
            default_organisation: None,
            company: rng
                .bool()
                .then(|| format!("co-{:05}", rng.usize(0..spec.companies.max(1)))),
            company_scoped: kind == UserKind::Agent && rng.u8(0..10) == 0,
            grants,
        });
    }
    if let Some(first) = organisations.first_mut() {
        first.access_managers.push(user_id(0));
    }
    let bench_user = |id: &str, kind: UserKind| User {
        id: id.to_owned(),
        email: Some(format!("{id}@desk.example")),
        name: None,
        created_at: Timestamp::from_unix_seconds(EPOCH_2025),
        kind,
        suspended: false,
        ticket_access: UserAccess::Own,
        organisations: Vec::new(),
        default_organisation: None,
        company: None,
        company_scoped: false,
        grants: Vec::new(),
    };
    users.push(User {
        grants: (0..roots)
            .map(|g| Grant {
                profile: "p-reader".into(),
                group: GrantScope::Group(format!("g-{g:03}")),
            })
            .collect(),
        ..bench_user(WIDE_USER, UserKind::Agent)
    });
    users.push(bench_user(NARROW_USER, UserKind::EndUser));
    users.push(User {
        organisations: vec![org_id(0)],
        default_organisation: Some(org_id(0)),
        company: Some("co-00000".into()),
        grants: vec![Grant {
            profile: "p-lead".into(),
            group: GrantScope::Group("g-000".into()),
        }],
        ..bench_user(AGENT_USER, UserKind::Agent)
    });

    let statuses = Status::ALL;
    let mut tickets = Vec::with_capacity(spec.tickets);
    for i in 0..spec.tickets {
        let (requester, organisation) = if i < 10 || end_users.is_empty() {
            (NARROW_USER.to_owned(), None)
        } else {
            let r = end_users[rng.usize(0..end_users.len())];
            let org = (rng.u8(0..10) != 0).then(|| org_id(home_org[r]));
            (user_id(r), org)
        };
        let pick_agent = |rng: &mut fastrand::Rng| {
            (!agents.is_empty()).then(|| user_id(agents[rng.usize(0..agents.len())]))
        };
        tickets.push(Ticket {
            id: format!("T{i:08}"),
            created_at: at(rng.i64(0..520), &mut rng),
            requester,
            organisation,
            group: (rng.u8(0..20) != 0)
                .then(|| format!("g-{:03}", rng.usize(0..spec.groups.max(1)))),
            assignee: if rng.bool() {
                pick_agent(&mut rng)
            } else {
                None
            },
            ccs: if rng.u8(0..20) == 0 {
                vec![user_id(rng.usize(0..spec.users))]
            } else {
                Vec::new()
            },
            participants: if rng.u8(0..20) == 0 {
                pick_agent(&mut rng).into_iter().collect()
            } else {
                Vec::new()
            },
            status: statuses[rng.usize(0..statuses.len())],
        });
    }

    Dataset {
        now: Some(Timestamp::from_unix_seconds(EPOCH_2025 + 520 * DAY)),
        organisations,
        partnerships,
        companies,
        groups,
        profiles,
        users,
        tickets,
        sections: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_user_holds_the_same_grant_twice() {
        // One profile and one group: an agent drawing two or three grants
        // draws the same one again most of the time.
        let data = generate(&Spec {
            users: 2000,
            organisations: 10,
            companies: 5,
            groups: 1,
            profiles: 1,
            tickets: 10,
            seed: 3,
        });
        let mut agents_with_two = 0;
        for user in &data.users {
            for (i, grant) in user.grants.iter().enumerate() {
                assert!(!user.grants[..i].contains(grant), "{}", user.id);
            }
            agents_with_two += usize::from(user.grants.len() == 2);
        }
        // `p-00` on `g-000` and on `*`: the case the key still allows.
        assert!(agents_with_two > 0);
    }
}
