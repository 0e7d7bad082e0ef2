//! The runner's side of docs/design.md §6: a runner started by the operator (it finds
//! `KITH_NAMESPACE`, `KITH_PIPELINE` and `KITH_POD_NAME` in its environment)
//! talks to the Kubernetes API itself, so the operator never needs a network
//! path to runner pods:
//!
//! - `snapshots`: it watches the `ProfileSnapshot` objects of its pipeline,
//!   takes each pending one as a savepoint through the engine (the same
//!   request the admin port's `POST /v1/savepoints` sends) and reports the
//!   outcome in the snapshot's status and the pipeline's `status.lastSnapshot`;
//! - `runtime`: every few seconds it reports readiness and progress into
//!   `status.runtime` of its `ProfilePipeline`;
//! - `lease`: it holds its pipeline's coordination Lease, without which it
//!   neither restores, checkpoints, prunes nor takes snapshots;
//! - `retention`: it deletes the files of the pipeline's pruned snapshots,
//!   and `release` does the same once, as a Job, for a suspended pipeline.
//!
//! They write with their own server-side-apply field manager (`kith-runner`),
//! so they never take fields from the operator nor the operator from them.
//! The agent runs on a thread of its own with its own small async runtime; an
//! API server that is away is retried and never stops the pipeline.

pub mod lease;
pub mod release;
pub mod retention;
mod runtime;
mod snapshots;

use crate::admin::{AdminRequest, Health, Metrics};
use kith_api::crd::ProfilePipeline;
use kube::api::{Patch, PatchParams};
use kube::Resource;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::watch;

/// The field manager of everything a runner writes.
pub const FIELD_MANAGER: &str = "kith-runner";

/// Server-side applies `status` (the fields of it this runner owns) to its
/// pipeline, as field manager [`FIELD_MANAGER`].
async fn apply_pipeline_status(
    client: &kube::Client,
    identity: &Identity,
    status: serde_json::Value,
) -> Result<(), kube::Error> {
    let api: kube::Api<ProfilePipeline> =
        kube::Api::namespaced(client.clone(), &identity.namespace);
    let patch = serde_json::json!({
        "apiVersion": ProfilePipeline::api_version(&()),
        "kind": ProfilePipeline::kind(&()),
        "status": status,
    });
    api.patch_status(
        &identity.pipeline,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(|_| ())
}

/// Where a runner stands in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub namespace: String,
    pub pipeline: String,
    pub pod: String,
    /// The operator's hash of the spec this runner runs (`KITH_SPEC_HASH`),
    /// reported back so that the operator knows which spec completed the
    /// checkpoints it counts towards an upgrade's stability.
    pub spec_hash: Option<String>,
}

impl Identity {
    /// The Lease every runner of the pipeline contends for (the runners'
    /// Role grants exactly this name).
    pub fn lease_name(&self) -> String {
        format!("{}-runner", self.pipeline)
    }

    /// From the environment the operator's Deployment sets; `None` outside
    /// a cluster (or when run by hand).
    pub fn from_env() -> Option<Identity> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Some(Identity {
            namespace: var("KITH_NAMESPACE")?,
            pipeline: var("KITH_PIPELINE")?,
            pod: var("KITH_POD_NAME").unwrap_or_else(|| "kith-runner".into()),
            spec_hash: var("KITH_SPEC_HASH"),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot start the Kubernetes agent's runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// What the agent shares with the engine.
#[derive(Clone)]
pub struct Shared {
    pub identity: Identity,
    /// Whether this process holds the pipeline's Lease (see `lease`).
    pub fence: Arc<lease::Fence>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub requests: SyncSender<AdminRequest>,
    /// Where this pipeline's savepoints are kept: the only place whose files
    /// the runner deletes for a pruned snapshot (`retention`).
    pub savepoints: String,
}

/// The running agent; dropping it stops it.
pub struct Agent {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Agent {
    pub fn start(shared: Shared) -> Result<Agent, AgentError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(AgentError::Runtime)?;
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("kith-kubernetes".into())
            .spawn(move || runtime.block_on(run(shared, stopped)))
            .map_err(AgentError::Runtime)?;
        Ok(Agent {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn run(shared: Shared, mut stopped: watch::Receiver<bool>) {
    // One TLS provider for the process (object_store's and kube's builds
    // both bring rustls).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = loop {
        match kube::Client::try_default().await {
            Ok(client) => break client,
            Err(e) => {
                tracing::warn!(error = %e, "no Kubernetes client configuration; retrying in 10 s");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
                    _ = stopped.changed() => return,
                }
            }
        }
    };
    tracing::info!(
        namespace = %shared.identity.namespace,
        pipeline = %shared.identity.pipeline,
        "reporting to the Kubernetes API and taking ProfileSnapshots"
    );
    let (namespace, lease) = (
        shared.identity.namespace.clone(),
        shared.identity.lease_name(),
    );
    let fence = shared.fence.clone();
    tokio::select! {
        _ = snapshots::run(client.clone(), shared.clone()) => {}
        _ = runtime::run(client.clone(), shared) => {}
        _ = lease::hold(client.clone(), &namespace, &lease, fence.clone()) => {}
        _ = stopped.changed() => {}
    }
    lease::release(client, &namespace, &lease, &fence).await;
}
