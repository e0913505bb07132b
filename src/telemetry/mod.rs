//! Logs, traces, metrics and the decision log: how the service is watched.
//!
//! Logs go to stderr as text or JSON lines. Traces are exported over
//! OTLP/gRPC only when an `OTEL_EXPORTER_OTLP_*ENDPOINT` variable is set;
//! the batch exporter runs on its own thread with a bounded queue, so a slow
//! or absent collector drops spans instead of slowing decisions.

pub mod decision_log;
pub mod exposition;
pub mod metrics;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

pub use decision_log::{DecisionLog, DecisionRecord};

/// The `tracing` target of the per-RPC spans. Logs leave it out (a span
/// per call is noise in a log); the trace exporter takes only it.
pub const RPC_TARGET: &str = "ticket_authz::rpc";

/// The service name traces carry when `OTEL_SERVICE_NAME` is not set.
const DEFAULT_SERVICE_NAME: &str = "ticket-authz";

/// One module's errors: setting up telemetry.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("--log-filter: {0}")]
    LogFilter(String),
    #[error("OTEL_EXPORTER_OTLP_ENDPOINT: cannot build the trace exporter: {0}")]
    Exporter(String),
    #[error("logging was already set up in this process")]
    AlreadySet,
    #[error("--decision-log: {0}")]
    DecisionLog(String),
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// How logs and traces are set up.
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    /// `RUST_LOG`-style directives, such as `info,ticket_authz::db=debug`.
    pub log_filter: String,
    /// Export traces over OTLP/gRPC (the endpoint and the rest come from
    /// the standard `OTEL_*` variables).
    pub export_traces: bool,
}

/// Whether the environment names an OTLP endpoint for traces.
pub fn otlp_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

/// Keeps the trace pipeline alive; `shutdown` flushes what is queued.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans queued so far (tests and shutdown).
    pub fn flush(&self) {
        if let Some(p) = &self.provider
            && let Err(e) = p.force_flush()
        {
            tracing::warn!(error = %e, "flushing spans failed");
        }
    }

    /// Flushes and stops the exporter.
    pub fn shutdown(&self) {
        if let Some(p) = &self.provider
            && let Err(e) = p.shutdown()
        {
            tracing::warn!(error = %e, "stopping the trace exporter failed");
        }
    }
}

fn tracer_provider() -> Result<SdkTracerProvider, TelemetryError> {
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let mut resource = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name(DEFAULT_SERVICE_NAME);
    }
    // The sampler comes from OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG
    // (the SDK's default configuration reads them).
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// Installs the process-wide log (and, when asked, trace) subscriber. Must
/// run inside a Tokio runtime when traces are exported (the exporter's
/// gRPC channel lives on it).
pub fn init(settings: &TelemetrySettings) -> Result<Telemetry, TelemetryError> {
    let mut directives = settings.log_filter.clone();
    if !directives.contains(RPC_TARGET) {
        directives.push_str(&format!(",{RPC_TARGET}=off"));
    }
    let filter = tracing_subscriber::EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse(&directives)
        .map_err(|e| TelemetryError::LogFilter(e.to_string()))?;
    // Colour only for a person at a terminal, never into log collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let logs = if settings.log_format == LogFormat::Json {
        fmt.json().with_filter(filter).boxed()
    } else {
        fmt.with_filter(filter).boxed()
    };
    let provider = if settings.export_traces {
        Some(tracer_provider()?)
    } else {
        None
    };
    let traces = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("ticket-authz"))
            .with_filter(Targets::new().with_target(RPC_TARGET, LevelFilter::INFO))
    });
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()
        .map_err(|_| TelemetryError::AlreadySet)?;
    Ok(Telemetry { provider })
}
