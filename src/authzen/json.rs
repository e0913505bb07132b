//! Reading a request body member by member, so that every problem, a wrong
//! JSON type included, names the member's path (`evaluations[2].subject.id`).
//! Paths are formatted only for an error.

use serde_json::{Map, Value};

use super::error::AuthzenError;

/// Where a member sits: a prefix (`""`, or `evaluations[2].`), its path
/// from there, and an index when it is an array's element.
#[derive(Debug, Clone, Copy)]
pub struct At<'p> {
    prefix: &'p str,
    path: &'static str,
    index: Option<usize>,
}

impl<'p> At<'p> {
    pub fn new(prefix: &'p str, path: &'static str) -> Self {
        Self {
            prefix,
            path,
            index: None,
        }
    }

    /// Another member under the same prefix.
    pub fn at(self, path: &'static str) -> Self {
        Self::new(self.prefix, path)
    }

    pub fn element(self, index: usize) -> Self {
        Self {
            index: Some(index),
            ..self
        }
    }

    /// The member's key in its object: the path's last segment.
    fn key(&self) -> &'static str {
        self.path.rsplit('.').next().unwrap_or(self.path)
    }

    pub fn name(&self) -> String {
        match self.index {
            None => format!("{}{}", self.prefix, self.path),
            Some(i) => format!("{}{}[{i}]", self.prefix, self.path),
        }
    }

    pub fn invalid(&self, problem: impl Into<String>) -> AuthzenError {
        AuthzenError::invalid(self.name(), problem)
    }
}

/// The body as an object.
pub fn parse(body: &[u8]) -> Result<Value, AuthzenError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| AuthzenError::Body(format!("not JSON: {e}")))?;
    if !value.is_object() {
        return Err(AuthzenError::Body(format!(
            "must be a JSON object, not {}",
            kind(&value)
        )));
    }
    Ok(value)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong(at: At<'_>, expected: &str, value: &Value) -> AuthzenError {
    at.invalid(format!("must be {expected}, not {}", kind(value)))
}

/// A member of `object` (absent when `object` is).
pub fn get<'v>(object: Option<&'v Map<String, Value>>, at: At<'_>) -> Option<&'v Value> {
    object.and_then(|o| o.get(at.key()))
}

/// An optional object; `null` counts as absent.
pub fn object<'v>(
    value: Option<&'v Value>,
    at: At<'_>,
) -> Result<Option<&'v Map<String, Value>>, AuthzenError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(other) => Err(wrong(at, "an object", other)),
    }
}

/// A required object.
pub fn required_object<'v>(
    value: Option<&'v Value>,
    at: At<'_>,
) -> Result<&'v Map<String, Value>, AuthzenError> {
    object(value, at)?.ok_or_else(|| at.invalid("required"))
}

/// An optional string member; `null` counts as absent.
pub fn string<'v>(
    object: Option<&'v Map<String, Value>>,
    at: At<'_>,
) -> Result<Option<&'v str>, AuthzenError> {
    match get(object, at) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong(at, "a string", other)),
    }
}

/// A string member that absent reads as empty (the domain's "not given").
pub fn text<'v>(
    object: Option<&'v Map<String, Value>>,
    at: At<'_>,
) -> Result<&'v str, AuthzenError> {
    Ok(string(object, at)?.unwrap_or(""))
}

/// A string member that must be present and not empty.
pub fn required_text<'v>(
    object: Option<&'v Map<String, Value>>,
    at: At<'_>,
) -> Result<&'v str, AuthzenError> {
    match string(object, at)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(at.invalid("must not be empty")),
    }
}

/// An optional array of strings.
pub fn strings<'v>(
    object: Option<&'v Map<String, Value>>,
    at: At<'_>,
) -> Result<Vec<&'v str>, AuthzenError> {
    match get(object, at) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.as_str()),
                other => Err(wrong(at.element(i), "a string", other)),
            })
            .collect(),
        Some(other) => Err(wrong(at, "an array of strings", other)),
    }
}

/// Each element of a string array, checked with its own path.
pub fn each<'v, T>(
    items: &[&'v str],
    at: At<'_>,
    check: impl Fn(&'v str) -> Result<T, String>,
) -> Result<Vec<T>, AuthzenError> {
    items
        .iter()
        .enumerate()
        .map(|(i, s)| check(s).map_err(|problem| at.element(i).invalid(problem)))
        .collect()
}

/// An optional non-negative integer.
pub fn unsigned(
    object: Option<&Map<String, Value>>,
    at: At<'_>,
) -> Result<Option<u64>, AuthzenError> {
    match get(object, at) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| at.invalid(format!("must be a non-negative integer, not {n}"))),
        Some(other) => Err(wrong(at, "a non-negative integer", other)),
    }
}

/// An optional boolean.
pub fn boolean(
    object: Option<&Map<String, Value>>,
    at: At<'_>,
) -> Result<Option<bool>, AuthzenError> {
    match get(object, at) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong(at, "a boolean", other)),
    }
}

/// An optional array.
pub fn array<'v>(
    object: Option<&'v Map<String, Value>>,
    at: At<'_>,
) -> Result<&'v [Value], AuthzenError> {
    match get(object, at) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(wrong(at, "an array", other)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn errors_name_the_member_and_the_wrong_type() {
        let body = parse(br#"{"subject": {"id": 7, "tags": ["a", 2]}}"#).unwrap();
        let subject = object(body.get("subject"), At::new("", "subject"))
            .unwrap()
            .unwrap();
        let e = text(Some(subject), At::new("evaluations[1].", "subject.id")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "evaluations[1].subject.id: must be a string, not a number"
        );
        let e = strings(Some(subject), At::new("", "subject.tags")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "subject.tags[1]: must be a string, not a number"
        );
        let e = unsigned(
            parse(br#"{"min_revision": -1}"#).unwrap().as_object(),
            At::new("", "context.min_revision"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "context.min_revision: must be a non-negative integer, not -1"
        );
        assert!(parse(b"[1]").is_err());
        assert!(parse(b"{").is_err());
    }
}
