//! The `serve` command line: flags (each with a `TICKET_AUTHZ_<FLAG>`
//! environment variable), their validation, logging, signals.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::dataset;
use crate::grpc::server::{self, Loader, ServeConfig, TlsPem};
use crate::snapshot::Snapshot;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the gRPC port.
    #[arg(long, env = "TICKET_AUTHZ_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: String,
    /// Serve this dataset file (YAML/JSON), held in memory for the life of
    /// the process; its `now` fixes the clock for ticket limits.
    #[arg(long, env = "TICKET_AUTHZ_DATASET")]
    pub dataset: Option<PathBuf>,
    /// The database to serve from (not available yet: see the README).
    #[arg(long, env = "TICKET_AUTHZ_DATABASE_URL")]
    pub database_url: Option<String>,
    /// How long a request with `min_revision` waits for that revision.
    #[arg(long, env = "TICKET_AUTHZ_REVISION_WAIT", default_value = "1s", value_parser = parse_duration)]
    pub revision_wait: Duration,
    /// A plaintext, unauthenticated port serving only grpc.health.v1 (for
    /// Kubernetes probes).
    #[arg(long, env = "TICKET_AUTHZ_HEALTH_LISTEN")]
    pub health_listen: Option<String>,
    /// Server certificate chain (PEM); turns on TLS.
    #[arg(long, env = "TICKET_AUTHZ_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, env = "TICKET_AUTHZ_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) that must have signed every caller's certificate (mutual TLS).
    #[arg(long, env = "TICKET_AUTHZ_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    /// File holding the shared token callers send as `authorization: Bearer <token>`.
    #[arg(long, env = "TICKET_AUTHZ_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,
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
    #[arg(long, env = "TICKET_AUTHZ_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
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

fn config_error(flag: &'static str, message: impl Into<String>) -> ConfigError {
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

/// Everything `serve` needs, validated.
#[derive(Debug)]
pub struct Plan {
    pub listen: SocketAddr,
    pub health_listen: Option<SocketAddr>,
    pub config: ServeConfig,
    pub dataset: PathBuf,
}

impl ServeArgs {
    /// Validates the flags and reads the files they name.
    pub fn plan(&self) -> Result<Plan, ConfigError> {
        if self.database_url.is_some() {
            return Err(config_error(
                "--database-url",
                "database sources are not available in this version yet; serve a file with --dataset",
            ));
        }
        let dataset = self
            .dataset
            .clone()
            .ok_or_else(|| config_error("--dataset", "required: the dataset file to serve"))?;
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsPem {
                cert: read("--tls-cert", cert)?,
                key: read("--tls-key", key)?,
                client_ca: self
                    .client_ca
                    .as_deref()
                    .map(|p| read("--client-ca", p))
                    .transpose()?,
            }),
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
                let token = String::from_utf8(bytes).map_err(|_| {
                    config_error("--auth-token-file", "the token is not UTF-8 text")
                })?;
                let token = token.trim().to_owned();
                if token.is_empty() {
                    return Err(config_error(
                        "--auth-token-file",
                        format!("{} is empty", path.display()),
                    ));
                }
                Some(token)
            }
        };
        if self.max_concurrent_requests == 0 {
            return Err(config_error(
                "--max-concurrent-requests",
                "must be at least 1",
            ));
        }
        if self.max_message_bytes < 1024 {
            return Err(config_error("--max-message-bytes", "must be at least 1024"));
        }
        Ok(Plan {
            listen: address("--listen", &self.listen)?,
            health_listen: self
                .health_listen
                .as_deref()
                .map(|h| address("--health-listen", h))
                .transpose()?,
            config: ServeConfig {
                revision_wait: self.revision_wait,
                tls,
                auth_token,
                max_concurrent_requests: self.max_concurrent_requests,
                max_message_bytes: self.max_message_bytes,
                shutdown_grace: self.shutdown_grace,
            },
            dataset,
        })
    }
}

/// Loads a dataset file into a snapshot at revision 1.
pub fn dataset_loader(path: PathBuf) -> Loader {
    Box::new(move || {
        let loaded = dataset::load_file(&path).map_err(|e| e.to_string())?;
        let mut snapshot =
            Snapshot::build(&loaded.dataset).map_err(|e| format!("{}: {e}", path.display()))?;
        snapshot.set_revision(1);
        Ok(snapshot)
    })
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal, never into log collectors.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn signal() {
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

pub fn main(args: ServeArgs) -> ExitCode {
    init_logging(&args.log_format);
    let plan = match args.plan() {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("ticket-authz serve: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ticket-authz serve: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(plan.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "ticket-authz serve: --listen: cannot bind {}: {e}",
                    plan.listen
                );
                return ExitCode::from(2);
            }
        };
        let health = match plan.health_listen {
            None => None,
            Some(addr) => match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => Some(l),
                Err(e) => {
                    eprintln!("ticket-authz serve: --health-listen: cannot bind {addr}: {e}");
                    return ExitCode::from(2);
                }
            },
        };
        tracing::info!(
            listen = %plan.listen,
            health = ?plan.health_listen,
            tls = plan.config.tls.is_some(),
            mutual_tls = plan.config.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
            token_auth = plan.config.auth_token.is_some(),
            dataset = %plan.dataset.display(),
            "ticket-authz starting"
        );
        match server::run(
            plan.config,
            listener,
            health,
            signal(),
            dataset_loader(plan.dataset),
        )
        .await
        {
            Ok(()) => {
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ticket-authz serve: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
