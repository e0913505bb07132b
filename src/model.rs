//! Domain types of the access model (entities and their enums), free of any
//! file, database or wire format. They derive serde's traits so that a
//! format can carry them as they are (the binary image of `crate::image`);
//! the YAML file shape is `dataset::raw`'s own.

use serde::{Deserialize, Serialize};

use crate::flags::FlagSet;
use crate::time::Timestamp;

/// Ids are opaque non-empty strings of at most this many bytes.
pub const MAX_ID_BYTES: usize = 128;

/// The reserved group id meaning "all groups".
pub const ALL_GROUPS: &str = "*";

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
        )]
        pub enum $name {
            #[default]
            $($variant),+
        }

        impl $name {
            /// Every accepted spelling, for error messages.
            pub const NAMES: &'static [&'static str] = &[$($text),+];
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }

            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

named_enum!(
    /// Kinds of user; the first is the default.
    UserKind { EndUser = "end_user", Agent = "agent", Superadmin = "superadmin" }
);

named_enum!(
    /// The user-level ticket access setting.
    UserAccess { Own = "own", Organisation = "organisation" }
);

named_enum!(
    /// The organisation-level ticket access setting.
    OrgAccess { Own = "own", ViewAll = "view_all", CommentAll = "comment_all" }
);

named_enum!(
    /// Ticket status; only ticket limits look at it.
    Status {
        New = "new",
        Open = "open",
        Pending = "pending",
        OnHold = "on_hold",
        Solved = "solved",
        Closed = "closed",
    }
);

impl OrgAccess {
    /// `view_all` and `comment_all` make a shared organisation.
    pub fn is_shared(self) -> bool {
        !matches!(self, OrgAccess::Own)
    }
}

impl Status {
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Status::New | Status::Open | Status::Pending | Status::OnHold
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    /// Lower-cased (ASCII) so that comparisons are case-insensitive.
    pub domain: String,
    pub added_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organisation {
    pub id: String,
    pub name: String,
    pub ticket_access: OrgAccess,
    pub domains: Vec<Domain>,
    pub access_managers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partnership {
    pub partner: String,
    pub client: String,
    pub since: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Company {
    pub id: String,
    pub name: String,
    pub parent: Option<String>,
    pub owner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub parent: Option<String>,
    pub propagate: bool,
    pub open_ticket_limit: u32,
    pub enforce_open_limit: bool,
    pub total_ticket_limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub id: String,
    pub name: String,
    pub flags: FlagSet,
}

/// Where a grant applies: one group, or every group (`*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantScope {
    All,
    Group(String),
}

impl GrantScope {
    pub fn as_str(&self) -> &str {
        match self {
            GrantScope::All => ALL_GROUPS,
            GrantScope::Group(id) => id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub profile: String,
    pub group: GrantScope,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub created_at: Timestamp,
    pub kind: UserKind,
    pub suspended: bool,
    pub ticket_access: UserAccess,
    pub organisations: Vec<String>,
    pub default_organisation: Option<String>,
    pub company: Option<String>,
    pub company_scoped: bool,
    pub grants: Vec<Grant>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: String,
    pub created_at: Timestamp,
    pub requester: String,
    pub organisation: Option<String>,
    pub group: Option<String>,
    pub assignee: Option<String>,
    pub ccs: Vec<String>,
    pub participants: Vec<String>,
    pub status: Status,
}

/// A whole, validated authorisation dataset: every reference resolves, no
/// parent cycles, no duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dataset {
    /// A fixed clock for ticket limits, when the data fixes one.
    pub now: Option<Timestamp>,
    pub organisations: Vec<Organisation>,
    pub partnerships: Vec<Partnership>,
    pub companies: Vec<Company>,
    pub groups: Vec<Group>,
    pub profiles: Vec<Profile>,
    pub users: Vec<User>,
    pub tickets: Vec<Ticket>,
    /// The service-desk sections beyond tickets (access model §8).
    pub sections: Sections,
}

named_enum!(
    /// A member's role in a project or task (access model §8).
    MemberRole { Member = "member", Manager = "manager" }
);

named_enum!(
    /// The kinds of section resource a list can ask for (access model §8).
    ResourceKind {
        Project = "project",
        Task = "task",
        WikiPage = "wiki_page",
        InventoryItem = "inventory_item",
        Invoice = "invoice",
        Lead = "lead",
        AgendaEvent = "agenda_event",
        Download = "download",
    }
);

/// A user on a project or task, with a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionMember {
    pub user: String,
    pub role: MemberRole,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub owner: Option<String>,
    pub members: Vec<SectionMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub name: String,
    pub project: String,
    /// A task of the same project.
    pub parent: Option<String>,
    pub members: Vec<SectionMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WikiPage {
    pub id: String,
    pub name: String,
    /// Empty: every user reads it.
    pub read_groups: Vec<String>,
    /// Empty: every holder of WW writes it.
    pub write_groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryItem {
    pub id: String,
    pub name: String,
    pub owner: Option<String>,
    pub public: bool,
    pub companies: Vec<String>,
    /// Users the item is associated with.
    pub users: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub id: String,
    pub company: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lead {
    pub id: String,
    pub name: String,
    pub company: Option<String>,
    pub owner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgendaEvent {
    pub id: String,
    pub name: String,
    pub owner: Option<String>,
    pub public: bool,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadCategory {
    pub id: String,
    pub name: String,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Download {
    pub id: String,
    pub name: String,
    pub category: String,
}

/// Every section's resources; each list is empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sections {
    pub projects: Vec<Project>,
    pub tasks: Vec<Task>,
    pub wiki_pages: Vec<WikiPage>,
    pub inventory_items: Vec<InventoryItem>,
    pub invoices: Vec<Invoice>,
    pub leads: Vec<Lead>,
    pub agenda_events: Vec<AgendaEvent>,
    pub download_categories: Vec<DownloadCategory>,
    pub downloads: Vec<Download>,
}

/// The domain of an email address: the part after the last `@`.
pub fn email_domain(email: &str) -> Option<&str> {
    email.rsplit_once('@').map(|(_, domain)| domain)
}
