//! The pages' frame and small pieces: the layout (navigation, search box,
//! the served revision), links to entities by id, status pages. maud
//! escapes every interpolated string, so ids and names from the data are
//! text, never markup.

use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;
use maud::{DOCTYPE, Markup, html};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What a path segment or query value escapes: all but RFC 3986's
/// unreserved characters.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The kinds of entity a page exists for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Ticket,
    Organisation,
    Group,
    Profile,
    Company,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::User => "/users/",
            Kind::Ticket => "/tickets/",
            Kind::Organisation => "/orgs/",
            Kind::Group => "/groups/",
            Kind::Profile => "/profiles/",
            Kind::Company => "/companies/",
        }
    }
}

/// One path segment, percent-encoded (ids may hold `/`, `?`, `#`).
pub fn segment(id: &str) -> String {
    utf8_percent_encode(id, ESCAPED).to_string()
}

/// A query value, percent-encoded.
pub fn query_value(value: &str) -> String {
    segment(value)
}

/// The page of an entity.
pub fn href(kind: Kind, id: &str) -> String {
    format!("{}{}", kind.prefix(), segment(id))
}

/// A link to an entity's page, its id as the text.
pub fn link(kind: Kind, id: &str) -> Markup {
    html! { a href=(href(kind, id)) { code { (id) } } }
}

/// A link to an entity by handle-resolved id, or a dash for none.
pub fn link_opt(kind: Kind, id: Option<&str>) -> Markup {
    match id {
        Some(id) if !id.is_empty() => link(kind, id),
        _ => html! { span.none { "none" } },
    }
}

/// The frame of every page: the served revision in the header.
pub fn page(title: &str, revision: Option<u64>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ticket-authz console" }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    nav aria-label="Console" {
                        a.brand href="/" { "ticket-authz" }
                        a href="/check" { "Question" }
                        a href="/playground" { "Playground" }
                    }
                    form.search role="search" action="/search" method="get" {
                        label for="q" class="visually-hidden" { "Search" }
                        input #q type="search" name="q" placeholder="user, ticket, organisation, group" accesskey="s";
                        button type="submit" { "Search" }
                    }
                    @if let Some(revision) = revision {
                        p.revision { "revision " span #revision { (revision) } }
                    }
                }
                main #main { h1 { (title) } (body) }
            }
        }
    }
}

/// A page with a status other than 200.
pub fn status_page(
    status: StatusCode,
    title: &str,
    revision: Option<u64>,
    body: Markup,
) -> Response {
    (status, Html(page(title, revision, body).into_string())).into_response()
}

/// 404 for an id the snapshot does not hold.
pub fn not_found(what: &str, id: &str, revision: u64) -> Response {
    status_page(
        StatusCode::NOT_FOUND,
        "Not found",
        Some(revision),
        html! { p { "No " (what) " " code { (id) } " at revision " (revision) "." } },
    )
}
