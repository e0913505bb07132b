//! A route's question from its `context_extensions` (`ticket_authz.action`,
//! `ticket_authz.path` and the ids), as Envoy's per-route filter config
//! sends them.

use std::collections::HashMap;

use super::question::{IdValue, MEMBERS, Mapping, MappingError};
use super::template::Template;

/// The prefix of every key this service reads.
pub const PREFIX: &str = "ticket_authz.";

/// The route's mapping when its extensions carry `ticket_authz.action`;
/// an unknown `ticket_authz.` key is refused rather than ignored, so a
/// misspelt id fails closed.
pub fn mapping(extensions: &HashMap<String, String>) -> Option<Result<Mapping, MappingError>> {
    let action = extensions.get("ticket_authz.action")?;
    Some(build(extensions, action))
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
    let mut ids: [Option<IdValue>; 5] = Default::default();
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
