//! What the ticket cache reads from: a store of ticket rows that answers
//! one ticket by key, a page of a user's visible tickets and ticket-limit
//! counts, each in one consistent read that says at which revision it
//! read and whether what it read is the same at the graph's revision.

use std::future::Future;
use std::pin::Pin;

use crate::core::{LimitCounts, LimitQuery, TicketFilter, VisibilityFilter};
use crate::model::Ticket;

/// Data read in one consistent read, with what it needs to agree with a
/// snapshot of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadAt<T> {
    pub value: T,
    /// The latest revision the read saw: the data is the store's exactly
    /// at this revision.
    pub revision: u64,
    /// Nothing committed after the graph's revision (the one the read was
    /// given) up to `revision` touched what was read, so the data is also
    /// the data at the graph's revision.
    pub unchanged: bool,
}

/// A boxed future of a reader: the cache holds readers as trait objects,
/// and only a miss pays for the box.
pub type Read<'a, T> = Pin<Box<dyn Future<Output = Result<ReadAt<T>, String>> + Send + 'a>>;

/// A store of ticket rows (our schema on PostgreSQL or SQLite). Errors are
/// the store's message, for `UNAVAILABLE`.
pub trait TicketReader: Send + Sync + std::fmt::Debug + 'static {
    /// The ticket `id` (`None`: no such ticket), with its CCs and
    /// participants sorted.
    fn ticket<'a>(&'a self, id: &'a str, graph_revision: u64) -> Read<'a, Option<Ticket>>;

    /// At most `limit` ids of tickets that `plan` selects and `filter`
    /// passes, in byte order after `after`, and whether more follow.
    fn visible_page<'a>(
        &'a self,
        plan: &'a VisibilityFilter,
        filter: &'a TicketFilter,
        after: Option<&'a str>,
        limit: usize,
        graph_revision: u64,
    ) -> Read<'a, (Vec<String>, bool)>;

    /// The counts a `create` reads for its ticket limits.
    fn limit_counts<'a>(
        &'a self,
        query: &'a LimitQuery<'a>,
        graph_revision: u64,
    ) -> Read<'a, LimitCounts>;
}
