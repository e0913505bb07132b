//! Progress of an import on stderr: an `indicatif` bar when stderr is a
//! terminal, plain lines otherwise (logs and CI keep no bar redraws), or
//! nothing for library callers.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

/// Files smaller than this are imported without progress output: they
/// take a moment, and the summary says everything.
const MIN_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone)]
enum Kind {
    Hidden,
    Bar(ProgressBar),
    Lines {
        /// Tenths of the current step already printed.
        printed: Arc<AtomicU64>,
        total: Arc<AtomicU64>,
    },
}

/// Where progress goes. Cloning shares the same output.
#[derive(Debug, Clone)]
pub struct Progress {
    kind: Kind,
    started: Instant,
    /// Set from the file's size when reading starts.
    active: Arc<AtomicBool>,
}

impl Progress {
    /// Reports nothing.
    pub fn hidden() -> Self {
        Progress {
            kind: Kind::Hidden,
            started: Instant::now(),
            active: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A bar when stderr is a terminal, plain lines otherwise.
    pub fn stderr() -> Self {
        let kind = if std::io::stderr().is_terminal() {
            Kind::Bar(ProgressBar::hidden())
        } else {
            Kind::Lines {
                printed: Arc::new(AtomicU64::new(0)),
                total: Arc::new(AtomicU64::new(0)),
            }
        };
        Progress {
            kind,
            started: Instant::now(),
            active: Arc::new(AtomicBool::new(false)),
        }
    }

    fn kind(&self) -> &Kind {
        if self.active.load(Ordering::Relaxed) {
            &self.kind
        } else {
            &Kind::Hidden
        }
    }

    fn begin(&self, what: &str, total: u64, template: &str) {
        match self.kind() {
            Kind::Hidden => {}
            Kind::Bar(bar) => {
                let style = ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.reset();
                bar.set_style(style.progress_chars("=> "));
                bar.set_length(total);
                bar.set_position(0);
                bar.set_message(what.to_owned());
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
            Kind::Lines { printed, total: t } => {
                printed.store(0, Ordering::Relaxed);
                t.store(total, Ordering::Relaxed);
                self.line(what);
            }
        }
    }

    fn line(&self, what: &str) {
        eprintln!(
            "import-csv: {what} ({:.1} s)",
            self.started.elapsed().as_secs_f64()
        );
    }

    fn advance(&self, position: u64) {
        match self.kind() {
            Kind::Hidden => {}
            Kind::Bar(bar) => bar.set_position(position),
            Kind::Lines { printed, total } => {
                let total = total.load(Ordering::Relaxed).max(1);
                let tenths = position.saturating_mul(10) / total;
                if tenths > printed.load(Ordering::Relaxed) && tenths < 10 {
                    printed.store(tenths, Ordering::Relaxed);
                    self.line(&format!("{}%", tenths * 10));
                }
            }
        }
    }

    pub(crate) fn start_reading(&self, bytes: u64) {
        self.active.store(bytes >= MIN_BYTES, Ordering::Relaxed);
        self.begin(
            "reading",
            bytes,
            "{msg:10} [{bar:40}] {bytes}/{total_bytes} ({eta})",
        );
    }

    pub(crate) fn read(&self, bytes: u64) {
        self.advance(bytes);
    }

    pub(crate) fn finish_reading(&self) {
        if let Kind::Bar(bar) = self.kind() {
            bar.finish_and_clear();
        }
    }

    pub(crate) fn start_staging(&self, rows: u64) {
        self.begin(
            "staging",
            rows,
            "{msg:10} [{bar:40}] {pos}/{len} rows ({eta})",
        );
    }

    pub(crate) fn staged(&self, rows: u64) {
        self.advance(rows);
    }

    /// A step whose length is unknown: comparing, writing.
    pub(crate) fn step(&self, what: &str) {
        match self.kind() {
            Kind::Hidden => {}
            Kind::Bar(bar) => {
                bar.set_style(
                    ProgressStyle::with_template("{msg:10} {spinner} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(what.to_owned());
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
            }
            Kind::Lines { .. } => self.line(what),
        }
    }

    /// Clears the bar (the summary is printed after it).
    pub(crate) fn end(&self) {
        match self.kind() {
            Kind::Hidden => {}
            Kind::Bar(bar) => {
                bar.disable_steady_tick();
                bar.finish_and_clear();
            }
            Kind::Lines { .. } => self.line("done"),
        }
    }
}
