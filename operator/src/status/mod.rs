//! The status of a pipeline, computed as a pure function of what reconcile
//! found: the conditions kstatus and `kubectl wait` read, the phase people
//! read, and the scale subresource's replica count and selector.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kith_api::crd::condition::{DEGRADED, PROGRESSING, READY, RECONCILING, STALLED};
use kith_api::crd::{PipelineState, ProfilePipeline, ProfilePipelineStatus};

/// What reconciling a pipeline came to.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The spec fails validation: nothing was applied.
    Invalid { message: String },
    /// The new spec waits (for a savepoint before an upgrade): nothing was
    /// applied; `deployment` is the runners' Deployment as it is.
    Held {
        deployment: Option<Box<Deployment>>,
        reason: &'static str,
        message: String,
        failed: bool,
    },
    /// The objects were applied; `deployment` is the Deployment as the API
    /// server returned it.
    Applied {
        deployment: Box<Deployment>,
        spec_hash: String,
        selector: String,
        /// Where the runners checkpoint (`ProfilePipelineStatus::state_lineage`).
        lineage: Option<String>,
        /// What is wrong although the runners that run are fine: fewer
        /// runners than asked for (`ParallelismUnsupported`), a rolled-back
        /// upgrade (`RolledBack`), a spec not stable in time (`NotStable`).
        degraded: Option<(&'static str, String)>,
    },
}

/// Phase names (the `Phase` printer column).
pub mod phase {
    pub const DEPLOYING: &str = "Deploying";
    pub const UPGRADING: &str = "Upgrading";
    pub const RUNNING: &str = "Running";
    pub const SUSPENDED: &str = "Suspended";
    pub const ROLLED_BACK: &str = "RolledBack";
    pub const FAILED: &str = "Failed";
}

/// One condition's new value.
#[derive(Clone)]
struct Verdict {
    kind: &'static str,
    status: bool,
    reason: &'static str,
    message: String,
}

/// The status `pipeline` should have after `outcome`, at time `now`.
/// Conditions keep their `lastTransitionTime` unless their status flips;
/// what the runners report (`runtime`, `lastSnapshot`) is not part of it.
pub fn compute(pipeline: &ProfilePipeline, outcome: &Outcome, now: Time) -> ProfilePipelineStatus {
    let old = pipeline.status.clone().unwrap_or_default();
    let generation = pipeline.metadata.generation;
    // `runtime` and `lastSnapshot` are the runners' (their own field
    // manager): the operator's apply leaves them out, so it never writes back
    // a stale copy over a newer report.
    let mut status = ProfilePipelineStatus {
        observed_generation: generation,
        runtime: None,
        last_snapshot: None,
        conditions: Vec::new(),
        ..old.clone()
    };
    let (phase, verdicts) = match outcome {
        Outcome::Invalid { message } => (
            phase::FAILED,
            [
                verdict(READY, false, "InvalidSpec", message.clone()),
                verdict(
                    PROGRESSING,
                    false,
                    "InvalidSpec",
                    "the spec must be fixed first".into(),
                ),
                verdict(DEGRADED, true, "InvalidSpec", message.clone()),
            ],
        ),
        Outcome::Held {
            deployment,
            reason,
            message,
            failed,
        } => {
            if let Some(d) = deployment {
                let rollout = Rollout::of(d);
                status.replicas = Some(rollout.replicas);
                status.ready_replicas = Some(rollout.ready);
            }
            if *failed {
                (
                    phase::FAILED,
                    [
                        verdict(READY, false, reason, message.clone()),
                        verdict(PROGRESSING, false, reason, message.clone()),
                        verdict(DEGRADED, true, reason, message.clone()),
                    ],
                )
            } else {
                (
                    phase::UPGRADING,
                    [
                        verdict(READY, false, reason, message.clone()),
                        verdict(PROGRESSING, true, reason, message.clone()),
                        verdict(DEGRADED, false, "AsExpected", String::new()),
                    ],
                )
            }
        }
        Outcome::Applied {
            deployment,
            spec_hash,
            selector,
            lineage,
            degraded,
        } => {
            let rollout = Rollout::of(deployment);
            status.state_lineage = lineage.clone();
            status.replicas = Some(rollout.replicas);
            status.ready_replicas = Some(rollout.ready);
            status.selector = Some(selector.clone());
            status.spec_hash = Some(spec_hash.clone());
            let suspended = pipeline.spec.state == PipelineState::Suspended;
            let (phase, verdicts) = if let Some(message) = rollout.deadline_exceeded {
                (
                    phase::FAILED,
                    [
                        verdict(READY, false, "ProgressDeadlineExceeded", message.clone()),
                        verdict(
                            PROGRESSING,
                            false,
                            "ProgressDeadlineExceeded",
                            message.clone(),
                        ),
                        verdict(DEGRADED, true, "ProgressDeadlineExceeded", message),
                    ],
                )
            } else if !rollout.complete() {
                let message = rollout.describe();
                (
                    phase::DEPLOYING,
                    [
                        verdict(READY, false, "RollingOut", message.clone()),
                        verdict(PROGRESSING, true, "RollingOut", message),
                        verdict(DEGRADED, false, "AsExpected", String::new()),
                    ],
                )
            } else if suspended {
                (
                    phase::SUSPENDED,
                    [
                        verdict(
                            READY,
                            true,
                            "Suspended",
                            "suspended: no runner runs, state is kept".into(),
                        ),
                        verdict(PROGRESSING, false, "Suspended", String::new()),
                        verdict(DEGRADED, false, "AsExpected", String::new()),
                    ],
                )
            } else {
                let message = format!("{} of {} runners ready", rollout.ready, rollout.replicas);
                (
                    phase::RUNNING,
                    [
                        verdict(READY, true, "Running", message),
                        verdict(PROGRESSING, false, "RolloutComplete", String::new()),
                        verdict(DEGRADED, false, "AsExpected", String::new()),
                    ],
                )
            };
            let mut verdicts = verdicts;
            let mut phase = phase;
            if let (Some((reason, message)), false) = (degraded, phase == phase::FAILED) {
                // The runners that do run are fine; what was asked is not.
                verdicts[2] = verdict(DEGRADED, true, reason, message.clone());
                if *reason == "RolledBack" && phase == phase::RUNNING {
                    phase = phase::ROLLED_BACK;
                }
            }
            (phase, verdicts)
        }
    };
    status.phase = Some(phase.to_string());
    let degraded = verdicts
        .iter()
        .find(|v| v.kind == DEGRADED && v.status)
        .cloned();
    let kstatus = verdicts
        .iter()
        .filter_map(|v| kstatus_verdict(v, degraded.as_ref()))
        .collect::<Vec<_>>();
    status.conditions = verdicts
        .into_iter()
        .chain(kstatus)
        .map(|v| condition(&old.conditions, v, generation, &now))
        .collect();
    status
}

/// kstatus' reading of `v`: `Progressing` as `Reconciling`, `Degraded` as
/// `Stalled`, with the same status, reason and message. kstatus ignores
/// `Ready` and `Progressing` on custom resources, so without these a
/// pipeline with an invalid spec would read InProgress until a rollout's
/// timeout, and one whose upgrade was rolled back Current.
///
/// While `degraded`, `Reconciling` is False whatever `Progressing` says:
/// kstatus reads Reconciling before Stalled, and a pipeline rolling back to
/// its last stable spec is rolling out, but the spec that was applied has
/// failed, and a GitOps rollout of it must say so rather than wait.
fn kstatus_verdict(v: &Verdict, degraded: Option<&Verdict>) -> Option<Verdict> {
    match (v.kind, degraded) {
        (PROGRESSING, Some(d)) if v.status => Some(Verdict {
            kind: RECONCILING,
            status: false,
            reason: d.reason,
            message: format!("not reconciling the spec as applied: {}", d.message),
        }),
        (PROGRESSING, _) => Some(Verdict {
            kind: RECONCILING,
            ..v.clone()
        }),
        (DEGRADED, _) => Some(Verdict {
            kind: STALLED,
            ..v.clone()
        }),
        _ => None,
    }
}

/// Runners of the Deployment passing their readiness probe, as its status
/// reports them.
pub fn ready_runners(deployment: &Deployment) -> i32 {
    deployment
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

/// Whether every runner of the Deployment's current spec is up and ready
/// (for zero replicas: whether the old ones are gone).
pub fn rolled_out(deployment: &Deployment) -> bool {
    let rollout = Rollout::of(deployment);
    rollout.complete() && rollout.ready >= rollout.replicas
}

fn verdict(kind: &'static str, status: bool, reason: &'static str, message: String) -> Verdict {
    Verdict {
        kind,
        status,
        reason,
        message,
    }
}

fn condition(old: &[Condition], v: Verdict, generation: Option<i64>, now: &Time) -> Condition {
    let status = if v.status { "True" } else { "False" }.to_string();
    let last_transition_time = old
        .iter()
        .find(|c| c.type_ == v.kind && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: v.kind.to_string(),
        status,
        reason: v.reason.to_string(),
        message: v.message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// Where a Deployment's rollout stands, from its status (written by the
/// Deployment controller; kstatus' rules for Deployments).
struct Rollout {
    replicas: i32,
    updated: i32,
    ready: i32,
    available: i32,
    /// The total, old replicas included (a Recreate rollout waits for old ones to go).
    current: i32,
    observed: bool,
    deadline_exceeded: Option<String>,
}

impl Rollout {
    fn of(deployment: &Deployment) -> Rollout {
        let replicas = deployment.spec.replicas.unwrap_or(1);
        let status = deployment.status.clone().unwrap_or_default();
        let observed = matches!(
            (status.observed_generation, deployment.metadata.generation),
            (Some(seen), Some(wanted)) if seen >= wanted
        );
        let deadline_exceeded = status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find_map(|c| {
                (c.type_.as_deref() == Some("Progressing")
                    && c.status.as_deref() == Some("False")
                    && c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
                .then(|| {
                    c.message
                        .unwrap_or_else(|| "the runner rollout is stuck".into())
                })
            });
        Rollout {
            replicas,
            updated: status.updated_replicas.unwrap_or(0),
            ready: status.ready_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            current: status.replicas.unwrap_or(0),
            observed,
            deadline_exceeded: if observed { deadline_exceeded } else { None },
        }
    }

    fn complete(&self) -> bool {
        self.observed
            && self.updated >= self.replicas
            && self.available >= self.replicas
            && self.current <= self.replicas
    }

    fn describe(&self) -> String {
        if !self.observed {
            return "waiting for the Deployment controller to see the new runner spec".into();
        }
        format!(
            "{} of {} runners updated, {} available, {} still to stop",
            self.updated.min(self.replicas),
            self.replicas,
            self.available.min(self.replicas),
            (self.current - self.replicas).max(0)
        )
    }
}

#[cfg(test)]
mod tests;
