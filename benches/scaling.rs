//! The scaling table of issue 6: for each size (tickets, with users and
//! organisations scaled alongside by `Spec::scaled`), child processes of
//! this binary measure resident memory per ticket (one child with the
//! tickets, one with none, as `benches/memory.rs`) and, in a third child,
//! snapshot build, check p50, first pages, a full walk of a large list,
//! one-row apply time and, when `DATABASE_URL` (a PostgreSQL admin URL) is
//! set, the load from PostgreSQL at start. Each child prints one
//! machine-readable line; the parent prints markdown tables.
//!
//! Run with `cargo bench --bench scaling`. Environment:
//! * `SCALING_TICKETS`: comma-separated sizes (default `100000,1000000,10000000`);
//! * `DATABASE_URL`: enables the PostgreSQL column; each size imports into
//!   its own database `ta_scaling_<n>`, dropped afterwards;
//! * `SCALING_PG_MAX`: the largest size that gets the PostgreSQL column
//!   (default: every size);
//! * `FLOOR_ROUNDS`: rounds of the ratio of checks and first pages to their
//!   memory-latency floor (`support/floor.rs`, default 101; 0 skips it).
//!
//! The ratios are printed as a third table and written to
//! `target/criterion/scaling-floor-ratios.json`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::hint::black_box;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ticket_authz::core::{self, Action, ActionInput, CheckRequest, Context, TicketFilter};
use ticket_authz::db::Database;
use ticket_authz::generate::{self, AGENT_USER, NARROW_USER, Spec, WIDE_USER, generate};
use ticket_authz::model::{Dataset, Status};
use ticket_authz::snapshot::{Role, Snapshot, TicketFields};
use ticket_authz::time::Timestamp;

mod support;

use support::floor::{self, Arena, DataFloor, Ratio};

// The same allocator as the service binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHILD_ENV: &str = "TICKET_AUTHZ_SCALING_CHILD";
const ROW_PREFIX: &str = "scaling-row";

/// Resident set after the allocator has had time to hand freed pages back
/// (the parent starts the memory children with `MIMALLOC_PURGE_DELAY=0`).
fn settled_rss() -> u64 {
    std::thread::sleep(Duration::from_millis(500));
    support::proc_status_bytes("VmRSS")
}

/// Median cost of one call, from `samples` timed batches of `batch` calls
/// each (one `Instant` pair per batch, so the clock's own cost, tens of
/// nanoseconds, is spread over the batch). `f` gets a running call number.
fn median_per_call(samples: usize, batch: usize, mut f: impl FnMut(usize)) -> Duration {
    let mut per_call: Vec<f64> = Vec::with_capacity(samples);
    let mut n = 0usize;
    for _ in 0..samples {
        let started = Instant::now();
        for _ in 0..batch {
            f(n);
            n += 1;
        }
        per_call.push(started.elapsed().as_secs_f64() / batch as f64);
    }
    per_call.sort_by(f64::total_cmp);
    Duration::from_secs_f64(per_call[per_call.len() / 2])
}

/// Random checks over the whole dataset: (user, action, ticket), the user a
/// third of the time the requester, a third a random agent, a third the
/// lead agent; the action view, comment or edit at random.
fn check_pairs(data: &Dataset, n: usize, seed: u64) -> Vec<(String, Action, String)> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let agents = generate::agent_ids(data);
    let actions = [Action::View, Action::Comment, Action::Edit];
    (0..n)
        .map(|_| {
            let t = &data.tickets[rng.usize(0..data.tickets.len())];
            let user = match rng.u8(0..3) {
                0 => t.requester.clone(),
                1 => agents[rng.usize(0..agents.len())].to_owned(),
                _ => AGENT_USER.to_owned(),
            };
            (user, actions[rng.usize(0..actions.len())], t.id.clone())
        })
        .collect()
}

/// The check of pair `i` (modulo the pairs).
fn check_pair(snap: &Snapshot, ctx: Context, pairs: &[(String, Action, String)], i: usize) {
    let (user, action, ticket) = &pairs[i % pairs.len()];
    let request = CheckRequest {
        user,
        action: ActionInput::Known(*action),
        ticket,
        ..CheckRequest::default()
    };
    black_box(core::check(snap, &request, ctx).unwrap());
}

fn check_p50(snap: &Snapshot, ctx: Context, pairs: &[(String, Action, String)]) -> Duration {
    let run = |i: usize| check_pair(snap, ctx, pairs, i);
    // One pass over the pairs to warm what can be warmed, then batches of
    // 1,000 checks: at least 1,000 batches and two passes over the pairs.
    median_per_call(1, pairs.len(), run);
    let samples = (2 * pairs.len() / 1000).max(1000);
    median_per_call(samples, 1000, run)
}

/// The check of `check_p50` against its floor (`DataFloor::ticket_checks`
/// on the same pairs), in alternating rounds.
fn check_ratio(
    snap: &Snapshot,
    ctx: Context,
    pairs: &[(String, Action, String)],
    (floors, arena, rounds): (&DataFloor<'_>, &Arena, usize),
) -> Ratio {
    let plan = floors.ticket_checks(pairs.iter().map(|(u, _, t)| (u.as_str(), t.as_str())), None);
    let mut run = |i: usize| check_pair(snap, ctx, pairs, i);
    floor::alternate(rounds, arena, &plan, &mut run)
}

/// A user's first page of 100 against its floor (`DataFloor::page`).
fn page_ratio(
    snap: &Snapshot,
    user: &str,
    (floors, arena, rounds): (&DataFloor<'_>, &Arena, usize),
) -> Option<Ratio> {
    let plan = floors.page(snap, user, None, 100)?;
    let all = TicketFilter::default();
    let mut run = |_| {
        black_box(core::list_visible_tickets(snap, user, &all, 100, "").unwrap());
    };
    Some(floor::alternate(rounds, arena, &plan, &mut run))
}

/// Key=value fields of a ratio: `<name>_floor_ns` and `<name>_ratio`.
fn ratio_fields(name: &str, r: Option<Ratio>) -> Vec<(String, String)> {
    r.map_or_else(Vec::new, |r| {
        vec![
            (format!("{name}_floor_ns"), format!("{:.1}", r.floor_ns)),
            (format!("{name}_ratio"), format!("{:.2}", r.ratio)),
        ]
    })
}

/// Pages through every ticket the user sees, 1,000 at a time: (tickets,
/// pages, time).
fn full_walk(snap: &Snapshot, user: &str) -> (usize, usize, Duration) {
    let all = TicketFilter::default();
    let started = Instant::now();
    let (mut tickets, mut pages) = (0usize, 0usize);
    let mut token = String::new();
    loop {
        let page = core::list_visible_tickets(snap, user, &all, 1000, &token).unwrap();
        tickets += page.ids.len();
        pages += 1;
        match page.next_page_token {
            Some(next) => token = next,
            None => break,
        }
    }
    (tickets, pages, started.elapsed())
}

/// Imports `data` into a fresh database and times what the service does at
/// start (`Database::snapshot`: one consistent read, then the build).
/// Returns key=value fields for the row.
fn postgres(admin: &str, tickets: usize, data: Dataset) -> Vec<(String, String)> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let name = format!("ta_scaling_{tickets}");
    // `name` is built from a number above, never from input.
    let recreate = |create: bool| rt.block_on(support::recreate_database(admin, &name, create));
    recreate(true);
    let url = support::database_url(admin, &name);
    let db = rt.block_on(Database::connect(&url)).unwrap();
    rt.block_on(db.migrate()).unwrap();
    eprintln!("scaling/{tickets}: importing into {name}");
    let started = Instant::now();
    rt.block_on(db.import(&data, true)).unwrap();
    let import = started.elapsed();
    drop(data);
    eprintln!(
        "scaling/{tickets}: imported in {:.1} s; loading",
        import.as_secs_f64()
    );

    let started = Instant::now();
    let loaded = rt.block_on(db.load()).unwrap();
    let read = started.elapsed();
    let mut snap = Snapshot::build(&loaded.dataset).unwrap();
    snap.set_revision(loaded.revision);
    let total = started.elapsed();
    assert_eq!(snap.stats().tickets, tickets);
    drop(loaded);
    drop(snap);
    rt.block_on(db.close());
    recreate(false);
    vec![
        ("pg_import_ms".into(), import.as_millis().to_string()),
        ("pg_read_ms".into(), read.as_millis().to_string()),
        ("pg_load_ms".into(), total.as_millis().to_string()),
    ]
}

/// The resident set of the snapshot of `Spec::scaled(n)`, with its tickets
/// or without any (all else equal), after the source data is dropped.
fn child_memory(tickets: usize, with_tickets: bool) {
    let spec = Spec::scaled(tickets);
    let data = generate(&Spec {
        tickets: if with_tickets { tickets } else { 0 },
        ..spec
    });
    let snap = Snapshot::build(&data).unwrap();
    drop(data);
    let rss = settled_rss();
    println!("{ROW_PREFIX} rss={rss} tickets={}", snap.stats().tickets);
}

fn child_timing(tickets: usize, pg: Option<&str>) {
    let mut row: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| row.push((k.to_owned(), v));
    let spec = Spec::scaled(tickets);

    let started = Instant::now();
    let data = generate(&spec);
    put("gen_ms", started.elapsed().as_millis().to_string());
    let started = Instant::now();
    let snap = Snapshot::build(&data).unwrap();
    put("build_ms", started.elapsed().as_millis().to_string());
    let stats = snap.stats();
    eprintln!("scaling/{tickets}: snapshot built");
    put("users", stats.users.to_string());
    put("orgs", stats.organisations.to_string());
    assert_eq!(stats.tickets, tickets);
    let ctx = Context::at(snap.fixed_now().unwrap_or_else(Timestamp::now));
    let rounds = floor::rounds_from_env();
    let floors = (rounds > 0).then(|| DataFloor::new(&data));
    let arena = floors.as_ref().map(|f| f.layout.allocate());
    let with_floor = floors
        .as_ref()
        .zip(arena.as_ref())
        .map(|(f, a)| (f, a, rounds));
    let mut ratios: Vec<(String, String)> = Vec::new();
    let hot = check_pairs(&data, 4096, 99);
    put(
        "check_hot_ns",
        format!("{:.1}", nanos(check_p50(&snap, ctx, &hot))),
    );
    let r = with_floor.map(|f| check_ratio(&snap, ctx, &hot, f));
    ratios.extend(ratio_fields("check_hot", r));
    drop(hot);
    let cold = check_pairs(&data, 1 << 20, 101);
    put(
        "check_cold_ns",
        format!("{:.1}", nanos(check_p50(&snap, ctx, &cold))),
    );
    let r = with_floor.map(|f| check_ratio(&snap, ctx, &cold, f));
    ratios.extend(ratio_fields("check_cold", r));
    drop(cold);
    let r = with_floor.and_then(|f| page_ratio(&snap, WIDE_USER, f));
    ratios.extend(ratio_fields("wide_first", r));
    let r = with_floor.and_then(|f| page_ratio(&snap, NARROW_USER, f));
    ratios.extend(ratio_fields("narrow_first", r));
    drop(arena);
    drop(floors);
    row.extend(ratios);
    let mut put = |k: &str, v: String| row.push((k.to_owned(), v));
    eprintln!("scaling/{tickets}: ratios to the floor done");

    let all = TicketFilter::default();
    let wide = median_per_call(300, 1, |_| {
        black_box(core::list_visible_tickets(&snap, WIDE_USER, &all, 100, "").unwrap());
    });
    put("wide_first_ns", format!("{:.0}", nanos(wide)));
    let narrow = median_per_call(300, 100, |_| {
        black_box(core::list_visible_tickets(&snap, NARROW_USER, &all, 100, "").unwrap());
    });
    put("narrow_first_ns", format!("{:.1}", nanos(narrow)));
    let (seen, pages, walk) = full_walk(&snap, WIDE_USER);
    put("walk_tickets", seen.to_string());
    put("walk_pages", pages.to_string());
    put("walk_ms", walk.as_millis().to_string());
    eprintln!("scaling/{tickets}: checks, pages and walk done");

    // One-row changes as the follower applies them: clone the snapshot
    // (chunk pointers), change one row, and drop the clone.
    let existing = &data.tickets[tickets / 8];
    let update = TicketFields {
        group: Some("g-007".into()),
        assignee: Some(AGENT_USER.into()),
        status: Status::Pending,
        ..TicketFields::from(existing)
    };
    let apply_ticket = |_| {
        let mut next = snap.clone();
        next.upsert_ticket(&update).unwrap();
        black_box(next);
    };
    let apply_cc = |_| {
        let mut next = snap.clone();
        next.set_ticket_person(&existing.id, NARROW_USER, Role::Cc, true)
            .unwrap();
        black_box(next);
    };
    // Five untimed rounds first, then the median of 50.
    median_per_call(1, 5, apply_ticket);
    let update_ticket = median_per_call(50, 1, apply_ticket);
    median_per_call(1, 5, apply_cc);
    let add_cc = median_per_call(50, 1, apply_cc);
    put("apply_ticket_ns", format!("{:.0}", nanos(update_ticket)));
    put("apply_cc_ns", format!("{:.0}", nanos(add_cc)));
    drop(snap);

    match pg {
        Some(admin) => row.extend(postgres(admin, tickets, data)),
        None => drop(data),
    }
    row.push((
        "hwm".into(),
        support::proc_status_bytes("VmHWM").to_string(),
    ));
    let fields: Vec<String> = row.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("{ROW_PREFIX} {}", fields.join(" "));
}

fn nanos(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

/// Runs this binary as a child for one measurement and parses its row.
/// Memory children return freed pages at once (`MIMALLOC_PURGE_DELAY=0`,
/// as `benches/memory.rs`); the timing child keeps the allocator's defaults,
/// as the service does, since purging on every free slows the apply.
fn run_child(mode: &str, tickets: usize, pg: bool) -> (HashMap<String, String>, Duration) {
    let started = Instant::now();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(CHILD_ENV, format!("{mode},{tickets}"))
        .stderr(Stdio::inherit());
    if mode != "timing" {
        cmd.env("MIMALLOC_PURGE_DELAY", "0");
    }
    if !pg {
        cmd.env_remove("DATABASE_URL");
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "child {mode},{tickets} failed");
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(ROW_PREFIX))
        .unwrap_or_else(|| panic!("child {mode},{tickets} printed no row: {text}"));
    let fields = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (fields, started.elapsed())
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn micros(ns: &str) -> String {
    format!("{:.1} µs", ns.parse::<f64>().unwrap() / 1e3)
}

fn secs(ms: &str) -> String {
    format!("{:.2} s", ms.parse::<f64>().unwrap() / 1e3)
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / 1048576.0)
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let (mode, tickets) = spec.split_once(',').unwrap();
        let tickets: usize = tickets.parse().unwrap();
        match mode {
            "base" => child_memory(tickets, false),
            "memory" => child_memory(tickets, true),
            _ => child_timing(tickets, std::env::var("DATABASE_URL").ok().as_deref()),
        }
        return;
    }
    // `cargo bench` passes `--bench`; a test run of the bench targets
    // (`cargo test --all-targets`) does not, and must not take an hour.
    if !std::env::args().any(|a| a == "--bench") {
        println!("scaling: skipped (run with `cargo bench --bench scaling`)");
        return;
    }
    let sizes: Vec<usize> = std::env::var("SCALING_TICKETS")
        .unwrap_or_else(|_| "100000,1000000,10000000".into())
        .split(',')
        .map(|s| s.trim().replace('_', "").parse().unwrap())
        .collect();
    let database = std::env::var("DATABASE_URL").is_ok();
    let pg_max: usize = std::env::var("SCALING_PG_MAX")
        .ok()
        .map_or(usize::MAX, |v| v.replace('_', "").parse().unwrap());
    if !database {
        eprintln!("scaling: DATABASE_URL is not set, the PostgreSQL column is skipped");
    }

    let mut rows = Vec::new();
    let mut context = Vec::new();
    let mut ratio_rows = Vec::new();
    let mut ratio_json = Vec::new();
    for &tickets in &sizes {
        let pg = database && tickets <= pg_max;
        eprintln!("scaling/{tickets}: starting (PostgreSQL: {pg})");
        let (base, base_wall) = run_child("base", tickets, false);
        let (memory, memory_wall) = run_child("memory", tickets, false);
        let (r, wall) = run_child("timing", tickets, pg);
        let base_rss: u64 = base["rss"].parse().unwrap();
        let rss: u64 = memory["rss"].parse().unwrap();
        let per_ticket = rss.saturating_sub(base_rss) as f64 / tickets as f64;
        let pg_load = if !database {
            "skipped (no DATABASE_URL)".to_owned()
        } else if !pg {
            "skipped (SCALING_PG_MAX)".to_owned()
        } else {
            format!(
                "{} (read {})",
                secs(&r["pg_load_ms"]),
                secs(&r["pg_read_ms"])
            )
        };
        let row = format!(
            "| {} | {} | {} | {per_ticket:.1} B ({} − {}) | {} ns | {} ns | {} | {} | {} ({} tickets, {} pages) | {} / {} | {} |",
            thousands(tickets as u64),
            thousands(r["users"].parse().unwrap()),
            secs(&r["build_ms"]),
            mib(rss),
            mib(base_rss),
            r["check_hot_ns"],
            r["check_cold_ns"],
            micros(&r["wide_first_ns"]),
            format_args!("{} ns", r["narrow_first_ns"]),
            secs(&r["walk_ms"]),
            thousands(r["walk_tickets"].parse().unwrap()),
            thousands(r["walk_pages"].parse().unwrap()),
            micros(&r["apply_ticket_ns"]),
            micros(&r["apply_cc_ns"]),
            pg_load,
        );
        eprintln!("{row}");
        rows.push(row);
        let ratio = |name: &str| match (
            r.get(&format!("{name}_ratio")),
            r.get(&format!("{name}_floor_ns")),
        ) {
            (Some(ratio), Some(floor_ns)) => format!(
                "**{ratio}** (floor {})",
                floor::format_ns(floor_ns.parse().unwrap_or(f64::NAN))
            ),
            _ => "–".to_owned(),
        };
        ratio_rows.push(format!(
            "| {} | {} | {} | {} | {} |",
            thousands(tickets as u64),
            ratio("check_hot"),
            ratio("check_cold"),
            ratio("wide_first"),
            ratio("narrow_first"),
        ));
        let number = |k: &str| r.get(k).and_then(|v| v.parse::<f64>().ok());
        for (name, op) in [
            ("check_hot", "check_hot_ns"),
            ("check_cold", "check_cold_ns"),
            ("wide_first", "wide_first_ns"),
            ("narrow_first", "narrow_first_ns"),
        ] {
            ratio_json.push(serde_json::json!({
                "id": format!("scaling/{tickets}/{name}"),
                "op_ns": number(op),
                "floor_ns": number(&format!("{name}_floor_ns")),
                "ratio": number(&format!("{name}_ratio")),
            }));
        }
        context.push(format!(
            "| {} | {} | {} | {} | {} | {:.0} s |",
            thousands(tickets as u64),
            secs(&r["gen_ms"]),
            r.get("pg_import_ms").map_or("–".to_owned(), |ms| secs(ms)),
            mib(r["hwm"].parse().unwrap()),
            thousands(r["orgs"].parse().unwrap()),
            (base_wall + memory_wall + wall).as_secs_f64(),
        ));
    }
    println!(
        "| tickets | users | snapshot build | resident per ticket (RSS − RSS without tickets) | check p50, 4,096 pairs | check p50, 1,048,576 pairs | first page of 100, wide user | first page, narrow user | full walk, wide user, pages of 1,000 | one-row apply: ticket update / CC add | PostgreSQL load at start |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for row in &rows {
        println!("{row}");
    }
    println!();
    println!(
        "| tickets | generate | PostgreSQL import (context) | peak RSS of the child | organisations | bench wall time |"
    );
    println!("|---|---|---|---|---|---|");
    for row in &context {
        println!("{row}");
    }
    if ratio_rows.iter().any(|r| r.contains("floor")) {
        println!();
        println!(
            "| tickets | check, 4,096 pairs: ratio to floor | check, 1,048,576 pairs | first page of 100, wide user | first page, narrow user |"
        );
        println!("|---|---|---|---|---|");
        for row in &ratio_rows {
            println!("{row}");
        }
        floor::write_summary("scaling-floor-ratios.json", ratio_json);
    }
}
