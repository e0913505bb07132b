//! The follower's side of the ticket cache: a [`ChangeSource`] wrapping the
//! source of the graph. Every batch passes through here before the loop
//! applies and publishes it, so each ticket it changes is marked in the
//! cache first; ticket rows then leave the batch, because the graph holds
//! none. A full load marks every entry.

use crate::follow::{Batch, ChangeSource, SourceError};
use crate::snapshot::{Change, Snapshot};

use super::TicketCache;

/// `S` (loading the graph only) with the cache kept in step.
#[derive(Debug)]
pub struct CachedSource<S> {
    inner: S,
    cache: TicketCache,
}

impl<S> CachedSource<S> {
    /// `inner` must load no tickets: they are read through `cache`.
    pub fn new(inner: S, cache: TicketCache) -> Self {
        Self { inner, cache }
    }
}

/// The ticket a change touches, for changes to ticket rows and lists.
fn ticket_of(change: &Change) -> Option<&str> {
    match change {
        Change::UpsertTicket(t) => Some(&t.id),
        Change::DeleteTicket { id } => Some(id),
        Change::TicketPerson { ticket, .. } | Change::TicketPeople { ticket, .. } => Some(ticket),
        _ => None,
    }
}

impl<S: ChangeSource + Sync> ChangeSource for CachedSource<S> {
    async fn load(&mut self) -> Result<Snapshot, SourceError> {
        let snap = self.inner.load().await?;
        self.cache.reloaded(snap.revision());
        Ok(snap)
    }

    async fn changes_after(&mut self, after: u64) -> Result<Option<Batch>, SourceError> {
        let Some(mut batch) = self.inner.changes_after(after).await? else {
            return Ok(None);
        };
        // A batch that reloads marks everything in `load`.
        for change in &batch.changes {
            if let Some(id) = ticket_of(change) {
                self.cache.changed(id, batch.revision).await;
            }
        }
        batch.changes.retain(|c| ticket_of(c).is_none());
        Ok(Some(batch))
    }

    fn wait(&mut self) -> impl Future<Output = ()> + Send {
        self.inner.wait()
    }
}
