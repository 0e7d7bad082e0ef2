//! What happens when a pipeline is deleted, before its finalizer goes.
//!
//! Owner references let the garbage collector delete the runner objects, but
//! in no particular order and only where a garbage collector runs. The
//! operator deletes the Deployment first (runners stop and take their final
//! checkpoint while their pipeline file and permissions still exist), then the
//! rest. And it does what owner references cannot: snapshot requests still
//! pending for the pipeline (created by users, so not owned) are marked
//! Failed instead of waiting forever. Checkpoints and savepoints in object
//! storage are kept: deleting a pipeline never deletes its data.
//!
//! With `spec.deletion.savepoint: true`, a final savepoint comes first: a
//! `ProfileSnapshot` named `NAME-final-UID8` (the UID's first 8 characters) that the pipeline does not own
//! (so it stays when the pipeline goes, saying where the savepoint is). The
//! runners take it while they still run; the deletion waits for it. When no
//! runner is ready to take it (a suspended pipeline, a crash loop), its
//! latest checkpoint is the final state and the deletion goes on, with an
//! Event saying so. When it fails, the deletion waits: fix the cause, or set
//! `spec.deletion.savepoint: false` to delete without it.

use super::reconcile::key;
use super::{events, Context};
use crate::build::{self, Names};
use crate::error::Error;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::NamespaceResourceScope;
use kith_api::crd::{ProfilePipeline, ProfileSnapshot, SnapshotState};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;

pub async fn cleanup(pipeline: &ProfilePipeline, ctx: &Context) -> Result<Action, Error> {
    let names = Names::of(pipeline);
    let uid = pipeline.uid();
    let c = &ctx.client;
    if pipeline.spec.deletion.savepoint {
        final_savepoint(pipeline, ctx, &names).await?;
    }
    delete_owned::<Deployment>(c, &names, &names.runner, &uid).await?;
    delete_owned::<PodDisruptionBudget>(c, &names, &names.runner, &uid).await?;
    delete_owned::<NetworkPolicy>(c, &names, &names.runner, &uid).await?;
    delete_owned::<Service>(c, &names, &names.runner, &uid).await?;
    delete_owned::<RoleBinding>(c, &names, &names.runner, &uid).await?;
    delete_owned::<Role>(c, &names, &names.runner, &uid).await?;
    delete_owned::<ServiceAccount>(c, &names, &names.runner, &uid).await?;
    delete_owned::<ConfigMap>(c, &names, &names.config, &uid).await?;
    let snapshots: Api<ProfileSnapshot> = Api::namespaced(c.clone(), &names.namespace);
    let listed = snapshots
        .list(&ListParams::default())
        .await
        .map_err(Error::kube("list", "ProfileSnapshot"))?;
    let theirs: Vec<ProfileSnapshot> = listed
        .into_iter()
        .filter(|s| s.spec.pipeline == names.pipeline)
        .collect();
    // First: its patch is conditional on the resourceVersion just listed,
    // which failing a pending snapshot (an unconditional status patch) changes.
    keep_snapshot_files(&snapshots, &theirs).await?;
    let abandoned = fail_pending_snapshots(&snapshots, &theirs, &names).await?;
    let mut note = "deleted the runner objects; checkpoints and savepoints are kept".to_string();
    if abandoned > 0 {
        note.push_str(&format!("; {abandoned} pending snapshot(s) marked Failed"));
    }
    events::publish(ctx, pipeline, EventType::Normal, "Deleted", note).await;
    ctx.metrics.set_status(&key(pipeline), None);
    Ok(Action::await_change())
}

/// Takes the final savepoint, or says why the deletion must wait
/// ([`Error::Waiting`]); returns once there is one (or none can be taken).
async fn final_savepoint(
    pipeline: &ProfilePipeline,
    ctx: &Context,
    names: &Names,
) -> Result<(), Error> {
    let uid = pipeline.uid().unwrap_or_default();
    let name = format!(
        "{}-final-{}",
        names.pipeline,
        uid.get(..8).unwrap_or(uid.as_str())
    );
    let api: Api<ProfileSnapshot> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let existing = api
        .get_opt(&name)
        .await
        .map_err(Error::kube("get", "ProfileSnapshot"))?;
    let wait = |why: String, seconds: u64| Error::Waiting {
        why,
        retry: std::time::Duration::from_secs(seconds),
    };
    let Some(snapshot) = existing else {
        let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &names.namespace);
        let ready = deployments
            .get_opt(&names.runner)
            .await
            .map_err(Error::kube("get", "Deployment"))?
            .as_ref()
            .map_or(0, crate::status::ready_runners);
        if ready == 0 {
            events::publish(
                ctx,
                pipeline,
                EventType::Warning,
                "FinalSavepointSkipped",
                "no runner is ready to take the final savepoint; the latest checkpoint is the final state and is kept".into(),
            )
            .await;
            return Ok(());
        }
        let mut snapshot = build::snapshot(pipeline, names, &name, "final");
        // Not owned: it outlives the pipeline.
        snapshot.metadata.owner_references = None;
        match api.create(&PostParams::default(), &snapshot).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(Error::kube("create", "ProfileSnapshot")(e)),
        }
        events::publish(
            ctx,
            pipeline,
            EventType::Normal,
            "FinalSavepointRequested",
            format!("ProfileSnapshot {name} before the runners are deleted"),
        )
        .await;
        return Err(wait(format!("taking the final savepoint {name}"), 2));
    };
    let status = snapshot.status.unwrap_or_default();
    match status.state {
        SnapshotState::Completed => {
            events::publish(
                ctx,
                pipeline,
                EventType::Normal,
                "FinalSavepoint",
                format!(
                    "final savepoint {name} kept at {}",
                    status.path.as_deref().unwrap_or("?")
                ),
            )
            .await;
            Ok(())
        }
        SnapshotState::Failed => Err(wait(
            format!(
                "the final savepoint {name} failed ({}): delete it to try again, or set spec.deletion.savepoint: false to delete without it",
                status.error.as_deref().unwrap_or("no reason given")
            ),
            30,
        )),
        SnapshotState::Pending | SnapshotState::InProgress => {
            Err(wait(format!("taking the final savepoint {name}"), 2))
        }
    }
}

/// Deletes `name` if this pipeline owns it (an object of the same name that
/// someone else made is none of the operator's business).
async fn delete_owned<K>(
    client: &Client,
    names: &Names,
    name: &str,
    owner_uid: &Option<String>,
) -> Result<(), Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + k8s_openapi::Resource
        + Clone
        + DeserializeOwned
        + Debug,
{
    let kind = <K as k8s_openapi::Resource>::KIND;
    let api: Api<K> = Api::namespaced(client.clone(), &names.namespace);
    let Some(object) = api.get_opt(name).await.map_err(Error::kube("get", kind))? else {
        return Ok(());
    };
    let owned = object
        .owner_references()
        .iter()
        .any(|r| Some(&r.uid) == owner_uid.as_ref());
    if !owned {
        return Ok(());
    }
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::kube("delete", kind)(e)),
    }
}

/// Takes the savepoint-files finalizer off the pipeline's snapshots: with
/// the pipeline gone no runner would honour it, and deleting a pipeline
/// keeps its data (the garbage collector then deletes the objects only).
async fn keep_snapshot_files(
    api: &Api<ProfileSnapshot>,
    snapshots: &[ProfileSnapshot],
) -> Result<(), Error> {
    for snapshot in snapshots.iter().filter(|s| s.holds_files_finalizer()) {
        match api
            .patch(
                &snapshot.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&snapshot.release_files_patch()),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(Error::kube("patch", "ProfileSnapshot")(e)),
        }
    }
    Ok(())
}

/// Marks the pipeline's `snapshots` still pending or in progress Failed.
async fn fail_pending_snapshots(
    api: &Api<ProfileSnapshot>,
    snapshots: &[ProfileSnapshot],
    names: &Names,
) -> Result<usize, Error> {
    let mut failed = 0;
    for snapshot in snapshots {
        let state = snapshot
            .status
            .as_ref()
            .map(|s| s.state)
            .unwrap_or_default();
        if matches!(state, SnapshotState::Completed | SnapshotState::Failed) {
            continue;
        }
        let patch = serde_json::json!({"status": {
            "state": SnapshotState::Failed,
            "error": format!("ProfilePipeline {} was deleted before the snapshot was taken", names.pipeline),
            "completionTime": k8s_openapi::jiff::Timestamp::now().to_string(),
        }});
        match api
            .patch_status(
                &snapshot.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => failed += 1,
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(Error::kube("patch status of", "ProfileSnapshot")(e)),
        }
    }
    Ok(failed)
}
