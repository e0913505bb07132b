//! What the YAML files read with marked-yaml at start-up share: the test
//! for a file without any node, and a load error as a line and a message.

use marked_yaml::LoadError;

/// Whether the text holds nothing but blank lines and comments (the
/// loader has no answer for such a file).
pub fn is_blank(text: &str) -> bool {
    text.lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
}

/// The line of a load error (0 when it has none) and its message;
/// `top_level` says what the file must be ("a YAML list of routes").
pub fn load_error(error: &LoadError, top_level: &str) -> (usize, String) {
    let (marker, message) = match error {
        LoadError::TopLevelMustBeSequence(m) | LoadError::TopLevelMustBeMapping(m) => {
            (Some(*m), format!("the file must be {top_level}"))
        }
        LoadError::UnexpectedAnchor(m) => (Some(*m), "anchors are not supported".to_owned()),
        LoadError::MappingKeyMustBeScalar(m) => (Some(*m), "keys must be plain names".to_owned()),
        LoadError::UnexpectedTag(m) => (Some(*m), "YAML tags are not supported".to_owned()),
        LoadError::ScanError(m, e) => (Some(*m), format!("not YAML: {}", e.info())),
        LoadError::DuplicateKey(inner) => (
            inner.key.span().start().copied(),
            format!("`{}` is given twice", inner.key.as_str()),
        ),
    };
    (marker.map_or(0, |m| m.line()), message)
}
