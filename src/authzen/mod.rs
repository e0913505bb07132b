//! The AuthZEN 1.0 edge: evaluation, evaluations, the three searches and
//! the configuration document, in JSON, over the application service.

use http::{Request, Response};
use tonic::body::Body;

use crate::app::Authz;

/// The configuration document's path.
pub const CONFIGURATION_PATH: &str = "/.well-known/authzen-configuration";

/// Whether `path` belongs to this edge.
pub fn serves(path: &str) -> bool {
    path == CONFIGURATION_PATH || path.starts_with("/access/v1/")
}

/// The AuthZEN endpoints.
#[derive(Debug)]
pub struct Endpoints {
    _app: Authz,
}

impl Endpoints {
    pub fn new(app: Authz) -> Self {
        Self { _app: app }
    }

    /// Answers one AuthZEN request.
    pub async fn handle(&self, _request: Request<Body>) -> Response<Body> {
        let mut response = Response::new(Body::default());
        *response.status_mut() = http::StatusCode::NOT_IMPLEMENTED;
        response
    }
}
