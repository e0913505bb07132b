//! One call as SREs see it, whatever the transport: a span (a child of the
//! caller's W3C `traceparent`, following OpenTelemetry's RPC conventions)
//! and the latency histogram by operation and outcome, with the metric
//! handles built once per operation and, for sampled traces, the trace id
//! as the bucket's exemplar.

use std::sync::OnceLock;
use std::time::Instant;

use http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::telemetry::metrics::{LatencyHistogram, TraceExemplar, metrics};

/// What a transport calls one of its operations: bounded names only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// `rpc.system` on the span: `grpc`, `http`, …
    pub system: &'static str,
    /// `rpc.service` on the span.
    pub service: &'static str,
    /// The `rpc` metric label and `rpc.method` on the span.
    pub method: &'static str,
    /// The span name (`service/method` for RPCs).
    pub span_name: &'static str,
}

/// How a call that answered ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A single check that allowed.
    Allowed,
    /// A single check that denied.
    Denied,
    /// Any other answer (a batch, a page, a filter).
    Ok,
}

impl Answer {
    fn label(self) -> &'static str {
        match self {
            Answer::Allowed => "allowed",
            Answer::Denied => "denied",
            Answer::Ok => "ok",
        }
    }
}

/// How a call ended, in the transport's own terms.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    Answered(Answer),
    /// Refused or failed. `label` is bounded (the transport's status name);
    /// a `server_fault` marks the span as failed with `description`, as the
    /// RPC conventions ask only for faults that are not the caller's.
    Failed {
        label: &'static str,
        server_fault: bool,
        description: &'a str,
    },
}

/// The status the transport answered with, for the span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCode {
    /// `rpc.grpc.status_code`.
    Grpc(i32),
    /// `http.response.status_code`.
    Http(u16),
}

/// An operation's latency histograms, one per outcome, each made at its
/// first use and then kept: a handle is a pointer to its series, where a
/// family lookup on every call would hash the labels and take the
/// family's lock. Made lazily, a series appears once it has a sample
/// rather than as one zero-count histogram per status code.
#[derive(Debug)]
pub struct CallMetrics {
    operation: Operation,
    answered: [OnceLock<LatencyHistogram>; 3],
    failed: Vec<(&'static str, OnceLock<LatencyHistogram>)>,
}

impl CallMetrics {
    /// Room for `operation`'s answers and for each of `failures` (the
    /// transport's bounded status labels).
    pub fn new(operation: Operation, failures: &[&'static str]) -> Self {
        Self {
            operation,
            answered: Default::default(),
            failed: failures.iter().map(|l| (*l, OnceLock::new())).collect(),
        }
    }

    fn histogram(&self, outcome: &'static str) -> LatencyHistogram {
        metrics().rpc_duration(self.operation.method, outcome)
    }

    fn record(&self, outcome: &Outcome<'_>, seconds: f64, exemplar: Option<TraceExemplar>) {
        let (label, slot) = match outcome {
            Outcome::Answered(answer) => (answer.label(), self.answered.get(*answer as usize)),
            Outcome::Failed { label, .. } => (
                *label,
                self.failed
                    .iter()
                    .find(|(l, _)| l == label)
                    .map(|(_, slot)| slot),
            ),
        };
        match slot {
            Some(slot) => slot
                .get_or_init(|| self.histogram(label))
                .observe(seconds, exemplar, None),
            // A label the transport did not announce: rare, so looked up.
            None => self.histogram(label).observe(seconds, exemplar, None),
        }
    }
}

/// Reads W3C trace context from request headers (ASCII values only).
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// One call in progress.
#[derive(Debug)]
pub struct Call<'m> {
    metrics: &'m CallMetrics,
    span: Span,
    started: Instant,
}

impl<'m> Call<'m> {
    /// Opens the call's span, a child of the `traceparent` in `headers`.
    /// The span exists only when a trace exporter listens (logs leave the
    /// RPC target out), so without one this costs a disabled-callsite check.
    pub fn start(metrics: &'m CallMetrics, headers: &HeaderMap) -> Self {
        let op = metrics.operation;
        let span = tracing::info_span!(
            target: "ticket_authz::rpc",
            "rpc",
            otel.name = op.span_name,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
            rpc.system = op.system,
            rpc.service = op.service,
            rpc.method = op.method,
            rpc.grpc.status_code = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
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
            let parent = TraceContextPropagator::new().extract(&Headers(headers));
            // Fails only once the span was entered; it has not been.
            let _ = span.set_parent(parent);
        }
        Self {
            metrics,
            span,
            started: Instant::now(),
        }
    }

    pub fn span(&self) -> &Span {
        &self.span
    }

    /// The operation's bounded name (the decision log's `rpc`).
    pub fn method(&self) -> &'static str {
        self.metrics.operation.method
    }

    /// The trace id of the call's span when it is sampled (exported), for
    /// the latency exemplar. Without a trace exporter the span is disabled
    /// and this allocates nothing.
    fn exemplar(&self) -> Option<TraceExemplar> {
        if self.span.is_disabled() {
            return None;
        }
        let context = self.span.context();
        let span = context.span();
        let span_context = span.span_context();
        (span_context.is_valid() && span_context.is_sampled()).then(|| TraceExemplar {
            trace_id: span_context.trace_id().to_string(),
        })
    }

    /// Closes the call: its latency under the outcome (with the trace id
    /// of a sampled span as exemplar), the status on the span.
    pub fn finish(self, outcome: Outcome<'_>, status: StatusCode) {
        let seconds = self.started.elapsed().as_secs_f64();
        self.metrics.record(&outcome, seconds, self.exemplar());
        if self.span.is_disabled() {
            return;
        }
        match status {
            StatusCode::Grpc(code) => self.span.record("rpc.grpc.status_code", i64::from(code)),
            StatusCode::Http(code) => self.span.record("http.response.status_code", code),
        };
        if let Outcome::Failed {
            server_fault: true,
            description,
            ..
        } = outcome
        {
            self.span.record("otel.status_code", "ERROR");
            self.span.record("otel.status_description", description);
        }
    }
}
