//! One-row changes to the service-desk sections (access model §8) applied
//! in place: an entity's row or one entry of its lists. Each takes the
//! entity's postings out, changes the row, and puts them back, so it costs
//! the entity's own lists, never a pass over a section.
//!
//! Deletes are order-free within a batch: a database cascade may log a
//! project before or after its tasks, so what still refers to a deleted
//! row keeps its (vacant) handle until its own delete arrives, and taking
//! an entry off a list finds it by id when its user is already gone.

use std::cmp::Ordering;

use super::sections::{
    CategoryRow, DownloadRow, EventRow, IdxList, InvoiceRow, ItemRow, LeadRow, ProjectRow,
    SectionTables, TaskRow, WikiRow, set_chains,
};
use super::{ApplyError, Idx, Keyed, NONE, Snapshot, SortedSeq, Table};
use super::{SectionEntity, SectionLink, SectionRow};
use crate::model::{MemberRole, ResourceKind};

/// The index row of `id` in `table`, made empty when there is none yet.
fn index_row<'t, R: Keyed>(table: &'t mut Table<R>, id: &str) -> Option<&'t mut R> {
    let h = match table.lookup(id) {
        Some(h) => h,
        None => table.push(R::vacant(id.into())),
    };
    table.row_mut(h)
}

/// Byte order of the ids of `table`'s handles.
fn by_id<R: Keyed>(table: &Table<R>) -> impl Fn(&Idx, &Idx) -> Ordering + '_ {
    |a, b| table.id(*a).cmp(table.id(*b))
}

/// Adds `h` to a sorted handle list, or takes it off.
fn set_sorted(list: &mut IdxList, h: Idx, present: bool) {
    match (list.binary_search(&h), present) {
        (Err(at), true) => list.insert(at, h),
        (Ok(at), false) => {
            list.remove(at);
        }
        _ => {}
    }
}

/// Takes the entry with this id off a handle list, when it is there.
fn remove_by_id<R: Keyed>(list: &mut IdxList, table: &Table<R>, id: &str) {
    list.retain(|h| table.id(*h) != id);
}

fn unknown(entity: &str, id: &str, field: &str, target: &str, value: &str) -> ApplyError {
    ApplyError::Row {
        table: format!("{entity} `{id}`"),
        message: format!("field {field}: unknown {target} `{value}`"),
    }
}

fn entity_name(e: SectionEntity) -> &'static str {
    match e {
        SectionEntity::Project => "project",
        SectionEntity::Task => "task",
        SectionEntity::WikiPage => "wiki_page",
        SectionEntity::InventoryItem => "inventory_item",
        SectionEntity::Invoice => "invoice",
        SectionEntity::Lead => "lead",
        SectionEntity::AgendaEvent => "agenda_event",
        SectionEntity::DownloadCategory => "download_category",
        SectionEntity::Download => "download",
    }
}

impl SectionRow {
    fn entity(&self) -> SectionEntity {
        match self {
            SectionRow::Project { .. } => SectionEntity::Project,
            SectionRow::Task { .. } => SectionEntity::Task,
            SectionRow::WikiPage { .. } => SectionEntity::WikiPage,
            SectionRow::InventoryItem { .. } => SectionEntity::InventoryItem,
            SectionRow::Invoice { .. } => SectionEntity::Invoice,
            SectionRow::Lead { .. } => SectionEntity::Lead,
            SectionRow::AgendaEvent { .. } => SectionEntity::AgendaEvent,
            SectionRow::DownloadCategory { .. } => SectionEntity::DownloadCategory,
            SectionRow::Download { .. } => SectionEntity::Download,
        }
    }

    fn id(&self) -> &str {
        match self {
            SectionRow::Project { id, .. }
            | SectionRow::Task { id, .. }
            | SectionRow::WikiPage { id, .. }
            | SectionRow::InventoryItem { id, .. }
            | SectionRow::Invoice { id, .. }
            | SectionRow::Lead { id, .. }
            | SectionRow::AgendaEvent { id, .. }
            | SectionRow::DownloadCategory { id, .. }
            | SectionRow::Download { id, .. } => id,
        }
    }
}

impl SectionTables {
    /// The handle of a section entity, if the data holds it.
    fn handle(&self, e: SectionEntity, id: &str) -> Option<Idx> {
        match e {
            SectionEntity::Project => self.projects.lookup(id),
            SectionEntity::Task => self.tasks.lookup(id),
            SectionEntity::WikiPage => self.wiki.lookup(id),
            SectionEntity::InventoryItem => self.items.lookup(id),
            SectionEntity::Invoice => self.invoices.lookup(id),
            SectionEntity::Lead => self.leads.lookup(id),
            SectionEntity::AgendaEvent => self.events.lookup(id),
            SectionEntity::DownloadCategory => self.categories.lookup(id),
            SectionEntity::Download => self.downloads.lookup(id),
        }
    }
}

/// The list kind an entity is listed as (download categories are not).
fn listed(e: SectionEntity) -> Option<ResourceKind> {
    Some(match e {
        SectionEntity::Project => ResourceKind::Project,
        SectionEntity::Task => ResourceKind::Task,
        SectionEntity::WikiPage => ResourceKind::WikiPage,
        SectionEntity::InventoryItem => ResourceKind::InventoryItem,
        SectionEntity::Invoice => ResourceKind::Invoice,
        SectionEntity::Lead => ResourceKind::Lead,
        SectionEntity::AgendaEvent => ResourceKind::AgendaEvent,
        SectionEntity::Download => ResourceKind::Download,
        SectionEntity::DownloadCategory => return None,
    })
}

impl Snapshot {
    /// Adds the postings of section entity `h` (`add`) or removes them:
    /// every index list that names it, from its row as it is now.
    fn section_postings(&mut self, e: SectionEntity, h: Idx, add: bool) {
        let Snapshot {
            users,
            companies,
            groups,
            sections,
            ..
        } = self;
        let SectionTables {
            projects,
            tasks,
            wiki,
            items,
            invoices,
            leads,
            events,
            categories,
            downloads,
            by_user,
            by_company,
            by_group,
            open_wiki,
            grouped_wiki,
            public_items,
            public_events,
            grouped_events,
            open_leads,
            open_categories,
            grouped_categories,
            every,
        } = sections;
        let user_id = |u: Idx| users.id(u).to_owned();
        let company_id = |c: Idx| companies.id(c).to_owned();
        let group_id = |g: Idx| groups.id(g).to_owned();
        if let Some(kind) = listed(e)
            && let Some(all) = every.get_mut(kind as usize)
        {
            let toggle = |all: &mut SortedSeq<Idx>, cmp: &dyn Fn(&Idx, &Idx) -> Ordering| {
                all.toggle(h, add, cmp);
            };
            match e {
                SectionEntity::Project => toggle(all, &by_id(projects)),
                SectionEntity::Task => toggle(all, &by_id(tasks)),
                SectionEntity::WikiPage => toggle(all, &by_id(wiki)),
                SectionEntity::InventoryItem => toggle(all, &by_id(items)),
                SectionEntity::Invoice => toggle(all, &by_id(invoices)),
                SectionEntity::Lead => toggle(all, &by_id(leads)),
                SectionEntity::AgendaEvent => toggle(all, &by_id(events)),
                SectionEntity::Download => toggle(all, &by_id(downloads)),
                SectionEntity::DownloadCategory => {}
            }
        }
        match e {
            SectionEntity::Project => {
                let row = &projects[h];
                let mut people: Vec<Idx> = row.members.to_vec();
                if row.owner != NONE {
                    people.push(row.owner);
                }
                people.sort_unstable();
                people.dedup();
                let cmp = by_id(projects);
                for u in people {
                    if let Some(r) = index_row(by_user, &user_id(u)) {
                        r.projects.toggle(h, add, &cmp);
                    }
                }
            }
            SectionEntity::Task => {
                let row: &TaskRow = &tasks[h];
                let (project, parent, members) = (row.project, row.parent, row.members.clone());
                {
                    let cmp = by_id(tasks);
                    for u in members {
                        if let Some(r) = index_row(by_user, &user_id(u)) {
                            r.tasks.toggle(h, add, &cmp);
                        }
                    }
                    if let Some(p) = projects.row_mut(project) {
                        p.tasks.toggle(h, add, &cmp);
                    }
                }
                if let Some(p) = tasks.row_mut(parent) {
                    p.children.retain(|c| *c != h);
                    if add {
                        p.children.push(h);
                    }
                }
                // Its place or its lists changed: so did its subtree's chains.
                if add {
                    set_chains(tasks, [h]);
                }
            }
            SectionEntity::WikiPage => {
                let row = &wiki[h];
                let cmp = by_id(wiki);
                if row.read_groups.is_empty() {
                    open_wiki.toggle(h, add, &cmp);
                } else {
                    grouped_wiki.toggle(h, add, &cmp);
                }
                for &g in &row.read_groups {
                    if let Some(r) = index_row(by_group, &group_id(g)) {
                        r.wiki_read.toggle(h, add, &cmp);
                    }
                }
            }
            SectionEntity::InventoryItem => {
                let row = &items[h];
                let cmp = by_id(items);
                if row.owner != NONE
                    && let Some(r) = index_row(by_user, &user_id(row.owner))
                {
                    r.items_owned.toggle(h, add, &cmp);
                }
                for &u in &row.users {
                    if let Some(r) = index_row(by_user, &user_id(u)) {
                        r.items_associated.toggle(h, add, &cmp);
                    }
                }
                for &c in &row.companies {
                    if let Some(r) = index_row(by_company, &company_id(c)) {
                        r.items.toggle(h, add, &cmp);
                    }
                }
                if row.public {
                    public_items.toggle(h, add, &cmp);
                }
            }
            SectionEntity::Invoice => {
                let row = &invoices[h];
                if row.company != NONE
                    && let Some(r) = index_row(by_company, &company_id(row.company))
                {
                    r.invoices.toggle(h, add, by_id(invoices));
                }
            }
            SectionEntity::Lead => {
                let row = &leads[h];
                let cmp = by_id(leads);
                if row.company == NONE {
                    open_leads.toggle(h, add, &cmp);
                } else if let Some(r) = index_row(by_company, &company_id(row.company)) {
                    r.leads.toggle(h, add, &cmp);
                }
            }
            SectionEntity::AgendaEvent => {
                let row = &events[h];
                let cmp = by_id(events);
                if row.owner != NONE
                    && let Some(r) = index_row(by_user, &user_id(row.owner))
                {
                    r.events_owned.toggle(h, add, &cmp);
                }
                if row.public {
                    public_events.toggle(h, add, &cmp);
                }
                if !row.groups.is_empty() {
                    grouped_events.toggle(h, add, &cmp);
                }
                for &g in &row.groups {
                    if let Some(r) = index_row(by_group, &group_id(g)) {
                        r.events.toggle(h, add, &cmp);
                    }
                }
            }
            SectionEntity::DownloadCategory => {
                let row = &categories[h];
                let cmp = by_id(categories);
                if row.groups.is_empty() {
                    open_categories.toggle(h, add, &cmp);
                } else {
                    grouped_categories.toggle(h, add, &cmp);
                }
                for &g in &row.groups {
                    if let Some(r) = index_row(by_group, &group_id(g)) {
                        r.categories.toggle(h, add, &cmp);
                    }
                }
            }
            SectionEntity::Download => {
                let category = downloads[h].category;
                if let Some(c) = categories.row_mut(category) {
                    c.downloads.toggle(h, add, by_id(downloads));
                }
            }
        }
    }

    fn section_user(
        &self,
        at: (&str, &str),
        field: &str,
        id: &Option<String>,
    ) -> Result<Idx, ApplyError> {
        match id {
            None => Ok(NONE),
            Some(u) => self
                .users
                .lookup(u)
                .ok_or_else(|| unknown(at.0, at.1, field, "user", u)),
        }
    }

    fn section_company(
        &self,
        at: (&str, &str),
        field: &str,
        id: Option<&str>,
    ) -> Result<Idx, ApplyError> {
        match id {
            None => Ok(NONE),
            Some(c) => self
                .companies
                .lookup(c)
                .ok_or_else(|| unknown(at.0, at.1, field, "company", c)),
        }
    }

    /// The project and parent handles of a task row, refusing a parent in
    /// another project and a parent whose ancestors include the task.
    fn task_place(
        &self,
        id: &str,
        project: &str,
        parent: Option<&str>,
    ) -> Result<(Idx, Idx), ApplyError> {
        let sec = &self.sections;
        let p = sec
            .projects
            .lookup(project)
            .ok_or_else(|| unknown("task", id, "project", "project", project))?;
        let own = sec.tasks.lookup(id);
        if let Some(h) = own {
            let row = &sec.tasks[h];
            if row.project != p && !row.children.is_empty() {
                return Err(ApplyError::Row {
                    table: format!("task `{id}`"),
                    message: format!(
                        "field project: its subtasks stay in project `{}`",
                        sec.projects.id(row.project)
                    ),
                });
            }
        }
        let Some(parent) = parent else {
            return Ok((p, NONE));
        };
        let ph = sec
            .tasks
            .lookup(parent)
            .ok_or_else(|| unknown("task", id, "parent", "task", parent))?;
        if sec.tasks[ph].project != p {
            return Err(ApplyError::Row {
                table: format!("task `{id}`"),
                message: format!(
                    "field parent: task `{parent}` is in project `{}`, not `{project}`",
                    sec.projects.id(sec.tasks[ph].project)
                ),
            });
        }
        let mut at = ph;
        for _ in 0..=sec.tasks.len() {
            if at == NONE {
                return Ok((p, ph));
            }
            if Some(at) == own || sec.tasks.id(at) == id {
                break;
            }
            at = sec.tasks[at].parent;
        }
        Err(ApplyError::Row {
            table: format!("task `{id}`"),
            message: format!("field parent: `{parent}` makes a parent cycle"),
        })
    }

    /// Inserts or updates a section entity (its lists are kept).
    pub(super) fn upsert_section(&mut self, row: &SectionRow) -> Result<(), ApplyError> {
        let e = row.entity();
        let at = (entity_name(e), row.id());
        // Resolve every reference before anything changes.
        let (a, b) = match row {
            SectionRow::Project { owner, .. }
            | SectionRow::InventoryItem { owner, .. }
            | SectionRow::AgendaEvent { owner, .. } => {
                (self.section_user(at, "owner", owner)?, NONE)
            }
            SectionRow::Task {
                id,
                project,
                parent,
                ..
            } => self.task_place(id, project, parent.as_deref())?,
            SectionRow::Invoice { company, .. } => {
                (self.section_company(at, "company", Some(company))?, NONE)
            }
            SectionRow::Lead { company, owner, .. } => (
                self.section_company(at, "company", company.as_deref())?,
                self.section_user(at, "owner", owner)?,
            ),
            SectionRow::Download { id, category, .. } => (
                self.sections.categories.lookup(category).ok_or_else(|| {
                    unknown("download", id, "category", "download_category", category)
                })?,
                NONE,
            ),
            SectionRow::WikiPage { .. } | SectionRow::DownloadCategory { .. } => (NONE, NONE),
        };
        let existing = self.sections.handle(e, row.id());
        if let Some(h) = existing {
            self.section_postings(e, h, false);
        }
        let sec = &mut self.sections;
        macro_rules! put {
            ($table:ident, $make:expr, |$r:ident| $update:block) => {
                match existing.and_then(|h| sec.$table.row_mut(h)) {
                    Some($r) => {
                        $update;
                        existing
                    }
                    None => Some(sec.$table.push($make)),
                }
            };
        }
        let h = match row {
            SectionRow::Project { id, name, .. } => put!(
                projects,
                ProjectRow {
                    name: name.as_str().into(),
                    owner: a,
                    ..ProjectRow::vacant(id.as_str().into())
                },
                |r| {
                    r.name = name.as_str().into();
                    r.owner = a;
                }
            ),
            SectionRow::Task { id, name, .. } => put!(
                tasks,
                TaskRow {
                    name: name.as_str().into(),
                    project: a,
                    parent: b,
                    ..TaskRow::vacant(id.as_str().into())
                },
                |r| {
                    r.name = name.as_str().into();
                    r.project = a;
                    r.parent = b;
                }
            ),
            SectionRow::WikiPage { id, name } => put!(
                wiki,
                WikiRow {
                    name: name.as_str().into(),
                    ..WikiRow::vacant(id.as_str().into())
                },
                |r| {
                    r.name = name.as_str().into();
                }
            ),
            SectionRow::InventoryItem {
                id, name, public, ..
            } => put!(
                items,
                ItemRow {
                    name: name.as_str().into(),
                    owner: a,
                    public: *public,
                    ..ItemRow::vacant(id.as_str().into())
                },
                |r| {
                    r.name = name.as_str().into();
                    r.owner = a;
                    r.public = *public;
                }
            ),
            SectionRow::Invoice { id, .. } => put!(
                invoices,
                InvoiceRow {
                    id: id.as_str().into(),
                    company: a,
                },
                |r| {
                    r.company = a;
                }
            ),
            SectionRow::Lead { id, name, .. } => put!(
                leads,
                LeadRow {
                    name: name.as_str().into(),
                    company: a,
                    owner: b,
                    ..LeadRow::vacant(id.as_str().into())
                },
                |r| {
                    r.name = name.as_str().into();
                    r.company = a;
                    r.owner = b;
                }
            ),
            SectionRow::AgendaEvent {
                id, name, public, ..
            } => put!(
                events,
                EventRow {
                    name: name.as_str().into(),
                    owner: a,
                    public: *public,
                    ..EventRow::vacant(id.as_str().into())
                },
                |r| {
                    r.name = name.as_str().into();
                    r.owner = a;
                    r.public = *public;
                }
            ),
            SectionRow::DownloadCategory { id, name } => put!(
                categories,
                CategoryRow {
                    name: name.as_str().into(),
                    ..CategoryRow::vacant(id.as_str().into())
                },
                |r| {
                    r.name = name.as_str().into();
                }
            ),
            SectionRow::Download { id, name, .. } => put!(
                downloads,
                DownloadRow {
                    name: name.as_str().into(),
                    category: a,
                    ..DownloadRow::vacant(id.as_str().into())
                },
                |r| {
                    r.name = name.as_str().into();
                    r.category = a;
                }
            ),
        };
        if let Some(h) = h {
            self.section_postings(e, h, true);
        }
        Ok(())
    }

    /// Deletes a section entity; what still refers to it keeps the vacant
    /// handle until its own delete (a cascade) arrives.
    pub(super) fn delete_section(&mut self, e: SectionEntity, id: &str) {
        let Some(h) = self.sections.handle(e, id) else {
            return;
        };
        self.section_postings(e, h, false);
        let sec = &mut self.sections;
        // The subtrees below a removed task lose its lists from their chains.
        let orphans = match e {
            SectionEntity::Task => sec.tasks[h].children.clone(),
            _ => IdxList::new(),
        };
        match e {
            SectionEntity::Project => sec.projects.remove(id),
            SectionEntity::Task => sec.tasks.remove(id),
            SectionEntity::WikiPage => sec.wiki.remove(id),
            SectionEntity::InventoryItem => sec.items.remove(id),
            SectionEntity::Invoice => sec.invoices.remove(id),
            SectionEntity::Lead => sec.leads.remove(id),
            SectionEntity::AgendaEvent => sec.events.remove(id),
            SectionEntity::DownloadCategory => sec.categories.remove(id),
            SectionEntity::Download => sec.downloads.remove(id),
        };
        set_chains(&mut sec.tasks, orphans);
    }

    /// Puts one entry on a section entity's list or takes it off. Taking
    /// an entry off an entity the data no longer holds changes nothing.
    pub(super) fn set_section_link(
        &mut self,
        link: &SectionLink,
        present: bool,
    ) -> Result<(), ApplyError> {
        let (e, id, target, value) = match link {
            SectionLink::ProjectMember { project, user, .. } => {
                (SectionEntity::Project, project, "user", user)
            }
            SectionLink::TaskMember { task, user, .. } => (SectionEntity::Task, task, "user", user),
            SectionLink::WikiGroup { page, group, .. } => {
                (SectionEntity::WikiPage, page, "group", group)
            }
            SectionLink::ItemCompany { item, company } => {
                (SectionEntity::InventoryItem, item, "company", company)
            }
            SectionLink::ItemUser { item, user } => {
                (SectionEntity::InventoryItem, item, "user", user)
            }
            SectionLink::EventGroup { event, group } => {
                (SectionEntity::AgendaEvent, event, "group", group)
            }
            SectionLink::CategoryGroup { category, group } => {
                (SectionEntity::DownloadCategory, category, "group", group)
            }
        };
        let name = entity_name(e);
        let Some(h) = self.sections.handle(e, id) else {
            return if present {
                Err(ApplyError::Row {
                    table: format!("{name} `{id}`"),
                    message: format!("unknown {name}"),
                })
            } else {
                Ok(())
            };
        };
        let field = match link {
            SectionLink::ProjectMember { .. } | SectionLink::TaskMember { .. } => "members.user",
            SectionLink::WikiGroup { write: true, .. } => "write_groups",
            SectionLink::WikiGroup { write: false, .. } => "read_groups",
            SectionLink::ItemCompany { .. } => "companies",
            SectionLink::ItemUser { .. } => "users",
            SectionLink::EventGroup { .. } | SectionLink::CategoryGroup { .. } => "groups",
        };
        let resolved = match target {
            "user" => self.users.lookup(value),
            "company" => self.companies.lookup(value),
            _ => self.groups.lookup(value),
        };
        let t = match (resolved, present) {
            (Some(t), _) => t,
            (None, true) => return Err(unknown(name, id, field, target, value)),
            // Already gone (a cascade of its delete): found by id below.
            (None, false) => NONE,
        };
        self.section_postings(e, h, false);
        let Snapshot {
            users,
            companies,
            groups,
            sections: sec,
            ..
        } = self;
        // Sets `t` on (or off) a sorted handle list; off with `NONE` finds
        // the entry by id in `ids`.
        macro_rules! set {
            ($list:expr, $ids:expr) => {{
                let list: &mut IdxList = $list;
                if t == NONE {
                    remove_by_id(list, $ids, value);
                } else {
                    set_sorted(list, t, present);
                }
            }};
        }
        match link {
            SectionLink::ProjectMember { role, .. } => {
                if let Some(r) = sec.projects.row_mut(h) {
                    set!(&mut r.members, &*users);
                    // One row per (project, user): its role decides both lists.
                    if t == NONE {
                        remove_by_id(&mut r.managers, users, value);
                    } else {
                        set_sorted(&mut r.managers, t, present && *role == MemberRole::Manager);
                    }
                }
            }
            SectionLink::TaskMember { role, .. } => {
                if let Some(r) = sec.tasks.row_mut(h) {
                    set!(&mut r.members, &*users);
                    if t == NONE {
                        remove_by_id(&mut r.managers, users, value);
                    } else {
                        set_sorted(&mut r.managers, t, present && *role == MemberRole::Manager);
                    }
                }
            }
            SectionLink::WikiGroup { write, .. } => {
                if let Some(r) = sec.wiki.row_mut(h) {
                    if *write {
                        set!(&mut r.write_groups, &*groups);
                    } else {
                        set!(&mut r.read_groups, &*groups);
                    }
                }
            }
            SectionLink::ItemCompany { .. } => {
                if let Some(r) = sec.items.row_mut(h) {
                    set!(&mut r.companies, &*companies);
                }
            }
            SectionLink::ItemUser { .. } => {
                if let Some(r) = sec.items.row_mut(h) {
                    set!(&mut r.users, &*users);
                }
            }
            SectionLink::EventGroup { .. } => {
                if let Some(r) = sec.events.row_mut(h) {
                    set!(&mut r.groups, &*groups);
                }
            }
            SectionLink::CategoryGroup { .. } => {
                if let Some(r) = sec.categories.row_mut(h) {
                    set!(&mut r.groups, &*groups);
                }
            }
        }
        self.section_postings(e, h, true);
        Ok(())
    }
}
