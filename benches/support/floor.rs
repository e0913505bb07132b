//! The floor a check or page figure is divided by: the same number of
//! dependent random reads into tables of the sizes the measured operation
//! reads, timed in alternating rounds with the operation itself.
//!
//! A figure such as "a view check takes 170 ns" moves by a factor of two on
//! a busy host, because the check is bound by the latency of a few cache
//! and TLB misses, and those swing with whatever else shares the caches
//! and the memory bus. A floor made of the same misses swings with them,
//! so `operation / floor` stays put where the nanoseconds do not.
//!
//! The floor is a [`Plan`]: per operation, the list of table entries the
//! operation reads (an id-index slot, a chunk pointer, a row, a posting
//! list probe), chased as one dependency chain: each read's address
//! depends on the value the previous read returned, so neither the CPU
//! (out-of-order execution, prefetchers) nor the optimiser can start a read
//! early. Tables live in one [`Arena`] whose regions have the sizes of the
//! snapshot's tables for the same generated dataset, every page written so
//! that the memory is resident as the snapshot's is.

use std::cmp::Reverse;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{Hash, Hasher};
use std::hint::black_box;
use std::time::Instant;

use ticket_authz::core;
use ticket_authz::model::{Dataset, Ticket, User, UserKind};
use ticket_authz::snapshot::{CompanyRow, GroupRow, OrgRow, Snapshot, TicketRow, UserRow};
use ticket_authz::time::Timestamp;

/// Rows per chunk and id-index shards, as `src/snapshot/cow.rs` and
/// `src/snapshot/table.rs` lay them out.
const ROW_CHUNK: usize = 256;
const SHARDS: usize = 64;
/// Elements per posting-list chunk (`SEQ_MAX` in `src/snapshot/cow.rs`).
const SEQ_CHUNK: usize = 512;
/// A chunk pointer is an `Arc<[T]>`: pointer and length.
const CHUNK_POINTER_BYTES: usize = 16;

/// One table of the arena: `entries` entries of `stride` words each.
#[derive(Debug, Clone, Copy)]
pub struct Region {
    base: usize,
    entries: usize,
    stride: usize,
}

impl Region {
    /// The word an entry's read lands on (entries past the end wrap, so a
    /// plan never reads outside its region).
    pub fn word(&self, entry: usize) -> usize {
        self.base + (entry % self.entries.max(1)) * self.stride
    }
}

/// The sizes of the tables a floor reads, before they are allocated.
#[derive(Debug, Default)]
pub struct Layout {
    words: usize,
    /// (name, entries, bytes per entry), for the report.
    pub regions: Vec<(String, usize, usize)>,
}

impl Layout {
    /// Adds a table of `entries` entries of `entry_bytes` bytes each,
    /// starting on a cache line.
    pub fn region(&mut self, name: &str, entries: usize, entry_bytes: usize) -> Region {
        let base = self.words.next_multiple_of(8);
        let stride = entry_bytes.div_ceil(8).max(1);
        let entries = entries.max(1);
        self.words = base + entries * stride;
        self.regions.push((name.to_owned(), entries, entry_bytes));
        Region {
            base,
            entries,
            stride,
        }
    }

    /// Megabytes the arena will take.
    pub fn mib(&self) -> f64 {
        (self.words * 8) as f64 / 1048576.0
    }

    /// Allocates the tables and writes every word of them.
    pub fn allocate(&self) -> Arena {
        // The key is opaque to the optimiser, so it cannot know what a read
        // returns; every word holds it, so every page is written and
        // resident (a zeroed allocation could leave pages unmapped, and
        // reads of those would all hit the one shared zero page).
        let key: u64 = black_box(0x9e37_79b9_7f4a_7c15);
        Arena {
            words: vec![key; self.words.max(1)],
            key,
        }
    }
}

/// The floor's memory: every region of a [`Layout`], written.
pub struct Arena {
    words: Vec<u64>,
    key: u64,
}

/// A read that starts a new chain beside the current one: it depends on
/// what the current segment started from, not on the previous read.
const FORK: usize = 1 << 62;
/// A read that starts a new segment: it depends on every chain before it.
const JOIN: usize = 1 << 63;
const WORD: usize = !(FORK | JOIN);

/// Per operation, the words it reads, in order, as the operation's
/// dependencies run: one chain of reads where each needs the one before
/// (an id's slot, then its chunk pointer, then its row), chains side by
/// side where the operation's reads are independent (the ticket's lookup
/// and the user's), and segments one after the other where a later read
/// needs them all (a list's merge, after its heads).
#[derive(Debug, Default, Clone)]
pub struct Plan {
    reads: Vec<usize>,
    /// Where each operation's reads start in `reads`; one more entry than
    /// operations.
    starts: Vec<usize>,
    /// FORK or JOIN for the next read.
    pending: usize,
    /// The longest chain of each finished operation, summed over its
    /// segments (the reads that cannot overlap).
    depths: Vec<usize>,
    segment_depth: usize,
    chain_depth: usize,
    op_depth: usize,
}

impl Plan {
    pub fn new() -> Self {
        Self {
            starts: vec![0],
            ..Self::default()
        }
    }

    /// One read of `entry` in `region`, after the previous read of its
    /// chain.
    pub fn read(&mut self, region: Region, entry: usize) {
        if self.pending == FORK {
            self.segment_depth = self.segment_depth.max(self.chain_depth);
            self.chain_depth = 0;
        } else if self.pending == JOIN {
            self.close_segment();
        }
        self.chain_depth += 1;
        self.reads.push(region.word(entry) | self.pending);
        self.pending = 0;
    }

    /// The next read starts a chain beside the current one.
    pub fn fork(&mut self) {
        if self.pending == 0 && self.chain_depth > 0 {
            self.pending = FORK;
        }
    }

    /// The next read waits for every read before it.
    pub fn join(&mut self) {
        if self.chain_depth > 0 || self.segment_depth > 0 {
            self.pending = JOIN;
        }
    }

    fn close_segment(&mut self) {
        self.op_depth += self.segment_depth.max(self.chain_depth);
        self.segment_depth = 0;
        self.chain_depth = 0;
    }

    /// Ends the operation being planned.
    pub fn end_op(&mut self) {
        self.close_segment();
        self.depths.push(self.op_depth);
        self.op_depth = 0;
        self.pending = 0;
        self.starts.push(self.reads.len());
    }

    pub fn ops(&self) -> usize {
        self.starts.len() - 1
    }

    /// Mean reads per operation.
    pub fn reads_per_op(&self) -> f64 {
        self.reads.len() as f64 / self.ops().max(1) as f64
    }

    /// Mean reads per operation that wait for one another (its longest
    /// chains, segment after segment).
    pub fn depth_per_op(&self) -> f64 {
        self.depths.iter().sum::<usize>() as f64 / self.ops().max(1) as f64
    }

    /// Chases operation `op` (modulo the planned ones) from `carry`, the
    /// value the previous operation ended on, and returns the value this
    /// one ends on (which depends on every read of it, so operations never
    /// overlap). Each address is XORed with `value ^ key`, which is zero at
    /// run time but unknown at compile time: a read cannot be issued before
    /// the read it depends on has returned, and chains combine by XOR.
    #[inline]
    pub fn run(&self, arena: &Arena, op: usize, carry: u64) -> u64 {
        let op = op % self.ops().max(1);
        let (from, to) = (self.starts[op], self.starts[op + 1]);
        let key = arena.key;
        let (mut base, mut ends, mut value) = (carry, 0u64, carry);
        for &read in &self.reads[from..to] {
            if read & JOIN != 0 {
                base = ends ^ value;
                ends = 0;
                value = base;
            } else if read & FORK != 0 {
                ends ^= value ^ key;
                value = base;
            }
            let at = (read & WORD) ^ (value ^ key) as usize;
            value = arena.words[at];
        }
        ends ^ value
    }
}

/// The three tables behind one snapshot table (`Table<R>`): the id
/// index's slots, the chunk pointers and the rows.
#[derive(Debug, Clone, Copy)]
pub struct EntityTable {
    slots: Region,
    chunks: Region,
    rows: Region,
}

impl EntityTable {
    /// A table of `rows` rows of `row_bytes` each, sized as
    /// `Table::from_rows` sizes it: 64 shards, each a power of two of
    /// 8-byte slots kept at most 7/8 full; 256 rows per chunk.
    pub fn new(layout: &mut Layout, name: &str, rows: usize, row_bytes: usize) -> Self {
        let per_shard = rows.div_ceil(SHARDS);
        let slots = SHARDS * (per_shard + per_shard / 7 + 1).next_power_of_two().max(8);
        Self {
            slots: layout.region(&format!("{name} id index"), slots, 8),
            chunks: layout.region(
                &format!("{name} chunk pointers"),
                rows.div_ceil(ROW_CHUNK),
                CHUNK_POINTER_BYTES,
            ),
            rows: layout.region(&format!("{name} rows"), rows, row_bytes),
        }
    }

    /// `Table::get(id)`: the slot the id hashes to, then the row's chunk
    /// pointer and the row (whose id the lookup compares).
    pub fn lookup(&self, plan: &mut Plan, handle: usize, id: &str) {
        let mut hasher = DefaultHasher::new();
        id.hash(&mut hasher);
        plan.read(self.slots, hasher.finish() as usize);
        self.row(plan, handle);
    }

    /// `table[handle]`: the chunk pointer, then the row.
    pub fn row(&self, plan: &mut Plan, handle: usize) {
        plan.read(self.chunks, handle / ROW_CHUNK);
        plan.read(self.rows, handle);
    }
}

/// The elements a `SortedSeq::seek` probes in a sequence of `len`
/// elements: a binary search over its chunks' last elements, then one
/// within the chunk found. `before(i)` says whether element `i` lies
/// before the position sought (the sequence is partitioned by it).
pub fn seek_probes(len: usize, before: impl Fn(usize) -> bool) -> Vec<usize> {
    let mut probes = Vec::new();
    let chunks = len.div_ceil(SEQ_CHUNK);
    let last = |c: usize| ((c + 1) * SEQ_CHUNK).min(len) - 1;
    let chunk = partition(chunks, |c| {
        probes.push(last(c));
        before(last(c))
    });
    if chunk < chunks {
        let start = chunk * SEQ_CHUNK;
        let n = (start + SEQ_CHUNK).min(len) - start;
        partition(n, |i| {
            probes.push(start + i);
            before(start + i)
        });
    }
    probes
}

/// The first index in `0..n` for which `before` is false, by halving.
fn partition(n: usize, mut before: impl FnMut(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// An operation and its floor, timed in alternating rounds.
#[derive(Debug, Clone, Copy)]
pub struct Ratio {
    /// Median time per call of the operation over the rounds.
    pub op_ns: f64,
    /// Median time per call of the floor over the rounds.
    pub floor_ns: f64,
    /// Median over the rounds of (operation / floor) within the round.
    pub ratio: f64,
    pub rounds: usize,
    pub batch: usize,
}

/// Rounds of the ratio pass: `FLOOR_ROUNDS` (default 101; 0 skips the
/// pass).
pub fn rounds_from_env() -> usize {
    std::env::var("FLOOR_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(101)
}

/// How long one batch of the operation runs in a round. Short, so that on
/// a busy host most rounds run both halves within one time slice of the
/// scheduler (about 3 ms here) and the median round is a clean one.
const BATCH_NS: f64 = 250_000.0;

/// Times `op` and the floor in `rounds` alternating rounds (the order
/// flipping every round, so that a drift of the host favours neither),
/// each round `batch` calls of each with one clock read per batch. Both
/// take their call numbers from one running count, and floor operation
/// `i` reads the rows operation `i` reads: over a round the two read
/// different rows of the same set, so neither finds the rows the other
/// has just brought into the caches. The batch is sized so that one batch of the
/// operation takes about [`BATCH_NS`].
pub fn alternate(rounds: usize, arena: &Arena, plan: &Plan, op: &mut dyn FnMut(usize)) -> Ratio {
    let mut carry = 0u64;
    let mut floor = |i: usize| {
        carry = plan.run(arena, i, carry ^ arena.key) ^ arena.key;
    };
    let mut n = 0usize;
    let time = |f: &mut dyn FnMut(usize), calls: usize, n: &mut usize| {
        let started = Instant::now();
        for _ in 0..calls {
            f(*n);
            *n += 1;
        }
        started.elapsed().as_secs_f64() * 1e9 / calls as f64
    };
    // Warm both over the whole plan once, then size the batch.
    let warm = plan.ops().clamp(1, 1 << 16);
    let (mut m, mut k) = (0usize, 0usize);
    time(&mut floor, warm, &mut k);
    let per_op = time(op, warm, &mut m).max(1.0);
    let batch = ((BATCH_NS / per_op) as usize).clamp(1, 1 << 20);
    let (mut ops, mut floors, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds.max(1) {
        let (o, f) = if round % 2 == 0 {
            let o = time(op, batch, &mut n);
            (o, time(&mut floor, batch, &mut n))
        } else {
            let f = time(&mut floor, batch, &mut n);
            (time(op, batch, &mut n), f)
        };
        ops.push(o);
        floors.push(f);
        ratios.push(o / f.max(1e-3));
    }
    black_box(carry);
    Ratio {
        op_ns: median(&mut ops),
        floor_ns: median(&mut floors),
        ratio: median(&mut ratios),
        rounds: rounds.max(1),
        batch,
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Whether this run is `cargo bench` (which passes `--bench`) rather than
/// a test run of the bench targets, which must stay quick.
pub fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The directory criterion writes to: `target/criterion` beside the
/// bench binary (`target/release/deps/<bench>`), or `CRITERION_HOME`.
pub fn criterion_dir() -> std::path::PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("criterion")))
        .unwrap_or_else(|| "target/criterion".into())
}

/// The floor's tables for one generated dataset, and the handles the
/// snapshot gives its ids (positions in id order, as `Snapshot::build`
/// assigns them), so that a plan reads the rows the operation reads.
pub struct DataFloor<'d> {
    pub layout: Layout,
    tickets: EntityTable,
    users: EntityTable,
    groups: EntityTable,
    orgs: EntityTable,
    companies: EntityTable,
    /// Tickets and users in handle order.
    by_handle: Vec<&'d Ticket>,
    users_by_handle: Vec<&'d User>,
    ticket_ix: HashMap<&'d str, usize>,
    user_ix: HashMap<&'d str, usize>,
    group_ix: HashMap<&'d str, usize>,
    org_ix: HashMap<&'d str, usize>,
    company_ix: HashMap<&'d str, usize>,
    data: &'d Dataset,
}

fn handles<'d>(ids: impl Iterator<Item = &'d str>) -> HashMap<&'d str, usize> {
    let mut sorted: Vec<&str> = ids.collect();
    sorted.sort_unstable();
    sorted
        .into_iter()
        .enumerate()
        .map(|(i, id)| (id, i))
        .collect()
}

impl<'d> DataFloor<'d> {
    pub fn new(data: &'d Dataset) -> Self {
        let mut layout = Layout::default();
        let mut table = |name: &str, rows: usize, bytes: usize| {
            EntityTable::new(&mut layout, name, rows, bytes)
        };
        let tickets = table("ticket", data.tickets.len(), size_of::<TicketRow>());
        let users = table("user", data.users.len(), size_of::<UserRow>());
        let groups = table("group", data.groups.len(), size_of::<GroupRow>());
        let orgs = table(
            "organisation",
            data.organisations.len(),
            size_of::<OrgRow>(),
        );
        let companies = table("company", data.companies.len(), size_of::<CompanyRow>());
        let mut by_handle: Vec<&Ticket> = data.tickets.iter().collect();
        by_handle.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        let mut users_by_handle: Vec<&User> = data.users.iter().collect();
        users_by_handle.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        Self {
            users_by_handle,
            layout,
            tickets,
            users,
            groups,
            orgs,
            companies,
            by_handle,
            ticket_ix: handles(data.tickets.iter().map(|t| t.id.as_str())),
            user_ix: handles(data.users.iter().map(|u| u.id.as_str())),
            group_ix: handles(data.groups.iter().map(|g| g.id.as_str())),
            org_ix: handles(data.organisations.iter().map(|o| o.id.as_str())),
            company_ix: handles(data.companies.iter().map(|c| c.id.as_str())),
            data,
        }
    }

    fn lookup(&self, plan: &mut Plan, table: Table, id: &str) {
        let (t, ix) = match table {
            Table::Ticket => (&self.tickets, &self.ticket_ix),
            Table::User => (&self.users, &self.user_ix),
            Table::Group => (&self.groups, &self.group_ix),
            Table::Org => (&self.orgs, &self.org_ix),
            Table::Company => (&self.companies, &self.company_ix),
        };
        t.lookup(plan, ix[id], id);
    }

    /// A ticket check (`view`, `comment`, `edit`, `close`, `delete`;
    /// `reassign` with its target `group`) per (user, ticket): the ticket's
    /// lookup beside the user's and the group's (each needs only its id).
    /// 6 reads, 9 with a group, 3 deep.
    pub fn ticket_checks<'a>(
        &self,
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
        group: Option<&str>,
    ) -> Plan {
        let mut plan = Plan::new();
        for (user, ticket) in pairs {
            self.lookup(&mut plan, Table::Ticket, ticket);
            plan.fork();
            self.lookup(&mut plan, Table::User, user);
            if let Some(group) = group {
                plan.fork();
                self.lookup(&mut plan, Table::Group, group);
            }
            plan.end_op();
        }
        plan
    }

    /// `has_flag` on a group: the user's lookup and the group's.
    pub fn has_flag(&self, user: &str, group: &str) -> Plan {
        let mut plan = self.user_beside(user, Table::Group, group);
        plan.end_op();
        plan
    }

    /// A plan whose first operation starts with the user's lookup beside
    /// another table's.
    fn user_beside(&self, user: &str, table: Table, id: &str) -> Plan {
        let mut plan = Plan::new();
        self.lookup(&mut plan, Table::User, user);
        plan.fork();
        self.lookup(&mut plan, table, id);
        plan
    }

    /// `manage_access`: the user's lookup, the organisation's, and the
    /// binary search of its access managers (one line for a short list).
    pub fn manage_access(&mut self, user: &str, org: &str) -> Plan {
        let managers = self
            .data
            .organisations
            .iter()
            .find(|o| o.id == org)
            .map_or(0, |o| o.access_managers.len());
        let region = self
            .layout
            .region(&format!("{org} access managers"), managers, 4);
        let mut plan = self.user_beside(user, Table::Org, org);
        plan.read(region, managers / 2);
        plan.end_op();
        plan
    }

    /// `company_view`: the user's lookup, the company's, then one company
    /// row per step up the company's parents until one is the user's
    /// company or is owned by the user (`in_reach`).
    pub fn company_view(&self, user: &str, company: &str) -> Plan {
        let mut plan = self.user_beside(user, Table::Company, company);
        let mine = self.users_by_handle[self.user_ix[user]].company.as_deref();
        let mut current = self.data.companies.iter().find(|c| c.id == company);
        let mut budget = self.data.companies.len();
        while let Some(c) = current.filter(|_| budget > 0) {
            budget -= 1;
            self.companies
                .row(&mut plan, self.company_ix[c.id.as_str()]);
            if Some(c.id.as_str()) == mine || c.owner.as_deref() == Some(user) {
                break;
            }
            current = c
                .parent
                .as_deref()
                .and_then(|p| self.data.companies.iter().find(|c| c.id == p));
        }
        plan.end_op();
        plan
    }

    /// `create` in `group` with its ticket limits, per user: the user's
    /// lookup, the group's, then the binary searches of the group's limit
    /// indexes (two per limit, the window's two ends): over creation times
    /// for an agent, over (requester, time) keys for an end-user. A count
    /// over the total limit stops before the open limit, as the check does.
    pub fn create<'a>(
        &mut self,
        users: impl Iterator<Item = &'a str>,
        group: &str,
        now: Timestamp,
    ) -> Plan {
        let g = self.data.groups.iter().find(|g| g.id == group);
        let (total_limit, open_limit) = g.map_or((0, 0), |g| {
            (g.total_ticket_limit as usize, g.open_ticket_limit as usize)
        });
        let mut all: Vec<(usize, i64)> = Vec::new();
        let mut open: Vec<(usize, i64)> = Vec::new();
        for t in self
            .data
            .tickets
            .iter()
            .filter(|t| t.group.as_deref() == Some(group))
        {
            let key = (self.user_ix[t.requester.as_str()], t.created_at.nanos());
            all.push(key);
            if t.status.is_open() {
                open.push(key);
            }
        }
        all.sort_unstable();
        open.sort_unstable();
        let times = |keys: &[(usize, i64)]| {
            let mut t: Vec<i64> = keys.iter().map(|k| k.1).collect();
            t.sort_unstable();
            t
        };
        let (all_times, open_times) = (times(&all), times(&open));
        let region = |layout: &mut Layout, what: &str, len: usize, bytes: usize| {
            layout.region(&format!("{group} limits: {what}"), len, bytes)
        };
        let r_all = region(&mut self.layout, "all times", all.len(), 8);
        let r_open = region(&mut self.layout, "open times", open.len(), 8);
        let r_all_by = region(&mut self.layout, "(requester, time)", all.len(), 12);
        let r_open_by = region(&mut self.layout, "open (requester, time)", open.len(), 12);
        let (from, to) = (now.minus_limit_window().nanos(), now.nanos());
        let mut plan = Plan::new();
        for user in users {
            self.lookup(&mut plan, Table::User, user);
            plan.fork();
            self.lookup(&mut plan, Table::Group, group);
            // The searches need the group's row and the user's handle; each
            // is a chain of its own (the branch between them is predicted).
            plan.join();
            let uh = self.user_ix[user];
            let agent = self.users_by_handle[uh].kind == UserKind::Agent;
            // Reads the probes of one count and returns the count.
            let mut count = |open_only: bool| -> usize {
                let (probes_to, probes_from, region, n) = if agent {
                    let t = if open_only { &open_times } else { &all_times };
                    let hi = seek_probes(t.len(), |i| t[i] <= to);
                    let lo = seek_probes(t.len(), |i| t[i] < from);
                    let n = t.partition_point(|x| *x <= to) - t.partition_point(|x| *x < from);
                    (hi, lo, if open_only { r_open } else { r_all }, n)
                } else {
                    let k = if open_only { &open } else { &all };
                    let hi = seek_probes(k.len(), |i| k[i] <= (uh, to));
                    let lo = seek_probes(k.len(), |i| k[i] < (uh, from));
                    let n = k.partition_point(|x| *x <= (uh, to))
                        - k.partition_point(|x| *x < (uh, from));
                    (hi, lo, if open_only { r_open_by } else { r_all_by }, n)
                };
                for probes in [probes_to, probes_from] {
                    plan.fork();
                    for p in probes {
                        plan.read(region, p);
                    }
                }
                n
            };
            let over_total = total_limit > 0 && count(false) >= total_limit;
            if !over_total && open_limit > 0 {
                count(true);
            }
            plan.end_op();
        }
        plan
    }

    /// The first page (`after: None`) or a later one of the tickets `user`
    /// sees, `limit` per page, with no filter: the user's lookup; then,
    /// side by side per posting list, with a token its seek (every probe
    /// reads the ticket row whose id it compares) and the row of its first
    /// ticket (the merge's head); then, one after another, per ticket the
    /// merge pops until the page and one more are found, the row of the
    /// next ticket of that list. `None` when the
    /// user's visibility needs company scoping, which this plan does not
    /// model.
    pub fn page(
        &self,
        snap: &Snapshot,
        user: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Option<Plan> {
        let filter = core::visibility_filter(snap, user);
        if filter
            .group_clauses
            .iter()
            .any(|g| g.any_group || g.requester_company_id.is_some())
        {
            return None;
        }
        let mut streams: Vec<Vec<usize>> = Vec::new();
        let everything = filter.everything;
        if everything {
            streams.push((0..self.by_handle.len()).collect());
        }
        let involved = filter.user_id.is_some().then(|| {
            streams.push(Vec::new());
            streams.len() - 1
        });
        let mut org_stream: HashMap<&str, usize> = HashMap::new();
        for o in &filter.organisation_ids {
            streams.push(Vec::new());
            org_stream.insert(o, streams.len() - 1);
        }
        let mut group_stream: HashMap<&str, usize> = HashMap::new();
        for g in filter.group_clauses.iter().flat_map(|c| &c.group_ids) {
            streams.push(Vec::new());
            group_stream.insert(g, streams.len() - 1);
        }
        if !everything {
            for (h, t) in self.by_handle.iter().enumerate() {
                let on_it = t.requester == user
                    || t.assignee.as_deref() == Some(user)
                    || t.ccs.iter().any(|c| c == user)
                    || t.participants.iter().any(|p| p == user);
                if let Some(s) = involved.filter(|_| on_it) {
                    streams[s].push(h);
                }
                if let Some(&s) = t.organisation.as_deref().and_then(|o| org_stream.get(o)) {
                    streams[s].push(h);
                }
                if let Some(&s) = t.group.as_deref().and_then(|g| group_stream.get(g)) {
                    streams[s].push(h);
                }
            }
        }
        let mut plan = Plan::new();
        self.lookup(&mut plan, Table::User, user);
        // Each list's seek and head need the user's plan, not each other.
        plan.join();
        let mut positions = vec![0usize; streams.len()];
        let mut heap = BinaryHeap::new();
        for (s, list) in streams.iter().enumerate() {
            plan.fork();
            if let Some(after) = after {
                let id = |i: usize| self.by_handle[list[i]].id.as_str();
                for p in seek_probes(list.len(), |i| id(i) <= after) {
                    self.tickets.row(&mut plan, list[p]);
                }
                positions[s] = list.partition_point(|&h| self.by_handle[h].id.as_str() <= after);
            }
            if let Some(&h) = list.get(positions[s]) {
                self.tickets.row(&mut plan, h);
                heap.push(Reverse((h, s)));
            }
        }
        // Each pop's order needs the ids the pushes before it read.
        plan.join();
        let (mut found, mut last) = (0usize, usize::MAX);
        while let Some(Reverse((h, s))) = heap.pop() {
            positions[s] += 1;
            if let Some(&next) = streams[s].get(positions[s]) {
                self.tickets.row(&mut plan, next);
                heap.push(Reverse((next, s)));
            }
            if h != last {
                last = h;
                found += 1;
                if found > limit {
                    break;
                }
            }
        }
        plan.end_op();
        Some(plan)
    }
}

#[derive(Clone, Copy)]
enum Table {
    Ticket,
    User,
    Group,
    Org,
    Company,
}

/// Nanoseconds as a figure reads best: `172.6 ns`, `29.7 µs`.
pub fn format_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

/// Writes `{"unix_time": …, "figures": rows}` to `name` in criterion's
/// directory, and says where.
pub fn write_summary(name: &str, rows: Vec<serde_json::Value>) {
    let dir = criterion_dir();
    let path = dir.join(name);
    let unix_time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let summary = serde_json::json!({
        "unix_time": unix_time,
        "floor": "dependent random reads into tables of the snapshot's sizes (benches/support/floor.rs)",
        "figures": rows,
    });
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&summary).unwrap_or_default(),
        )
    });
    match written {
        Ok(()) => eprintln!("floor: ratios written to {}", path.display()),
        Err(e) => eprintln!("floor: could not write {}: {e}", path.display()),
    }
}

/// The floor's tables for the service-desk sections of a generated
/// dataset (access model §8), beside a [`DataFloor`]'s: one
/// [`EntityTable`] per section table, sized as the snapshot's, and the
/// handles it gives their ids (positions in id order, as
/// `snapshot/sections.rs` builds them).
pub struct SectionFloor<'d> {
    tables: [EntityTable; 9],
    /// Per table, id → handle.
    ix: [HashMap<&'d str, usize>; 9],
    /// Per task: its project's id.
    task_of: HashMap<&'d str, &'d str>,
    /// Per download: its category id.
    category_of: HashMap<&'d str, &'d str>,
}

/// The section tables, in the order of [`SectionFloor::tables`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionTable {
    Project,
    Task,
    Wiki,
    Item,
    Invoice,
    Lead,
    Event,
    Category,
    Download,
}

impl SectionTable {
    /// The table a section action's `resource_id` is looked up in (`None`:
    /// the action names no section resource, or names a user).
    pub fn of(action: core::Action) -> Option<SectionTable> {
        use ticket_authz::model::ResourceKind as K;
        Some(match action.resource_kind()? {
            K::Project => SectionTable::Project,
            K::Task => SectionTable::Task,
            K::WikiPage => SectionTable::Wiki,
            K::InventoryItem => SectionTable::Item,
            K::Invoice => SectionTable::Invoice,
            K::Lead => SectionTable::Lead,
            K::AgendaEvent => SectionTable::Event,
            K::Download => SectionTable::Download,
        })
    }

    /// The table the rows of a list of `kind` live in.
    pub fn of_kind(kind: ticket_authz::model::ResourceKind) -> SectionTable {
        Self::of(core::view_action(kind)).unwrap_or(SectionTable::Project)
    }
}

impl<'d> SectionFloor<'d> {
    pub fn new(layout: &mut Layout, data: &'d Dataset) -> Self {
        use ticket_authz::snapshot::sections::{
            CategoryRow, DownloadRow, EventRow, InvoiceRow, ItemRow, LeadRow, ProjectRow, TaskRow,
            WikiRow,
        };
        let s = &data.sections;
        let ids: [Vec<&str>; 9] = [
            s.projects.iter().map(|r| r.id.as_str()).collect(),
            s.tasks.iter().map(|r| r.id.as_str()).collect(),
            s.wiki_pages.iter().map(|r| r.id.as_str()).collect(),
            s.inventory_items.iter().map(|r| r.id.as_str()).collect(),
            s.invoices.iter().map(|r| r.id.as_str()).collect(),
            s.leads.iter().map(|r| r.id.as_str()).collect(),
            s.agenda_events.iter().map(|r| r.id.as_str()).collect(),
            s.download_categories
                .iter()
                .map(|r| r.id.as_str())
                .collect(),
            s.downloads.iter().map(|r| r.id.as_str()).collect(),
        ];
        let bytes = [
            size_of::<ProjectRow>(),
            size_of::<TaskRow>(),
            size_of::<WikiRow>(),
            size_of::<ItemRow>(),
            size_of::<InvoiceRow>(),
            size_of::<LeadRow>(),
            size_of::<EventRow>(),
            size_of::<CategoryRow>(),
            size_of::<DownloadRow>(),
        ];
        let names = [
            "project", "task", "wiki", "item", "invoice", "lead", "event", "category", "download",
        ];
        let tables =
            std::array::from_fn(|i| EntityTable::new(layout, names[i], ids[i].len(), bytes[i]));
        Self {
            tables,
            ix: ids.map(|v| handles(v.into_iter())),
            task_of: s
                .tasks
                .iter()
                .map(|t| (t.id.as_str(), t.project.as_str()))
                .collect(),
            category_of: s
                .downloads
                .iter()
                .map(|d| (d.id.as_str(), d.category.as_str()))
                .collect(),
        }
    }

    fn table(&self, t: SectionTable) -> (&EntityTable, &HashMap<&'d str, usize>) {
        let i = t as usize;
        (&self.tables[i], &self.ix[i])
    }

    fn row(&self, plan: &mut Plan, t: SectionTable, id: &str) {
        let (table, ix) = self.table(t);
        if let Some(&h) = ix.get(id) {
            table.row(plan, h);
        }
    }

    /// A section check per (user, resource): the user's lookup beside the
    /// resource's (a target user's for `user_manage`; none for the
    /// `_create` actions), then the rows the resource leads to, each after
    /// the one naming it: a task's project (its row holds its ancestors'
    /// managers and members), a download's category. The small lists inside a
    /// row (members, groups, companies) are not counted, so the floor is
    /// a lower bound of the reads a check makes.
    pub fn checks<'a>(
        &self,
        base: &DataFloor<'_>,
        action: core::Action,
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Plan {
        let mut plan = Plan::new();
        for (user, resource) in pairs {
            base.lookup(&mut plan, Table::User, user);
            if action == core::Action::UserManage {
                plan.fork();
                base.lookup(&mut plan, Table::User, resource);
            } else if let Some(t) = SectionTable::of(action) {
                plan.fork();
                let (table, ix) = self.table(t);
                if let Some(&h) = ix.get(resource) {
                    table.lookup(&mut plan, h, resource);
                }
                if t == SectionTable::Task
                    && let Some(project) = self.task_of.get(resource)
                {
                    self.row(&mut plan, SectionTable::Project, project);
                }
                if t == SectionTable::Download
                    && let Some(category) = self.category_of.get(resource)
                {
                    self.row(&mut plan, SectionTable::Category, category);
                }
            }
            plan.end_op();
        }
        plan
    }

    /// A first page of visible resources of `table`, whose ids (and the
    /// one after, if any) the page returned: the user's lookup, then one
    /// row per resource returned, each after the previous (the merge's
    /// order needs each id before the next). The candidates the rules
    /// turn down and the posting lists' chunks are not counted, so the
    /// floor is a lower bound.
    pub fn page(&self, base: &DataFloor<'_>, user: &str, t: SectionTable, ids: &[String]) -> Plan {
        let mut plan = Plan::new();
        base.lookup(&mut plan, Table::User, user);
        plan.join();
        for id in ids {
            self.row(&mut plan, t, id);
        }
        plan.end_op();
        plan
    }
}
