//! The bare RPC path: a tonic service with the same methods and message
//! types as ours that answers without deciding anything, so a load run can
//! report the service's throughput and latency against it.

use tonic::{Request, Response, Status};

use crate::grpc::pb;
use crate::grpc::pb::ticket_authz_server::TicketAuthz;

/// Answers every call at once: a check is allowed, a batch gets one answer
/// per question (so its response is as large as the real one), a list is
/// an empty last page.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopService;

fn allowed() -> pb::CheckAccessResponse {
    pb::CheckAccessResponse {
        allowed: true,
        reason: pb::Reason::Requester as i32,
        revision: 1,
        ..Default::default()
    }
}

#[tonic::async_trait]
impl TicketAuthz for NoopService {
    async fn check_access(
        &self,
        _request: Request<pb::CheckAccessRequest>,
    ) -> Result<Response<pb::CheckAccessResponse>, Status> {
        Ok(Response::new(allowed()))
    }

    async fn check_access_batch(
        &self,
        request: Request<pb::CheckAccessBatchRequest>,
    ) -> Result<Response<pb::CheckAccessBatchResponse>, Status> {
        let n = request.get_ref().checks.len();
        Ok(Response::new(pb::CheckAccessBatchResponse {
            results: vec![allowed(); n],
            revision: 1,
        }))
    }

    async fn list_visible_tickets(
        &self,
        _request: Request<pb::ListVisibleTicketsRequest>,
    ) -> Result<Response<pb::ListVisibleTicketsResponse>, Status> {
        Ok(Response::new(pb::ListVisibleTicketsResponse {
            revision: 1,
            ..Default::default()
        }))
    }

    async fn list_ticket_viewers(
        &self,
        _request: Request<pb::ListTicketViewersRequest>,
    ) -> Result<Response<pb::ListTicketViewersResponse>, Status> {
        Ok(Response::new(pb::ListTicketViewersResponse {
            revision: 1,
            ..Default::default()
        }))
    }

    async fn get_visibility_filter(
        &self,
        _request: Request<pb::GetVisibilityFilterRequest>,
    ) -> Result<Response<pb::GetVisibilityFilterResponse>, Status> {
        Ok(Response::new(pb::GetVisibilityFilterResponse {
            revision: 1,
            ..Default::default()
        }))
    }

    async fn list_visible_resources(
        &self,
        _request: Request<pb::ListVisibleResourcesRequest>,
    ) -> Result<Response<pb::ListVisibleResourcesResponse>, Status> {
        Ok(Response::new(pb::ListVisibleResourcesResponse {
            revision: 1,
            ..Default::default()
        }))
    }
}
