//! `serve --ticket-cache`: the graph in memory, tickets read through a
//! moka cache from PostgreSQL or SQLite, lists and ticket limits read in
//! SQL. Every shared scenario through the wire at a roomy and a tiny
//! (64 KiB) cache, a change storm on a warm cache against a fresh full
//! load, and the configuration errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use ticket_authz::dataset;
use ticket_authz::db::{Database, LoadScope};
use ticket_authz::grpc::pb::ticket_authz_client::TicketAuthzClient;
use ticket_authz::serve::{self as server, Follow, Loader, ServeConfig, ServeError};
use ticket_authz::ticket_cache::TicketCache;
use ticket_authz::time::Timestamp;

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), ServeError>>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), self.handle)
            .await
            .expect("server stops")
            .unwrap()
            .unwrap();
    }

    async fn client(&self) -> TicketAuthzClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        TicketAuthzClient::new(channel)
    }
}

/// The graph of `db` at its revision, with the clock a dataset fixes.
fn graph_loader(db: Database, now: Option<Timestamp>) -> Loader {
    Box::pin(async move {
        let mut snap = db
            .snapshot_of(LoadScope::Graph)
            .await
            .map_err(|e| e.to_string())?;
        snap.fix_now(now);
        Ok(snap)
    })
}

/// Serves `db` in the cached mode with a cache of `bytes`.
async fn serve_cached(
    db: &Database,
    bytes: u64,
    now: Option<Timestamp>,
    follow: Option<(TicketCache, Follow)>,
) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (cache, follow) = match follow {
        Some((cache, follow)) => (cache, Some(follow)),
        None => (TicketCache::new(bytes, Arc::new(db.clone())), None),
    };
    let config = ServeConfig {
        ticket_cache: Some(cache),
        ..ServeConfig::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(server::run(
        config,
        server::Listeners::grpc(listener),
        async move {
            let _ = stopped.await;
        },
        graph_loader(db.clone(), now),
        follow,
    ));
    let running = Running {
        addr,
        stop: Some(stop),
        handle,
    };
    // Serving once the first load is published: a check answers.
    let mut c = running.client().await;
    for _ in 0..200 {
        let r = c
            .get_visibility_filter(ticket_authz::grpc::pb::GetVisibilityFilterRequest {
                user_id: "nobody".to_owned(),
                min_revision: 0,
            })
            .await;
        if r.is_ok() {
            return running;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the cached service did not load");
}

#[tokio::test]
async fn every_shared_scenario_passes_with_the_ticket_cache() {
    let mut files = common::scenario_files();
    files.push(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.yaml"));
    for (n, file) in files.iter().enumerate() {
        let loaded = dataset::load_file(file).unwrap();
        for (kind, db) in common::databases(&format!("cached_scenarios_{n}")).await {
            let revision = db.import(&loaded.dataset, false).await.unwrap();
            // Roomy, then tiny: at 64 KiB entries are evicted every few calls.
            for bytes in [64 << 20, 64 << 10] {
                let running = serve_cached(&db, bytes, loaded.dataset.now, None).await;
                let mut c = running.client().await;
                eprintln!("{}: {kind}, cache of {bytes} bytes", file.display());
                common::wire::conform(&mut c, file, &loaded, revision, &[1, 2, 7]).await;
                running.stop().await;
            }
            db.close().await;
        }
    }
}
