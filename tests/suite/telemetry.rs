//! What SREs rely on, through the real binary: spans reach an OTLP collector
//! as children of the caller's `traceparent`; `/metrics` shows the latency
//! histograms after real calls, every counter and gauge from start, in the
//! Prometheus text format that `promtool` accepts or in OpenMetrics with
//! the trace ids of sampled calls as exemplars; the decision log writes
//! JSON lines and, when its writer stalls, drops records instead of
//! blocking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};

use common::free_port;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use ticket_authz::grpc::pb;
use ticket_authz::grpc::pb::ticket_authz_client::TicketAuthzClient;
use ticket_authz::telemetry::decision_log::{DecisionLog, DecisionRecord, LoggedRequest};

/// A collector that keeps every span it is sent, with its resource's
/// `service.name`.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut kept = self.spans.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .map(|kv| text(kv.value.as_ref().and_then(|v| v.value.as_ref())))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    kept.push((service.clone(), span));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn text(value: Option<&AnyValue>) -> String {
    match value {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        _ => String::new(),
    }
}

fn attributes(span: &Span) -> HashMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| {
            (
                kv.key.clone(),
                text(kv.value.as_ref().and_then(|v| v.value.as_ref())),
            )
        })
        .collect()
}

async fn start_collector() -> (SocketAddr, Collector) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let collector = Collector::default();
    let service = TraceServiceServer::new(collector.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (addr, collector)
}

/// A served demo dataset and its metrics listener.
struct Served {
    process: common::Served,
    grpc: String,
    metrics: SocketAddr,
}

impl Served {
    fn terminate(self) {
        self.process.terminate();
    }
}

fn serve(args: &[&str], env: &[(&str, String)]) -> Served {
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut all = vec!["--dataset", "examples/demo.yaml"];
    all.extend(args);
    let mut env = env.to_vec();
    env.push(("TICKET_AUTHZ_METRICS_LISTEN", metrics.to_string()));
    let process = common::serve(&all, &env);
    Served {
        grpc: process.grpc.clone(),
        process,
        metrics,
    }
}

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_SPAN: &str = "b7ad6b7169203331";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn check(user: &str, action: i32, ticket: &str) -> pb::CheckAccessRequest {
    pb::CheckAccessRequest {
        user_id: user.into(),
        action,
        ticket_id: ticket.into(),
        ..Default::default()
    }
}

/// The wire number of `view` (the first action) and `comment`.
const VIEW: i32 = 1;
const COMMENT: i32 = 2;

async fn client(addr: &str) -> TicketAuthzClient<tonic::transport::Channel> {
    TicketAuthzClient::connect(addr.to_owned()).await.unwrap()
}

/// Sends a check as a child of the fixed caller span.
async fn traced_check(
    client: &mut TicketAuthzClient<tonic::transport::Channel>,
    request: pb::CheckAccessRequest,
) -> pb::CheckAccessResponse {
    let mut request = tonic::Request::new(request);
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{PARENT_SPAN}-01").parse().unwrap(),
    );
    client.check_access(request).await.unwrap().into_inner()
}

async fn wait_for_span(collector: &Collector, name: &str) -> (String, Span) {
    let started = Instant::now();
    loop {
        if let Some(found) = collector
            .spans
            .lock()
            .unwrap()
            .iter()
            .find(|(_, s)| s.name == name)
        {
            return found.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no `{name}` span reached the collector"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until a span of trace `trace_id` has reached the collector.
async fn wait_for_trace(collector: &Collector, trace_id: &[u8]) {
    let started = Instant::now();
    while !collector
        .spans
        .lock()
        .unwrap()
        .iter()
        .any(|(_, s)| s.trace_id == trace_id)
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no span of trace {trace_id:02x?} reached the collector"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn otel_env(collector: SocketAddr) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}")),
        ("OTEL_SERVICE_NAME", "authz-under-test".into()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_join_the_callers_trace_without_subject_ids() {
    let (collector_addr, collector) = start_collector().await;
    let served = serve(&[], &otel_env(collector_addr));
    let mut client = client(&served.grpc).await;
    let answer = traced_check(&mut client, check("paul", VIEW, "1004")).await;
    assert!(answer.allowed);

    let (service, span) = wait_for_span(&collector, "ticketauthz.v1.TicketAuthz/CheckAccess").await;
    assert_eq!(service, "authz-under-test");
    assert_eq!(span.trace_id, hex(TRACE_ID), "joins the caller's trace");
    assert_eq!(
        span.parent_span_id,
        hex(PARENT_SPAN),
        "child of the caller's span"
    );
    assert_eq!(span.kind, 2, "a server span");
    let attrs = attributes(&span);
    assert_eq!(attrs["rpc.system"], "grpc");
    assert_eq!(attrs["rpc.service"], "ticketauthz.v1.TicketAuthz");
    assert_eq!(attrs["rpc.method"], "CheckAccess");
    assert_eq!(attrs["rpc.grpc.status_code"], "0");
    assert_eq!(attrs["authz.action"], "view");
    assert_eq!(attrs["authz.allowed"], "true");
    assert_eq!(attrs["authz.reason"], "ORGANISATION");
    assert_eq!(attrs["authz.revision"], "1");
    assert!(
        !attrs.values().any(|v| v == "paul" || v == "1004"),
        "user and ticket ids stay out of spans by default: {attrs:?}"
    );
    served.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_subjects_puts_ids_on_spans() {
    let (collector_addr, collector) = start_collector().await;
    let served = serve(&["--trace-subjects"], &otel_env(collector_addr));
    let mut client = client(&served.grpc).await;
    traced_check(&mut client, check("paul", VIEW, "1004")).await;
    let (_, span) = wait_for_span(&collector, "ticketauthz.v1.TicketAuthz/CheckAccess").await;
    let attrs = attributes(&span);
    assert_eq!(attrs["authz.user_id"], "paul");
    assert_eq!(attrs["authz.ticket_id"], "1004");
    served.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absent_collector_does_not_fail_decisions() {
    let nobody = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let served = serve(&[], &otel_env(nobody));
    let mut client = client(&served.grpc).await;
    for _ in 0..200 {
        let answer = traced_check(&mut client, check("paul", VIEW, "1004")).await;
        assert!(answer.allowed);
    }
    served.terminate();
}

fn scrape(addr: SocketAddr, path: &str) -> (String, String) {
    scrape_accepting(addr, path, None)
}

/// A scrape with `accept` as its `Accept` header.
fn scrape_accepting(addr: SocketAddr, path: &str, accept: Option<&str>) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: metrics\r\n{accept}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

/// The value of the sample whose name and labels are all given.
fn sample(body: &str, name: &str, labels: &[&str]) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            let (series, _) = l.rsplit_once(' ').unwrap_or((l, ""));
            let bare = series.split('{').next().unwrap_or("");
            bare == name && labels.iter().all(|label| series.contains(label))
        })
        .and_then(|l| l.rsplit_once(' '))
        .map(|(_, v)| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_latency_by_rpc_and_outcome_after_real_calls() {
    let log = std::env::temp_dir().join(format!("ticket-authz-decisions-{}.jsonl", free_port()));
    let _ = std::fs::remove_file(&log);
    let served = serve(&["--decision-log", log.to_str().unwrap()], &[]);
    let mut client = client(&served.grpc).await;
    for _ in 0..3 {
        assert!(
            client
                .check_access(check("paul", VIEW, "1004"))
                .await
                .unwrap()
                .into_inner()
                .allowed
        );
    }
    let denied = client
        .check_access(check("carla", COMMENT, "1004"))
        .await
        .unwrap()
        .into_inner();
    assert!(!denied.allowed);
    let invalid = client
        .check_access(check("", VIEW, "1004"))
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), tonic::Code::InvalidArgument);
    client
        .check_access_batch(pb::CheckAccessBatchRequest {
            checks: vec![check("paul", VIEW, "1004"), check("carla", VIEW, "1003")],
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .list_visible_tickets(pb::ListVisibleTicketsRequest {
            user_id: "carla".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    let (head, body) = scrape(served.metrics, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{head}"
    );
    let duration = "ticket_authz_rpc_duration_seconds";
    let count = |labels: &[&str]| sample(&body, &format!("{duration}_count"), labels);
    assert_eq!(
        count(&["rpc=\"CheckAccess\"", "outcome=\"allowed\""]),
        Some(3.0),
        "{body}"
    );
    assert_eq!(
        count(&["rpc=\"CheckAccess\"", "outcome=\"denied\""]),
        Some(1.0)
    );
    assert_eq!(
        count(&["rpc=\"CheckAccess\"", "outcome=\"invalid_argument\""]),
        Some(1.0)
    );
    assert_eq!(
        count(&["rpc=\"CheckAccessBatch\"", "outcome=\"ok\""]),
        Some(1.0)
    );
    assert_eq!(
        count(&["rpc=\"ListVisibleTickets\"", "outcome=\"ok\""]),
        Some(1.0)
    );
    // Fine buckets, from one microsecond (written as Go's client writes
    // it), all the way to +Inf.
    let bucket = format!("{duration}_bucket");
    let labels = ["rpc=\"CheckAccess\"", "outcome=\"allowed\""];
    assert!(sample(&body, &bucket, &[labels[0], labels[1], "le=\"1e-06\""]).is_some());
    assert_eq!(
        sample(&body, &bucket, &[labels[0], labels[1], "le=\"+Inf\""]),
        Some(3.0)
    );
    assert!(body.contains(&format!("# TYPE {duration} histogram")));

    let decisions = "ticket_authz_decisions_total";
    // Five allowed views: three single checks and two in the batch.
    assert_eq!(
        sample(
            &body,
            decisions,
            &["action=\"view\"", "outcome=\"allowed\""]
        ),
        Some(5.0)
    );
    assert_eq!(
        sample(
            &body,
            decisions,
            &["action=\"comment\"", "outcome=\"denied\""]
        ),
        Some(1.0)
    );
    assert_eq!(sample(&body, "ticket_authz_revision", &[]), Some(1.0));
    assert!(
        sample(
            &body,
            "ticket_authz_snapshot_entities",
            &["kind=\"tickets\""]
        )
        .unwrap()
            > 0.0
    );
    // Only label values are checked: a sample's value (a sum of seconds,
    // say) may well contain the digits "1004".
    let labels: Vec<&str> = body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| Some(l.split_once('{')?.1.split_once('}')?.0))
        .collect();
    assert!(!labels.is_empty(), "{body}");
    assert!(
        labels
            .iter()
            .all(|l| !l.contains("paul") && !l.contains("1004")),
        "no ids in labels: {labels:?}"
    );
    let (head, _) = scrape(served.metrics, "/other");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    // The decision log: one line per valid check, batch checks included.
    let started = Instant::now();
    let lines = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= 6 || started.elapsed() > Duration::from_secs(10) {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(lines.len(), 6, "{lines:?}");
    let denied = lines.iter().find(|l| l["allowed"] == false).unwrap();
    assert_eq!(denied["request"]["user_id"], "carla");
    assert_eq!(denied["request"]["action"], "comment");
    assert_eq!(denied["request"]["ticket_id"], "1004");
    assert_eq!(denied["revision"], 1);
    assert_eq!(denied["rpc"], "CheckAccess");
    assert!(denied["reason"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(denied["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["rpc"] == "CheckAccessBatch")
            .count(),
        2
    );
    served.terminate();
    let _ = std::fs::remove_file(&log);
}

/// A writer that blocks until told to go on, like a stalled disk or pipe.
struct Stalled(std::sync::mpsc::Receiver<()>, Arc<Mutex<Vec<u8>>>);

impl Write for Stalled {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.recv();
        self.1.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn record(i: usize) -> DecisionRecord {
    DecisionRecord {
        time: "2026-11-23T00:00:00Z".into(),
        revision: i as u64,
        rpc: "CheckAccess",
        request: LoggedRequest {
            user_id: format!("u{i}"),
            action: "view",
            ..Default::default()
        },
        allowed: true,
        reason: "REQUESTER",
        warning: None,
    }
}

#[test]
fn a_stalled_decision_log_drops_records_instead_of_blocking() {
    let (go, wait) = std::sync::mpsc::channel();
    let out = Arc::new(Mutex::new(Vec::new()));
    let log = DecisionLog::with_writer(Box::new(Stalled(wait, Arc::clone(&out))), 1.0, 16).unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    let sender = log.clone();
    std::thread::spawn(move || {
        for i in 0..10_000 {
            sender.record(record(i));
        }
        // Before saying done, so that dropping `log` below is the last
        // handle and waits for the writer to finish.
        drop(sender);
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(Duration::from_secs(20))
        .expect("recording blocked on a stalled writer");
    let dropped = log.dropped();
    // The writer holds what fits its buffer and the queue holds 16; the
    // rest must have been dropped.
    assert!(dropped > 9_000, "dropped only {dropped}");
    // Once the writer moves again, what was queued is written.
    drop(go);
    drop(log);
    let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    let written = text.lines().count() as u64;
    assert_eq!(written + dropped, 10_000);
    assert!(
        text.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
}

#[test]
fn decision_log_sampling_keeps_about_the_ratio() {
    let out = Arc::new(Mutex::new(Vec::new()));
    let (go, wait) = std::sync::mpsc::channel();
    drop(go); // never stalls: recv fails at once
    let log = DecisionLog::with_writer(Box::new(Stalled(wait, out)), 0.25, 16).unwrap();
    let kept = (0..20_000).filter(|_| log.sampled()).count();
    assert!(
        (4_000..6_000).contains(&kept),
        "kept {kept} of 20000 at 0.25"
    );
    let none = DecisionLog::with_writer(Box::new(std::io::sink()), 0.0, 16).unwrap();
    assert!(!(0..1000).any(|_| none.sampled()));
    assert!(DecisionLog::with_writer(Box::new(std::io::sink()), 1.5, 16).is_err());
}

/// The demo in a fresh SQLite database, followed by polling every 50 ms:
/// the service, the database's directory and its URL.
fn serve_followed_sqlite(name: &str) -> (Served, std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("ticket-authz-{name}-{}", free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("authz.db").display());
    let served = serve(
        &[
            "--database-url",
            &url,
            "--replace",
            "--notify",
            "poll",
            "--poll-interval",
            "50ms",
        ],
        &[],
    );
    (served, dir, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_database_changes() {
    let (served, dir, url) = serve_followed_sqlite("metrics");
    let (_, body) = scrape(served.metrics, "/metrics");
    let before = sample(&body, "ticket_authz_revision", &[]).unwrap();

    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO ticket_ccs (ticket_id, user_id) VALUES ('1004', 'carla')")
        .execute(&pool)
        .await
        .unwrap();
    let started = Instant::now();
    let body = loop {
        let (_, body) = scrape(served.metrics, "/metrics");
        if sample(&body, "ticket_authz_revision", &[]).unwrap() > before {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the change was not applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        sample(&body, "ticket_authz_change_lag_seconds_count", &[]),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, "ticket_authz_apply_duration_seconds_count", &[]),
        Some(1.0)
    );
    assert_eq!(
        sample(&body, "ticket_authz_full_reloads_total", &[]).unwrap_or(0.0),
        0.0
    );
    assert_eq!(
        sample(&body, "ticket_authz_held_back", &[]).unwrap_or(0.0),
        0.0
    );
    served.terminate();
    pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn shed_requests_are_counted_by_rpc() {
    let served = serve(
        &["--max-concurrent-requests", "1", "--revision-wait", "5s"],
        &[],
    );
    let mut slow_client = client(&served.grpc).await;
    let mut slow = check("nils", VIEW, "1001");
    slow.min_revision = 9;
    let slow = tokio::spawn(async move { slow_client.check_access(slow).await });
    // The slow call holds the one permit for 5 s from when it arrives. One
    // second is ample for it to arrive on a busy machine, and a single
    // second call cannot race it for the permit (a polling loop of calls
    // could take the permit first and get the slow call shed instead).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let shed = client(&served.grpc)
        .await
        .check_access(check("nils", VIEW, "1001"))
        .await
        .unwrap_err();
    assert_eq!(shed.code(), tonic::Code::ResourceExhausted);
    assert_eq!(
        shed.message(),
        "too many requests in progress; retry with backoff"
    );
    assert_eq!(
        slow.await.unwrap().unwrap_err().code(),
        tonic::Code::Unavailable
    );
    let (_, body) = scrape(served.metrics, "/metrics");
    let shed_total = "ticket_authz_shed_requests_total";
    assert_eq!(
        sample(&body, shed_total, &["rpc=\"CheckAccess\""]),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "ticket_authz_rpc_duration_seconds_count",
            &["rpc=\"CheckAccess\"", "outcome=\"resource_exhausted\""]
        ),
        Some(1.0)
    );
    served.terminate();
}

/// What Prometheus 2.x sends when it scrapes.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Every counter of the service with each label set known up front.
fn counters_at_start() -> Vec<String> {
    let mut series = vec![
        "ticket_authz_full_reloads_total".to_owned(),
        "ticket_authz_decision_log_dropped_total".to_owned(),
        "ticket_authz_ticket_cache_hits_total".to_owned(),
        "ticket_authz_ticket_cache_misses_total".to_owned(),
        "ticket_authz_ticket_cache_evictions_total".to_owned(),
    ];
    for action in ticket_authz::core::Action::ALL {
        for outcome in ["allowed", "denied"] {
            series.push(format!(
                "ticket_authz_decisions_total{{action=\"{}\",outcome=\"{outcome}\"}}",
                action.name()
            ));
        }
    }
    for (_, rpc) in ticket_authz::grpc::server::paths()
        .into_iter()
        .chain([("", "ext_authz.Check"), ("", "other")])
    {
        series.push(format!("ticket_authz_shed_requests_total{{rpc=\"{rpc}\"}}"));
    }
    for kind in ["read", "apply", "held_back"] {
        series.push(format!(
            "ticket_authz_refresh_errors_total{{kind=\"{kind}\"}}"
        ));
    }
    for task in [
        "follower",
        "credentials",
        "health_server",
        "metrics_server",
        "console_server",
    ] {
        series.push(format!(
            "ticket_authz_task_failures_total{{task=\"{task}\"}}"
        ));
    }
    // Alerts on a failed rotation need these before the first rotation.
    for credential in ["certificate", "client_ca", "token"] {
        for name in [
            "ticket_authz_credential_reloads_total",
            "ticket_authz_credential_reload_errors_total",
        ] {
            series.push(format!("{name}{{credential=\"{credential}\"}}"));
        }
    }
    series
}

/// The value of the sample written exactly as `series` (name and labels).
fn exact(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(s, _)| *s == series)
        .map(|(_, v)| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_service_exports_every_counter_and_gauge_at_zero() {
    let served = serve(&[], &[]);
    let (_, body) = scrape(served.metrics, "/metrics");
    for series in counters_at_start() {
        assert_eq!(exact(&body, &series), Some(0.0), "{series}: {body}");
    }
    for kind in ticket_authz::telemetry::metrics::ENTITY_KINDS {
        let series = format!("ticket_authz_snapshot_entities{{kind=\"{kind}\"}}");
        assert!(exact(&body, &series).is_some(), "{series}: {body}");
    }
    assert_eq!(exact(&body, "ticket_authz_held_back"), Some(0.0));
    assert_eq!(exact(&body, "ticket_authz_ticket_cache_bytes"), Some(0.0));
    assert_eq!(exact(&body, "ticket_authz_revision"), Some(1.0));
    assert_eq!(exact(&body, "ticket_authz_serving"), Some(1.0), "{body}");
    // A dataset file never changes: always caught up.
    assert_eq!(
        exact(&body, "ticket_authz_caught_up_age_seconds"),
        Some(0.0)
    );
    served.terminate();
}

/// Calls of each outcome, traced ones among them, so that the histogram
/// has exemplars to show (or leave out).
async fn some_calls(grpc: &str) {
    let mut client = client(grpc).await;
    for _ in 0..3 {
        traced_check(&mut client, check("paul", VIEW, "1004")).await;
    }
    client
        .check_access(check("carla", COMMENT, "1004"))
        .await
        .unwrap();
    client
        .check_access(check("", VIEW, "1004"))
        .await
        .unwrap_err();
    client
        .list_visible_tickets(pb::ListVisibleTicketsRequest {
            user_id: "carla".into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

/// A tool from `env_var`, else the first of `candidates` (relative to the
/// repository, or a bare name looked up in `PATH`) that `works` accepts;
/// `None` (said out loud) outside CI, a failure under `CI=true`.
fn tool(
    test: &str,
    env_var: &str,
    candidates: &[&str],
    works: impl Fn(&std::path::Path) -> bool,
) -> Option<std::path::PathBuf> {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let from_env = std::env::var_os(env_var)
        .filter(|p| !p.is_empty())
        .map(std::path::PathBuf::from);
    let found = from_env.or_else(|| {
        candidates.iter().find_map(|c| {
            let path = if c.contains('/') {
                repo.join(c)
            } else {
                std::env::var_os("PATH").and_then(|paths| {
                    std::env::split_paths(&paths)
                        .map(|d| d.join(c))
                        .find(|p| p.is_file())
                })?
            };
            (path.is_file() && works(&path)).then_some(path)
        })
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: {env_var} or one of {candidates:?} is required under CI=true (.ci/run installs it)"
        );
        eprintln!("skipped {test}: none of {env_var}, {candidates:?} found (.ci/run installs it)");
    }
    found
}

/// Runs `program ARGS` with `input` on stdin: (success, stdout, stderr).
fn run_with_input(program: &std::path::Path, args: &[&str], input: &str) -> (bool, String, String) {
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_accepts_the_text_format_of_a_service_that_served_calls() {
    let test = "promtool_accepts_the_text_format";
    let Some(promtool) = tool(
        test,
        "PROMTOOL",
        &["target/ci-tools/bin/promtool", "promtool"],
        |_| true,
    ) else {
        return;
    };
    let (collector_addr, collector) = start_collector().await;
    let served = serve(&[], &otel_env(collector_addr));
    some_calls(&served.grpc).await;
    wait_for_span(&collector, "ticketauthz.v1.TicketAuthz/CheckAccess").await;
    for accept in [None, Some("text/plain;version=0.0.4"), Some("*/*")] {
        let (head, body) = scrape_accepting(served.metrics, "/metrics", accept);
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
            "{head}"
        );
        // The calls are in it; the exemplars of the traced ones are not.
        assert!(
            sample(
                &body,
                "ticket_authz_rpc_duration_seconds_count",
                &["outcome=\"allowed\""]
            ) >= Some(3.0),
            "{body}"
        );
        assert!(
            !body.contains("trace_id") && !body.contains("# EOF"),
            "{body}"
        );
        let (ok, out, err) = run_with_input(&promtool, &["check", "metrics"], &body);
        assert!(ok, "promtool check metrics: {out}{err}\n{body}");
    }
    served.terminate();
}

/// Parses OpenMetrics text with the Python `prometheus_client` parser and
/// prints its families and exemplars as JSON.
const PARSE_OPENMETRICS: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
families, exemplars = [], []
for family in text_string_to_metric_families(sys.stdin.read()):
    families.append([family.name, family.type, family.unit])
    for s in family.samples:
        if s.exemplar is not None:
            exemplars.append({"sample": s.name, "labels": s.labels,
                              "exemplar": s.exemplar.labels, "value": s.exemplar.value})
print(json.dumps({"families": families, "exemplars": exemplars}))
"#;

fn python_with_prometheus_client(python: &std::path::Path) -> bool {
    std::process::Command::new(python)
        .args(["-c", "import prometheus_client.openmetrics.parser"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openmetrics_parses_and_links_latency_buckets_to_traces() {
    let test = "openmetrics_parses_and_links_latency_buckets_to_traces";
    let Some(python) = tool(
        test,
        "PROMETHEUS_CLIENT_PYTHON",
        &["target/ci-tools/venv/bin/python3", "python3"],
        python_with_prometheus_client,
    ) else {
        return;
    };
    let (collector_addr, collector) = start_collector().await;
    let served = serve(&[], &otel_env(collector_addr));
    some_calls(&served.grpc).await;
    wait_for_span(&collector, "ticketauthz.v1.TicketAuthz/CheckAccess").await;
    for accept in [
        PROMETHEUS_ACCEPT,
        "application/openmetrics-text; version=0.0.1",
    ] {
        let (head, body) = scrape_accepting(served.metrics, "/metrics", Some(accept));
        assert!(
            head.to_ascii_lowercase().contains(
                "content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"
            ),
            "{head}"
        );
        assert!(body.ends_with("# EOF\n"), "{body}");
        let (ok, out, err) = run_with_input(&python, &["-c", PARSE_OPENMETRICS], &body);
        assert!(
            ok,
            "the OpenMetrics parser refused the scrape: {err}\n{body}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        let families = parsed["families"].as_array().unwrap();
        assert!(
            families
                .iter()
                .any(|f| f[0] == "ticket_authz_rpc_duration_seconds"
                    && f[1] == "histogram"
                    && f[2] == "seconds"),
            "{families:?}"
        );
        assert!(
            families
                .iter()
                .any(|f| f[0] == "ticket_authz_decisions" && f[1] == "counter"),
            "{families:?}"
        );
        // The allowed checks (all sent in the caller's trace) lead to it;
        // every other exemplar leads to a trace that reached the collector
        // (the calls without a caller's trace are sampled roots).
        let exemplars = parsed["exemplars"].as_array().unwrap();
        assert!(
            exemplars
                .iter()
                .all(|e| e["sample"] == "ticket_authz_rpc_duration_seconds_bucket"),
            "{exemplars:?}"
        );
        let allowed: Vec<_> = exemplars
            .iter()
            .filter(|e| e["labels"]["rpc"] == "CheckAccess" && e["labels"]["outcome"] == "allowed")
            .collect();
        assert!(!allowed.is_empty(), "no exemplar in {body}");
        for e in &allowed {
            assert_eq!(e["exemplar"]["trace_id"], TRACE_ID, "{e}");
        }
        for e in exemplars {
            let trace_id = e["exemplar"]["trace_id"].as_str().unwrap();
            wait_for_trace(&collector, &hex(trace_id)).await;
        }
    }
    served.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tracing_no_exemplar_is_kept() {
    let served = serve(&[], &[]);
    let mut client = client(&served.grpc).await;
    // A caller's trace context alone does not make an exported span.
    traced_check(&mut client, check("paul", VIEW, "1004")).await;
    let (_, body) = scrape_accepting(served.metrics, "/metrics", Some(PROMETHEUS_ACCEPT));
    assert!(
        body.contains(
            "ticket_authz_rpc_duration_seconds_count{rpc=\"CheckAccess\",outcome=\"allowed\"} 1"
        ),
        "{body}"
    );
    assert!(!body.contains("trace_id"), "{body}");
    served.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_followed_database_stays_caught_up() {
    let (served, dir, _) = serve_followed_sqlite("caught-up");
    // Nothing is committed while the service idles, for many poll
    // intervals: every poll that finds nothing newer confirms it is
    // caught up, so the age stays below the idle time. A follower that
    // stopped confirming would show at least the idle time.
    let idle = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, body) = scrape(served.metrics, "/metrics");
    let idled = idle.elapsed().as_secs_f64();
    let age = exact(&body, "ticket_authz_caught_up_age_seconds").unwrap();
    assert!(
        age < idled,
        "caught-up age {age} after idling {idled} s: {body}"
    );
    assert_eq!(exact(&body, "ticket_authz_serving"), Some(1.0));
    served.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}

/// In this process (the only service of this test binary that runs in
/// it): health's status as the `ticket_authz_serving` gauge shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serving_gauge_follows_health() {
    use ticket_authz::serve::{self as server, Listeners, Loader, ServeConfig};
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics.local_addr().unwrap();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let loader: Loader = Box::pin(async move {
        released.await.map_err(|e| e.to_string())?;
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.yaml");
        let loaded = ticket_authz::dataset::load_file(&file).map_err(|e| e.to_string())?;
        ticket_authz::snapshot::Snapshot::build(&loaded.dataset).map_err(|e| e.to_string())
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server::run(
        ServeConfig::default(),
        Listeners {
            grpc,
            health: None,
            metrics: Some(metrics),
            console: None,
        },
        async move {
            let _ = stopped.await;
        },
        loader,
        None,
    ));
    let gauge = |addr| {
        tokio::task::spawn_blocking(move || {
            let (_, body) = scrape(addr, "/metrics");
            exact(&body, "ticket_authz_serving")
        })
    };
    // The port is bound already: a scrape waits for its server to start.
    assert_eq!(
        gauge(metrics_addr).await.unwrap(),
        Some(0.0),
        "not serving before the first load"
    );
    release.send(()).unwrap();
    let started = Instant::now();
    while gauge(metrics_addr).await.unwrap() != Some(1.0) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the gauge did not turn 1 once the data was loaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}
