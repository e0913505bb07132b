//! The application service every transport adapts: checks, batches, lists
//! and filters from the store's snapshots, with validation before any
//! wait, `min_revision` waits, the clock, the decision log, span fields and
//! decision metrics. It takes domain requests and returns domain results or
//! an [`AppError`]; it knows no wire format.

mod call;
mod error;
mod tickets;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;

pub use call::{Answer, Call, CallMetrics, Operation, Outcome, StatusCode};
pub use error::{AppError, optional_id, required_id};

use crate::core::{
    self, Action, CheckRequest, Context, Decision, Page, PageCursor, TicketFilter, ValidRequest,
    VisibilityFilter,
};
use crate::model::ResourceKind;
use crate::snapshot::Snapshot;
use crate::store::Store;
use crate::telemetry::decision_log::{DecisionLog, DecisionRecord, LoggedRequest};
use crate::telemetry::metrics::metrics;
use crate::ticket_cache::{Resolved, TicketCache};
use crate::time::Timestamp;

/// The most checks one batch may carry.
pub const MAX_BATCH: usize = 1000;

/// How calls are observed beyond spans and metrics.
#[derive(Debug, Clone, Default)]
pub struct Observe {
    /// Put user and ticket ids on spans.
    pub trace_subjects: bool,
    pub decision_log: Option<DecisionLog>,
}

/// Per-check options besides the question itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Answer only from this revision or a later one (waiting for it).
    pub min_revision: u64,
    /// Collect the explanation.
    pub explain: bool,
}

/// One check of a batch, however the transport holds it.
pub trait BatchCheck {
    fn request(&self) -> CheckRequest<'_>;
    fn options(&self) -> CheckOptions;
}

impl BatchCheck for (CheckRequest<'_>, CheckOptions) {
    fn request(&self) -> CheckRequest<'_> {
        self.0
    }

    fn options(&self) -> CheckOptions {
        self.1
    }
}

/// Where a batch stops: AuthZEN's evaluation semantics. The checks after
/// the stop are neither decided nor logged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Until {
    /// Decide every check.
    #[default]
    All,
    /// Stop after the first denial (it is the last result).
    FirstDeny,
    /// Stop after the first permit (it is the last result).
    FirstPermit,
}

impl Until {
    fn stops_at(self, allowed: bool) -> bool {
        match self {
            Until::All => false,
            Until::FirstDeny => !allowed,
            Until::FirstPermit => allowed,
        }
    }
}

/// The page a list call asks for, as the caller sent it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageArgs<'a> {
    /// 0 asks for the default size.
    pub size: u32,
    /// Empty starts at the beginning.
    pub token: &'a str,
}

/// A result and the revision it was computed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtRevision<T> {
    pub value: T,
    pub revision: u64,
}

/// Decision counters by action and outcome: handles made once (every pair
/// exists from start, at zero), so that counting takes no family lookup.
#[derive(Debug)]
struct DecisionCounters([[Counter; 2]; Action::ALL.len()]);

impl Default for DecisionCounters {
    fn default() -> Self {
        Self(Action::ALL.map(|action| {
            ["denied", "allowed"].map(|outcome| metrics().decisions(action.name(), outcome))
        }))
    }
}

impl DecisionCounters {
    /// One metric update per distinct pair (a batch of 1000 checks costs
    /// a dozen updates, not 1000).
    fn count(&self, decisions: impl IntoIterator<Item = (Action, bool)>) {
        let mut tally = [[0u64; 2]; Action::ALL.len()];
        for (action, allowed) in decisions {
            if let Some(row) = Action::ALL
                .iter()
                .position(|a| *a == action)
                .and_then(|i| tally.get_mut(i))
            {
                row[usize::from(allowed)] += 1;
            }
        }
        for (counters, counts) in self.0.iter().zip(tally) {
            for (counter, n) in counters.iter().zip(counts) {
                if n > 0 {
                    counter.inc_by(n);
                }
            }
        }
    }
}

/// The service: cheap to clone, shared by every transport on every port.
#[derive(Debug, Clone)]
pub struct Authz {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<Store>,
    revision_wait: Duration,
    observe: Observe,
    decisions: DecisionCounters,
    /// Tickets read through this cache (`--ticket-cache`): the snapshot
    /// then holds the graph only.
    tickets: Option<TicketCache>,
}

impl Authz {
    /// `revision_wait` bounds how long a `min_revision` waits.
    pub fn new(store: Arc<Store>, revision_wait: Duration, observe: Observe) -> Self {
        Self::with_tickets(store, revision_wait, observe, None)
    }

    /// [`Authz::new`] whose tickets, when `tickets` is set, are read
    /// through that cache: the store's snapshots then hold no tickets.
    pub fn with_tickets(
        store: Arc<Store>,
        revision_wait: Duration,
        observe: Observe,
        tickets: Option<TicketCache>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                revision_wait,
                observe,
                decisions: DecisionCounters::default(),
                tickets,
            }),
        }
    }

    /// One access question.
    pub async fn check(
        &self,
        call: &Call<'_>,
        request: CheckRequest<'_>,
        options: CheckOptions,
    ) -> Result<AtRevision<Decision>, AppError> {
        let valid = request.validate()?;
        let (snap, decision) = match &self.inner.tickets {
            None => {
                let snap = self.snapshot(options.min_revision).await?;
                let ctx = Context {
                    now: clock(&snap),
                    explain: options.explain,
                    limits: None,
                };
                let decision = core::decide(&snap, &valid, ctx);
                (snap, decision)
            }
            Some(cache) => {
                let mut got = self
                    .gather(cache, std::slice::from_ref(&valid), options.min_revision)
                    .await?;
                let out = got.outside.pop().unwrap_or_default();
                let decision = decide_outside(&got.snap, &valid, out, got.now, options.explain);
                (got.snap, decision)
            }
        };
        self.inner
            .decisions
            .count([(valid.action, decision.allowed)]);
        self.log(call, &request, &valid, &decision, snap.revision());
        let span = call.span();
        if !span.is_disabled() {
            span.record("authz.action", valid.action.name());
            span.record("authz.allowed", decision.allowed);
            span.record("authz.reason", decision.reason.name());
            span.record("authz.revision", snap.revision());
            if self.inner.observe.trace_subjects {
                span.record("authz.user_id", valid.user);
                if let Some(ticket) = valid.ticket {
                    span.record("authz.ticket_id", ticket);
                }
            }
        }
        Ok(AtRevision {
            value: decision,
            revision: snap.revision(),
        })
    }

    /// 1 to [`MAX_BATCH`] questions, all validated before any wait and all
    /// answered from one snapshot, at the highest `min_revision` asked for
    /// (`min_revision` here or on any check).
    pub async fn check_batch<C: BatchCheck>(
        &self,
        call: &Call<'_>,
        checks: &[C],
        min_revision: u64,
    ) -> Result<AtRevision<Vec<Decision>>, AppError> {
        self.check_batch_until(call, checks, min_revision, Until::All)
            .await
    }

    /// [`Authz::check_batch`], deciding in order up to `until`'s stop: the
    /// answer holds the decisions up to and including it.
    pub async fn check_batch_until<C: BatchCheck>(
        &self,
        call: &Call<'_>,
        checks: &[C],
        min_revision: u64,
        until: Until,
    ) -> Result<AtRevision<Vec<Decision>>, AppError> {
        if checks.is_empty() || checks.len() > MAX_BATCH {
            return Err(AppError::BatchSize(checks.len()));
        }
        let mut valid = Vec::with_capacity(checks.len());
        for (index, check) in checks.iter().enumerate() {
            let v = check
                .request()
                .validate()
                .map_err(|error| AppError::BatchCheck { index, error })?;
            valid.push(v);
        }
        let min_revision = checks
            .iter()
            .map(|c| c.options().min_revision)
            .fold(min_revision, u64::max);
        let (snap, now, mut outside) = match &self.inner.tickets {
            None => {
                let snap = self.snapshot(min_revision).await?;
                let now = clock(&snap);
                (snap, now, Vec::new())
            }
            Some(cache) => {
                let got = self.gather(cache, &valid, min_revision).await?;
                (got.snap, got.now, got.outside)
            }
        };
        let mut outside = outside.drain(..);
        let mut decisions: Vec<Decision> = Vec::with_capacity(valid.len());
        for (v, check) in valid.iter().zip(checks) {
            let explain = check.options().explain;
            let d = match outside.next() {
                None => core::decide(
                    &snap,
                    v,
                    Context {
                        now,
                        explain,
                        limits: None,
                    },
                ),
                Some(out) => decide_outside(&snap, v, out, now, explain),
            };
            self.log(call, &check.request(), v, &d, snap.revision());
            let stop = until.stops_at(d.allowed);
            decisions.push(d);
            if stop {
                break;
            }
        }
        self.inner.decisions.count(
            valid
                .iter()
                .zip(&decisions)
                .map(|(v, d)| (v.action, d.allowed)),
        );
        let span = call.span();
        if !span.is_disabled() {
            span.record("authz.checks", decisions.len());
            span.record(
                "authz.allowed_checks",
                decisions.iter().filter(|d| d.allowed).count(),
            );
            span.record("authz.revision", snap.revision());
        }
        Ok(AtRevision {
            value: decisions,
            revision: snap.revision(),
        })
    }

    /// One page of the tickets `user_id` may view that pass `filter`.
    /// The user, the filter's ids and the page are checked before any wait.
    pub async fn list_tickets(
        &self,
        call: &Call<'_>,
        user_id: &str,
        filter: &TicketFilter,
        page: PageArgs<'_>,
        min_revision: u64,
    ) -> Result<AtRevision<Page>, AppError> {
        required_id("user_id", user_id)?;
        optional_id(
            "organisation_id",
            filter.organisation.as_deref().unwrap_or(""),
        )?;
        optional_id("group_id", filter.group.as_deref().unwrap_or(""))?;
        let cursor = PageCursor::visible(user_id, filter, page.size, page.token)?;
        let (snap, page) = match &self.inner.tickets {
            None => {
                let snap = self.snapshot(min_revision).await?;
                let page = core::visible_tickets_page(&snap, user_id, filter, &cursor);
                (snap, page)
            }
            Some(cache) => {
                self.visible_page_cached(cache, user_id, filter, &cursor, min_revision)
                    .await?
            }
        };
        self.record_list(call, page.ids.len(), snap.revision(), user_id);
        Ok(AtRevision {
            value: page,
            revision: snap.revision(),
        })
    }

    /// One page of the resources of `kind` that `user_id` may view (access
    /// model §8). Section data lives in the snapshot in every mode (the
    /// ticket cache holds none of it), so this reads no ticket store. The
    /// user and the page are checked before any wait.
    pub async fn list_resources(
        &self,
        call: &Call<'_>,
        user_id: &str,
        kind: ResourceKind,
        page: PageArgs<'_>,
        min_revision: u64,
    ) -> Result<AtRevision<Page>, AppError> {
        required_id("user_id", user_id)?;
        let cursor = PageCursor::resources(user_id, kind, page.size, page.token)?;
        let snap = self.snapshot(min_revision).await?;
        let page = core::visible_resources_page(&snap, user_id, kind, &cursor);
        self.record_list(call, page.ids.len(), snap.revision(), user_id);
        Ok(AtRevision {
            value: page,
            revision: snap.revision(),
        })
    }

    /// One page of the users who may view `ticket_id`; the ticket id and
    /// the page are checked before any wait.
    pub async fn list_viewers(
        &self,
        call: &Call<'_>,
        ticket_id: &str,
        page: PageArgs<'_>,
        min_revision: u64,
    ) -> Result<AtRevision<Page>, AppError> {
        required_id("ticket_id", ticket_id)?;
        let cursor = PageCursor::viewers(ticket_id, page.size, page.token)?;
        let (snap, page) = match &self.inner.tickets {
            None => {
                let snap = self.snapshot(min_revision).await?;
                let page = core::ticket_viewers_page(&snap, ticket_id, &cursor);
                (snap, page)
            }
            Some(cache) => {
                self.viewers_page_cached(cache, ticket_id, &cursor, min_revision)
                    .await?
            }
        };
        self.record_list(call, page.ids.len(), snap.revision(), "");
        if self.inner.observe.trace_subjects && !call.span().is_disabled() {
            call.span().record("authz.ticket_id", ticket_id);
        }
        Ok(AtRevision {
            value: page,
            revision: snap.revision(),
        })
    }

    /// What `user_id` may view, as a predicate.
    pub async fn visibility_filter(
        &self,
        call: &Call<'_>,
        user_id: &str,
        min_revision: u64,
    ) -> Result<AtRevision<VisibilityFilter>, AppError> {
        required_id("user_id", user_id)?;
        let snap = self.snapshot(min_revision).await?;
        let filter = core::visibility_filter(&snap, user_id);
        self.record_list(
            call,
            filter.organisation_ids.len(),
            snap.revision(),
            user_id,
        );
        Ok(AtRevision {
            value: filter,
            revision: snap.revision(),
        })
    }

    /// Logs a decision when the sample draw says so; builds the record only then.
    fn log(
        &self,
        call: &Call<'_>,
        request: &CheckRequest<'_>,
        valid: &ValidRequest<'_>,
        d: &Decision,
        revision: u64,
    ) {
        let Some(log) = &self.inner.observe.decision_log else {
            return;
        };
        if !log.sampled() {
            return;
        }
        log.record(DecisionRecord {
            time: jiff::Timestamp::now().to_string(),
            revision,
            rpc: call.method(),
            request: LoggedRequest {
                user_id: request.user.to_owned(),
                action: valid.action.name(),
                ticket_id: request.ticket.to_owned(),
                organisation_id: request.organisation.to_owned(),
                group_id: request.group.to_owned(),
                company_id: request.company.to_owned(),
                flag: request.flag.to_owned(),
                resource_id: valid.resource.unwrap_or_default().to_owned(),
                ticket_inline: valid.inline.is_some(),
            },
            allowed: d.allowed,
            reason: d.reason.name(),
            warning: d.warning.map(|w| w.name()),
        });
    }

    fn record_list(&self, call: &Call<'_>, results: usize, revision: u64, user: &str) {
        let span = call.span();
        if span.is_disabled() {
            return;
        }
        span.record("authz.results", results);
        span.record("authz.revision", revision);
        if self.inner.observe.trace_subjects && !user.is_empty() {
            span.record("authz.user_id", user);
        }
    }

    /// The snapshot being served (at `min_revision` or later, waiting as a
    /// check does): the console reads it, never changes it, to render the
    /// relations the core derives.
    pub async fn snapshot(&self, min_revision: u64) -> Result<Arc<Snapshot>, AppError> {
        Ok(self
            .inner
            .store
            .at_least(min_revision, self.inner.revision_wait)
            .await?)
    }
}

/// Decides a check on what was gathered for it from outside the graph:
/// its stored ticket's row and limit counts (inline tickets are decided
/// by the core on their own attributes).
fn decide_outside(
    snap: &Snapshot,
    valid: &ValidRequest<'_>,
    out: tickets::Outside,
    now: Timestamp,
    explain: bool,
) -> Decision {
    let ctx = Context {
        now,
        explain,
        limits: out.limits,
    };
    if valid.inline.is_some() || !valid.action.is_ticket_action() {
        return core::decide(snap, valid, ctx);
    }
    core::decide_with(snap, valid, out.row.as_deref().map(Resolved::row), ctx)
}

/// The clock for ticket limits: the data's fixed `now`, else the wall clock.
fn clock(snap: &Snapshot) -> Timestamp {
    snap.fixed_now().unwrap_or_else(Timestamp::now)
}
