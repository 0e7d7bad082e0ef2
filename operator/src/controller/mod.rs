//! The ProfilePipeline controller: one per watched namespace (or one for the
//! whole cluster), each reconciling its pipelines in small steps:
//! read → validate → build (pure) → apply (server-side apply) → status.
//!
//! A pipeline is reconciled when its spec, finalizers or deletion change (not
//! on status writes: the runners report there every few seconds), when one of
//! the objects it owns changes (drift is undone at once; a requested
//! snapshot progresses), and every five minutes regardless.

mod apply;
mod cleanup;
mod events;
mod models;
mod reconcile;
mod release;
mod rollback;
mod scaling;
mod snapshots;
mod stability;
mod upgrade;

use crate::build::MANAGED_BY_SELECTOR;
use crate::error::Error;
use crate::metrics::Metrics;
use futures::{Future, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kith_api::crd::{ProfilePipeline, ProfileSnapshot};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The server-side-apply field manager of everything the operator writes.
pub const FIELD_MANAGER: &str = "kith-operator";
/// Removed once the operator has cleaned up after a deleted pipeline.
pub const FINALIZER: &str = "kith.dev/cleanup";

/// What every reconcile of one controller shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// HorizontalPodAutoscalers of the controller's scope: one that targets
    /// a runner Deployment and may add runners is refused (`scaling`).
    pub autoscalers: Store<HorizontalPodAutoscaler>,
    /// Consecutive failed reconciles per pipeline (`namespace/name`): the
    /// retry backs off per object, so one failing pipeline neither spins
    /// nor slows the others.
    pub failures: std::sync::Mutex<std::collections::HashMap<String, u32>>,
}

/// The retry after `failures` consecutive failures: 1 s doubling to 5 min.
pub fn backoff(failures: u32) -> Duration {
    let seconds = 1u64 << failures.saturating_sub(1).min(9);
    Duration::from_secs(seconds.min(300))
}

/// Runs a controller for each of `namespaces` (all namespaces when empty)
/// until `shutdown` completes; in-flight reconciles finish first.
pub async fn run(
    client: Client,
    namespaces: &[String],
    reporter: Reporter,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) {
    let scopes: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().cloned().map(Some).collect()
    };
    let controllers = scopes.into_iter().map(|scope| {
        run_scope(
            client.clone(),
            scope,
            reporter.clone(),
            metrics.clone(),
            shutdown.clone(),
        )
    });
    futures::future::join_all(controllers).await;
}

async fn run_scope(
    client: Client,
    scope: Option<String>,
    reporter: Reporter,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (autoscalers, writer) = reflector::store();
    let autoscaler_watch = watcher(
        api::<HorizontalPodAutoscaler>(&client, &scope),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(writer)
    .for_each(|_| std::future::ready(()));
    tokio::spawn(autoscaler_watch);

    let (pipelines, writer) = reflector::store();
    let triggers = watcher(
        api::<ProfilePipeline>(&client, &scope),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .reflect(writer)
    .applied_objects()
    .predicate_filter(spec_or_lifecycle, Default::default());
    let owned = watcher::Config::default().labels(MANAGED_BY_SELECTOR);
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client: client.clone(),
        metrics,
        autoscalers,
        failures: Default::default(),
    });
    tracing::info!(
        namespace = scope.as_deref().unwrap_or("(all)"),
        "watching ProfilePipelines"
    );
    Controller::for_stream(triggers, pipelines)
        .owns(api::<Deployment>(&client, &scope), owned.clone())
        .owns(api::<ConfigMap>(&client, &scope), owned.clone())
        .owns(api::<Service>(&client, &scope), owned.clone())
        .owns(api::<ServiceAccount>(&client, &scope), owned.clone())
        .owns(api::<Role>(&client, &scope), owned.clone())
        .owns(api::<RoleBinding>(&client, &scope), owned.clone())
        .owns(api::<PodDisruptionBudget>(&client, &scope), owned.clone())
        .owns(api::<NetworkPolicy>(&client, &scope), owned.clone())
        .owns(api::<ProfileSnapshot>(&client, &scope), owned.clone())
        .owns(api::<Job>(&client, &scope), owned)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|result| {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
            std::future::ready(())
        })
        .await;
}

fn api<K>(client: &Client, scope: &Option<String>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    match scope {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// What makes a pipeline worth reconciling: its spec (generation), its
/// finalizers, and the start of its deletion. Status writes are not.
fn spec_or_lifecycle(pipeline: &ProfilePipeline) -> Option<u64> {
    let mut h = DefaultHasher::new();
    pipeline.metadata.generation.hash(&mut h);
    pipeline.finalizers().hash(&mut h);
    pipeline.metadata.deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}

async fn reconcile(pipeline: Arc<ProfilePipeline>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile::reconcile(pipeline.clone(), &ctx).await;
    ctx.metrics
        .reconcile_seconds
        .observe(started.elapsed().as_secs_f64());
    let label = if result.is_ok() { "ok" } else { "error" };
    ctx.metrics.reconciles.with_label_values(&[label]).inc();
    if result.is_ok() {
        failures(&ctx).remove(&reconcile::key(&pipeline));
    }
    result
}

fn failures(ctx: &Context) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, u32>> {
    ctx.failures
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Failed reconciles are retried with a per-pipeline exponential backoff
/// (the controller's scheduler collapses repeats), and counted by reason.
fn error_policy(pipeline: Arc<ProfilePipeline>, error: &Error, ctx: Arc<Context>) -> Action {
    if let Some(retry) = error.waiting() {
        tracing::debug!(pipeline = %pipeline.name_any(), %error, "waiting");
        return Action::requeue(retry);
    }
    tracing::warn!(
        pipeline = %pipeline.name_any(),
        namespace = pipeline.namespace().as_deref().unwrap_or(""),
        error = %error,
        "reconcile failed; retrying"
    );
    ctx.metrics
        .errors
        .with_label_values(&[error.metric_reason().as_str()])
        .inc();
    let mut failures = failures(&ctx);
    let count = failures.entry(reconcile::key(&pipeline)).or_insert(0);
    *count = count.saturating_add(1);
    Action::requeue(backoff(*count))
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn the_retry_backs_off_exponentially_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(5), Duration::from_secs(16));
        assert_eq!(backoff(10), Duration::from_secs(300));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(300));
    }
}
