//! The service-desk sections of access model §8 (projects, tasks, wiki
//! pages, inventory, invoices, leads, agenda, downloads), interned in their
//! own [`Table`]s beside the ticket data, with the posting lists the
//! visible-resource lists are driven by.
//!
//! Posting lists of section handles are ordered by the byte order of the
//! ids they point to, as the ticket postings are: the build interns each
//! table in id order (so there handle order is id order), and the
//! row-by-row apply (`sections_apply.rs`) inserts later rows by id, so a
//! page merges the lists by id and resumes by a binary search on ids.
//! `every` holds each kind's resources in that order, for a superadmin's
//! list. Users, companies and groups are referred to by their snapshot
//! handles. The tables are copy-on-write like the rest, so a cloned
//! snapshot shares them whole.

use std::collections::HashMap;

use compact_str::CompactString;

use super::{Idx, Keyed, NONE, Snapshot, SnapshotError, SortedSeq, Table};
use crate::model::{MemberRole, ResourceKind, SectionMember, Sections};

/// A row's short list of handles, sorted: inline up to four, in the
/// space a `Vec` takes, because a check reads it right after the row and
/// most resources have few members, groups or companies (a heap list
/// would be one more dependent cache miss per check).
pub type IdxList = smallvec::SmallVec<[Idx; 4]>;

#[derive(Debug, Clone, Default)]
pub struct ProjectRow {
    pub id: CompactString,
    pub name: Box<str>,
    pub owner: Idx,
    /// Sorted user handles with the `manager` role.
    pub managers: IdxList,
    /// Sorted user handles of every member, any role.
    pub members: IdxList,
    /// The project's tasks, by handle (= id order).
    pub tasks: SortedSeq<Idx>,
}

#[derive(Debug, Clone, Default)]
pub struct TaskRow {
    pub id: CompactString,
    pub name: Box<str>,
    pub project: Idx,
    pub parent: Idx,
    pub children: IdxList,
    pub managers: IdxList,
    pub members: IdxList,
    /// `managers` of the task and of every ancestor, sorted: what a check
    /// asks of the chain, read in one step instead of a walk up the tree
    /// (kept by [`set_chains`]).
    pub chain_managers: IdxList,
    /// `members` of the task and of every ancestor, sorted.
    pub chain_members: IdxList,
}

#[derive(Debug, Clone, Default)]
pub struct WikiRow {
    pub id: CompactString,
    pub name: Box<str>,
    /// Group handles; empty: every user reads.
    pub read_groups: IdxList,
    /// Group handles; empty: every holder of WW writes.
    pub write_groups: IdxList,
}

#[derive(Debug, Clone, Default)]
pub struct ItemRow {
    pub id: CompactString,
    pub name: Box<str>,
    pub owner: Idx,
    pub public: bool,
    /// Sorted company handles.
    pub companies: IdxList,
    /// Sorted user handles the item is associated with.
    pub users: IdxList,
}

#[derive(Debug, Clone, Default)]
pub struct InvoiceRow {
    pub id: CompactString,
    pub company: Idx,
}

#[derive(Debug, Clone, Default)]
pub struct LeadRow {
    pub id: CompactString,
    pub name: Box<str>,
    pub company: Idx,
    pub owner: Idx,
}

#[derive(Debug, Clone, Default)]
pub struct EventRow {
    pub id: CompactString,
    pub name: Box<str>,
    pub owner: Idx,
    pub public: bool,
    pub groups: IdxList,
}

#[derive(Debug, Clone, Default)]
pub struct CategoryRow {
    pub id: CompactString,
    pub name: Box<str>,
    pub groups: IdxList,
    /// The category's downloads, by handle (= id order).
    pub downloads: SortedSeq<Idx>,
}

#[derive(Debug, Clone, Default)]
pub struct DownloadRow {
    pub id: CompactString,
    pub name: Box<str>,
    pub category: Idx,
}

/// The section resources that name one user, keyed by the user's id.
#[derive(Debug, Clone, Default)]
pub struct UserSections {
    pub id: CompactString,
    /// Projects the user owns or is a member of.
    pub projects: SortedSeq<Idx>,
    /// Tasks the user is a member of (any role).
    pub tasks: SortedSeq<Idx>,
    pub items_owned: SortedSeq<Idx>,
    pub items_associated: SortedSeq<Idx>,
    pub events_owned: SortedSeq<Idx>,
}

/// The section resources that name one company, keyed by its id.
#[derive(Debug, Clone, Default)]
pub struct CompanySections {
    pub id: CompactString,
    pub items: SortedSeq<Idx>,
    pub invoices: SortedSeq<Idx>,
    pub leads: SortedSeq<Idx>,
}

/// The section resources that name one group, keyed by its id.
#[derive(Debug, Clone, Default)]
pub struct GroupSections {
    pub id: CompactString,
    /// Wiki pages listing the group among their readers.
    pub wiki_read: SortedSeq<Idx>,
    pub events: SortedSeq<Idx>,
    pub categories: SortedSeq<Idx>,
}

macro_rules! vacant {
    ($($row:ty => { $($field:ident: $value:expr),* };)+) => {
        $(impl Keyed for $row {
            fn key(&self) -> &str {
                &self.id
            }

            // Some rows have no field besides those named.
            #[allow(clippy::needless_update)]
            fn vacant(id: CompactString) -> Self {
                Self { id, $($field: $value,)* ..Default::default() }
            }
        })+
    };
}

// Vacant rows name nobody and nothing, so they match no rule.
vacant! {
    ProjectRow => { owner: NONE };
    TaskRow => { project: NONE, parent: NONE };
    WikiRow => { name: Box::default() };
    ItemRow => { owner: NONE };
    InvoiceRow => { company: NONE };
    LeadRow => { company: NONE, owner: NONE };
    EventRow => { owner: NONE };
    CategoryRow => { name: Box::default() };
    DownloadRow => { category: NONE };
    UserSections => { projects: SortedSeq::default() };
    CompanySections => { items: SortedSeq::default() };
    GroupSections => { wiki_read: SortedSeq::default() };
}

/// Every section's tables and the lists that do not hang off a user,
/// company or group.
#[derive(Debug, Clone, Default)]
pub struct SectionTables {
    pub projects: Table<ProjectRow>,
    pub tasks: Table<TaskRow>,
    pub wiki: Table<WikiRow>,
    pub items: Table<ItemRow>,
    pub invoices: Table<InvoiceRow>,
    pub leads: Table<LeadRow>,
    pub events: Table<EventRow>,
    pub categories: Table<CategoryRow>,
    pub downloads: Table<DownloadRow>,
    pub by_user: Table<UserSections>,
    pub by_company: Table<CompanySections>,
    pub by_group: Table<GroupSections>,
    /// Wiki pages with no read groups (everyone reads them).
    pub open_wiki: SortedSeq<Idx>,
    /// Wiki pages with read groups (what a grant on `*` belongs to).
    pub grouped_wiki: SortedSeq<Idx>,
    pub public_items: SortedSeq<Idx>,
    pub public_events: SortedSeq<Idx>,
    /// Events with groups (what a grant on `*` belongs to).
    pub grouped_events: SortedSeq<Idx>,
    /// Leads with no company.
    pub open_leads: SortedSeq<Idx>,
    /// Download categories with no groups.
    pub open_categories: SortedSeq<Idx>,
    /// Categories with groups (what a flag on `*` reaches).
    pub grouped_categories: SortedSeq<Idx>,
    /// Every resource of each listed kind (by `ResourceKind as usize`).
    pub every: [SortedSeq<Idx>; 8],
}

/// The sorted union of two sorted handle lists.
fn union(a: &[Idx], b: &[Idx]) -> IdxList {
    let mut out = IdxList::with_capacity(a.len() + b.len());
    out.extend_from_slice(a);
    out.extend_from_slice(b);
    out.sort_unstable();
    out.dedup();
    out
}

/// The chain lists of `row` below a parent holding `parent`'s (none for a
/// root, or a vacant parent, which holds empty ones).
fn chains_under(parent: Option<&TaskRow>, row: &TaskRow) -> (IdxList, IdxList) {
    match parent {
        None => (row.managers.clone(), row.members.clone()),
        Some(p) => (
            union(&row.managers, &p.chain_managers),
            union(&row.members, &p.chain_members),
        ),
    }
}

/// Sets the chain lists of every task reached from `roots` down through
/// `children`, parents first: at the build, from every root; after a
/// change to a task's place or member lists, from that task. `budget`
/// bounds the walk should the rows hold a cycle (the build and the apply
/// refuse them before). A vacant parent (a removed task) holds empty
/// lists, as a root's parent would.
pub(super) fn set_chains(tasks: &mut Table<TaskRow>, roots: impl IntoIterator<Item = Idx>) {
    let mut stack: Vec<Idx> = roots.into_iter().collect();
    let mut budget = tasks.capacity();
    while let Some(t) = stack.pop() {
        if budget == 0 {
            break;
        }
        budget -= 1;
        if !tasks.is_live(t) {
            continue;
        }
        let row = &tasks[t];
        let parent = (row.parent != NONE && tasks.is_live(row.parent)).then(|| &tasks[row.parent]);
        let (managers, members) = chains_under(parent, row);
        if let Some(row) = tasks.row_mut(t) {
            row.chain_managers = managers;
            row.chain_members = members;
            stack.extend(row.children.iter().copied());
        }
    }
}

impl SectionTables {
    /// Every resource of `kind`, by id.
    pub fn every(&self, kind: ResourceKind) -> &SortedSeq<Idx> {
        &self.every[kind as usize]
    }
}

/// Rows in id order and the handle of each id.
fn ordered<T>(items: &[T], id: impl Fn(&T) -> &str) -> (Vec<&T>, HashMap<&str, Idx>) {
    let mut sorted: Vec<&T> = items.iter().collect();
    sorted.sort_unstable_by(|a, b| id(a).cmp(id(b)));
    let handles = sorted
        .iter()
        .enumerate()
        .map(|(i, item)| (id(item), Idx::try_from(i).unwrap_or(NONE)))
        .collect();
    (sorted, handles)
}

/// Pushes `value` onto `lists[key]`, growing nothing when `key` is `NONE`.
fn post(lists: &mut HashMap<Idx, Vec<Idx>>, key: Idx, value: Idx) {
    if key != NONE {
        let list = lists.entry(key).or_default();
        if list.last() != Some(&value) {
            list.push(value);
        }
    }
}

fn seq(mut list: Vec<Idx>) -> SortedSeq<Idx> {
    list.sort_unstable();
    list.dedup();
    SortedSeq::from_sorted(list)
}

struct Refs<'s> {
    snap: &'s Snapshot,
    entity: &'static str,
    id: &'s str,
}

impl Refs<'_> {
    fn fail(&self, field: &'static str, target: &'static str, value: &str) -> SnapshotError {
        SnapshotError::Dangling {
            entity: self.entity,
            id: self.id.to_owned(),
            field,
            target,
            value: value.to_owned(),
        }
    }

    fn user(&self, field: &'static str, id: Option<&str>) -> Result<Idx, SnapshotError> {
        id.map_or(Ok(NONE), |id| {
            self.snap
                .users
                .lookup(id)
                .ok_or_else(|| self.fail(field, "user", id))
        })
    }

    fn users(&self, field: &'static str, ids: &[String]) -> Result<IdxList, SnapshotError> {
        let mut out = ids
            .iter()
            .map(|id| self.user(field, Some(id)))
            .collect::<Result<IdxList, _>>()?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn company(&self, field: &'static str, id: Option<&str>) -> Result<Idx, SnapshotError> {
        id.map_or(Ok(NONE), |id| {
            self.snap
                .companies
                .lookup(id)
                .ok_or_else(|| self.fail(field, "company", id))
        })
    }

    fn companies(&self, field: &'static str, ids: &[String]) -> Result<IdxList, SnapshotError> {
        let mut out = ids
            .iter()
            .map(|id| self.company(field, Some(id)))
            .collect::<Result<IdxList, _>>()?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn groups(&self, field: &'static str, ids: &[String]) -> Result<IdxList, SnapshotError> {
        let mut out = ids
            .iter()
            .map(|id| {
                self.snap
                    .groups
                    .lookup(id)
                    .ok_or_else(|| self.fail(field, "group", id))
            })
            .collect::<Result<IdxList, _>>()?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// (managers, every member), sorted handles.
    fn members(&self, members: &[SectionMember]) -> Result<(IdxList, IdxList), SnapshotError> {
        let mut managers = IdxList::new();
        let mut all = IdxList::with_capacity(members.len());
        for m in members {
            let u = self.user("members.user", Some(&m.user))?;
            if m.role == MemberRole::Manager {
                managers.push(u);
            }
            all.push(u);
        }
        for list in [&mut managers, &mut all] {
            list.sort_unstable();
            list.dedup();
        }
        Ok((managers, all))
    }
}

/// Id-keyed index rows from posting lists by handle of `table`.
fn index_rows<S: Keyed, R: Keyed, T>(
    table: &Table<S>,
    lists: HashMap<Idx, T>,
    make: impl Fn(CompactString, T) -> R,
) -> Vec<R> {
    let mut rows: Vec<R> = lists
        .into_iter()
        .map(|(h, v)| make(table.id(h).into(), v))
        .collect();
    rows.sort_unstable_by(|a, b| a.key().cmp(b.key()));
    rows
}

impl SectionTables {
    /// Builds the section tables of `data` against a snapshot holding its
    /// users, companies and groups.
    pub(super) fn build(data: &Sections, snap: &Snapshot) -> Result<Self, SnapshotError> {
        let too_many = |what| SnapshotError::TooMany(what);
        let mut out = SectionTables::default();
        let mut user_lists: HashMap<Idx, [Vec<Idx>; 5]> = HashMap::new();
        let mut company_lists: HashMap<Idx, [Vec<Idx>; 3]> = HashMap::new();
        let mut group_lists: HashMap<Idx, [Vec<Idx>; 3]> = HashMap::new();
        let mut user_post = |user: Idx, list: usize, value: Idx| {
            if user != NONE
                && let Some(l) = user_lists.entry(user).or_default().get_mut(list)
            {
                l.push(value);
            }
        };

        // Projects, then tasks (which need the projects' handles).
        let (projects, project_h) = ordered(&data.projects, |p| &p.id);
        let mut project_rows = Vec::with_capacity(projects.len());
        for (i, p) in projects.iter().enumerate() {
            let h = Idx::try_from(i).map_err(|_| too_many("projects"))?;
            let r = Refs {
                snap,
                entity: "project",
                id: &p.id,
            };
            let owner = r.user("owner", p.owner.as_deref())?;
            let (managers, members) = r.members(&p.members)?;
            user_post(owner, 0, h);
            for &m in &members {
                user_post(m, 0, h);
            }
            project_rows.push(ProjectRow {
                id: p.id.as_str().into(),
                name: p.name.as_str().into(),
                owner,
                managers,
                members,
                tasks: SortedSeq::default(),
            });
        }
        let (tasks, task_h) = ordered(&data.tasks, |t| &t.id);
        let mut task_rows = Vec::with_capacity(tasks.len());
        let mut project_tasks: HashMap<Idx, Vec<Idx>> = HashMap::new();
        for (i, t) in tasks.iter().enumerate() {
            let h = Idx::try_from(i).map_err(|_| too_many("tasks"))?;
            let r = Refs {
                snap,
                entity: "task",
                id: &t.id,
            };
            let project = project_h
                .get(t.project.as_str())
                .copied()
                .ok_or_else(|| r.fail("project", "project", &t.project))?;
            let parent = match &t.parent {
                None => NONE,
                Some(p) => task_h
                    .get(p.as_str())
                    .copied()
                    .ok_or_else(|| r.fail("parent", "task", p))?,
            };
            let (managers, members) = r.members(&t.members)?;
            for &m in &members {
                user_post(m, 1, h);
            }
            post(&mut project_tasks, project, h);
            task_rows.push(TaskRow {
                id: t.id.as_str().into(),
                name: t.name.as_str().into(),
                project,
                parent,
                children: IdxList::new(),
                managers,
                members,
                chain_managers: IdxList::new(),
                chain_members: IdxList::new(),
            });
        }
        for i in 0..task_rows.len() {
            let (parent, project) = (task_rows[i].parent, task_rows[i].project);
            if parent == NONE {
                continue;
            }
            let child = Idx::try_from(i).unwrap_or(NONE);
            let id = task_rows[i].id.to_string();
            match task_rows.get_mut(parent as usize) {
                Some(p) if p.project == project => p.children.push(child),
                _ => {
                    return Err(SnapshotError::Dangling {
                        entity: "task",
                        id,
                        field: "parent",
                        target: "task of the same project",
                        value: task_rows
                            .get(parent as usize)
                            .map(|p| p.id.to_string())
                            .unwrap_or_default(),
                    });
                }
            }
        }
        let parents: Vec<Idx> = task_rows.iter().map(|t| t.parent).collect();
        if let Some(i) = super::build::find_cycle(&parents) {
            return Err(SnapshotError::Cycle {
                entity: "task",
                id: task_rows[i].id.to_string(),
            });
        }
        for (p, list) in project_tasks {
            if let Some(row) = project_rows.get_mut(p as usize) {
                row.tasks = seq(list);
            }
        }

        let mut group_post = |group: Idx, list: usize, value: Idx| {
            if let Some(l) = group_lists.entry(group).or_default().get_mut(list) {
                l.push(value);
            }
        };

        // Wiki pages.
        let (pages, _) = ordered(&data.wiki_pages, |w| &w.id);
        let mut wiki_rows = Vec::with_capacity(pages.len());
        let (mut open_wiki, mut grouped_wiki) = (Vec::new(), Vec::new());
        for (i, w) in pages.iter().enumerate() {
            let h = Idx::try_from(i).map_err(|_| too_many("wiki pages"))?;
            let r = Refs {
                snap,
                entity: "wiki_page",
                id: &w.id,
            };
            let read_groups = r.groups("read_groups", &w.read_groups)?;
            let write_groups = r.groups("write_groups", &w.write_groups)?;
            if read_groups.is_empty() {
                open_wiki.push(h);
            } else {
                grouped_wiki.push(h);
            }
            for &g in &read_groups {
                group_post(g, 0, h);
            }
            wiki_rows.push(WikiRow {
                id: w.id.as_str().into(),
                name: w.name.as_str().into(),
                read_groups,
                write_groups,
            });
        }

        // Inventory.
        let (items, _) = ordered(&data.inventory_items, |i| &i.id);
        let mut item_rows = Vec::with_capacity(items.len());
        let mut public_items = Vec::new();
        for (i, it) in items.iter().enumerate() {
            let h = Idx::try_from(i).map_err(|_| too_many("inventory items"))?;
            let r = Refs {
                snap,
                entity: "inventory_item",
                id: &it.id,
            };
            let owner = r.user("owner", it.owner.as_deref())?;
            let companies = r.companies("companies", &it.companies)?;
            let users = r.users("users", &it.users)?;
            user_post(owner, 2, h);
            for &u in &users {
                user_post(u, 3, h);
            }
            for &c in &companies {
                company_lists.entry(c).or_default()[0].push(h);
            }
            if it.public {
                public_items.push(h);
            }
            item_rows.push(ItemRow {
                id: it.id.as_str().into(),
                name: it.name.as_str().into(),
                owner,
                public: it.public,
                companies,
                users,
            });
        }

        // Invoices and leads.
        let (invoices, _) = ordered(&data.invoices, |v| &v.id);
        let mut invoice_rows = Vec::with_capacity(invoices.len());
        for (i, v) in invoices.iter().enumerate() {
            let h = Idx::try_from(i).map_err(|_| too_many("invoices"))?;
            let r = Refs {
                snap,
                entity: "invoice",
                id: &v.id,
            };
            let company = r.company("company", Some(&v.company))?;
            company_lists.entry(company).or_default()[1].push(h);
            invoice_rows.push(InvoiceRow {
                id: v.id.as_str().into(),
                company,
            });
        }
        let (leads, _) = ordered(&data.leads, |l| &l.id);
        let mut lead_rows = Vec::with_capacity(leads.len());
        let mut open_leads = Vec::new();
        for (i, l) in leads.iter().enumerate() {
            let h = Idx::try_from(i).map_err(|_| too_many("leads"))?;
            let r = Refs {
                snap,
                entity: "lead",
                id: &l.id,
            };
            let company = r.company("company", l.company.as_deref())?;
            if company == NONE {
                open_leads.push(h);
            } else {
                company_lists.entry(company).or_default()[2].push(h);
            }
            lead_rows.push(LeadRow {
                id: l.id.as_str().into(),
                name: l.name.as_str().into(),
                company,
                owner: r.user("owner", l.owner.as_deref())?,
            });
        }

        // Agenda.
        let (events, _) = ordered(&data.agenda_events, |e| &e.id);
        let mut event_rows = Vec::with_capacity(events.len());
        let (mut public_events, mut grouped_events) = (Vec::new(), Vec::new());
        for (i, e) in events.iter().enumerate() {
            let h = Idx::try_from(i).map_err(|_| too_many("agenda events"))?;
            let r = Refs {
                snap,
                entity: "agenda_event",
                id: &e.id,
            };
            let owner = r.user("owner", e.owner.as_deref())?;
            let groups = r.groups("groups", &e.groups)?;
            user_post(owner, 4, h);
            if e.public {
                public_events.push(h);
            }
            if !groups.is_empty() {
                grouped_events.push(h);
            }
            for &g in &groups {
                group_post(g, 1, h);
            }
            event_rows.push(EventRow {
                id: e.id.as_str().into(),
                name: e.name.as_str().into(),
                owner,
                public: e.public,
                groups,
            });
        }

        // Downloads and their categories.
        let (categories, category_h) = ordered(&data.download_categories, |c| &c.id);
        let mut category_rows = Vec::with_capacity(categories.len());
        let (mut open_categories, mut grouped_categories) = (Vec::new(), Vec::new());
        for (i, c) in categories.iter().enumerate() {
            let h = Idx::try_from(i).map_err(|_| too_many("download categories"))?;
            let r = Refs {
                snap,
                entity: "download_category",
                id: &c.id,
            };
            let groups = r.groups("groups", &c.groups)?;
            if groups.is_empty() {
                open_categories.push(h);
            } else {
                grouped_categories.push(h);
            }
            for &g in &groups {
                group_post(g, 2, h);
            }
            category_rows.push(CategoryRow {
                id: c.id.as_str().into(),
                name: c.name.as_str().into(),
                groups,
                downloads: SortedSeq::default(),
            });
        }
        let (downloads, _) = ordered(&data.downloads, |d| &d.id);
        let mut download_rows = Vec::with_capacity(downloads.len());
        let mut category_downloads: HashMap<Idx, Vec<Idx>> = HashMap::new();
        for (i, d) in downloads.iter().enumerate() {
            let h = Idx::try_from(i).map_err(|_| too_many("downloads"))?;
            let category = category_h
                .get(d.category.as_str())
                .copied()
                .ok_or_else(|| SnapshotError::Dangling {
                    entity: "download",
                    id: d.id.clone(),
                    field: "category",
                    target: "download category",
                    value: d.category.clone(),
                })?;
            post(&mut category_downloads, category, h);
            download_rows.push(DownloadRow {
                id: d.id.as_str().into(),
                name: d.name.as_str().into(),
                category,
            });
        }
        for (c, list) in category_downloads {
            if let Some(row) = category_rows.get_mut(c as usize) {
                row.downloads = seq(list);
            }
        }

        out.by_user = Table::from_rows(index_rows(
            &snap.users,
            user_lists,
            |id, [p, t, o, a, e]| UserSections {
                id,
                projects: seq(p),
                tasks: seq(t),
                items_owned: seq(o),
                items_associated: seq(a),
                events_owned: seq(e),
            },
        ));
        out.by_company = Table::from_rows(index_rows(
            &snap.companies,
            company_lists,
            |id, [items, invoices, leads]| CompanySections {
                id,
                items: seq(items),
                invoices: seq(invoices),
                leads: seq(leads),
            },
        ));
        out.by_group = Table::from_rows(index_rows(
            &snap.groups,
            group_lists,
            |id, [wiki_read, events, categories]| GroupSections {
                id,
                wiki_read: seq(wiki_read),
                events: seq(events),
                categories: seq(categories),
            },
        ));
        let every = |len: usize| {
            SortedSeq::from_sorted((0..len).filter_map(|i| Idx::try_from(i).ok()).collect())
        };
        out.every = [
            every(project_rows.len()),
            every(task_rows.len()),
            every(wiki_rows.len()),
            every(item_rows.len()),
            every(invoice_rows.len()),
            every(lead_rows.len()),
            every(event_rows.len()),
            every(download_rows.len()),
        ];
        out.projects = Table::from_rows(project_rows);
        let roots: Vec<Idx> = (0..task_rows.len())
            .filter(|&i| task_rows[i].parent == NONE)
            .filter_map(|i| Idx::try_from(i).ok())
            .collect();
        out.tasks = Table::from_rows(task_rows);
        set_chains(&mut out.tasks, roots);
        out.wiki = Table::from_rows(wiki_rows);
        out.items = Table::from_rows(item_rows);
        out.invoices = Table::from_rows(invoice_rows);
        out.leads = Table::from_rows(lead_rows);
        out.events = Table::from_rows(event_rows);
        out.categories = Table::from_rows(category_rows);
        out.downloads = Table::from_rows(download_rows);
        out.open_wiki = seq(open_wiki);
        out.grouped_wiki = seq(grouped_wiki);
        out.public_items = seq(public_items);
        out.public_events = seq(public_events);
        out.grouped_events = seq(grouped_events);
        out.open_leads = seq(open_leads);
        out.open_categories = seq(open_categories);
        out.grouped_categories = seq(grouped_categories);
        Ok(out)
    }
}
