//! Interned entity tables: string id ⇄ dense integer handle, rows in
//! copy-on-write chunks, the id index in copy-on-write shards.

use std::fmt;
use std::hash::BuildHasher;
use std::ops::Index;
use std::sync::Arc;

use compact_str::CompactString;

use super::cow::CowVec;

/// A dense handle to a row of one table.
pub type Idx = u32;

/// "No reference" in an `Idx` field (a ticket without a group, say).
pub const NONE: Idx = u32::MAX;

/// A reference to an id the snapshot does not know, in a row that lives
/// outside it (a ticket sent inline, say): someone or something is named,
/// so it is not `NONE` (an unknown assignee is not "unassigned"), and it
/// equals no handle, so it matches nothing.
pub const UNKNOWN: Idx = u32::MAX - 2;

/// A row that knows its own id.
pub trait Keyed: Clone {
    fn key(&self) -> &str;

    /// A row holding only `id`, with no relations and no rights: what a
    /// removed row is replaced by (so that what it owned is freed) and
    /// what a handle outside the table reads. It must match no allow rule.
    fn vacant(id: CompactString) -> Self;
}

const SHARD_BITS: u32 = 6;

/// One shard of the id index: open addressing with linear probing over
/// `u64` slots holding (32-bit hash tag, handle + 1), 0 meaning empty. The
/// tag sits beside the handle so a probe reads one cache line, and the row
/// the key comparison reads is the row the caller wants anyway.
#[derive(Clone, Default)]
struct Shard {
    slots: Vec<u64>,
    len: usize,
}

impl Shard {
    fn with_capacity(entries: usize) -> Self {
        // Keep the load at or below 7/8.
        let cap = (entries + entries / 7 + 1).next_power_of_two().max(8);
        Self {
            slots: vec![0; cap],
            len: 0,
        }
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    fn find(&self, tag: u32, matches: impl Fn(Idx) -> bool) -> Option<Idx> {
        let mask = self.mask();
        let mut slot = tag as usize & mask;
        for _ in 0..self.slots.len() {
            let entry = *self.slots.get(slot)?;
            if entry == 0 {
                return None;
            }
            // Truncation keeps the handle bits; the shift keeps the tag.
            let handle = (entry as u32).wrapping_sub(1);
            if (entry >> 32) as u32 == tag && matches(handle) {
                return Some(handle);
            }
            slot = (slot + 1) & mask;
        }
        None
    }

    fn insert(&mut self, tag: u32, handle: Idx) {
        if (self.len + 1) * 8 > self.slots.len() * 7 {
            let mut grown = Shard::with_capacity(self.slots.len());
            for &entry in self.slots.iter().filter(|e| **e != 0) {
                grown.place(entry);
            }
            *self = grown;
        }
        self.place((u64::from(tag) << 32) | u64::from(handle.wrapping_add(1)));
    }

    /// Removes the entry of `handle`, shifting later entries of its probe
    /// run back so that lookups never stop at a hole.
    fn remove(&mut self, tag: u32, handle: Idx) -> bool {
        let mask = self.mask();
        let target = (u64::from(tag) << 32) | u64::from(handle.wrapping_add(1));
        let mut slot = tag as usize & mask;
        loop {
            match self.slots.get(slot) {
                Some(0) | None => return false,
                Some(e) if *e == target => break,
                Some(_) => slot = (slot + 1) & mask,
            }
        }
        let mut hole = slot;
        let mut next = (hole + 1) & mask;
        loop {
            let entry = self.slots.get(next).copied().unwrap_or(0);
            if entry == 0 {
                break;
            }
            let home = (entry >> 32) as usize & mask;
            // Move the entry into the hole unless its home lies cyclically
            // in (hole, next].
            let stays = if hole <= next {
                hole < home && home <= next
            } else {
                hole < home || home <= next
            };
            if !stays {
                if let Some(h) = self.slots.get_mut(hole) {
                    *h = entry;
                }
                hole = next;
            }
            next = (next + 1) & mask;
        }
        if let Some(h) = self.slots.get_mut(hole) {
            *h = 0;
        }
        self.len -= 1;
        true
    }

    fn place(&mut self, entry: u64) {
        let mask = self.mask();
        let mut slot = (entry >> 32) as usize & mask;
        while let Some(existing) = self.slots.get_mut(slot) {
            if *existing == 0 {
                *existing = entry;
                self.len += 1;
                return;
            }
            slot = (slot + 1) & mask;
        }
    }
}

/// Maps ids to handles. The keys themselves live in the rows (so each id is
/// stored once); the index holds tags and handles, sharded so that adding
/// one id copies one small shard.
#[derive(Clone)]
struct IdIndex {
    hasher: foldhash::fast::RandomState,
    shards: Vec<Arc<Shard>>,
}

impl IdIndex {
    fn new() -> Self {
        Self {
            hasher: foldhash::fast::RandomState::default(),
            shards: (0..1usize << SHARD_BITS)
                .map(|_| Arc::new(Shard::with_capacity(0)))
                .collect(),
        }
    }

    /// (shard, tag) of an id: the top bits pick the shard, the low 32 the
    /// tag, whose low bits are the home slot.
    fn locate(&self, id: &str) -> (usize, u32) {
        let hash = self.hasher.hash_one(id);
        (
            usize::try_from(hash >> (64 - SHARD_BITS)).unwrap_or(0),
            hash as u32,
        )
    }
}

/// One entity kind: rows addressable by handle and by id.
///
/// Handles are never reused: a removed row's slot stays (so that no stale
/// handle can ever name another entity) but holds a vacant row, so what
/// the row owned is freed at once; only the fixed-size slot waits for the
/// next full load.
#[derive(Clone)]
pub struct Table<R> {
    index: IdIndex,
    rows: CowVec<R>,
    /// Rows that can be looked up (removed ones excluded).
    live: usize,
    /// What an out-of-range handle reads instead of panicking.
    vacant: Arc<R>,
}

impl<R> fmt::Debug for Table<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("rows", &self.live)
            .field("slots", &self.rows.len())
            .finish()
    }
}

impl<R: Keyed> Default for Table<R> {
    fn default() -> Self {
        Self {
            index: IdIndex::new(),
            rows: CowVec::default(),
            live: 0,
            vacant: Arc::new(R::vacant(CompactString::default())),
        }
    }
}

impl<R: Keyed> Table<R> {
    /// Builds a table whose handles are the positions in `rows`; ids must be
    /// unique (the dataset validator guarantees it).
    pub fn from_rows(rows: Vec<R>) -> Self {
        let mut table = Self {
            live: rows.len(),
            rows: CowVec::from_vec(rows),
            ..Self::default()
        };
        let located: Vec<(usize, u32)> = table
            .rows
            .iter()
            .map(|row| table.index.locate(row.key()))
            .collect();
        // Sized up front so that no shard grows while it is filled.
        let mut sizes = vec![0usize; 1 << SHARD_BITS];
        for (shard, _) in &located {
            if let Some(size) = sizes.get_mut(*shard) {
                *size += 1;
            }
        }
        let mut shards: Vec<Shard> = sizes.into_iter().map(Shard::with_capacity).collect();
        for (idx, (shard, tag)) in located.into_iter().enumerate() {
            if let Some(shard) = shards.get_mut(shard) {
                shard.insert(tag, Idx::try_from(idx).unwrap_or(NONE));
            }
        }
        table.index.shards = shards.into_iter().map(Arc::new).collect();
        table
    }

    /// Rows that can be looked up; removed rows do not count.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Slots, removed rows included: it grows with every push and only
    /// a full build shrinks it.
    pub fn slots(&self) -> usize {
        self.rows.len()
    }

    pub fn lookup(&self, id: &str) -> Option<Idx> {
        let (shard, tag) = self.index.locate(id);
        let rows = &self.rows;
        self.index
            .shards
            .get(shard)?
            .find(tag, |h| rows.get(h as usize).is_some_and(|r| r.key() == id))
    }

    pub fn get(&self, id: &str) -> Option<(Idx, &R)> {
        self.lookup(id).map(|idx| (idx, &self[idx]))
    }

    /// The id of a handle (empty for a handle outside the table).
    pub fn id(&self, idx: Idx) -> &str {
        self[idx].key()
    }

    /// How many handles were ever given out (removed rows included).
    pub fn capacity(&self) -> usize {
        self.rows.len()
    }

    /// Whether `idx` names a row that can be looked up (not removed).
    pub fn is_live(&self, idx: Idx) -> bool {
        self.rows
            .get(idx as usize)
            .is_some_and(|row| self.lookup(row.key()) == Some(idx))
    }

    /// Every live row with its handle, in handle order: for scans that no
    /// index serves (the console's search by name).
    pub fn live(&self) -> impl Iterator<Item = (Idx, &R)> + '_ {
        self.rows
            .iter()
            .enumerate()
            .filter_map(|(i, row)| Idx::try_from(i).ok().map(|idx| (idx, row)))
            .filter(|(idx, row)| self.lookup(row.key()) == Some(*idx))
    }

    /// Mutable access to a row; the caller must not change its id.
    pub fn row_mut(&mut self, idx: Idx) -> Option<&mut R> {
        self.rows.get_mut(idx as usize)
    }

    /// Adds a row with a new id and returns its handle.
    pub fn push(&mut self, row: R) -> Idx {
        let (shard, tag) = self.index.locate(row.key());
        let idx = Idx::try_from(self.rows.push(row)).unwrap_or(NONE);
        if let Some(shard) = self.index.shards.get_mut(shard) {
            Arc::make_mut(shard).insert(tag, idx);
        }
        self.live += 1;
        idx
    }

    /// Makes `id` unknown and frees what its row owned: the slot keeps a
    /// vacant row with the id (handles are never reused, and a sort by id
    /// that still meets the handle stays consistent). Returns the handle.
    pub fn remove(&mut self, id: &str) -> Option<Idx> {
        let idx = self.lookup(id)?;
        let (shard, tag) = self.index.locate(id);
        let shard = self.index.shards.get_mut(shard)?;
        if !Arc::make_mut(shard).remove(tag, idx) {
            return None;
        }
        if let Some(row) = self.rows.get_mut(idx as usize) {
            *row = R::vacant(CompactString::from(id));
        }
        self.live -= 1;
        Some(idx)
    }
}

/// Reading a handle never panics: every handle a snapshot stores is in its
/// table by construction, and one that is not (a bug, or `NONE` where a
/// caller forgot to check) reads the vacant row, which matches no rule.
impl<R: Keyed> Index<Idx> for Table<R> {
    type Output = R;

    fn index(&self, idx: Idx) -> &R {
        match self.rows.get(idx as usize) {
            Some(row) => row,
            None => {
                // The sentinels (`NONE`, `UNKNOWN`, and `ALL` for groups)
                // are the only handles expected here.
                debug_assert!(idx >= UNKNOWN, "handle {idx} is outside its table");
                &self.vacant
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[derive(Clone, Debug)]
    struct Row(String);

    impl Keyed for Row {
        fn key(&self) -> &str {
            &self.0
        }

        fn vacant(id: CompactString) -> Self {
            Row(id.into())
        }
    }

    #[derive(Clone, Debug)]
    struct Owning {
        id: String,
        owned: Vec<u64>,
    }

    impl Keyed for Owning {
        fn key(&self) -> &str {
            &self.id
        }

        fn vacant(id: CompactString) -> Self {
            Owning {
                id: id.into(),
                owned: Vec::new(),
            }
        }
    }

    #[test]
    fn removed_rows_are_not_counted_and_free_what_they_owned() {
        let rows = (0..10)
            .map(|i| Owning {
                id: format!("t{i}"),
                owned: vec![i; 1000],
            })
            .collect();
        let mut table = Table::from_rows(rows);
        let base = table.clone();
        let gone = table.remove("t3").unwrap();
        assert_eq!(table.len(), 9);
        assert!(
            table[gone].owned.is_empty(),
            "the removed row keeps its data"
        );
        assert_eq!(table.id(gone), "t3");
        table.push(Owning {
            id: "t3".into(),
            owned: vec![],
        });
        assert_eq!(table.len(), 10);
        // The revision it came from still holds the row.
        assert_eq!(base.len(), 10);
        assert_eq!(base[gone].owned.len(), 1000);
    }

    #[test]
    fn a_handle_outside_the_table_reads_a_vacant_row() {
        let table = Table::from_rows(vec![Row("a".into())]);
        assert_eq!(table.id(NONE), "");
        assert_eq!(table[NONE].0, "");
    }

    #[test]
    fn shards_grow_and_find_every_entry() {
        let table = Table::from_rows(Vec::<Row>::new());
        let mut next = table.clone();
        for i in 0..5000 {
            next.push(Row(format!("id-{i}")));
        }
        for i in 0..5000u32 {
            assert_eq!(next.lookup(&format!("id-{i}")), Some(i));
        }
        assert_eq!(next.lookup("id-5000"), None);
        assert_eq!(table.lookup("id-0"), None);
    }

    #[test]
    fn removed_ids_are_gone_and_the_rest_still_found() {
        let mut table = Table::from_rows((0..4000).map(|i| Row(format!("k{i}"))).collect());
        let base = table.clone();
        for i in (0..4000).step_by(3) {
            assert_eq!(table.remove(&format!("k{i}")), Some(i));
        }
        for i in 0..4000u32 {
            let expected = (i % 3 != 0).then_some(i);
            assert_eq!(table.lookup(&format!("k{i}")), expected, "k{i}");
        }
        assert_eq!(table.remove("k0"), None);
        // The snapshot it came from is untouched.
        assert_eq!(base.lookup("k0"), Some(0));
        // Re-adding after removal works.
        let again = table.push(Row("k0".into()));
        assert_eq!(table.lookup("k0"), Some(again));
    }

    #[test]
    fn looks_up_ids_and_shares_shards_on_push() {
        let base = Table::from_rows((0..3000).map(|i| Row(format!("r{i}"))).collect());
        assert_eq!(base.lookup("r2999"), Some(2999));
        assert_eq!(base.lookup("nope"), None);
        let mut next = base.clone();
        let idx = next.push(Row("new".into()));
        assert_eq!(idx, 3000);
        assert_eq!(next.lookup("new"), Some(3000));
        assert_eq!(base.lookup("new"), None);
        let shared = base
            .index
            .shards
            .iter()
            .zip(&next.index.shards)
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert_eq!(shared, (1 << SHARD_BITS) - 1);
    }
}
