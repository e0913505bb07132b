//! `ticket-authz serve`: the gRPC server around the store, with health,
//! reflection, TLS, caller authentication and graceful shutdown. `run` takes
//! its listeners and shutdown signal so tests drive it on `127.0.0.1:0`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::Interceptor;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Status};
use tonic_health::ServingStatus;

use crate::grpc::pb;
use crate::grpc::pb::ticket_authz_server::TicketAuthzServer;
use crate::grpc::service::{AuthzService, Observe};
use crate::snapshot::Snapshot;
use crate::store::Store;
use crate::telemetry::{self, DecisionLog};

/// The connections a listener accepts, with `TCP_NODELAY` set, as tonic's
/// own `serve(addr)` does and its `serve_with_incoming` does not. Without it
/// a response written while the previous one is unacknowledged waits for
/// the client's delayed ACK (40 ms on Linux): under 64 concurrent callers
/// that was the p99 of every call, for the no-op service as for ours.
pub fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// The fully qualified service name, as health checks ask for it.
pub const SERVICE_NAME: &str = "ticketauthz.v1.TicketAuthz";

/// PEM material for TLS, read when the configuration is built.
#[derive(Clone)]
pub struct TlsPem {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
    /// Require client certificates signed by this CA (mutual TLS).
    pub client_ca: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsPem")
            .field("client_ca", &self.client_ca.is_some())
            .finish_non_exhaustive()
    }
}

/// Everything `run` needs besides listeners.
#[derive(Clone)]
pub struct ServeConfig {
    pub revision_wait: Duration,
    pub tls: Option<TlsPem>,
    /// Callers must send `authorization: Bearer <token>`.
    pub auth_token: Option<String>,
    pub max_concurrent_requests: usize,
    pub max_message_bytes: usize,
    /// How long shutdown waits for in-flight calls (and open health
    /// watches) before closing them.
    pub shutdown_grace: Duration,
    /// Put user and ticket ids on spans.
    pub trace_subjects: bool,
    pub decision_log: Option<DecisionLog>,
}

/// The ports `run` serves: gRPC, and optionally the plaintext health port
/// and the Prometheus `/metrics` endpoint.
#[derive(Debug)]
pub struct Listeners {
    pub grpc: TcpListener,
    pub health: Option<TcpListener>,
    pub metrics: Option<TcpListener>,
}

impl Listeners {
    /// Only the gRPC port.
    pub fn grpc(grpc: TcpListener) -> Self {
        Self {
            grpc,
            health: None,
            metrics: None,
        }
    }
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("revision_wait", &self.revision_wait)
            .field("tls", &self.tls)
            .field(
                "auth_token",
                &self.auth_token.as_ref().map(|_| "<redacted>"),
            )
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("trace_subjects", &self.trace_subjects)
            .field("decision_log", &self.decision_log.is_some())
            .finish()
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            revision_wait: Duration::from_secs(1),
            tls: None,
            auth_token: None,
            max_concurrent_requests: 1024,
            max_message_bytes: 4 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(10),
            trace_subjects: false,
            decision_log: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("loading the data failed: {0}")]
    Load(String),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("{0}")]
    Telemetry(#[from] telemetry::TelemetryError),
}

/// Checks `authorization: Bearer <token>` in constant time.
#[derive(Clone)]
struct BearerAuth {
    token: Option<Arc<[u8]>>,
}

impl Interceptor for BearerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.token else {
            return Ok(request);
        };
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::as_bytes)
            .unwrap_or_default();
        if bool::from(presented.ct_eq(expected)) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("missing or wrong bearer token"))
        }
    }
}

/// Sets the health status of both names probes ask for ("" and the service).
async fn report(reporter: &tonic_health::server::HealthReporter, status: ServingStatus) {
    for name in ["", SERVICE_NAME] {
        reporter.set_service_status(name, status).await;
    }
}

/// Loads the first snapshot.
pub type Loader = std::pin::Pin<Box<dyn Future<Output = Result<Snapshot, String>> + Send>>;

/// Keeps the store fresh after the first load, until the receiver turns true.
pub type Follow = Box<
    dyn FnOnce(
            Arc<Store>,
            watch::Receiver<bool>,
        ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
        + Send,
>;

/// Serves until `shutdown` completes, then drains in-flight calls.
/// Health reports NOT_SERVING until `load` has published the first
/// snapshot, and again once shutdown begins.
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
    } = listeners;
    // Installed before anything records, so that no early metric is lost.
    let metrics_handle = metrics_listener
        .as_ref()
        .map(|_| telemetry::metrics::install())
        .transpose()?;
    let store = Arc::new(Store::default());
    let (reporter, health) = tonic_health::server::health_reporter();
    report(&reporter, ServingStatus::NotServing).await;

    // One shutdown signal fans out to both servers; a failed load stops them too.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_on_signal = stop_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop_on_signal.send_replace(true);
    });
    let load_store = Arc::clone(&store);
    let load_reporter = reporter.clone();
    let load_stop = stop_tx.clone();
    let follow_stop = stop_rx.clone();
    let loading = tokio::spawn(async move {
        let started = Instant::now();
        let loaded = load.await;
        match loaded {
            Ok(snapshot) => {
                let stats = snapshot.stats();
                let revision = snapshot.revision();
                load_store.publish(snapshot);
                if let Some(follow) = follow {
                    tokio::spawn(follow(Arc::clone(&load_store), follow_stop));
                }
                report(&load_reporter, ServingStatus::Serving).await;
                tracing::info!(
                    revision,
                    users = stats.users,
                    tickets = stats.tickets,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "data loaded; serving"
                );
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "loading the data failed; shutting down");
                load_stop.send_replace(true);
                Err(e)
            }
        }
    });

    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let health_server = health_listener.map(|l| {
        let health = health.clone();
        let stop = stopped(stop_rx.clone());
        tokio::spawn(
            Server::builder()
                .add_service(health)
                .serve_with_incoming_shutdown(incoming(l), stop),
        )
    });

    if let (Some(handle), Some(l)) = (metrics_handle, metrics_listener) {
        tokio::spawn(telemetry::metrics::serve(
            handle,
            l,
            stopped(stop_rx.clone()),
        ));
    }

    let auth = BearerAuth {
        token: config
            .auth_token
            .as_deref()
            .map(|t| Arc::from(t.as_bytes())),
    };
    let service = AuthzService::new(
        Arc::clone(&store),
        config.revision_wait,
        config.max_concurrent_requests,
        Observe {
            trace_subjects: config.trace_subjects,
            decision_log: config.decision_log.clone(),
        },
    );
    let authz = TicketAuthzServer::new(service)
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(config.max_message_bytes);
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    let mut builder = Server::builder();
    if let Some(tls) = &config.tls {
        let mut tls_config =
            ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert, &tls.key));
        if let Some(ca) = &tls.client_ca {
            tls_config = tls_config.client_ca_root(Certificate::from_pem(ca));
        }
        builder = builder.tls_config(tls_config)?;
    }
    let drain_reporter = reporter.clone();
    let main_stop = stopped(stop_rx.clone());
    let on_stop = async move {
        main_stop.await;
        report(&drain_reporter, ServingStatus::NotServing).await;
        tracing::info!("shutting down: draining in-flight calls");
    };
    let serving = builder
        .add_service(health)
        .add_service(tonic::service::interceptor::InterceptedService::new(
            authz,
            auth.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            reflection, auth,
        ))
        .serve_with_incoming_shutdown(incoming(listener), on_stop);
    // Draining is bounded: after the grace period, remaining calls are cut.
    let grace = config.shutdown_grace;
    let deadline = async move {
        stopped(stop_rx).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        served = serving => served?,
        () = deadline => tracing::warn!(?grace, "calls still open after the grace period; closing them"),
    }
    if let Some(Ok(result)) = match health_server {
        Some(h) => Some(h.await),
        None => None,
    } {
        result?;
    }
    match loading.await {
        Ok(Err(e)) => Err(ServeError::Load(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn accepted_connections_send_without_waiting_for_acks() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut accepted = super::incoming(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let stream = accepted.next().await.unwrap().unwrap();
        assert!(stream.nodelay().unwrap(), "TCP_NODELAY is off");
    }
}
