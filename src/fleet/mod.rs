//! The fleet: one relay (`ticket-authz relay`) follows the database and
//! publishes each committed transaction to a NATS JetStream stream and full
//! snapshots to an object store; sidecars (`serve --nats-url`) bootstrap from
//! the newest snapshot and follow the stream, with no database connection.
//!
//! Both are `follow::ChangeSource`s: the relay wraps the database's source,
//! the sidecar's reads the stream. The sync loop, the store and the core are
//! the ones every other source uses.

mod connect;
mod lease;
mod objects;
mod reader;
mod relay;
mod wire;

use std::path::PathBuf;
use std::time::Duration;

pub use connect::connect;
pub use lease::Lease;
pub use objects::Snapshots;
pub use reader::StreamSource;
pub use relay::{Relay, SnapshotEvery};

/// Where the fleet's stream, snapshots and lease live, and how to reach
/// the NATS server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSettings {
    /// `nats://host:port` (or `tls://…`), comma-separated for a cluster.
    pub url: String,
    /// A `.creds` file (JWT and NKey seed).
    pub creds: Option<PathBuf>,
    /// The CA (PEM) the server's certificate must chain to; turns on TLS.
    pub tls_ca: Option<PathBuf>,
    /// A file holding the server's token.
    pub token_file: Option<PathBuf>,
    /// The JetStream stream of change messages.
    pub stream: String,
    /// The subject the relay publishes on (the stream's only subject).
    pub subject: String,
    /// The object store bucket of snapshots; the lease is in the key-value
    /// bucket `<bucket>_lease`.
    pub bucket: String,
}

impl NatsSettings {
    /// The defaults: stream `TICKET_AUTHZ`, subject `ticket_authz.changes`,
    /// bucket `ticket_authz`.
    pub fn new(url: impl Into<String>) -> Self {
        NatsSettings {
            url: url.into(),
            creds: None,
            tls_ca: None,
            token_file: None,
            stream: DEFAULT_STREAM.to_owned(),
            subject: DEFAULT_SUBJECT.to_owned(),
            bucket: DEFAULT_BUCKET.to_owned(),
        }
    }

    /// The key-value bucket that holds the relays' lease.
    pub fn lease_bucket(&self) -> String {
        format!("{}_lease", self.bucket)
    }
}

pub const DEFAULT_STREAM: &str = "TICKET_AUTHZ";
pub const DEFAULT_SUBJECT: &str = "ticket_authz.changes";
pub const DEFAULT_BUCKET: &str = "ticket_authz";

/// How long a relay's lease lasts without renewal (see `lease`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// A problem with the fleet's NATS side, naming what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("--nats-url {url}: {cause}")]
    Connect { url: String, cause: String },
    #[error("{flag} {path}: {cause}")]
    Credentials {
        flag: &'static str,
        path: String,
        cause: String,
    },
    #[error("{what}: {cause}")]
    Nats { what: String, cause: String },
}

impl FleetError {
    pub(crate) fn nats(what: impl Into<String>, cause: impl std::fmt::Display) -> Self {
        FleetError::Nats {
            what: what.into(),
            cause: cause.to_string(),
        }
    }
}

/// Connects and creates what the relay publishes to when missing: the
/// stream (file storage, `max_age` retention, a two-minute duplicate
/// window) and the snapshot bucket.
pub async fn prepare(
    settings: &NatsSettings,
    max_age: Duration,
) -> Result<(async_nats::Client, Snapshots), FleetError> {
    let client = connect(settings).await?;
    let js = async_nats::jetstream::new(client.clone());
    let config = async_nats::jetstream::stream::Config {
        name: settings.stream.clone(),
        subjects: vec![settings.subject.clone()],
        max_age,
        storage: async_nats::jetstream::stream::StorageType::File,
        duplicate_window: Duration::from_secs(120).min(max_age),
        ..Default::default()
    };
    js.get_or_create_stream(config)
        .await
        .map_err(|e| FleetError::nats(format!("--stream {}", settings.stream), e))?;
    let snapshots = Snapshots::create(&js, &settings.bucket).await?;
    Ok((client, snapshots))
}

/// The identity of a source of truth as snapshots and messages record it:
/// the database URL without user, password or options, so that every relay
/// of one database agrees on it and a credential rotation does not change
/// it.
pub fn source_identity(database_url: &str) -> String {
    let base = database_url
        .split_once('?')
        .map_or(database_url, |(b, _)| b);
    match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}{}", &base[..scheme + 3], &base[at + 1..])
        }
        _ => base.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_leaves_out_credentials_and_options() {
        assert_eq!(
            source_identity("postgres://app:secret@db:5432/desk?sslmode=require"),
            "postgres://db:5432/desk"
        );
        assert_eq!(source_identity("sqlite://data/x.db"), "sqlite://data/x.db");
        assert_eq!(
            source_identity("mysql://root@127.0.0.1:3306/helpdesk"),
            "mysql://127.0.0.1:3306/helpdesk"
        );
    }
}
