//! Our own schema as a [`ChangeSource`]: the consistent load, the change
//! log decoded into typed changes (a pruned gap asks for a full reload),
//! and the wake-up: PostgreSQL `NOTIFY` with a poll as a safety net and a
//! reconnect backoff, or a poll tick.

use std::time::Duration;

use sqlx::postgres::PgListener;

use super::{Database, LoadScope, decode};
use crate::follow::{Batch, ChangeSource, Reload, SourceError};
use crate::snapshot::Snapshot;

/// How the follower learns of changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    /// PostgreSQL `LISTEN` (with a poll every interval as a safety net).
    Listen,
    /// Read the change log every interval.
    Poll,
}

/// The first wait before reconnecting the notification connection, and
/// the longest.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// A database of our schema, followed through its change log.
#[derive(Debug)]
pub struct DbSource {
    db: Database,
    notify: Notify,
    interval: Duration,
    listen: Listen,
    scope: LoadScope,
}

/// The wait on PostgreSQL's `ticket_authz` channel, which the commit
/// trigger of every capture there notifies (ours and a mapping's): a
/// notification, or the interval as a safety net, with a reconnect
/// backoff when the notification connection fails.
#[derive(Debug)]
pub struct Listen {
    listener: Option<PgListener>,
    backoff: Duration,
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            listener: None,
            backoff: BACKOFF.0,
        }
    }
}

impl DbSource {
    /// Follows `db`, woken by `notify` and at least every `interval`.
    pub fn new(db: Database, notify: Notify, interval: Duration) -> Self {
        DbSource {
            db,
            notify,
            interval,
            listen: Listen::default(),
            scope: LoadScope::Everything,
        }
    }

    /// What a full load reads (everything unless told otherwise: the
    /// ticket cache follows the graph only).
    pub fn scope(mut self, scope: LoadScope) -> Self {
        self.scope = scope;
        self
    }
}

impl Listen {
    /// Connects the notification connection, or waits out the backoff
    /// after a failure.
    async fn connect(&mut self, pool: &sqlx::PgPool) {
        let cause = match PgListener::connect_with(pool).await {
            Ok(mut l) => match l.listen("ticket_authz").await {
                Ok(()) => {
                    self.listener = Some(l);
                    self.backoff = BACKOFF.0;
                    // The caller reads what was committed while not listening.
                    return;
                }
                Err(e) => format!("LISTEN failed: {e}"),
            },
            Err(e) => format!("cannot open the notification connection: {e}"),
        };
        tracing::warn!(error = %cause, "not listening; retrying after {:?}", self.backoff);
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(BACKOFF.1);
    }

    /// Returns on a notification, after `interval` at the latest, or once
    /// the notification connection is (re)connected: the caller then reads
    /// the log, which catches up whatever a lost connection missed.
    pub async fn wait(&mut self, pool: &sqlx::PgPool, interval: Duration) {
        let Some(listener) = self.listener.as_mut() else {
            return self.connect(pool).await;
        };
        match tokio::time::timeout(interval, listener.try_recv()).await {
            // A notification, or the interval's safety-net read.
            Ok(Ok(Some(_))) | Err(_) => {}
            // The connection dropped; it reconnects on the next call, and the
            // read catches up what was missed.
            Ok(Ok(None)) => {
                tracing::warn!("notification connection lost; reconnecting and catching up")
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "notification connection failed; reconnecting");
                self.listener = None;
            }
        }
    }
}

fn read(e: impl std::fmt::Display) -> SourceError {
    SourceError::Read(e.to_string())
}

impl ChangeSource for DbSource {
    async fn load(&mut self) -> Result<Snapshot, SourceError> {
        self.db.snapshot_of(self.scope).await
    }

    async fn changes_after(&mut self, after: u64) -> Result<Option<Batch>, SourceError> {
        let log = self.db.read_changes(after).await.map_err(read)?;
        // Read after the changes: a prune that raced the read shows here.
        let floor = self.db.pruned_floor().await.map_err(read)?;
        if floor <= after {
            return Ok(log.map(decode::decode));
        }
        Ok(Some(Batch {
            revision: log.map_or(floor, |b| b.revision.max(floor)),
            changes: Vec::new(),
            reload: Some(Reload::Gap { floor }),
            committed_at: None,
        }))
    }

    async fn wait(&mut self) {
        match (&self.db, self.notify) {
            (Database::Postgres(pool), Notify::Listen) => {
                let pool = pool.clone();
                self.listen.wait(&pool, self.interval).await
            }
            _ => tokio::time::sleep(self.interval).await,
        }
    }
}
