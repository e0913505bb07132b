//! Interned entity tables: string id ⇄ dense integer handle, rows in
//! copy-on-write chunks, the id index in copy-on-write shards.

use std::fmt;
use std::hash::BuildHasher;
use std::ops::Index;
use std::sync::Arc;

use hashbrown::HashTable;

use super::cow::CowVec;

/// A dense handle to a row of one table.
pub type Idx = u32;

/// "No reference" in an `Idx` field (a ticket without a group, say).
pub const NONE: Idx = u32::MAX;

/// A row that knows its own id.
pub trait Keyed: Clone {
    fn key(&self) -> &str;
}

const SHARD_BITS: u32 = 6;

/// Maps ids to handles. The keys themselves live in the rows (so each id is
/// stored once); the index holds only handles, sharded so that adding one
/// id copies one small shard.
#[derive(Clone)]
struct IdIndex {
    hasher: foldhash::fast::RandomState,
    shards: Vec<Arc<HashTable<Idx>>>,
}

impl IdIndex {
    fn new() -> Self {
        Self {
            hasher: foldhash::fast::RandomState::default(),
            shards: (0..1usize << SHARD_BITS)
                .map(|_| Arc::new(HashTable::new()))
                .collect(),
        }
    }

    fn shard(hash: u64) -> usize {
        // The top bits pick the shard; hashbrown uses the low ones.
        usize::try_from(hash >> (64 - SHARD_BITS)).unwrap_or(0)
    }
}

/// One entity kind: rows addressable by handle and by id.
#[derive(Clone)]
pub struct Table<R> {
    index: IdIndex,
    rows: CowVec<R>,
}

impl<R> fmt::Debug for Table<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("rows", &self.rows.len())
            .finish()
    }
}

impl<R: Keyed> Default for Table<R> {
    fn default() -> Self {
        Self {
            index: IdIndex::new(),
            rows: CowVec::default(),
        }
    }
}

impl<R: Keyed> Table<R> {
    /// Builds a table whose handles are the positions in `rows`; ids must be
    /// unique (the dataset validator guarantees it).
    pub fn from_rows(rows: Vec<R>) -> Self {
        let mut table = Self {
            index: IdIndex::new(),
            rows: CowVec::from_vec(rows),
        };
        let hasher = table.index.hasher.clone();
        let hashes: Vec<u64> = table
            .rows
            .iter()
            .map(|row| hasher.hash_one(row.key()))
            .collect();
        // Sized up front: growing by doubling would leave up to half of
        // each shard empty.
        let mut sizes = vec![0usize; 1 << SHARD_BITS];
        for hash in &hashes {
            if let Some(size) = sizes.get_mut(IdIndex::shard(*hash)) {
                *size += 1;
            }
        }
        let mut shards: Vec<HashTable<Idx>> =
            sizes.into_iter().map(HashTable::with_capacity).collect();
        for (idx, hash) in hashes.into_iter().enumerate() {
            let handle = Idx::try_from(idx).unwrap_or(NONE);
            let rows = &table.rows;
            if let Some(shard) = shards.get_mut(IdIndex::shard(hash)) {
                shard.insert_unique(hash, handle, |h| hasher.hash_one(rows[*h as usize].key()));
            }
        }
        table.index.shards = shards.into_iter().map(Arc::new).collect();
        table
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn lookup(&self, id: &str) -> Option<Idx> {
        let hash = self.index.hasher.hash_one(id);
        let rows = &self.rows;
        self.index
            .shards
            .get(IdIndex::shard(hash))?
            .find(hash, |h| rows[*h as usize].key() == id)
            .copied()
    }

    pub fn get(&self, id: &str) -> Option<(Idx, &R)> {
        self.lookup(id).map(|idx| (idx, &self.rows[idx as usize]))
    }

    /// The id of a handle.
    pub fn id(&self, idx: Idx) -> &str {
        self.rows[idx as usize].key()
    }

    /// Mutable access to a row; the caller must not change its id.
    pub fn row_mut(&mut self, idx: Idx) -> Option<&mut R> {
        self.rows.get_mut(idx as usize)
    }

    /// Adds a row with a new id and returns its handle.
    pub fn push(&mut self, row: R) -> Idx {
        let hash = self.index.hasher.hash_one(row.key());
        let idx = Idx::try_from(self.rows.push(row)).unwrap_or(NONE);
        let rows = &self.rows;
        let hasher = &self.index.hasher;
        if let Some(shard) = self.index.shards.get_mut(IdIndex::shard(hash)) {
            Arc::make_mut(shard)
                .insert_unique(hash, idx, |h| hasher.hash_one(rows[*h as usize].key()));
        }
        idx
    }

    pub fn iter(&self) -> impl Iterator<Item = (Idx, &R)> {
        self.rows
            .iter()
            .enumerate()
            .map(|(idx, row)| (Idx::try_from(idx).unwrap_or(NONE), row))
    }
}

impl<R: Keyed> Index<Idx> for Table<R> {
    type Output = R;

    fn index(&self, idx: Idx) -> &R {
        &self.rows[idx as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug)]
    struct Row(String);

    impl Keyed for Row {
        fn key(&self) -> &str {
            &self.0
        }
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
