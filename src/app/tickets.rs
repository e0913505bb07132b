//! The cached mode's side of the application service: what checks, lists
//! and viewers need from the database (ticket rows through the cache, a
//! list page, ticket-limit counts), gathered so that all of it holds at
//! one snapshot of the graph. When a read is newer than the graph, the
//! call waits for the graph to reach it and gathers again, within the one
//! `revision_wait` the call has.

use std::sync::Arc;
use std::time::Instant;

use futures_util::future::join_all;

use super::{AppError, Authz, clock};
use crate::core::{self, LimitCounts, Page, PageCursor, TicketFilter, ValidRequest};
use crate::snapshot::Snapshot;
use crate::ticket_cache::{CacheError, Fit, Resolved, TicketCache};
use crate::time::Timestamp;

/// What one check needs from outside the graph.
#[derive(Debug, Default)]
pub(super) struct Outside {
    /// The stored ticket's row (`None` for no such ticket, and for checks
    /// that read none: not about a stored ticket, or sent inline).
    pub row: Option<Arc<Resolved>>,
    pub limits: Option<LimitCounts>,
}

/// Checks, at one snapshot, with what they need from outside it.
pub(super) struct Gathered {
    pub snap: Arc<Snapshot>,
    pub now: Timestamp,
    pub outside: Vec<Outside>,
}

fn read_error(e: CacheError) -> AppError {
    AppError::Tickets(e.to_string())
}

/// The stored ticket a check asks about, if it reads one.
fn stored_ticket<'a>(v: &ValidRequest<'a>) -> Option<&'a str> {
    v.ticket
        .filter(|_| v.action.is_ticket_action() && v.inline.is_none())
}

/// A check's stored ticket through the cache, if it reads one.
async fn lookup(
    cache: &TicketCache,
    snap: &Snapshot,
    v: &ValidRequest<'_>,
) -> Result<Option<Fit>, CacheError> {
    // An unknown user is denied before the ticket is looked at.
    match stored_ticket(v).filter(|_| snap.knows_user(v.user)) {
        Some(id) => cache.ticket(id, snap).await.map(Some),
        None => Ok(None),
    }
}

impl Authz {
    /// The graph at `min_revision` or later: the first step of every
    /// attempt, each with what is left of the call's wait.
    async fn graph(&self, min_revision: u64, started: Instant) -> Result<Arc<Snapshot>, AppError> {
        let left = self.inner.revision_wait.saturating_sub(started.elapsed());
        Ok(self.inner.store.at_least(min_revision, left).await?)
    }

    /// The snapshot and everything `checks` read from the database at it.
    pub(super) async fn gather(
        &self,
        cache: &TicketCache,
        checks: &[ValidRequest<'_>],
        min_revision: u64,
    ) -> Result<Gathered, AppError> {
        let started = Instant::now();
        let mut want = min_revision;
        loop {
            let snap = self.graph(want, started).await?;
            let now = clock(&snap);
            let mut later: Option<u64> = None;
            // A single check (the common call) awaits its one lookup; a
            // batch's misses are read concurrently.
            let fits = match checks {
                [one] => vec![lookup(cache, &snap, one).await],
                many => join_all(many.iter().map(|v| lookup(cache, &snap, v))).await,
            };
            let mut outside = Vec::with_capacity(checks.len());
            for fit in fits {
                match fit.map_err(read_error)? {
                    Some(Fit::Holds(row)) => outside.push(Outside { row, limits: None }),
                    Some(Fit::After(r)) => later = later.max(Some(r)),
                    None => outside.push(Outside::default()),
                }
            }
            if later.is_none() {
                for (v, out) in checks.iter().zip(outside.iter_mut()) {
                    let Some(query) = core::limit_query(&snap, v, now) else {
                        continue;
                    };
                    let read = cache
                        .reader()
                        .limit_counts(&query, snap.revision())
                        .await
                        .map_err(|cause| AppError::Tickets(format!("counting tickets: {cause}")))?;
                    if read.unchanged {
                        out.limits = Some(read.value);
                    } else {
                        later = later.max(Some(read.revision));
                    }
                }
            }
            match later {
                None => return Ok(Gathered { snap, now, outside }),
                Some(r) => want = want.max(r),
            }
        }
    }

    /// A page of visible tickets read from the database, at the snapshot
    /// whose plan selected it.
    pub(super) async fn visible_page_cached(
        &self,
        cache: &TicketCache,
        user_id: &str,
        filter: &TicketFilter,
        cursor: &PageCursor,
        min_revision: u64,
    ) -> Result<(Arc<Snapshot>, Page), AppError> {
        let started = Instant::now();
        let mut want = min_revision;
        loop {
            let snap = self.graph(want, started).await?;
            let plan = core::visibility_filter(&snap, user_id);
            let unknown = |id: &Option<String>, known: &dyn Fn(&str) -> bool| {
                id.as_deref().is_some_and(|id| !known(id))
            };
            let selects_nothing = !plan.everything
                && plan.user_id.is_none()
                && plan.organisation_ids.is_empty()
                && plan.group_clauses.is_empty();
            if selects_nothing
                || unknown(&filter.organisation, &|id| snap.knows_organisation(id))
                || unknown(&filter.group, &|id| snap.knows_group(id))
            {
                return Ok((snap, cursor.page(Vec::new(), false)));
            }
            let read = cache
                .reader()
                .visible_page(
                    &plan,
                    filter,
                    cursor.after(),
                    cursor.limit(),
                    snap.revision(),
                )
                .await
                .map_err(|cause| AppError::Tickets(format!("listing tickets: {cause}")))?;
            if read.unchanged {
                let (ids, more) = read.value;
                return Ok((snap, cursor.page(ids, more)));
            }
            want = want.max(read.revision);
        }
    }

    /// A page of a ticket's viewers, the ticket read through the cache.
    pub(super) async fn viewers_page_cached(
        &self,
        cache: &TicketCache,
        ticket_id: &str,
        cursor: &PageCursor,
        min_revision: u64,
    ) -> Result<(Arc<Snapshot>, Page), AppError> {
        let started = Instant::now();
        let mut want = min_revision;
        loop {
            let snap = self.graph(want, started).await?;
            match cache.ticket(ticket_id, &snap).await.map_err(read_error)? {
                Fit::Holds(row) => {
                    let page =
                        core::viewers_of_row_page(&snap, row.as_deref().map(Resolved::row), cursor);
                    return Ok((snap, page));
                }
                Fit::After(r) => want = want.max(r),
            }
        }
    }
}
