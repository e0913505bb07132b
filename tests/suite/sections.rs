//! The service-desk sections of access model §8: each rule and each
//! "decided here" line, request validation of `resource_id`, the dataset's
//! section checks, and the visible-resource lists held to the `_view`
//! checks on generated data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use ticket_authz::core::{self, Action, Context, Reason};
use ticket_authz::dataset;
use ticket_authz::flags::{FLAG_NAMES, Flag};
use ticket_authz::model::{
    AgendaEvent, Company, Dataset, Download, DownloadCategory, Grant, GrantScope, Group,
    InventoryItem, Invoice, Lead, MemberRole, Profile, Project, ResourceKind, SectionMember, Task,
    User, UserKind, WikiPage,
};
use ticket_authz::snapshot::Snapshot;

const DESK: &str = r#"
companies:
  - { id: holding, name: Holding }
  - { id: branch, name: Branch, parent: holding }
  - { id: shop, name: Shop, parent: branch }
  - { id: rival, name: Rival }
  - { id: owned, name: Owned, owner: oto }
  - { id: owned-kid, name: Owned kid, parent: owned }
groups:
  - { id: top, name: Top, propagate: true }
  - { id: mid, name: Mid, parent: top }
  - { id: flat, name: Flat }
  - { id: flat-kid, name: Flat kid, parent: flat }
profiles:
  - { id: pr, name: PR, flags: [PR] }
  - { id: pm, name: PM, flags: [PM] }
  - { id: none, name: None, flags: [] }
  - { id: wr, name: WR, flags: [WR] }
  - { id: ww, name: WW, flags: [WW] }
  - { id: wm, name: WM, flags: [WM] }
  - { id: vr, name: VR, flags: [VR] }
  - { id: vall, name: V, flags: [VR, VW, VM] }
  - { id: ci, name: CI, flags: [CIR, CIW] }
  - { id: cim, name: CIM, flags: [CIM] }
  - { id: clr, name: CLR, flags: [CLR] }
  - { id: clw, name: CLW, flags: [CLR, CLW] }
  - { id: clm, name: CLM, flags: [CLR, CLM] }
  - { id: ar, name: AR, flags: [AR] }
  - { id: aw, name: AW, flags: [AR, AW] }
  - { id: am, name: AM, flags: [AR, AM] }
  - { id: amonly, name: AM only, flags: [AM] }
  - { id: frr, name: FRR, flags: [FRR] }
  - { id: um, name: UM, flags: [UM] }
users:
  - { id: root, created_at: 2025-01-01T00:00:00Z, kind: superadmin }
  - { id: root2, created_at: 2025-01-01T00:00:00Z, kind: superadmin }
  - { id: own, created_at: 2025-01-01T00:00:00Z, kind: agent }
  - { id: mgr, created_at: 2025-01-01T00:00:00Z, kind: agent }
  - { id: mem, created_at: 2025-01-01T00:00:00Z, kind: agent, grants: [ { profile: pr, group: flat } ] }
  - { id: bare, created_at: 2025-01-01T00:00:00Z, kind: agent, grants: [ { profile: none, group: top } ] }
  - { id: pm, created_at: 2025-01-01T00:00:00Z, kind: agent, grants: [ { profile: pm, group: flat-kid } ] }
  - { id: eu, created_at: 2025-01-01T00:00:00Z, kind: end_user, company: branch,
      grants: [ { profile: vall, group: "*" }, { profile: pr, group: "*" }, { profile: wr, group: "*" } ] }
  - { id: susp, created_at: 2025-01-01T00:00:00Z, kind: agent, suspended: true, grants: [ { profile: pm, group: "*" } ] }
  - { id: wread, created_at: 2025-01-01T00:00:00Z, kind: agent, grants: [ { profile: wr, group: top } ] }
  - { id: wreadflat, created_at: 2025-01-01T00:00:00Z, kind: agent,
      grants: [ { profile: wr, group: flat }, { profile: ww, group: flat } ] }
  - { id: wall, created_at: 2025-01-01T00:00:00Z, kind: agent, grants: [ { profile: wr, group: "*" } ] }
  - { id: wwrite, created_at: 2025-01-01T00:00:00Z, kind: agent, grants: [ { profile: ww, group: mid } ] }
  - { id: wbelong, created_at: 2025-01-01T00:00:00Z, kind: agent,
      grants: [ { profile: ww, group: mid }, { profile: none, group: flat } ] }
  - { id: wman, created_at: 2025-01-01T00:00:00Z, kind: agent, grants: [ { profile: wm, group: flat } ] }
  - { id: inv, created_at: 2025-01-01T00:00:00Z, kind: agent, company: branch, company_scoped: true,
      grants: [ { profile: vr, group: flat } ] }
  - { id: noflag, created_at: 2025-01-01T00:00:00Z, kind: agent, company: branch }
  - { id: fin, created_at: 2025-01-01T00:00:00Z, kind: agent, company: branch, grants: [ { profile: ci, group: flat } ] }
  - { id: finm, created_at: 2025-01-01T00:00:00Z, kind: agent, company: holding, grants: [ { profile: cim, group: flat } ] }
  - { id: oto, created_at: 2025-01-01T00:00:00Z, kind: agent, grants: [ { profile: ci, group: flat }, { profile: clw, group: flat } ] }
  - { id: seller, created_at: 2025-01-01T00:00:00Z, kind: agent, company: branch, grants: [ { profile: clw, group: flat } ] }
  - { id: reader, created_at: 2025-01-01T00:00:00Z, kind: agent, company: branch, grants: [ { profile: clr, group: flat } ] }
  - { id: boss, created_at: 2025-01-01T00:00:00Z, kind: agent, company: branch, grants: [ { profile: clm, group: flat } ] }
  - { id: cal, created_at: 2025-01-01T00:00:00Z, kind: agent, grants: [ { profile: ar, group: mid } ] }
  - { id: calw, created_at: 2025-01-01T00:00:00Z, kind: agent, grants: [ { profile: aw, group: flat } ] }
  - { id: calm, created_at: 2025-01-01T00:00:00Z, kind: agent, grants: [ { profile: am, group: flat } ] }
  - { id: amonly, created_at: 2025-01-01T00:00:00Z, kind: agent, grants: [ { profile: amonly, group: top } ] }
  - { id: files, created_at: 2025-01-01T00:00:00Z, kind: agent, grants: [ { profile: frr, group: top } ] }
  - { id: filesflat, created_at: 2025-01-01T00:00:00Z, kind: agent, grants: [ { profile: frr, group: flat } ] }
  - { id: adm, created_at: 2025-01-01T00:00:00Z, kind: agent, grants: [ { profile: um, group: flat } ] }
projects:
  - { id: p1, name: P1, owner: own,
      members: [ { user: mgr, role: manager }, { user: mem }, { user: bare, role: member }, { user: eu, role: manager } ] }
  - { id: p2, name: P2 }
tasks:
  - { id: t1, name: T1, project: p1 }
  - { id: t2, name: T2, project: p1, parent: t1, members: [ { user: bare, role: manager } ] }
  - { id: t3, name: T3, project: p1, parent: t2, members: [ { user: fin, role: member } ] }
  - { id: t4, name: T4, project: p2, members: [ { user: mem, role: member }, { user: bare, role: member } ] }
  - { id: t5, name: T5, project: p2, parent: t4 }
wiki_pages:
  - { id: open, name: Open }
  - { id: mid-only, name: Mid only, read_groups: [mid], write_groups: [mid] }
  - { id: flat-kid-only, name: Flat kid, read_groups: [flat-kid], write_groups: [flat-kid] }
  - { id: read-flat, name: Read flat, read_groups: [flat] }
inventory_items:
  - { id: i-owned, name: Owned, owner: inv, public: true }
  - { id: i-public, name: Public, public: true, companies: [branch] }
  - { id: i-branch, name: Branch, companies: [branch], users: [inv] }
  - { id: i-holding, name: Holding, companies: [holding] }
  - { id: i-assoc, name: Assoc, users: [inv] }
  - { id: i-none, name: None }
invoices:
  - { id: v-branch, company: branch }
  - { id: v-shop, company: shop }
  - { id: v-holding, company: holding }
  - { id: v-owned, company: owned-kid }
leads:
  - { id: l-open, name: Open }
  - { id: l-open-mine, name: Open mine, owner: seller }
  - { id: l-shop, name: Shop, company: shop, owner: seller }
  - { id: l-shop-other, name: Shop other, company: shop, owner: reader }
  - { id: l-rival, name: Rival, company: rival, owner: seller }
agenda_events:
  - { id: e-mine, name: Mine, owner: calw }
  - { id: e-public, name: Public, public: true }
  - { id: e-mid, name: Mid, groups: [mid] }
  - { id: e-top, name: Top, groups: [top] }
  - { id: e-flat, name: Flat, groups: [flat] }
  - { id: e-private, name: Private, owner: cal }
download_categories:
  - { id: c-mid, name: Mid, groups: [mid] }
  - { id: c-flat-kid, name: Flat kid, groups: [flat-kid] }
  - { id: c-open, name: Open }
downloads:
  - { id: d-mid, name: a, category: c-mid }
  - { id: d-flat-kid, name: b, category: c-flat-kid }
  - { id: d-open, name: c, category: c-open }
"#;

fn desk() -> Snapshot {
    common::snapshot(DESK)
}

/// (allowed, reason) of a section check with `resource_id`.
fn on(snap: &Snapshot, user: &str, action: Action, resource: &str) -> (bool, Reason) {
    let d = common::decide(snap, common::ask(user, action, &[("resource", resource)]))
        .unwrap_or_else(|e| panic!("{user} {action} {resource}: {e}"));
    (d.allowed, d.reason)
}

fn allow(reason: Reason) -> (bool, Reason) {
    (true, reason)
}

const DENY: (bool, Reason) = (false, Reason::NoMatchingRule);

#[test]
fn the_prelude_applies_in_its_order() {
    let s = desk();
    assert_eq!(
        on(&s, "nobody", Action::ProjectView, "p1"),
        (false, Reason::UnknownUser)
    );
    for action in Action::ALL.into_iter().filter(|a| a.needs_resource()) {
        assert_eq!(
            on(&s, "mem", action, "no-such-thing"),
            (false, Reason::UnknownResource),
            "{action}"
        );
        // An unknown resource is reported before suspension.
        assert_eq!(
            on(&s, "susp", action, "no-such-thing"),
            (false, Reason::UnknownResource),
            "{action}"
        );
    }
    // Ids of another kind are unknown: a task id is no project.
    assert_eq!(
        on(&s, "own", Action::ProjectView, "t1"),
        (false, Reason::UnknownResource)
    );
    assert_eq!(
        on(&s, "susp", Action::ProjectView, "p1"),
        (false, Reason::Suspended)
    );
    assert_eq!(
        on(&s, "susp", Action::ProjectCreate, ""),
        (false, Reason::Suspended)
    );
    assert_eq!(
        on(&s, "root", Action::InvoiceDelete, "v-branch"),
        allow(Reason::Superadmin)
    );
    assert_eq!(
        on(&s, "root", Action::LeadCreate, ""),
        allow(Reason::Superadmin)
    );
}

#[test]
fn resource_id_is_validated_with_the_other_ids() {
    let s = desk();
    let long = "x".repeat(129);
    let err = |req| common::decide(&s, req).unwrap_err();
    for action in Action::ALL.into_iter().filter(|a| a.is_section_action()) {
        let e = err(common::ask("mem", action, &[("resource", &long)]));
        assert_eq!(e.field(), "resource_id", "{action}");
        if action.needs_resource() {
            let e = err(common::ask("mem", action, &[]));
            assert_eq!(e.field(), "resource_id", "{action}");
            assert!(e.to_string().contains("required"), "{e}");
        } else {
            // The `_create` actions ignore its value.
            assert!(
                common::decide(&s, common::ask("mem", action, &[("resource", "anything")])).is_ok()
            );
        }
    }
    // Its length is checked with the other ids, its absence after them.
    let long_company = common::ask("mem", Action::ProjectView, &[("company", &long)]);
    assert_eq!(err(long_company).field(), "company_id");
    let both = common::ask(
        "mem",
        Action::ProjectView,
        &[("company", &long), ("resource", &long)],
    );
    assert_eq!(err(both).field(), "company_id");
    let long_res_missing = common::ask("mem", Action::CompanyView, &[("resource", &long)]);
    assert_eq!(err(long_res_missing).field(), "company_id");
    // The actions of §3 ignore it whatever it holds.
    let ticketless = common::ask(
        "mem",
        Action::CompanyView,
        &[("company", "branch"), ("resource", &long)],
    );
    assert!(common::decide(&s, ticketless).is_ok());
}

#[test]
fn projects() {
    let s = desk();
    assert_eq!(
        on(&s, "own", Action::ProjectView, "p1"),
        allow(Reason::Owner)
    );
    // Project owners count as managers (decided here).
    assert_eq!(
        on(&s, "own", Action::ProjectEdit, "p1"),
        allow(Reason::Owner)
    );
    assert_eq!(
        on(&s, "own", Action::ProjectDelete, "p1"),
        allow(Reason::Owner)
    );
    assert_eq!(
        on(&s, "mgr", Action::ProjectView, "p1"),
        allow(Reason::Role)
    );
    assert_eq!(
        on(&s, "mgr", Action::ProjectEdit, "p1"),
        allow(Reason::Role)
    );
    assert_eq!(
        on(&s, "mem", Action::ProjectView, "p1"),
        allow(Reason::Role)
    );
    assert_eq!(on(&s, "mem", Action::ProjectEdit, "p1"), DENY);
    assert_eq!(on(&s, "mem", Action::ProjectDelete, "p1"), DENY);
    // A member without PR anywhere does not view.
    assert_eq!(on(&s, "bare", Action::ProjectView, "p1"), DENY);
    assert_eq!(on(&s, "mem", Action::ProjectView, "p2"), DENY);
    // PM anywhere creates (decided here); nothing else does.
    assert_eq!(
        on(&s, "pm", Action::ProjectCreate, ""),
        allow(Reason::GroupFlag)
    );
    assert_eq!(on(&s, "pm", Action::ProjectEdit, "p2"), DENY);
    assert_eq!(on(&s, "own", Action::ProjectCreate, ""), DENY);
    // End-users get nothing of projects, even as a manager with PR (decided here).
    assert_eq!(on(&s, "eu", Action::ProjectView, "p1"), DENY);
    assert_eq!(on(&s, "eu", Action::ProjectEdit, "p1"), DENY);
}

#[test]
fn tasks_inherit_from_their_ancestors_and_project() {
    let s = desk();
    assert_eq!(on(&s, "own", Action::TaskEdit, "t3"), allow(Reason::Owner));
    assert_eq!(on(&s, "own", Action::TaskView, "t3"), allow(Reason::Owner));
    assert_eq!(on(&s, "mgr", Action::TaskEdit, "t3"), allow(Reason::Role));
    // bare manages t2, so t2 and its subtask t3, not its parent t1.
    assert_eq!(on(&s, "bare", Action::TaskEdit, "t2"), allow(Reason::Role));
    assert_eq!(on(&s, "bare", Action::TaskEdit, "t3"), allow(Reason::Role));
    assert_eq!(on(&s, "bare", Action::TaskView, "t3"), allow(Reason::Role));
    assert_eq!(on(&s, "bare", Action::TaskEdit, "t1"), DENY);
    assert_eq!(on(&s, "bare", Action::TaskView, "t1"), DENY);
    // A project viewer views its tasks, edits none.
    assert_eq!(on(&s, "mem", Action::TaskView, "t1"), allow(Reason::Role));
    assert_eq!(on(&s, "mem", Action::TaskEdit, "t1"), DENY);
    // A task member with PR views it and its subtasks; without PR not.
    assert_eq!(on(&s, "mem", Action::TaskView, "t4"), allow(Reason::Role));
    assert_eq!(on(&s, "mem", Action::TaskView, "t5"), allow(Reason::Role));
    assert_eq!(on(&s, "bare", Action::TaskView, "t5"), DENY);
    assert_eq!(on(&s, "fin", Action::TaskView, "t3"), DENY);
    let explained = common::explain(
        &s,
        common::ask("bare", Action::TaskEdit, &[("resource", "t3")]),
    );
    assert!(
        explained
            .explanation
            .iter()
            .any(|l| l.contains("manager of task t2, an ancestor of t3")),
        "{:?}",
        explained.explanation
    );
}

#[test]
fn wiki_pages_are_open_by_default_and_groups_narrow_them() {
    let s = desk();
    // An empty read list lets every user read, end-users too (decided here).
    assert_eq!(
        on(&s, "eu", Action::WikiView, "open"),
        allow(Reason::Public)
    );
    assert_eq!(
        on(&s, "bare", Action::WikiView, "open"),
        allow(Reason::Public)
    );
    // Writing always needs WW.
    assert_eq!(on(&s, "eu", Action::WikiEdit, "open"), DENY);
    assert_eq!(on(&s, "bare", Action::WikiEdit, "open"), DENY);
    assert_eq!(
        on(&s, "wwrite", Action::WikiEdit, "open"),
        allow(Reason::Public)
    );
    // Belonging through a propagating ancestor, WR anywhere.
    assert_eq!(
        on(&s, "wread", Action::WikiView, "mid-only"),
        allow(Reason::GroupMember)
    );
    assert_eq!(
        on(&s, "wall", Action::WikiView, "flat-kid-only"),
        allow(Reason::GroupMember)
    );
    // flat does not propagate: no reach into flat-kid.
    assert_eq!(on(&s, "wreadflat", Action::WikiView, "flat-kid-only"), DENY);
    assert_eq!(
        on(&s, "wreadflat", Action::WikiView, "read-flat"),
        allow(Reason::GroupMember)
    );
    // Belonging without WR is not enough; end-users never belong.
    assert_eq!(on(&s, "bare", Action::WikiView, "mid-only"), DENY);
    assert_eq!(on(&s, "eu", Action::WikiView, "read-flat"), DENY);
    // Writing: WW anywhere and membership of a write group; read groups play no part.
    assert_eq!(
        on(&s, "wwrite", Action::WikiEdit, "mid-only"),
        allow(Reason::GroupMember)
    );
    assert_eq!(on(&s, "wwrite", Action::WikiEdit, "flat-kid-only"), DENY);
    assert_eq!(
        on(&s, "wbelong", Action::WikiEdit, "read-flat"),
        allow(Reason::Public)
    );
    assert_eq!(
        on(&s, "wreadflat", Action::WikiEdit, "read-flat"),
        allow(Reason::Public)
    );
    assert_eq!(
        on(&s, "wman", Action::WikiManage, "mid-only"),
        allow(Reason::GroupFlag)
    );
    assert_eq!(on(&s, "wwrite", Action::WikiManage, "open"), DENY);
}

#[test]
fn inventory() {
    let s = desk();
    // Reported in order: owner, public, company, associated.
    assert_eq!(
        on(&s, "inv", Action::InventoryView, "i-owned"),
        allow(Reason::Owner)
    );
    assert_eq!(
        on(&s, "inv", Action::InventoryView, "i-public"),
        allow(Reason::Public)
    );
    assert_eq!(
        on(&s, "inv", Action::InventoryView, "i-branch"),
        allow(Reason::Company)
    );
    assert_eq!(
        on(&s, "inv", Action::InventoryView, "i-assoc"),
        allow(Reason::Associated)
    );
    // The user's own company, not its parent's items; company scope plays no part.
    assert_eq!(on(&s, "inv", Action::InventoryView, "i-holding"), DENY);
    assert_eq!(on(&s, "inv", Action::InventoryView, "i-none"), DENY);
    // Each action needs its flag, the owner's too.
    assert_eq!(on(&s, "inv", Action::InventoryEdit, "i-owned"), DENY);
    assert_eq!(on(&s, "inv", Action::InventoryDelete, "i-owned"), DENY);
    assert_eq!(on(&s, "noflag", Action::InventoryView, "i-branch"), DENY);
    assert_eq!(on(&s, "inv", Action::InventoryCreate, ""), DENY);
    assert_eq!(on(&s, "eu", Action::InventoryView, "i-public"), DENY);
    assert_eq!(on(&s, "eu", Action::InventoryCreate, ""), DENY);
}

#[test]
fn invoices_follow_company_reach() {
    let s = desk();
    assert_eq!(
        on(&s, "fin", Action::InvoiceView, "v-branch"),
        allow(Reason::Company)
    );
    assert_eq!(
        on(&s, "fin", Action::InvoiceEdit, "v-shop"),
        allow(Reason::Company)
    );
    assert_eq!(on(&s, "fin", Action::InvoiceView, "v-holding"), DENY);
    assert_eq!(on(&s, "fin", Action::InvoiceDelete, "v-branch"), DENY);
    assert_eq!(
        on(&s, "finm", Action::InvoiceDelete, "v-shop"),
        allow(Reason::Company)
    );
    assert_eq!(on(&s, "finm", Action::InvoiceView, "v-shop"), DENY);
    // Owned companies and their descendants are in reach.
    assert_eq!(
        on(&s, "oto", Action::InvoiceView, "v-owned"),
        allow(Reason::Company)
    );
    assert_eq!(on(&s, "oto", Action::InvoiceView, "v-branch"), DENY);
}

#[test]
fn leads() {
    let s = desk();
    // A lead with no company is visible to anyone with CLR (decided here).
    assert_eq!(
        on(&s, "reader", Action::LeadView, "l-open"),
        allow(Reason::Public)
    );
    assert_eq!(
        on(&s, "reader", Action::LeadView, "l-shop"),
        allow(Reason::Company)
    );
    assert_eq!(on(&s, "reader", Action::LeadView, "l-rival"), DENY);
    assert_eq!(on(&s, "noflag", Action::LeadView, "l-open"), DENY);
    // CLW edits one's own leads, CLM anyone's within reach (decided here).
    assert_eq!(
        on(&s, "seller", Action::LeadEdit, "l-shop"),
        allow(Reason::Owner)
    );
    assert_eq!(
        on(&s, "seller", Action::LeadEdit, "l-open-mine"),
        allow(Reason::Owner)
    );
    assert_eq!(on(&s, "seller", Action::LeadEdit, "l-shop-other"), DENY);
    // A lead with no owner needs CLM.
    assert_eq!(on(&s, "seller", Action::LeadEdit, "l-open"), DENY);
    assert_eq!(
        on(&s, "boss", Action::LeadEdit, "l-open"),
        allow(Reason::GroupFlag)
    );
    assert_eq!(
        on(&s, "boss", Action::LeadEdit, "l-shop-other"),
        allow(Reason::GroupFlag)
    );
    // Out of reach: not even one's own, not even with CLM.
    assert_eq!(on(&s, "seller", Action::LeadEdit, "l-rival"), DENY);
    assert_eq!(on(&s, "boss", Action::LeadEdit, "l-rival"), DENY);
    assert_eq!(
        on(&s, "seller", Action::LeadCreate, ""),
        allow(Reason::GroupFlag)
    );
    assert_eq!(on(&s, "reader", Action::LeadCreate, ""), DENY);
}

#[test]
fn agenda() {
    let s = desk();
    assert_eq!(
        on(&s, "calw", Action::AgendaView, "e-mine"),
        allow(Reason::Owner)
    );
    assert_eq!(
        on(&s, "cal", Action::AgendaView, "e-public"),
        allow(Reason::Public)
    );
    assert_eq!(
        on(&s, "cal", Action::AgendaView, "e-mid"),
        allow(Reason::GroupMember)
    );
    // A grant on a child group does not reach its parent.
    assert_eq!(on(&s, "cal", Action::AgendaView, "e-top"), DENY);
    assert_eq!(on(&s, "cal", Action::AgendaView, "e-flat"), DENY);
    assert_eq!(on(&s, "cal", Action::AgendaEdit, "e-private"), DENY);
    assert_eq!(
        on(&s, "calw", Action::AgendaEdit, "e-flat"),
        allow(Reason::GroupMember)
    );
    // The owner deletes with AW; AM deletes anyone's the agent can see (decided here).
    assert_eq!(
        on(&s, "calw", Action::AgendaDelete, "e-mine"),
        allow(Reason::Owner)
    );
    assert_eq!(on(&s, "cal", Action::AgendaDelete, "e-private"), DENY);
    assert_eq!(
        on(&s, "calm", Action::AgendaDelete, "e-flat"),
        allow(Reason::GroupFlag)
    );
    assert_eq!(
        on(&s, "calm", Action::AgendaDelete, "e-public"),
        allow(Reason::GroupFlag)
    );
    assert_eq!(on(&s, "calm", Action::AgendaDelete, "e-top"), DENY);
    assert_eq!(on(&s, "calm", Action::AgendaDelete, "e-mine"), DENY);
    // AM without AR sees nothing, so deletes nothing.
    assert_eq!(on(&s, "amonly", Action::AgendaDelete, "e-top"), DENY);
    assert_eq!(on(&s, "amonly", Action::AgendaDelete, "e-public"), DENY);
}

#[test]
fn downloads() {
    let s = desk();
    assert_eq!(
        on(&s, "files", Action::DownloadView, "d-mid"),
        allow(Reason::GroupFlag)
    );
    assert_eq!(on(&s, "files", Action::DownloadView, "d-flat-kid"), DENY);
    assert_eq!(on(&s, "files", Action::DownloadEdit, "d-mid"), DENY);
    // flat does not propagate to flat-kid.
    assert_eq!(
        on(&s, "filesflat", Action::DownloadView, "d-flat-kid"),
        DENY
    );
    // A category with no groups: anyone with the flag anywhere (decided here).
    assert_eq!(
        on(&s, "filesflat", Action::DownloadView, "d-open"),
        allow(Reason::Public)
    );
    assert_eq!(on(&s, "bare", Action::DownloadView, "d-open"), DENY);
}

#[test]
fn only_a_superadmin_manages_a_superadmin() {
    let s = desk();
    assert_eq!(
        on(&s, "adm", Action::UserManage, "mem"),
        allow(Reason::GroupFlag)
    );
    assert_eq!(
        on(&s, "adm", Action::UserManage, "susp"),
        allow(Reason::GroupFlag)
    );
    assert_eq!(on(&s, "adm", Action::UserManage, "root"), DENY);
    assert_eq!(
        on(&s, "root", Action::UserManage, "root2"),
        allow(Reason::Superadmin)
    );
    assert_eq!(on(&s, "mem", Action::UserManage, "bare"), DENY);
    assert_eq!(
        on(&s, "adm", Action::UserManage, "ghost"),
        (false, Reason::UnknownResource)
    );
}

#[test]
fn end_users_get_only_open_wiki_pages() {
    let s = desk();
    for action in Action::ALL.into_iter().filter(|a| a.is_section_action()) {
        let resource = match action.resource_kind() {
            Some(ResourceKind::Project) => "p1",
            Some(ResourceKind::Task) => "t1",
            Some(ResourceKind::WikiPage) => "open",
            Some(ResourceKind::InventoryItem) => "i-public",
            Some(ResourceKind::Invoice) => "v-branch",
            Some(ResourceKind::Lead) => "l-open",
            Some(ResourceKind::AgendaEvent) => "e-public",
            Some(ResourceKind::Download) => "d-open",
            None => "mem",
        };
        let expected = if action == Action::WikiView {
            allow(Reason::Public)
        } else {
            DENY
        };
        assert_eq!(on(&s, "eu", action, resource), expected, "{action}");
    }
}

fn walk(snap: &Snapshot, user: &str, kind: ResourceKind, size: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = core::list_visible_resources(snap, user, kind, size, &token).unwrap();
        assert!(page.ids.len() <= size.max(1) as usize);
        out.extend(page.ids);
        match page.next_page_token {
            Some(next) => token = next,
            None => return out,
        }
    }
}

#[test]
fn lists_page_and_bind_their_tokens() {
    let s = desk();
    assert_eq!(
        walk(&s, "inv", ResourceKind::InventoryItem, 1),
        ["i-assoc", "i-branch", "i-owned", "i-public"]
    );
    assert_eq!(
        walk(&s, "root", ResourceKind::Task, 2),
        ["t1", "t2", "t3", "t4", "t5"]
    );
    assert_eq!(walk(&s, "eu", ResourceKind::WikiPage, 2), ["open"]);
    assert!(walk(&s, "susp", ResourceKind::Project, 2).is_empty());
    assert!(walk(&s, "ghost", ResourceKind::Project, 2).is_empty());
    let first = core::list_visible_resources(&s, "root", ResourceKind::Task, 2, "").unwrap();
    let token = first.next_page_token.unwrap();
    let other_kind = core::list_visible_resources(&s, "root", ResourceKind::Project, 2, &token);
    assert!(matches!(other_kind, Err(core::ListError::BadToken(_))));
    let other_user = core::list_visible_resources(&s, "root2", ResourceKind::Task, 2, &token);
    assert!(matches!(other_user, Err(core::ListError::BadToken(_))));
    assert!(matches!(
        core::list_visible_resources(&s, "root", ResourceKind::Task, 1001, ""),
        Err(core::ListError::PageTooLarge(1001))
    ));
}

#[test]
fn the_dataset_names_every_section_problem() {
    let base = "users: [ { id: ann, created_at: 2025-01-01T00:00:00Z } ]\n\
                groups: [ { id: g, name: G } ]\n\
                companies: [ { id: c, name: C } ]\n";
    let cases: &[(&str, &str)] = &[
        (
            "projects: [ { id: p, name: P, owner: nobody } ]",
            "project `p`: field owner: unknown user `nobody`",
        ),
        (
            "projects: [ { id: p, name: P, members: [ { user: ann, role: boss } ] } ]",
            "project `p`: field members.role: unknown value `boss`",
        ),
        (
            "projects: [ { id: p, name: P, members: [ { user: ann }, { user: ann, role: manager } ] } ]",
            "project `p`: field members.user: `ann` is listed twice",
        ),
        (
            "projects: [ { id: p, name: P }, { id: p, name: Q } ]",
            "project `p`: field id: duplicate id",
        ),
        (
            "tasks: [ { id: t, name: T } ]",
            "task `t`: field project: required",
        ),
        (
            "projects: [ { id: p, name: P }, { id: q, name: Q } ]\ntasks: [ { id: a, name: A, project: p }, { id: b, name: B, project: q, parent: a } ]",
            "task `b`: field parent: parent task `a` is in project `p`, not in `q`",
        ),
        (
            "projects: [ { id: p, name: P } ]\ntasks: [ { id: a, name: A, project: p, parent: b }, { id: b, name: B, project: p, parent: a } ]",
            "field parent: parent cycle",
        ),
        (
            "projects: [ { id: p, name: P } ]\ntasks: [ { id: a, name: A, project: p, parent: zz } ]",
            "task `a`: field parent: unknown task `zz`",
        ),
        (
            "wiki_pages: [ { id: w, name: W, read_groups: [\"*\"] } ]",
            "wiki_page `w`: field read_groups: `*` is reserved",
        ),
        (
            "wiki_pages: [ { id: w, name: W, write_groups: [h] } ]",
            "wiki_page `w`: field write_groups: unknown group `h`",
        ),
        (
            "agenda_events: [ { id: e, name: E, groups: [\"*\"] } ]",
            "agenda_event `e`: field groups: `*` is reserved",
        ),
        (
            "download_categories: [ { id: k, name: K, groups: [\"*\"] } ]",
            "download_category `k`: field groups: `*` is reserved",
        ),
        (
            "downloads: [ { id: d, name: D, category: k } ]",
            "download `d`: field category: unknown download category `k`",
        ),
        (
            "downloads: [ { id: d, name: D } ]",
            "download `d`: field category: required",
        ),
        (
            "inventory_items: [ { id: i, name: I, companies: [x], users: [bob] } ]",
            "inventory_item `i`: field companies: unknown company `x`",
        ),
        (
            "inventory_items: [ { id: i, name: I, users: [bob] } ]",
            "inventory_item `i`: field users: unknown user `bob`",
        ),
        (
            "invoices: [ { id: v } ]",
            "invoice `v`: field company: required",
        ),
        (
            "invoices: [ { id: v, company: x } ]",
            "invoice `v`: field company: unknown company `x`",
        ),
        (
            "leads: [ { id: l, name: L, company: x } ]",
            "lead `l`: field company: unknown company `x`",
        ),
        (
            "leads: [ { id: l, name: L, owner: bob } ]",
            "lead `l`: field owner: unknown user `bob`",
        ),
        ("leads: [ { id: l } ]", "lead `l`: field name: required"),
        (
            "assertions: [ { user: ann, visible_resources: { kind: ticket, ids: [] } } ]",
            "assertions[0]: field visible_resources.kind: unknown value `ticket`",
        ),
    ];
    for (extra, wanted) in cases {
        let text = format!("{base}{extra}\n");
        let err = dataset::load_str("sections.yaml", &text)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("sections.yaml: {wanted}")) || err.contains(wanted),
            "{extra}:\n{err}"
        );
    }
    // The example of the format loads, and writes back to itself.
    let ok = dataset::load_str(
        "ok.yaml",
        &format!(
            "{base}projects: [ {{ id: p, name: P, owner: ann, members: [ {{ user: ann, role: manager }} ] }} ]\n\
             tasks: [ {{ id: t, name: T, project: p, parent: null }}, {{ id: u, name: U, project: p, parent: t }} ]\n\
             assertions: [ {{ user: ann, action: task_edit, resource: u, expect: allow, reason: OWNER }} ]\n"
        ),
    )
    .unwrap();
    let raw = dataset::raw::from_dataset(&ok.dataset);
    let again = dataset::from_raw("again", &raw).unwrap();
    assert_eq!(again.dataset, ok.dataset);
}

/// A random desk: a group forest (some propagating), a company forest with
/// owners, profiles of random section flags, users of every kind, and
/// resources pointing at all of them.
fn random_desk(seed: u64) -> Dataset {
    let mut rng = fastrand::Rng::with_seed(seed);
    let pick =
        |rng: &mut fastrand::Rng, prefix: &str, n: usize| format!("{prefix}{}", rng.usize(0..n));
    let some = |rng: &mut fastrand::Rng, prefix: &str, n: usize, most: usize| {
        let mut v: Vec<String> = (0..rng.usize(0..=most))
            .map(|_| pick(rng, prefix, n))
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let (ng, nc, nu) = (6, 5, 14);
    let mut data = Dataset::default();
    for i in 0..ng {
        data.groups.push(Group {
            id: format!("g{i}"),
            name: String::new(),
            parent: (i > 0 && rng.bool()).then(|| format!("g{}", rng.usize(0..i))),
            propagate: rng.bool(),
            open_ticket_limit: 0,
            enforce_open_limit: false,
            total_ticket_limit: 0,
        });
    }
    for i in 0..8 {
        let section_flags: Vec<&str> = FLAG_NAMES.iter().copied().skip(9).collect();
        data.profiles.push(Profile {
            id: format!("f{i}"),
            name: String::new(),
            flags: section_flags
                .iter()
                .filter(|_| rng.u8(0..4) == 0)
                .filter_map(|n| Flag::parse(n))
                .collect(),
        });
    }
    for i in 0..nu {
        let kind = match rng.u8(0..10) {
            0 => UserKind::Superadmin,
            1 | 2 => UserKind::EndUser,
            _ => UserKind::Agent,
        };
        data.users.push(User {
            id: format!("u{i}"),
            email: None,
            name: None,
            created_at: "2025-01-01T00:00:00Z".parse().unwrap(),
            kind,
            suspended: rng.u8(0..12) == 0,
            ticket_access: Default::default(),
            organisations: Vec::new(),
            default_organisation: None,
            company: rng.bool().then(|| pick(&mut rng, "c", nc)),
            company_scoped: rng.bool(),
            grants: (0..rng.usize(0..4))
                .map(|_| Grant {
                    profile: pick(&mut rng, "f", 8),
                    group: if rng.u8(0..8) == 0 {
                        GrantScope::All
                    } else {
                        GrantScope::Group(pick(&mut rng, "g", ng))
                    },
                })
                .collect(),
        });
    }
    for i in 0..nc {
        data.companies.push(Company {
            id: format!("c{i}"),
            name: String::new(),
            parent: (i > 0 && rng.bool()).then(|| format!("c{}", rng.usize(0..i))),
            owner: (rng.u8(0..3) == 0).then(|| pick(&mut rng, "u", nu)),
        });
    }
    let members = |rng: &mut fastrand::Rng| -> Vec<SectionMember> {
        some(rng, "u", nu, 4)
            .into_iter()
            .map(|user| SectionMember {
                user,
                role: if rng.bool() {
                    MemberRole::Manager
                } else {
                    MemberRole::Member
                },
            })
            .collect()
    };
    let s = &mut data.sections;
    for i in 0..5 {
        s.projects.push(Project {
            id: format!("p{i}"),
            name: String::new(),
            owner: rng.bool().then(|| pick(&mut rng, "u", nu)),
            members: members(&mut rng),
        });
    }
    for i in 0..16 {
        let project = pick(&mut rng, "p", 5);
        // A parent among earlier tasks of the same project.
        let parents: Vec<String> = s
            .tasks
            .iter()
            .filter(|t| t.project == project)
            .map(|t| t.id.clone())
            .collect();
        let parent = (!parents.is_empty() && rng.bool())
            .then(|| parents[rng.usize(0..parents.len())].clone());
        s.tasks.push(Task {
            id: format!("t{i:02}"),
            name: String::new(),
            project,
            parent,
            members: members(&mut rng),
        });
    }
    for i in 0..10 {
        s.wiki_pages.push(WikiPage {
            id: format!("w{i}"),
            name: String::new(),
            read_groups: some(&mut rng, "g", ng, 2),
            write_groups: some(&mut rng, "g", ng, 2),
        });
        s.inventory_items.push(InventoryItem {
            id: format!("i{i}"),
            name: String::new(),
            owner: rng.bool().then(|| pick(&mut rng, "u", nu)),
            public: rng.u8(0..4) == 0,
            companies: some(&mut rng, "c", nc, 2),
            users: some(&mut rng, "u", nu, 2),
        });
        s.invoices.push(Invoice {
            id: format!("v{i}"),
            company: pick(&mut rng, "c", nc),
        });
        s.leads.push(Lead {
            id: format!("l{i}"),
            name: String::new(),
            company: rng.bool().then(|| pick(&mut rng, "c", nc)),
            owner: rng.bool().then(|| pick(&mut rng, "u", nu)),
        });
        s.agenda_events.push(AgendaEvent {
            id: format!("e{i}"),
            name: String::new(),
            owner: rng.bool().then(|| pick(&mut rng, "u", nu)),
            public: rng.u8(0..4) == 0,
            groups: some(&mut rng, "g", ng, 2),
        });
    }
    for i in 0..4 {
        s.download_categories.push(DownloadCategory {
            id: format!("k{i}"),
            name: String::new(),
            groups: some(&mut rng, "g", ng, 2),
        });
    }
    for i in 0..12 {
        s.downloads.push(Download {
            id: format!("d{i:02}"),
            name: String::new(),
            category: pick(&mut rng, "k", 4),
        });
    }
    // Ids shuffled so that build order is not id order.
    rng.shuffle(&mut s.tasks);
    rng.shuffle(&mut s.downloads);
    data
}

fn ids_of(data: &Dataset, kind: ResourceKind) -> Vec<String> {
    let s = &data.sections;
    let ids: Vec<&String> = match kind {
        ResourceKind::Project => s.projects.iter().map(|r| &r.id).collect(),
        ResourceKind::Task => s.tasks.iter().map(|r| &r.id).collect(),
        ResourceKind::WikiPage => s.wiki_pages.iter().map(|r| &r.id).collect(),
        ResourceKind::InventoryItem => s.inventory_items.iter().map(|r| &r.id).collect(),
        ResourceKind::Invoice => s.invoices.iter().map(|r| &r.id).collect(),
        ResourceKind::Lead => s.leads.iter().map(|r| &r.id).collect(),
        ResourceKind::AgendaEvent => s.agenda_events.iter().map(|r| &r.id).collect(),
        ResourceKind::Download => s.downloads.iter().map(|r| &r.id).collect(),
    };
    let mut ids: Vec<String> = ids.into_iter().cloned().collect();
    ids.sort();
    ids
}

#[test]
fn visible_resources_are_exactly_the_view_checks() {
    // Lists of agents that hold something, so that the property is not
    // met by empty lists alone.
    let mut held = 0;
    for seed in 0..40 {
        let data = random_desk(seed);
        // The generated data passes the file validator too.
        let raw = dataset::raw::from_dataset(&data);
        dataset::from_raw("random", &raw).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let snap = Snapshot::build(&data).unwrap();
        let ctx = Context::at(common::now(&snap));
        for kind in ResourceKind::ALL.iter().copied() {
            let all = ids_of(&data, kind);
            let view = core::view_action(kind);
            for user in data.users.iter().map(|u| u.id.as_str()).chain(["nobody"]) {
                let brute: Vec<String> = all
                    .iter()
                    .filter(|id| {
                        let req = common::ask(user, view, &[("resource", id.as_str())]);
                        core::check(&snap, &req, ctx).unwrap().allowed
                    })
                    .cloned()
                    .collect();
                let agent = data
                    .users
                    .iter()
                    .any(|u| u.id == user && u.kind == UserKind::Agent && !u.suspended);
                if agent && !brute.is_empty() {
                    held += 1;
                }
                for size in [1, 3, 1000] {
                    assert_eq!(
                        walk(&snap, user, kind, size),
                        brute,
                        "seed {seed} {user} {kind} size {size}"
                    );
                }
            }
        }
        // Every section action's decision agrees with the rule predicate.
        for action in Action::ALL.into_iter().filter(|a| a.is_section_action()) {
            let resources = match action.resource_kind() {
                Some(kind) => ids_of(&data, kind),
                None if action.needs_resource() => {
                    data.users.iter().map(|u| u.id.clone()).collect()
                }
                None => vec![String::new()],
            };
            for user in &data.users {
                for r in &resources {
                    let req = common::ask(&user.id, action, &[("resource", r.as_str())]);
                    let d = core::check(&snap, &req, ctx).unwrap();
                    assert_eq!(
                        d.allowed,
                        core::section_allows(&snap, &user.id, action, r),
                        "{seed} {} {action} {r}",
                        user.id
                    );
                    let explained = common::explain(&snap, req);
                    assert_eq!((explained.allowed, explained.reason), (d.allowed, d.reason));
                }
            }
        }
    }
    assert!(held > 400, "only {held} non-empty agent lists");
}
