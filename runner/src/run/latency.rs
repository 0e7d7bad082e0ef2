//! A log-linear latency histogram: 32 sub-buckets per power of two (about 3%
//! resolution) from 1 ns to minutes, in a fixed array: recording is a few
//! instructions and never allocates.

use std::time::Duration;

const SUB: u32 = 32;
const BUCKETS: usize = (64 * SUB) as usize;

pub struct LatencyHistogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
        }
    }
}

fn bucket(ns: u64) -> usize {
    if ns < SUB as u64 {
        return ns as usize;
    }
    let exp = 63 - ns.leading_zeros(); // >= 5
    let shift = exp - SUB.trailing_zeros();
    let sub = ((ns >> shift) as u32) - SUB; // 0..SUB
    ((exp - SUB.trailing_zeros() + 1) * SUB + sub) as usize
}

fn lower_bound(b: usize) -> u64 {
    let b = b as u32;
    if b < SUB {
        return b as u64;
    }
    let group = b / SUB - 1;
    let sub = b % SUB;
    ((SUB + sub) as u64) << group
}

impl LatencyHistogram {
    pub fn record(&mut self, d: Duration) {
        let ns = d.as_nanos().min(u64::MAX as u128) as u64;
        self.counts[bucket(ns).min(BUCKETS - 1)] += 1;
        self.total += 1;
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The upper edge of the bucket holding the q-quantile.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_nanos(lower_bound(b + 1));
            }
        }
        Duration::from_nanos(lower_bound(BUCKETS - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for ns in (0..1_000_000u64).step_by(7) {
            let b = bucket(ns);
            assert!(b >= last);
            last = b;
            assert!(lower_bound(b) <= ns && ns < lower_bound(b + 1), "{ns}");
            assert!(lower_bound(b + 1) - lower_bound(b) <= ns / 16 + 1);
        }
    }

    #[test]
    fn quantiles_follow_the_data() {
        let mut h = LatencyHistogram::default();
        for _ in 0..990 {
            h.record(Duration::from_micros(10));
        }
        for _ in 0..10 {
            h.record(Duration::from_millis(5));
        }
        let p99 = h.quantile(0.99);
        assert!(
            p99 >= Duration::from_micros(10) && p99 < Duration::from_micros(11),
            "{p99:?}"
        );
        let p999 = h.quantile(0.999);
        assert!(
            p999 >= Duration::from_millis(5) && p999 < Duration::from_micros(5200),
            "{p999:?}"
        );
    }
}
