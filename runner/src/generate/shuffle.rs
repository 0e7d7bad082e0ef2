//! All generated lines, held compactly until the final shuffle: one byte
//! buffer and one `u64` per line (start and length packed), instead of
//! millions of small allocations. The shuffle is what makes arrival order
//! adversarial: updates and retractions land before the versions they replace.

use super::dice::{self, Dice};
use std::io::Write;

const LEN_BITS: u32 = 24;
const LEN_MASK: u64 = (1 << LEN_BITS) - 1;

pub(super) struct Lines {
    data: Vec<u8>,
    /// `start << LEN_BITS | len` of each line, newline included.
    index: Vec<u64>,
    line_start: usize,
}

impl Lines {
    /// Sized for about 5 lines of under 250 bytes per person; only the pages
    /// touched are ever resident, so a generous guess costs nothing.
    pub(super) fn with_capacity_for(people: u64) -> Lines {
        let lines = (people as usize).saturating_mul(5);
        Lines {
            data: Vec::with_capacity(lines.saturating_mul(240)),
            index: Vec::with_capacity(lines),
            line_start: 0,
        }
    }

    /// The buffer the current line is appended to.
    pub(super) fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    /// Ends the line appended since the previous one.
    pub(super) fn end_line(&mut self) {
        self.data.push(b'\n');
        let len = (self.data.len() - self.line_start) as u64;
        // Lines are a few hundred bytes and the buffer stays far below 2^40
        // bytes for any population `MAX_PEOPLE` allows.
        debug_assert!(len <= LEN_MASK && (self.line_start as u64) < (1 << (64 - LEN_BITS)));
        self.index.push((self.line_start as u64) << LEN_BITS | len);
        self.line_start = self.data.len();
    }

    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    fn line(&self, packed: u64) -> &[u8] {
        let start = (packed >> LEN_BITS) as usize;
        &self.data[start..start + (packed & LEN_MASK) as usize]
    }

    /// Writes every line once, in a uniformly random order of the seed.
    pub(super) fn shuffle_into(mut self, seed: u64, out: &mut dyn Write) -> std::io::Result<()> {
        let mut rng = dice::stream(seed, dice::STREAM_SHUFFLE);
        let index = &mut self.index;
        for i in (1..index.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            index.swap(i, j);
        }
        // Batch lines into large writes: `out` is behind a `dyn`, and each
        // line is small.
        const CHUNK: usize = 1 << 20;
        let mut chunk = Vec::with_capacity(CHUNK + 4096);
        for &packed in &self.index {
            chunk.extend_from_slice(self.line(packed));
            if chunk.len() >= CHUNK {
                out.write_all(&chunk)?;
                chunk.clear();
            }
        }
        out.write_all(&chunk)?;
        out.flush()
    }
}
