//! The local side of holding a Lease: until when this process may act as
//! the holder, by its own monotonic clock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a Lease is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a Lease nobody renews stays taken: the longest hand-over
    /// after a holder dies without releasing it.
    pub lease_duration: Duration,
    /// How long after sending a renewal the holder still acts. Shorter than
    /// `lease_duration` by more than `retry`, so a holder stops before any
    /// contender may take over.
    pub renew_deadline: Duration,
    /// How often the holder renews and a contender looks.
    pub retry: Duration,
}

impl Timing {
    /// A pipeline's runners: a runner restoring or checkpointing a large
    /// state may be slow to renew, so it gets more room.
    pub const RUNNER: Timing = Timing {
        lease_duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry: Duration::from_secs(2),
    };

    /// The operator's leader: a standby takes over at most 12 s after a
    /// leader dies.
    pub const OPERATOR: Timing = Timing {
        lease_duration: Duration::from_secs(10),
        renew_deadline: Duration::from_secs(7),
        retry: Duration::from_secs(2),
    };

    /// Whether a holder always stops before a contender may take over.
    pub fn is_safe(&self) -> bool {
        self.renew_deadline + self.retry < self.lease_duration
    }
}

/// Whether this process may act as the Lease's holder now. Shared by the
/// task that holds the Lease (which moves the deadline) and whatever asks
/// before it writes.
///
/// A renewal sent at `t` keeps it valid until `t + renew_deadline`, while a
/// contender takes the Lease over only after seeing it unchanged for
/// `lease_duration` by its own clock, measured from when it read it (after
/// `t`). The gap between the two absorbs clock rate differences and a write
/// already past its check.
#[derive(Debug)]
pub struct Fence {
    identity: String,
    timing: Timing,
    base: Instant,
    /// Milliseconds after `base` until which this process holds it; 0: not held.
    valid_until_ms: AtomicU64,
    lost: AtomicBool,
    /// The other holder, while waiting.
    waiting_for: Mutex<Option<String>>,
}

impl Fence {
    pub fn new(identity: String, timing: Timing) -> Arc<Fence> {
        Arc::new(Fence {
            identity,
            timing,
            base: Instant::now(),
            valid_until_ms: AtomicU64::new(0),
            lost: AtomicBool::new(false),
            waiting_for: Mutex::new(None),
        })
    }

    /// A holder identity unique to this process, from its pod name
    /// (`POD/PID-NANOS`): a second process started by hand with the same
    /// pod name is still a contender.
    pub fn identity_for(pod: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        format!("{pod}/{}-{nanos}", std::process::id())
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// True while this process holds the Lease and its deadline has not passed.
    pub fn held(&self) -> bool {
        !self.lost() && self.ms(Instant::now()) < self.valid_until_ms.load(Ordering::Acquire)
    }

    /// True once the holder failed to renew in time or was taken over: it
    /// never holds it again.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// Who holds the Lease while this process waits for it.
    pub fn waiting_for(&self) -> Option<String> {
        self.waiting_for.lock().ok().and_then(|w| w.clone())
    }

    /// Waits until the Lease is held (never returns once it is lost).
    pub async fn until_held(&self) {
        while !self.held() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX)
    }

    /// A renewal sent at `sent` succeeded.
    pub(crate) fn renewed(&self, sent: Instant) {
        let until = self.ms(sent + self.timing.renew_deadline);
        self.valid_until_ms.store(until, Ordering::Release);
        if let Ok(mut w) = self.waiting_for.lock() {
            *w = None;
        }
    }

    pub(crate) fn wait_for(&self, holder: &str) {
        if let Ok(mut w) = self.waiting_for.lock() {
            *w = Some(holder.to_string());
        }
    }

    pub(crate) fn lose(&self) {
        self.lost.store(true, Ordering::Release);
        self.valid_until_ms.store(0, Ordering::Release);
    }

    pub(crate) fn give_up(&self) {
        self.valid_until_ms.store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_is_held_only_until_its_deadline_and_never_after_it_is_lost() {
        let fence = Fence::new("pod/1-2".into(), Timing::RUNNER);
        assert!(!fence.held(), "not held before a renewal");
        fence.renewed(Instant::now());
        assert!(fence.held());
        fence.renewed(
            Instant::now()
                .checked_sub(Timing::RUNNER.renew_deadline)
                .unwrap_or_else(Instant::now),
        );
        assert!(!fence.held(), "a renewal sent a deadline ago holds no more");
        fence.renewed(Instant::now());
        fence.give_up();
        assert!(!fence.held() && !fence.lost(), "given up, not lost");
        fence.renewed(Instant::now());
        fence.lose();
        assert!(!fence.held() && fence.lost());
        fence.renewed(Instant::now());
        assert!(!fence.held(), "lost is for good");
    }

    #[test]
    fn identities_differ_between_processes_of_one_pod() {
        let a = Fence::identity_for("runner-0");
        assert!(a.starts_with("runner-0/"));
        assert!(a.contains(&std::process::id().to_string()));
    }

    #[test]
    fn every_timing_stops_a_holder_before_a_contender_may_take_over() {
        assert!(Timing::RUNNER.is_safe());
        assert!(Timing::OPERATOR.is_safe());
        let unsafe_timing = Timing {
            renew_deadline: Duration::from_secs(14),
            ..Timing::RUNNER
        };
        assert!(!unsafe_timing.is_safe());
    }
}
