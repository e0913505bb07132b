//! `serve --snapshot-dir`: a [`ChangeSource`] wrapper that starts from
//! the snapshot saved on disk, when there is a usable one, and catches up
//! from the source's change log or stream instead of loading in full; and
//! saves the served snapshot, atomically, at most every interval.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::source::{Batch, ChangeSource, SourceError};
use crate::image::ImageMeta;
use crate::snapshot::Snapshot;
use crate::store::Store;

/// The file's name in the directory.
pub const SNAPSHOT_FILE: &str = "snapshot.tai";

/// Which source a saved snapshot must come from to be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The database's identity; `None` when the source is a stream, whose
    /// revision chain refuses a foreign snapshot by itself.
    pub source: Option<String>,
    /// The stream's name, "" for a database source.
    pub stream: String,
}

/// The wrapper: the first load from the file, later ones from `inner`.
#[derive(Debug)]
pub struct WarmStart<S> {
    inner: S,
    dir: PathBuf,
    expected: Expected,
    /// What the saved file records as its source: the database identity.
    source: String,
    interval: Duration,
    store: Option<Arc<Store>>,
    started: bool,
    saved_at: Instant,
    saved_revision: u64,
    saving: Option<tokio::task::JoinHandle<()>>,
}

impl<S: ChangeSource> WarmStart<S> {
    /// `source` is written into saved files (a database's identity, or
    /// the stream's source as the stream names it, "" when unknown).
    pub fn new(
        inner: S,
        dir: PathBuf,
        expected: Expected,
        source: String,
        interval: Duration,
    ) -> Self {
        WarmStart {
            inner,
            dir,
            expected,
            source,
            interval,
            store: None,
            started: false,
            saved_at: Instant::now(),
            saved_revision: 0,
            saving: None,
        }
    }

    /// The store the loop follows into: what is saved.
    pub fn set_store(&mut self, store: Arc<Store>) {
        self.store = Some(store);
    }
}

/// The snapshot saved in `dir`, if it decodes and is the expected
/// source's.
async fn saved(dir: PathBuf, expected: Expected) -> Option<(ImageMeta, Snapshot)> {
    {
        let path = dir.join(SNAPSHOT_FILE);
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "the saved snapshot cannot be read; loading from the source");
                return None;
            }
        };
        let decoded = tokio::task::spawn_blocking(move || crate::image::decode_snapshot(&bytes))
            .await
            .ok()?;
        let (meta, snapshot) = match decoded {
            Ok(decoded) => decoded,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "the saved snapshot is damaged; loading from the source");
                return None;
            }
        };
        let foreign = if meta.stream != expected.stream {
            Some(format!(
                "stream `{}`, not `{}`",
                meta.stream, expected.stream
            ))
        } else {
            expected
                .source
                .as_ref()
                .filter(|s| **s != meta.source)
                .map(|s| format!("source `{}`, not `{s}`", meta.source))
        };
        if let Some(why) = foreign {
            tracing::warn!(file = %path.display(), why, "the saved snapshot is of another source; loading from the source");
            return None;
        }
        Some((meta, snapshot))
    }
}

impl<S: ChangeSource> WarmStart<S> {
    /// Saves the served snapshot when the interval has passed since the
    /// last save and it is newer, in the background.
    fn save_if_due(&mut self, after: u64) {
        if self.saved_at.elapsed() < self.interval
            || after <= self.saved_revision
            || self.saving.as_ref().is_some_and(|t| !t.is_finished())
        {
            return;
        }
        let Some(current) = self.store.as_ref().and_then(|s| s.current()) else {
            return;
        };
        let Some(position) = self.inner.position_at(after) else {
            return;
        };
        if current.revision() != after {
            return;
        }
        let meta = ImageMeta {
            revision: after,
            source: self.source.clone(),
            stream: self.expected.stream.clone(),
            position,
            created_at_ms: crate::image::unix_millis(),
        };
        self.saved_at = Instant::now();
        self.saved_revision = after;
        let dir = self.dir.clone();
        self.saving = Some(tokio::task::spawn_blocking(move || {
            match save(&dir, &meta, &current) {
                Ok(bytes) => tracing::debug!(revision = meta.revision, bytes, "snapshot saved"),
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "saving the snapshot failed")
                }
            }
        }));
    }
}

/// Writes the image to a temporary file, syncs it, and renames it over
/// the saved one: a reader (or a crash) sees the old file or the new one.
fn save(dir: &Path, meta: &ImageMeta, snapshot: &Snapshot) -> Result<usize, String> {
    use std::io::Write as _;
    let image = crate::image::encode_snapshot(meta, snapshot).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let tmp = dir.join(format!(".{SNAPSHOT_FILE}.{}", std::process::id()));
    let mut file = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    file.write_all(&image)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(SNAPSHOT_FILE)).map_err(|e| e.to_string())?;
    // The rename itself is durable once the directory is synced.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(image.len())
}

impl<S: ChangeSource> ChangeSource for WarmStart<S> {
    async fn load(&mut self) -> Result<Snapshot, SourceError> {
        if self.started {
            return self.inner.load().await;
        }
        let Some((meta, mut snapshot)) = saved(self.dir.clone(), self.expected.clone()).await
        else {
            self.started = true;
            return self.inner.load().await;
        };
        self.inner.resume(meta.revision, meta.position);
        // Caught up before the first publish, so that SERVING means what
        // a full load would have meant: the source as it stands.
        loop {
            let revision = snapshot.revision();
            let batch = match self.inner.changes_after(revision).await? {
                None => break,
                Some(batch) if batch.reload.is_some() => {
                    // Back to a clean first load: what the batch asked of
                    // the source (a newer snapshot) held for the saved
                    // revision, not for a start that has served nothing.
                    self.inner.resume(0, 0);
                    tracing::info!(
                        revision,
                        why = %batch.reload.as_ref().map(ToString::to_string).unwrap_or_default(),
                        "the saved snapshot cannot be caught up; loading in full"
                    );
                    self.started = true;
                    return self.inner.load().await;
                }
                Some(batch) => batch,
            };
            snapshot = super::sync::apply_owned(snapshot, batch).await?;
        }
        self.started = true;
        self.saved_revision = meta.revision;
        tracing::info!(
            saved = meta.revision,
            revision = snapshot.revision(),
            dir = %self.dir.display(),
            "started from the saved snapshot and caught up"
        );
        Ok(snapshot)
    }

    async fn changes_after(&mut self, after: u64) -> Result<Option<Batch>, SourceError> {
        self.save_if_due(after);
        self.inner.changes_after(after).await
    }

    async fn wait(&mut self) {
        self.inner.wait().await;
    }

    fn position_at(&self, revision: u64) -> Option<u64> {
        self.inner.position_at(revision)
    }

    fn resume(&mut self, revision: u64, position: u64) {
        self.inner.resume(revision, position);
    }
}
