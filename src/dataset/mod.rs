//! Dataset and scenario files (YAML or JSON): parsing, validation with
//! errors that name the file, entity and field, and the assertions.

pub mod raw;
mod validate;

use std::fmt;
use std::path::Path;

use crate::core::{Action, ActionInput, CheckRequest, Reason};
use crate::model::{Dataset, ResourceKind};

pub use raw::RawDataset;
// The shape checks other importers (CSV) hold their input to as well.
pub(crate) use validate::{id_problem, valid_domain, valid_email};

/// One problem found in a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `user `ann``, or `users[3]` where the id itself is at fault.
    pub entity: String,
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: field {}: {}", self.entity, self.field, self.message)
    }
}

/// Why a dataset file was not loaded. Nothing is loaded from a file with
/// any problem.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    /// `line` and `column` (1-based) where the parser stopped, when it knows.
    #[error("{file}: {message}")]
    Syntax {
        file: String,
        message: String,
        line: Option<usize>,
        column: Option<usize>,
    },
    #[error("{}", render_problems(.file, .problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

fn render_problems(file: &str, problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(|p| format!("{file}: {p}")).collect();
    lines.join("\n")
}

/// What an assertion expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Allow,
    Deny,
    /// The request must be rejected as malformed.
    Invalid,
}

impl Expect {
    pub fn name(self) -> &'static str {
        match self {
            Expect::Allow => "allow",
            Expect::Deny => "deny",
            Expect::Invalid => "invalid",
        }
    }
}

/// A check request with owned fields, as a scenario writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnedRequest {
    pub user: String,
    pub action: Option<String>,
    pub ticket: String,
    pub organisation: String,
    pub group: String,
    pub company: String,
    pub flag: String,
    /// `resource_id` (access model §8).
    pub resource: String,
}

impl OwnedRequest {
    pub fn as_request(&self) -> CheckRequest<'_> {
        CheckRequest {
            user: &self.user,
            action: match self.action.as_deref() {
                None | Some("") => ActionInput::Missing,
                Some(name) => {
                    Action::parse(name).map_or(ActionInput::Unknown(name), ActionInput::Known)
                }
            },
            ticket: &self.ticket,
            organisation: &self.organisation,
            group: &self.group,
            company: &self.company,
            flag: &self.flag,
            resource: &self.resource,
            inline: None,
        }
    }
}

impl fmt::Display for OwnedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "user={}", self.user)?;
        if let Some(action) = &self.action {
            write!(f, " action={action}")?;
        }
        for (name, value) in [
            ("ticket", &self.ticket),
            ("organisation", &self.organisation),
            ("group", &self.group),
            ("company", &self.company),
            ("flag", &self.flag),
            ("resource", &self.resource),
        ] {
            if !value.is_empty() {
                write!(f, " {name}={value}")?;
            }
        }
        Ok(())
    }
}

/// One assertion of a scenario file; `index` is its position in `assertions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assertion {
    Check {
        index: usize,
        request: OwnedRequest,
        expect: Expect,
        reason: Option<Reason>,
        warning: Option<Reason>,
    },
    VisibleTickets {
        index: usize,
        user: String,
        tickets: Vec<String>,
    },
    Viewers {
        index: usize,
        ticket: String,
        users: Vec<String>,
    },
    /// The visible resources of one kind (access model §8).
    VisibleResources {
        index: usize,
        user: String,
        kind: ResourceKind,
        ids: Vec<String>,
    },
}

/// A validated file: the data and its assertions.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub dataset: Dataset,
    pub assertions: Vec<Assertion>,
}

/// Parses and validates dataset text; `file` names it in errors.
pub fn load_str(file: &str, text: &str) -> Result<Loaded, DatasetError> {
    let raw: RawDataset = serde_yaml_ng::from_str(text).map_err(|e| {
        let at = e.location();
        DatasetError::Syntax {
            file: file.to_owned(),
            message: e.to_string(),
            line: at.as_ref().map(|l| l.line()),
            column: at.as_ref().map(|l| l.column()),
        }
    })?;
    from_raw(file, &raw)
}

/// Validates an already parsed dataset.
pub fn from_raw(file: &str, raw: &RawDataset) -> Result<Loaded, DatasetError> {
    validate::validate(raw)
        .map(|(dataset, assertions)| Loaded {
            dataset,
            assertions,
        })
        .map_err(|problems| DatasetError::Invalid {
            file: file.to_owned(),
            problems,
        })
}

/// Reads, parses and validates a dataset file.
pub fn load_file(path: &Path) -> Result<Loaded, DatasetError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Read {
        file: file.clone(),
        source,
    })?;
    load_str(&file, &text)
}
