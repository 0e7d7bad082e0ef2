//! One reconcile of one pipeline: read → validate → build → apply → status.

use super::stability::{self, Stability};
use super::upgrade::{self, Gate};
use super::{apply, cleanup, events, Context, FIELD_MANAGER, FINALIZER};
use super::{models, release, rollback, scaling, snapshots};
use crate::build::{self, selector_string, Names};
use crate::error::Error;
use crate::metrics;
use crate::status::{self, Outcome};
use crate::validate::{validate_with_model, ValidPipeline};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kith_api::crd::{ProfilePipeline, ProfilePipelineStatus, UpgradeStatus};
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
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
    let model = match models::read(ctx, &pipeline.spec, &names.namespace).await? {
        Ok(model) => model,
        // Its creation does not wake the operator: look again in a while.
        Err(message) => {
            let followup = Followup {
                requeue: Some(Duration::from_secs(30)),
                ..Followup::default()
            };
            return finish(pipeline, ctx, Outcome::Invalid { message }, followup).await;
        }
    };
    let valid = match validate_with_model(&pipeline.spec, model.as_deref()) {
        Ok(valid) => valid,
        // Running runners are left exactly as they are: a bad edit must not
        // take a working pipeline down.
        Err(invalid) => {
            let outcome = Outcome::Invalid {
                message: invalid.to_string(),
            };
            return finish(pipeline, ctx, outcome, Followup::default()).await;
        }
    };
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let live = deployments
        .get_opt(&names.runner)
        .await
        .map_err(Error::kube("get", "Deployment"))?;
    let status = pipeline.status.clone().unwrap_or_default();
    if status.rolled_back_from.as_deref() == Some(valid.spec_hash.as_str()) {
        return keep_rolled_back(pipeline, ctx, &names, &valid.spec_hash, live).await;
    }
    match upgrade::gate(pipeline, ctx, &names, live.as_ref(), &valid.spec_hash).await? {
        // The old runners stay exactly as they are meanwhile.
        Gate::Hold {
            reason,
            message,
            failed,
        } => {
            let outcome = Outcome::Held {
                deployment: live.map(Box::new),
                reason,
                message,
                failed,
            };
            finish(pipeline, ctx, outcome, Followup::default()).await
        }
        Gate::Proceed { restore_point } => {
            let plan = Plan::continuing(pipeline, &valid.spec_hash);
            let hash = valid.spec_hash.clone();
            let applied = apply_objects(pipeline, ctx, &names, valid, live, &plan).await?;
            let mut followup = applied.followup(plan);
            let mut outcome = applied.outcome;
            judge_stability(
                pipeline,
                ctx,
                &hash,
                restore_point,
                &mut outcome,
                &mut followup,
            )
            .await;
            finish(pipeline, ctx, outcome, followup).await
        }
    }
}

/// The spec rolled back from is still the spec: the last stable one keeps
/// running (rescales, snapshots and drift correction included) until the
/// spec changes.
async fn keep_rolled_back(
    pipeline: &ProfilePipeline,
    ctx: &Context,
    names: &Names,
    bad: &str,
    live: Option<Deployment>,
) -> Result<Action, Error> {
    let invalid = |message| {
        finish(
            pipeline,
            ctx,
            Outcome::Invalid { message },
            Followup::default(),
        )
    };
    let stable = match rollback::stable_pipeline(pipeline) {
        Ok(stable) => stable,
        Err(message) => return invalid(message).await,
    };
    let model = models::read(ctx, &stable.spec, &names.namespace).await?;
    let checked = model.and_then(|model| {
        validate_with_model(&stable.spec, model.as_deref())
            .map_err(|e| format!("the last stable spec: {e}"))
    });
    let stable_valid = match checked {
        Ok(valid) => valid,
        Err(message) => return invalid(message).await,
    };
    let plan = Plan::current(pipeline);
    let applied = apply_objects(&stable, ctx, names, stable_valid, live, &plan).await?;
    let mut followup = applied.followup(plan);
    followup.rolled_back = Some(bad.to_string());
    let mut outcome = applied.outcome;
    if let Outcome::Applied { degraded, .. } = &mut outcome {
        degraded.get_or_insert(("RolledBack", rollback::message(pipeline, bad)));
    }
    finish(pipeline, ctx, outcome, followup).await
}

/// Where the runners of a spec keep their state: the lineage, and the
/// savepoint it starts from while it has no checkpoint.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    lineage: Option<String>,
    start: Option<String>,
}

impl Plan {
    /// For spec `new_hash` reached by the usual path: a new lineage for a
    /// stateless upgrade, else the current one with its starting point.
    fn continuing(pipeline: &ProfilePipeline, new_hash: &str) -> Plan {
        let lineage = upgrade::lineage(pipeline, new_hash);
        let current = Plan::current(pipeline);
        if lineage == current.lineage {
            current
        } else {
            Plan {
                lineage,
                start: None,
            }
        }
    }

    fn current(pipeline: &ProfilePipeline) -> Plan {
        let status = pipeline.status.as_ref();
        Plan {
            lineage: status.and_then(|s| s.state_lineage.clone()),
            start: status.and_then(|s| s.lineage_start.clone()),
        }
    }
}

/// What a reconcile writes into the status besides what `status::compute`
/// derives from its outcome.
#[derive(Default)]
struct Followup {
    savepoint_nonce: Option<i64>,
    next_snapshot: Option<Duration>,
    plan: Option<Plan>,
    /// The upgrade still being judged (`None`: none).
    upgrade: Option<UpgradeStatus>,
    /// The spec just proven stable, as applied.
    became_stable: Option<(String, serde_json::Value)>,
    /// `rolledBackFrom`: the spec hash rolled back from, while the spec is
    /// still that one (`None`: no rollback stands).
    rolled_back: Option<String>,
    requeue: Option<Duration>,
}

/// Judges whether the spec just applied has proven itself, and rolls it
/// back when it did not in time (see `stability` and `rollback`).
async fn judge_stability(
    pipeline: &ProfilePipeline,
    ctx: &Context,
    hash: &str,
    restore_point: Option<String>,
    outcome: &mut Outcome,
    followup: &mut Followup,
) {
    let Outcome::Applied {
        deployment,
        degraded,
        ..
    } = outcome
    else {
        return;
    };
    let now = Timestamp::now();
    let status = pipeline.status.clone().unwrap_or_default();
    let upgrade = match status.upgrade.clone() {
        Some(upgrade) if upgrade.spec_hash == hash => upgrade,
        _ => UpgradeStatus {
            spec_hash: hash.to_string(),
            started_at: now.to_string(),
            from_spec_hash: status.last_stable_spec_hash.clone(),
            from_lineage: status.state_lineage.clone(),
            restore_point,
        },
    };
    let policy = &pipeline.spec.upgrade;
    match stability::judge(
        pipeline,
        hash,
        &upgrade,
        status::rolled_out(deployment),
        now,
    ) {
        Stability::Settled => {}
        Stability::Stable => {
            let spec = serde_json::to_value(&pipeline.spec).unwrap_or_default();
            followup.became_stable = Some((hash.to_string(), spec));
            if upgrade.from_spec_hash.is_some() {
                events::publish(
                    ctx,
                    pipeline,
                    EventType::Normal,
                    "UpgradeStable",
                    format!(
                        "spec {hash} is stable ({} checkpoints completed)",
                        policy.stable_after_checkpoints
                    ),
                )
                .await;
            }
        }
        Stability::Pending { left, .. } => {
            // Runner reports do not wake the operator: look again soon.
            followup.requeue = Some(left.clamp(Duration::from_secs(1), Duration::from_secs(3)));
            followup.upgrade = Some(upgrade);
        }
        Stability::Paused => {
            // The timeout counts from the resume.
            followup.upgrade = Some(UpgradeStatus {
                started_at: now.to_string(),
                ..upgrade
            });
        }
        Stability::TimedOut { progress, waited } => {
            let can_roll_back = policy.rollback
                && status.last_stable_spec.is_some()
                && status.last_stable_spec_hash.as_deref() != Some(hash);
            if can_roll_back {
                let to = rollback::plan_for(&upgrade, hash);
                let stable = status.last_stable_spec_hash.clone().unwrap_or_default();
                events::publish(
                    ctx,
                    pipeline,
                    EventType::Warning,
                    "RolledBack",
                    format!(
                        "spec {hash} was not stable after {}s ({progress}); rolling back to spec {stable}{}",
                        waited.as_secs(),
                        to.start
                            .as_deref()
                            .map(|s| format!(" from savepoint {s}"))
                            .unwrap_or_else(|| " from its latest checkpoint".into())
                    ),
                )
                .await;
                followup.rolled_back = Some(hash.to_string());
                followup.plan = Some(Plan {
                    lineage: to.lineage,
                    start: to.start,
                });
                followup.requeue = Some(Duration::from_secs(1));
                *degraded = Some(("RolledBack", rollback::message(pipeline, hash)));
            } else {
                let why = if !policy.rollback {
                    "spec.upgrade.rollback is off"
                } else {
                    "there is no earlier stable spec to roll back to"
                };
                *degraded = Some((
                    "NotStable",
                    format!(
                        "spec {hash} is not stable after {}s ({progress}); {why}",
                        waited.as_secs()
                    ),
                ));
                followup.upgrade = Some(upgrade);
                followup.requeue = Some(Duration::from_secs(30));
            }
        }
    }
}

/// Computes and writes the status, and says when to look again.
async fn finish(
    pipeline: &ProfilePipeline,
    ctx: &Context,
    outcome: Outcome,
    followup: Followup,
) -> Result<Action, Error> {
    // The operator's snapshots are owned, so their progress wakes it; the
    // requeue only covers a missed event while an upgrade waits.
    let next = match &outcome {
        Outcome::Held { failed: false, .. } => Duration::from_secs(10),
        _ => followup
            .next_snapshot
            .map_or(RESYNC, |due| due.clamp(Duration::from_secs(1), RESYNC)),
    };
    let next = followup.requeue.map_or(next, |soon| soon.min(next));
    let applied = matches!(outcome, Outcome::Applied { .. });
    let mut status = status::compute(pipeline, &outcome, Time(Timestamp::now()));
    if followup.savepoint_nonce.is_some() {
        status.observed_savepoint_nonce = followup.savepoint_nonce;
    }
    if applied {
        status.upgrade = followup.upgrade;
        if let Some(plan) = followup.plan {
            status.state_lineage = plan.lineage;
            status.lineage_start = plan.start;
        }
        if let Some((hash, spec)) = followup.became_stable {
            status.last_stable_spec_hash = Some(hash);
            status.last_stable_spec = Some(spec);
        }
        status.rolled_back_from = followup.rolled_back;
    }
    events::transitions(ctx, pipeline, &status).await;
    write_status(ctx, pipeline, &status).await?;
    ctx.metrics
        .set_status(&key(pipeline), Some(metrics::Seen::of(&status)));
    Ok(Action::requeue(next))
}

/// What applying a pipeline's objects came to.
struct Applied {
    outcome: Outcome,
    savepoint_nonce: Option<i64>,
    next_snapshot: Option<Duration>,
}

impl Applied {
    fn followup(&self, plan: Plan) -> Followup {
        Followup {
            savepoint_nonce: self.savepoint_nonce,
            next_snapshot: self.next_snapshot,
            plan: Some(plan),
            ..Followup::default()
        }
    }
}

/// Applies the objects of a valid pipeline (in the plan's lineage), then
/// requests the snapshots it asks for and prunes the old ones.
async fn apply_objects(
    pipeline: &ProfilePipeline,
    ctx: &Context,
    names: &Names,
    valid: ValidPipeline,
    live: Option<Deployment>,
    plan: &Plan,
) -> Result<Applied, Error> {
    let current = pipeline
        .status
        .as_ref()
        .and_then(|s| s.state_lineage.as_ref());
    if plan.lineage.as_ref() != current && plan.start.is_none() {
        events::publish(
            ctx,
            pipeline,
            EventType::Normal,
            "StatelessUpgrade",
            format!(
                "the runners of spec {} start with empty state, checkpointing under {}",
                valid.spec_hash,
                plan.lineage.as_deref().unwrap_or("")
            ),
        )
        .await;
    }
    let valid = valid
        .with_lineage(plan.lineage.as_deref())
        .starting_from(plan.start.clone());
    let scale = scaling::decide(pipeline, autoscaler(ctx, names).as_ref());
    let desired = build::desired(pipeline, &valid, scale.replicas);
    let applied = apply::apply_all(&ctx.client, &desired).await?;
    events::deployment_changes(ctx, pipeline, live.as_ref(), &applied, &valid.spec_hash).await;
    let savepoint_nonce = request_savepoint(pipeline, ctx, names).await?;
    let ready = status::ready_runners(&applied) > 0;
    let next_snapshot = snapshots::schedule_and_prune(pipeline, ctx, names, ready).await?;
    release::ensure(pipeline, ctx, names, &valid, scale.replicas).await?;
    Ok(Applied {
        outcome: Outcome::Applied {
            deployment: Box::new(applied),
            spec_hash: valid.spec_hash,
            selector: selector_string(names),
            lineage: plan.lineage.clone(),
            degraded: scale
                .refused
                .map(|message| ("ParallelismUnsupported", message)),
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
