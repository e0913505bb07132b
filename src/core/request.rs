//! Access questions as callers ask them, and their validation (access model §6).

use crate::flags::Flag;
use crate::model::{ALL_GROUPS, MAX_ID_BYTES, Status};
use crate::time::{Timestamp, TimestampError};

/// The actions of the access model: the twelve of §3, then the
/// service-desk sections of §8 (wire numbers 13 … 38 in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    View,
    Comment,
    Edit,
    Close,
    Delete,
    Reassign,
    Create,
    ManageAccess,
    CompanyView,
    CompanyEdit,
    CompanyManage,
    HasFlag,
    ProjectView,
    ProjectEdit,
    ProjectDelete,
    ProjectCreate,
    TaskView,
    TaskEdit,
    WikiView,
    WikiEdit,
    WikiManage,
    InventoryView,
    InventoryEdit,
    InventoryDelete,
    InventoryCreate,
    InvoiceView,
    InvoiceEdit,
    InvoiceDelete,
    LeadView,
    LeadEdit,
    LeadCreate,
    AgendaView,
    AgendaEdit,
    AgendaDelete,
    DownloadView,
    DownloadEdit,
    DownloadDelete,
    UserManage,
}

impl Action {
    pub const ALL: [Action; 38] = [
        Action::View,
        Action::Comment,
        Action::Edit,
        Action::Close,
        Action::Delete,
        Action::Reassign,
        Action::Create,
        Action::ManageAccess,
        Action::CompanyView,
        Action::CompanyEdit,
        Action::CompanyManage,
        Action::HasFlag,
        Action::ProjectView,
        Action::ProjectEdit,
        Action::ProjectDelete,
        Action::ProjectCreate,
        Action::TaskView,
        Action::TaskEdit,
        Action::WikiView,
        Action::WikiEdit,
        Action::WikiManage,
        Action::InventoryView,
        Action::InventoryEdit,
        Action::InventoryDelete,
        Action::InventoryCreate,
        Action::InvoiceView,
        Action::InvoiceEdit,
        Action::InvoiceDelete,
        Action::LeadView,
        Action::LeadEdit,
        Action::LeadCreate,
        Action::AgendaView,
        Action::AgendaEdit,
        Action::AgendaDelete,
        Action::DownloadView,
        Action::DownloadEdit,
        Action::DownloadDelete,
        Action::UserManage,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::View => "view",
            Action::Comment => "comment",
            Action::Edit => "edit",
            Action::Close => "close",
            Action::Delete => "delete",
            Action::Reassign => "reassign",
            Action::Create => "create",
            Action::ManageAccess => "manage_access",
            Action::CompanyView => "company_view",
            Action::CompanyEdit => "company_edit",
            Action::CompanyManage => "company_manage",
            Action::HasFlag => "has_flag",
            Action::ProjectView => "project_view",
            Action::ProjectEdit => "project_edit",
            Action::ProjectDelete => "project_delete",
            Action::ProjectCreate => "project_create",
            Action::TaskView => "task_view",
            Action::TaskEdit => "task_edit",
            Action::WikiView => "wiki_view",
            Action::WikiEdit => "wiki_edit",
            Action::WikiManage => "wiki_manage",
            Action::InventoryView => "inventory_view",
            Action::InventoryEdit => "inventory_edit",
            Action::InventoryDelete => "inventory_delete",
            Action::InventoryCreate => "inventory_create",
            Action::InvoiceView => "invoice_view",
            Action::InvoiceEdit => "invoice_edit",
            Action::InvoiceDelete => "invoice_delete",
            Action::LeadView => "lead_view",
            Action::LeadEdit => "lead_edit",
            Action::LeadCreate => "lead_create",
            Action::AgendaView => "agenda_view",
            Action::AgendaEdit => "agenda_edit",
            Action::AgendaDelete => "agenda_delete",
            Action::DownloadView => "download_view",
            Action::DownloadEdit => "download_edit",
            Action::DownloadDelete => "download_delete",
            Action::UserManage => "user_manage",
        }
    }

    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Actions on one ticket, which need `ticket`.
    pub fn is_ticket_action(self) -> bool {
        matches!(
            self,
            Action::View
                | Action::Comment
                | Action::Edit
                | Action::Close
                | Action::Delete
                | Action::Reassign
        )
    }

    /// The actions of the service-desk sections (access model §8), which
    /// name their resource in `resource_id`.
    pub fn is_section_action(self) -> bool {
        self.resource_kind().is_some()
            || matches!(
                self,
                Action::ProjectCreate
                    | Action::InventoryCreate
                    | Action::LeadCreate
                    | Action::WikiManage
                    | Action::UserManage
            )
    }

    /// Whether a section action needs `resource_id` (all but the three
    /// `_create` actions, which ignore its value).
    pub fn needs_resource(self) -> bool {
        self.is_section_action()
            && !matches!(
                self,
                Action::ProjectCreate | Action::InventoryCreate | Action::LeadCreate
            )
    }

    /// The kind of resource a section action names, if it names one of a
    /// listed kind (`wiki_manage` names a wiki page; `user_manage` a user).
    pub fn resource_kind(self) -> Option<crate::model::ResourceKind> {
        use crate::model::ResourceKind as K;
        Some(match self {
            Action::ProjectView | Action::ProjectEdit | Action::ProjectDelete => K::Project,
            Action::TaskView | Action::TaskEdit => K::Task,
            Action::WikiView | Action::WikiEdit | Action::WikiManage => K::WikiPage,
            Action::InventoryView | Action::InventoryEdit | Action::InventoryDelete => {
                K::InventoryItem
            }
            Action::InvoiceView | Action::InvoiceEdit | Action::InvoiceDelete => K::Invoice,
            Action::LeadView | Action::LeadEdit => K::Lead,
            Action::AgendaView | Action::AgendaEdit | Action::AgendaDelete => K::AgendaEvent,
            Action::DownloadView | Action::DownloadEdit | Action::DownloadDelete => K::Download,
            _ => return None,
        })
    }

    pub fn is_company_action(self) -> bool {
        matches!(
            self,
            Action::CompanyView | Action::CompanyEdit | Action::CompanyManage
        )
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The action as the caller sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ActionInput<'a> {
    #[default]
    Missing,
    /// A name that is no action, kept for the error message.
    Unknown(&'a str),
    /// A wire enum number that is no action.
    UnknownCode(i32),
    Known(Action),
}

/// An access question as received. Empty strings mean "not given", as on the
/// wire.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckRequest<'a> {
    pub user: &'a str,
    pub action: ActionInput<'a>,
    pub ticket: &'a str,
    pub organisation: &'a str,
    pub group: &'a str,
    pub company: &'a str,
    pub flag: &'a str,
    /// `resource_id`: the project, task, … or target user of a section
    /// action (access model §8); other actions ignore it.
    pub resource: &'a str,
    /// The ticket's attributes sent with the question (`api.md` §
    /// Additions): a ticket action is then decided on these, and `ticket`
    /// may be empty.
    pub inline: Option<InlineTicket<'a>>,
}

/// A ticket's attributes as a caller sends them; empty strings mean "not
/// given", as on the wire.
#[derive(Debug, Clone, Copy, Default)]
pub struct InlineTicket<'a> {
    pub requester: &'a str,
    pub organisation: &'a str,
    pub group: &'a str,
    pub assignee: &'a str,
    pub ccs: &'a [String],
    pub participants: &'a [String],
    /// Empty is `new`.
    pub status: &'a str,
    /// RFC 3339; empty is unknown.
    pub created_at: &'a str,
}

/// Inline attributes that passed validation.
#[derive(Debug, Clone, Copy)]
pub struct ValidInline<'a> {
    pub requester: &'a str,
    pub organisation: Option<&'a str>,
    pub group: Option<&'a str>,
    pub assignee: Option<&'a str>,
    pub ccs: &'a [String],
    pub participants: &'a [String],
    pub status: Status,
    pub created_at: Option<Timestamp>,
}

impl<'a> InlineTicket<'a> {
    /// Checks every attribute, naming it as `ticket.<field>`.
    fn validate(&self) -> Result<ValidInline<'a>, RequestError> {
        if self.requester.is_empty() {
            return Err(RequestError::MissingInlineRequester);
        }
        for (field, value) in [
            ("ticket.requester_id", self.requester),
            ("ticket.organisation_id", self.organisation),
            ("ticket.group_id", self.group),
            ("ticket.assignee_id", self.assignee),
        ] {
            long_id(field, value)?;
        }
        for (field, ids) in [
            ("ticket.cc_ids", self.ccs),
            ("ticket.participant_ids", self.participants),
        ] {
            for id in ids {
                long_id(field, id)?;
            }
        }
        if self.group == ALL_GROUPS {
            return Err(RequestError::InlineAllGroups);
        }
        let status = match self.status {
            "" => Status::New,
            name => {
                Status::parse(name).ok_or_else(|| RequestError::UnknownStatus(name.to_owned()))?
            }
        };
        let created_at = match self.created_at {
            "" => None,
            text => Some(
                text.parse()
                    .map_err(|e: TimestampError| RequestError::BadCreatedAt(e.to_string()))?,
            ),
        };
        Ok(ValidInline {
            requester: self.requester,
            organisation: given(self.organisation),
            group: given(self.group),
            assignee: given(self.assignee),
            ccs: self.ccs,
            participants: self.participants,
            status,
            created_at,
        })
    }
}

fn long_id(field: &'static str, value: &str) -> Result<(), RequestError> {
    if value.len() > MAX_ID_BYTES {
        return Err(RequestError::IdTooLong {
            field,
            len: value.len(),
        });
    }
    Ok(())
}

/// A malformed request: answered with an error naming the field, never with
/// a decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("user_id: must not be empty")]
    MissingUser,
    #[error("action: must be specified")]
    MissingAction,
    #[error("action: unknown action `{0}`")]
    UnknownAction(String),
    #[error("{field}: id is {len} bytes long, more than the limit of {max}", max = MAX_ID_BYTES)]
    IdTooLong { field: &'static str, len: usize },
    #[error("{field}: required by the {action} action")]
    MissingField { field: &'static str, action: Action },
    #[error("flag: unknown flag `{0}` (flags are upper-case names such as IR or IW)")]
    UnknownFlag(String),
    #[error("group_id: `*` is only allowed with has_flag")]
    AllGroupsNotAllowed,
    #[error("ticket.requester_id: must not be empty")]
    MissingInlineRequester,
    #[error("ticket.group_id: `*` names every group, not the group of a ticket")]
    InlineAllGroups,
    #[error(
        "ticket.status: unknown status `{0}`, expected one of {names}",
        names = Status::NAMES.join(", ")
    )]
    UnknownStatus(String),
    #[error("ticket.created_at: {0}")]
    BadCreatedAt(String),
}

impl RequestError {
    /// The request field at fault, as the wire contract names it.
    pub fn field(&self) -> &'static str {
        match self {
            RequestError::MissingUser => "user_id",
            RequestError::MissingAction | RequestError::UnknownAction(_) => "action",
            RequestError::IdTooLong { field, .. } | RequestError::MissingField { field, .. } => {
                field
            }
            RequestError::UnknownFlag(_) => "flag",
            RequestError::AllGroupsNotAllowed => "group_id",
            RequestError::MissingInlineRequester => "ticket.requester_id",
            RequestError::InlineAllGroups => "ticket.group_id",
            RequestError::UnknownStatus(_) => "ticket.status",
            RequestError::BadCreatedAt(_) => "ticket.created_at",
        }
    }

    /// What is wrong, without the field: for an edge that names the field
    /// in its own terms (`resource.properties.status` in AuthZEN).
    pub fn problem(&self) -> String {
        let text = self.to_string();
        match text.strip_prefix(self.field()) {
            Some(rest) => rest.trim_start_matches(": ").to_owned(),
            None => text,
        }
    }
}

/// The group a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupArg<'a> {
    All,
    Id(&'a str),
}

/// A well-formed request: every field the action needs is present.
#[derive(Debug, Clone, Copy)]
pub struct ValidRequest<'a> {
    pub user: &'a str,
    pub action: Action,
    pub ticket: Option<&'a str>,
    pub organisation: Option<&'a str>,
    pub group: Option<GroupArg<'a>>,
    pub company: Option<&'a str>,
    pub flag: Option<Flag>,
    /// The resource of a section action that names one.
    pub resource: Option<&'a str>,
    /// Only for ticket actions.
    pub inline: Option<ValidInline<'a>>,
}

fn given(value: &str) -> Option<&str> {
    (!value.is_empty()).then_some(value)
}

impl<'a> CheckRequest<'a> {
    /// Applies access model §6, in its order.
    pub fn validate(&self) -> Result<ValidRequest<'a>, RequestError> {
        if self.user.is_empty() {
            return Err(RequestError::MissingUser);
        }
        let action = match self.action {
            ActionInput::Missing => return Err(RequestError::MissingAction),
            ActionInput::Unknown(name) => return Err(RequestError::UnknownAction(name.to_owned())),
            ActionInput::UnknownCode(code) => {
                return Err(RequestError::UnknownAction(code.to_string()));
            }
            ActionInput::Known(action) => action,
        };
        for (field, value) in [
            ("user_id", self.user),
            ("ticket_id", self.ticket),
            ("organisation_id", self.organisation),
            ("group_id", self.group),
            ("company_id", self.company),
        ] {
            if value.len() > MAX_ID_BYTES {
                return Err(RequestError::IdTooLong {
                    field,
                    len: value.len(),
                });
            }
        }
        // Checked with the other ids (§8), on section actions only: the
        // actions of §3 ignore it whatever it holds.
        if action.is_section_action() && self.resource.len() > MAX_ID_BYTES {
            return Err(RequestError::IdTooLong {
                field: "resource_id",
                len: self.resource.len(),
            });
        }
        let need = |field: &'static str, value: &'a str| {
            given(value).ok_or(RequestError::MissingField { field, action })
        };
        // Attributes sent inline stand in for the stored ticket; other
        // actions ignore them, whatever they hold.
        let inline = match self.inline.filter(|_| action.is_ticket_action()) {
            Some(inline) => Some(inline.validate()?),
            None => {
                if action.is_ticket_action() {
                    need("ticket_id", self.ticket)?;
                }
                None
            }
        };
        match action {
            Action::Reassign => {
                need("group_id", self.group)?;
            }
            Action::ManageAccess => {
                need("organisation_id", self.organisation)?;
            }
            Action::HasFlag => {
                need("flag", self.flag)?;
                need("group_id", self.group)?;
            }
            _ if action.is_company_action() => {
                need("company_id", self.company)?;
            }
            _ if action.needs_resource() => {
                need("resource_id", self.resource)?;
            }
            _ => {}
        }
        let flag = match given(self.flag) {
            None => None,
            Some(name) => {
                Some(Flag::parse(name).ok_or_else(|| RequestError::UnknownFlag(name.to_owned()))?)
            }
        };
        let group = match given(self.group) {
            None => None,
            Some(ALL_GROUPS) if action == Action::HasFlag => Some(GroupArg::All),
            Some(ALL_GROUPS) => return Err(RequestError::AllGroupsNotAllowed),
            Some(id) => Some(GroupArg::Id(id)),
        };
        Ok(ValidRequest {
            user: self.user,
            action,
            ticket: given(self.ticket),
            organisation: given(self.organisation),
            group,
            company: given(self.company),
            flag,
            resource: given(self.resource).filter(|_| action.needs_resource()),
            inline,
        })
    }
}
