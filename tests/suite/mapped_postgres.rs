//! A helpdesk's own tables on PostgreSQL followed through a mapping: the
//! schema and mapping of examples/mapping/desk-postgres.*, written to as
//! the helpdesk would, with concurrent writers committing out of order and
//! rolling back, a killed connection and a crashed server. After each, the
//! served answers must equal those of a full read of the mapping at the
//! same revision. Also the capture's own objects: commit order,
//! `min_revision` through `serve`, prune, uninstall and refused mappings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use fastrand::Rng;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Executor, PgPool};
use ticket_authz::core::{Action, ticket_viewers_after};
use ticket_authz::follow::{self, ChangeSource};
use ticket_authz::mapped::{MappedDb, MappedSource, POSTGRES_REVISION_SQL};
use ticket_authz::mapping::Mapping;
use ticket_authz::store::Store;
use tokio::sync::watch;

const SCHEMA: &str = include_str!("../../examples/mapping/desk-postgres.sql");

fn mapping_file() -> String {
    format!(
        "{}/examples/mapping/desk-postgres.yaml",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The helpdesk before any test writes: an organisation, two teams, two
/// roles, an admin, an agent with a role on the first team, a customer
/// and two issues.
const BASE: &str = "
INSERT INTO orgs (id, title) VALUES (1, 'Customer Ltd');
INSERT INTO teams (id, title, parent_id) VALUES (1, 'Support', NULL), (2, 'L2', 1);
INSERT INTO roles (id, label, can_read, can_write) VALUES (1, 'Operator', true, true), (2, 'Reader', true, false);
INSERT INTO people (id, handle, display_name, mail, role, joined_at, org_id) VALUES
  (1, 'admin', 'Admin', 'admin@example.com', 'admin', '2024-01-02 03:04:05+00', NULL),
  (2, 'olga', 'Olga', 'olga@example.com', 'staff', '2024-02-01 00:00:00+02', NULL),
  (3, 'ext', 'External', 'ext@customer.example', 'customer', '2024-03-01 12:00:00+00', 1);
INSERT INTO memberships (person_id, team_id, role_id) VALUES (2, 1, 1);
INSERT INTO issues (id, opened_at, reporter_id, org_id, team_id, owner_id, state) VALUES
  (1, '2026-11-01 10:00:00+00', 3, 1, 1, NULL, 'open'),
  (2, '2026-11-02 10:00:00+00', 3, 1, 2, 2, 'pending');
";

/// Sequences past the ids `BASE` and the steps set by hand.
const SEQUENCES: &str = "
SELECT setval('orgs_id_seq', 100), setval('teams_id_seq', 100), setval('roles_id_seq', 100),
       setval('people_id_seq', 100), setval('issues_id_seq', 100), setval('threads_id_seq', 100),
       setval('posts_id_seq', 100);
";

struct Followed {
    db: MappedDb,
    writer: PgPool,
    mapping: Arc<Mapping>,
    store: Arc<Store>,
    stop: watch::Sender<bool>,
}

/// The helpdesk's tables with `BASE` on `url`, the capture installed,
/// loaded and followed, reading the log every `interval` besides each
/// notification.
async fn followed_at(url: &str, interval: Duration) -> Followed {
    let writer = PgPool::connect(url).await.unwrap();
    writer.execute(SCHEMA).await.unwrap();
    let mapping = Arc::new(Mapping::load(&mapping_file()).unwrap());
    let db = MappedDb::connect(url, &mapping).await.unwrap();
    let installed = db.install(&mapping).await.unwrap();
    assert_eq!((installed.tables, installed.triggers), (9, 18));
    db.verify_capture(&mapping).await.unwrap();
    write(&writer, BASE).await;
    write(&writer, SEQUENCES).await;
    let mut source = MappedSource::new(db.clone(), mapping.clone(), interval);
    let store = Arc::new(Store::default());
    store.publish(source.load().await.unwrap());
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(follow::follow(source, store.clone(), stopped));
    Followed {
        db,
        writer,
        mapping,
        store,
        stop,
    }
}

/// Runs `sql` (statements ending in `;` and a newline) in one transaction.
async fn write(pool: &PgPool, sql: &str) {
    let mut tx = pool.begin().await.unwrap();
    for statement in sql.split(";\n").filter(|s| !s.trim().is_empty()) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

impl Followed {
    async fn matches_a_full_read(&self, step: &str) {
        common::mapped::matches_a_full_read(&self.db, &self.mapping, &self.store, step).await;
    }
}

#[tokio::test]
async fn each_kind_of_write_is_followed_row_by_row_woken_by_notify() {
    let Some(url) = common::pg_database("pg_map_steps").await else {
        return;
    };
    // A minute between safety-net reads: only the commit trigger's NOTIFY
    // can make each step visible within the 30 s each waits.
    let f = followed_at(&url, Duration::from_secs(60)).await;
    f.matches_a_full_read("the first load").await;
    let loaded = f.store.full_loads();
    let first = f.store.current().unwrap();
    let viewers = ticket_viewers_after(&first, "1", None, 100).0;
    assert!(viewers.contains(&"3".to_owned()), "{viewers:?}");
    let steps: &[(&str, &str)] = &[
        (
            "an issue raised by the customer, owned by the agent",
            "INSERT INTO issues (id, reporter_id, org_id, team_id, owner_id, state) VALUES (3, 3, 1, 1, 2, 'new');\n",
        ),
        (
            "its state, owner and team changed",
            "UPDATE issues SET state = 'solved', owner_id = NULL, team_id = 2 WHERE id = 3;\n",
        ),
        (
            "a watcher added",
            "INSERT INTO watchers (issue_id, person_id) VALUES (1, 1);\n",
        ),
        (
            "a post makes a participant (the rule query binds a bigint)",
            "INSERT INTO threads (id, issue_id) VALUES (1, 2);\n\
             INSERT INTO posts (thread_id, author_id, body) VALUES (1, 1, 'looked');\n",
        ),
        (
            "the post moves to another author",
            "UPDATE posts SET author_id = 2 WHERE thread_id = 1;\n",
        ),
        (
            "a new person with a role on every team, another role taken away",
            "INSERT INTO people (id, handle, display_name, role) VALUES (4, 'newbie', 'New & Bie', 'staff');\n\
             INSERT INTO memberships (person_id, team_id, role_id) VALUES (4, NULL, 2);\n\
             DELETE FROM memberships WHERE person_id = 2;\n",
        ),
        (
            "a role loses write and gains manage",
            "UPDATE roles SET can_write = false, can_manage = true WHERE id = 1;\n",
        ),
        (
            "two new teams, the child first, with a membership on the child",
            "INSERT INTO teams (id, title, parent_id) VALUES (11, 'Child', NULL);\n\
             INSERT INTO teams (id, title, parent_id) VALUES (10, 'Parent', 1);\n\
             UPDATE teams SET parent_id = 10 WHERE id = 11;\n\
             INSERT INTO memberships (person_id, team_id, role_id) VALUES (2, 11, 1);\n\
             UPDATE issues SET team_id = 11 WHERE id = 1;\n",
        ),
        (
            "the customer is blocked, the agent made admin",
            "UPDATE people SET blocked = true WHERE id = 3;\n\
             UPDATE people SET role = 'admin' WHERE id = 2;\n",
        ),
        (
            "a person deleted: the database's own cascades and SET NULLs follow",
            "DELETE FROM people WHERE id = 4;\n",
        ),
        (
            "an issue deleted with its thread, posts and watchers",
            "DELETE FROM issues WHERE id = 2;\n",
        ),
        (
            "a new organisation takes an issue",
            "INSERT INTO orgs (id, title, sees_all) VALUES (2, 'Partner', true);\n\
             UPDATE issues SET org_id = 2 WHERE id = 3;\n",
        ),
    ];
    for (step, sql) in steps {
        write(&f.writer, sql).await;
        f.matches_a_full_read(step).await;
    }
    assert_eq!(
        f.store.full_loads(),
        loaded,
        "every step above applies row by row"
    );

    // A TRUNCATE has no row images: one full read.
    write(&f.writer, "TRUNCATE watchers;\n").await;
    f.matches_a_full_read("watchers truncated").await;
    assert_eq!(f.store.full_loads(), loaded + 1);
    // Deleting a team sets the issues' and subteams' references to NULL
    // and takes its memberships: a full read, and the answers still match.
    write(&f.writer, "DELETE FROM teams WHERE id = 10;\n").await;
    f.matches_a_full_read("a team deleted").await;
    assert_eq!(f.store.full_loads(), loaded + 2);
    f.stop.send(true).unwrap();
}

/// One random statement of the helpdesk's (ids from small ranges, so
/// that writers collide, and references may name rows gone or not yet
/// there: the database refuses those, and the transaction rolls back).
fn random_write(rng: &mut Rng) -> String {
    let person = 1 + rng.u64(..12);
    let other = 1 + rng.u64(..12);
    let issue = 1 + rng.u64(..16);
    let team = 1 + rng.u64(..5);
    let role = 1 + rng.u64(..3);
    let roles = ["customer", "staff", "admin"];
    let states = ["new", "open", "pending", "on_hold", "solved", "closed"];
    match rng.u64(..14) {
        0 => format!(
            "INSERT INTO people (id, handle, role, org_id) VALUES ({person}, 'p{person}', '{}', {}) ON CONFLICT DO NOTHING",
            roles[rng.u64(..3) as usize],
            if rng.u64(..2) == 0 { "1" } else { "NULL" }
        ),
        1 => format!(
            "UPDATE people SET role = '{}', blocked = {} WHERE id = {person}",
            roles[rng.u64(..3) as usize],
            rng.u64(..4) == 0
        ),
        2 => format!("DELETE FROM people WHERE id = {person}"),
        3 => format!(
            "INSERT INTO memberships (person_id, team_id, role_id) VALUES ({person}, {}, {role}) ON CONFLICT DO NOTHING",
            if rng.u64(..4) == 0 {
                "NULL".to_owned()
            } else {
                team.to_string()
            }
        ),
        4 => format!("DELETE FROM memberships WHERE person_id = {person} AND role_id = {role}"),
        5 => format!(
            "INSERT INTO issues (id, reporter_id, org_id, team_id, owner_id, state) \
             VALUES ({issue}, {person}, 1, {team}, {}, '{}') ON CONFLICT DO NOTHING",
            if rng.u64(..2) == 0 {
                other.to_string()
            } else {
                "NULL".to_owned()
            },
            states[rng.u64(..6) as usize]
        ),
        6 => format!(
            "UPDATE issues SET state = '{}', owner_id = {}, team_id = {team} WHERE id = {issue}",
            states[rng.u64(..6) as usize],
            if rng.u64(..2) == 0 {
                other.to_string()
            } else {
                "NULL".to_owned()
            }
        ),
        7 => format!("DELETE FROM issues WHERE id = {issue}"),
        8 => format!(
            "INSERT INTO watchers (issue_id, person_id) VALUES ({issue}, {person}) ON CONFLICT DO NOTHING"
        ),
        9 => format!("DELETE FROM watchers WHERE issue_id = {issue}"),
        10 => format!(
            "INSERT INTO posts (thread_id, author_id) SELECT id, {person} FROM threads WHERE issue_id = {issue}"
        ),
        11 => format!("INSERT INTO threads (issue_id) VALUES ({issue})"),
        12 => format!(
            "UPDATE roles SET can_write = {}, can_manage = {} WHERE id = {role}",
            rng.u64(..2) == 0,
            rng.u64(..3) == 0
        ),
        _ => format!("DELETE FROM posts WHERE author_id = {person}"),
    }
}

/// Writers that each run transactions of a few random statements, sleep
/// before committing (so commits interleave out of the order the
/// transactions started) and roll back one in five.
async fn storm(url: &str, writers: u64, transactions: u64) -> (u64, u64) {
    let mut tasks = Vec::new();
    for w in 0..writers {
        let pool = PgPool::connect(url).await.unwrap();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::with_seed(0x9e37_79b9_7f4a_7c15 ^ ((w + 1) * 0x1234_5678_9abc));
            let (mut committed, mut rolled_back) = (0, 0);
            for _ in 0..transactions {
                // A connection killed under the writer fails its
                // transaction, as a real one's would.
                let Ok(mut tx) = pool.begin().await else {
                    rolled_back += 1;
                    continue;
                };
                let mut failed = false;
                for _ in 0..1 + rng.u64(..4) {
                    let sql = sqlx::AssertSqlSafe(random_write(&mut rng));
                    if sqlx::raw_sql(sql).execute(&mut *tx).await.is_err() {
                        failed = true;
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(rng.u64(..15))).await;
                if failed || rng.u64(..5) == 0 {
                    let _ = tx.rollback().await;
                    rolled_back += 1;
                } else if tx.commit().await.is_ok() {
                    committed += 1;
                } else {
                    rolled_back += 1;
                }
            }
            pool.close().await;
            (committed, rolled_back)
        }));
    }
    let mut total = (0, 0);
    for t in tasks {
        let (c, r) = t.await.unwrap();
        total.0 += c;
        total.1 += r;
    }
    total
}

#[tokio::test]
async fn a_storm_of_concurrent_writers_and_rollbacks_ends_equal_to_a_full_read() {
    let Some(url) = common::pg_database("pg_map_storm").await else {
        return;
    };
    let f = followed_at(&url, Duration::from_millis(50)).await;
    let loaded = f.store.full_loads();
    let (committed, rolled_back) = storm(&url, 6, 60).await;
    assert!(
        committed > 100 && rolled_back > 20,
        "{committed} {rolled_back}"
    );
    f.matches_a_full_read("after the storm").await;
    assert_eq!(
        f.store.full_loads(),
        loaded,
        "the storm's row changes apply row by row"
    );

    // Every committed writing transaction has one revision, in commit
    // order: the log's revisions are those the follower served through.
    let numbered: Vec<i64> = sqlx::query_scalar(
        "SELECT revision FROM ticket_authz_transactions WHERE revision IS NOT NULL ORDER BY revision",
    )
    .fetch_all(&f.writer)
    .await
    .unwrap();
    assert!(numbered.windows(2).all(|w| w[0] < w[1]));
    f.stop.send(true).unwrap();
}

#[tokio::test]
async fn a_transaction_that_started_first_but_committed_last_numbers_last() {
    let Some(url) = common::pg_database("pg_map_order").await else {
        return;
    };
    let f = followed_at(&url, Duration::from_millis(50)).await;
    let first = PgPool::connect(&url).await.unwrap();
    let second = PgPool::connect(&url).await.unwrap();
    let mut t1 = first.begin().await.unwrap();
    t1.execute("INSERT INTO people (id, handle) VALUES (21, 'early')")
        .await
        .unwrap();
    let mut t2 = second.begin().await.unwrap();
    t2.execute("INSERT INTO people (id, handle) VALUES (22, 'late')")
        .await
        .unwrap();
    t2.commit().await.unwrap();
    let at_second: i64 = sqlx::query_scalar(POSTGRES_REVISION_SQL)
        .fetch_one(&second)
        .await
        .unwrap();
    // What is served at the second's revision holds the second only.
    let deadline = Instant::now() + Duration::from_secs(30);
    while f.store.current().unwrap().revision() < at_second as u64 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let served = f.store.current().unwrap();
    assert!(served.knows_user("22") && !served.knows_user("21"));
    t1.commit().await.unwrap();
    let at_first: i64 = sqlx::query_scalar(POSTGRES_REVISION_SQL)
        .fetch_one(&first)
        .await
        .unwrap();
    assert!(at_first > at_second, "{at_first} after {at_second}");
    f.matches_a_full_read("both committed").await;
    assert!(f.store.current().unwrap().knows_user("21"));

    // A rollback draws no revision.
    let mut t3 = first.begin().await.unwrap();
    t3.execute("INSERT INTO people (id, handle) VALUES (23, 'never')")
        .await
        .unwrap();
    t3.rollback().await.unwrap();
    let after: i64 = sqlx::query_scalar(POSTGRES_REVISION_SQL)
        .fetch_one(&first)
        .await
        .unwrap();
    assert_eq!(after, at_first);
    f.stop.send(true).unwrap();
}

#[tokio::test]
async fn killed_connections_and_a_crashed_server_lose_no_change() {
    // Killed connections, on the shared server: every backend of the
    // follower's database is terminated mid-storm.
    if let Some(url) = common::pg_database("pg_map_killed").await {
        let f = followed_at(&url, Duration::from_millis(50)).await;
        let loaded = f.store.full_loads();
        let storming = tokio::spawn({
            let url = url.clone();
            async move { storm(&url, 3, 40).await }
        });
        let admin = std::env::var("DATABASE_URL").unwrap();
        let admin = PgPool::connect(&admin).await.unwrap();
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            // The storm's writers are terminated too; their transactions
            // fail and count as rolled back.
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
            )
            .bind(format!("ta_pg_map_killed_{}", std::process::id()))
            .execute(&admin)
            .await
            .unwrap();
        }
        let _ = storming.await;
        let writer = PgPool::connect(&url).await.unwrap();
        write(
            &writer,
            "INSERT INTO people (id, handle) VALUES (50, 'after');\n",
        )
        .await;
        f.matches_a_full_read("after the killed connections").await;
        assert_eq!(f.store.full_loads(), loaded, "killed connections retry");
        f.stop.send(true).unwrap();
    }

    // A crashed server (its own, on a free port), restarted: the follower
    // reconnects and catches up from the log, with no full reload.
    let Some(mut server) = common::PrivatePostgres::start("map_crash") else {
        return;
    };
    let url = server.database("desk").await;
    let f = followed_at(&url, Duration::from_millis(50)).await;
    let loaded = f.store.full_loads();
    write(
        &f.writer,
        "INSERT INTO issues (id, reporter_id, team_id) VALUES (30, 3, 1);\n",
    )
    .await;
    f.matches_a_full_read("before the crash").await;
    server.crash();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.run();
    let writer = PgPool::connect(&url).await.unwrap();
    write(
        &writer,
        "UPDATE issues SET owner_id = 2 WHERE id = 30;\n\
         INSERT INTO watchers (issue_id, person_id) VALUES (30, 1);\n",
    )
    .await;
    let (committed, _) = storm(&url, 2, 20).await;
    assert!(committed > 0);
    let f = Followed { writer, ..f };
    f.matches_a_full_read("after the restart").await;
    assert_eq!(f.store.full_loads(), loaded, "a restart costs no reload");
    f.stop.send(true).unwrap();
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

#[tokio::test]
async fn serve_follows_a_postgres_helpdesk_and_min_revision_waits_for_a_write() {
    use ticket_authz::core::Reason;
    use ticket_authz::grpc::convert::{action_code, reason_code};
    use ticket_authz::grpc::pb::{self, ticket_authz_client::TicketAuthzClient};
    let Some(url) = common::pg_database("pg_map_serve").await else {
        return;
    };
    let writer = PgPool::connect(&url).await.unwrap();
    writer.execute(SCHEMA).await.unwrap();
    let file = mapping_file();
    // Before `migrate --mapping`: refused, naming the fix.
    let out = common::bin()
        .args(["serve", "--mapping", &file, "--database-url", &url])
        .env(
            "TICKET_AUTHZ_LISTEN",
            format!("127.0.0.1:{}", common::free_port()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the change capture is not installed")
            && err.contains("ticket-authz migrate --mapping"),
        "{err}"
    );
    // A MariaDB URL for a PostgreSQL mapping names the flag.
    let out = common::bin()
        .args([
            "serve",
            "--mapping",
            &file,
            "--database-url",
            "mysql://root@127.0.0.1/x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--database-url") && err.contains("is for postgres"),
        "{err}"
    );
    let line = run_ok(&["migrate", "--mapping", &file, "--database-url", &url]);
    assert!(line.contains("9 tables followed, 18 triggers"), "{line}");
    write(&writer, BASE).await;
    let served = common::serve(
        &["--poll-interval", "30s", "--revision-wait", "5s"],
        &[
            ("TICKET_AUTHZ_MAPPING", file.clone()),
            ("TICKET_AUTHZ_DATABASE_URL", url.clone()),
        ],
    );
    let mut client = TicketAuthzClient::connect(served.grpc.clone())
        .await
        .unwrap();
    let ask = |min_revision: u64| pb::CheckAccessRequest {
        user_id: "3".to_owned(),
        action: action_code(Action::View),
        ticket_id: "7".to_owned(),
        min_revision,
        ..Default::default()
    };
    let before = client.check_access(ask(0)).await.unwrap().into_inner();
    assert_eq!(before.reason, reason_code(Reason::UnknownResource));
    // The customer raises issue 7, then the helpdesk reads the revision
    // with the documented statement and asks at it.
    writer
        .execute("INSERT INTO issues (id, reporter_id, team_id) VALUES (7, 3, 1)")
        .await
        .unwrap();
    let revision: i64 = sqlx::query_scalar(POSTGRES_REVISION_SQL)
        .fetch_one(&writer)
        .await
        .unwrap();
    let after = client
        .check_access(ask(revision as u64))
        .await
        .unwrap()
        .into_inner();
    assert!(after.allowed, "{after:?}");
    assert_eq!(after.reason, reason_code(Reason::Requester));
    drop(served);
    writer.close().await;
}

#[tokio::test]
async fn prune_and_uninstall_work_on_a_postgres_capture_and_touch_nothing_else() {
    let Some(url) = common::pg_database("pg_map_prune").await else {
        return;
    };
    let writer = PgPool::connect(&url).await.unwrap();
    writer.execute(SCHEMA).await.unwrap();
    let file = mapping_file();
    run_ok(&["migrate", "--mapping", &file, "--database-url", &url]);
    write(&writer, BASE).await;
    write(&writer, "UPDATE people SET blocked = true WHERE id = 3;\n").await;
    let latest: i64 = sqlx::query_scalar(POSTGRES_REVISION_SQL)
        .fetch_one(&writer)
        .await
        .unwrap();
    let line = run_ok(&["prune", "--database-url", &url, "--older-than", "0s"]);
    assert!(line.contains("pruned 2 change-log entries"), "{line}");
    assert!(line.contains(&format!("up to {}", latest - 1)), "{line}");
    // Nothing of our own schema was created beside the helpdesk's.
    let ours: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'tickets'")
            .fetch_one(&writer)
            .await
            .unwrap();
    assert_eq!(ours, 0);
    // The latest revision stays: revisions never go backwards.
    let kept: i64 = sqlx::query_scalar(POSTGRES_REVISION_SQL)
        .fetch_one(&writer)
        .await
        .unwrap();
    assert_eq!(kept, latest);

    let line = run_ok(&[
        "migrate",
        "--mapping",
        &file,
        "--uninstall",
        "--database-url",
        &url,
    ]);
    assert!(line.contains("18 triggers, 4 tables"), "{line}");
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM pg_class WHERE relname LIKE 'ticket\\_authz\\_%') \
              + (SELECT count(*) FROM pg_proc WHERE proname LIKE 'ticket\\_authz\\_%') \
              + (SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'ticket\\_authz\\_%')",
    )
    .fetch_one(&writer)
    .await
    .unwrap();
    assert_eq!(left, 0, "every object of the capture is gone");
    // The helpdesk's tables and rows are as they were, and writable.
    write(
        &writer,
        "DELETE FROM watchers;\nUPDATE people SET blocked = false;\n",
    )
    .await;
    let people: i64 = sqlx::query_scalar("SELECT count(*) FROM people")
        .fetch_one(&writer)
        .await
        .unwrap();
    assert_eq!(people, 3);
}

#[tokio::test]
async fn a_postgres_mapping_is_refused_against_the_live_tables_naming_the_member() {
    let Some(url) = common::pg_database("pg_map_bad").await else {
        return;
    };
    let writer = PgPool::connect(&url).await.unwrap();
    writer.execute(SCHEMA).await.unwrap();
    writer
        .execute("CREATE VIEW active_people AS SELECT * FROM people WHERE NOT blocked")
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("ta-pg-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mapping.yaml");
    let users = |query: &str, table: &str, rule: &str| {
        format!(
            "database: postgres\nentities:\n  users:\n    query: {query}\ntables:\n  {table}:\n    users: {rule}\n"
        )
    };
    let f = file.display();
    let cases = [
        (
            users(
                "SELECT id, joined_at AS created_at FROM persons",
                "persons",
                "{column: id}",
            ),
            format!("{f}:6: tables.persons: no table `persons` on the search path"),
        ),
        (
            users(
                "SELECT id, joined_at AS created_at FROM active_people",
                "active_people",
                "{column: id}",
            ),
            format!(
                "{f}:6: tables.active_people: `active_people` is a view: triggers need a base table"
            ),
        ),
        (
            users(
                "SELECT id, joined_at AS created_at FROM people",
                "people",
                "{column: person}",
            ),
            format!("{f}:7: tables.people.users.column: no column `person` in table `people`"),
        ),
        (
            users(
                "SELECT id, joined AS created_at FROM people",
                "people",
                "{column: id}",
            ),
            format!(
                "{f}:4: entities.users.query: the query fails: column \"joined\" does not exist"
            ),
        ),
        (
            users("SELECT id FROM people", "people", "{column: id}"),
            format!(
                "{f}:4: entities.users.query: the query gives no column `created_at`, which users requires"
            ),
        ),
        (
            users(
                "SELECT id, joined_at AS created_at FROM people",
                "people",
                "{query: 'SELECT id, handle FROM people WHERE id = :id'}",
            ),
            format!(
                "{f}:7: tables.people.users.query: the query gives 2 columns; it must give one"
            ),
        ),
        (
            users(
                "SELECT id, joined_at AS created_at FROM people",
                "people",
                "{query: 'SELECT id FROM people WHERE handle = :id + 1'}",
            ),
            format!("{f}:7: tables.people.users.query: the query fails: operator does not exist"),
        ),
    ];
    for (yaml, wanted) in cases {
        let err = common::migrate_refused(&url, &file, &yaml);
        assert!(err.contains(&wanted), "wanted {wanted}\n got {err}");
    }
    // Nothing was installed by any of them.
    let ours: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_class WHERE relname LIKE 'ticket\\_authz\\_%'")
            .fetch_one(&writer)
            .await
            .unwrap();
    assert_eq!(ours, 0);

    // A database that holds our own schema is not a helpdesk's.
    let Some(own) = common::pg_database("pg_map_own").await else {
        return;
    };
    run_ok(&["migrate", "--database-url", &own]);
    let ours = own.clone();
    let err = common::migrate_refused(
        &ours,
        &file,
        "database: postgres\nentities:\n  users:\n    query: SELECT id, created_at FROM users\ntables:\n  users:\n    users: {column: id}\n",
    );
    assert!(err.contains("holds ticket-authz's own schema"), "{err}");
}
