//! The `TicketAuthz` service: each RPC converts its message to a domain
//! request, asks the application service, and converts the answer or the
//! error back. Admission and authentication are layers of the port.

use tonic::{Request, Response, Status};
use tracing::Instrument as _;

use super::convert::{app_status, check_options, decision_to_pb, filter_to_pb, resource_kind};
use super::observe::{Calls, Rpc, finish};
use super::pb;
use super::pb::ticket_authz_server::TicketAuthz;
use crate::app::{Answer, Authz, PageArgs};
use crate::core::{CheckRequest, TicketFilter};

pub use crate::app::MAX_BATCH;

/// Serves the six RPCs from the application service.
#[derive(Debug)]
pub struct AuthzService {
    app: Authz,
    calls: Calls,
}

impl AuthzService {
    /// Each RPC keeps its metric handles after its first call.
    pub fn new(app: Authz) -> Self {
        Self {
            app,
            calls: Calls::new(),
        }
    }
}

#[tonic::async_trait]
impl TicketAuthz for AuthzService {
    async fn check_access(
        &self,
        request: Request<pb::CheckAccessRequest>,
    ) -> Result<Response<pb::CheckAccessResponse>, Status> {
        let call = self.calls.start(Rpc::CheckAccess, request.metadata());
        let span = call.span().clone();
        let m = request.into_inner();
        let result = self
            .app
            .check(&call, CheckRequest::from(&m), check_options(&m))
            .instrument(span)
            .await
            .map(|d| decision_to_pb(d.value, d.revision))
            .map_err(app_status);
        let answer = match &result {
            Ok(r) if r.allowed => Answer::Allowed,
            _ => Answer::Denied,
        };
        finish(call, &result, answer);
        result.map(Response::new)
    }

    async fn check_access_batch(
        &self,
        request: Request<pb::CheckAccessBatchRequest>,
    ) -> Result<Response<pb::CheckAccessBatchResponse>, Status> {
        let call = self.calls.start(Rpc::CheckAccessBatch, request.metadata());
        let span = call.span().clone();
        let m = request.into_inner();
        let result = self
            .app
            .check_batch(&call, &m.checks, m.min_revision)
            .instrument(span)
            .await
            .map(|batch| pb::CheckAccessBatchResponse {
                results: batch
                    .value
                    .into_iter()
                    .map(|d| decision_to_pb(d, batch.revision))
                    .collect(),
                revision: batch.revision,
            })
            .map_err(app_status);
        finish(call, &result, Answer::Ok);
        result.map(Response::new)
    }

    async fn list_visible_tickets(
        &self,
        request: Request<pb::ListVisibleTicketsRequest>,
    ) -> Result<Response<pb::ListVisibleTicketsResponse>, Status> {
        let call = self
            .calls
            .start(Rpc::ListVisibleTickets, request.metadata());
        let span = call.span().clone();
        let m = request.into_inner();
        let result = match TicketFilter::try_from(&m) {
            Err(e) => Err(e),
            Ok(filter) => {
                let page = PageArgs {
                    size: m.page_size,
                    token: &m.page_token,
                };
                self.app
                    .list_tickets(&call, &m.user_id, &filter, page, m.min_revision)
                    .instrument(span)
                    .await
            }
        }
        .map(|page| pb::ListVisibleTicketsResponse {
            ticket_ids: page.value.ids,
            next_page_token: page.value.next_page_token.unwrap_or_default(),
            revision: page.revision,
        })
        .map_err(app_status);
        finish(call, &result, Answer::Ok);
        result.map(Response::new)
    }

    async fn list_ticket_viewers(
        &self,
        request: Request<pb::ListTicketViewersRequest>,
    ) -> Result<Response<pb::ListTicketViewersResponse>, Status> {
        let call = self.calls.start(Rpc::ListTicketViewers, request.metadata());
        let span = call.span().clone();
        let m = request.into_inner();
        let page = PageArgs {
            size: m.page_size,
            token: &m.page_token,
        };
        let result = self
            .app
            .list_viewers(&call, &m.ticket_id, page, m.min_revision)
            .instrument(span)
            .await
            .map(|page| pb::ListTicketViewersResponse {
                user_ids: page.value.ids,
                next_page_token: page.value.next_page_token.unwrap_or_default(),
                revision: page.revision,
            })
            .map_err(app_status);
        finish(call, &result, Answer::Ok);
        result.map(Response::new)
    }

    async fn get_visibility_filter(
        &self,
        request: Request<pb::GetVisibilityFilterRequest>,
    ) -> Result<Response<pb::GetVisibilityFilterResponse>, Status> {
        let call = self
            .calls
            .start(Rpc::GetVisibilityFilter, request.metadata());
        let span = call.span().clone();
        let m = request.into_inner();
        let result = self
            .app
            .visibility_filter(&call, &m.user_id, m.min_revision)
            .instrument(span)
            .await
            .map(|filter| pb::GetVisibilityFilterResponse {
                filter: Some(filter_to_pb(filter.value)),
                revision: filter.revision,
            })
            .map_err(app_status);
        finish(call, &result, Answer::Ok);
        result.map(Response::new)
    }

    async fn list_visible_resources(
        &self,
        request: Request<pb::ListVisibleResourcesRequest>,
    ) -> Result<Response<pb::ListVisibleResourcesResponse>, Status> {
        let call = self
            .calls
            .start(Rpc::ListVisibleResources, request.metadata());
        let span = call.span().clone();
        let m = request.into_inner();
        let result = match resource_kind(m.kind) {
            Err(e) => Err(e),
            Ok(kind) => {
                let page = PageArgs {
                    size: m.page_size,
                    token: &m.page_token,
                };
                self.app
                    .list_resources(&call, &m.user_id, kind, page, m.min_revision)
                    .instrument(span)
                    .await
            }
        }
        .map(|page| pb::ListVisibleResourcesResponse {
            resource_ids: page.value.ids,
            next_page_token: page.value.next_page_token.unwrap_or_default(),
            revision: page.revision,
        })
        .map_err(app_status);
        finish(call, &result, Answer::Ok);
        result.map(Response::new)
    }
}
