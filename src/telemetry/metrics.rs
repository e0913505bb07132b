//! The service's metrics: their names, their typed families in one
//! process-wide registry, and the series that exist from start at zero.
//! Labels are bounded sets (RPC names, actions, outcomes, kinds); no user
//! or ticket id ever becomes a label. `exposition` serves them.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::core::Action;

/// Time spent answering one RPC, by `rpc` and `outcome` (`allowed`,
/// `denied`, `ok`, or the gRPC status in snake case).
pub const RPC_DURATION: &str = "ticket_authz_rpc_duration_seconds";
/// Decisions made, by `action` and `outcome` (`allowed` / `denied`); a batch
/// counts each of its checks.
pub const DECISIONS: &str = "ticket_authz_decisions_total";
/// Requests refused with RESOURCE_EXHAUSTED because too many were in
/// progress, by `rpc`.
pub const SHED: &str = "ticket_authz_shed_requests_total";
/// The revision being served.
pub const REVISION: &str = "ticket_authz_revision";
/// Commit (database clock) to applied (service clock), per applied batch.
pub const CHANGE_LAG: &str = "ticket_authz_change_lag_seconds";
/// Time to turn one batch of changes into the next snapshot.
pub const APPLY_DURATION: &str = "ticket_authz_apply_duration_seconds";
/// Entities in the served snapshot, by `kind`.
pub const SNAPSHOT_ENTITIES: &str = "ticket_authz_snapshot_entities";
/// Refresh problems, by `kind` (see [`RefreshError`]).
pub const REFRESH_ERRORS: &str = "ticket_authz_refresh_errors_total";
/// Full reloads after the first load (bulk imports, wide changes).
pub const FULL_RELOADS: &str = "ticket_authz_full_reloads_total";
/// 1 while changes are held back, else 0.
pub const HELD_BACK: &str = "ticket_authz_held_back";
/// Decision-log records dropped because the writer fell behind.
pub const DECISION_LOG_DROPPED: &str = "ticket_authz_decision_log_dropped_total";
/// Credential files (`credential`: `certificate`, `client_ca`, `token`)
/// re-read after a change and put into use for new connections and requests.
pub const CREDENTIAL_RELOADS: &str = "ticket_authz_credential_reloads_total";
/// Changed credential files that were not usable (unreadable, unparsable, a
/// key not matching its certificate, no token), by `credential`; the
/// previous material stays in use.
pub const CREDENTIAL_RELOAD_ERRORS: &str = "ticket_authz_credential_reload_errors_total";
/// The `credential` labels of the two counters above.
pub const CREDENTIALS: [&str; 3] = ["certificate", "client_ca", "token"];
/// Background tasks that ended before shutdown, by `task`; health is
/// NOT_SERVING after any.
pub const TASK_FAILURES: &str = "ticket_authz_task_failures_total";
/// 1 while health reports SERVING, else 0.
pub const SERVING: &str = "ticket_authz_serving";
/// Seconds since the follower last confirmed that it is caught up with its
/// source (see [`CaughtUp`]).
pub const CAUGHT_UP_AGE: &str = "ticket_authz_caught_up_age_seconds";

/// Ticket lookups the ticket cache answered from an entry (`--ticket-cache`).
pub const TICKET_CACHE_HITS: &str = "ticket_authz_ticket_cache_hits_total";
/// Ticket lookups the ticket cache read from the database.
pub const TICKET_CACHE_MISSES: &str = "ticket_authz_ticket_cache_misses_total";
/// Entries the ticket cache evicted or did not admit to stay within its size.
pub const TICKET_CACHE_EVICTIONS: &str = "ticket_authz_ticket_cache_evictions_total";
/// Bytes the ticket cache's entries hold, as weighed against its size.
pub const TICKET_CACHE_BYTES: &str = "ticket_authz_ticket_cache_bytes";
/// A mapped source's references to ids it does not hold, by our entity
/// holding them and the source tables that entity is read from.
pub const UNRESOLVED_REFERENCES: &str = "ticket_authz_unresolved_references";

/// The supervised tasks `serve::run` starts, counted from start at zero.
pub const TASKS: [&str; 5] = [
    "follower",
    "credentials",
    "health_server",
    "metrics_server",
    "console_server",
];

/// The entity kinds of `ticket_authz_snapshot_entities`.
pub const ENTITY_KINDS: [&str; 6] = [
    "organisations",
    "companies",
    "groups",
    "profiles",
    "users",
    "tickets",
];

/// Latency buckets from 1 µs: in-process decisions take well under one.
const FINE_BUCKETS: [f64; 20] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2,
    5e-2, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Propagation buckets: from a tenth of a millisecond to a minute.
const LAG_BUCKETS: [f64; 16] = [
    1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 5.0, 15.0,
    60.0,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RpcOutcome {
    rpc: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ActionOutcome {
    action: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RpcLabel {
    rpc: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct UnresolvedLabel {
    entity: &'static str,
    source_tables: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TaskLabel {
    task: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CredentialLabel {
    credential: &'static str,
}

/// The exemplar of a traced call: its trace id, so that a slow bucket
/// leads to its trace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TraceExemplar {
    pub trace_id: String,
}

/// One series of the RPC latency histogram; a cheap clone of a shared
/// handle, so callers keep one instead of looking the series up per call.
pub type LatencyHistogram = HistogramWithExemplars<TraceExemplar>;

fn latency_histogram() -> LatencyHistogram {
    HistogramWithExemplars::new(FINE_BUCKETS.into_iter())
}

/// The refresh problems of `ticket_authz_refresh_errors_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshError {
    /// The change log could not be read.
    Read,
    /// A row-by-row apply failed and fell back to a full reload.
    Apply,
    /// The data would be invalid; the last valid revision stays.
    HeldBack,
}

impl RefreshError {
    const ALL: [RefreshError; 3] = [
        RefreshError::Read,
        RefreshError::Apply,
        RefreshError::HeldBack,
    ];

    fn label(self) -> &'static str {
        match self {
            RefreshError::Read => "read",
            RefreshError::Apply => "apply",
            RefreshError::HeldBack => "held_back",
        }
    }
}

/// When the follower last confirmed it is caught up with its source, as
/// nanoseconds after the registry was made; the age is computed at scrape
/// time, so a follower that stops confirming shows a growing age without
/// anything having to run. Without a follower (a dataset file, which never
/// changes) the age is 0 once the data is loaded.
#[derive(Debug)]
pub struct CaughtUp {
    base: Instant,
    /// 0 until the first confirmation: the age then counts from start.
    confirmed_nanos: AtomicU64,
    fixed: AtomicBool,
}

impl CaughtUp {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            confirmed_nanos: AtomicU64::new(0),
            fixed: AtomicBool::new(false),
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The served data is as new as the source's, as of now.
    pub fn confirm(&self) {
        self.confirm_at(Instant::now());
    }

    fn confirm_at(&self, at: Instant) {
        self.confirmed_nanos
            .fetch_max(self.nanos(at), Ordering::Relaxed);
    }

    /// Nothing will ever be newer than what is served (no follower).
    pub fn settle(&self) {
        self.fixed.store(true, Ordering::Relaxed);
    }

    /// Seconds since the last confirmation (since start before the first).
    pub fn age_seconds(&self) -> f64 {
        self.age_at(Instant::now())
    }

    fn age_at(&self, now: Instant) -> f64 {
        if self.fixed.load(Ordering::Relaxed) {
            return 0.0;
        }
        let confirmed = self.confirmed_nanos.load(Ordering::Relaxed);
        self.nanos(now).saturating_sub(confirmed) as f64 / 1e9
    }
}

/// The caught-up age as a gauge read at scrape time.
#[derive(Debug)]
struct CaughtUpAge;

impl EncodeMetric for CaughtUpAge {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&metrics().caught_up.age_seconds())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}
/// 1 while this relay holds the lease and publishes, else 0.
pub const FLEET_LEADER: &str = "ticket_authz_fleet_leader";
/// Messages a relay published to the stream, by `kind` (`changes`,
/// `snapshot`).
pub const FLEET_PUBLISHED: &str = "ticket_authz_fleet_published_total";
/// Bootstraps from a newer snapshot because the stream no longer held the
/// next revision.
pub const FLEET_REBOOTSTRAPS: &str = "ticket_authz_fleet_rebootstraps_total";
/// Snapshots refused: damaged, of an unknown format, or of another source.
pub const FLEET_SNAPSHOTS_REFUSED: &str = "ticket_authz_fleet_snapshots_refused_total";

/// Every metric of the service, registered once in `registry`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    rpc_duration: Family<RpcOutcome, LatencyHistogram, fn() -> LatencyHistogram>,
    decisions: Family<ActionOutcome, Counter>,
    shed: Family<RpcLabel, Counter>,
    /// The revision being served.
    pub revision: Gauge,
    /// Commit to applied, per batch.
    pub change_lag: Histogram,
    /// Time to build the next snapshot from a batch.
    pub apply_duration: Histogram,
    snapshot_entities: Family<KindLabel, Gauge>,
    refresh_errors: Family<KindLabel, Counter>,
    /// Full reloads after the first load.
    pub full_reloads: Counter,
    /// 1 while changes are held back.
    pub held_back: Gauge,
    /// Decision-log records dropped.
    pub decision_log_dropped: Counter,
    task_failures: Family<TaskLabel, Counter>,
    credential_reloads: Family<CredentialLabel, Counter>,
    credential_reload_errors: Family<CredentialLabel, Counter>,
    /// 1 while health reports SERVING.
    pub serving: Gauge,
    /// When the follower last confirmed it is caught up.
    pub caught_up: CaughtUp,
    /// The ticket cache's lookups answered from an entry.
    pub ticket_cache_hits: Counter,
    /// The ticket cache's reads of the database.
    pub ticket_cache_misses: Counter,
    /// Entries evicted (or not admitted) for size.
    pub ticket_cache_evictions: Counter,
    /// Bytes held by the ticket cache's entries.
    pub ticket_cache_bytes: Gauge,
    unresolved_references: Family<UnresolvedLabel, Gauge>,
    /// 1 while this relay publishes.
    pub fleet_leader: Gauge,
    fleet_published: Family<KindLabel, Counter>,
    /// Re-bootstraps after a gap in the stream.
    pub fleet_rebootstraps: Counter,
    /// Snapshots refused.
    pub fleet_snapshots_refused: Counter,
}

/// Drops the suffix the encoder adds back (`_total` for counters, the
/// unit for metrics registered with one), so that [`Registry`] exports
/// exactly the names above.
fn base(name: &'static str, suffix: &str) -> &'static str {
    name.strip_suffix(suffix).unwrap_or(name)
}

impl Metrics {
    fn new() -> Self {
        let metrics = Self {
            registry: Registry::default(),
            rpc_duration: Family::new_with_constructor(latency_histogram),
            decisions: Family::default(),
            shed: Family::default(),
            revision: Gauge::default(),
            change_lag: Histogram::new(LAG_BUCKETS),
            apply_duration: Histogram::new(FINE_BUCKETS),
            snapshot_entities: Family::default(),
            refresh_errors: Family::default(),
            full_reloads: Counter::default(),
            held_back: Gauge::default(),
            decision_log_dropped: Counter::default(),
            task_failures: Family::default(),
            credential_reloads: Family::default(),
            credential_reload_errors: Family::default(),
            unresolved_references: Family::default(),
            serving: Gauge::default(),
            caught_up: CaughtUp::new(),
            ticket_cache_hits: Counter::default(),
            ticket_cache_misses: Counter::default(),
            ticket_cache_evictions: Counter::default(),
            ticket_cache_bytes: Gauge::default(),
            fleet_leader: Gauge::default(),
            fleet_published: Family::default(),
            fleet_rebootstraps: Counter::default(),
            fleet_snapshots_refused: Counter::default(),
        };
        // Label sets known up front exist at zero from start, so that
        // `rate()` and absent-series alerts work on a fresh service.
        for action in Action::ALL {
            for outcome in ["allowed", "denied"] {
                metrics.decisions(action.name(), outcome);
            }
        }
        for kind in RefreshError::ALL {
            metrics
                .refresh_errors
                .get_or_create_owned(&KindLabel { kind: kind.label() });
        }
        for kind in ENTITY_KINDS {
            metrics.snapshot_entities(kind);
        }
        for task in TASKS {
            metrics.task_failures(task);
        }
        for kind in ["changes", "snapshot"] {
            metrics
                .fleet_published
                .get_or_create_owned(&KindLabel { kind });
        }
        for credential in CREDENTIALS {
            let label = CredentialLabel { credential };
            metrics.credential_reloads.get_or_create_owned(&label);
            metrics.credential_reload_errors.get_or_create_owned(&label);
        }
        metrics.register()
    }

    fn register(mut self) -> Self {
        let r = &mut self.registry;
        let seconds = "_seconds";
        r.register_with_unit(
            base(RPC_DURATION, seconds),
            "Time spent answering one RPC",
            Unit::Seconds,
            self.rpc_duration.clone(),
        );
        r.register(
            base(DECISIONS, "_total"),
            "Access decisions made",
            self.decisions.clone(),
        );
        r.register(
            base(SHED, "_total"),
            "Requests refused because too many were in progress",
            self.shed.clone(),
        );
        r.register(
            REVISION,
            "The database revision being served",
            self.revision.clone(),
        );
        r.register_with_unit(
            base(CHANGE_LAG, seconds),
            "Commit in the database to change applied here",
            Unit::Seconds,
            self.change_lag.clone(),
        );
        r.register_with_unit(
            base(APPLY_DURATION, seconds),
            "Time to build the next snapshot from a batch of changes",
            Unit::Seconds,
            self.apply_duration.clone(),
        );
        r.register(
            SNAPSHOT_ENTITIES,
            "Entities in the served snapshot",
            self.snapshot_entities.clone(),
        );
        r.register(
            base(REFRESH_ERRORS, "_total"),
            "Problems following the database",
            self.refresh_errors.clone(),
        );
        r.register(
            base(FULL_RELOADS, "_total"),
            "Full reloads after the first load",
            self.full_reloads.clone(),
        );
        r.register(
            FLEET_LEADER,
            "1 while this relay holds the lease and publishes",
            self.fleet_leader.clone(),
        );
        r.register(
            base(FLEET_PUBLISHED, "_total"),
            "Messages this relay published to the stream",
            self.fleet_published.clone(),
        );
        r.register(
            base(FLEET_REBOOTSTRAPS, "_total"),
            "Bootstraps from a newer snapshot after a gap in the stream",
            self.fleet_rebootstraps.clone(),
        );
        r.register(
            base(FLEET_SNAPSHOTS_REFUSED, "_total"),
            "Snapshots refused as damaged, incompatible or of another source",
            self.fleet_snapshots_refused.clone(),
        );
        r.register(
            HELD_BACK,
            "1 while invalid changes are held back",
            self.held_back.clone(),
        );
        r.register(
            base(DECISION_LOG_DROPPED, "_total"),
            "Decision-log records dropped because the writer fell behind",
            self.decision_log_dropped.clone(),
        );
        r.register(
            base(TASK_FAILURES, "_total"),
            "Background tasks that ended before shutdown",
            self.task_failures.clone(),
        );
        r.register(
            base(CREDENTIAL_RELOADS, "_total"),
            "Credential files re-read after a change and put into use",
            self.credential_reloads.clone(),
        );
        r.register(
            base(CREDENTIAL_RELOAD_ERRORS, "_total"),
            "Changed credential files that were not usable; the previous material stays",
            self.credential_reload_errors.clone(),
        );
        r.register(
            SERVING,
            "1 while health reports SERVING, else 0",
            self.serving.clone(),
        );
        r.register_with_unit(
            base(CAUGHT_UP_AGE, seconds),
            "Seconds since the follower last confirmed it is caught up with its source",
            Unit::Seconds,
            CaughtUpAge,
        );
        r.register(
            base(TICKET_CACHE_HITS, "_total"),
            "Ticket lookups answered from the ticket cache",
            self.ticket_cache_hits.clone(),
        );
        r.register(
            base(TICKET_CACHE_MISSES, "_total"),
            "Ticket lookups read from the database by the ticket cache",
            self.ticket_cache_misses.clone(),
        );
        r.register(
            base(TICKET_CACHE_EVICTIONS, "_total"),
            "Ticket cache entries evicted or not admitted to stay within its size",
            self.ticket_cache_evictions.clone(),
        );
        r.register(
            TICKET_CACHE_BYTES,
            "Bytes held by the ticket cache's entries",
            self.ticket_cache_bytes.clone(),
        );
        r.register(
            UNRESOLVED_REFERENCES,
            "References of a mapped source to ids it does not hold, left out of the data",
            self.unresolved_references.clone(),
        );
        self
    }

    /// The registry every metric is in, for the exposition.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The latency series of `rpc` ending in `outcome`: a handle to keep.
    pub fn rpc_duration(&self, rpc: &'static str, outcome: &'static str) -> LatencyHistogram {
        self.rpc_duration
            .get_or_create_owned(&RpcOutcome { rpc, outcome })
    }

    /// The decision counter of `action` ending in `outcome`: a handle to keep.
    pub fn decisions(&self, action: &'static str, outcome: &'static str) -> Counter {
        self.decisions
            .get_or_create_owned(&ActionOutcome { action, outcome })
    }

    /// The shed counter of `rpc` (made now, so it shows at zero): a handle
    /// to keep.
    pub fn shed(&self, rpc: &'static str) -> Counter {
        self.shed.get_or_create_owned(&RpcLabel { rpc })
    }

    /// The unresolved-reference gauge of a mapped source's `entity`, read
    /// from `source_tables`.
    pub fn unresolved_references(&self, entity: &'static str, source_tables: String) -> Gauge {
        self.unresolved_references
            .get_or_create_owned(&UnresolvedLabel {
                entity,
                source_tables,
            })
    }

    /// The entity gauge of `kind`.
    pub fn snapshot_entities(&self, kind: &'static str) -> Gauge {
        self.snapshot_entities
            .get_or_create_owned(&KindLabel { kind })
    }

    /// Counts one refresh problem.
    pub fn refresh_error(&self, kind: RefreshError) {
        self.refresh_errors
            .get_or_create(&KindLabel { kind: kind.label() })
            .inc();
    }

    /// Counts one message a relay published.
    pub fn fleet_published(&self, snapshot: bool) {
        let kind = if snapshot { "snapshot" } else { "changes" };
        self.fleet_published
            .get_or_create(&KindLabel { kind })
            .inc();
    }

    /// The failure counter of the task `task` (made now, so that a task
    /// not listed in [`TASKS`] shows at zero from its start too).
    pub fn task_failures(&self, task: &'static str) -> Counter {
        self.task_failures.get_or_create_owned(&TaskLabel { task })
    }

    /// Counts a credential file put into use (`reloaded`) or refused.
    pub fn credential_reload(&self, credential: &'static str, reloaded: bool) {
        let family = if reloaded {
            &self.credential_reloads
        } else {
            &self.credential_reload_errors
        };
        family.get_or_create(&CredentialLabel { credential }).inc();
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics, registered at first use.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The whole registry in OpenMetrics. A family without series is left
    /// out, so the two made at first use get one here.
    fn openmetrics() -> String {
        metrics().rpc_duration("CheckAccess", "allowed");
        metrics().shed("other");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, metrics().registry()).unwrap();
        text
    }

    #[test]
    fn every_name_is_exported_as_written_here() {
        let text = openmetrics();
        for (name, kind) in [
            (RPC_DURATION, "histogram"),
            (DECISIONS, "counter"),
            (SHED, "counter"),
            (REVISION, "gauge"),
            (CHANGE_LAG, "histogram"),
            (APPLY_DURATION, "histogram"),
            (SNAPSHOT_ENTITIES, "gauge"),
            (REFRESH_ERRORS, "counter"),
            (FULL_RELOADS, "counter"),
            (HELD_BACK, "gauge"),
            (DECISION_LOG_DROPPED, "counter"),
            (TASK_FAILURES, "counter"),
            (SERVING, "gauge"),
            (CAUGHT_UP_AGE, "gauge"),
        ] {
            // OpenMetrics names a counter family without `_total`.
            let family = if kind == "counter" {
                base(name, "_total")
            } else {
                name
            };
            assert!(
                text.contains(&format!("# TYPE {family} {kind}\n")),
                "{name}: {text}"
            );
        }
    }

    #[test]
    fn known_label_sets_start_at_zero() {
        let text = openmetrics();
        for line in [
            "ticket_authz_decisions_total{action=\"has_flag\",outcome=\"denied\"} 0",
            "ticket_authz_refresh_errors_total{kind=\"held_back\"} 0",
            "ticket_authz_task_failures_total{task=\"follower\"} 0",
            "ticket_authz_snapshot_entities{kind=\"tickets\"} 0",
            "ticket_authz_full_reloads_total 0",
        ] {
            assert!(text.contains(line), "{line} missing: {text}");
        }
    }

    #[test]
    fn caught_up_age_grows_until_confirmed_and_is_zero_when_settled() {
        use std::time::Duration;
        let clock = CaughtUp::new();
        let start = clock.base;
        assert_eq!(clock.age_at(start + Duration::from_secs(3)), 3.0);
        clock.confirm_at(start + Duration::from_secs(10));
        assert_eq!(clock.age_at(start + Duration::from_secs(12)), 2.0);
        // A late report of an older confirmation does not turn time back.
        clock.confirm_at(start + Duration::from_secs(4));
        assert_eq!(clock.age_at(start + Duration::from_secs(12)), 2.0);
        clock.settle();
        assert_eq!(clock.age_at(start + Duration::from_secs(100)), 0.0);
    }
}
