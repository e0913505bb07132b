//! The Connect protocol's unary calls of the five RPCs, JSON or binary:
//! the same service as gRPC, in another encoding.

use http::{Request, Response};
use tonic::body::Body;

use crate::app::Authz;

/// Whether `path` is one of the service's RPC paths.
pub fn serves(path: &str) -> bool {
    path.starts_with("/ticketauthz.v1.TicketAuthz/")
}

/// The Connect edge.
#[derive(Debug)]
pub struct Connect {
    _app: Authz,
}

impl Connect {
    pub fn new(app: Authz, _max_message_bytes: usize) -> Self {
        Self { _app: app }
    }

    /// Answers one Connect call.
    pub async fn handle(&self, _request: Request<Body>) -> Response<Body> {
        let mut response = Response::new(Body::default());
        *response.status_mut() = http::StatusCode::NOT_IMPLEMENTED;
        response
    }
}
