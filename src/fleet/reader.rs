//! `serve --nats-url`: the stream as a [`ChangeSource`]. A load bootstraps
//! from the newest usable snapshot in the bucket and catches up to the
//! stream's head as read then; later reads follow the revision chain
//! message by message, and a break in it (retention, a snapshot marker)
//! asks the sync loop for a full reload, which bootstraps again.

use std::time::Duration;

use async_nats::jetstream::{self, stream::Stream};
use futures_util::StreamExt;

use super::objects::Snapshots;
use super::wire::{self, Entry, Kind};
use super::{FleetError, NatsSettings};
use crate::follow::{Batch, ChangeSource, Reload, SourceError};
use crate::snapshot::{Change, Snapshot};
use crate::telemetry::metrics::metrics;

/// Where a reader stands: the revision applied and the stream sequence of
/// the last message it includes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    pub revision: u64,
    pub sequence: u64,
}

/// A batch stops growing past this many bytes of messages, so that one
/// apply stays short after a long absence.
const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// The stream of one fleet, read from a position.
#[derive(Debug)]
pub struct StreamSource {
    client: async_nats::Client,
    js: jetstream::Context,
    settings: NatsSettings,
    stream: Option<Stream>,
    snapshots: Option<Snapshots>,
    wake: Option<async_nats::Subscriber>,
    position: Position,
    /// The position a returned batch reaches, made current once the loop
    /// asks for what follows it.
    pending: Option<Position>,
    /// The lowest snapshot revision the next load may use: after a marker
    /// or a gap, older ones cannot continue the chain.
    need: u64,
    poll: Duration,
}

fn read_error(e: FleetError) -> SourceError {
    SourceError::Read(e.to_string())
}

impl StreamSource {
    /// A reader of the fleet's stream on `client`; nothing is read until
    /// the first load.
    pub fn new(client: async_nats::Client, settings: NatsSettings, poll: Duration) -> Self {
        let js = jetstream::new(client.clone());
        StreamSource {
            client,
            js,
            settings,
            stream: None,
            snapshots: None,
            wake: None,
            position: Position::default(),
            pending: None,
            need: 0,
            poll,
        }
    }

    pub fn at(&self) -> Position {
        self.position
    }

    /// Records a message this process published itself (the relay).
    pub fn advance(&mut self, position: Position) {
        self.position = position;
        self.pending = None;
    }

    /// The largest message the server takes.
    pub fn max_payload(&self) -> usize {
        self.client.server_info().max_payload
    }

    pub fn context(&self) -> &jetstream::Context {
        &self.js
    }

    pub fn settings(&self) -> &NatsSettings {
        &self.settings
    }

    /// Opens the stream and the bucket and subscribes to wake-ups, once.
    pub async fn ensure(&mut self) -> Result<(), SourceError> {
        if self.stream.is_none() {
            let stream = self
                .js
                .get_stream(&self.settings.stream)
                .await
                .map_err(|e| {
                    read_error(FleetError::nats(
                        format!("opening stream {}", self.settings.stream),
                        e,
                    ))
                })?;
            self.stream = Some(stream);
        }
        if self.snapshots.is_none() {
            self.snapshots = Some(
                Snapshots::open(&self.js, &self.settings.bucket)
                    .await
                    .map_err(read_error)?,
            );
        }
        if self.wake.is_none() {
            // Every message the stream stores is also delivered to plain
            // subscribers: a wake-up without polling. The data itself is
            // read by sequence.
            self.wake = Some(
                self.client
                    .subscribe(self.settings.subject.clone())
                    .await
                    .map_err(|e| {
                        read_error(FleetError::nats(
                            format!("subscribing to {}", self.settings.subject),
                            e,
                        ))
                    })?,
            );
        }
        Ok(())
    }

    fn stream(&self) -> Result<&Stream, SourceError> {
        self.stream
            .as_ref()
            .ok_or_else(|| SourceError::Read("the stream is not open".to_owned()))
    }

    fn connected(&self) -> Result<(), SourceError> {
        match self.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            state => Err(SourceError::Read(format!(
                "nats {}: {state}; serving the last revision",
                self.settings.url
            ))),
        }
    }

    /// The stream's last sequence now.
    pub async fn last_sequence(&self) -> Result<u64, SourceError> {
        let info = self.stream()?.get_info().await.map_err(|e| {
            read_error(FleetError::nats(
                format!("reading stream {}", self.settings.stream),
                e,
            ))
        })?;
        Ok(info.state.last_sequence)
    }

    /// The first message of ours after sequence `after`, skipping (and
    /// logging) any that is not, with the last sequence stepped over.
    async fn entry_after(&self, mut after: u64) -> Result<(Option<Entry>, u64), SourceError> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        loop {
            let message = match self
                .stream()?
                .get_first_raw_message_by_subject(&self.settings.subject, after + 1)
                .await
            {
                Ok(message) => message,
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
                    return Ok((None, after));
                }
                Err(e) => {
                    return Err(read_error(FleetError::nats(
                        format!("reading stream {}", self.settings.stream),
                        e,
                    )));
                }
            };
            let sequence = message.sequence;
            match wire::parse(message) {
                Ok(entry) => return Ok((Some(entry), sequence)),
                Err(e) => {
                    metrics().refresh_error(crate::telemetry::metrics::RefreshError::Read);
                    tracing::error!(error = %e, "a message on the stream is not a ticket-authz message; skipped");
                    after = sequence;
                }
            }
        }
    }

    /// Whether the stream holds any message on the subject, ours or not,
    /// after sequence `after`.
    async fn any_after(&self, after: u64) -> Result<bool, SourceError> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        match self
            .stream()?
            .get_first_raw_message_by_subject(&self.settings.subject, after + 1)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(false),
            Err(e) => Err(read_error(FleetError::nats(
                format!("reading stream {}", self.settings.stream),
                e,
            ))),
        }
    }

    /// The last message of ours in the stream, if any: a message that is
    /// not ours at the tail (someone publishing on the subject by hand)
    /// is stepped over backwards, so that it cannot stop the relay.
    pub async fn head(&self) -> Result<Option<Entry>, SourceError> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        let failed = |e: &dyn std::fmt::Display| {
            read_error(FleetError::nats(
                format!("reading stream {}", self.settings.stream),
                e,
            ))
        };
        let last = match self
            .stream()?
            .get_last_raw_message_by_subject(&self.settings.subject)
            .await
        {
            Ok(message) => message,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(None),
            Err(e) => return Err(failed(&e)),
        };
        let mut sequence = last.sequence;
        let mut message = last;
        // Bounded: a tail of foreign messages longer than this is a
        // misconfigured subject, reported as such.
        for _ in 0..1000 {
            if let Ok(entry) = wire::parse(message) {
                return Ok(Some(entry));
            }
            if sequence <= 1 {
                return Ok(None);
            }
            sequence -= 1;
            message = loop {
                match self.stream()?.get_raw_message(sequence).await {
                    Ok(m) => break m,
                    Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
                        if sequence <= 1 {
                            return Ok(None);
                        }
                        sequence -= 1;
                    }
                    Err(e) => return Err(failed(&e)),
                }
            };
        }
        Err(SourceError::Read(format!(
            "the last 1000 messages on {} are not ticket-authz messages",
            self.settings.subject
        )))
    }

    /// Whether, with no message after `at`, the stream lost what this
    /// reader needs: its last sequence is below what was read (a server
    /// killed before it wrote them out, a stream re-created), or above it
    /// with nothing there (retention removed the messages after `at`).
    /// Either way only a snapshot newer than the applied revision can
    /// continue.
    async fn lost(&mut self, at: Position) -> Result<bool, SourceError> {
        let mut last = self.last_sequence().await?;
        if last > at.sequence {
            // A message stored between the two reads, or one that is not
            // ours (which `entry_after` steps over), is not a loss.
            if self.any_after(at.sequence).await? {
                return Ok(false);
            }
            last = self.last_sequence().await?;
        }
        if last == at.sequence {
            return Ok(false);
        }
        metrics().fleet_rebootstraps.inc();
        tracing::warn!(
            last,
            read = at.sequence,
            revision = at.revision,
            "the stream no longer holds the messages after the applied revision; bootstrapping from a newer snapshot"
        );
        self.need = at.revision + 1;
        self.position.sequence = last;
        Ok(true)
    }

    /// The newest snapshot at `need` or later that decodes, belongs to this
    /// stream and to the source its messages come from; a damaged or
    /// foreign one is logged and the next older one tried.
    async fn bootstrap(&mut self) -> Result<Snapshot, SourceError> {
        let snapshots = self
            .snapshots
            .clone()
            .ok_or_else(|| SourceError::Read("the bucket is not open".to_owned()))?;
        let source = self.head().await?.map(|e| e.source);
        let listed = snapshots.list().await.map_err(read_error)?;
        for candidate in listed.iter().filter(|l| l.revision >= self.need) {
            let bytes = match snapshots.fetch(&candidate.name).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    // Deleted since the list (a newer one completed), or
                    // unreadable: an older one may still do.
                    tracing::warn!(object = %candidate.name, error = %e, "reading a snapshot failed; trying an older one");
                    continue;
                }
            };
            let decoded =
                tokio::task::spawn_blocking(move || crate::image::decode_snapshot(&bytes))
                    .await
                    .map_err(|e| SourceError::Read(e.to_string()))?;
            let (meta, snapshot) = match decoded {
                Ok(decoded) => decoded,
                Err(e) => {
                    metrics().fleet_snapshots_refused.inc();
                    tracing::error!(object = %candidate.name, bucket = snapshots.bucket(), error = %e, "snapshot refused; trying an older one");
                    continue;
                }
            };
            let foreign = if meta.stream != self.settings.stream {
                Some(format!("it belongs to stream {}", meta.stream))
            } else {
                source
                    .as_ref()
                    .filter(|s| **s != meta.source)
                    .map(|s| format!("it comes from {}, the stream from {s}", meta.source))
            };
            if let Some(why) = foreign {
                metrics().fleet_snapshots_refused.inc();
                tracing::warn!(object = %candidate.name, bucket = snapshots.bucket(), why, "snapshot of another source ignored");
                continue;
            }
            tracing::info!(object = %candidate.name, revision = meta.revision, sequence = meta.position, "snapshot loaded");
            self.position = Position {
                revision: meta.revision,
                sequence: meta.position,
            };
            self.pending = None;
            self.need = 0;
            return Ok(snapshot);
        }
        Err(SourceError::Read(format!(
            "bucket {} holds no usable snapshot at revision {} or later (yet)",
            snapshots.bucket(),
            self.need
        )))
    }

    /// Messages after the position as one batch: changes until the end,
    /// the size bound or a break in the chain. A marker or a gap alone is
    /// a reload batch.
    async fn read_batch(&mut self) -> Result<Option<Batch>, SourceError> {
        let mut at = self.pending.unwrap_or(self.position);
        let mut changes: Vec<Change> = Vec::new();
        let mut bytes = 0usize;
        let mut committed_at = None;
        while bytes < MAX_BATCH_BYTES {
            let (entry, stepped) = self.entry_after(at.sequence).await?;
            let Some(entry) = entry else {
                if changes.is_empty() && stepped > at.sequence {
                    // Only messages that are not ours: read past them.
                    at.sequence = stepped;
                    self.position.sequence = self.position.sequence.max(stepped);
                }
                if changes.is_empty() && self.lost(at).await? {
                    return Ok(Some(Batch {
                        revision: at.revision + 1,
                        changes: Vec::new(),
                        reload: Some(Reload::Gap { floor: at.revision }),
                        committed_at: None,
                    }));
                }
                break;
            };
            if entry.revision <= at.revision {
                // Already in what is applied (a snapshot's own marker, a
                // duplicate): step over it.
                at.sequence = entry.sequence;
                if changes.is_empty() {
                    self.position.sequence = self.position.sequence.max(entry.sequence);
                }
                continue;
            }
            let reload = if entry.previous != at.revision {
                metrics().fleet_rebootstraps.inc();
                tracing::warn!(
                    applied = at.revision,
                    next = entry.revision,
                    previous = entry.previous,
                    sequence = entry.sequence,
                    "the stream no longer holds the next revision; bootstrapping from a newer snapshot"
                );
                // Only a snapshot past what is served continues: one at
                // `previous` or older would land on the same break again.
                Some((
                    Reload::Gap {
                        floor: entry.previous,
                    },
                    entry.previous.max(at.revision + 1),
                ))
            } else if entry.kind == Kind::Snapshot {
                Some((Reload::Bulk, entry.revision))
            } else {
                None
            };
            if let Some((why, need)) = reload {
                if !changes.is_empty() {
                    break;
                }
                self.need = need;
                return Ok(Some(Batch {
                    revision: entry.revision,
                    changes: Vec::new(),
                    reload: Some(why),
                    committed_at: entry.committed_at,
                }));
            }
            bytes += entry.payload.len();
            let payload = entry.payload.clone();
            match crate::image::decode_changes(&payload) {
                Ok(decoded) => changes.extend(decoded),
                Err(e) => {
                    if !changes.is_empty() {
                        break;
                    }
                    self.need = entry.revision;
                    return Ok(Some(Batch {
                        revision: entry.revision,
                        changes: Vec::new(),
                        reload: Some(Reload::Undecodable(format!(
                            "stream message {}: {e}",
                            entry.sequence
                        ))),
                        committed_at: entry.committed_at,
                    }));
                }
            }
            committed_at = entry.committed_at;
            at = Position {
                revision: entry.revision,
                sequence: entry.sequence,
            };
        }
        if at.revision == self.pending.unwrap_or(self.position).revision {
            return Ok(None);
        }
        self.pending = Some(at);
        Ok(Some(Batch {
            revision: at.revision,
            changes,
            reload: None,
            committed_at,
        }))
    }
}

impl StreamSource {
    /// The newest usable snapshot, caught up to the head as read before
    /// the bootstrap: health turns SERVING on what was in the stream when
    /// the sidecar started.
    async fn load_caught_up(&mut self) -> Result<Snapshot, SourceError> {
        self.connected()?;
        self.ensure().await?;
        let head = self.last_sequence().await?;
        let mut snapshot = self.bootstrap().await?;
        while self.position.sequence < head {
            let Some(batch) = self.read_batch().await? else {
                break;
            };
            if batch.reload.is_some() {
                let again = self.bootstrap().await?;
                if again.revision() <= snapshot.revision() {
                    // The same snapshot would break the same way: wait
                    // for a newer one instead of reading it in a loop.
                    return Err(SourceError::Read(format!(
                        "snapshot {} cannot be caught up to the stream (at sequence {}); waiting for a newer one",
                        again.revision(),
                        self.position.sequence
                    )));
                }
                snapshot = again;
                continue;
            }
            snapshot = crate::follow::apply_owned(snapshot, batch).await?;
            if let Some(reached) = self.pending.take() {
                self.position = reached;
            }
        }
        Ok(snapshot)
    }
}

impl ChangeSource for StreamSource {
    async fn load(&mut self) -> Result<Snapshot, SourceError> {
        // All or nothing: a load that fails part way leaves the reader
        // where the served revision is, so that it goes on from there.
        let before = (self.position, self.pending, self.need);
        let loaded = self.load_caught_up().await;
        if loaded.is_err() {
            (self.position, self.pending, self.need) = before;
        }
        loaded
    }

    async fn changes_after(&mut self, after: u64) -> Result<Option<Batch>, SourceError> {
        self.connected()?;
        self.ensure().await?;
        if let Some(reached) = self.pending.take()
            && reached.revision == after
        {
            self.position = reached;
        }
        if after != self.position.revision {
            // The loop serves something this reader did not lead it to:
            // only a bootstrap can put the two in step again.
            self.need = after;
            return Ok(Some(Batch {
                revision: after + 1,
                changes: Vec::new(),
                reload: Some(Reload::Wide(format!(
                    "the stream reader is at revision {}, the store at {after}",
                    self.position.revision
                ))),
                committed_at: None,
            }));
        }
        self.read_batch().await
    }

    fn position_at(&self, revision: u64) -> Option<u64> {
        [self.pending, Some(self.position)]
            .into_iter()
            .flatten()
            .find(|p| p.revision == revision)
            .map(|p| p.sequence)
    }

    fn resume(&mut self, revision: u64, position: u64) {
        self.position = Position {
            revision,
            sequence: position,
        };
        self.pending = None;
        // Nothing served yet needs a newer snapshot than any.
        self.need = 0;
    }

    async fn wait(&mut self) {
        let Some(wake) = self.wake.as_mut() else {
            tokio::time::sleep(self.poll).await;
            return;
        };
        tokio::select! {
            next = wake.next() => {
                if next.is_none() {
                    self.wake = None;
                }
            }
            () = tokio::time::sleep(self.poll) => {}
        }
    }
}
