//! A route's question from its `context_extensions` (`ticket_authz.action`,
//! `ticket_authz.path` and the ids), as Envoy's per-route filter config
//! sends them.

use std::collections::HashMap;

use super::question::{IdValue, MEMBERS, Mapping, MappingError};
use super::template::Template;

/// The prefix of every key this service reads.
pub const PREFIX: &str = "ticket_authz.";

/// The route's mapping when its extensions carry any `ticket_authz.` key;
/// an unknown key is refused rather than ignored, and so is a mapping
/// without `ticket_authz.action` (a misspelt `actoin`), so that neither
/// falls through to the route table or to `--ext-authz-unmatched allow`.
pub fn mapping(extensions: &HashMap<String, String>) -> Option<Result<Mapping, MappingError>> {
    if !extensions.keys().any(|k| k.starts_with(PREFIX)) {
        return None;
    }
    Some(match extensions.get("ticket_authz.action") {
        Some(action) => build(extensions, action),
        None => build(extensions, "").and(Err(MappingError::Question {
            member: "action",
            message: "required when any ticket_authz. key is given".to_owned(),
        })),
    })
}

fn build(extensions: &HashMap<String, String>, action: &str) -> Result<Mapping, MappingError> {
    let mut unknown: Vec<&str> = extensions
        .keys()
        .filter_map(|k| k.strip_prefix(PREFIX))
        .filter(|member| !matches!(*member, "action" | "path") && !MEMBERS.contains(member))
        .collect();
    unknown.sort_unstable();
    if let Some(member) = unknown.first() {
        return Err(MappingError::Unknown((*member).to_owned()));
    }
    let template = extensions
        .get("ticket_authz.path")
        .map(|t| Template::parse(t))
        .transpose()?;
    let mut ids: [Option<IdValue>; 6] = Default::default();
    for (slot, member) in ids.iter_mut().zip(MEMBERS) {
        if let Some(value) = extensions.get(&format!("{PREFIX}{member}")) {
            *slot = Some(IdValue::parse(member, value)?);
        }
    }
    Ok(Mapping {
        action: action.to_owned(),
        template,
        ids,
    })
}
