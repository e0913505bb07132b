//! The `--ext-authz-routes` table: a YAML list of `{method, path, action,
//! ticket, group, organisation, company, flag, resource}`, checked whole at start-up
//! (every problem located by file, line and member), then matched first to
//! last against a request's method and path.

use marked_yaml::{LoadError, LoaderOptions, Node, Span};

use super::question::{IdValue, MEMBERS, Mapping, MappingError, Question};
use super::template::Template;

/// Why a route file was refused; nothing of it is used.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
    /// `problem` opens with the member at fault (`.action: …`).
    #[error("{file}:{line}: routes[{index}]{problem}")]
    Invalid {
        file: String,
        line: usize,
        index: usize,
        problem: String,
    },
}

/// One route of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    /// Upper case; `None` matches every method.
    method: Option<String>,
    mapping: Mapping,
}

/// The parsed table, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    routes: Vec<Route>,
}

/// A route's members: method, path and action, then the ids.
const KNOWN: [&str; 3 + MEMBERS.len()] = {
    let mut known = ["method", "path", "action", "", "", "", "", "", ""];
    let mut i = 0;
    while i < MEMBERS.len() {
        known[3 + i] = MEMBERS[i];
        i += 1;
    }
    known
};

fn line_of(span: &Span) -> usize {
    span.start().map_or(0, |m| m.line())
}

fn load_error(file: &str, error: &LoadError) -> RouteError {
    let (line, message) = crate::yaml::load_error(error, "a YAML list of routes");
    RouteError::Syntax {
        file: file.to_owned(),
        line,
        message,
    }
}

impl RouteTable {
    /// Reads and checks a route file.
    pub fn load(path: &std::path::Path) -> Result<RouteTable, RouteError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RouteError::Read {
            file: file.clone(),
            source,
        })?;
        RouteTable::parse(&file, &text)
    }

    /// Parses and checks route-file text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<RouteTable, RouteError> {
        if crate::yaml::is_blank(text) {
            return Err(RouteError::Syntax {
                file: file.to_owned(),
                line: 1,
                message: "the file holds no routes".to_owned(),
            });
        }
        let options = LoaderOptions::default()
            .toplevel_sequence()
            .error_on_duplicate_keys(true)
            .prevent_coercion(true);
        let node = marked_yaml::parse_yaml_with_options(0, text, options)
            .map_err(|e| load_error(file, &e))?;
        let Some(items) = node.as_sequence() else {
            return Err(RouteError::Syntax {
                file: file.to_owned(),
                line: line_of(node.span()),
                message: "the file must be a YAML list of routes".to_owned(),
            });
        };
        if items.is_empty() {
            return Err(RouteError::Syntax {
                file: file.to_owned(),
                line: line_of(items.span()),
                message: "the file holds no routes".to_owned(),
            });
        }
        let routes = items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                route(item).map_err(|(line, problem)| RouteError::Invalid {
                    file: file.to_owned(),
                    line,
                    index,
                    problem,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RouteTable { routes })
    }

    /// The first route matching `method` and `path` (a query string is
    /// ignored), resolved into its question.
    pub fn find(&self, method: &str, path: &str) -> Option<Question> {
        self.routes.iter().find_map(|route| {
            if !route.serves(method) {
                return None;
            }
            // Every route has a template and only placeholders it holds.
            route.mapping.template.as_ref()?.matches(path)?;
            route.mapping.resolve(path).ok()
        })
    }

    /// Whether some route would match `path` as a forgiving server
    /// spells it (`Template::resembles`): doubled or trailing slashes,
    /// dot segments, escapes, letter case.
    pub fn resembles(&self, method: &str, path: &str) -> bool {
        self.routes.iter().any(|route| {
            route.serves(method)
                && route
                    .mapping
                    .template
                    .as_ref()
                    .is_some_and(|t| t.resembles(path))
        })
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

impl Route {
    /// Whether the route takes `method`: any, when it names none; a `GET`
    /// route also takes `HEAD`, which servers answer as GET without a body.
    fn serves(&self, method: &str) -> bool {
        self.method.as_deref().is_none_or(|m| {
            m.eq_ignore_ascii_case(method)
                || (m.eq_ignore_ascii_case("GET") && method.eq_ignore_ascii_case("HEAD"))
        })
    }
}

/// One route, or the line and problem of its first fault.
fn route(item: &Node) -> Result<Route, (usize, String)> {
    let Some(map) = item.as_mapping() else {
        return Err((
            line_of(item.span()),
            ": must be a mapping of method, path, action and ids".to_owned(),
        ));
    };
    let mut values: [Option<(String, usize)>; KNOWN.len()] = Default::default();
    for (key, value) in map.iter() {
        let Some(slot) = KNOWN.iter().position(|k| *k == key.as_str()) else {
            return Err((
                line_of(key.span()),
                format!(
                    ".{}: unknown member (expected one of {})",
                    key.as_str(),
                    KNOWN.join(", ")
                ),
            ));
        };
        let Some(text) = value.as_scalar() else {
            return Err((
                line_of(value.span()),
                format!(".{}: must be a string", KNOWN[slot]),
            ));
        };
        if text.as_str().is_empty() {
            return Err((
                line_of(value.span()),
                format!(".{}: must not be empty", KNOWN[slot]),
            ));
        }
        values[slot] = Some((text.as_str().to_owned(), line_of(value.span())));
    }
    let start = line_of(map.span());
    let line = |member: &str| {
        KNOWN
            .iter()
            .position(|k| *k == member)
            .and_then(|i| values[i].as_ref())
            .map_or(start, |(_, line)| *line)
    };
    let at = |e: MappingError| (line(e.member()), format!(".{e}"));
    let [method, path, action, ids @ ..] = &values;
    let method = match method {
        None => None,
        Some((text, line)) => {
            if !text.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err((*line, format!(".method: `{text}` is not an HTTP method")));
            }
            Some(text.to_ascii_uppercase())
        }
    };
    let Some((path, _)) = path else {
        return Err((start, ".path: required".to_owned()));
    };
    let Some((action, _)) = action else {
        return Err((start, ".action: required".to_owned()));
    };
    let template = Template::parse(path).map_err(|e| at(e.into()))?;
    let mut parsed: [Option<IdValue>; MEMBERS.len()] = Default::default();
    for ((slot, member), value) in parsed.iter_mut().zip(MEMBERS).zip(ids) {
        if let Some((text, _)) = value {
            *slot = Some(IdValue::parse(member, text).map_err(at)?);
        }
    }
    let mapping = Mapping {
        action: action.clone(),
        template: Some(template),
        ids: parsed,
    };
    mapping.check_bindings().map_err(at)?;
    mapping.check_question().map_err(at)?;
    Ok(Route { method, mapping })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const TABLE: &str = "\
- method: get
  path: /api/v1/tickets/{ticket}
  action: view
  ticket: '{ticket}'
- path: /api/v1/tickets/{ticket}/comments
  action: comment
  ticket: '{ticket}'
- method: GET
  path: /api/v1/kb
  action: has_flag
  flag: KR
  group: '*'
";

    #[test]
    fn first_match_wins_and_method_is_case_insensitive() {
        let table = RouteTable::parse("r.yaml", TABLE).unwrap();
        assert_eq!(table.len(), 3);
        let q = table.find("GET", "/api/v1/tickets/T%2F1?x").unwrap();
        assert_eq!((q.action.as_str(), q.ids[0].as_str()), ("view", "T/1"));
        assert!(table.find("DELETE", "/api/v1/tickets/T1").is_none());
        let q = table.find("post", "/api/v1/tickets/T1/comments").unwrap();
        assert_eq!(q.action, "comment");
        assert!(table.find("GET", "/api/v1/tickets/T1/").is_none());
        let q = table.find("get", "/api/v1/kb").unwrap();
        assert_eq!((q.ids[1].as_str(), q.ids[4].as_str()), ("*", "KR"));
    }

    fn error(text: &str) -> String {
        RouteTable::parse("r.yaml", text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_file_line_and_member() {
        assert_eq!(
            error("- path: /t/{id}\n  action: viwe\n  ticket: '{id}'\n"),
            "r.yaml:2: routes[0].action: unknown action `viwe`"
        );
        assert_eq!(
            error(
                "- path: /t\n  action: view\n- path: /u\n  action: view\n  ticket: x\n  colour: red\n"
            ),
            "r.yaml:1: routes[0].ticket: required by the view action"
        );
        assert_eq!(
            error("- path: /u\n  action: view\n  ticket: x\n  colour: red\n"),
            "r.yaml:4: routes[0].colour: unknown member (expected one of method, path, action, ticket, group, organisation, company, flag, resource)"
        );
        assert_eq!(
            error("- path: /u/{t}\n  action: view\n  ticket: '{id}'\n"),
            "r.yaml:3: routes[0].ticket: `{id}` is not a placeholder of the path template"
        );
        assert_eq!(
            error("- path: u\n  action: view\n  ticket: x\n"),
            "r.yaml:1: routes[0].path: `u` must start with `/`"
        );
        assert!(error("- path: /u\n  path: /v\n").starts_with("r.yaml:2: `path` is given twice"));
        assert!(error("path: /u\n").starts_with("r.yaml:1: "));
        assert!(error("- [x\n").starts_with("r.yaml:"));
        assert_eq!(error("# none\n"), "r.yaml:1: the file holds no routes");
        assert!(error("[]\n").ends_with("the file holds no routes"));
    }
}
