//! The change capture `migrate --mapping` installs on MariaDB: revisions in
//! commit order under concurrent writers that commit out of the order they
//! started and roll back, Integria's permissive writes captured whatever
//! the writer's `sql_mode`, re-install, removal, pruning, and a mapping
//! refused against the live tables with its file, line and member.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::{Connection, Executor, MySqlPool, Row};
use ticket_authz::mapped::{MappedDb, REVISION_SQL};
use ticket_authz::mapping::Mapping;

/// A database with Integria's tables and the `integria` capture.
async fn integria(name: &str) -> Option<(String, MappedDb, MySqlPool)> {
    let url = common::mysql_database(name).await?;
    common::create_integria_tables(&url).await;
    let mapping = Mapping::load("integria").unwrap();
    let db = MappedDb::connect(&url, &mapping).await.unwrap();
    let installed = db.install(&mapping).await.unwrap();
    assert_eq!((installed.tables, installed.triggers), (8, 24));
    db.verify_capture(&mapping).await.unwrap();
    let writer = common::integria_writer(&url).await;
    Some((url, db, writer))
}

/// Runs the binary, which must succeed; what it printed.
fn run_ok(args: &[&str]) -> String {
    let out = common::bin().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The change log: (revision, table, op, old, new).
async fn log(pool: &MySqlPool) -> Vec<(u64, String, String, Option<String>, Option<String>)> {
    sqlx::query_as(
        "SELECT revision, table_name, op, old_row, new_row FROM ticket_authz_changes ORDER BY revision",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn revision_of_user(pool: &MySqlPool, id: &str) -> u64 {
    log(pool)
        .await
        .into_iter()
        .find(|(_, t, _, _, new)| {
            t == "tusuario" && new.as_deref() == Some(&format!(r#"{{"id_usuario": "{id}"}}"#))
        })
        .unwrap_or_else(|| panic!("no change for user {id}"))
        .0
}

#[tokio::test]
async fn a_transaction_that_started_first_but_committed_last_numbers_last() {
    let Some((_, db, pool)) = integria("commit_order").await else {
        return;
    };
    let mut first = pool.acquire().await.unwrap();
    let mut second = pool.acquire().await.unwrap();
    // The first transaction starts (and reads) before the second exists.
    first.execute("BEGIN").await.unwrap();
    first.execute("SELECT COUNT(*) FROM tgrupo").await.unwrap();
    second.execute("BEGIN").await.unwrap();
    second
        .execute("INSERT INTO tusuario (id_usuario) VALUES ('second')")
        .await
        .unwrap();
    second.execute("COMMIT").await.unwrap();
    first
        .execute("INSERT INTO tusuario (id_usuario) VALUES ('first')")
        .await
        .unwrap();
    first.execute("COMMIT").await.unwrap();
    assert!(revision_of_user(&pool, "second").await < revision_of_user(&pool, "first").await);

    // A writer that numbered first holds the counter until it commits: the
    // next writer waits, and numbers after every row of the first.
    first.execute("BEGIN").await.unwrap();
    first
        .execute("INSERT INTO tusuario (id_usuario) VALUES ('holder')")
        .await
        .unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move {
            let mut conn = pool.acquire().await.unwrap();
            conn.execute("INSERT INTO tusuario (id_usuario) VALUES ('waiter')")
                .await
                .unwrap();
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiter.is_finished(),
        "the second writer numbered while the first was open"
    );
    first
        .execute("INSERT INTO tusuario (id_usuario) VALUES ('holder2')")
        .await
        .unwrap();
    first.execute("COMMIT").await.unwrap();
    waiter.await.unwrap();
    let holder2 = revision_of_user(&pool, "holder2").await;
    assert_eq!(revision_of_user(&pool, "holder").await + 1, holder2);
    assert_eq!(revision_of_user(&pool, "waiter").await, holder2 + 1);
    assert_eq!(db.revision().await.unwrap(), holder2 + 1);
    drop((first, second));
    pool.close().await;
}

/// A tiny deterministic generator, so a failure replays.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[tokio::test]
async fn concurrent_writers_and_rollbacks_give_gapless_revisions_in_commit_order() {
    let Some((_, db, pool)) = integria("storm_order").await else {
        return;
    };
    const WRITERS: u64 = 6;
    const TRANSACTIONS: u64 = 25;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A reader the whole time: whatever it sees is every revision from the
    // first up to the highest, never a later one without an earlier.
    let reader = tokio::spawn({
        let (pool, stop) = (pool.clone(), stop.clone());
        async move {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let seen: Vec<u64> = sqlx::query_scalar(
                    "SELECT revision FROM ticket_authz_changes ORDER BY revision",
                )
                .fetch_all(&pool)
                .await
                .unwrap();
                for pair in seen.windows(2) {
                    assert_eq!(pair[0] + 1, pair[1], "a hole in {seen:?}");
                }
                let counter: u64 = sqlx::query_scalar(REVISION_SQL)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                assert!(counter >= seen.last().copied().unwrap_or(0));
                reads += 1;
            }
            reads
        }
    });
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let pool = pool.clone();
        writers.push(tokio::spawn(async move {
            let mut rng = Lcg(w + 1);
            let mut conn = pool.acquire().await.unwrap();
            let mut committed = Vec::new();
            for t in 0..TRANSACTIONS {
                let mut tx = conn.begin().await.unwrap();
                let rows = 1 + rng.below(3);
                for k in 0..rows {
                    // Some transactions pause between their writes, while
                    // others that started later commit.
                    if rng.below(3) == 0 {
                        tokio::time::sleep(Duration::from_millis(rng.below(8))).await;
                    }
                    sqlx::query("INSERT INTO tusuario (id_usuario, fecha_registro) VALUES (?, '0000-00-00 00:00:00')")
                        .bind(format!("w{w}-{t}-{k}"))
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                }
                if rng.below(4) == 0 {
                    tx.rollback().await.unwrap();
                } else {
                    tx.commit().await.unwrap();
                    committed.push((t, rows));
                }
            }
            committed
        }));
    }
    let mut expected = BTreeMap::new();
    for (w, writer) in writers.into_iter().enumerate() {
        for (t, rows) in writer.await.unwrap() {
            expected.insert(format!("w{w}-{t}"), rows);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.await.unwrap() > 0);

    // Every committed row once, none of a rollback, no hole, and each
    // transaction's rows on consecutive revisions.
    let log = log(&pool).await;
    let first = log[0].0;
    let mut runs: Vec<(String, u64)> = Vec::new();
    for (i, (revision, table, op, _, new)) in log.iter().enumerate() {
        assert_eq!(*revision, first + i as u64);
        assert_eq!((table.as_str(), op.as_str()), ("tusuario", "I"));
        let v: serde_json::Value = serde_json::from_str(new.as_deref().unwrap()).unwrap();
        let id = v["id_usuario"].as_str().unwrap();
        let txn = id.rsplit_once('-').unwrap().0.to_owned();
        match runs.last_mut() {
            Some((last, n)) if *last == txn => *n += 1,
            _ => {
                assert!(
                    !runs.iter().any(|(t, _)| *t == txn),
                    "transaction {txn} interleaved with another"
                );
                runs.push((txn, 1));
            }
        }
    }
    let got: BTreeMap<String, u64> = runs.into_iter().collect();
    assert_eq!(got, expected);
    assert_eq!(db.revision().await.unwrap(), log.last().unwrap().0);
    pool.close().await;
}

#[tokio::test]
async fn writes_are_captured_under_an_empty_and_a_strict_sql_mode() {
    let Some((url, db, _)) = integria("sql_modes").await else {
        return;
    };
    for (mode, id) in [
        ("", "loose"),
        // The server default here, which the triggers were not created under.
        (
            "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION",
            "strict",
        ),
    ] {
        let mut conn = sqlx::MySqlConnection::connect(&url).await.unwrap();
        sqlx::query("SET SESSION sql_mode = ?")
            .bind(mode)
            .execute(&mut conn)
            .await
            .unwrap();
        // Integria's own kind of row where the mode allows it: a zero date,
        // an escaped name.
        let date = if mode.is_empty() {
            "0000-00-00 00:00:00"
        } else {
            "2024-01-02 03:04:05"
        };
        sqlx::query("INSERT INTO tusuario (id_usuario, nombre_real, fecha_registro) VALUES (?, 'Ana&#x20;P', ?)")
            .bind(id)
            .bind(date)
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("UPDATE tusuario SET nivel = 1 WHERE id_usuario = ?")
            .bind(id)
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("DELETE FROM tusuario WHERE id_usuario = ?")
            .bind(id)
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let image = |id: &str| Some(format!(r#"{{"id_usuario": "{id}"}}"#));
    let got: Vec<_> = log(db.pool())
        .await
        .into_iter()
        .map(|(_, t, op, old, new)| (t, op, old, new))
        .collect();
    let mut want = Vec::new();
    for id in ["loose", "strict"] {
        let t = || "tusuario".to_owned();
        want.push((t(), "I".to_owned(), None, image(id)));
        want.push((t(), "U".to_owned(), image(id), image(id)));
        want.push((t(), "D".to_owned(), image(id), None));
    }
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_rollback_takes_its_revision_back() {
    let Some((_, db, pool)) = integria("rollback").await else {
        return;
    };
    let before = db.revision().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    tx.execute("INSERT INTO tgrupo (nombre) VALUES ('gone')")
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(db.revision().await.unwrap(), before);
    pool.execute("INSERT INTO tgrupo (nombre) VALUES ('kept')")
        .await
        .unwrap();
    assert_eq!(db.revision().await.unwrap(), before + 1);
    let log = log(&pool).await;
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].0, log[0].1.as_str()), (before + 1, "tgrupo"));
    pool.close().await;
}

/// Our objects in the database: (triggers, tables).
async fn ours(pool: &MySqlPool) -> (Vec<String>, Vec<String>) {
    let triggers = sqlx::query_scalar(
        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS \
         WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME LIKE 'ticket\\_authz\\_%' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let tables = sqlx::query_scalar(
        "SELECT TABLE_NAME FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'ticket\\_authz\\_%' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    (triggers, tables)
}

#[tokio::test]
async fn a_reinstall_for_another_mapping_drops_stale_triggers_and_makes_followers_reload() {
    let Some((_, db, pool)) = integria("reinstall").await else {
        return;
    };
    pool.execute("INSERT INTO tgrupo (nombre) VALUES ('Support')")
        .await
        .unwrap();
    let before = db.revision().await.unwrap();
    // Installing the same mapping again keeps the log and every trigger.
    let integria = Mapping::load("integria").unwrap();
    let again = db.install(&integria).await.unwrap();
    assert_eq!((again.triggers, again.dropped), (24, 0));
    assert_eq!(again.revision, before + 1);
    assert_eq!(log(&pool).await.len(), 1);

    let groups = Mapping::parse(
        "groups.yaml",
        "database: mysql\n\
         entities:\n  groups:\n    query: SELECT id_grupo AS id, nombre AS name FROM tgrupo\n\
         tables:\n  tgrupo:\n    groups: {column: id_grupo}\n",
    )
    .unwrap();
    let installed = db.install(&groups).await.unwrap();
    assert_eq!(
        (installed.tables, installed.triggers, installed.dropped),
        (1, 3, 21)
    );
    let (triggers, _) = ours(&pool).await;
    assert_eq!(
        triggers,
        [
            "ticket_authz_tgrupo_d",
            "ticket_authz_tgrupo_i",
            "ticket_authz_tgrupo_u"
        ]
    );
    // The install is a revision of its own and the floor: a follower that
    // applied less cannot trust the log across the change of capture.
    let floor: u64 = sqlx::query_scalar("SELECT revision FROM ticket_authz_pruned")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(floor, installed.revision);
    assert_eq!(db.revision().await.unwrap(), installed.revision);
    db.verify_capture(&groups).await.unwrap();
    let err = db.verify_capture(&integria).await.unwrap_err().to_string();
    assert!(
        err.contains("--mapping integria") && err.contains("another mapping's"),
        "{err}"
    );
    pool.execute("INSERT INTO tusuario (id_usuario) VALUES ('unseen')")
        .await
        .unwrap();
    assert_eq!(db.revision().await.unwrap(), installed.revision);
    pool.close().await;
}

#[tokio::test]
async fn uninstall_removes_every_object_and_leaves_the_helpdesk_tables_alone() {
    let Some((url, _db, pool)) = integria("uninstall").await else {
        return;
    };
    pool.execute("INSERT INTO tusuario (id_usuario, nombre_real) VALUES ('ana', 'Ana')")
        .await
        .unwrap();
    let said = run_ok(&[
        "migrate",
        "--uninstall",
        "--mapping",
        "integria",
        "--database-url",
        &url,
    ]);
    assert!(said.contains("24 triggers, 3 tables"), "{said}");
    let (triggers, tables) = ours(&pool).await;
    assert!(
        triggers.is_empty() && tables.is_empty(),
        "{triggers:?} {tables:?}"
    );
    // The helpdesk goes on writing, its rows untouched.
    pool.execute("UPDATE tusuario SET nombre_real = 'Ana P' WHERE id_usuario = 'ana'")
        .await
        .unwrap();
    let row = sqlx::query("SELECT COUNT(*) FROM tusuario")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(row.get::<i64, _>(0), 1);
    let mapping = Mapping::load("integria").unwrap();
    let db = MappedDb::connect(&url, &mapping).await.unwrap();
    let err = db.verify_capture(&mapping).await.unwrap_err().to_string();
    assert!(
        err.contains("not installed") && err.contains("migrate --mapping integria"),
        "{err}"
    );
    // Installing again from the command line works on the same tables.
    run_ok(&["migrate", "--mapping", "integria", "--database-url", &url]);
    db.verify_capture(&mapping).await.unwrap();
    pool.close().await;
}

#[tokio::test]
async fn prune_deletes_old_changes_and_raises_the_floor() {
    let Some((url, db, pool)) = integria("prune").await else {
        return;
    };
    for id in ["a", "b", "c"] {
        sqlx::query("INSERT INTO tusuario (id_usuario) VALUES (?)")
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
    }
    let revisions: Vec<u64> = log(&pool).await.iter().map(|r| r.0).collect();
    // The first two are made two hours old.
    sqlx::query(
        "UPDATE ticket_authz_changes SET changed_at = changed_at - 7200 WHERE revision <= ?",
    )
    .bind(revisions[1])
    .execute(&pool)
    .await
    .unwrap();
    let said = run_ok(&["prune", "--older-than", "1h", "--database-url", &url]);
    assert!(
        said.contains(&format!(
            "pruned 2 change-log entries; revisions up to {}",
            revisions[1]
        )),
        "{said}"
    );
    let left: Vec<u64> = log(&pool).await.iter().map(|r| r.0).collect();
    assert_eq!(left, [revisions[2]]);
    // Nothing older left: the floor stays, the latest revision stays.
    let again = db.prune(Duration::from_secs(3600)).await.unwrap();
    assert_eq!((again.deleted, again.floor), (0, revisions[1]));
    assert_eq!(db.revision().await.unwrap(), revisions[2]);
    pool.close().await;
}

/// Runs `migrate --mapping FILE` with `yaml`; its error output.
fn migrate_refused(url: &str, dir: &std::path::Path, yaml: &str) -> String {
    let file = dir.join("mapping.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out = common::bin()
        .args([
            "migrate",
            "--mapping",
            file.to_str().unwrap(),
            "--database-url",
            url,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "accepted:\n{yaml}");
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

#[tokio::test]
async fn a_mapping_is_refused_against_the_live_tables_with_file_line_and_member() {
    let Some(url) = common::mysql_database("bad_live").await else {
        return;
    };
    common::create_integria_tables(&url).await;
    let pool = common::integria_writer(&url).await;
    pool.execute("CREATE TABLE tlegacy (id int PRIMARY KEY, name varchar(10)) ENGINE=MyISAM")
        .await
        .unwrap();
    pool.execute("CREATE VIEW vgrupo AS SELECT id_grupo, nombre FROM tgrupo")
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("ta-bad-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mapping.yaml");
    let file = file.display();
    let groups = |query: &str, table: &str, rule: &str| {
        format!(
            "database: mysql\nentities:\n  groups:\n    query: {query}\ntables:\n  {table}:\n    groups: {rule}\n"
        )
    };
    let cases = [
        (
            groups(
                "SELECT id AS id, name FROM tmissing",
                "tmissing",
                "{column: id}",
            ),
            format!("{file}:6: tables.tmissing: no table `tmissing` in database"),
        ),
        (
            groups("SELECT id, name FROM tlegacy", "tlegacy", "{column: id}"),
            format!(
                "{file}:6: tables.tlegacy: `tlegacy` uses the MyISAM engine: the capture needs InnoDB"
            ),
        ),
        (
            groups(
                "SELECT id_grupo AS id, nombre AS name FROM vgrupo",
                "vgrupo",
                "{column: id_grupo}",
            ),
            format!("{file}:6: tables.vgrupo: `vgrupo` is a view: triggers need a base table"),
        ),
        (
            groups(
                "SELECT id_grupo AS id, nombre AS name FROM tgrupo",
                "tgrupo",
                "{column: id_group}",
            ),
            format!(
                "{file}:7: tables.tgrupo.groups.column: no column `id_group` in table `tgrupo`"
            ),
        ),
        (
            groups(
                "SELECT id_grupo AS id, nombre AS name FROM tgrupo",
                "tgrupo",
                "{query: 'SELECT id_grupo, nombre FROM tgrupo WHERE id_grupo = :id_grupo'}",
            ),
            format!(
                "{file}:7: tables.tgrupo.groups.query: the query gives 2 columns; it must give one, the id keys"
            ),
        ),
        (
            groups(
                "SELECT id_grupo AS id, nombre AS name FROM tgrupo",
                "tgrupo",
                "{query: 'SELECT id FROM tgrupo WHERE id_grupo = :id_grupo'}",
            ),
            format!(
                "{file}:7: tables.tgrupo.groups.query: the query fails: Unknown column 'id' in 'SELECT'"
            ),
        ),
        (
            groups(
                "SELECT id_grupo AS id, nombre AS nme FROM tgrupo",
                "tgrupo",
                "{column: id_grupo}",
            ),
            format!(
                "{file}:4: entities.groups.query: the query gives a column `nme`, which groups does not have (it has id, name, parent_id,"
            ),
        ),
        (
            groups(
                "SELECT id_grupo AS id FROM tgrupo",
                "tgrupo",
                "{column: id_grupo}",
            ),
            format!(
                "{file}:4: entities.groups.query: the query gives no column `name`, which groups requires (it gives id)"
            ),
        ),
        (
            groups(
                "SELECT id_grupo AS id, nombre AS name FROM tgrupo WHERE",
                "tgrupo",
                "{column: id_grupo}",
            ),
            format!(
                "{file}:4: entities.groups.query: the query fails: You have an error in your SQL syntax"
            ),
        ),
        (
            groups(
                "SELECT id_grupo AS id, nombre AS name, nombre AS name FROM tgrupo",
                "tgrupo",
                "{column: id_grupo}",
            ),
            format!(
                "{file}:4: entities.groups.query: the query fails: Duplicate column name 'name'"
            ),
        ),
    ];
    for (yaml, want) in cases {
        let err = migrate_refused(&url, &dir, &yaml);
        assert!(
            err.starts_with(&format!("ticket-authz migrate: {want}")),
            "want {want}\n got {err}"
        );
        // Refused whole: nothing of the capture was created.
        assert_eq!(ours(&pool).await, (vec![], vec![]), "after {want}");
    }
    // A URL of another database than the mapping's.
    let out = common::bin()
        .args([
            "migrate",
            "--mapping",
            "integria",
            "--database-url",
            "postgres://u:secret@h/db",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "mapping integria is for mysql, but the database url is `postgres://u:****@h/db`"
        ),
        "{err}"
    );
    let out = common::bin()
        .args(["migrate", "--uninstall", "--database-url", &url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--mapping"));
    pool.close().await;
}
