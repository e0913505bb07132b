//! What SREs rely on, through the real binary: spans reach an OTLP collector
//! as children of the caller's `traceparent`; `/metrics` shows the latency
//! histograms after real calls; the decision log writes JSON lines and,
//! when its writer stalls, drops records instead of blocking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

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
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: metrics\r\nConnection: close\r\n\r\n"
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
    // Fine buckets, from one microsecond, all the way to +Inf.
    let bucket = format!("{duration}_bucket");
    let labels = ["rpc=\"CheckAccess\"", "outcome=\"allowed\""];
    assert!(sample(&body, &bucket, &[labels[0], labels[1], "le=\"0.000001\""]).is_some());
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
    assert!(
        !body.contains("paul") && !body.contains("1004"),
        "no ids in labels"
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_database_changes() {
    let dir = std::env::temp_dir().join(format!("ticket-authz-metrics-{}", free_port()));
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
