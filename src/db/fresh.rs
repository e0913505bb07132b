//! Reads of ticket rows that answer beside a snapshot of the graph (the
//! ticket cache's reads, the list and limit queries): each is one
//! statement, so one consistent view of the database, and it returns with
//! its data the revision it saw and whether the tickets it read are the
//! same as at the graph's revision. The caller then answers at the graph's
//! revision (unchanged) or waits for the graph to reach the data's.

use super::Dialect;

pub use crate::ticket_cache::ReadAt;

/// What a read depends on, for its `unchanged` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// One ticket, its CCs and participants: the ticket id is `$2`.
    Ticket,
    /// Every ticket row, CC and participant, and the users (a list's
    /// company clause joins requesters).
    AllTickets,
}

/// The select-list columns `revision, unchanged` for a statement whose
/// `$1` is the graph's revision (and `$2` the ticket id for
/// [`Scope::Ticket`]). Bulk changes and a change log pruned past the
/// graph count as changed: they leave no row images to look at.
pub(crate) fn columns<D: Dialect>(scope: Scope) -> String {
    let touched = match scope {
        Scope::Ticket => D::TOUCHES_TICKET,
        Scope::AllTickets => {
            "c.table_name IN ('tickets', 'ticket_ccs', 'ticket_participants', 'users')"
        }
    };
    D::freshness_columns(touched)
}
