//! `serve --ticket-cache`: the graph in memory, tickets read through a
//! moka cache from PostgreSQL or SQLite, lists and ticket limits read in
//! SQL. Every shared scenario through the wire at a roomy and a tiny
//! (64 KiB) cache, a change storm on a warm cache against a fresh full
//! load, and the configuration errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use ticket_authz::dataset;
use ticket_authz::db::{Database, LoadScope};
use ticket_authz::grpc::pb::ticket_authz_client::TicketAuthzClient;
use ticket_authz::serve::{self as server, Follow, Loader, ServeConfig, ServeError};
use ticket_authz::ticket_cache::TicketCache;
use ticket_authz::time::Timestamp;

struct Running {
    addr: SocketAddr,
    cache: TicketCache,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), ServeError>>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), self.handle)
            .await
            .expect("server stops")
            .unwrap()
            .unwrap();
    }

    async fn client(&self) -> TicketAuthzClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        TicketAuthzClient::new(channel)
    }
}

/// The graph of `db` at its revision, with the clock a dataset fixes.
fn graph_loader(db: Database, now: Option<Timestamp>) -> Loader {
    Box::pin(async move {
        let mut snap = db
            .snapshot_of(LoadScope::Graph)
            .await
            .map_err(|e| e.to_string())?;
        snap.fix_now(now);
        Ok(snap)
    })
}

/// Serves `db` in the cached mode with a cache of `bytes`.
async fn serve_cached(
    db: &Database,
    bytes: u64,
    now: Option<Timestamp>,
    follow: Option<(TicketCache, Follow)>,
) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (cache, follow) = match follow {
        Some((cache, follow)) => (cache, Some(follow)),
        None => (TicketCache::new(bytes, Arc::new(db.clone())), None),
    };
    let config = ServeConfig {
        ticket_cache: Some(cache.clone()),
        ..ServeConfig::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(server::run(
        config,
        server::Listeners::grpc(listener),
        async move {
            let _ = stopped.await;
        },
        graph_loader(db.clone(), now),
        follow,
    ));
    let running = Running {
        addr,
        cache,
        stop: Some(stop),
        handle,
    };
    // Serving once the first load is published: a check answers.
    let mut c = running.client().await;
    for _ in 0..200 {
        let r = c
            .get_visibility_filter(ticket_authz::grpc::pb::GetVisibilityFilterRequest {
                user_id: "nobody".to_owned(),
                min_revision: 0,
            })
            .await;
        if r.is_ok() {
            return running;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the cached service did not load");
}

#[tokio::test]
async fn every_shared_scenario_passes_with_the_ticket_cache() {
    let mut files = common::scenario_files();
    files.push(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.yaml"));
    // The sections are part of the graph the cached mode keeps in memory.
    files.extend(common::section_scenario_files());
    for (n, file) in files.iter().enumerate() {
        let loaded = dataset::load_file(file).unwrap();
        for (kind, db) in common::databases(&format!("cached_scenarios_{n}")).await {
            let revision = db.import(&loaded.dataset, false).await.unwrap();
            // Roomy, then tiny (64 KiB), then tinier than these datasets'
            // tickets (1 KiB, a few entries): evicted every few calls.
            for bytes in [64 << 20, 64 << 10, 1 << 10] {
                let running = serve_cached(&db, bytes, loaded.dataset.now, None).await;
                let mut c = running.client().await;
                eprintln!("{}: {kind}, cache of {bytes} bytes", file.display());
                common::wire::conform(&mut c, file, &loaded, revision, &[1, 2, 7]).await;
                let held = running.cache.weighted_size().await;
                assert!(
                    held <= bytes,
                    "{kind}: {held} bytes held in a cache of {bytes}"
                );
                if bytes == 1 << 10 {
                    // Two or three entries fit; each further ticket a
                    // scenario asks about evicts one (there are few).
                    eprintln!("{kind}: {} evicted", running.cache.evictions().await);
                }
                running.stop().await;
            }
            db.close().await;
        }
    }
}

/// One statement with text binds on either database; `Err` when the
/// database refuses it (a storm's write may conflict with an earlier one).
async fn exec(db: &Database, sql: &str, binds: &[Option<&str>]) -> Result<(), String> {
    match db {
        Database::Postgres(pool) => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
            for b in binds {
                q = q.bind(b.map(str::to_owned));
            }
            q.execute(pool).await.map(drop).map_err(|e| e.to_string())
        }
        Database::Sqlite(pool) => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
            for b in binds {
                q = q.bind(b.map(str::to_owned));
            }
            q.execute(pool).await.map(drop).map_err(|e| e.to_string())
        }
    }
}

/// Random writes to tickets, their lists, users, memberships and grants.
async fn storm(db: &Database, data: &ticket_authz::model::Dataset, writes: usize, seed: u64) {
    let rng = std::cell::RefCell::new(fastrand::Rng::with_seed(seed));
    let pick = |v: &[String]| v[rng.borrow_mut().usize(..v.len())].clone();
    let coin = || rng.borrow_mut().bool();
    let tickets: Vec<String> = data.tickets.iter().map(|t| t.id.clone()).collect();
    let users: Vec<String> = data.users.iter().map(|u| u.id.clone()).collect();
    let orgs: Vec<String> = data.organisations.iter().map(|o| o.id.clone()).collect();
    let groups: Vec<String> = data.groups.iter().map(|g| g.id.clone()).collect();
    let companies: Vec<String> = data.companies.iter().map(|c| c.id.clone()).collect();
    let profiles: Vec<String> = data.profiles.iter().map(|p| p.id.clone()).collect();
    let created = match db {
        Database::Postgres(_) => "CAST($4 AS timestamptz)",
        Database::Sqlite(_) => "$4",
    };
    let statuses = ["new", "open", "pending", "on_hold", "solved", "closed"];
    let mut applied = 0;
    for n in 0..writes {
        let (t, u) = (pick(&tickets), pick(&users));
        let new_id = format!("storm-{seed}-{n}");
        let op = rng.borrow_mut().usize(..12);
        let result = match op {
            0 => {
                let s = statuses[rng.borrow_mut().usize(..statuses.len())];
                exec(
                    db,
                    "UPDATE tickets SET status = $2 WHERE id = $1",
                    &[Some(&t), Some(s)],
                )
                .await
            }
            1 => {
                let o = coin().then(|| pick(&orgs));
                exec(
                    db,
                    "UPDATE tickets SET organisation_id = $2 WHERE id = $1",
                    &[Some(&t), o.as_deref()],
                )
                .await
            }
            2 => {
                let g = coin().then(|| pick(&groups));
                exec(
                    db,
                    "UPDATE tickets SET group_id = $2 WHERE id = $1",
                    &[Some(&t), g.as_deref()],
                )
                .await
            }
            3 => {
                let a = coin().then(|| u.clone());
                exec(
                    db,
                    "UPDATE tickets SET assignee_id = $2 WHERE id = $1",
                    &[Some(&t), a.as_deref()],
                )
                .await
            }
            4 => {
                exec(
                    db,
                    "INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ($1, $2)",
                    &[Some(&t), Some(&u)],
                )
                .await
            }
            5 => {
                exec(
                    db,
                    "DELETE FROM ticket_ccs WHERE ticket_id = $1",
                    &[Some(&t)],
                )
                .await
            }
            6 => {
                exec(
                    db,
                    "INSERT INTO ticket_participants (ticket_id, user_id) VALUES ($1, $2)",
                    &[Some(&t), Some(&u)],
                )
                .await
            }
            7 => {
                let g = pick(&groups);
                let sql = format!(
                    "INSERT INTO tickets (id, requester_id, group_id, created_at, status) VALUES ($1, $2, $3, {created}, 'open')"
                );
                exec(
                    db,
                    &sql,
                    &[
                        Some(&new_id),
                        Some(&u),
                        Some(&g),
                        Some("2026-06-01T10:00:00Z"),
                    ],
                )
                .await
            }
            8 => exec(db, "DELETE FROM tickets WHERE id = $1", &[Some(&t)]).await,
            9 => {
                let c = coin().then(|| pick(&companies));
                exec(
                    db,
                    "UPDATE users SET company_id = $2 WHERE id = $1",
                    &[Some(&u), c.as_deref()],
                )
                .await
            }
            10 => {
                let o = pick(&orgs);
                if coin() {
                    exec(
                        db,
                        "INSERT INTO user_organisations (user_id, organisation_id) VALUES ($1, $2)",
                        &[Some(&u), Some(&o)],
                    )
                    .await
                } else {
                    exec(db, "DELETE FROM user_organisations WHERE user_id = $1 AND organisation_id = $2", &[Some(&u), Some(&o)]).await
                }
            }
            _ => {
                let (p, g) = (pick(&profiles), pick(&groups));
                if coin() {
                    exec(
                        db,
                        "INSERT INTO grants (user_id, profile_id, group_id) VALUES ($1, $2, $3)",
                        &[Some(&u), Some(&p), Some(&g)],
                    )
                    .await
                } else {
                    exec(db, "DELETE FROM grants WHERE user_id = $1", &[Some(&u)]).await
                }
            }
        };
        applied += usize::from(result.is_ok());
        if n % 16 == 0 {
            tokio::task::yield_now().await;
        }
    }
    assert!(
        applied > writes / 2,
        "only {applied} of {writes} writes applied"
    );
}

#[tokio::test]
async fn a_change_storm_on_a_warm_cache_ends_where_a_full_load_does() {
    use ticket_authz::core::{self, Action, CheckRequest, Context, TicketFilter};
    use ticket_authz::generate::{Spec, generate};
    use ticket_authz::grpc::convert::{action_code, reason_code};
    use ticket_authz::grpc::pb;
    use ticket_authz::model::Status;

    let data = generate(&Spec {
        users: 40,
        organisations: 5,
        companies: 4,
        groups: 6,
        profiles: 4,
        tickets: 250,
        seed: 16,
    });
    for (kind, db) in common::databases("cache_storm").await {
        db.import(&data, false).await.unwrap();
        for bytes in [64 << 20, 64 << 10] {
            let cache = TicketCache::new(bytes, Arc::new(db.clone()));
            let notify = match db {
                Database::Postgres(_) => ticket_authz::db::Notify::Listen,
                Database::Sqlite(_) => ticket_authz::db::Notify::Poll,
            };
            let follow = ticket_authz::serve_cmd::cached_follower(
                db.clone(),
                notify,
                Duration::from_millis(50),
                cache.clone(),
            );
            let running = serve_cached(&db, bytes, None, Some((cache, follow))).await;
            let mut c = running.client().await;
            let users: Vec<String> = data.users.iter().map(|u| u.id.clone()).collect();
            let tickets: Vec<String> = data.tickets.iter().map(|t| t.id.clone()).collect();
            // Warm: every ticket and every user's list.
            for (i, t) in tickets.iter().enumerate() {
                let user = &users[i % users.len()];
                c.check_access(pb::CheckAccessRequest {
                    user_id: user.clone(),
                    action: action_code(Action::View),
                    ticket_id: t.clone(),
                    ..Default::default()
                })
                .await
                .unwrap();
            }
            // Readers keep asking while the storm writes.
            let reader = {
                let mut c = running.client().await;
                let (users, tickets) = (users.clone(), tickets.clone());
                tokio::spawn(async move {
                    let mut rng = fastrand::Rng::with_seed(3);
                    for _ in 0..400 {
                        let user = users[rng.usize(..users.len())].clone();
                        let t = tickets[rng.usize(..tickets.len())].clone();
                        let action = [Action::View, Action::Edit][rng.usize(..2)];
                        c.check_access(pb::CheckAccessRequest {
                            user_id: user.clone(),
                            action: action_code(action),
                            ticket_id: t.clone(),
                            ..Default::default()
                        })
                        .await
                        .unwrap();
                        c.list_ticket_viewers(pb::ListTicketViewersRequest {
                            ticket_id: t,
                            page_size: 3,
                            ..Default::default()
                        })
                        .await
                        .unwrap();
                    }
                })
            };
            storm(&db, &data, 400, bytes).await;
            reader.await.unwrap();

            let full = db.snapshot().await.unwrap();
            let at = full.revision();
            let loaded = db.load().await.unwrap();
            assert_eq!(loaded.revision, at);
            let mut ids: Vec<String> = loaded
                .dataset
                .tickets
                .iter()
                .map(|t| t.id.clone())
                .collect();
            // Deleted tickets too: unknown now.
            ids.extend(tickets.iter().take(20).cloned());
            let now = Timestamp::now();
            let mut compared = 0;
            for user in &users {
                for action in [Action::View, Action::Comment, Action::Edit] {
                    for chunk in ids.chunks(500) {
                        let checks: Vec<pb::CheckAccessRequest> = chunk
                            .iter()
                            .map(|t| pb::CheckAccessRequest {
                                user_id: user.clone(),
                                action: action_code(action),
                                ticket_id: t.clone(),
                                ..Default::default()
                            })
                            .collect();
                        let got = c
                            .check_access_batch(pb::CheckAccessBatchRequest {
                                checks,
                                min_revision: at,
                            })
                            .await
                            .unwrap()
                            .into_inner();
                        assert_eq!(got.revision, at, "{kind}: the storm is over");
                        for (t, r) in chunk.iter().zip(&got.results) {
                            let want = core::check(
                                &full,
                                &CheckRequest {
                                    user,
                                    action: ticket_authz::core::ActionInput::Known(action),
                                    ticket: t,
                                    ..CheckRequest::default()
                                },
                                Context::at(now),
                            )
                            .unwrap();
                            assert_eq!(
                                (r.allowed, r.reason),
                                (want.allowed, reason_code(want.reason)),
                                "{kind}, cache {bytes}: {user} {} {t}",
                                action.name()
                            );
                            compared += 1;
                        }
                    }
                }
                let want = core::visible_tickets_after(
                    &full,
                    user,
                    &TicketFilter::default(),
                    None,
                    usize::MAX,
                )
                .0;
                let got =
                    common::wire::all_visible_with(&mut c, user, &TicketFilter::default(), 7, at)
                        .await;
                assert_eq!(
                    got, want,
                    "{kind}, cache {bytes}: visible tickets of {user}"
                );
                let filter = TicketFilter {
                    organisation: None,
                    group: Some(data.groups[users.len() % data.groups.len()].id.clone()),
                    statuses: vec![Status::Open, Status::New],
                };
                let want = core::visible_tickets_after(&full, user, &filter, None, usize::MAX).0;
                let got = common::wire::all_visible_with(&mut c, user, &filter, 3, at).await;
                assert_eq!(got, want, "{kind}, cache {bytes}: {user} with {filter:?}");
            }
            for t in &ids {
                let want = core::ticket_viewers_after(&full, t, None, usize::MAX).0;
                let got = common::wire::all_viewers(&mut c, t, 5).await;
                assert_eq!(got, want, "{kind}, cache {bytes}: viewers of {t}");
            }
            assert!(compared > 10_000, "{compared}");
            let (held, evicted) = (
                running.cache.weighted_size().await,
                running.cache.evictions().await,
            );
            assert!(
                held <= bytes,
                "{kind}: {held} bytes held in a cache of {bytes}"
            );
            if bytes == 64 << 10 {
                // About 200 entries fit in 64 KiB; the storm asks about
                // every one of its 250 tickets and more, many times over.
                assert!(evicted > 100, "{kind}: {evicted} evicted at 64 KiB");
            }
            running.stop().await;
            // The next size starts from the storm's end: import again.
            db.import(&data, true).await.unwrap();
        }
        db.close().await;
    }
}

#[tokio::test]
async fn a_ticket_read_says_whether_it_changed_since_the_graph() {
    let demo = dataset::load_file(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.yaml"),
    )
    .unwrap();
    for (kind, db) in common::databases("cache_reads").await {
        let r0 = db.import(&demo.dataset, false).await.unwrap();
        let read = db.read_ticket("1003", r0).await.unwrap();
        assert_eq!((read.revision, read.unchanged), (r0, true), "{kind}");
        let t = read.value.unwrap();
        assert_eq!(
            (t.requester.as_str(), t.ccs.clone()),
            ("carla", vec!["nina".to_owned()])
        );
        assert_eq!(t.group.as_deref(), Some("hardware"), "{kind}");
        assert!(
            db.read_ticket("no-such", r0).await.unwrap().value.is_none(),
            "{kind}"
        );

        exec(
            &db,
            "INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ($1, $2)",
            &[Some("1003"), Some("nils")],
        )
        .await
        .unwrap();
        let r1 = db.revision().await.unwrap();
        assert!(r1 > r0, "{kind}");
        // Read against the old graph: newer, and says so.
        let read = db.read_ticket("1003", r0).await.unwrap();
        assert_eq!((read.revision, read.unchanged), (r1, false), "{kind}");
        assert_eq!(
            read.value.unwrap().ccs,
            vec!["nils".to_owned(), "nina".to_owned()],
            "{kind}"
        );
        // Another ticket is the same as at the old graph.
        let other = db.read_ticket("1001", r0).await.unwrap();
        assert_eq!((other.revision, other.unchanged), (r1, true), "{kind}");
        assert!(
            db.read_ticket("1003", r1).await.unwrap().unchanged,
            "{kind}"
        );
        // A ticket row change and a delete count as well.
        exec(
            &db,
            "UPDATE tickets SET status = 'closed' WHERE id = $1",
            &[Some("1001")],
        )
        .await
        .unwrap();
        assert!(
            !db.read_ticket("1001", r1).await.unwrap().unchanged,
            "{kind}"
        );
        exec(&db, "DELETE FROM tickets WHERE id = $1", &[Some("1004")])
            .await
            .unwrap();
        let gone = db.read_ticket("1004", r1).await.unwrap();
        assert!(gone.value.is_none() && !gone.unchanged, "{kind}");
        db.close().await;
    }
}

/// The README's way: `serve --ticket-cache` on the command line, a write
/// through SQL, and the `check` and `list` commands at the new revision.
#[test]
fn the_command_line_serves_the_cached_mode_and_follows_writes() {
    let url = common::sqlite_database("cache_cli");
    let out = common::bin()
        .args(["import", "--database-url", &url, "examples/demo.yaml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let served = common::serve(
        &["--database-url", url.as_str(), "--poll-interval", "50ms"],
        &[("TICKET_AUTHZ_TICKET_CACHE", "1MiB".to_owned())],
    );
    let run = |args: &[&str]| {
        let out = common::bin()
            .args(args)
            .args(["--server", served.grpc.as_str()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let before = run(&[
        "check", "--user", "nils", "--action", "comment", "--ticket", "1003",
    ]);
    assert_eq!(before["allowed"], false, "{before}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let revision = rt.block_on(async {
        let db = Database::connect(&url).await.unwrap();
        exec(
            &db,
            "INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ($1, $2)",
            &[Some("1003"), Some("nils")],
        )
        .await
        .unwrap();
        db.revision().await.unwrap()
    });
    let rev = revision.to_string();
    let after = run(&[
        "check",
        "--user",
        "nils",
        "--action",
        "comment",
        "--ticket",
        "1003",
        "--min-revision",
        &rev,
    ]);
    assert_eq!(
        (after["allowed"].clone(), after["reason"].clone()),
        (true.into(), "CC".into()),
        "{after}"
    );
    let listed = run(&["list", "tickets", "--user", "nils"]);
    assert!(
        listed.to_string().contains("\"1003\""),
        "nils sees 1003 as a CC: {listed}"
    );
    served.terminate();
}
