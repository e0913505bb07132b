//! Callers that send the workload to one target for a measured window, in
//! closed loop (each caller sends its next request when the last answers)
//! or paced at a fixed total rate, recording latencies in HDR histograms.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::forms::Conn;
use super::workload::{Mix, Workload};

/// How one run sends its requests.
#[derive(Debug, Clone)]
pub struct Plan {
    pub concurrency: usize,
    pub warmup: Duration,
    /// The measured window, after the warm-up (ignored with `requests`).
    pub duration: Duration,
    /// Stop after this many measured requests instead of after `duration`.
    pub requests: Option<u64>,
    /// Requests per second over all callers; `None` is closed loop.
    pub rate: Option<f64>,
    pub mix: Mix,
}

/// Latencies (nanoseconds) of one kind of RPC, or of all of them.
#[derive(Debug, Clone)]
pub struct Latencies {
    pub histogram: Histogram<u64>,
}

impl Latencies {
    fn new() -> Latencies {
        Latencies {
            histogram: empty_histogram(),
        }
    }

    fn record(&mut self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.histogram.saturating_record(nanos);
    }

    fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides, so adding cannot fail; if it ever
        // did, the merged figures would only miss that caller's share.
        let _ = self.histogram.add(&other.histogram);
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The latency at quantile `q` (0.5, 0.99, …).
    pub fn at(&self, q: f64) -> Duration {
        Duration::from_nanos(self.histogram.value_at_quantile(q))
    }

    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.histogram.max())
    }
}

/// 1 ns to 60 s at three significant digits (a fixed ~200 KiB). The
/// constructor only refuses bounds out of order or more than five digits,
/// which these constants are not (a unit test builds one).
#[allow(clippy::expect_used)]
fn empty_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid constant bounds")
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Length of the measured window.
    pub elapsed: Duration,
    pub all: Latencies,
    /// Per RPC kind, indexed by `Kind::index`.
    pub by_kind: [Latencies; 3],
    pub errors: u64,
    pub first_error: Option<String>,
    /// Paced sends that started more than one interval behind schedule: the
    /// target (or this client) did not keep up with the rate.
    pub behind: u64,
    /// CPU the server process spent in the measured window, when its
    /// process was known.
    pub server_cpu: Option<Duration>,
}

impl Outcome {
    fn new() -> Outcome {
        Outcome {
            elapsed: Duration::ZERO,
            all: Latencies::new(),
            by_kind: [Latencies::new(), Latencies::new(), Latencies::new()],
            errors: 0,
            first_error: None,
            behind: 0,
            server_cpu: None,
        }
    }

    fn merge(&mut self, other: &Outcome) {
        self.all.merge(&other.all);
        for (mine, theirs) in self.by_kind.iter_mut().zip(&other.by_kind) {
            mine.merge(theirs);
        }
        self.errors += other.errors;
        self.behind += other.behind;
        self.server_cpu = match (self.server_cpu, other.server_cpu) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }

    /// Answered requests per second in the measured window.
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.all.count() as f64 / secs
        } else {
            0.0
        }
    }

    /// Several runs against the same target as one: their requests over
    /// their summed windows.
    /// Server CPU per answered or failed request, when it was measured.
    pub fn cpu_per_request(&self) -> Option<Duration> {
        let requests = u32::try_from(self.all.count() + self.errors).ok()?;
        self.server_cpu
            .filter(|_| requests > 0)
            .map(|cpu| cpu / requests)
    }

    pub fn combine(runs: &[Outcome]) -> Outcome {
        let mut total = Outcome::new();
        for run in runs {
            total.merge(run);
            total.elapsed += run.elapsed;
        }
        total
    }
}

struct Caller {
    client: Conn,
    workload: Arc<Workload>,
    plan: Arc<Plan>,
    seed: u64,
    /// Sends start at `start + offset`, then every `interval` when paced.
    offset: Duration,
    start: Instant,
    measure_from: Instant,
    /// Set when the run is over (its time is up or the caller's stop came).
    done: Arc<AtomicBool>,
    measured: Arc<AtomicU64>,
}

impl Caller {
    async fn run(mut self) -> Outcome {
        let mut outcome = Outcome::new();
        let mut rng = fastrand::Rng::with_seed(self.seed);
        let interval = self
            .plan
            .rate
            .map(|rate| Duration::from_secs_f64(self.plan.concurrency as f64 / rate));
        let mut next = self.start + self.offset;
        loop {
            if let Some(interval) = interval {
                tokio::time::sleep_until(next.into()).await;
                if Instant::now().saturating_duration_since(next) > interval {
                    outcome.behind += 1;
                }
                next += interval;
            }
            if self.done.load(Ordering::Relaxed) {
                break;
            }
            let sent = Instant::now();
            let measuring = sent >= self.measure_from;
            if measuring
                && let Some(limit) = self.plan.requests
                && self.measured.fetch_add(1, Ordering::Relaxed) >= limit
            {
                break;
            }
            let kind = self.plan.mix.pick(&mut rng);
            let pick = rng.usize(..);
            let result = self.client.send(&self.workload, kind, pick).await;
            let took = sent.elapsed();
            if !measuring {
                continue;
            }
            match result {
                Ok(()) => {
                    outcome.all.record(took);
                    outcome.by_kind[kind.index()].record(took);
                }
                Err(error) => {
                    outcome.errors += 1;
                    if outcome.first_error.is_none() {
                        outcome.first_error = Some(format!("{}: {error}", kind.name()));
                    }
                }
            }
        }
        outcome
    }
}

/// Runs `plan` against the target behind `clients` (callers share them
/// round-robin; each is one HTTP/2 connection) and returns what the
/// measured window saw.
pub async fn drive(clients: &[Conn], workload: Arc<Workload>, plan: &Plan) -> Outcome {
    drive_until(clients, workload, plan, std::future::pending()).await
}

/// Like `drive`, and reads the CPU time process `server_pid` spends in the
/// measured window.
pub async fn drive_measuring(
    clients: &[Conn],
    workload: Arc<Workload>,
    plan: &Plan,
    server_pid: Option<u32>,
) -> Outcome {
    run_callers(clients, workload, plan, std::future::pending(), server_pid).await
}

/// Like `drive`, but the run also ends when `stop` completes: load kept
/// on a service while something else is measured.
pub async fn drive_until(
    clients: &[Conn],
    workload: Arc<Workload>,
    plan: &Plan,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Outcome {
    run_callers(clients, workload, plan, stop, None).await
}

async fn run_callers(
    clients: &[Conn],
    workload: Arc<Workload>,
    plan: &Plan,
    stop: impl Future<Output = ()> + Send + 'static,
    server_pid: Option<u32>,
) -> Outcome {
    let plan = Arc::new(plan.clone());
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let cpu_at_start = server_pid.map(|pid| {
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            super::process::cpu_time(pid).ok()
        })
    });
    let done = Arc::new(AtomicBool::new(false));
    let stopper = {
        let done = Arc::clone(&done);
        let time_up = plan
            .requests
            .is_none()
            .then(|| measure_from + plan.duration);
        tokio::spawn(async move {
            match time_up {
                Some(end) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(end.into()) => {}
                        () = stop => {}
                    }
                }
                None => stop.await,
            }
            done.store(true, Ordering::Relaxed);
        })
    };
    let measured = Arc::new(AtomicU64::new(0));
    let interval = plan
        .rate
        .map(|rate| plan.concurrency as f64 / rate)
        .unwrap_or(0.0);
    let callers: Vec<_> = (0..plan.concurrency.max(1))
        .map(|i| {
            let caller = Caller {
                client: clients[i % clients.len()].clone(),
                workload: Arc::clone(&workload),
                plan: Arc::clone(&plan),
                seed: 0x5eed ^ i as u64,
                // Paced callers are spread over one interval so that the
                // total rate is smooth rather than bursts of `concurrency`.
                offset: Duration::from_secs_f64(interval * i as f64 / plan.concurrency as f64),
                start,
                measure_from,
                done: Arc::clone(&done),
                measured: Arc::clone(&measured),
            };
            tokio::spawn(caller.run())
        })
        .collect();
    let mut outcome = Outcome::new();
    for caller in callers {
        if let Ok(part) = caller.await {
            outcome.merge(&part);
        }
    }
    stopper.abort();
    outcome.elapsed = Instant::now().saturating_duration_since(measure_from);
    if let (Some(pid), Some(at_start)) = (server_pid, cpu_at_start)
        && let (Ok(Some(from)), Ok(to)) = (at_start.await, super::process::cpu_time(pid))
    {
        outcome.server_cpu = Some(to.saturating_sub(from));
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_merge_and_report_quantiles() {
        let mut a = Latencies::new();
        let mut b = Latencies::new();
        for us in 1..=99 {
            a.record(Duration::from_micros(us));
        }
        b.record(Duration::from_secs(2));
        a.merge(&b);
        assert_eq!(a.count(), 100);
        let p50 = a.at(0.5).as_micros();
        assert!((49..=51).contains(&p50), "p50 {p50} µs");
        assert!(a.max() >= Duration::from_millis(1999));
    }
}
