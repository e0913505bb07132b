//! The explorer's pages: search, a user (memberships with their
//! derivation, settings, effective flags with their grants, company
//! reach, visible tickets with the rule allowing each), a ticket (fields,
//! viewers with their rule), organisations, groups, profiles, companies,
//! and the question form. Relations come from the core (`members_of`,
//! `effective_flags`, `reach_via`), answers and lists from `app::Authz`;
//! nothing here decides.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use maud::{Markup, html};

use super::html::{self as h, Kind};
use super::{Console, Shared};
use crate::app::{Answer, AppError, AtRevision, Call, CheckOptions, Outcome, PageArgs};
use crate::core::{
    self, Action, ActionInput, CheckRequest, Decision, GrantReach, GroupFlags, Page, ReachVia,
    TicketFilter,
};
use crate::snapshot::{ALL, Idx, NONE, Snapshot, UserRow, Via, members_of};

/// Rows per page of the visible-ticket and viewer lists.
const PAGE_SIZE: u32 = 25;
/// Search hits shown per kind.
const HITS: usize = 20;

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct PageQuery {
    #[serde(default)]
    page: String,
}

/// The snapshot being served, or the page saying there is none yet.
async fn served(console: &Console) -> Result<Arc<Snapshot>, Response> {
    console.app.snapshot(0).await.map_err(|e| {
        h::status_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "No data yet",
            None,
            html! { p { "The service has no data to show: " (e.to_string()) } },
        )
    })
}

fn ok(title: &str, revision: u64, body: Markup) -> Response {
    Html(h::page(title, Some(revision), body).into_string()).into_response()
}

fn finish(call: Call<'_>, result: Result<(), &AppError>) {
    match result {
        Ok(()) => call.finish(
            Outcome::Answered(Answer::Ok),
            crate::app::StatusCode::Http(200),
        ),
        Err(e) => call.finish(
            Outcome::Failed {
                label: if e.is_invalid() {
                    "invalid_argument"
                } else {
                    "unavailable"
                },
                server_fault: false,
                description: &e.to_string(),
            },
            crate::app::StatusCode::Http(if e.is_invalid() { 400 } else { 503 }),
        ),
    }
}

pub(super) async fn no_such_page(State(console): Shared) -> Response {
    let revision = console.app.snapshot(0).await.ok().map(|s| s.revision());
    h::status_page(
        StatusCode::NOT_FOUND,
        "No such page",
        revision,
        html! { p { "Nothing is served at this address. " a href="/" { "Start from the search." } } },
    )
}

pub(super) async fn home(State(console): Shared) -> Response {
    let snap = match served(&console).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let stats = snap.stats();
    ok(
        "Explorer",
        snap.revision(),
        html! {
            p { "Search for a user, ticket, organisation or group by id or name, ask a question, or try a dataset in the playground." }
            form role="search" action="/search" method="get" {
                label for="home-q" { "Find" } " "
                input #home-q type="search" name="q" autofocus;
                " " button type="submit" { "Search" }
            }
            dl {
                dt { "users" } dd { (stats.users) }
                dt { "tickets" } dd { (stats.tickets) }
                dt { "organisations" } dd { (stats.organisations) }
                dt { "groups" } dd { (stats.groups) }
                dt { "profiles" } dd { (stats.profiles) }
                dt { "companies" } dd { (stats.companies) }
            }
        },
    )
}

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// Exact id first, then ids and names containing the text (any case).
fn hits<'a>(
    rows: impl Iterator<Item = (&'a str, Option<&'a str>)>,
    exact: Option<&'a str>,
    needle: &str,
) -> (Vec<(&'a str, Option<&'a str>)>, bool) {
    let lower = needle.to_lowercase();
    let mut out: Vec<(&str, Option<&str>)> = Vec::new();
    let mut more = false;
    if let Some(id) = exact {
        out.push((id, None));
    }
    for (id, name) in rows {
        if Some(id) == exact {
            if let Some(first) = out.first_mut() {
                first.1 = name;
            }
            continue;
        }
        let matches = id.to_lowercase().contains(&lower)
            || name.is_some_and(|n| n.to_lowercase().contains(&lower));
        if matches {
            if out.len() == HITS {
                more = true;
                break;
            }
            out.push((id, name));
        }
    }
    (out, more)
}

fn hit_list(kind: Kind, label: &str, found: &(Vec<(&str, Option<&str>)>, bool)) -> Markup {
    html! {
        h2 { (label) }
        @if found.0.is_empty() {
            p.none { "none" }
        } @else {
            ul.hits {
                @for (id, name) in &found.0 {
                    li { (h::link(kind, id)) @if let Some(n) = name { " " (n) } }
                }
            }
            @if found.1 { p.none { "more match; refine the search" } }
        }
    }
}

pub(super) async fn search(State(console): Shared, Query(q): Query<SearchQuery>) -> Response {
    let snap = match served(&console).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let needle = q.q.trim();
    if needle.is_empty() {
        return ok(
            "Search",
            snap.revision(),
            html! { p { "Type an id or part of a name." } },
        );
    }
    let users = hits(
        snap.users
            .live()
            .map(|(_, u)| (u.id.as_str(), u.name.as_deref())),
        snap.users.get(needle).map(|(_, u)| u.id.as_str()),
        needle,
    );
    // Tickets have no name, and there may be millions: exact id only.
    let tickets = (
        snap.tickets
            .get(needle)
            .map(|(_, t)| (t.id.as_str(), None))
            .into_iter()
            .collect::<Vec<_>>(),
        false,
    );
    let orgs = hits(
        snap.orgs
            .live()
            .map(|(_, o)| (o.id.as_str(), Some(&*o.name))),
        snap.orgs.get(needle).map(|(_, o)| o.id.as_str()),
        needle,
    );
    let groups = hits(
        snap.groups
            .live()
            .map(|(_, g)| (g.id.as_str(), Some(&*g.name))),
        snap.groups.get(needle).map(|(_, g)| g.id.as_str()),
        needle,
    );
    ok(
        &format!("Search: {needle}"),
        snap.revision(),
        html! {
            (hit_list(Kind::User, "Users", &users))
            (hit_list(Kind::Ticket, "Tickets", &tickets))
            (hit_list(Kind::Organisation, "Organisations", &orgs))
            (hit_list(Kind::Group, "Groups", &groups))
        },
    )
}

fn id_of(table_id: &str, idx: Idx) -> Option<&str> {
    (idx != NONE && !table_id.is_empty()).then_some(table_id)
}

fn org_id(snap: &Snapshot, idx: Idx) -> Option<&str> {
    id_of(snap.orgs.id(idx), idx)
}

fn group_id(snap: &Snapshot, idx: Idx) -> Option<&str> {
    id_of(snap.groups.id(idx), idx)
}

fn user_id(snap: &Snapshot, idx: Idx) -> Option<&str> {
    id_of(snap.users.id(idx), idx)
}

fn company_id(snap: &Snapshot, idx: Idx) -> Option<&str> {
    id_of(snap.companies.id(idx), idx)
}

/// How a membership is derived, with links to what it rests on.
fn via(snap: &Snapshot, user: &UserRow, org: Idx, via: Via) -> Markup {
    match via {
        Via::Explicit => html! { "explicit (listed on the user)" },
        Via::Domain { domain } => {
            let d = snap.orgs[org].domains.get(domain);
            html! {
                "by domain "
                @if let Some(d) = d { code { (d.name) } " since " (d.added_at) }
                " (user created " (user.created_at) ")"
            }
        }
        Via::Partnership {
            partner,
            domain,
            since,
        } => {
            let p = &snap.orgs[partner];
            html! {
                "through partnership " (h::link(Kind::Organisation, &p.id)) " → "
                (h::link(Kind::Organisation, snap.orgs.id(org)))
                " since " (since) ", by domain "
                @if let Some(d) = p.domains.get(domain) { code { (d.name) } }
                " of " (h::link(Kind::Organisation, &p.id))
            }
        }
    }
}

fn group_cell(snap: &Snapshot, group: Idx) -> Markup {
    if group == ALL {
        html! { code { "*" } " (every group)" }
    } else {
        h::link_opt(Kind::Group, group_id(snap, group))
    }
}

fn flags_table(snap: &Snapshot, rows: &[GroupFlags]) -> Markup {
    html! {
        div.scroll { table {
            thead { tr { th { "group" } th { "flags" } th { "from grants" } } }
            tbody {
                @for row in rows {
                    tr {
                        td { (group_cell(snap, row.group)) }
                        td { code { (row.flags) } }
                        td { ul {
                            @for s in &row.sources {
                                li {
                                    (h::link(Kind::Profile, snap.profiles.id(s.profile)))
                                    " (" code { (snap.profiles[s.profile].flags) } ") on "
                                    (group_cell(snap, s.granted))
                                    @match s.reach {
                                        GrantReach::Direct => "",
                                        GrantReach::All => ": * covers every group",
                                        GrantReach::Propagated => ": propagates to its descendants",
                                    }
                                }
                            }
                        } }
                    }
                }
            }
        } }
    }
}

/// The rule that lets each pair view (one batch, at `revision` or later).
async fn view_reasons(
    console: &Console,
    call: &Call<'_>,
    pairs: &[(&str, &str)],
    revision: u64,
) -> Result<Vec<Decision>, AppError> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let checks: Vec<(CheckRequest<'_>, CheckOptions)> = pairs
        .iter()
        .map(|(user, ticket)| {
            (
                CheckRequest {
                    user,
                    action: ActionInput::Known(Action::View),
                    ticket,
                    ..CheckRequest::default()
                },
                CheckOptions::default(),
            )
        })
        .collect();
    Ok(console
        .app
        .check_batch(call, &checks, revision)
        .await?
        .value)
}

/// The side of a view question a list holds fixed.
#[derive(Debug, Clone, Copy)]
enum Fixed<'a> {
    /// A user's visible tickets: the rows are tickets.
    User(&'a str),
    /// A ticket's viewers: the rows are users.
    Ticket(&'a str),
}

/// A listed page and, for each row, the decision that lets it view.
async fn with_reasons(
    console: &Console,
    call: &Call<'_>,
    listed: Result<AtRevision<Page>, AppError>,
    fixed: Fixed<'_>,
) -> Result<(AtRevision<Page>, Vec<Decision>), AppError> {
    let page = listed?;
    let pairs: Vec<(&str, &str)> = page
        .value
        .ids
        .iter()
        .map(|row| match fixed {
            Fixed::User(user) => (user, row.as_str()),
            Fixed::Ticket(ticket) => (row.as_str(), ticket),
        })
        .collect();
    let reasons = view_reasons(console, call, &pairs, page.revision).await?;
    Ok((page, reasons))
}

/// A listed page as a table of rows and the rule allowing each, with the
/// link to the next page.
fn reason_table(
    listed: &Result<(AtRevision<Page>, Vec<Decision>), AppError>,
    table: &str,
    kind: Kind,
    head: &str,
    base: &str,
) -> Markup {
    html! {
        @match listed {
            Err(e) => p.error { (e.to_string()) },
            Ok((page, reasons)) => {
                @if page.value.ids.is_empty() { p.none { "none" } } @else {
                    div.scroll { table id=(table) {
                        thead { tr { th { (head) } th { "allowed by" } } }
                        tbody { @for (row, d) in page.value.ids.iter().zip(reasons) {
                            tr { td { (h::link(kind, row)) } td { code { (d.reason) } } }
                        } }
                    } }
                }
                (next_link(base, page.value.next_page_token.as_deref()))
            }
        }
    }
}

fn next_link(base: &str, token: Option<&str>) -> Markup {
    html! {
        @if let Some(token) = token {
            p { a rel="next" href=(format!("{base}?page={}", h::query_value(token))) { "Next page" } }
        }
    }
}

pub(super) async fn user(
    State(console): Shared,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let snap = match served(&console).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some((uidx, row)) = snap.users.get(&id) else {
        return h::not_found("user", &id, snap.revision());
    };
    let call = Call::start(&console.calls, &headers);
    let listed = console
        .app
        .list_tickets(
            &call,
            &id,
            &TicketFilter::default(),
            PageArgs {
                size: PAGE_SIZE,
                token: &q.page,
            },
            snap.revision(),
        )
        .await;
    let listed = with_reasons(&console, &call, listed, Fixed::User(&id)).await;
    finish(call, listed.as_ref().map(|_| ()));
    let memberships = members_of(&snap, row);
    let flags = core::effective_flags(&snap, row);
    let reach: Vec<(Idx, ReachVia)> = snap
        .companies
        .live()
        .filter_map(|(c, _)| core::reach_via(&snap, uidx, row, c).map(|v| (c, v)))
        .collect();
    let manages: Vec<&str> = snap
        .orgs
        .live()
        .filter(|(_, o)| o.access_managers.contains(&uidx))
        .map(|(_, o)| o.id.as_str())
        .collect();
    let base = h::href(Kind::User, &id);
    let body = html! {
        dl {
            dt { "name" } dd { (row.name.as_deref().unwrap_or("")) }
            dt { "email" } dd { (row.email.as_deref().unwrap_or("")) }
            dt { "kind" } dd #kind { (row.kind) }
            dt { "state" } dd #state { @if row.suspended { span.deny { "suspended (denied everything)" } } @else { "active" } }
            dt { "created" } dd { (row.created_at) }
            dt { "ticket access (user setting)" } dd { code { (row.access) } }
            dt { "company" } dd { (h::link_opt(Kind::Company, company_id(&snap, row.company))) }
            dt { "company scoped" } dd { (row.company_scoped) }
            dt { "default organisation" } dd { (h::link_opt(Kind::Organisation, org_id(&snap, row.default_org))) }
            dt { "access manager of" } dd {
                @if manages.is_empty() { span.none { "none" } }
                @for o in &manages { (h::link(Kind::Organisation, o)) " " }
            }
        }
        h2 { "Organisation memberships" }
        @if memberships.is_empty() { p.none { "none" } } @else {
            div.scroll { table #memberships {
                thead { tr { th { "organisation" } th { "derived" } th { "organisation setting" } } }
                tbody { @for m in &memberships {
                    tr {
                        td { (h::link(Kind::Organisation, snap.orgs.id(m.org))) }
                        td { (via(&snap, row, m.org, m.via)) }
                        td { code { (snap.orgs[m.org].access) } }
                    }
                } }
            } }
        }
        h2 { "Effective flags" }
        @if flags.is_empty() {
            p.none { @if row.kind == crate::model::UserKind::Agent { "no grants" } @else { "only agents hold flags" } }
        } @else { (flags_table(&snap, &flags)) }
        h2 { "Company reach" }
        @if reach.is_empty() { p.none { "none" } } @else {
            ul { @for (c, v) in &reach {
                li {
                    (h::link(Kind::Company, snap.companies.id(*c))) ": "
                    @match v {
                        ReachVia::OwnCompany { through } if through == c => "the user's company",
                        ReachVia::OwnCompany { through } => { "below the user's company " (h::link(Kind::Company, snap.companies.id(*through))) },
                        ReachVia::Owned { through } if through == c => "owned by the user",
                        ReachVia::Owned { through } => { "below " (h::link(Kind::Company, snap.companies.id(*through))) ", owned by the user" },
                    }
                }
            } }
        }
        h2 { "Visible tickets" }
        (reason_table(&listed, "visible", Kind::Ticket, "ticket", &base))
        p { a href=(format!("/check?user={}&action=view", h::query_value(&id))) { "Ask a question about this user" } }
    };
    ok(&format!("User {id}"), snap.revision(), body)
}

pub(super) async fn ticket(
    State(console): Shared,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let snap = match served(&console).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some((_, row)) = snap.tickets.get(&id) else {
        return h::not_found("ticket", &id, snap.revision());
    };
    let call = Call::start(&console.calls, &headers);
    let listed = console
        .app
        .list_viewers(
            &call,
            &id,
            PageArgs {
                size: PAGE_SIZE,
                token: &q.page,
            },
            snap.revision(),
        )
        .await;
    let listed = with_reasons(&console, &call, listed, Fixed::Ticket(&id)).await;
    finish(call, listed.as_ref().map(|_| ()));
    let people = |list: &[Idx]| -> Markup {
        html! {
            @if list.is_empty() { span.none { "none" } }
            @for u in list { (h::link(Kind::User, snap.users.id(*u))) " " }
        }
    };
    let base = h::href(Kind::Ticket, &id);
    let body = html! {
        dl {
            dt { "created" } dd { (row.created_at) }
            dt { "status" } dd { (row.status) }
            dt { "requester" } dd { (h::link_opt(Kind::User, user_id(&snap, row.requester))) }
            dt { "organisation" } dd { (h::link_opt(Kind::Organisation, org_id(&snap, row.organisation))) }
            dt { "group" } dd { (h::link_opt(Kind::Group, group_id(&snap, row.group))) }
            dt { "assignee" } dd { (h::link_opt(Kind::User, user_id(&snap, row.assignee))) }
            dt { "CCs" } dd { (people(row.ccs())) }
            dt { "participants" } dd { (people(row.participants())) }
        }
        h2 { "Viewers" }
        (reason_table(&listed, "viewers", Kind::User, "user", &base))
        p { a href=(format!("/check?action=view&ticket={}", h::query_value(&id))) { "Ask a question about this ticket" } }
    };
    ok(&format!("Ticket {id}"), snap.revision(), body)
}

pub(super) async fn organisation(State(console): Shared, Path(id): Path<String>) -> Response {
    let snap = match served(&console).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some((_, row)) = snap.orgs.get(&id) else {
        return h::not_found("organisation", &id, snap.revision());
    };
    let shown: Vec<Idx> = row.members.iter().take(50).copied().collect();
    let body = html! {
        dl {
            dt { "name" } dd { (row.name) }
            dt { "ticket access" } dd { code { (row.access) } }
            dt { "access managers" } dd {
                @if row.access_managers.is_empty() { span.none { "none" } }
                @for u in &row.access_managers { (h::link(Kind::User, snap.users.id(*u))) " " }
            }
            dt { "tickets" } dd { (row.tickets.len()) }
            dt { "members" } dd { (row.members.len()) }
        }
        h2 { "Domains" }
        @if row.domains.is_empty() { p.none { "none" } }
        ul { @for d in &row.domains { li { code { (d.name) } " added " (d.added_at) } } }
        h2 { "Partnerships" }
        ul {
            @for (p, since) in &row.partners { li { "partner " (h::link(Kind::Organisation, snap.orgs.id(*p))) " since " (since) } }
            @for (c, since) in &row.clients { li { "partner of client " (h::link(Kind::Organisation, snap.orgs.id(*c))) " since " (since) } }
        }
        h2 { "Members" }
        @if shown.is_empty() { p.none { "none" } }
        ul { @for u in &shown { li { (h::link(Kind::User, snap.users.id(*u))) } } }
        @if row.members.len() > shown.len() { p.none { "first " (shown.len()) " of " (row.members.len()) } }
    };
    ok(&format!("Organisation {id}"), snap.revision(), body)
}

pub(super) async fn group(State(console): Shared, Path(id): Path<String>) -> Response {
    let snap = match served(&console).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some((_, row)) = snap.groups.get(&id) else {
        return h::not_found("group", &id, snap.revision());
    };
    let body = html! {
        dl {
            dt { "name" } dd { (row.name) }
            dt { "parent" } dd { (h::link_opt(Kind::Group, group_id(&snap, row.parent))) }
            dt { "children" } dd {
                @if row.children.is_empty() { span.none { "none" } }
                @for c in &row.children { (h::link(Kind::Group, snap.groups.id(*c))) " " }
            }
            dt { "propagate" } dd { (row.propagate) }
            dt { "open ticket limit" } dd { (row.open_ticket_limit) @if row.enforce_open_limit { " (enforced)" } }
            dt { "total ticket limit" } dd { (row.total_ticket_limit) }
            dt { "tickets" } dd { (row.tickets.len()) }
        }
    };
    ok(&format!("Group {id}"), snap.revision(), body)
}

pub(super) async fn profile(State(console): Shared, Path(id): Path<String>) -> Response {
    let snap = match served(&console).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some((_, row)) = snap.profiles.get(&id) else {
        return h::not_found("profile", &id, snap.revision());
    };
    let body = html! {
        dl {
            dt { "name" } dd { (row.name) }
            dt { "flags" } dd { code { (row.flags) } }
            dt { "holders" } dd { (row.grantees.len()) }
        }
    };
    ok(&format!("Profile {id}"), snap.revision(), body)
}

pub(super) async fn company(State(console): Shared, Path(id): Path<String>) -> Response {
    let snap = match served(&console).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some((_, row)) = snap.companies.get(&id) else {
        return h::not_found("company", &id, snap.revision());
    };
    let body = html! {
        dl {
            dt { "name" } dd { (row.name) }
            dt { "parent" } dd { (h::link_opt(Kind::Company, company_id(&snap, row.parent))) }
            dt { "owner" } dd { (h::link_opt(Kind::User, user_id(&snap, row.owner))) }
        }
    };
    ok(&format!("Company {id}"), snap.revision(), body)
}

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct Question {
    #[serde(default)]
    user: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    ticket: String,
    #[serde(default)]
    organisation: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    company: String,
    #[serde(default)]
    flag: String,
    #[serde(default)]
    resource: String,
}

fn question_form(q: &Question) -> Markup {
    let field = |name: &str, label: &str, value: &str| {
        html! { label { (label) input type="text" name=(name) value=(value); } }
    };
    html! {
        form #question method="get" action="/check" {
            div.form-grid {
                (field("user", "user", &q.user))
                label { "action"
                    select name="action" {
                        @for a in Action::ALL {
                            option value=(a.name()) selected[a.name() == q.action] { (a.name()) }
                        }
                    }
                }
                (field("ticket", "ticket", &q.ticket))
                (field("organisation", "organisation", &q.organisation))
                (field("group", "group", &q.group))
                (field("company", "company", &q.company))
                (field("flag", "flag", &q.flag))
                (field("resource", "resource", &q.resource))
            }
            div.actions { button type="submit" { "Ask" } }
        }
    }
}

/// What the answer rests on, as links: the user's memberships in the
/// organisation involved and the grants that give flags on the group.
fn behind(snap: &Snapshot, q: &Question) -> Markup {
    let Some((_, user)) = snap.users.get(&q.user) else {
        return html! {};
    };
    let ticket = snap.tickets.get(&q.ticket).map(|(_, t)| t);
    let org = match ticket {
        Some(t) if q.organisation.is_empty() => t.organisation,
        _ => snap.orgs.lookup(&q.organisation).unwrap_or(NONE),
    };
    let group = match (ticket, snap.groups.lookup(&q.group)) {
        (_, Some(g)) => Some(g),
        (Some(t), None) => Some(t.group),
        (None, None) => (q.group == "*").then_some(ALL),
    };
    let memberships: Vec<_> = members_of(snap, user)
        .into_iter()
        .filter(|m| m.org == org)
        .collect();
    let flags: Vec<GroupFlags> = core::effective_flags(snap, user)
        .into_iter()
        .filter(|f| Some(f.group) == group || (group == Some(NONE) && f.group == ALL))
        .collect();
    html! {
        h2 { "Behind this answer" }
        ul #behind {
            li { "user " (h::link(Kind::User, &user.id)) " (" (user.kind) @if user.suspended { ", suspended" } ")" }
            @if let Some(t) = ticket {
                li { "ticket " (h::link(Kind::Ticket, &t.id)) ", requester " (h::link_opt(Kind::User, user_id(snap, t.requester))) }
            }
            @if let Some(o) = org_id(snap, org) {
                li {
                    "organisation " (h::link(Kind::Organisation, o)) " (" code { (snap.orgs[org].access) } "): "
                    @if memberships.is_empty() { "the user is not a member" }
                    @for m in &memberships { "member " (via(snap, user, m.org, m.via)) "; " }
                }
            }
            @if let Some(c) = snap.companies.get(&q.company).map(|(_, c)| c) {
                li { "company " (h::link(Kind::Company, &c.id)) }
            }
        }
        @if !flags.is_empty() { (flags_table(snap, &flags)) }
    }
}

pub(super) async fn check(
    State(console): Shared,
    Query(q): Query<Question>,
    headers: HeaderMap,
) -> Response {
    let snap = match served(&console).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if q.user.is_empty() && q.ticket.is_empty() {
        return ok("Question", snap.revision(), question_form(&q));
    }
    let request = CheckRequest {
        user: &q.user,
        action: match q.action.as_str() {
            "" => ActionInput::Missing,
            name => Action::parse(name).map_or(ActionInput::Unknown(name), ActionInput::Known),
        },
        ticket: &q.ticket,
        organisation: &q.organisation,
        group: &q.group,
        company: &q.company,
        flag: &q.flag,
        resource: &q.resource,
        inline: None,
    };
    let call = Call::start(&console.calls, &headers);
    let answer = console
        .app
        .check(
            &call,
            request,
            CheckOptions {
                min_revision: snap.revision(),
                explain: true,
            },
        )
        .await;
    finish(call, answer.as_ref().map(|_| ()));
    let (status, body) = match &answer {
        Ok(at) => {
            let d = &at.value;
            (
                StatusCode::OK,
                html! {
                    (question_form(&q))
                    section #answer aria-live="polite" {
                        h2 { "Answer" }
                        p {
                            @if d.allowed { span.allow #verdict { "allowed" } } @else { span.deny #verdict { "denied" } }
                            " by " code #reason { (d.reason) }
                            @if let Some(w) = d.warning { ", warning " code { (w) } }
                            " at revision " (at.revision)
                        }
                        h3 { "Explanation" }
                        ol #explanation { @for step in &d.explanation { li { (step) } } }
                    }
                    (behind(&snap, &q))
                },
            )
        }
        Err(e) => (
            if e.is_invalid() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            },
            html! {
                (question_form(&q))
                p.error #answer role="alert" { "Not a valid question: " (e.to_string()) }
            },
        ),
    };
    h::status_page(status, "Question", Some(snap.revision()), body)
}
