//! Validation of the service-desk section lists (access model §8): every
//! reference resolves, roles are known, no `*` in group lists, no user twice
//! in a member list, task parents in the same project and without cycles.

use std::collections::{HashMap, HashSet};

use super::super::raw::{RawDataset, RawId, RawMember};
use super::{Checker, cycles, entity};
use crate::model::{
    AgendaEvent, Download, DownloadCategory, InventoryItem, Invoice, Lead, MemberRole, Project,
    SectionMember, Sections, Task, WikiPage,
};

/// The ids the section lists may refer to, already defined.
pub(super) struct Known<'a> {
    pub users: &'a HashSet<&'a str>,
    pub companies: &'a HashSet<&'a str>,
    pub groups: &'a HashSet<&'a str>,
}

impl Checker {
    /// Defines the ids of one section list (`list` is its top-level name).
    fn define_list<'a>(
        &mut self,
        list: &str,
        kind: &str,
        ids: impl Iterator<Item = &'a RawId>,
    ) -> HashSet<&'a str> {
        let mut seen = HashSet::new();
        for (i, id) in ids.enumerate() {
            self.id_shape(&format!("{list}[{i}]"), "id", id, false);
            if !seen.insert(id.0.as_str()) {
                self.report(&format!("{kind} `{}`", id.0), "id", "duplicate id");
            }
        }
        seen
    }

    fn members(
        &mut self,
        e: &str,
        list: &[RawMember],
        users: &HashSet<&str>,
    ) -> Vec<SectionMember> {
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(list.len());
        for m in list {
            let user = self.reference(e, "members.user", &m.user, users, "user");
            if !seen.insert(user.clone()) {
                self.report(e, "members.user", format!("`{user}` is listed twice"));
            }
            let role = self.choice(
                e,
                "members.role",
                m.role.as_deref(),
                MemberRole::parse,
                MemberRole::NAMES,
            );
            out.push(SectionMember { user, role });
        }
        out
    }

    fn required_ref(
        &mut self,
        e: &str,
        field: &str,
        id: Option<&RawId>,
        known: &HashSet<&str>,
        what: &str,
    ) -> String {
        match id {
            Some(id) => self.reference(e, field, id, known, what),
            None => {
                self.report(e, field, "required");
                String::new()
            }
        }
    }
}

pub(super) fn validate(check: &mut Checker, raw: &RawDataset, known: &Known<'_>) -> Sections {
    let project_ids = check.define_list("projects", "project", raw.projects.iter().map(|p| &p.id));
    let task_ids = check.define_list("tasks", "task", raw.tasks.iter().map(|t| &t.id));
    check.define_list(
        "wiki_pages",
        "wiki_page",
        raw.wiki_pages.iter().map(|w| &w.id),
    );
    check.define_list(
        "inventory_items",
        "inventory_item",
        raw.inventory_items.iter().map(|i| &i.id),
    );
    check.define_list("invoices", "invoice", raw.invoices.iter().map(|v| &v.id));
    check.define_list("leads", "lead", raw.leads.iter().map(|l| &l.id));
    check.define_list(
        "agenda_events",
        "agenda_event",
        raw.agenda_events.iter().map(|e| &e.id),
    );
    let category_ids = check.define_list(
        "download_categories",
        "download_category",
        raw.download_categories.iter().map(|c| &c.id),
    );
    check.define_list("downloads", "download", raw.downloads.iter().map(|d| &d.id));
    let (users, companies, groups) = (known.users, known.companies, known.groups);
    let mut out = Sections::default();

    for p in &raw.projects {
        let e = entity("project", &p.id);
        out.projects.push(Project {
            id: p.id.0.clone(),
            name: check.name(&e, p.name.as_deref()),
            owner: p
                .owner
                .as_ref()
                .map(|o| check.reference(&e, "owner", o, users, "user")),
            members: check.members(&e, &p.members, users),
        });
    }

    // A task's project, for the same-project rule on parents.
    let project_of: HashMap<&str, Option<&str>> = raw
        .tasks
        .iter()
        .map(|t| (t.id.0.as_str(), t.project.as_ref().map(|p| p.0.as_str())))
        .collect();
    let mut parents = HashMap::new();
    for t in &raw.tasks {
        let e = entity("task", &t.id);
        let project =
            check.required_ref(&e, "project", t.project.as_ref(), &project_ids, "project");
        let parent = t.parent.as_ref().map(|p| {
            let parent = check.reference(&e, "parent", p, &task_ids, "task");
            if let Some(Some(theirs)) = project_of.get(parent.as_str())
                && *theirs != project
            {
                check.report(
                    &e,
                    "parent",
                    format!("parent task `{parent}` is in project `{theirs}`, not in `{project}`"),
                );
            }
            parent
        });
        if let Some(p) = &t.parent {
            parents.insert(t.id.0.as_str(), p.0.as_str());
        }
        out.tasks.push(Task {
            id: t.id.0.clone(),
            name: check.name(&e, t.name.as_deref()),
            project,
            parent,
            members: check.members(&e, &t.members, users),
        });
    }
    cycles(check, "task", &parents);

    for w in &raw.wiki_pages {
        let e = entity("wiki_page", &w.id);
        out.wiki_pages.push(WikiPage {
            id: w.id.0.clone(),
            name: check.name(&e, w.name.as_deref()),
            read_groups: check.references(&e, "read_groups", &w.read_groups, groups, "group"),
            write_groups: check.references(&e, "write_groups", &w.write_groups, groups, "group"),
        });
    }

    for i in &raw.inventory_items {
        let e = entity("inventory_item", &i.id);
        out.inventory_items.push(InventoryItem {
            id: i.id.0.clone(),
            name: check.name(&e, i.name.as_deref()),
            owner: i
                .owner
                .as_ref()
                .map(|o| check.reference(&e, "owner", o, users, "user")),
            public: i.public,
            companies: check.references(&e, "companies", &i.companies, companies, "company"),
            users: check.references(&e, "users", &i.users, users, "user"),
        });
    }

    for v in &raw.invoices {
        let e = entity("invoice", &v.id);
        out.invoices.push(Invoice {
            id: v.id.0.clone(),
            company: check.required_ref(&e, "company", v.company.as_ref(), companies, "company"),
        });
    }

    for l in &raw.leads {
        let e = entity("lead", &l.id);
        out.leads.push(Lead {
            id: l.id.0.clone(),
            name: check.name(&e, l.name.as_deref()),
            company: l
                .company
                .as_ref()
                .map(|c| check.reference(&e, "company", c, companies, "company")),
            owner: l
                .owner
                .as_ref()
                .map(|o| check.reference(&e, "owner", o, users, "user")),
        });
    }

    for ev in &raw.agenda_events {
        let e = entity("agenda_event", &ev.id);
        out.agenda_events.push(AgendaEvent {
            id: ev.id.0.clone(),
            name: check.name(&e, ev.name.as_deref()),
            owner: ev
                .owner
                .as_ref()
                .map(|o| check.reference(&e, "owner", o, users, "user")),
            public: ev.public,
            groups: check.references(&e, "groups", &ev.groups, groups, "group"),
        });
    }

    for c in &raw.download_categories {
        let e = entity("download_category", &c.id);
        out.download_categories.push(DownloadCategory {
            id: c.id.0.clone(),
            name: check.name(&e, c.name.as_deref()),
            groups: check.references(&e, "groups", &c.groups, groups, "group"),
        });
    }

    for d in &raw.downloads {
        let e = entity("download", &d.id);
        out.downloads.push(Download {
            id: d.id.0.clone(),
            name: check.name(&e, d.name.as_deref()),
            category: check.required_ref(
                &e,
                "category",
                d.category.as_ref(),
                &category_ids,
                "download category",
            ),
        });
    }
    out
}
