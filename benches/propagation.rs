//! Commit → visible on PostgreSQL: single-row commits (a CC added or
//! removed) against a database the follower listens to; each latency runs
//! from just before the commit to the moment the store publishes its
//! revision. Needs `DATABASE_URL` (an admin URL); creates its own database.
//! Run with `cargo bench --bench propagation` (`PROPAGATION_CHANGES`, default 1000).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ticket_authz::db::{Database, Notify, follow};
use ticket_authz::snapshot::Snapshot;
use ticket_authz::store::Store;

#[tokio::main]
async fn main() {
    let Ok(admin) = std::env::var("DATABASE_URL") else {
        println!("propagation: skipped, DATABASE_URL (a PostgreSQL admin URL) is not set");
        return;
    };
    let changes: usize = std::env::var("PROPAGATION_CHANGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let pool = sqlx::PgPool::connect(&admin).await.unwrap();
    sqlx::query("DROP DATABASE IF EXISTS ta_propagation WITH (FORCE)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("CREATE DATABASE ta_propagation")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let host_end = admin.find("://").map_or(0, |i| i + 3);
    let base = &admin[..admin[host_end..]
        .find('/')
        .map_or(admin.len(), |i| host_end + i)];
    let url = format!("{base}/ta_propagation");

    let db = Database::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    let demo = ticket_authz::dataset::load_file(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.yaml"),
    )
    .unwrap();
    db.import(&demo.dataset, true).await.unwrap();
    let loaded = db.load().await.unwrap();
    let mut snap = Snapshot::build(&loaded.dataset).unwrap();
    snap.set_revision(loaded.revision);
    let store = Arc::new(Store::default());
    store.publish(snap);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(follow(
        db.clone(),
        Arc::clone(&store),
        Notify::Listen,
        Duration::from_secs(1),
        stopped,
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let Database::Postgres(writer) = &db else {
        unreachable!()
    };
    let mut latencies = Vec::with_capacity(changes);
    for i in 0..changes {
        let before = store.current().unwrap().revision();
        let sql = if i % 2 == 0 {
            "INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1001', 'fay')"
        } else {
            "DELETE FROM ticket_ccs WHERE ticket_id = '1001' AND user_id = 'fay'"
        };
        let started = Instant::now();
        sqlx::query(sql).execute(writer).await.unwrap();
        store
            .at_least(before + 1, Duration::from_secs(5))
            .await
            .unwrap();
        latencies.push(started.elapsed());
    }
    stop.send_replace(true);
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "propagation/{changes}_commits: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (full reloads: {})",
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
        store.full_loads()
    );
}
