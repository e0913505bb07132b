//! Live refresh from the database, on SQLite and a real PostgreSQL: changes
//! become visible at their revision, commit order and rollbacks are
//! handled without reloads, a killed listener recovers, a storm of changes
//! ends equal to a fresh load, and invalid data is held back. A source of
//! our own making shows what the loop promises every source.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use ticket_authz::core::{self, Action, ActionInput, CheckRequest, Context, Reason, TicketFilter};
use ticket_authz::dataset;
use ticket_authz::db::{Database, DbSource, Notify};
use ticket_authz::follow::{self, Batch, ChangeSource, SourceError};
use ticket_authz::snapshot::{Change, Snapshot, TicketFields};
use ticket_authz::store::{Store, StoreError};
use tokio::sync::watch;

struct Following {
    db: Database,
    store: Arc<Store>,
    stop: watch::Sender<bool>,
}

impl Drop for Following {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// The demo file, without a database.
fn demo() -> dataset::Loaded {
    dataset::load_file(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.yaml"))
        .unwrap()
}

/// The demo file in a store at revision 1, for sources that are not a
/// database.
fn demo_store_at_one() -> Arc<Store> {
    let mut snap = Snapshot::build(&demo().dataset).unwrap();
    snap.set_revision(1);
    let store = Arc::new(Store::default());
    store.publish(snap);
    store
}

/// The demo imported into `url`, loaded into a store at its revision.
async fn demo_store(url: &str) -> (Database, Arc<Store>) {
    data_store(url, &demo().dataset).await
}

/// `data` imported into `url`, loaded into a store at its revision.
async fn data_store(url: &str, data: &ticket_authz::model::Dataset) -> (Database, Arc<Store>) {
    let db = Database::connect(url).await.unwrap();
    db.migrate().await.unwrap();
    db.import(data, true).await.unwrap();
    let loaded = db.load().await.unwrap();
    let mut snap = Snapshot::build(&loaded.dataset).unwrap();
    snap.set_revision(loaded.revision);
    let store = Arc::new(Store::default());
    store.publish(snap);
    (db, store)
}

/// Starts following `db` into `store`; it stops when the sender is set.
fn start_following(db: &Database, store: &Arc<Store>, notify: Notify) -> watch::Sender<bool> {
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(follow::follow(
        DbSource::new(db.clone(), notify, Duration::from_millis(50)),
        Arc::clone(store),
        stopped,
    ));
    stop
}

/// The demo imported into `url`, loaded and followed.
async fn following(url: &str, notify: Notify) -> Following {
    let (db, store) = demo_store(url).await;
    let stop = start_following(&db, &store, notify);
    Following { db, store, stop }
}

async fn exec(db: &Database, sql: &str) {
    match db {
        Database::Postgres(pool) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(pool)
                .await
                .unwrap();
        }
        Database::Sqlite(pool) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(pool)
                .await
                .unwrap();
        }
    }
}

async fn view(store: &Store, min_revision: u64, user: &str, ticket: &str) -> (bool, Reason) {
    let snap = store
        .at_least(min_revision, Duration::from_secs(10))
        .await
        .unwrap();
    let req = CheckRequest {
        user,
        action: ActionInput::Known(Action::View),
        ticket,
        ..CheckRequest::default()
    };
    let d = core::check(
        &snap,
        &req,
        Context::at(
            snap.fixed_now()
                .unwrap_or_else(ticket_authz::time::Timestamp::now),
        ),
    )
    .unwrap();
    (d.allowed, d.reason)
}

async fn backends(name: &str) -> Vec<(String, Notify)> {
    let mut out = vec![(common::sqlite_database(name), Notify::Poll)];
    if let Some(url) = common::pg_database(name).await {
        out.push((url, Notify::Listen));
    }
    out
}

#[tokio::test]
async fn a_permission_change_is_visible_at_its_revision_without_a_reload() {
    for (url, notify) in backends("visible").await {
        let f = following(&url, notify).await;
        assert_eq!(
            view(&f.store, 0, "fay", "1001").await,
            (false, Reason::NoMatchingRule)
        );
        exec(
            &f.db,
            "INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1001', 'fay')",
        )
        .await;
        let revision = f.db.revision().await.unwrap();
        assert_eq!(
            view(&f.store, revision, "fay", "1001").await,
            (true, Reason::Cc),
            "{url}"
        );
        exec(
            &f.db,
            "UPDATE tickets SET assignee_id = 'fay', status = 'open' WHERE id = '1002'",
        )
        .await;
        let revision = f.db.revision().await.unwrap();
        assert_eq!(
            view(&f.store, revision, "fay", "1002").await,
            (true, Reason::Assignee),
            "{url}"
        );
        exec(&f.db, "DELETE FROM tickets WHERE id = '1001'").await;
        let revision = f.db.revision().await.unwrap();
        assert_eq!(
            view(&f.store, revision, "fay", "1001").await,
            (false, Reason::UnknownResource),
            "{url}"
        );
        // Users, memberships and grants too.
        exec(&f.db, "UPDATE users SET suspended = true WHERE id = 'fay'").await;
        let revision = f.db.revision().await.unwrap();
        assert_eq!(
            view(&f.store, revision, "fay", "1002").await,
            (false, Reason::Suspended),
            "{url}"
        );
        exec(&f.db, "INSERT INTO user_organisations (user_id, organisation_id) VALUES ('carla', 'northwind')").await;
        let revision = f.db.revision().await.unwrap();
        assert_eq!(
            view(&f.store, revision, "carla", "1006").await,
            (true, Reason::Organisation),
            "{url}"
        );
        exec(
            &f.db,
            "INSERT INTO grants (user_id, profile_id, group_id) VALUES ('sam', 'auditor', NULL)",
        )
        .await;
        let revision = f.db.revision().await.unwrap();
        assert_eq!(
            view(&f.store, revision, "sam", "1004").await,
            (true, Reason::GroupFlag),
            "{url}"
        );
        // Organisation, domain, partnership, profile-flag and group changes
        // are applied row by row too, with their wide effects.
        exec(
            &f.db,
            "UPDATE organisations SET ticket_access = 'own' WHERE id = 'northwind'",
        )
        .await;
        let revision = f.db.revision().await.unwrap();
        assert_eq!(
            view(&f.store, revision, "nils", "1006").await,
            (false, Reason::NoMatchingRule),
            "{url}"
        );
        exec(&f.db, "INSERT INTO organisation_domains (organisation_id, domain, added_at) VALUES ('fabrikam', 'contoso.example', '2020-01-01T00:00:00Z')").await;
        let revision = f.db.revision().await.unwrap();
        assert_eq!(
            view(&f.store, revision, "carla", "1005").await,
            (true, Reason::Organisation),
            "{url}: carla joins fabrikam by her email domain"
        );
        assert!(view(&f.store, 0, "paul", "1004").await.0);
        exec(
            &f.db,
            "DELETE FROM partnerships WHERE partner_id = 'brightdesk' AND client_id = 'contoso'",
        )
        .await;
        let revision = f.db.revision().await.unwrap();
        assert_eq!(
            view(&f.store, revision, "paul", "1004").await,
            (false, Reason::NoMatchingRule),
            "{url}: paul is no longer a member of contoso"
        );
        exec(
            &f.db,
            "DELETE FROM profile_flags WHERE profile_id = 'auditor' AND flag = 'IR'",
        )
        .await;
        let revision = f.db.revision().await.unwrap();
        assert_eq!(
            view(&f.store, revision, "sam", "1004").await,
            (false, Reason::NoMatchingRule),
            "{url}"
        );
        assert!(view(&f.store, 0, "alex", "1006").await.0);
        exec(
            &f.db,
            "UPDATE groups SET propagate = false WHERE id = 'service-desk'",
        )
        .await;
        let revision = f.db.revision().await.unwrap();
        assert_eq!(
            view(&f.store, revision, "alex", "1006").await,
            (false, Reason::NoMatchingRule),
            "{url}"
        );
        assert_eq!(f.store.full_loads(), 0, "{url}");
        // Deleting an organisation cascades through many tables: a full
        // reload applies it, and it still arrives.
        exec(&f.db, "DELETE FROM organisations WHERE id = 'fabrikam'").await;
        let revision = f.db.revision().await.unwrap();
        assert_eq!(
            view(&f.store, revision, "carla", "1005").await,
            (false, Reason::NoMatchingRule),
            "{url}"
        );
        assert_eq!(f.store.full_loads(), 1, "{url}");
    }
}

#[tokio::test]
async fn a_later_commit_first_loses_nothing_and_a_rollback_reloads_nothing() {
    let Some(url) = common::pg_database("order").await else {
        return;
    };
    let f = following(&url, Notify::Listen).await;
    let Database::Postgres(pool) = &f.db else {
        unreachable!()
    };
    let mut first = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1001', 'fay')")
        .execute(&mut *first)
        .await
        .unwrap();
    let mut second = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1004', 'fay')")
        .execute(&mut *second)
        .await
        .unwrap();
    second.commit().await.unwrap();
    let after_second = f.db.revision().await.unwrap();
    assert_eq!(
        view(&f.store, after_second, "fay", "1004").await,
        (true, Reason::Cc)
    );
    first.commit().await.unwrap();
    let after_first = f.db.revision().await.unwrap();
    assert!(after_first > after_second);
    assert_eq!(
        view(&f.store, after_first, "fay", "1001").await,
        (true, Reason::Cc)
    );
    // A rollback leaves no revision and causes no reload.
    let mut rolled = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1003', 'fay')")
        .execute(&mut *rolled)
        .await
        .unwrap();
    rolled.rollback().await.unwrap();
    exec(
        &f.db,
        "INSERT INTO ticket_participants (ticket_id, user_id) VALUES ('1003', 'fay')",
    )
    .await;
    let revision = f.db.revision().await.unwrap();
    assert_eq!(
        view(&f.store, revision, "fay", "1003").await,
        (true, Reason::Participant)
    );
    assert_eq!(f.store.full_loads(), 0);
}

#[tokio::test]
async fn a_killed_listener_recovers_and_catches_up() {
    let Some(url) = common::pg_database("killed").await else {
        return;
    };
    let f = following(&url, Notify::Listen).await;
    let Database::Postgres(pool) = &f.db else {
        unreachable!()
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let killed: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(!killed.is_empty(), "no listener connection found");
    // Committed while the listener is down: caught up from the change log.
    exec(
        &f.db,
        "INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1001', 'fay')",
    )
    .await;
    let revision = f.db.revision().await.unwrap();
    assert_eq!(
        view(&f.store, revision, "fay", "1001").await,
        (true, Reason::Cc)
    );
    exec(
        &f.db,
        "INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1004', 'fay')",
    )
    .await;
    let revision = f.db.revision().await.unwrap();
    assert_eq!(
        view(&f.store, revision, "fay", "1004").await,
        (true, Reason::Cc)
    );
    // The follower listens again (not just polling as a fallback).
    let started = std::time::Instant::now();
    loop {
        let listening: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if listening > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the listener never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `revision` is held back, then checks that it stays held
/// back while the follower keeps waking (every 50 ms here) without reading
/// the whole database again, as nothing newer is committed; returns the
/// cause requests are told.
async fn held_back_without_reloading(f: &Following, revision: u64, what: &str) -> String {
    let started = std::time::Instant::now();
    while f.store.held_back().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: never held back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cause = match f.store.at_least(revision, Duration::from_millis(100)).await {
        Err(StoreError::HeldBack { cause, .. }) => cause,
        other => panic!("{what}: expected held back, got {other:?}"),
    };
    let loads = f.store.full_loads();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        f.store.full_loads(),
        loads,
        "{what}: held-back data reloaded in full on a wake-up with nothing new"
    );
    assert!(f.store.held_back().is_some(), "{what}");
    cause
}

/// Commits `fix` and checks that its revision is served and the hold-back
/// is over.
async fn fixed_by(f: &Following, fix: &str, what: &str) {
    exec(&f.db, fix).await;
    let fixed = f.db.revision().await.unwrap();
    let snap = f
        .store
        .at_least(fixed, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(snap.revision() >= fixed, "{what}");
    assert!(f.store.held_back().is_none(), "{what}");
}

#[tokio::test]
async fn invalid_data_is_held_back_then_applied_once_fixed() {
    for (url, notify) in backends("held").await {
        let f = following(&url, notify).await;
        let before = f.store.current().unwrap().revision();
        // A parent cycle the schema cannot refuse.
        exec(
            &f.db,
            "UPDATE groups SET parent_id = 'hardware' WHERE id = 'service-desk'",
        )
        .await;
        let revision = f.db.revision().await.unwrap();
        let err = f.store.at_least(revision, Duration::from_secs(10)).await;
        let cause = held_back_without_reloading(&f, revision, &format!("{url} ({err:?})")).await;
        assert!(cause.contains("parent cycle"), "{url}: {cause}");
        // Still answering from the last valid revision.
        assert_eq!(f.store.current().unwrap().revision(), before);
        assert_eq!(
            view(&f.store, 0, "nils", "1001").await,
            (true, Reason::Organisation)
        );
        fixed_by(
            &f,
            "UPDATE groups SET parent_id = NULL WHERE id = 'service-desk'",
            &url,
        )
        .await;
    }
}

fn answers(snap: &Snapshot, users: &[String], tickets: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for u in users {
        out.push(format!(
            "{u}: {:?}",
            core::list_visible_tickets(snap, u, &TicketFilter::default(), 1000, "")
                .unwrap()
                .ids
        ));
    }
    for t in tickets {
        out.push(format!(
            "{t}: {:?}",
            core::list_ticket_viewers(snap, t, 1000, "").unwrap().ids
        ));
    }
    out
}

#[tokio::test]
async fn after_a_storm_of_changes_the_snapshot_equals_a_fresh_load() {
    for (url, notify) in backends("storm").await {
        let f = following(&url, notify).await;
        let users = [
            "nina", "nils", "carla", "chris", "fay", "paul", "alex", "lena", "omar", "audrey",
            "sam", "root",
        ];
        let statuses = ["new", "open", "pending", "on_hold", "solved", "closed"];
        let groups = [
            "NULL",
            "'hardware'",
            "'access-requests'",
            "'finance'",
            "'finance-payroll'",
            "'service-desk'",
            "'printers'",
        ];
        let orgs = [
            "NULL",
            "'northwind'",
            "'contoso'",
            "'fabrikam'",
            "'brightdesk'",
        ];
        // Changes to the shape around tickets, one every 25 statements.
        let shape = [
            "INSERT INTO organisation_domains (organisation_id, domain, added_at) VALUES ('fabrikam', 'contoso.example', '2020-01-01T00:00:00Z') ON CONFLICT DO NOTHING",
            "INSERT INTO partnerships (partner_id, client_id, since) VALUES ('fabrikam', 'northwind', '2020-01-01T00:00:00Z') ON CONFLICT DO NOTHING",
            "UPDATE groups SET propagate = NOT propagate WHERE id = 'service-desk'",
            "DELETE FROM profile_flags WHERE profile_id = 'first-line' AND flag = 'IR'",
            "INSERT INTO profiles (id, name) VALUES ('watcher', 'Watcher') ON CONFLICT (id) DO UPDATE SET name = 'Watcher 2'",
            "INSERT INTO groups (id, name, parent_id, propagate) VALUES ('printers', 'Printers', 'hardware', false) ON CONFLICT (id) DO UPDATE SET parent_id = 'finance'",
            "INSERT INTO grants (user_id, profile_id, group_id) VALUES ('omar', 'watcher', 'printers')",
            "INSERT INTO profile_flags (profile_id, flag) VALUES ('watcher', 'IR') ON CONFLICT DO NOTHING",
            "UPDATE groups SET parent_id = 'hardware', propagate = true WHERE id = 'printers'",
            "DELETE FROM organisation_domains WHERE organisation_id = 'fabrikam' AND domain = 'contoso.example'",
            "INSERT INTO companies (id, name, parent_id, owner_id) VALUES ('contoso-eu', 'Contoso EU', 'contoso-hq', 'sam') ON CONFLICT (id) DO UPDATE SET owner_id = NULL",
            "DELETE FROM partnerships WHERE partner_id = 'brightdesk' AND client_id = 'contoso'",
        ];
        let mut rng = fastrand::Rng::with_seed(11);
        for i in 0..300 {
            if i % 25 == 0 {
                exec(&f.db, shape[i / 25]).await;
            }
            let t = format!("s{}", rng.usize(0..40));
            let u = users[rng.usize(0..users.len())];
            let groups = if i > 150 {
                &groups[..]
            } else {
                &groups[..groups.len() - 1]
            };
            let sql = match rng.u8(0..10) {
                0..=3 => format!(
                    "INSERT INTO tickets (id, created_at, requester_id, organisation_id, group_id, assignee_id, status) \
                     VALUES ('{t}', '2026-05-{:02}T10:00:00Z', '{u}', {}, {}, {}, '{}') \
                     ON CONFLICT (id) DO UPDATE SET group_id = excluded.group_id, status = excluded.status, assignee_id = excluded.assignee_id",
                    rng.u8(1..28),
                    orgs[rng.usize(0..orgs.len())],
                    groups[rng.usize(0..groups.len())],
                    if rng.bool() {
                        format!("'{}'", users[rng.usize(0..users.len())])
                    } else {
                        "NULL".into()
                    },
                    statuses[rng.usize(0..statuses.len())],
                ),
                4 => format!("DELETE FROM tickets WHERE id = '{t}'"),
                5 | 6 => format!(
                    "INSERT INTO ticket_ccs (ticket_id, user_id) SELECT id, '{u}' FROM tickets WHERE id = '{t}' ON CONFLICT DO NOTHING"
                ),
                7 => format!("DELETE FROM ticket_ccs WHERE ticket_id = '{t}' AND user_id = '{u}'"),
                8 => format!(
                    "INSERT INTO ticket_participants (ticket_id, user_id) SELECT id, '{u}' FROM tickets WHERE id = '{t}' ON CONFLICT DO NOTHING"
                ),
                _ if i % 30 == 0 => format!(
                    "UPDATE users SET ticket_access = '{}' WHERE id = '{u}'",
                    if rng.bool() { "own" } else { "organisation" }
                ),
                _ => format!(
                    "DELETE FROM ticket_participants WHERE ticket_id = '{t}' AND user_id = '{u}'"
                ),
            };
            exec(&f.db, &sql).await;
        }
        let revision = f.db.revision().await.unwrap();
        let served = f
            .store
            .at_least(revision, Duration::from_secs(20))
            .await
            .unwrap();
        let loaded = f.db.load().await.unwrap();
        let fresh = Snapshot::build(&loaded.dataset).unwrap();
        let users: Vec<String> = users.iter().map(|s| (*s).to_owned()).collect();
        let tickets: Vec<String> = (0..40)
            .map(|i| format!("s{i}"))
            .chain(["1001".to_owned(), "1003".to_owned()])
            .collect();
        assert_eq!(
            answers(&served, &users, &tickets),
            answers(&fresh, &users, &tickets),
            "{url}"
        );
        assert_eq!(
            f.store.full_loads(),
            0,
            "{url}: every change applied row by row"
        );
    }
}

#[tokio::test]
async fn a_pruned_gap_reloads_in_full_and_a_caught_up_follower_does_not() {
    for (url, notify) in backends("pruned").await {
        let (db, store) = demo_store(&url).await;
        let applied = store.current().unwrap().revision();
        // Three changes the (not yet started) follower has not applied, then
        // a prune that deletes all but the latest from the log.
        exec(
            &db,
            "INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1001', 'fay')",
        )
        .await;
        exec(
            &db,
            "INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1003', 'fay')",
        )
        .await;
        exec(
            &db,
            "INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1004', 'fay')",
        )
        .await;
        let latest = db.revision().await.unwrap();
        let pruned = db.prune(Duration::ZERO).await.unwrap();
        assert!(pruned.deleted >= 2, "{url}: {pruned:?}");
        assert!(
            pruned.floor > applied && pruned.floor < latest,
            "{url}: {pruned:?}"
        );
        assert_eq!(
            db.revision().await.unwrap(),
            latest,
            "{url}: the revision never goes back"
        );

        let stop = start_following(&db, &store, notify);
        for ticket in ["1001", "1003", "1004"] {
            assert_eq!(
                view(&store, latest, "fay", ticket).await,
                (true, Reason::Cc),
                "{url}: {ticket}, a change from the pruned gap"
            );
        }
        assert_eq!(
            store.full_loads(),
            1,
            "{url}: the gap was filled by a reload"
        );

        // Pruning what the follower has already applied changes nothing.
        exec(
            &db,
            "DELETE FROM ticket_ccs WHERE ticket_id = '1004' AND user_id = 'fay'",
        )
        .await;
        let revision = db.revision().await.unwrap();
        assert_eq!(
            view(&store, revision, "fay", "1004").await,
            (false, Reason::NoMatchingRule),
            "{url}"
        );
        db.prune(Duration::ZERO).await.unwrap();
        exec(
            &db,
            "INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1004', 'fay')",
        )
        .await;
        let revision = db.revision().await.unwrap();
        assert_eq!(
            view(&store, revision, "fay", "1004").await,
            (true, Reason::Cc),
            "{url}"
        );
        assert_eq!(store.full_loads(), 1, "{url}: no reload once caught up");
        // A prune keeping a day deletes nothing just written.
        assert_eq!(
            db.prune(Duration::from_secs(86_400)).await.unwrap().deleted,
            0
        );
        stop.send_replace(true);
    }
}

/// Hands out one batch that upserts many tickets, and nothing else.
struct WideBatch {
    handed_out: Arc<std::sync::atomic::AtomicBool>,
    tickets: usize,
}

impl ChangeSource for WideBatch {
    async fn load(&mut self) -> Result<Snapshot, SourceError> {
        Err(SourceError::Read("this source does not reload".into()))
    }

    async fn changes_after(&mut self, after: u64) -> Result<Option<Batch>, SourceError> {
        if after >= 2 {
            return Ok(None);
        }
        let changes = (0..self.tickets)
            .map(|i| {
                Change::UpsertTicket(TicketFields {
                    id: format!("wide-{i:06}"),
                    created_at: ticket_authz::time::Timestamp::from_unix_seconds(1_767_225_600),
                    requester: "nina".into(),
                    organisation: Some("northwind".into()),
                    group: Some("hardware".into()),
                    assignee: None,
                    status: ticket_authz::model::Status::Open,
                })
            })
            .collect();
        self.handed_out
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(Some(Batch {
            revision: 2,
            changes,
            reload: None,
            committed_at: None,
        }))
    }

    async fn wait(&mut self) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// On a runtime of one thread, a task that only yields can run between
/// the batch being handed out and its revision being published only if
/// the apply runs off that thread: request handling is not stalled by a
/// wide change.
#[tokio::test(flavor = "current_thread")]
async fn a_wide_batch_is_applied_off_the_async_worker() {
    let store = demo_store_at_one();
    let handed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(follow::follow(
        WideBatch {
            handed_out: Arc::clone(&handed_out),
            tickets: 5_000,
        },
        Arc::clone(&store),
        stopped,
    ));
    let started = std::time::Instant::now();
    let mut ran_during_apply = 0u64;
    while store.current().unwrap().revision() < 2 {
        if handed_out.load(std::sync::atomic::Ordering::SeqCst) {
            ran_during_apply += 1;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never published"
        );
        tokio::task::yield_now().await;
    }
    stop.send_replace(true);
    assert!(
        ran_during_apply > 0,
        "no other task ran while the batch was applied"
    );
    assert_eq!(store.current().unwrap().stats().tickets, 5_000 + 8);
    assert_eq!(store.full_loads(), 0);
}

/// Breaks the seam's contract: hands out its batch at the served revision
/// again and again, counting how often it is asked.
struct NotNewer {
    asked: Arc<std::sync::atomic::AtomicU64>,
}

impl ChangeSource for NotNewer {
    async fn load(&mut self) -> Result<Snapshot, SourceError> {
        Err(SourceError::Read("this source does not reload".into()))
    }

    async fn changes_after(&mut self, after: u64) -> Result<Option<Batch>, SourceError> {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Some(Batch {
            revision: after,
            changes: Vec::new(),
            reload: None,
            committed_at: None,
        }))
    }

    async fn wait(&mut self) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A batch that brings nothing newer is ignored until the next wake-up,
/// not asked for again at once in a loop that never waits.
#[tokio::test]
async fn a_batch_that_is_not_newer_does_not_spin_the_follower() {
    let store = demo_store_at_one();
    let asked = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (stop, stopped) = watch::channel(false);
    let following = tokio::spawn(follow::follow(
        NotNewer {
            asked: Arc::clone(&asked),
        },
        Arc::clone(&store),
        stopped,
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(10), following)
        .await
        .expect("the follower stopped")
        .unwrap();
    // One read per wake-up, every 50 ms: about ten in half a second.
    let asked = asked.load(std::sync::atomic::Ordering::SeqCst);
    assert!(asked <= 30, "asked {asked} times in 500 ms");
    assert_eq!(store.current().unwrap().revision(), 1);
}

/// A reload that reads data no snapshot may hold (here a CC of a ticket
/// that does not exist, written with SQLite's foreign keys off) holds it
/// back, as a failed build does: it is not read again on every wake-up.
#[tokio::test]
async fn a_full_load_of_invalid_rows_is_held_back_not_retried() {
    let url = common::sqlite_database("held-load");
    let f = following(&url, Notify::Poll).await;
    let before = f.store.current().unwrap().revision();
    exec(
        &f.db,
        "PRAGMA foreign_keys = OFF; \
         INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('no-such-ticket', 'fay'); \
         PRAGMA foreign_keys = ON;",
    )
    .await;
    let revision = f.db.revision().await.unwrap();
    let cause = held_back_without_reloading(&f, revision, &url).await;
    assert!(cause.contains("no-such-ticket"), "{cause}");
    assert_eq!(f.store.current().unwrap().revision(), before);
    fixed_by(
        &f,
        "DELETE FROM ticket_ccs WHERE ticket_id = 'no-such-ticket'",
        &url,
    )
    .await;
}

/// The service-desk sections scenario, imported, loaded and followed.
async fn following_sections(url: &str, notify: Notify) -> (Following, dataset::Loaded) {
    let loaded = dataset::load_file(&common::section_scenario_files()[0]).unwrap();
    let (db, store) = data_store(url, &loaded.dataset).await;
    let stop = start_following(&db, &store, notify);
    (Following { db, store, stop }, loaded)
}

/// A section question and its answer: user, action, resource, answer.
type Question = (&'static str, Action, &'static str, (bool, Reason));

/// A section action's answer at `min_revision` or later.
async fn may(
    store: &Store,
    min_revision: u64,
    user: &str,
    action: Action,
    resource: &str,
) -> (bool, Reason) {
    let snap = store
        .at_least(min_revision, Duration::from_secs(10))
        .await
        .unwrap();
    let req = CheckRequest {
        user,
        action: ActionInput::Known(action),
        resource,
        ..CheckRequest::default()
    };
    let d = core::check(
        &snap,
        &req,
        Context::at(ticket_authz::time::Timestamp::now()),
    )
    .unwrap();
    (d.allowed, d.reason)
}

#[tokio::test]
async fn a_one_row_change_to_each_section_table_is_followed_without_a_reload() {
    use Action::*;
    use Reason::*;
    for (url, notify) in backends("sections_live").await {
        let (f, _) = following_sections(&url, notify).await;
        // (statement, then: user, action, resource, answer)
        let steps: [(&str, Question); 19] = [
            (
                "INSERT INTO projects (id, name, owner_id) VALUES ('new-p', 'New', 'wes')",
                ("wes", ProjectView, "new-p", (true, Owner)),
            ),
            (
                "INSERT INTO project_members (project_id, user_id, role) VALUES ('new-p', 'nia', 'manager')",
                ("nia", ProjectEdit, "new-p", (true, Role)),
            ),
            (
                "UPDATE project_members SET role = 'member' WHERE project_id = 'move' AND user_id = 'nia'",
                ("nia", ProjectEdit, "move", (false, NoMatchingRule)),
            ),
            // An id that sorts before every other task's.
            (
                "INSERT INTO tasks (id, name, project_id) VALUES ('aaa', 'First', 'new-p')",
                ("wes", TaskView, "aaa", (true, Owner)),
            ),
            (
                "INSERT INTO task_members (task_id, user_id, role) VALUES ('report', 'wes', 'manager')",
                ("wes", TaskEdit, "report", (true, Role)),
            ),
            (
                "INSERT INTO wiki_pages (id, name) VALUES ('faq', 'FAQ')",
                ("cus", WikiView, "faq", (true, Public)),
            ),
            (
                "INSERT INTO wiki_page_groups (wiki_page_id, group_id, access) VALUES ('faq', 'sales', 'read')",
                ("cus", WikiView, "faq", (false, NoMatchingRule)),
            ),
            (
                "INSERT INTO inventory_item_users (inventory_item_id, user_id) VALUES ('laptop', 'wes')",
                ("wes", InventoryView, "laptop", (true, Associated)),
            ),
            (
                "UPDATE inventory_items SET public = true WHERE id = 'laptop'",
                ("wes", InventoryView, "laptop", (true, Public)),
            ),
            (
                "INSERT INTO inventory_item_companies (inventory_item_id, company_id) VALUES ('phone', 'branch')",
                ("ali", InventoryView, "phone", (true, Company)),
            ),
            (
                "INSERT INTO invoices (id, company_id) VALUES ('inv-b2', 'branch')",
                ("fay", InvoiceView, "inv-b2", (true, Company)),
            ),
            (
                "UPDATE leads SET company_id = NULL WHERE id = 'rival-lead'",
                ("sam", LeadView, "rival-lead", (true, Public)),
            ),
            (
                "INSERT INTO agenda_events (id, name, owner_id) VALUES ('retro', 'Retro', 'wes')",
                ("wes", AgendaView, "retro", (true, Owner)),
            ),
            (
                "INSERT INTO agenda_event_groups (agenda_event_id, group_id) VALUES ('pitch', 'it')",
                ("wes", AgendaView, "pitch", (true, GroupMember)),
            ),
            (
                "DELETE FROM download_categories WHERE id = 'manuals'",
                ("wes", DownloadView, "guide.pdf", (false, UnknownResource)),
            ),
            (
                "INSERT INTO downloads (id, name, category_id) VALUES ('tool.zip', 'tool.zip', 'tools')",
                ("wes", DownloadView, "tool.zip", (true, Public)),
            ),
            (
                "INSERT INTO download_category_groups (download_category_id, group_id) VALUES ('tools', 'sales')",
                ("wes", DownloadView, "tool.zip", (false, NoMatchingRule)),
            ),
            // Deletes cascade in the database; each row is applied.
            (
                "DELETE FROM tasks WHERE id = 'cabling'",
                ("fay", TaskView, "labels", (false, UnknownResource)),
            ),
            (
                "DELETE FROM projects WHERE id = 'new-p'",
                ("wes", TaskView, "aaa", (false, UnknownResource)),
            ),
        ];
        // A category alone changes no answer; its downloads below do.
        exec(
            &f.db,
            "INSERT INTO download_categories (id, name) VALUES ('tools', 'Tools')",
        )
        .await;
        for (sql, (user, action, resource, want)) in steps {
            let before = may(&f.store, 0, user, action, resource).await;
            assert_ne!(before, want, "{url}: {sql} changes nothing to check");
            exec(&f.db, sql).await;
            let revision = f.db.revision().await.unwrap();
            assert_eq!(
                may(&f.store, revision, user, action, resource).await,
                want,
                "{url}: after {sql}"
            );
        }
        assert_eq!(f.store.full_loads(), 0, "{url}: a one-row change reloaded");
        // Lists and answers equal a fresh load of the same revision.
        let revision = f.db.revision().await.unwrap();
        let followed = f
            .store
            .at_least(revision, Duration::from_secs(10))
            .await
            .unwrap();
        let fresh = f.db.load().await.unwrap();
        let built = Snapshot::build(&fresh.dataset).unwrap();
        assert_eq!(
            common::section_answers(&followed, &fresh.dataset),
            common::section_answers(&built, &fresh.dataset),
            "{url}"
        );
        assert_eq!(f.store.full_loads(), 0, "{url}");
    }
}

#[tokio::test]
async fn a_task_parent_cycle_is_held_back_then_applied_once_fixed() {
    for (url, notify) in backends("sections_held").await {
        let (f, _) = following_sections(&url, notify).await;
        let before = f.store.current().unwrap().revision();
        // plan → cabling → labels; labels as plan's parent closes a loop,
        // which no constraint of the schema refuses.
        exec(
            &f.db,
            "UPDATE tasks SET parent_id = 'labels' WHERE id = 'plan'",
        )
        .await;
        let revision = f.db.revision().await.unwrap();
        let cause = held_back_without_reloading(&f, revision, &url).await;
        assert!(cause.contains("parent cycle"), "{url}: {cause}");
        assert!(cause.contains("task"), "{url}: {cause}");
        assert_eq!(f.store.current().unwrap().revision(), before);
        assert_eq!(
            may(&f.store, 0, "ali", Action::TaskEdit, "labels").await,
            (true, Reason::Role),
            "{url}: still answering from the last valid revision"
        );
        fixed_by(
            &f,
            "UPDATE tasks SET parent_id = NULL WHERE id = 'plan'",
            &url,
        )
        .await;
        assert_eq!(
            may(&f.store, 0, "ali", Action::TaskEdit, "labels").await,
            (true, Reason::Role),
            "{url}"
        );
    }
}
