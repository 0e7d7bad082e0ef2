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

use super::reconcile::key;
use super::{events, Context};
use crate::build::Names;
use crate::error::Error;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::NamespaceResourceScope;
use kith_api::crd::{ProfilePipeline, ProfileSnapshot, SnapshotState};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;

pub async fn cleanup(pipeline: &ProfilePipeline, ctx: &Context) -> Result<Action, Error> {
    let names = Names::of(pipeline);
    let uid = pipeline.uid();
    let c = &ctx.client;
    delete_owned::<Deployment>(c, &names, &names.runner, &uid).await?;
    delete_owned::<PodDisruptionBudget>(c, &names, &names.runner, &uid).await?;
    delete_owned::<Service>(c, &names, &names.runner, &uid).await?;
    delete_owned::<RoleBinding>(c, &names, &names.runner, &uid).await?;
    delete_owned::<Role>(c, &names, &names.runner, &uid).await?;
    delete_owned::<ServiceAccount>(c, &names, &names.runner, &uid).await?;
    delete_owned::<ConfigMap>(c, &names, &names.config, &uid).await?;
    let abandoned = fail_pending_snapshots(c, &names).await?;
    let mut note = "deleted the runner objects; checkpoints and savepoints are kept".to_string();
    if abandoned > 0 {
        note.push_str(&format!("; {abandoned} pending snapshot(s) marked Failed"));
    }
    events::publish(ctx, pipeline, EventType::Normal, "Deleted", note).await;
    ctx.metrics.set_phase(&key(pipeline), None);
    Ok(Action::await_change())
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

async fn fail_pending_snapshots(client: &Client, names: &Names) -> Result<usize, Error> {
    let api: Api<ProfileSnapshot> = Api::namespaced(client.clone(), &names.namespace);
    let snapshots = api
        .list(&ListParams::default())
        .await
        .map_err(Error::kube("list", "ProfileSnapshot"))?;
    let mut failed = 0;
    for snapshot in snapshots {
        let state = snapshot
            .status
            .as_ref()
            .map(|s| s.state)
            .unwrap_or_default();
        if snapshot.spec.pipeline != names.pipeline
            || matches!(state, SnapshotState::Completed | SnapshotState::Failed)
        {
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
