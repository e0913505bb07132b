//! The decision core's side of the comparison, called as the service calls
//! it: `core::check` with string ids, and `core::list_visible_tickets`.

use ticket_authz::core::{
    self, Action, ActionInput, CheckRequest, Context, Decision, MAX_PAGE_SIZE, TicketFilter,
};
use ticket_authz::snapshot::Snapshot;

use crate::Error;

/// One `view` or `comment` question to the core.
pub fn check(
    snap: &Snapshot,
    ctx: Context,
    user: &str,
    action: Action,
    ticket: &str,
) -> Result<Decision, Error> {
    let request = CheckRequest {
        user,
        action: ActionInput::Known(action),
        ticket,
        ..CheckRequest::default()
    };
    core::check(snap, &request, ctx).map_err(|e| Error::Core(e.to_string()))
}

/// Every ticket `user` may view, walking the list in pages of the largest
/// size the service allows.
pub fn visible_tickets(snap: &Snapshot, user: &str) -> Result<Vec<String>, Error> {
    let all = TicketFilter::default();
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = core::list_visible_tickets(snap, user, &all, MAX_PAGE_SIZE, &token)
            .map_err(|e| Error::Core(e.to_string()))?;
        out.extend(page.ids);
        match page.next_page_token {
            Some(next) => token = next,
            None => return Ok(out),
        }
    }
}

/// The first page of `size` tickets `user` may view.
pub fn first_page(snap: &Snapshot, user: &str, size: u32) -> Result<Vec<String>, Error> {
    core::list_visible_tickets(snap, user, &TicketFilter::default(), size, "")
        .map(|page| page.ids)
        .map_err(|e| Error::Core(e.to_string()))
}
