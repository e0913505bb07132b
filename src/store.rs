//! The current snapshot, published atomically: readers take an `Arc` without
//! locking; one writer replaces it whole; waiters for a revision are woken.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::watch;

use crate::snapshot::Snapshot;
use crate::telemetry::metrics::metrics;

/// Sets the gauges that describe the served snapshot.
fn export_gauges(snapshot: &Snapshot) {
    let stats = snapshot.stats();
    let metrics = metrics();
    metrics
        .revision
        .set(i64::try_from(snapshot.revision()).unwrap_or(i64::MAX));
    for (kind, n) in [
        ("organisations", stats.organisations),
        ("companies", stats.companies),
        ("groups", stats.groups),
        ("profiles", stats.profiles),
        ("users", stats.users),
        ("tickets", stats.tickets),
    ] {
        metrics
            .snapshot_entities(kind)
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("no data loaded yet")]
    NotLoaded,
    #[error(
        "min_revision {wanted} is not loaded: the loaded revision is {loaded} (waited {waited:?})"
    )]
    Behind {
        wanted: u64,
        loaded: u64,
        waited: Duration,
    },
    #[error(
        "min_revision {wanted} is not loaded: the loaded revision is {loaded}; revision {held} is held back: {cause}"
    )]
    HeldBack {
        wanted: u64,
        loaded: u64,
        held: u64,
        cause: String,
    },
}

/// A change that could not be applied, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBack {
    pub revision: u64,
    pub cause: String,
}

/// Holds the snapshot every request reads.
#[derive(Debug)]
pub struct Store {
    current: ArcSwapOption<Snapshot>,
    revision: watch::Sender<u64>,
    held: ArcSwapOption<HeldBack>,
    full_loads: std::sync::atomic::AtomicU64,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            current: ArcSwapOption::empty(),
            revision: watch::Sender::new(0),
            held: ArcSwapOption::empty(),
            full_loads: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl Store {
    /// Makes `snapshot` the one every later read sees; clears a hold-back
    /// it has caught up with.
    pub fn publish(&self, snapshot: Snapshot) {
        let revision = snapshot.revision();
        export_gauges(&snapshot);
        self.current.store(Some(Arc::new(snapshot)));
        if self
            .held
            .load()
            .as_ref()
            .is_some_and(|h| h.revision <= revision)
        {
            self.held.store(None);
            metrics().held_back.set(0);
        }
        self.revision.send_replace(revision);
    }

    /// Records that changes up to `revision` could not be applied; readers
    /// keep the current snapshot, and requests needing those changes fail
    /// at once with the cause.
    pub fn hold_back(&self, revision: u64, cause: String) {
        self.held
            .store(Some(Arc::new(HeldBack { revision, cause })));
        metrics().held_back.set(1);
    }

    /// Counts a full reload (as opposed to a row-by-row apply).
    pub fn note_full_load(&self) {
        self.full_loads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        metrics().full_reloads.inc();
    }

    /// Full reloads since start, the first load excluded.
    pub fn full_loads(&self) -> u64 {
        self.full_loads.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn held_back(&self) -> Option<HeldBack> {
        self.held.load().as_deref().cloned()
    }

    /// The current snapshot, if one was loaded.
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    /// A snapshot at revision `min_revision` or later, waiting up to `wait`
    /// for one to be published.
    pub async fn at_least(
        &self,
        min_revision: u64,
        wait: Duration,
    ) -> Result<Arc<Snapshot>, StoreError> {
        let current = self.current();
        if let Some(snap) = current.as_ref().filter(|s| s.revision() >= min_revision) {
            return Ok(Arc::clone(snap));
        }
        if let (Some(snap), Some(held)) = (&current, self.held_back())
            && held.revision >= min_revision
        {
            return Err(StoreError::HeldBack {
                wanted: min_revision,
                loaded: snap.revision(),
                held: held.revision,
                cause: held.cause,
            });
        }
        let mut changes = self.revision.subscribe();
        let reached = tokio::time::timeout(wait, changes.wait_for(|r| *r >= min_revision)).await;
        match (reached, self.current()) {
            (Ok(Ok(_)), Some(snap)) if snap.revision() >= min_revision => Ok(snap),
            (_, None) => Err(StoreError::NotLoaded),
            (_, Some(snap)) => Err(StoreError::Behind {
                wanted: min_revision,
                loaded: snap.revision(),
                waited: wait,
            }),
        }
    }
}
