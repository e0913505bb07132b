//! The `TicketAuthz` service: admission, revision waits, and the decision
//! core behind each RPC, each call observed (span, latency, decision log).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Request, Response, Status};
use tracing::Instrument as _;

use super::convert::{
    decision_to_pb, filter_to_pb, list_error, request_error, required_id, store_error,
};
use super::observe::{Call, Rpc};
use super::pb;
use super::pb::ticket_authz_server::TicketAuthz;
use crate::core::{self, Action, CheckRequest, Context, Decision, TicketFilter, ValidRequest};
use crate::snapshot::Snapshot;
use crate::store::Store;
use crate::telemetry::decision_log::{DecisionLog, DecisionRecord, LoggedRequest};
use crate::telemetry::metrics::DECISIONS;
use crate::time::Timestamp;

/// The most checks one `CheckAccessBatch` may carry.
pub const MAX_BATCH: usize = 1000;

/// How calls are observed beyond spans and metrics.
#[derive(Debug, Clone, Default)]
pub struct Observe {
    /// Put user and ticket ids on spans.
    pub trace_subjects: bool,
    pub decision_log: Option<DecisionLog>,
}

/// Serves the five RPCs from the store's snapshots.
#[derive(Debug, Clone)]
pub struct AuthzService {
    store: Arc<Store>,
    revision_wait: Duration,
    permits: Arc<Semaphore>,
    observe: Observe,
}

impl AuthzService {
    /// `max_concurrent` bounds the requests in progress; beyond it requests
    /// are shed with `RESOURCE_EXHAUSTED` instead of queueing.
    pub fn new(
        store: Arc<Store>,
        revision_wait: Duration,
        max_concurrent: usize,
        observe: Observe,
    ) -> Self {
        Self {
            store,
            revision_wait,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            observe,
        }
    }

    fn admit(&self, call: &Call) -> Result<OwnedSemaphorePermit, Status> {
        Arc::clone(&self.permits).try_acquire_owned().map_err(|_| {
            call.shed();
            Status::resource_exhausted("too many requests in progress; retry with backoff")
        })
    }

    /// Logs a decision when the sample draw says so; builds the record only then.
    fn log(
        &self,
        rpc: Rpc,
        m: &pb::CheckAccessRequest,
        v: &ValidRequest<'_>,
        d: &Decision,
        revision: u64,
    ) {
        let Some(log) = &self.observe.decision_log else {
            return;
        };
        if !log.sampled() {
            return;
        }
        log.record(DecisionRecord {
            time: jiff::Timestamp::now().to_string(),
            revision,
            rpc: rpc.method(),
            request: LoggedRequest {
                user_id: m.user_id.clone(),
                action: v.action.name(),
                ticket_id: m.ticket_id.clone(),
                organisation_id: m.organisation_id.clone(),
                group_id: m.group_id.clone(),
                company_id: m.company_id.clone(),
                flag: m.flag.clone(),
            },
            allowed: d.allowed,
            reason: d.reason.name(),
            warning: d.warning.map(|w| w.name()),
        });
    }

    async fn check_one(
        &self,
        call: &Call,
        m: pb::CheckAccessRequest,
    ) -> Result<Response<pb::CheckAccessResponse>, Status> {
        let _permit = self.admit(call)?;
        let valid = CheckRequest::from(&m).validate().map_err(request_error)?;
        let snap = self.snapshot(m.min_revision).await?;
        let ctx = Context {
            now: clock(&snap),
            explain: m.explain,
        };
        let decision = core::decide(&snap, &valid, ctx);
        count_decisions([(valid.action, decision.allowed)]);
        self.log(Rpc::CheckAccess, &m, &valid, &decision, snap.revision());
        let span = call.span();
        if !span.is_disabled() {
            span.record("authz.action", valid.action.name());
            span.record("authz.allowed", decision.allowed);
            span.record("authz.reason", decision.reason.name());
            span.record("authz.revision", snap.revision());
            if self.observe.trace_subjects {
                span.record("authz.user_id", valid.user);
                if let Some(ticket) = valid.ticket {
                    span.record("authz.ticket_id", ticket);
                }
            }
        }
        Ok(Response::new(decision_to_pb(decision, snap.revision())))
    }

    async fn check_batch(
        &self,
        call: &Call,
        m: pb::CheckAccessBatchRequest,
    ) -> Result<Response<pb::CheckAccessBatchResponse>, Status> {
        let _permit = self.admit(call)?;
        if m.checks.is_empty() || m.checks.len() > MAX_BATCH {
            return Err(Status::invalid_argument(format!(
                "checks: a batch holds 1 to {MAX_BATCH} checks, not {}",
                m.checks.len()
            )));
        }
        let mut valid = Vec::with_capacity(m.checks.len());
        for (i, check) in m.checks.iter().enumerate() {
            let v = CheckRequest::from(check)
                .validate()
                .map_err(|e| Status::invalid_argument(format!("checks[{i}].{e}")))?;
            valid.push(v);
        }
        let min_revision = m
            .checks
            .iter()
            .map(|c| c.min_revision)
            .fold(m.min_revision, u64::max);
        let snap = self.snapshot(min_revision).await?;
        let now = clock(&snap);
        let mut tally = Vec::with_capacity(valid.len());
        let results: Vec<_> = valid
            .iter()
            .zip(&m.checks)
            .map(|(v, check)| {
                let d = core::decide(
                    &snap,
                    v,
                    Context {
                        now,
                        explain: check.explain,
                    },
                );
                tally.push((v.action, d.allowed));
                self.log(Rpc::CheckAccessBatch, check, v, &d, snap.revision());
                decision_to_pb(d, snap.revision())
            })
            .collect();
        count_decisions(tally.iter().copied());
        let span = call.span();
        if !span.is_disabled() {
            span.record("authz.checks", results.len());
            span.record(
                "authz.allowed_checks",
                tally.iter().filter(|(_, allowed)| *allowed).count(),
            );
            span.record("authz.revision", snap.revision());
        }
        Ok(Response::new(pb::CheckAccessBatchResponse {
            results,
            revision: snap.revision(),
        }))
    }

    async fn list_tickets(
        &self,
        call: &Call,
        m: pb::ListVisibleTicketsRequest,
    ) -> Result<Response<pb::ListVisibleTicketsResponse>, Status> {
        let _permit = self.admit(call)?;
        let filter = TicketFilter::try_from(&m)?;
        let snap = self.snapshot(m.min_revision).await?;
        let page =
            core::list_visible_tickets(&snap, &m.user_id, &filter, m.page_size, &m.page_token)
                .map_err(list_error)?;
        self.record_list(call, page.ids.len(), snap.revision(), &m.user_id);
        Ok(Response::new(pb::ListVisibleTicketsResponse {
            ticket_ids: page.ids,
            next_page_token: page.next_page_token.unwrap_or_default(),
            revision: snap.revision(),
        }))
    }

    async fn list_viewers(
        &self,
        call: &Call,
        m: pb::ListTicketViewersRequest,
    ) -> Result<Response<pb::ListTicketViewersResponse>, Status> {
        let _permit = self.admit(call)?;
        required_id("ticket_id", &m.ticket_id)?;
        let snap = self.snapshot(m.min_revision).await?;
        let page = core::list_ticket_viewers(&snap, &m.ticket_id, m.page_size, &m.page_token)
            .map_err(list_error)?;
        self.record_list(call, page.ids.len(), snap.revision(), "");
        if self.observe.trace_subjects && !call.span().is_disabled() {
            call.span().record("authz.ticket_id", m.ticket_id.as_str());
        }
        Ok(Response::new(pb::ListTicketViewersResponse {
            user_ids: page.ids,
            next_page_token: page.next_page_token.unwrap_or_default(),
            revision: snap.revision(),
        }))
    }

    async fn visibility_filter(
        &self,
        call: &Call,
        m: pb::GetVisibilityFilterRequest,
    ) -> Result<Response<pb::GetVisibilityFilterResponse>, Status> {
        let _permit = self.admit(call)?;
        required_id("user_id", &m.user_id)?;
        let snap = self.snapshot(m.min_revision).await?;
        let filter = core::visibility_filter(&snap, &m.user_id);
        self.record_list(
            call,
            filter.organisation_ids.len(),
            snap.revision(),
            &m.user_id,
        );
        Ok(Response::new(pb::GetVisibilityFilterResponse {
            filter: Some(filter_to_pb(filter)),
            revision: snap.revision(),
        }))
    }

    fn record_list(&self, call: &Call, results: usize, revision: u64, user: &str) {
        let span = call.span();
        if span.is_disabled() {
            return;
        }
        span.record("authz.results", results);
        span.record("authz.revision", revision);
        if self.observe.trace_subjects && !user.is_empty() {
            span.record("authz.user_id", user);
        }
    }

    async fn snapshot(&self, min_revision: u64) -> Result<Arc<Snapshot>, Status> {
        self.store
            .at_least(min_revision, self.revision_wait)
            .await
            .map_err(store_error)
    }
}

/// The clock for ticket limits: the data's fixed `now`, else the wall clock.
fn clock(snap: &Snapshot) -> Timestamp {
    snap.fixed_now().unwrap_or_else(Timestamp::now)
}

/// Counts decisions by action and outcome, one metric update per distinct
/// pair (a batch of 1000 checks costs a dozen updates, not 1000).
fn count_decisions(decisions: impl IntoIterator<Item = (Action, bool)>) {
    let mut tally = [[0u64; 2]; Action::ALL.len()];
    for (action, allowed) in decisions {
        if let Some(i) = Action::ALL.iter().position(|a| *a == action) {
            tally[i][usize::from(allowed)] += 1;
        }
    }
    for (action, counts) in Action::ALL.iter().zip(tally) {
        for (outcome, n) in ["denied", "allowed"].into_iter().zip(counts) {
            if n > 0 {
                metrics::counter!(DECISIONS, "action" => action.name(), "outcome" => outcome)
                    .increment(n);
            }
        }
    }
}

#[tonic::async_trait]
impl TicketAuthz for AuthzService {
    async fn check_access(
        &self,
        request: Request<pb::CheckAccessRequest>,
    ) -> Result<Response<pb::CheckAccessResponse>, Status> {
        let call = Call::start(Rpc::CheckAccess, request.metadata());
        let span = call.span().clone();
        let result = self
            .check_one(&call, request.into_inner())
            .instrument(span)
            .await;
        let outcome = match &result {
            Ok(r) if r.get_ref().allowed => "allowed",
            _ => "denied",
        };
        call.finish(&result, outcome);
        result
    }

    async fn check_access_batch(
        &self,
        request: Request<pb::CheckAccessBatchRequest>,
    ) -> Result<Response<pb::CheckAccessBatchResponse>, Status> {
        let call = Call::start(Rpc::CheckAccessBatch, request.metadata());
        let span = call.span().clone();
        let result = self
            .check_batch(&call, request.into_inner())
            .instrument(span)
            .await;
        call.finish(&result, "ok");
        result
    }

    async fn list_visible_tickets(
        &self,
        request: Request<pb::ListVisibleTicketsRequest>,
    ) -> Result<Response<pb::ListVisibleTicketsResponse>, Status> {
        let call = Call::start(Rpc::ListVisibleTickets, request.metadata());
        let span = call.span().clone();
        let result = self
            .list_tickets(&call, request.into_inner())
            .instrument(span)
            .await;
        call.finish(&result, "ok");
        result
    }

    async fn list_ticket_viewers(
        &self,
        request: Request<pb::ListTicketViewersRequest>,
    ) -> Result<Response<pb::ListTicketViewersResponse>, Status> {
        let call = Call::start(Rpc::ListTicketViewers, request.metadata());
        let span = call.span().clone();
        let result = self
            .list_viewers(&call, request.into_inner())
            .instrument(span)
            .await;
        call.finish(&result, "ok");
        result
    }

    async fn get_visibility_filter(
        &self,
        request: Request<pb::GetVisibilityFilterRequest>,
    ) -> Result<Response<pb::GetVisibilityFilterResponse>, Status> {
        let call = Call::start(Rpc::GetVisibilityFilter, request.metadata());
        let span = call.span().clone();
        let result = self
            .visibility_filter(&call, request.into_inner())
            .instrument(span)
            .await;
        call.finish(&result, "ok");
        result
    }
}
