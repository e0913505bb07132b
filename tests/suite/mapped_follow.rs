//! Following Integria's own tables through the `integria` mapping: each
//! kind of write Integria's PHP makes, applied row by row, and a storm of
//! concurrent writers committing out of order and rolling back. After
//! each, the served answers must equal those of a full read of the
//! mapping at the same revision.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use fastrand::Rng;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Executor, MySqlPool};
use ticket_authz::follow::{self, ChangeSource};
use ticket_authz::mapped::{MappedDb, MappedSource};
use ticket_authz::mapping::Mapping;
use ticket_authz::store::Store;
use tokio::sync::watch;

/// The helpdesk before any test writes: two groups under "All", two
/// profiles, a company, an admin, an agent, a customer and two tickets.
const BASE: &str = "
INSERT INTO tgrupo (id_grupo, nombre, parent) VALUES (2, 'Support', 0), (3, 'L2', 2);
INSERT INTO tprofile (id, name, ir, iw, im) VALUES (1, 'Operator', 1, 1, 0), (2, 'Reader', 1, 0, 0);
INSERT INTO tcompany (id, name, id_parent, manager) VALUES (1, 'Customer', NULL, '');
INSERT INTO tusuario (id_usuario, nombre_real, fecha_registro, direccion, nivel, disabled, id_company) VALUES
  ('admin', 'Admin', '2024-01-02 03:04:05', 'admin@example.com', 1, 0, 0),
  ('olga', 'Olga', '0000-00-00 00:00:00', 'olga@example.com', 0, 0, 0),
  ('ext', 'External', '0000-00-00 00:00:00', 'ext@customer.example', -1, 0, 1);
INSERT INTO tusuario_perfil (id_usuario, id_perfil, id_grupo) VALUES ('olga', 1, 2);
INSERT INTO tincidencia (id_incidencia, inicio, id_usuario, id_creator, id_grupo, estado) VALUES
  (1, '2026-11-01 10:00:00', '', 'ext', 2, 1),
  (2, '2026-11-02 10:00:00', 'olga', 'ext', 3, 3);
";

struct Followed {
    db: MappedDb,
    writer: MySqlPool,
    mapping: Arc<Mapping>,
    store: Arc<Store>,
    _stop: watch::Sender<bool>,
}

/// Integria's tables with `BASE`, the capture installed, loaded and
/// followed (polled every 10 ms).
async fn followed(name: &str) -> Option<Followed> {
    let url = common::mysql_database(name).await?;
    Some(followed_at(&url).await)
}

async fn followed_at(url: &str) -> Followed {
    followed_with(url, "").await
}

/// As [`followed_at`], with `ddl` run on the tables before the install.
async fn followed_with(url: &str, ddl: &'static str) -> Followed {
    let url = url.to_owned();
    common::create_integria_tables(&url).await;
    if !ddl.is_empty() {
        write(&common::integria_writer(&url).await, ddl).await;
    }
    let mapping = Arc::new(Mapping::load("integria").unwrap());
    let db = MappedDb::connect(&url, &mapping).await.unwrap();
    db.install(&mapping).await.unwrap();
    let writer = common::integria_writer(&url).await;
    write(&writer, BASE).await;
    let mut source = MappedSource::new(db.clone(), mapping.clone(), Duration::from_millis(10));
    let store = Arc::new(Store::default());
    store.publish(source.load().await.unwrap());
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(follow::follow(source, store.clone(), stopped));
    Followed {
        db,
        writer,
        mapping,
        store,
        _stop: stop,
    }
}

/// Runs `sql` (statements ending in `;` and a newline) in one transaction.
async fn write(pool: &MySqlPool, sql: &'static str) {
    let mut tx = pool.begin().await.unwrap();
    for statement in sql.split(";\n").filter(|s| !s.trim().is_empty()) {
        tx.execute(statement).await.unwrap();
    }
    tx.commit().await.unwrap();
}

impl Followed {
    async fn matches_a_full_read(&self, step: &str) {
        common::mapped::matches_a_full_read(&self.db, &self.mapping, &self.store, step).await;
    }

    fn full_loads(&self) -> u64 {
        self.store.full_loads()
    }
}

#[tokio::test]
async fn each_kind_of_integria_write_is_followed_row_by_row() {
    let Some(f) = followed("follow_steps").await else {
        return;
    };
    f.matches_a_full_read("the first load").await;
    let steps: &[(&str, &str)] = &[
        (
            "a ticket raised by the customer, owned by the agent",
            "INSERT INTO tincidencia (id_incidencia, inicio, id_usuario, id_creator, id_grupo, estado) \
             VALUES (3, '2026-11-03 09:00:00', 'olga', 'ext', 2, 1);\n",
        ),
        (
            "its status and owner changed, and its group",
            "UPDATE tincidencia SET estado = 7, id_usuario = '', id_grupo = 3 WHERE id_incidencia = 3;\n",
        ),
        (
            "a work unit makes a participant",
            "INSERT INTO tworkunit (id, id_user, description) VALUES (1, 'admin', 'looked');\n\
             INSERT INTO tworkunit_incident (id_incident, id_workunit) VALUES (1, 1);\n",
        ),
        (
            "the work unit moves to its author's colleague",
            "UPDATE tworkunit SET id_user = 'olga' WHERE id = 1;\n",
        ),
        (
            "a ticket whose creator does not exist yet is nobody's",
            "INSERT INTO tincidencia (id_incidencia, inicio, id_creator, id_grupo, estado) \
             VALUES (4, '2026-11-04 09:00:00', 'newbie', 3, 1);\n",
        ),
        (
            "the creator appears: the ticket is theirs",
            "INSERT INTO tusuario (id_usuario, nombre_real, nivel) VALUES ('newbie', 'New &amp; Bie', -1);\n",
        ),
        (
            "a grant on All, another on a group, one taken away",
            "INSERT INTO tusuario_perfil (id_usuario, id_perfil, id_grupo) VALUES ('newbie', 2, 1), ('ext', 1, 3);\n\
             DELETE FROM tusuario_perfil WHERE id_usuario = 'olga';\n",
        ),
        (
            "a profile loses IW and gains IM",
            "UPDATE tprofile SET iw = 0, im = 1 WHERE id = 1;\n",
        ),
        (
            "two new groups, the child inserted first, with a grant on the child",
            "INSERT INTO tgrupo (id_grupo, nombre, parent) VALUES (11, 'Child', 10);\n\
             INSERT INTO tgrupo (id_grupo, nombre, parent) VALUES (10, 'Parent', 2);\n\
             INSERT INTO tusuario_perfil (id_usuario, id_perfil, id_grupo) VALUES ('olga', 1, 11);\n\
             UPDATE tincidencia SET id_grupo = 11 WHERE id_incidencia = 1;\n",
        ),
        (
            "a new company managed by a new user, who belongs to it",
            "INSERT INTO tcompany (id, name, manager) VALUES (5, 'Partner', 'pat');\n\
             INSERT INTO tusuario (id_usuario, nombre_real, nivel, id_company) VALUES ('pat', 'Pat', 0, 5);\n",
        ),
        (
            "the customer is disabled, the agent blocked",
            "UPDATE tusuario SET disabled = 1 WHERE id_usuario = 'ext';\n\
             UPDATE tusuario SET login_blocked = 1 WHERE id_usuario = 'olga';\n",
        ),
        (
            "a user deleted while tickets, work units and a company still name them",
            "UPDATE tcompany SET manager = 'newbie' WHERE id = 1;\n",
        ),
        (
            "the delete itself",
            "DELETE FROM tusuario WHERE id_usuario = 'newbie';\n",
        ),
        (
            "the deleted login comes back",
            "INSERT INTO tusuario (id_usuario, nombre_real, nivel) VALUES ('newbie', 'Again', 0);\n",
        ),
        (
            "a ticket deleted with its work unit link",
            "DELETE FROM tworkunit_incident WHERE id_incident = 1;\n\
             DELETE FROM tincidencia WHERE id_incidencia = 1;\n",
        ),
        (
            "a work unit deleted",
            "INSERT INTO tworkunit (id, id_user) VALUES (2, 'ext');\n\
             INSERT INTO tworkunit_incident (id_incident, id_workunit) VALUES (2, 2);\n\
             DELETE FROM tworkunit WHERE id = 2;\n",
        ),
    ];
    for (step, sql) in steps {
        write(&f.writer, sql).await;
        f.matches_a_full_read(step).await;
    }
    assert_eq!(f.full_loads(), 0, "every step above applies row by row");

    // Deleting a group cascades (grants, tickets, subgroups): one full
    // read, and the answers still match.
    write(&f.writer, "DELETE FROM tgrupo WHERE id_grupo = 10;\n").await;
    f.matches_a_full_read("a group deleted").await;
    assert_eq!(f.full_loads(), 1);

    // A parent cycle cannot be served: the last valid revision stays, and
    // the hold-back names the group and the source table.
    let before = f.store.current().unwrap().revision();
    write(
        &f.writer,
        "UPDATE tgrupo SET parent = 3 WHERE id_grupo = 2;\n",
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let held = loop {
        if let Some(held) = f.store.held_back() {
            break held;
        }
        assert!(Instant::now() < deadline, "the cycle was not held back");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(
        held.cause.contains("field parent: parent cycle")
            && held.cause.contains("(source table tgrupo)"),
        "{}",
        held.cause
    );
    assert_eq!(f.store.current().unwrap().revision(), before);
    // Mended by a later commit: served again, as a full read.
    write(
        &f.writer,
        "UPDATE tgrupo SET parent = 0 WHERE id_grupo = 2;\n",
    )
    .await;
    f.matches_a_full_read("the cycle mended").await;
}

/// One random write of the kinds Integria makes, on small pools of ids
/// so that writers collide.
fn storm_statement(rng: &mut Rng) -> String {
    let user = format!("u{}", rng.u64(..12));
    let group = 2 + rng.u64(..8);
    let ticket = 1 + rng.u64(..40);
    let profile = 1 + rng.u64(..4);
    let company = 1 + rng.u64(..4);
    // Deleting a group or profile is a full reload: rare, so that the
    // storm mostly exercises the row-by-row path.
    let rare = rng.u64(..6) == 0;
    match rng.u64(..100) {
        0..=9 => format!(
            "INSERT INTO tusuario (id_usuario, nombre_real, nivel, disabled, id_company) VALUES ('{user}', 'U &amp; {user}', {}, {}, {}) \
             ON DUPLICATE KEY UPDATE nivel = VALUES(nivel), disabled = VALUES(disabled), id_company = VALUES(id_company)",
            [0, 0, -1, 1][rng.u64(..4) as usize],
            u64::from(rng.u64(..5) == 0),
            rng.u64(..5)
        ),
        10..=12 => format!("DELETE FROM tusuario WHERE id_usuario = '{user}'"),
        13..=18 => format!(
            "INSERT INTO tgrupo (id_grupo, nombre, parent) VALUES ({group}, 'G{group}', {}) \
             ON DUPLICATE KEY UPDATE parent = IF(VALUES(parent) < id_grupo, VALUES(parent), parent)",
            rng.u64(..group)
        ),
        19 if rare => format!("DELETE FROM tgrupo WHERE id_grupo = {group}"),
        20..=23 => format!(
            "INSERT INTO tprofile (id, name, ir, iw, im) VALUES ({profile}, 'P{profile}', {}, {}, {}) \
             ON DUPLICATE KEY UPDATE ir = VALUES(ir), iw = VALUES(iw), im = VALUES(im)",
            rng.u64(..2),
            rng.u64(..2),
            rng.u64(..2)
        ),
        24 if rare => format!("DELETE FROM tprofile WHERE id = {profile}"),
        25..=27 => format!(
            "INSERT INTO tcompany (id, name, manager) VALUES ({company}, 'C{company}', '{user}') \
             ON DUPLICATE KEY UPDATE manager = VALUES(manager)"
        ),
        28..=39 => format!(
            "INSERT INTO tusuario_perfil (id_usuario, id_perfil, id_grupo) VALUES ('{user}', {profile}, {})",
            [1, group][rng.u64(..2) as usize]
        ),
        40..=45 => format!(
            "DELETE FROM tusuario_perfil WHERE id_usuario = '{user}' AND id_perfil = {profile}"
        ),
        46..=63 => format!(
            "INSERT INTO tincidencia (id_incidencia, inicio, id_usuario, id_creator, editor, id_grupo, estado) \
             VALUES ({ticket}, '2026-11-01 10:00:00', '{}', '{}', '{user}', {}, {}) \
             ON DUPLICATE KEY UPDATE id_usuario = VALUES(id_usuario), id_grupo = VALUES(id_grupo), estado = VALUES(estado)",
            ["", "u1", "u2", "u3"][rng.u64(..4) as usize],
            ["", "u4", "u5", "ghost"][rng.u64(..4) as usize],
            [0, 1, group][rng.u64(..3) as usize],
            1 + rng.u64(..7)
        ),
        64..=67 => format!("DELETE FROM tincidencia WHERE id_incidencia = {ticket}"),
        68..=79 => {
            let unit = 1 + rng.u64(..30);
            format!(
                "INSERT INTO tworkunit (id, id_user) VALUES ({unit}, '{user}') ON DUPLICATE KEY UPDATE id_user = VALUES(id_user)"
            )
        }
        80..=89 => format!(
            "INSERT INTO tworkunit_incident (id_incident, id_workunit) VALUES ({ticket}, {})",
            1 + rng.u64(..30)
        ),
        90..=93 => format!(
            "DELETE FROM tworkunit_incident WHERE id_workunit = {}",
            1 + rng.u64(..30)
        ),
        94..=95 => format!("DELETE FROM tworkunit WHERE id = {}", 1 + rng.u64(..30)),
        _ => format!(
            "UPDATE tincidencia SET estado = {} WHERE id_grupo = {group}",
            1 + rng.u64(..7)
        ),
    }
}

/// MariaDB's deadlock and lock-wait errors: the transaction is retried, as
/// a writer that follows the documentation does.
fn retryable(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "40001" || c == "HY000")
}

/// One writer: `n` transactions of 1–4 random writes, a fifth rolled back,
/// each held open a little so that commits interleave.
async fn storm_writer(pool: MySqlPool, seed: u64, n: usize) -> usize {
    let mut rng = Rng::with_seed(seed);
    let mut committed = 0;
    for _ in 0..n {
        let statements: Vec<String> = (0..1 + rng.u64(..4))
            .map(|_| storm_statement(&mut rng))
            .collect();
        let rollback = rng.u64(..5) == 0;
        let pause = Duration::from_millis(rng.u64(..4));
        loop {
            let attempt = async {
                let mut tx = pool.begin().await?;
                for s in &statements {
                    tx.execute(sqlx::AssertSqlSafe(s.as_str())).await?;
                    tokio::time::sleep(pause).await;
                }
                if rollback {
                    tx.rollback().await?;
                } else {
                    tx.commit().await?;
                }
                Ok::<_, sqlx::Error>(())
            }
            .await;
            match attempt {
                Ok(()) => break,
                Err(e) if retryable(&e) => continue,
                Err(e) => panic!("writer {seed}: {e}"),
            }
        }
        committed += usize::from(!rollback);
    }
    committed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_of_concurrent_integria_writes_ends_as_a_full_read() {
    let Some(f) = followed("follow_storm").await else {
        return;
    };
    let writers: Vec<_> = (0..6u64)
        .map(|i| tokio::spawn(storm_writer(f.writer.clone(), 0x9e37_79b9 + i * 7919, 120)))
        .collect();
    let mut committed = 0;
    for w in writers {
        committed += w.await.unwrap();
    }
    assert!(committed > 400, "only {committed} transactions committed");
    f.matches_a_full_read("after the storm").await;
    // Deletes of groups and profiles reload in full; the rest applied row
    // by row, so far fewer reloads than batches.
    let loads = f.full_loads();
    eprintln!("storm: {committed} transactions committed, {loads} full reloads");
    assert!(loads < committed as u64 / 4, "{loads} full reloads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connection_and_a_crashed_server_lose_no_change() {
    let Some(mut server) = common::PrivateMariaDb::start("follow_faults") else {
        return;
    };
    let url = server.database("helpdesk").await;
    let f = followed_at(&url).await;
    f.matches_a_full_read("the first load").await;

    // Every connection but the killer's is killed: the follower's and the
    // writer's alike, between two writes.
    write(
        &f.writer,
        "INSERT INTO tincidencia (id_incidencia, id_creator, id_grupo) VALUES (10, 'ext', 2);\n",
    )
    .await;
    let admin = sqlx::MySqlPool::connect(&url).await.unwrap();
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND DB = 'helpdesk'",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(ids.len() >= 2, "connections to kill: {ids:?}");
    for id in ids {
        // A number read from the server: safe to splice.
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("KILL {id}")))
            .execute(&admin)
            .await;
    }
    admin.close().await;
    write(
        &f.writer,
        "INSERT INTO tworkunit (id, id_user) VALUES (10, 'olga');\n\
         INSERT INTO tworkunit_incident (id_incident, id_workunit) VALUES (10, 10);\n",
    )
    .await;
    f.matches_a_full_read("after the connections were killed")
        .await;

    // The server crashes right after a commit and comes back: what was
    // committed is there, and the follower picks up where it was.
    write(
        &f.writer,
        "UPDATE tincidencia SET id_usuario = 'olga', estado = 3 WHERE id_incidencia = 10;\n",
    )
    .await;
    server.crash();
    // Polls fail meanwhile, each logged and retried.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.run();
    write(
        &f.writer,
        "INSERT INTO tusuario_perfil (id_usuario, id_perfil, id_grupo) VALUES ('ext', 2, 3);\n",
    )
    .await;
    f.matches_a_full_read("after the server restarted").await;
    assert_eq!(f.full_loads(), 0, "the faults cost no full reload");
}

/// Foreign keys as some Integria releases declare them: a work unit's
/// links go with it, a renamed login renames its work units, and a
/// ticket's sub-tickets go with it.
const CASCADES: &str = "
ALTER TABLE tworkunit_incident ADD CONSTRAINT fk_link_unit FOREIGN KEY (id_workunit) REFERENCES tworkunit (id) ON UPDATE CASCADE ON DELETE CASCADE;
ALTER TABLE tworkunit ADD CONSTRAINT fk_unit_user FOREIGN KEY (id_user) REFERENCES tusuario (id_usuario) ON UPDATE CASCADE;
ALTER TABLE tincidencia MODIFY id_parent BIGINT UNSIGNED NULL, ADD CONSTRAINT fk_ticket_parent FOREIGN KEY (id_parent) REFERENCES tincidencia (id_incidencia) ON DELETE CASCADE;
";

#[tokio::test]
async fn rows_changed_by_foreign_key_cascades_are_followed() {
    let Some(url) = common::mysql_database("follow_cascades").await else {
        return;
    };
    let f = followed_with(&url, CASCADES).await;
    f.matches_a_full_read("the first load").await;
    let steps: &[(&str, &str)] = &[
        (
            "a work unit on two tickets",
            "INSERT INTO tworkunit (id, id_user) VALUES (1, 'olga'), (2, 'ext');\n\
             INSERT INTO tworkunit_incident (id_incident, id_workunit) VALUES (1, 1), (2, 1), (2, 2);\n",
        ),
        (
            "the work unit deleted: its links go by cascade",
            "DELETE FROM tworkunit WHERE id = 1;\n",
        ),
        (
            "a login renamed: its work units follow by cascade",
            "UPDATE tusuario SET id_usuario = 'ext2' WHERE id_usuario = 'ext';\n",
        ),
        (
            "a ticket with sub-tickets two levels down",
            "INSERT INTO tincidencia (id_incidencia, id_creator, id_grupo, id_parent) VALUES (20, 'olga', 2, NULL);\n\
             INSERT INTO tincidencia (id_incidencia, id_creator, id_grupo, id_parent) VALUES (21, 'olga', 2, 20);\n\
             INSERT INTO tincidencia (id_incidencia, id_creator, id_grupo, id_parent) VALUES (22, 'olga', 3, 21);\n\
             INSERT INTO tworkunit (id, id_user) VALUES (3, 'admin');\n\
             INSERT INTO tworkunit_incident (id_incident, id_workunit) VALUES (22, 3);\n",
        ),
        (
            "the top ticket deleted: the tree goes by cascade",
            "DELETE FROM tincidencia WHERE id_incidencia = 20;\n",
        ),
    ];
    for (step, sql) in steps {
        write(&f.writer, sql).await;
        f.matches_a_full_read(step).await;
    }
    assert_eq!(f.full_loads(), 0, "every cascade applies row by row");
}

#[tokio::test]
async fn a_cascade_of_a_cascade_is_refused_naming_both_keys() {
    let Some(url) = common::mysql_database("cascade_chain").await else {
        return;
    };
    common::create_integria_tables(&url).await;
    // Deleting a company deletes its users, whose deletion would delete
    // their grants: no trigger of tusuario sees the second step.
    write(
        &common::integria_writer(&url).await,
        "ALTER TABLE tusuario MODIFY id_company MEDIUMINT UNSIGNED NULL;\n\
         ALTER TABLE tusuario ADD CONSTRAINT fk_user_company FOREIGN KEY (id_company) REFERENCES tcompany (id) ON DELETE CASCADE;\n\
         ALTER TABLE tusuario_perfil ADD CONSTRAINT fk_grant_user FOREIGN KEY (id_usuario) REFERENCES tusuario (id_usuario) ON DELETE CASCADE;\n",
    )
    .await;
    let mapping = Mapping::load("integria").unwrap();
    let db = MappedDb::connect(&url, &mapping).await.unwrap();
    let err = db.install(&mapping).await.unwrap_err().to_string();
    assert!(
        err.contains("foreign key `fk_grant_user` of `tusuario_perfil`")
            && err.contains("foreign key `fk_user_company` of `tusuario`"),
        "{err}"
    );
    // Nothing was created.
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'ticket\\_authz\\_%'",
    )
    .fetch_one(db.mysql_pool().unwrap())
    .await
    .unwrap();
    assert_eq!(tables, 0);
}
