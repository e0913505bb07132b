//! Copy-on-write containers: a snapshot's next version shares every chunk a
//! change did not touch, so one changed row costs one chunk copy, not a rebuild.

use std::cmp::Ordering;
use std::sync::Arc;

const ROW_CHUNK_BITS: usize = 8;
const ROW_CHUNK: usize = 1 << ROW_CHUNK_BITS;
const GROUP_BITS: usize = 8;
const GROUP: usize = 1 << GROUP_BITS;

/// One chunk of rows.
type Chunk<T> = Arc<[T]>;

/// A dense vector of rows cut into shared chunks of 256 (small enough that
/// copying the chunk of one written row stays cheap), the chunks in shared
/// groups of 256. A clone copies one pointer per group, not per chunk: at
/// 10M rows that is 153 pointers instead of 39,063, which was most of the
/// cost of applying one change to a large snapshot. A write copies its
/// group's pointers and its chunk's rows. Reading a row costs two pointer
/// hops; the group tables are small and read by every lookup, so they
/// stay in the caches.
#[derive(Debug, Clone)]
pub struct CowVec<T> {
    // `Arc<[_]>`, not `Arc<Vec<_>>`: the pointers sit in the reference-
    // counted block itself, one hop fewer on every read.
    groups: Vec<Arc<[Chunk<T>]>>,
    len: usize,
}

impl<T> Default for CowVec<T> {
    fn default() -> Self {
        Self {
            groups: Vec::new(),
            len: 0,
        }
    }
}

impl<T> CowVec<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, index: usize) -> Option<&T> {
        let chunk = index >> ROW_CHUNK_BITS;
        self.groups
            .get(chunk >> GROUP_BITS)
            .and_then(|group| group.get(chunk & (GROUP - 1)))
            .and_then(|chunk| chunk.get(index & (ROW_CHUNK - 1)))
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.groups
            .iter()
            .flat_map(|group| group.iter())
            .flat_map(|chunk| chunk.iter())
    }
}

impl<T: Clone> CowVec<T> {
    pub fn from_vec(items: Vec<T>) -> Self {
        let len = items.len();
        let mut groups = Vec::with_capacity(len.div_ceil(ROW_CHUNK * GROUP));
        let mut group: Vec<Chunk<T>> = Vec::new();
        let mut items = items.into_iter();
        loop {
            let chunk: Vec<T> = items.by_ref().take(ROW_CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            if group.len() == GROUP {
                groups.push(Arc::from(std::mem::take(&mut group)));
            }
            group.push(Arc::from(chunk));
        }
        if !group.is_empty() {
            groups.push(Arc::from(group));
        }
        Self { groups, len }
    }

    /// Mutable access; copies the group's chunk table and the chunk first
    /// when another snapshot shares them.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        if index >= self.len {
            return None;
        }
        let chunk = index >> ROW_CHUNK_BITS;
        self.groups
            .get_mut(chunk >> GROUP_BITS)
            .and_then(|group| Arc::make_mut(group).get_mut(chunk & (GROUP - 1)))
            .and_then(|chunk| Arc::make_mut(chunk).get_mut(index & (ROW_CHUNK - 1)))
    }

    /// Appends a row; the last chunk is copied to grow it (one chunk and one
    /// group's table, never the whole vector).
    pub fn push(&mut self, item: T) -> usize {
        let index = self.len;
        let chunk = index >> ROW_CHUNK_BITS;
        if chunk >> GROUP_BITS == self.groups.len() {
            self.groups.push(Arc::from(Vec::new()));
        }
        if let Some(group) = self.groups.last_mut() {
            match Arc::make_mut(group).get_mut(chunk & (GROUP - 1)) {
                Some(last) => {
                    let mut grown = Vec::with_capacity(last.len() + 1);
                    grown.extend_from_slice(last);
                    grown.push(item);
                    *last = Arc::from(grown);
                }
                None => {
                    let mut grown = Vec::with_capacity(group.len() + 1);
                    grown.extend_from_slice(group);
                    grown.push(Arc::from(vec![item]));
                    *group = Arc::from(grown);
                }
            }
        }
        self.len += 1;
        index
    }
}

const SEQ_MAX: usize = 512;

/// The chunks of a non-empty [`SortedSeq`].
#[derive(Debug, Clone)]
struct SeqInner<T> {
    chunks: Vec<Arc<Vec<T>>>,
    /// `starts[i]` is the number of elements before chunk `i`.
    starts: Vec<usize>,
    len: usize,
}

/// A sorted sequence (a posting list or a multiset of timestamps) in shared
/// chunks of at most 512, with running counts so that ranks cost a binary
/// search. The order is the caller's: every ordered operation takes the
/// comparator or a monotone predicate, because ticket and user lists are
/// ordered by the ids their integer handles point to.
///
/// Cloning one costs a reference count (rows holding lists are copied
/// whole when a chunk of rows is written); an empty one allocates nothing.
#[derive(Debug, Clone)]
pub struct SortedSeq<T> {
    inner: Option<Arc<SeqInner<T>>>,
}

impl<T> Default for SortedSeq<T> {
    fn default() -> Self {
        Self { inner: None }
    }
}

/// A position in a [`SortedSeq`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    chunk: usize,
    offset: usize,
}

impl<T: Clone> SortedSeq<T> {
    /// Builds from items already in the caller's order.
    pub fn from_sorted(items: Vec<T>) -> Self {
        if items.is_empty() {
            return Self::default();
        }
        let mut inner = SeqInner {
            chunks: Vec::with_capacity(items.len().div_ceil(SEQ_MAX)),
            starts: Vec::with_capacity(items.len().div_ceil(SEQ_MAX)),
            len: 0,
        };
        if items.len() <= SEQ_MAX {
            inner.len = items.len();
            inner.starts.push(0);
            inner.chunks.push(Arc::new(items));
        } else {
            let mut items = items.into_iter();
            loop {
                let chunk: Vec<T> = items.by_ref().take(SEQ_MAX).collect();
                if chunk.is_empty() {
                    break;
                }
                inner.starts.push(inner.len);
                inner.len += chunk.len();
                inner.chunks.push(Arc::new(chunk));
            }
        }
        Self {
            inner: Some(Arc::new(inner)),
        }
    }

    fn chunks(&self) -> &[Arc<Vec<T>>] {
        self.inner.as_deref().map_or(&[], |i| i.chunks.as_slice())
    }

    pub fn len(&self) -> usize {
        self.inner.as_deref().map_or(0, |i| i.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first position whose element does not satisfy `before`; `before`
    /// must hold for a prefix of the sequence and fail for the rest.
    pub fn seek(&self, before: impl Fn(&T) -> bool) -> Cursor {
        let chunks = self.chunks();
        let chunk = chunks.partition_point(|c| c.last().is_some_and(&before));
        let offset = chunks.get(chunk).map_or(0, |c| c.partition_point(&before));
        Cursor { chunk, offset }
    }

    /// How many elements lie before `cursor`.
    pub fn rank(&self, cursor: Cursor) -> usize {
        self.inner
            .as_deref()
            .and_then(|i| i.starts.get(cursor.chunk))
            .map_or(self.len(), |start| start + cursor.offset)
    }

    /// How many elements satisfy the monotone predicate `before`.
    pub fn count_before(&self, before: impl Fn(&T) -> bool) -> usize {
        self.rank(self.seek(before))
    }

    pub fn iter(&self) -> SeqIter<'_, T> {
        self.iter_from(Cursor {
            chunk: 0,
            offset: 0,
        })
    }

    pub fn iter_from(&self, cursor: Cursor) -> SeqIter<'_, T> {
        SeqIter {
            chunks: self.chunks(),
            chunk: cursor.chunk,
            offset: cursor.offset,
        }
    }

    pub fn contains(&self, value: &T, cmp: impl Fn(&T, &T) -> Ordering) -> bool {
        let cursor = self.seek(|e| cmp(e, value) == Ordering::Less);
        self.at(cursor)
            .is_some_and(|e| cmp(e, value) == Ordering::Equal)
    }

    fn at(&self, cursor: Cursor) -> Option<&T> {
        self.chunks()
            .get(cursor.chunk)
            .and_then(|c| c.get(cursor.offset))
    }

    /// Inserts `value` unless an equal element is present (set semantics);
    /// returns whether it was inserted.
    pub fn insert_unique(&mut self, value: T, cmp: impl Fn(&T, &T) -> Ordering) -> bool {
        if self.contains(&value, &cmp) {
            return false;
        }
        self.insert(value, cmp);
        true
    }

    /// Set semantics: makes `value` present or absent.
    pub fn toggle(&mut self, value: T, present: bool, cmp: impl Fn(&T, &T) -> Ordering) {
        if present {
            self.insert_unique(value, cmp);
        } else {
            self.remove(&value, cmp);
        }
    }

    /// Multiset semantics: adds one `value` or removes one.
    pub fn count_in(&mut self, value: T, add: bool, cmp: impl Fn(&T, &T) -> Ordering) {
        if add {
            self.insert(value, cmp);
        } else {
            self.remove(&value, cmp);
        }
    }

    /// Inserts `value` after any equal elements (multiset semantics).
    pub fn insert(&mut self, value: T, cmp: impl Fn(&T, &T) -> Ordering) {
        let mut cursor = self.seek(|e| cmp(e, &value) != Ordering::Greater);
        let inner = Arc::make_mut(self.inner.get_or_insert_with(|| {
            Arc::new(SeqInner {
                chunks: Vec::new(),
                starts: Vec::new(),
                len: 0,
            })
        }));
        if inner.chunks.is_empty() {
            inner.chunks.push(Arc::new(vec![value]));
            inner.starts.push(0);
            inner.len = 1;
            return;
        }
        if cursor.chunk == inner.chunks.len() {
            // Past the end: append to the last chunk.
            cursor.chunk -= 1;
            cursor.offset = inner.chunks[cursor.chunk].len();
        }
        let chunk = Arc::make_mut(&mut inner.chunks[cursor.chunk]);
        chunk.insert(cursor.offset, value);
        if chunk.len() > SEQ_MAX {
            let tail = chunk.split_off(chunk.len() / 2);
            let start = inner.starts[cursor.chunk] + chunk.len();
            inner.chunks.insert(cursor.chunk + 1, Arc::new(tail));
            inner.starts.insert(cursor.chunk + 1, start - 1);
        }
        inner.len += 1;
        for start in inner.starts.iter_mut().skip(cursor.chunk + 1) {
            *start += 1;
        }
    }

    /// Removes one element equal to `value`; returns whether one was found.
    pub fn remove(&mut self, value: &T, cmp: impl Fn(&T, &T) -> Ordering) -> bool {
        let cursor = self.seek(|e| cmp(e, value) == Ordering::Less);
        if self
            .at(cursor)
            .is_none_or(|e| cmp(e, value) != Ordering::Equal)
        {
            return false;
        }
        let Some(shared) = self.inner.as_mut() else {
            return false;
        };
        let inner = Arc::make_mut(shared);
        let chunk = Arc::make_mut(&mut inner.chunks[cursor.chunk]);
        chunk.remove(cursor.offset);
        let emptied = chunk.is_empty();
        inner.len -= 1;
        for start in inner.starts.iter_mut().skip(cursor.chunk + 1) {
            *start -= 1;
        }
        if emptied {
            inner.chunks.remove(cursor.chunk);
            inner.starts.remove(cursor.chunk);
        }
        if inner.len == 0 {
            self.inner = None;
        }
        true
    }
}

/// Iterates a [`SortedSeq`] in order from a cursor.
#[derive(Debug, Clone)]
pub struct SeqIter<'a, T> {
    chunks: &'a [Arc<Vec<T>>],
    chunk: usize,
    offset: usize,
}

impl<'a, T> Iterator for SeqIter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        loop {
            let chunk = self.chunks.get(self.chunk)?;
            if let Some(item) = chunk.get(self.offset) {
                self.offset += 1;
                return Some(item);
            }
            self.chunk += 1;
            self.offset = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn natural(a: &u32, b: &u32) -> Ordering {
        a.cmp(b)
    }

    /// The chunk holding row `index`.
    fn chunk_of<T>(v: &CowVec<T>, index: usize) -> &Chunk<T> {
        let chunk = index >> ROW_CHUNK_BITS;
        &v.groups[chunk >> GROUP_BITS][chunk & (GROUP - 1)]
    }

    #[test]
    fn cow_vec_shares_untouched_chunks_and_groups() {
        // Three groups: rows 0..65,536, 65,536..131,072 and the rest.
        let base = CowVec::from_vec((0..140_000u32).collect());
        assert_eq!(base.groups.len(), 3);
        let mut next = base.clone();
        if let Some(v) = next.get_mut(70_000) {
            *v = 7;
        }
        assert_eq!(base.get(70_000), Some(&70_000));
        assert_eq!(next.get(70_000), Some(&7));
        // Another group is shared whole; the written group is copied, but
        // its other chunks are still shared.
        assert!(Arc::ptr_eq(&base.groups[0], &next.groups[0]));
        assert!(!Arc::ptr_eq(&base.groups[1], &next.groups[1]));
        assert!(Arc::ptr_eq(
            chunk_of(&base, 66_000),
            chunk_of(&next, 66_000)
        ));
        assert!(!Arc::ptr_eq(
            chunk_of(&base, 70_000),
            chunk_of(&next, 70_000)
        ));
        assert_eq!(next.push(9), 140_000);
        assert_eq!(next.len(), 140_001);
        assert_eq!(base.len(), 140_000);
        assert!(Arc::ptr_eq(&base.groups[0], &next.groups[0]));
        assert_eq!(next.get(140_001), None);
        assert!(next.get_mut(140_001).is_none());
    }

    #[test]
    fn cow_vec_pushes_across_chunk_and_group_ends() {
        let mut v = CowVec::from_vec((0..65_530u32).collect());
        let base = v.clone();
        for i in 65_530..65_800u32 {
            assert_eq!(v.push(i), i as usize);
        }
        assert_eq!(v.groups.len(), 2);
        assert_eq!(v.groups[0].len(), GROUP);
        assert!(v.iter().copied().eq(0..65_800));
        assert!((0..65_800u32).all(|i| v.get(i as usize) == Some(&i)));
        assert!(base.iter().copied().eq(0..65_530));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn cow_vec_behaves_like_a_vec(
            // Up to three groups of 65,536 rows, so the boundaries of
            // chunks and of groups are crossed by the edits.
            initial in 0usize..140_000,
            ops in proptest::collection::vec((any::<bool>(), 0usize..150_000, any::<u32>()), 0..300),
        ) {
            let mut model: Vec<u32> = (0..initial).map(|i| i as u32).collect();
            let mut v = CowVec::from_vec(model.clone());
            let before = v.clone();
            for (push, at, value) in ops {
                if push {
                    prop_assert_eq!(v.push(value), model.len());
                    model.push(value);
                } else {
                    let expected = model.get_mut(at);
                    let got = v.get_mut(at);
                    prop_assert_eq!(got.is_some(), expected.is_some());
                    if let (Some(g), Some(e)) = (got, expected) {
                        *g = value;
                        *e = value;
                    }
                }
            }
            prop_assert_eq!(v.len(), model.len());
            prop_assert!(v.iter().eq(model.iter()));
            for probe in [0, 255, 256, 65_535, 65_536, 131_072, model.len().saturating_sub(1), model.len()] {
                prop_assert_eq!(v.get(probe), model.get(probe));
            }
            // The clone taken before the edits is unchanged.
            prop_assert_eq!(before.len(), initial);
            prop_assert!(before.iter().copied().eq(0..initial as u32));
        }
    }

    proptest! {
        #[test]
        fn sorted_seq_behaves_like_a_sorted_vec(
            initial in proptest::collection::vec(0u32..3000, 0..2000),
            ops in proptest::collection::vec((any::<bool>(), 0u32..3000), 0..1500),
        ) {
            let mut model = initial.clone();
            model.sort_unstable();
            let mut seq = SortedSeq::from_sorted(model.clone());
            let before = seq.clone();
            let frozen = model.clone();
            for (insert, value) in ops {
                if insert {
                    seq.insert(value, natural);
                    let at = model.partition_point(|e| *e <= value);
                    model.insert(at, value);
                } else {
                    let removed = seq.remove(&value, natural);
                    let found = model.iter().position(|e| *e == value);
                    prop_assert_eq!(removed, found.is_some());
                    if let Some(at) = found {
                        model.remove(at);
                    }
                }
            }
            prop_assert_eq!(seq.len(), model.len());
            prop_assert_eq!(seq.iter().copied().collect::<Vec<_>>(), model.clone());
            for probe in [0u32, 1, 500, 1499, 2999, 3000] {
                let expected = model.partition_point(|e| *e < probe);
                prop_assert_eq!(seq.count_before(|e| *e < probe), expected);
                let tail: Vec<u32> = seq.iter_from(seq.seek(|e| *e < probe)).copied().collect();
                prop_assert_eq!(tail, model[expected..].to_vec());
            }
            // The clone taken before the edits is unchanged.
            prop_assert_eq!(before.iter().copied().collect::<Vec<_>>(), frozen);
        }
    }

    #[test]
    fn insert_unique_keeps_a_set() {
        let mut seq = SortedSeq::default();
        assert!(seq.insert_unique(3u32, natural));
        assert!(seq.insert_unique(1u32, natural));
        assert!(!seq.insert_unique(3u32, natural));
        assert_eq!(seq.iter().copied().collect::<Vec<_>>(), vec![1, 3]);
        assert!(seq.contains(&1, natural));
        assert!(!seq.contains(&2, natural));
    }
}
