//! Kubernetes Events for what a person following a pipeline wants to know:
//! runners deployed, upgraded, rescaled, drift undone, Ready reached or lost,
//! a spec refused. Best effort: a failed event never fails a reconcile.

use super::Context;
use k8s_openapi::api::apps::v1::Deployment;
use kith_api::crd::condition::{DEGRADED, READY};
use kith_api::crd::{ProfilePipeline, ProfilePipelineStatus};
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

/// Events for what applying the runner Deployment changed: `live` is the
/// Deployment before, `applied` after.
pub async fn deployment_changes(
    ctx: &Context,
    pipeline: &ProfilePipeline,
    live: Option<&Deployment>,
    applied: &Deployment,
    spec_hash: &str,
) {
    let deployed_before = pipeline
        .status
        .as_ref()
        .and_then(|s| s.spec_hash.as_deref());
    let replicas = |d: &Deployment| d.spec.replicas.unwrap_or(1);
    let name = applied.name_any();
    let (reason, note) = match live {
        None if deployed_before.is_some() => (
            "DriftCorrected",
            format!("runner Deployment {name} was deleted; created it again"),
        ),
        None => (
            "Deployed",
            format!(
                "created runner Deployment {name} with {} replicas",
                replicas(applied)
            ),
        ),
        Some(live) if live.metadata.generation == applied.metadata.generation => return,
        Some(_) if deployed_before.is_some_and(|h| h != spec_hash) => (
            "Upgrading",
            format!("rolling the runners onto spec {spec_hash}"),
        ),
        Some(live) if replicas(live) != replicas(applied) => (
            "Scaled",
            format!("runners: {} -> {}", replicas(live), replicas(applied)),
        ),
        Some(_) => (
            "DriftCorrected",
            format!("runner Deployment {name} was changed outside the operator; restored it"),
        ),
    };
    publish(ctx, pipeline, EventType::Normal, reason, note).await;
}

/// Events for conditions that changed between the pipeline's status and `new`.
pub async fn transitions(ctx: &Context, pipeline: &ProfilePipeline, new: &ProfilePipelineStatus) {
    let old = pipeline.status.clone().unwrap_or_default();
    let find = |s: &ProfilePipelineStatus, kind: &str| {
        s.conditions.iter().find(|c| c.type_ == kind).cloned()
    };
    if let Some(degraded) = find(new, DEGRADED) {
        let before = find(&old, DEGRADED);
        let same = before.as_ref().is_some_and(|b| {
            b.status == degraded.status
                && b.reason == degraded.reason
                && b.message == degraded.message
        });
        if !same && degraded.status == "True" {
            publish(
                ctx,
                pipeline,
                EventType::Warning,
                &degraded.reason,
                degraded.message,
            )
            .await;
        } else if !same && before.is_some_and(|b| b.status == "True") {
            publish(
                ctx,
                pipeline,
                EventType::Normal,
                "Recovered",
                "no longer degraded".into(),
            )
            .await;
        }
    }
    if let Some(ready) = find(new, READY) {
        let was_ready = find(&old, READY).is_some_and(|c| c.status == "True");
        if ready.status == "True" && !was_ready {
            publish(ctx, pipeline, EventType::Normal, "Ready", ready.message).await;
        } else if ready.status != "True" && was_ready && ready.reason != "InvalidSpec" {
            publish(ctx, pipeline, EventType::Normal, "NotReady", ready.message).await;
        }
    }
}

pub async fn publish(
    ctx: &Context,
    pipeline: &ProfilePipeline,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx
        .recorder
        .publish(&event, &pipeline.object_ref(&()))
        .await
    {
        tracing::warn!(pipeline = %pipeline.name_any(), error = %e, reason, "could not record an event");
    }
}
