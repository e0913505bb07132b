//! The service over real gRPC on 127.0.0.1:0: every shared scenario through
//! the wire, TLS and mutual TLS, token auth, health transitions, bad input
//! on every field, load shedding, revision waits and graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use ticket_authz::core::{Action, Reason};
use ticket_authz::dataset;
use ticket_authz::grpc::convert::{action_code, reason_code};
use ticket_authz::grpc::pb;
use ticket_authz::grpc::pb::ticket_authz_client::TicketAuthzClient;
use ticket_authz::serve::{self as server, Loader, ServeConfig, ServeError, TlsPem};
use ticket_authz::serve_cmd::dataset_loader;

struct Running {
    addr: SocketAddr,
    health_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), ServeError>>,
}

impl Running {
    async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), self.handle)
            .await
            .expect("server stops")
            .unwrap()
    }
}

async fn start(config: ServeConfig, load: Loader) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let health = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, health_addr) = (listener.local_addr().unwrap(), health.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let listeners = server::Listeners {
        grpc: listener,
        health: Some(health),
        metrics: None,
        console: None,
    };
    let handle = tokio::spawn(server::run(
        config,
        listeners,
        async move {
            let _ = stopped.await;
        },
        load,
        None,
    ));
    Running {
        addr,
        health_addr,
        stop: Some(stop),
        handle,
    }
}

fn demo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.yaml")
}

async fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn health_status(addr: SocketAddr, service: &str) -> ServingStatus {
    let mut client = HealthClient::new(channel(addr).await);
    let r = client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(r.status).unwrap()
}

async fn wait_serving(addr: SocketAddr) {
    let started = Instant::now();
    while health_status(addr, "").await != ServingStatus::Serving {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never became SERVING"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A health `Watch` of "" on `addr`, past its first status (SERVING).
async fn serving_watch(
    addr: SocketAddr,
) -> (
    HealthClient<Channel>,
    tonic::Streaming<tonic_health::pb::HealthCheckResponse>,
) {
    let mut watcher = HealthClient::new(channel(addr).await);
    let mut stream = watcher
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        stream.message().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );
    (watcher, stream)
}

async fn client(addr: SocketAddr) -> TicketAuthzClient<Channel> {
    TicketAuthzClient::new(channel(addr).await)
}

/// A stored ticket's attributes, as a ticketing system that keeps the
/// ticket itself would send them.
#[tokio::test]
async fn every_shared_scenario_passes_through_the_wire() {
    let mut files = common::scenario_files();
    files.push(demo());
    files.extend(common::section_scenario_files());
    for file in files {
        let loaded = dataset::load_file(&file).unwrap();
        let running = start(ServeConfig::default(), dataset_loader(file.clone())).await;
        wait_serving(running.addr).await;
        let mut c = client(running.addr).await;
        common::wire::conform(&mut c, &file, &loaded, 1, &[2]).await;
        running.stop().await.unwrap();
    }
}

/// Valid inline attributes of a northwind hardware ticket, changed by `f`.
fn inline(f: &dyn Fn(&mut pb::TicketAttributes)) -> pb::TicketAttributes {
    let mut t = pb::TicketAttributes {
        requester_id: "nina".into(),
        organisation_id: "northwind".into(),
        group_id: "hardware".into(),
        status: "open".into(),
        ..Default::default()
    };
    f(&mut t);
    t
}

#[tokio::test]
async fn inline_tickets_are_decided_on_their_attributes() {
    let running = start(ServeConfig::default(), dataset_loader(demo())).await;
    wait_serving(running.addr).await;
    let mut c = client(running.addr).await;
    let ask = |user: &str, action: Action, t: pb::TicketAttributes| pb::CheckAccessRequest {
        ticket: Some(t),
        ..check(user, action, "")
    };
    // nils is in northwind and sees its tickets; carla (contoso) does not.
    let northwind = inline(&|_| {});
    let nils = c
        .check_access(ask("nils", Action::View, northwind.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(nils.allowed, "{nils:?}");
    assert_eq!(nils.revision, 1);
    let carla = c
        .check_access(ask("carla", Action::View, northwind.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(!carla.allowed, "{carla:?}");
    // The attributes win over a stored ticket of the same id: 1003 is
    // carla's own ticket, but these attributes make it northwind's.
    let over = c
        .check_access(pb::CheckAccessRequest {
            ticket: Some(northwind.clone()),
            ..check("carla", Action::View, "1003")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((over.allowed, over.reason), (carla.allowed, carla.reason));
    // Ids the data does not know match nothing: not UNKNOWN_RESOURCE.
    let strange = inline(&|t| {
        t.requester_id = "someone-else".into();
        t.organisation_id = "no-such-org".into();
        t.group_id = "no-such-group".into();
        t.cc_ids = vec!["nobody".into(), "nils".into()];
    });
    let r = c
        .check_access(ask("nils", Action::View, strange.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(r.allowed, "a CC'd user sees the ticket: {r:?}");
    assert_eq!(r.reason, reason_code(Reason::Cc));
    let r = c
        .check_access(ask("carla", Action::View, strange))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.allowed);
    assert_ne!(r.reason, reason_code(Reason::UnknownResource), "{r:?}");
    // The requester of an inline ticket comments on it as on a stored one.
    let own = c
        .check_access(ask(
            "carla",
            Action::Comment,
            inline(&|t| t.requester_id = "carla".into()),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(own.allowed, "{own:?}");
    // Actions on no ticket ignore the attributes, even malformed ones.
    let r = c
        .check_access(pb::CheckAccessRequest {
            ticket: Some(pb::TicketAttributes {
                status: "done".into(),
                ..Default::default()
            }),
            group_id: "hardware".into(),
            flag: "IR".into(),
            ..check("alex", Action::HasFlag, "")
        })
        .await;
    assert!(r.is_ok(), "{r:?}");
    running.stop().await.unwrap();
}

fn check(user: &str, action: Action, ticket: &str) -> pb::CheckAccessRequest {
    pb::CheckAccessRequest {
        user_id: user.to_owned(),
        action: action_code(action),
        ticket_id: ticket.to_owned(),
        ..Default::default()
    }
}

async fn expect_invalid<T: std::fmt::Debug>(
    what: &str,
    result: Result<tonic::Response<T>, tonic::Status>,
    field: &str,
) {
    match result {
        Err(s) => {
            assert_eq!(s.code(), Code::InvalidArgument, "{what}: {s:?}");
            assert!(
                s.message().starts_with(field),
                "{what}: `{}` does not name {field}",
                s.message()
            );
        }
        Ok(r) => panic!("{what}: expected INVALID_ARGUMENT on {field}, got {r:?}"),
    }
}

#[tokio::test]
async fn bad_input_on_every_field_is_invalid_argument_and_changes_nothing() {
    let running = start(ServeConfig::default(), dataset_loader(demo())).await;
    wait_serving(running.addr).await;
    let mut c = client(running.addr).await;
    let before = c
        .check_access(check("nils", Action::View, "1001"))
        .await
        .unwrap()
        .into_inner();
    let long = "x".repeat(129);
    let base = check("nils", Action::View, "1001");
    let with = |f: &dyn Fn(&mut pb::CheckAccessRequest)| {
        let mut m = base.clone();
        f(&mut m);
        m
    };
    let cases: Vec<(&str, pb::CheckAccessRequest, &str)> = vec![
        ("empty user", with(&|m| m.user_id.clear()), "user_id"),
        ("no action", with(&|m| m.action = 0), "action"),
        ("unknown action", with(&|m| m.action = 42), "action"),
        ("long user", with(&|m| m.user_id = long.clone()), "user_id"),
        (
            "long ticket",
            with(&|m| m.ticket_id = long.clone()),
            "ticket_id",
        ),
        (
            "long organisation",
            with(&|m| m.organisation_id = long.clone()),
            "organisation_id",
        ),
        (
            "long group",
            with(&|m| m.group_id = long.clone()),
            "group_id",
        ),
        (
            "long company",
            with(&|m| m.company_id = long.clone()),
            "company_id",
        ),
        (
            "missing ticket",
            with(&|m| m.ticket_id.clear()),
            "ticket_id",
        ),
        (
            "reassign without group",
            with(&|m| m.action = action_code(Action::Reassign)),
            "group_id",
        ),
        (
            "manage_access without organisation",
            with(&|m| m.action = action_code(Action::ManageAccess)),
            "organisation_id",
        ),
        (
            "company action without company",
            with(&|m| m.action = action_code(Action::CompanyView)),
            "company_id",
        ),
        (
            "has_flag without flag",
            with(&|m| {
                m.action = action_code(Action::HasFlag);
                m.group_id = "hardware".into()
            }),
            "flag",
        ),
        (
            "has_flag without group",
            with(&|m| {
                m.action = action_code(Action::HasFlag);
                m.flag = "IR".into()
            }),
            "group_id",
        ),
        ("unknown flag", with(&|m| m.flag = "ir".into()), "flag"),
        (
            "* outside has_flag",
            with(&|m| {
                m.action = action_code(Action::Create);
                m.group_id = "*".into()
            }),
            "group_id",
        ),
        (
            "inline without requester",
            with(&|m| m.ticket = Some(pb::TicketAttributes::default())),
            "ticket.requester_id",
        ),
        (
            "inline unknown status",
            with(&|m| m.ticket = Some(inline(&|t| t.status = "done".into()))),
            "ticket.status: unknown status `done`",
        ),
        (
            "inline bad created_at",
            with(&|m| m.ticket = Some(inline(&|t| t.created_at = "yesterday".into()))),
            "ticket.created_at",
        ),
        (
            "inline group *",
            with(&|m| m.ticket = Some(inline(&|t| t.group_id = "*".into()))),
            "ticket.group_id",
        ),
        (
            "inline long requester",
            with(&|m| m.ticket = Some(inline(&|t| t.requester_id = long.clone()))),
            "ticket.requester_id",
        ),
        (
            "inline long organisation",
            with(&|m| m.ticket = Some(inline(&|t| t.organisation_id = long.clone()))),
            "ticket.organisation_id",
        ),
        (
            "inline long assignee",
            with(&|m| m.ticket = Some(inline(&|t| t.assignee_id = long.clone()))),
            "ticket.assignee_id",
        ),
        (
            "inline long cc",
            with(&|m| m.ticket = Some(inline(&|t| t.cc_ids = vec!["a".into(), long.clone()]))),
            "ticket.cc_ids",
        ),
        (
            "inline long participant",
            with(&|m| m.ticket = Some(inline(&|t| t.participant_ids = vec![long.clone()]))),
            "ticket.participant_ids",
        ),
    ];
    for (what, msg, field) in cases {
        expect_invalid(what, c.check_access(msg.clone()).await, field).await;
        expect_invalid(
            what,
            c.check_access_batch(pb::CheckAccessBatchRequest {
                checks: vec![base.clone(), msg],
                min_revision: 0,
            })
            .await,
            &format!("checks[1].{field}"),
        )
        .await;
    }
    expect_invalid(
        "empty batch",
        c.check_access_batch(pb::CheckAccessBatchRequest::default())
            .await,
        "checks",
    )
    .await;
    expect_invalid(
        "oversized batch",
        c.check_access_batch(pb::CheckAccessBatchRequest {
            checks: vec![base.clone(); 1001],
            min_revision: 0,
        })
        .await,
        "checks",
    )
    .await;
    let list = |f: &dyn Fn(&mut pb::ListVisibleTicketsRequest)| {
        let mut m = pb::ListVisibleTicketsRequest {
            user_id: "nils".into(),
            ..Default::default()
        };
        f(&mut m);
        m
    };
    expect_invalid(
        "list without user",
        c.list_visible_tickets(list(&|m| m.user_id.clear())).await,
        "user_id",
    )
    .await;
    expect_invalid(
        "list long user",
        c.list_visible_tickets(list(&|m| m.user_id = long.clone()))
            .await,
        "user_id",
    )
    .await;
    expect_invalid(
        "list long organisation",
        c.list_visible_tickets(list(&|m| m.organisation_id = long.clone()))
            .await,
        "organisation_id",
    )
    .await;
    expect_invalid(
        "list long group",
        c.list_visible_tickets(list(&|m| m.group_id = long.clone()))
            .await,
        "group_id",
    )
    .await;
    expect_invalid(
        "list page too large",
        c.list_visible_tickets(list(&|m| m.page_size = 1001)).await,
        "page_size",
    )
    .await;
    expect_invalid(
        "list bad token",
        c.list_visible_tickets(list(&|m| m.page_token = "not-a-token".into()))
            .await,
        "page_token",
    )
    .await;
    expect_invalid(
        "list unknown status",
        c.list_visible_tickets(list(&|m| m.statuses = vec!["done".into()]))
            .await,
        "statuses",
    )
    .await;
    let first = c
        .list_visible_tickets(list(&|m| m.page_size = 1))
        .await
        .unwrap()
        .into_inner();
    let token = first.next_page_token.clone();
    expect_invalid(
        "token of another user",
        c.list_visible_tickets(list(&|m| {
            m.user_id = "paul".into();
            m.page_token = token.clone()
        }))
        .await,
        "page_token",
    )
    .await;
    expect_invalid(
        "token with another filter",
        c.list_visible_tickets(list(&|m| {
            m.group_id = "hardware".into();
            m.page_token = token.clone()
        }))
        .await,
        "page_token",
    )
    .await;
    expect_invalid(
        "viewers without ticket",
        c.list_ticket_viewers(pb::ListTicketViewersRequest::default())
            .await,
        "ticket_id",
    )
    .await;
    expect_invalid(
        "viewers with a visible-tickets token",
        c.list_ticket_viewers(pb::ListTicketViewersRequest {
            ticket_id: "1001".into(),
            page_token: token.clone(),
            ..Default::default()
        })
        .await,
        "page_token",
    )
    .await;
    expect_invalid(
        "filter without user",
        c.get_visibility_filter(pb::GetVisibilityFilterRequest::default())
            .await,
        "user_id",
    )
    .await;
    // Unknown ids are answers, not errors.
    let unknown = c
        .check_access(check("nobody", Action::View, "1001"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        unknown.reason,
        reason_code(ticket_authz::core::Reason::UnknownUser)
    );
    let empty = c
        .list_ticket_viewers(pb::ListTicketViewersRequest {
            ticket_id: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(empty.into_inner().user_ids.is_empty());
    // Nothing changed and the service still answers.
    assert_eq!(
        c.check_access(check("nils", Action::View, "1001"))
            .await
            .unwrap()
            .into_inner(),
        before
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn explain_and_min_revision() {
    let config = ServeConfig {
        revision_wait: Duration::from_millis(200),
        ..ServeConfig::default()
    };
    let running = start(config, dataset_loader(demo())).await;
    wait_serving(running.addr).await;
    let mut c = client(running.addr).await;
    let mut m = check("paul", Action::View, "1004");
    m.explain = true;
    m.min_revision = 1;
    let r = c.check_access(m.clone()).await.unwrap().into_inner();
    assert!(r.allowed);
    assert!(
        r.explanation
            .iter()
            .any(|l| l.starts_with("member of contoso via partnership brightdesk→contoso")),
        "{r:?}"
    );
    m.min_revision = 7;
    let started = Instant::now();
    let err = c.check_access(m).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(
        err.message().contains("min_revision 7") && err.message().contains("revision is 1"),
        "{}",
        err.message()
    );
    assert!(started.elapsed() >= Duration::from_millis(190));
    running.stop().await.unwrap();
}

#[tokio::test]
async fn health_follows_loading_and_shutdown() {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let loader: Loader = Box::pin(async move {
        tokio::task::spawn_blocking(move || released.recv())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        dataset_loader(demo()).await
    });
    let config = ServeConfig {
        revision_wait: Duration::from_millis(50),
        ..ServeConfig::default()
    };
    let running = start(config, loader).await;
    // Before the first load: NOT_SERVING on both ports, RPCs UNAVAILABLE.
    assert_eq!(
        health_status(running.addr, "").await,
        ServingStatus::NotServing
    );
    assert_eq!(
        health_status(running.health_addr, "ticketauthz.v1.TicketAuthz").await,
        ServingStatus::NotServing
    );
    let err = client(running.addr)
        .await
        .check_access(check("nils", Action::View, "1001"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(err.message(), "no data loaded yet");
    release.send(()).unwrap();
    wait_serving(running.addr).await;
    assert_eq!(
        health_status(running.health_addr, "").await,
        ServingStatus::Serving
    );
    assert_eq!(
        health_status(running.addr, "ticketauthz.v1.TicketAuthz").await,
        ServingStatus::Serving
    );
    // A health watch opened before shutdown sees NOT_SERVING once it starts.
    let (watcher, mut stream) = serving_watch(running.addr).await;
    let Running { stop, handle, .. } = running;
    stop.unwrap().send(()).unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    drop(stream);
    drop(watcher);
    tokio::time::timeout(Duration::from_secs(15), handle)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn shutdown_finishes_in_flight_calls() {
    let config = ServeConfig {
        revision_wait: Duration::from_millis(700),
        ..ServeConfig::default()
    };
    let running = start(config, dataset_loader(demo())).await;
    wait_serving(running.addr).await;
    let mut c = client(running.addr).await;
    let mut slow = check("nils", Action::View, "1001");
    slow.min_revision = 5;
    let call = tokio::spawn(async move { c.check_access(slow).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopped = tokio::spawn(running.stop());
    // The in-flight call ends with its own answer, not a transport error.
    let answer = call.await.unwrap().unwrap_err();
    assert_eq!(answer.code(), Code::Unavailable, "{answer:?}");
    assert!(
        answer.message().contains("min_revision 5"),
        "{}",
        answer.message()
    );
    stopped.await.unwrap().unwrap();
}

#[tokio::test]
async fn excess_concurrent_requests_are_shed() {
    let config = ServeConfig {
        revision_wait: Duration::from_millis(800),
        max_concurrent_requests: 1,
        ..ServeConfig::default()
    };
    let running = start(config, dataset_loader(demo())).await;
    wait_serving(running.addr).await;
    let mut slow_client = client(running.addr).await;
    let mut slow = check("nils", Action::View, "1001");
    slow.min_revision = 9;
    let call = tokio::spawn(async move { slow_client.check_access(slow).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let err = client(running.addr)
        .await
        .check_access(check("nils", Action::View, "1001"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(call.await.unwrap().unwrap_err().code(), Code::Unavailable);
    // Capacity is back once the slow call finished.
    assert!(
        client(running.addr)
            .await
            .check_access(check("nils", Action::View, "1001"))
            .await
            .is_ok()
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn oversized_messages_are_refused() {
    let config = ServeConfig {
        max_message_bytes: 2048,
        ..ServeConfig::default()
    };
    let running = start(config, dataset_loader(demo())).await;
    wait_serving(running.addr).await;
    let mut c = client(running.addr).await;
    let big = pb::CheckAccessBatchRequest {
        checks: vec![check("nils", Action::View, "1001"); 200],
        min_revision: 0,
    };
    let err = c.check_access_batch(big).await.unwrap_err();
    // tonic's decoder refuses the message before the service sees it.
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    assert!(
        err.message().contains("the limit is: 2048 bytes"),
        "{}",
        err.message()
    );
    assert!(
        c.check_access(check("nils", Action::View, "1001"))
            .await
            .is_ok()
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn bearer_token_is_required_when_configured_but_not_for_health() {
    let config = ServeConfig {
        auth_token: Some("s3cret-token".into()),
        ..ServeConfig::default()
    };
    let running = start(config, dataset_loader(demo())).await;
    wait_serving(running.addr).await;
    let ch = channel(running.addr).await;
    let err = TicketAuthzClient::new(ch.clone())
        .check_access(check("nils", Action::View, "1001"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let with = |token: &'static str| {
        let mut r = Request::new(check("nils", Action::View, "1001"));
        r.metadata_mut()
            .insert("authorization", token.parse().unwrap());
        r
    };
    let err = TicketAuthzClient::new(ch.clone())
        .check_access(with("Bearer wrong"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = TicketAuthzClient::new(ch.clone())
        .check_access(with("s3cret-token"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let ok = TicketAuthzClient::new(ch.clone())
        .check_access(with("Bearer s3cret-token"))
        .await
        .unwrap();
    assert!(ok.into_inner().allowed);
    // The auth scheme is case-insensitive (RFC 9110 §11.1); the token is not.
    for token in ["bearer s3cret-token", "BEARER s3cret-token"] {
        let ok = TicketAuthzClient::new(ch.clone())
            .check_access(with(token))
            .await
            .unwrap_or_else(|e| panic!("{token}: {e:?}"));
        assert!(ok.into_inner().allowed);
    }
    let err = TicketAuthzClient::new(ch.clone())
        .check_access(with("bearer S3CRET-TOKEN"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(err.message(), "missing or wrong bearer token");
    assert_eq!(
        health_status(running.addr, "").await,
        ServingStatus::Serving
    );
    running.stop().await.unwrap();
}

struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
    rogue_cert: String,
    rogue_key: String,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let ca_params = {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(DnType::CommonName, "ticket-authz test CA");
        p
    };
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf = |name: &str, issuer: &rcgen::Issuer<'_, KeyPair>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&key, issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf("localhost", &ca);
    let (client_cert, client_key) = leaf("client.example", &ca);
    let other_ca = {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
    };
    let (rogue_cert, rogue_key) = leaf("rogue.example", &other_ca);
    Pki {
        ca: ca.pem(),
        server_cert,
        server_key,
        client_cert,
        client_key,
        rogue_cert,
        rogue_key,
    }
}

async fn tls_channel(
    addr: SocketAddr,
    pki: &Pki,
    identity: Option<(&str, &str)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

#[tokio::test]
async fn tls_and_mutual_tls() {
    let pki = pki();
    // TLS: a client trusting the CA gets answers; plaintext does not.
    let tls = TlsPem {
        cert: pki.server_cert.clone().into_bytes(),
        key: pki.server_key.clone().into_bytes(),
        client_ca: None,
    };
    let running = start(
        ServeConfig {
            tls: Some(tls.into()),
            ..ServeConfig::default()
        },
        dataset_loader(demo()),
    )
    .await;
    wait_serving(running.health_addr).await;
    let ch = tls_channel(running.addr, &pki, None).await.unwrap();
    assert!(
        TicketAuthzClient::new(ch)
            .check_access(check("nils", Action::View, "1001"))
            .await
            .unwrap()
            .into_inner()
            .allowed
    );
    let plain = TicketAuthzClient::new(channel(running.addr).await)
        .check_access(check("nils", Action::View, "1001"))
        .await;
    assert!(plain.is_err());
    running.stop().await.unwrap();

    // Mutual TLS: only callers with a certificate from the client CA.
    let mtls = TlsPem {
        cert: pki.server_cert.clone().into_bytes(),
        key: pki.server_key.clone().into_bytes(),
        client_ca: Some(pki.ca.clone().into_bytes()),
    };
    let running = start(
        ServeConfig {
            tls: Some(mtls.into()),
            ..ServeConfig::default()
        },
        dataset_loader(demo()),
    )
    .await;
    // The plaintext health port stays open for probes.
    wait_serving(running.health_addr).await;
    let ch = tls_channel(
        running.addr,
        &pki,
        Some((&pki.client_cert, &pki.client_key)),
    )
    .await
    .unwrap();
    assert!(
        TicketAuthzClient::new(ch)
            .check_access(check("nils", Action::View, "1001"))
            .await
            .unwrap()
            .into_inner()
            .allowed
    );
    for identity in [
        None,
        Some((pki.rogue_cert.as_str(), pki.rogue_key.as_str())),
    ] {
        let refused = match tls_channel(running.addr, &pki, identity).await {
            Err(_) => true,
            Ok(ch) => TicketAuthzClient::new(ch)
                .check_access(check("nils", Action::View, "1001"))
                .await
                .is_err(),
        };
        assert!(
            refused,
            "a caller without a certificate from the client CA was served"
        );
    }
    running.stop().await.unwrap();
}

#[tokio::test]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let running = start(ServeConfig::default(), dataset_loader(demo())).await;
    wait_serving(running.addr).await;
    let mut c = ServerReflectionClient::new(channel(running.addr).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = c
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"ticketauthz.v1.TicketAuthz".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn per_request_deadlines_are_honoured() {
    let config = ServeConfig {
        revision_wait: Duration::from_secs(5),
        ..ServeConfig::default()
    };
    let running = start(config, dataset_loader(demo())).await;
    wait_serving(running.addr).await;
    let mut c = client(running.addr).await;
    let mut slow = check("nils", Action::View, "1001");
    slow.min_revision = 99;
    // The caller's deadline (grpc-timeout) ends the call long before the
    // 5 s revision wait would.
    let mut request = Request::new(slow);
    request.set_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let err = c.check_access(request).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(err.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{err:?}"
    );
    // The service goes on answering.
    assert!(
        c.check_access(check("nils", Action::View, "1001"))
            .await
            .is_ok()
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn malformed_list_requests_are_refused_before_any_wait() {
    let config = ServeConfig {
        revision_wait: Duration::from_secs(5),
        ..ServeConfig::default()
    };
    let running = start(config, dataset_loader(demo())).await;
    wait_serving(running.addr).await;
    let mut c = client(running.addr).await;
    let too_large = "page_size: 1001 is more than the maximum of 1000";
    let malformed = "page_token: malformed token";
    let started = Instant::now();
    for (page_size, page_token, expected) in [(1001, "", too_large), (0, "not-a-token", malformed)]
    {
        let tickets = c
            .list_visible_tickets(pb::ListVisibleTicketsRequest {
                user_id: "nils".into(),
                page_size,
                page_token: page_token.into(),
                min_revision: 99,
                ..Default::default()
            })
            .await;
        let viewers = c
            .list_ticket_viewers(pb::ListTicketViewersRequest {
                ticket_id: "1001".into(),
                page_size,
                page_token: page_token.into(),
                min_revision: 99,
            })
            .await;
        for err in [tickets.unwrap_err(), viewers.unwrap_err()] {
            assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
            assert_eq!(err.message(), expected);
        }
    }
    // Four refusals, each well before one revision wait.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_health_watch_on_the_health_port_does_not_hold_shutdown() {
    let grace = Duration::from_millis(300);
    let config = ServeConfig {
        shutdown_grace: grace,
        ..ServeConfig::default()
    };
    let running = start(config, dataset_loader(demo())).await;
    wait_serving(running.health_addr).await;
    let (watcher, stream) = serving_watch(running.health_addr).await;
    let Running { stop, handle, .. } = running;
    let started = Instant::now();
    stop.unwrap().send(()).unwrap();
    // The watch stays open (held by this test) while the server stops.
    tokio::time::timeout(grace + Duration::from_secs(3), handle)
        .await
        .expect("run returns within the grace period, watch or no watch")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < grace + Duration::from_secs(3));
    drop((watcher, stream));
}

/// Serves the demo with `follow` as the follower and a metrics port.
async fn start_following(follow: server::Follow) -> (Running, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let health = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, health_addr) = (listener.local_addr().unwrap(), health.local_addr().unwrap());
    let metrics_addr = metrics.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let listeners = server::Listeners {
        grpc: listener,
        health: Some(health),
        metrics: Some(metrics),
        console: None,
    };
    let handle = tokio::spawn(server::run(
        ServeConfig::default(),
        listeners,
        async move {
            let _ = stopped.await;
        },
        dataset_loader(demo()),
        Some(follow),
    ));
    let running = Running {
        addr,
        health_addr,
        stop: Some(stop),
        handle,
    };
    (running, metrics_addr)
}

/// `ticket_authz_task_failures_total{task="follower"}` as `/metrics` shows it.
async fn follower_failures(metrics: SocketAddr) -> f64 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(metrics).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: metrics\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    text.lines()
        .find(|l| l.starts_with("ticket_authz_task_failures_total{task=\"follower\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}

/// Health leaves SERVING on both names and the failure is counted.
async fn expect_follower_failure(running: &Running, metrics: SocketAddr) {
    let started = Instant::now();
    loop {
        let main = health_status(running.addr, "").await;
        let named = health_status(running.health_addr, "ticketauthz.v1.TicketAuthz").await;
        let failures = follower_failures(metrics).await;
        if main == ServingStatus::NotServing
            && named == ServingStatus::NotServing
            && failures >= 1.0
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "after a failed follower: health {main:?}/{named:?}, {failures} failures counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_panicking_follower_turns_health_not_serving_and_is_counted() {
    let follow: server::Follow = Box::new(|_store, _stop| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            panic!("the follower broke");
        })
    });
    let (running, metrics) = start_following(follow).await;
    expect_follower_failure(&running, metrics).await;
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_follower_that_returns_early_turns_health_not_serving_and_is_counted() {
    let follow: server::Follow = Box::new(|_store, _stop| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
        })
    });
    let (running, metrics) = start_following(follow).await;
    expect_follower_failure(&running, metrics).await;
    running.stop().await.unwrap();
}

/// Section checks and ticket checks share a batch (one snapshot, request
/// order); `ListVisibleResources` refuses a missing kind, a bad page and a
/// token of another query, and lists nothing for an unknown user.
#[tokio::test]
async fn section_checks_batch_with_ticket_checks_and_resource_lists_validate() {
    let source = &common::section_scenario_files()[0];
    let dir = std::env::temp_dir().join(format!("ticket-authz-mixed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mixed.yaml");
    let text = std::fs::read_to_string(source).unwrap()
        + "\ntickets:\n  - { id: t1, created_at: 2025-02-01T00:00:00Z, requester: wes }\n";
    std::fs::write(&file, text).unwrap();
    let running = start(ServeConfig::default(), dataset_loader(file.clone())).await;
    wait_serving(running.addr).await;
    let mut c = client(running.addr).await;
    let ask = |user: &str, action: Action, ticket: &str, resource: &str| pb::CheckAccessRequest {
        user_id: user.into(),
        action: action_code(action),
        ticket_id: ticket.into(),
        resource_id: resource.into(),
        ..Default::default()
    };
    let checks = vec![
        ask("wes", Action::View, "t1", "ignored-by-ticket-actions"),
        ask("pia", Action::ProjectView, "", "move"),
        ask("nia", Action::View, "t1", ""),
        ask("cus", Action::WikiView, "t1", "welcome"),
        ask("uma", Action::UserManage, "", "boss"),
    ];
    let want = [
        (true, Reason::Requester),
        (true, Reason::Owner),
        (false, Reason::NoMatchingRule),
        (true, Reason::Public),
        (false, Reason::NoMatchingRule),
    ];
    let batch = c
        .check_access_batch(pb::CheckAccessBatchRequest {
            checks: checks.clone(),
            min_revision: 0,
        })
        .await
        .unwrap()
        .into_inner();
    for ((got, check), (allowed, reason)) in batch.results.iter().zip(&checks).zip(want) {
        assert_eq!(
            (got.allowed, got.reason),
            (allowed, reason_code(reason)),
            "{check:?}"
        );
        let single = c.check_access(check.clone()).await.unwrap().into_inner();
        assert_eq!(&single, got);
    }
    let mut bad = checks.clone();
    bad.push(ask("pia", Action::TaskView, "", ""));
    let status = c
        .check_access_batch(pb::CheckAccessBatchRequest {
            checks: bad,
            min_revision: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("checks[5].resource_id"),
        "{}",
        status.message()
    );

    let list = |kind: i32, size: u32, token: &str, user: &str| pb::ListVisibleResourcesRequest {
        user_id: user.into(),
        kind,
        page_size: size,
        page_token: token.into(),
        min_revision: 0,
    };
    let task = pb::ResourceKind::Task as i32;
    for (request, field) in [
        (list(0, 2, "", "wes"), "kind: "),
        (list(9, 2, "", "wes"), "kind: "),
        (list(task, 1001, "", "wes"), "page_size: "),
        (list(task, 2, "%%", "wes"), "page_token: "),
        (list(task, 2, "", ""), "user_id: "),
    ] {
        let status = c.list_visible_resources(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().starts_with(field), "{}", status.message());
    }
    let first = c
        .list_visible_resources(list(task, 2, "", "wes"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.resource_ids, ["cabling", "labels"]);
    let project = pb::ResourceKind::Project as i32;
    let replayed = c
        .list_visible_resources(list(project, 2, &first.next_page_token, "wes"))
        .await
        .unwrap_err();
    assert_eq!(replayed.code(), Code::InvalidArgument);
    let rest = c
        .list_visible_resources(list(task, 2, &first.next_page_token, "wes"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (rest.resource_ids.as_slice(), rest.next_page_token.as_str()),
        (["plan".to_owned()].as_slice(), "")
    );
    let nobody = c
        .list_visible_resources(list(task, 2, "", "nobody"))
        .await
        .unwrap()
        .into_inner();
    assert!(nobody.resource_ids.is_empty());
    running.stop().await.unwrap();
    std::fs::remove_dir_all(&dir).ok();
}
