//! The runner Deployment.

use super::config_map::PIPELINE_FILE;
use super::{metadata, selector_labels, Names};
use crate::validate::ValidPipeline;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, HTTPGetAction, KeyToPath, ObjectFieldSelector, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, SeccompProfile, SecretVolumeSource, SecurityContext, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kith_api::crd::ProfilePipeline;
use std::collections::BTreeMap;

/// The runner's admin port: `/metrics`, `/healthz`, `/readyz`, lookups and savepoints.
pub const ADMIN_PORT: i32 = 9249;
/// Pod-template annotation with the pipeline file's hash: a changed pipeline
/// changes the template, so the Deployment rolls the runners onto it (a
/// mounted ConfigMap alone would change under running processes unnoticed).
pub const CONFIG_HASH_ANNOTATION: &str = "kith.dev/spec-hash";

pub(super) const CONFIG_DIR: &str = "/etc/kith";
/// Where `spec.resolutionModel` is mounted (its own folder: a mount inside
/// the read-only pipeline volume would need a mount point there).
const MODEL_DIR: &str = "/etc/kith-model";
/// The model file as the pipeline's `resolution.model` names it: relative
/// to the pipeline file in `/etc/kith` (the runner resolves it against the
/// pipeline's folder), so `/etc/kith-model/model.json` in the pod.
pub const MODEL_FILE: &str = "../kith-model/model.json";
pub(super) const STATE_DIR: &str = "/var/lib/kith";
/// The distroless `nonroot` user; any non-zero id works.
const RUNNER_UID: i64 = 65532;

pub fn build(
    pipeline: &ProfilePipeline,
    names: &Names,
    valid: &ValidPipeline,
    replicas: i32,
) -> Deployment {
    let mut pod_metadata = metadata(pipeline, names, &names.runner);
    pod_metadata.name = None;
    pod_metadata.namespace = None;
    pod_metadata.owner_references = None;
    pod_metadata.annotations = Some(BTreeMap::from([(
        CONFIG_HASH_ANNOTATION.to_string(),
        valid.spec_hash.clone(),
    )]));
    Deployment {
        metadata: metadata(pipeline, names, &names.runner),
        spec: DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(selector_labels(names)),
                ..LabelSelector::default()
            },
            // Never two generations of runners at once: each checkpoint URL
            // has one writer, and a new version must start from the state the
            // old one left, not beside it.
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".into()),
                ..DeploymentStrategy::default()
            }),
            revision_history_limit: Some(3),
            template: PodTemplateSpec {
                metadata: Some(pod_metadata),
                spec: Some(pod_spec(pipeline, names, valid)),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    }
}

pub(super) fn pod_spec(
    pipeline: &ProfilePipeline,
    names: &Names,
    valid: &ValidPipeline,
) -> PodSpec {
    let spec = &pipeline.spec;
    let mut args = vec![
        "run".to_string(),
        format!("{CONFIG_DIR}/{PIPELINE_FILE}"),
        "--state".into(),
        format!("{STATE_DIR}/state"),
        "--admin".into(),
        format!("0.0.0.0:{ADMIN_PORT}"),
        // Profiles and savepoints answer to the caller's RBAC.
        "--admin-auth".into(),
        "kubernetes".into(),
    ];
    if let Some(savepoint) = &valid.initial_savepoint {
        args.extend(["--initial-savepoint".to_string(), savepoint.clone()]);
    }
    PodSpec {
        service_account_name: Some(names.runner.clone()),
        // Runners talk to the API server (their pipeline, snapshots, status).
        automount_service_account_token: Some(true),
        // SIGTERM makes the runner take a final checkpoint before exiting.
        termination_grace_period_seconds: Some(120),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUNNER_UID),
            run_as_group: Some(RUNNER_UID),
            fs_group: Some(RUNNER_UID),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        containers: vec![Container {
            name: "runner".into(),
            image: Some(spec.image.clone()),
            image_pull_policy: spec.image_pull_policy.clone(),
            args: Some(args),
            env: Some(env(pipeline, names, &valid.spec_hash)),
            ports: Some(vec![ContainerPort {
                name: Some("admin".into()),
                container_port: ADMIN_PORT,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            }]),
            resources: spec.resources.clone(),
            // Restoring a large state from checkpoint storage takes minutes:
            // liveness starts counting only once the process answers at all.
            startup_probe: Some(probe("/healthz", 5, 120)),
            liveness_probe: Some(probe("/healthz", 10, 3)),
            readiness_probe: Some(probe("/readyz", 5, 2)),
            security_context: Some(SecurityContext {
                run_as_non_root: Some(true),
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                privileged: Some(false),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    ..Capabilities::default()
                }),
                ..SecurityContext::default()
            }),
            volume_mounts: Some(mounts(spec)),
            ..Container::default()
        }],
        volumes: Some(volumes(spec, names)),
        ..PodSpec::default()
    }
}

fn mounts(spec: &kith_api::crd::ProfilePipelineSpec) -> Vec<VolumeMount> {
    let mut mounts = vec![
        mount("pipeline", CONFIG_DIR, true),
        mount("state", STATE_DIR, false),
        mount("tmp", "/tmp", false),
    ];
    if spec.resolution_model.is_some() {
        mounts.push(mount("kith-model", MODEL_DIR, true));
    }
    mounts
}

fn volumes(spec: &kith_api::crd::ProfilePipelineSpec, names: &Names) -> Vec<Volume> {
    let mut volumes = vec![
        Volume {
            name: "pipeline".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: names.config.clone(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        // Local state is a cache of the checkpoints in object storage: an
        // empty directory is restored from the latest one on start.
        empty_dir("state"),
        empty_dir("tmp"),
    ];
    if let Some(source) = &spec.resolution_model {
        let as_file = |key: &str| {
            Some(vec![KeyToPath {
                key: key.to_string(),
                path: "model.json".into(),
                ..KeyToPath::default()
            }])
        };
        let mut volume = Volume {
            name: "kith-model".into(),
            ..Volume::default()
        };
        if let Some(r) = &source.config_map_key_ref {
            volume.config_map = Some(ConfigMapVolumeSource {
                name: r.name.clone(),
                items: as_file(&r.key),
                ..ConfigMapVolumeSource::default()
            });
        } else if let Some(r) = &source.secret_key_ref {
            volume.secret = Some(SecretVolumeSource {
                secret_name: Some(r.name.clone()),
                items: as_file(&r.key),
                ..SecretVolumeSource::default()
            });
        }
        volumes.push(volume);
    }
    volumes
}

/// The operator's environment for the runner, then the user's (which may
/// reference secrets; values never appear in the pipeline itself).
fn env(pipeline: &ProfilePipeline, names: &Names, spec_hash: &str) -> Vec<EnvVar> {
    let field = |name: &str, path: &str| EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    };
    let mut env = vec![
        EnvVar {
            name: "KITH_PIPELINE".into(),
            value: Some(names.pipeline.clone()),
            ..EnvVar::default()
        },
        field("KITH_NAMESPACE", "metadata.namespace"),
        field("KITH_POD_NAME", "metadata.name"),
        // Reported back in status.runtime: which spec completed the
        // checkpoints an upgrade's stability counts.
        EnvVar {
            name: "KITH_SPEC_HASH".into(),
            value: Some(spec_hash.to_string()),
            ..EnvVar::default()
        },
    ];
    env.extend(pipeline.spec.env.iter().cloned());
    env
}

fn probe(path: &str, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("admin".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(failure_threshold),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(read_only),
        ..VolumeMount::default()
    }
}

fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}
