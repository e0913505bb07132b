//! The seam between a source of permission data and the sync loop: a full
//! load at one revision, the whole committed transactions after a revision
//! as typed [`Change`]s, and a wait for more.

use std::future::Future;

use crate::snapshot::{Change, Snapshot};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The source could not be read (a dropped connection, a failed
    /// query): the loop tries again on its next wake-up.
    #[error("{0}")]
    Read(String),
    /// The source's data at `revision` does not make a valid snapshot (a
    /// parent cycle, a dangling reference): held back until a later
    /// revision is committed.
    #[error("revision {revision}: {cause}")]
    Invalid { revision: u64, cause: String },
}

/// Why a batch is applied by a full reload instead of change by change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// A bulk change (an import, a TRUNCATE).
    Bulk,
    /// The source no longer holds every change after the applied revision
    /// (a pruned change log, a stream past its retention); `floor` is the
    /// highest revision whose changes may be gone.
    Gap { floor: u64 },
    /// A change that cascades beyond what row-by-row applies: deleting an
    /// organisation, group, profile or company, or changing an id. The
    /// text says which, for the log.
    Wide(String),
    /// A change the source could not decode (the text names where): the
    /// reload reads the data as it now stands.
    Undecodable(String),
}

impl std::fmt::Display for Reload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reload::Bulk => f.write_str("a bulk change"),
            Reload::Gap { floor } => write!(f, "changes up to revision {floor} are gone"),
            Reload::Wide(what) | Reload::Undecodable(what) => f.write_str(what),
        }
    }
}

/// Whole committed transactions, in commit order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// The revision of the last transaction included: the snapshot's
    /// revision once the batch is applied.
    pub revision: u64,
    /// The row changes, in commit order (partial or empty when `reload`).
    pub changes: Vec<Change>,
    /// Set when the batch is applied by a full reload instead.
    pub reload: Option<Reload>,
    /// When the last transaction committed (Unix seconds, the source's
    /// clock), for the change-lag metric.
    pub committed_at: Option<f64>,
}

/// A source the sync loop follows. Revisions only grow and follow commit
/// order; a batch never splits a transaction. The loop owns the source
/// and calls one method at a time.
///
/// Everything the loop publishes went through `load` or `changes_after`
/// first, so an adapter wrapping a source (a read-through cache that must
/// invalidate, a relay that forwards) sees each batch before its revision
/// is published.
pub trait ChangeSource: Send + 'static {
    /// The whole data in one consistent read, as a snapshot at the
    /// revision it was read at: the first load and every full reload.
    fn load(&mut self) -> impl Future<Output = Result<Snapshot, SourceError>> + Send;

    /// The transactions committed after revision `after`, or `None` when
    /// there is none. A source that cannot give every change after `after`
    /// returns a batch with [`Reload::Gap`].
    fn changes_after(
        &mut self,
        after: u64,
    ) -> impl Future<Output = Result<Option<Batch>, SourceError>> + Send;

    /// Returns when more may have been committed: a notification, a poll
    /// tick, a reconnection. A return with nothing new costs one read of
    /// `changes_after`; the loop stops waiting when it is told to stop.
    fn wait(&mut self) -> impl Future<Output = ()> + Send;

    /// Where the source stood when it reached `revision`, in a log of its
    /// own (a stream's sequence), so that a snapshot of that revision can
    /// resume it; `Some(0)` for a source with none, `None` when unknown.
    fn position_at(&self, revision: u64) -> Option<u64> {
        let _ = revision;
        Some(0)
    }

    /// Continues from a saved snapshot at `revision`, taken at `position`,
    /// instead of a first load: the next `changes_after(revision)` reads
    /// from there.
    fn resume(&mut self, revision: u64, position: u64) {
        let _ = (revision, position);
    }
}
