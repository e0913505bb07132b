//! Page tokens of `ListVisibleTickets` and `ListTicketViewers`: arbitrary
//! tokens are refused or resume somewhere, never a panic; a page's token
//! resumes right after the page (paging through in small pages gives the
//! whole list once, in order); a token works only for its own query.
//!
//! The input is lines: user, ticket, organisation, group, statuses
//! (comma separated), page size, token.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ticket_authz::core::{
    self, MAX_PAGE_SIZE, Page, PageCursor, TicketFilter, ticket_viewers_page, visible_tickets_page,
};
use ticket_authz::model::Status;
use ticket_authz::snapshot::Snapshot;

fn snapshot() -> Option<&'static Snapshot> {
    static SNAPSHOT: OnceLock<Option<Snapshot>> = OnceLock::new();
    SNAPSHOT
        .get_or_init(|| ticket_authz_fuzz::demo().map(|(_, snapshot)| snapshot))
        .as_ref()
}

/// The list a query names, paged through with `size`; `None` if a token
/// the service handed out is refused.
fn walk(
    size: u32,
    mut cursor: impl FnMut(&str) -> Option<PageCursor>,
    page: impl Fn(&PageCursor) -> Page,
) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    let mut token = String::new();
    loop {
        let Some(at) = cursor(&token) else {
            panic!("the service's own token {token:?} is refused");
        };
        let next = page(&at);
        assert!(
            next.ids.len() <= size.max(1) as usize,
            "a page is longer than asked for"
        );
        all.extend(next.ids);
        match next.next_page_token {
            Some(t) => token = t,
            None => return all,
        }
    }
}

fn ascending(ids: &[String]) -> bool {
    ids.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes())
}

fuzz_target!(|data: &[u8]| {
    let Some(snap) = snapshot() else {
        return;
    };
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let mut next = || lines.next().unwrap_or_default();
    let (user, ticket, organisation, group, statuses, size, token) =
        (next(), next(), next(), next(), next(), next(), next());
    let given = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let filter = TicketFilter {
        organisation: given(organisation),
        group: given(group),
        statuses: statuses.split(',').filter_map(Status::parse).collect(),
    };
    let size: u32 = size.trim().parse().unwrap_or(0);

    // The input's token: refused, or a page of ids the user may see.
    if let Ok(at) = PageCursor::visible(user, &filter, size, token) {
        let page = visible_tickets_page(snap, user, &filter, &at);
        assert!(ascending(&page.ids), "visible tickets out of order");
        for id in &page.ids {
            assert!(
                core::can_view(snap, user, id),
                "{user} listed {id} but may not view it"
            );
        }
    }
    if let Ok(at) = PageCursor::viewers(ticket, size, token) {
        let page = ticket_viewers_page(snap, ticket, &at);
        assert!(ascending(&page.ids), "viewers out of order");
        for id in &page.ids {
            assert!(
                core::can_view(snap, id, ticket),
                "{id} listed as a viewer of {ticket}"
            );
        }
    }
    if size > MAX_PAGE_SIZE {
        return;
    }

    // Small pages resume where the last one ended: together they are the
    // whole list, once, in order.
    let step = size % 4 + 1;
    let whole = walk(
        MAX_PAGE_SIZE,
        |t| PageCursor::visible(user, &filter, MAX_PAGE_SIZE, t).ok(),
        |at| visible_tickets_page(snap, user, &filter, at),
    );
    let paged = walk(
        step,
        |t| PageCursor::visible(user, &filter, step, t).ok(),
        |at| visible_tickets_page(snap, user, &filter, at),
    );
    assert_eq!(paged, whole, "pages of {step} differ from the whole list");
    let viewers = walk(
        MAX_PAGE_SIZE,
        |t| PageCursor::viewers(ticket, MAX_PAGE_SIZE, t).ok(),
        |at| ticket_viewers_page(snap, ticket, at),
    );
    let paged = walk(
        step,
        |t| PageCursor::viewers(ticket, step, t).ok(),
        |at| ticket_viewers_page(snap, ticket, at),
    );
    assert_eq!(paged, viewers, "pages of {step} differ from the whole list");

    // A real token, damaged by the input's, and a real token on another
    // query: refused, or a well-formed page; a replay on another query is
    // refused.
    let Ok(first) = PageCursor::viewers(ticket, 1, "") else {
        return;
    };
    if let Some(real) = ticket_viewers_page(snap, ticket, &first).next_page_token {
        let cut = real.len() - (token.len() % real.len());
        for damaged in [
            format!("{real}{token}"),
            format!("{token}{real}"),
            real[..cut].to_owned(),
        ] {
            if let Ok(at) = PageCursor::viewers(ticket, 1, &damaged) {
                let page = ticket_viewers_page(snap, ticket, &at);
                assert!(page.ids.len() <= 1, "a page is longer than asked for");
            }
        }
        let other = format!("{ticket}x");
        assert!(
            PageCursor::viewers(&other, 1, &real).is_err(),
            "a token of {ticket:?} resumes a list of {other:?}"
        );
        assert!(
            PageCursor::visible(ticket, &TicketFilter::default(), 1, &real).is_err(),
            "a viewers token resumes a visible-tickets list"
        );
    }
});
