//! The gRPC service from arbitrary protobuf bytes: the first byte picks
//! the RPC, the rest is its request message. Each decoded message goes
//! through the service itself (the edge's conversion, the application's
//! validation, the decision) on a small built snapshot. Refusals are
//! `INVALID_ARGUMENT`, or `UNAVAILABLE` for a revision not loaded; an
//! unknown or suspended user is denied everything and sees nothing; a
//! batch answers as its checks one by one; every listed ticket, viewer or
//! section resource passes its view rule. Section questions (checks naming
//! a `resource_id`, `ListVisibleResources`) go to a second fixture that
//! holds every section.

#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use tokio::runtime::Runtime;
use tonic::{Code, Request, Response, Status};

use ticket_authz::app::{Authz, Observe};
use ticket_authz::core::{self, ActionInput, CheckRequest, Context, Reason};
use ticket_authz::grpc::convert::{reason_of, resource_kind};
use ticket_authz::grpc::pb;
use ticket_authz::grpc::pb::ticket_authz_server::TicketAuthz as _;
use ticket_authz::grpc::service::AuthzService;
use ticket_authz::model::Dataset;
use ticket_authz::snapshot::Snapshot;
use ticket_authz::store::Store;
use ticket_authz::time::Timestamp;
use ticket_authz_fuzz::user_state;

struct Fixture {
    runtime: Runtime,
    service: AuthzService,
    snapshot: Arc<Snapshot>,
    data: Dataset,
}

fn fixture() -> Option<&'static Fixture> {
    static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| build(ticket_authz_fuzz::demo()?))
        .as_ref()
}

fn sections() -> Option<&'static Fixture> {
    static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| build(ticket_authz_fuzz::sections()?))
        .as_ref()
}

fn build((data, snapshot): (Dataset, Snapshot)) -> Option<Fixture> {
    let store = Arc::new(Store::default());
    store.publish(snapshot);
    let snapshot = store.current()?;
    // No wait for a later revision: a fuzz run must not sleep.
    let app = Authz::new(store, Duration::ZERO, Observe::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .ok()?;
    Some(Fixture {
        runtime,
        service: AuthzService::new(app),
        snapshot,
        data,
    })
}

/// The refusal is the contract's: a caller's mistake, or data not there.
fn refused(status: &Status, min_revision: u64, loaded: u64) {
    match status.code() {
        Code::InvalidArgument => {}
        Code::Unavailable => assert!(
            min_revision > loaded,
            "UNAVAILABLE at a loaded revision: {}",
            status.message()
        ),
        other => panic!("refused with {other:?}: {}", status.message()),
    }
}

/// Whether the user may be allowed anything at all: known, not suspended.
fn may_act(f: &Fixture, user: &str) -> bool {
    user_state(&f.data, user) == Some(true)
}

/// Decodes `bytes` as `M` and calls the RPC with it: the message and, when
/// answered, the answer; a refusal is checked against `min_revision` of
/// the message (`wanted`).
fn serve<M, R, F>(
    f: &'static Fixture,
    bytes: &[u8],
    wanted: impl Fn(&M) -> u64,
    rpc: impl FnOnce(&'static AuthzService, Request<M>) -> F,
) -> Option<(M, R)>
where
    M: prost::Message + Default + Clone,
    F: Future<Output = Result<Response<R>, Status>>,
{
    let m = M::decode(bytes).ok()?;
    match f.runtime.block_on(rpc(&f.service, Request::new(m.clone()))) {
        Ok(r) => Some((m, r.into_inner())),
        Err(status) => {
            refused(&status, wanted(&m), f.snapshot.revision());
            None
        }
    }
}

/// One check; an allowed user exists and is not suspended, an unknown one
/// is denied as unknown.
fn check(f: &'static Fixture, bytes: &[u8]) -> Option<pb::CheckAccessResponse> {
    let (m, r) = serve(
        f,
        bytes,
        |m: &pb::CheckAccessRequest| m.min_revision,
        |s, r| s.check_access(r),
    )?;
    if r.allowed {
        assert!(may_act(f, &m.user_id), "allowed for {:?}", m.user_id);
    }
    if user_state(&f.data, &m.user_id).is_none() {
        assert_eq!(reason_of(r.reason), Some(Reason::UnknownUser));
    }
    Some(r)
}

fuzz_target!(|data: &[u8]| {
    let (Some(f), Some(desk)) = (fixture(), sections()) else {
        return;
    };
    let Some((&rpc, bytes)) = data.split_first() else {
        return;
    };
    let snap = &f.snapshot;
    match rpc % 7 {
        0 => {
            check(f, bytes);
        }
        1 => {
            let wanted = |m: &pb::CheckAccessBatchRequest| {
                m.checks
                    .iter()
                    .map(|c| c.min_revision)
                    .fold(m.min_revision, u64::max)
            };
            let Some((m, r)) = serve(f, bytes, wanted, |s, r| s.check_access_batch(r)) else {
                return;
            };
            assert_eq!(r.results.len(), m.checks.len(), "one answer per check");
            for (one, answer) in m.checks.into_iter().zip(r.results) {
                let one = pb::CheckAccessRequest {
                    min_revision: 0,
                    ..one
                };
                let alone = check(f, &one.encode_to_vec());
                assert!(
                    alone.as_ref() == Some(&answer),
                    "a batch answers {answer:?}, the check alone {alone:?}"
                );
            }
        }
        2 => {
            let wanted = |m: &pb::ListVisibleTicketsRequest| m.min_revision;
            let Some((m, r)) = serve(f, bytes, wanted, |s, r| s.list_visible_tickets(r)) else {
                return;
            };
            if !may_act(f, &m.user_id) {
                assert!(r.ticket_ids.is_empty(), "{:?} sees tickets", m.user_id);
            }
            for id in &r.ticket_ids {
                assert!(
                    core::can_view(snap, &m.user_id, id),
                    "{:?} listed {id}",
                    m.user_id
                );
            }
        }
        3 => {
            let wanted = |m: &pb::ListTicketViewersRequest| m.min_revision;
            let Some((m, r)) = serve(f, bytes, wanted, |s, r| s.list_ticket_viewers(r)) else {
                return;
            };
            for id in &r.user_ids {
                assert!(
                    core::can_view(snap, id, &m.ticket_id),
                    "{id} listed for {:?}",
                    m.ticket_id
                );
            }
        }
        5 => {
            check(desk, bytes);
        }
        6 => {
            let wanted = |m: &pb::ListVisibleResourcesRequest| m.min_revision;
            let Some((m, r)) = serve(desk, bytes, wanted, |s, r| s.list_visible_resources(r))
            else {
                return;
            };
            // Answered, so the kind was valid.
            let Ok(kind) = resource_kind(m.kind) else {
                panic!("kind {} answered", m.kind);
            };
            if !may_act(desk, &m.user_id) {
                assert!(r.resource_ids.is_empty(), "{:?} sees resources", m.user_id);
            }
            let mut previous: Option<&str> = None;
            for id in &r.resource_ids {
                assert!(
                    previous.is_none_or(|p| p < id.as_str()),
                    "not in byte order: {previous:?} then {id}"
                );
                previous = Some(id);
                let view = CheckRequest {
                    user: &m.user_id,
                    action: ActionInput::Known(core::view_action(kind)),
                    resource: id,
                    ..CheckRequest::default()
                };
                let ctx = Context {
                    now: Timestamp::now(),
                    explain: false,
                    limits: None,
                };
                assert!(
                    core::check(&desk.snapshot, &view, ctx).is_ok_and(|d| d.allowed),
                    "{:?} listed {kind:?} {id}",
                    m.user_id
                );
            }
        }
        _ => {
            let wanted = |m: &pb::GetVisibilityFilterRequest| m.min_revision;
            let Some((m, r)) = serve(f, bytes, wanted, |s, r| s.get_visibility_filter(r)) else {
                return;
            };
            if !may_act(f, &m.user_id) {
                assert_eq!(
                    r.filter.unwrap_or_default(),
                    pb::VisibilityFilter::default(),
                    "{:?} sees something",
                    m.user_id
                );
            }
        }
    }
});
