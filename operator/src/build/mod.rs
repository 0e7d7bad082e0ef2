//! The objects that run a pipeline, built as a pure function of the
//! `ProfilePipeline` and its validated pipeline file: no API calls, no clock,
//! so every rule about their content is a unit test.

mod config_map;
mod deployment;
mod disruption_budget;
mod network_policy;
mod rbac;
mod release_job;
mod service;
mod snapshot;

pub use deployment::{ADMIN_PORT, CONFIG_HASH_ANNOTATION, MODEL_FILE};
pub use release_job::{release_job, release_job_name, release_selector, RELEASE_COMPONENT};
pub use snapshot::{build as snapshot, REASON_LABEL as SNAPSHOT_REASON_LABEL};

use crate::validate::ValidPipeline;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kith_api::crd::ProfilePipeline;
use kube::{Resource, ResourceExt};
use std::collections::BTreeMap;

/// The label every runner object carries with its pipeline's name.
pub const PIPELINE_LABEL: &str = "kith.dev/pipeline";
/// `app.kubernetes.io/managed-by` of every object the operator makes: what its
/// watches select, so it never caches unrelated ConfigMaps or Deployments.
pub const MANAGED_BY: &str = "kith-operator";
pub const MANAGED_BY_SELECTOR: &str = "app.kubernetes.io/managed-by=kith-operator";

/// Everything one pipeline runs with.
#[derive(Debug, Clone)]
pub struct Desired {
    pub config_map: ConfigMap,
    pub service_account: ServiceAccount,
    pub role: Role,
    pub role_binding: RoleBinding,
    pub service: Service,
    pub deployment: Deployment,
    pub disruption_budget: PodDisruptionBudget,
    pub network_policy: NetworkPolicy,
}

/// Builds the objects for `pipeline` with `replicas` runners.
pub fn desired(pipeline: &ProfilePipeline, valid: &ValidPipeline, replicas: i32) -> Desired {
    let names = Names::of(pipeline);
    Desired {
        config_map: config_map::build(pipeline, &names, valid),
        service_account: rbac::service_account(pipeline, &names),
        role: rbac::role(pipeline, &names),
        role_binding: rbac::role_binding(pipeline, &names),
        service: service::build(pipeline, &names),
        deployment: deployment::build(pipeline, &names, valid, replicas),
        disruption_budget: disruption_budget::build(pipeline, &names),
        network_policy: network_policy::build(pipeline, &names),
    }
}

/// Names of a pipeline's objects.
#[derive(Debug, Clone, PartialEq)]
pub struct Names {
    pub pipeline: String,
    pub namespace: String,
    /// Deployment, Service, ServiceAccount, Role, RoleBinding, PDB and
    /// NetworkPolicy.
    pub runner: String,
    /// The ConfigMap holding the pipeline file.
    pub config: String,
}

impl Names {
    pub fn of(pipeline: &ProfilePipeline) -> Names {
        let name = pipeline.name_any();
        Names {
            runner: format!("{name}-runner"),
            config: format!("{name}-pipeline"),
            namespace: pipeline.namespace().unwrap_or_default(),
            pipeline: name,
        }
    }
}

/// Labels selecting a pipeline's runner pods. Part of the Deployment's
/// selector, which can never change: keep it to these two.
pub fn selector_labels(names: &Names) -> BTreeMap<String, String> {
    BTreeMap::from([
        (PIPELINE_LABEL.to_string(), names.pipeline.clone()),
        (
            "app.kubernetes.io/component".to_string(),
            "runner".to_string(),
        ),
    ])
}

/// `kith.dev/pipeline=NAME,app.kubernetes.io/component=runner`, for the
/// scale subresource and `kubectl get pods -l`.
pub fn selector_string(names: &Names) -> String {
    selector_labels(names)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Metadata of an object of `pipeline`: namespace, the recommended labels, and
/// an owner reference, so that deleting the pipeline deletes it and a change
/// to it wakes the operator.
fn metadata(pipeline: &ProfilePipeline, names: &Names, name: &str) -> ObjectMeta {
    let mut labels = selector_labels(names);
    labels.insert("app.kubernetes.io/name".into(), "kith-runner".into());
    labels.insert("app.kubernetes.io/instance".into(), names.pipeline.clone());
    labels.insert("app.kubernetes.io/managed-by".into(), MANAGED_BY.into());
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(names.namespace.clone()),
        labels: Some(labels),
        owner_references: pipeline.controller_owner_ref(&()).map(|r| vec![r]),
        ..ObjectMeta::default()
    }
}

#[cfg(test)]
mod tests;
