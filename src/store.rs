//! The current snapshot, published atomically: readers take an `Arc` without
//! locking; one writer replaces it whole; waiters for a revision are woken.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::watch;

use crate::snapshot::Snapshot;

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
}

/// Holds the snapshot every request reads.
#[derive(Debug)]
pub struct Store {
    current: ArcSwapOption<Snapshot>,
    revision: watch::Sender<u64>,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            current: ArcSwapOption::empty(),
            revision: watch::Sender::new(0),
        }
    }
}

impl Store {
    /// Makes `snapshot` the one every later read sees.
    pub fn publish(&self, snapshot: Snapshot) {
        let revision = snapshot.revision();
        self.current.store(Some(Arc::new(snapshot)));
        self.revision.send_replace(revision);
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
        if let Some(snap) = self.current().filter(|s| s.revision() >= min_revision) {
            return Ok(snap);
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
