//! Criterion comparison of the decision core with Cedar and Rego (regorus,
//! compiled VM) on the ticket `view` and `comment` rules: per-check time on
//! one list of questions, and listing one user's visible tickets. Nothing
//! is timed until the three engines agree on every compared question.
//!
//! Dataset: `generate::Spec::scaled(PEERS_TICKETS)` (default 100,000
//! tickets), the same for all three engines. Peers list by checking each
//! ticket of an evenly spread subset of at most 10,000 tickets; scale their
//! time by tickets / subset for the whole list.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use ticket_authz::core::{Action, Context};
use ticket_authz::generate::{Spec, WIDE_USER, generate};
use ticket_authz::model::{UserAccess, UserKind};
use ticket_authz::snapshot::Snapshot;
use ticket_authz::time::Timestamp;
use ticket_authz_peers::{
    CedarPeer, Facts, PeerList, RegoPeer, agree_on_checks, agree_on_list, listing, ours, sample,
};

// The service binary's allocator, for all three engines: the peers
// allocate on every evaluation, and would share it if embedded.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Questions per action, each asked of all three engines in turn.
const PROBES: usize = 4096;
/// Tickets a peer checks to list one user's visible tickets.
const LIST_SUBSET: usize = 10_000;

fn tickets() -> usize {
    std::env::var("PEERS_TICKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn benches(c: &mut Criterion) {
    let n = tickets();
    let data = generate(&Spec::scaled(n));
    let started = Instant::now();
    let snap = Snapshot::build(&data).unwrap();
    let ctx = Context::at(snap.fixed_now().unwrap_or_else(Timestamp::now));
    eprintln!(
        "peers: {} tickets, {} users: our snapshot built in {:.1?}",
        data.tickets.len(),
        data.users.len(),
        started.elapsed()
    );
    let started = Instant::now();
    let facts = Facts::derive(&data);
    eprintln!("peers: precomputed facts in {:.1?}", started.elapsed());
    let started = Instant::now();
    let cedar = CedarPeer::build(&data, &facts).unwrap();
    eprintln!(
        "peers: Cedar entities and policies in {:.1?}",
        started.elapsed()
    );
    let started = Instant::now();
    let mut rego = RegoPeer::build(&data, &facts).unwrap();
    eprintln!(
        "peers: Rego data and RVM program in {:.1?}",
        started.elapsed()
    );

    // Agreement first: a comparison that disagrees is never reported.
    let probes = sample(&data, &facts, PROBES, 99);
    let tally = agree_on_checks(&snap, ctx, &cedar, &mut rego, &probes)
        .unwrap_or_else(|e| panic!("not timing: {e}"));
    eprintln!(
        "peers: all three engines agree on {} questions ({} pairs × view, comment); allowed {:.1}%",
        tally.questions(),
        probes.len(),
        100.0 * tally.allow_fraction()
    );
    for (action, (asked, allowed)) in &tally.by_action {
        eprintln!(
            "peers:   {action}: {allowed} of {asked} allowed ({:.1}%)",
            100.0 * *allowed as f64 / (*asked).max(1) as f64
        );
    }
    for (kind, (asked, allowed)) in &tally.by_kind {
        eprintln!("peers:   {kind:?}: {allowed} of {asked} allowed");
    }
    for (reason, count) in &tally.reasons {
        eprintln!("peers:   decided by {reason}: {count}");
    }

    // Listing: the wide agent, and an end-user who views its organisations'
    // tickets.
    let member = data
        .users
        .iter()
        .enumerate()
        .find(|(i, u)| {
            u.kind == UserKind::EndUser
                && !u.suspended
                && u.ticket_access == UserAccess::Organisation
                && facts.memberships.get(*i).is_some_and(|m| !m.is_empty())
        })
        .map(|(_, u)| u.id.clone())
        .expect("an end-user with organisation access");
    let subset = listing::spread(&data, LIST_SUBSET);
    let scale = data.tickets.len() as f64 / subset.len() as f64;
    let mut lists = Vec::new();
    for (label, user) in [("wide_agent", WIDE_USER), ("org_member", member.as_str())] {
        let list = PeerList::new(&cedar, user, subset.clone()).unwrap();
        let in_subset = agree_on_list(&snap, &cedar, &mut rego, &list)
            .unwrap_or_else(|e| panic!("not timing: {e}"));
        let total = ours::visible_tickets(&snap, user).unwrap().len();
        eprintln!(
            "peers: {label} {user} sees {total} of {} tickets; {in_subset} of the {} checked by the peers (engines agree); peers' list time × {scale:.1} for the whole list",
            data.tickets.len(),
            subset.len()
        );
        lists.push((label, list));
    }

    for action in [Action::View, Action::Comment] {
        let cedar_requests: Vec<_> = probes
            .iter()
            .map(|p| cedar.request(&p.user, action, &p.ticket).unwrap())
            .collect();
        let rego_inputs: Vec<_> = probes
            .iter()
            .map(|p| RegoPeer::input(&p.user, &p.ticket))
            .collect();
        let mut group = c.benchmark_group(format!("peers_{}", action.name()));
        let mut i = 0usize;
        group.bench_function("ours", |b| {
            b.iter(|| {
                let p = &probes[i % probes.len()];
                i += 1;
                black_box(ours::check(&snap, ctx, &p.user, action, &p.ticket).unwrap())
            })
        });
        let mut i = 0usize;
        group.bench_function("cedar", |b| {
            b.iter(|| {
                let request = &cedar_requests[i % cedar_requests.len()];
                i += 1;
                black_box(cedar.is_allowed(request))
            })
        });
        let mut i = 0usize;
        group.bench_function("rego", |b| {
            b.iter(|| {
                let input = &rego_inputs[i % rego_inputs.len()];
                i += 1;
                black_box(rego.is_allowed(action, input).unwrap())
            })
        });
        group.finish();
    }

    let mut group = c.benchmark_group("peers_list");
    group.sample_size(10);
    for (label, list) in &lists {
        let user = list.user.as_str();
        group.bench_function(format!("ours_full_walk/{label}"), |b| {
            b.iter(|| black_box(ours::visible_tickets(&snap, user).unwrap()))
        });
        group.bench_function(format!("ours_first_page_100/{label}"), |b| {
            b.iter(|| black_box(ours::first_page(&snap, user, 100).unwrap()))
        });
        group.bench_function(format!("cedar_subset/{label}"), |b| {
            b.iter(|| black_box(list.cedar_visible(&cedar)))
        });
        group.bench_function(format!("rego_subset/{label}"), |b| {
            b.iter(|| black_box(list.rego_visible(&mut rego).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(peer_benches, benches);
criterion_main!(peer_benches);
