//! `ticket-authz relay`: the database's own source, wrapped so that every
//! batch the sync loop receives was first published to the stream, in
//! revision order, by the one relay holding the lease. A standby follows
//! the stream instead, so that when it takes over its store is the
//! stream's head and it continues from the database's change log there.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::message::PublishMessage;

use super::lease::Lease;
use super::objects::Snapshots;
use super::reader::{Position, StreamSource};
use super::wire::{self, Kind};
use crate::follow::{Batch, ChangeSource, Reload, SourceError};
use crate::image::ImageMeta;
use crate::snapshot::Snapshot;
use crate::store::Store;
use crate::telemetry::metrics::metrics;

/// How often the relay puts a full snapshot in the bucket besides at start
/// and instead of messages it cannot send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotEvery {
    /// After this many published revisions.
    Revisions(u64),
    /// After this long.
    Interval(Duration),
}

impl std::str::FromStr for SnapshotEvery {
    type Err = String;

    /// `1000` (revisions) or a duration such as `10m`.
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(n) = text.parse::<u64>() {
            return if n == 0 {
                Err(
                    "`0`: a snapshot every 0 revisions; give a count of at least 1 or a duration"
                        .to_owned(),
                )
            } else {
                Ok(SnapshotEvery::Revisions(n))
            };
        }
        match humantime::parse_duration(text) {
            Ok(d) if d >= Duration::from_secs(1) => Ok(SnapshotEvery::Interval(d)),
            Ok(_) => Err(format!("`{text}`: at least 1s")),
            Err(e) => Err(format!(
                "`{text}`: neither a revision count nor a duration such as 10m ({e})"
            )),
        }
    }
}

/// The relay's source: the database's, published before it is applied.
#[derive(Debug)]
pub struct Relay<S> {
    db: S,
    reader: StreamSource,
    lease: Lease,
    snapshots: Snapshots,
    identity: String,
    every: SnapshotEvery,
    store: Option<Arc<Store>>,
    leading: bool,
    /// Set when the stream lost messages this relay saw stored: the next
    /// read republishes the data as a snapshot.
    reanchor: bool,
    published_since: u64,
    snapshot_at: Instant,
    snapshotting: Option<tokio::task::JoinHandle<()>>,
}

/// Encodes `snapshot` on a blocking thread (a million tickets take a
/// while) with the metadata that lets a reader continue from `position`.
async fn encode(snapshot: Arc<Snapshot>, meta: ImageMeta) -> Result<Vec<u8>, SourceError> {
    tokio::task::spawn_blocking(move || crate::image::encode_snapshot(&meta, &snapshot))
        .await
        .map_err(|e| SourceError::Read(e.to_string()))?
        .map_err(|e| SourceError::Read(format!("encoding the snapshot: {e}")))
}

impl<S: ChangeSource> Relay<S> {
    pub fn new(
        db: S,
        reader: StreamSource,
        lease: Lease,
        snapshots: Snapshots,
        identity: String,
        every: SnapshotEvery,
    ) -> Self {
        Relay {
            db,
            reader,
            lease,
            snapshots,
            identity,
            every,
            store: None,
            leading: false,
            reanchor: false,
            published_since: 0,
            snapshot_at: Instant::now(),
            snapshotting: None,
        }
    }

    /// The store the loop follows into, for periodic snapshots.
    pub fn set_store(&mut self, store: Arc<Store>) {
        self.store = Some(store);
    }

    fn meta(&self, revision: u64, position: u64) -> ImageMeta {
        ImageMeta {
            revision,
            source: self.identity.clone(),
            stream: self.reader.settings().stream.clone(),
            position,
            created_at_ms: crate::image::unix_millis(),
        }
    }

    /// Publishes one message naming the last sequence it follows; an
    /// unacknowledged publish is looked up before it is called failed.
    async fn publish(
        &mut self,
        kind: Kind,
        revision: u64,
        previous: u64,
        expected: u64,
        body: Vec<u8>,
        committed_at: Option<f64>,
    ) -> Result<u64, SourceError> {
        if !self.lease.held() {
            self.leading = false;
            return Err(SourceError::Read(
                "the relay lease lapsed before publishing".to_owned(),
            ));
        }
        let message = PublishMessage::build()
            .payload(body.into())
            .headers(wire::headers(
                kind,
                revision,
                previous,
                &self.identity,
                committed_at,
            ))
            .expected_last_sequence(expected);
        let subject = self.reader.settings().subject.clone();
        let sent = match self.reader.context().send_publish(subject, message).await {
            Ok(ack) => ack.await.map(|a| a.sequence).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let error = match sent {
            Ok(sequence) => {
                metrics().fleet_published(kind == Kind::Snapshot);
                return Ok(sequence);
            }
            Err(e) => e,
        };
        // The ack may be lost with the message stored: the stream's last
        // message says.
        match self.reader.head().await {
            Ok(Some(head)) if head.revision == revision && head.previous == previous => {
                metrics().fleet_published(kind == Kind::Snapshot);
                Ok(head.sequence)
            }
            Ok(head) if head.as_ref().map_or(0, |h| h.sequence) < expected => {
                tracing::error!(
                    expected,
                    last = head.as_ref().map_or(0, |h| h.sequence),
                    "the stream lost messages it had acknowledged (a server killed before writing them out?); publishing a snapshot"
                );
                self.reanchor = true;
                Err(SourceError::Read(format!(
                    "publishing revision {revision}: the stream went back ({error})"
                )))
            }
            Ok(Some(head)) if head.sequence != expected => {
                tracing::warn!(
                    sequence = head.sequence,
                    revision = head.revision,
                    "another relay published; following the stream"
                );
                self.leading = false;
                Err(SourceError::Read(format!(
                    "publishing revision {revision}: the stream moved to sequence {} ({error})",
                    head.sequence
                )))
            }
            Ok(Some(head)) => {
                // Our last message is where we left it; anything after it
                // is not ours (someone publishing on the subject): expect
                // the stream's real last sequence next time.
                if let Ok(last) = self.reader.last_sequence().await
                    && last > expected
                    && head.sequence == expected
                {
                    tracing::warn!(
                        expected,
                        last,
                        "messages that are not ours follow the last one published; publishing after them"
                    );
                    self.reader.advance(Position {
                        revision: previous,
                        sequence: last,
                    });
                }
                Err(SourceError::Read(format!(
                    "publishing revision {revision}: {error}"
                )))
            }
            _ => Err(SourceError::Read(format!(
                "publishing revision {revision}: {error}"
            ))),
        }
    }

    /// Puts `snapshot` in the bucket and, when it is newer than the
    /// stream's head, a marker telling readers to load it.
    async fn publish_snapshot(&mut self, snapshot: Snapshot) -> Result<Snapshot, SourceError> {
        self.reader.ensure().await?;
        // A periodic snapshot still uploading would name a position this
        // one may no longer match.
        if let Some(task) = self.snapshotting.take() {
            task.abort();
        }
        let expected = self.reader.last_sequence().await?;
        let head = self.reader.head().await?;
        let previous = head.as_ref().map_or(0, |h| h.revision);
        let revision = snapshot.revision();
        let snapshot = Arc::new(snapshot);
        let image = encode(snapshot.clone(), self.meta(revision, expected)).await?;
        let bytes = image.len();
        self.snapshots
            .put(revision, image)
            .await
            .map_err(|e| SourceError::Read(e.to_string()))?;
        tracing::info!(
            revision,
            bytes,
            bucket = self.snapshots.bucket(),
            "snapshot written"
        );
        let sequence = if revision > previous {
            let name = super::objects::object_name(revision);
            let marked = self
                .publish(
                    Kind::Snapshot,
                    revision,
                    previous,
                    expected,
                    name.into_bytes(),
                    None,
                )
                .await;
            match marked {
                Ok(sequence) => sequence,
                Err(e) => {
                    // Unmarked, it would be the newest snapshot with a
                    // position no message continues from.
                    self.snapshots.delete(revision).await;
                    return Err(e);
                }
            }
        } else {
            if revision < previous {
                tracing::error!(
                    revision,
                    stream = previous,
                    "the database is behind the stream (restored from a backup?); readers keep the stream's newer revision until the database passes it"
                );
            }
            expected
        };
        self.reader.advance(Position { revision, sequence });
        self.published_since = 0;
        self.snapshot_at = Instant::now();
        Ok(Arc::try_unwrap(snapshot).unwrap_or_else(|shared| Snapshot::clone(&shared)))
    }

    /// A periodic snapshot of the served revision, written in the
    /// background: the stream already holds every message up to it.
    fn snapshot_if_due(&mut self, after: u64) {
        let due = match self.every {
            SnapshotEvery::Revisions(n) => self.published_since >= n,
            SnapshotEvery::Interval(d) => {
                self.snapshot_at.elapsed() >= d && self.published_since > 0
            }
        };
        if !due || self.snapshotting.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let Some(current) = self.store.as_ref().and_then(|s| s.current()) else {
            return;
        };
        if current.revision() != after {
            return;
        }
        let meta = self.meta(after, self.reader.at().sequence);
        let snapshots = self.snapshots.clone();
        self.published_since = 0;
        self.snapshot_at = Instant::now();
        self.snapshotting = Some(tokio::spawn(async move {
            let written = match encode(current, meta).await {
                Ok(image) => snapshots.put(after, image).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match written {
                Ok(()) => tracing::info!(revision = after, "periodic snapshot written"),
                Err(e) => {
                    tracing::warn!(revision = after, error = %e, "writing a periodic snapshot failed")
                }
            }
        }));
    }

    /// Whether this relay leads now; a standby that won the lease leads
    /// only once it has read the stream to its end.
    async fn lead(&mut self, after: u64) -> Result<bool, SourceError> {
        self.reader.ensure().await?;
        let held = self.lease.held();
        metrics().fleet_leader.set(i64::from(held && self.leading));
        if self.leading && !held {
            tracing::warn!("the relay lease is no longer held; following the stream");
            self.leading = false;
        }
        if !self.leading && held {
            let last = self.reader.last_sequence().await?;
            let at = self.reader.at();
            if at.sequence >= last && at.revision == after {
                tracing::info!(
                    revision = after,
                    sequence = at.sequence,
                    "took over publishing"
                );
                self.leading = true;
            }
        }
        metrics().fleet_leader.set(i64::from(self.leading));
        Ok(self.leading)
    }
}

impl<S: ChangeSource + Send> ChangeSource for Relay<S> {
    async fn load(&mut self) -> Result<Snapshot, SourceError> {
        if self.lease.held() {
            let snapshot = self.db.load().await?;
            let snapshot = self.publish_snapshot(snapshot).await?;
            self.leading = true;
            metrics().fleet_leader.set(1);
            Ok(snapshot)
        } else {
            self.leading = false;
            metrics().fleet_leader.set(0);
            self.reader.load().await
        }
    }

    async fn changes_after(&mut self, after: u64) -> Result<Option<Batch>, SourceError> {
        if !self.lead(after).await? {
            return self.reader.changes_after(after).await;
        }
        if after != self.reader.at().revision || self.reanchor {
            self.reanchor = false;
            return Ok(Some(Batch {
                revision: after + 1,
                changes: Vec::new(),
                reload: Some(Reload::Wide(format!(
                    "the stream is at revision {}, the relay at {after}",
                    self.reader.at().revision
                ))),
                committed_at: None,
            }));
        }
        self.snapshot_if_due(after);
        let Some(mut batch) = self.db.changes_after(after).await? else {
            return Ok(None);
        };
        if batch.reload.is_some() {
            // The loop reloads, and the load publishes a snapshot.
            return Ok(Some(batch));
        }
        let body = crate::image::encode_changes(&batch.changes)
            .map_err(|e| SourceError::Read(format!("encoding revision {}: {e}", batch.revision)))?;
        // Headers and protocol overhead: well under 1 KiB.
        let room = self.reader.max_payload().saturating_sub(1024);
        if body.len() > room {
            batch.reload = Some(Reload::Wide(format!(
                "revision {} is {} bytes, more than a message may carry ({room})",
                batch.revision,
                body.len()
            )));
            return Ok(Some(batch));
        }
        let expected = self.reader.at().sequence;
        let sequence = self
            .publish(
                Kind::Changes,
                batch.revision,
                after,
                expected,
                body,
                batch.committed_at,
            )
            .await?;
        self.reader.advance(Position {
            revision: batch.revision,
            sequence,
        });
        self.published_since += 1;
        Ok(Some(batch))
    }

    async fn wait(&mut self) {
        if self.leading {
            tokio::select! {
                () = self.db.wait() => {}
                () = self.lease.changed() => {}
            }
        } else {
            tokio::select! {
                () = self.reader.wait() => {}
                () = self.lease.changed() => {}
            }
        }
    }
}
