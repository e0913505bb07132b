//! What the benchmark binaries share: resident memory read from `/proc`,
//! scratch PostgreSQL databases beside the one an admin URL names, and the
//! memory-latency floor check and page figures are divided by.
// Each bench includes this module and uses a part of it.
#![allow(dead_code)]

pub mod figures;
pub mod floor;

/// A `/proc/self/status` field in bytes (`VmRSS`, `VmHWM`).
pub fn proc_status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| {
            v.trim_start_matches(':')
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap();
    kb * 1024
}

/// The `q` quantile of `sorted` latencies in milliseconds (nearest rank).
pub fn percentile_ms(sorted: &[std::time::Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

/// The admin URL with its database name replaced (its query kept).
pub fn database_url(admin: &str, name: &str) -> String {
    let host_start = admin.find("://").map_or(0, |i| i + 3);
    let (rest, query) = match admin.find('?') {
        Some(q) => (&admin[..q], &admin[q..]),
        None => (admin, ""),
    };
    let base = match rest[host_start..].find('/') {
        Some(slash) => &rest[..host_start + slash],
        None => rest,
    };
    format!("{base}/{name}{query}")
}

/// Drops the database `name` if it exists and, with `create`, creates it
/// empty. `name` must come from the bench's own constants, never from
/// input: it is spliced into the statements.
pub async fn recreate_database(admin: &str, name: &str, create: bool) {
    let pool = sqlx::PgPool::connect(admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&pool)
    .await
    .unwrap();
    if create {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
}
