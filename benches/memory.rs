//! Resident memory per ticket: a child process builds the snapshot of the
//! generated dataset with N tickets (and everything else the same), drops
//! the source data and reports its resident set; the parent prints
//! (RSS(N) − RSS(0)) / N. Run with `cargo bench --bench memory`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::{Duration, Instant};

use ticket_authz::generate::{Spec, generate};
use ticket_authz::snapshot::Snapshot;

mod support;

// The same allocator as the service binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn child(tickets: usize, scale: usize) {
    let spec = Spec {
        tickets,
        ..Spec::scaled(scale)
    };
    let data = generate(&spec);
    let started = Instant::now();
    let snap = Snapshot::build(&data).unwrap();
    let build = started.elapsed();
    drop(data);
    // Let the allocator hand the source data's pages back.
    std::thread::sleep(Duration::from_millis(500));
    let rss = support::proc_status_bytes("VmRSS");
    println!("{rss} {} {}", build.as_millis(), snap.stats().tickets);
}

fn measure(tickets: usize, scale: usize) -> (u64, u128) {
    let out = Command::new(std::env::current_exe().unwrap())
        .env("TICKET_AUTHZ_MEMORY_CHILD", format!("{tickets},{scale}"))
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
        let (tickets, scale) = spec.split_once(',').unwrap();
        child(tickets.parse().unwrap(), scale.parse().unwrap());
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` does not run us.
    for scale in [100_000usize, 1_000_000] {
        let (empty, _) = measure(0, scale);
        let (full, build_ms) = measure(scale, scale);
        let per_ticket = (full.saturating_sub(empty)) as f64 / scale as f64;
        println!(
            "memory/{scale}_tickets: rss without tickets {:.1} MiB, with {:.1} MiB, {per_ticket:.1} bytes per ticket; build {build_ms} ms",
            empty as f64 / 1048576.0,
            full as f64 / 1048576.0,
        );
    }
}
