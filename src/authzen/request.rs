//! AuthZEN request bodies to domain requests: the subject, action and
//! resource of an evaluation to a `CheckRequest` by the table of the HTTP
//! contract § 2 (a ticket sent inline as `resource.properties`) and, for
//! the service-desk sections, by § 4; the defaults of `evaluations`, and
//! the searches' filters and pages. Every
//! problem names its member, the domain's own validation included (its
//! field names renamed to the members that carried them).

use serde_json::{Map, Value};

use super::error::AuthzenError;
use super::json::{
    At, array, boolean, each, get, object, required_object, required_text, string, strings, text,
    unsigned,
};
use crate::app::{AppError, BatchCheck, CheckOptions, MAX_BATCH, PageArgs, Until, optional_id};
use crate::core::{
    Action, ActionInput, CheckRequest, DEFAULT_PAGE_SIZE, InlineTicket, MAX_PAGE_SIZE, TicketFilter,
};
use crate::model::{ResourceKind, Status as TicketStatus};

/// The resource types of the contract's tables (§ 2, then § 4).
const TYPES: &str = "`ticket`, `organisation`, `company`, `group`, `project`, `task`, `wiki_page`, \
     `inventory_item`, `invoice`, `lead`, `agenda_event`, `download`, `user`";

/// The resource types of the service-desk sections (HTTP contract § 4),
/// each with the prefix its access-model actions carry: `action.name` is
/// the action without it (`project_view` is `view` on a `project`).
const SECTION_TYPES: [(&str, &str); 9] = [
    ("project", "project_"),
    ("task", "task_"),
    ("wiki_page", "wiki_"),
    ("inventory_item", "inventory_"),
    ("invoice", "invoice_"),
    ("lead", "lead_"),
    ("agenda_event", "agenda_"),
    ("download", "download_"),
    ("user", "user_"),
];

/// The action-name prefix of a section resource type.
fn section_prefix(kind: &str) -> Option<&'static str> {
    SECTION_TYPES
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, prefix)| *prefix)
}

/// The section action `name` is on resource type `kind`, if it is one.
fn section_action(kind: &str, name: &str) -> Option<Option<Action>> {
    let prefix = section_prefix(kind)?;
    Some(
        Action::ALL
            .into_iter()
            .filter(|a| a.is_section_action())
            .find(|a| a.name().strip_prefix(prefix) == Some(name)),
    )
}

/// The actions action search answers on a section resource type, in the
/// order of the `Action` enum, with their AuthZEN names: every action of
/// the type but its `_create`, which names no resource.
fn section_actions(kind: &str) -> Option<Vec<(Action, &'static str)>> {
    let prefix = section_prefix(kind)?;
    Some(
        Action::ALL
            .into_iter()
            .filter(|a| a.needs_resource())
            .filter_map(|a| Some((a, a.name().strip_prefix(prefix)?)))
            .collect(),
    )
}

/// The actions action search answers, in its order.
const TICKET_ACTIONS: [Action; 5] = [
    Action::View,
    Action::Comment,
    Action::Edit,
    Action::Close,
    Action::Delete,
];

/// One evaluation, ready for the application service.
#[derive(Debug, Clone)]
pub struct Evaluation<'v> {
    /// The question without its inline ticket, which `inline` holds.
    request: CheckRequest<'v>,
    inline: Option<Inline<'v>>,
    pub options: CheckOptions,
}

impl BatchCheck for Evaluation<'_> {
    fn request(&self) -> CheckRequest<'_> {
        CheckRequest {
            inline: self.inline.as_ref().map(Inline::ticket),
            ..self.request
        }
    }

    fn options(&self) -> CheckOptions {
        self.options
    }
}

/// A ticket sent inline as `resource.properties`: the core borrows its
/// lists as `String`s, so they are copied out of the JSON.
#[derive(Debug, Clone)]
struct Inline<'v> {
    requester: &'v str,
    organisation: &'v str,
    group: &'v str,
    assignee: &'v str,
    ccs: Vec<String>,
    participants: Vec<String>,
    status: &'v str,
    created_at: &'v str,
}

impl Inline<'_> {
    fn ticket(&self) -> InlineTicket<'_> {
        InlineTicket {
            requester: self.requester,
            organisation: self.organisation,
            group: self.group,
            assignee: self.assignee,
            ccs: &self.ccs,
            participants: &self.participants,
            status: self.status,
            created_at: self.created_at,
        }
    }
}

/// The ticket sent inline, if `properties` has a `requester` member.
fn inline<'v>(
    properties: Option<&'v Map<String, Value>>,
    prefix: &str,
) -> Result<Option<Inline<'v>>, AuthzenError> {
    let at = At::new(prefix, "");
    // The member makes the ticket inline, whatever it holds: `null` or
    // `""` is then a missing requester (a 400), never the stored ticket.
    if !properties.is_some_and(|p| p.contains_key("requester")) {
        return Ok(None);
    }
    let requester = string(properties, at.at("resource.properties.requester"))?.unwrap_or("");
    let owned = |path| -> Result<Vec<String>, AuthzenError> {
        Ok(strings(properties, at.at(path))?
            .into_iter()
            .map(str::to_owned)
            .collect())
    };
    Ok(Some(Inline {
        requester,
        organisation: text(properties, at.at("resource.properties.organisation"))?,
        group: text(properties, at.at("resource.properties.group"))?,
        assignee: text(properties, at.at("resource.properties.assignee"))?,
        ccs: owned("resource.properties.ccs")?,
        participants: owned("resource.properties.participants")?,
        status: text(properties, at.at("resource.properties.status"))?,
        created_at: text(properties, at.at("resource.properties.created_at"))?,
    }))
}

/// The four members of an evaluation, each possibly absent.
#[derive(Debug, Clone, Copy, Default)]
struct Members<'v> {
    subject: Option<&'v Value>,
    action: Option<&'v Value>,
    resource: Option<&'v Value>,
    context: Option<&'v Value>,
    /// The top-level `context` under an item's own: its members fill in
    /// what the item's leaves out, so that an item that only asks for an
    /// explanation still waits for the request's `min_revision`.
    context_defaults: Option<&'v Value>,
}

impl<'v> Members<'v> {
    fn of(object: &'v Map<String, Value>) -> Self {
        // `null` is absent, so that it falls back to a default.
        let get = |key| object.get(key).filter(|v| !v.is_null());
        Self {
            subject: get("subject"),
            action: get("action"),
            resource: get("resource"),
            context: get("context"),
            context_defaults: None,
        }
    }

    /// These members, each absent one taken from `defaults`.
    fn over(self, defaults: Members<'v>) -> Self {
        Self {
            subject: self.subject.or(defaults.subject),
            action: self.action.or(defaults.action),
            resource: self.resource.or(defaults.resource),
            context: self.context.or(defaults.context),
            context_defaults: self.context.and(defaults.context),
        }
    }
}

fn root(body: &Value) -> Option<&Map<String, Value>> {
    body.as_object()
}

/// `POST /access/v1/evaluation`.
pub fn evaluation(body: &Value) -> Result<Evaluation<'_>, AuthzenError> {
    let members = root(body).map(Members::of).unwrap_or_default();
    evaluate(members, "")
}

/// `POST /access/v1/evaluations`: every evaluation, and where to stop.
#[derive(Debug)]
pub struct Evaluations<'v> {
    pub evaluations: Vec<Evaluation<'v>>,
    pub until: Until,
}

pub fn evaluations(body: &Value) -> Result<Evaluations<'_>, AuthzenError> {
    let root = root(body);
    let defaults = root.map(Members::of).unwrap_or_default();
    let options = object(get(root, At::new("", "options")), At::new("", "options"))?;
    let until = match string(options, At::new("", "options.evaluations_semantic"))? {
        None | Some("execute_all") => Until::All,
        Some("deny_on_first_deny") => Until::FirstDeny,
        Some("permit_on_first_permit") => Until::FirstPermit,
        Some(other) => {
            return Err(At::new("", "options.evaluations_semantic").invalid(format!(
                "unknown semantic `{other}`, expected one of execute_all, deny_on_first_deny, permit_on_first_permit"
            )));
        }
    };
    let at = At::new("", "evaluations");
    let items = array(root, at)?;
    if items.len() > MAX_BATCH {
        return Err(at.invalid(format!(
            "a request holds 1 to {MAX_BATCH} evaluations, not {}",
            items.len()
        )));
    }
    if items.is_empty() {
        return Ok(Evaluations {
            evaluations: vec![evaluate(defaults, "")?],
            until,
        });
    }
    let mut evaluations = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let own = required_object(Some(item), at.element(i))?;
        let prefix = format!("evaluations[{i}].");
        evaluations.push(evaluate(Members::of(own).over(defaults), &prefix)?);
    }
    Ok(Evaluations { evaluations, until })
}

/// The user a subject names.
fn subject<'v>(value: Option<&'v Value>, prefix: &str) -> Result<&'v str, AuthzenError> {
    let at = At::new(prefix, "subject");
    let subject = required_object(value, at)?;
    let kind = at.at("subject.type");
    match string(Some(subject), kind)? {
        Some("user") => {}
        Some(other) => {
            return Err(kind.invalid(format!("unknown subject type `{other}`, expected `user`")));
        }
        None => return Err(kind.invalid("required (`user`)")),
    }
    text(Some(subject), at.at("subject.id"))
}

/// A resource's type, id and properties.
struct Resource<'v> {
    kind: &'v str,
    id: &'v str,
    properties: Option<&'v Map<String, Value>>,
}

fn resource<'v>(value: Option<&'v Value>, prefix: &str) -> Result<Resource<'v>, AuthzenError> {
    let at = At::new(prefix, "resource");
    let resource = required_object(value, at)?;
    Ok(Resource {
        kind: required_text(Some(resource), at.at("resource.type"))?,
        id: text(Some(resource), at.at("resource.id"))?,
        properties: object(
            get(Some(resource), at.at("resource.properties")),
            at.at("resource.properties"),
        )?,
    })
}

/// An action's name and properties.
struct ActionMember<'v> {
    name: &'v str,
    properties: Option<&'v Map<String, Value>>,
}

fn action<'v>(value: Option<&'v Value>, prefix: &str) -> Result<ActionMember<'v>, AuthzenError> {
    let at = At::new(prefix, "action");
    let action = required_object(value, at)?;
    Ok(ActionMember {
        name: required_text(Some(action), at.at("action.name"))?,
        properties: object(
            get(Some(action), at.at("action.properties")),
            at.at("action.properties"),
        )?,
    })
}

/// The access-model action of a resource type and an action name.
fn action_of(kind: &str, name: &str, prefix: &str) -> Result<Action, AuthzenError> {
    let action = match kind {
        "ticket" => match name {
            "create" => Some(Action::Create),
            _ => Action::parse(name).filter(|a| a.is_ticket_action()),
        },
        "organisation" => (name == "manage_access").then_some(Action::ManageAccess),
        "company" => match name {
            "view" => Some(Action::CompanyView),
            "edit" => Some(Action::CompanyEdit),
            "manage" => Some(Action::CompanyManage),
            _ => None,
        },
        "group" => (name == "has_flag").then_some(Action::HasFlag),
        other if section_prefix(other).is_some() => section_action(other, name).flatten(),
        other => {
            return Err(At::new(prefix, "resource.type").invalid(format!(
                "unknown resource type `{other}`, expected one of {TYPES}"
            )));
        }
    };
    action.ok_or_else(|| {
        At::new(prefix, "action.name").invalid(format!(
            "unknown action `{name}` for resource type `{kind}`"
        ))
    })
}

/// The member that carries a domain request field for `action`.
fn member_of(action: Action, field: &str) -> &'static str {
    match field {
        "user_id" => "subject.id",
        "action" => "action.name",
        "flag" => "action.properties.flag",
        "organisation_id" if action == Action::Create => "resource.properties.organisation",
        "group_id" if action == Action::Create => "resource.properties.group",
        "group_id" if action == Action::Reassign => "action.properties.group",
        "ticket.requester_id" => "resource.properties.requester",
        "ticket.organisation_id" => "resource.properties.organisation",
        "ticket.group_id" => "resource.properties.group",
        "ticket.assignee_id" => "resource.properties.assignee",
        "ticket.cc_ids" => "resource.properties.ccs",
        "ticket.participant_ids" => "resource.properties.participants",
        "ticket.status" => "resource.properties.status",
        "ticket.created_at" => "resource.properties.created_at",
        _ => "resource.id",
    }
}

fn context(value: Option<&Value>, prefix: &str) -> Result<CheckOptions, AuthzenError> {
    let (min_revision, explain) = context_members(value, prefix)?;
    Ok(CheckOptions {
        min_revision: min_revision.unwrap_or(0),
        explain: explain.unwrap_or(false),
    })
}

/// `min_revision` and `explain` of a `context`, each if given.
fn context_members(
    value: Option<&Value>,
    prefix: &str,
) -> Result<(Option<u64>, Option<bool>), AuthzenError> {
    let at = At::new(prefix, "context");
    let context = object(value, at)?;
    Ok((
        unsigned(context, at.at("context.min_revision"))?,
        boolean(context, at.at("context.explain"))?,
    ))
}

/// An evaluation's options: its own `context`, members it leaves out
/// taken from the top-level one.
fn options(m: &Members<'_>, prefix: &str) -> Result<CheckOptions, AuthzenError> {
    let (min_revision, explain) = context_members(m.context, prefix)?;
    let (default_revision, default_explain) = match m.context_defaults {
        Some(defaults) => context_members(Some(defaults), prefix)?,
        None => (None, None),
    };
    Ok(CheckOptions {
        min_revision: min_revision.or(default_revision).unwrap_or(0),
        explain: explain.or(default_explain).unwrap_or(false),
    })
}

/// One evaluation of resolved members; `prefix` starts every path.
fn evaluate<'v>(m: Members<'v>, prefix: &str) -> Result<Evaluation<'v>, AuthzenError> {
    let user = subject(m.subject, prefix)?;
    let resource = resource(m.resource, prefix)?;
    let ActionMember { name, properties } = action(m.action, prefix)?;
    let action = action_of(resource.kind, name, prefix)?;
    let at = At::new(prefix, "");
    let mut request = CheckRequest {
        user,
        action: ActionInput::Known(action),
        ..CheckRequest::default()
    };
    let inline = if action.is_ticket_action() {
        inline(resource.properties, prefix)?
    } else {
        None
    };
    match action {
        Action::Create => {
            let props = resource.properties;
            request.organisation = text(props, at.at("resource.properties.organisation"))?;
            request.group = text(props, at.at("resource.properties.group"))?;
        }
        Action::Reassign => {
            request.ticket = resource.id;
            request.group = text(properties, at.at("action.properties.group"))?;
        }
        Action::ManageAccess => request.organisation = resource.id,
        Action::HasFlag => {
            request.group = resource.id;
            request.flag = text(properties, at.at("action.properties.flag"))?;
        }
        a if a.is_company_action() => request.company = resource.id,
        // The `_create` actions ignore the id's value (any will do), as
        // the core does; its length is still held to the ids' limit.
        a if a.is_section_action() => request.resource = resource.id,
        _ => request.ticket = resource.id,
    }
    let evaluation = Evaluation {
        request,
        inline,
        options: options(&m, prefix)?,
    };
    validate(&evaluation, action, prefix)?;
    Ok(evaluation)
}

/// The domain's own validation, its errors naming members.
fn validate(evaluation: &Evaluation<'_>, action: Action, prefix: &str) -> Result<(), AuthzenError> {
    evaluation.request().validate().map(|_| ()).map_err(|e| {
        AuthzenError::from_app(AppError::Request(e), |field| {
            format!("{prefix}{}", member_of(action, field))
        })
    })
}

/// A search's page.
fn page<'v>(root: Option<&'v Map<String, Value>>) -> Result<PageArgs<'v>, AuthzenError> {
    let at = At::new("", "page");
    let page = object(get(root, at), at)?;
    let limit = at.at("page.limit");
    let size = match unsigned(page, limit)? {
        None => DEFAULT_PAGE_SIZE,
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| limit.invalid(format!("must be 1 to {MAX_PAGE_SIZE}, not {n}")))?,
    };
    Ok(PageArgs {
        size,
        token: text(page, at.at("page.token"))?,
    })
}

/// The member that carries a list request's field.
pub fn list_member(field: &str) -> String {
    match field {
        "user_id" => "subject.id",
        "ticket_id" => "resource.id",
        "organisation_id" => "resource.properties.organisation",
        "group_id" => "resource.properties.group",
        "statuses" => "resource.properties.statuses",
        "page_size" => "page.limit",
        "page_token" => "page.token",
        other => other,
    }
    .to_owned()
}

fn list_error(e: AppError) -> AuthzenError {
    AuthzenError::from_app(e, list_member)
}

/// A search answers `view` on tickets only.
fn view_of_tickets(root: Option<&Map<String, Value>>, what: &str) -> Result<(), AuthzenError> {
    let name = action(get(root, At::new("", "action")), "")?.name;
    if name != "view" {
        return Err(At::new("", "action.name")
            .invalid(format!("{what} search answers `view` only, not `{name}`")));
    }
    Ok(())
}

fn ticket_resource<'v>(
    root: Option<&'v Map<String, Value>>,
    what: &str,
) -> Result<Resource<'v>, AuthzenError> {
    let resource = resource(get(root, At::new("", "resource")), "")?;
    if resource.kind != "ticket" {
        return Err(At::new("", "resource.type").invalid(format!(
            "{what} search answers on `ticket` resources only, not `{}`",
            resource.kind
        )));
    }
    Ok(resource)
}

fn min_revision(root: Option<&Map<String, Value>>) -> Result<u64, AuthzenError> {
    Ok(context(get(root, At::new("", "context")), "")?.min_revision)
}

/// What a resource search lists: tickets with a filter, or the resources
/// of one section kind.
#[derive(Debug)]
pub enum Searched {
    Tickets(TicketFilter),
    Sections(ResourceKind),
}

/// `POST /access/v1/search/resource`.
#[derive(Debug)]
pub struct ResourceSearch<'v> {
    pub user: &'v str,
    pub searched: Searched,
    pub page: PageArgs<'v>,
    pub min_revision: u64,
}

pub fn search_resource(body: &Value) -> Result<ResourceSearch<'_>, AuthzenError> {
    let root = root(body);
    let user = subject(get(root, At::new("", "subject")), "")?;
    view_of_tickets(root, "resource")?;
    let resource = resource(get(root, At::new("", "resource")), "")?;
    if resource.kind != "ticket" {
        let kind = ResourceKind::parse(resource.kind).ok_or_else(|| {
            At::new("", "resource.type").invalid(format!(
                "resource search answers on `ticket` and the section types ({}), not `{}`",
                ResourceKind::NAMES.join(", "),
                resource.kind
            ))
        })?;
        crate::app::required_id("subject.id", user).map_err(list_error)?;
        return Ok(ResourceSearch {
            user,
            searched: Searched::Sections(kind),
            page: page(root)?,
            min_revision: min_revision(root)?,
        });
    }
    let props = resource.properties;
    let at = At::new("", "");
    let organisation = text(props, at.at("resource.properties.organisation"))?;
    let group = text(props, at.at("resource.properties.group"))?;
    let statuses_at = at.at("resource.properties.statuses");
    let statuses = each(&strings(props, statuses_at)?, statuses_at, |s| {
        TicketStatus::parse(s).ok_or_else(|| {
            format!(
                "unknown status `{s}`, expected one of {}",
                TicketStatus::NAMES.join(", ")
            )
        })
    })?;
    crate::app::required_id("subject.id", user).map_err(list_error)?;
    optional_id("resource.properties.organisation", organisation).map_err(list_error)?;
    optional_id("resource.properties.group", group).map_err(list_error)?;
    let given = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Ok(ResourceSearch {
        user,
        searched: Searched::Tickets(TicketFilter {
            organisation: given(organisation),
            group: given(group),
            statuses,
        }),
        page: page(root)?,
        min_revision: min_revision(root)?,
    })
}

/// `POST /access/v1/search/subject`.
#[derive(Debug)]
pub struct SubjectSearch<'v> {
    pub ticket: &'v str,
    pub page: PageArgs<'v>,
    pub min_revision: u64,
}

pub fn search_subject(body: &Value) -> Result<SubjectSearch<'_>, AuthzenError> {
    let root = root(body);
    // The subject says which kind of subject is sought; its id is ignored.
    subject(get(root, At::new("", "subject")), "")?;
    view_of_tickets(root, "subject")?;
    let resource = ticket_resource(root, "subject")?;
    crate::app::required_id("resource.id", resource.id).map_err(list_error)?;
    Ok(SubjectSearch {
        ticket: resource.id,
        page: page(root)?,
        min_revision: min_revision(root)?,
    })
}

/// `POST /access/v1/search/action`: the actions asked about, each with
/// its AuthZEN name, as evaluations in the answer's order.
#[derive(Debug)]
pub struct ActionSearch<'v> {
    pub evaluations: Vec<Evaluation<'v>>,
    pub names: Vec<&'static str>,
}

/// The five ticket actions of one subject on one ticket, or the actions of
/// a section resource's kind but its `_create` (HTTP contract § 4).
pub fn search_action(body: &Value) -> Result<ActionSearch<'_>, AuthzenError> {
    let root = root(body);
    let user = subject(get(root, At::new("", "subject")), "")?;
    let resource = resource(get(root, At::new("", "resource")), "")?;
    let options = CheckOptions {
        min_revision: min_revision(root)?,
        explain: false,
    };
    let (actions, inline) = match section_actions(resource.kind) {
        Some(actions) => (actions, None),
        None if resource.kind == "ticket" => (
            TICKET_ACTIONS.iter().map(|&a| (a, a.name())).collect(),
            inline(resource.properties, "")?,
        ),
        None => {
            return Err(At::new("", "resource.type").invalid(format!(
                "action search answers on `ticket` and the section types ({}, user), not `{}`",
                ResourceKind::NAMES.join(", "),
                resource.kind
            )));
        }
    };
    let evaluations: Vec<Evaluation<'_>> = actions
        .iter()
        .map(|&(action, _)| {
            let mut request = CheckRequest {
                user,
                action: ActionInput::Known(action),
                ..CheckRequest::default()
            };
            if action.is_section_action() {
                request.resource = resource.id;
            } else {
                request.ticket = resource.id;
            }
            Evaluation {
                request,
                inline: inline.clone(),
                options,
            }
        })
        .collect();
    // The actions of one type differ only in the action, which no check
    // below depends on; every type has at least one.
    if let (Some(first), Some(&(action, _))) = (evaluations.first(), actions.first()) {
        validate(first, action, "")?;
    }
    Ok(ActionSearch {
        evaluations,
        names: actions.into_iter().map(|(_, name)| name).collect(),
    })
}
