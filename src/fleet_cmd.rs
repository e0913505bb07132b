//! The fleet's command line: the NATS flags `serve` and `relay` share,
//! `ticket-authz relay`, and the loader and follower of `serve
//! --nats-url`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::db;
use crate::fleet::{self, NatsSettings, Relay, SnapshotEvery, StreamSource};
use crate::follow::{Expected, WarmStart};
use crate::serve::{self as server, HeadlessListeners, Loader};
use crate::serve_cmd::{ConfigError, NotifyArg, config_error, one_source};
use crate::telemetry::{self, LogFormat, TelemetrySettings};

/// Where the fleet's stream and snapshots are.
#[derive(Debug, Args, Clone)]
pub struct NatsArgs {
    /// The NATS server(s): nats://host:4222 (or tls://…), comma-separated
    /// for a cluster. With `serve`: follow the relay's stream instead of a
    /// database.
    #[arg(long, env = "TICKET_AUTHZ_NATS_URL")]
    pub nats_url: Option<String>,
    /// A NATS credentials file (.creds: user JWT and NKey seed).
    #[arg(long, env = "TICKET_AUTHZ_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
    /// The CA (PEM) the NATS server's certificate must chain to; turns on
    /// TLS to NATS.
    #[arg(long, env = "TICKET_AUTHZ_NATS_TLS_CA")]
    pub nats_tls_ca: Option<PathBuf>,
    /// A file holding the NATS server's token.
    #[arg(long, env = "TICKET_AUTHZ_NATS_TOKEN_FILE")]
    pub nats_token_file: Option<PathBuf>,
    /// The JetStream stream of changes.
    #[arg(long, env = "TICKET_AUTHZ_STREAM", default_value = fleet::DEFAULT_STREAM)]
    pub stream: String,
    /// The subject changes are published on (the stream's subject).
    #[arg(long, env = "TICKET_AUTHZ_SUBJECT", default_value = fleet::DEFAULT_SUBJECT)]
    pub subject: String,
    /// The JetStream object store bucket of snapshots (the relays' lease
    /// is in the key-value bucket `<bucket>_lease`).
    #[arg(long, env = "TICKET_AUTHZ_BUCKET", default_value = fleet::DEFAULT_BUCKET)]
    pub bucket: String,
}

fn is_name(text: &str, extra: &[char]) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || extra.contains(&c))
}

impl NatsArgs {
    /// The settings, when `--nats-url` is given; every other NATS flag
    /// without it is an error naming the flag.
    pub fn settings(&self) -> Result<Option<NatsSettings>, ConfigError> {
        let Some(url) = self.nats_url.as_deref().map(str::trim) else {
            for (flag, given) in [
                ("--nats-creds", self.nats_creds.is_some()),
                ("--nats-tls-ca", self.nats_tls_ca.is_some()),
                ("--nats-token-file", self.nats_token_file.is_some()),
            ] {
                if given {
                    return Err(config_error(flag, "needs --nats-url"));
                }
            }
            return Ok(None);
        };
        for server in url.split(',') {
            let server = server.trim();
            let scheme_ok = ["nats://", "tls://"]
                .iter()
                .any(|s| server.starts_with(s) && server.len() > s.len());
            if !scheme_ok {
                return Err(config_error(
                    "--nats-url",
                    format!("`{server}` is not a nats://host:port or tls://host:port url"),
                ));
            }
        }
        for (flag, path) in [
            ("--nats-creds", &self.nats_creds),
            ("--nats-tls-ca", &self.nats_tls_ca),
            ("--nats-token-file", &self.nats_token_file),
        ] {
            if let Some(path) = path
                && let Err(e) = std::fs::metadata(path)
            {
                return Err(config_error(flag, format!("{}: {e}", path.display())));
            }
        }
        if self.nats_creds.is_some() && self.nats_token_file.is_some() {
            return Err(config_error(
                "--nats-token-file",
                "give either --nats-creds or --nats-token-file",
            ));
        }
        if !is_name(&self.stream, &[]) {
            return Err(config_error(
                "--stream",
                format!("`{}`: letters, digits, `_` and `-` only", self.stream),
            ));
        }
        if !is_name(&self.bucket, &[]) {
            return Err(config_error(
                "--bucket",
                format!("`{}`: letters, digits, `_` and `-` only", self.bucket),
            ));
        }
        if !is_name(&self.subject, &['.']) || self.subject.split('.').any(str::is_empty) {
            return Err(config_error(
                "--subject",
                format!(
                    "`{}`: dot-separated tokens of letters, digits, `_` and `-` (no wildcards)",
                    self.subject
                ),
            ));
        }
        Ok(Some(NatsSettings {
            url: url.to_owned(),
            creds: self.nats_creds.clone(),
            tls_ca: self.nats_tls_ca.clone(),
            token_file: self.nats_token_file.clone(),
            stream: self.stream.clone(),
            subject: self.subject.clone(),
            bucket: self.bucket.clone(),
        }))
    }
}

/// `ticket-authz relay`'s flags.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// The database to follow: postgres://… or sqlite://PATH (our schema).
    #[arg(long, env = "TICKET_AUTHZ_DATABASE_URL")]
    pub database_url: Option<String>,
    /// At most this many pooled database connections (besides LISTEN's).
    #[arg(long, env = "TICKET_AUTHZ_DATABASE_MAX_CONNECTIONS")]
    pub database_max_connections: Option<u32>,
    #[command(flatten)]
    pub nats: NatsArgs,
    /// A full snapshot besides the one at start: after N published
    /// revisions (`1000`) or after a duration (`10m`).
    #[arg(long, env = "TICKET_AUTHZ_SNAPSHOT_EVERY", default_value = "10m")]
    pub snapshot_every: String,
    /// How long the stream keeps messages; a sidecar away for longer
    /// bootstraps again from a snapshot. Used when the relay creates the
    /// stream.
    #[arg(long, env = "TICKET_AUTHZ_STREAM_MAX_AGE", default_value = "24h", value_parser = parse_duration)]
    pub stream_max_age: Duration,
    /// How long the publishing relay's lease lasts unrenewed: a standby
    /// takes over within it when the holder dies.
    #[arg(long, env = "TICKET_AUTHZ_LEASE", default_value = "10s", value_parser = parse_duration)]
    pub lease: Duration,
    /// How the relay learns of database changes (as `serve --notify`).
    #[arg(long, env = "TICKET_AUTHZ_NOTIFY", value_enum, default_value_t = NotifyArg::Listen)]
    pub notify: NotifyArg,
    /// How often to poll the change log and the stream as a safety net.
    #[arg(long, env = "TICKET_AUTHZ_POLL_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub poll_interval: Duration,
    /// A plaintext port serving only grpc.health.v1 (for probes).
    #[arg(long, env = "TICKET_AUTHZ_HEALTH_LISTEN")]
    pub health_listen: Option<String>,
    /// Serve Prometheus metrics at http://ADDRESS/metrics.
    #[arg(long, env = "TICKET_AUTHZ_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// How long shutdown waits for tasks.
    #[arg(long, env = "TICKET_AUTHZ_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Log format.
    #[arg(long, env = "TICKET_AUTHZ_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Which logs to keep, as `RUST_LOG`-style directives.
    #[arg(long, env = "TICKET_AUTHZ_LOG_FILTER")]
    pub log_filter: Option<String>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 500ms, 1s, 2m)"))
}

fn address(flag: &'static str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.parse()
        .map_err(|e| config_error(flag, format!("`{text}`: {e}")))
}

/// The relay's validated flags.
#[derive(Debug)]
struct RelayPlan {
    database_url: String,
    max_connections: Option<u32>,
    nats: NatsSettings,
    every: SnapshotEvery,
    stream_max_age: Duration,
    lease: Duration,
    notify: db::Notify,
    poll: Duration,
    health: Option<SocketAddr>,
    metrics: Option<SocketAddr>,
    grace: Duration,
    telemetry: TelemetrySettings,
}

impl RelayArgs {
    fn plan(&self) -> Result<RelayPlan, ConfigError> {
        let database_url = self.database_url.clone().ok_or_else(|| {
            config_error("--database-url", "required: the database the relay follows")
        })?;
        if !db::is_supported_url(&database_url) {
            return Err(config_error(
                "--database-url",
                format!(
                    "`{}` is not a postgres://… or sqlite://PATH url",
                    db::redact(&database_url)
                ),
            ));
        }
        let nats = self
            .nats
            .settings()?
            .ok_or_else(|| config_error("--nats-url", "required: where the relay publishes"))?;
        let every = self
            .snapshot_every
            .parse::<SnapshotEvery>()
            .map_err(|e| config_error("--snapshot-every", e))?;
        if self.lease < Duration::from_secs(1) {
            return Err(config_error("--lease", "must be at least 1s"));
        }
        if self.poll_interval.is_zero() {
            return Err(config_error("--poll-interval", "must be more than 0"));
        }
        if self.stream_max_age < Duration::from_secs(1) {
            return Err(config_error("--stream-max-age", "must be at least 1s"));
        }
        if self.database_max_connections == Some(0) {
            return Err(config_error(
                "--database-max-connections",
                "must be at least 1",
            ));
        }
        let log_filter = self
            .log_filter
            .clone()
            .or_else(|| std::env::var("RUST_LOG").ok())
            .unwrap_or_else(|| "info".to_owned());
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&log_filter) {
            return Err(config_error("--log-filter", format!("`{log_filter}`: {e}")));
        }
        Ok(RelayPlan {
            database_url,
            max_connections: self.database_max_connections,
            nats,
            every,
            stream_max_age: self.stream_max_age,
            lease: self.lease,
            notify: self.notify.into(),
            poll: self.poll_interval,
            health: self
                .health_listen
                .as_deref()
                .map(|h| address("--health-listen", h))
                .transpose()?,
            metrics: self
                .metrics_listen
                .as_deref()
                .map(|m| address("--metrics-listen", m))
                .transpose()?,
            grace: self.shutdown_grace,
            telemetry: TelemetrySettings {
                log_format: self.log_format,
                log_filter,
                export_traces: telemetry::otlp_configured(),
            },
        })
    }
}

/// `serve --nats-url`: the stream as the source, no database at all;
/// with `--snapshot-dir`, started from the saved snapshot when it is this
/// stream's.
pub fn nats_source(
    settings: NatsSettings,
    poll: Duration,
    warm: Option<(PathBuf, Duration)>,
) -> (Loader, server::Follow) {
    match warm {
        None => one_source(
            true,
            move || {
                let settings = settings.clone();
                async move {
                    let client = fleet::connect(&settings).await.map_err(|e| e.to_string())?;
                    Ok(StreamSource::new(client, settings, poll))
                }
            },
            |_, _| {},
        ),
        Some((dir, every)) => one_source(
            true,
            move || {
                let (settings, dir) = (settings.clone(), dir.clone());
                async move {
                    let client = fleet::connect(&settings).await.map_err(|e| e.to_string())?;
                    let expected = Expected {
                        // The stream's revision chain refuses another
                        // source's snapshot by itself.
                        source: None,
                        stream: settings.stream.clone(),
                    };
                    let source = StreamSource::new(client, settings, poll);
                    Ok(WarmStart::new(source, dir, expected, String::new(), every))
                }
            },
            WarmStart::set_store,
        ),
    }
}

/// A relay's name in the lease: host, process and a random part, so that
/// a restarted relay is a new holder.
pub fn holder_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "relay".to_owned());
    format!("{host}-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

async fn relay(plan: RelayPlan) -> ExitCode {
    let bind = |flag: &'static str, addr: SocketAddr| async move {
        tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            eprintln!("ticket-authz relay: {flag} {addr}: {e}");
            ExitCode::FAILURE
        })
    };
    let health = match plan.health {
        Some(addr) => match bind("--health-listen", addr).await {
            Ok(l) => Some(l),
            Err(code) => return code,
        },
        None => None,
    };
    let metrics = match plan.metrics {
        Some(addr) => match bind("--metrics-listen", addr).await {
            Ok(l) => Some(l),
            Err(code) => return code,
        },
        None => None,
    };
    let db = match db::Database::connect_with(&plan.database_url, plan.max_connections).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("ticket-authz relay: --database-url: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = db.migrate().await {
        eprintln!("ticket-authz relay: --database-url: {e}");
        return ExitCode::FAILURE;
    }
    tracing::info!(
        database = %db::redact(&plan.database_url),
        nats = %plan.nats.url,
        stream = %plan.nats.stream,
        bucket = %plan.nats.bucket,
        "ticket-authz relay starting"
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let identity = fleet::source_identity(&plan.database_url);
    let plan = Arc::new(plan);
    let (loader, follow) = {
        let plan = plan.clone();
        one_source(
            true,
            move || {
                let (plan, db, identity, stop) =
                    (plan.clone(), db.clone(), identity.clone(), stop_rx.clone());
                async move {
                    let (client, snapshots) = fleet::prepare(&plan.nats, plan.stream_max_age)
                        .await
                        .map_err(|e| e.to_string())?;
                    let js = async_nats::jetstream::new(client.clone());
                    let mut lease = fleet::Lease::start(
                        &js,
                        &plan.nats.lease_bucket(),
                        holder_id(),
                        plan.lease,
                        stop,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                    // One renewal round before the first load, so that a
                    // lone relay leads from its start.
                    let _ = tokio::time::timeout(plan.lease / 3, lease.changed()).await;
                    let reader = StreamSource::new(client, plan.nats.clone(), plan.poll);
                    let source = db::DbSource::new(db, plan.notify, plan.poll);
                    Ok(Relay::new(
                        source, reader, lease, snapshots, identity, plan.every,
                    ))
                }
            },
            Relay::set_store,
        )
    };
    let listeners = HeadlessListeners { health, metrics };
    let shutdown = async move {
        crate::serve_cmd::signal().await;
        let _ = stop_tx.send(true);
    };
    match server::run_headless(listeners, shutdown, plan.grace, loader, follow).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ticket-authz relay: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `ticket-authz relay`.
pub fn main(args: RelayArgs) -> ExitCode {
    let plan = match args.plan() {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("ticket-authz relay: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(runtime) = crate::serve_cmd::runtime("relay") else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(async move {
        let telemetry = match telemetry::init(&plan.telemetry) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("ticket-authz relay: {e}");
                return ExitCode::from(2);
            }
        };
        let code = relay(plan).await;
        telemetry.shutdown();
        code
    })
}
