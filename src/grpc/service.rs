//! The `TicketAuthz` service: admission, revision waits, and the decision
//! core behind each RPC.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Request, Response, Status};

use super::convert::{
    decision_to_pb, filter_to_pb, list_error, request_error, required_id, store_error,
};
use super::pb;
use super::pb::ticket_authz_server::TicketAuthz;
use crate::core::{self, CheckRequest, Context, TicketFilter};
use crate::snapshot::Snapshot;
use crate::store::Store;
use crate::time::Timestamp;

/// The most checks one `CheckAccessBatch` may carry.
pub const MAX_BATCH: usize = 1000;

/// Serves the five RPCs from the store's snapshots.
#[derive(Debug, Clone)]
pub struct AuthzService {
    store: Arc<Store>,
    revision_wait: Duration,
    permits: Arc<Semaphore>,
}

impl AuthzService {
    /// `max_concurrent` bounds the requests in progress; beyond it requests
    /// are shed with `RESOURCE_EXHAUSTED` instead of queueing.
    pub fn new(store: Arc<Store>, revision_wait: Duration, max_concurrent: usize) -> Self {
        Self {
            store,
            revision_wait,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }

    fn admit(&self) -> Result<OwnedSemaphorePermit, Status> {
        Arc::clone(&self.permits).try_acquire_owned().map_err(|_| {
            Status::resource_exhausted("too many requests in progress; retry with backoff")
        })
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

#[tonic::async_trait]
impl TicketAuthz for AuthzService {
    async fn check_access(
        &self,
        request: Request<pb::CheckAccessRequest>,
    ) -> Result<Response<pb::CheckAccessResponse>, Status> {
        let _permit = self.admit()?;
        let m = request.into_inner();
        let valid = CheckRequest::from(&m).validate().map_err(request_error)?;
        let snap = self.snapshot(m.min_revision).await?;
        let ctx = Context {
            now: clock(&snap),
            explain: m.explain,
        };
        let decision = core::decide(&snap, &valid, ctx);
        Ok(Response::new(decision_to_pb(decision, snap.revision())))
    }

    async fn check_access_batch(
        &self,
        request: Request<pb::CheckAccessBatchRequest>,
    ) -> Result<Response<pb::CheckAccessBatchResponse>, Status> {
        let _permit = self.admit()?;
        let m = request.into_inner();
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
            valid.push((v, check.explain));
        }
        let min_revision = m
            .checks
            .iter()
            .map(|c| c.min_revision)
            .fold(m.min_revision, u64::max);
        let snap = self.snapshot(min_revision).await?;
        let now = clock(&snap);
        let results = valid
            .iter()
            .map(|(v, explain)| {
                let d = core::decide(
                    &snap,
                    v,
                    Context {
                        now,
                        explain: *explain,
                    },
                );
                decision_to_pb(d, snap.revision())
            })
            .collect();
        Ok(Response::new(pb::CheckAccessBatchResponse {
            results,
            revision: snap.revision(),
        }))
    }

    async fn list_visible_tickets(
        &self,
        request: Request<pb::ListVisibleTicketsRequest>,
    ) -> Result<Response<pb::ListVisibleTicketsResponse>, Status> {
        let _permit = self.admit()?;
        let m = request.into_inner();
        let filter = TicketFilter::try_from(&m)?;
        let snap = self.snapshot(m.min_revision).await?;
        let page =
            core::list_visible_tickets(&snap, &m.user_id, &filter, m.page_size, &m.page_token)
                .map_err(list_error)?;
        Ok(Response::new(pb::ListVisibleTicketsResponse {
            ticket_ids: page.ids,
            next_page_token: page.next_page_token.unwrap_or_default(),
            revision: snap.revision(),
        }))
    }

    async fn list_ticket_viewers(
        &self,
        request: Request<pb::ListTicketViewersRequest>,
    ) -> Result<Response<pb::ListTicketViewersResponse>, Status> {
        let _permit = self.admit()?;
        let m = request.into_inner();
        required_id("ticket_id", &m.ticket_id)?;
        let snap = self.snapshot(m.min_revision).await?;
        let page = core::list_ticket_viewers(&snap, &m.ticket_id, m.page_size, &m.page_token)
            .map_err(list_error)?;
        Ok(Response::new(pb::ListTicketViewersResponse {
            user_ids: page.ids,
            next_page_token: page.next_page_token.unwrap_or_default(),
            revision: snap.revision(),
        }))
    }

    async fn get_visibility_filter(
        &self,
        request: Request<pb::GetVisibilityFilterRequest>,
    ) -> Result<Response<pb::GetVisibilityFilterResponse>, Status> {
        let _permit = self.admit()?;
        let m = request.into_inner();
        required_id("user_id", &m.user_id)?;
        let snap = self.snapshot(m.min_revision).await?;
        Ok(Response::new(pb::GetVisibilityFilterResponse {
            filter: Some(filter_to_pb(core::visibility_filter(&snap, &m.user_id))),
            revision: snap.revision(),
        }))
    }
}
