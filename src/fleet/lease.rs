//! The relays' lease: one key in a JetStream key-value bucket, renewed by
//! compare-and-set on the key's revision. No per-key TTL (NATS 2.11) and
//! no shared clock: a standby takes over when it has seen the same key
//! revision for half the lease on its own monotonic clock, and a holder
//! stops publishing a third of a lease after its last good renewal, so
//! the two never overlap while clocks run at the same rate (and the
//! stream's expected last sequence fences a holder that was paused).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use tokio::sync::watch;

use super::FleetError;

const KEY: &str = "relay";

/// This relay's view of the lease, shared between its renewal task and
/// the publisher.
#[derive(Debug, Clone)]
pub struct Lease {
    holder: Arc<str>,
    state: watch::Receiver<Option<Instant>>,
    /// While any clone lives, the renewal task renews; when the relay that
    /// holds them is gone (its follower ended or panicked), it stops, so
    /// that a standby takes over instead of waiting on a lease kept alive
    /// for nobody.
    _alive: Arc<()>,
}

impl Lease {
    /// Starts the renewal task on bucket `bucket` (created when missing)
    /// for `holder`; it ends when `stop` turns true, giving the lease up.
    pub async fn start(
        js: &jetstream::Context,
        bucket: &str,
        holder: String,
        lease: Duration,
        stop: watch::Receiver<bool>,
    ) -> Result<Lease, FleetError> {
        let store = match js.get_key_value(bucket).await {
            Ok(store) => store,
            Err(_) => {
                create_bucket(js, bucket).await?;
                js.get_key_value(bucket)
                    .await
                    .map_err(|e| FleetError::nats(format!("opening bucket {bucket}"), e))?
            }
        };
        let (tx, rx) = watch::channel(None);
        let holder: Arc<str> = holder.into();
        let alive = Arc::new(());
        tokio::spawn(renew(
            store,
            holder.clone(),
            lease,
            tx,
            stop,
            Arc::downgrade(&alive),
        ));
        Ok(Lease {
            holder,
            state: rx,
            _alive: alive,
        })
    }

    /// Whether this relay may publish now.
    pub fn held(&self) -> bool {
        self.state
            .borrow()
            .is_some_and(|until| Instant::now() < until)
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Returns when the lease may have been won or lost.
    pub async fn changed(&mut self) {
        if self.state.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Creates the key-value bucket's stream as the client's
/// `create_key_value` would (one value per key, rollups, direct gets),
/// without the account query before it, whose reply from a 2.9 server
/// this client version cannot parse.
async fn create_bucket(js: &jetstream::Context, bucket: &str) -> Result<(), FleetError> {
    use async_nats::jetstream::stream::{Config, DiscardPolicy};
    js.create_stream(Config {
        name: format!("KV_{bucket}"),
        description: Some("ticket-authz relay lease".to_owned()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .map(|_| ())
    .map_err(|e| FleetError::nats(format!("creating bucket {bucket}"), e))
}

/// The renewal loop: every sixth of the lease, renew what is held or look
/// whether the holder's key has stood still long enough to take it.
async fn renew(
    store: kv::Store,
    holder: Arc<str>,
    lease: Duration,
    tx: watch::Sender<Option<Instant>>,
    mut stop: watch::Receiver<bool>,
    alive: std::sync::Weak<()>,
) {
    let tick = lease / 6;
    let value = Bytes::from(holder.to_string());
    // Held: the key revision we wrote last. Not held: the revision seen
    // and since when it has not moved.
    let mut ours: Option<u64> = None;
    let mut seen: Option<(u64, Instant)> = None;
    loop {
        let started = Instant::now();
        match ours {
            Some(revision) => match store.update(KEY, value.clone(), revision).await {
                Ok(next) => {
                    ours = Some(next);
                    tx.send_replace(Some(started + lease / 3));
                }
                Err(e) => {
                    let moved = matches!(e.kind(), kv::UpdateErrorKind::WrongLastRevision);
                    // A renewal whose reply was lost moved the key too: it
                    // is still ours when it holds our name.
                    let mine = match store.entry(KEY).await {
                        Ok(Some(entry))
                            if moved
                                && entry.operation == kv::Operation::Put
                                && *entry.value == *holder.as_bytes() =>
                        {
                            Some(entry.revision)
                        }
                        _ => None,
                    };
                    if let Some(revision) = mine {
                        ours = Some(revision);
                    } else if moved {
                        tracing::warn!(holder = %holder, "the relay lease was taken over; no longer publishing");
                        ours = None;
                        tx.send_replace(None);
                    } else {
                        // Unknown: keep what we had; `held` lapses by itself
                        // a third of a lease after the last good renewal.
                        tracing::warn!(error = %e, "renewing the relay lease failed");
                    }
                }
            },
            None => {
                let attempt = match store.entry(KEY).await {
                    Ok(None) => Some(
                        store
                            .create(KEY, value.clone())
                            .await
                            .map_err(|e| e.to_string()),
                    ),
                    Ok(Some(entry)) if entry.operation != kv::Operation::Put => Some(
                        store
                            .update(KEY, value.clone(), entry.revision)
                            .await
                            .map_err(|e| e.to_string()),
                    ),
                    Ok(Some(entry)) => match seen {
                        Some((revision, since)) if revision == entry.revision => {
                            if since.elapsed() >= lease / 2 {
                                Some(
                                    store
                                        .update(KEY, value.clone(), entry.revision)
                                        .await
                                        .map_err(|e| e.to_string()),
                                )
                            } else {
                                None
                            }
                        }
                        _ => {
                            seen = Some((entry.revision, Instant::now()));
                            None
                        }
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the relay lease failed");
                        None
                    }
                };
                match attempt {
                    Some(Ok(revision)) => {
                        tracing::info!(holder = %holder, "relay lease acquired; publishing");
                        ours = Some(revision);
                        seen = None;
                        tx.send_replace(Some(started + lease / 3));
                    }
                    Some(Err(e)) => tracing::debug!(error = %e, "another relay holds the lease"),
                    None => {}
                }
            }
        }
        tokio::select! {
            _ = stop.changed() => break,
            () = tokio::time::sleep(tick) => {}
        }
        if *stop.borrow() || alive.strong_count() == 0 {
            break;
        }
    }
    // Hand over at once instead of making a standby wait out the lease.
    if let Some(revision) = ours {
        tx.send_replace(None);
        if let Err(e) = store.delete_expect_revision(KEY, Some(revision)).await {
            tracing::debug!(error = %e, "releasing the relay lease failed");
        }
    }
}
