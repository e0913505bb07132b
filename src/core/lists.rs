//! Paged lists (access model §5): the tickets a user sees and the users who
//! see a ticket, merged from posting lists in ascending id byte order.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::model::{MAX_ID_BYTES, Status, UserKind};
use crate::snapshot::{Idx, Keyed, NONE, Snapshot, SortedSeq, Table, TicketRow, UNKNOWN};

use super::derive::company_allows;
use super::filter::Plan;

/// Page size when the caller asks for 0.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// The largest page a caller may ask for.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Optional, exact restrictions of the visible-ticket list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketFilter {
    pub organisation: Option<String>,
    /// Exactly this group; child groups are not included.
    pub group: Option<String>,
    /// Any of these statuses; empty means any status.
    pub statuses: Vec<Status>,
}

/// One page of ids and the token of the next page (`None` at the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub ids: Vec<String>,
    pub next_page_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("page_size: {0} is more than the maximum of {max}", max = MAX_PAGE_SIZE)]
    PageTooLarge(u32),
    #[error("page_token: {0}")]
    BadToken(&'static str),
}

/// A merge head: the smallest remaining id of one stream.
struct Head<'s> {
    id: &'s str,
    idx: Idx,
    stream: usize,
}

impl PartialEq for Head<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head<'_> {}
impl PartialOrd for Head<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap is a max-heap: reverse for ascending ids.
        other.id.cmp(self.id).then(other.stream.cmp(&self.stream))
    }
}

pub(super) type Stream<'s> = Box<dyn Iterator<Item = Idx> + 's>;

/// A k-way merge of id-ordered streams of handles into one ascending,
/// de-duplicated stream.
pub(super) struct Merge<'s, R> {
    table: &'s Table<R>,
    streams: Vec<Stream<'s>>,
    heap: BinaryHeap<Head<'s>>,
    last: Idx,
}

impl<'s, R: Keyed> Merge<'s, R> {
    pub(super) fn new(table: &'s Table<R>, mut streams: Vec<Stream<'s>>) -> Self {
        let mut heap = BinaryHeap::with_capacity(streams.len());
        for (stream, iter) in streams.iter_mut().enumerate() {
            if let Some(idx) = iter.next() {
                heap.push(Head {
                    id: table.id(idx),
                    idx,
                    stream,
                });
            }
        }
        Self {
            table,
            streams,
            heap,
            last: NONE,
        }
    }
}

impl<R: Keyed> Iterator for Merge<'_, R> {
    type Item = Idx;

    fn next(&mut self) -> Option<Idx> {
        loop {
            let head = self.heap.pop()?;
            if let Some(next) = self.streams.get_mut(head.stream).and_then(Iterator::next) {
                self.heap.push(Head {
                    id: self.table.id(next),
                    idx: next,
                    stream: head.stream,
                });
            }
            if head.idx != self.last {
                self.last = head.idx;
                return Some(head.idx);
            }
        }
    }
}

/// Iterates a posting list from just after the id `after`.
pub(super) fn from_after<'s, R: Keyed>(
    seq: &'s SortedSeq<Idx>,
    table: &'s Table<R>,
    after: Option<&str>,
) -> crate::snapshot::SeqIter<'s, Idx> {
    match after {
        None => seq.iter(),
        Some(after) => seq.iter_from(seq.seek(|e| table.id(*e) <= after)),
    }
}

/// Takes up to `limit` ids from a stream and says whether more follow.
pub(super) fn take_page<R: Keyed>(
    table: &Table<R>,
    stream: impl Iterator<Item = Idx>,
    limit: usize,
) -> (Vec<String>, bool) {
    let mut ids = Vec::with_capacity(limit.min(1024));
    let mut stream = stream.peekable();
    while ids.len() < limit {
        match stream.next() {
            Some(idx) => ids.push(table.id(idx).to_owned()),
            None => return (ids, false),
        }
    }
    let more = stream.peek().is_some();
    (ids, more)
}

/// The tickets `user_id` may view that pass `filter`, ascending by id,
/// starting after the id `after`, at most `limit`; and whether more follow.
pub fn visible_tickets_after(
    snap: &Snapshot,
    user_id: &str,
    filter: &TicketFilter,
    after: Option<&str>,
    limit: usize,
) -> (Vec<String>, bool) {
    let Some((uidx, user)) = snap.users.get(user_id) else {
        return (Vec::new(), false);
    };
    let plan = Plan::of(snap, uidx, user);
    let tickets = &snap.tickets;
    let org = match filter.organisation.as_deref() {
        None => None,
        Some(id) => match snap.orgs.get(id) {
            Some(found) => Some(found),
            None => return (Vec::new(), false),
        },
    };
    let group = match filter.group.as_deref() {
        None => None,
        Some(id) => match snap.groups.get(id) {
            Some(found) => Some(found),
            None => return (Vec::new(), false),
        },
    };
    let statuses = &filter.statuses;
    let passes_filter = move |t: &TicketRow| {
        org.is_none_or(|(o, _)| t.organisation == o)
            && group.is_none_or(|(g, _)| t.group == g)
            && (statuses.is_empty() || statuses.contains(&t.status))
    };

    // Drive from the smallest source: the merged relations of the plan, or
    // the filter's organisation or group list checked against the plan.
    let plan_streams = plan_streams(snap, &plan, after);
    let plan_size: usize = plan_streams.iter().map(|(len, _)| len).sum();
    let mut driver: Option<&SortedSeq<Idx>> = None;
    let mut best = plan_size;
    for seq in [org.map(|(_, o)| &o.tickets), group.map(|(_, g)| &g.tickets)]
        .into_iter()
        .flatten()
    {
        if seq.len() < best {
            best = seq.len();
            driver = Some(seq);
        }
    }
    let limit = limit.max(1);
    match driver {
        Some(seq) => {
            let stream = from_after(seq, tickets, after).copied().filter(|&t| {
                let row = &tickets[t];
                passes_filter(row) && plan.matches(snap, row)
            });
            take_page(tickets, stream, limit)
        }
        None => {
            let merge = Merge::new(tickets, plan_streams.into_iter().map(|(_, s)| s).collect());
            let stream = merge.filter(|&t| passes_filter(&tickets[t]));
            take_page(tickets, stream, limit)
        }
    }
}

/// The posting-list streams a plan is the union of, each with its length.
fn plan_streams<'s>(
    snap: &'s Snapshot,
    plan: &Plan,
    after: Option<&'s str>,
) -> Vec<(usize, Stream<'s>)> {
    let tickets = &snap.tickets;
    let seq = |s: &'s SortedSeq<Idx>| -> (usize, Stream<'s>) {
        (s.len(), Box::new(from_after(s, tickets, after).copied()))
    };
    if plan.everything {
        return vec![seq(&snap.all_tickets)];
    }
    let mut out = Vec::new();
    if plan.user != NONE {
        out.push(seq(&snap.users[plan.user].involved));
    }
    for &o in &plan.orgs {
        out.push(seq(&snap.orgs[o].tickets));
    }
    if let Some(reach) = &plan.group {
        let company = reach.requester_company;
        if company == NONE {
            // Unscoped (`everything` covers IR on `*`).
            for &g in &reach.groups {
                out.push(seq(&snap.groups[g].tickets));
            }
        } else {
            let requested = &snap.companies[company].requested;
            let per_group: usize = reach
                .groups
                .iter()
                .map(|&g| snap.groups[g].tickets.len())
                .sum();
            if reach.any_group {
                out.push(seq(requested));
            } else if requested.len() <= per_group {
                let groups = reach.groups.clone();
                let stream = from_after(requested, tickets, after)
                    .copied()
                    .filter(move |&t| {
                        let g = tickets[t].group;
                        g != NONE && groups.binary_search(&g).is_ok()
                    });
                out.push((requested.len(), Box::new(stream)));
            } else {
                for &g in &reach.groups {
                    let list = &snap.groups[g].tickets;
                    let stream = from_after(list, tickets, after)
                        .copied()
                        .filter(move |&t| snap.users[tickets[t].requester].company == company);
                    out.push((list.len(), Box::new(stream)));
                }
            }
        }
    }
    out
}

/// The users who may view `ticket_id`, ascending by id, after the id
/// `after`, at most `limit`; and whether more follow. An unknown ticket has
/// no viewers.
pub fn ticket_viewers_after(
    snap: &Snapshot,
    ticket_id: &str,
    after: Option<&str>,
    limit: usize,
) -> (Vec<String>, bool) {
    let ticket = snap.tickets.get(ticket_id).map(|(_, row)| row);
    viewers_of_row_after(snap, ticket, after, limit)
}

/// [`ticket_viewers_after`] of a ticket row the caller found (read through
/// a cache, resolved with `Snapshot::detached_ticket`); `None`: no such
/// ticket.
pub fn viewers_of_row_after(
    snap: &Snapshot,
    ticket: Option<&TicketRow>,
    after: Option<&str>,
    limit: usize,
) -> (Vec<String>, bool) {
    let Some(ticket) = ticket else {
        return (Vec::new(), false);
    };
    let users = &snap.users;
    let active = move |u: &Idx| !users[*u].suspended;
    let mut streams: Vec<Stream<'_>> = Vec::new();
    streams.push(Box::new(
        from_after(&snap.superadmins, users, after)
            .copied()
            .filter(active),
    ));

    let mut direct: Vec<Idx> = [ticket.requester, ticket.assignee]
        .into_iter()
        .chain(ticket.ccs().iter().copied())
        .chain(ticket.participants().iter().copied())
        .filter(|&u| u != NONE && u != UNKNOWN && after.is_none_or(|a| users.id(u) > a))
        .collect();
    direct.sort_unstable_by(|a, b| users.id(*a).cmp(users.id(*b)));
    direct.dedup();
    streams.push(Box::new(direct.into_iter().filter(active)));

    let by_group = move |u: &Idx| {
        let row = &users[*u];
        !row.suspended && row.kind == UserKind::Agent && company_allows(snap, row, ticket)
    };
    let mut grantee_lists = vec![&snap.all_group_ir];
    if !matches!(ticket.group, NONE | UNKNOWN) {
        grantee_lists.push(&snap.groups[ticket.group].ir_grantees);
        for ancestor in snap.group_ancestors(ticket.group) {
            if snap.groups[ancestor].propagate {
                grantee_lists.push(&snap.groups[ancestor].ir_grantees);
            }
        }
    }
    for list in grantee_lists {
        streams.push(Box::new(
            from_after(list, users, after).copied().filter(by_group),
        ));
    }

    if !matches!(ticket.organisation, NONE | UNKNOWN) {
        let org = &snap.orgs[ticket.organisation];
        let members = if org.access.is_shared() {
            &org.members
        } else {
            &org.org_access_members
        };
        streams.push(Box::new(
            from_after(members, users, after).copied().filter(active),
        ));
    }
    take_page(users, Merge::new(users, streams), limit.max(1))
}

/// A stable 64-bit fingerprint of a list query, so that a token cannot be
/// replayed against another query. FNV-1a over length-prefixed parts.
fn query_key(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for part in parts {
        feed(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_le_bytes());
        feed(part.as_bytes());
    }
    hash
}

const TOKEN_VERSION: u8 = 1;

fn encode_token(key: u64, after: &str) -> String {
    let mut bytes = Vec::with_capacity(9 + after.len());
    bytes.push(TOKEN_VERSION);
    bytes.extend_from_slice(&key.to_le_bytes());
    bytes.extend_from_slice(after.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The id a token resumes after; an empty token starts at the beginning.
fn decode_token(token: &str, key: u64) -> Result<Option<String>, ListError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| ListError::BadToken("malformed token"))?;
    let (head, after) = bytes
        .split_at_checked(9)
        .ok_or(ListError::BadToken("malformed token"))?;
    if head.first() != Some(&TOKEN_VERSION) {
        return Err(ListError::BadToken("malformed token"));
    }
    let mut stored = [0u8; 8];
    stored.copy_from_slice(head.get(1..9).unwrap_or(&[0; 8]));
    if u64::from_le_bytes(stored) != key {
        return Err(ListError::BadToken("token was issued for another query"));
    }
    if after.is_empty() || after.len() > MAX_ID_BYTES {
        return Err(ListError::BadToken("malformed token"));
    }
    String::from_utf8(after.to_vec())
        .map(Some)
        .map_err(|_| ListError::BadToken("malformed token"))
}

fn page_limit(page_size: u32) -> Result<usize, ListError> {
    match page_size {
        0 => Ok(DEFAULT_PAGE_SIZE as usize),
        n if n > MAX_PAGE_SIZE => Err(ListError::PageTooLarge(n)),
        n => Ok(n as usize),
    }
}

fn finish(key: u64, (ids, more): (Vec<String>, bool)) -> Page {
    let next_page_token = if more {
        ids.last().map(|last| encode_token(key, last))
    } else {
        None
    };
    Page {
        ids,
        next_page_token,
    }
}

fn visible_key(user_id: &str, filter: &TicketFilter) -> u64 {
    let mut statuses: Vec<&str> = filter.statuses.iter().map(|s| s.name()).collect();
    statuses.sort_unstable();
    statuses.dedup();
    let statuses = statuses.join(",");
    query_key(&[
        "visible",
        user_id,
        filter.organisation.as_deref().unwrap_or(""),
        filter.group.as_deref().unwrap_or(""),
        &statuses,
    ])
}

/// Where a page starts and how long it is: `page_size` and `page_token`
/// checked against their query before the snapshot is read, so that a
/// malformed page request is refused before any wait for a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    limit: usize,
    key: u64,
    after: Option<String>,
}

impl PageCursor {
    fn new(key: u64, page_size: u32, page_token: &str) -> Result<Self, ListError> {
        let limit = page_limit(page_size)?;
        let after = decode_token(page_token, key)?;
        Ok(Self { limit, key, after })
    }

    /// A page of `ListVisibleTickets` for this user and filter.
    pub fn visible(
        user_id: &str,
        filter: &TicketFilter,
        page_size: u32,
        page_token: &str,
    ) -> Result<Self, ListError> {
        Self::new(visible_key(user_id, filter), page_size, page_token)
    }

    /// A page of `ListVisibleResources` for this user and kind.
    pub fn resources(
        user_id: &str,
        kind: crate::model::ResourceKind,
        page_size: u32,
        page_token: &str,
    ) -> Result<Self, ListError> {
        Self::new(
            query_key(&["resources", user_id, kind.name()]),
            page_size,
            page_token,
        )
    }

    /// A page of `ListTicketViewers` for this ticket.
    pub fn viewers(ticket_id: &str, page_size: u32, page_token: &str) -> Result<Self, ListError> {
        Self::new(query_key(&["viewers", ticket_id]), page_size, page_token)
    }
}

/// The page of visible tickets a cursor from [`PageCursor::visible`] (for
/// the same user and filter) names.
pub fn visible_tickets_page(
    snap: &Snapshot,
    user_id: &str,
    filter: &TicketFilter,
    cursor: &PageCursor,
) -> Page {
    finish(
        cursor.key,
        visible_tickets_after(snap, user_id, filter, cursor.after.as_deref(), cursor.limit),
    )
}

impl PageCursor {
    /// The id the page starts after (`None`: the first page).
    pub fn after(&self) -> Option<&str> {
        self.after.as_deref()
    }

    /// The most ids the page holds.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The page of `ids` (at most [`PageCursor::limit`], in byte order),
    /// with a token for the next one when `more` follow.
    pub fn page(&self, ids: Vec<String>, more: bool) -> Page {
        finish(self.key, (ids, more))
    }
}

/// The page of viewers of a ticket row the caller found (see
/// [`viewers_of_row_after`]) a cursor from [`PageCursor::viewers`] names.
pub fn viewers_of_row_page(
    snap: &Snapshot,
    ticket: Option<&TicketRow>,
    cursor: &PageCursor,
) -> Page {
    finish(
        cursor.key,
        viewers_of_row_after(snap, ticket, cursor.after.as_deref(), cursor.limit),
    )
}

/// The page of viewers a cursor from [`PageCursor::viewers`] (for the same
/// ticket) names.
pub fn ticket_viewers_page(snap: &Snapshot, ticket_id: &str, cursor: &PageCursor) -> Page {
    finish(
        cursor.key,
        ticket_viewers_after(snap, ticket_id, cursor.after.as_deref(), cursor.limit),
    )
}

/// One page of the tickets a user may view (`ListVisibleTickets`).
pub fn list_visible_tickets(
    snap: &Snapshot,
    user_id: &str,
    filter: &TicketFilter,
    page_size: u32,
    page_token: &str,
) -> Result<Page, ListError> {
    let cursor = PageCursor::visible(user_id, filter, page_size, page_token)?;
    Ok(visible_tickets_page(snap, user_id, filter, &cursor))
}

/// One page of the users who may view a ticket (`ListTicketViewers`).
pub fn list_ticket_viewers(
    snap: &Snapshot,
    ticket_id: &str,
    page_size: u32,
    page_token: &str,
) -> Result<Page, ListError> {
    let cursor = PageCursor::viewers(ticket_id, page_size, page_token)?;
    Ok(ticket_viewers_page(snap, ticket_id, &cursor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_their_query() {
        let key = query_key(&["visible", "ann", "", "", ""]);
        let token = encode_token(key, "t-42");
        assert_eq!(decode_token(&token, key), Ok(Some("t-42".to_owned())));
        let other = query_key(&["visible", "bob", "", "", ""]);
        assert_eq!(
            decode_token(&token, other),
            Err(ListError::BadToken("token was issued for another query"))
        );
        assert_eq!(
            decode_token("%%%", key),
            Err(ListError::BadToken("malformed token"))
        );
        assert_eq!(
            decode_token("AQ", key),
            Err(ListError::BadToken("malformed token"))
        );
        assert_eq!(decode_token("", key), Ok(None));
    }

    #[test]
    fn query_parts_do_not_run_together() {
        assert_ne!(query_key(&["ab", "c"]), query_key(&["a", "bc"]));
    }
}
