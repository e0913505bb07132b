//! Properties of lists and filters on random datasets: they agree exactly
//! with the `view` check, whatever the page size.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use proptest::prelude::*;
use ticket_authz::core::{
    self, Action, ActionInput, CheckRequest, Context, TicketFilter, VisibilityFilter,
};
use ticket_authz::generate::{Spec, generate};
use ticket_authz::model::{Dataset, Status};
use ticket_authz::snapshot::Snapshot;
use ticket_authz::time::Timestamp;

/// A small random dataset; ticket ids get uneven lengths so that byte order
/// differs from numeric order.
fn dataset(seed: u64) -> Dataset {
    let mut data = generate(&Spec {
        users: 200,
        organisations: 12,
        companies: 8,
        groups: 15,
        profiles: 8,
        tickets: 300,
        seed,
    });
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
    for (i, t) in data.tickets.iter_mut().enumerate() {
        t.id = format!("{}-{i}", "x".repeat(rng.usize(0..3)));
    }
    data
}

fn view(snap: &Snapshot, user: &str, ticket: &str) -> bool {
    let req = CheckRequest {
        user,
        action: ActionInput::Known(Action::View),
        ticket,
        ..CheckRequest::default()
    };
    core::check(snap, &req, Context::at(Timestamp::from_nanos(0)))
        .unwrap()
        .allowed
}

fn walk_visible(snap: &Snapshot, user: &str, filter: &TicketFilter, page: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let p = core::list_visible_tickets(snap, user, filter, page, &token).unwrap();
        assert!(p.ids.len() <= page as usize);
        out.extend(p.ids);
        match p.next_page_token {
            Some(t) => token = t,
            None => return out,
        }
    }
}

fn walk_viewers(snap: &Snapshot, ticket: &str, page: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let p = core::list_ticket_viewers(snap, ticket, page, &token).unwrap();
        out.extend(p.ids);
        match p.next_page_token {
            Some(t) => token = t,
            None => return out,
        }
    }
}

/// Evaluates a visibility filter on a ticket as a caller would, from the
/// ticket's fields alone.
fn filter_selects(
    filter: &VisibilityFilter,
    data: &Dataset,
    companies: &HashMap<&str, Option<&str>>,
    ticket: usize,
) -> bool {
    let t = &data.tickets[ticket];
    if filter.everything {
        return true;
    }
    let involves = |u: &String| {
        &t.requester == u
            || t.assignee.as_ref() == Some(u)
            || t.ccs.contains(u)
            || t.participants.contains(u)
    };
    if filter.user_id.as_ref().is_some_and(involves) {
        return true;
    }
    if t.organisation
        .as_ref()
        .is_some_and(|o| filter.organisation_ids.contains(o))
    {
        return true;
    }
    filter.group_clauses.iter().any(|c| {
        let in_group = c.any_group || t.group.as_ref().is_some_and(|g| c.group_ids.contains(g));
        let company = companies.get(t.requester.as_str()).copied().flatten();
        in_group
            && c.requester_company_id
                .as_deref()
                .is_none_or(|want| company == Some(want))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn lists_and_filters_agree_with_checks(seed in any::<u64>(), page in 1u32..7) {
        let data = dataset(seed);
        let snap = Snapshot::build(&data).unwrap();
        let mut ticket_ids: Vec<&str> = data.tickets.iter().map(|t| t.id.as_str()).collect();
        ticket_ids.sort_unstable();
        let mut user_ids: Vec<&str> = data.users.iter().map(|u| u.id.as_str()).collect();
        user_ids.sort_unstable();
        let companies: HashMap<&str, Option<&str>> =
            data.users.iter().map(|u| (u.id.as_str(), u.company.as_deref())).collect();

        let mut allowed: HashMap<(&str, &str), bool> = HashMap::new();
        for u in &user_ids {
            for t in &ticket_ids {
                allowed.insert((u, t), view(&snap, u, t));
            }
        }

        for u in &user_ids {
            let expected: Vec<String> = ticket_ids.iter().filter(|t| allowed[&(*u, **t)]).map(|t| (*t).to_owned()).collect();
            let all = TicketFilter::default();
            prop_assert_eq!(&walk_visible(&snap, u, &all, page), &expected, "visible tickets of {}", u);
            prop_assert_eq!(&walk_visible(&snap, u, &all, 1000), &expected, "visible tickets of {} in one page", u);

            let filter = core::visibility_filter(&snap, u);
            for (i, t) in data.tickets.iter().enumerate() {
                prop_assert_eq!(
                    filter_selects(&filter, &data, &companies, i),
                    allowed[&(*u, t.id.as_str())],
                    "filter of {} on ticket {}: {:?}", u, t.id, filter
                );
            }
        }

        for t in &ticket_ids {
            let expected: Vec<String> = user_ids.iter().filter(|u| allowed[&(**u, *t)]).map(|u| (*u).to_owned()).collect();
            prop_assert_eq!(&walk_viewers(&snap, t, page), &expected, "viewers of {}", t);
        }
    }

    #[test]
    fn filtered_lists_are_exact(seed in any::<u64>(), page in 1u32..5, org in 0usize..12, group in 0usize..15, status in 0usize..6) {
        let data = dataset(seed);
        let snap = Snapshot::build(&data).unwrap();
        let statuses = Status::ALL;
        let org_id = data.organisations[org].id.clone();
        let group_id = data.groups[group].id.clone();
        let filters = [
            TicketFilter { organisation: Some(org_id.clone()), ..TicketFilter::default() },
            TicketFilter { group: Some(group_id.clone()), ..TicketFilter::default() },
            TicketFilter { statuses: vec![statuses[status], statuses[(status + 2) % 6]], ..TicketFilter::default() },
            TicketFilter { organisation: Some(org_id), group: Some(group_id), statuses: vec![statuses[status]] },
            TicketFilter { organisation: Some("no-such-org".into()), ..TicketFilter::default() },
        ];
        let mut tickets: Vec<_> = data.tickets.iter().collect();
        tickets.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        for user in data.users.iter().step_by(7) {
            for filter in &filters {
                let expected: Vec<String> = tickets
                    .iter()
                    .filter(|t| filter.organisation.as_ref().is_none_or(|o| t.organisation.as_ref() == Some(o)))
                    .filter(|t| filter.group.as_ref().is_none_or(|g| t.group.as_ref() == Some(g)))
                    .filter(|t| filter.statuses.is_empty() || filter.statuses.contains(&t.status))
                    .filter(|t| view(&snap, &user.id, &t.id))
                    .map(|t| t.id.clone())
                    .collect();
                prop_assert_eq!(walk_visible(&snap, &user.id, filter, page), expected, "{} with {:?}", user.id, filter);
            }
        }
    }
}

#[test]
fn tokens_from_another_query_and_oversized_pages_are_refused() {
    let data = dataset(1);
    let snap = Snapshot::build(&data).unwrap();
    let all = TicketFilter::default();
    let first = core::list_visible_tickets(&snap, "u-0000000", &all, 1, "").unwrap();
    let token = first.next_page_token.unwrap();
    let other_user = core::list_visible_tickets(&snap, "u-0000001", &all, 1, &token);
    assert_eq!(
        other_user.unwrap_err().to_string(),
        "page_token: token was issued for another query"
    );
    let other_filter = TicketFilter {
        statuses: vec![Status::Open],
        ..TicketFilter::default()
    };
    assert!(core::list_visible_tickets(&snap, "u-0000000", &other_filter, 1, &token).is_err());
    assert!(core::list_ticket_viewers(&snap, "-0", 1, &token).is_err());
    assert_eq!(
        core::list_visible_tickets(&snap, "u-0000000", &all, 1001, "")
            .unwrap_err()
            .to_string(),
        "page_size: 1001 is more than the maximum of 1000"
    );
    assert_eq!(
        core::list_visible_tickets(&snap, "u-0000000", &all, 0, "")
            .unwrap()
            .ids
            .len(),
        100
    );
    // Unknown users and tickets give empty lists, not errors.
    assert!(
        core::list_visible_tickets(&snap, "nobody", &all, 10, "")
            .unwrap()
            .ids
            .is_empty()
    );
    assert!(
        core::list_ticket_viewers(&snap, "nothing", 10, "")
            .unwrap()
            .ids
            .is_empty()
    );
}

#[test]
fn a_resumed_walk_skips_tickets_removed_before_the_token_id() {
    // The token holds the last id returned: the next page starts after it
    // even if that ticket is gone from the next snapshot's data.
    let data = dataset(2);
    let snap = Snapshot::build(&data).unwrap();
    let all = TicketFilter::default();
    let first = core::list_visible_tickets(&snap, "u-0000000", &all, 3, "").unwrap();
    let mut smaller = data.clone();
    let last = first.ids.last().unwrap().clone();
    smaller.tickets.retain(|t| t.id != last);
    let next_snap = Snapshot::build(&smaller).unwrap();
    let second = core::list_visible_tickets(
        &next_snap,
        "u-0000000",
        &all,
        3,
        first.next_page_token.as_deref().unwrap(),
    )
    .unwrap();
    let mut everything: Vec<String> = smaller.tickets.iter().map(|t| t.id.clone()).collect();
    everything.sort_unstable();
    let after: Vec<String> = everything
        .into_iter()
        .filter(|id| *id > last)
        .take(3)
        .collect();
    assert_eq!(second.ids, after);
}

/// The ticket seam: a row handed in from outside the snapshot (a cache, a
/// caller) decides exactly as the snapshot's own row of the same ticket.
#[test]
fn a_detached_ticket_row_decides_as_the_stored_one() {
    use ticket_authz::snapshot::TicketFacts;
    for seed in [1u64, 7, 42] {
        let data = dataset(seed);
        let snap = Snapshot::build(&data).unwrap();
        let ctx = Context {
            now: Timestamp::from_nanos(0),
            explain: true,
            limits: None,
        };
        let mut compared = 0usize;
        for t in &data.tickets {
            let row = snap.detached_ticket(&TicketFacts {
                id: &t.id,
                created_at: Some(t.created_at),
                requester: &t.requester,
                organisation: t.organisation.as_deref(),
                group: t.group.as_deref(),
                assignee: t.assignee.as_deref(),
                status: t.status,
                ccs: &t.ccs,
                participants: &t.participants,
            });
            let target = data.groups.first().map(|g| g.id.as_str()).unwrap_or("");
            for user in data.users.iter().step_by(3) {
                for action in Action::ALL.into_iter().filter(|a| a.is_ticket_action()) {
                    let req = CheckRequest {
                        user: &user.id,
                        action: ActionInput::Known(action),
                        ticket: &t.id,
                        group: target,
                        ..CheckRequest::default()
                    };
                    let valid = req.validate().unwrap();
                    let stored = core::decide(&snap, &valid, ctx);
                    let detached = core::decide_with(&snap, &valid, Some(&row), ctx);
                    assert_eq!(stored, detached, "{} {} {}", user.id, action.name(), t.id);
                    compared += 1;
                }
            }
        }
        assert!(compared > 10_000, "compared only {compared}");
        // No row: the ticket is unknown, whatever the snapshot holds.
        let req = CheckRequest {
            user: &data.users[0].id,
            action: ActionInput::Known(Action::View),
            ticket: &data.tickets[0].id,
            ..CheckRequest::default()
        };
        let d = core::decide_with(&snap, &req.validate().unwrap(), None, ctx);
        assert_eq!(d.reason, core::Reason::UnknownResource);
    }
}

/// Ids an outside row names that the data does not know match nothing: a
/// ticket of an unknown requester, organisation and group is open only to
/// superadmins and to grants on `*` (which cover every group, as they cover
/// a ticket with no group).
#[test]
fn a_detached_ticket_of_unknown_ids_matches_no_rule() {
    use ticket_authz::snapshot::TicketFacts;
    let data = dataset(3);
    let snap = Snapshot::build(&data).unwrap();
    let nobody: [String; 1] = ["no-such-user".to_owned()];
    let row = snap.detached_ticket(&TicketFacts {
        id: "outside-1",
        created_at: None,
        requester: "no-such-user",
        organisation: Some("no-such-org"),
        group: Some("no-such-group"),
        assignee: Some("no-such-user"),
        status: Status::Open,
        ccs: &nobody,
        participants: &nobody,
    });
    for user in &data.users {
        let req = CheckRequest {
            user: &user.id,
            action: ActionInput::Known(Action::View),
            ticket: "outside-1",
            ..CheckRequest::default()
        };
        let d = core::decide_with(
            &snap,
            &req.validate().unwrap(),
            Some(&row),
            Context::at(Timestamp::from_nanos(0)),
        );
        let superadmin = user.kind == ticket_authz::model::UserKind::Superadmin && !user.suspended;
        let on_all = user
            .grants
            .iter()
            .any(|g| g.group == ticket_authz::model::GrantScope::All);
        match d.reason {
            core::Reason::Superadmin => assert!(superadmin && d.allowed),
            core::Reason::GroupFlag => assert!(on_all && d.allowed, "{}", user.id),
            other => assert!(!d.allowed && !superadmin, "{}: {other:?}", user.id),
        }
    }
}

/// A ticket's facts with another assignee and organisation.
fn facts<'a>(
    t: &'a ticket_authz::model::Ticket,
    assignee: &'a str,
    organisation: &'a str,
) -> ticket_authz::snapshot::TicketFacts<'a> {
    ticket_authz::snapshot::TicketFacts {
        id: &t.id,
        created_at: Some(t.created_at),
        requester: &t.requester,
        organisation: Some(organisation),
        group: t.group.as_deref(),
        assignee: Some(assignee),
        status: t.status,
        ccs: &t.ccs,
        participants: &t.participants,
    }
}

/// An id an outside row names that the data does not know is someone, not
/// no one: a ticket assigned to an unknown user decides every action as a
/// ticket assigned to a real user who is not the one asking (so grp(IW)'s
/// "while the ticket has no assignee" does not open editing), and an
/// unknown organisation as a real one the asker is not in.
#[test]
fn an_unknown_assignee_or_organisation_is_someone_else_not_no_one() {
    let data = dataset(11);
    let snap = Snapshot::build(&data).unwrap();
    let ctx = Context::at(Timestamp::from_nanos(0));
    let lonely_org = "org-nobody-belongs-to";
    let mut data_with_org = data.clone();
    data_with_org
        .organisations
        .push(ticket_authz::model::Organisation {
            id: lonely_org.into(),
            name: "Nobody's".into(),
            ticket_access: ticket_authz::model::OrgAccess::ViewAll,
            domains: Vec::new(),
            access_managers: Vec::new(),
        });
    let snap_with_org = Snapshot::build(&data_with_org).unwrap();
    let mut compared = 0;
    for t in data.tickets.iter().take(60) {
        for user in &data.users {
            // Someone real who is not the asker and in no organisation of
            // the ticket's: the twin of "unknown".
            let other = data
                .users
                .iter()
                .map(|u| u.id.as_str())
                .find(|u| *u != user.id && *u != t.requester)
                .unwrap();
            let unknown = snap.detached_ticket(&facts(t, "ghost-user", "ghost-org"));
            let known = snap_with_org.detached_ticket(&facts(t, other, lonely_org));
            for action in Action::ALL.into_iter().filter(|a| a.is_ticket_action()) {
                let req = CheckRequest {
                    user: &user.id,
                    action: ActionInput::Known(action),
                    ticket: &t.id,
                    group: data.groups[0].id.as_str(),
                    ..CheckRequest::default()
                };
                let valid = req.validate().unwrap();
                let a = core::decide_with(&snap, &valid, Some(&unknown), ctx);
                let b = core::decide_with(&snap_with_org, &valid, Some(&known), ctx);
                assert_eq!(
                    (a.allowed, a.reason),
                    (b.allowed, b.reason),
                    "{} {} on {}",
                    user.id,
                    action.name(),
                    t.id
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 10_000, "compared {compared}");
}
