//! The fleet (issue 19): a relay following real PostgreSQL publishes to a
//! private nats-server; sidecars bootstrapped from its snapshots and
//! following its stream equal a fresh load after a storm, through a NATS
//! restart and a relay takeover, with the stream's revision chain intact;
//! damaged snapshots are refused; bad flags name the flag.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use ticket_authz::db::{Database, DbSource, Notify};
use ticket_authz::fleet::{self, Lease, NatsSettings, Relay, SnapshotEvery, StreamSource};
use ticket_authz::follow::{self, ChangeSource};
use ticket_authz::snapshot::Snapshot;
use ticket_authz::store::Store;
use tokio::sync::watch;

/// A nats-server of one test's own (JetStream on, its own store
/// directory, a free port), for tests that stop or restart it.
struct PrivateNats {
    dir: PathBuf,
    port: u16,
    child: Option<std::process::Child>,
}

impl PrivateNats {
    fn start(name: &str) -> Option<PrivateNats> {
        let dir = common::private_server_dir("nats", name, "nats-server")?;
        let mut server = PrivateNats {
            dir,
            port: common::free_port(),
            child: None,
        };
        server.run();
        Some(server)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server on its store and port; waits until it accepts.
    fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        let child = std::process::Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.join("store"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            eprintln!("nats-server's log:\n{log}");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn demo() -> ticket_authz::model::Dataset {
    ticket_authz::dataset::load_file(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.yaml"),
    )
    .unwrap()
    .dataset
}

async fn exec(db: &Database, sql: &str) {
    let Database::Postgres(pool) = db else {
        panic!("the fleet tests run on PostgreSQL");
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(pool)
        .await
        .unwrap();
}

/// A relay in this process: its store and the sender that stops it.
struct RunningRelay {
    store: Arc<Store>,
    stop: watch::Sender<bool>,
}

async fn start_relay(
    url: &str,
    settings: &NatsSettings,
    lease: Duration,
    max_age: Duration,
    every: SnapshotEvery,
) -> RunningRelay {
    let db = Database::connect(url).await.unwrap();
    let (stop, stopped) = watch::channel(false);
    let (client, snapshots) = fleet::prepare(settings, max_age).await.unwrap();
    let js = jetstream::new(client.clone());
    let lease = Lease::start(
        &js,
        &settings.lease_bucket(),
        fleet_cmd_holder(),
        lease,
        stopped.clone(),
    )
    .await
    .unwrap();
    let reader = StreamSource::new(client, settings.clone(), Duration::from_millis(200));
    let mut relay = Relay::new(
        DbSource::new(db, Notify::Listen, Duration::from_millis(200)),
        reader,
        lease,
        snapshots,
        fleet::source_identity(url),
        every,
    );
    let snapshot = load_with_retry(&mut relay).await;
    let store = Arc::new(Store::default());
    store.publish(snapshot);
    relay.set_store(store.clone());
    tokio::spawn(follow::follow(relay, store.clone(), stopped));
    RunningRelay { store, stop }
}

fn fleet_cmd_holder() -> String {
    ticket_authz::fleet_cmd::holder_id()
}

async fn load_with_retry<S: ChangeSource>(source: &mut S) -> Snapshot {
    let started = Instant::now();
    loop {
        match source.load().await {
            Ok(snapshot) => return snapshot,
            Err(e) => {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "no first load: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A sidecar in this process: the stream's source followed into a store.
async fn start_sidecar(settings: &NatsSettings) -> (Arc<Store>, watch::Sender<bool>) {
    let client = fleet::connect(settings).await.unwrap();
    let mut source = StreamSource::new(client, settings.clone(), Duration::from_millis(200));
    let snapshot = load_with_retry(&mut source).await;
    let store = Arc::new(Store::default());
    store.publish(snapshot);
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(follow::follow(source, store.clone(), stopped));
    (store, stop)
}

/// The stream's messages as (sequence, kind, previous, revision), read
/// by sequence.
async fn chain(settings: &NatsSettings) -> Vec<(u64, String, u64, u64)> {
    let client = fleet::connect(settings).await.unwrap();
    let js = jetstream::new(client);
    let mut stream = js.get_stream(&settings.stream).await.unwrap();
    let info = stream.info().await.unwrap().clone();
    let mut out = Vec::new();
    for seq in info.state.first_sequence..=info.state.last_sequence {
        let Ok(m) = stream.get_raw_message(seq).await else {
            continue;
        };
        let h = |name: &str| m.headers.get(name).unwrap().as_str().to_owned();
        out.push((
            seq,
            h("Ticket-Authz-Kind"),
            h("Ticket-Authz-Previous").parse().unwrap(),
            h("Ticket-Authz-Revision").parse().unwrap(),
        ));
    }
    out
}

/// Each message names the one before it as its predecessor: nothing
/// lost, nothing published twice.
fn assert_chain_unbroken(chain: &[(u64, String, u64, u64)]) {
    for pair in chain.windows(2) {
        let ((_, _, _, before), (seq, kind, previous, revision)) = (&pair[0], &pair[1]);
        assert!(
            revision > before,
            "message {seq} ({kind}) does not advance: {chain:?}"
        );
        assert_eq!(
            previous, before,
            "message {seq} ({kind}) breaks the chain: {chain:?}"
        );
    }
}

/// One random write of the storm, on the demo's users and tickets.
fn storm_sql(rng: &mut fastrand::Rng, i: usize) -> String {
    let users = [
        "nina", "nils", "carla", "chris", "fay", "paul", "alex", "lena", "omar", "sam",
    ];
    let statuses = ["new", "open", "pending", "solved", "closed"];
    let groups = ["NULL", "'hardware'", "'access-requests'", "'finance'"];
    let t = format!("f{}", rng.usize(0..30));
    let u = users[rng.usize(0..users.len())];
    match rng.u8(0..8) {
        0..=2 => format!(
            "INSERT INTO tickets (id, created_at, requester_id, group_id, status) \
             VALUES ('{t}', '2026-05-{:02}T10:00:00Z', '{u}', {}, '{}') \
             ON CONFLICT (id) DO UPDATE SET group_id = excluded.group_id, status = excluded.status",
            rng.u8(1..28),
            groups[rng.usize(0..groups.len())],
            statuses[rng.usize(0..statuses.len())],
        ),
        3 => format!("DELETE FROM tickets WHERE id = '{t}'"),
        4 | 5 => format!(
            "INSERT INTO ticket_ccs (ticket_id, user_id) SELECT id, '{u}' FROM tickets WHERE id = '{t}' ON CONFLICT DO NOTHING"
        ),
        6 => format!("DELETE FROM ticket_ccs WHERE ticket_id = '{t}' AND user_id = '{u}'"),
        _ if i.is_multiple_of(20) => format!(
            "UPDATE users SET ticket_access = '{}' WHERE id = '{u}'",
            if rng.bool() { "own" } else { "organisation" }
        ),
        _ => format!("DELETE FROM ticket_ccs WHERE ticket_id = '{t}' AND user_id = '{u}'"),
    }
}

/// Waits until `store` serves `revision` or later.
async fn reaches(store: &Store, revision: u64, what: &str) -> Arc<Snapshot> {
    store
        .at_least(revision, Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{what} did not reach revision {revision}: {e}"))
}

/// The answers of a fresh load of `db`, and its revision.
async fn fresh(db: &Database) -> (u64, Snapshot, ticket_authz::model::Dataset) {
    let loaded = db.load().await.unwrap();
    let mut snap = Snapshot::build(&loaded.dataset).unwrap();
    snap.set_revision(loaded.revision);
    (loaded.revision, snap, loaded.dataset)
}

/// A `ticket-authz relay` process; killed (SIGKILL) when dropped.
struct RelayProcess {
    child: std::process::Child,
    metrics: String,
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a relay process and waits until its first load is done.
fn relay_process(url: &str, nats: &str, lease: &str) -> RelayProcess {
    let metrics = format!("127.0.0.1:{}", common::free_port());
    let mut child = common::bin()
        .args([
            "relay",
            "--database-url",
            url,
            "--nats-url",
            nats,
            "--lease",
            lease,
        ])
        .args(["--poll-interval", "200ms", "--snapshot-every", "40"])
        .args(["--metrics-listen", &metrics])
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_until_serving(child.stderr.take().unwrap());
    RelayProcess { child, metrics }
}

fn leader_gauge(relay: &RelayProcess) -> i64 {
    common::metrics_page(relay.metrics.as_str())
        .lines()
        .find_map(|l| l.strip_prefix("ticket_authz_fleet_leader "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1)
}

fn settings(nats: &PrivateNats) -> NatsSettings {
    NatsSettings::new(nats.url())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecars_equal_a_fresh_load_after_a_storm_through_a_nats_restart_and_a_takeover() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("ticket_authz=info")
        .with_test_writer()
        .try_init();
    let Some(url) = common::pg_database("fleet_storm").await else {
        return;
    };
    let Some(mut nats) = PrivateNats::start("storm") else {
        return;
    };
    let db = Database::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    db.import(&demo(), true).await.unwrap();
    let settings = settings(&nats);
    let first = relay_process(&url, &nats.url(), "2s");
    let second = relay_process(&url, &nats.url(), "2s");
    assert_eq!((leader_gauge(&first), leader_gauge(&second)), (1, 0));
    let sidecars = [
        start_sidecar(&settings).await,
        start_sidecar(&settings).await,
    ];
    let mut rng = fastrand::Rng::with_seed(19);
    let mut first = Some(first);
    for i in 0..150 {
        exec(&db, &storm_sql(&mut rng, i)).await;
        if i == 40 {
            // NATS is killed mid-storm and started again: relays and
            // sidecars reconnect and catch up; what the server had not
            // written out is republished as a snapshot.
            nats.stop();
            tokio::time::sleep(Duration::from_millis(300)).await;
            nats.run();
        }
        if i == 90 {
            // The publishing relay is killed (SIGKILL, no release); the
            // standby takes over within the lease and goes on.
            drop(first.take());
        }
        if i > 90 && i.is_multiple_of(10) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let (revision, fresh_snap, data) = fresh(&db).await;
    for (n, (store, _)) in sidecars.iter().enumerate() {
        let served = reaches(store, revision, &format!("sidecar {n}")).await;
        assert_eq!(served.revision(), revision);
        assert_eq!(
            common::mapped::answers(&served, &data),
            common::mapped::answers(&fresh_snap, &data),
            "sidecar {n} against a fresh load"
        );
    }
    assert_eq!(leader_gauge(&second), 1, "the standby took over");
    let chain = chain(&settings).await;
    assert_chain_unbroken(&chain);
    assert_eq!(chain.last().map(|c| c.3), Some(revision));
    // A sidecar started now bootstraps from the newest snapshot and
    // catches up to the same answers.
    let (late, _stop) = start_sidecar(&settings).await;
    let served = reaches(&late, revision, "a late sidecar").await;
    assert_eq!(
        common::mapped::answers(&served, &data),
        common::mapped::answers(&fresh_snap, &data)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_snapshot_is_refused_and_the_previous_one_used() {
    let Some(url) = common::pg_database("fleet_damaged").await else {
        return;
    };
    let Some(nats) = PrivateNats::start("damaged") else {
        return;
    };
    let db = Database::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    db.import(&demo(), true).await.unwrap();
    let settings = settings(&nats);
    let relay = start_relay(
        &url,
        &settings,
        Duration::from_secs(2),
        Duration::from_secs(3600),
        SnapshotEvery::Revisions(40),
    )
    .await;
    exec(
        &db,
        "INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1001', 'fay')",
    )
    .await;
    let (revision, fresh_snap, data) = fresh(&db).await;
    reaches(&relay.store, revision, "the relay").await;
    // A newer object that is not an image, and one from another source.
    let client = fleet::connect(&settings).await.unwrap();
    let js = jetstream::new(client);
    let bucket = js.get_object_store(&settings.bucket).await.unwrap();
    let name = format!("snapshot-{:020}", revision + 1000);
    bucket
        .put(
            name.as_str(),
            &mut std::io::Cursor::new(b"not a snapshot at all".to_vec()),
        )
        .await
        .unwrap();
    let before = refused();
    let (store, _stop) = start_sidecar(&settings).await;
    let served = reaches(&store, revision, "the sidecar").await;
    assert_eq!(
        common::mapped::answers(&served, &data),
        common::mapped::answers(&fresh_snap, &data)
    );
    assert!(
        refused() > before,
        "the damaged snapshot was not counted as refused"
    );
    // A message that is not ours on the subject (someone publishing by
    // hand) stops neither the relay nor the sidecar.
    let stray = jetstream::new(fleet::connect(&settings).await.unwrap());
    stray
        .publish(settings.subject.clone(), "hello".into())
        .await
        .unwrap()
        .await
        .unwrap();
    exec(
        &db,
        "INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1003', 'fay')",
    )
    .await;
    let (revision, fresh_snap, data) = fresh(&db).await;
    let served = reaches(&store, revision, "the sidecar after a stray message").await;
    assert_eq!(
        common::mapped::answers(&served, &data),
        common::mapped::answers(&fresh_snap, &data)
    );
    relay.stop.send_replace(true);
}

fn refused() -> u64 {
    metric("ticket_authz_fleet_snapshots_refused_total")
}

#[test]
fn bad_fleet_flags_name_the_flag() {
    for (args, flag) in [
        (
            vec!["relay", "--nats-url", "nats://127.0.0.1:1"],
            "--database-url",
        ),
        (
            vec!["relay", "--database-url", "sqlite://x.db"],
            "--nats-url",
        ),
        (
            vec![
                "relay",
                "--database-url",
                "sqlite://x.db",
                "--nats-url",
                "http://x:4222",
            ],
            "--nats-url",
        ),
        (
            vec![
                "relay",
                "--database-url",
                "sqlite://x.db",
                "--nats-url",
                "nats://x:4222",
                "--snapshot-every",
                "soon",
            ],
            "--snapshot-every",
        ),
        (
            vec![
                "relay",
                "--database-url",
                "sqlite://x.db",
                "--nats-url",
                "nats://x:4222",
                "--stream",
                "a.b",
            ],
            "--stream",
        ),
        (
            vec![
                "serve",
                "--nats-url",
                "nats://x:4222",
                "--database-url",
                "sqlite://x.db",
            ],
            "--database-url",
        ),
        (
            vec!["serve", "--nats-creds", "/nonexistent.creds"],
            "--nats-creds",
        ),
        (
            vec![
                "serve",
                "--nats-url",
                "nats://x:4222",
                "--nats-token-file",
                "/nonexistent",
            ],
            "--nats-token-file",
        ),
        (
            vec!["serve", "--database-max-connections", "0"],
            "--database-max-connections",
        ),
    ] {
        let out = common::bin().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }
}

/// A source that counts its full loads, to tell a warm start from one.
struct CountingLoads<S> {
    inner: S,
    loads: Arc<std::sync::atomic::AtomicUsize>,
}

impl<S: ChangeSource> ChangeSource for CountingLoads<S> {
    async fn load(&mut self) -> Result<Snapshot, follow::SourceError> {
        self.loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.load().await
    }

    async fn changes_after(
        &mut self,
        after: u64,
    ) -> Result<Option<follow::Batch>, follow::SourceError> {
        self.inner.changes_after(after).await
    }

    async fn wait(&mut self) {
        self.inner.wait().await;
    }

    fn position_at(&self, revision: u64) -> Option<u64> {
        self.inner.position_at(revision)
    }

    fn resume(&mut self, revision: u64, position: u64) {
        self.inner.resume(revision, position);
    }
}

/// One warm-started follower: its store, its full-load count, its stop.
struct Warm {
    store: Arc<Store>,
    loads: Arc<std::sync::atomic::AtomicUsize>,
    stop: watch::Sender<bool>,
}

impl Drop for Warm {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

async fn start_warm<S: ChangeSource>(
    inner: S,
    dir: &std::path::Path,
    expected: follow::Expected,
    source: &str,
) -> Warm {
    let loads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counting = CountingLoads {
        inner,
        loads: loads.clone(),
    };
    let mut warm = follow::WarmStart::new(
        counting,
        dir.to_owned(),
        expected,
        source.to_owned(),
        Duration::from_secs(1),
    );
    let snapshot = load_with_retry(&mut warm).await;
    let store = Arc::new(Store::default());
    store.publish(snapshot);
    warm.set_store(store.clone());
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(follow::follow(warm, store.clone(), stopped));
    Warm { store, loads, stop }
}

/// Waits until the saved file holds `revision` or later.
async fn saved_at_least(dir: &std::path::Path, revision: u64) {
    let started = Instant::now();
    loop {
        if let Ok(bytes) = std::fs::read(dir.join(follow::SNAPSHOT_FILE))
            && ticket_authz::image::peek_meta(&bytes).is_ok_and(|m| m.revision >= revision)
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no snapshot saved at {revision}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_restart_from_the_snapshot_dir_catches_up_without_a_full_load() {
    let Some(url) = common::pg_database("fleet_warm").await else {
        return;
    };
    let db = Database::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    db.import(&demo(), true).await.unwrap();
    let dir = std::env::temp_dir().join(format!("ta-warm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let identity = fleet::source_identity(&url);
    let expected = follow::Expected {
        source: Some(identity.clone()),
        stream: String::new(),
    };
    let source = || DbSource::new(db.clone(), Notify::Listen, Duration::from_millis(100));
    // No file yet: a full load; then a change, saved a second later.
    let first = start_warm(source(), &dir, expected.clone(), &identity).await;
    assert_eq!(first.loads.load(std::sync::atomic::Ordering::SeqCst), 1);
    exec(
        &db,
        "INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1001', 'fay')",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    exec(
        &db,
        "INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1003', 'fay')",
    )
    .await;
    let saved = db.revision().await.unwrap();
    reaches(&first.store, saved, "the first follower").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    exec(
        &db,
        "INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1004', 'fay')",
    )
    .await;
    saved_at_least(&dir, saved).await;
    drop(first);
    // Written while it was down: the restart catches up from the change log.
    exec(
        &db,
        "DELETE FROM ticket_ccs WHERE ticket_id = '1001' AND user_id = 'fay'",
    )
    .await;
    exec(
        &db,
        "UPDATE users SET ticket_access = 'organisation' WHERE id = 'fay'",
    )
    .await;
    let (revision, fresh_snap, data) = fresh(&db).await;
    let second = start_warm(source(), &dir, expected.clone(), &identity).await;
    assert_eq!(
        second.loads.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a warm start reads no full load"
    );
    let served = second.store.current().unwrap();
    assert_eq!(served.revision(), revision, "caught up before serving");
    assert_eq!(
        common::mapped::answers(&served, &data),
        common::mapped::answers(&fresh_snap, &data)
    );
    drop(second);
    // A file of another database is ignored: a full load.
    let other = follow::Expected {
        source: Some("postgres://elsewhere:5432/other".to_owned()),
        stream: String::new(),
    };
    let third = start_warm(source(), &dir, other, "postgres://elsewhere:5432/other").await;
    assert_eq!(third.loads.load(std::sync::atomic::Ordering::SeqCst), 1);
    drop(third);
    // A damaged file is ignored: a full load, and the same answers.
    let path = dir.join(follow::SNAPSHOT_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let fourth = start_warm(source(), &dir, expected, &identity).await;
    assert_eq!(fourth.loads.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(
        common::mapped::answers(&fourth.store.current().unwrap(), &data),
        common::mapped::answers(&fresh_snap, &data)
    );
    drop(fourth);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_away_past_the_retention_re_bootstraps_from_a_newer_snapshot() {
    let Some(url) = common::pg_database("fleet_retention").await else {
        return;
    };
    let Some(nats) = PrivateNats::start("retention") else {
        return;
    };
    let db = Database::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    db.import(&demo(), true).await.unwrap();
    let settings = settings(&nats);
    // Messages live two seconds; a snapshot every second of changes.
    let relay = start_relay(
        &url,
        &settings,
        Duration::from_secs(2),
        Duration::from_secs(2),
        SnapshotEvery::Interval(Duration::from_secs(1)),
    )
    .await;
    let dir = std::env::temp_dir().join(format!("ta-retention-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let expected = follow::Expected {
        source: None,
        stream: settings.stream.clone(),
    };
    let stream_source = || async {
        StreamSource::new(
            fleet::connect(&settings).await.unwrap(),
            settings.clone(),
            Duration::from_millis(100),
        )
    };
    let sidecar = start_warm(stream_source().await, &dir, expected.clone(), "").await;
    exec(
        &db,
        "INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1001', 'fay')",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    exec(
        &db,
        "INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1003', 'fay')",
    )
    .await;
    let saved = db.revision().await.unwrap();
    reaches(&sidecar.store, saved, "the sidecar").await;
    saved_at_least(&dir, saved - 1).await;
    drop(sidecar);
    // While it is away: changes, and the stream forgets them.
    for sql in [
        "INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1004', 'fay')",
        "DELETE FROM ticket_ccs WHERE ticket_id = '1001' AND user_id = 'fay'",
        "UPDATE users SET ticket_access = 'organisation' WHERE id = 'fay'",
        "INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1006', 'nils')",
    ] {
        exec(&db, sql).await;
    }
    let (revision, fresh_snap, data) = fresh(&db).await;
    reaches(&relay.store, revision, "the relay").await;
    // Past the retention, with the relay's snapshot of the head in the
    // bucket.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let js = jetstream::new(fleet::connect(&settings).await.unwrap());
    let bucket = fleet::Snapshots::open(&js, &settings.bucket).await.unwrap();
    let started = Instant::now();
    while bucket.list().await.unwrap().first().map(|l| l.revision) != Some(revision) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no snapshot of the head"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = rebootstraps();
    let back = start_warm(stream_source().await, &dir, expected, "").await;
    let served = reaches(&back.store, revision, "the returning sidecar").await;
    assert_eq!(
        common::mapped::answers(&served, &data),
        common::mapped::answers(&fresh_snap, &data)
    );
    assert!(rebootstraps() > before, "the gap was not counted");
    relay.stop.send_replace(true);
    let _ = std::fs::remove_dir_all(&dir);
}

fn metric(name: &str) -> u64 {
    let page = ticket_authz::telemetry::exposition::render(
        ticket_authz::telemetry::exposition::Format::PrometheusText,
    )
    .unwrap();
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

fn rebootstraps() -> u64 {
    metric("ticket_authz_fleet_rebootstraps_total")
}
