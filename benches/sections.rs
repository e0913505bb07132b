//! Criterion benchmarks of the service-desk sections (access model §8,
//! issue 20) at 1M section resources: the generated service desk of
//! `benches/core.rs` (100k users, 1M tickets) with `add_sections` adding
//! 1M projects, tasks, wiki pages, inventory items, invoices, leads, agenda
//! events and downloads. One check figure per section action (and a
//! ticket `view` on the same snapshot, the yardstick), and the
//! first page of 100 of `ListVisibleResources` per kind for the user who
//! sees the most of that kind (of a sample of agents, superadmins aside:
//! they list a table in order without a rule).
//!
//! As in `benches/core.rs`, each figure is timed again in alternating
//! rounds with its floor (`support/floor.rs`, `SectionFloor`) and the
//! ratio is printed and written to `target/criterion/sections-floor-ratios.json`;
//! `FLOOR_ROUNDS` sets the rounds (default 101; 0 skips the ratio pass).
//! `SECTIONS_RESOURCES` changes the 1M (for a quick run).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ticket_authz::core::{self, Action, ActionInput, CheckRequest, Context};
use ticket_authz::generate::{SECTIONS_USER, Spec, add_sections, agent_ids, generate};
use ticket_authz::model::{Dataset, ResourceKind};
use ticket_authz::snapshot::Snapshot;
use ticket_authz::time::Timestamp;

mod support;

use support::figures::{Figure, ratio_pass, with_floor};
use support::floor::{DataFloor, SectionFloor, SectionTable};

/// Each resource of a kind with the users the data ties to it (owner,
/// members, associated users), so that a check's pairs reach the rules
/// past the first, not only the denials of strangers.
fn resources(data: &Dataset, kind: Option<ResourceKind>) -> Vec<(&str, Vec<&str>)> {
    let s = &data.sections;
    let Some(kind) = kind else {
        // `user_manage`: any user is a target.
        return data
            .users
            .iter()
            .map(|u| (u.id.as_str(), Vec::new()))
            .collect();
    };
    match kind {
        ResourceKind::Project => s
            .projects
            .iter()
            .map(|p| {
                let mut m = p.members.iter().map(|m| m.user.as_str());
                (p.id.as_str(), users_of(&p.owner, &mut m))
            })
            .collect(),
        ResourceKind::Task => {
            let project: std::collections::HashMap<&str, &ticket_authz::model::Project> =
                s.projects.iter().map(|p| (p.id.as_str(), p)).collect();
            s.tasks
                .iter()
                .map(|t| {
                    let p = project[t.project.as_str()];
                    let mut m = t.members.iter().chain(&p.members).map(|m| m.user.as_str());
                    (t.id.as_str(), users_of(&p.owner, &mut m))
                })
                .collect()
        }
        ResourceKind::WikiPage => s
            .wiki_pages
            .iter()
            .map(|w| (w.id.as_str(), Vec::new()))
            .collect(),
        ResourceKind::InventoryItem => s
            .inventory_items
            .iter()
            .map(|i| {
                let mut m = i.users.iter().map(String::as_str);
                (i.id.as_str(), users_of(&i.owner, &mut m))
            })
            .collect(),
        ResourceKind::Invoice => s
            .invoices
            .iter()
            .map(|v| (v.id.as_str(), Vec::new()))
            .collect(),
        ResourceKind::Lead => s
            .leads
            .iter()
            .map(|l| (l.id.as_str(), users_of(&l.owner, &mut std::iter::empty())))
            .collect(),
        ResourceKind::AgendaEvent => s
            .agenda_events
            .iter()
            .map(|e| (e.id.as_str(), users_of(&e.owner, &mut std::iter::empty())))
            .collect(),
        ResourceKind::Download => s
            .downloads
            .iter()
            .map(|d| (d.id.as_str(), Vec::new()))
            .collect(),
    }
}

/// An owner, if any, then more users.
fn users_of<'d>(
    owner: &'d Option<String>,
    more: &mut dyn Iterator<Item = &'d str>,
) -> Vec<&'d str> {
    owner.as_deref().into_iter().chain(more).collect()
}

/// (user, resource) pairs a check rotates through: a random agent, a
/// user the resource names (or a random agent), and the bench user who
/// holds every section flag, in turn; resources drawn at random. The
/// `_create` actions name no resource.
fn pairs(data: &Dataset, action: Action, n: usize) -> Vec<(&str, &str)> {
    let mut rng = fastrand::Rng::with_seed(99);
    let agents = agent_ids(data);
    if !action.needs_resource() {
        return (0..n)
            .map(|i| match i % 2 {
                0 => (agents[rng.usize(0..agents.len())], ""),
                _ => (SECTIONS_USER, ""),
            })
            .collect();
    }
    let pool = resources(data, action.resource_kind());
    (0..n)
        .map(|i| {
            let (id, named) = &pool[rng.usize(0..pool.len())];
            let user = match i % 3 {
                0 => agents[rng.usize(0..agents.len())],
                1 if !named.is_empty() => named[rng.usize(0..named.len())],
                1 => agents[rng.usize(0..agents.len())],
                _ => SECTIONS_USER,
            };
            (user, *id)
        })
        .collect()
}

/// The number of resources of `kind` `user` sees, walking every page.
fn visible_count(snap: &Snapshot, user: &str, kind: ResourceKind) -> usize {
    let mut after: Option<String> = None;
    let mut seen = 0;
    loop {
        let (ids, more) = core::visible_resources_after(snap, user, kind, after.as_deref(), 10_000);
        seen += ids.len();
        if !more {
            return seen;
        }
        after = ids.last().cloned();
    }
}

/// Of the bench user, the ten agents the generator's skew favours and
/// ten more at random, the one who sees the most of `kind`, with the
/// count.
fn widest<'d>(data: &'d Dataset, snap: &Snapshot, kind: ResourceKind) -> (&'d str, usize) {
    let agents = agent_ids(data);
    let mut rng = fastrand::Rng::with_seed(5);
    let mut sample = vec![SECTIONS_USER];
    sample.extend(agents.iter().take(10));
    sample.extend((0..10).map(|_| agents[rng.usize(0..agents.len())]));
    sample
        .into_iter()
        .map(|u| (u, visible_count(snap, u, kind)))
        .max_by_key(|&(_, n)| n)
        .unwrap()
}

fn benches(c: &mut Criterion) {
    let total = std::env::var("SECTIONS_RESOURCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000usize);
    let spec = Spec::scaled(1_000_000);
    let mut data = generate(&spec);
    add_sections(&mut data, total, spec.seed);
    let snap = Snapshot::build(&data).unwrap();
    let stats = &data.sections;
    eprintln!(
        "sections: {} projects, {} tasks, {} wiki pages, {} items, {} invoices, {} leads, {} events, {} downloads ({} categories)",
        stats.projects.len(),
        stats.tasks.len(),
        stats.wiki_pages.len(),
        stats.inventory_items.len(),
        stats.invoices.len(),
        stats.leads.len(),
        stats.agenda_events.len(),
        stats.downloads.len(),
        stats.download_categories.len()
    );
    let ctx = Context::at(snap.fixed_now().unwrap_or_else(Timestamp::now));
    let mut base = DataFloor::new(&data);
    let sections = SectionFloor::new(&mut base.layout, &data);
    let all_pairs: Vec<(Action, Vec<(&str, &str)>)> = Action::ALL
        .into_iter()
        .filter(|a| a.is_section_action())
        .map(|a| (a, pairs(&data, a, 4096)))
        .collect();
    // The yardstick: a ticket `view` on the same snapshot, in the same
    // run, so that a section check reads against the ticket check (whose
    // goal and quiet figure are known) on a host whose memory latency
    // varies from day to day.
    let ticket_pairs: Vec<(&str, &str)> = {
        let mut rng = fastrand::Rng::with_seed(98);
        let agents = agent_ids(&data);
        (0..4096)
            .map(|i| {
                let t = &data.tickets[rng.usize(0..data.tickets.len())];
                let user = match i % 3 {
                    0 => agents[rng.usize(0..agents.len())],
                    1 => t.requester.as_str(),
                    _ => SECTIONS_USER,
                };
                (user, t.id.as_str())
            })
            .collect()
    };
    let mut figures: Vec<Figure<'_>> = Vec::new();

    let mut checks = c.benchmark_group("section_check_1m");
    {
        let plan = base.ticket_checks(ticket_pairs.iter().copied(), None);
        let (snap, pairs) = (&snap, &ticket_pairs);
        with_floor(
            &mut checks,
            "section_check_1m",
            "ticket_view",
            &mut figures,
            (0, plan),
            move |i| {
                let (user, ticket) = pairs[i % pairs.len()];
                let request = CheckRequest {
                    user,
                    action: ActionInput::Known(Action::View),
                    ticket,
                    ..CheckRequest::default()
                };
                black_box(core::check(snap, &request, ctx).unwrap());
            },
        );
    }
    for (action, pairs) in &all_pairs {
        let action = *action;
        let plan = sections.checks(&base, action, pairs.iter().copied());
        let snap = &snap;
        with_floor(
            &mut checks,
            "section_check_1m",
            action.name(),
            &mut figures,
            (0, plan),
            move |i| {
                let (user, resource) = pairs[i % pairs.len()];
                let request = CheckRequest {
                    user,
                    action: ActionInput::Known(action),
                    resource,
                    ..CheckRequest::default()
                };
                black_box(core::check(snap, &request, ctx).unwrap());
            },
        );
    }
    checks.finish();

    let mut pages = c.benchmark_group("resources_first_page_100");
    for &kind in ResourceKind::ALL {
        let (user, count) = widest(&data, &snap, kind);
        let first = core::visible_resources_after(&snap, user, kind, None, 101).0;
        eprintln!(
            "resources: {} sees {count} of kind {} (the most of the sample)",
            user,
            kind.name()
        );
        let plan = sections.page(&base, user, SectionTable::of_kind(kind), &first);
        let snap = &snap;
        with_floor(
            &mut pages,
            "resources_first_page_100",
            kind.name(),
            &mut figures,
            (0, plan),
            move |_| {
                black_box(core::list_visible_resources(snap, user, kind, 100, "").unwrap());
            },
        );
    }
    pages.finish();

    ratio_pass(
        &mut figures,
        &[("1M-ticket and 1M-section tables", &base.layout)],
        "sections-floor-ratios.json",
    );
}

criterion_group!(section_benches, benches);
criterion_main!(section_benches);
