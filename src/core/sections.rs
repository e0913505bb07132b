//! The service-desk sections of access model §8: the allow rules of each
//! section action in reporting order, and the visible-resource lists,
//! merged from the snapshot's section indexes and held to the same rules.

use crate::flags::Flag;
use crate::model::{ResourceKind, UserKind};
use crate::snapshot::sections::{IdxList, SectionTables, TaskRow};
use crate::snapshot::{ALL, Idx, Keyed, NONE, Snapshot, SortedSeq, Table, UserRow};

use super::decision::{Decision, Explain, Reason};
use super::derive::{flags_on, grant_applies, group_name, has_flag_anywhere, in_reach};
use super::lists::{ListError, Merge, Page, PageCursor, Stream, from_after, take_page};
use super::request::Action;

/// What a section action's `resource_id` names, for explanations.
pub(crate) fn what(action: Action) -> &'static str {
    match action.resource_kind() {
        Some(ResourceKind::Project) => "project",
        Some(ResourceKind::Task) => "task",
        Some(ResourceKind::WikiPage) => "wiki page",
        Some(ResourceKind::InventoryItem) => "inventory item",
        Some(ResourceKind::Invoice) => "invoice",
        Some(ResourceKind::Lead) => "lead",
        Some(ResourceKind::AgendaEvent) => "agenda event",
        Some(ResourceKind::Download) => "download",
        None => "user",
    }
}

/// The handle of the resource `id` names for a section action, if the
/// data holds one of the action's kind (`user_manage`: a user).
pub(crate) fn lookup(snap: &Snapshot, action: Action, id: &str) -> Option<Idx> {
    let s = &snap.sections;
    match action.resource_kind() {
        Some(ResourceKind::Project) => s.projects.lookup(id),
        Some(ResourceKind::Task) => s.tasks.lookup(id),
        Some(ResourceKind::WikiPage) => s.wiki.lookup(id),
        Some(ResourceKind::InventoryItem) => s.items.lookup(id),
        Some(ResourceKind::Invoice) => s.invoices.lookup(id),
        Some(ResourceKind::Lead) => s.leads.lookup(id),
        Some(ResourceKind::AgendaEvent) => s.events.lookup(id),
        Some(ResourceKind::Download) => s.downloads.lookup(id),
        None => snap.users.lookup(id),
    }
}

/// The `_view` action of a kind, whose allow rules make the kind's list.
pub fn view_action(kind: ResourceKind) -> Action {
    match kind {
        ResourceKind::Project => Action::ProjectView,
        ResourceKind::Task => Action::TaskView,
        ResourceKind::WikiPage => Action::WikiView,
        ResourceKind::InventoryItem => Action::InventoryView,
        ResourceKind::Invoice => Action::InvoiceView,
        ResourceKind::Lead => Action::LeadView,
        ResourceKind::AgendaEvent => Action::AgendaView,
        ResourceKind::Download => Action::DownloadView,
    }
}

/// An agent, end-user or suspended user asking (superadmins are decided in
/// the prelude).
pub(crate) struct Asker<'s> {
    pub snap: &'s Snapshot,
    pub uidx: Idx,
    pub user: &'s UserRow,
}

fn holds(list: &[Idx], who: Idx) -> bool {
    list.binary_search(&who).is_ok()
}

impl<'s> Asker<'s> {
    fn sec(&self) -> &'s SectionTables {
        &self.snap.sections
    }

    fn agent(&self) -> bool {
        self.user.kind == UserKind::Agent
    }

    /// F anywhere, explained when it is missing.
    fn anywhere(&self, flag: Flag, ex: &mut Explain) -> bool {
        let held = has_flag_anywhere(self.snap, self.user, flag);
        if held {
            ex.step(|| format!("{} holds flag {flag} through a grant", self.user.id));
        } else {
            ex.step(|| format!("no grant of {} holds flag {flag}", self.user.id));
        }
        held
    }

    /// The first of `groups` the user belongs to (a grant on it, on `*`,
    /// or on a propagating ancestor).
    fn belongs_to_any(&self, groups: &[Idx]) -> Option<Idx> {
        if !self.agent() {
            return None;
        }
        groups.iter().copied().find(|&g| {
            self.user
                .grants
                .iter()
                .any(|grant| grant_applies(self.snap, grant.group, g))
        })
    }

    /// The tasks from `task` up through its ancestors, nearest first.
    fn task_chain(&self, task: Idx) -> impl Iterator<Item = Idx> + 's {
        let tasks = &self.sec().tasks;
        let mut current = task;
        let mut budget = tasks.len();
        std::iter::from_fn(move || {
            if current == NONE || budget == 0 {
                return None;
            }
            budget -= 1;
            let found = current;
            current = tasks[current].parent;
            Some(found)
        })
    }

    /// The first allow rule of a section action on resource `r` (`NONE`
    /// for the `_create` actions), in reporting order, explained on `ex`.
    pub(crate) fn rule(&self, action: Action, r: Idx, ex: &mut Explain) -> Option<Reason> {
        let sec = self.sec();
        if !self.agent() {
            // End-users read open wiki pages and nothing else here.
            if action == Action::WikiView && sec.wiki[r].read_groups.is_empty() {
                ex.step(|| {
                    format!(
                        "wiki page {} has no read groups: every user reads it",
                        sec.wiki.id(r)
                    )
                });
                return Some(Reason::Public);
            }
            ex.step(|| {
                format!(
                    "{} is {}: only agents reach this section",
                    self.user.id, self.user.kind
                )
            });
            return None;
        }
        match action {
            Action::ProjectView | Action::ProjectEdit | Action::ProjectDelete => {
                self.project(action, r, ex)
            }
            Action::ProjectCreate => self.anywhere(Flag::PM, ex).then_some(Reason::GroupFlag),
            Action::TaskView | Action::TaskEdit => self.task(action, r, ex),
            Action::WikiView | Action::WikiEdit => self.wiki(action, r, ex),
            Action::WikiManage => self.anywhere(Flag::WM, ex).then_some(Reason::GroupFlag),
            Action::InventoryView | Action::InventoryEdit | Action::InventoryDelete => {
                self.item(action, r, ex)
            }
            Action::InventoryCreate => self.anywhere(Flag::VW, ex).then_some(Reason::GroupFlag),
            Action::InvoiceView | Action::InvoiceEdit | Action::InvoiceDelete => {
                self.invoice(action, r, ex)
            }
            Action::LeadView | Action::LeadEdit => self.lead(action, r, ex),
            Action::LeadCreate => self.anywhere(Flag::CLW, ex).then_some(Reason::GroupFlag),
            Action::AgendaView | Action::AgendaEdit | Action::AgendaDelete => {
                self.event(action, r, ex)
            }
            Action::DownloadView | Action::DownloadEdit | Action::DownloadDelete => {
                self.download(action, r, ex)
            }
            Action::UserManage => self.user_manage(r, ex),
            _ => None,
        }
    }

    fn project(&self, action: Action, p: Idx, ex: &mut Explain) -> Option<Reason> {
        let (me, row) = (self.uidx, &self.sec().projects[p]);
        if row.owner == me {
            ex.step(|| format!("{} owns project {}", self.user.id, row.id));
            return Some(Reason::Owner);
        }
        if holds(&row.managers, me) {
            ex.step(|| format!("{} is a manager of project {}", self.user.id, row.id));
            return Some(Reason::Role);
        }
        if action == Action::ProjectView && holds(&row.members, me) {
            ex.step(|| format!("{} is a member of project {}", self.user.id, row.id));
            if self.anywhere(Flag::PR, ex) {
                return Some(Reason::Role);
            }
        }
        ex.step(|| {
            format!(
                "{} neither owns nor manages project {}",
                self.user.id, row.id
            )
        });
        None
    }

    fn task(&self, action: Action, t: Idx, ex: &mut Explain) -> Option<Reason> {
        let sec = self.sec();
        let (me, row) = (self.uidx, &sec.tasks[t]);
        let project = &sec.projects[row.project];
        if project.owner == me {
            ex.step(|| {
                format!(
                    "{} owns project {}, the project of task {}",
                    self.user.id, project.id, row.id
                )
            });
            return Some(Reason::Owner);
        }
        if holds(&project.managers, me) {
            ex.step(|| {
                format!(
                    "{} is a manager of project {}, the project of task {}",
                    self.user.id, project.id, row.id
                )
            });
            return Some(Reason::Role);
        }
        let relation = |a: Idx| {
            if a == t {
                format!("task {}", row.id)
            } else {
                format!("task {}, an ancestor of {}", sec.tasks.id(a), row.id)
            }
        };
        // The chain lists answer; the walk only names the task for the
        // explanation.
        let nearest = |list: fn(&TaskRow) -> &IdxList| {
            self.task_chain(t)
                .find(|&a| holds(list(&sec.tasks[a]), me))
                .unwrap_or(t)
        };
        if holds(&row.chain_managers, me) {
            ex.step(|| {
                let a = nearest(|r| &r.managers);
                format!("{} is a manager of {}", self.user.id, relation(a))
            });
            return Some(Reason::Role);
        }
        if action != Action::TaskView {
            ex.step(|| {
                format!(
                    "{} manages neither project {} nor task {} or its ancestors",
                    self.user.id, project.id, row.id
                )
            });
            return None;
        }
        if self.project(Action::ProjectView, row.project, ex).is_some() {
            ex.step(|| {
                format!(
                    "{} may view project {}, so its tasks",
                    self.user.id, project.id
                )
            });
            return Some(Reason::Role);
        }
        if holds(&row.chain_members, me) {
            ex.step(|| {
                let a = nearest(|r| &r.members);
                format!("{} is a member of {}", self.user.id, relation(a))
            });
            if self.anywhere(Flag::PR, ex) {
                return Some(Reason::Role);
            }
        }
        None
    }

    fn wiki(&self, action: Action, w: Idx, ex: &mut Explain) -> Option<Reason> {
        let row = &self.sec().wiki[w];
        let (flag, groups, list) = if action == Action::WikiView {
            if row.read_groups.is_empty() {
                ex.step(|| {
                    format!(
                        "wiki page {} has no read groups: every user reads it",
                        row.id
                    )
                });
                return Some(Reason::Public);
            }
            (Flag::WR, &row.read_groups, "read")
        } else {
            (Flag::WW, &row.write_groups, "write")
        };
        if !self.anywhere(flag, ex) {
            return None;
        }
        if groups.is_empty() {
            ex.step(|| {
                format!(
                    "wiki page {} has no write groups: every writer writes it",
                    row.id
                )
            });
            return Some(Reason::Public);
        }
        match self.belongs_to_any(groups) {
            Some(g) => {
                ex.step(|| {
                    format!(
                        "{} belongs to group {}, a {list} group of wiki page {}",
                        self.user.id,
                        group_name(self.snap, g),
                        row.id
                    )
                });
                Some(Reason::GroupMember)
            }
            None => {
                ex.step(|| {
                    format!(
                        "{} belongs to none of the {list} groups of wiki page {}",
                        self.user.id, row.id
                    )
                });
                None
            }
        }
    }

    fn item(&self, action: Action, i: Idx, ex: &mut Explain) -> Option<Reason> {
        let flag = match action {
            Action::InventoryView => Flag::VR,
            Action::InventoryEdit => Flag::VW,
            _ => Flag::VM,
        };
        if !self.anywhere(flag, ex) {
            return None;
        }
        let (me, row) = (self.uidx, &self.sec().items[i]);
        if row.owner == me {
            ex.step(|| format!("{} owns inventory item {}", self.user.id, row.id));
            return Some(Reason::Owner);
        }
        if row.public {
            ex.step(|| format!("inventory item {} is public", row.id));
            return Some(Reason::Public);
        }
        if self.user.company != NONE && holds(&row.companies, self.user.company) {
            ex.step(|| {
                format!(
                    "inventory item {} belongs to company {}, the user's company",
                    row.id,
                    self.snap.companies.id(self.user.company)
                )
            });
            return Some(Reason::Company);
        }
        if holds(&row.users, me) {
            ex.step(|| {
                format!(
                    "inventory item {} is associated with {}",
                    row.id, self.user.id
                )
            });
            return Some(Reason::Associated);
        }
        ex.step(|| {
            format!(
                "inventory item {} is not {}'s, not public, not of its company, not associated with it",
                row.id, self.user.id
            )
        });
        None
    }

    fn reaches(&self, company: Idx, ex: &mut Explain) -> bool {
        let c = self.snap.companies.id(company);
        if in_reach(self.snap, self.uidx, self.user, company) {
            ex.step(|| {
                format!("{c} is within the user's company or a company it owns, or below one")
            });
            true
        } else {
            ex.step(|| format!("{c} is outside the user's company tree and owned companies"));
            false
        }
    }

    fn invoice(&self, action: Action, v: Idx, ex: &mut Explain) -> Option<Reason> {
        let flag = match action {
            Action::InvoiceView => Flag::CIR,
            Action::InvoiceEdit => Flag::CIW,
            _ => Flag::CIM,
        };
        let row = &self.sec().invoices[v];
        (self.anywhere(flag, ex) && self.reaches(row.company, ex)).then_some(Reason::Company)
    }

    fn lead(&self, action: Action, l: Idx, ex: &mut Explain) -> Option<Reason> {
        let row = &self.sec().leads[l];
        if action == Action::LeadView {
            if !self.anywhere(Flag::CLR, ex) {
                return None;
            }
            if row.company == NONE {
                ex.step(|| format!("lead {} has no company", row.id));
                return Some(Reason::Public);
            }
            return self.reaches(row.company, ex).then_some(Reason::Company);
        }
        if row.company != NONE && !self.reaches(row.company, ex) {
            return None;
        }
        if row.owner == self.uidx {
            ex.step(|| format!("{} owns lead {}", self.user.id, row.id));
            if self.anywhere(Flag::CLW, ex) {
                return Some(Reason::Owner);
            }
        }
        self.anywhere(Flag::CLM, ex).then_some(Reason::GroupFlag)
    }

    fn event(&self, action: Action, e: Idx, ex: &mut Explain) -> Option<Reason> {
        let (me, row) = (self.uidx, &self.sec().events[e]);
        if action == Action::AgendaDelete {
            if row.owner == me {
                ex.step(|| format!("{} owns agenda event {}", self.user.id, row.id));
                if self.anywhere(Flag::AW, ex) {
                    return Some(Reason::Owner);
                }
            }
            if self.anywhere(Flag::AM, ex) && self.event(Action::AgendaView, e, ex).is_some() {
                return Some(Reason::GroupFlag);
            }
            return None;
        }
        let flag = if action == Action::AgendaView {
            Flag::AR
        } else {
            Flag::AW
        };
        if !self.anywhere(flag, ex) {
            return None;
        }
        if row.owner == me {
            ex.step(|| format!("{} owns agenda event {}", self.user.id, row.id));
            return Some(Reason::Owner);
        }
        if row.public {
            ex.step(|| format!("agenda event {} is public", row.id));
            return Some(Reason::Public);
        }
        if let Some(g) = self.belongs_to_any(&row.groups) {
            ex.step(|| {
                format!(
                    "{} belongs to group {}, a group of agenda event {}",
                    self.user.id,
                    group_name(self.snap, g),
                    row.id
                )
            });
            return Some(Reason::GroupMember);
        }
        ex.step(|| {
            format!(
                "agenda event {} is not {}'s, not public, and none of its groups is the user's",
                row.id, self.user.id
            )
        });
        None
    }

    fn download(&self, action: Action, d: Idx, ex: &mut Explain) -> Option<Reason> {
        let flag = match action {
            Action::DownloadView => Flag::FRR,
            Action::DownloadEdit => Flag::FRW,
            _ => Flag::FRM,
        };
        let sec = self.sec();
        let row = &sec.downloads[d];
        let category = &sec.categories[row.category];
        if let Some(&g) = category
            .groups
            .iter()
            .find(|&&g| flags_on(self.snap, self.user, g).contains(flag))
        {
            ex.step(|| {
                format!(
                    "flag {flag} on group {}, a group of download category {}",
                    group_name(self.snap, g),
                    category.id
                )
            });
            return Some(Reason::GroupFlag);
        }
        if category.groups.is_empty() {
            ex.step(|| format!("download category {} has no groups", category.id));
            return self.anywhere(flag, ex).then_some(Reason::Public);
        }
        ex.step(|| {
            format!(
                "no group of download category {} gives {} flag {flag}",
                category.id, self.user.id
            )
        });
        None
    }

    fn user_manage(&self, target: Idx, ex: &mut Explain) -> Option<Reason> {
        let x = &self.snap.users[target];
        if x.kind == UserKind::Superadmin {
            ex.step(|| format!("{} is a superadmin: only a superadmin manages one", x.id));
            return None;
        }
        self.anywhere(Flag::UM, ex).then_some(Reason::GroupFlag)
    }
}

/// Decides a section action for a user past the prelude (known, not
/// suspended, not a superadmin), on resource `r` (`NONE` for `_create`).
pub(crate) fn decide(asker: &Asker<'_>, action: Action, r: Idx, mut ex: Explain) -> Decision {
    match asker.rule(action, r, &mut ex) {
        Some(reason) => ex.finish(true, reason, None),
        None => ex.finish(false, Reason::NoMatchingRule, None),
    }
}

/// A source of candidate handles: an index list (in id order), or a list
/// gathered for the question (ordered by id when it becomes a stream).
enum Source<'s> {
    Seq(&'s SortedSeq<Idx>),
    Owned(Vec<Idx>),
}

/// A source as a stream of `table`'s handles in id order, after `after`.
fn stream<'s, R: Keyed>(
    source: Source<'s>,
    table: &'s Table<R>,
    after: Option<&'s str>,
) -> Stream<'s> {
    match source {
        Source::Seq(seq) => Box::new(from_after(seq, table, after).copied()),
        Source::Owned(mut list) => {
            list.sort_unstable_by(|a, b| table.id(*a).cmp(table.id(*b)));
            Box::new(
                list.into_iter()
                    .filter(move |h| after.is_none_or(|a| table.id(*h) > a)),
            )
        }
    }
}

impl<'s> Asker<'s> {
    /// Groups the user belongs to, by the snapshot's handles: `None` when a
    /// grant on `*` makes it every group. With `flag`, only grants whose
    /// profile holds it (the groups where F ∈ flags(U, G)).
    fn groups_belonged(&self, flag: Option<Flag>) -> Option<Vec<Idx>> {
        let mut out = Vec::new();
        for grant in &self.user.grants {
            if flag.is_some_and(|f| !self.snap.profiles[grant.profile].flags.contains(f)) {
                continue;
            }
            if grant.group == ALL {
                return None;
            }
            if self.snap.groups[grant.group].propagate {
                out.extend(self.snap.group_subtree(grant.group));
            } else {
                out.push(grant.group);
            }
        }
        out.sort_unstable();
        out.dedup();
        Some(out)
    }

    fn by_group(&self, g: Idx) -> Option<&'s crate::snapshot::sections::GroupSections> {
        self.sec()
            .by_group
            .get(self.snap.groups.id(g))
            .map(|(_, r)| r)
    }

    fn by_company(&self, c: Idx) -> Option<&'s crate::snapshot::sections::CompanySections> {
        self.sec()
            .by_company
            .get(self.snap.companies.id(c))
            .map(|(_, r)| r)
    }

    /// Companies in reach(U) that hold section resources.
    fn reached_companies(&self) -> Vec<&'s crate::snapshot::sections::CompanySections> {
        let snap = self.snap;
        (0..snap.companies.len())
            .filter_map(|c| Idx::try_from(c).ok())
            .filter(|&c| snap.companies.lookup(snap.companies.id(c)) == Some(c))
            .filter(|&c| in_reach(snap, self.uidx, self.user, c))
            .filter_map(|c| self.by_company(c))
            .collect()
    }

    /// The candidate sources of a kind's list: every resource the view
    /// rules could allow, from the indexes (a superset; each is checked).
    fn sources(&self, kind: ResourceKind) -> Vec<Source<'s>> {
        let sec = self.sec();
        let mine = sec.by_user.get(&self.user.id).map(|(_, r)| r);
        let mut out = Vec::new();
        if kind == ResourceKind::WikiPage {
            out.push(Source::Seq(&sec.open_wiki));
        }
        if !self.agent() {
            return out;
        }
        let has = |f: Flag| has_flag_anywhere(self.snap, self.user, f);
        match kind {
            ResourceKind::Project => out.extend(mine.map(|m| Source::Seq(&m.projects))),
            ResourceKind::Task => {
                if let Some(m) = mine {
                    for p in m.projects.iter() {
                        out.push(Source::Seq(&sec.projects[*p].tasks));
                    }
                    // Member of a task: it and its subtasks.
                    let mut subtree: Vec<Idx> = m.tasks.iter().copied().collect();
                    let mut next = 0;
                    while let Some(&t) = subtree.get(next) {
                        subtree.extend(sec.tasks[t].children.iter().copied());
                        next += 1;
                        if next > sec.tasks.len() {
                            break;
                        }
                    }
                    subtree.sort_unstable();
                    subtree.dedup();
                    out.push(Source::Owned(subtree));
                }
            }
            ResourceKind::WikiPage if has(Flag::WR) => match self.groups_belonged(None) {
                None => out.push(Source::Seq(&sec.grouped_wiki)),
                Some(groups) => {
                    for g in groups {
                        out.extend(self.by_group(g).map(|r| Source::Seq(&r.wiki_read)));
                    }
                }
            },
            ResourceKind::InventoryItem if has(Flag::VR) => {
                out.push(Source::Seq(&sec.public_items));
                if let Some(m) = mine {
                    out.push(Source::Seq(&m.items_owned));
                    out.push(Source::Seq(&m.items_associated));
                }
                if self.user.company != NONE {
                    out.extend(
                        self.by_company(self.user.company)
                            .map(|c| Source::Seq(&c.items)),
                    );
                }
            }
            ResourceKind::Invoice if has(Flag::CIR) => {
                for c in self.reached_companies() {
                    out.push(Source::Seq(&c.invoices));
                }
            }
            ResourceKind::Lead if has(Flag::CLR) => {
                out.push(Source::Seq(&sec.open_leads));
                for c in self.reached_companies() {
                    out.push(Source::Seq(&c.leads));
                }
            }
            ResourceKind::AgendaEvent if has(Flag::AR) => {
                out.push(Source::Seq(&sec.public_events));
                if let Some(m) = mine {
                    out.push(Source::Seq(&m.events_owned));
                }
                match self.groups_belonged(None) {
                    None => out.push(Source::Seq(&sec.grouped_events)),
                    Some(groups) => {
                        for g in groups {
                            out.extend(self.by_group(g).map(|r| Source::Seq(&r.events)));
                        }
                    }
                }
            }
            ResourceKind::Download if has(Flag::FRR) => {
                let mut categories: Vec<Idx> = sec.open_categories.iter().copied().collect();
                match self.groups_belonged(Some(Flag::FRR)) {
                    None => categories.extend(sec.grouped_categories.iter().copied()),
                    Some(groups) => {
                        for g in groups {
                            if let Some(r) = self.by_group(g) {
                                categories.extend(r.categories.iter().copied());
                            }
                        }
                    }
                }
                categories.sort_unstable();
                categories.dedup();
                for c in categories {
                    out.push(Source::Seq(&sec.categories[c].downloads));
                }
            }
            _ => {}
        }
        out
    }
}

/// The resources of `kind` that `user_id` may view, ascending by id,
/// after the id `after`, at most `limit`; and whether more follow. An
/// unknown or suspended user sees none.
pub fn visible_resources_after(
    snap: &Snapshot,
    user_id: &str,
    kind: ResourceKind,
    after: Option<&str>,
    limit: usize,
) -> (Vec<String>, bool) {
    let Some((uidx, user)) = snap.users.get(user_id) else {
        return (Vec::new(), false);
    };
    if user.suspended {
        return (Vec::new(), false);
    }
    let limit = limit.max(1);
    let sec = &snap.sections;
    let asker = Asker { snap, uidx, user };
    let view = view_action(kind);
    macro_rules! list {
        ($table:expr) => {{
            let table = $table;
            if user.kind == UserKind::Superadmin {
                take_page(
                    table,
                    from_after(sec.every(kind), table, after).copied(),
                    limit,
                )
            } else {
                let streams = asker
                    .sources(kind)
                    .into_iter()
                    .map(|s| stream(s, table, after))
                    .collect();
                let visible = Merge::new(table, streams)
                    .filter(|&r| asker.rule(view, r, &mut Explain::new(false)).is_some());
                take_page(table, visible, limit)
            }
        }};
    }
    match kind {
        ResourceKind::Project => list!(&sec.projects),
        ResourceKind::Task => list!(&sec.tasks),
        ResourceKind::WikiPage => list!(&sec.wiki),
        ResourceKind::InventoryItem => list!(&sec.items),
        ResourceKind::Invoice => list!(&sec.invoices),
        ResourceKind::Lead => list!(&sec.leads),
        ResourceKind::AgendaEvent => list!(&sec.events),
        ResourceKind::Download => list!(&sec.downloads),
    }
}

/// The page of visible resources a cursor from [`PageCursor::resources`]
/// (for the same user and kind) names.
pub fn visible_resources_page(
    snap: &Snapshot,
    user_id: &str,
    kind: ResourceKind,
    cursor: &PageCursor,
) -> Page {
    let (ids, more) = visible_resources_after(snap, user_id, kind, cursor.after(), cursor.limit());
    cursor.page(ids, more)
}

/// One page of the resources of a kind a user may view
/// (`ListVisibleResources`).
pub fn list_visible_resources(
    snap: &Snapshot,
    user_id: &str,
    kind: ResourceKind,
    page_size: u32,
    page_token: &str,
) -> Result<Page, ListError> {
    let cursor = PageCursor::resources(user_id, kind, page_size, page_token)?;
    Ok(visible_resources_page(snap, user_id, kind, &cursor))
}

/// Whether `user_id` may do a section action on `resource_id`, by the
/// rules, without validation or explanation; unknown ids are denied. For
/// the list properties.
pub fn allows(snap: &Snapshot, user_id: &str, action: Action, resource_id: &str) -> bool {
    let Some((uidx, user)) = snap.users.get(user_id) else {
        return false;
    };
    let r = if action.needs_resource() {
        match lookup(snap, action, resource_id) {
            Some(r) => r,
            None => return false,
        }
    } else {
        NONE
    };
    if user.suspended {
        return false;
    }
    user.kind == UserKind::Superadmin
        || (Asker { snap, uidx, user })
            .rule(action, r, &mut Explain::new(false))
            .is_some()
}
