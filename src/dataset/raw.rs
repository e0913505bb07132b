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
    pub projects: Vec<RawProject>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<RawTask>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wiki_pages: Vec<RawWikiPage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inventory_items: Vec<RawInventoryItem>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invoices: Vec<RawInvoice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leads: Vec<RawLead>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agenda_events: Vec<RawAgendaEvent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub download_categories: Vec<RawDownloadCategory>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub downloads: Vec<RawDownload>,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMember {
    pub user: RawId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProject {
    pub id: RawId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<RawId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<RawMember>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTask {
    pub id: RawId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub project: Option<RawId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<RawId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<RawMember>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWikiPage {
    pub id: RawId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_groups: Vec<RawId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write_groups: Vec<RawId>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInventoryItem {
    pub id: RawId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<RawId>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub public: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub companies: Vec<RawId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<RawId>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInvoice {
    pub id: RawId,
    #[serde(default)]
    pub company: Option<RawId>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLead {
    pub id: RawId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<RawId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<RawId>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgendaEvent {
    pub id: RawId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<RawId>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub public: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<RawId>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDownloadCategory {
    pub id: RawId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<RawId>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDownload {
    pub id: RawId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub category: Option<RawId>,
}

/// `visible_resources: {kind, ids}` in an assertion.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVisibleResources {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub ids: Vec<RawId>,
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
    /// The request's `resource_id` (access model §8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<RawId>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible_resources: Option<RawVisibleResources>,
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
        ..sections(&data.sections)
    }
}

fn members(list: &[crate::model::SectionMember]) -> Vec<RawMember> {
    list.iter()
        .map(|m| RawMember {
            user: RawId(m.user.clone()),
            role: Some(m.role.name().to_owned()),
        })
        .collect()
}

/// The section lists of a validated dataset in their file shape.
fn sections(s: &crate::model::Sections) -> RawDataset {
    RawDataset {
        projects: s
            .projects
            .iter()
            .map(|p| RawProject {
                id: RawId(p.id.clone()),
                name: Some(p.name.clone()),
                owner: opt_id(&p.owner),
                members: members(&p.members),
            })
            .collect(),
        tasks: s
            .tasks
            .iter()
            .map(|t| RawTask {
                id: RawId(t.id.clone()),
                name: Some(t.name.clone()),
                project: Some(RawId(t.project.clone())),
                parent: opt_id(&t.parent),
                members: members(&t.members),
            })
            .collect(),
        wiki_pages: s
            .wiki_pages
            .iter()
            .map(|w| RawWikiPage {
                id: RawId(w.id.clone()),
                name: Some(w.name.clone()),
                read_groups: ids(&w.read_groups),
                write_groups: ids(&w.write_groups),
            })
            .collect(),
        inventory_items: s
            .inventory_items
            .iter()
            .map(|i| RawInventoryItem {
                id: RawId(i.id.clone()),
                name: Some(i.name.clone()),
                owner: opt_id(&i.owner),
                public: i.public,
                companies: ids(&i.companies),
                users: ids(&i.users),
            })
            .collect(),
        invoices: s
            .invoices
            .iter()
            .map(|v| RawInvoice {
                id: RawId(v.id.clone()),
                company: Some(RawId(v.company.clone())),
            })
            .collect(),
        leads: s
            .leads
            .iter()
            .map(|l| RawLead {
                id: RawId(l.id.clone()),
                name: Some(l.name.clone()),
                company: opt_id(&l.company),
                owner: opt_id(&l.owner),
            })
            .collect(),
        agenda_events: s
            .agenda_events
            .iter()
            .map(|e| RawAgendaEvent {
                id: RawId(e.id.clone()),
                name: Some(e.name.clone()),
                owner: opt_id(&e.owner),
                public: e.public,
                groups: ids(&e.groups),
            })
            .collect(),
        download_categories: s
            .download_categories
            .iter()
            .map(|c| RawDownloadCategory {
                id: RawId(c.id.clone()),
                name: Some(c.name.clone()),
                groups: ids(&c.groups),
            })
            .collect(),
        downloads: s
            .downloads
            .iter()
            .map(|d| RawDownload {
                id: RawId(d.id.clone()),
                name: Some(d.name.clone()),
                category: Some(RawId(d.category.clone())),
            })
            .collect(),
        ..RawDataset::default()
    }
}
