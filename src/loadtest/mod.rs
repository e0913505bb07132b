//! `ticket-authz loadtest`: a load generator. Concurrent callers send a
//! mix of CheckAccess, CheckAccessBatch and ListVisibleTickets over the
//! generated dataset to the service (started in this process, or a running
//! one), as gRPC or in the HTTP forms (Connect JSON, AuthZEN, ext_authz),
//! and, on request, to a no-op tonic service with the same messages in the
//! same run, so that the service is reported as a ratio of the bare RPC
//! path; several forms in one run are reported as ratios of the first.

mod drive;
mod forms;
mod noop;
mod process;
mod workload;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use drive::{Latencies, Outcome, Plan, drive, drive_measuring, drive_until};
pub use forms::{Conn, Form};
pub use noop::NoopService;
pub use process::{TargetArgs, TargetProcess, cpu_time, serve_target};
pub use workload::{ColdChecks, Kind, Mix, Workload};

use crate::generate::{Spec, generate};
use crate::grpc::client::{Credentials, channel};
use crate::grpc::pb::ticket_authz_server::TicketAuthzServer;
use crate::serve::{self, Follow, Listeners, Loader, ServeConfig};
use crate::snapshot::Snapshot;
use crate::telemetry::{self, TelemetrySettings};

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Load a running service at this address instead of starting one in
    /// this process; it must serve `ticket-authz generate --tickets N
    /// --seed S` data with the same N and S, since requests name its ids.
    #[arg(long)]
    pub server: Option<String>,
    #[command(flatten)]
    pub credentials: Credentials,
    /// Tickets of the generated dataset (users and organisations scale
    /// with it).
    #[arg(long, default_value_t = 1_000_000)]
    pub tickets: usize,
    /// Seed of the generated dataset.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Callers sending at the same time.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// HTTP/2 connections the callers share.
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Measured time of each run (after the warm-up).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Unmeasured time at the start of each run.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Stop each run after this many measured requests instead of after
    /// --duration.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Send at this total rate (requests per second) instead of as fast as
    /// answers come back.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Relative weights of the RPCs: check, batch and list.
    #[arg(long, default_value = "check=1")]
    pub mix: String,
    /// Questions per CheckAccessBatch.
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Page size of ListVisibleTickets (first pages).
    #[arg(long, default_value_t = 100)]
    pub page_size: u32,
    /// Also load a no-op tonic service with the same messages, alternating
    /// with the service, and report the ratios.
    #[arg(long)]
    pub compare_noop: bool,
    /// Runs per target with --compare-noop (alternating noop, service).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// With --compare-noop and no --rate: afterwards, pace both targets at
    /// this fraction of the service's measured throughput and compare their
    /// latency at that rate (0 skips it).
    #[arg(long, default_value_t = 0.5)]
    pub paced_fraction: f64,
    /// Worker threads of the in-process servers' runtime (default: one per
    /// core).
    #[arg(long)]
    pub server_threads: Option<usize>,
    /// Serve the no-op, and the service unless --server names one, each in
    /// a child process of its own instead of in this one, and report each
    /// server's CPU per request: a new user's measurement, where no server
    /// shares a process with the load generator.
    #[arg(long)]
    pub noop_process: bool,
    /// The process id of the --server being loaded, to report its CPU per
    /// request (read from /proc).
    #[arg(long, requires = "server")]
    pub server_pid: Option<u32>,
    /// The forms to send the questions in, each in turn every round:
    /// `grpc`, `connect` (Connect JSON), `authzen` (evaluation,
    /// evaluations, resource search) and `ext-authz` (Envoy's Check; checks
    /// only). With more than one, each is reported as a ratio of the first.
    #[arg(long, default_value = "grpc")]
    pub forms: String,
    /// This share (0 to 1) of CheckAccess calls asks about a ticket drawn
    /// at random from all the dataset's tickets when it is sent, instead
    /// of from the pool of 8,192 prepared checks (which a ticket cache
    /// soon holds): with `serve --ticket-cache` the share sets the miss
    /// ratio. gRPC form only.
    #[arg(long, default_value_t = 0.0)]
    pub cold_checks: f64,
    /// Print the results as one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 10s, 500ms, 1m)"))
}

impl LoadArgs {
    fn check(&self) -> Result<Mix, String> {
        if self.concurrency == 0 {
            return Err("--concurrency: must be at least 1".into());
        }
        if self.connections == 0 || self.connections > self.concurrency {
            return Err("--connections: must be between 1 and --concurrency".into());
        }
        if self.rounds == 0 {
            return Err("--rounds: must be at least 1".into());
        }
        if self.requests == Some(0) {
            return Err("--requests: must be at least 1".into());
        }
        if self.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
            return Err("--rate: must be a positive number of requests per second".into());
        }
        if !(0.0..=1.0).contains(&self.paced_fraction) {
            return Err("--paced-fraction: must be between 0 and 1".into());
        }
        if self.batch_size == 0 || self.batch_size > crate::app::MAX_BATCH {
            return Err(format!(
                "--batch-size: must be between 1 and {}",
                crate::app::MAX_BATCH
            ));
        }
        if self.page_size > crate::core::MAX_PAGE_SIZE {
            return Err(format!(
                "--page-size: must be at most {}",
                crate::core::MAX_PAGE_SIZE
            ));
        }
        if self.server_threads == Some(0) {
            return Err("--server-threads: must be at least 1".into());
        }
        if self.noop_process && !self.compare_noop {
            return Err("--noop-process: needs --compare-noop".into());
        }
        let mix = Mix::parse(&self.mix)?;
        let forms = Form::parse_list(&self.forms)?;
        if !(0.0..=1.0).contains(&self.cold_checks) {
            return Err("--cold-checks: must be between 0 and 1".into());
        }
        if self.cold_checks > 0.0 && forms.iter().any(|f| *f != Form::Grpc) {
            return Err("--cold-checks: works with --forms grpc only".into());
        }
        if forms.len() > 1 && self.compare_noop {
            return Err(
                "--forms: compare several forms, or one against the no-op, not both".into(),
            );
        }
        if let Some(kind) = forms.iter().find_map(|f| {
            Kind::ALL
                .into_iter()
                .find(|k| mix.weight(*k) > 0 && !f.sends(*k))
        }) {
            return Err(format!(
                "--forms: ext-authz sends checks only; --mix asks for {}",
                kind.name()
            ));
        }
        Ok(mix)
    }

    fn forms(&self) -> Vec<Form> {
        Form::parse_list(&self.forms).unwrap_or_else(|_| vec![Form::Grpc])
    }

    fn plan(&self, mix: Mix, rate: Option<f64>) -> Plan {
        Plan {
            concurrency: self.concurrency,
            warmup: self.warmup,
            duration: self.duration,
            requests: self.requests,
            rate,
            mix,
        }
    }
}

/// Which service a run loads, in which form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Service(Form),
    Noop,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Service(Form::Grpc) => "service",
            Target::Service(form) => form.name(),
            Target::Noop => "noop",
        }
    }
}

/// One measured run, as reported.
#[derive(Debug)]
struct Run {
    target: Target,
    phase: &'static str,
    rate: Option<f64>,
    outcome: Outcome,
}

/// Servers started in this process on a runtime of their own, so that they
/// get worker threads as a separate process would; they stop when this is
/// dropped.
#[derive(Debug)]
pub struct InProcess {
    runtime: Option<tokio::runtime::Runtime>,
    stop: watch::Sender<bool>,
    telemetry: Option<telemetry::Telemetry>,
    /// The service's gRPC address, when one was started.
    pub service: Option<SocketAddr>,
    /// The no-op service's address, when one was started.
    pub noop: Option<SocketAddr>,
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        if let Some(t) = self.telemetry.take() {
            t.shutdown();
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

impl InProcess {
    /// Starts the service on what `load` returns (kept fresh by `follow`)
    /// with its default configuration and a metrics endpoint, so metrics
    /// are recorded as in production (and traces exported when
    /// `OTEL_EXPORTER_OTLP_*` names an endpoint); and the no-op service
    /// when `noop`. Sets this process's telemetry (logs at `warn`).
    pub fn start(
        service: Option<(Loader, Option<Follow>)>,
        noop: bool,
        threads: Option<usize>,
    ) -> Result<InProcess, String> {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.enable_all().thread_name("in-process-server");
        if let Some(n) = threads {
            builder.worker_threads(n);
        }
        let runtime = builder
            .build()
            .map_err(|e| format!("cannot start the server runtime: {e}"))?;
        let (stop, stopped) = watch::channel(false);
        let until_stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let started = runtime.block_on(async {
            // Inside the runtime: the trace exporter's channel lives on it.
            let telemetry = telemetry::init(&TelemetrySettings {
                log_format: telemetry::LogFormat::Text,
                log_filter: "warn".into(),
                export_traces: telemetry::otlp_configured(),
            })
            .map_err(|e| e.to_string())?;
            let bind = || async {
                TcpListener::bind("127.0.0.1:0")
                    .await
                    .map_err(|e| format!("cannot bind 127.0.0.1:0: {e}"))
            };
            let mut service_addr = None;
            if let Some((load, follow)) = service {
                let grpc = bind().await?;
                service_addr = Some(grpc.local_addr().map_err(|e| e.to_string())?);
                let listeners = Listeners {
                    grpc,
                    health: None,
                    metrics: Some(bind().await?),
                    console: None,
                };
                tokio::spawn(serve::run(
                    ServeConfig::default(),
                    listeners,
                    until_stopped(stopped.clone()),
                    load,
                    follow,
                ));
            }
            let mut noop_addr = None;
            if noop {
                let listener = bind().await?;
                noop_addr = Some(listener.local_addr().map_err(|e| e.to_string())?);
                tokio::spawn(
                    tonic::transport::Server::builder()
                        .add_service(TicketAuthzServer::new(NoopService))
                        .serve_with_incoming_shutdown(
                            crate::grpc::server::incoming(listener),
                            until_stopped(stopped.clone()),
                        ),
                );
            }
            Ok::<_, String>((telemetry, service_addr, noop_addr))
        });
        match started {
            Ok((telemetry, service, noop)) => Ok(InProcess {
                runtime: Some(runtime),
                stop,
                telemetry: Some(telemetry),
                service,
                noop,
            }),
            Err(e) => {
                runtime.shutdown_background();
                Err(e)
            }
        }
    }
}

/// `connections` clients of one target in `form` (one HTTP/2 connection
/// each), once it answers a gRPC check: a service answers UNAVAILABLE
/// until its data is published.
pub async fn clients(
    server: &str,
    credentials: &Credentials,
    connections: usize,
    probe: &Workload,
    form: Form,
) -> Result<Vec<Conn>, String> {
    let mut channels = Vec::with_capacity(connections);
    for _ in 0..connections {
        channels.push(channel(server, credentials).await?);
    }
    let Some((first, token)) = channels.first().cloned() else {
        return Err("--connections: must be at least 1".into());
    };
    let mut client = crate::grpc::pb::ticket_authz_client::TicketAuthzClient::with_interceptor(
        first,
        crate::grpc::client::TokenInterceptor::new(token),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match client.check_access(probe.checks[0].clone()).await {
            Ok(_) => break,
            Err(s)
                if s.code() == tonic::Code::Unavailable
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(s) => return Err(format!("{server}: {:?}: {}", s.code(), s.message())),
        }
    }
    channels
        .into_iter()
        .map(|(channel, token)| Conn::new(form, channel, token, probe))
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn run_json(run: &Run) -> serde_json::Value {
    let o = &run.outcome;
    let latency = |l: &Latencies| {
        json!({
            "requests": l.count(),
            "p50_ms": ms(l.at(0.5)),
            "p99_ms": ms(l.at(0.99)),
            "p999_ms": ms(l.at(0.999)),
            "max_ms": ms(l.max()),
        })
    };
    let by_kind: serde_json::Map<String, serde_json::Value> = Kind::ALL
        .iter()
        .filter(|k| o.by_kind[k.index()].count() > 0)
        .map(|k| (k.name().to_owned(), latency(&o.by_kind[k.index()])))
        .collect();
    json!({
        "target": run.target.name(),
        "phase": run.phase,
        "rate": run.rate,
        "elapsed_s": o.elapsed.as_secs_f64(),
        "throughput_rps": o.throughput(),
        "errors": o.errors,
        "first_error": o.first_error,
        "behind_schedule": o.behind,
        "latency": latency(&o.all),
        "by_rpc": by_kind,
        "server_cpu_us_per_request": o.cpu_per_request().map(|d| d.as_secs_f64() * 1e6),
    })
}

fn run_line(run: &Run) -> String {
    let o = &run.outcome;
    let mode = match run.rate {
        Some(r) => format!("{} {:.0}/s", run.phase, r),
        None => run.phase.to_owned(),
    };
    let mut line = format!(
        "{:<8} {:<16} {:>9} {:>6} {:>10.0} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
        run.target.name(),
        mode,
        o.all.count(),
        o.errors,
        o.throughput(),
        ms(o.all.at(0.5)),
        ms(o.all.at(0.99)),
        ms(o.all.at(0.999)),
        ms(o.all.max()),
    );
    if let Some(cpu) = o.cpu_per_request() {
        line.push_str(&format!(
            "  server CPU {:.1} µs/request",
            cpu.as_secs_f64() * 1e6
        ));
    }
    if o.behind > 0 {
        line.push_str(&format!("  ({} sends behind schedule)", o.behind));
    }
    line
}

const HEADER: &str =
    "target   mode              requests errors        rps  p50(ms)  p99(ms) p999(ms)  max(ms)";

/// Every run of `target` in `phase`, as one outcome; `None` without any.
fn pooled(runs: &[Run], target: Target, phase: &str) -> Option<Outcome> {
    let picked: Vec<Outcome> = runs
        .iter()
        .filter(|r| r.target == target && r.phase == phase)
        .map(|r| r.outcome.clone())
        .collect();
    (!picked.is_empty()).then(|| Outcome::combine(&picked))
}

/// `a / b`, NaN when `b` is not above zero.
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

/// One form's closed-loop figures over the first form's, over every round.
fn form_ratio(runs: &[Run], first: Target, form: Target) -> Option<serde_json::Value> {
    let (base, this) = (
        pooled(runs, first, "closed")?,
        pooled(runs, form, "closed")?,
    );
    Some(json!({
        "phase": "forms",
        "form": form.name(),
        "against": first.name(),
        "rps": this.throughput(),
        "against_rps": base.throughput(),
        "throughput_ratio": ratio(this.throughput(), base.throughput()),
        "p50_ms": ms(this.all.at(0.5)),
        "against_p50_ms": ms(base.all.at(0.5)),
        "p99_ms": ms(this.all.at(0.99)),
        "against_p99_ms": ms(base.all.at(0.99)),
    }))
}

/// The service's figures over the no-op's, over every run of a phase.
fn ratios(runs: &[Run], phase: &str, service: Target) -> Option<serde_json::Value> {
    let (service, noop) = (
        pooled(runs, service, phase)?,
        pooled(runs, Target::Noop, phase)?,
    );
    let us = |o: &Outcome| o.cpu_per_request().map(|d| d.as_secs_f64() * 1e6);
    let cpu_ratio = match (us(&service), us(&noop)) {
        (Some(s), Some(n)) => Some(ratio(s, n)),
        _ => None,
    };
    Some(json!({
        "phase": phase,
        "service_rps": service.throughput(),
        "noop_rps": noop.throughput(),
        "throughput_ratio": ratio(service.throughput(), noop.throughput()),
        "service_p50_ms": ms(service.all.at(0.5)),
        "noop_p50_ms": ms(noop.all.at(0.5)),
        "service_p99_ms": ms(service.all.at(0.99)),
        "noop_p99_ms": ms(noop.all.at(0.99)),
        "p99_ratio": ratio(service.all.at(0.99).as_secs_f64(), noop.all.at(0.99).as_secs_f64()),
        "service_cpu_us_per_request": us(&service),
        "noop_cpu_us_per_request": us(&noop),
        "cpu_per_request_ratio": cpu_ratio,
    }))
}

fn ratio_line(r: &serde_json::Value) -> String {
    let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    if r["phase"] == "forms" {
        return format!(
            "{} / {}: throughput {:.3} ({:.0} vs {:.0} rps); p50 {:.3} vs {:.3} ms; p99 {:.3} vs {:.3} ms",
            r["form"].as_str().unwrap_or(""),
            r["against"].as_str().unwrap_or(""),
            f("throughput_ratio"),
            f("rps"),
            f("against_rps"),
            f("p50_ms"),
            f("against_p50_ms"),
            f("p99_ms"),
            f("against_p99_ms"),
        );
    }
    let cpu = if r["cpu_per_request_ratio"].is_number() {
        format!(
            "; server CPU per request {:.1} vs {:.1} µs = {:.2}x",
            f("service_cpu_us_per_request"),
            f("noop_cpu_us_per_request"),
            f("cpu_per_request_ratio")
        )
    } else {
        String::new()
    };
    format!(
        "{}: service/noop throughput {:.3} ({:.0} vs {:.0} rps); p99 {:.3} vs {:.3} ms = {:.2}x; p50 {:.3} vs {:.3} ms{cpu}",
        r["phase"].as_str().unwrap_or(""),
        f("throughput_ratio"),
        f("service_rps"),
        f("noop_rps"),
        f("service_p99_ms"),
        f("noop_p99_ms"),
        f("p99_ratio"),
        f("service_p50_ms"),
        f("noop_p50_ms"),
    )
}

/// The clients of one target, and its server process when known.
struct Loaded<'a> {
    clients: &'a [Conn],
    pid: Option<u32>,
}

/// One phase (paced when the plan has a rate, else closed loop): `rounds`
/// rounds over `targets` in their order, each run reported as it ends.
async fn phase_runs(
    targets: &[(Target, &Loaded<'_>)],
    rounds: usize,
    workload: &Arc<Workload>,
    plan: &Plan,
    runs: &mut Vec<Run>,
    report: &mut impl FnMut(&Run),
) {
    let phase = if plan.rate.is_some() {
        "paced"
    } else {
        "closed"
    };
    for _ in 0..rounds {
        for (target, loaded) in targets {
            let outcome =
                drive_measuring(loaded.clients, Arc::clone(workload), plan, loaded.pid).await;
            let run = Run {
                target: *target,
                phase,
                rate: plan.rate,
                outcome,
            };
            report(&run);
            runs.push(run);
        }
    }
}

async fn drive_all(
    args: &LoadArgs,
    mix: Mix,
    workload: Arc<Workload>,
    service: &[(Form, Loaded<'_>)],
    noop: Option<Loaded<'_>>,
    report: &mut impl FnMut(&Run),
) -> Vec<Run> {
    let mut runs = Vec::new();
    let compares = noop.is_some() || service.len() > 1;
    let rounds = if compares { args.rounds } else { 1 };
    // The no-op (or the first form) first in each round, so drift over
    // time (other load on the machine, warm caches) falls on every target
    // alike.
    let targets: Vec<(Target, &Loaded<'_>)> = noop
        .iter()
        .map(|n| (Target::Noop, n))
        .chain(service.iter().map(|(f, l)| (Target::Service(*f), l)))
        .collect();
    let first = Target::Service(service.first().map_or(Form::Grpc, |(f, _)| *f));
    let plan = args.plan(mix, args.rate);
    phase_runs(&targets, rounds, &workload, &plan, &mut runs, report).await;
    if let (Some(_), None, true) = (&noop, args.rate, args.paced_fraction > 0.0) {
        let measured = pooled(&runs, first, "closed").map_or(0.0, |o| o.throughput());
        let rate = measured * args.paced_fraction;
        if rate > 0.0 {
            let plan = args.plan(mix, Some(rate));
            phase_runs(&targets, rounds, &workload, &plan, &mut runs, report).await;
        }
    }
    runs
}

/// Runs the command; exit 1 when any request failed, 2 on bad flags.
pub fn main(args: LoadArgs) -> ExitCode {
    let mix = match args.check() {
        Ok(mix) => mix,
        Err(e) => {
            eprintln!("ticket-authz loadtest: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args, mix) {
        Ok(failed) if failed => ExitCode::FAILURE,
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ticket-authz loadtest: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Returns whether any request failed.
fn run(args: &LoadArgs, mix: Mix) -> Result<bool, String> {
    let spec = Spec {
        seed: args.seed,
        ..Spec::scaled(args.tickets)
    };
    let data = generate(&spec);
    let mut workload = Workload::new(&data, args.batch_size, args.page_size, args.seed);
    if args.cold_checks > 0.0 {
        workload.cold = Some(ColdChecks::new(&data, args.cold_checks));
    }
    let workload = Arc::new(workload);
    // Each child builds its own copy of the data, as a served process does.
    let in_process_service = args.server.is_none() && !args.noop_process;
    let snapshot = match in_process_service {
        true => Some(Snapshot::build(&data).map_err(|e| format!("generated data: {e}"))?),
        false => None,
    };
    drop(data);
    let service = snapshot.map(|snapshot| {
        let load: Loader = Box::pin(async move { Ok(snapshot) });
        (load, None)
    });
    let in_process_noop = args.compare_noop && !args.noop_process;
    let servers = InProcess::start(service, in_process_noop, args.server_threads)?;
    let child = |target| TargetProcess::start(target, args.tickets, args.seed, args.server_threads);
    let service_process = match args.server.is_none() && args.noop_process {
        true => Some(child("service")?),
        false => None,
    };
    let noop_process = match args.noop_process {
        true => Some(child("noop")?),
        false => None,
    };
    let service_addr = servers.service.map(|a| format!("http://{a}"));
    let noop_url = servers
        .noop
        .map(|a| format!("http://{a}"))
        .or_else(|| noop_process.as_ref().map(|p| p.url.clone()));
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("loadtest-client")
        .build()
        .map_err(|e| format!("cannot start the client runtime: {e}"))?;
    let json_out = args.json;
    let result = client_runtime.block_on(async {
        let service_url = match (&args.server, &service_addr, &service_process) {
            (Some(url), _, _) => url.clone(),
            (None, Some(url), _) => url.clone(),
            (None, None, Some(p)) => p.url.clone(),
            (None, None, None) => return Err("no service to load".to_owned()),
        };
        let mut service_clients = Vec::new();
        for form in args.forms() {
            let c = clients(&service_url, &args.credentials, args.connections, &workload, form);
            service_clients.push((form, c.await?));
        }
        let noop_clients = match &noop_url {
            Some(url) => Some(
                clients(url, &Credentials::default(), args.connections, &workload, Form::Grpc)
                    .await?,
            ),
            None => None,
        };
        let pid = args.server_pid.or(service_process.as_ref().map(|p| p.pid));
        let service: Vec<(Form, Loaded<'_>)> = service_clients
            .iter()
            .map(|(form, clients)| (*form, Loaded { clients, pid }))
            .collect();
        let noop = noop_clients.as_deref().map(|clients| Loaded {
            clients,
            pid: noop_process.as_ref().map(|p| p.pid),
        });
        if !json_out {
            println!(
                "loadtest: {} tickets (seed {}), {} callers on {} connection(s), mix {}, forms {}, service at {}",
                args.tickets,
                args.seed,
                args.concurrency,
                args.connections,
                mix.describe(),
                args.forms().iter().map(|f| f.name()).collect::<Vec<_>>().join(","),
                match (&args.server, &service_process) {
                    (Some(_), _) => service_url.as_str(),
                    (None, Some(_)) => "a child process",
                    (None, None) => "this process",
                },
            );
            println!("{HEADER}");
        }
        let mut report = |run: &Run| {
            if !json_out {
                println!("{}", run_line(run));
            }
        };
        let runs = drive_all(args, mix, workload, &service, noop, &mut report).await;
        Ok::<_, String>(runs)
    });
    client_runtime.shutdown_timeout(Duration::from_secs(1));
    drop(servers);
    drop((service_process, noop_process));
    let runs = result?;
    let forms = args.forms();
    let first = Target::Service(forms[0]);
    let mut compared: Vec<serde_json::Value> = ["closed", "paced"]
        .iter()
        .filter_map(|phase| ratios(&runs, phase, first))
        .collect();
    compared.extend(
        forms[1..]
            .iter()
            .filter_map(|f| form_ratio(&runs, first, Target::Service(*f))),
    );
    let failed = runs.iter().any(|r| r.outcome.errors > 0);
    if args.json {
        let doc = json!({
            "tickets": args.tickets,
            "seed": args.seed,
            "concurrency": args.concurrency,
            "connections": args.connections,
            "mix": mix.describe(),
            "runs": runs.iter().map(run_json).collect::<Vec<_>>(),
            "compared": compared,
        });
        println!("{doc}");
    } else {
        for r in &compared {
            println!("{}", ratio_line(r));
        }
    }
    if let Some(e) = runs.iter().find_map(|r| r.outcome.first_error.as_ref()) {
        eprintln!("ticket-authz loadtest: requests failed, first: {e}");
    }
    Ok(failed)
}
