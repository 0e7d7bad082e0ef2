//! Memory layouts for tens of millions of small entries.
//!
//! - [`ChunkedVec`]: a vector in fixed-size chunks. Growing never copies
//!   what is there, so memory grows by one chunk at a time instead of briefly
//!   doubling (a plain `Vec` of 10 million records would hold 1.5 times its
//!   size in dead copies at the moment it grows).
//! - [`StrArena`]: append-only string storage in chunks, addressed by an
//!   8-byte [`StrRef`]: no allocation and no allocator overhead per string.

use std::ops::{Index, IndexMut};

const CHUNK_BITS: u32 = 14;
const CHUNK: usize = 1 << CHUNK_BITS;

pub struct ChunkedVec<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for ChunkedVec<T> {
    fn default() -> Self {
        ChunkedVec {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> ChunkedVec<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn push(&mut self, value: T) -> usize {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks
            .last_mut()
            .expect("a chunk with room")
            .push(value);
        self.len += 1;
        self.len - 1
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// The entry at `i`, or `None` past the end.
    pub fn get(&self, i: usize) -> Option<&T> {
        (i < self.len).then(|| &self[i])
    }
}

impl<T> Index<usize> for ChunkedVec<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        &self.chunks[i >> CHUNK_BITS][i & (CHUNK - 1)]
    }
}

impl<T> IndexMut<usize> for ChunkedVec<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.chunks[i >> CHUNK_BITS][i & (CHUNK - 1)]
    }
}

/// Where a string lives in a [`StrArena`]: chunk, offset and length packed
/// into 8 bytes (24 bits of chunk, 20 of offset, 20 of length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StrRef(u64);

const ARENA_CHUNK_BITS: u32 = 20;
const ARENA_CHUNK: usize = 1 << ARENA_CHUNK_BITS;
const LEN_BITS: u32 = 20;

#[derive(Default)]
pub struct StrArena {
    chunks: Vec<Vec<u8>>,
}

impl StrArena {
    /// Stores a string. Strings of 1 MiB or more (never identifiers or keys
    /// in practice, the input line limit being 1 MiB) get a chunk of their own.
    pub fn push(&mut self, s: &str) -> StrRef {
        let bytes = s.as_bytes();
        assert!(
            bytes.len() < (1 << LEN_BITS),
            "arena strings are shorter than 1 MiB"
        );
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= bytes.len());
        if !fits {
            self.chunks
                .push(Vec::with_capacity(ARENA_CHUNK.max(bytes.len())));
        }
        let chunk = self.chunks.len() - 1;
        let data = &mut self.chunks[chunk];
        let offset = data.len();
        data.extend_from_slice(bytes);
        StrRef(
            ((chunk as u64) << (ARENA_CHUNK_BITS + LEN_BITS))
                | ((offset as u64) << LEN_BITS)
                | bytes.len() as u64,
        )
    }

    pub fn get(&self, r: StrRef) -> &str {
        // Only whole `&str`s are ever pushed.
        std::str::from_utf8(self.bytes(r)).expect("arena holds UTF-8")
    }

    /// The stored string's bytes, without the UTF-8 check `get` makes:
    /// hash-table probes compare with this, since equal bytes are equal
    /// strings and the check dominated their cost.
    pub fn bytes(&self, r: StrRef) -> &[u8] {
        let chunk = (r.0 >> (ARENA_CHUNK_BITS + LEN_BITS)) as usize;
        let offset = ((r.0 >> LEN_BITS) & ((1 << ARENA_CHUNK_BITS) - 1)) as usize;
        let len = (r.0 & ((1 << LEN_BITS) - 1)) as usize;
        &self.chunks[chunk][offset..offset + len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_vec_indexes_across_chunks() {
        let mut v = ChunkedVec::default();
        for i in 0..(CHUNK * 2 + 5) {
            assert_eq!(v.push(i), i);
        }
        assert_eq!(v[CHUNK + 3], CHUNK + 3);
        v[7] = 70;
        assert_eq!(v[7], 70);
        assert_eq!(v.iter().count(), CHUNK * 2 + 5);
    }

    #[test]
    fn arena_returns_what_was_stored() {
        let mut a = StrArena::default();
        let refs: Vec<(StrRef, String)> = (0..200_000)
            .map(|i| format!("value-{i}-ü"))
            .map(|s| (a.push(&s), s))
            .collect();
        for (r, s) in &refs {
            assert_eq!(a.get(*r), s);
        }
        let empty = a.push("");
        assert_eq!(a.get(empty), "");
    }
}
