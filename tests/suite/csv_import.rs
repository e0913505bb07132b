//! `import-csv` on SQLite and a real PostgreSQL: each export format lands
//! in decisions (over gRPC too), invalid files change nothing and name
//! file, line and column, re-imports record no revision, BOM, `;`, quoted
//! fields, organisation names, the header-less service-desk form, and
//! passwords that reach neither the database nor the output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use ticket_authz::core::{Action, Reason};
use ticket_authz::csv_import::{
    self, CsvError, Format, GlobalProfile, Level, Options, Progress, Report, RowGrant,
};
use ticket_authz::db::Database;
use ticket_authz::grpc::convert::{action_code, reason_code};
use ticket_authz::grpc::pb;
use ticket_authz::grpc::pb::ticket_authz_client::TicketAuthzClient;
use ticket_authz::model::{OrgAccess, User, UserAccess, UserKind};
use ticket_authz::serve::{self as server, Listeners, ServeConfig};
use ticket_authz::serve_cmd::database_loader;
use ticket_authz::snapshot::Snapshot;
use ticket_authz::time::Timestamp;

/// Writes `content` as `name` in a directory of this test's own.
fn csv(test: &str, name: &str, content: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ticket-authz-csv-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

async fn import(db: &Database, path: &Path, options: &Options) -> Result<Report, CsvError> {
    csv_import::import_file(db, path, options, &Progress::hidden()).await
}

async fn import_ok(db: &Database, path: &Path, format: Format) -> Report {
    import(db, path, &Options::new(format))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn exec(db: &Database, sql: &'static str) {
    match db {
        Database::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
        Database::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
    }
    .unwrap();
}

async fn snapshot(db: &Database) -> Snapshot {
    db.snapshot().await.unwrap()
}

async fn user(db: &Database, id: &str) -> User {
    let data = db.load().await.unwrap().dataset;
    data.users
        .into_iter()
        .find(|u| u.id == id)
        .unwrap_or_else(|| panic!("no user {id}"))
}

fn view(snap: &Snapshot, user: &str, ticket: &str) -> (bool, Reason) {
    let d = common::decide(snap, common::ask(user, Action::View, &[("ticket", ticket)])).unwrap();
    (d.allowed, d.reason)
}

fn demo() -> ticket_authz::dataset::Loaded {
    ticket_authz::dataset::load_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.yaml"),
    )
    .unwrap()
}

fn problems(err: CsvError) -> String {
    match err {
        e @ CsvError::Invalid { .. } => e.to_string(),
        other => panic!("expected problems, got {other}"),
    }
}

const ORGANISATIONS: &str = "name,id,domain_names,shared_tickets,shared_comments
Acme,acme,acme.example,false,false
Globex,globex,globex.example GLOBEX.co.uk,true,false
Initech,initech,,yes,yes
";

const USERS: &str = "name,email,external_id,role,restriction,organization
Ann Lee,ann@acme.example,ann,end-user,organization,Acme
Bob Ray,bob@acme.example,bob,end-user,requested,acme
Carl Moe,carl@globex.example,,end-user,,
Greta Ho,greta@globex.example,greta,,,
";

/// Tickets by the imported users, written as a ticketing system would.
async fn tickets(db: &Database) {
    exec(db, "INSERT INTO tickets (id, created_at, requester_id, organisation_id) VALUES ('t1', '2026-01-01T00:00:00Z', 'bob', 'acme'), ('t2', '2026-01-01T00:00:00Z', 'carl@globex.example', 'globex'), ('t3', '2026-01-01T00:00:00Z', 'ann', 'acme')").await;
}

/// Serves `db` on 127.0.0.1:0 and asks: ann's visible tickets, and
/// whether bob may view t3.
async fn over_grpc(db: &Database) -> (Vec<String>, pb::CheckAccessResponse) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(server::run(
        ServeConfig::default(),
        Listeners::grpc(listener),
        async move {
            let _ = stopped.await;
        },
        database_loader(db.clone()),
        None,
    ));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = TicketAuthzClient::new(channel);
    let started = Instant::now();
    // RPCs answer UNAVAILABLE until the first load is published.
    let visible = loop {
        match client
            .list_visible_tickets(pb::ListVisibleTicketsRequest {
                user_id: "ann".to_owned(),
                page_size: 100,
                ..Default::default()
            })
            .await
        {
            Ok(r) => break r.into_inner().ticket_ids,
            Err(s) if s.code() == tonic::Code::Unavailable => {
                assert!(started.elapsed() < Duration::from_secs(10), "never loaded");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(s) => panic!("{s}"),
        }
    };
    let bob = client
        .check_access(pb::CheckAccessRequest {
            user_id: "bob".to_owned(),
            action: action_code(Action::View),
            ticket_id: "t3".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let _ = stop.send(());
    running.await.unwrap().unwrap();
    (visible, bob)
}

#[tokio::test]
async fn portal_exports_round_trip_into_decisions_over_grpc() {
    let orgs = csv("portal", "organisations.csv", ORGANISATIONS.as_bytes());
    let users = csv("portal", "users.csv", USERS.as_bytes());
    for (kind, db) in common::databases("csv_portal").await {
        let before = Timestamp::now();
        let report = import_ok(&db, &orgs, Format::PortalOrganisations).await;
        assert_eq!(
            (report.rows, report.new, report.changed),
            (3, 3, 0),
            "{kind}"
        );
        let report = import_ok(&db, &users, Format::PortalUsers).await;
        assert_eq!((report.rows, report.new), (4, 4), "{kind}");
        assert!(report.written && !report.bulk, "{kind}");
        tickets(&db).await;

        let data = db.load().await.unwrap().dataset;
        let access: Vec<(&str, OrgAccess)> = data
            .organisations
            .iter()
            .map(|o| (o.id.as_str(), o.ticket_access))
            .collect();
        assert_eq!(
            access,
            [
                ("acme", OrgAccess::Own),
                ("globex", OrgAccess::ViewAll),
                ("initech", OrgAccess::CommentAll)
            ],
            "{kind}: shared_tickets/shared_comments → ticket_access"
        );
        let globex = &data.organisations[1];
        let domains: Vec<&str> = globex.domains.iter().map(|d| d.domain.as_str()).collect();
        assert_eq!(domains, ["globex.co.uk", "globex.example"], "{kind}");
        assert!(
            globex
                .domains
                .iter()
                .all(|d| d.added_at >= Timestamp::from_nanos(before.nanos() - 1_000_000_000))
        );

        let ann = user(&db, "ann").await;
        assert_eq!(ann.ticket_access, UserAccess::Organisation, "{kind}");
        assert_eq!(ann.organisations, ["acme"], "{kind}: by name");
        assert_eq!(ann.default_organisation.as_deref(), Some("acme"), "{kind}");
        assert!(
            ann.created_at.nanos() >= before.nanos() - 1_000_000_000,
            "{kind}"
        );
        // Without external_id the email is the id; no organisation column
        // value: no explicit membership, the domain decides.
        let carl = user(&db, "carl@globex.example").await;
        assert!(carl.organisations.is_empty(), "{kind}");
        assert_eq!(carl.kind, UserKind::EndUser, "{kind}");

        let snap = snapshot(&db).await;
        assert_eq!(
            view(&snap, "ann", "t1"),
            (true, Reason::Organisation),
            "{kind}"
        );
        assert!(!view(&snap, "bob", "t3").0, "{kind}: bob sees his own only");
        // Greta joined Globex by domain (created after it was added) and
        // Globex shares tickets.
        assert_eq!(
            view(&snap, "greta", "t2"),
            (true, Reason::Organisation),
            "{kind}"
        );

        let (visible, bob) = over_grpc(&db).await;
        assert_eq!(visible, ["t1", "t3"], "{kind}: ann's tickets over gRPC");
        assert!(!bob.allowed, "{kind}");
        assert_eq!(bob.reason, reason_code(Reason::NoMatchingRule), "{kind}");
        db.close().await;
    }
}

const ITSM: &str = "id_user,password,real_name,email,telephone,description,avatar,disabled,id_company,num_employee,enable_login,shift,badge
dana,Tr0ub4dor&3,Dana Scott,dana@it.example,555-0101,\"Hardware, desks\",,0,northwind-group,E1,1,day,B1
eli,Tr0ub4dor&3,Eli Moss,,555-0102,,,no,0,E2,0,night,B2
gil,Tr0ub4dor&3,Gil Roy,gil@it.example,,,,YES,contoso-hq,E3,true,,
";

fn itsm_options(grant: bool) -> Options {
    Options {
        grant: grant.then(|| RowGrant {
            profile: "first-line".to_owned(),
            group: "hardware".to_owned(),
        }),
        global_profile: Some(GlobalProfile::Standard),
        ..Options::new(Format::ItsmUsers)
    }
}

#[tokio::test]
async fn itsm_users_get_kind_company_suspension_and_the_forms_grant() {
    let file = csv("itsm", "users.csv", ITSM.as_bytes());
    for (kind, db) in common::databases("csv_itsm").await {
        db.import(&demo().dataset, false).await.unwrap();
        let report = import(&db, &file, &itsm_options(true)).await.unwrap();
        assert_eq!((report.rows, report.new), (3, 3), "{kind}");
        let notices: Vec<String> = report
            .notes
            .iter()
            .filter(|n| n.level == Level::Notice)
            .map(|n| format!("{}: {}", n.place, n.message))
            .collect();
        assert!(
            notices
                .iter()
                .any(|n| n.starts_with("2:12 (shift): custom fields")),
            "{kind}: {notices:?}"
        );
        assert!(
            notices
                .iter()
                .any(|n| n.starts_with("3:11 (enable_login): enable_login=0 on 1 row(s)")),
            "{kind}: {notices:?}"
        );

        let dana = user(&db, "dana").await;
        assert_eq!(dana.kind, UserKind::Agent, "{kind}: standard → agent");
        assert_eq!(dana.company.as_deref(), Some("northwind-group"), "{kind}");
        assert_eq!(dana.name.as_deref(), Some("Dana Scott"), "{kind}");
        assert_eq!(dana.grants.len(), 1, "{kind}");
        let eli = user(&db, "eli").await;
        assert_eq!(eli.email, None, "{kind}: empty email allowed");
        assert_eq!(eli.company, None, "{kind}: company 0 is none");
        assert!(!eli.suspended, "{kind}: enable_login=0 is not a suspension");
        assert!(
            user(&db, "gil").await.suspended,
            "{kind}: disabled → suspended"
        );

        let snap = snapshot(&db).await;
        // Ticket 1001 is in hardware: the form's grant gives IR there.
        assert_eq!(
            view(&snap, "dana", "1001"),
            (true, Reason::GroupFlag),
            "{kind}"
        );
        assert_eq!(
            view(&snap, "eli", "1001"),
            (true, Reason::GroupFlag),
            "{kind}"
        );
        assert_eq!(
            view(&snap, "gil", "1001"),
            (false, Reason::Suspended),
            "{kind}"
        );

        // External: end-users, and their grant gives no flags.
        let options = Options {
            global_profile: Some(GlobalProfile::External),
            ..itsm_options(true)
        };
        let report = import(&db, &file, &options).await.unwrap();
        assert_eq!((report.new, report.changed), (0, 3), "{kind}");
        let snap = snapshot(&db).await;
        assert_eq!(user(&db, "dana").await.kind, UserKind::EndUser, "{kind}");
        assert!(!view(&snap, "dana", "1001").0, "{kind}");
        db.close().await;
    }
}

#[tokio::test]
async fn the_header_less_itsm_form_imports_like_the_one_with_a_header() {
    let with = csv("headerless", "with.csv", ITSM.as_bytes());
    let body = ITSM.split_once('\n').unwrap().1;
    let without = csv("headerless", "without.csv", body.as_bytes());
    for (kind, db) in common::databases("csv_headerless").await {
        db.import(&demo().dataset, false).await.unwrap();
        let first = import(&db, &without, &itsm_options(true)).await.unwrap();
        assert_eq!((first.rows, first.new), (3, 3), "{kind}");
        assert!(
            first
                .notes
                .iter()
                .any(|n| n.place.to_string() == "1:12 (column 12)"),
            "{kind}: custom fields are numbered without a header: {:?}",
            first.notes
        );
        let again = import(&db, &with, &itsm_options(true)).await.unwrap();
        assert_eq!(
            (again.rows, again.new, again.changed, again.unchanged),
            (3, 0, 0, 3),
            "{kind}: the same rows with a header change nothing"
        );
        db.close().await;
    }
}

#[tokio::test]
async fn invalid_files_change_nothing_and_name_file_line_and_column() {
    let users = csv(
        "invalid",
        "users.csv",
        b"name,email,external_id,role,restriction,organization
Ann,ann@acme.example,ann,end-user,organization,acme
Bob,bob@,bob,end-user,,
Cy,cy@acme.example,cy,owner,,
Di,di@acme.example,di,end-user,everything,nowhere
Ann again,ann2@acme.example,ann,,,
,,,end-user,,
Ed,ed@acme.example,ed,end-user
",
    );
    let itsm = csv(
        "invalid",
        "itsm.csv",
        b"u1,secret-one,User One,u1@it.example,,,,maybe,northwind-group,,1
u2,secret-two,User Two,u2@it.example,,,,0,initrode,,1
u3,secret-three,User Three
",
    );
    let header = csv(
        "invalid",
        "header.csv",
        b"id_user,real_name,password,email,telephone,description,avatar,disabled,id_company,num_employee,enable_login\n",
    );
    let orgs = csv(
        "invalid",
        "orgs.csv",
        b"name,id,domain_names,shared_tickets\nAcme,acme,acme.example bad_domain acme.example,sometimes\n,x,,\n",
    );
    for (kind, db) in common::databases("csv_invalid").await {
        db.import(&demo().dataset, false).await.unwrap();
        exec(
            &db,
            "INSERT INTO organisations (id, name) VALUES ('acme', 'Acme')",
        )
        .await;
        let revision = db.revision().await.unwrap();
        let cases: [(&PathBuf, Options, &[&str]); 4] = [
            (
                &users,
                Options::new(Format::PortalUsers),
                &[
                    "3:2 (email): `bob@` is not an email address (local@domain)",
                    "4:4 (role): unknown role `owner`, expected end-user, agent or admin",
                    "5:5 (restriction): unknown restriction `everything`, expected requested or organization",
                    "5:6 (organization): unknown organisation `nowhere` (neither an id nor a name)",
                    "6:3 (external_id): id `ann` is also on line 2",
                    "7:3 (external_id): external_id or email is required: it is the user id",
                    "8: the row has 4 fields, the header 6",
                    "7 problems; nothing was written",
                ],
            ),
            (
                &itsm,
                itsm_options(false),
                &[
                    "1:8 (disabled): `maybe` is not a boolean (0/1, true/false or yes/no)",
                    "2:9 (id_company): unknown company `initrode`",
                    "3: the row has 3 fields; itsm-users rows have at least 11",
                ],
            ),
            (
                &header,
                itsm_options(false),
                &[
                    "1:2 (password): header says `real_name` where `password` belongs",
                    "1:3 (real_name): header says `password` where `real_name` belongs",
                ],
            ),
            (
                &orgs,
                Options::new(Format::PortalOrganisations),
                &[
                    "2:3 (domain_names): `bad_domain` is not a domain name",
                    "2:3 (domain_names): `acme.example` is listed twice",
                    "2:4 (shared_tickets): `sometimes` is not a boolean",
                    "3:1 (name): must not be empty",
                ],
            ),
        ];
        for (path, options, expected) in cases {
            let text = problems(import(&db, path, &options).await.unwrap_err());
            for line in expected {
                let wanted = format!("{}:{line}", path.display());
                let wanted = if line.ends_with("nothing was written") {
                    format!("{}: {line}", path.display())
                } else {
                    wanted
                };
                assert!(
                    text.contains(&wanted),
                    "{kind}: missing `{wanted}` in\n{text}"
                );
            }
            assert!(!text.contains("secret"), "{kind}: a password in\n{text}");
            // The valid rows of the file were not written either.
            let dry = Options {
                dry_run: true,
                ..options
            };
            assert!(import(&db, path, &dry).await.is_err(), "{kind}");
        }
        assert_eq!(db.revision().await.unwrap(), revision, "{kind}");
        let data = db.load().await.unwrap().dataset;
        assert!(
            !data.users.iter().any(|u| u.id == "ann" || u.id == "u1"),
            "{kind}"
        );
        db.close().await;
    }
}

#[tokio::test]
async fn reimporting_an_unchanged_file_records_no_revision() {
    let orgs = csv("noop", "organisations.csv", ORGANISATIONS.as_bytes());
    let users = csv("noop", "users.csv", USERS.as_bytes());
    let itsm = csv("noop", "itsm.csv", ITSM.as_bytes());
    for (kind, db) in common::databases("csv_noop").await {
        db.import(&demo().dataset, false).await.unwrap();
        let files: [(&PathBuf, Options); 3] = [
            (&orgs, Options::new(Format::PortalOrganisations)),
            (&users, Options::new(Format::PortalUsers)),
            (&itsm, itsm_options(true)),
        ];
        for (path, options) in files {
            let first = import(&db, path, &options).await.unwrap();
            assert!(first.written, "{kind}: {}", path.display());
            let revision = db.revision().await.unwrap();
            assert_eq!(first.revision, revision, "{kind}");
            let again = import(&db, path, &options).await.unwrap();
            assert!(!again.written, "{kind}: {}", path.display());
            assert_eq!((again.new, again.changed), (0, 0), "{kind}");
            assert_eq!(again.unchanged, first.rows, "{kind}");
            assert_eq!(
                db.revision().await.unwrap(),
                revision,
                "{kind}: {}",
                path.display()
            );
        }
        // The bulk path: one revision for the whole write, and again none
        // for an unchanged file.
        let bulk = Options {
            bulk_threshold: 0,
            ..itsm_options(false)
        };
        exec(&db, "DELETE FROM users WHERE id IN ('dana', 'eli', 'gil')").await;
        let before = db.revision().await.unwrap();
        let report = import(&db, &itsm, &bulk).await.unwrap();
        assert!(report.bulk, "{kind}");
        match &db {
            Database::Sqlite(_) => assert_eq!(report.revision, before + 1, "{kind}"),
            // Revisions are numbered at commit; one transaction, one number.
            Database::Postgres(_) => assert!(report.revision > before, "{kind}"),
        }
        let again = import(&db, &itsm, &bulk).await.unwrap();
        assert_eq!(again.revision, report.revision, "{kind}");
        db.close().await;
    }
}

#[tokio::test]
async fn bom_semicolons_and_quoted_fields_read_as_written() {
    // A spreadsheet's export: BOM, `;`, CRLF, quotes around a delimiter,
    // doubled quotes and a line break inside a field.
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(
        "External_ID;Name;Email;Role;Restriction;Organization\r\n\
         jd;\"Doe; Jane \"\"JD\"\"\";jane@acme.example;end-user;organization;Acme\r\n\
         ml;\"Multi\nLine, Max\";max@acme.example;;;\r\n\
         zz;Zed;not-an-email;;;\r\n"
            .as_bytes(),
    );
    let semicolons = csv("bom", "users.csv", &bytes);
    let commas = csv(
        "bom",
        "commas.csv",
        b"name,id,domain_names,shared_tickets,shared_comments\n\"Acme, Inc.\",acme,acme.example,1,0\n",
    );
    for (kind, db) in common::databases("csv_bom").await {
        import_ok(&db, &commas, Format::PortalOrganisations).await;
        let data = db.load().await.unwrap().dataset;
        assert_eq!(data.organisations[0].name, "Acme, Inc.", "{kind}");
        // Line numbers count the line break inside the quoted field.
        let text = problems(
            import(&db, &semicolons, &Options::new(Format::PortalUsers))
                .await
                .unwrap_err(),
        );
        assert!(
            text.contains(&format!(
                "{}:5:3 (email): `not-an-email`",
                semicolons.display()
            )),
            "{kind}: {text}"
        );
        assert!(
            !text.contains("external_id or email is required"),
            "{kind}: BOM left in the header: {text}"
        );
        exec(
            &db,
            "UPDATE organisations SET name = 'Acme' WHERE id = 'acme'",
        )
        .await;
        let fixed = csv(
            "bom",
            "fixed.csv",
            &bytes[..bytes.len() - "zz;Zed;not-an-email;;;\r\n".len()],
        );
        let report = import_ok(&db, &fixed, Format::PortalUsers).await;
        assert_eq!(report.new, 2, "{kind}");
        let jd = user(&db, "jd").await;
        assert_eq!(jd.name.as_deref(), Some("Doe; Jane \"JD\""), "{kind}");
        assert_eq!(jd.ticket_access, UserAccess::Organisation, "{kind}");
        assert_eq!(jd.organisations, ["acme"], "{kind}");
        assert_eq!(
            user(&db, "ml").await.name.as_deref(),
            Some("Multi\nLine, Max"),
            "{kind}"
        );
        db.close().await;
    }
}

#[tokio::test]
async fn organisations_resolve_by_id_then_name_and_ambiguous_names_fail() {
    let ambiguous = csv(
        "names",
        "ambiguous.csv",
        b"external_id,organization\nann,Acme\n",
    );
    let resolved = csv(
        "names",
        "resolved.csv",
        b"external_id,organization\nann,acme-eu | INITECH\n",
    );
    for (kind, db) in common::databases("csv_names").await {
        exec(&db, "INSERT INTO organisations (id, name) VALUES ('acme-us', 'Acme'), ('acme-eu', 'Acme'), ('initech', 'Initech'), ('Acme', 'Acme Holding')").await;
        // `Acme` is an id, so the names do not count.
        import_ok(&db, &ambiguous, Format::PortalUsers).await;
        assert_eq!(user(&db, "ann").await.organisations, ["Acme"], "{kind}");
        exec(&db, "DELETE FROM organisations WHERE id = 'Acme'").await;
        let text = problems(
            import(&db, &ambiguous, &Options::new(Format::PortalUsers))
                .await
                .unwrap_err(),
        );
        assert!(
            text.contains(&format!(
                "{}:2:2 (organization): organisation name `Acme` is ambiguous: ids acme-eu, acme-us; use the id",
                ambiguous.display()
            )),
            "{kind}: {text}"
        );
        import_ok(&db, &resolved, Format::PortalUsers).await;
        let ann = user(&db, "ann").await;
        let mut orgs = ann.organisations.clone();
        orgs.sort();
        assert_eq!(orgs, ["acme-eu", "initech"], "{kind}");
        assert_eq!(
            ann.default_organisation.as_deref(),
            Some("acme-eu"),
            "{kind}: the first is the default"
        );
        db.close().await;
    }
}

#[tokio::test]
async fn upserts_keep_what_a_format_does_not_carry() {
    let users = csv(
        "keep",
        "users.csv",
        b"name,email,external_id,role,restriction,organization
Nina N.,nina@northwind.example,nina,,,
Alex Kim,alex@it.example,alex,agent,organization,
Nils Berg,nils@northwind.example,nils,end-user,assigned,contoso|northwind
",
    );
    let itsm = csv(
        "keep",
        "itsm.csv",
        b"nils,pw,Nils B.,nils@northwind.example,,,,0,,,1\n",
    );
    let orgs = csv(
        "keep",
        "orgs.csv",
        b"name,id,domain_names\nNorthwind,northwind,northwind.co.uk northwind.example\nContoso,contoso,\n",
    );
    for (kind, db) in common::databases("csv_keep").await {
        let demo = demo();
        db.import(&demo.dataset, false).await.unwrap();
        let before = |id: &str| {
            demo.dataset
                .users
                .iter()
                .find(|u| u.id == id)
                .unwrap()
                .clone()
        };
        let report = import_ok(&db, &users, Format::PortalUsers).await;
        assert_eq!(
            (report.new, report.changed, report.unchanged),
            (0, 2, 1),
            "{kind}"
        );
        let levels: Vec<(Level, String)> = report
            .notes
            .iter()
            .map(|n| (n.level, n.place.to_string()))
            .collect();
        assert_eq!(
            levels,
            [
                (Level::Notice, "3:5 (restriction)".to_owned()),
                (Level::Warning, "4:5 (restriction)".to_owned())
            ],
            "{kind}: agent restriction ignored; `assigned` becomes own"
        );
        let nina = user(&db, "nina").await;
        assert_eq!(nina.name.as_deref(), Some("Nina N."), "{kind}");
        // Not carried by portal-users: company, created_at; role empty: kind kept.
        let old = before("nina");
        assert_eq!(
            (nina.company, nina.created_at, nina.kind),
            (old.company, old.created_at, old.kind),
            "{kind}"
        );
        let alex = user(&db, "alex").await;
        assert_eq!(alex.ticket_access, UserAccess::Own, "{kind}");
        assert_eq!(alex.grants, before("alex").grants, "{kind}");
        let nils = user(&db, "nils").await;
        assert_eq!(nils.organisations, ["contoso", "northwind"], "{kind}");
        assert_eq!(
            nils.default_organisation.as_deref(),
            Some("contoso"),
            "{kind}"
        );

        // itsm-users carries no memberships or ticket access: kept.
        let report = import(&db, &itsm, &Options::new(Format::ItsmUsers))
            .await
            .unwrap();
        assert_eq!(report.changed, 1, "{kind}");
        let nils = user(&db, "nils").await;
        assert_eq!(nils.name.as_deref(), Some("Nils B."), "{kind}");
        assert_eq!(nils.organisations, ["contoso", "northwind"], "{kind}");
        assert_eq!(nils.kind, UserKind::EndUser, "{kind}");

        // Domains: listed ones kept with their added_at, new ones added now,
        // unlisted ones removed; an empty list keeps the stored ones.
        let start = Timestamp::now();
        import_ok(&db, &orgs, Format::PortalOrganisations).await;
        let data = db.load().await.unwrap().dataset;
        let northwind = data
            .organisations
            .iter()
            .find(|o| o.id == "northwind")
            .unwrap();
        let added: Vec<(&str, bool)> = northwind
            .domains
            .iter()
            .map(|d| {
                (
                    d.domain.as_str(),
                    d.added_at.nanos() >= start.nanos() - 1_000_000_000,
                )
            })
            .collect();
        assert_eq!(
            added,
            [("northwind.co.uk", true), ("northwind.example", false)],
            "{kind}"
        );
        let contoso = data
            .organisations
            .iter()
            .find(|o| o.id == "contoso")
            .unwrap();
        assert_eq!(contoso.domains.len(), 1, "{kind}");
        // No shared_* columns: ticket access kept (demo: view_all).
        assert_eq!(northwind.ticket_access, OrgAccess::ViewAll, "{kind}");
        db.close().await;
    }
}

#[tokio::test]
async fn a_dry_run_counts_and_writes_nothing() {
    let users = csv("dry", "users.csv", USERS.as_bytes());
    for (kind, db) in common::databases("csv_dry").await {
        exec(
            &db,
            "INSERT INTO organisations (id, name) VALUES ('acme', 'Acme')",
        )
        .await;
        exec(&db, "INSERT INTO users (id, email, name, created_at, ticket_access) VALUES ('ann', 'ann@acme.example', 'Ann Lee', '2025-01-01T00:00:00Z', 'organisation')").await;
        exec(&db, "INSERT INTO users (id, email, name, created_at) VALUES ('bob', 'bob@acme.example', 'Bob', '2025-01-01T00:00:00Z')").await;
        let revision = db.revision().await.unwrap();
        let options = Options {
            dry_run: true,
            ..Options::new(Format::PortalUsers)
        };
        let report = import(&db, &users, &options).await.unwrap();
        // ann differs by her explicit organisation, bob by his name.
        assert_eq!(
            (report.rows, report.new, report.changed, report.unchanged),
            (4, 2, 2, 0),
            "{kind}"
        );
        assert!(!report.written, "{kind}");
        assert_eq!(db.revision().await.unwrap(), revision, "{kind}");
        assert_eq!(db.load().await.unwrap().dataset.users.len(), 2, "{kind}");
        assert!(user(&db, "ann").await.organisations.is_empty(), "{kind}");
        db.close().await;
    }
}

/// Runs `ticket-authz ARGS`; returns exit code, stdout, stderr.
fn run(args: &[&str]) -> (i32, String, String) {
    let out = common::bin().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const PASSWORD: &str = "Corr3ct-H0rse-Battery";

#[tokio::test]
async fn passwords_reach_neither_the_database_nor_the_output() {
    let good = format!(
        "id_user,password,real_name,email,telephone,description,avatar,disabled,id_company,num_employee,enable_login\n\
         pat,{PASSWORD},Pat Doe,pat@it.example,,,,0,,,1\n\
         quinn,\"{PASSWORD},{PASSWORD}\",Quinn Doe,,,,,1,,,0\n"
    );
    let bad = format!("rae,{PASSWORD},Rae Doe,rae@,,,,perhaps,nowhere,,1\n");
    let good = csv("password", "good.csv", good.as_bytes());
    let bad = csv("password", "bad.csv", bad.as_bytes());
    let mut urls = vec![("sqlite", common::sqlite_database("csv_password"))];
    if let Some(url) = common::pg_database("csv_password").await {
        urls.push(("postgres", url));
    }
    for (kind, url) in urls {
        let mut output = String::new();
        for (file, dry) in [(&bad, false), (&good, true), (&good, false), (&good, false)] {
            let file = file.display().to_string();
            let mut args = vec![
                "import-csv",
                "--database-url",
                &url,
                "--format",
                "itsm-users",
                &file,
            ];
            if dry {
                args.push("--dry-run");
            }
            let (code, stdout, stderr) = run(&args);
            let expected = if file.ends_with("bad.csv") { 1 } else { 0 };
            assert_eq!(code, expected, "{kind}: {stderr}");
            output.push_str(&stdout);
            output.push_str(&stderr);
        }
        assert!(
            output.contains("2 rows: 2 new, 0 changed, 0 unchanged; written at revision"),
            "{kind}: {output}"
        );
        assert!(
            output.contains("unknown company `nowhere`"),
            "{kind}: {output}"
        );
        assert!(
            !output.contains(PASSWORD),
            "{kind}: the password in the output:\n{output}"
        );

        let stored = match url.strip_prefix("sqlite://") {
            // Every byte SQLite keeps: the file and its write-ahead log.
            Some(path) => {
                let mut bytes = std::fs::read(path).unwrap();
                bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
                String::from_utf8_lossy(&bytes).into_owned()
            }
            None => {
                let Database::Postgres(pool) = Database::connect(&url).await.unwrap() else {
                    unreachable!()
                };
                let mut text = String::new();
                for table in ["users", "ticket_authz_changes"] {
                    let sql =
                        format!("SELECT coalesce(string_agg(t::text, ' '), '') FROM {table} t");
                    let rows: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                    text.push_str(&rows);
                }
                pool.close().await;
                text
            }
        };
        assert!(
            stored.contains("Quinn Doe"),
            "{kind}: the users were imported"
        );
        assert!(
            !stored.contains(PASSWORD),
            "{kind}: the password was stored"
        );
    }
}

#[test]
fn the_examples_import_into_the_demo_from_the_command_line() {
    let url = common::sqlite_database("csv_examples");
    let (code, _, stderr) = run(&["import", "--database-url", &url, "examples/demo.yaml"]);
    assert_eq!(code, 0, "{stderr}");
    let steps: [(&[&str], &str); 3] = [
        (
            &[
                "--format",
                "portal-organisations",
                "examples/csv/portal-organisations.csv",
            ],
            "examples/csv/portal-organisations.csv: 4 rows: 1 new, 1 changed, 2 unchanged; written at revision",
        ),
        (
            &["--format", "portal-users", "examples/csv/portal-users.csv"],
            "examples/csv/portal-users.csv: 6 rows: 4 new, 1 changed, 1 unchanged; written at revision",
        ),
        (
            &[
                "--format",
                "itsm-users",
                "--global-profile",
                "standard",
                "--group",
                "hardware",
                "--profile",
                "first-line",
                "examples/csv/itsm-users.csv",
            ],
            "examples/csv/itsm-users.csv: 3 rows: 3 new, 0 changed, 0 unchanged; written at revision",
        ),
    ];
    for (args, summary) in steps {
        let mut all = vec!["import-csv", "--database-url", url.as_str()];
        all.extend_from_slice(args);
        let (code, stdout, stderr) = run(&all);
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.starts_with(summary), "{stdout}");
        // Again, as a dry run: everything unchanged.
        all.push("--dry-run");
        let (_, stdout, _) = run(&all);
        assert!(stdout.contains(" 0 new, 0 changed,"), "{stdout}");
        assert!(stdout.contains("dry run, nothing written"), "{stdout}");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let snap = rt.block_on(async {
        let db = Database::connect(&url).await.unwrap();
        let snap = snapshot(&db).await;
        db.close().await;
        snap
    });
    // Carla now has organisation access; Tess joined Tailspin by domain;
    // Dana got first-line on hardware.
    assert_eq!(view(&snap, "carla", "1004"), (true, Reason::Organisation));
    assert_eq!(view(&snap, "dana", "1001"), (true, Reason::GroupFlag));
    let tess = common::decide(
        &snap,
        common::ask(
            "tess@tailspin.example",
            Action::Create,
            &[("organisation", "tailspin")],
        ),
    )
    .unwrap();
    assert_eq!((tess.allowed, tess.reason), (true, Reason::Member));

    // Flags that do not fit the format, and unknown references, name the flag.
    let (code, _, stderr) = run(&[
        "import-csv",
        "--database-url",
        &url,
        "--format",
        "portal-users",
        "--group",
        "hardware",
        "--profile",
        "first-line",
        "examples/csv/portal-users.csv",
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("--group: applies to --format itsm-users only"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&[
        "import-csv",
        "--database-url",
        &url,
        "--format",
        "itsm-users",
        "--group",
        "nope",
        "--profile",
        "first-line",
        "examples/csv/itsm-users.csv",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("--group: unknown group `nope`"), "{stderr}");
}

/// `read_rows` is the import's read-and-check half on bytes, without a
/// database: what the fuzz target drives. It resolves names against the
/// given organisations and reports problems as a file import does.
#[test]
fn rows_are_read_and_checked_from_memory_as_from_a_file() {
    let known = csv_import::Known::new(
        [
            ("acme-us", "Acme"),
            ("acme-eu", "Acme"),
            ("initech", "Initech"),
        ],
        [],
    );
    let options = Options::new(Format::PortalUsers);
    let read = |bytes: &'static [u8]| csv_import::read_rows(bytes, "mem.csv", &options, &known);
    let (rows, _) =
        read(b"\xEF\xBB\xBFexternal_id;organization\r\nann;INITECH\r\nbob;acme-eu\r\n").unwrap();
    assert_eq!(rows.ids(), ["ann", "bob"]);
    let text = problems(read(b"external_id,organization\nann,Initech\nbob,Acme\n").unwrap_err());
    assert!(
        text.contains("mem.csv:3:2 (organization): organisation name `Acme` is ambiguous"),
        "{text}"
    );
}
