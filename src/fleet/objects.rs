//! The snapshot bucket: images named by revision, put whole before any
//! message points at them, old ones deleted only once a newer one is
//! complete. A half-written object has no info entry, so it is never
//! listed, never read.

use async_nats::jetstream::{self, object_store::ObjectStore};
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

use super::FleetError;

const PREFIX: &str = "snapshot-";

/// How many complete snapshots the bucket keeps: the newest, and one
/// before it for a reader that finds the newest damaged.
const KEEP: usize = 2;

/// The object store bucket of snapshot images.
#[derive(Clone)]
pub struct Snapshots {
    store: ObjectStore,
    bucket: String,
}

impl std::fmt::Debug for Snapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshots")
            .field("bucket", &self.bucket)
            .finish()
    }
}

/// One listed snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub revision: u64,
    pub name: String,
}

/// The object name of the snapshot at `revision`; zero-padded so that
/// names sort as revisions do.
pub fn object_name(revision: u64) -> String {
    format!("{PREFIX}{revision:020}")
}

impl Snapshots {
    /// The bucket, created when missing (the relay).
    pub async fn create(js: &jetstream::Context, bucket: &str) -> Result<Self, FleetError> {
        let store = match js.get_object_store(bucket).await {
            Ok(store) => store,
            Err(_) => js
                .create_object_store(jetstream::object_store::Config {
                    bucket: bucket.to_owned(),
                    description: Some("ticket-authz snapshots".to_owned()),
                    ..Default::default()
                })
                .await
                .map_err(|e| FleetError::nats(format!("creating bucket {bucket}"), e))?,
        };
        Ok(Snapshots {
            store,
            bucket: bucket.to_owned(),
        })
    }

    /// The bucket, which must exist (a sidecar: the relay makes it).
    pub async fn open(js: &jetstream::Context, bucket: &str) -> Result<Self, FleetError> {
        let store = js
            .get_object_store(bucket)
            .await
            .map_err(|e| FleetError::nats(format!("opening bucket {bucket}"), e))?;
        Ok(Snapshots {
            store,
            bucket: bucket.to_owned(),
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Complete snapshots, newest first.
    pub async fn list(&self) -> Result<Vec<Listed>, FleetError> {
        let what = || format!("listing bucket {}", self.bucket);
        let mut list = self
            .store
            .list()
            .await
            .map_err(|e| FleetError::nats(what(), e))?;
        let mut found = Vec::new();
        while let Some(info) = list.next().await {
            let info = info.map_err(|e| FleetError::nats(what(), e))?;
            if info.deleted {
                continue;
            }
            if let Some(revision) = info
                .name
                .strip_prefix(PREFIX)
                .and_then(|r| r.parse::<u64>().ok())
            {
                found.push(Listed {
                    revision,
                    name: info.name,
                });
            }
        }
        found.sort_by_key(|l| std::cmp::Reverse(l.revision));
        Ok(found)
    }

    /// The bytes of one snapshot.
    pub async fn fetch(&self, name: &str) -> Result<Vec<u8>, FleetError> {
        let what = || format!("reading {name} from bucket {}", self.bucket);
        let mut object = self
            .store
            .get(name)
            .await
            .map_err(|e| FleetError::nats(what(), e))?;
        let mut bytes = Vec::new();
        object
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| FleetError::nats(what(), e))?;
        Ok(bytes)
    }

    /// Deletes the snapshot of `revision`, logging a failure.
    pub async fn delete(&self, revision: u64) {
        let name = object_name(revision);
        if let Err(e) = self.store.delete(&name).await {
            tracing::warn!(object = %name, error = %e, "deleting a snapshot failed");
        }
    }

    /// Puts the image of `revision`, then deletes all but the newest
    /// [`KEEP`] complete ones.
    pub async fn put(&self, revision: u64, image: Vec<u8>) -> Result<(), FleetError> {
        let name = object_name(revision);
        let mut reader = std::io::Cursor::new(image);
        self.store
            .put(name.as_str(), &mut reader)
            .await
            .map_err(|e| {
                FleetError::nats(format!("writing {name} to bucket {}", self.bucket), e)
            })?;
        for old in self.list().await?.into_iter().skip(KEEP) {
            if let Err(e) = self.store.delete(&old.name).await {
                tracing::warn!(object = %old.name, error = %e, "deleting an old snapshot failed");
            }
        }
        Ok(())
    }
}
