//! The composition root: `run` owns the store, builds the application
//! service and every edge on its ports, and supervises what it spawns (the
//! first load, the follower, the health and metrics servers) under one
//! shutdown deadline. `run` takes its listeners and shutdown signal so
//! tests drive it on `127.0.0.1:0`.

mod credentials;
mod layers;
mod listen;
mod router;
mod supervise;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic_health::server::HealthReporter;
use tower::Layer as _;

pub use credentials::{
    CredentialError, TlsFiles, TlsPem, TlsSource, TokenSource, Tokens, check_tls, parse_tokens,
};
pub use layers::{Auth, AuthLayer, Deadline, DeadlineLayer, Shed, ShedLayer};
pub use supervise::{Health, Stop, Supervisor};

use crate::app::{Authz, Observe};
use crate::ext_authz::{self, ExtAuthzConfig};
use crate::grpc::server as grpc_server;
use crate::snapshot::Snapshot;
use crate::store::Store;
use crate::telemetry::{self, DecisionLog};

/// Everything `run` needs besides listeners.
#[derive(Clone)]
pub struct ServeConfig {
    pub revision_wait: Duration,
    /// TLS on the main port (mutual with a client CA); files are re-read
    /// when they change.
    pub tls: Option<TlsSource>,
    /// Callers must send `authorization: Bearer <token>` with one of these
    /// tokens; a file is re-read when it changes.
    pub auth_token: Option<TokenSource>,
    /// How often credential files are compared with what is in use, in case
    /// a change event was missed.
    pub credentials_check_interval: Duration,
    pub max_concurrent_requests: usize,
    pub max_message_bytes: usize,
    /// How long shutdown waits for in-flight calls, open health watches
    /// and background tasks before closing them: one deadline for all.
    pub shutdown_grace: Duration,
    /// Put user and ticket ids on spans.
    pub trace_subjects: bool,
    pub decision_log: Option<DecisionLog>,
    /// The base URL the AuthZEN configuration document advertises (no
    /// trailing slash); without it, each request's scheme and host.
    pub public_url: Option<String>,
    /// How Envoy's ext_authz requests become questions.
    pub ext_authz: ExtAuthzConfig,
    /// Read tickets through this cache (`--ticket-cache`): the loader and
    /// follower then bring the graph only, the follower through
    /// `ticket_cache::CachedSource` around this same cache.
    pub ticket_cache: Option<crate::ticket_cache::TicketCache>,
}

/// The ports `run` serves: gRPC, and optionally the plaintext health port
/// and the Prometheus `/metrics` endpoint.
#[derive(Debug)]
pub struct Listeners {
    pub grpc: TcpListener,
    pub health: Option<TcpListener>,
    pub metrics: Option<TcpListener>,
    /// The web console (`--console-listen`), with the main port's TLS and
    /// tokens.
    pub console: Option<TcpListener>,
}

impl Listeners {
    /// Only the gRPC port.
    pub fn grpc(grpc: TcpListener) -> Self {
        Self {
            grpc,
            health: None,
            metrics: None,
            console: None,
        }
    }
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("revision_wait", &self.revision_wait)
            .field("tls", &self.tls)
            .field("auth_token", &self.auth_token)
            .field(
                "credentials_check_interval",
                &self.credentials_check_interval,
            )
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("trace_subjects", &self.trace_subjects)
            .field("decision_log", &self.decision_log.is_some())
            .field("public_url", &self.public_url)
            .field("ext_authz", &self.ext_authz)
            .field("ticket_cache", &self.ticket_cache.is_some())
            .finish()
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            revision_wait: Duration::from_secs(1),
            tls: None,
            auth_token: None,
            credentials_check_interval: Duration::from_secs(10),
            max_concurrent_requests: 1024,
            max_message_bytes: 4 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(10),
            trace_subjects: false,
            decision_log: None,
            public_url: None,
            ext_authz: ExtAuthzConfig::default(),
            ticket_cache: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("loading the data failed: {0}")]
    Load(String),
    #[error("credentials: {0}")]
    Credentials(#[from] CredentialError),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("{0}")]
    Telemetry(#[from] telemetry::TelemetryError),
    #[error("console: {0}")]
    Console(String),
}

/// Loads the first snapshot.
pub type Loader = std::pin::Pin<Box<dyn Future<Output = Result<Snapshot, String>> + Send>>;

/// Keeps the store fresh after the first load, until the receiver turns
/// true. Returning (or panicking) before that is a failure.
pub type Follow = Box<
    dyn FnOnce(
            Arc<Store>,
            watch::Receiver<bool>,
        ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
        + Send,
>;

/// The first load: publishes, reports SERVING, then starts the follower.
/// A failed load starts shutdown.
async fn first_load(
    load: Loader,
    follow: Option<Follow>,
    store: Arc<Store>,
    health: Arc<Health>,
    supervisor: Supervisor,
    stop: Stop,
) -> Result<(), String> {
    let started = Instant::now();
    let snapshot = match load.await {
        Ok(snapshot) => snapshot,
        Err(e) => {
            tracing::error!(error = %e, "loading the data failed; shutting down");
            stop.trigger();
            return Err(e);
        }
    };
    let stats = snapshot.stats();
    let revision = snapshot.revision();
    store.publish(snapshot);
    // A load reads the source as it stands; without a follower (a file)
    // nothing will ever be newer.
    let caught_up = &telemetry::metrics::metrics().caught_up;
    if follow.is_some() {
        caught_up.confirm();
    } else {
        caught_up.settle();
    }
    if stop.is_triggered() {
        return Ok(());
    }
    // Reports nothing if shutdown began meanwhile (see `Health`).
    health.serving().await;
    tracing::info!(
        revision,
        users = stats.users,
        tickets = stats.tickets,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "data loaded; serving"
    );
    if let Some(follow) = follow {
        let following = follow(store, stop.receiver());
        supervisor.spawn("follower", async move {
            following.await;
            Ok(())
        });
    }
    Ok(())
}

/// Serves until `shutdown` completes, then drains in-flight calls for at
/// most `shutdown_grace`. Health reports NOT_SERVING until `load` has
/// published the first snapshot, again once shutdown begins, and for good
/// once a supervised task (follower, health or metrics server) fails.
pub async fn run(
    config: ServeConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
    load: Loader,
    follow: Option<Follow>,
) -> Result<(), ServeError> {
    let Listeners {
        grpc: listener,
        health: health_listener,
        metrics: metrics_listener,
        console: console_listener,
    } = listeners;
    // Registered now, so that the caught-up age counts from start.
    telemetry::metrics::metrics();
    // Made before the metrics port opens, so that every route's shed
    // counter is in the first scrape.
    let mut paths = grpc_server::paths();
    paths.extend(crate::authzen::paths());
    paths.push((ext_authz::PATH, ext_authz::OPERATION.method));
    let shed = ShedLayer::new(config.max_concurrent_requests, &paths);
    // Bad material at start is fatal: there is nothing older to keep.
    let mut credentials =
        credentials::Credentials::load(config.tls.as_ref(), config.auth_token.as_ref()).await?;
    // Without a token the console would show the data to anyone who can
    // reach it: only loopback may go without one.
    if let Some(l) = &console_listener
        && credentials.tokens.is_none()
    {
        let addr = l
            .local_addr()
            .map_err(|e| ServeError::Console(format!("the console port: {e}")))?;
        if !addr.ip().is_loopback() {
            return Err(ServeError::Console(format!(
                "--console-listen {addr} is not a loopback address and no --auth-token-file is set: the console needs the API token there"
            )));
        }
    }
    let store = Arc::new(Store::default());
    let reporter = HealthReporter::new();
    let health = Arc::new(Health::new(reporter.clone()));
    health.not_serving().await;

    let stop = Stop::default();
    let supervisor = Supervisor::new(Arc::clone(&health), stop.clone());
    let signal = {
        let stop = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            stop.trigger();
        })
    };
    let mut loading = tokio::spawn(first_load(
        load,
        follow,
        Arc::clone(&store),
        Arc::clone(&health),
        supervisor.clone(),
        stop.clone(),
    ));
    side_ports(
        &supervisor,
        &reporter,
        &stop,
        health_listener,
        metrics_listener,
    );

    if let Some(reloader) = credentials.reloader.take() {
        let (interval, stopped) = (config.credentials_check_interval, stop.stopped());
        supervisor.spawn("credentials", reloader.run(interval, stopped));
    }

    let app = Authz::with_tickets(
        store,
        config.revision_wait,
        Observe {
            trace_subjects: config.trace_subjects,
            decision_log: config.decision_log.clone(),
        },
        config.ticket_cache.clone(),
    );
    if let Some(l) = console_listener {
        let console = crate::console::router(
            app.clone(),
            credentials.tokens.clone(),
            credentials.tls.is_some(),
        )
        .map_err(|e| ServeError::Console(e.to_string()))?;
        let (tls, stopped) = (credentials.tls.clone(), stop.stopped());
        supervisor.spawn("console_server", async move {
            listen::serve(l, tls, console, stopped).await;
            Ok(())
        });
    }
    // One service for gRPC and Connect: the same metric handles, spans
    // and `rpc` labels whichever encoding a call came in.
    let authz = Arc::new(crate::grpc::service::AuthzService::new(app.clone()));
    let routes = grpc_server::routes(
        Arc::clone(&authz),
        grpc_server::health(&reporter),
        config.max_message_bytes,
    )?
    .add_service(ext_authz::server(
        app.clone(),
        config.ext_authz.clone(),
        config.max_message_bytes,
    ));
    let edges = router::HttpEdges {
        connect: crate::grpc::connect::Connect::new(authz, config.max_message_bytes),
        authzen: crate::authzen::Endpoints::new(
            app,
            crate::authzen::Settings {
                public_url: config.public_url.clone(),
                tls: config.tls.is_some(),
                max_body_bytes: config.max_message_bytes,
            },
        ),
    };
    let routes = router::MainRouter::new(routes.prepare(), edges);
    let on_stop = {
        let health = Arc::clone(&health);
        let stopped = stop.stopped();
        async move {
            stopped.await;
            health.stopping().await;
            tracing::info!("shutting down: draining in-flight calls");
        }
    };
    // The caller's deadline bounds everything; then authentication, so
    // that unauthenticated callers take no admission permit; health passes
    // both.
    let auth = AuthLayer::rotating(credentials.tokens);
    let service = DeadlineLayer.layer(auth.layer(shed.layer(routes)));
    let serving = listen::serve(listener, credentials.tls, service, on_stop);
    let grace = config.shutdown_grace;
    tokio::select! {
        () = serving => {},
        () = stop.deadline(grace) => {
            tracing::warn!(?grace, "calls still open after the grace period; closing them");
        }
    };
    // A server that failed stops everything else too.
    stop.trigger();
    supervisor.join(stop.deadline(grace)).await;
    signal.abort();
    let loaded = tokio::select! {
        loaded = &mut loading => loaded.ok(),
        () = stop.deadline(grace) => {
            tracing::warn!("the first load still runs after the grace period; abandoning it");
            loading.abort();
            None
        }
    };
    match loaded {
        Some(Err(e)) => Err(ServeError::Load(e)),
        _ => Ok(()),
    }
}

/// The health-only and metrics ports, as supervised servers.
fn side_ports(
    supervisor: &Supervisor,
    reporter: &HealthReporter,
    stop: &Stop,
    health: Option<TcpListener>,
    metrics: Option<TcpListener>,
) {
    if let Some(l) = health {
        let service = grpc_server::health(reporter);
        let stopped = stop.stopped();
        supervisor.spawn("health_server", async move {
            grpc_server::serve_health(service, l, stopped)
                .await
                .map_err(|e| e.to_string())
        });
    }
    if let Some(l) = metrics {
        let stopped = stop.stopped();
        supervisor.spawn("metrics_server", async move {
            listen::serve(l, None, telemetry::exposition::MetricsEndpoint, stopped).await;
            Ok(())
        });
    }
}

/// The ports of a process with no main port (the relay): health and
/// metrics.
#[derive(Debug)]
pub struct HeadlessListeners {
    pub health: Option<TcpListener>,
    pub metrics: Option<TcpListener>,
}

/// Runs a first load and a follower with no main port (`ticket-authz
/// relay`): the same first load, supervision, health and metrics as
/// [`run`], until `shutdown` completes.
pub async fn run_headless(
    listeners: HeadlessListeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
    load: Loader,
    follow: Follow,
) -> Result<(), ServeError> {
    telemetry::metrics::metrics();
    let store = Arc::new(Store::default());
    let reporter = HealthReporter::new();
    let health = Arc::new(Health::new(reporter.clone()));
    health.not_serving().await;
    let stop = Stop::default();
    let supervisor = Supervisor::new(Arc::clone(&health), stop.clone());
    let signal = {
        let stop = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            stop.trigger();
        })
    };
    let mut loading = tokio::spawn(first_load(
        load,
        Some(follow),
        store,
        Arc::clone(&health),
        supervisor.clone(),
        stop.clone(),
    ));
    side_ports(
        &supervisor,
        &reporter,
        &stop,
        listeners.health,
        listeners.metrics,
    );
    stop.stopped().await;
    health.stopping().await;
    supervisor.join(stop.deadline(grace)).await;
    signal.abort();
    let loaded = tokio::select! {
        loaded = &mut loading => loaded.ok(),
        () = stop.deadline(grace) => {
            loading.abort();
            None
        }
    };
    match loaded {
        Some(Err(e)) => Err(ServeError::Load(e)),
        _ => Ok(()),
    }
}
