//! One reconcile of one pipeline: read → validate → build → apply → status.

use super::upgrade::{self, Gate};
use super::{apply, cleanup, events, Context, FIELD_MANAGER, FINALIZER};
use super::{scaling, snapshots};
use crate::build::{self, selector_string, Names};
use crate::error::Error;
use crate::status::{self, Outcome};
use crate::validate::{validate, ValidPipeline};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kith_api::crd::{ProfilePipeline, ProfilePipelineStatus};
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Error as FinalizerError, Event};
use kube::{Api, Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;

/// Every pipeline is looked at this often even when nothing changes.
const RESYNC: Duration = Duration::from_secs(300);

pub async fn reconcile(pipeline: Arc<ProfilePipeline>, ctx: &Context) -> Result<Action, Error> {
    let namespace = pipeline
        .namespace()
        .ok_or(Error::MissingMetadata("namespace"))?;
    let api: Api<ProfilePipeline> = Api::namespaced(ctx.client.clone(), &namespace);
    match finalizer(&api, FINALIZER, pipeline, |event| async move {
        match event {
            Event::Apply(pipeline) => apply_pipeline(&pipeline, ctx).await,
            Event::Cleanup(pipeline) => cleanup::cleanup(&pipeline, ctx).await,
        }
    })
    .await
    {
        // A reconcile from a cache that has not yet seen the finalizer go:
        // the pipeline is already gone, and so is everything to clean up.
        Err(FinalizerError::RemoveFinalizer(kube::Error::Api(s))) if s.code == 404 => {
            Ok(Action::await_change())
        }
        other => other.map_err(|e| Error::Finalizer(Box::new(e))),
    }
}

async fn apply_pipeline(pipeline: &ProfilePipeline, ctx: &Context) -> Result<Action, Error> {
    let names = Names::of(pipeline);
    let mut savepoint_nonce = None;
    let mut next_snapshot = None;
    let outcome = match validate(&pipeline.spec) {
        // Running runners are left exactly as they are: a bad edit must not
        // take a working pipeline down.
        Err(invalid) => Outcome::Invalid {
            message: invalid.to_string(),
        },
        Ok(valid) => {
            let deployments: Api<Deployment> =
                Api::namespaced(ctx.client.clone(), &names.namespace);
            let live = deployments
                .get_opt(&names.runner)
                .await
                .map_err(Error::kube("get", "Deployment"))?;
            let gate =
                upgrade::savepoint_gate(pipeline, ctx, &names, live.as_ref(), &valid.spec_hash)
                    .await?;
            match gate {
                // The old runners stay exactly as they are meanwhile.
                Gate::Hold {
                    reason,
                    message,
                    failed,
                } => Outcome::Held {
                    deployment: live.map(Box::new),
                    reason,
                    message,
                    failed,
                },
                Gate::Proceed => {
                    let applied = apply_objects(pipeline, ctx, &names, valid, live).await?;
                    savepoint_nonce = applied.savepoint_nonce;
                    next_snapshot = applied.next_snapshot;
                    applied.outcome
                }
            }
        }
    };
    // The operator's snapshots are owned, so their progress wakes it; the
    // requeue only covers a missed event while an upgrade waits.
    let next = match &outcome {
        Outcome::Held { failed: false, .. } => Duration::from_secs(10),
        _ => next_snapshot.map_or(RESYNC, |due| due.clamp(Duration::from_secs(1), RESYNC)),
    };
    let mut status = status::compute(
        pipeline,
        &outcome,
        Time(k8s_openapi::jiff::Timestamp::now()),
    );
    if savepoint_nonce.is_some() {
        status.observed_savepoint_nonce = savepoint_nonce;
    }
    events::transitions(ctx, pipeline, &status).await;
    write_status(ctx, pipeline, &status).await?;
    ctx.metrics
        .set_phase(&key(pipeline), status.phase.as_deref());
    Ok(Action::requeue(next))
}

/// What applying a pipeline's objects came to.
struct Applied {
    outcome: Outcome,
    savepoint_nonce: Option<i64>,
    next_snapshot: Option<Duration>,
}

/// Applies the objects of a valid pipeline (in its state lineage), then
/// requests the snapshots it asks for and prunes the old ones.
async fn apply_objects(
    pipeline: &ProfilePipeline,
    ctx: &Context,
    names: &Names,
    valid: ValidPipeline,
    live: Option<Deployment>,
) -> Result<Applied, Error> {
    let lineage = upgrade::lineage(pipeline, &valid.spec_hash);
    let current = pipeline
        .status
        .as_ref()
        .and_then(|s| s.state_lineage.as_ref());
    if lineage.as_ref() != current {
        events::publish(
            ctx,
            pipeline,
            kube::runtime::events::EventType::Normal,
            "StatelessUpgrade",
            format!(
                "the runners of spec {} start with empty state, checkpointing under {}",
                valid.spec_hash,
                lineage.as_deref().unwrap_or("")
            ),
        )
        .await;
    }
    let valid = valid.with_lineage(lineage.as_deref());
    let scale = scaling::decide(pipeline, autoscaler(ctx, names).as_ref());
    let desired = build::desired(pipeline, &valid, scale.replicas);
    let applied = apply::apply_all(&ctx.client, &desired).await?;
    events::deployment_changes(ctx, pipeline, live.as_ref(), &applied, &valid.spec_hash).await;
    let savepoint_nonce = request_savepoint(pipeline, ctx, names).await?;
    let ready = applied
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
        > 0;
    let next_snapshot = snapshots::schedule_and_prune(pipeline, ctx, names, ready).await?;
    Ok(Applied {
        outcome: Outcome::Applied {
            deployment: Box::new(applied),
            spec_hash: valid.spec_hash,
            selector: selector_string(names),
            lineage,
            parallelism_refused: scale.refused,
        },
        savepoint_nonce,
        next_snapshot,
    })
}

/// The autoscaler targeting the runner Deployment, if any (the one that may
/// set the most replicas, should there be several).
fn autoscaler(ctx: &Context, names: &Names) -> Option<scaling::DeploymentAutoscaler> {
    ctx.autoscalers
        .state()
        .iter()
        .filter(|hpa| {
            let target = &hpa.spec.scale_target_ref;
            hpa.namespace().as_deref() == Some(names.namespace.as_str())
                && target.kind == "Deployment"
                && target.name == names.runner
                && target
                    .api_version
                    .as_deref()
                    .is_none_or(|v| v.starts_with("apps/"))
        })
        .map(|hpa| scaling::DeploymentAutoscaler {
            name: hpa.name_any(),
            max_replicas: hpa.spec.max_replicas,
        })
        .max_by_key(|a| a.max_replicas)
}

/// A changed `spec.savepointNonce` asks for a savepoint: a `ProfileSnapshot`
/// the runners execute. Returns the nonce acted on, if any.
async fn request_savepoint(
    pipeline: &ProfilePipeline,
    ctx: &Context,
    names: &Names,
) -> Result<Option<i64>, Error> {
    let Some(nonce) = pipeline.spec.savepoint_nonce else {
        return Ok(None);
    };
    let observed = pipeline
        .status
        .as_ref()
        .and_then(|s| s.observed_savepoint_nonce);
    if observed == Some(nonce) {
        return Ok(None);
    }
    let name = format!("{}-savepoint-{nonce}", names.pipeline);
    snapshots::request(
        ctx,
        pipeline,
        names,
        &name,
        "requested",
        "SavepointRequested",
        format!("created ProfileSnapshot {name}"),
    )
    .await?;
    Ok(Some(nonce))
}

async fn write_status(
    ctx: &Context,
    pipeline: &ProfilePipeline,
    status: &ProfilePipelineStatus,
) -> Result<(), Error> {
    let api: Api<ProfilePipeline> = Api::namespaced(
        ctx.client.clone(),
        &pipeline.namespace().unwrap_or_default(),
    );
    // Server-side apply: the operator owns these fields; `runtime` belongs to
    // the runners' field manager and is not in this patch.
    let patch = serde_json::json!({
        "apiVersion": ProfilePipeline::api_version(&()),
        "kind": ProfilePipeline::kind(&()),
        "status": status,
    });
    api.patch_status(
        &pipeline.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::kube("patch status of", "ProfilePipeline"))?;
    Ok(())
}

/// `namespace/name`.
pub fn key(pipeline: &ProfilePipeline) -> String {
    format!(
        "{}/{}",
        pipeline.namespace().unwrap_or_default(),
        pipeline.name_any()
    )
}
