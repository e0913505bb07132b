//! Prometheus metrics: their names, the recorder, and the `/metrics`
//! endpoint. Labels are bounded sets (RPC names, actions, outcomes, kinds);
//! no user or ticket id ever becomes a label.

use std::convert::Infallible;
use std::sync::OnceLock;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use super::TelemetryError;

/// Time spent answering one RPC, by `rpc` and `outcome` (`allowed`,
/// `denied`, `ok`, or the gRPC status in snake case).
pub const RPC_DURATION: &str = "ticket_authz_rpc_duration_seconds";
/// Decisions made, by `action` and `outcome` (`allowed` / `denied`); a batch
/// counts each of its checks.
pub const DECISIONS: &str = "ticket_authz_decisions_total";
/// Requests refused with RESOURCE_EXHAUSTED because too many were in
/// progress, by `rpc`.
pub const SHED: &str = "ticket_authz_shed_requests_total";
/// The revision being served.
pub const REVISION: &str = "ticket_authz_revision";
/// Commit (database clock) to applied (service clock), per applied batch.
pub const CHANGE_LAG: &str = "ticket_authz_change_lag_seconds";
/// Time to turn one batch of changes into the next snapshot.
pub const APPLY_DURATION: &str = "ticket_authz_apply_duration_seconds";
/// Entities in the served snapshot, by `kind`.
pub const SNAPSHOT_ENTITIES: &str = "ticket_authz_snapshot_entities";
/// Refresh problems, by `kind`: `read` (the change log could not be read),
/// `apply` (a row-by-row apply failed and fell back to a reload),
/// `held_back` (the data would be invalid; the last valid revision stays).
pub const REFRESH_ERRORS: &str = "ticket_authz_refresh_errors_total";
/// Full reloads after the first load (bulk imports, wide changes).
pub const FULL_RELOADS: &str = "ticket_authz_full_reloads_total";
/// 1 while changes are held back, else 0.
pub const HELD_BACK: &str = "ticket_authz_held_back";
/// Decision-log records dropped because the writer fell behind.
pub const DECISION_LOG_DROPPED: &str = "ticket_authz_decision_log_dropped_total";
/// Credential files (`credential`: `certificate`, `client_ca`, `token`)
/// re-read after a change and put into use for new connections and requests.
pub const CREDENTIAL_RELOADS: &str = "ticket_authz_credential_reloads_total";
/// Changed credential files that were not usable (unreadable, unparsable, a
/// key not matching its certificate, no token), by `credential`; the
/// previous material stays in use.
pub const CREDENTIAL_RELOAD_ERRORS: &str = "ticket_authz_credential_reload_errors_total";
/// Background tasks (`follower`, `credentials`, `health_server`, `metrics_server`) that
/// ended before shutdown, by `task`; health is NOT_SERVING after any.
pub const TASK_FAILURES: &str = "ticket_authz_task_failures_total";

/// Latency buckets from 1 µs: in-process decisions take well under one.
const FINE_BUCKETS: [f64; 20] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2,
    5e-2, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Propagation buckets: from a tenth of a millisecond to a minute.
const LAG_BUCKETS: [f64; 16] = [
    1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 5.0, 15.0,
    60.0,
];

static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(RPC_DURATION, Unit::Seconds, "Time spent answering one RPC.");
    describe_counter!(DECISIONS, "Access decisions made.");
    describe_counter!(SHED, "Requests refused because too many were in progress.");
    describe_gauge!(REVISION, "The database revision being served.");
    describe_histogram!(
        CHANGE_LAG,
        Unit::Seconds,
        "Commit in the database to change applied here."
    );
    describe_histogram!(
        APPLY_DURATION,
        Unit::Seconds,
        "Time to build the next snapshot from a batch of changes."
    );
    describe_gauge!(SNAPSHOT_ENTITIES, "Entities in the served snapshot.");
    describe_counter!(REFRESH_ERRORS, "Problems following the database.");
    describe_counter!(FULL_RELOADS, "Full reloads after the first load.");
    describe_gauge!(HELD_BACK, "1 while invalid changes are held back.");
    describe_counter!(
        DECISION_LOG_DROPPED,
        "Decision-log records dropped because the writer fell behind."
    );
    describe_counter!(
        CREDENTIAL_RELOADS,
        "Changed credential files re-read and put into use."
    );
    describe_counter!(
        CREDENTIAL_RELOAD_ERRORS,
        "Changed credential files that were not usable; the previous ones stay."
    );
    describe_counter!(
        TASK_FAILURES,
        "Background tasks that ended before shutdown."
    );
}

/// Installs the process-wide recorder once; later calls share it. Until it
/// is installed every metric call is a no-op, so a service without
/// `--metrics-listen` pays nothing.
pub fn install() -> Result<PrometheusHandle, TelemetryError> {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(RPC_DURATION.into()), &FINE_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(APPLY_DURATION.into()), &FINE_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(CHANGE_LAG.into()), &LAG_BUCKETS)
                })
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|e| e.to_string())?;
            describe();
            Ok(handle)
        })
        .clone()
        .map_err(TelemetryError::Metrics)
}

fn respond(
    handle: &PrometheusHandle,
    request: &Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            handle.render(),
        ),
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "use GET\n".to_owned(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "metrics are at /metrics\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

/// Serves `GET /metrics` on `listener` until `stop` resolves. Also drains
/// histogram samples into buckets now and then, so that memory stays flat
/// between scrapes.
pub async fn serve(
    handle: PrometheusHandle,
    listener: TcpListener,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut upkeep = tokio::time::interval(Duration::from_secs(5));
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = upkeep.tick() => handle.run_upkeep(),
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics: accept failed");
                        continue;
                    }
                };
                let handle = handle.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let response = respond(&handle, &request);
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    if let Err(e) = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await
                    {
                        tracing::debug!(error = %e, "metrics: connection ended");
                    }
                });
            }
        }
    }
}
