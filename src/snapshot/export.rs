//! Snapshot → dataset, the inverse of [`Snapshot::build`]: what a snapshot
//! image carries, so a snapshot can be shipped as data and built again.
//!
//! Only live rows are read (a removed row's slot keeps a vacant row that
//! must not come back), and a handle is written as the id of the live row
//! it names, or as absent: a handle to a removed row (a user deleted while
//! a company still names it as owner, say) matches nothing in the
//! snapshot, and absent is what matches nothing in a dataset. Resolving
//! by id instead would be wrong where the id came back as a new row. Every
//! vector is in id order, so the same data always gives the same dataset
//! (and the same image bytes).

use super::sections::SectionTables;
use super::{ALL, Idx, Keyed, Snapshot, Table};
use crate::model::{
    AgendaEvent, Company, Dataset, Domain, Download, DownloadCategory, Grant, GrantScope, Group,
    InventoryItem, Invoice, Lead, MemberRole, Organisation, Partnership, Profile, Project,
    SectionMember, Sections, Task, Ticket, User, WikiPage,
};

/// The id of each live row of one table, by handle: one pass over the
/// table, then each reference resolves by one array read (no hashing per
/// reference, which matters at a million tickets with four each).
struct LiveIds<'a> {
    ids: Vec<Option<&'a str>>,
}

impl<'a> LiveIds<'a> {
    fn of<R: Keyed>(table: &'a Table<R>) -> Self {
        let mut ids = vec![None; table.capacity()];
        for (idx, row) in table.live() {
            if let Some(slot) = ids.get_mut(idx as usize) {
                *slot = Some(row.key());
            }
        }
        Self { ids }
    }

    /// The live id of a handle; `None` for the sentinels (`NONE`,
    /// `UNKNOWN`, `ALL`) and removed rows, which are all outside `ids`
    /// or empty there.
    fn get(&self, idx: Idx) -> Option<&'a str> {
        self.ids.get(idx as usize).copied().flatten()
    }

    fn owned(&self, idx: Idx) -> Option<String> {
        self.get(idx).map(str::to_owned)
    }

    /// The live ids of a list of handles, in id order.
    fn list(&self, handles: &[Idx]) -> Vec<String> {
        let mut out: Vec<String> = handles.iter().filter_map(|&h| self.owned(h)).collect();
        out.sort_unstable();
        out
    }
}

/// Sorts rows by their id; rows are unique by id, so the order is total.
fn by_id<T>(mut rows: Vec<T>, id: impl Fn(&T) -> &str) -> Vec<T> {
    rows.sort_unstable_by(|a, b| id(a).cmp(id(b)));
    rows
}

/// The handles of every table a dataset refers to.
struct Refs<'a> {
    orgs: LiveIds<'a>,
    companies: LiveIds<'a>,
    groups: LiveIds<'a>,
    profiles: LiveIds<'a>,
    users: LiveIds<'a>,
}

impl Snapshot {
    /// The dataset this snapshot holds: `Snapshot::build` of it answers
    /// every question as this snapshot does (the revision, which is not
    /// data, is the caller's to carry).
    pub fn to_dataset(&self) -> Dataset {
        let refs = Refs {
            orgs: LiveIds::of(&self.orgs),
            companies: LiveIds::of(&self.companies),
            groups: LiveIds::of(&self.groups),
            profiles: LiveIds::of(&self.profiles),
            users: LiveIds::of(&self.users),
        };
        Dataset {
            now: self.fixed_now,
            organisations: self.export_orgs(&refs),
            partnerships: self.export_partnerships(&refs),
            companies: self.export_companies(&refs),
            groups: self.export_groups(&refs),
            profiles: self.export_profiles(),
            users: self.export_users(&refs),
            tickets: self.export_tickets(&refs),
            sections: export_sections(&self.sections, &refs),
        }
    }

    fn export_orgs(&self, refs: &Refs<'_>) -> Vec<Organisation> {
        let rows = self
            .orgs
            .live()
            .map(|(_, o)| {
                let mut domains: Vec<Domain> = o
                    .domains
                    .iter()
                    .map(|d| Domain {
                        domain: d.name.to_string(),
                        added_at: d.added_at,
                    })
                    .collect();
                domains.sort_unstable_by(|a, b| a.domain.cmp(&b.domain));
                Organisation {
                    id: o.id.to_string(),
                    name: o.name.to_string(),
                    ticket_access: o.access,
                    domains,
                    access_managers: refs.users.list(&o.access_managers),
                }
            })
            .collect();
        by_id(rows, |o| &o.id)
    }

    /// Each partnership once: from its client's side (`OrgRow::partners`);
    /// the partner's `clients` holds the same pairs mirrored.
    fn export_partnerships(&self, refs: &Refs<'_>) -> Vec<Partnership> {
        let mut out: Vec<Partnership> = self
            .orgs
            .live()
            .flat_map(|(_, client)| {
                client.partners.iter().filter_map(|&(partner, since)| {
                    Some(Partnership {
                        partner: refs.orgs.owned(partner)?,
                        client: client.id.to_string(),
                        since,
                    })
                })
            })
            .collect();
        out.sort_unstable_by(|a, b| (&a.partner, &a.client).cmp(&(&b.partner, &b.client)));
        out
    }

    fn export_companies(&self, refs: &Refs<'_>) -> Vec<Company> {
        let rows = self
            .companies
            .live()
            .map(|(_, c)| Company {
                id: c.id.to_string(),
                name: c.name.to_string(),
                parent: refs.companies.owned(c.parent),
                owner: refs.users.owned(c.owner),
            })
            .collect();
        by_id(rows, |c| &c.id)
    }

    fn export_groups(&self, refs: &Refs<'_>) -> Vec<Group> {
        let rows = self
            .groups
            .live()
            .map(|(_, g)| Group {
                id: g.id.to_string(),
                name: g.name.to_string(),
                parent: refs.groups.owned(g.parent),
                propagate: g.propagate,
                open_ticket_limit: g.open_ticket_limit,
                enforce_open_limit: g.enforce_open_limit,
                total_ticket_limit: g.total_ticket_limit,
            })
            .collect();
        by_id(rows, |g| &g.id)
    }

    fn export_profiles(&self) -> Vec<Profile> {
        let rows = self
            .profiles
            .live()
            .map(|(_, p)| Profile {
                id: p.id.to_string(),
                name: p.name.to_string(),
                flags: p.flags,
            })
            .collect();
        by_id(rows, |p| &p.id)
    }

    fn export_users(&self, refs: &Refs<'_>) -> Vec<User> {
        let rows = self
            .users
            .live()
            .map(|(_, u)| {
                let mut grants: Vec<Grant> = u
                    .grants
                    .iter()
                    .filter_map(|g| {
                        Some(Grant {
                            profile: refs.profiles.owned(g.profile)?,
                            group: if g.group == ALL {
                                GrantScope::All
                            } else {
                                GrantScope::Group(refs.groups.owned(g.group)?)
                            },
                        })
                    })
                    .collect();
                grants.sort_unstable_by(|a, b| {
                    (&a.profile, a.group.as_str()).cmp(&(&b.profile, b.group.as_str()))
                });
                User {
                    id: u.id.to_string(),
                    email: u.email.as_deref().map(str::to_owned),
                    name: u.name.as_deref().map(str::to_owned),
                    created_at: u.created_at,
                    kind: u.kind,
                    suspended: u.suspended,
                    ticket_access: u.access,
                    // The explicit memberships only: domain and
                    // partnership ones are derived again by the build.
                    organisations: refs.orgs.list(&u.explicit_orgs),
                    default_organisation: refs.orgs.owned(u.default_org),
                    company: refs.companies.owned(u.company),
                    company_scoped: u.company_scoped,
                    grants,
                }
            })
            .collect();
        by_id(rows, |u| &u.id)
    }

    fn export_tickets(&self, refs: &Refs<'_>) -> Vec<Ticket> {
        let rows = self
            .tickets
            .live()
            .map(|(_, t)| Ticket {
                id: t.id.to_string(),
                created_at: t.created_at,
                // A requester who is nobody (`UNKNOWN`, or a user since
                // removed) is the empty id, which the build reads back as
                // `UNKNOWN`.
                requester: refs.users.owned(t.requester).unwrap_or_default(),
                organisation: refs.orgs.owned(t.organisation),
                group: refs.groups.owned(t.group),
                assignee: refs.users.owned(t.assignee),
                ccs: refs.users.list(t.ccs()),
                participants: refs.users.list(t.participants()),
                status: t.status,
            })
            .collect();
        by_id(rows, |t| &t.id)
    }
}

/// The members of a project or task: every member, a manager where the
/// managers list holds them too (the build's `managers` ⊆ `members`).
fn section_members(users: &LiveIds<'_>, members: &[Idx], managers: &[Idx]) -> Vec<SectionMember> {
    let mut out: Vec<SectionMember> = members
        .iter()
        .filter_map(|&m| {
            Some(SectionMember {
                user: users.owned(m)?,
                role: if managers.contains(&m) {
                    MemberRole::Manager
                } else {
                    MemberRole::Member
                },
            })
        })
        .collect();
    out.sort_unstable_by(|a, b| a.user.cmp(&b.user));
    out
}

/// The §8 resources. A task whose project, or a download whose category,
/// is gone is left out: it is a cascade's row whose own delete has not
/// come yet, it has no dataset form (the reference is required), and
/// leaving it in would make the dataset one the build refuses.
fn export_sections(s: &SectionTables, refs: &Refs<'_>) -> Sections {
    let users = &refs.users;
    let projects = LiveIds::of(&s.projects);
    // The tasks written: a parent left out leaves its child a root.
    let mut tasks = LiveIds::of(&s.tasks);
    for (h, t) in s.tasks.live() {
        if projects.get(t.project).is_none()
            && let Some(slot) = tasks.ids.get_mut(h as usize)
        {
            *slot = None;
        }
    }
    let categories = LiveIds::of(&s.categories);
    let project_rows = s
        .projects
        .live()
        .map(|(_, p)| Project {
            id: p.id.to_string(),
            name: p.name.to_string(),
            owner: users.owned(p.owner),
            members: section_members(users, &p.members, &p.managers),
        })
        .collect();
    let task_rows = s
        .tasks
        .live()
        .filter_map(|(_, t)| {
            Some(Task {
                id: t.id.to_string(),
                name: t.name.to_string(),
                project: projects.owned(t.project)?,
                // A removed parent leaves a root, as the chains read it.
                parent: tasks.owned(t.parent),
                members: section_members(users, &t.members, &t.managers),
            })
        })
        .collect();
    let wiki_rows = s
        .wiki
        .live()
        .map(|(_, w)| WikiPage {
            id: w.id.to_string(),
            name: w.name.to_string(),
            read_groups: refs.groups.list(&w.read_groups),
            write_groups: refs.groups.list(&w.write_groups),
        })
        .collect();
    let item_rows = s
        .items
        .live()
        .map(|(_, i)| InventoryItem {
            id: i.id.to_string(),
            name: i.name.to_string(),
            owner: users.owned(i.owner),
            public: i.public,
            companies: refs.companies.list(&i.companies),
            users: users.list(&i.users),
        })
        .collect();
    let invoice_rows = s
        .invoices
        .live()
        .filter_map(|(_, v)| {
            Some(Invoice {
                id: v.id.to_string(),
                company: refs.companies.owned(v.company)?,
            })
        })
        .collect();
    let lead_rows = s
        .leads
        .live()
        .map(|(_, l)| Lead {
            id: l.id.to_string(),
            name: l.name.to_string(),
            company: refs.companies.owned(l.company),
            owner: users.owned(l.owner),
        })
        .collect();
    let event_rows = s
        .events
        .live()
        .map(|(_, e)| AgendaEvent {
            id: e.id.to_string(),
            name: e.name.to_string(),
            owner: users.owned(e.owner),
            public: e.public,
            groups: refs.groups.list(&e.groups),
        })
        .collect();
    let category_rows = s
        .categories
        .live()
        .map(|(_, c)| DownloadCategory {
            id: c.id.to_string(),
            name: c.name.to_string(),
            groups: refs.groups.list(&c.groups),
        })
        .collect();
    let download_rows = s
        .downloads
        .live()
        .filter_map(|(_, d)| {
            Some(Download {
                id: d.id.to_string(),
                name: d.name.to_string(),
                category: categories.owned(d.category)?,
            })
        })
        .collect();
    Sections {
        projects: by_id(project_rows, |p| &p.id),
        tasks: by_id(task_rows, |t| &t.id),
        wiki_pages: by_id(wiki_rows, |w| &w.id),
        inventory_items: by_id(item_rows, |i| &i.id),
        invoices: by_id(invoice_rows, |v| &v.id),
        leads: by_id(lead_rows, |l| &l.id),
        agenda_events: by_id(event_rows, |e| &e.id),
        download_categories: by_id(category_rows, |c| &c.id),
        downloads: by_id(download_rows, |d| &d.id),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::path::{Path, PathBuf};

    use super::*;
    use crate::generate::{Spec, add_sections, generate};
    use crate::model::{Status, UserAccess, UserKind};
    use crate::snapshot::{Change, SectionEntity, TicketFields, UserFields};
    use crate::time::Timestamp;

    /// `data` with every vector in id order and every list the build
    /// reads as a set sorted and deduplicated: two datasets equal after
    /// this build the same snapshot. Grants stay a multiset (the build
    /// keeps a grant given twice) and a member listed twice is one member,
    /// a manager if either entry says so (as the build's lists make it).
    fn normalise(mut data: Dataset) -> Dataset {
        fn set(list: &mut Vec<String>) {
            list.sort_unstable();
            list.dedup();
        }
        fn members(list: &mut Vec<SectionMember>) {
            list.sort_by(|a, b| {
                (&a.user, a.role != MemberRole::Manager)
                    .cmp(&(&b.user, b.role != MemberRole::Manager))
            });
            list.dedup_by(|later, first| later.user == first.user);
        }
        data.organisations.sort_by(|a, b| a.id.cmp(&b.id));
        for o in &mut data.organisations {
            o.domains.sort_by(|a, b| a.domain.cmp(&b.domain));
            set(&mut o.access_managers);
        }
        data.partnerships
            .sort_by(|a, b| (&a.partner, &a.client).cmp(&(&b.partner, &b.client)));
        data.companies.sort_by(|a, b| a.id.cmp(&b.id));
        data.groups.sort_by(|a, b| a.id.cmp(&b.id));
        data.profiles.sort_by(|a, b| a.id.cmp(&b.id));
        data.users.sort_by(|a, b| a.id.cmp(&b.id));
        for u in &mut data.users {
            set(&mut u.organisations);
            u.grants.sort_by(|a, b| {
                (&a.profile, a.group.as_str()).cmp(&(&b.profile, b.group.as_str()))
            });
        }
        data.tickets.sort_by(|a, b| a.id.cmp(&b.id));
        for t in &mut data.tickets {
            set(&mut t.ccs);
            set(&mut t.participants);
        }
        let s = &mut data.sections;
        s.projects.sort_by(|a, b| a.id.cmp(&b.id));
        s.projects.iter_mut().for_each(|p| members(&mut p.members));
        s.tasks.sort_by(|a, b| a.id.cmp(&b.id));
        s.tasks.iter_mut().for_each(|t| members(&mut t.members));
        s.wiki_pages.sort_by(|a, b| a.id.cmp(&b.id));
        for w in &mut s.wiki_pages {
            set(&mut w.read_groups);
            set(&mut w.write_groups);
        }
        s.inventory_items.sort_by(|a, b| a.id.cmp(&b.id));
        for i in &mut s.inventory_items {
            set(&mut i.companies);
            set(&mut i.users);
        }
        s.invoices.sort_by(|a, b| a.id.cmp(&b.id));
        s.leads.sort_by(|a, b| a.id.cmp(&b.id));
        s.agenda_events.sort_by(|a, b| a.id.cmp(&b.id));
        s.agenda_events.iter_mut().for_each(|e| set(&mut e.groups));
        s.download_categories.sort_by(|a, b| a.id.cmp(&b.id));
        s.download_categories
            .iter_mut()
            .for_each(|c| set(&mut c.groups));
        s.downloads.sort_by(|a, b| a.id.cmp(&b.id));
        data
    }

    /// The export is the dataset (up to order), is already in normal
    /// form, and is a fixed point: exporting its own build gives it again.
    fn assert_round_trip(what: &str, data: &Dataset) -> Snapshot {
        let snap = Snapshot::build(data).unwrap();
        let exported = snap.to_dataset();
        assert!(
            normalise(exported.clone()) == normalise(data.clone()),
            "{what}: the export differs from the dataset"
        );
        assert!(
            normalise(exported.clone()) == exported,
            "{what}: the export is not in id order"
        );
        let rebuilt = Snapshot::build(&exported).unwrap();
        assert!(
            rebuilt.to_dataset() == exported,
            "{what}: exporting the rebuilt snapshot differs"
        );
        rebuilt
    }

    fn small_spec(seed: u64) -> Spec {
        Spec {
            seed,
            ..Spec::scaled(3_000)
        }
    }

    #[test]
    fn generated_datasets_export_to_themselves() {
        for seed in [7, 11] {
            let spec = small_spec(seed);
            let mut data = generate(&spec);
            assert_round_trip(&format!("generated seed {seed}"), &data);
            add_sections(&mut data, 2_000, seed);
            assert!(!data.sections.tasks.is_empty());
            assert_round_trip(&format!("generated seed {seed} with sections"), &data);
        }
    }

    fn yaml_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        files
    }

    /// The examples and the shared scenarios (`../shared` beside the
    /// repository, as the integration tests read it): each file's export
    /// equals its data, and its own assertions pass on the rebuilt
    /// snapshot, so the rebuild answers as the original does.
    #[test]
    fn every_example_and_scenario_exports_to_itself() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let shared = root.join("../shared/scenarios");
        let mut files = yaml_files(&root.join("examples"));
        files.extend(yaml_files(&shared));
        files.extend(yaml_files(&shared.join("sections")));
        assert!(
            files.len() > 2,
            "no scenario files beside {}",
            root.display()
        );
        for file in files {
            let loaded = crate::dataset::load_file(&file).unwrap_or_else(|e| panic!("{e}"));
            let rebuilt = assert_round_trip(&file.display().to_string(), &loaded.dataset);
            let now = rebuilt.fixed_now().unwrap_or_else(Timestamp::now);
            let outcome = crate::scenario::run(&rebuilt, &loaded.assertions, now);
            assert!(
                outcome.failures.is_empty(),
                "{}: {:?}",
                file.display(),
                outcome.failures
            );
        }
    }

    fn user_fields(u: &User) -> UserFields {
        UserFields {
            id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            created_at: u.created_at,
            kind: u.kind,
            suspended: u.suspended,
            ticket_access: u.ticket_access,
            default_organisation: u.default_organisation.clone(),
            company: u.company.clone(),
            company_scoped: u.company_scoped,
        }
    }

    /// Row changes show in the export exactly as the same edits made to
    /// the dataset by hand.
    #[test]
    fn applied_changes_show_in_the_export() {
        let data = generate(&small_spec(3));
        let mut snap = Snapshot::build(&data).unwrap();
        let mut expected = data.clone();

        let gone = data.tickets[5].id.clone();
        let newcomer = User {
            id: "u-newcomer".into(),
            email: Some("newcomer@org1.example".into()),
            name: Some("Newcomer".into()),
            created_at: Timestamp::from_unix_seconds(1_750_000_000),
            kind: UserKind::Agent,
            suspended: false,
            ticket_access: UserAccess::Organisation,
            organisations: vec![data.organisations[2].id.clone()],
            default_organisation: Some(data.organisations[2].id.clone()),
            company: Some(data.companies[1].id.clone()),
            company_scoped: true,
            grants: vec![
                Grant {
                    profile: data.profiles[0].id.clone(),
                    group: GrantScope::All,
                },
                Grant {
                    profile: data.profiles[1].id.clone(),
                    group: GrantScope::Group(data.groups[4].id.clone()),
                },
            ],
        };
        let mut renamed = data.users[7].clone();
        renamed.name = Some("Renamed".into());
        renamed.suspended = !renamed.suspended;
        let fresh_ticket = Ticket {
            id: "T-fresh".into(),
            created_at: Timestamp::from_unix_seconds(1_760_000_000),
            requester: newcomer.id.clone(),
            organisation: None,
            group: Some(data.groups[3].id.clone()),
            assignee: Some(newcomer.id.clone()),
            ccs: vec![data.users[1].id.clone()],
            participants: Vec::new(),
            status: Status::Pending,
        };

        let mut changes = vec![
            Change::DeleteTicket { id: gone.clone() },
            Change::UpsertUser(user_fields(&newcomer)),
            Change::Membership {
                user: newcomer.id.clone(),
                organisation: data.organisations[2].id.clone(),
                present: true,
            },
            Change::UpsertUser(user_fields(&renamed)),
            Change::UpsertTicket(TicketFields::from(&fresh_ticket)),
            Change::TicketPerson {
                ticket: fresh_ticket.id.clone(),
                user: data.users[1].id.clone(),
                role: crate::snapshot::Role::Cc,
                present: true,
            },
        ];
        for g in &newcomer.grants {
            changes.push(Change::Grant {
                user: newcomer.id.clone(),
                profile: g.profile.clone(),
                group: match &g.group {
                    GrantScope::All => None,
                    GrantScope::Group(id) => Some(id.clone()),
                },
                present: true,
            });
        }
        snap.apply_all(&changes, 2).unwrap();

        expected.tickets.retain(|t| t.id != gone);
        expected.tickets.push(fresh_ticket);
        expected.users.push(newcomer);
        if let Some(u) = expected.users.iter_mut().find(|u| u.id == renamed.id) {
            *u = renamed;
        }
        let exported = snap.to_dataset();
        assert!(exported.tickets.iter().all(|t| t.id != gone));
        assert!(normalise(exported.clone()) == normalise(expected));
        assert!(Snapshot::build(&exported).unwrap().to_dataset() == exported);
    }

    /// Deletes leave no reference to the removed row: a removed user's
    /// tickets have nobody as requester, and a removed project's tasks
    /// (whose deletes have not come yet) and a removed task's place as a
    /// parent are left out, so the export always builds.
    #[test]
    fn removed_rows_leave_no_dangling_reference() {
        let mut data = generate(&small_spec(5));
        add_sections(&mut data, 2_000, 5);
        let mut snap = Snapshot::build(&data).unwrap();
        let requester = data.tickets[20].requester.clone();
        let project = data.sections.tasks[0].project.clone();
        // A subtask in another project, whose parent is removed.
        let (parent, child) = data
            .sections
            .tasks
            .iter()
            .find(|t| t.project != project && t.parent.is_some())
            .map(|t| (t.parent.clone().unwrap(), t.id.clone()))
            .unwrap();
        let changes = [
            Change::DeleteUser {
                id: requester.clone(),
            },
            Change::DeleteSection {
                entity: SectionEntity::Project,
                id: project.clone(),
            },
            Change::DeleteSection {
                entity: SectionEntity::Task,
                id: parent.clone(),
            },
        ];
        snap.apply_all(&changes, 3).unwrap();
        let exported = snap.to_dataset();
        assert!(exported.users.iter().all(|u| u.id != requester));
        let orphaned: Vec<&Ticket> = data
            .tickets
            .iter()
            .filter(|t| t.requester == requester)
            .collect();
        assert!(!orphaned.is_empty());
        for t in orphaned {
            let now = exported.tickets.iter().find(|e| e.id == t.id).unwrap();
            assert_eq!(now.requester, "");
            assert!(now.assignee.as_deref() != Some(requester.as_str()));
        }
        let s = &exported.sections;
        assert!(s.projects.iter().all(|p| p.id != project));
        assert!(s.tasks.iter().all(|t| t.project != project));
        assert!(s.tasks.iter().all(|t| t.id != parent));
        assert!(s.tasks.iter().all(|t| t.parent.as_deref() != Some(&parent)));
        let orphan = s.tasks.iter().find(|t| t.id == child).unwrap();
        assert_eq!(orphan.parent, None);
        let rebuilt = Snapshot::build(&exported).unwrap();
        assert!(rebuilt.to_dataset() == exported);
    }
}
