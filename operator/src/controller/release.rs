//! Pruned snapshots of a pipeline without runners. Their files are deleted
//! by whoever holds the storage credentials: the runners while they run, a
//! `release-snapshots` Job (see `build::release_job`) while the pipeline is
//! suspended. Which Job to start is a pure function of the snapshots and the
//! Jobs there are ([`plan`]).

use super::{events, Context};
use crate::build::{self, Names};
use crate::error::Error;
use crate::validate::ValidPipeline;
use k8s_openapi::api::batch::v1::Job;
use kith_api::crd::{ProfilePipeline, ProfileSnapshot};
use kube::api::{ListParams, PostParams};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

/// A release Job as [`plan`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseJob {
    pub name: String,
    pub finished: bool,
}

/// The Job to create, if any: one for the current set of pruned snapshots
/// while no runner runs, none while an earlier pass still runs (it holds the
/// Lease; the next one starts after), and none again for a set whose Job is
/// there (finished or not: a Job that failed for good waits for a person,
/// or for its time-to-live to run out).
pub fn plan(runners: i32, pruned: &[String], jobs: &[ReleaseJob], names: &Names) -> Option<String> {
    if runners > 0 || pruned.is_empty() || jobs.iter().any(|j| !j.finished) {
        return None;
    }
    let wanted = build::release_job_name(names, pruned);
    (!jobs.iter().any(|j| j.name == wanted)).then_some(wanted)
}

/// Starts the release Job the pruned snapshots need, if any.
pub async fn ensure(
    pipeline: &ProfilePipeline,
    ctx: &Context,
    names: &Names,
    valid: &ValidPipeline,
    runners: i32,
) -> Result<(), Error> {
    if runners > 0 {
        return Ok(());
    }
    let snapshots: Api<ProfileSnapshot> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let pruned: Vec<String> = snapshots
        .list(&ListParams::default().labels(&format!(
            "{}={}",
            build::PIPELINE_LABEL,
            names.pipeline
        )))
        .await
        .map_err(Error::kube("list", "ProfileSnapshot"))?
        .iter()
        .filter(|s| s.awaits_file_release(&names.pipeline))
        .filter_map(ResourceExt::uid)
        .collect();
    if pruned.is_empty() {
        return Ok(());
    }
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let jobs: Vec<ReleaseJob> = api
        .list(&ListParams::default().labels(&build::release_selector(names)))
        .await
        .map_err(Error::kube("list", "Job"))?
        .iter()
        .map(|job| ReleaseJob {
            name: job.name_any(),
            finished: finished(job),
        })
        .collect();
    let Some(name) = plan(runners, &pruned, &jobs, names) else {
        return Ok(());
    };
    let job = build::release_job(pipeline, names, valid, &name);
    match api.create(&PostParams::default(), &job).await {
        Ok(_) => {
            events::publish(
                ctx,
                pipeline,
                EventType::Normal,
                "ReleasingSnapshots",
                format!(
                    "started Job {name} to delete the files of {} pruned snapshot(s)",
                    pruned.len()
                ),
            )
            .await;
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(Error::kube("create", "Job")(e)),
    }
}

/// Complete or Failed.
fn finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names {
            pipeline: "people".into(),
            namespace: "team".into(),
            runner: "people-runner".into(),
            config: "people-pipeline".into(),
        }
    }

    fn job(name: &str, finished: bool) -> ReleaseJob {
        ReleaseJob {
            name: name.into(),
            finished,
        }
    }

    #[test]
    fn a_job_per_set_of_pruned_snapshots_only_while_no_runner_runs() {
        let n = names();
        let pruned = vec!["u1".to_string(), "u2".to_string()];
        let wanted = build::release_job_name(&n, &pruned);
        assert_eq!(plan(0, &pruned, &[], &n), Some(wanted.clone()));
        assert_eq!(plan(1, &pruned, &[], &n), None, "a runner releases them");
        assert_eq!(plan(0, &[], &[], &n), None, "nothing pruned");
        // The same set's Job is there, finished or not: not again.
        assert_eq!(plan(0, &pruned, &[job(&wanted, true)], &n), None);
        assert_eq!(plan(0, &pruned, &[job(&wanted, false)], &n), None);
        // An earlier set's pass still runs: the next waits for it.
        assert_eq!(
            plan(0, &pruned, &[job("people-release-old", false)], &n),
            None
        );
        // It finished: the new set gets its own Job.
        assert_eq!(
            plan(0, &pruned, &[job("people-release-old", true)], &n),
            Some(wanted)
        );
    }
}
