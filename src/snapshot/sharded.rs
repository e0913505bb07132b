//! A string-keyed map split into shards behind shared pointers: a copy of a
//! snapshot shares every shard, and a change copies only the shard it
//! writes. Used for the indexes keyed by email domain.

use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::FixedState;

/// Enough shards that copying one costs little next to a row apply.
const SHARD_BITS: u32 = 6;

type Shard<V> = HashMap<Box<str>, V, FixedState>;

#[derive(Debug, Clone)]
pub struct ShardedMap<V> {
    shards: Vec<Arc<Shard<V>>>,
}

impl<V> Default for ShardedMap<V> {
    fn default() -> Self {
        Self {
            shards: (0..1 << SHARD_BITS)
                .map(|_| Arc::new(Shard::with_hasher(FixedState::default())))
                .collect(),
        }
    }
}

fn shard_of(key: &str) -> usize {
    use std::hash::BuildHasher as _;
    // A fixed seed of its own, so the shard does not correlate with the
    // slot inside the shard's table.
    let hash = FixedState::with_seed(0x5eed).hash_one(key);
    usize::try_from(hash >> (64 - SHARD_BITS)).unwrap_or(0)
}

impl<V: Clone + Default> ShardedMap<V> {
    pub fn get(&self, key: &str) -> Option<&V> {
        self.shards.get(shard_of(key))?.get(key)
    }

    /// The value of `key` for writing (a default one when absent), copying
    /// its shard first if another snapshot shares it.
    pub fn entry(&mut self, key: &str) -> Option<&mut V> {
        let shard = Arc::make_mut(self.shards.get_mut(shard_of(key))?);
        if !shard.contains_key(key) {
            shard.insert(key.into(), V::default());
        }
        shard.get_mut(key)
    }

    /// Drops `key` when `empty` says its value holds nothing.
    pub fn remove_if(&mut self, key: &str, empty: impl Fn(&V) -> bool) {
        let Some(shard) = self.shards.get_mut(shard_of(key)) else {
            return;
        };
        if shard.get(key).is_some_and(&empty) {
            Arc::make_mut(shard).remove(key);
        }
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.is_empty())
    }
}
