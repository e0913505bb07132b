//! The ticket-cache mode's SQL lists and ticket limits against the
//! in-memory answers on the same data: every page of every user's visible
//! tickets (with filters drawn from the data) and the limit counts, on
//! SQLite and PostgreSQL, byte-order paging on a database whose default
//! collation is not C, and the `unchanged` flag across writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use ticket_authz::core::{self, TicketFilter};
use ticket_authz::dataset;
use ticket_authz::db::{Database, LimitCounts};
use ticket_authz::generate::{Spec, generate};
use ticket_authz::model::{Dataset, Status};
use ticket_authz::snapshot::Snapshot;
use ticket_authz::time::{LIMIT_WINDOW, Timestamp};

const PAGE_SIZES: [usize; 3] = [1, 2, 7];

/// Filters drawn from the data: none, the busiest organisation and group,
/// open statuses, the three together, and ids no ticket has.
fn filters(data: &Dataset) -> Vec<TicketFilter> {
    fn busiest<'a>(values: impl Iterator<Item = &'a str>) -> Option<String> {
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for v in values {
            *counts.entry(v).or_default() += 1;
        }
        counts
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(v, _)| v.to_owned())
    }
    let org = busiest(
        data.tickets
            .iter()
            .filter_map(|t| t.organisation.as_deref()),
    );
    let group = busiest(data.tickets.iter().filter_map(|t| t.group.as_deref()));
    let open = vec![Status::Open, Status::New];
    let mut out = vec![
        TicketFilter::default(),
        TicketFilter {
            statuses: open.clone(),
            ..TicketFilter::default()
        },
        TicketFilter {
            organisation: Some("no-such-organisation".into()),
            ..TicketFilter::default()
        },
    ];
    if org.is_some() {
        out.push(TicketFilter {
            organisation: org.clone(),
            ..TicketFilter::default()
        });
    }
    if group.is_some() {
        out.push(TicketFilter {
            group: group.clone(),
            ..TicketFilter::default()
        });
    }
    out.push(TicketFilter {
        organisation: org,
        group,
        statuses: open,
    });
    out
}

/// Walks every page of `user`'s visible tickets at `size` from the
/// database and from the snapshot, page by page.
async fn walk(
    kind: &str,
    db: &Database,
    snap: &Snapshot,
    user: &str,
    f: &TicketFilter,
    size: usize,
) {
    let plan = core::visibility_filter(snap, user);
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let got = db
            .visible_ticket_page(&plan, f, after.as_deref(), size, snap.revision())
            .await
            .unwrap_or_else(|e| panic!("{kind}: {user} {f:?}: {e}"));
        let want = core::visible_tickets_after(snap, user, f, after.as_deref(), size);
        assert_eq!(
            got.value, want,
            "{kind}: user {user}, filter {f:?}, size {size}, after {after:?}"
        );
        assert!(got.unchanged, "{kind}: nothing was written since the load");
        assert_eq!(got.revision, snap.revision(), "{kind}");
        let (ids, more) = got.value;
        if !more {
            break;
        }
        after = ids.last().cloned();
        pages += 1;
        assert!(pages < 100_000, "{kind}: paging does not end");
    }
}

async fn compare_lists(kind: &str, db: &Database, snap: &Snapshot, users: &[&str], data: &Dataset) {
    for f in filters(data) {
        for user in users {
            for size in PAGE_SIZES {
                walk(kind, db, snap, user, &f, size).await;
            }
        }
    }
}

/// Windows around the data's clock and around ticket creation times, to
/// the nanosecond on both sides.
fn windows(data: &Dataset, group: &str) -> Vec<(Timestamp, Timestamp)> {
    let now = data.now.unwrap_or_else(Timestamp::now);
    let mut out = vec![
        (now.minus_limit_window(), now),
        (
            Timestamp::from_nanos(0),
            Timestamp::from_nanos(i64::MAX / 2),
        ),
    ];
    let ns = Timestamp::from_nanos;
    for t in data
        .tickets
        .iter()
        .filter(|t| t.group.as_deref() == Some(group))
        .take(6)
    {
        let at = t.created_at.nanos();
        out.extend([
            (t.created_at, t.created_at),
            (ns(at + 1), ns(at + LIMIT_WINDOW)),
            (ns(at - LIMIT_WINDOW), ns(at - 1)),
            (ns(at - 500_000_000), ns(at + 500_000_000)),
            (ns(at - 999), ns(at + 999)),
            (ns(at + 1), ns(at - 1)),
        ]);
    }
    out
}

async fn compare_limits(kind: &str, db: &Database, snap: &Snapshot, data: &Dataset) {
    let mut compared = 0;
    for g in &data.groups {
        let mut requesters: Vec<Option<&str>> = vec![None];
        for t in data
            .tickets
            .iter()
            .filter(|t| t.group.as_ref() == Some(&g.id))
        {
            if !requesters.contains(&Some(t.requester.as_str())) && requesters.len() < 6 {
                requesters.push(Some(&t.requester));
            }
        }
        for requester in requesters {
            for (from, to) in windows(data, &g.id) {
                let got = db
                    .ticket_limit_counts(&g.id, requester, from, to, snap.revision())
                    .await
                    .unwrap_or_else(|e| panic!("{kind}: {}: {e}", g.id));
                let count =
                    |open| snap.limit_count(&g.id, requester, open, from, to).unwrap() as u64;
                let want = LimitCounts {
                    total: count(false),
                    open: count(true),
                };
                assert_eq!(
                    got.value, want,
                    "{kind}: group {}, requester {requester:?}, [{from}, {to}]",
                    g.id
                );
                assert!(got.unchanged, "{kind}");
                compared += 1;
            }
        }
    }
    assert!(
        compared > 0 || data.groups.is_empty(),
        "{kind}: no limit compared"
    );
}

/// Imports `data` into every database kind and compares lists (for every
/// user, or every `step`-th) and limits with the snapshot loaded back.
async fn compare_everything(name: &str, data: &Dataset, step: usize) {
    for (kind, db) in common::databases(name).await {
        db.import(data, true).await.unwrap();
        let snap = db.snapshot().await.unwrap();
        let users: Vec<&str> = data
            .users
            .iter()
            .step_by(step)
            .map(|u| u.id.as_str())
            .chain(["no-such-user"])
            .collect();
        compare_lists(&kind, &db, &snap, &users, data).await;
        compare_limits(&kind, &db, &snap, data).await;
        db.close().await;
    }
}

#[tokio::test]
async fn sql_pages_and_limits_equal_memory_on_generated_data() {
    for seed in [1, 2] {
        let data = generate(&Spec {
            users: 60,
            organisations: 6,
            companies: 4,
            groups: 6,
            profiles: 4,
            tickets: 240,
            seed,
        });
        compare_everything(&format!("cached_gen{seed}"), &data, 2).await;
    }
}

#[tokio::test]
async fn sql_pages_and_limits_equal_memory_on_every_shared_scenario() {
    for (i, file) in common::scenario_files().into_iter().enumerate() {
        let loaded = dataset::load_file(&file).unwrap();
        compare_everything(&format!("cached_scn{i}"), &loaded.dataset, 1).await;
    }
}

/// Ids whose byte order differs from en-US order: case, `-` and `_`,
/// digits against letters, non-ASCII; tickets reached by every relation.
const BYTE_ORDER_DATA: &str = r#"
now: 2026-06-01T00:00:00Z
organisations:
  - { id: org, name: Org, ticket_access: view_all }
companies:
  - { id: co, name: Co }
groups:
  - { id: g, name: G }
profiles:
  - { id: reader, name: Reader, flags: [IR] }
users:
  - { id: root, created_at: 2025-01-01T00:00:00Z, kind: superadmin }
  - { id: cust, created_at: 2025-01-01T00:00:00Z, company: co, organisations: [org] }
  - { id: other, created_at: 2025-01-01T00:00:00Z }
  - { id: agent, created_at: 2025-01-01T00:00:00Z, kind: agent, company: co, company_scoped: true, grants: [ { profile: reader, group: g } ] }
  - { id: wide, created_at: 2025-01-01T00:00:00Z, kind: agent, company: co, company_scoped: true, grants: [ { profile: reader, group: "*" } ] }
  - { id: grp, created_at: 2025-01-01T00:00:00Z, kind: agent, grants: [ { profile: reader, group: g } ] }
tickets:
  - { id: a, created_at: 2026-03-01T10:00:00Z, requester: cust, organisation: org, group: g, status: open }
  - { id: B, created_at: 2026-03-01T10:00:00.9996Z, requester: other, assignee: cust, group: g, status: new }
  - { id: b, created_at: 2026-03-01T10:00:01Z, requester: other, ccs: [cust], group: g, status: closed }
  - { id: A, created_at: 2026-03-01T10:00:00.123456789Z, requester: other, participants: [cust], group: g, status: pending }
  - { id: t-1, created_at: 2026-03-01T09:59:59.9999999Z, requester: cust, group: g, status: solved }
  - { id: t_1, created_at: 2025-06-01T00:00:00Z, requester: cust, organisation: org, status: open }
  - { id: t1, created_at: 2025-06-01T00:00:00.000001Z, requester: cust, group: g, status: open }
  - { id: T2, created_at: 2025-06-02T00:00:00Z, requester: other, organisation: org, group: g, status: on_hold }
  - { id: "10", created_at: 2026-01-01T00:00:00Z, requester: cust, status: open }
  - { id: "9", created_at: 2026-01-01T00:00:00Z, requester: other, group: g, status: open }
  - { id: é, created_at: 2026-01-01T00:00:00Z, requester: cust, group: g, status: open }
  - { id: e, created_at: 2026-01-01T00:00:00Z, requester: other, organisation: org, status: open }
  - { id: _x, created_at: 2026-01-01T00:00:00Z, requester: cust, group: g, status: open }
  - { id: "-x", created_at: 2026-01-01T00:00:00Z, requester: cust, organisation: org, group: g, status: open }
  - { id: z, created_at: 2026-01-01T00:00:00Z, requester: other, status: open }
  - { id: Z, created_at: 2026-01-01T00:00:00Z, requester: cust, group: g, status: new }
"#;

/// Tickets written as SQL with offsets in their times, which SQLite keeps
/// as written: the limits must compare them as instants.
const OFFSET_TICKETS: &str = "INSERT INTO tickets (id, created_at, requester_id, group_id, status) VALUES \
     ('off-1', '2026-03-01T11:00:00.9996+01:00', 'cust', 'g', 'open'), \
     ('off-2', '2026-03-01T05:00:01-05:00', 'other', 'g', 'closed'), \
     ('Off-3', '2026-03-01T10:30:00.5+00:30', 'cust', 'g', 'new')";

async fn execute(db: &Database, sql: &'static str) {
    match db {
        Database::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
        Database::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A fresh PostgreSQL database whose default collation is ICU en-US, so
/// that text sorts as people read it, not by bytes.
async fn en_us_database(name: &str) -> Option<Database> {
    let url = common::pg_database(name).await?;
    let admin = std::env::var("DATABASE_URL").unwrap();
    let db = url
        .rsplit_once('/')
        .map(|(_, db)| db.split('?').next().unwrap().to_owned())
        .unwrap();
    let pool = sqlx::PgPool::connect(&admin).await.unwrap();
    // The name is a test name and a process id: safe to splice.
    for sql in [
        format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        format!(
            "CREATE DATABASE {db} TEMPLATE template0 LOCALE_PROVIDER icu \
             ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        ),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    let db = Database::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    Some(db)
}

#[tokio::test]
async fn pages_are_in_byte_order_where_the_default_collation_is_not_c() {
    let data = dataset::load_str("byte-order.yaml", BYTE_ORDER_DATA)
        .unwrap()
        .dataset;
    let mut dbs: Vec<(String, Database)> = common::databases("cached_bytes_sqlite")
        .await
        .into_iter()
        .filter(|(kind, _)| kind == "sqlite")
        .collect();
    if let Some(db) = en_us_database("cached_bytes_icu").await {
        // The premise: this database's own order is not byte order.
        let Database::Postgres(pool) = &db else {
            unreachable!()
        };
        let sorted: Vec<String> =
            sqlx::query_scalar("SELECT x FROM unnest(ARRAY['a', 'B', '_x', '-x']) x ORDER BY x")
                .fetch_all(pool)
                .await
                .unwrap();
        assert_ne!(
            sorted,
            ["-x", "B", "_x", "a"],
            "the database sorts by bytes"
        );
        dbs.push(("postgres en-US".to_owned(), db));
    }
    for (kind, db) in dbs {
        db.import(&data, true).await.unwrap();
        execute(&db, OFFSET_TICKETS).await;
        let snap = db.snapshot().await.unwrap();
        let mut every: Vec<&str> = snap_ids(&data);
        every.extend(["off-1", "off-2", "Off-3"]);
        every.sort_unstable();
        let root = core::visibility_filter(&snap, "root");
        let all = db
            .visible_ticket_page(&root, &TicketFilter::default(), None, 100, snap.revision())
            .await
            .unwrap();
        assert_eq!(
            all.value,
            (every.iter().map(|s| s.to_string()).collect(), false),
            "{kind}"
        );
        let users: Vec<&str> = data.users.iter().map(|u| u.id.as_str()).collect();
        compare_lists(&kind, &db, &snap, &users, &data).await;
        for (from, to) in [
            ("2026-03-01T10:00:00Z", "2026-03-01T10:00:00.9996Z"),
            (
                "2026-03-01T10:00:00.000000001Z",
                "2026-03-01T10:00:00.9995999Z",
            ),
            ("2026-03-01T10:00:00.9996Z", "2026-03-01T10:00:01Z"),
            ("2026-03-01T10:00:00.123456Z", "2026-03-01T10:00:00.123457Z"),
            ("2026-03-01T10:00:00.1234571Z", "2026-03-01T10:00:00.9999Z"),
            ("2026-03-01T09:59:59Z", "2026-03-01T10:00:00Z"),
            ("2025-06-01T00:00:00.000001Z", "2026-06-01T00:00:00Z"),
        ] {
            let (from, to): (Timestamp, Timestamp) = (from.parse().unwrap(), to.parse().unwrap());
            for requester in [None, Some("cust"), Some("other")] {
                let got = db
                    .ticket_limit_counts("g", requester, from, to, snap.revision())
                    .await
                    .unwrap();
                let count = |open| snap.limit_count("g", requester, open, from, to).unwrap() as u64;
                assert_eq!(
                    got.value,
                    LimitCounts {
                        total: count(false),
                        open: count(true)
                    },
                    "{kind}: {requester:?} [{from}, {to}]"
                );
            }
        }
        compare_limits(&kind, &db, &snap, &data).await;
        db.close().await;
    }
}

fn snap_ids(data: &Dataset) -> Vec<&str> {
    data.tickets.iter().map(|t| t.id.as_str()).collect()
}

#[tokio::test]
async fn unchanged_is_false_across_a_write_and_true_at_the_new_revision() {
    let data = dataset::load_str("byte-order.yaml", BYTE_ORDER_DATA)
        .unwrap()
        .dataset;
    let writes: [&'static str; 4] = [
        "UPDATE tickets SET status = 'closed' WHERE id = 'a'",
        "INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('z', 'cust')",
        "INSERT INTO ticket_participants (ticket_id, user_id) VALUES ('e', 'grp')",
        "UPDATE users SET company_id = NULL WHERE id = 'other'",
    ];
    for (kind, db) in common::databases("cached_unchanged").await {
        db.import(&data, true).await.unwrap();
        for write in writes {
            let before = db.snapshot().await.unwrap();
            execute(&db, write).await;
            let after = db.snapshot().await.unwrap();
            assert!(after.revision() > before.revision(), "{kind}: {write}");
            for (user, f) in [
                ("cust", TicketFilter::default()),
                ("root", TicketFilter::default()),
                (
                    "wide",
                    TicketFilter {
                        statuses: vec![Status::Open],
                        ..TicketFilter::default()
                    },
                ),
            ] {
                let plan = core::visibility_filter(&after, user);
                let stale = db
                    .visible_ticket_page(&plan, &f, None, 5, before.revision())
                    .await
                    .unwrap();
                assert!(!stale.unchanged, "{kind}: {write}: {user}");
                assert_eq!(stale.revision, after.revision(), "{kind}: {write}");
                let fresh = db
                    .visible_ticket_page(&plan, &f, None, 5, after.revision())
                    .await
                    .unwrap();
                assert!(fresh.unchanged, "{kind}: {write}: {user}");
                assert_eq!(
                    fresh.value,
                    core::visible_tickets_after(&after, user, &f, None, 5),
                    "{kind}: {write}: {user}"
                );
            }
            let from: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
            let to: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
            let stale = db
                .ticket_limit_counts("g", None, from, to, before.revision())
                .await
                .unwrap();
            assert!(!stale.unchanged, "{kind}: {write}");
            let fresh = db
                .ticket_limit_counts("g", None, from, to, after.revision())
                .await
                .unwrap();
            assert!(fresh.unchanged, "{kind}: {write}");
            assert_eq!(
                fresh.value.open,
                after.limit_count("g", None, true, from, to).unwrap() as u64,
                "{kind}: {write}"
            );
        }
        db.close().await;
    }
}

/// A hand-built filter with several group clauses (which
/// `visibility_filter` never renders) selects what its definition says.
#[tokio::test]
async fn every_clause_of_a_hand_built_filter_is_applied() {
    use ticket_authz::core::{GroupClause, VisibilityFilter};
    let data = dataset::load_str("byte-order.yaml", BYTE_ORDER_DATA)
        .unwrap()
        .dataset;
    let plans = [
        VisibilityFilter {
            user_id: Some("cust".into()),
            ..VisibilityFilter::default()
        },
        VisibilityFilter {
            organisation_ids: vec!["org".into()],
            group_clauses: vec![
                GroupClause {
                    group_ids: vec!["g".into()],
                    any_group: false,
                    requester_company_id: Some("co".into()),
                },
                GroupClause {
                    group_ids: Vec::new(),
                    any_group: true,
                    requester_company_id: Some("no-such-company".into()),
                },
            ],
            ..VisibilityFilter::default()
        },
        VisibilityFilter {
            user_id: Some("other".into()),
            group_clauses: vec![
                GroupClause {
                    group_ids: Vec::new(),
                    any_group: true,
                    requester_company_id: Some("co".into()),
                },
                GroupClause {
                    group_ids: vec!["g".into()],
                    any_group: false,
                    requester_company_id: None,
                },
            ],
            ..VisibilityFilter::default()
        },
    ];
    let company = |user: &str| {
        data.users
            .iter()
            .find(|u| u.id == user)
            .and_then(|u| u.company.clone())
    };
    for (kind, db) in common::databases("cached_clauses").await {
        db.import(&data, true).await.unwrap();
        let revision = db.revision().await.unwrap();
        for plan in &plans {
            let mut want: Vec<String> = data
                .tickets
                .iter()
                .filter(|t| {
                    let user = plan.user_id.as_deref();
                    let mine = user.is_some_and(|u| {
                        t.requester == u
                            || t.assignee.as_deref() == Some(u)
                            || t.ccs.iter().any(|c| c == u)
                            || t.participants.iter().any(|p| p == u)
                    });
                    let org = t
                        .organisation
                        .as_ref()
                        .is_some_and(|o| plan.organisation_ids.contains(o));
                    let group = plan.group_clauses.iter().any(|g| {
                        (g.any_group || t.group.as_ref().is_some_and(|x| g.group_ids.contains(x)))
                            && g.requester_company_id
                                .as_ref()
                                .is_none_or(|c| company(&t.requester).as_ref() == Some(c))
                    });
                    mine || org || group
                })
                .map(|t| t.id.clone())
                .collect();
            want.sort_unstable();
            let mut got = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = db
                    .visible_ticket_page(
                        plan,
                        &TicketFilter::default(),
                        after.as_deref(),
                        2,
                        revision,
                    )
                    .await
                    .unwrap();
                let (ids, more) = page.value;
                got.extend(ids);
                if !more {
                    break;
                }
                after = got.last().cloned();
            }
            assert_eq!(got, want, "{kind}: {plan:?}");
            assert!(!want.is_empty(), "{kind}: {plan:?} selects nothing");
        }
        db.close().await;
    }
}
