//! The sync loop, for any [`ChangeSource`]: on every wake-up, read the
//! transactions after the served revision, apply them on a clone of the
//! served snapshot (or reload in full), publish once per batch, and hold
//! back what does not validate without reading it again until something
//! newer is committed. A read that finds nothing newer confirms that the
//! served data is caught up with the source.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use super::source::{Batch, ChangeSource, Reload, SourceError};
use crate::snapshot::{Change, Snapshot};
use crate::store::Store;
use crate::telemetry::metrics::{RefreshError, metrics};

/// Follows `source` into `store` (which holds the first load) until `stop`
/// turns true.
pub async fn follow<S: ChangeSource>(
    mut source: S,
    store: Arc<Store>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        sync(&mut source, &store).await;
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = stop.changed() => return,
            () = source.wait() => {}
        }
    }
}

fn read_failed(error: &SourceError) {
    metrics().refresh_error(RefreshError::Read);
    tracing::warn!(error = %error, "reading the changes failed; retrying on the next wake-up");
}

/// Keeps serving the last valid revision while `revision` is invalid.
fn hold_back(store: &Store, revision: u64, cause: String) {
    metrics().refresh_error(RefreshError::HeldBack);
    tracing::error!(revision, error = %cause, "changes held back: serving the last valid revision");
    store.hold_back(revision, cause);
}

/// The next batch to apply, or `None` when there is nothing to do: nothing
/// newer, a failed read, or only the held-back revision again.
async fn next_batch<S: ChangeSource>(source: &mut S, store: &Store, applied: u64) -> Option<Batch> {
    if let Some(held) = store.held_back() {
        // Reading it again would fail again (and reload in full): wait
        // for a later commit, which may fix the data.
        match source.changes_after(held.revision).await {
            Ok(Some(_)) => {}
            Ok(None) => return None,
            Err(e) => {
                read_failed(&e);
                return None;
            }
        }
    }
    match source.changes_after(applied).await {
        Ok(None) => {
            // The source has nothing newer than what is served: caught up
            // (an idle source confirms this on every wake-up). A held-back
            // revision never gets here, as its answers lag the source.
            metrics().caught_up.confirm();
            None
        }
        Ok(batch) => batch,
        // The source found the data at a revision invalid while reading
        // the batch: held back, as a failed build would be.
        Err(SourceError::Invalid { revision, cause }) => {
            hold_back(store, revision, cause);
            None
        }
        Err(e) => {
            read_failed(&e);
            None
        }
    }
}

/// A full reload, counted.
async fn reload<S: ChangeSource>(source: &mut S, store: &Store) -> Result<Snapshot, SourceError> {
    store.note_full_load();
    source.load().await
}

/// Applies `changes` to a copy of `base` (sharing every chunk they do not
/// touch), on a blocking thread as a full build is: a wide change must not
/// stall the requests an async worker is serving.
async fn apply(
    base: Arc<Snapshot>,
    changes: Vec<Change>,
    revision: u64,
) -> Result<Snapshot, String> {
    tokio::task::spawn_blocking(move || {
        let mut next = Snapshot::clone(&base);
        next.apply_all(&changes, revision)
            .map_err(|e| e.to_string())?;
        Ok(next)
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Applies a batch to an owned snapshot on a blocking thread, as the
/// loop's [`apply`] does to a copy: a source catching up before its first
/// publish (a stream's load, a warm start) has nothing served to share
/// chunks with. A batch that does not apply is `Invalid` at its revision.
pub(crate) async fn apply_owned(snapshot: Snapshot, batch: Batch) -> Result<Snapshot, SourceError> {
    let revision = batch.revision;
    tokio::task::spawn_blocking(move || {
        let mut next = snapshot;
        next.apply_all(&batch.changes, revision).map(|()| next)
    })
    .await
    .map_err(|e| SourceError::Read(e.to_string()))?
    .map_err(|e| SourceError::Invalid {
        revision,
        cause: e.to_string(),
    })
}

/// The snapshot the batch brings, by row-by-row apply (which takes the
/// batch's changes) or full reload.
async fn build_next<S: ChangeSource>(
    source: &mut S,
    store: &Store,
    base: Arc<Snapshot>,
    batch: &mut Batch,
) -> Result<Snapshot, SourceError> {
    match &batch.reload {
        None => match apply(base, std::mem::take(&mut batch.changes), batch.revision).await {
            Ok(next) => Ok(next),
            Err(e) => {
                metrics().refresh_error(RefreshError::Apply);
                tracing::warn!(error = %e, revision = batch.revision, "row-by-row apply failed; reloading");
                reload(source, store).await
            }
        },
        Some(why @ Reload::Undecodable(_)) => {
            metrics().refresh_error(RefreshError::Apply);
            tracing::warn!(error = %why, revision = batch.revision, "a change could not be decoded; reloading");
            reload(source, store).await
        }
        Some(why @ Reload::Gap { .. }) => {
            tracing::warn!(revision = batch.revision, why = %why, "changes after the applied revision are gone; reloading in full");
            reload(source, store).await
        }
        Some(why) => {
            tracing::debug!(revision = batch.revision, why = %why, "reloading in full");
            reload(source, store).await
        }
    }
}

fn record_lag(committed_at: Option<f64>) {
    if let Some(committed) = committed_at {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        // Clocks of two machines: a negative lag is skew, not speed.
        metrics().change_lag.observe((now - committed).max(0.0));
    }
}

/// Applies everything committed after the store's revision, batch by
/// batch.
async fn sync<S: ChangeSource>(source: &mut S, store: &Store) {
    loop {
        let Some(base) = store.current() else {
            return;
        };
        let applied = base.revision();
        let Some(mut batch) = next_batch(source, store, applied).await else {
            return;
        };
        // A batch that brings nothing newer would be asked for again at
        // once, forever: a source breaking the seam's contract.
        if batch.revision <= applied {
            metrics().refresh_error(RefreshError::Read);
            tracing::warn!(
                revision = batch.revision,
                applied,
                "the source returned changes that are not newer than the served revision; ignored"
            );
            return;
        }
        let started = Instant::now();
        let changes = batch.changes.len();
        match build_next(source, store, base, &mut batch).await {
            // Revisions only grow: an older snapshot would undo what
            // readers have already seen.
            Ok(next) if next.revision() < applied => {
                metrics().refresh_error(RefreshError::Read);
                tracing::warn!(
                    loaded = next.revision(),
                    applied,
                    "the source loaded an older revision than the one served; not published"
                );
                return;
            }
            Ok(next) => {
                let revision = next.revision();
                metrics()
                    .apply_duration
                    .observe(started.elapsed().as_secs_f64());
                store.publish(next);
                record_lag(batch.committed_at);
                tracing::debug!(
                    revision,
                    changes,
                    reload = batch.reload.as_ref().map(ToString::to_string),
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "changes applied"
                );
            }
            Err(SourceError::Invalid { revision, cause }) => {
                let held = revision.max(batch.revision);
                hold_back(store, held, cause);
                return;
            }
            Err(e @ SourceError::Read(_)) => {
                read_failed(&e);
                return;
            }
        }
    }
}
