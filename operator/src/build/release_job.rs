//! The Job that deletes the files of a suspended pipeline's pruned
//! snapshots. A runner does it as it runs; a suspended pipeline has none,
//! and the operator holds no storage credentials (by design), so it runs the
//! runner's own image once, with the runners' ServiceAccount, environment
//! and volumes, as `kith-runner release-snapshots`.
//!
//! The Job is named after the snapshots it is for (a hash of their UIDs):
//! one Job per set, so a Job that failed for good is not started again for
//! the same set, and a new prune gets a new Job.

use super::config_map::PIPELINE_FILE;
use super::deployment::{pod_spec, CONFIG_DIR, STATE_DIR};
use super::{metadata, Names, PIPELINE_LABEL};
use crate::validate::ValidPipeline;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kith_api::crd::ProfilePipeline;

/// `app.kubernetes.io/component` of the Job and its pod (not `runner`: the
/// runner Deployment, Service and PodDisruptionBudget must not select it).
pub const RELEASE_COMPONENT: &str = "snapshot-release";
/// Retries of a failed pass before the Job is Failed (left for a person).
const BACKOFF_LIMIT: i32 = 4;
/// A pass waits at most 2 minutes for the Lease; this bounds the retries too.
const ACTIVE_DEADLINE_SECONDS: i64 = 900;
/// A finished Job (and its pod's log) is kept this long. Once it is gone, a
/// set of snapshots whose Job failed is tried again by a new one.
const TTL_AFTER_FINISHED_SECONDS: i32 = 3600;
/// Job names become a pod label value: at most 63 characters.
const NAME_PREFIX_MAX: usize = 40;

/// `kith.dev/pipeline=NAME,app.kubernetes.io/component=snapshot-release`.
pub fn release_selector(names: &Names) -> String {
    format!(
        "{PIPELINE_LABEL}={},app.kubernetes.io/component={RELEASE_COMPONENT}",
        names.pipeline
    )
}

/// The Job's name for the pruned snapshots with these UIDs.
pub fn release_job_name(names: &Names, uids: &[String]) -> String {
    let mut sorted: Vec<&str> = uids.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let hash = xxhash_rust::xxh3::xxh3_64(sorted.join(",").as_bytes());
    let prefix: String = names.pipeline.chars().take(NAME_PREFIX_MAX).collect();
    format!(
        "{}-release-{:010x}",
        prefix.trim_end_matches('-'),
        hash >> 24
    )
}

pub fn release_job(
    pipeline: &ProfilePipeline,
    names: &Names,
    valid: &ValidPipeline,
    job_name: &str,
) -> Job {
    let mut meta = metadata(pipeline, names, job_name);
    if let Some(labels) = meta.labels.as_mut() {
        labels.insert(
            "app.kubernetes.io/component".into(),
            RELEASE_COMPONENT.into(),
        );
    }
    let mut pod_meta = meta.clone();
    pod_meta.name = None;
    pod_meta.namespace = None;
    pod_meta.owner_references = None;

    let mut spec = pod_spec(pipeline, names, valid);
    spec.restart_policy = Some("OnFailure".into());
    // It holds no state worth a final checkpoint: a stop is immediate.
    spec.termination_grace_period_seconds = Some(30);
    for container in &mut spec.containers {
        container.name = "release".into();
        container.args = Some(vec![
            "release-snapshots".into(),
            format!("{CONFIG_DIR}/{PIPELINE_FILE}"),
            "--state".into(),
            format!("{STATE_DIR}/state"),
        ]);
        // No admin port and nothing to probe: it runs once and exits.
        container.ports = None;
        container.startup_probe = None;
        container.liveness_probe = None;
        container.readiness_probe = None;
    }
    Job {
        metadata: meta,
        spec: Some(JobSpec {
            backoff_limit: Some(BACKOFF_LIMIT),
            active_deadline_seconds: Some(ACTIVE_DEADLINE_SECONDS),
            ttl_seconds_after_finished: Some(TTL_AFTER_FINISHED_SECONDS),
            template: PodTemplateSpec {
                metadata: Some(pod_meta),
                spec: Some(spec),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}
