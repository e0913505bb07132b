//! The AuthZEN response bodies, as serde shapes: decisions with their
//! context, search results with their page, the configuration document.
//! These are AuthZEN's JSON, not proto messages.

use serde::Serialize;

use crate::core::Decision;

/// A decision's `context`: reason and warning by their api.md names without
/// `REASON_`, the revision, and the explanation when it was asked for.
#[derive(Debug, Serialize)]
pub struct DecisionContext {
    pub reason: &'static str,
    pub warning: Option<&'static str>,
    pub revision: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Vec<String>>,
}

/// One evaluation's answer.
#[derive(Debug, Serialize)]
pub struct EvaluationResponse {
    pub decision: bool,
    pub context: DecisionContext,
}

impl EvaluationResponse {
    pub fn new(d: Decision, revision: u64, explain: bool) -> Self {
        Self {
            decision: d.allowed,
            context: DecisionContext {
                reason: d.reason.name(),
                warning: d.warning.map(|w| w.name()),
                revision,
                explanation: explain.then_some(d.explanation),
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub struct EvaluationsResponse {
    pub evaluations: Vec<EvaluationResponse>,
}

/// A subject or resource found by a search.
#[derive(Debug, Serialize)]
pub struct Entity {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
}

#[derive(Debug, Serialize)]
pub struct PageOut {
    /// `""` at the end.
    pub next_token: String,
}

#[derive(Debug, Serialize)]
pub struct RevisionContext {
    pub revision: u64,
}

/// A resource or subject search's page.
#[derive(Debug, Serialize)]
pub struct SearchResponse {
    pub results: Vec<Entity>,
    pub page: PageOut,
    pub context: RevisionContext,
}

#[derive(Debug, Serialize)]
pub struct ActionName {
    pub name: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ActionSearchResponse {
    pub results: Vec<ActionName>,
    pub context: RevisionContext,
}

/// `GET /.well-known/authzen-configuration`.
#[derive(Debug, Serialize)]
pub struct Configuration {
    pub policy_decision_point: String,
    pub access_evaluation_endpoint: String,
    pub access_evaluations_endpoint: String,
    pub search_subject_endpoint: String,
    pub search_resource_endpoint: String,
    pub search_action_endpoint: String,
}

#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub error: &'a str,
}
