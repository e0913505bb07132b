//! Commit → decision visible on PostgreSQL, idle and with the service under
//! load. A database with generated data is served by the real service (in
//! this process, following the database over LISTEN/NOTIFY); single-row
//! commits add and remove a CC that alone lets a user see a ticket, and each
//! latency runs from just before the commit until a `CheckAccess` asking for
//! that commit's revision answers the new decision. Needs `DATABASE_URL` (an
//! admin URL); creates its own database. Run with
//! `cargo bench --bench propagation` (`PROPAGATION_CHANGES`, default 1000;
//! `PROPAGATION_TICKETS`, default 100000; `PROPAGATION_CONCURRENCY`, default
//! 64 callers of the load).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ticket_authz::core;
use ticket_authz::db::{Database, Notify};
use ticket_authz::generate::{NARROW_USER, Spec, generate};
use ticket_authz::grpc::client::{Client, Credentials};
use ticket_authz::grpc::pb;
use ticket_authz::loadtest::{Form, InProcess, Mix, Plan, Workload, clients, drive_until};
use ticket_authz::serve_cmd;
use ticket_authz::snapshot::Snapshot;

mod support;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Creates (or re-creates) the database `ta_propagation` and returns its URL.
async fn fresh_database(admin: &str) -> String {
    support::recreate_database(admin, "ta_propagation", true).await;
    support::database_url(admin, "ta_propagation")
}

/// The commit → visible latencies of `changes` commits that alternately
/// add and remove `user`'s CC on `ticket`.
async fn propagate(
    writer: &sqlx::PgPool,
    db: &Database,
    probe: &mut Client,
    user: &str,
    ticket: &str,
    changes: usize,
) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(changes);
    for i in 0..changes {
        let adding = i % 2 == 0;
        let sql = if adding {
            "INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ($1, $2)"
        } else {
            "DELETE FROM ticket_ccs WHERE ticket_id = $1 AND user_id = $2"
        };
        let started = Instant::now();
        sqlx::query(sql)
            .bind(ticket)
            .bind(user)
            .execute(writer)
            .await
            .unwrap();
        let revision = db.revision().await.unwrap();
        let answer = probe
            .check_access(pb::CheckAccessRequest {
                user_id: user.to_owned(),
                action: pb::Action::View as i32,
                ticket_id: ticket.to_owned(),
                min_revision: revision,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        latencies.push(started.elapsed());
        assert!(answer.revision >= revision);
        assert_eq!(
            answer.allowed, adding,
            "change {i}: the decision at revision {revision} does not show the commit"
        );
    }
    latencies
}

fn report(name: &str, mut latencies: Vec<Duration>) {
    latencies.sort();
    let at = |q: f64| support::percentile_ms(&latencies, q);
    println!(
        "propagation/{name}: {} commits, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        at(0.50),
        at(0.99),
        at(1.0),
    );
}

fn main() {
    let Ok(admin) = std::env::var("DATABASE_URL") else {
        println!("propagation: skipped, DATABASE_URL (a PostgreSQL admin URL) is not set");
        return;
    };
    let changes: usize = env_or("PROPAGATION_CHANGES", 1000);
    let tickets: usize = env_or("PROPAGATION_TICKETS", 100_000);
    let concurrency: usize = env_or("PROPAGATION_CONCURRENCY", 64);

    // The callers' runtime; the service runs on its own (as a separate
    // process would), started and stopped outside this one.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (db, workload, ticket) = runtime.block_on(async {
        let url = fresh_database(&admin).await;
        let db = Database::connect(&url).await.unwrap();
        db.migrate().await.unwrap();
        let data = generate(&Spec::scaled(tickets));
        db.import(&data, true).await.unwrap();
        let workload = Arc::new(Workload::new(&data, 100, 100, 7));
        // A ticket the user sees only while the CC is there.
        let snap = Snapshot::build(&data).unwrap();
        let ticket = data
            .tickets
            .iter()
            .map(|t| t.id.as_str())
            .find(|t| !core::can_view(&snap, NARROW_USER, t))
            .unwrap()
            .to_owned();
        (db, workload, ticket)
    });
    let servers = InProcess::start(
        Some((
            serve_cmd::database_loader(db.clone()),
            Some(serve_cmd::follower(
                db.clone(),
                Notify::Listen,
                Duration::from_secs(1),
            )),
        )),
        false,
        None,
    )
    .unwrap();
    let server = format!("http://{}", servers.service.unwrap());
    runtime.block_on(measure(
        &db,
        &server,
        workload,
        &ticket,
        changes,
        tickets,
        concurrency,
    ));
    drop(servers);
    runtime.block_on(db.close());
}

async fn measure(
    db: &Database,
    server: &str,
    workload: Arc<Workload>,
    ticket: &str,
    changes: usize,
    tickets: usize,
    concurrency: usize,
) {
    let load = clients(server, &Credentials::default(), 1, &workload, Form::Grpc)
        .await
        .unwrap();
    // The writer's own connection, as a ticketing system would have.
    let mut probe = ticket_authz::grpc::client::connect(server, &Credentials::default())
        .await
        .unwrap();
    let Database::Postgres(writer) = db else {
        unreachable!("connected with a postgres:// URL")
    };

    let idle = propagate(writer, db, &mut probe, NARROW_USER, ticket, changes).await;
    report(&format!("idle_{tickets}_tickets"), idle);

    let plan = Plan {
        concurrency,
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(3600),
        requests: None,
        rate: None,
        mix: Mix::parse("check=1").unwrap(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let loading = tokio::spawn(async move {
        drive_until(&load, workload, &plan, async move {
            let _ = stopped.await;
        })
        .await
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let busy = propagate(writer, db, &mut probe, NARROW_USER, ticket, changes).await;
    let _ = stop.send(());
    let outcome = loading.await.unwrap();
    report(
        &format!("under_load_{tickets}_tickets_{concurrency}_callers"),
        busy,
    );
    println!(
        "propagation/load: CheckAccess {:.0} rps during the commits, p50 {:.3} ms, p99 {:.3} ms, errors {}",
        outcome.throughput(),
        outcome.all.at(0.5).as_secs_f64() * 1e3,
        outcome.all.at(0.99).as_secs_f64() * 1e3,
        outcome.errors,
    );
}
