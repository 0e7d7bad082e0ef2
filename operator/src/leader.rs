//! Leader election: only the replica holding the Lease reconciles. The Lease
//! is `kith-lease`, the one the runners hold per pipeline, with the
//! operator's timing (a standby takes over at most 12 s after a leader
//! dies). A leader that cannot renew within the deadline, or finds the Lease
//! taken over, stops leading: the process exits, and its restart competes
//! again. On a clean stop it gives the Lease up, so a standby takes over at
//! once.

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use std::sync::Arc;

pub use kith_lease::{Fence, Lost, Timing};

pub struct Elector {
    api: Api<Lease>,
    name: String,
    fence: Arc<Fence>,
}

impl Elector {
    /// Replica `identity` (its pod name) contending for Lease `namespace/name`.
    pub fn new(client: Client, namespace: &str, name: String, identity: String) -> Elector {
        Elector {
            api: Api::namespaced(client, namespace),
            name,
            fence: Fence::new(identity, Timing::OPERATOR),
        }
    }

    /// Takes the Lease and keeps it; returns when leadership is lost.
    pub async fn hold(&self) -> Lost {
        kith_lease::hold(self.api.clone(), &self.name, self.fence.clone()).await
    }

    /// Returns once this replica leads (while [`Elector::hold`] runs).
    pub async fn until_leader(&self) {
        self.fence.until_held().await
    }

    /// Gives the Lease up (best effort).
    pub async fn release(&self) {
        kith_lease::release(self.api.clone(), &self.name, &self.fence).await
    }
}
