//! Why the application service refused or could not answer a request, in
//! domain terms; each transport maps these to its own status.

use crate::core::{ListError, RequestError};
use crate::model::{MAX_ID_BYTES, Status as TicketStatus};
use crate::store::StoreError;

use super::MAX_BATCH;

/// A refused or unanswerable request. Every variant but `Store` is the
/// caller's mistake and names the request field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("checks[{index}].{error}")]
    BatchCheck { index: usize, error: RequestError },
    #[error("checks: a batch holds 1 to {max} checks, not {0}", max = MAX_BATCH)]
    BatchSize(usize),
    #[error("{0}: must not be empty")]
    MissingId(&'static str),
    #[error("{field}: id is {len} bytes long, more than the limit of {max}", max = MAX_ID_BYTES)]
    IdTooLong { field: &'static str, len: usize },
    #[error(
        "statuses: unknown status `{0}`, expected one of {names}",
        names = TicketStatus::NAMES.join(", ")
    )]
    UnknownStatus(String),
    #[error(transparent)]
    List(#[from] ListError),
    /// The resource kind of a list (access model §8).
    #[error("kind: {0}")]
    Kind(String),
    /// The data asked for is not there (not loaded, behind, held back).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ticket store could not be read (`--ticket-cache`).
    #[error("tickets: {0}")]
    Tickets(String),
}

impl AppError {
    /// Whether the request itself is malformed (as opposed to the data
    /// not being available yet).
    pub fn is_invalid(&self) -> bool {
        !matches!(self, AppError::Store(_) | AppError::Tickets(_))
    }
}

/// Checks a required id field.
pub fn required_id(field: &'static str, value: &str) -> Result<(), AppError> {
    if value.is_empty() {
        return Err(AppError::MissingId(field));
    }
    optional_id(field, value)
}

/// Checks an optional id field (empty means absent).
pub fn optional_id(field: &'static str, value: &str) -> Result<(), AppError> {
    if value.len() > MAX_ID_BYTES {
        return Err(AppError::IdTooLong {
            field,
            len: value.len(),
        });
    }
    Ok(())
}
