//! One writer per pipeline: the coordination Lease `NAME-runner`.
//!
//! A Recreate Deployment is not "at most one pod": a pod on a node that is
//! partitioned away keeps running while its replacement starts, and a
//! rescale or a person starting a runner by hand adds another. Every runner
//! of a pipeline therefore takes the pipeline's Lease before it restores or
//! writes anything, and a runner that does not hold it waits, not ready.
//!
//! The Lease itself is `kith-lease`, shared with the operator's leader
//! election; runners hold it with [`TIMING`] (15 s lease, renewed every 2 s,
//! acted on for 10 s after a renewal is sent). Whether a runner may still
//! write is the [`Fence`], asked by the checkpoint thread before it commits
//! or prunes and by the engine, which stops once it is lost. A holder that
//! cannot renew within the deadline has lost the Lease for good: the engine
//! stops without another checkpoint and the process exits, to be restarted
//! (and wait) by the kubelet. A holder that stops cleanly releases it, so its
//! successor starts at once instead of after the lease duration.
//!
//! Holder identities are `POD/PID-NANOS`: unique per process, so a second
//! process started by hand with the same pod name is still a contender.

use kube::{Api, Client};
use std::sync::Arc;

pub use kith_lease::{Fence, Lost, Timing};

/// How runners hold their pipeline's Lease.
pub const TIMING: Timing = Timing::RUNNER;

/// The fence of a runner process of pod `pod` (its own holder identity).
pub fn fence_for(pod: &str) -> Arc<Fence> {
    Fence::new(Fence::identity_for(pod), TIMING)
}

/// Takes the Lease `name` and keeps it until a renewal misses the deadline
/// or it is taken over (then the fence is lost and this returns why).
pub async fn hold(client: Client, namespace: &str, name: &str, fence: Arc<Fence>) -> Lost {
    kith_lease::hold(Api::namespaced(client, namespace), name, fence).await
}

/// Gives the Lease up on a clean stop.
pub async fn release(client: Client, namespace: &str, name: &str, fence: &Fence) {
    kith_lease::release(Api::namespaced(client, namespace), name, fence).await
}
