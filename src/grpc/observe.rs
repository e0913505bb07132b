//! What each RPC leaves behind for SREs: a span (a child of the caller's
//! W3C `traceparent`, following OpenTelemetry's RPC conventions) and the
//! latency histogram by RPC and outcome.

use std::time::Instant;

use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::metadata::{KeyRef, MetadataMap};
use tonic::{Code, Status};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::telemetry::metrics::{RPC_DURATION, SHED};

/// The RPCs, with their wire names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    CheckAccess,
    CheckAccessBatch,
    ListVisibleTickets,
    ListTicketViewers,
    GetVisibilityFilter,
}

impl Rpc {
    pub fn method(self) -> &'static str {
        match self {
            Rpc::CheckAccess => "CheckAccess",
            Rpc::CheckAccessBatch => "CheckAccessBatch",
            Rpc::ListVisibleTickets => "ListVisibleTickets",
            Rpc::ListTicketViewers => "ListTicketViewers",
            Rpc::GetVisibilityFilter => "GetVisibilityFilter",
        }
    }

    /// `service/method`, the span name the RPC conventions ask for.
    fn span_name(self) -> &'static str {
        match self {
            Rpc::CheckAccess => "ticketauthz.v1.TicketAuthz/CheckAccess",
            Rpc::CheckAccessBatch => "ticketauthz.v1.TicketAuthz/CheckAccessBatch",
            Rpc::ListVisibleTickets => "ticketauthz.v1.TicketAuthz/ListVisibleTickets",
            Rpc::ListTicketViewers => "ticketauthz.v1.TicketAuthz/ListTicketViewers",
            Rpc::GetVisibilityFilter => "ticketauthz.v1.TicketAuthz/GetVisibilityFilter",
        }
    }
}

/// Reads W3C trace context from gRPC metadata (ASCII values only).
struct Metadata<'a>(&'a MetadataMap);

impl Extractor for Metadata<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                KeyRef::Ascii(k) => Some(k.as_str()),
                KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

/// The gRPC status name in snake case: a bounded metric label.
pub fn code_label(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

fn server_fault(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

/// One call in progress.
#[derive(Debug)]
pub struct Call {
    rpc: Rpc,
    span: Span,
    started: Instant,
}

impl Call {
    /// Opens the call's span. The span exists only when a trace exporter
    /// listens (logs leave the RPC target out), so without one this costs
    /// a disabled-callsite check.
    pub fn start(rpc: Rpc, metadata: &MetadataMap) -> Self {
        let span = tracing::info_span!(
            target: "ticket_authz::rpc",
            "rpc",
            otel.name = rpc.span_name(),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = "ticketauthz.v1.TicketAuthz",
            rpc.method = rpc.method(),
            rpc.grpc.status_code = tracing::field::Empty,
            authz.action = tracing::field::Empty,
            authz.allowed = tracing::field::Empty,
            authz.reason = tracing::field::Empty,
            authz.revision = tracing::field::Empty,
            authz.checks = tracing::field::Empty,
            authz.allowed_checks = tracing::field::Empty,
            authz.results = tracing::field::Empty,
            authz.user_id = tracing::field::Empty,
            authz.ticket_id = tracing::field::Empty,
        );
        if !span.is_disabled() {
            let parent = TraceContextPropagator::new().extract(&Metadata(metadata));
            // Fails only once the span was entered; it has not been.
            let _ = span.set_parent(parent);
        }
        Self {
            rpc,
            span,
            started: Instant::now(),
        }
    }

    pub fn span(&self) -> &Span {
        &self.span
    }

    /// Counts a request shed for lack of capacity.
    pub fn shed(&self) {
        metrics::counter!(SHED, "rpc" => self.rpc.method()).increment(1);
    }

    /// Closes the call: records its latency under `outcome` (for a success)
    /// or the status code, and the status on the span.
    pub fn finish<T>(self, result: &Result<T, Status>, outcome: &'static str) {
        let elapsed = self.started.elapsed().as_secs_f64();
        let code = match result {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        };
        let label = if code == Code::Ok {
            outcome
        } else {
            code_label(code)
        };
        metrics::histogram!(RPC_DURATION, "rpc" => self.rpc.method(), "outcome" => label)
            .record(elapsed);
        if !self.span.is_disabled() {
            self.span.record("rpc.grpc.status_code", code as i64);
            // The RPC conventions mark a server span as failed only for
            // codes that are the server's fault, not the caller's.
            if let Err(status) = result
                && server_fault(code)
            {
                self.span.record("otel.status_code", "ERROR");
                self.span
                    .record("otel.status_description", status.message());
            }
        }
    }
}
