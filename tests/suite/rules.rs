//! One test per rule and edge case of the access model (§2, §3, §6, §7).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{ask, decide, explain, snapshot};
use ticket_authz::core::Action::*;
use ticket_authz::core::{ActionInput, CheckRequest, Reason, RequestError};
use ticket_authz::snapshot::Snapshot;

/// A dataset exercising both models; each test reads the part it needs.
const FIXTURE: &str = r#"
now: 2026-06-01T00:00:00Z
organisations:
  - { id: acme, name: Acme, ticket_access: own, access_managers: [boss],
      domains: [ { domain: Acme.Example, added_at: 2026-01-01T00:00:00Z } ] }
  - { id: helpco, name: Help Co, domains: [ { domain: helpco.example, added_at: 2025-01-01T00:00:00Z } ] }
  - { id: shared, name: Shared, ticket_access: comment_all }
  - { id: far, name: Far Client, ticket_access: view_all }
partnerships:
  - { partner: helpco, client: acme, since: 2026-02-01T00:00:00+01:00 }
  - { partner: acme, client: far, since: 2025-01-01T00:00:00Z }
companies:
  - { id: top, name: Top }
  - { id: mid, name: Mid, parent: top }
  - { id: leaf, name: Leaf, parent: mid }
  - { id: owned, name: Owned, owner: crm }
  - { id: owned-child, name: Owned child, parent: owned }
groups:
  - { id: root, name: Root, propagate: true }
  - { id: child, name: Child, parent: root }
  - { id: grandchild, name: Grandchild, parent: child }
  - { id: flat, name: Flat }
  - { id: flat-child, name: Flat child, parent: flat }
  - { id: limited, name: Limited, total_ticket_limit: 2, open_ticket_limit: 1 }
profiles:
  - { id: reader, name: Reader, flags: [IR] }
  - { id: writer, name: Writer, flags: [IR, IW] }
  - { id: manager, name: Manager, flags: [IR, IW, IM, IC] }
  - { id: escalator, name: Escalator, flags: [SI] }
  - { id: crm, name: CRM, flags: [CR] }
  - { id: kb, name: KB, flags: [KR] }
users:
  - { id: early, email: early@acme.example, created_at: 2025-12-31T23:59:59Z }
  - { id: exact, email: exact@ACME.example, created_at: 2026-01-01T00:00:00Z }
  - { id: sub, email: sub@eu.acme.example, created_at: 2026-03-01T00:00:00Z }
  - { id: partner-before, email: pb@helpco.example, created_at: 2026-01-31T22:59:59Z }
  - { id: partner-after, email: pa@helpco.example, created_at: 2026-01-31T23:00:00Z }
  - { id: org-reader, email: reader@acme.example, created_at: 2026-02-01T00:00:00Z, ticket_access: organisation }
  - { id: explicit-partner, email: x@elsewhere.example, created_at: 2026-05-01T00:00:00Z, organisations: [helpco] }
  - { id: boss, email: boss@corp.example, created_at: 2020-01-01T00:00:00Z }
  - { id: two-orgs, created_at: 2026-01-01T00:00:00Z, organisations: [acme, shared] }
  - { id: one-org, created_at: 2026-01-01T00:00:00Z, organisations: [shared] }
  - { id: r-agent, created_at: 2020-01-01T00:00:00Z, kind: agent, grants: [ { profile: reader, group: root } ] }
  - { id: w-agent, created_at: 2020-01-01T00:00:00Z, kind: agent, grants: [ { profile: writer, group: child } ] }
  - { id: flat-agent, created_at: 2020-01-01T00:00:00Z, kind: agent, grants: [ { profile: manager, group: flat } ] }
  - { id: star-agent, created_at: 2020-01-01T00:00:00Z, kind: agent, grants: [ { profile: reader, group: "*" }, { profile: kb, group: flat } ] }
  - { id: esc-agent, created_at: 2020-01-01T00:00:00Z, kind: agent,
      grants: [ { profile: writer, group: flat }, { profile: escalator, group: flat } ] }
  - { id: scoped, created_at: 2020-01-01T00:00:00Z, kind: agent, company: mid, company_scoped: true,
      grants: [ { profile: manager, group: root } ] }
  - { id: scoped-nocompany, created_at: 2020-01-01T00:00:00Z, kind: agent, company_scoped: true,
      grants: [ { profile: manager, group: root } ] }
  - { id: crm, created_at: 2020-01-01T00:00:00Z, kind: agent, company: mid, grants: [ { profile: crm, group: flat } ] }
  - { id: cust-mid, created_at: 2020-01-01T00:00:00Z, company: mid, grants: [ { profile: manager, group: "*" } ] }
  - { id: cust-leaf, created_at: 2020-01-01T00:00:00Z, company: leaf }
  - { id: agent-requester, created_at: 2020-01-01T00:00:00Z, kind: agent }
  - { id: admin, created_at: 2020-01-01T00:00:00Z, kind: superadmin }
  - { id: frozen-admin, created_at: 2020-01-01T00:00:00Z, kind: superadmin, suspended: true }
tickets:
  - { id: a1, created_at: 2026-03-01T00:00:00Z, requester: early, organisation: acme, status: closed }
  - { id: g-child, created_at: 2026-03-01T00:00:00Z, requester: cust-mid, group: child }
  - { id: g-grand, created_at: 2026-03-01T00:00:00Z, requester: cust-leaf, group: grandchild, assignee: w-agent }
  - { id: g-flat-child, created_at: 2026-03-01T00:00:00Z, requester: cust-mid, group: flat-child }
  - { id: g-flat, created_at: 2026-03-01T00:00:00Z, requester: cust-mid, group: flat, participants: [r-agent], ccs: [cust-leaf] }
  - { id: no-group, created_at: 2026-03-01T00:00:00Z, requester: cust-mid }
  - { id: by-agent, created_at: 2026-03-01T00:00:00Z, requester: agent-requester, group: flat, assignee: w-agent }
  - { id: by-agent-unowned, created_at: 2026-03-01T00:00:00Z, requester: agent-requester, group: flat }
  - { id: multi, created_at: 2026-03-01T00:00:00Z, requester: cust-mid, group: child, assignee: r-agent, ccs: [r-agent, w-agent], participants: [r-agent, w-agent] }
  - { id: far1, created_at: 2026-03-01T00:00:00Z, requester: boss, organisation: far }
  - { id: lim-old, created_at: 2025-06-01T00:00:00Z, requester: cust-leaf, group: limited, status: open }
  - { id: lim-edge, created_at: 2025-06-01T00:00:00Z, requester: cust-mid, group: limited, status: closed }
  - { id: lim-future, created_at: 2026-06-01T00:00:00.000000001Z, requester: cust-leaf, group: limited, status: open }
"#;

fn fixture() -> Snapshot {
    snapshot(FIXTURE)
}

fn allow(snap: &Snapshot, req: CheckRequest<'_>, reason: Reason) {
    let d = decide(snap, req).unwrap();
    assert!(
        d.allowed && d.reason == reason,
        "{req:?}: expected allow {reason}, got {d:?}"
    );
}

fn deny(snap: &Snapshot, req: CheckRequest<'_>, reason: Reason) {
    let d = decide(snap, req).unwrap();
    assert!(
        !d.allowed && d.reason == reason,
        "{req:?}: expected deny {reason}, got {d:?}"
    );
}

fn invalid(snap: &Snapshot, req: CheckRequest<'_>, field: &str) {
    match decide(snap, req) {
        Err(e) => assert_eq!(e.field(), field, "{e}"),
        Ok(d) => panic!("{req:?}: expected INVALID_ARGUMENT on {field}, got {d:?}"),
    }
}

// §2 membership -------------------------------------------------------------

#[test]
fn domain_membership_needs_the_domain_added_before_the_user() {
    let s = fixture();
    // early was created one second before acme.example was added.
    deny(
        &s,
        ask("early", Create, &[("organisation", "acme")]),
        Reason::NotAMember,
    );
    // Equal instants count (added_at <= created_at), and case does not matter.
    allow(
        &s,
        ask("exact", Create, &[("organisation", "acme")]),
        Reason::Member,
    );
}

#[test]
fn a_subdomain_is_another_domain() {
    let s = fixture();
    deny(
        &s,
        ask("sub", Create, &[("organisation", "acme")]),
        Reason::NotAMember,
    );
}

#[test]
fn partnership_reaches_partner_users_created_from_since_compared_as_instants() {
    let s = fixture();
    // since = 2026-02-01T00:00:00+01:00 = 2026-01-31T23:00:00Z.
    deny(
        &s,
        ask("partner-before", Create, &[("organisation", "acme")]),
        Reason::NotAMember,
    );
    allow(
        &s,
        ask("partner-before", Create, &[("organisation", "helpco")]),
        Reason::Member,
    );
    allow(
        &s,
        ask("partner-after", Create, &[("organisation", "acme")]),
        Reason::Member,
    );
}

#[test]
fn partnership_needs_domain_membership_of_the_partner() {
    let s = fixture();
    // An explicit member of helpco does not inherit helpco's clients.
    deny(
        &s,
        ask("explicit-partner", Create, &[("organisation", "acme")]),
        Reason::NotAMember,
    );
    allow(
        &s,
        ask("explicit-partner", Create, &[("organisation", "helpco")]),
        Reason::Member,
    );
}

#[test]
fn partnerships_do_not_chain() {
    let s = fixture();
    // helpco → acme → far: helpco's users are not members of far.
    deny(
        &s,
        ask("partner-after", Create, &[("organisation", "far")]),
        Reason::NotAMember,
    );
    deny(
        &s,
        ask("partner-after", View, &[("ticket", "far1")]),
        Reason::NoMatchingRule,
    );
}

// §3 before any rule ----------------------------------------------------------

#[test]
fn malformed_comes_before_unknown_user() {
    let s = fixture();
    invalid(&s, ask("nobody", View, &[]), "ticket_id");
}

#[test]
fn unknown_user_comes_before_unknown_resource() {
    let s = fixture();
    deny(
        &s,
        ask("nobody", View, &[("ticket", "nope")]),
        Reason::UnknownUser,
    );
}

#[test]
fn unknown_resources_of_each_action_are_denied() {
    let s = fixture();
    deny(
        &s,
        ask("early", View, &[("ticket", "nope")]),
        Reason::UnknownResource,
    );
    deny(
        &s,
        ask(
            "w-agent",
            Reassign,
            &[("ticket", "g-child"), ("group", "nope")],
        ),
        Reason::UnknownResource,
    );
    deny(
        &s,
        ask("early", Create, &[("organisation", "nope")]),
        Reason::UnknownResource,
    );
    deny(
        &s,
        ask("early", Create, &[("group", "nope")]),
        Reason::UnknownResource,
    );
    deny(
        &s,
        ask("boss", ManageAccess, &[("organisation", "nope")]),
        Reason::UnknownResource,
    );
    deny(
        &s,
        ask("crm", CompanyView, &[("company", "nope")]),
        Reason::UnknownResource,
    );
    deny(
        &s,
        ask("r-agent", HasFlag, &[("flag", "IR"), ("group", "nope")]),
        Reason::UnknownResource,
    );
}

#[test]
fn ids_the_action_does_not_use_are_ignored() {
    let s = fixture();
    allow(
        &s,
        ask(
            "early",
            View,
            &[
                ("ticket", "a1"),
                ("organisation", "nope"),
                ("company", "nope"),
            ],
        ),
        Reason::Requester,
    );
    allow(
        &s,
        ask(
            "boss",
            ManageAccess,
            &[("organisation", "acme"), ("ticket", "nope")],
        ),
        Reason::AccessManager,
    );
    allow(
        &s,
        ask("early", Close, &[("ticket", "a1"), ("group", "nope")]),
        Reason::Requester,
    );
}

#[test]
fn unknown_resource_comes_before_suspension() {
    let s = fixture();
    deny(
        &s,
        ask("frozen-admin", View, &[("ticket", "nope")]),
        Reason::UnknownResource,
    );
}

#[test]
fn a_suspended_superadmin_is_denied() {
    let s = fixture();
    deny(
        &s,
        ask("frozen-admin", View, &[("ticket", "a1")]),
        Reason::Suspended,
    );
}

#[test]
fn superadmin_skips_membership_and_limits_without_warning() {
    let s = fixture();
    let d = decide(
        &s,
        ask(
            "admin",
            Create,
            &[("organisation", "acme"), ("group", "limited")],
        ),
    )
    .unwrap();
    assert!(d.allowed);
    assert_eq!((d.reason, d.warning), (Reason::Superadmin, None));
    allow(
        &s,
        ask("admin", HasFlag, &[("flag", "HR"), ("group", "*")]),
        Reason::Superadmin,
    );
}

// §3 ticket rules ---------------------------------------------------------------

#[test]
fn grants_propagate_only_from_propagating_groups() {
    let s = fixture();
    allow(
        &s,
        ask("r-agent", View, &[("ticket", "g-grand")]),
        Reason::GroupFlag,
    );
    deny(
        &s,
        ask("flat-agent", View, &[("ticket", "g-flat-child")]),
        Reason::NoMatchingRule,
    );
    allow(
        &s,
        ask("flat-agent", Delete, &[("ticket", "g-flat")]),
        Reason::GroupFlag,
    );
    // A grant on a child does not reach its parent.
    deny(
        &s,
        ask("w-agent", View, &[("ticket", "no-group")]),
        Reason::NoMatchingRule,
    );
}

#[test]
fn the_all_group_covers_tickets_without_a_group() {
    let s = fixture();
    allow(
        &s,
        ask("star-agent", View, &[("ticket", "no-group")]),
        Reason::GroupFlag,
    );
    deny(
        &s,
        ask("r-agent", View, &[("ticket", "no-group")]),
        Reason::NoMatchingRule,
    );
}

#[test]
fn end_users_grants_mean_nothing() {
    let s = fixture();
    deny(
        &s,
        ask("cust-leaf", View, &[("ticket", "g-child")]),
        Reason::NoMatchingRule,
    );
    deny(
        &s,
        ask("cust-mid", Delete, &[("ticket", "g-child")]),
        Reason::NoMatchingRule,
    );
    deny(
        &s,
        ask("cust-mid", HasFlag, &[("flag", "IR"), ("group", "*")]),
        Reason::NoMatchingRule,
    );
}

#[test]
fn participants_view_but_do_not_comment_and_ccs_do_both() {
    let s = fixture();
    allow(
        &s,
        ask("r-agent", View, &[("ticket", "g-flat")]),
        Reason::Participant,
    );
    deny(
        &s,
        ask("r-agent", Comment, &[("ticket", "g-flat")]),
        Reason::NoMatchingRule,
    );
    allow(
        &s,
        ask("cust-leaf", View, &[("ticket", "g-flat")]),
        Reason::Cc,
    );
    allow(
        &s,
        ask("cust-leaf", Comment, &[("ticket", "g-flat")]),
        Reason::Cc,
    );
    deny(
        &s,
        ask("cust-leaf", Edit, &[("ticket", "g-flat")]),
        Reason::NoMatchingRule,
    );
}

#[test]
fn reasons_follow_the_reporting_order() {
    let s = fixture();
    // r-agent is assignee, CC, participant and holds IR on child: ASSIGNEE.
    allow(
        &s,
        ask("r-agent", View, &[("ticket", "multi")]),
        Reason::Assignee,
    );
    // w-agent is CC, participant and holds IR and IW on child: CC.
    allow(&s, ask("w-agent", View, &[("ticket", "multi")]), Reason::Cc);
    allow(
        &s,
        ask("w-agent", Comment, &[("ticket", "multi")]),
        Reason::Cc,
    );
    // w-agent is the assignee of by-agent and holds no IR on flat.
    allow(
        &s,
        ask("w-agent", View, &[("ticket", "by-agent")]),
        Reason::Assignee,
    );
    // w-agent is assigned g-grand; its IR on child does not propagate to grandchild.
    allow(
        &s,
        ask("w-agent", View, &[("ticket", "g-grand")]),
        Reason::Assignee,
    );
    // cust-mid requested g-flat and holds a manager grant on "*" it cannot use.
    allow(
        &s,
        ask("cust-mid", View, &[("ticket", "g-flat")]),
        Reason::Requester,
    );
}

#[test]
fn edit_by_iw_only_while_unassigned_and_by_agent_requesters() {
    let s = fixture();
    allow(
        &s,
        ask("esc-agent", Edit, &[("ticket", "by-agent-unowned")]),
        Reason::GroupFlag,
    );
    deny(
        &s,
        ask("esc-agent", Edit, &[("ticket", "by-agent")]),
        Reason::NoMatchingRule,
    );
    allow(
        &s,
        ask("w-agent", Edit, &[("ticket", "by-agent")]),
        Reason::Assignee,
    );
    allow(
        &s,
        ask("flat-agent", Edit, &[("ticket", "by-agent")]),
        Reason::GroupFlag,
    );
    allow(
        &s,
        ask("agent-requester", Edit, &[("ticket", "by-agent")]),
        Reason::Requester,
    );
    // End-user requesters close but do not edit.
    allow(
        &s,
        ask("early", Close, &[("ticket", "a1")]),
        Reason::Requester,
    );
    deny(
        &s,
        ask("early", Edit, &[("ticket", "a1")]),
        Reason::NoMatchingRule,
    );
}

#[test]
fn close_needs_ic_unless_requester_or_assignee() {
    let s = fixture();
    allow(
        &s,
        ask("flat-agent", Close, &[("ticket", "g-flat")]),
        Reason::GroupFlag,
    );
    deny(
        &s,
        ask("esc-agent", Close, &[("ticket", "g-flat")]),
        Reason::NoMatchingRule,
    );
    allow(
        &s,
        ask("w-agent", Close, &[("ticket", "by-agent")]),
        Reason::Assignee,
    );
}

#[test]
fn reassign_needs_edit_and_iw_on_target_or_si_on_current() {
    let s = fixture();
    // esc-agent edits unowned flat tickets (IW) and holds SI on flat.
    allow(
        &s,
        ask(
            "esc-agent",
            Reassign,
            &[("ticket", "by-agent-unowned"), ("group", "root")],
        ),
        Reason::GroupFlag,
    );
    // w-agent: assignee of by-agent, IW on child as target.
    allow(
        &s,
        ask(
            "w-agent",
            Reassign,
            &[("ticket", "by-agent"), ("group", "child")],
        ),
        Reason::GroupFlag,
    );
    // ... but no IW on root and no SI on flat.
    deny(
        &s,
        ask(
            "w-agent",
            Reassign,
            &[("ticket", "by-agent"), ("group", "root")],
        ),
        Reason::NoMatchingRule,
    );
    // Without edit rights, flags do not help.
    deny(
        &s,
        ask(
            "esc-agent",
            Reassign,
            &[("ticket", "by-agent"), ("group", "flat")],
        ),
        Reason::NoMatchingRule,
    );
}

#[test]
fn company_scoped_agents_reach_only_their_companys_requesters() {
    let s = fixture();
    // g-child's requester is in mid (scoped's company); g-grand's in leaf,
    // a child of mid, which does not count.
    allow(
        &s,
        ask("scoped", View, &[("ticket", "g-child")]),
        Reason::GroupFlag,
    );
    deny(
        &s,
        ask("scoped", View, &[("ticket", "g-grand")]),
        Reason::NoMatchingRule,
    );
    deny(
        &s,
        ask("scoped-nocompany", View, &[("ticket", "g-child")]),
        Reason::NoMatchingRule,
    );
    // has_flag is not company-scoped.
    allow(
        &s,
        ask(
            "scoped-nocompany",
            HasFlag,
            &[("flag", "IM"), ("group", "grandchild")],
        ),
        Reason::GroupFlag,
    );
}

#[test]
fn organisation_settings_the_more_permissive_wins() {
    let s = fixture();
    // acme is `own`: a member with `own` access does not see a colleague's
    // ticket, a member with `organisation` access sees it but cannot comment.
    deny(
        &s,
        ask("exact", View, &[("ticket", "a1")]),
        Reason::NoMatchingRule,
    );
    deny(
        &s,
        ask("two-orgs", View, &[("ticket", "a1")]),
        Reason::NoMatchingRule,
    );
    allow(
        &s,
        ask("org-reader", View, &[("ticket", "a1")]),
        Reason::Organisation,
    );
    deny(
        &s,
        ask("org-reader", Comment, &[("ticket", "a1")]),
        Reason::NoMatchingRule,
    );
    // Partner users created after `since` are members of the client.
    allow(
        &s,
        ask("partner-after", Create, &[("organisation", "acme")]),
        Reason::Member,
    );
    // far is `view_all`: its members (acme's domain users, by partnership) view.
    allow(
        &s,
        ask("org-reader", View, &[("ticket", "far1")]),
        Reason::Organisation,
    );
    deny(
        &s,
        ask("org-reader", Comment, &[("ticket", "far1")]),
        Reason::NoMatchingRule,
    );
}

#[test]
fn status_never_restricts_an_action() {
    let s = fixture();
    // a1 is closed.
    allow(
        &s,
        ask("early", Comment, &[("ticket", "a1")]),
        Reason::Requester,
    );
    allow(
        &s,
        ask("admin", Edit, &[("ticket", "a1")]),
        Reason::Superadmin,
    );
}

// §3 create ---------------------------------------------------------------------

#[test]
fn create_organisation_rules() {
    let s = fixture();
    deny(
        &s,
        ask("two-orgs", Create, &[]),
        Reason::OrganisationRequired,
    );
    allow(
        &s,
        ask("two-orgs", Create, &[("organisation", "shared")]),
        Reason::Member,
    );
    allow(&s, ask("one-org", Create, &[]), Reason::Member);
    allow(&s, ask("boss", Create, &[]), Reason::SelfService);
    // Empty organisation and group mean "not given".
    allow(
        &s,
        ask("one-org", Create, &[("organisation", ""), ("group", "")]),
        Reason::Member,
    );
}

#[test]
fn create_group_rules() {
    let s = fixture();
    deny(
        &s,
        ask("r-agent", Create, &[("group", "child")]),
        Reason::NoMatchingRule,
    );
    allow(
        &s,
        ask("w-agent", Create, &[("group", "child")]),
        Reason::GroupFlag,
    );
    allow(
        &s,
        ask("boss", Create, &[("group", "flat")]),
        Reason::SelfService,
    );
    // MEMBER is reported before GROUP_FLAG.
    allow(
        &s,
        ask("one-org", Create, &[("group", "flat")]),
        Reason::Member,
    );
}

#[test]
fn limits_count_a_rolling_window_inclusive_of_its_start_and_not_the_future() {
    // now = 2026-06-01; the window starts 2025-06-01T00:00:00Z exactly
    // (365 × 24 h back, 2026 not being a leap year before June).
    let s = fixture();
    // cust-leaf: lim-old (open, at the window start) counts; lim-future does not.
    let d = decide(&s, ask("cust-leaf", Create, &[("group", "limited")])).unwrap();
    assert_eq!(
        (d.allowed, d.reason, d.warning),
        (true, Reason::SelfService, Some(Reason::OpenTicketLimit))
    );
    // cust-mid: its only ticket (closed) counts for the total, not the open limit.
    let d = decide(&s, ask("cust-mid", Create, &[("group", "limited")])).unwrap();
    assert_eq!((d.allowed, d.warning), (true, None));
}

#[test]
fn agents_count_every_ticket_of_the_group_and_total_comes_first() {
    let y = r#"
now: 2026-06-01T00:00:00Z
groups: [ { id: g, name: G, total_ticket_limit: 2, open_ticket_limit: 1, enforce_open_limit: true } ]
profiles: [ { id: w, name: W, flags: [IW] } ]
users:
  - { id: a, created_at: 2020-01-01T00:00:00Z, kind: agent, grants: [ { profile: w, group: g } ] }
  - { id: e, created_at: 2020-01-01T00:00:00Z }
  - { id: f, created_at: 2020-01-01T00:00:00Z }
tickets:
  - { id: t1, created_at: 2026-05-01T00:00:00Z, requester: e, group: g, status: open }
  - { id: t2, created_at: 2026-05-02T00:00:00Z, requester: f, group: g, status: solved }
"#;
    let s = snapshot(y);
    deny(
        &s,
        ask("a", Create, &[("group", "g")]),
        Reason::TotalTicketLimit,
    );
    deny(
        &s,
        ask("e", Create, &[("group", "g")]),
        Reason::OpenTicketLimit,
    );
    allow(&s, ask("f", Create, &[("group", "g")]), Reason::SelfService);
}

// §3 other actions ----------------------------------------------------------------

#[test]
fn manage_access_is_for_access_managers_only() {
    let s = fixture();
    allow(
        &s,
        ask("boss", ManageAccess, &[("organisation", "acme")]),
        Reason::AccessManager,
    );
    deny(
        &s,
        ask("boss", ManageAccess, &[("organisation", "shared")]),
        Reason::NoMatchingRule,
    );
}

#[test]
fn company_reach_covers_own_tree_and_owned_trees() {
    let s = fixture();
    allow(
        &s,
        ask("crm", CompanyView, &[("company", "leaf")]),
        Reason::Company,
    );
    allow(
        &s,
        ask("crm", CompanyView, &[("company", "owned-child")]),
        Reason::Company,
    );
    deny(
        &s,
        ask("crm", CompanyView, &[("company", "top")]),
        Reason::NoMatchingRule,
    );
    deny(
        &s,
        ask("crm", CompanyEdit, &[("company", "mid")]),
        Reason::NoMatchingRule,
    );
    allow(
        &s,
        ask("cust-leaf", CompanyView, &[("company", "leaf")]),
        Reason::Company,
    );
    deny(
        &s,
        ask("cust-mid", CompanyView, &[("company", "leaf")]),
        Reason::NoMatchingRule,
    );
}

#[test]
fn has_flag_on_all_groups_asks_for_a_grant_on_all_itself() {
    let s = fixture();
    allow(
        &s,
        ask("star-agent", HasFlag, &[("flag", "IR"), ("group", "*")]),
        Reason::GroupFlag,
    );
    deny(
        &s,
        ask("star-agent", HasFlag, &[("flag", "KR"), ("group", "*")]),
        Reason::NoMatchingRule,
    );
    allow(
        &s,
        ask("star-agent", HasFlag, &[("flag", "KR"), ("group", "flat")]),
        Reason::GroupFlag,
    );
    deny(
        &s,
        ask(
            "star-agent",
            HasFlag,
            &[("flag", "KR"), ("group", "flat-child")],
        ),
        Reason::NoMatchingRule,
    );
}

// §6 malformed requests --------------------------------------------------------------

#[test]
fn malformed_requests_name_the_field() {
    let s = fixture();
    let long = "x".repeat(129);
    invalid(&s, ask("", View, &[("ticket", "a1")]), "user_id");
    invalid(
        &s,
        CheckRequest {
            user: "early",
            ..CheckRequest::default()
        },
        "action",
    );
    invalid(
        &s,
        CheckRequest {
            user: "early",
            action: ActionInput::Unknown("peek"),
            ..CheckRequest::default()
        },
        "action",
    );
    invalid(&s, ask(&long, View, &[("ticket", "a1")]), "user_id");
    invalid(&s, ask("early", View, &[("ticket", &long)]), "ticket_id");
    invalid(
        &s,
        ask("early", Create, &[("organisation", &long)]),
        "organisation_id",
    );
    invalid(&s, ask("early", Create, &[("group", &long)]), "group_id");
    invalid(
        &s,
        ask("early", CompanyView, &[("company", &long)]),
        "company_id",
    );
    for action in [View, Comment, Edit, Close, Delete, Reassign] {
        invalid(&s, ask("early", action, &[]), "ticket_id");
    }
    invalid(&s, ask("early", Reassign, &[("ticket", "a1")]), "group_id");
    invalid(&s, ask("early", ManageAccess, &[]), "organisation_id");
    for action in [CompanyView, CompanyEdit, CompanyManage] {
        invalid(&s, ask("early", action, &[]), "company_id");
    }
    invalid(&s, ask("early", HasFlag, &[("group", "flat")]), "flag");
    invalid(&s, ask("early", HasFlag, &[("flag", "IR")]), "group_id");
    invalid(
        &s,
        ask("early", HasFlag, &[("flag", "ir"), ("group", "flat")]),
        "flag",
    );
    invalid(
        &s,
        ask("early", View, &[("ticket", "a1"), ("flag", "XX")]),
        "flag",
    );
    invalid(&s, ask("early", Create, &[("group", "*")]), "group_id");
    invalid(
        &s,
        ask("early", Reassign, &[("ticket", "a1"), ("group", "*")]),
        "group_id",
    );
    invalid(
        &s,
        ask("early", View, &[("ticket", "a1"), ("group", "*")]),
        "group_id",
    );
    // Exactly 128 bytes is fine (and unknown).
    let max = "y".repeat(128);
    deny(
        &s,
        ask(&max, View, &[("ticket", "a1")]),
        Reason::UnknownUser,
    );
    assert!(matches!(
        decide(&s, ask("early", Reassign, &[("ticket", "a1")])),
        Err(RequestError::MissingField {
            field: "group_id",
            ..
        })
    ));
}

// Explanations ----------------------------------------------------------------------

#[test]
fn explanations_name_memberships_grants_and_the_rule() {
    let s = fixture();
    let d = explain(
        &s,
        ask("partner-after", Create, &[("organisation", "acme")]),
    );
    assert!(
        d.explanation.iter().any(|l| l
            == "member of acme via partnership helpco→acme since 2026-01-31T23:00:00Z (domain helpco.example of helpco)"),
        "{:#?}",
        d.explanation
    );
    let d = explain(&s, ask("r-agent", View, &[("ticket", "g-grand")]));
    assert!(
        d.explanation.iter().any(|l| l
            == "flag IR on grandchild via grant reader@root (root propagates to its children)"),
        "{:#?}",
        d.explanation
    );
    assert_eq!(
        d.explanation.last().map(String::as_str),
        Some("allowed: GROUP_FLAG")
    );
    let d = explain(&s, ask("star-agent", View, &[("ticket", "no-group")]));
    assert!(
        d.explanation
            .iter()
            .any(|l| l == "flag IR on (no group) via grant reader@* (* covers every group)"),
        "{:#?}",
        d.explanation
    );
    let d = explain(&s, ask("exact", View, &[("ticket", "a1")]));
    assert!(
        d.explanation
            .iter()
            .any(|l| l.starts_with("member of acme via domain acme.example")),
        "{:#?}",
        d.explanation
    );
    assert!(
        d.explanation
            .iter()
            .any(|l| l == "organisation acme is set to own; exact is set to own"),
        "{:#?}",
        d.explanation
    );
    // Without explain, nothing is formatted.
    assert!(
        decide(&s, ask("exact", View, &[("ticket", "a1")]))
            .unwrap()
            .explanation
            .is_empty()
    );
}
