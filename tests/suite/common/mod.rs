//! Helpers shared by the integration tests: the shared scenario files and
//! small inline datasets.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

pub mod mapped;
pub mod wire;

use ticket_authz::core::{
    self, Action, ActionInput, CheckRequest, Context, Decision, RequestError,
};
use ticket_authz::dataset;
use ticket_authz::snapshot::Snapshot;
use ticket_authz::time::Timestamp;

/// `../shared` beside the repository; tests fail (not skip) without it.
pub fn shared_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared");
    assert!(
        dir.is_dir(),
        "the shared directory {} is missing: clone it beside the repository",
        dir.display()
    );
    dir
}

/// Every scenario file in `../shared/scenarios`, sorted.
pub fn scenario_files() -> Vec<PathBuf> {
    let dir = shared_dir().join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenario files in {}", dir.display());
    files
}

/// Every scenario file in `../shared/scenarios/sections` (access model §8),
/// sorted, kept apart from the others because the ticket-only tools
/// (cached lists, AuthZEN until its forms exist) do not read them.
pub fn section_scenario_files() -> Vec<PathBuf> {
    let dir = shared_dir().join("scenarios").join("sections");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenario files in {}", dir.display());
    files
}

/// Builds a snapshot from inline YAML, failing the test on any error.
pub fn snapshot(yaml: &str) -> Snapshot {
    let loaded = dataset::load_str("inline.yaml", yaml).unwrap_or_else(|e| panic!("{e}"));
    Snapshot::build(&loaded.dataset).unwrap()
}

/// A check request; `extra` sets ticket/organisation/group/company/flag by name.
pub fn ask<'a>(user: &'a str, action: Action, extra: &[(&str, &'a str)]) -> CheckRequest<'a> {
    let mut req = CheckRequest {
        user,
        action: ActionInput::Known(action),
        ..CheckRequest::default()
    };
    for (field, value) in extra {
        match *field {
            "ticket" => req.ticket = value,
            "organisation" => req.organisation = value,
            "group" => req.group = value,
            "company" => req.company = value,
            "flag" => req.flag = value,
            "resource" => req.resource = value,
            other => panic!("unknown field {other}"),
        }
    }
    req
}

pub fn now(snap: &Snapshot) -> Timestamp {
    snap.fixed_now().unwrap_or_else(Timestamp::now)
}

pub fn decide(snap: &Snapshot, req: CheckRequest<'_>) -> Result<Decision, RequestError> {
    core::check(snap, &req, Context::at(now(snap)))
}

pub fn explain(snap: &Snapshot, req: CheckRequest<'_>) -> Decision {
    core::check(
        snap,
        &req,
        Context {
            now: now(snap),
            explain: true,
            limits: None,
        },
    )
    .unwrap()
}

/// A fresh PostgreSQL database for one test, created through the admin URL
/// in `DATABASE_URL`. Without it the test is skipped, said out loud; under
/// `CI=true` a skip is a failure.
pub async fn pg_database(name: &str) -> Option<String> {
    let Ok(admin) = std::env::var("DATABASE_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "DATABASE_URL is required under CI=true (PostgreSQL admin URL)"
        );
        eprintln!("skipped {name}: DATABASE_URL is not set (a PostgreSQL admin URL)");
        return None;
    };
    let db = format!("ta_{name}_{}", std::process::id());
    Some(create_pg_database(&admin, &db).await)
}

/// Creates (or re-creates) PostgreSQL database `db` through `admin`; its
/// URL. `db` is built by the tests from their own names and numbers: safe
/// to splice.
async fn create_pg_database(admin: &str, db: &str) -> String {
    let pool = sqlx::PgPool::connect(admin).await.unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        format!("CREATE DATABASE {db}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    with_database(admin, db)
}

/// A fresh MariaDB/MySQL database for one test, created through the admin
/// URL in `MYSQL_URL`. Without it the test is skipped, said out loud;
/// under `CI=true` a skip is a failure.
pub async fn mysql_database(name: &str) -> Option<String> {
    let Ok(admin) = std::env::var("MYSQL_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "MYSQL_URL is required under CI=true (MariaDB admin URL)"
        );
        eprintln!("skipped {name}: MYSQL_URL is not set (a MariaDB admin URL)");
        return None;
    };
    let db = format!("ta_{name}_{}", std::process::id());
    Some(create_mysql_database(&admin, &db).await)
}

/// Creates (or re-creates) database `db` as Integria's are (utf8mb4,
/// case-insensitive) through `admin`; its URL. `db` is built by the tests
/// from their own names and numbers: safe to splice.
async fn create_mysql_database(admin: &str, db: &str) -> String {
    let pool = sqlx::MySqlPool::connect(admin).await.unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS {db}"),
        format!("CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    with_database(admin, db)
}

/// The URL `admin` with its database replaced by `db`.
fn with_database(admin: &str, db: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b.to_owned(), format!("?{q}")),
        None => (admin.to_owned(), String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{db}{query}", &base[..host_end])
}

/// A pool that writes as Integria's PHP does: an empty `sql_mode`.
pub async fn integria_writer(url: &str) -> sqlx::MySqlPool {
    use sqlx::Executor;
    sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(16)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("SET SESSION sql_mode = ''").await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .unwrap()
}

/// Integria's tables (`tests/suite/common/integria.sql`), created as Integria's
/// installer does, under an empty `sql_mode`.
pub async fn create_integria_tables(url: &str) {
    let pool = integria_writer(url).await;
    let sql = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/suite/common/integria.sql"),
    )
    .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    for statement in sql.split(';').map(str::trim).filter(|s| {
        s.lines()
            .any(|l| !l.trim().is_empty() && !l.trim().starts_with("--"))
    }) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    drop(conn);
    pool.close().await;
}

/// A fresh SQLite database file for one test.
pub fn sqlite_database(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("ticket-authz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    format!("sqlite://{}", dir.join("data.db").display())
}

/// A fresh, migrated SQLite database and, when `DATABASE_URL` is set, a
/// fresh, migrated PostgreSQL one, each with its kind's name.
pub async fn databases(name: &str) -> Vec<(String, ticket_authz::db::Database)> {
    use ticket_authz::db::Database;
    let mut out = Vec::new();
    let sqlite = sqlite_database(name);
    out.push((
        "sqlite".to_owned(),
        Database::connect(&sqlite).await.unwrap(),
    ));
    if let Some(url) = pg_database(name).await {
        out.push((
            "postgres".to_owned(),
            Database::connect(&url).await.unwrap(),
        ));
    }
    for (_, db) in &out {
        db.migrate().await.unwrap();
        // Migrating twice is harmless.
        db.migrate().await.unwrap();
    }
    out
}

/// The `ticket-authz` binary, run from the repository with no
/// `TICKET_AUTHZ_*` variable of the caller's environment.
pub fn bin() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_ticket-authz"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    for (key, _) in std::env::vars() {
        if key.starts_with("TICKET_AUTHZ_") {
            c.env_remove(key);
        }
    }
    c
}

/// A port that was free a moment ago, for a server started as a process.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `ticket-authz serve` process; killed when dropped.
pub struct Served {
    pub child: std::process::Child,
    /// `http://` URL of its gRPC listener.
    pub grpc: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// Stops it with SIGTERM, as Kubernetes does, and returns how it exited.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "serve did not stop on SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Starts `ticket-authz serve ARGS` on a free port with ENV (and no
/// `OTEL_*` variable of the caller's) and waits until it serves.
pub fn serve<S: AsRef<std::ffi::OsStr>>(args: &[S], env: &[(&str, String)]) -> Served {
    let grpc = format!("127.0.0.1:{}", free_port());
    let mut cmd = bin();
    for (key, _) in std::env::vars() {
        if key.starts_with("OTEL_") {
            cmd.env_remove(key);
        }
    }
    cmd.arg("serve")
        .args(args)
        .env("TICKET_AUTHZ_LISTEN", &grpc)
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    wait_until_serving(child.stderr.take().unwrap());
    Served {
        child,
        grpc: format!("http://{grpc}"),
    }
}

/// Reads a served process's log until it says it is serving, then keeps
/// draining it on a thread so that the process never blocks on the pipe.
pub fn wait_until_serving(stderr: std::process::ChildStderr) {
    use std::io::BufRead as _;
    let mut lines = std::io::BufReader::new(stderr).lines();
    let started = std::time::Instant::now();
    loop {
        let line = lines.next().expect("serve exited early").unwrap();
        if line.contains("data loaded; serving") {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no readiness line"
        );
    }
    std::thread::spawn(move || for _ in lines.by_ref() {});
}

/// A scenario's request as a gRPC message; a name that is no action can
/// only travel as a number that is none (999).
pub fn wire_check(r: &dataset::OwnedRequest) -> ticket_authz::grpc::pb::CheckAccessRequest {
    ticket_authz::grpc::pb::CheckAccessRequest {
        user_id: r.user.clone(),
        action: match r.action.as_deref() {
            None | Some("") => 0,
            Some(name) => Action::parse(name).map_or(999, ticket_authz::grpc::convert::action_code),
        },
        ticket_id: r.ticket.clone(),
        organisation_id: r.organisation.clone(),
        group_id: r.group.clone(),
        company_id: r.company.clone(),
        flag: r.flag.clone(),
        resource_id: r.resource.clone(),
        ..Default::default()
    }
}

/// Every section answer of `snap` for the users and resources of `data`:
/// each user's whole visible list of every kind (in pages of 3, so page
/// resumption is in it), and every section action of every kind on every
/// resource, plus the `_create` actions. Two snapshots of the same data,
/// however reached, give equal answers.
pub fn section_answers(snap: &Snapshot, data: &ticket_authz::model::Dataset) -> Vec<String> {
    use ticket_authz::model::ResourceKind;
    let s = &data.sections;
    let ids = |kind: ResourceKind| -> Vec<&str> {
        match kind {
            ResourceKind::Project => s.projects.iter().map(|r| r.id.as_str()).collect(),
            ResourceKind::Task => s.tasks.iter().map(|r| r.id.as_str()).collect(),
            ResourceKind::WikiPage => s.wiki_pages.iter().map(|r| r.id.as_str()).collect(),
            ResourceKind::InventoryItem => {
                s.inventory_items.iter().map(|r| r.id.as_str()).collect()
            }
            ResourceKind::Invoice => s.invoices.iter().map(|r| r.id.as_str()).collect(),
            ResourceKind::Lead => s.leads.iter().map(|r| r.id.as_str()).collect(),
            ResourceKind::AgendaEvent => s.agenda_events.iter().map(|r| r.id.as_str()).collect(),
            ResourceKind::Download => s.downloads.iter().map(|r| r.id.as_str()).collect(),
        }
    };
    let mut out = Vec::new();
    for user in &data.users {
        for &kind in ResourceKind::ALL {
            let mut listed = Vec::new();
            let mut token = String::new();
            loop {
                let page = core::list_visible_resources(snap, &user.id, kind, 3, &token).unwrap();
                listed.extend(page.ids);
                match page.next_page_token {
                    Some(t) => token = t,
                    None => break,
                }
            }
            out.push(format!("{} sees {} {listed:?}", user.id, kind.name()));
            for &action in Action::ALL.iter() {
                if action.resource_kind() != Some(kind) {
                    continue;
                }
                for id in ids(kind) {
                    out.push(format!(
                        "{} {} {id}: {}",
                        user.id,
                        action.name(),
                        core::section_allows(snap, &user.id, action, id)
                    ));
                }
            }
        }
        for action in [
            Action::ProjectCreate,
            Action::InventoryCreate,
            Action::LeadCreate,
        ] {
            out.push(format!(
                "{} {}: {}",
                user.id,
                action.name(),
                core::section_allows(snap, &user.id, action, "")
            ));
        }
    }
    out
}

/// `migrate --mapping` of `yaml`, written to `file`, which must be
/// refused; what it printed on stderr.
pub fn migrate_refused(url: &str, file: &std::path::Path, yaml: &str) -> String {
    std::fs::write(file, yaml).unwrap();
    let out = bin()
        .args(["migrate", "--mapping"])
        .arg(file)
        .args(["--database-url", url])
        .output()
        .unwrap();
    assert!(!out.status.success(), "accepted:\n{yaml}");
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

/// A fresh directory for a private server of `kind`, when its `tool`
/// answers `--version`; else the test is skipped, said out loud (under
/// `CI=true` that is a failure).
pub fn private_server_dir(kind: &str, name: &str, tool: &str) -> Option<PathBuf> {
    let installed = std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} ({kind}) is required under CI=true"
        );
        eprintln!("skipped {name}: {tool} is not installed");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("ta-{kind}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Some(dir)
}

/// A MariaDB server of one test's own, on a free port with its own data
/// directory, for tests that kill or restart the server (never the shared
/// one on 3306). Without `mariadbd` the test is skipped, said out loud;
/// under `CI=true` that is a failure.
pub struct PrivateMariaDb {
    dir: PathBuf,
    port: u16,
    child: Option<std::process::Child>,
}

impl PrivateMariaDb {
    pub fn start(name: &str) -> Option<PrivateMariaDb> {
        let dir = private_server_dir("mariadb", name, "mariadb-install-db")?;
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        // The bootstrap server gets the private tmpdir too (the script
        // passes what it does not know on to mariadbd).
        let out = std::process::Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg(format!("--tmpdir={}", dir.join("tmp").display()))
            .args([
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mariadb-install-db: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut server = PrivateMariaDb {
            dir,
            port: free_port(),
            child: None,
        };
        server.run();
        Some(server)
    }

    /// Starts the server on its data directory and port; waits until it
    /// accepts connections.
    pub fn run(&mut self) {
        let log = std::fs::File::create(self.dir.join("server.log")).unwrap();
        let child = std::process::Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.dir.join("data").display()))
            .arg(format!("--socket={}", self.dir.join("sock").display()))
            .arg(format!("--pid-file={}", self.dir.join("pid").display()))
            // Its own temporary directory: a starting server clears the
            // temporary tables it finds, and /tmp holds the shared one's.
            .arg(format!("--tmpdir={}", self.dir.join("tmp").display()))
            .arg(format!("--port={}", self.port))
            .args([
                "--user=root",
                "--bind-address=127.0.0.1",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=32M",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "mariadbd did not start: {}",
                std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Kills the server outright, as a crash would.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The admin URL of a new database `db` on this server.
    pub async fn database(&self, db: &str) -> String {
        let admin = format!("mysql://root@127.0.0.1:{}/mysql", self.port);
        create_mysql_database(&admin, db).await
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A PostgreSQL server of one test's own, on a free port with its own data
/// directory, for tests that crash or restart the server (never the
/// shared one on 5432). Run as the `postgres` user when the tests run as
/// root (the server refuses root). Without `initdb` the test is skipped,
/// said out loud; under `CI=true` that is a failure.
pub struct PrivatePostgres {
    dir: PathBuf,
    port: u16,
    child: Option<std::process::Child>,
}

impl PrivatePostgres {
    pub fn start(name: &str) -> Option<PrivatePostgres> {
        let dir = private_server_dir("postgres", name, "initdb")?;
        if Self::as_root() {
            let owned = std::process::Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(owned.success(), "chown postgres {}", dir.display());
        }
        let out = Self::command("initdb")
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut server = PrivatePostgres {
            dir,
            port: free_port(),
            child: None,
        };
        server.run();
        Some(server)
    }

    fn as_root() -> bool {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    }

    /// `program`, as the `postgres` user when the tests run as root.
    fn command(program: &str) -> std::process::Command {
        if Self::as_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--", program]);
            c
        } else {
            std::process::Command::new(program)
        }
    }

    /// Starts the server on its data directory and port; waits until it
    /// accepts connections.
    pub fn run(&mut self) {
        let log = std::fs::File::create(self.dir.join("server.log")).unwrap();
        let child = Self::command("postgres")
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-k")
            .arg(&self.dir)
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let started = std::time::Instant::now();
        loop {
            let ready = std::process::Command::new("pg_isready")
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                break;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "postgres did not start: {}",
                std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Stops the server as a crash would: an immediate shutdown (SIGQUIT)
    /// of the postmaster itself (runuser, between, does not pass it on),
    /// no checkpoint; the next start recovers from the WAL.
    pub fn crash(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = std::fs::read_to_string(self.dir.join("data/postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().map(str::to_owned))
            .unwrap_or_else(|| child.id().to_string());
        let _ = std::process::Command::new("kill")
            .args(["-QUIT", &pid])
            .status();
        let _ = child.wait();
    }

    /// The admin URL of a new database `db` on this server.
    pub async fn database(&self, db: &str) -> String {
        let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        create_pg_database(&admin, db).await
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The page a `--metrics-listen` address serves at `/metrics`, headers
/// included.
pub fn metrics_page(addr: impl std::net::ToSocketAddrs) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: metrics\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}
