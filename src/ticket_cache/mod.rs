//! The read-through ticket cache of `serve --ticket-cache SIZE`: the graph
//! is followed in memory as always, tickets are read by key from the
//! database and kept in a `moka` cache bounded by their size in bytes.
//!
//! Exactness. A read returns the ticket as the database held it at the
//! revision it read at (`read_at`), and whether it was the same at the
//! graph's revision the reader held (then it holds from there,
//! `valid_from`). An entry holds at a graph revision R when
//! `valid_from <= R <= read_at`, or when R is later and no change to the
//! ticket was followed after `read_at`: the follower bumps the ticket's
//! stripe (a fixed array of revisions indexed by a hash of the id) and
//! drops the entry before it publishes the revision that changed it
//! ([`CachedSource`]). The stripe, not the drop, is what makes this exact:
//! a read that raced the change may insert its old row after the drop,
//! and the stripe then says it is stale. A full reload raises one floor
//! for every stripe. An entry newer than the graph makes the caller wait
//! for the graph to reach `valid_from`.
//!
//! Hits. moka decides what is kept (its admission and eviction), but a
//! hit reads a lock-free front map of the same entries, so it skips
//! moka's table, read-op channel and deque upkeep; an entry's first hits,
//! and then one in a few per thread ([`Touch`]), are also read from moka,
//! so that its frequency sketch and LRU order still see the traffic. An
//! entry enters the front only after moka returned it, and leaves it when
//! moka reports its removal ([`Entry::gone`]): the front never keeps what
//! moka dropped. Which map a hit reads does not bear on exactness: the fit
//! check above decides every answer.

mod reader;
mod source;

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use compact_str::CompactString;
use moka::future::Cache;
use moka::notification::RemovalCause;
use prometheus_client::metrics::counter::Counter;

pub use reader::{Read, ReadAt, TicketReader};

pub use source::CachedSource;

use crate::model::Ticket;
use crate::snapshot::{HandleEpoch, Snapshot, TicketFacts, TicketRow};
use crate::telemetry::metrics::metrics;

/// Stripes of change revisions: 128 KiB, so that a change marks about
/// one ticket in 16,384 as possibly stale.
const STRIPES: usize = 1 << 14;

/// What an entry costs besides its key and strings: moka's node, deque
/// links, counters and share of its table and frequency sketch, and the
/// allocator's rounding. Measured at 10M tickets (BENCHMARKS.md): 557 B
/// resident per entry that a 160 B estimate weighed at 422 B.
const ENTRY_OVERHEAD: usize = 300;

/// What the front map adds per entry besides its own copy of the key:
/// the rest of its boxed node ([`Hot`]), and its share of the table (a
/// pointer and a metadata byte per slot, at a load of 42–85% between
/// doublings).
const FRONT_OVERHEAD: usize = 56;

/// Which hits are also read from moka: every hit while the entry has had
/// fewer than `first` (moka's frequency sketch counts to 15), then one in
/// `every` per thread. A ticket asked about often keeps its place in
/// moka's LRU order, and the sketch still sees the first hits that decide
/// admission against the rest. The hit ratio under a Zipf load, against
/// moka read on every hit, is in BENCHMARKS.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touch {
    pub first: u8,
    pub every: u32,
}

impl Touch {
    /// What the service uses.
    pub const DEFAULT: Touch = Touch {
        first: 8,
        every: 32,
    };
    /// Moka read on every hit, as without the front map (for comparison).
    pub const ALWAYS: Touch = Touch {
        first: u8::MAX,
        every: 1,
    };
}

thread_local! {
    /// Hits on this thread, for [`Touch::every`]; a thread-local so that
    /// hits on two cores share no counter.
    static HITS_HERE: Cell<u32> = const { Cell::new(0) };
}

/// The front map: the entries moka holds, read without its bookkeeping.
type Front = papaya::HashMap<CompactString, Hot, foldhash::fast::RandomState>;

/// Takes `entry` out of the front map if the node for `id` still holds it
/// (a newer entry for the same id stays).
fn unpublish(front: &Front, id: &str, entry: &Arc<Entry>) {
    let _removed = front
        .pin()
        .remove_if(id, |_, held| Arc::ptr_eq(&held.entry, entry));
}

/// One cached read: a ticket, or its absence, and the revisions it holds at.
#[derive(Debug)]
pub struct Entry {
    ticket: Option<Ticket>,
    valid_from: u64,
    read_at: u64,
    /// Set when moka removed the entry (evicted, not admitted, replaced or
    /// invalidated), before it leaves the front map.
    gone: AtomicBool,
}

/// An entry as the front map holds it: what a hit reads, in the map's own
/// node, so that a hit reads the node and the kept row and nothing else.
#[derive(Debug)]
struct Hot {
    valid_from: u64,
    read_at: u64,
    /// The ticket's row as last resolved against the graph, kept so that
    /// a hit skips the id lookups while the graph's [`HandleEpoch`] is
    /// unchanged (most changes leave it alone: only a user, organisation
    /// or group added or removed moves it). `None` for no such ticket.
    resolved: ArcSwapOption<Resolved>,
    /// Hits so far, up to [`Touch::first`].
    hits: AtomicU8,
    entry: Arc<Entry>,
}

/// A cached ticket's row, resolved against snapshots of one handle epoch.
#[derive(Debug)]
pub struct Resolved {
    epoch: HandleEpoch,
    row: TicketRow,
    entry: Arc<Entry>,
}

impl Resolved {
    pub fn row(&self) -> &TicketRow {
        &self.row
    }

    /// The ticket as it was read (only an entry with a ticket is
    /// resolved, so this is `Some`).
    pub fn ticket(&self) -> Option<&Ticket> {
        self.entry.ticket.as_ref()
    }
}

impl Hot {
    fn new(entry: &Arc<Entry>) -> Self {
        Self {
            valid_from: entry.valid_from,
            read_at: entry.read_at,
            resolved: ArcSwapOption::empty(),
            hits: AtomicU8::new(0),
            entry: Arc::clone(entry),
        }
    }

    /// Its row resolved against `snap` (which must be one it holds at):
    /// the kept one when `snap` has its epoch, else resolved anew and kept.
    fn row(&self, snap: &Snapshot) -> Option<Arc<Resolved>> {
        let t = self.entry.ticket.as_ref()?;
        let epoch = snap.handle_epoch();
        if let Some(kept) = self.resolved.load_full().filter(|r| r.epoch == epoch) {
            return Some(kept);
        }
        let row = snap.detached_ticket(&TicketFacts {
            id: &t.id,
            created_at: Some(t.created_at),
            requester: &t.requester,
            organisation: t.organisation.as_deref(),
            group: t.group.as_deref(),
            assignee: t.assignee.as_deref(),
            status: t.status,
            ccs: &t.ccs,
            participants: &t.participants,
        });
        let fresh = Arc::new(Resolved {
            epoch,
            row,
            entry: Arc::clone(&self.entry),
        });
        self.resolved.store(Some(Arc::clone(&fresh)));
        Some(fresh)
    }

    /// Whether this hit should also be read from moka.
    fn touch(&self, touch: Touch) -> bool {
        if self.hits.load(Ordering::Relaxed) < touch.first {
            // Racing hits may count one twice or not at all: the bound
            // only has to be about right.
            self.hits.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        HITS_HERE.with(|n| {
            let hits = n.get().wrapping_add(1);
            n.set(hits);
            hits % touch.every == 0
        })
    }
}

impl Entry {
    fn new(ticket: Option<Ticket>, valid_from: u64, read_at: u64) -> Self {
        Self {
            ticket,
            valid_from,
            read_at,
            gone: AtomicBool::new(false),
        }
    }

    /// Bytes this entry holds in both maps, with its key, its kept row and
    /// the maps' bookkeeping.
    fn weight(&self, key: &str) -> u32 {
        let strings = self.ticket.as_ref().map_or(0, |t| {
            let opt = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
            let list = |l: &[String]| {
                l.iter().map(String::capacity).sum::<usize>() + std::mem::size_of_val(l)
            };
            t.id.capacity()
                + t.requester.capacity()
                + opt(&t.organisation)
                + opt(&t.group)
                + opt(&t.assignee)
                + list(&t.ccs)
                + list(&t.participants)
        });
        let inline = std::mem::size_of::<CompactString>();
        let key_heap = if key.len() > inline { key.len() } else { 0 };
        // The kept row: its Arc, its id's heap (as the key's) and its
        // handle lists (at most as long as the id lists).
        let resolved = self.ticket.as_ref().map_or(0, |t| {
            let people = t.ccs.len() + t.participants.len();
            2 * std::mem::size_of::<usize>()
                + std::mem::size_of::<Resolved>()
                + key_heap
                + if people == 0 {
                    0
                } else {
                    std::mem::size_of::<crate::snapshot::TicketPeople>()
                        + people * std::mem::size_of::<crate::snapshot::Idx>()
                }
        });
        let total = ENTRY_OVERHEAD
            + FRONT_OVERHEAD
            + 2 * (inline + key_heap)
            + std::mem::size_of::<Entry>()
            + strings
            + resolved;
        u32::try_from(total).unwrap_or(u32::MAX)
    }
}

/// Where an entry stands at a graph revision.
#[derive(Debug, Clone, Copy)]
enum Span {
    Holds,
    After(u64),
}

/// Whether the cache answers about a ticket at a graph revision.
#[derive(Debug)]
pub enum Fit {
    /// It holds at the graph's revision: the ticket's row resolved against
    /// that graph (`None`: there is no such ticket).
    Holds(Option<Arc<Resolved>>),
    /// It holds only from this later revision: wait for the graph.
    After(u64),
}

/// The cache, shared by every call and the follower; cheap to clone.
#[derive(Debug, Clone)]
pub struct TicketCache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Keyed with foldhash, as the snapshot's id index is: moka's default
    /// SipHash is several times slower on short ids, on every hit.
    entries: Cache<CompactString, Arc<Entry>, foldhash::fast::RandomState>,
    /// What hits read (see the module's "Hits").
    front: Arc<Front>,
    /// The highest revision of a followed change to any ticket of the
    /// stripe.
    changed: Box<[AtomicU64]>,
    /// The revision of the last full reload: every stripe is at least it.
    reloaded: AtomicU64,
    hasher: foldhash::fast::FixedState,
    reader: Arc<dyn TicketReader>,
    touch: Touch,
    hits: Counter,
    misses: Counter,
    /// This cache's share of the evictions metric.
    evicted: Arc<AtomicU64>,
}

/// The cache's errors: the reader's, by message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    #[error("reading ticket `{id}`: {cause}")]
    Read { id: String, cause: String },
    #[error(
        "ticket `{id}`: the database answered at revision {read_at}, before the served revision {served}"
    )]
    Behind {
        id: String,
        read_at: u64,
        served: u64,
    },
}

impl TicketCache {
    /// A cache of at most `max_bytes` reading through `reader`.
    pub fn new(max_bytes: u64, reader: Arc<dyn TicketReader>) -> Self {
        Self::touching(max_bytes, reader, Touch::DEFAULT)
    }

    /// The same, with `touch` deciding which hits are read from moka (the
    /// benchmark compares hit ratios).
    pub fn touching(max_bytes: u64, reader: Arc<dyn TicketReader>, touch: Touch) -> Self {
        let m = metrics();
        let (evictions, bytes) = (
            m.ticket_cache_evictions.clone(),
            m.ticket_cache_bytes.clone(),
        );
        let listener_bytes = bytes.clone();
        let evicted = Arc::new(AtomicU64::new(0));
        let listener_evicted = Arc::clone(&evicted);
        let front = Arc::new(Front::with_hasher(foldhash::fast::RandomState::default()));
        let listener_front = Arc::clone(&front);
        let entries = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &CompactString, entry: &Arc<Entry>| entry.weight(key))
            .eviction_listener(move |key: Arc<CompactString>, entry: Arc<Entry>, cause| {
                if cause == RemovalCause::Size {
                    evictions.inc();
                    listener_evicted.fetch_add(1, Ordering::Relaxed);
                }
                listener_bytes.dec_by(i64::from(entry.weight(&key)));
                // SeqCst with `publish`: either it sees `gone` or this
                // removal comes after its insert.
                entry.gone.store(true, Ordering::SeqCst);
                unpublish(&listener_front, &key, &entry);
            })
            .build_with_hasher(foldhash::fast::RandomState::default());
        Self {
            inner: Arc::new(Inner {
                entries,
                front,
                changed: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
                reloaded: AtomicU64::new(0),
                hasher: foldhash::fast::FixedState::default(),
                reader,
                touch: Touch {
                    every: touch.every.max(1),
                    ..touch
                },
                hits: m.ticket_cache_hits.clone(),
                misses: m.ticket_cache_misses.clone(),
                evicted,
            }),
        }
    }

    /// What the cache reads through.
    pub fn reader(&self) -> &dyn TicketReader {
        &*self.inner.reader
    }

    fn stripe(&self, id: &str) -> &AtomicU64 {
        use std::hash::BuildHasher as _;
        let hash = self.inner.hasher.hash_one(id);
        // STRIPES is a power of two well below u64::MAX.
        let at = (hash as usize) & (STRIPES - 1);
        &self.inner.changed[at]
    }

    /// Where an entry of `id` read at `read_at`, holding from
    /// `valid_from`, stands at `revision`: `None` when it is stale.
    fn span(&self, id: &str, valid_from: u64, read_at: u64, revision: u64) -> Option<Span> {
        if revision < valid_from {
            return Some(Span::After(valid_from));
        }
        if revision <= read_at {
            return Some(Span::Holds);
        }
        let changed = self
            .stripe(id)
            .load(Ordering::Acquire)
            .max(self.inner.reloaded.load(Ordering::Acquire));
        (changed <= read_at).then_some(Span::Holds)
    }

    fn fit_of(span: Span, hot: &Hot, snap: &Snapshot) -> Fit {
        match span {
            Span::Holds => Fit::Holds(hot.row(snap)),
            Span::After(r) => Fit::After(r),
        }
    }

    /// The ticket `id` as it is at `snap`'s revision, read through when
    /// the cache holds no entry that fits; or the later revision to wait
    /// for. Concurrent misses for one ticket make one read.
    pub async fn ticket(&self, id: &str, snap: &Snapshot) -> Result<Fit, CacheError> {
        let hit = {
            let front = self.inner.front.pin();
            front.get(id).and_then(|hot| {
                let span = self.span(id, hot.valid_from, hot.read_at, snap.revision())?;
                Some((Self::fit_of(span, hot, snap), hot.touch(self.inner.touch)))
            })
        };
        if let Some((fit, touch)) = hit {
            self.inner.hits.inc();
            if touch {
                self.inner.entries.get(id).await;
            }
            return Ok(fit);
        }
        // Boxed: the read-through future (moka's `try_get_with` and the
        // reader's) is many times the size of a hit's, and every caller's
        // future would otherwise carry and move it.
        Box::pin(self.read_through(id, snap)).await
    }

    async fn read_through(&self, id: &str, snap: &Snapshot) -> Result<Fit, CacheError> {
        let revision = snap.revision();
        let mut read_at = 0;
        // `try_get_with` answers with an entry already there (the stale
        // one the hit path found, or one another caller just read) or reads
        // one; a stale one is dropped and read again, and another caller's
        // stale read may land in between, hence a few attempts.
        for _ in 0..3 {
            let entry = self
                .inner
                .entries
                .try_get_with(CompactString::from(id), self.read(id, snap))
                .await
                .map_err(|cause| CacheError::Read {
                    id: id.to_owned(),
                    cause: cause.to_string(),
                })?;
            read_at = entry.read_at;
            if let Some(span) = self.span(id, entry.valid_from, entry.read_at, revision) {
                return Ok(self.publish(id, &entry, span, snap));
            }
            self.inner.entries.invalidate(id).await;
        }
        // Only a database behind the graph keeps reading stale rows (a
        // restore from backup).
        Err(CacheError::Behind {
            id: id.to_owned(),
            read_at,
            served: revision,
        })
    }

    /// Puts an entry moka returned into the front map, unless moka has
    /// removed it meanwhile, and answers from it. No await between the
    /// insert and the check, so a cancelled call leaves nothing behind.
    fn publish(&self, id: &str, entry: &Arc<Entry>, span: Span, snap: &Snapshot) -> Fit {
        let front = self.inner.front.pin();
        if let Some(hot) = front.get(id)
            && Arc::ptr_eq(&hot.entry, entry)
        {
            return Self::fit_of(span, hot, snap);
        }
        let hot = Hot::new(entry);
        let fit = Self::fit_of(span, &hot, snap);
        front.insert(CompactString::from(id), hot);
        if entry.gone.load(Ordering::SeqCst) {
            unpublish(&self.inner.front, id, entry);
        }
        fit
    }

    /// One read of the database; the new entry's weight joins the bytes held.
    async fn read(&self, id: &str, snap: &Snapshot) -> Result<Arc<Entry>, String> {
        self.inner.misses.inc();
        let graph_revision = snap.revision();
        let read = self.inner.reader.ticket(id, graph_revision).await?;
        let valid_from = if read.unchanged {
            graph_revision.min(read.revision)
        } else {
            read.revision
        };
        let entry = Arc::new(Entry::new(read.value, valid_from, read.revision));
        metrics()
            .ticket_cache_bytes
            .inc_by(i64::from(entry.weight(id)));
        Ok(entry)
    }

    /// A followed change to ticket `id` (its row, a CC or a participant)
    /// at or before `revision`: called before that revision is published.
    pub async fn changed(&self, id: &str, revision: u64) {
        self.stripe(id).fetch_max(revision, Ordering::AcqRel);
        self.inner.entries.invalidate(id).await;
    }

    /// A full reload at `revision`: every entry read before it is stale.
    pub fn reloaded(&self, revision: u64) {
        self.inner.reloaded.fetch_max(revision, Ordering::AcqRel);
        self.inner.entries.invalidate_all();
    }

    /// Entries held now (after moka's pending maintenance).
    pub async fn entry_count(&self) -> u64 {
        self.inner.entries.run_pending_tasks().await;
        self.inner.entries.entry_count()
    }

    /// Entries this cache evicted (or did not admit) for size.
    pub async fn evictions(&self) -> u64 {
        self.inner.entries.run_pending_tasks().await;
        self.inner.evicted.load(Ordering::Relaxed)
    }

    /// Bytes held now by moka's weights.
    pub async fn weighted_size(&self) -> u64 {
        self.inner.entries.run_pending_tasks().await;
        self.inner.entries.weighted_size()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;
    use crate::core::{LimitCounts, LimitQuery, TicketFilter, VisibilityFilter};
    use crate::model::{Dataset, Status};
    use crate::time::Timestamp;

    /// Answers what the test last set, counting reads.
    #[derive(Debug, Default)]
    struct Scripted {
        next: Mutex<Option<ReadAt<Option<Ticket>>>>,
        reads: AtomicUsize,
        delay: Duration,
    }

    impl Scripted {
        fn set(&self, status: Status, revision: u64, unchanged: bool) {
            *self.next.lock().unwrap() = Some(ReadAt {
                value: Some(ticket(status)),
                revision,
                unchanged,
            });
        }
    }

    fn ticket(status: Status) -> Ticket {
        Ticket {
            id: "t".to_owned(),
            created_at: Timestamp::from_nanos(0),
            requester: "ann".to_owned(),
            organisation: None,
            group: None,
            assignee: None,
            ccs: Vec::new(),
            participants: Vec::new(),
            status,
        }
    }

    impl TicketReader for Scripted {
        fn ticket<'a>(&'a self, _: &'a str, _: u64) -> Read<'a, Option<Ticket>> {
            Box::pin(async move {
                self.reads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(self.delay).await;
                self.next
                    .lock()
                    .unwrap()
                    .clone()
                    .ok_or_else(|| "no answer".to_owned())
            })
        }

        fn visible_page<'a>(
            &'a self,
            _: &'a VisibilityFilter,
            _: &'a TicketFilter,
            _: Option<&'a str>,
            _: usize,
            _: u64,
        ) -> Read<'a, (Vec<String>, bool)> {
            Box::pin(async { Err("not used".to_owned()) })
        }

        fn limit_counts<'a>(&'a self, _: &'a LimitQuery<'a>, _: u64) -> Read<'a, LimitCounts> {
            Box::pin(async { Err("not used".to_owned()) })
        }
    }

    fn graph(revision: u64) -> Snapshot {
        let mut snap = Snapshot::build(&Dataset::default()).unwrap();
        snap.set_revision(revision);
        snap
    }

    fn status(fit: Fit) -> Status {
        match fit {
            Fit::Holds(row) => row.unwrap().row().status,
            Fit::After(r) => panic!("after {r}"),
        }
    }

    #[tokio::test]
    async fn a_read_that_raced_a_change_is_not_served_after_it() {
        let reader = Arc::new(Scripted::default());
        let cache = TicketCache::new(1 << 20, reader.clone());
        // The follower sees the change at 12 and drops the entry (there is
        // none yet); a read that began before it then inserts what it saw
        // at 10.
        cache.changed("t", 12).await;
        reader.set(Status::Open, 10, true);
        assert_eq!(
            status(cache.ticket("t", &graph(10)).await.unwrap()),
            Status::Open
        );
        // At 12 that entry is stale: read again.
        reader.set(Status::Closed, 12, true);
        assert_eq!(
            status(cache.ticket("t", &graph(12)).await.unwrap()),
            Status::Closed
        );
        assert_eq!(reader.reads.load(Ordering::SeqCst), 2);
        // Unchanged since: a hit, at 12 and later.
        assert_eq!(
            status(cache.ticket("t", &graph(13)).await.unwrap()),
            Status::Closed
        );
        assert_eq!(reader.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_row_newer_than_the_graph_waits_for_the_graph() {
        let reader = Arc::new(Scripted::default());
        let cache = TicketCache::new(1 << 20, reader.clone());
        // Changed after the graph's 10, read at 15.
        reader.set(Status::Open, 15, false);
        match cache.ticket("t", &graph(10)).await.unwrap() {
            Fit::After(r) => assert_eq!(r, 15),
            Fit::Holds(_) => panic!("a row from revision 15 answered at 10"),
        }
        assert_eq!(
            status(cache.ticket("t", &graph(15)).await.unwrap()),
            Status::Open
        );
        assert_eq!(reader.reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_kept_row_is_resolved_again_once_an_id_it_names_is_known() {
        let reader = Arc::new(Scripted::default());
        let mut with_cc = ticket(Status::Open);
        with_cc.ccs = vec!["bob".to_owned()];
        *reader.next.lock().unwrap() = Some(ReadAt {
            value: Some(with_cc),
            revision: 5,
            unchanged: true,
        });
        let cache = TicketCache::new(1 << 20, reader.clone());
        let before = graph(5);
        let Fit::Holds(Some(row)) = cache.ticket("t", &before).await.unwrap() else {
            panic!("a read at the graph's revision waits");
        };
        let Fit::Holds(Some(hit)) = cache.ticket("t", &before).await.unwrap() else {
            panic!("a hit at the same revision waits");
        };
        assert!(row.row().ccs().is_empty(), "bob is not a user yet");
        assert!(
            Arc::ptr_eq(&row, &hit),
            "the same epoch reuses the kept row"
        );
        // Bob becomes a user at 6: no change to the ticket, so the entry
        // still holds, but its CC now resolves.
        let mut after = before.clone();
        after
            .apply_all(
                &[crate::snapshot::Change::UpsertUser(
                    crate::snapshot::UserFields {
                        id: "bob".to_owned(),
                        email: None,
                        name: None,
                        created_at: Timestamp::from_nanos(0),
                        kind: crate::model::UserKind::EndUser,
                        suspended: false,
                        ticket_access: crate::model::UserAccess::Own,
                        default_organisation: None,
                        company: None,
                        company_scoped: false,
                    },
                )],
                6,
            )
            .unwrap();
        let Fit::Holds(Some(again)) = cache.ticket("t", &after).await.unwrap() else {
            panic!("an unchanged ticket waits");
        };
        let bob = after.users.lookup("bob").unwrap();
        assert_eq!(again.row().ccs(), &[bob]);
        assert_eq!(reader.reads.load(Ordering::SeqCst), 1, "no second read");
    }

    #[tokio::test]
    async fn the_front_map_keeps_only_what_moka_holds() {
        let reader = Arc::new(Scripted::default());
        reader.set(Status::Open, 5, true);
        // Room for a handful of entries: most reads are evicted or not
        // admitted, and each removal must leave the front map too.
        let cache = TicketCache::new(4 << 10, reader.clone());
        let snap = graph(5);
        for round in 0..3 {
            for i in 0..200 {
                let id = format!("t{}", (i * 7 + round) % 150);
                assert!(matches!(
                    cache.ticket(&id, &snap).await.unwrap(),
                    Fit::Holds(_)
                ));
            }
        }
        assert!(cache.evictions().await > 100);
        let held = cache.entry_count().await;
        assert!(held > 0);
        assert_eq!(cache.inner.front.len() as u64, held);
        // A followed change drops the entry from both maps.
        let before = cache.inner.front.len();
        let held_id = (0..150)
            .map(|i| format!("t{i}"))
            .find(|id| cache.inner.front.pin().contains_key(id.as_str()))
            .unwrap();
        cache.changed(&held_id, 6).await;
        assert_eq!(cache.inner.front.len(), before - 1);
        assert_eq!(cache.entry_count().await, held - 1);
    }

    #[tokio::test]
    async fn concurrent_misses_make_one_read_and_a_reload_makes_entries_stale() {
        let reader = Arc::new(Scripted {
            delay: Duration::from_millis(30),
            ..Scripted::default()
        });
        reader.set(Status::Open, 5, true);
        let cache = TicketCache::new(1 << 20, reader.clone());
        let snap = graph(5);
        let all = futures_util::future::join_all((0..8).map(|_| cache.ticket("t", &snap))).await;
        assert!(all.into_iter().all(|f| matches!(f, Ok(Fit::Holds(_)))));
        assert_eq!(reader.reads.load(Ordering::SeqCst), 1);
        cache.reloaded(9);
        reader.set(Status::Solved, 9, true);
        assert_eq!(
            status(cache.ticket("t", &graph(9)).await.unwrap()),
            Status::Solved
        );
        assert_eq!(reader.reads.load(Ordering::SeqCst), 2);
    }
}
