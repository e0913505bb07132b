//! The Envoy / Istio external authorisation edge (http-api.md §3):
//! `envoy.service.auth.v3.Authorization/Check` turns one proxied HTTP
//! request into one access question, asked of `app::Authz`.
//!
//! * `subject.rs`: the user, from a header or a `jwt_authn` claim.
//! * `template.rs`: path templates and their matching.
//! * `question.rs`: a route's action and ids, resolved against a path.
//! * `extensions.rs`: a route's question from `context_extensions`.
//! * `routes.rs`: the `--ext-authz-routes` YAML table.
//! * `response.rs`: the answers Envoy acts on.
//! * `service.rs`: the RPC itself.

mod extensions;
mod question;
mod response;
mod routes;
mod service;
mod subject;
mod template;

use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::AuthorizationServer;

pub use question::{IdValue, MEMBERS, Mapping, MappingError, Question};
pub use response::{REASON_HEADER, REVISION_HEADER};
pub use routes::{RouteError, RouteTable};
pub use service::{ExtAuthz, MIN_REVISION_HEADER, OPERATION};
pub use subject::{JWT_AUTHN, SubjectSource};
pub use template::{Template, TemplateError};

/// The RPC's HTTP/2 path.
pub const PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

/// What to answer for a request no route maps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Unmatched {
    /// `PERMISSION_DENIED`, 403, reason `NO_ROUTE`.
    #[default]
    Deny,
    /// Let it through (reason header `NO_ROUTE`), for a table that covers
    /// only the routes that need a check.
    Allow,
}

/// How requests are turned into questions.
#[derive(Debug, Clone, Default)]
pub struct ExtAuthzConfig {
    pub subject: SubjectSource,
    /// Used for routes whose `context_extensions` carry no action.
    pub routes: Option<Arc<RouteTable>>,
    pub unmatched: Unmatched,
}

/// The service as a tonic route of the main port.
pub fn server(
    app: crate::app::Authz,
    config: ExtAuthzConfig,
    max_message_bytes: usize,
) -> AuthorizationServer<ExtAuthz> {
    AuthorizationServer::new(ExtAuthz::new(app, config))
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes)
}
