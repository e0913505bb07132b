//! The database as source of truth, on SQLite and on a real PostgreSQL:
//! schema constraints, all-or-nothing import, loading at a revision,
//! revisions in commit order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use ticket_authz::dataset;
use ticket_authz::db::Database;
use ticket_authz::scenario;
use ticket_authz::snapshot::Snapshot;

fn demo() -> dataset::Loaded {
    dataset::load_file(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.yaml"))
        .unwrap()
}

#[tokio::test]
async fn an_imported_dataset_loads_back_and_passes_its_assertions() {
    let demo = demo();
    for (kind, db) in common::databases("roundtrip").await {
        assert_eq!(db.revision().await.unwrap(), 0, "{kind}");
        let revision = db.import(&demo.dataset, false).await.unwrap();
        assert!(revision >= 1, "{kind}");
        let loaded = db.load().await.unwrap();
        assert_eq!(loaded.revision, revision, "{kind}");
        let snap = Snapshot::build(&loaded.dataset).unwrap();
        let outcome = scenario::run(&snap, &demo.assertions, demo.dataset.now.unwrap());
        assert!(
            outcome.failures.is_empty(),
            "{kind}: {:?}",
            outcome.failures
        );
        // Every entity survives the round trip (order aside).
        let mut back = loaded.dataset.clone();
        let mut orig = demo.dataset.clone();
        for d in [&mut back, &mut orig] {
            d.now = None;
            d.organisations.sort_by(|a, b| a.id.cmp(&b.id));
            d.companies.sort_by(|a, b| a.id.cmp(&b.id));
            d.groups.sort_by(|a, b| a.id.cmp(&b.id));
            d.profiles.sort_by(|a, b| a.id.cmp(&b.id));
            d.users.sort_by(|a, b| a.id.cmp(&b.id));
            d.tickets.sort_by(|a, b| a.id.cmp(&b.id));
            d.partnerships
                .sort_by(|a, b| (&a.partner, &a.client).cmp(&(&b.partner, &b.client)));
            for u in &mut d.users {
                u.organisations.sort();
                u.grants.sort_by(|a, b| {
                    (&a.profile, a.group.as_str()).cmp(&(&b.profile, b.group.as_str()))
                });
            }
            for o in &mut d.organisations {
                o.domains.sort_by(|a, b| a.domain.cmp(&b.domain));
                o.access_managers.sort();
            }
            for t in &mut d.tickets {
                t.ccs.sort();
                t.participants.sort();
            }
        }
        assert_eq!(
            back, orig,
            "{kind}: the dataset changed on its way through the database"
        );
        db.close().await;
    }
}

#[tokio::test]
async fn import_is_all_or_nothing_and_replace_starts_over() {
    let demo = demo();
    for (kind, db) in common::databases("atomic").await {
        let first = db.import(&demo.dataset, false).await.unwrap();
        // The same ids again conflict: nothing of the second import stays.
        let err = db.import(&demo.dataset, false).await.unwrap_err();
        assert!(err.to_string().contains("organisations"), "{kind}: {err}");
        assert_eq!(
            db.revision().await.unwrap(),
            first,
            "{kind}: a failed import left a revision"
        );
        assert_eq!(
            db.load().await.unwrap().dataset.tickets.len(),
            demo.dataset.tickets.len(),
            "{kind}"
        );
        // --replace: the data is the file's, at a new revision.
        let mut smaller = demo.dataset.clone();
        smaller.tickets.truncate(3);
        let replaced = db.import(&smaller, true).await.unwrap();
        assert!(replaced > first, "{kind}");
        assert_eq!(db.load().await.unwrap().dataset.tickets.len(), 3, "{kind}");
        db.close().await;
    }
}

#[tokio::test]
async fn the_schema_rejects_what_it_can() {
    for (kind, db) in common::databases("constraints").await {
        let statements = [
            "INSERT INTO groups (id, name) VALUES ('*', 'All')",
            "INSERT INTO groups (id, name) VALUES ('', 'Empty')",
            "INSERT INTO organisations (id, name, ticket_access) VALUES ('o', 'O', 'everyone')",
            "INSERT INTO users (id, created_at, kind) VALUES ('u', '2026-01-01T00:00:00Z', 'admin')",
            "INSERT INTO tickets (id, created_at, requester_id) VALUES ('t', '2026-01-01T00:00:00Z', 'nobody')",
            "INSERT INTO profiles (id, name) VALUES ('p', 'P')",
        ];
        for sql in &statements[..5] {
            let result = match &db {
                Database::Postgres(pool) => sqlx::query(*sql).execute(pool).await.map(|_| ()),
                Database::Sqlite(pool) => sqlx::query(*sql).execute(pool).await.map(|_| ()),
            };
            assert!(result.is_err(), "{kind}: accepted {sql}");
        }
        let flag = "INSERT INTO profile_flags (profile_id, flag) VALUES ('p', 'ir')";
        let result = match &db {
            Database::Postgres(pool) => {
                sqlx::query(statements[5]).execute(pool).await.unwrap();
                sqlx::query(flag).execute(pool).await.map(|_| ())
            }
            Database::Sqlite(pool) => {
                sqlx::query(statements[5]).execute(pool).await.unwrap();
                sqlx::query(flag).execute(pool).await.map(|_| ())
            }
        };
        assert!(result.is_err(), "{kind}: accepted a lower-case flag");
        db.close().await;
    }
}

#[tokio::test]
async fn revisions_follow_commit_order_and_rollbacks_leave_none() {
    let Some(url) = common::pg_database("commit_order").await else {
        return;
    };
    let db = Database::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    let Database::Postgres(pool) = &db else {
        unreachable!()
    };
    // T1 writes first but commits last; T2 commits in between.
    let mut t1 = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO organisations (id, name) VALUES ('first', 'First')")
        .execute(&mut *t1)
        .await
        .unwrap();
    let mut t2 = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO organisations (id, name) VALUES ('second', 'Second')")
        .execute(&mut *t2)
        .await
        .unwrap();
    t2.commit().await.unwrap();
    let after_t2 = db.revision().await.unwrap();
    t1.commit().await.unwrap();
    let after_t1 = db.revision().await.unwrap();
    assert!(
        after_t1 > after_t2,
        "the later commit must get the higher revision"
    );
    // A rolled-back transaction takes no revision.
    let mut t3 = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO organisations (id, name) VALUES ('third', 'Third')")
        .execute(&mut *t3)
        .await
        .unwrap();
    t3.rollback().await.unwrap();
    assert_eq!(db.revision().await.unwrap(), after_t1);
    let revisions: Vec<(i64, String)> = sqlx::query_as(
        "SELECT t.revision, c.new_row->>'id' FROM ticket_authz_transactions t JOIN ticket_authz_changes c ON c.xid = t.xid ORDER BY t.revision",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        revisions
            .iter()
            .map(|(_, id)| id.as_str())
            .collect::<Vec<_>>(),
        ["second", "first"]
    );
    db.close().await;
}

#[tokio::test]
async fn entries_listed_twice_are_imported_once() {
    let mut data = demo().dataset;
    let agent = data
        .users
        .iter()
        .position(|u| !u.grants.is_empty())
        .unwrap();
    let member = data.users.iter().position(|u| u.grants.is_empty()).unwrap();
    let grant = data.users[agent].grants[0].clone();
    data.users[agent].grants.push(grant.clone());
    let org = data.organisations[0].id.clone();
    data.users[member].organisations.push(org.clone());
    data.users[member].organisations.push(org.clone());
    let (agent_id, member_id) = (data.users[agent].id.clone(), data.users[member].id.clone());
    let ticket = &mut data.tickets[0];
    ticket.ccs.push(member_id.clone());
    ticket.ccs.push(member_id.clone());
    let ticket_id = ticket.id.clone();
    for (kind, db) in common::databases("repeats").await {
        db.import(&data, true).await.unwrap();
        let loaded = db.load().await.unwrap().dataset;
        let user = |id: &str| loaded.users.iter().find(|u| u.id == id).unwrap();
        let grants = &user(&agent_id).grants;
        assert_eq!(grants.iter().filter(|g| **g == grant).count(), 1, "{kind}");
        let orgs = &user(&member_id).organisations;
        assert_eq!(orgs.iter().filter(|o| **o == org).count(), 1, "{kind}");
        let ticket = loaded.tickets.iter().find(|t| t.id == ticket_id).unwrap();
        let ccs = ticket.ccs.iter().filter(|u| **u == member_id).count();
        assert_eq!(ccs, 1, "{kind}");
        db.close().await;
    }
}

/// The sections of a dataset with every list in a canonical order, to
/// compare what went through the database with what came in.
fn canonical(mut s: ticket_authz::model::Sections) -> ticket_authz::model::Sections {
    s.projects.sort_by(|a, b| a.id.cmp(&b.id));
    s.tasks.sort_by(|a, b| a.id.cmp(&b.id));
    s.wiki_pages.sort_by(|a, b| a.id.cmp(&b.id));
    s.inventory_items.sort_by(|a, b| a.id.cmp(&b.id));
    s.invoices.sort_by(|a, b| a.id.cmp(&b.id));
    s.leads.sort_by(|a, b| a.id.cmp(&b.id));
    s.agenda_events.sort_by(|a, b| a.id.cmp(&b.id));
    s.download_categories.sort_by(|a, b| a.id.cmp(&b.id));
    s.downloads.sort_by(|a, b| a.id.cmp(&b.id));
    for p in &mut s.projects {
        p.members.sort_by(|a, b| a.user.cmp(&b.user));
    }
    for t in &mut s.tasks {
        t.members.sort_by(|a, b| a.user.cmp(&b.user));
    }
    for w in &mut s.wiki_pages {
        w.read_groups.sort();
        w.write_groups.sort();
    }
    for i in &mut s.inventory_items {
        i.companies.sort();
        i.users.sort();
    }
    for e in &mut s.agenda_events {
        e.groups.sort();
    }
    for c in &mut s.download_categories {
        c.groups.sort();
    }
    s
}

/// Serves `db` in full (every table, the dataset's clock) on 127.0.0.1:0
/// until the returned sender is dropped; a client once the first load is
/// published.
async fn serve_database(
    db: &Database,
    now: Option<ticket_authz::time::Timestamp>,
) -> (
    ticket_authz::grpc::pb::ticket_authz_client::TicketAuthzClient<tonic::transport::Channel>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), ticket_authz::serve::ServeError>>,
) {
    use ticket_authz::serve as server;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let source = db.clone();
    let loader: server::Loader = Box::pin(async move {
        let mut snap = source.snapshot().await.map_err(|e| e.to_string())?;
        snap.fix_now(now);
        Ok(snap)
    });
    let handle = tokio::spawn(server::run(
        server::ServeConfig::default(),
        server::Listeners::grpc(listener),
        async move {
            let _ = stopped.await;
        },
        loader,
        None,
    ));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = ticket_authz::grpc::pb::ticket_authz_client::TicketAuthzClient::new(channel);
    let started = std::time::Instant::now();
    // RPCs answer UNAVAILABLE until the first load is published.
    while c
        .get_visibility_filter(ticket_authz::grpc::pb::GetVisibilityFilterRequest {
            user_id: "nobody".to_owned(),
            min_revision: 0,
        })
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "never loaded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    (c, stop, handle)
}

#[tokio::test]
async fn every_section_scenario_imported_and_served_passes_over_grpc() {
    for (n, file) in common::section_scenario_files().iter().enumerate() {
        let loaded = dataset::load_file(file).unwrap();
        for (kind, db) in common::databases(&format!("sections_{n}")).await {
            let revision = db.import(&loaded.dataset, false).await.unwrap();
            // The sections come back as they went in (order aside).
            let back = db.load().await.unwrap();
            assert_eq!(
                canonical(back.dataset.sections.clone()),
                canonical(loaded.dataset.sections.clone()),
                "{kind}: {}: the sections changed on their way through the database",
                file.display()
            );
            // The ticket-cache mode's graph holds them too.
            let graph = db
                .load_scope(ticket_authz::db::LoadScope::Graph)
                .await
                .unwrap();
            assert_eq!(graph.dataset.sections, back.dataset.sections, "{kind}");
            eprintln!("{}: {kind}", file.display());
            let (mut c, stop, handle) = serve_database(&db, loaded.dataset.now).await;
            common::wire::conform(&mut c, file, &loaded, revision, &[1, 2, 7]).await;
            drop(stop);
            handle.await.unwrap().unwrap();
            db.close().await;
        }
    }
}

#[tokio::test]
async fn the_schema_rejects_bad_section_rows() {
    let file = common::section_scenario_files().remove(0);
    let loaded = dataset::load_file(&file).unwrap();
    for (kind, db) in common::databases("section_constraints").await {
        db.import(&loaded.dataset, false).await.unwrap();
        let setup = [
            "INSERT INTO projects (id, name) VALUES ('other', 'Other')",
            "INSERT INTO tasks (id, name, project_id) VALUES ('elsewhere', 'Elsewhere', 'other')",
        ];
        let refused = [
            // A parent in another project: the composite key refuses it.
            "INSERT INTO tasks (id, name, project_id, parent_id) VALUES ('x', 'X', 'move', 'elsewhere')",
            "UPDATE tasks SET parent_id = 'elsewhere' WHERE id = 'plan'",
            // Moving a task away from its subtasks.
            "UPDATE tasks SET project_id = 'other' WHERE id = 'plan'",
            "UPDATE tasks SET parent_id = id WHERE id = 'plan'",
            "INSERT INTO tasks (id, name, project_id) VALUES ('y', 'Y', 'nowhere')",
            "INSERT INTO projects (id, name) VALUES ('', 'Empty')",
            "INSERT INTO projects (id, name, owner_id) VALUES ('p', 'P', 'nobody')",
            "INSERT INTO project_members (project_id, user_id, role) VALUES ('move', 'ali', 'owner')",
            "INSERT INTO wiki_page_groups (wiki_page_id, group_id, access) VALUES ('welcome', 'it', 'admin')",
            "INSERT INTO wiki_page_groups (wiki_page_id, group_id, access) VALUES ('welcome', '*', 'read')",
            "INSERT INTO invoices (id) VALUES ('no-company')",
            "INSERT INTO inventory_item_companies (inventory_item_id, company_id) VALUES ('laptop', 'nowhere')",
            "INSERT INTO agenda_event_groups (agenda_event_id, group_id) VALUES ('party', 'nowhere')",
            "INSERT INTO downloads (id, name, category_id) VALUES ('d', 'D', 'nowhere')",
            // Deletes that would open a resource to more people: a page's
            // or category's last group, a lead's company.
            "DELETE FROM groups WHERE id = 'sales'",
            "DELETE FROM groups WHERE id = 'it-net'",
            "DELETE FROM companies WHERE id = 'rival'",
        ];
        let run = |sql: &'static str| {
            let db = db.clone();
            async move {
                match &db {
                    Database::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
                    Database::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop),
                }
            }
        };
        for sql in setup {
            run(sql).await.unwrap();
        }
        for sql in refused {
            assert!(run(sql).await.is_err(), "{kind}: accepted {sql}");
        }
        // A subtask goes with its parent; what else names a deleted
        // project, user or category goes or forgets it.
        run("DELETE FROM tasks WHERE id = 'plan'").await.unwrap();
        run("DELETE FROM users WHERE id = 'sam'").await.unwrap();
        run("DELETE FROM download_categories WHERE id = 'drivers'")
            .await
            .unwrap();
        let back = db.load().await.unwrap().dataset.sections;
        let tasks: Vec<&str> = back.tasks.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(tasks, ["elsewhere", "report"], "{kind}");
        let lead = back.leads.iter().find(|l| l.id == "sam-lead").unwrap();
        assert_eq!(lead.owner, None, "{kind}");
        assert!(
            back.downloads.iter().all(|d| d.category != "drivers"),
            "{kind}"
        );
        db.close().await;
    }
}
