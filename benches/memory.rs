//! Resident memory per ticket: a child process builds the snapshot of the
//! generated dataset with N tickets (and everything else the same), drops
//! the source data and reports its resident set; the parent prints
//! (RSS(N) − RSS(0)) / N. Then the same per service-desk section resource
//! (issue 20): the 1M-ticket dataset without sections and with 1M of them
//! (`add_sections`). Run with `cargo bench --bench memory`;
//! `MEMORY_BENCH=tickets` or `sections` runs one half.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::{Duration, Instant};

use ticket_authz::generate::{Spec, add_sections, generate};
use ticket_authz::snapshot::Snapshot;

mod support;

// The same allocator as the service binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn child(tickets: usize, scale: usize, sections: usize) {
    let spec = Spec {
        tickets,
        ..Spec::scaled(scale)
    };
    let mut data = generate(&spec);
    add_sections(&mut data, sections, spec.seed);
    let started = Instant::now();
    let snap = Snapshot::build(&data).unwrap();
    let build = started.elapsed();
    drop(data);
    // Let the allocator hand the source data's pages back.
    std::thread::sleep(Duration::from_millis(500));
    let rss = support::proc_status_bytes("VmRSS");
    println!("{rss} {} {}", build.as_millis(), snap.stats().tickets);
}

fn measure(tickets: usize, scale: usize, sections: usize) -> (u64, u128) {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(
            "TICKET_AUTHZ_MEMORY_CHILD",
            format!("{tickets},{scale},{sections}"),
        )
        .env("MIMALLOC_PURGE_DELAY", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut parts = text.split_whitespace();
    let rss = parts.next().unwrap().parse().unwrap();
    let ms = parts.next().unwrap().parse().unwrap();
    (rss, ms)
}

fn main() {
    if let Ok(spec) = std::env::var("TICKET_AUTHZ_MEMORY_CHILD") {
        let sizes: Vec<usize> = spec.split(',').map(|n| n.parse().unwrap()).collect();
        child(sizes[0], sizes[1], sizes[2]);
        return;
    }
    let which = std::env::var("MEMORY_BENCH").unwrap_or_default();
    if which != "sections" {
        tickets();
    }
    if which != "tickets" {
        sections();
    }
}

/// Resident bytes per section resource: the 1M-ticket dataset with and
/// without 1M section resources, each in a child of its own.
fn sections() {
    let (scale, resources) = (1_000_000usize, 1_000_000usize);
    let (without, _) = measure(scale, scale, 0);
    let (with, build_ms) = measure(scale, scale, resources);
    let per_resource = (with.saturating_sub(without)) as f64 / resources as f64;
    println!(
        "memory/{resources}_section_resources: rss at {scale} tickets without sections {:.1} MiB, with {:.1} MiB, {per_resource:.1} bytes per section resource; build {build_ms} ms",
        without as f64 / 1048576.0,
        with as f64 / 1048576.0,
    );
}

fn tickets() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not run us.
    for scale in [100_000usize, 1_000_000] {
        let (empty, _) = measure(0, scale, 0);
        let (full, build_ms) = measure(scale, scale, 0);
        let per_ticket = (full.saturating_sub(empty)) as f64 / scale as f64;
        println!(
            "memory/{scale}_tickets: rss without tickets {:.1} MiB, with {:.1} MiB, {per_ticket:.1} bytes per ticket; build {build_ms} ms",
            empty as f64 / 1048576.0,
            full as f64 / 1048576.0,
        );
    }
}
