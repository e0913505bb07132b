//! The `serve` command line: flags (each with a `TICKET_AUTHZ_<FLAG>`
//! environment variable), their validation, logging, signals.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::sync::Mutex;

use crate::follow::ChangeSource;

use crate::dataset;
use crate::db::{self, Database};
use crate::ext_authz::{self, ExtAuthzConfig, RouteTable, SubjectSource};
use crate::serve::{self as server, Listeners, Loader, ServeConfig, TlsFiles, TokenSource};
use crate::snapshot::Snapshot;
use crate::telemetry::decision_log::Destination;
use crate::telemetry::{self, DecisionLog, LogFormat, TelemetrySettings};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the gRPC port.
    #[arg(long, env = "TICKET_AUTHZ_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: String,
    /// Serve this dataset file (YAML/JSON): alone, from memory, touching
    /// nothing persistent; with --database-url (and --replace), imported into
    /// that database first. Its `now` fixes the clock for ticket limits.
    #[arg(long, env = "TICKET_AUTHZ_DATASET")]
    pub dataset: Option<PathBuf>,
    /// The database to serve from: postgres://… or sqlite://PATH. Default:
    /// the embedded SQLite file ticket-authz.db in the working directory
    /// (created and migrated when missing), unless --dataset is given alone.
    #[arg(long, env = "TICKET_AUTHZ_DATABASE_URL")]
    pub database_url: Option<String>,
    /// With --dataset and --database-url: replace the database's data with
    /// the file's.
    #[arg(long, env = "TICKET_AUTHZ_REPLACE")]
    pub replace: bool,
    /// How the service learns of database changes: `listen` (PostgreSQL
    /// LISTEN/NOTIFY, polling as a safety net) or `poll` (read the change log
    /// every --poll-interval; SQLite always polls).
    #[arg(long, env = "TICKET_AUTHZ_NOTIFY", value_enum, default_value_t = NotifyArg::Listen)]
    pub notify: NotifyArg,
    /// How often to poll the change log (and, with `listen`, to check it
    /// anyway in case a notification was lost).
    #[arg(long, env = "TICKET_AUTHZ_POLL_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub poll_interval: Duration,
    /// How long a request with `min_revision` waits for that revision.
    #[arg(long, env = "TICKET_AUTHZ_REVISION_WAIT", default_value = "1s", value_parser = parse_duration)]
    pub revision_wait: Duration,
    /// A plaintext, unauthenticated port serving only grpc.health.v1 (for
    /// Kubernetes probes).
    #[arg(long, env = "TICKET_AUTHZ_HEALTH_LISTEN")]
    pub health_listen: Option<String>,
    /// Server certificate chain (PEM); turns on TLS. Re-read with the key
    /// when either changes; new connections use the new pair.
    #[arg(long, env = "TICKET_AUTHZ_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, env = "TICKET_AUTHZ_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) that must have signed every caller's certificate (mutual
    /// TLS). Re-read when it changes.
    #[arg(long, env = "TICKET_AUTHZ_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    /// File of the tokens callers send as `authorization: Bearer <token>`:
    /// one per line (any is accepted, so a rotation can overlap old and
    /// new). Re-read when it changes.
    #[arg(long, env = "TICKET_AUTHZ_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// How often the TLS and token files are compared with what is in use,
    /// besides reacting to change events (a safety net for a missed event).
    #[arg(long, env = "TICKET_AUTHZ_CREDENTIALS_CHECK_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub credentials_check_interval: Duration,
    /// Requests in progress at once; more are refused with RESOURCE_EXHAUSTED.
    #[arg(
        long,
        env = "TICKET_AUTHZ_MAX_CONCURRENT_REQUESTS",
        default_value_t = 1024
    )]
    pub max_concurrent_requests: usize,
    /// Largest request or response message, in bytes.
    #[arg(long, env = "TICKET_AUTHZ_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: usize,
    /// How long shutdown waits for in-flight calls before closing them.
    #[arg(long, env = "TICKET_AUTHZ_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Log format.
    #[arg(long, env = "TICKET_AUTHZ_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Which logs to keep, as `RUST_LOG`-style directives (for example
    /// `warn,ticket_authz::db=debug`). Default: `RUST_LOG`, else `info`.
    #[arg(long, env = "TICKET_AUTHZ_LOG_FILTER")]
    pub log_filter: Option<String>,
    /// Serve Prometheus metrics at http://ADDRESS/metrics.
    #[arg(long, env = "TICKET_AUTHZ_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Serve the web console (explorer and playground) on this address,
    /// with the main port's TLS and tokens. Off by default; without
    /// --auth-token-file only a loopback address is allowed.
    #[arg(long, env = "TICKET_AUTHZ_CONSOLE_LISTEN")]
    pub console_listen: Option<String>,
    /// Write sampled decisions as JSON lines to `stdout` or to this file
    /// (appended). Off by default.
    #[arg(long, env = "TICKET_AUTHZ_DECISION_LOG")]
    pub decision_log: Option<String>,
    /// The share of decisions the decision log keeps, from 0 to 1.
    #[arg(long, env = "TICKET_AUTHZ_DECISION_LOG_SAMPLE", default_value_t = 1.0)]
    pub decision_log_sample: f64,
    /// Put user and ticket ids on trace spans (off: spans carry only the
    /// action, outcome, reason and revision).
    #[arg(long, env = "TICKET_AUTHZ_TRACE_SUBJECTS")]
    pub trace_subjects: bool,
    /// The base URL callers reach the service at (http:// or https://,
    /// optionally with a path), for the URLs of the AuthZEN configuration
    /// document. Default: each request's scheme and Host.
    #[arg(long, env = "TICKET_AUTHZ_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// ext_authz: the request header holding the user id (set by a trusted
    /// authentication filter in front).
    #[arg(
        long,
        env = "TICKET_AUTHZ_EXT_AUTHZ_USER_HEADER",
        default_value = "x-user-id"
    )]
    pub ext_authz_user_header: String,
    /// ext_authz: take the user id from this claim of the payload Envoy's
    /// jwt_authn filter verified, instead of from a header.
    #[arg(long, env = "TICKET_AUTHZ_EXT_AUTHZ_JWT_CLAIM")]
    pub ext_authz_jwt_claim: Option<String>,
    /// ext_authz: the route table (YAML list of method, path, action and
    /// ids) for routes whose context_extensions name no action.
    #[arg(long, env = "TICKET_AUTHZ_EXT_AUTHZ_ROUTES")]
    pub ext_authz_routes: Option<PathBuf>,
    /// Keep tickets out of memory: read each from the database when asked
    /// about and keep at most SIZE of them (`512MiB`, `2GiB`, `64KiB`) in
    /// a cache; lists are read from the database. Needs a database
    /// (PostgreSQL or SQLite, our schema). Off: every ticket in memory.
    #[arg(long, env = "TICKET_AUTHZ_TICKET_CACHE", value_name = "SIZE")]
    pub ticket_cache: Option<String>,
    /// Follow a helpdesk's own database through a source mapping: a
    /// preset (`integria`) or a mapping file (docs/mapping.md).
    /// --database-url names the helpdesk's database (mysql://…), where
    /// `migrate --mapping` installed the change capture first.
    #[arg(long, env = "TICKET_AUTHZ_MAPPING", value_name = "NAME|FILE")]
    pub mapping: Option<String>,
    /// At most this many pooled database connections (besides the one
    /// LISTEN holds): 8 on PostgreSQL, 4 on SQLite by default. A fleet of
    /// direct sidecars multiplies it; `ticket-authz relay` and `--nats-url`
    /// take the fleet off the database.
    #[arg(long, env = "TICKET_AUTHZ_DATABASE_MAX_CONNECTIONS")]
    pub database_max_connections: Option<u32>,
    #[command(flatten)]
    pub nats: crate::fleet_cmd::NatsArgs,
    /// Save the served snapshot in this directory (written atomically, at
    /// most every --snapshot-interval) and start from it: catch up from
    /// the database's change log or the stream instead of a full load. A
    /// damaged file, or one of another source, is ignored with a warning.
    /// For database and NATS sources (--dataset alone touches no disk).
    #[arg(long, env = "TICKET_AUTHZ_SNAPSHOT_DIR")]
    pub snapshot_dir: Option<PathBuf>,
    /// At most how often --snapshot-dir is written.
    #[arg(long, env = "TICKET_AUTHZ_SNAPSHOT_INTERVAL", default_value = "1m", value_parser = parse_duration)]
    pub snapshot_interval: Duration,
    /// ext_authz: the answer for a request no route maps.
    #[arg(long, env = "TICKET_AUTHZ_EXT_AUTHZ_UNMATCHED", value_enum, default_value_t = UnmatchedArg::Deny)]
    pub ext_authz_unmatched: UnmatchedArg,
}

/// `--ext-authz-unmatched`: a request no route maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UnmatchedArg {
    /// Deny it (403, reason NO_ROUTE).
    Deny,
    /// Let it through.
    Allow,
}

impl From<UnmatchedArg> for ext_authz::Unmatched {
    fn from(arg: UnmatchedArg) -> Self {
        match arg {
            UnmatchedArg::Deny => ext_authz::Unmatched::Deny,
            UnmatchedArg::Allow => ext_authz::Unmatched::Allow,
        }
    }
}

/// `--notify`: how the service learns of database changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NotifyArg {
    Listen,
    Poll,
}

impl From<NotifyArg> for db::Notify {
    fn from(arg: NotifyArg) -> Self {
        match arg {
            NotifyArg::Listen => db::Notify::Listen,
            NotifyArg::Poll => db::Notify::Poll,
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 500ms, 1s, 2m)"))
}

/// A configuration problem, naming the flag.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {message}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub message: String,
}

pub(crate) fn config_error(flag: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        flag,
        message: message.into(),
    }
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path)
        .map_err(|e| config_error(flag, format!("cannot read {}: {e}", path.display())))
}

fn address(flag: &'static str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.parse().map_err(|_| {
        config_error(
            flag,
            format!("`{text}` is not an address such as 127.0.0.1:50051"),
        )
    })
}

/// `--public-url`: an absolute http(s) URL without query or fragment,
/// returned without its trailing slash (endpoint paths are appended).
fn public_url(text: &str) -> Result<String, ConfigError> {
    let bad = |why: &str| config_error("--public-url", format!("`{text}` {why}"));
    let uri: http::Uri = text
        .parse()
        .map_err(|_| bad("is not a URL such as https://authz.example.com"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(bad("must start with http:// or https://"));
    }
    if uri.authority().is_none_or(|a| a.host().is_empty()) {
        return Err(bad("has no host"));
    }
    if uri.query().is_some() || text.contains('#') {
        return Err(bad("must have no query or fragment"));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

/// Where the data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// A dataset file held in memory.
    File(PathBuf),
    /// A database, optionally filled from a dataset file first.
    Database {
        url: String,
        import: Option<PathBuf>,
    },
    /// A helpdesk's own database, read through a source mapping.
    Mapped {
        url: String,
        mapping: Arc<crate::mapping::Mapping>,
    },
    /// A relay's stream and snapshots (`--nats-url`), no database.
    Nats(crate::fleet::NatsSettings),
}

/// The embedded default: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://ticket-authz.db";

/// Everything `serve` needs, validated.
#[derive(Debug)]
pub struct Plan {
    pub notify: db::Notify,
    pub poll_interval: Duration,
    pub listen: SocketAddr,
    pub health_listen: Option<SocketAddr>,
    pub metrics_listen: Option<SocketAddr>,
    pub console_listen: Option<SocketAddr>,
    /// Where decisions are logged, and the share logged.
    pub decision_log: Option<(Destination, f64)>,
    pub telemetry: TelemetrySettings,
    pub config: ServeConfig,
    pub source: DataSource,
    /// `--ticket-cache`, in bytes.
    pub ticket_cache: Option<u64>,
    /// `--database-max-connections`.
    pub database_max_connections: Option<u32>,
    /// `--snapshot-dir` and `--snapshot-interval`.
    pub snapshot_dir: Option<(PathBuf, Duration)>,
}

impl ServeArgs {
    /// Validates the flags and reads the files they name.
    pub fn plan(&self) -> Result<Plan, ConfigError> {
        let source = match (self.nats()?, self.mapped()?) {
            (Some(nats), _) => nats,
            (None, Some(mapped)) => mapped,
            (None, None) => self.source()?,
        };
        if self.database_max_connections == Some(0) {
            return Err(config_error(
                "--database-max-connections",
                "must be at least 1",
            ));
        }
        if self.snapshot_dir.is_some() {
            if matches!(source, DataSource::File(_)) {
                return Err(config_error(
                    "--snapshot-dir",
                    "needs a database or NATS source: --dataset alone touches nothing on disk",
                ));
            }
            if self.ticket_cache.is_some() {
                return Err(config_error(
                    "--snapshot-dir",
                    "not with --ticket-cache: the cached mode's snapshot holds no tickets",
                ));
            }
            if self.snapshot_interval < Duration::from_secs(1) {
                return Err(config_error("--snapshot-interval", "must be at least 1s"));
            }
        }
        // Read and checked once here so that a bad file stops the start
        // naming its flag; `run` re-reads them and keeps them current.
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                let cert_pem = read("--tls-cert", cert)?;
                let key_pem = read("--tls-key", key)?;
                let ca = self
                    .client_ca
                    .as_deref()
                    .map(|p| read("--client-ca", p).map(|pem| (p.display().to_string(), pem)))
                    .transpose()?;
                server::check_tls(
                    (&cert.display().to_string(), &cert_pem),
                    (&key.display().to_string(), &key_pem),
                    ca.as_ref()
                        .map(|(name, pem)| (name.as_str(), pem.as_slice())),
                )
                .map_err(|e| {
                    let flag = match e {
                        server::CredentialError::ClientCa { .. } => "--client-ca",
                        server::CredentialError::NoKey { .. } => "--tls-key",
                        _ => "--tls-cert",
                    };
                    config_error(flag, e.to_string())
                })?;
                Some(
                    TlsFiles {
                        cert: cert.clone(),
                        key: key.clone(),
                        client_ca: self.client_ca.clone(),
                    }
                    .into(),
                )
            }
            (Some(_), None) => return Err(config_error("--tls-key", "required with --tls-cert")),
            (None, Some(_)) => return Err(config_error("--tls-cert", "required with --tls-key")),
            (None, None) => {
                if self.client_ca.is_some() {
                    return Err(config_error(
                        "--client-ca",
                        "needs --tls-cert and --tls-key",
                    ));
                }
                None
            }
        };
        let auth_token = match &self.auth_token_file {
            None => None,
            Some(path) => {
                let bytes = read("--auth-token-file", path)?;
                server::parse_tokens(&path.display().to_string(), &bytes)
                    .map_err(|e| config_error("--auth-token-file", e.to_string()))?;
                Some(TokenSource::File(path.clone()))
            }
        };
        if self.credentials_check_interval.is_zero() {
            return Err(config_error(
                "--credentials-check-interval",
                "must be more than 0",
            ));
        }
        if self.max_concurrent_requests == 0 {
            return Err(config_error(
                "--max-concurrent-requests",
                "must be at least 1",
            ));
        }
        if self.max_message_bytes < 1024 {
            return Err(config_error("--max-message-bytes", "must be at least 1024"));
        }
        if self.poll_interval.is_zero() {
            return Err(config_error("--poll-interval", "must be more than 0"));
        }
        if !(0.0..=1.0).contains(&self.decision_log_sample) {
            return Err(config_error(
                "--decision-log-sample",
                format!("{} is not a ratio from 0 to 1", self.decision_log_sample),
            ));
        }
        let decision_log = match self.decision_log.as_deref().map(str::trim) {
            None => None,
            Some("") => {
                return Err(config_error(
                    "--decision-log",
                    "give `stdout` or a file path",
                ));
            }
            Some(text) => Some((Destination::parse(text), self.decision_log_sample)),
        };
        let ext_authz = self.ext_authz()?;
        let log_filter = self
            .log_filter
            .clone()
            .or_else(|| std::env::var("RUST_LOG").ok())
            .unwrap_or_else(|| "info".to_owned());
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&log_filter) {
            return Err(config_error("--log-filter", format!("`{log_filter}`: {e}")));
        }
        let public_url = self.public_url.as_deref().map(public_url).transpose()?;
        let ticket_cache = self
            .ticket_cache
            .as_deref()
            .map(|size| ticket_cache_size(size, &source))
            .transpose()?;
        Ok(Plan {
            ticket_cache,
            database_max_connections: self.database_max_connections,
            snapshot_dir: self
                .snapshot_dir
                .clone()
                .map(|dir| (dir, self.snapshot_interval)),
            notify: self.notify.into(),
            poll_interval: self.poll_interval,
            listen: address("--listen", &self.listen)?,
            health_listen: self
                .health_listen
                .as_deref()
                .map(|h| address("--health-listen", h))
                .transpose()?,
            metrics_listen: self
                .metrics_listen
                .as_deref()
                .map(|m| address("--metrics-listen", m))
                .transpose()?,
            console_listen: self.console_listen(auth_token.is_some())?,
            decision_log,
            telemetry: TelemetrySettings {
                log_format: self.log_format,
                log_filter,
                export_traces: telemetry::otlp_configured(),
            },
            config: ServeConfig {
                revision_wait: self.revision_wait,
                tls,
                auth_token,
                credentials_check_interval: self.credentials_check_interval,
                max_concurrent_requests: self.max_concurrent_requests,
                max_message_bytes: self.max_message_bytes,
                shutdown_grace: self.shutdown_grace,
                trace_subjects: self.trace_subjects,
                decision_log: None,
                public_url,
                ext_authz,
                ticket_cache: None,
            },
            source,
        })
    }
}

impl ServeArgs {
    /// `--dataset` and `--database-url`: what to serve.
    fn source(&self) -> Result<DataSource, ConfigError> {
        let source = match (&self.dataset, &self.database_url) {
            (Some(file), None) => DataSource::File(file.clone()),
            (Some(file), Some(url)) => {
                if !self.replace {
                    return Err(config_error(
                        "--replace",
                        "required with --dataset and --database-url: the file replaces the database's data",
                    ));
                }
                DataSource::Database {
                    url: url.clone(),
                    import: Some(file.clone()),
                }
            }
            (None, url) => DataSource::Database {
                url: url
                    .clone()
                    .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
                import: None,
            },
        };
        if let DataSource::Database { url, .. } = &source
            && !db::is_supported_url(url)
        {
            return Err(config_error(
                "--database-url",
                format!(
                    "`{}` is not a postgres://… or sqlite://PATH url",
                    db::redact(url)
                ),
            ));
        }
        Ok(source)
    }

    /// `--nats-url`: a relay's stream, alone.
    fn nats(&self) -> Result<Option<DataSource>, ConfigError> {
        let Some(settings) = self.nats.settings()? else {
            return Ok(None);
        };
        for (flag, given) in [
            ("--dataset", self.dataset.is_some()),
            ("--database-url", self.database_url.is_some()),
            ("--mapping", self.mapping.is_some()),
            ("--ticket-cache", self.ticket_cache.is_some()),
            (
                "--database-max-connections",
                self.database_max_connections.is_some(),
            ),
        ] {
            if given {
                return Err(config_error(
                    flag,
                    "not with --nats-url: the relay's stream is the whole source",
                ));
            }
        }
        Ok(Some(DataSource::Nats(settings)))
    }

    /// `--mapping`: a helpdesk's database, with a mapping that parses.
    fn mapped(&self) -> Result<Option<DataSource>, ConfigError> {
        let Some(name) = &self.mapping else {
            return Ok(None);
        };
        if self.dataset.is_some() {
            return Err(config_error(
                "--mapping",
                "cannot be combined with --dataset: a mapped source is the helpdesk's database",
            ));
        }
        if self.ticket_cache.is_some() {
            return Err(config_error(
                "--ticket-cache",
                "needs our own schema; a mapped source (--mapping) holds its tickets in memory",
            ));
        }
        let mapping = crate::mapping::Mapping::load(name)
            .map_err(|e| config_error("--mapping", e.to_string()))?;
        let wanted = match mapping.database {
            crate::mapping::Database::MySql => "a MariaDB/MySQL database (mysql://…)",
            crate::mapping::Database::Postgres => "a PostgreSQL database (postgres://…)",
        };
        let Some(url) = &self.database_url else {
            return Err(config_error(
                "--database-url",
                format!("required with --mapping: the helpdesk's database, {wanted}"),
            ));
        };
        if crate::mapped::url_database(url) != Some(mapping.database) {
            return Err(config_error(
                "--database-url",
                format!(
                    "`{}`: mapping {} is for {}; it needs {wanted}",
                    db::redact(url),
                    mapping.file,
                    mapping.database.name()
                ),
            ));
        }
        Ok(Some(DataSource::Mapped {
            url: url.clone(),
            mapping: Arc::new(mapping),
        }))
    }

    /// `--console-listen`: without a token, loopback only (the console
    /// would show the data to anyone who reaches it).
    fn console_listen(&self, token: bool) -> Result<Option<SocketAddr>, ConfigError> {
        let Some(text) = &self.console_listen else {
            return Ok(None);
        };
        let addr = address("--console-listen", text)?;
        if !token && !addr.ip().is_loopback() {
            return Err(config_error(
                "--console-listen",
                format!(
                    "{addr} is not a loopback address: set --auth-token-file, or listen on 127.0.0.1 or [::1]"
                ),
            ));
        }
        Ok(Some(addr))
    }

    /// The ext_authz flags; a bad route file stops the start, naming the
    /// file, the line and the member.
    fn ext_authz(&self) -> Result<ExtAuthzConfig, ConfigError> {
        let subject = match self.ext_authz_jwt_claim.as_deref().map(str::trim) {
            Some("") => {
                return Err(config_error(
                    "--ext-authz-jwt-claim",
                    "give a claim name such as sub",
                ));
            }
            Some(claim) => SubjectSource::JwtClaim(claim.to_owned()),
            None => {
                let name = self.ext_authz_user_header.trim().to_ascii_lowercase();
                if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return Err(config_error(
                        "--ext-authz-user-header",
                        format!("`{name}` is not a header name"),
                    ));
                }
                SubjectSource::Header(name)
            }
        };
        let routes = self
            .ext_authz_routes
            .as_deref()
            .map(|path| {
                RouteTable::load(path)
                    .map(std::sync::Arc::new)
                    .map_err(|e| config_error("--ext-authz-routes", e.to_string()))
            })
            .transpose()?;
        Ok(ExtAuthzConfig {
            subject,
            routes,
            unmatched: self.ext_authz_unmatched.into(),
        })
    }
}

/// Loads a dataset file into a snapshot at revision 1, on a blocking thread.
pub fn dataset_loader(path: PathBuf) -> Loader {
    Box::pin(async move {
        tokio::task::spawn_blocking(move || {
            let loaded = dataset::load_file(&path).map_err(|e| e.to_string())?;
            let mut snapshot =
                Snapshot::build(&loaded.dataset).map_err(|e| format!("{}: {e}", path.display()))?;
            snapshot.set_revision(1);
            Ok(snapshot)
        })
        .await
        .map_err(|e| e.to_string())?
    })
}

/// `--ticket-cache SIZE`: a size in bytes, for a database source.
fn ticket_cache_size(size: &str, source: &DataSource) -> Result<u64, ConfigError> {
    if let DataSource::File(_) = source {
        return Err(config_error(
            "--ticket-cache",
            "needs a database (--database-url): a dataset file is served from memory",
        ));
    }
    let bytes = size
        .trim()
        .parse::<bytesize::ByteSize>()
        .map_err(|e| config_error("--ticket-cache", format!("`{size}`: {e}")))?
        .as_u64();
    if bytes == 0 {
        return Err(config_error(
            "--ticket-cache",
            format!("`{size}`: the cache needs room for at least one ticket"),
        ));
    }
    Ok(bytes)
}

/// Loads the permission graph (no tickets), at the database's revision,
/// into a snapshot: the cached mode's first load.
pub fn graph_loader(db: Database) -> Loader {
    Box::pin(async move {
        db.snapshot_of(db::LoadScope::Graph)
            .await
            .map_err(|e| e.to_string())
    })
}

/// Follows the database's graph, keeping `cache` in step with its tickets.
pub fn cached_follower(
    db: Database,
    notify: db::Notify,
    interval: Duration,
    cache: crate::ticket_cache::TicketCache,
) -> server::Follow {
    Box::new(move |store, stop| {
        let source = db::DbSource::new(db, notify, interval).scope(db::LoadScope::Graph);
        Box::pin(crate::follow::follow(
            crate::ticket_cache::CachedSource::new(source, cache),
            store,
            stop,
        ))
    })
}

/// Loads the database's data, at its revision, into a snapshot.
pub fn database_loader(db: Database) -> Loader {
    Box::pin(async move { db.snapshot().await.map_err(|e| e.to_string()) })
}

/// Follows the database's changes after the first load.
pub fn follower(db: Database, notify: db::Notify, interval: Duration) -> server::Follow {
    Box::new(move |store, stop| {
        Box::pin(crate::follow::follow(
            db::DbSource::new(db, notify, interval),
            store,
            stop,
        ))
    })
}

/// Connects to the database (creating a missing SQLite file), applies the
/// migrations, and imports `import` with replace when given.
pub async fn prepare_database(
    url: &str,
    import: Option<&Path>,
    max_connections: Option<u32>,
) -> Result<Database, String> {
    let db = Database::connect_with(url, max_connections)
        .await
        .map_err(|e| format!("--database-url: {e}"))?;
    db.migrate()
        .await
        .map_err(|e| format!("--database-url: {e}"))?;
    if let Some(file) = import {
        let loaded = dataset::load_file(file).map_err(|e| e.to_string())?;
        let revision = db
            .import(&loaded.dataset, true)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(file = %file.display(), revision, "dataset imported");
    }
    Ok(db)
}

/// Connects to a mapped source and checks that its capture is this
/// mapping's: `serve` never installs (exit 2 says to run `migrate`).
pub async fn prepare_mapped(
    url: &str,
    mapping: &crate::mapping::Mapping,
) -> Result<crate::mapped::MappedDb, (ExitCode, String)> {
    use crate::mapped::{MappedDb, MappedError};
    let failed = |e: MappedError| match e {
        MappedError::Sql(e) => (
            ExitCode::FAILURE,
            format!("--database-url {}: {e}", db::redact(url)),
        ),
        e => (ExitCode::from(2), e.to_string()),
    };
    let source = MappedDb::connect(url, mapping).await.map_err(failed)?;
    source.verify_capture(mapping).await.map_err(failed)?;
    Ok(source)
}

/// Backoff from 100 ms to 5 s between attempts that failed, logging
/// each: a sidecar or relay starting before NATS or the first snapshot
/// waits for them, NOT_SERVING meanwhile.
#[derive(Debug)]
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Backoff(Duration::from_millis(100))
    }

    async fn failed(&mut self, what: &str, error: &str) {
        tracing::warn!(
            error,
            retry_in_ms = self.0.as_millis() as u64,
            "{what} failed; retrying"
        );
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
    }
}

/// The first load and the follower of one source, so that the follower
/// continues from what the load read. With `retry`, making the source and
/// its first load are retried with backoff (NATS or the first snapshot
/// may come later); without, a failure ends the start.
pub(crate) fn one_source<S, M, Fut>(
    retry: bool,
    make: M,
    prepare: fn(&mut S, Arc<crate::store::Store>),
) -> (Loader, server::Follow)
where
    S: ChangeSource,
    M: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<S, String>> + Send,
{
    let slot: Arc<Mutex<Option<S>>> = Arc::new(Mutex::new(None));
    let for_load = slot.clone();
    let loader: Loader = Box::pin(async move {
        let mut make = make;
        let mut backoff = Backoff::new();
        let mut source = loop {
            match make().await {
                Ok(source) => break source,
                Err(e) if retry => backoff.failed("connecting", &e).await,
                Err(e) => return Err(e),
            }
        };
        let mut backoff = Backoff::new();
        let snapshot = loop {
            match source.load().await {
                Ok(snapshot) => break snapshot,
                Err(e) if retry => backoff.failed("the first load", &e.to_string()).await,
                Err(e) => return Err(e.to_string()),
            }
        };
        *for_load.lock().await = Some(source);
        Ok(snapshot)
    });
    let follow: server::Follow = Box::new(move |store, stop| {
        Box::pin(async move {
            let Some(mut source) = slot.lock().await.take() else {
                return;
            };
            prepare(&mut source, store.clone());
            crate::follow::follow(source, store, stop).await;
        })
    });
    (loader, follow)
}

/// The first load and the follower of a mapped source: one source, so the
/// follower continues from what the load read.
pub fn mapped_source(
    db: crate::mapped::MappedDb,
    mapping: Arc<crate::mapping::Mapping>,
    interval: Duration,
) -> (Loader, server::Follow) {
    let source = crate::mapped::MappedSource::new(db, mapping, interval);
    one_source(false, single(source), |_, _| {})
}

/// A maker that hands out `source` once (a source made before the start).
fn single<S: Send + 'static>(
    source: S,
) -> impl FnMut() -> std::future::Ready<Result<S, String>> + Send + 'static {
    let mut source = Some(source);
    move || {
        std::future::ready(
            source
                .take()
                .ok_or_else(|| "the source is already followed".to_owned()),
        )
    }
}

/// A database source behind `--snapshot-dir`: started from the saved
/// snapshot when it is this database's, saved every `every`.
fn warm_source<S: crate::follow::ChangeSource>(
    source: S,
    dir: PathBuf,
    every: Duration,
    url: &str,
) -> (Loader, server::Follow) {
    let identity = crate::fleet::source_identity(url);
    let warm = crate::follow::WarmStart::new(
        source,
        dir,
        crate::follow::Expected {
            source: Some(identity.clone()),
            stream: String::new(),
        },
        identity,
        every,
    );
    one_source(false, single(warm), crate::follow::WarmStart::set_store)
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// Binds `address` for `flag`, naming both on failure.
async fn bind(flag: &str, address: SocketAddr) -> Result<tokio::net::TcpListener, ExitCode> {
    tokio::net::TcpListener::bind(address).await.map_err(|e| {
        eprintln!("ticket-authz serve: {flag}: cannot bind {address}: {e}");
        ExitCode::from(2)
    })
}

/// The multi-threaded runtime a long-running command runs on; `None`
/// (said on stderr) when it cannot start.
pub(crate) fn runtime(command: &str) -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("ticket-authz {command}: cannot start the runtime: {e}");
            None
        }
    }
}

pub fn main(args: ServeArgs) -> ExitCode {
    let plan = match args.plan() {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("ticket-authz serve: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(runtime) = runtime("serve") else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(async move {
        let mut plan = plan;
        // Inside the runtime: the trace exporter's channel lives on it.
        let telemetry = match telemetry::init(&plan.telemetry) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("ticket-authz serve: {e}");
                return ExitCode::from(2);
            }
        };
        if let Some((destination, sample)) = &plan.decision_log {
            match DecisionLog::open(destination, *sample) {
                Ok(log) => plan.config.decision_log = Some(log),
                Err(e) => {
                    eprintln!("ticket-authz serve: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        let code = serve(plan).await;
        telemetry.shutdown();
        code
    })
}

async fn serve(mut plan: Plan) -> ExitCode {
    {
        let listener = match bind("--listen", plan.listen).await {
            Ok(l) => l,
            Err(code) => return code,
        };
        let health = match plan.health_listen {
            None => None,
            Some(addr) => match bind("--health-listen", addr).await {
                Ok(l) => Some(l),
                Err(code) => return code,
            },
        };
        let metrics = match plan.metrics_listen {
            None => None,
            Some(addr) => match bind("--metrics-listen", addr).await {
                Ok(l) => Some(l),
                Err(code) => return code,
            },
        };
        let console = match plan.console_listen {
            None => None,
            Some(addr) => match bind("--console-listen", addr).await {
                Ok(l) => Some(l),
                Err(code) => return code,
            },
        };
        tracing::info!(
            listen = %plan.listen,
            health = ?plan.health_listen,
            console = ?plan.console_listen,
            metrics = ?plan.metrics_listen,
            traces = plan.telemetry.export_traces,
            decision_log = plan.config.decision_log.is_some(),
            tls = plan.config.tls.is_some(),
            mutual_tls = plan.config.tls.as_ref().is_some_and(|t| t.mutual()),
            token_auth = plan.config.auth_token.is_some(),
            source = %match &plan.source {
                DataSource::File(f) => format!("file {}", f.display()),
                DataSource::Database { url, .. } => db::redact(url),
                DataSource::Mapped { url, mapping } =>
                    format!("{} through mapping {}", db::redact(url), mapping.file),
                DataSource::Nats(nats) =>
                    format!("stream {} on {}", nats.stream, nats.url),
            },
            "ticket-authz starting"
        );
        let (loader, follow) = match &plan.source {
            DataSource::File(file) => (dataset_loader(file.clone()), None),
            DataSource::Nats(settings) => {
                let (loader, follow) = crate::fleet_cmd::nats_source(
                    settings.clone(),
                    plan.poll_interval,
                    plan.snapshot_dir.clone(),
                );
                (loader, Some(follow))
            }
            DataSource::Mapped { url, mapping } => match prepare_mapped(url, mapping).await {
                Ok(db) => {
                    let source =
                        crate::mapped::MappedSource::new(db, mapping.clone(), plan.poll_interval);
                    let (loader, follow) = match plan.snapshot_dir.clone() {
                        Some((dir, every)) => warm_source(source, dir, every, url),
                        None => one_source(false, single(source), |_, _| {}),
                    };
                    (loader, Some(follow))
                }
                Err((code, e)) => {
                    eprintln!("ticket-authz serve: {e}");
                    return code;
                }
            },
            DataSource::Database { url, import } => {
                match prepare_database(url, import.as_deref(), plan.database_max_connections).await
                {
                    Ok(db) => match plan.ticket_cache {
                        None if plan.snapshot_dir.is_some() => {
                            let (dir, every) = plan.snapshot_dir.clone().unwrap_or_default();
                            let source = db::DbSource::new(db, plan.notify, plan.poll_interval);
                            let (loader, follow) = warm_source(source, dir, every, url);
                            (loader, Some(follow))
                        }
                        None => (
                            database_loader(db.clone()),
                            Some(follower(db, plan.notify, plan.poll_interval)),
                        ),
                        Some(bytes) => {
                            let cache =
                                crate::ticket_cache::TicketCache::new(bytes, Arc::new(db.clone()));
                            plan.config.ticket_cache = Some(cache.clone());
                            (
                                graph_loader(db.clone()),
                                Some(cached_follower(db, plan.notify, plan.poll_interval, cache)),
                            )
                        }
                    },
                    Err(e) => {
                        eprintln!("ticket-authz serve: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        };
        let listeners = Listeners {
            grpc: listener,
            health,
            metrics,
            console,
        };
        match server::run(plan.config, listeners, signal(), loader, follow).await {
            Ok(()) => {
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ticket-authz serve: {e}");
                ExitCode::FAILURE
            }
        }
    }
}
