//! Why an AuthZEN request got no answer, with the HTTP status, the bounded
//! metric label and the `{"error": ...}` message of each case.

use crate::app::AppError;

/// A refused or unanswerable AuthZEN request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthzenError {
    /// A malformed member: `member` is its path from the body's root.
    #[error("{member}: {problem}")]
    Invalid { member: String, problem: String },
    #[error("body: more than the limit of {0} bytes")]
    TooLarge(usize),
    #[error("body: {0}")]
    Body(String),
    #[error("{0}: method not allowed, use {1}")]
    Method(&'static str, &'static str),
    #[error("no such endpoint")]
    NotFound,
    #[error("host: the request names no host (no Host header or authority); set --public-url")]
    NoHost,
    /// The data asked for is not there (not loaded, behind, held back).
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AuthzenError {
    pub fn invalid(member: impl Into<String>, problem: impl Into<String>) -> Self {
        AuthzenError::Invalid {
            member: member.into(),
            problem: problem.into(),
        }
    }

    pub fn status(&self) -> http::StatusCode {
        match self {
            AuthzenError::Invalid { .. } | AuthzenError::Body(_) | AuthzenError::NoHost => {
                http::StatusCode::BAD_REQUEST
            }
            // The caller's fault, and not one that a retry mends: 400, as the
            // common rules ask (429 is for load).
            AuthzenError::TooLarge(_) => http::StatusCode::BAD_REQUEST,
            AuthzenError::Method(..) => http::StatusCode::METHOD_NOT_ALLOWED,
            AuthzenError::NotFound => http::StatusCode::NOT_FOUND,
            AuthzenError::Unavailable(_) => http::StatusCode::SERVICE_UNAVAILABLE,
            AuthzenError::Internal(_) => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The latency histogram's `outcome`: the gRPC code names the other
    /// forms use, so that one alert reads every form.
    pub fn label(&self) -> &'static str {
        match self {
            AuthzenError::Unavailable(_) => "unavailable",
            AuthzenError::Internal(_) => "internal",
            AuthzenError::Method(..) | AuthzenError::NotFound => "unimplemented",
            _ => "invalid_argument",
        }
    }

    /// Only data that is not there, or a failure of ours, is the server's
    /// fault.
    pub fn server_fault(&self) -> bool {
        matches!(
            self,
            AuthzenError::Unavailable(_) | AuthzenError::Internal(_)
        )
    }

    /// An application refusal with its request field renamed to the
    /// member that carried it (`member` maps the domain's field names).
    pub fn from_app(error: AppError, member: impl Fn(&str) -> String) -> Self {
        match error {
            AppError::Store(e) => AuthzenError::Unavailable(e.to_string()),
            AppError::Tickets(e) => AuthzenError::Unavailable(format!("tickets: {e}")),
            AppError::Request(e) => rename(&e.to_string(), e.field(), "", &member),
            AppError::BatchCheck { index, error } => rename(
                &error.to_string(),
                error.field(),
                &format!("evaluations[{index}]."),
                &member,
            ),
            other => {
                let text = other.to_string();
                let field = text.split_once(": ").map_or("", |(f, _)| f).to_owned();
                rename(&text, &field, "", &member)
            }
        }
    }
}

/// `field: problem` as `prefix` + `member(field)`: `problem`.
fn rename(text: &str, field: &str, prefix: &str, member: &impl Fn(&str) -> String) -> AuthzenError {
    let problem = text
        .strip_prefix(field)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(text);
    AuthzenError::invalid(format!("{prefix}{}", member(field)), problem)
}
