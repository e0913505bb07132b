//! The AuthZEN 1.0 edge: evaluation, evaluations, the three searches and
//! the configuration document, in JSON, over the application service.
//! Each endpoint reads its body (bounded), converts it member by member
//! (`request`), asks `Authz` once and writes the answer (`wire`).

mod error;
mod json;
mod observe;
mod request;
mod wire;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, header};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use serde::Serialize;
use serde_json::Value;
use tonic::body::Body;
use tracing::Instrument as _;

pub use error::AuthzenError;
pub use observe::{Endpoint, paths};

use crate::app::{Answer, Authz, BatchCheck as _, Call};
use observe::{Calls, finish};
use wire::{
    ActionName, ActionSearchResponse, Configuration, Entity, ErrorBody, EvaluationResponse,
    EvaluationsResponse, PageOut, RevisionContext, SearchResponse,
};

/// The configuration document's path.
pub const CONFIGURATION_PATH: &str = "/.well-known/authzen-configuration";

/// Whether `path` belongs to this edge.
pub fn serves(path: &str) -> bool {
    path == CONFIGURATION_PATH || path.starts_with("/access/v1/")
}

/// What the edge needs from the service's configuration.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The base URL the configuration document advertises (no trailing
    /// slash); without it, the request's scheme and host.
    pub public_url: Option<String>,
    /// The port speaks TLS only, so the request's scheme is `https`.
    pub tls: bool,
    /// The largest request body read.
    pub max_body_bytes: usize,
}

/// The AuthZEN endpoints.
#[derive(Debug)]
pub struct Endpoints {
    app: Authz,
    calls: Calls,
    settings: Settings,
}

impl Endpoints {
    pub fn new(app: Authz, settings: Settings) -> Self {
        Self {
            app,
            calls: Calls::new(),
            settings,
        }
    }

    /// Answers one AuthZEN request.
    pub async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let path = request.uri().path();
        if path == CONFIGURATION_PATH {
            if request.method() != Method::GET {
                return refusal(&AuthzenError::Method(CONFIGURATION_PATH, "GET"));
            }
            return match self.configuration(&request) {
                Ok(body) => json_response(http::StatusCode::OK, body),
                Err(e) => refusal(&e),
            };
        }
        let Some(endpoint) = Endpoint::of_path(path) else {
            return refusal(&AuthzenError::NotFound);
        };
        if request.method() != Method::POST {
            return refusal(&AuthzenError::Method(endpoint.path(), "POST"));
        }
        let call = self.calls.start(endpoint, request.headers());
        let span = call.span().clone();
        let answered = self
            .answer(endpoint, &call, request.into_body())
            .instrument(span)
            .await;
        match answered {
            Ok((answer, body)) => {
                finish(call, Ok(answer));
                json_response(http::StatusCode::OK, body)
            }
            Err(e) => {
                finish(call, Err(&e));
                refusal(&e)
            }
        }
    }

    async fn answer(
        &self,
        endpoint: Endpoint,
        call: &Call<'_>,
        body: Body,
    ) -> Result<(Answer, Bytes), AuthzenError> {
        let bytes = read_body(body, self.settings.max_body_bytes).await?;
        let value = json::parse(&bytes)?;
        match endpoint {
            Endpoint::Evaluation => self.evaluation(call, &value).await,
            Endpoint::Evaluations => self.evaluations(call, &value).await,
            Endpoint::SearchResource => self.search_resource(call, &value).await,
            Endpoint::SearchSubject => self.search_subject(call, &value).await,
            Endpoint::SearchAction => self.search_action(call, &value).await,
        }
    }

    async fn evaluation(
        &self,
        call: &Call<'_>,
        body: &Value,
    ) -> Result<(Answer, Bytes), AuthzenError> {
        let e = request::evaluation(body)?;
        let d = self
            .app
            .check(call, e.request(), e.options)
            .await
            .map_err(app_error)?;
        let answer = if d.value.allowed {
            Answer::Allowed
        } else {
            Answer::Denied
        };
        let out = EvaluationResponse::new(d.value, d.revision, e.options.explain);
        Ok((answer, to_json(&out)?))
    }

    async fn evaluations(
        &self,
        call: &Call<'_>,
        body: &Value,
    ) -> Result<(Answer, Bytes), AuthzenError> {
        let batch = request::evaluations(body)?;
        let decided = self
            .app
            .check_batch_until(call, &batch.evaluations, 0, batch.until)
            .await
            .map_err(app_error)?;
        let out = EvaluationsResponse {
            evaluations: decided
                .value
                .into_iter()
                .zip(&batch.evaluations)
                .map(|(d, e)| EvaluationResponse::new(d, decided.revision, e.options.explain))
                .collect(),
        };
        Ok((Answer::Ok, to_json(&out)?))
    }

    async fn search_resource(
        &self,
        call: &Call<'_>,
        body: &Value,
    ) -> Result<(Answer, Bytes), AuthzenError> {
        let s = request::search_resource(body)?;
        let (kind, page) = match &s.searched {
            request::Searched::Tickets(filter) => (
                "ticket",
                self.app
                    .list_tickets(call, s.user, filter, s.page, s.min_revision)
                    .await,
            ),
            request::Searched::Sections(kind) => (
                kind.name(),
                self.app
                    .list_resources(call, s.user, *kind, s.page, s.min_revision)
                    .await,
            ),
        };
        let page = page.map_err(|e| AuthzenError::from_app(e, request::list_member))?;
        Ok((Answer::Ok, to_json(&search_page(kind, page))?))
    }

    async fn search_subject(
        &self,
        call: &Call<'_>,
        body: &Value,
    ) -> Result<(Answer, Bytes), AuthzenError> {
        let s = request::search_subject(body)?;
        let page = self
            .app
            .list_viewers(call, s.ticket, s.page, s.min_revision)
            .await
            .map_err(|e| AuthzenError::from_app(e, request::list_member))?;
        Ok((Answer::Ok, to_json(&search_page("user", page))?))
    }

    async fn search_action(
        &self,
        call: &Call<'_>,
        body: &Value,
    ) -> Result<(Answer, Bytes), AuthzenError> {
        let search = request::search_action(body)?;
        let decided = self
            .app
            .check_batch(call, &search.evaluations, 0)
            .await
            .map_err(app_error)?;
        let out = ActionSearchResponse {
            results: search
                .names
                .iter()
                .zip(&decided.value)
                .filter(|(_, d)| d.allowed)
                .map(|(&name, _)| ActionName { name })
                .collect(),
            context: RevisionContext {
                revision: decided.revision,
            },
        };
        Ok((Answer::Ok, to_json(&out)?))
    }

    /// The document, with absolute URLs.
    fn configuration<B>(&self, request: &Request<B>) -> Result<Bytes, AuthzenError> {
        let base = match &self.settings.public_url {
            Some(url) => url.clone(),
            None => {
                let scheme = if self.settings.tls { "https" } else { "http" };
                format!("{scheme}://{}", host(request)?)
            }
        };
        let url = |e: Endpoint| format!("{base}{}", e.path());
        to_json(&Configuration {
            access_evaluation_endpoint: url(Endpoint::Evaluation),
            access_evaluations_endpoint: url(Endpoint::Evaluations),
            search_subject_endpoint: url(Endpoint::SearchSubject),
            search_resource_endpoint: url(Endpoint::SearchResource),
            search_action_endpoint: url(Endpoint::SearchAction),
            policy_decision_point: base,
        })
    }
}

/// The request's host and port: the HTTP/2 authority, else `Host`, either
/// checked as an authority (so that nothing else reaches the URLs).
fn host<B>(request: &Request<B>) -> Result<http::uri::Authority, AuthzenError> {
    if let Some(authority) = request.uri().authority() {
        return Ok(authority.clone());
    }
    request
        .headers()
        .get(header::HOST)
        .and_then(|v| http::uri::Authority::try_from(v.as_bytes()).ok())
        .filter(|a| !a.host().is_empty())
        .ok_or(AuthzenError::NoHost)
}

/// The body, up to `max` bytes.
async fn read_body(body: Body, max: usize) -> Result<Bytes, AuthzenError> {
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(AuthzenError::TooLarge(max))
        }
        Err(e) => Err(AuthzenError::Body(format!("could not be read: {e}"))),
    }
}

/// A refusal from the application after the edge's own validation: only
/// data not being there is expected here.
fn app_error(e: crate::app::AppError) -> AuthzenError {
    AuthzenError::from_app(e, str::to_owned)
}

fn search_page(
    kind: &'static str,
    page: crate::app::AtRevision<crate::core::Page>,
) -> SearchResponse {
    SearchResponse {
        results: page
            .value
            .ids
            .into_iter()
            .map(|id| Entity { kind, id })
            .collect(),
        page: PageOut {
            next_token: page.value.next_page_token.unwrap_or_default(),
        },
        context: RevisionContext {
            revision: page.revision,
        },
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Bytes, AuthzenError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| AuthzenError::Internal(e.to_string()))
}

fn json_response(status: http::StatusCode, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Body::new(Full::new(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `{"error": ...}` with the refusal's status (and `Allow` for a 405).
fn refusal(e: &AuthzenError) -> Response<Body> {
    let message = e.to_string();
    let body = serde_json::to_vec(&ErrorBody { error: &message })
        .map(Bytes::from)
        .unwrap_or_else(|_| Bytes::from_static(br#"{"error":"internal error"}"#));
    let mut response = json_response(e.status(), body);
    if let AuthzenError::Method(_, allowed) = e {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allowed));
    }
    response
}
