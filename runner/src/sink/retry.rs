//! Retries: every store error is classified once, by the store's own table,
//! into what the worker does with it; waits grow exponentially with full
//! jitter (a random wait between zero and the bound, so that many runners
//! recovering from one outage do not retry in step) up to a cap.

use std::time::Duration;

/// What a failed request means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The store refused for a reason retrying cannot fix (a missing table,
    /// no permission, a malformed request): the runner stops, naming it.
    Fatal(String),
    /// Worth another try after a wait; `reason` labels the retry metric
    /// (`throttled`, `unavailable`, `timeout`, `conflict`...).
    Retry {
        reason: &'static str,
        message: String,
    },
}

/// Exponential backoff with full jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
    state: u64,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration, seed: u64) -> Self {
        Backoff {
            base,
            cap,
            attempt: 0,
            // xorshift needs a non-zero state.
            state: seed | 1,
        }
    }

    /// The wait before the next attempt.
    pub fn next_wait(&mut self) -> Duration {
        let exp = self.attempt.min(20);
        self.attempt = self.attempt.saturating_add(1);
        let bound = self
            .base
            .saturating_mul(1u32 << exp)
            .min(self.cap)
            .as_micros() as u64;
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        Duration::from_micros(self.state % bound.max(1) + 1)
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_stay_under_an_exponential_bound_and_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_secs(1), 7);
        let mut seen_large = false;
        for attempt in 0..30u32 {
            let wait = b.next_wait();
            let bound = Duration::from_millis(10)
                .saturating_mul(1 << attempt.min(20))
                .min(Duration::from_secs(1));
            assert!(wait <= bound, "attempt {attempt}: {wait:?} > {bound:?}");
            assert!(wait > Duration::ZERO);
            seen_large |= wait > Duration::from_millis(100);
        }
        assert!(seen_large, "the bound grows past the base");
        b.reset();
        assert!(b.next_wait() <= Duration::from_millis(10));
    }

    #[test]
    fn jitter_differs_between_runners() {
        let waits = |seed| {
            let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10), seed);
            (0..8).map(|_| b.next_wait()).collect::<Vec<_>>()
        };
        assert_ne!(waits(1), waits(2));
    }
}
