//! Jobs, as the Job controller and a kubelet run them together: one pod per
//! Job (`completions` and `parallelism` 1, the only kind the operator makes),
//! `restartPolicy: OnFailure` (the container is restarted in place with the
//! usual backoff), `backoffLimit` restarts before the Job is Failed, and the
//! status written the way the Job controller writes it (`startTime` and
//! `active` when the pod starts; `SuccessCriteriaMet` then `Complete`, or
//! `FailureTarget` then `Failed`, when it ends), which the API server
//! validates. A Job deleted while it runs has its container killed.

use super::pod::Pod;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde_json::{json, Value};

/// A Job's pod on the node.
pub struct JobRun {
    pub job: String,
    pub uid: String,
    pub pod: Pod,
    pub backoff_limit: u32,
    pub started: Option<Time>,
}

/// Where a run stands, as the status says it.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Not started yet (waiting for configuration or an image).
    Waiting,
    Active,
    Succeeded,
    Failed {
        restarts: u32,
    },
}

impl JobRun {
    pub fn progress(&self) -> Progress {
        if self.pod.succeeded {
            Progress::Succeeded
        } else if self.pod.restarts > self.backoff_limit {
            Progress::Failed {
                restarts: self.pod.restarts,
            }
        } else if self.pod.pid().is_some() || self.pod.restarts > 0 {
            Progress::Active
        } else {
            Progress::Waiting
        }
    }

    /// The status patch for `progress` (`None`: nothing to write yet).
    pub fn status(&mut self, progress: &Progress) -> Option<Value> {
        let now = Time(Timestamp::now());
        let start = self.started.get_or_insert_with(|| now.clone()).clone();
        let condition = |kind: &str, reason: &str, message: &str| {
            json!({"type": kind, "status": "True", "reason": reason, "message": message,
                   "lastProbeTime": now, "lastTransitionTime": now})
        };
        Some(match progress {
            Progress::Waiting => return None,
            Progress::Active => json!({"startTime": start, "active": 1}),
            Progress::Succeeded => json!({
                "startTime": start,
                "completionTime": now,
                "active": 0,
                "ready": 0,
                "succeeded": 1,
                "conditions": [
                    condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
                    condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods"),
                ],
            }),
            Progress::Failed { restarts } => {
                let message = format!(
                    "the container failed {restarts} times (backoffLimit {})",
                    self.backoff_limit
                );
                json!({
                    "startTime": start,
                    "active": 0,
                    "ready": 0,
                    "failed": 1,
                    "conditions": [
                        condition("FailureTarget", "BackoffLimitExceeded", &message),
                        condition("Failed", "BackoffLimitExceeded", &message),
                    ],
                })
            }
        })
    }
}

/// Complete or Failed: the stand-in has nothing more to do for it.
pub fn finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        })
}

/// Why the stand-in cannot run `job`, if it cannot.
pub fn unsupported(job: &Job) -> Option<String> {
    let spec = job.spec.as_ref()?;
    let policy = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref());
    if policy != Some("OnFailure") {
        return Some(format!(
            "Job {}: restartPolicy {policy:?} (only OnFailure is run here)",
            job.name_any()
        ));
    }
    if spec.completions.unwrap_or(1) != 1 || spec.parallelism.unwrap_or(1) != 1 {
        return Some(format!(
            "Job {}: more than one completion or parallel pod",
            job.name_any()
        ));
    }
    None
}
