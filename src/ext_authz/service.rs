//! The `Authorization/Check` RPC: one proxied request becomes a subject and
//! a question for `app::Authz::check`, and the decision the answer Envoy
//! acts on. Anything but an allowing decision (or an unmatched request
//! under `--ext-authz-unmatched allow`) refuses the request: it fails
//! closed.

use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::{Authorization, CheckRequest, CheckResponse};
use tonic::{Code, Request, Response, Status};
use tracing::Instrument as _;

use super::question::{MappingError, Question};
use super::subject::{header, subject};
use super::{ExtAuthzConfig, Unmatched, extensions, response};
use crate::app::{
    Answer, AppError, Authz, Call, CallMetrics, CheckOptions, Operation, Outcome, StatusCode,
};

/// The request header holding the question's `min_revision`.
pub const MIN_REVISION_HEADER: &str = "x-ticket-authz-min-revision";

/// The RPC's names: the `rpc` label is `ext_authz.Check`.
pub const OPERATION: Operation = Operation {
    system: "grpc",
    service: "envoy.service.auth.v3.Authorization",
    method: "ext_authz.Check",
    span_name: "envoy.service.auth.v3.Authorization/Check",
};

/// The labels of the answers that refuse with an error.
const FAILURES: [&str; 3] = ["unauthenticated", "invalid_argument", "unavailable"];

fn label(code: Code) -> &'static str {
    match code {
        Code::Unauthenticated => "unauthenticated",
        Code::InvalidArgument => "invalid_argument",
        _ => "unavailable",
    }
}

/// How one answer ends its call.
enum Ending {
    Decided(Answer),
    Failed(Code, String),
}

/// The ext_authz service over the application service.
#[derive(Debug)]
pub struct ExtAuthz {
    app: Authz,
    config: Arc<ExtAuthzConfig>,
    calls: CallMetrics,
}

impl ExtAuthz {
    pub fn new(app: Authz, config: ExtAuthzConfig) -> Self {
        Self {
            app,
            config: Arc::new(config),
            calls: CallMetrics::new(OPERATION, &FAILURES),
        }
    }

    async fn answer(&self, call: &Call<'_>, m: &CheckRequest) -> (CheckResponse, Ending) {
        let attributes = m.attributes.as_ref();
        let http = attributes
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref());
        let metadata = attributes.and_then(|a| a.metadata_context.as_ref());
        let Some(user) = subject(&self.config.subject, http, metadata) else {
            let body = serde_json::json!({ "reason": "NO_SUBJECT" });
            return (
                response::refused(Code::Unauthenticated, 401, &body),
                Ending::Failed(Code::Unauthenticated, "NO_SUBJECT".to_owned()),
            );
        };
        let method = http.map_or("", |h| h.method.as_str());
        let path = http.map_or("", |h| h.path.as_str());
        let from_route = attributes.and_then(|a| extensions::mapping(&a.context_extensions));
        let named = from_route.is_some();
        let question: Question = match from_route.map(|m| m.and_then(|m| m.resolve(path))) {
            Some(Ok(question)) => question,
            Some(Err(e)) => return invalid(&format!("{}{e}", extensions::PREFIX)),
            None => match self
                .config
                .routes
                .as_ref()
                .and_then(|t| t.find(method, path))
            {
                Some(question) => question,
                None => {
                    // A respelling of a mapped route is never waved
                    // through as "no route": fail closed. Only an allowed
                    // unmatched request needs the (allocating) comparison.
                    let respelt = || {
                        self.config
                            .routes
                            .as_ref()
                            .is_some_and(|t| t.resembles(method, path))
                    };
                    return match self.config.unmatched {
                        Unmatched::Allow if !respelt() => (
                            response::allowed("NO_ROUTE", None),
                            Ending::Decided(Answer::Allowed),
                        ),
                        Unmatched::Allow | Unmatched::Deny => (
                            response::denied("NO_ROUTE"),
                            Ending::Decided(Answer::Denied),
                        ),
                    };
                }
            },
        };
        let min_revision = match http.and_then(|h| header(h, MIN_REVISION_HEADER)) {
            None => 0,
            Some(text) => match text.trim().parse::<u64>() {
                Ok(revision) => revision,
                Err(_) => {
                    return invalid(&format!(
                        "{MIN_REVISION_HEADER}: `{text}` is not a revision number"
                    ));
                }
            },
        };
        let options = CheckOptions {
            min_revision,
            explain: false,
        };
        match self.app.check(call, question.request(&user), options).await {
            Ok(d) if d.value.allowed => (
                response::allowed(d.value.reason.name(), Some(d.revision)),
                Ending::Decided(Answer::Allowed),
            ),
            Ok(d) => (
                response::denied(d.value.reason.name()),
                Ending::Decided(Answer::Denied),
            ),
            // Named as the route gave it: a context extension, or the id.
            Err(AppError::Request(e)) if named && e.field() != "user_id" => invalid(&format!(
                "{}{}",
                extensions::PREFIX,
                MappingError::from_request(&e)
            )),
            Err(e) if e.is_invalid() => invalid(&e.to_string()),
            Err(e) => {
                let message = e.to_string();
                (
                    response::error(Code::Unavailable, 503, &message),
                    Ending::Failed(Code::Unavailable, message),
                )
            }
        }
    }
}

fn invalid(message: &str) -> (CheckResponse, Ending) {
    (
        response::error(Code::InvalidArgument, 400, message),
        Ending::Failed(Code::InvalidArgument, message.to_owned()),
    )
}

#[tonic::async_trait]
impl Authorization for ExtAuthz {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let call = Call::start(&self.calls, request.metadata().as_ref());
        let span = call.span().clone();
        let (answer, ending) = self.answer(&call, request.get_ref()).instrument(span).await;
        // The RPC itself succeeds; the status inside the answer is Envoy's.
        match ending {
            Ending::Decided(answer) => {
                call.finish(Outcome::Answered(answer), StatusCode::Grpc(Code::Ok as i32));
            }
            Ending::Failed(code, description) => call.finish(
                Outcome::Failed {
                    label: label(code),
                    server_fault: code == Code::Unavailable,
                    description: &description,
                },
                StatusCode::Grpc(code as i32),
            ),
        }
        Ok(Response::new(answer))
    }
}
