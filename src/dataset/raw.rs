//! The YAML shape of dataset files, as written (ids, enums and timestamps
//! still unchecked text).

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// An id as written: a string, or an unquoted integer read as its decimal
/// text. Any other scalar is an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RawId(pub String);

impl<'de> Deserialize<'de> for RawId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = RawId;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an id (a string or an integer)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawId, E> {
                Ok(RawId(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<RawId, E> {
                Ok(RawId(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawId, E> {
                Ok(RawId(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawId, E> {
                Ok(RawId(v.to_string()))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

impl From<&str> for RawId {
    fn from(value: &str) -> Self {
        RawId(value.to_owned())
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDataset {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organisations: Vec<RawOrganisation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partnerships: Vec<RawPartnership>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub companies: Vec<RawCompany>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<RawGroup>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<RawProfile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<RawUser>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tickets: Vec<RawTicket>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assertions: Vec<RawAssertion>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOrganisation {
    pub id: RawId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_access: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<RawDomain>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_managers: Vec<RawId>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDomain {
    pub domain: String,
    pub added_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPartnership {
    pub partner: RawId,
    pub client: RawId,
    pub since: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCompany {
    pub id: RawId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<RawId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<RawId>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    pub id: RawId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<RawId>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub propagate: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub open_ticket_limit: u32,
    #[serde(default, skip_serializing_if = "is_false")]
    pub enforce_open_limit: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total_ticket_limit: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    pub id: RawId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    pub id: RawId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspended: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_access: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organisations: Vec<RawId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_organisation: Option<RawId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<RawId>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub company_scoped: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<RawGrant>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrant {
    pub profile: RawId,
    pub group: RawId,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTicket {
    pub id: RawId,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub requester: Option<RawId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<RawId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<RawId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<RawId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ccs: Vec<RawId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<RawId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAssertion {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<RawId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<RawId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<RawId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<RawId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<RawId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible_tickets: Option<Vec<RawId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewers: Option<Vec<RawId>>,
}

fn ts(t: crate::time::Timestamp) -> String {
    t.to_string()
}

fn ids(list: &[String]) -> Vec<RawId> {
    list.iter().map(|s| RawId(s.clone())).collect()
}

fn opt_id(id: &Option<String>) -> Option<RawId> {
    id.as_ref().map(|s| RawId(s.clone()))
}

/// Writes a validated dataset back into its file shape (no assertions).
pub fn from_dataset(data: &crate::model::Dataset) -> RawDataset {
    RawDataset {
        now: data.now.map(ts),
        organisations: data
            .organisations
            .iter()
            .map(|o| RawOrganisation {
                id: RawId(o.id.clone()),
                name: Some(o.name.clone()),
                ticket_access: Some(o.ticket_access.name().to_owned()),
                domains: o
                    .domains
                    .iter()
                    .map(|d| RawDomain {
                        domain: d.domain.clone(),
                        added_at: ts(d.added_at),
                    })
                    .collect(),
                access_managers: ids(&o.access_managers),
            })
            .collect(),
        partnerships: data
            .partnerships
            .iter()
            .map(|p| RawPartnership {
                partner: RawId(p.partner.clone()),
                client: RawId(p.client.clone()),
                since: ts(p.since),
            })
            .collect(),
        companies: data
            .companies
            .iter()
            .map(|c| RawCompany {
                id: RawId(c.id.clone()),
                name: Some(c.name.clone()),
                parent: opt_id(&c.parent),
                owner: opt_id(&c.owner),
            })
            .collect(),
        groups: data
            .groups
            .iter()
            .map(|g| RawGroup {
                id: RawId(g.id.clone()),
                name: Some(g.name.clone()),
                parent: opt_id(&g.parent),
                propagate: g.propagate,
                open_ticket_limit: g.open_ticket_limit,
                enforce_open_limit: g.enforce_open_limit,
                total_ticket_limit: g.total_ticket_limit,
            })
            .collect(),
        profiles: data
            .profiles
            .iter()
            .map(|p| RawProfile {
                id: RawId(p.id.clone()),
                name: Some(p.name.clone()),
                flags: p.flags.iter().map(|f| f.name().to_owned()).collect(),
            })
            .collect(),
        users: data
            .users
            .iter()
            .map(|u| RawUser {
                id: RawId(u.id.clone()),
                email: u.email.clone(),
                name: u.name.clone(),
                created_at: Some(ts(u.created_at)),
                kind: Some(u.kind.name().to_owned()),
                suspended: u.suspended,
                ticket_access: Some(u.ticket_access.name().to_owned()),
                organisations: ids(&u.organisations),
                default_organisation: opt_id(&u.default_organisation),
                company: opt_id(&u.company),
                company_scoped: u.company_scoped,
                grants: u
                    .grants
                    .iter()
                    .map(|g| RawGrant {
                        profile: RawId(g.profile.clone()),
                        group: RawId(g.group.as_str().to_owned()),
                    })
                    .collect(),
            })
            .collect(),
        tickets: data
            .tickets
            .iter()
            .map(|t| RawTicket {
                id: RawId(t.id.clone()),
                created_at: Some(ts(t.created_at)),
                requester: Some(RawId(t.requester.clone())),
                organisation: opt_id(&t.organisation),
                group: opt_id(&t.group),
                assignee: opt_id(&t.assignee),
                ccs: ids(&t.ccs),
                participants: ids(&t.participants),
                status: Some(t.status.name().to_owned()),
            })
            .collect(),
        assertions: Vec::new(),
    }
}
