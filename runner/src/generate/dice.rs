//! Random draws built only on `RngCore::next_u64`, so that the workload of a
//! seed never changes when `rand` changes how its own distributions sample.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Streams of a seed that are not people (people use streams `0..people`).
pub(super) const STREAM_STRUCTURE: u64 = u64::MAX - 1;
pub(super) const STREAM_SHUFFLE: u64 = u64::MAX;

/// The generator of one stream of the seed.
pub(super) fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

pub(super) trait Dice {
    /// Uniform in `0..n`; `n` must be positive.
    fn below(&mut self, n: u64) -> u64;
    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool;
    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    /// One of `items` (not empty), uniformly.
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
    /// One of the values, with the given integer weights (not all zero).
    fn weighted<T: Copy>(&mut self, table: &[(T, u32)]) -> T {
        let total: u64 = table.iter().map(|&(_, w)| w as u64).sum();
        let mut roll = self.below(total);
        for &(value, weight) in table {
            if roll < weight as u64 {
                return value;
            }
            roll -= weight as u64;
        }
        table[table.len() - 1].0
    }
}

impl<R: RngCore> Dice for R {
    fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        // Multiply-and-take-the-high-word, rejecting the few low words that
        // would make some results more likely than others.
        let mut product = self.next_u64() as u128 * n as u128;
        if (product as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (product as u64) < threshold {
                product = self.next_u64() as u128 * n as u128;
            }
        }
        (product >> 64) as u64
    }

    fn chance(&mut self, p: f64) -> bool {
        // 53 random bits, the precision of an f64 in [0, 1).
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}
