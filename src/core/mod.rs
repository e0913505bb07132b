//! The decision core: pure, synchronous functions of (snapshot, request) to
//! decisions, lists and filters. No I/O, no async, no locks, no clock of its
//! own.

mod check;
mod decision;
mod derive;
mod filter;
mod lists;
mod request;
mod sections;

pub use check::{Context, LimitCounts, LimitQuery, check, decide, decide_with, limit_query};
pub use decision::{Decision, Reason};
pub use derive::{FlagSource, GrantReach, GroupFlags, ReachVia, effective_flags, reach_via};
pub use filter::{GroupClause, VisibilityFilter, visibility_filter};
pub use lists::{
    DEFAULT_PAGE_SIZE, ListError, MAX_PAGE_SIZE, Page, PageCursor, TicketFilter,
    list_ticket_viewers, list_visible_tickets, ticket_viewers_after, ticket_viewers_page,
    viewers_of_row_after, viewers_of_row_page, visible_tickets_after, visible_tickets_page,
};
pub use request::{
    Action, ActionInput, CheckRequest, GroupArg, InlineTicket, RequestError, ValidInline,
    ValidRequest,
};
pub use sections::{
    allows as section_allows, list_visible_resources, view_action, visible_resources_after,
    visible_resources_page,
};

use crate::snapshot::Snapshot;

/// Whether `user_id` may view `ticket_id` by the rules, without request
/// validation or explanation; unknown ids are not visible. For the list
/// properties and benchmarks.
pub fn can_view(snap: &Snapshot, user_id: &str, ticket_id: &str) -> bool {
    match (snap.users.get(user_id), snap.tickets.get(ticket_id)) {
        (Some((uidx, user)), Some((_, ticket))) => check::can_view(snap, uidx, user, ticket),
        _ => false,
    }
}
