//! Who asks: the user id from a request header a trusted filter set, or
//! from a claim of the payload Envoy's `jwt_authn` filter verified.

use envoy_types::pb::envoy::config::core::v3::Metadata;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
use envoy_types::pb::google::protobuf::value::Kind;

/// The `filter_metadata` key of Envoy's JWT filter.
pub const JWT_AUTHN: &str = "envoy.filters.http.jwt_authn";

/// Where the subject comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectSource {
    /// A request header (stored lower case, as Envoy sends names).
    Header(String),
    /// A claim of a `jwt_authn` payload. Never a header as well: a client
    /// can send any header, and only the verified payload is trusted then.
    JwtClaim(String),
}

impl Default for SubjectSource {
    fn default() -> Self {
        SubjectSource::Header("x-user-id".to_owned())
    }
}

/// A request header's value: the `headers` map, else `header_map` (which
/// Envoy fills instead when it sends raw header bytes).
pub fn header<'r>(http: &'r HttpRequest, name: &str) -> Option<&'r str> {
    if let Some(value) = http.headers.get(name) {
        return Some(value);
    }
    http.header_map.as_ref().and_then(|map| {
        map.headers
            .iter()
            .find(|h| h.key.eq_ignore_ascii_case(name))
            .and_then(|h| {
                if h.raw_value.is_empty() {
                    Some(h.value.as_str())
                } else {
                    std::str::from_utf8(&h.raw_value).ok()
                }
            })
    })
}

/// A claim as a user id: a string, or an integral number (numeric ids).
fn claim_text(kind: &Kind) -> Option<String> {
    match kind {
        Kind::StringValue(s) if !s.is_empty() => Some(s.clone()),
        Kind::NumberValue(n) if n.is_finite() && n.fract() == 0.0 && n.abs() < 9.0e15 => {
            Some(format!("{n:.0}"))
        }
        _ => None,
    }
}

/// The subject of a request, if it names one.
pub fn subject(
    source: &SubjectSource,
    http: Option<&HttpRequest>,
    metadata: Option<&Metadata>,
) -> Option<String> {
    match source {
        SubjectSource::Header(name) => http
            .and_then(|h| header(h, name))
            .filter(|v| !v.is_empty())
            .map(str::to_owned),
        SubjectSource::JwtClaim(claim) => {
            let payloads = metadata?.filter_metadata.get(JWT_AUTHN)?;
            // The map has no order of its own; the spec's is by key.
            let mut keys: Vec<&String> = payloads.fields.keys().collect();
            keys.sort();
            // The first payload that carries the claim decides: a value
            // there that is no id is no subject, not a cue to read another
            // issuer's payload.
            let carrying = keys.into_iter().find_map(|key| {
                match payloads.fields.get(key)?.kind.as_ref()? {
                    Kind::StructValue(payload) => payload.fields.get(claim),
                    _ => None,
                }
            })?;
            claim_text(carrying.kind.as_ref()?)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use envoy_types::pb::google::protobuf::{Struct, Value};

    use super::*;

    fn value(kind: Kind) -> Value {
        Value { kind: Some(kind) }
    }

    fn payload(claims: &[(&str, Kind)]) -> Value {
        value(Kind::StructValue(Struct {
            fields: claims
                .iter()
                .map(|(k, v)| ((*k).to_owned(), value(v.clone())))
                .collect(),
        }))
    }

    #[test]
    fn first_payload_with_the_claim_in_key_order() {
        let mut metadata = Metadata::default();
        metadata.filter_metadata.insert(
            JWT_AUTHN.to_owned(),
            Struct {
                fields: [
                    (
                        "b".to_owned(),
                        payload(&[("sub", Kind::StringValue("bee".into()))]),
                    ),
                    (
                        "a".to_owned(),
                        payload(&[("iss", Kind::StringValue("x".into()))]),
                    ),
                    (
                        "c".to_owned(),
                        payload(&[("sub", Kind::StringValue("sea".into()))]),
                    ),
                    ("d".to_owned(), payload(&[("uid", Kind::NumberValue(42.0))])),
                ]
                .into_iter()
                .collect(),
            },
        );
        let claim = |c: &str| subject(&SubjectSource::JwtClaim(c.into()), None, Some(&metadata));
        assert_eq!(claim("sub").as_deref(), Some("bee"));
        assert_eq!(claim("uid").as_deref(), Some("42"));
        assert_eq!(claim("email"), None);
    }
}
