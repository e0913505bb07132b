//! The decision log: one JSON line per sampled decision, written by its own
//! thread behind a bounded queue. A full queue drops the record (counted)
//! rather than making a request wait for a disk or a pipe.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::TelemetryError;
use super::metrics::metrics;

/// Records waiting for the writer; beyond this they are dropped.
pub const QUEUE_CAPACITY: usize = 8192;

/// Where the lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    /// Appended to, created when missing.
    File(PathBuf),
}

impl Destination {
    /// `stdout`, or a file path.
    pub fn parse(text: &str) -> Self {
        if text == "stdout" || text == "-" {
            Destination::Stdout
        } else {
            Destination::File(PathBuf::from(text))
        }
    }
}

/// The request as the caller sent it; empty fields are left out.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoggedRequest {
    pub user_id: String,
    pub action: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ticket_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub organisation_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub company_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub flag: String,
    /// The resource of a service-desk section action (access model §8).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource_id: String,
    /// The ticket was decided on attributes sent with the question, not
    /// on a stored ticket of `ticket_id` (which may be empty or unknown).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ticket_inline: bool,
}

/// One line of the log.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionRecord {
    /// RFC 3339, UTC.
    pub time: String,
    pub revision: u64,
    /// The call's bounded name: `CheckAccess`, `CheckAccessBatch`,
    /// `authzen.evaluation`, …
    pub rpc: &'static str,
    pub request: LoggedRequest,
    pub allowed: bool,
    pub reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<&'static str>,
}

/// A handle to the log: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct DecisionLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    queue: SyncSender<DecisionRecord>,
    sample: f64,
    dropped: AtomicU64,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl DecisionLog {
    /// Opens `destination` and starts the writer thread. `sample` is the
    /// share of decisions logged, from 0 to 1.
    pub fn open(destination: &Destination, sample: f64) -> Result<Self, TelemetryError> {
        let out: Box<dyn Write + Send> = match destination {
            Destination::Stdout => Box::new(std::io::stdout()),
            Destination::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        TelemetryError::DecisionLog(format!("cannot open {}: {e}", path.display()))
                    })?,
            ),
        };
        Self::with_writer(out, sample, QUEUE_CAPACITY)
    }

    /// A log writing to `out` through a queue of `capacity` records.
    pub fn with_writer(
        out: Box<dyn Write + Send>,
        sample: f64,
        capacity: usize,
    ) -> Result<Self, TelemetryError> {
        if !(0.0..=1.0).contains(&sample) {
            return Err(TelemetryError::DecisionLog(format!(
                "--decision-log-sample: {sample} is not a ratio from 0 to 1"
            )));
        }
        let (queue, records) = std::sync::mpsc::sync_channel(capacity.max(1));
        let writer = std::thread::Builder::new()
            .name("decision-log".into())
            .spawn(move || write_records(records, out))
            .map_err(|e| TelemetryError::DecisionLog(format!("cannot start the writer: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                queue,
                sample,
                dropped: AtomicU64::new(0),
                writer: Mutex::new(Some(writer)),
            }),
        })
    }

    /// Whether this decision is to be logged (the sampling draw). Callers
    /// build the record only when it is.
    pub fn sampled(&self) -> bool {
        let sample = self.inner.sample;
        sample >= 1.0 || (sample > 0.0 && fastrand::f64() < sample)
    }

    /// Queues a record, or drops it when the writer is behind.
    pub fn record(&self, record: DecisionRecord) {
        match self.inner.queue.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.inner.dropped.fetch_add(1, Ordering::Relaxed);
                metrics().decision_log_dropped.inc();
            }
        }
    }

    /// Records dropped so far.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The queue's sender is dropped right after this; replacing it
        // first lets the writer see the end, flush and stop.
        let (closed, _) = std::sync::mpsc::sync_channel(1);
        drop(std::mem::replace(&mut self.queue, closed));
        if let Ok(mut writer) = self.writer.lock()
            && let Some(handle) = writer.take()
        {
            let _ = handle.join();
        }
    }
}

fn write_records(records: Receiver<DecisionRecord>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::new(out);
    let mut failed = false;
    // Flush whenever the queue runs dry, so lines appear promptly without a
    // write per record under load.
    while let Ok(first) = records.recv() {
        let mut next = Some(first);
        while let Some(record) = next {
            if let Err(e) = serde_json::to_writer(&mut out, &record)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
            {
                if !failed {
                    tracing::error!(error = %e, "decision log: write failed; dropping records until it works again");
                }
                failed = true;
            } else {
                failed = false;
            }
            next = records.try_recv().ok();
        }
        if let Err(e) = out.flush()
            && !failed
        {
            tracing::error!(error = %e, "decision log: flush failed");
            failed = true;
        }
    }
    let _ = out.flush();
}
