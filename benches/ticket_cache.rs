//! The ticket cache at 10M tickets (issue 16 § 6): generated data in
//! PostgreSQL, served with `--ticket-cache` (the graph in memory, tickets
//! read by key through a moka cache) and, for comparison, in full.
//!
//! In this process: a check that hits the cache, a miss on loopback
//! PostgreSQL, the hit ratio under Zipf(1.0) ticket popularity, and first
//! pages for the widest and a narrow user, all through `Authz`. In child
//! `ticket-authz serve` processes: resident memory of the graph-only
//! process, of the same process with its 256 MiB cache full, and of the
//! full in-memory mode; gRPC throughput at a 95% hit ratio, driven by a
//! separate `ticket-authz loadtest` process, as a ratio to the full mode.
//!
//! Needs `DATABASE_URL` (a PostgreSQL admin URL). The database
//! `ta_ticket_cache_<tickets>` is made once (import: minutes) and reused
//! while its comment names the same spec and its counts match.
//! Run with `cargo bench --bench ticket_cache`. Environment:
//! * `TICKET_CACHE_TICKETS`: tickets (default 10000000);
//! * `TICKET_CACHE_PARTS`: comma-separated parts to run (default all:
//!   `hit,miss,zipf,list,memory,grpc`; `prepare` only makes the database);
//! * `TICKET_CACHE_BIN`: the `ticket-authz` binary for the child processes
//!   (default `target/release/ticket-authz`, built by `cargo build --release`);
//! * `TICKET_CACHE_ROUNDS`: alternating gRPC rounds per mode (default 3);
//! * `TICKET_CACHE_SOURCE=memory`: the hit part (and `zipf` if
//!   `TICKET_CACHE_PARTS` names it) on the generated data in this process
//!   instead of the database (a hit never reads its source; only the fill
//!   does), so it runs without `DATABASE_URL`; its `zipf` runs once per
//!   setting of which hits are also read from moka, `TICKET_CACHE_TOUCH=
//!   first/every,…` (default `255/1,8/32`: every hit, and the service's);
//! * `TICKET_CACHE_HIT_BATCHES`, `TICKET_CACHE_HIT_ROUNDS`: batches of
//!   1,000 hits per way (default 1000) and alternating rounds (default 4).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::hint::black_box;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ticket_authz::app::{Authz, Call, CallMetrics, CheckOptions, Observe, Operation, PageArgs};
use ticket_authz::core::{
    self, Action, ActionInput, CheckRequest, Context, LimitCounts, LimitQuery, TicketFilter,
    VisibilityFilter,
};
use ticket_authz::db::{Database, LoadScope};
use ticket_authz::generate::{AGENT_USER, NARROW_USER, Spec, WIDE_USER, generate};
use ticket_authz::grpc::client::{Credentials, connect};
use ticket_authz::grpc::pb;
use ticket_authz::model::Ticket;
use ticket_authz::snapshot::{Change, Role, Snapshot, TicketFields};
use ticket_authz::store::Store;
use ticket_authz::telemetry::metrics::metrics;
use ticket_authz::ticket_cache::{Fit, Read, ReadAt, Resolved, TicketCache, TicketReader, Touch};
use ticket_authz::time::Timestamp;

mod support;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the database's comment says once an import of `spec` finished.
fn marker(spec: &Spec) -> String {
    format!("ticket-authz bench ticket_cache: {spec:?}")
}

/// The database of `spec` (made unless it holds it already) and its URL.
async fn ensure_database(admin: &str, spec: &Spec) -> String {
    // From a number, never from input: it is spliced into statements.
    let name = format!("ta_ticket_cache_{}", spec.tickets);
    let url = support::database_url(admin, &name);
    let pool = sqlx::PgPool::connect(admin).await.unwrap();
    let comment: Option<String> = sqlx::query_scalar(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
    )
    .bind(&name)
    .fetch_optional(&pool)
    .await
    .unwrap()
    .flatten();
    pool.close().await;
    if comment.as_deref() == Some(marker(spec).as_str()) {
        let db = Database::connect(&url).await.unwrap();
        // A migration added since the import (an index) applies here.
        db.migrate().await.unwrap();
        let Database::Postgres(pool) = &db else {
            unreachable!("a postgres:// URL")
        };
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets")
            .fetch_one(pool)
            .await
            .unwrap();
        db.close().await;
        if count == spec.tickets as i64 {
            eprintln!("ticket_cache: reusing {name} ({count} tickets)");
            return url;
        }
        eprintln!("ticket_cache: {name} holds {count} tickets; importing again");
    }
    support::recreate_database(admin, &name, true).await;
    let started = Instant::now();
    let data = generate(spec);
    let users = data.users.len();
    eprintln!(
        "ticket_cache: generated {} tickets, {users} users in {:.1} s; importing into {name}",
        data.tickets.len(),
        started.elapsed().as_secs_f64()
    );
    let db = Database::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    let started = Instant::now();
    db.import(&data, true).await.unwrap();
    drop(data);
    eprintln!(
        "ticket_cache: imported in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let Database::Postgres(pool) = &db else {
        unreachable!("a postgres:// URL")
    };
    // Fresh statistics for the planner, as a long-lived database has.
    sqlx::query("ANALYZE").execute(pool).await.unwrap();
    // The marker last: a half-made database never carries it. The name
    // and the marker are the bench's own.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "COMMENT ON DATABASE {name} IS '{}'",
        marker(spec)
    )))
    .execute(pool)
    .await
    .unwrap();
    db.close().await;
    url
}

const MIB: u64 = 1 << 20;
/// The cache size every part measures with.
const CACHE_BYTES: u64 = 256 * MIB;
const CACHE_FLAG: &str = "256MiB";

/// The generator's id of ticket `i` (`generate.rs`).
fn ticket_id(i: usize) -> String {
    format!("T{i:08}")
}

/// The generator's id of user `i`.
fn user_id(i: usize) -> String {
    format!("u-{i:07}")
}

/// A bijection of `0..n` that scatters neighbours, so that "the first k
/// tickets asked" are spread over the table rather than one id range.
fn scatter(i: usize, n: usize) -> usize {
    // 7,919,113 is prime and below 10M; any n it does not divide works.
    let a = if n.is_multiple_of(7_919_113) {
        1
    } else {
        7_919_113
    };
    ((i as u128 * a as u128 + 12_345) % n as u128) as usize
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// An in-process cached-mode service on the database's graph.
struct InProcess {
    authz: Authz,
    cache: TicketCache,
    metrics: CallMetrics,
}

const OPERATION: Operation = Operation {
    system: "bench",
    service: "bench",
    method: "Bench",
    span_name: "bench/Bench",
};

/// Tickets from the generated data, for `TICKET_CACHE_SOURCE=memory`: a
/// hit never reads its source, so the hit part can run at 10M without
/// the database (only the fill reads this).
#[derive(Debug)]
struct Generated {
    tickets: HashMap<String, Ticket>,
    revision: u64,
}

impl TicketReader for Generated {
    fn ticket<'a>(&'a self, id: &'a str, _: u64) -> Read<'a, Option<Ticket>> {
        Box::pin(async move {
            Ok(ReadAt {
                value: self.tickets.get(id).cloned(),
                revision: self.revision,
                unchanged: true,
            })
        })
    }

    fn visible_page<'a>(
        &'a self,
        _: &'a VisibilityFilter,
        _: &'a TicketFilter,
        _: Option<&'a str>,
        _: usize,
        _: u64,
    ) -> Read<'a, (Vec<String>, bool)> {
        Box::pin(async { Err("the generated source answers ticket reads only".to_owned()) })
    }

    fn limit_counts<'a>(&'a self, _: &'a LimitQuery<'a>, _: u64) -> Read<'a, LimitCounts> {
        Box::pin(async { Err("the generated source answers ticket reads only".to_owned()) })
    }
}

/// The generated graph (tickets left out, as `LoadScope::Graph` loads)
/// and the tickets the hit part asks about.
fn generated(spec: &Spec, every_ticket: bool) -> (Arc<Store>, Arc<dyn TicketReader>) {
    let started = Instant::now();
    let mut data = generate(spec);
    let asked: std::collections::HashSet<String> = (0..HIT_PAIRS[1])
        .map(|i| ticket_id(scatter(i, spec.tickets)))
        .collect();
    let tickets = std::mem::take(&mut data.tickets)
        .into_iter()
        .filter(|t| every_ticket || asked.contains(&t.id))
        .map(|t| (t.id.clone(), t))
        .collect();
    let mut snap = Snapshot::build(&data).unwrap();
    snap.set_revision(1);
    eprintln!(
        "ticket_cache: generated graph built in {:.1} s ({} users)",
        started.elapsed().as_secs_f64(),
        snap.stats().users
    );
    let store = Arc::new(Store::default());
    store.publish(snap);
    (
        store,
        Arc::new(Generated {
            tickets,
            revision: 1,
        }),
    )
}

/// Distinct tickets the hit part asks about, in its two runs.
const HIT_PAIRS: [usize; 2] = [4096, 100_000];

impl InProcess {
    fn new(db: &Database, graph: &Arc<Store>) -> InProcess {
        Self::reading(Arc::new(db.clone()), graph)
    }

    fn reading(reader: Arc<dyn TicketReader>, graph: &Arc<Store>) -> InProcess {
        Self::touching(reader, graph, Touch::DEFAULT)
    }

    /// With `touch` deciding which hits are read from moka.
    fn touching(reader: Arc<dyn TicketReader>, graph: &Arc<Store>, touch: Touch) -> InProcess {
        let cache = TicketCache::touching(CACHE_BYTES, reader, touch);
        let authz = Authz::with_tickets(
            Arc::clone(graph),
            Duration::from_secs(1),
            Observe::default(),
            Some(cache.clone()),
        );
        InProcess {
            authz,
            cache,
            metrics: CallMetrics::new(OPERATION, &[]),
        }
    }

    async fn check(&self, call: &Call<'_>, user: &str, ticket: &str) -> bool {
        let request = CheckRequest {
            user,
            action: ActionInput::Known(Action::View),
            ticket,
            ..CheckRequest::default()
        };
        self.authz
            .check(call, request, CheckOptions::default())
            .await
            .unwrap()
            .value
            .allowed
    }
}

/// A user for the `i`th question: the widest user, the lead agent, or a
/// random user (requesters and agents alike), in turn.
fn asker(i: usize, users: usize) -> String {
    match i % 4 {
        0 => WIDE_USER.to_owned(),
        1 => AGENT_USER.to_owned(),
        _ => user_id(scatter(i, users)),
    }
}

fn counters() -> (u64, u64, u64) {
    let m = metrics();
    (
        m.ticket_cache_hits.get(),
        m.ticket_cache_misses.get(),
        m.ticket_cache_evictions.get(),
    )
}

/// The graph with exactly the tickets the cache holds for `questions`
/// added row by row: the full mode's snapshot for the same questions.
fn full_snapshot(
    rt: &tokio::runtime::Runtime,
    cache: &TicketCache,
    graph: &Snapshot,
    questions: &[(String, String)],
) -> Snapshot {
    let mut changes = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (_, t) in questions {
        if !seen.insert(t.as_str()) {
            continue;
        }
        let Fit::Holds(Some(row)) = rt.block_on(cache.ticket(t, graph)).unwrap() else {
            panic!("ticket {t} is newer than the graph, or unknown");
        };
        let ticket = row.ticket().unwrap();
        changes.push(Change::UpsertTicket(TicketFields::from(ticket)));
        for (people, role) in [
            (&ticket.ccs, Role::Cc),
            (&ticket.participants, Role::Participant),
        ] {
            for user in people {
                changes.push(Change::TicketPerson {
                    ticket: ticket.id.clone(),
                    user: user.clone(),
                    role,
                    present: true,
                });
            }
        }
    }
    let mut full = graph.clone();
    full.apply_all(&changes, graph.revision()).unwrap();
    full
}

/// How a hit is asked: through the application service or the core, on
/// the cache or on the full snapshot.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    AuthzCached,
    AuthzFull,
    CoreCached,
    CoreFull,
}

impl Way {
    const ALL: [Way; 4] = [
        Way::CoreCached,
        Way::CoreFull,
        Way::AuthzCached,
        Way::AuthzFull,
    ];

    fn name(self) -> &'static str {
        match self {
            Way::AuthzCached => "Authz::check, cached",
            Way::AuthzFull => "Authz::check, full",
            Way::CoreCached => "core, cached: validate + cache + decide_with",
            Way::CoreFull => "core, full: core::check",
        }
    }
}

fn view<'a>(user: &'a str, ticket: &'a str) -> CheckRequest<'a> {
    CheckRequest {
        user,
        action: ActionInput::Known(Action::View),
        ticket,
        ..CheckRequest::default()
    }
}

/// Checks that hit: `pairs` (user, ticket) asked once to fill the cache,
/// then asked four ways in alternating rounds (the cached mode and the
/// full mode, through `Authz::check` and through the core), in batches of
/// 1,000 timed with one clock pair each; per way, the median batch over
/// every round, per check, and its ratio to the full mode in the same run.
fn hit(
    rt: &tokio::runtime::Runtime,
    svc: &InProcess,
    graph: &Arc<Store>,
    spec: &Spec,
    pairs: usize,
) {
    let questions: Vec<(String, String)> = (0..pairs)
        .map(|i| (asker(i, spec.users), ticket_id(scatter(i, spec.tickets))))
        .collect();
    let requests: Vec<CheckRequest<'_>> = questions.iter().map(|(u, t)| view(u, t)).collect();
    let call = Call::start(&svc.metrics, &http::HeaderMap::new());
    rt.block_on(async {
        for (u, t) in &questions {
            svc.check(&call, u, t).await;
        }
    });
    let snap = graph.current().unwrap();
    let started = Instant::now();
    let full = Arc::new(full_snapshot(rt, &svc.cache, &snap, &questions));
    eprintln!(
        "ticket_cache/hit_{pairs}_tickets: full snapshot of the same tickets in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let full_store = Arc::new(Store::default());
    full_store.publish((*full).clone());
    let full_authz = Authz::new(full_store, Duration::from_secs(1), Observe::default());
    let ctx = Context {
        now: Timestamp::now(),
        explain: false,
        limits: None,
    };
    let batches = env_or("TICKET_CACHE_HIT_BATCHES", 1000usize);
    let rounds = env_or("TICKET_CACHE_HIT_ROUNDS", 4usize);
    let mut per_way: Vec<Vec<Duration>> = vec![Vec::new(); Way::ALL.len()];
    let before = counters();
    let mut allowed = [0usize; 4];
    for _ in 0..rounds {
        for (w, way) in Way::ALL.into_iter().enumerate() {
            let times = rt.block_on(async {
                let mut times = Vec::with_capacity(batches / rounds);
                let mut n = 0usize;
                for _ in 0..batches / rounds {
                    let started = Instant::now();
                    for _ in 0..1000 {
                        let req = &requests[n % requests.len()];
                        let ok = match way {
                            Way::AuthzCached => {
                                svc.authz
                                    .check(&call, *req, CheckOptions::default())
                                    .await
                                    .unwrap()
                                    .value
                                    .allowed
                            }
                            Way::AuthzFull => {
                                full_authz
                                    .check(&call, *req, CheckOptions::default())
                                    .await
                                    .unwrap()
                                    .value
                                    .allowed
                            }
                            Way::CoreCached => {
                                let valid = req.validate().unwrap();
                                let Fit::Holds(row) =
                                    svc.cache.ticket(req.ticket, &snap).await.unwrap()
                                else {
                                    panic!("a warm entry waits");
                                };
                                core::decide_with(
                                    &snap,
                                    &valid,
                                    row.as_deref().map(Resolved::row),
                                    ctx,
                                )
                                .allowed
                            }
                            Way::CoreFull => core::check(&full, req, ctx).unwrap().allowed,
                        };
                        allowed[w] += usize::from(black_box(ok));
                        n += 1;
                    }
                    times.push(started.elapsed() / 1000);
                }
                times
            });
            per_way[w].extend(times);
        }
    }
    let after = counters();
    assert_eq!(after.1, before.1, "a hit benchmark check missed the cache");
    assert!(
        allowed.iter().all(|a| *a == allowed[0]),
        "the ways disagree on how many checks are allowed: {allowed:?}"
    );
    let p50s: Vec<Duration> = per_way
        .iter_mut()
        .map(|times| {
            times.sort();
            quantile(times, 0.5)
        })
        .collect();
    for (w, way) in Way::ALL.into_iter().enumerate() {
        let full_way = match way {
            Way::AuthzCached | Way::AuthzFull => Way::AuthzFull,
            Way::CoreCached | Way::CoreFull => Way::CoreFull,
        };
        let f = Way::ALL.iter().position(|x| *x == full_way).unwrap();
        let times = &per_way[w];
        println!(
            "ticket_cache/hit_{pairs}_tickets: {}: p50 {} ns (batch medians p10 {} / p90 {} ns), {:.2}x the full mode{}",
            way.name(),
            p50s[w].as_nanos(),
            quantile(times, 0.1).as_nanos(),
            quantile(times, 0.9).as_nanos(),
            p50s[w].as_secs_f64() / p50s[f].as_secs_f64(),
            if way == Way::CoreCached {
                format!(
                    ", goal p50 <= 300 ns: {}",
                    verdict(p50s[w] <= Duration::from_nanos(300))
                )
            } else {
                String::new()
            },
        );
    }
}

/// Checks on tickets never asked before, one at a time, each timed.
fn miss(rt: &tokio::runtime::Runtime, svc: &InProcess, spec: &Spec, count: usize) {
    let call = Call::start(&svc.metrics, &http::HeaderMap::new());
    // Far from the hit part's tickets in the scattered order.
    let from = spec.tickets / 2;
    let mut took = rt.block_on(async {
        let before = counters();
        let mut took = Vec::with_capacity(count);
        for i in 0..count {
            let ticket = ticket_id(scatter(from + i, spec.tickets));
            let user = asker(i, spec.users);
            let started = Instant::now();
            black_box(svc.check(&call, &user, &ticket).await);
            took.push(started.elapsed());
        }
        let after = counters();
        assert_eq!(
            after.1 - before.1,
            count as u64,
            "a miss benchmark check hit"
        );
        took
    });
    took.sort();
    let (p50, p99) = (quantile(&took, 0.5), quantile(&took, 0.99));
    println!(
        "ticket_cache/miss: {count} checks on uncached tickets (one read each on loopback PostgreSQL), p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms, goal p50 <= 1 ms and p99 <= 5 ms: {}",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        quantile(&took, 1.0).as_secs_f64() * 1e3,
        verdict(p50 <= Duration::from_millis(1) && p99 <= Duration::from_millis(5)),
    );
}

/// The touch settings the memory-source `zipf` compares:
/// `TICKET_CACHE_TOUCH=first/every,…` (default moka read on every hit, and
/// the service's).
fn touches() -> Vec<Touch> {
    match std::env::var("TICKET_CACHE_TOUCH") {
        Ok(list) => list
            .split(',')
            .map(|t| {
                let (first, every) = t
                    .trim()
                    .split_once('/')
                    .expect("TICKET_CACHE_TOUCH: first/every");
                Touch {
                    first: first.parse().expect("TICKET_CACHE_TOUCH: first is 0-255"),
                    every: every
                        .parse()
                        .expect("TICKET_CACHE_TOUCH: every is a number"),
                }
            })
            .collect(),
        Err(_) => vec![Touch::ALWAYS, Touch::DEFAULT],
    }
}

/// Zipf(s) over `0..n` by inversion of the cumulative weights.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut total = 0.0;
        let cumulative = (1..=n)
            .map(|k| {
                total += 1.0 / (k as f64).powf(s);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    /// A rank, 0 the most popular.
    fn draw(&self, rng: &mut fastrand::Rng) -> usize {
        let total = self.cumulative[self.cumulative.len() - 1];
        let u = rng.f64() * total;
        self.cumulative.partition_point(|c| *c < u)
    }
}

/// The hit ratio of a fresh 256 MiB cache under Zipf(1.0) popularity over
/// every ticket (rank r is ticket `scatter(r)`), from 32 concurrent
/// callers, reported per window of `window` checks.
fn zipf(
    rt: &tokio::runtime::Runtime,
    svc: Arc<InProcess>,
    spec: &Spec,
    windows: usize,
    window: usize,
) {
    let zipf = Arc::new(Zipf::new(spec.tickets, 1.0));
    let (tickets, users) = (spec.tickets, spec.users);
    let callers = 32;
    for w in 0..windows {
        let before = counters();
        let started = Instant::now();
        rt.block_on(async {
            let tasks: Vec<_> = (0..callers)
                .map(|c| {
                    let (svc, zipf) = (Arc::clone(&svc), Arc::clone(&zipf));
                    tokio::spawn(async move {
                        let call = Call::start(&svc.metrics, &http::HeaderMap::new());
                        let mut rng = fastrand::Rng::with_seed((w * callers + c) as u64);
                        for i in 0..window / callers {
                            let ticket = ticket_id(scatter(zipf.draw(&mut rng), tickets));
                            let user = asker(i + c, users);
                            black_box(svc.check(&call, &user, &ticket).await);
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        let after = counters();
        let (hits, misses) = (after.0 - before.0, after.1 - before.1);
        let bytes = rt.block_on(svc.cache.weighted_size());
        let entries = rt.block_on(svc.cache.entry_count());
        println!(
            "ticket_cache/zipf_1.0 window {}: {} checks in {:.1} s, hit ratio {:.4}, evictions {}, cache {:.1} MiB in {entries} entries ({:.0} B each)",
            w + 1,
            hits + misses,
            started.elapsed().as_secs_f64(),
            hits as f64 / (hits + misses).max(1) as f64,
            after.2 - before.2,
            bytes as f64 / MIB as f64,
            bytes as f64 / entries.max(1) as f64,
        );
    }
}

/// First pages of 100 through `Authz::list_tickets`, p50 of `calls`.
fn list(rt: &tokio::runtime::Runtime, svc: &InProcess, calls: usize) {
    let call = Call::start(&svc.metrics, &http::HeaderMap::new());
    for user in [WIDE_USER, NARROW_USER, AGENT_USER] {
        let result = rt.block_on(async {
            let filter = TicketFilter::default();
            let page = PageArgs {
                size: 100,
                token: "",
            };
            let first = svc
                .authz
                .list_tickets(&call, user, &filter, page, 0)
                .await?;
            let mut took = Vec::with_capacity(calls);
            for _ in 0..calls {
                let started = Instant::now();
                black_box(
                    svc.authz
                        .list_tickets(&call, user, &filter, page, 0)
                        .await?,
                );
                took.push(started.elapsed());
            }
            Ok::<_, ticket_authz::app::AppError>((first.value.ids.len(), took))
        });
        match result {
            Ok((len, mut took)) => {
                took.sort();
                let (p50, p99) = (quantile(&took, 0.5), quantile(&took, 0.99));
                println!(
                    "ticket_cache/first_page {user}: {len} ids, p50 {:.3} ms, p99 {:.3} ms over {calls} calls, goal <= 10 ms: {}",
                    p50.as_secs_f64() * 1e3,
                    p99.as_secs_f64() * 1e3,
                    verdict(p50 <= Duration::from_millis(10)),
                );
            }
            Err(e) => println!("ticket_cache/first_page {user}: not measured: {e}"),
        }
    }
}

/// A free loopback port (released for the child to bind).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn binary() -> String {
    std::env::var("TICKET_CACHE_BIN")
        .unwrap_or_else(|_| format!("{}/target/release/ticket-authz", env!("CARGO_MANIFEST_DIR")))
}

/// A `ticket-authz serve` child on the database; killed when dropped.
struct Server {
    child: Child,
    grpc: String,
    metrics: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(url: &str, cache: Option<&str>) -> Server {
        let (grpc, metrics) = (free_port(), free_port());
        let mut cmd = Command::new(binary());
        cmd.args(["serve", "--database-url", url])
            .args(["--listen", &format!("127.0.0.1:{grpc}")])
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics}")])
            .args(["--log-filter", "warn"])
            .stdout(Stdio::null());
        if let Some(size) = cache {
            cmd.args(["--ticket-cache", size]);
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("{}: {e} (build it with `cargo build --release`)", binary())
        });
        Server {
            child,
            grpc: format!("http://127.0.0.1:{grpc}"),
            metrics,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until it answers a check (its data is loaded): the wait.
    async fn ready(&self) -> Duration {
        let started = Instant::now();
        loop {
            if let Ok(mut client) = connect(&self.grpc, &Credentials::default()).await {
                match client
                    .check_access(pb::CheckAccessRequest {
                        user_id: NARROW_USER.into(),
                        action: pb::Action::View as i32,
                        ticket_id: ticket_id(0),
                        ..Default::default()
                    })
                    .await
                {
                    Ok(_) => return started.elapsed(),
                    Err(s) if s.code() == tonic::Code::Unavailable => {}
                    Err(s) => panic!("{}: {s}", self.grpc),
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(900),
                "{} did not load in 15 minutes",
                self.grpc
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A metric's value from its Prometheus endpoint (0 when absent).
    fn metric(&self, name: &str) -> f64 {
        let mut stream = TcpStream::connect(("127.0.0.1", self.metrics)).unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (key, value) = l.rsplit_once(' ')?;
                (key == name).then(|| value.parse().ok())?
            })
            .unwrap_or(0.0)
    }

    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap()
            * 1024
    }
}

/// Resident set after a quiet moment (the allocator returns pages late).
fn settled_rss(server: &Server) -> u64 {
    std::thread::sleep(Duration::from_secs(3));
    server.rss()
}

/// Fills a cached server's cache from 64 concurrent gRPC callers, each
/// check on a ticket not asked before, until the cache has evicted for
/// a while (it is full).
async fn fill(server: &Server, spec: &Spec) -> u64 {
    let client = connect(&server.grpc, &Credentials::default())
        .await
        .unwrap();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tickets, users) = (spec.tickets, spec.users);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (mut client, next, stop) = (client.clone(), Arc::clone(&next), Arc::clone(&stop));
            tokio::spawn(async move {
                use std::sync::atomic::Ordering::Relaxed;
                while !stop.load(Relaxed) {
                    let i = next.fetch_add(1, Relaxed);
                    if i >= tickets {
                        // Every ticket asked: a cache bigger than the data.
                        break;
                    }
                    client
                        .check_access(pb::CheckAccessRequest {
                            user_id: asker(i, users),
                            action: pb::Action::View as i32,
                            ticket_id: ticket_id(scatter(i, tickets)),
                            ..Default::default()
                        })
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let started = Instant::now();
    let mut full_since: Option<Instant> = None;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let evictions = server.metric("ticket_authz_ticket_cache_evictions_total");
        if evictions > 0.0 && full_since.is_none() {
            full_since = Some(Instant::now());
        }
        if full_since.is_some_and(|t| t.elapsed() > Duration::from_secs(10))
            || tasks.iter().all(tokio::task::JoinHandle::is_finished)
            || started.elapsed() > Duration::from_secs(900)
        {
            break;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    (next.load(std::sync::atomic::Ordering::Relaxed) as u64).min(tickets as u64)
}

/// One `ticket-authz loadtest` run against `server`: (throughput, p50 ms,
/// server CPU µs per request).
fn loadtest(server: &Server, spec: &Spec, cold: f64, duration: &str) -> (f64, f64, f64) {
    let out = Command::new(binary())
        .args(["loadtest", "--server", &server.grpc])
        .args(["--server-pid", &server.pid().to_string()])
        .args(["--tickets", &spec.tickets.to_string()])
        .args(["--seed", &spec.seed.to_string()])
        .args(["--cold-checks", &cold.to_string()])
        .args(["--duration", duration, "--warmup", "2s", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "loadtest: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = &doc["runs"][0];
    (
        run["throughput_rps"].as_f64().unwrap(),
        run["latency"]["p50_ms"].as_f64().unwrap(),
        run["server_cpu_us_per_request"]
            .as_f64()
            .unwrap_or(f64::NAN),
    )
}

/// Resident memory of the three processes, and gRPC throughput of the
/// cached one at a 95% hit ratio against the full one, in alternating
/// rounds.
fn processes(url: &str, spec: &Spec, parts: &[&str], rounds: usize) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cached = Server::start(url, Some(CACHE_FLAG));
    let waited = rt.block_on(cached.ready());
    let graph_only = settled_rss(&cached);
    println!(
        "ticket_cache/memory: graph-only process (--ticket-cache {CACHE_FLAG}, cache empty) ready in {:.1} s, rss {:.1} MiB, {:.0} B per user ({} users)",
        waited.as_secs_f64(),
        graph_only as f64 / MIB as f64,
        graph_only as f64 / spec.users as f64,
        spec.users,
    );
    let started = Instant::now();
    let sent = rt.block_on(fill(&cached, spec));
    let filled = settled_rss(&cached);
    let held = cached.metric("ticket_authz_ticket_cache_bytes");
    println!(
        "ticket_cache/memory: the same process after {sent} checks on distinct tickets ({:.0} s, cache full: {:.1} MiB held by weight, {} evictions): rss {:.1} MiB, +{:.1} MiB over graph-only, goal <= +300 MiB: {}",
        started.elapsed().as_secs_f64(),
        held / MIB as f64,
        cached.metric("ticket_authz_ticket_cache_evictions_total"),
        filled as f64 / MIB as f64,
        (filled as f64 - graph_only as f64) / MIB as f64,
        verdict(filled <= graph_only + 300 * MIB),
    );
    let full = Server::start(url, None);
    let waited = rt.block_on(full.ready());
    let full_rss = settled_rss(&full);
    println!(
        "ticket_cache/memory: full in-memory process ready in {:.1} s, rss {:.1} MiB: {:.1} B per ticket over the graph-only process ({} tickets)",
        waited.as_secs_f64(),
        full_rss as f64 / MIB as f64,
        (full_rss as f64 - graph_only as f64) / spec.tickets as f64,
        spec.tickets,
    );
    if !parts.contains(&"grpc") {
        return;
    }
    // Share of checks on a random ticket of all 10M: those miss unless
    // the cache holds them (about the cache's share of the tickets).
    let cold: f64 = env_or("TICKET_CACHE_COLD_CHECKS", 0.053);
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let (hits0, misses0) = (
            cached.metric("ticket_authz_ticket_cache_hits_total"),
            cached.metric("ticket_authz_ticket_cache_misses_total"),
        );
        let c = loadtest(&cached, spec, cold, "10s");
        let (hits, misses) = (
            cached.metric("ticket_authz_ticket_cache_hits_total") - hits0,
            cached.metric("ticket_authz_ticket_cache_misses_total") - misses0,
        );
        let f = loadtest(&full, spec, cold, "10s");
        let ratio = c.0 / f.0;
        ratios.push(ratio);
        println!(
            "ticket_cache/grpc round {}: cached {:.0} rps (p50 {:.3} ms, {:.1} µs server CPU per call, hit ratio {:.4} over warm-up and run) / full {:.0} rps (p50 {:.3} ms, {:.1} µs) = {ratio:.3}",
            round + 1,
            c.0,
            c.1,
            c.2,
            hits / (hits + misses).max(1.0),
            f.0,
            f.1,
            f.2,
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "ticket_cache/grpc: CheckAccess throughput with --ticket-cache {CACHE_FLAG} at --cold-checks {cold} as a ratio to the full mode, median of {rounds} rounds {:.3} (range {:.3}–{:.3})",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1],
    );
}

fn main() {
    if std::env::var("TICKET_CACHE_SOURCE").as_deref() == Ok("memory") {
        // The hit part (by default) and `zipf`, on generated data (see
        // `Generated`). `zipf` here keeps every generated ticket in memory
        // (about 3 GiB at 10M) and compares which hits also read moka.
        let spec = Spec::scaled(env_or("TICKET_CACHE_TICKETS", 10_000_000));
        let parts = std::env::var("TICKET_CACHE_PARTS").unwrap_or_else(|_| "hit".into());
        let parts: Vec<&str> = parts.split(',').map(str::trim).collect();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (graph, reader) = generated(&spec, parts.contains(&"zipf"));
        if parts.contains(&"hit") {
            let svc = InProcess::reading(Arc::clone(&reader), &graph);
            for pairs in HIT_PAIRS {
                hit(&rt, &svc, &graph, &spec, pairs);
            }
        }
        if parts.contains(&"zipf") {
            let windows = env_or("TICKET_CACHE_ZIPF_WINDOWS", 4);
            for touch in touches() {
                println!(
                    "ticket_cache/zipf_1.0: moka read on every hit while an entry has had fewer than {}, then on 1 in {}{}",
                    touch.first,
                    touch.every,
                    if touch == Touch::DEFAULT {
                        " (the service's)"
                    } else {
                        ""
                    },
                );
                let svc = Arc::new(InProcess::touching(Arc::clone(&reader), &graph, touch));
                zipf(&rt, svc, &spec, windows, 1_000_000);
            }
        }
        return;
    }
    let Ok(admin) = std::env::var("DATABASE_URL") else {
        println!("ticket_cache: skipped, DATABASE_URL (a PostgreSQL admin URL) is not set");
        return;
    };
    let tickets: usize = env_or("TICKET_CACHE_TICKETS", 10_000_000);
    let spec = Spec::scaled(tickets);
    let parts = std::env::var("TICKET_CACHE_PARTS")
        .unwrap_or_else(|_| "hit,miss,zipf,list,memory,grpc".into());
    let parts: Vec<&str> = parts.split(',').map(str::trim).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = rt.block_on(ensure_database(&admin, &spec));
    let in_process = ["hit", "miss", "zipf", "list"];
    if parts.iter().any(|p| in_process.contains(p)) {
        let (db, graph) = rt.block_on(async {
            let db = Database::connect(&url).await.unwrap();
            let started = Instant::now();
            let snap = db.snapshot_of(LoadScope::Graph).await.unwrap();
            eprintln!(
                "ticket_cache: graph loaded in {:.1} s ({} users)",
                started.elapsed().as_secs_f64(),
                snap.stats().users
            );
            let store = Arc::new(Store::default());
            store.publish(snap);
            (db, store)
        });
        if parts.contains(&"hit") {
            let svc = InProcess::new(&db, &graph);
            for pairs in HIT_PAIRS {
                hit(&rt, &svc, &graph, &spec, pairs);
            }
        }
        if parts.contains(&"miss") {
            let svc = InProcess::new(&db, &graph);
            miss(&rt, &svc, &spec, env_or("TICKET_CACHE_MISSES", 20_000));
        }
        if parts.contains(&"zipf") {
            let svc = Arc::new(InProcess::new(&db, &graph));
            let windows = env_or("TICKET_CACHE_ZIPF_WINDOWS", 6);
            zipf(&rt, svc, &spec, windows, 1_000_000);
        }
        if parts.contains(&"list") {
            let svc = InProcess::new(&db, &graph);
            list(&rt, &svc, 200);
        }
        rt.block_on(db.close());
    }
    if parts.contains(&"memory") || parts.contains(&"grpc") {
        processes(&url, &spec, &parts, env_or("TICKET_CACHE_ROUNDS", 3));
    }
}
