//! Server-side apply of the desired objects. The operator's field manager owns
//! exactly the fields it sets; `force` takes them back from whoever changed
//! them (that is drift), while fields others set alone (another
//! controller's annotations) stay theirs. The runner Deployment's replicas
//! are always the operator's: one runner owns a pipeline's state, so an
//! autoscaler's change is taken back (see `scaling`).

use super::FIELD_MANAGER;
use crate::build::Desired;
use crate::error::Error;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

/// Applies every object; the Deployment last, so that runners never start
/// before their pipeline file, identity and permissions exist. Returns the
/// Deployment as stored.
pub async fn apply_all(client: &Client, desired: &Desired) -> Result<Deployment, Error> {
    apply(client, &desired.config_map).await?;
    apply(client, &desired.service_account).await?;
    apply(client, &desired.role).await?;
    apply(client, &desired.role_binding).await?;
    apply(client, &desired.service).await?;
    apply(client, &desired.disruption_budget).await?;
    apply(client, &desired.network_policy).await?;
    apply(client, &desired.deployment).await
}

async fn apply<K>(client: &Client, object: &K) -> Result<K, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + k8s_openapi::Resource
        + Clone
        + Serialize
        + DeserializeOwned
        + Debug,
{
    let meta = object.meta();
    let namespace = meta
        .namespace
        .as_deref()
        .ok_or(Error::MissingMetadata("namespace"))?;
    let name = meta.name.as_deref().ok_or(Error::MissingMetadata("name"))?;
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map_err(Error::kube("apply", <K as k8s_openapi::Resource>::KIND))
}
