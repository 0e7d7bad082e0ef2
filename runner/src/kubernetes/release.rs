//! `kith-runner release-snapshots`: one pass of [`super::retention`] for a
//! pipeline that has no runner (suspended). The operator starts it as a Job
//! of the runner's image, ServiceAccount and volumes, so it holds the same
//! storage credentials and the same RBAC as the runners, and nothing more.
//!
//! It takes the pipeline's Lease first, as a runner does before it touches
//! storage: a runner still stopping (its final checkpoint) finishes first,
//! and two passes never run at once. It exits non-zero while a pruned
//! snapshot is left, so the Job's retries try again.

use super::lease::{self, Fence};
use super::retention::{self, Released};
use super::Identity;
use kith_api::crd::ProfileSnapshot;
use kube::api::ListParams;
use kube::{Api, Client};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("release-snapshots runs in a cluster: KITH_NAMESPACE and KITH_PIPELINE must be set (the operator's Job sets them)")]
    NotInCluster,
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("no Kubernetes client configuration: {0}")]
    Client(#[source] kube::Error),
    #[error("the pipeline's Lease is held by {holder} after {waited_s} s; a runner still runs")]
    LeaseHeld { holder: String, waited_s: u64 },
    #[error("the pipeline's Lease was lost during the pass")]
    LeaseLost,
    #[error("cannot list ProfileSnapshots: {0}")]
    List(#[source] kube::Error),
}

/// Releases every pruned snapshot of `identity.pipeline` whose files are
/// under `savepoints`, waiting up to `wait` for the Lease.
pub fn release_snapshots(
    identity: Option<Identity>,
    savepoints: &str,
    wait: Duration,
) -> Result<Released, ReleaseError> {
    let identity = identity.ok_or(ReleaseError::NotInCluster)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ReleaseError::Runtime)?;
    runtime.block_on(async {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = Client::try_default().await.map_err(ReleaseError::Client)?;
        let fence = lease::fence_for(&identity.pod);
        let lease_name = identity.lease_name();
        let outcome = tokio::select! {
            outcome = pass(&client, &identity, savepoints, &fence, wait) => outcome,
            _ = lease::hold(client.clone(), &identity.namespace, &lease_name, fence.clone()) => {
                Err(ReleaseError::LeaseLost)
            }
        };
        lease::release(client, &identity.namespace, &lease_name, &fence).await;
        outcome
    })
}

async fn pass(
    client: &Client,
    identity: &Identity,
    savepoints: &str,
    fence: &Fence,
    wait: Duration,
) -> Result<Released, ReleaseError> {
    let started = Instant::now();
    while !fence.held() {
        if fence.lost() || started.elapsed() >= wait {
            return Err(ReleaseError::LeaseHeld {
                holder: fence.waiting_for().unwrap_or_else(|| "nobody yet".into()),
                waited_s: started.elapsed().as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let api: Api<ProfileSnapshot> = Api::namespaced(client.clone(), &identity.namespace);
    let snapshots: Vec<Arc<ProfileSnapshot>> = api
        .list(&ListParams::default())
        .await
        .map_err(ReleaseError::List)?
        .items
        .into_iter()
        .map(Arc::new)
        .collect();
    if !fence.held() {
        return Err(ReleaseError::LeaseLost);
    }
    let outcome =
        retention::release_deleted(&api, &snapshots, &identity.pipeline, savepoints).await;
    tracing::info!(
        released = outcome.released,
        left = outcome.left,
        "released the files of pruned snapshots"
    );
    Ok(outcome)
}
