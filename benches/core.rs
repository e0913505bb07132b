//! Criterion benchmarks of the decision core on the generated dataset
//! (100k users, 2k organisations, 200 groups, 50 profiles, 1M tickets):
//! one check per action, first pages of visible tickets, snapshot build.
//!
//! After criterion's groups, each check and page figure that ran is timed
//! again in alternating rounds with its floor (`support/floor.rs`: the same
//! dependent random reads into tables of the snapshot's sizes), and the
//! ratio is printed and written to `target/criterion/floor-ratios.json`.
//! `FLOOR_ROUNDS` sets the rounds (default 101; 0 skips the ratio pass).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ticket_authz::core::{self, Action, ActionInput, CheckRequest, Context, TicketFilter};
use ticket_authz::generate::{AGENT_USER, NARROW_USER, Spec, WIDE_USER, generate};
use ticket_authz::model::Dataset;
use ticket_authz::snapshot::Snapshot;
use ticket_authz::time::Timestamp;

mod support;

use support::figures::{Figure, ratio_pass, with_floor};
use support::floor::DataFloor;

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

/// The floors' layouts, as `Figure::arena` indexes them.
const ONE_MILLION: usize = 0;
const HUNDRED_THOUSAND: usize = 1;

fn benches(c: &mut Criterion) {
    let data = generate(&Spec::scaled(1_000_000));
    let snap = Snapshot::build(&data).unwrap();
    let small_data = generate(&Spec::scaled(100_000));
    let small = Snapshot::build(&small_data).unwrap();
    let ctx = Context::at(snap.fixed_now().unwrap_or_else(Timestamp::now));
    let pairs = pairs(&data, 4096);
    let mut big_floor = DataFloor::new(&data);
    let small_floor = DataFloor::new(&small_data);
    let by_pair = |group| {
        let iter = pairs.iter().map(|(u, t)| (u.as_str(), t.as_str()));
        (ONE_MILLION, big_floor.ticket_checks(iter, group))
    };
    let ticket_floor = by_pair(None);
    let reassign_floor = by_pair(Some("g-001"));
    // Declared before `figures`, whose closures borrow them.
    let has_flag = CheckRequest {
        user: AGENT_USER,
        action: ActionInput::Known(Action::HasFlag),
        flag: "IW",
        group: "g-150",
        ..CheckRequest::default()
    };
    let company_view = CheckRequest {
        user: AGENT_USER,
        action: ActionInput::Known(Action::CompanyView),
        company: "co-00500",
        ..CheckRequest::default()
    };
    let manage_access = CheckRequest {
        user: "u-0000000",
        action: ActionInput::Known(Action::ManageAccess),
        organisation: "org-00000",
        ..CheckRequest::default()
    };
    let all = TicketFilter::default();
    let wide_first = core::list_visible_tickets(&snap, WIDE_USER, &all, 100, "").unwrap();
    let token = wide_first.next_page_token.clone().unwrap();
    let after = wide_first.ids.last().cloned();
    let mut figures: Vec<Figure<'_>> = Vec::new();

    let mut checks = c.benchmark_group("check_1m");
    for action in [
        Action::View,
        Action::Comment,
        Action::Edit,
        Action::Close,
        Action::Delete,
        Action::Reassign,
    ] {
        let (group, plan) = if action == Action::Reassign {
            ("g-001", reassign_floor.clone())
        } else {
            ("", ticket_floor.clone())
        };
        let (snap, pairs) = (&snap, &pairs);
        with_floor(
            &mut checks,
            "check_1m",
            action.name(),
            &mut figures,
            plan,
            move |i| {
                let (user, ticket) = &pairs[i % pairs.len()];
                black_box(core::check(snap, &request(user, action, ticket, group), ctx).unwrap());
            },
        );
    }
    let end_users = pairs.iter().step_by(3).map(|(u, _)| u.as_str());
    let floor = big_floor.create(end_users, "g-000", ctx.now);
    with_floor(
        &mut checks,
        "check_1m",
        "create_with_limits_end_user",
        &mut figures,
        (ONE_MILLION, floor),
        |i| {
            // Every third pair: the requesters, end-users.
            let (user, _) = &pairs[(i * 3) % pairs.len()];
            black_box(
                core::check(&snap, &request(user, Action::Create, "", "g-000"), ctx).unwrap(),
            );
        },
    );
    let floor = big_floor.create(std::iter::once(AGENT_USER), "g-000", ctx.now);
    with_floor(
        &mut checks,
        "check_1m",
        "create_with_limits_agent",
        &mut figures,
        (ONE_MILLION, floor),
        |_| {
            let req = request(AGENT_USER, Action::Create, "", "g-000");
            black_box(core::check(&snap, &req, ctx).unwrap());
        },
    );
    with_floor(
        &mut checks,
        "check_1m",
        "has_flag",
        &mut figures,
        (ONE_MILLION, big_floor.has_flag(AGENT_USER, "g-150")),
        |_| {
            black_box(core::check(&snap, &has_flag, ctx).unwrap());
        },
    );
    with_floor(
        &mut checks,
        "check_1m",
        "company_view",
        &mut figures,
        (ONE_MILLION, big_floor.company_view(AGENT_USER, "co-00500")),
        |_| {
            black_box(core::check(&snap, &company_view, ctx).unwrap());
        },
    );
    let floor = big_floor.manage_access("u-0000000", "org-00000");
    with_floor(
        &mut checks,
        "check_1m",
        "manage_access",
        &mut figures,
        (ONE_MILLION, floor),
        |_| {
            black_box(core::check(&snap, &manage_access, ctx).unwrap());
        },
    );
    checks.finish();

    let page_floor = |floor: &DataFloor<'_>, snap: &Snapshot, user: &str, after: Option<&str>| {
        floor
            .page(snap, user, after, 100)
            .expect("the bench users' visibility needs no company scope")
    };
    let wide_floor = page_floor(&big_floor, &snap, WIDE_USER, None);
    let resumed_floor = page_floor(&big_floor, &snap, WIDE_USER, after.as_deref());
    let narrow_floor = page_floor(&big_floor, &snap, NARROW_USER, None);
    let narrow_small_floor = page_floor(&small_floor, &small, NARROW_USER, None);
    let mut pages = c.benchmark_group("first_page_100");
    let one_m = ONE_MILLION;
    for (name, (size, plan), snap, user, token) in [
        ("wide_user_1m", (one_m, wide_floor), &snap, WIDE_USER, ""),
        (
            "wide_user_1m_resumed",
            (one_m, resumed_floor),
            &snap,
            WIDE_USER,
            token.as_str(),
        ),
        (
            "narrow_user_1m",
            (one_m, narrow_floor),
            &snap,
            NARROW_USER,
            "",
        ),
        (
            "narrow_user_100k",
            (HUNDRED_THOUSAND, narrow_small_floor),
            &small,
            NARROW_USER,
            "",
        ),
    ] {
        let all = &all;
        with_floor(
            &mut pages,
            "first_page_100",
            name,
            &mut figures,
            (size, plan),
            move |_| {
                black_box(core::list_visible_tickets(snap, user, all, 100, token).unwrap());
            },
        );
    }
    // No floor for these two: which rows a viewer list reads depends on
    // the filters of each of its merged lists, which a plan would have to
    // replicate rule by rule; the visibility filter reads small tables.
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

    ratio_pass(
        &mut figures,
        &[
            ("1M-ticket tables", &big_floor.layout),
            ("100k", &small_floor.layout),
        ],
        "floor-ratios.json",
    );
}

criterion_group!(core_benches, benches);
criterion_main!(core_benches);
