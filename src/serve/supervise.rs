//! The tasks `run` spawns, watched. A task that ends before shutdown
//! (returns, fails or panics) turns health NOT_SERVING for good, is logged
//! at error and counted; at shutdown every task has until the one
//! deadline, then is cut.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinError, JoinHandle};
use tokio::time::Instant;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::grpc::server::SERVICE_NAME;
use crate::telemetry::metrics::metrics;

/// The health both names report ("" and the service), where a failure and
/// shutdown are final: nothing reports SERVING after a supervised task
/// failed or shutdown began, whichever order the reports race in.
#[derive(Debug)]
pub struct Health {
    reporter: HealthReporter,
    /// Held across each decision and its report, so that a SERVING that
    /// checked the flags before a final NOT_SERVING cannot land after it.
    reporting: tokio::sync::Mutex<()>,
    failed: AtomicBool,
    stopping: AtomicBool,
}

impl Health {
    pub fn new(reporter: HealthReporter) -> Self {
        Self {
            reporter,
            reporting: tokio::sync::Mutex::new(()),
            failed: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
        }
    }

    async fn report(&self, status: ServingStatus) {
        for name in ["", SERVICE_NAME] {
            self.reporter.set_service_status(name, status).await;
        }
        // Under the same lock as the report, so the gauge ends as health does.
        metrics()
            .serving
            .set(i64::from(status == ServingStatus::Serving));
    }

    /// SERVING, unless a task has failed or shutdown has begun.
    pub async fn serving(&self) {
        let _reporting = self.reporting.lock().await;
        if !self.failed.load(Ordering::Acquire) && !self.stopping.load(Ordering::Acquire) {
            self.report(ServingStatus::Serving).await;
        }
    }

    /// NOT_SERVING for now (before the first load).
    pub async fn not_serving(&self) {
        let _reporting = self.reporting.lock().await;
        self.report(ServingStatus::NotServing).await;
    }

    /// NOT_SERVING for good: shutdown has begun.
    pub async fn stopping(&self) {
        let _reporting = self.reporting.lock().await;
        self.stopping.store(true, Ordering::Release);
        self.report(ServingStatus::NotServing).await;
    }

    async fn fail(&self) {
        let _reporting = self.reporting.lock().await;
        self.failed.store(true, Ordering::Release);
        self.report(ServingStatus::NotServing).await;
    }
}

/// The one shutdown signal: a flag tasks watch, and when it was raised
/// (the start of the grace period).
#[derive(Debug, Clone)]
pub struct Stop {
    flag: watch::Sender<bool>,
    at: Arc<OnceLock<Instant>>,
}

impl Default for Stop {
    fn default() -> Self {
        Self {
            flag: watch::Sender::new(false),
            at: Arc::new(OnceLock::new()),
        }
    }
}

impl Stop {
    /// Starts shutdown; later calls change nothing.
    pub fn trigger(&self) {
        self.at.get_or_init(Instant::now);
        self.flag.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.flag.borrow()
    }

    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.flag.subscribe()
    }

    /// Resolves once shutdown has started.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.flag.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    /// Resolves `grace` after shutdown started.
    pub fn deadline(&self, grace: Duration) -> impl Future<Output = ()> + Send + 'static {
        let stopped = self.stopped();
        let at = Arc::clone(&self.at);
        async move {
            stopped.await;
            let started = at.get().copied().unwrap_or_else(Instant::now);
            tokio::time::sleep_until(started + grace).await;
        }
    }
}

struct Task {
    name: &'static str,
    watcher: JoinHandle<()>,
    abort: AbortHandle,
}

/// Spawns and watches the service's background tasks.
#[derive(Clone)]
pub struct Supervisor {
    health: Arc<Health>,
    stop: Stop,
    tasks: Arc<Mutex<Vec<Task>>>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor").finish_non_exhaustive()
    }
}

fn panic_text(e: JoinError) -> String {
    match e.try_into_panic() {
        Ok(payload) => {
            let text = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            format!("panicked: {text}")
        }
        Err(e) => e.to_string(),
    }
}

impl Supervisor {
    pub fn new(health: Arc<Health>, stop: Stop) -> Self {
        Self {
            health,
            stop,
            tasks: Arc::default(),
        }
    }

    /// Runs `task` as `name` (a bounded metric label). It is expected to
    /// run until shutdown; ending earlier in any way is a failure.
    pub fn spawn<F>(&self, name: &'static str, task: F)
    where
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        // Made now, so that the task's failures show at zero from its start.
        let failures = metrics().task_failures(name);
        let child = tokio::spawn(task);
        let abort = child.abort_handle();
        let stop = self.stop.clone();
        let health = Arc::clone(&self.health);
        let watcher = tokio::spawn(async move {
            let problem = match child.await {
                Ok(Ok(())) if stop.is_triggered() => return,
                Ok(Ok(())) => "ended before shutdown".to_owned(),
                Ok(Err(e)) => e,
                // Cut at the shutdown deadline.
                Err(e) if e.is_cancelled() => return,
                Err(e) => panic_text(e),
            };
            if stop.is_triggered() {
                tracing::warn!(task = name, problem, "task failed while shutting down");
                return;
            }
            tracing::error!(
                task = name,
                problem,
                "task failed; health is NOT_SERVING from now on"
            );
            failures.inc();
            health.fail().await;
        });
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(Task {
                name,
                watcher,
                abort,
            });
        }
    }

    /// Waits for every task until `deadline`, then cuts those still running.
    pub async fn join(&self, deadline: impl Future<Output = ()>) {
        tokio::pin!(deadline);
        let mut cut = false;
        // A task may start another (the first load starts the follower).
        while let Some(task) = self.tasks.lock().ok().and_then(|mut t| t.pop()) {
            let Task {
                name,
                mut watcher,
                abort,
            } = task;
            if !cut {
                tokio::select! {
                    _ = &mut watcher => continue,
                    () = &mut deadline => cut = true,
                }
            }
            tracing::warn!(
                task = name,
                "still running after the grace period; cutting it"
            );
            abort.abort();
            let _ = watcher.await;
        }
    }
}
