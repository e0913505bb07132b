//! The `integria` mapping on MariaDB: the full load of a helpdesk at 1M
//! tickets, commit → visible through the real service following it, and
//! the write throughput Integria-like transactions keep with the capture's
//! triggers against without them, in one run. Needs `MYSQL_URL` (an admin
//! URL of a MariaDB server, whose Sequence engine fills the tables) and
//! creates its own databases. Run with `cargo bench --bench mapped`
//! (`MAPPED_PARTS=load,lag,writes` by default; `MAPPED_TICKETS`, default
//! 1000000; `MAPPED_LOADS`, full loads timed, default 3; `MAPPED_CHANGES`,
//! commits timed for the lag, default 500; `MAPPED_POLL`, the follower's
//! poll interval in ms, default 20; `MAPPED_WRITES`, transactions per
//! write round, default 2000).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Executor, MySqlPool};
use ticket_authz::grpc::client::Credentials;
use ticket_authz::grpc::pb;
use ticket_authz::loadtest::InProcess;
use ticket_authz::mapped::{MappedDb, REVISION_SQL};
use ticket_authz::mapping::Mapping;
use ticket_authz::serve_cmd;

mod support;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Integria 5.0's tables, as the tests create them.
const TABLES: &str = include_str!("../tests/suite/common/integria.sql");

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Drops and creates the database `name` (a bench constant, spliced) and
/// gives it Integria's tables; its URL.
async fn fresh(admin: &str, name: &str) -> String {
    let pool = MySqlPool::connect(admin).await.unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"),
    ] {
        pool.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    }
    pool.close().await;
    let url = support::database_url(admin, name);
    let pool = writer(&url).await;
    for statement in TABLES.split(';').filter(|s| !s.trim().is_empty()) {
        pool.execute(statement).await.unwrap();
    }
    pool.close().await;
    url
}

/// A pool that writes as Integria's PHP does (an empty `sql_mode`).
async fn writer(url: &str) -> MySqlPool {
    sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(16)
        .after_connect(|conn, _| {
            Box::pin(async move { conn.execute("SET SESSION sql_mode = ''").await.map(drop) })
        })
        .connect(url)
        .await
        .unwrap()
}

/// A helpdesk of `tickets` tickets: 200 groups under "All", 20 profiles,
/// 2,000 agents with three grants each, customers (one per 50 tickets,
/// at least 10), every ticket raised by a customer, two in three owned by
/// an agent, one in two with a work unit.
async fn fill(pool: &MySqlPool, tickets: usize) {
    let customers = (tickets / 50).max(10);
    let statements = [
        "INSERT INTO tgrupo (id_grupo, nombre, parent, soft_limit) \
         SELECT seq, CONCAT('Group&#x20;', seq), IF(seq % 10 = 0, 0, seq - seq % 10), 0 FROM seq_2_to_201"
            .to_owned(),
        "INSERT INTO tprofile (id, name, ir, iw, im) \
         SELECT seq, CONCAT('Profile ', seq), 1, seq % 2, IF(seq % 5 = 0, 1, 0) FROM seq_1_to_20"
            .to_owned(),
        "INSERT INTO tusuario (id_usuario, nombre_real, nivel, direccion) \
         SELECT CONCAT('a', seq), CONCAT('Agent ', seq), IF(seq = 1, 1, 0), CONCAT('a', seq, '@example.com') FROM seq_1_to_2000"
            .to_owned(),
        format!(
            "INSERT INTO tusuario (id_usuario, nombre_real, nivel, direccion) \
             SELECT CONCAT('c', seq), CONCAT('Customer ', seq), -1, CONCAT('c', seq, '@customer.example') FROM seq_1_to_{customers}"
        ),
        "INSERT INTO tusuario_perfil (id_usuario, id_perfil, id_grupo) \
         SELECT CONCAT('a', 1 + seq % 2000), 1 + seq % 20, IF(seq % 50 = 0, 1, 2 + seq % 200) FROM seq_1_to_6000"
            .to_owned(),
        format!(
            "INSERT INTO tincidencia (id_incidencia, inicio, id_usuario, id_creator, id_grupo, estado) \
             SELECT seq, '2026-01-01 00:00:00' + INTERVAL seq SECOND, \
                    IF(seq % 3 = 0, '', CONCAT('a', 1 + seq % 2000)), CONCAT('c', 1 + seq % {customers}), \
                    2 + seq % 200, 1 + seq % 7 FROM seq_1_to_{tickets}"
        ),
        format!(
            "INSERT INTO tworkunit (id, id_user, description) \
             SELECT seq, CONCAT('a', 1 + (seq * 7) % 2000), 'worked' FROM seq_1_to_{}",
            tickets / 2
        ),
        format!(
            "INSERT INTO tworkunit_incident (id_incident, id_workunit) SELECT seq * 2, seq FROM seq_1_to_{}",
            tickets / 2
        ),
    ];
    for sql in statements {
        pool.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    }
}

/// Full loads of the mapping, timed one by one.
async fn load(db: &MappedDb, mapping: &Mapping, tickets: usize, runs: usize) {
    for run in 1..=runs {
        let started = Instant::now();
        let loaded = db.load(mapping).await.unwrap();
        let took = started.elapsed();
        let stats = loaded.snapshot.stats();
        println!(
            "mapped/load_{tickets}_tickets run {run}: {:.2} s ({} tickets, {} users, {} groups; RSS {:.0} MiB)",
            took.as_secs_f64(),
            stats.tickets,
            stats.users,
            stats.groups,
            support::proc_status_bytes("VmRSS") as f64 / (1024.0 * 1024.0),
        );
    }
}

/// Prepares the commit → visible run: a standalone user whose only way
/// to see ticket 1 is a work unit the commits link and unlink.
async fn prepare_lag(url: &str) -> MySqlPool {
    let pool = writer(url).await;
    pool.execute(
        "INSERT INTO tusuario (id_usuario, nombre_real, nivel) VALUES ('probe', 'Probe', -1)",
    )
    .await
    .unwrap();
    pool.execute("INSERT INTO tworkunit (id, id_user) VALUES (99999999, 'probe')")
        .await
        .unwrap();
    pool
}

/// Commit → visible: single-row commits, at random points of the
/// follower's cycle, that alternately link and unlink the probe's work
/// unit, each timed from just before the commit until a
/// `CheckAccess` at the revision read after it answers with the change.
async fn lag(pool: &MySqlPool, server: &str, changes: usize, poll: Duration) {
    let mut probe = ticket_authz::grpc::client::connect(server, &Credentials::default())
        .await
        .unwrap();
    // The first load takes seconds at 1M tickets: wait until it serves.
    let deadline = Instant::now() + Duration::from_secs(300);
    while let Err(status) = probe
        .check_access(pb::CheckAccessRequest {
            user_id: "probe".to_owned(),
            action: pb::Action::View as i32,
            ticket_id: "1".to_owned(),
            ..Default::default()
        })
        .await
    {
        assert!(
            status.code() == tonic::Code::Unavailable && Instant::now() < deadline,
            "{status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut latencies = Vec::with_capacity(changes);
    let mut jitter = 0x2545_f491_4f6c_dd1d_u64;
    for i in 0..changes {
        // A pause of 0 to 2 intervals: writers commit at any point of the
        // follower's cycle, not just after the poll that answered them.
        jitter ^= jitter << 13;
        jitter ^= jitter >> 7;
        jitter ^= jitter << 17;
        let pause = poll.as_secs_f64() * 2.0 * (jitter % 1000) as f64 / 1000.0;
        tokio::time::sleep(Duration::from_secs_f64(pause)).await;
        let adding = i % 2 == 0;
        let sql = if adding {
            "INSERT INTO tworkunit_incident (id_incident, id_workunit) VALUES (1, 99999999)"
        } else {
            "DELETE FROM tworkunit_incident WHERE id_workunit = 99999999"
        };
        let started = Instant::now();
        pool.execute(sql).await.unwrap();
        let revision: u64 = sqlx::query_scalar(REVISION_SQL)
            .fetch_one(pool)
            .await
            .unwrap();
        let answer = probe
            .check_access(pb::CheckAccessRequest {
                user_id: "probe".to_owned(),
                action: pb::Action::View as i32,
                ticket_id: "1".to_owned(),
                min_revision: revision,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        latencies.push(started.elapsed());
        assert_eq!(answer.allowed, adding, "commit {i} at revision {revision}");
    }
    latencies.sort();
    println!(
        "mapped/lag (poll {} ms): {changes} commits, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        poll.as_millis(),
        support::percentile_ms(&latencies, 0.5),
        support::percentile_ms(&latencies, 0.99),
        support::percentile_ms(&latencies, 1.0),
    );
}

/// One round of `n` Integria-like one-statement transactions from
/// `writers` concurrent connections (a status change, a new work unit
/// and its link, an owner change); transactions per second.
async fn write_round(pool: &MySqlPool, n: usize, writers: usize, round: usize) -> f64 {
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for i in (w..n).step_by(writers) {
                    let ticket = 1 + (i * 7919 + round * 104_729) % 10_000;
                    let unit = 1_000_000 + round * n + i;
                    let sql = match i % 3 {
                        0 => format!(
                            "UPDATE tincidencia SET estado = {} WHERE id_incidencia = {ticket}",
                            1 + i % 7
                        ),
                        1 => format!(
                            "INSERT INTO tworkunit (id, id_user, description) VALUES ({unit}, 'a{}', 'w')",
                            1 + i % 2000
                        ),
                        _ => format!(
                            "UPDATE tincidencia SET id_usuario = 'a{}' WHERE id_incidencia = {ticket}",
                            1 + i % 2000
                        ),
                    };
                    // Numbers of this loop only: safe to splice.
                    pool.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Write throughput with the capture installed against without it,
/// alternating rounds on one database of 10,000 tickets.
async fn writes(admin: &str, mapping: &Mapping, n: usize) {
    let url = fresh(admin, "ta_bench_mapped_writes").await;
    let pool = writer(&url).await;
    fill(&pool, 10_000).await;
    let db = MappedDb::connect(&url, mapping).await.unwrap();
    let mut round = 0;
    for writers in [1, 8] {
        let mut with = Vec::new();
        let mut without = Vec::new();
        for _ in 0..2 {
            db.install(mapping).await.unwrap();
            round += 1;
            with.push(write_round(&pool, n, writers, round).await);
            db.uninstall().await.unwrap();
            round += 1;
            without.push(write_round(&pool, n, writers, round).await);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        println!(
            "mapped/writes {writers} writer(s), {n} transactions a round: with the capture {:.0} tx/s ({}), without {:.0} tx/s ({}): ratio {:.2}",
            mean(&with),
            with.iter()
                .map(|t| format!("{t:.0}"))
                .collect::<Vec<_>>()
                .join(", "),
            mean(&without),
            without
                .iter()
                .map(|t| format!("{t:.0}"))
                .collect::<Vec<_>>()
                .join(", "),
            mean(&with) / mean(&without),
        );
    }
    db.close().await;
    pool.close().await;
}

fn main() {
    let Ok(admin) = std::env::var("MYSQL_URL") else {
        println!("mapped: skipped, MYSQL_URL (a MariaDB admin URL) is not set");
        return;
    };
    let parts: String = env_or("MAPPED_PARTS", "load,lag,writes".to_owned());
    let tickets: usize = env_or("MAPPED_TICKETS", 1_000_000);
    let loads: usize = env_or("MAPPED_LOADS", 3);
    let changes: usize = env_or("MAPPED_CHANGES", 500);
    let poll = Duration::from_millis(env_or("MAPPED_POLL", 20));
    let n: usize = env_or("MAPPED_WRITES", 2000);
    let mapping = Arc::new(Mapping::load("integria").unwrap());
    if std::env::var("RUST_LOG").is_ok() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    if parts.contains("load") || parts.contains("lag") {
        let (url, db) = runtime.block_on(async {
            let url = fresh(&admin, "ta_bench_mapped").await;
            let pool = writer(&url).await;
            let started = Instant::now();
            fill(&pool, tickets).await;
            println!(
                "mapped/fill: {tickets} tickets written in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            pool.close().await;
            let db = MappedDb::connect(&url, &mapping).await.unwrap();
            db.install(&mapping).await.unwrap();
            if parts.contains("load") {
                load(&db, &mapping, tickets, loads).await;
            }
            (url, db)
        });
        if parts.contains("lag") {
            let pool = runtime.block_on(prepare_lag(&url));
            // The service on its own runtime, as a separate process would
            // be; started and stopped outside the callers' one.
            let (loader, follow) = serve_cmd::mapped_source(db, mapping.clone(), poll);
            let servers = InProcess::start(Some((loader, Some(follow))), false, None).unwrap();
            let server = format!("http://{}", servers.service.unwrap());
            runtime.block_on(lag(&pool, &server, changes, poll));
            drop(servers);
            runtime.block_on(pool.close());
        }
    }
    if parts.contains("writes") {
        runtime.block_on(writes(&admin, &mapping, n));
    }
}
