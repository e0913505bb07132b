//! Criterion benchmarks of the decision core on the generated dataset
//! (100k users, 2k organisations, 200 groups, 50 profiles, 1M tickets):
//! one check per action, first pages of visible tickets, snapshot build.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ticket_authz::core::{self, Action, ActionInput, CheckRequest, Context, TicketFilter};
use ticket_authz::generate::{AGENT_USER, NARROW_USER, Spec, WIDE_USER, generate};
use ticket_authz::model::Dataset;
use ticket_authz::snapshot::Snapshot;
use ticket_authz::time::Timestamp;

/// Pairs of (user, ticket) a check rotates through, so that one benchmark
/// does not measure one cached path: agents with grants on the ticket's
/// group tree, requesters, and members.
fn pairs(data: &Dataset, n: usize) -> Vec<(String, String)> {
    let mut rng = fastrand::Rng::with_seed(99);
    let agents = ticket_authz::generate::agent_ids(data);
    (0..n)
        .map(|i| {
            let t = &data.tickets[rng.usize(0..data.tickets.len())];
            let user = match i % 3 {
                0 => t.requester.clone(),
                1 => agents[rng.usize(0..agents.len())].to_owned(),
                _ => AGENT_USER.to_owned(),
            };
            (user, t.id.clone())
        })
        .collect()
}

fn request<'a>(user: &'a str, action: Action, ticket: &'a str, group: &'a str) -> CheckRequest<'a> {
    CheckRequest {
        user,
        action: ActionInput::Known(action),
        ticket,
        group,
        ..CheckRequest::default()
    }
}

fn benches(c: &mut Criterion) {
    let data = generate(&Spec::scaled(1_000_000));
    let snap = Snapshot::build(&data).unwrap();
    let small_data = generate(&Spec::scaled(100_000));
    let small = Snapshot::build(&small_data).unwrap();
    let ctx = Context::at(snap.fixed_now().unwrap_or_else(Timestamp::now));
    let pairs = pairs(&data, 4096);

    let mut checks = c.benchmark_group("check_1m");
    for action in [
        Action::View,
        Action::Comment,
        Action::Edit,
        Action::Close,
        Action::Delete,
        Action::Reassign,
    ] {
        let mut i = 0usize;
        checks.bench_function(action.name(), |b| {
            b.iter(|| {
                let (user, ticket) = &pairs[i % pairs.len()];
                i += 1;
                let group = if action == Action::Reassign {
                    "g-001"
                } else {
                    ""
                };
                black_box(core::check(&snap, &request(user, action, ticket, group), ctx).unwrap())
            })
        });
    }
    checks.bench_function("create_with_limits_end_user", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let (user, _) = &pairs[(i * 3) % pairs.len()];
            i += 1;
            black_box(core::check(&snap, &request(user, Action::Create, "", "g-000"), ctx).unwrap())
        })
    });
    checks.bench_function("create_with_limits_agent", |b| {
        b.iter(|| {
            black_box(
                core::check(
                    &snap,
                    &request(AGENT_USER, Action::Create, "", "g-000"),
                    ctx,
                )
                .unwrap(),
            )
        })
    });
    checks.bench_function("has_flag", |b| {
        let req = CheckRequest {
            user: AGENT_USER,
            action: ActionInput::Known(Action::HasFlag),
            flag: "IW",
            group: "g-150",
            ..CheckRequest::default()
        };
        b.iter(|| black_box(core::check(&snap, &req, ctx).unwrap()))
    });
    checks.bench_function("company_view", |b| {
        let req = CheckRequest {
            user: AGENT_USER,
            action: ActionInput::Known(Action::CompanyView),
            company: "co-00500",
            ..CheckRequest::default()
        };
        b.iter(|| black_box(core::check(&snap, &req, ctx).unwrap()))
    });
    checks.bench_function("manage_access", |b| {
        let req = CheckRequest {
            user: "u-0000000",
            action: ActionInput::Known(Action::ManageAccess),
            organisation: "org-00000",
            ..CheckRequest::default()
        };
        b.iter(|| black_box(core::check(&snap, &req, ctx).unwrap()))
    });
    checks.finish();

    let all = TicketFilter::default();
    let mut pages = c.benchmark_group("first_page_100");
    pages.bench_function("wide_user_1m", |b| {
        b.iter(|| black_box(core::list_visible_tickets(&snap, WIDE_USER, &all, 100, "").unwrap()))
    });
    let wide_first = core::list_visible_tickets(&snap, WIDE_USER, &all, 100, "").unwrap();
    let token = wide_first.next_page_token.unwrap();
    pages.bench_function("wide_user_1m_resumed", |b| {
        b.iter(|| {
            black_box(core::list_visible_tickets(&snap, WIDE_USER, &all, 100, &token).unwrap())
        })
    });
    pages.bench_function("narrow_user_1m", |b| {
        b.iter(|| black_box(core::list_visible_tickets(&snap, NARROW_USER, &all, 100, "").unwrap()))
    });
    pages.bench_function("narrow_user_100k", |b| {
        b.iter(|| {
            black_box(core::list_visible_tickets(&small, NARROW_USER, &all, 100, "").unwrap())
        })
    });
    pages.bench_function("viewers_1m", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let (_, ticket) = &pairs[i % pairs.len()];
            i += 1;
            black_box(core::list_ticket_viewers(&snap, ticket, 100, "").unwrap())
        })
    });
    pages.bench_function("visibility_filter_wide", |b| {
        b.iter(|| black_box(core::visibility_filter(&snap, WIDE_USER)))
    });
    pages.finish();

    // What the follower does per batch: clone the current snapshot (chunk
    // pointers only) and apply a one-row change to the clone.
    let mut apply = c.benchmark_group("apply_1m");
    let existing = data.tickets[123_456].clone();
    let fields = ticket_authz::snapshot::TicketFields {
        group: Some("g-007".into()),
        assignee: Some(AGENT_USER.into()),
        status: ticket_authz::model::Status::Pending,
        ..ticket_authz::snapshot::TicketFields::from(&existing)
    };
    apply.bench_function("update_ticket", |b| {
        b.iter(|| {
            let mut next = snap.clone();
            next.upsert_ticket(&fields).unwrap();
            black_box(next)
        })
    });
    let new_ticket = ticket_authz::snapshot::TicketFields {
        id: "T00500000x".into(),
        ..fields.clone()
    };
    apply.bench_function("insert_ticket", |b| {
        b.iter(|| {
            let mut next = snap.clone();
            next.upsert_ticket(&new_ticket).unwrap();
            black_box(next)
        })
    });
    apply.bench_function("add_cc", |b| {
        b.iter(|| {
            let mut next = snap.clone();
            next.set_ticket_person(
                &existing.id,
                NARROW_USER,
                ticket_authz::snapshot::Role::Cc,
                true,
            )
            .unwrap();
            black_box(next)
        })
    });
    let agent = data.users.iter().find(|u| u.id == AGENT_USER).unwrap();
    let suspended = ticket_authz::snapshot::UserFields {
        id: agent.id.clone(),
        email: agent.email.clone(),
        name: agent.name.clone(),
        created_at: agent.created_at,
        kind: agent.kind,
        suspended: true,
        ticket_access: agent.ticket_access,
        default_organisation: agent.default_organisation.clone(),
        company: agent.company.clone(),
        company_scoped: agent.company_scoped,
    };
    apply.bench_function("update_user", |b| {
        b.iter(|| {
            let mut next = snap.clone();
            next.upsert_user(&suspended).unwrap();
            black_box(next)
        })
    });
    apply.bench_function("add_membership", |b| {
        b.iter(|| {
            let mut next = snap.clone();
            next.set_membership(NARROW_USER, "org-00001", true).unwrap();
            black_box(next)
        })
    });
    apply.bench_function("add_grant", |b| {
        b.iter(|| {
            let mut next = snap.clone();
            next.set_grant(AGENT_USER, "p-reader", Some("g-150"), true)
                .unwrap();
            black_box(next)
        })
    });
    // Wide changes: each costs what it affects (the users at a domain, a
    // profile's grantees), not a rebuild.
    let added_at = data.organisations[0].domains[0].added_at;
    apply.bench_function("add_domain", |b| {
        b.iter(|| {
            let mut next = snap.clone();
            next.set_domain("org-00002", "org1.example", added_at, true)
                .unwrap();
            black_box(next)
        })
    });
    apply.bench_function("add_partnership", |b| {
        b.iter(|| {
            let mut next = snap.clone();
            next.set_partnership("org-00000", "org-00010", added_at, true)
                .unwrap();
            black_box(next)
        })
    });
    apply.bench_function("profile_ir_off", |b| {
        b.iter(|| {
            let mut next = snap.clone();
            next.set_profile_flag("p-reader", ticket_authz::flags::Flag::IR, false)
                .unwrap();
            black_box(next)
        })
    });
    let group = data.groups.iter().find(|g| g.id == "g-007").unwrap();
    let toggled = ticket_authz::model::Group {
        id: group.id.clone(),
        name: group.name.clone(),
        parent: group.parent.clone(),
        propagate: !group.propagate,
        open_ticket_limit: group.open_ticket_limit,
        enforce_open_limit: group.enforce_open_limit,
        total_ticket_limit: group.total_ticket_limit,
    };
    apply.bench_function("group_propagate", |b| {
        b.iter(|| {
            let mut next = snap.clone();
            next.upsert_group(&toggled).unwrap();
            black_box(next)
        })
    });
    apply.finish();

    let mut build = c.benchmark_group("snapshot_build");
    build
        .sample_size(10)
        .measurement_time(Duration::from_secs(40));
    build.bench_function("1m_tickets", |b| {
        b.iter_batched(
            || (),
            |()| black_box(Snapshot::build(&data).unwrap()),
            BatchSize::PerIteration,
        )
    });
    build.finish();
}

criterion_group!(core_benches, benches);
criterion_main!(core_benches);
