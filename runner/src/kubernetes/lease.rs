//! One writer per pipeline: the coordination Lease `NAME-runner`.
//!
//! A Recreate Deployment is not "at most one pod": a pod on a node that is
//! partitioned away keeps running while its replacement starts, and a
//! rescale or a person starting a runner by hand adds another. Every runner
//! of a pipeline therefore takes the pipeline's Lease before it restores or
//! writes anything, and a runner that does not hold it waits, not ready.
//!
//! The holder renews every [`RETRY`]. Whether it may still write is a local
//! deadline, the [`Fence`]: a renewal sent at `t` keeps it valid until
//! `t + RENEW_DEADLINE`, while a contender takes the Lease over only after
//! seeing it unchanged for [`LEASE_DURATION`] by its own clock, measured from
//! when it read it (after `t`). The gap between the two (5 s) absorbs clock
//! rate differences and a write already past its fence check. A holder that
//! cannot renew within the deadline has lost the Lease for good: the engine
//! stops without another checkpoint and the process exits, to be restarted
//! (and wait) by the kubelet. A holder that stops cleanly releases it, so its
//! successor starts at once instead of after the lease duration.
//!
//! Holder identities are `POD/PID-NANOS`: unique per process, so a second
//! process started by hand with the same pod name is still a contender.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a Lease nobody renews stays taken.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How long after sending a renewal the holder still writes.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// How often the holder renews and a contender looks.
pub const RETRY: Duration = Duration::from_secs(2);

/// Whether this process may write its pipeline's checkpoints now. Shared by
/// the Lease task (which moves the deadline), the checkpoint thread (which
/// asks before it commits or prunes) and the engine (which stops once lost).
#[derive(Debug)]
pub struct Fence {
    identity: String,
    base: Instant,
    /// Milliseconds after `base` until which writes are allowed; 0: not held.
    valid_until_ms: AtomicU64,
    lost: AtomicBool,
    /// The other holder, while waiting (for the readiness message).
    waiting_for: Mutex<Option<String>>,
}

impl Fence {
    pub fn new(identity: String) -> Arc<Fence> {
        Arc::new(Fence {
            identity,
            base: Instant::now(),
            valid_until_ms: AtomicU64::new(0),
            lost: AtomicBool::new(false),
            waiting_for: Mutex::new(None),
        })
    }

    /// A unique holder identity for this process, from its pod name.
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

    /// True while this process holds the Lease and its deadline has not passed.
    pub fn held(&self) -> bool {
        !self.lost() && self.ms(Instant::now()) < self.valid_until_ms.load(Ordering::Acquire)
    }

    /// True once the holder failed to renew in time: it never writes again.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// Who holds the Lease while this process waits for it.
    pub fn waiting_for(&self) -> Option<String> {
        self.waiting_for.lock().ok().and_then(|w| w.clone())
    }

    fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX)
    }

    /// A renewal sent at `sent` succeeded.
    fn renewed(&self, sent: Instant) {
        let until = self.ms(sent + RENEW_DEADLINE);
        self.valid_until_ms.store(until, Ordering::Release);
        if let Ok(mut w) = self.waiting_for.lock() {
            *w = None;
        }
    }

    fn wait_for(&self, holder: &str) {
        if let Ok(mut w) = self.waiting_for.lock() {
            *w = Some(holder.to_string());
        }
    }

    fn lose(&self) {
        self.lost.store(true, Ordering::Release);
        self.valid_until_ms.store(0, Ordering::Release);
    }

    fn give_up(&self) {
        self.valid_until_ms.store(0, Ordering::Release);
    }
}

/// What this process last saw of another holder's Lease: a contender counts
/// the lease duration from when the record last changed, by its own clock.
struct Observed {
    resource_version: Option<String>,
    at: Instant,
}

/// Takes the Lease `name` and keeps it until `stopped`, or until a renewal
/// misses the deadline (then the fence is lost and this returns).
pub async fn hold(client: Client, namespace: &str, name: &str, fence: Arc<Fence>) {
    let api: Api<Lease> = Api::namespaced(client, namespace);
    let mut observed: Option<Observed> = None;
    let mut last_renewal: Option<Instant> = None;
    loop {
        let sent = Instant::now();
        // A renewal is cut off at the deadline: an API server that never
        // answers must not keep this runner writing past it.
        let left = last_renewal.map_or(RENEW_DEADLINE, |t| {
            RENEW_DEADLINE
                .saturating_sub(t.elapsed())
                .max(Duration::from_millis(1))
        });
        let attempt = tokio::time::timeout(left, async {
            try_take(&api, name, &fence, &mut observed, sent)
                .await
                .map_err(Some)
        });
        let outcome = match attempt.await {
            Ok(outcome) => outcome,
            Err(_) => {
                tracing::warn!(
                    lease = name,
                    "no answer about the pipeline's Lease within {} ms",
                    left.as_millis()
                );
                Err(None)
            }
        };
        match outcome {
            Ok(Taken::Yes) => {
                if last_renewal.is_none() {
                    tracing::info!(
                        lease = name,
                        holder = fence.identity(),
                        "holding the pipeline's Lease"
                    );
                }
                fence.renewed(sent);
                last_renewal = Some(sent);
            }
            Ok(Taken::HeldBy(holder)) => {
                if last_renewal.is_some() {
                    // Someone else took it while this process held it: its
                    // renewals were late. It must not write again.
                    tracing::error!(lease = name, holder = %holder, "the pipeline's Lease was taken over; stopping");
                    fence.lose();
                    return;
                }
                fence.wait_for(&holder);
            }
            Err(Some(e)) => {
                tracing::warn!(lease = name, error = %e, "cannot read or renew the pipeline's Lease; retrying");
            }
            Err(None) => {}
        }
        if let Some(t) = last_renewal {
            if t.elapsed() >= RENEW_DEADLINE {
                tracing::error!(
                    lease = name,
                    "could not renew the pipeline's Lease within {} s; stopping",
                    RENEW_DEADLINE.as_secs()
                );
                fence.lose();
                return;
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Gives the Lease up (a clean stop), so a successor need not wait out the
/// lease duration. Only a Lease this process still holds is changed.
pub async fn release(client: Client, namespace: &str, name: &str, fence: &Fence) {
    if !fence.held() {
        return;
    }
    fence.give_up();
    let api: Api<Lease> = Api::namespaced(client, namespace);
    let Ok(Some(mut lease)) = api.get_opt(name).await else {
        return;
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref() != Some(fence.identity()) {
        return;
    }
    spec.holder_identity = None;
    spec.renew_time = Some(now());
    match api.replace(name, &PostParams::default(), &lease).await {
        Ok(_) => tracing::info!(lease = name, "released the pipeline's Lease"),
        Err(e) => {
            tracing::warn!(lease = name, error = %e, "cannot release the pipeline's Lease; it expires by itself")
        }
    }
}

enum Taken {
    Yes,
    HeldBy(String),
}

/// One look at the Lease: create it, renew it, take it over once expired
/// or released; every write carries the resourceVersion read (a conflict
/// means someone else wrote first: not taken this time).
async fn try_take(
    api: &Api<Lease>,
    name: &str,
    fence: &Fence,
    observed: &mut Option<Observed>,
    now_local: Instant,
) -> Result<Taken, kube::Error> {
    let duration_s = i32::try_from(LEASE_DURATION.as_secs()).unwrap_or(i32::MAX);
    let Some(mut lease) = api.get_opt(name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(fence.identity().to_string()),
                lease_duration_seconds: Some(duration_s),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(Taken::Yes),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                Ok(Taken::HeldBy("(another runner)".into()))
            }
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let ours = holder.as_deref() == Some(fence.identity());
    if let (Some(other), false) = (&holder, ours) {
        let rv = lease.metadata.resource_version.clone();
        let changed = observed.as_ref().is_none_or(|o| o.resource_version != rv);
        if changed {
            *observed = Some(Observed {
                resource_version: rv,
                at: now_local,
            });
        }
        let unchanged_for = observed.as_ref().map_or(Duration::ZERO, |o| {
            now_local.saturating_duration_since(o.at)
        });
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(LEASE_DURATION, Duration::from_secs);
        if unchanged_for < duration {
            return Ok(Taken::HeldBy(other.clone()));
        }
        tracing::info!(lease = name, previous = %other, "the pipeline's Lease expired; taking it over");
    }
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if !ours {
        spec.acquire_time = Some(now());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
    }
    spec.holder_identity = Some(fence.identity().to_string());
    spec.lease_duration_seconds = Some(duration_s);
    spec.renew_time = Some(now());
    match api.replace(name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(Taken::Yes),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            // Someone wrote first; whoever it was holds it now.
            let holder = api
                .get_opt(name)
                .await?
                .and_then(|l| l.spec.and_then(|s| s.holder_identity))
                .unwrap_or_default();
            if holder == fence.identity() {
                Ok(Taken::Yes)
            } else {
                Ok(Taken::HeldBy(holder))
            }
        }
        Err(e) => Err(e),
    }
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_is_held_only_until_its_deadline_and_never_after_it_is_lost() {
        let fence = Fence::new("pod/1-2".into());
        assert!(!fence.held(), "not held before a renewal");
        fence.renewed(Instant::now());
        assert!(fence.held());
        fence.renewed(
            Instant::now()
                .checked_sub(RENEW_DEADLINE)
                .unwrap_or_else(Instant::now),
        );
        assert!(!fence.held(), "a renewal sent a deadline ago holds no more");
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
    fn the_deadline_leaves_a_margin_before_a_contender_may_take_over() {
        assert!(RENEW_DEADLINE + RETRY < LEASE_DURATION);
    }
}
