//! Path templates such as `/api/v1/tickets/{ticket}/comments`: parsing, and
//! matching a request path, with `{name}` taking one non-empty segment,
//! percent-decoded.

use std::borrow::Cow;

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("`{0}` must start with `/`")]
    NotAbsolute(String),
    #[error("`{0}`: a segment is either literal text or one whole `{{name}}`")]
    BadSegment(String),
    #[error("`{0}`: a placeholder name is letters, digits and `_`")]
    BadName(String),
    #[error("`{template}`: placeholder `{{{name}}}` appears twice")]
    Duplicate { template: String, name: String },
    #[error("`{0}` holds a query string; templates match the path alone")]
    Query(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Var(String),
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    segments: Vec<Segment>,
}

/// The `name` of a value written exactly `{name}`, if it is one.
pub fn placeholder(value: &str) -> Option<&str> {
    value.strip_prefix('{')?.strip_suffix('}')
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The segments after the leading `/`; a trailing `/` leaves an empty last
/// segment, so `/a/` and `/a` never match each other.
fn segments(path: &str) -> Option<std::str::Split<'_, char>> {
    path.strip_prefix('/').map(|rest| rest.split('/'))
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        if text.contains('?') {
            return Err(TemplateError::Query(text.to_owned()));
        }
        let parts = segments(text).ok_or_else(|| TemplateError::NotAbsolute(text.to_owned()))?;
        let mut out: Vec<Segment> = Vec::new();
        for part in parts {
            let segment = match placeholder(part) {
                Some(name) => {
                    if !valid_name(name) {
                        return Err(TemplateError::BadName(text.to_owned()));
                    }
                    if out.iter().any(|s| *s == Segment::Var(name.to_owned())) {
                        return Err(TemplateError::Duplicate {
                            template: text.to_owned(),
                            name: name.to_owned(),
                        });
                    }
                    Segment::Var(name.to_owned())
                }
                None if part.contains(['{', '}']) => {
                    return Err(TemplateError::BadSegment(text.to_owned()));
                }
                None => Segment::Literal(part.to_owned()),
            };
            out.push(segment);
        }
        Ok(Template {
            text: text.to_owned(),
            segments: out,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the template has a `{name}` segment.
    pub fn has(&self, name: &str) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Var(n) if n == name))
    }

    /// Matches `path` (its query string, if any, is ignored): the
    /// placeholders' decoded values in template order, or `None`. A segment
    /// that does not decode to UTF-8 matches nothing.
    pub fn matches<'p>(&self, path: &'p str) -> Option<Captures<'_, 'p>> {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        let mut parts = segments(path)?;
        let mut values = Vec::new();
        for segment in &self.segments {
            let part = parts.next()?;
            match segment {
                Segment::Literal(text) => {
                    if part != text {
                        return None;
                    }
                }
                Segment::Var(name) => {
                    if part.is_empty() {
                        return None;
                    }
                    let value = percent_encoding::percent_decode_str(part)
                        .decode_utf8()
                        .ok()?;
                    values.push((name.as_str(), value));
                }
            }
        }
        if parts.next().is_some() {
            return None;
        }
        Some(Captures(values))
    }
}

/// `path` as servers that forgive spelling read it: without its query,
/// percent-decoded, with empty and `.` segments dropped and `..` taking
/// the previous segment away (so a trailing or doubled `/` disappears).
fn forgiving(path: &str) -> Vec<String> {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let mut out: Vec<String> = Vec::new();
    for part in decoded.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            _ => out.push(part.to_owned()),
        }
    }
    out
}

impl Template {
    /// Whether `path` would match once spelled as a forgiving server reads
    /// it (see [`forgiving`]), literals compared without regard to ASCII
    /// case. A path that matches this way but not exactly is one the
    /// ticketing system may well serve as this route: with unmatched
    /// requests allowed, it must not pass as "no route".
    pub fn resembles(&self, path: &str) -> bool {
        let template: Vec<&Segment> = self
            .segments
            .iter()
            .filter(|s| !matches!(s, Segment::Literal(t) if t.is_empty()))
            .collect();
        let parts = forgiving(path);
        template.len() == parts.len()
            && template
                .iter()
                .zip(&parts)
                .all(|(segment, part)| match segment {
                    Segment::Literal(text) => text.eq_ignore_ascii_case(part),
                    Segment::Var(_) => true,
                })
    }
}

/// The values a match gave each placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captures<'t, 'p>(Vec<(&'t str, Cow<'p, str>)>);

impl Captures<'_, '_> {
    /// The value of `{name}`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_ref())
    }
}

#[cfg(test)]
mod resemblance {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn respellings_of_a_route_resemble_it_and_other_paths_do_not() {
        let t = Template::parse("/api/v1/tickets/{ticket}").unwrap();
        for path in [
            "/api/v1/tickets/1001",
            "/api/v1/tickets/1001/",
            "//api/v1/tickets/1001",
            "/api/v1/tick%65ts/1001",
            "/API/v1/Tickets/1001?x=1",
            "/api/v1/./tickets/1001",
            "/api/v1/other/../tickets/1001",
        ] {
            assert!(t.resembles(path), "{path}");
        }
        for path in [
            "/api/v1/tickets",
            "/api/v1/tickets/1001/comments",
            "/health",
            "/",
        ] {
            assert!(!t.resembles(path), "{path}");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn matches_whole_segments_and_decodes_them() {
        let t = Template::parse("/api/v1/tickets/{ticket}/comments").unwrap();
        let m = t.matches("/api/v1/tickets/T%2D1/comments?page=2").unwrap();
        assert_eq!(m.get("ticket"), Some("T-1"));
        assert!(t.matches("/api/v1/tickets//comments").is_none());
        assert!(t.matches("/api/v1/tickets/T1/comments/").is_none());
        assert!(t.matches("/api/v1/tickets/T1").is_none());
        assert!(t.matches("/api/v1/tickets/%FF/comments").is_none());
        assert!(t.matches("api/v1/tickets/T1/comments").is_none());
    }

    #[test]
    fn trailing_slash_is_not_folded() {
        let t = Template::parse("/tickets/").unwrap();
        assert!(t.matches("/tickets/").is_some());
        assert!(t.matches("/tickets").is_none());
        assert!(Template::parse("/").unwrap().matches("/").is_some());
    }

    #[test]
    fn refuses_malformed_templates() {
        for bad in [
            "tickets",
            "/t/{a}{b}",
            "/t/x{a}",
            "/t/{}",
            "/t/{a-b}",
            "/t/{a}/{a}",
            "/t?x=1",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }
}
