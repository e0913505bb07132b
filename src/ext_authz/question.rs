//! What a route asks, before a request arrives: the action and each id,
//! literal or a `{name}` of the path template; and its resolution against
//! one request path into the question put to the application service.

use crate::core::{Action, ActionInput, CheckRequest, RequestError};

use super::template::{Template, TemplateError, placeholder};

/// The ids a route may give, in the order [`Mapping::ids`] holds them;
/// `resource` is the `resource_id` of a section action (access model §8).
pub const MEMBERS: [&str; 6] = [
    "ticket",
    "group",
    "organisation",
    "company",
    "flag",
    "resource",
];

/// The route member that gives a request field (`ticket_id` → `ticket`).
pub fn member_of(field: &str) -> &'static str {
    match field {
        "ticket_id" => "ticket",
        "group_id" => "group",
        "organisation_id" => "organisation",
        "company_id" => "company",
        "flag" => "flag",
        "resource_id" => "resource",
        "action" => "action",
        _ => "user",
    }
}

/// A route that cannot ask its question, naming the member at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("{member}: `{value}` is neither an id nor one whole `{{name}}`")]
    BadValue { member: &'static str, value: String },
    #[error("{member}: `{{{name}}}` is not a placeholder of the path template")]
    Unbound { member: &'static str, name: String },
    #[error("path: {0}")]
    Template(#[from] TemplateError),
    #[error("path: the request path `{path}` does not match the template `{template}`")]
    NoMatch { path: String, template: String },
    #[error("{0}: unknown member (expected path, action or one of the ids)")]
    Unknown(String),
    #[error("{member}: {message}")]
    Question {
        member: &'static str,
        message: String,
    },
}

impl MappingError {
    /// The route member at fault.
    pub fn member(&self) -> &'static str {
        match self {
            MappingError::BadValue { member, .. }
            | MappingError::Unbound { member, .. }
            | MappingError::Question { member, .. } => member,
            MappingError::Template(_) | MappingError::NoMatch { .. } => "path",
            MappingError::Unknown(_) => "",
        }
    }

    /// The request refused by the core's validation, named by route member.
    pub fn from_request(error: &RequestError) -> Self {
        let member = member_of(error.field());
        let message = error.to_string();
        // The core's message opens with the wire field; the member replaces it.
        let message = message
            .split_once(": ")
            .map_or(message.as_str(), |(_, rest)| rest)
            .to_owned();
        MappingError::Question { member, message }
    }
}

/// One id of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdValue {
    Literal(String),
    /// The value of `{name}` in the request path.
    Path(String),
}

impl IdValue {
    pub fn parse(member: &'static str, text: &str) -> Result<IdValue, MappingError> {
        match placeholder(text) {
            Some(name)
                if !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                Ok(IdValue::Path(name.to_owned()))
            }
            _ if text.contains(['{', '}']) => Err(MappingError::BadValue {
                member,
                value: text.to_owned(),
            }),
            _ => Ok(IdValue::Literal(text.to_owned())),
        }
    }
}

/// A route's question with its ids still unresolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub action: String,
    pub template: Option<Template>,
    /// By [`MEMBERS`] position; `None` is not given.
    pub ids: [Option<IdValue>; 6],
}

/// The question one request asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub action: String,
    /// By [`MEMBERS`] position; empty is not given.
    pub ids: [String; 6],
}

impl Question {
    pub fn request<'a>(&'a self, user: &'a str) -> CheckRequest<'a> {
        let [ticket, group, organisation, company, flag, resource] = &self.ids;
        CheckRequest {
            user,
            action: match self.action.as_str() {
                "" => ActionInput::Missing,
                name => Action::parse(name).map_or(ActionInput::Unknown(name), ActionInput::Known),
            },
            ticket,
            organisation,
            group,
            company,
            flag,
            resource,
            // Envoy sends the request, not the ticket.
            inline: None,
        }
    }
}

impl Mapping {
    /// Every `{name}` a member uses is a placeholder of the template.
    pub fn check_bindings(&self) -> Result<(), MappingError> {
        for (member, id) in MEMBERS.iter().zip(&self.ids) {
            if let Some(IdValue::Path(name)) = id
                && !self.template.as_ref().is_some_and(|t| t.has(name))
            {
                return Err(MappingError::Unbound {
                    member,
                    name: name.clone(),
                });
            }
        }
        Ok(())
    }

    /// Holds the route to the core's validation before any request: the
    /// action is known and every id it needs is given. A `{name}` stands in
    /// for a valid value (a path segment is never empty).
    pub fn check_question(&self) -> Result<(), MappingError> {
        let ids = std::array::from_fn(|i| match &self.ids[i] {
            None => String::new(),
            Some(IdValue::Literal(text)) => text.clone(),
            Some(IdValue::Path(_)) if MEMBERS[i] == "flag" => "IR".to_owned(),
            Some(IdValue::Path(_)) => "x".to_owned(),
        });
        let question = Question {
            action: self.action.clone(),
            ids,
        };
        question
            .request("-")
            .validate()
            .map(|_| ())
            .map_err(|e| MappingError::from_request(&e))
    }

    /// The question for a request to `path` (which may carry a query).
    pub fn resolve(&self, path: &str) -> Result<Question, MappingError> {
        self.check_bindings()?;
        let uses_path = self
            .ids
            .iter()
            .any(|id| matches!(id, Some(IdValue::Path(_))));
        let captures = match &self.template {
            Some(template) if uses_path => {
                Some(
                    template
                        .matches(path)
                        .ok_or_else(|| MappingError::NoMatch {
                            path: path.to_owned(),
                            template: template.as_str().to_owned(),
                        })?,
                )
            }
            _ => None,
        };
        let ids = std::array::from_fn(|i| match &self.ids[i] {
            None => String::new(),
            Some(IdValue::Literal(text)) => text.clone(),
            Some(IdValue::Path(name)) => captures
                .as_ref()
                .and_then(|c| c.get(name))
                .unwrap_or_default()
                .to_owned(),
        });
        Ok(Question {
            action: self.action.clone(),
            ids,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn mapping(action: &str, template: &str, ticket: &str) -> Mapping {
        Mapping {
            action: action.to_owned(),
            template: Some(Template::parse(template).unwrap()),
            ids: [
                Some(IdValue::parse("ticket", ticket).unwrap()),
                None,
                None,
                None,
                None,
                None,
            ],
        }
    }

    #[test]
    fn resolves_placeholders_from_the_path() {
        let m = mapping("view", "/tickets/{id}", "{id}");
        let q = m.resolve("/tickets/T%201?x=1").unwrap();
        assert_eq!(q.ids[0], "T 1");
        assert!(matches!(
            m.resolve("/other"),
            Err(MappingError::NoMatch { .. })
        ));
    }

    #[test]
    fn names_the_member_at_fault() {
        let m = mapping("view", "/tickets/{id}", "{tid}");
        assert_eq!(
            m.check_bindings().unwrap_err().to_string(),
            "ticket: `{tid}` is not a placeholder of the path template"
        );
        let mut m = mapping("view", "/tickets", "x");
        m.ids[0] = None;
        assert_eq!(
            m.check_question().unwrap_err().to_string(),
            "ticket: required by the view action"
        );
        m.action = "viwe".to_owned();
        assert_eq!(
            m.check_question().unwrap_err().to_string(),
            "action: unknown action `viwe`"
        );
        assert!(IdValue::parse("ticket", "T{1}").is_err());
    }
}
