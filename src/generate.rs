//! A deterministic synthetic dataset of any size, shared by the benchmarks,
//! the property tests and `ticket-authz generate`; optionally with the
//! service-desk sections of access model §8 at any scale (`add_sections`).

use crate::flags::{FLAG_NAMES, Flag, FlagSet};
use crate::model::{
    AgendaEvent, Company, Dataset, Domain, Download, DownloadCategory, Grant, GrantScope, Group,
    InventoryItem, Invoice, Lead, MemberRole, OrgAccess, Organisation, Partnership, Profile,
    Project, SectionMember, Sections, Status, Task, Ticket, User, UserAccess, UserKind, WikiPage,
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

/// An agent with every section flag on `*` and a company: the user the
/// section benchmarks expect to see the most (access model §8). Added by
/// [`add_sections`] only.
pub const SECTIONS_USER: &str = "bench-sections";

/// The share of each kind in a generated service desk's section resources,
/// in per mille: tasks and inventory dominate, as they do in a desk that
/// runs projects and tracks assets; projects and downloads are few.
const SHARES: [(&str, usize); 8] = [
    ("projects", 20),
    ("tasks", 300),
    ("wiki_pages", 60),
    ("inventory_items", 250),
    ("invoices", 150),
    ("leads", 100),
    ("agenda_events", 100),
    ("downloads", 20),
];

/// How many resources of each kind [`add_sections`] makes of `total`, in
/// the order of [`SHARES`]; the rounding remainder goes to tasks.
pub fn section_counts(total: usize) -> [usize; 8] {
    let mut counts = SHARES.map(|(_, per_mille)| total * per_mille / 1000);
    let made: usize = counts.iter().sum();
    counts[1] += total - made;
    counts
}

/// An index in `0..n` drawn with a skew towards the low end (the smaller
/// of two uniform draws): a few agents sit on many projects and a few
/// companies hold many invoices, as in a real desk, while most have few.
fn skewed(rng: &mut fastrand::Rng, n: usize) -> usize {
    rng.usize(0..n).min(rng.usize(0..n))
}

/// Appends `total` service-desk section resources (projects with task
/// trees, wiki pages, inventory items, invoices, leads, agenda events and
/// downloads, plus their download categories) to a generated dataset,
/// drawn from their own random stream so that everything [`generate`]
/// made stays exactly as it was. People are the dataset's own: owners,
/// members and associated users are its agents (inventory also names
/// end-users), companies and groups its own, each drawn with a skew. A
/// profile with every section flag and [`SECTIONS_USER`] holding it on
/// `*` are added. `total = 0` adds nothing at all.
pub fn add_sections(data: &mut Dataset, total: usize, seed: u64) {
    if total == 0 {
        return;
    }
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5ec7_1045);
    let section_flags = [
        "PR", "PM", "WR", "WW", "WM", "VR", "VW", "VM", "CIR", "CIW", "CIM", "CLR", "CLW", "CLM",
        "AR", "AW", "AM", "FRR", "FRW", "FRM", "UM",
    ];
    data.profiles.push(Profile {
        id: "p-sections".into(),
        name: "Every section".into(),
        flags: section_flags
            .iter()
            .filter_map(|f| Flag::parse(f))
            .collect(),
    });
    let first_company = data.companies.first().map(|c| c.id.clone());
    data.users.push(User {
        id: SECTIONS_USER.into(),
        email: Some(format!("{SECTIONS_USER}@desk.example")),
        name: None,
        created_at: Timestamp::from_unix_seconds(EPOCH_2025),
        kind: UserKind::Agent,
        suspended: false,
        ticket_access: UserAccess::Own,
        organisations: Vec::new(),
        default_organisation: None,
        company: first_company,
        company_scoped: false,
        grants: vec![Grant {
            profile: "p-sections".into(),
            group: GrantScope::All,
        }],
    });
    // The bench user first, so that the skew makes it the busiest agent.
    let mut agents: Vec<String> = vec![SECTIONS_USER.to_owned()];
    agents.extend(
        data.users
            .iter()
            .filter(|u| u.kind == UserKind::Agent && u.id != SECTIONS_USER)
            .map(|u| u.id.clone()),
    );
    let users: Vec<String> = data.users.iter().map(|u| u.id.clone()).collect();
    let companies: Vec<String> = data.companies.iter().map(|c| c.id.clone()).collect();
    let groups: Vec<String> = data.groups.iter().map(|g| g.id.clone()).collect();
    let [
        projects,
        tasks,
        wiki,
        items,
        invoices,
        leads,
        events,
        downloads,
    ] = section_counts(total);
    let mut s = Sections::default();
    let agent = |rng: &mut fastrand::Rng| agents[skewed(rng, agents.len())].clone();
    let some_company = |rng: &mut fastrand::Rng| {
        (!companies.is_empty()).then(|| companies[skewed(rng, companies.len())].clone())
    };
    let some_groups = |rng: &mut fastrand::Rng, most: usize| -> Vec<String> {
        let mut picked: Vec<String> = Vec::new();
        for _ in 0..rng.usize(1..=most) {
            if groups.is_empty() {
                break;
            }
            let g = groups[rng.usize(0..groups.len())].clone();
            if !picked.contains(&g) {
                picked.push(g);
            }
        }
        picked
    };
    let role = |rng: &mut fastrand::Rng| {
        if rng.u8(0..5) == 0 {
            MemberRole::Manager
        } else {
            MemberRole::Member
        }
    };
    let add_member = |members: &mut Vec<SectionMember>, user: String, role: MemberRole| {
        if !members.iter().any(|m| m.user == user) {
            members.push(SectionMember { user, role });
        }
    };

    // Projects: an agent owns most; a team of two to eight agents.
    for i in 0..projects {
        let mut members = Vec::new();
        for _ in 0..rng.usize(2..=8) {
            let (user, role) = (agent(&mut rng), role(&mut rng));
            add_member(&mut members, user, role);
        }
        s.projects.push(Project {
            id: format!("prj-{i:06}"),
            name: format!("Project {i}"),
            owner: (rng.u8(0..10) != 0).then(|| agent(&mut rng)),
            members,
        });
    }
    // Tasks: trees within a project (a parent is an earlier task of the
    // same project, so there is no cycle); members mostly from the
    // project's team.
    let mut tasks_of: Vec<Vec<usize>> = vec![Vec::new(); projects];
    for i in 0..tasks {
        if projects == 0 {
            break;
        }
        let p = skewed(&mut rng, projects);
        let earlier = &tasks_of[p];
        let parent = (!earlier.is_empty() && rng.u8(0..10) < 7)
            .then(|| format!("tsk-{:07}", earlier[rng.usize(0..earlier.len())]));
        let mut members = Vec::new();
        for _ in 0..rng.usize(0..=2) {
            let team = &s.projects[p].members;
            let user = if !team.is_empty() && rng.u8(0..10) < 7 {
                team[rng.usize(0..team.len())].user.clone()
            } else {
                agent(&mut rng)
            };
            let role = role(&mut rng);
            add_member(&mut members, user, role);
        }
        s.tasks.push(Task {
            id: format!("tsk-{i:07}"),
            name: format!("Task {i}"),
            project: s.projects[p].id.clone(),
            parent,
            members,
        });
        tasks_of[p].push(i);
    }
    // Wiki pages: half open to every reader, the rest narrowed to a group
    // or two; writers narrowed more often.
    for i in 0..wiki {
        let read_groups = if rng.bool() {
            Vec::new()
        } else {
            some_groups(&mut rng, 2)
        };
        let write_groups = if rng.u8(0..10) < 3 {
            Vec::new()
        } else {
            some_groups(&mut rng, 2)
        };
        s.wiki_pages.push(WikiPage {
            id: format!("wiki-{i:06}"),
            name: format!("Page {i}"),
            read_groups,
            write_groups,
        });
    }
    // Inventory: owned by an agent or an end-user or nobody; one in ten
    // public; most tied to a company; a few associated users.
    for i in 0..items {
        let owner = match rng.u8(0..10) {
            0..=5 => Some(agent(&mut rng)),
            // `users` holds at least the bench user added above.
            6..=7 => Some(users[rng.usize(0..users.len())].clone()),
            _ => None,
        };
        let mut item_companies = Vec::new();
        for _ in 0..match rng.u8(0..10) {
            0..=5 => 1,
            6 => 2,
            _ => 0,
        } {
            if let Some(c) = some_company(&mut rng).filter(|c| !item_companies.contains(c)) {
                item_companies.push(c);
            }
        }
        let mut item_users: Vec<String> = Vec::new();
        for _ in 0..rng.usize(0..=2) {
            let u = agent(&mut rng);
            if !item_users.contains(&u) {
                item_users.push(u);
            }
        }
        s.inventory_items.push(InventoryItem {
            id: format!("inv-{i:06}"),
            name: format!("Asset {i}"),
            owner,
            public: rng.u8(0..10) == 0,
            companies: item_companies,
            users: item_users,
        });
    }
    // Invoices and leads hang off companies (skewed: a few big clients);
    // some leads have no company yet.
    for i in 0..invoices {
        let Some(company) = some_company(&mut rng) else {
            break;
        };
        s.invoices.push(Invoice {
            id: format!("bill-{i:06}"),
            company,
        });
    }
    for i in 0..leads {
        s.leads.push(Lead {
            id: format!("lead-{i:06}"),
            name: format!("Lead {i}"),
            company: (rng.u8(0..20) < 17)
                .then(|| some_company(&mut rng))
                .flatten(),
            owner: (rng.u8(0..10) < 8).then(|| agent(&mut rng)),
        });
    }
    // Agenda events: an agent's own, one in ten public, a third for a
    // group.
    for i in 0..events {
        s.agenda_events.push(AgendaEvent {
            id: format!("evt-{i:06}"),
            name: format!("Event {i}"),
            owner: (rng.u8(0..10) != 0).then(|| agent(&mut rng)),
            public: rng.u8(0..10) == 0,
            groups: if rng.u8(0..3) == 0 {
                some_groups(&mut rng, 2)
            } else {
                Vec::new()
            },
        });
    }
    // Downloads in categories, one category per 200 downloads (at least
    // four), one in five open to every holder of the flag.
    let categories = (downloads / 200).max(4);
    for i in 0..categories {
        s.download_categories.push(DownloadCategory {
            id: format!("cat-{i:04}"),
            name: format!("Category {i}"),
            groups: if rng.u8(0..5) == 0 {
                Vec::new()
            } else {
                some_groups(&mut rng, 3)
            },
        });
    }
    for i in 0..downloads {
        s.downloads.push(Download {
            id: format!("dl-{i:06}"),
            name: format!("File {i}"),
            category: format!("cat-{:04}", skewed(&mut rng, categories)),
        });
    }
    data.sections = s;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sections_are_added_at_the_asked_scale_and_build() {
        let spec = Spec::scaled(2_000);
        let plain = generate(&spec);
        let mut data = plain.clone();
        add_sections(&mut data, 5_000, spec.seed);
        // Everything `generate` made is untouched; only the bench profile
        // and user are added beside it.
        assert_eq!(data.tickets, plain.tickets);
        assert_eq!(data.users[..plain.users.len()], plain.users[..]);
        assert_eq!(data.profiles[..plain.profiles.len()], plain.profiles[..]);
        let s = &data.sections;
        let made = s.projects.len()
            + s.tasks.len()
            + s.wiki_pages.len()
            + s.inventory_items.len()
            + s.invoices.len()
            + s.leads.len()
            + s.agenda_events.len()
            + s.downloads.len();
        assert_eq!(made, 5_000);
        assert!(s.tasks.iter().any(|t| t.parent.is_some()));
        // Valid data: parents in the same project, no cycles, every
        // reference known (the build refuses anything else).
        let snap = crate::snapshot::Snapshot::build(&data).unwrap();
        let text = serde_yaml_ng::to_string(&crate::dataset::raw::from_dataset(&data)).unwrap();
        let loaded = crate::dataset::load_str("generated.yaml", &text).unwrap();
        assert_eq!(loaded.dataset.sections, data.sections);
        assert_eq!(snap.sections.tasks.len(), s.tasks.len());
        let mut again = plain.clone();
        add_sections(&mut again, 5_000, spec.seed);
        assert_eq!(again, data, "the same seed gives the same sections");
        let mut none = plain.clone();
        add_sections(&mut none, 0, spec.seed);
        assert_eq!(none, plain);
    }

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
