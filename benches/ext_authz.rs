//! ext_authz `Check` latency on loopback (issue 17): one call at a time
//! from one HTTP/2 channel to `serve::run` on the demo data, interleaved
//! in rounds with gRPC `CheckAccess` of the same question on the same
//! port and layers, so the ratio of the two cancels the machine's noise.
//! Prints p50 and p99 of each and their ratio.
//!
//! Run with `cargo bench --bench ext_authz`; `EXT_AUTHZ_CALLS` sets the
//! calls per form and round (default 5000), `EXT_AUTHZ_ROUNDS` the rounds
//! (default 5).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use envoy_types::ext_authz::v3::pb::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use hdrhistogram::Histogram;
use tonic::transport::{Channel, Endpoint};

use ticket_authz::grpc::pb;
use ticket_authz::grpc::pb::ticket_authz_client::TicketAuthzClient;
use ticket_authz::serve::{self as server, ServeConfig};
use ticket_authz::serve_cmd::dataset_loader;

// The same allocator as the service binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn envoy_request() -> CheckRequest {
    let headers: HashMap<String, String> = [
        (":authority", "tickets.example"),
        (":method", "GET"),
        (":path", "/api/v1/tickets/1001?expand=comments"),
        ("user-agent", "curl/8.5.0"),
        ("x-user-id", "nina"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    method: "GET".to_owned(),
                    path: "/api/v1/tickets/1001?expand=comments".to_owned(),
                    headers,
                    ..HttpRequest::default()
                }),
                ..Request::default()
            }),
            context_extensions: [
                ("ticket_authz.action", "view"),
                ("ticket_authz.path", "/api/v1/tickets/{ticket}"),
                ("ticket_authz.ticket", "{ticket}"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            ..AttributeContext::default()
        }),
    }
}

fn micros(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.yaml");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server::run(
            ServeConfig::default(),
            server::Listeners::grpc(listener),
            async move {
                let _ = stopped.await;
            },
            dataset_loader(demo),
            None,
        ));
        let channel: Channel = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut envoy = AuthorizationClient::new(channel.clone());
        let mut grpc = TicketAuthzClient::new(channel);
        let check = envoy_request();
        let access = pb::CheckAccessRequest {
            user_id: "nina".to_owned(),
            action: pb::Action::View as i32,
            ticket_id: "1001".to_owned(),
            ..pb::CheckAccessRequest::default()
        };
        // Until loaded, and to warm both paths.
        let started = Instant::now();
        loop {
            let r = envoy.check(check.clone()).await.unwrap().into_inner();
            if r.status.as_ref().is_some_and(|s| s.code == 0) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "never loaded: {r:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for _ in 0..2000 {
            envoy.check(check.clone()).await.unwrap();
            grpc.check_access(access.clone()).await.unwrap();
        }
        let (calls, rounds) = (env("EXT_AUTHZ_CALLS", 5000), env("EXT_AUTHZ_ROUNDS", 5));
        let mut h_envoy = Histogram::<u64>::new(3).unwrap();
        let mut h_grpc = Histogram::<u64>::new(3).unwrap();
        for _ in 0..rounds {
            for _ in 0..calls {
                let t = Instant::now();
                let r = envoy.check(check.clone()).await.unwrap().into_inner();
                h_envoy.record(t.elapsed().as_nanos() as u64).unwrap();
                assert_eq!(r.status.map(|s| s.code), Some(0));
            }
            for _ in 0..calls {
                let t = Instant::now();
                let r = grpc.check_access(access.clone()).await.unwrap().into_inner();
                h_grpc.record(t.elapsed().as_nanos() as u64).unwrap();
                assert!(r.allowed);
            }
        }
        println!(
            "| call | p50 µs | p99 µs |\n|---|---|---|\n| ext_authz Check | {:.0} | {:.0} |\n| gRPC CheckAccess | {:.0} | {:.0} |",
            micros(&h_envoy, 0.5),
            micros(&h_envoy, 0.99),
            micros(&h_grpc, 0.5),
            micros(&h_grpc, 0.99)
        );
        println!(
            "ratio ext_authz / CheckAccess: p50 {:.2}, p99 {:.2} ({} calls each)",
            micros(&h_envoy, 0.5) / micros(&h_grpc, 0.5),
            micros(&h_envoy, 0.99) / micros(&h_grpc, 0.99),
            h_envoy.len()
        );
        let _ = stop.send(());
        serving.await.unwrap().unwrap();
    });
}
