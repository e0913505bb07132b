//! The change capture `migrate --mapping` installs on MariaDB: revisions in
//! commit order under concurrent writers that commit out of the order they
//! started and roll back, Integria's permissive writes captured whatever
//! the writer's `sql_mode`, re-install, removal, pruning, and a mapping
//! refused against the live tables with its file, line and member.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

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
    let got: Vec<_> = log(db.mysql_pool().unwrap())
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
        let err = common::migrate_refused(&url, &dir.join("mapping.yaml"), &yaml);
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

/// Integria's rows as its PHP writes them: an empty `sql_mode`, zero
/// dates, HTML-escaped names, group 1 "All", integer ids, and references
/// to users, groups and profiles that are gone.
const INTEGRIA_ROWS: &str = "
INSERT INTO tgrupo (id_grupo, nombre, parent, soft_limit, hard_limit, enforce_soft_limit) VALUES
  (2, 'Support&#x20;L1', 0, 5, 0, 1), (3, 'L2', 2, 0, 0, 0), (4, 'Orphan', 99, 0, 0, 0);
INSERT INTO tprofile (id, name, ir, iw, pw) VALUES (1, 'Operator', 1, 1, 0), (2, 'Reader', 1, 0, 1);
INSERT INTO tcompany (id, name, id_company_role, id_parent, manager) VALUES
  (1, 'Customer&#x20;&#x23;A', 0, NULL, 'olga'), (2, 'Sub', 0, 1, ''), (3, 'Lost', 0, 0, 'ghost');
INSERT INTO tusuario (id_usuario, nombre_real, fecha_registro, direccion, nivel, disabled, id_company, login_blocked) VALUES
  ('admin', 'Admin', '2024-01-02 03:04:05', 'admin@example.com', 1, 0, 0, 0),
  ('olga', 'Olga &amp; Co', '0000-00-00 00:00:00', 'olga at example', 0, 0, 0, 0),
  ('ext', 'External', '0000-00-00 00:00:00', 'ext@customer.example', -1, 0, 1, 0),
  ('zed', 'Zed', '0000-00-00 00:00:00', '', 0, 1, 7, 0);
INSERT INTO tusuario_perfil (id_usuario, id_perfil, id_grupo) VALUES
  ('olga', 1, 2), ('olga', 2, 1), ('zed', 1, 2), ('gone', 1, 2), ('olga', 9, 2), ('olga', 1, 77), ('', 1, 2);
INSERT INTO tincidencia (id_incidencia, inicio, id_usuario, id_creator, editor, id_grupo, estado) VALUES
  (1, '2026-11-01 10:00:00', '', 'ext', '', 2, 3),
  (2, '0000-00-00 00:00:00', '', '', 'ext', 1, 1),
  (3, '2026-11-02 10:00:00', 'ghost2', 'ghost', '', 99, 5),
  (4, '2026-11-03 10:00:00', 'olga', NULL, '', 3, 7);
INSERT INTO tworkunit (id, id_user, description) VALUES (1, 'zed', 'looked'), (2, 'gone', 'left');
INSERT INTO tworkunit_incident (id_incident, id_workunit) VALUES (3, 1), (3, 2);
";

#[tokio::test]
async fn the_integria_preset_loads_what_the_spec_page_maps() {
    use ticket_authz::core::{Action, TicketFilter, ticket_viewers_after, visible_tickets_after};
    use ticket_authz::model::UserKind;
    let Some((_, db, pool)) = integria("load").await else {
        return;
    };
    let mut conn = pool.acquire().await.unwrap();
    for statement in INTEGRIA_ROWS.split(";\n").filter(|s| !s.trim().is_empty()) {
        conn.execute(statement).await.unwrap();
    }
    drop(conn);
    let mapping = Mapping::load("integria").unwrap();
    let loaded = db.load(&mapping).await.unwrap();
    let snap = &loaded.snapshot;
    assert_eq!(snap.revision(), db.revision().await.unwrap());

    let ask = |user: &str, action: Action, ticket: &str| {
        let d = common::decide(snap, common::ask(user, action, &[("ticket", ticket)])).unwrap();
        (d.allowed, d.reason.name())
    };
    use Action::{Comment, Edit, View};
    // Superadmin (nivel 1) sees everything, a ticket of nobody's too.
    assert_eq!(ask("admin", View, "3"), (true, "SUPERADMIN"));
    // A grouped user: Operator on group 2, Reader on "All" (group 1).
    assert_eq!(ask("olga", View, "1"), (true, "GROUP_FLAG"));
    assert_eq!(ask("olga", Comment, "1"), (true, "GROUP_FLAG"));
    assert_eq!(ask("olga", View, "4"), (true, "ASSIGNEE"));
    assert_eq!(ask("olga", View, "2"), (true, "GROUP_FLAG"));
    assert_eq!(ask("olga", Comment, "2"), (false, "NO_MATCHING_RULE"));
    // The standalone user (nivel -1) sees what they raised: as creator,
    // or as editor when the creator is empty.
    assert_eq!(ask("ext", View, "1"), (true, "REQUESTER"));
    assert_eq!(ask("ext", View, "2"), (true, "REQUESTER"));
    assert_eq!(ask("ext", View, "3"), (false, "NO_MATCHING_RULE"));
    // Disabled is suspended; a participant through a work unit.
    assert_eq!(ask("zed", View, "3"), (false, "SUSPENDED"));
    // Ticket 3: creator and owner deleted, group unknown: nobody raised
    // it, nobody owns it, it is in no group, so a grant on "All" reaches
    // it; Reader's IR views it, but without IW nobody but the superadmin
    // edits it, unowned as it now is.
    assert_eq!(ask("olga", View, "3"), (true, "GROUP_FLAG"));
    assert_eq!(ask("olga", Edit, "3"), (false, "NO_MATCHING_RULE"));
    let (viewers, _) = ticket_viewers_after(snap, "3", None, 100);
    assert_eq!(viewers, ["admin", "olga"]);
    let (viewers, _) = ticket_viewers_after(snap, "1", None, 100);
    assert_eq!(viewers, ["admin", "ext", "olga"]);
    let (visible, _) = visible_tickets_after(snap, "olga", &TicketFilter::default(), None, 100);
    assert_eq!(visible, ["1", "2", "3", "4"]);

    // The rows as read: names decoded once, zero dates at the epoch, an
    // e-mail without the shape of one dropped, the kinds by nivel.
    let read = db.read(&mapping).await.unwrap();
    assert_eq!(read.revision, snap.revision());
    let user = |id: &str| {
        read.dataset
            .users
            .iter()
            .find(|u| u.id == id)
            .unwrap()
            .clone()
    };
    assert_eq!(user("olga").name.as_deref(), Some("Olga & Co"));
    assert_eq!(user("olga").email.as_deref(), None);
    assert_eq!(user("olga").created_at.nanos(), 0);
    assert_eq!(user("admin").email.as_deref(), Some("admin@example.com"));
    assert_eq!(user("admin").kind, UserKind::Superadmin);
    assert_eq!(user("olga").kind, UserKind::Agent);
    assert_eq!(user("ext").kind, UserKind::EndUser);
    // References to what is gone, each counted: company 7 of zed, owner
    // ghost of company 3, group 99 of group 4, four grants (one of nobody), ticket 3's
    // creator, owner and group, and the work unit of `gone`.
    let counted: Vec<(&str, u64)> = loaded.unresolved.iter().map(|(e, n)| (*e, *n)).collect();
    assert_eq!(
        counted,
        [
            ("companies", 1),
            ("grants", 4),
            ("groups", 1),
            ("ticket_participants", 1),
            ("tickets", 3),
            ("users", 1),
        ]
    );
    pool.close().await;
}

#[tokio::test]
async fn serve_follows_the_helpdesk_and_min_revision_waits_for_a_write() {
    use ticket_authz::core::{Action, Reason};
    use ticket_authz::grpc::convert::{action_code, reason_code};
    use ticket_authz::grpc::pb::{self, ticket_authz_client::TicketAuthzClient};
    let Some(url) = common::mysql_database("serve").await else {
        return;
    };
    common::create_integria_tables(&url).await;
    // Before `migrate --mapping`: refused, naming the flag and the fix.
    let out = common::bin()
        .args(["serve", "--mapping", "integria", "--database-url", &url])
        .env(
            "TICKET_AUTHZ_LISTEN",
            format!("127.0.0.1:{}", common::free_port()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--mapping integria: the change capture is not installed")
            && err.contains("ticket-authz migrate --mapping integria"),
        "{err}"
    );
    run_ok(&["migrate", "--mapping", "integria", "--database-url", &url]);
    let writer = common::integria_writer(&url).await;
    writer
        .execute(
            "INSERT INTO tusuario (id_usuario, nombre_real, nivel) VALUES ('olga', 'Olga', 0), ('ext', 'Ext', -1)",
        )
        .await
        .unwrap();
    // A ticket of a creator who is gone and an owner who never was.
    writer
        .execute(
            "INSERT INTO tincidencia (id_incidencia, id_creator, id_usuario, id_grupo) VALUES (8, 'ghost', 'nobody', 1)",
        )
        .await
        .unwrap();
    let metrics = format!("127.0.0.1:{}", common::free_port());
    let served = common::serve(
        &[
            "--poll-interval",
            "50ms",
            "--revision-wait",
            "5s",
            "--metrics-listen",
            &metrics,
        ],
        &[
            ("TICKET_AUTHZ_MAPPING", "integria".to_owned()),
            ("TICKET_AUTHZ_DATABASE_URL", url.clone()),
        ],
    );
    let mut client = TicketAuthzClient::connect(served.grpc.clone())
        .await
        .unwrap();
    let ask = |min_revision: u64| pb::CheckAccessRequest {
        user_id: "ext".to_owned(),
        action: action_code(Action::View),
        ticket_id: "7".to_owned(),
        min_revision,
        ..Default::default()
    };
    let before = client.check_access(ask(0)).await.unwrap().into_inner();
    assert!(!before.allowed);
    assert_eq!(before.reason, reason_code(Reason::UnknownResource));
    // The customer raises ticket 7 as Integria's PHP does, then reads the
    // revision with the documented statement and asks at it.
    writer
        .execute(
            "INSERT INTO tincidencia (id_incidencia, inicio, id_creator, id_grupo, estado) \
             VALUES (7, NOW(), 'ext', 1, 1)",
        )
        .await
        .unwrap();
    let revision: u64 = sqlx::query_scalar(REVISION_SQL)
        .fetch_one(&writer)
        .await
        .unwrap();
    let after = client
        .check_access(ask(revision))
        .await
        .unwrap()
        .into_inner();
    assert!(after.allowed, "{after:?}");
    assert_eq!(after.reason, reason_code(Reason::Requester));
    assert!(after.revision >= revision);

    // The unresolved references, by entity and the tables it is read
    // from; the creator's return resolves one of the two.
    let tickets =
        "ticket_authz_unresolved_references{entity=\"tickets\",source_tables=\"tincidencia\"}";
    assert_eq!(unresolved(&metrics, tickets), Some(2.0));
    writer
        .execute("INSERT INTO tusuario (id_usuario, nivel) VALUES ('ghost', -1)")
        .await
        .unwrap();
    let revision: u64 = sqlx::query_scalar(REVISION_SQL)
        .fetch_one(&writer)
        .await
        .unwrap();
    let mut ghost = ask(revision);
    ghost.user_id = "ghost".to_owned();
    ghost.ticket_id = "8".to_owned();
    let owned = client.check_access(ghost).await.unwrap().into_inner();
    assert_eq!(owned.reason, reason_code(Reason::Requester), "{owned:?}");
    assert_eq!(unresolved(&metrics, tickets), Some(1.0));
    drop(served);
    writer.close().await;
}

/// The value of one series on the metrics page at `addr`.
fn unresolved(addr: &str, series: &str) -> Option<f64> {
    common::metrics_page(addr)
        .lines()
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(s, _)| *s == series)
        .map(|(_, v)| v.parse().unwrap())
}
