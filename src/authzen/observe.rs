//! How AuthZEN calls are named: the five endpoints, each with its path,
//! its bounded `rpc` label and one set of metric handles, and how an
//! answer or refusal ends a [`Call`].

use http::HeaderMap;

use super::error::AuthzenError;
use crate::app::{Answer, Call, CallMetrics, Operation, Outcome, StatusCode};

/// The `rpc.service` of every endpoint's span.
const SERVICE: &str = "authzen";

/// The endpoints that decide (the configuration document is not a call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Evaluation,
    Evaluations,
    SearchResource,
    SearchSubject,
    SearchAction,
}

impl Endpoint {
    pub const ALL: [Endpoint; 5] = [
        Endpoint::Evaluation,
        Endpoint::Evaluations,
        Endpoint::SearchResource,
        Endpoint::SearchSubject,
        Endpoint::SearchAction,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Evaluation => "/access/v1/evaluation",
            Endpoint::Evaluations => "/access/v1/evaluations",
            Endpoint::SearchResource => "/access/v1/search/resource",
            Endpoint::SearchSubject => "/access/v1/search/subject",
            Endpoint::SearchAction => "/access/v1/search/action",
        }
    }

    /// The `rpc` metric label, the decision log's `rpc` and `rpc.method`.
    pub fn method(self) -> &'static str {
        match self {
            Endpoint::Evaluation => "authzen.evaluation",
            Endpoint::Evaluations => "authzen.evaluations",
            Endpoint::SearchResource => "authzen.search_resource",
            Endpoint::SearchSubject => "authzen.search_subject",
            Endpoint::SearchAction => "authzen.search_action",
        }
    }

    /// `METHOD route`, as the HTTP span conventions name server spans.
    fn span_name(self) -> &'static str {
        match self {
            Endpoint::Evaluation => "POST /access/v1/evaluation",
            Endpoint::Evaluations => "POST /access/v1/evaluations",
            Endpoint::SearchResource => "POST /access/v1/search/resource",
            Endpoint::SearchSubject => "POST /access/v1/search/subject",
            Endpoint::SearchAction => "POST /access/v1/search/action",
        }
    }

    pub fn of_path(path: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.path() == path)
    }

    fn operation(self) -> Operation {
        Operation {
            system: "http",
            service: SERVICE,
            method: self.method(),
            span_name: self.span_name(),
        }
    }
}

/// Each endpoint's metric handles (made at first use, then kept).
#[derive(Debug)]
pub struct Calls([CallMetrics; 5]);

impl Calls {
    pub fn new() -> Self {
        let failures = [
            "invalid_argument",
            "unavailable",
            "unimplemented",
            "internal",
        ];
        Self(Endpoint::ALL.map(|e| CallMetrics::new(e.operation(), &failures)))
    }

    /// Opens a call of `endpoint` under the caller's trace context.
    pub fn start(&self, endpoint: Endpoint, headers: &HeaderMap) -> Call<'_> {
        // `Endpoint::ALL` lists the variants in declaration order.
        Call::start(&self.0[endpoint as usize], headers)
    }
}

impl Default for Calls {
    fn default() -> Self {
        Self::new()
    }
}

/// Closes a call with its answer or refusal and the HTTP status sent.
pub fn finish(call: Call<'_>, result: Result<Answer, &AuthzenError>) {
    match result {
        Ok(answer) => call.finish(Outcome::Answered(answer), StatusCode::Http(200)),
        Err(e) => call.finish(
            Outcome::Failed {
                label: e.label(),
                server_fault: e.server_fault(),
                description: &e.to_string(),
            },
            StatusCode::Http(e.status().as_u16()),
        ),
    }
}

/// Every endpoint's path and `rpc` label, for the shedding layer.
pub fn paths() -> Vec<(&'static str, &'static str)> {
    Endpoint::ALL
        .iter()
        .map(|e| (e.path(), e.method()))
        .collect()
}
