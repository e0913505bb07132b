//! The stream's messages: a change batch (its body an image of the
//! changes) or a snapshot marker (its body the snapshot object's name),
//! each with its revision and its predecessor's in headers, so a reader
//! sees a gap even where revisions have holes.

use async_nats::HeaderMap;
use async_nats::jetstream::message::StreamMessage;
use bytes::Bytes;

pub const KIND: &str = "Ticket-Authz-Kind";
pub const REVISION: &str = "Ticket-Authz-Revision";
pub const PREVIOUS: &str = "Ticket-Authz-Previous";
pub const SOURCE: &str = "Ticket-Authz-Source";
pub const COMMITTED_AT: &str = "Ticket-Authz-Committed-At";

/// What a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One or more whole transactions, applied row by row.
    Changes,
    /// "Load the snapshot at this revision": a bulk change, a transaction
    /// too large for a message, or a relay's start.
    Snapshot,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Changes => "changes",
            Kind::Snapshot => "snapshot",
        }
    }
}

/// One message of the stream, its headers read.
#[derive(Debug, Clone)]
pub struct Entry {
    pub sequence: u64,
    pub kind: Kind,
    pub revision: u64,
    pub previous: u64,
    pub source: String,
    pub committed_at: Option<f64>,
    pub payload: Bytes,
}

/// The headers of a message about to be published.
pub fn headers(
    kind: Kind,
    revision: u64,
    previous: u64,
    source: &str,
    committed_at: Option<f64>,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(KIND, kind.name());
    headers.insert(REVISION, revision.to_string().as_str());
    headers.insert(PREVIOUS, previous.to_string().as_str());
    headers.insert(SOURCE, source);
    if let Some(at) = committed_at {
        headers.insert(COMMITTED_AT, at.to_string().as_str());
    }
    // The stream's duplicate window drops a second copy of one revision:
    // a second line of defence behind the expected last sequence.
    headers.insert(
        "Nats-Msg-Id",
        format!("{}-{previous}-{revision}", kind.name()).as_str(),
    );
    headers
}

/// Reads a stored message; a message that is not ours names what is
/// missing.
pub fn parse(message: StreamMessage) -> Result<Entry, String> {
    let sequence = message.sequence;
    let header = |name: &str| {
        message
            .headers
            .get(name)
            .map(|v| v.as_str().to_owned())
            .ok_or_else(|| format!("stream message {sequence} has no {name} header"))
    };
    let number = |name: &str| {
        header(name)?
            .parse::<u64>()
            .map_err(|_| format!("stream message {sequence}: header {name} is not a revision"))
    };
    let kind = match header(KIND)?.as_str() {
        "changes" => Kind::Changes,
        "snapshot" => Kind::Snapshot,
        other => {
            return Err(format!(
                "stream message {sequence}: unknown {KIND} `{other}`"
            ));
        }
    };
    Ok(Entry {
        sequence,
        kind,
        revision: number(REVISION)?,
        previous: number(PREVIOUS)?,
        source: header(SOURCE)?,
        committed_at: header(COMMITTED_AT).ok().and_then(|t| t.parse().ok()),
        payload: message.payload,
    })
}
