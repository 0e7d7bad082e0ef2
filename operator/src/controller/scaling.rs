//! How many runners a pipeline gets, failing closed.
//!
//! A runner today takes every partition of its sources and owns its whole
//! state: two runners of one pipeline would read the same input twice and
//! race on one checkpoint location. Until the runner can split its key
//! groups between replicas, more than one is never started, whoever asks
//! for it (`spec.parallelism`, `kubectl scale`, an autoscaler on the
//! pipeline's scale subresource or on the runner Deployment itself). The
//! request is kept, not rewritten (the owner's manifest stays theirs), and
//! the refusal is reported as `Degraded` with reason `ParallelismUnsupported`;
//! the scale subresource's status shows the runners that really run.
//!
//! The runners hold a coordination Lease besides (docs/design.md §6), so even a
//! replica the Deployment controller starts before the operator takes the
//! count back, or a pod left on a partitioned node, waits and never writes.

use kith_api::crd::{PipelineState, ProfilePipeline};

/// The most runners one pipeline can run with.
pub const MAX_RUNNERS: i32 = 1;

/// What the operator runs, and why it runs fewer than asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scale {
    pub replicas: i32,
    /// Set when more runners were asked for than can run.
    pub refused: Option<String>,
}

/// An autoscaler that targets the runner Deployment itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentAutoscaler {
    pub name: String,
    /// The most replicas it may set (`spec.maxReplicas`).
    pub max_replicas: i32,
}

/// The runners for `pipeline`: none while suspended; else what
/// `spec.parallelism` asks, at most [`MAX_RUNNERS`]. An autoscaler on the
/// runner Deployment that may set more is refused as a whole: whatever it
/// sets is taken back, so a refusal judged by the Deployment's count would
/// clear itself the moment the count is undone.
pub fn decide(pipeline: &ProfilePipeline, autoscaler: Option<&DeploymentAutoscaler>) -> Scale {
    if pipeline.spec.state == PipelineState::Suspended {
        return Scale {
            replicas: 0,
            refused: None,
        };
    }
    let asked = pipeline.spec.parallelism;
    let why = if asked > MAX_RUNNERS {
        Some(format!("spec.parallelism asks for {asked} runners"))
    } else {
        autoscaler
            .filter(|a| a.max_replicas > MAX_RUNNERS)
            .map(|a| {
                format!(
                    "HorizontalPodAutoscaler {} targets the runner Deployment and may set it to {} replicas",
                    a.name, a.max_replicas
                )
            })
    };
    Scale {
        replicas: asked.clamp(0, MAX_RUNNERS),
        refused: why.map(|why| {
            format!(
                "{why}, but a pipeline runs on at most {MAX_RUNNERS} runner for now (a runner owns all of its state; splitting key groups between runners is not built yet); {MAX_RUNNERS} runner keeps running with its state intact; ask for {MAX_RUNNERS} to clear this"
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_api::crd::ProfilePipelineSpec;

    fn pipeline(parallelism: i32, state: PipelineState) -> ProfilePipeline {
        let spec: ProfilePipelineSpec = serde_json::from_value(serde_json::json!({
            "image": "example.com/kith-runner:1",
            "parallelism": parallelism,
            "stateStorage": {"url": "s3://bucket/state"},
            "pipeline": {"name": "p"},
        }))
        .unwrap();
        let mut p = ProfilePipeline::new("p", spec);
        p.spec.state = state;
        p
    }

    #[test]
    fn one_runner_is_what_was_asked() {
        let s = decide(&pipeline(1, PipelineState::Running), None);
        assert_eq!(
            s,
            Scale {
                replicas: 1,
                refused: None
            }
        );
    }

    #[test]
    fn more_than_one_is_refused_and_one_keeps_running() {
        let s = decide(&pipeline(3, PipelineState::Running), None);
        assert_eq!(s.replicas, 1);
        let why = s.refused.unwrap();
        assert!(why.contains("spec.parallelism asks for 3"), "{why}");
    }

    #[test]
    fn an_autoscaler_on_the_deployment_that_may_add_runners_is_refused() {
        let hpa = |max| DeploymentAutoscaler {
            name: "p-runner".into(),
            max_replicas: max,
        };
        let s = decide(&pipeline(1, PipelineState::Running), Some(&hpa(8)));
        assert_eq!(s.replicas, 1);
        assert!(s.refused.unwrap().contains("may set it to 8 replicas"));
        let s = decide(&pipeline(1, PipelineState::Running), Some(&hpa(1)));
        assert_eq!(
            s,
            Scale {
                replicas: 1,
                refused: None
            }
        );
    }

    #[test]
    fn suspended_runs_nothing_and_refuses_nothing() {
        let s = decide(&pipeline(5, PipelineState::Suspended), None);
        assert_eq!(
            s,
            Scale {
                replicas: 0,
                refused: None
            }
        );
    }
}
