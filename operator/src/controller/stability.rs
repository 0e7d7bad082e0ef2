//! Whether the spec the runners run has proven itself: ready, and
//! `spec.upgrade.stableAfterCheckpoints` checkpoints completed by a runner
//! of that very spec (as it reports in `status.runtime`), within
//! `spec.upgrade.stabilityTimeout` of being deployed. A runner that crashes
//! and restarts starts counting again, so a crash-looping spec never gets
//! there. Pure: the status, the policy and the clock decide.

use k8s_openapi::jiff::Timestamp;
use kith_api::crd::{PipelineState, ProfilePipeline, UpgradeStatus};
use kith_pipeline::config::parse_duration;
use std::time::Duration;

/// What the spec running now has shown.
#[derive(Debug, Clone, PartialEq)]
pub enum Stability {
    /// It is the last stable spec: nothing to judge.
    Settled,
    /// It has just proven itself.
    Stable,
    /// Not yet; `left` until the timeout.
    Pending { progress: String, left: Duration },
    /// Suspended before it proved itself: the clock waits for the resume.
    Paused,
    /// It did not prove itself in time.
    TimedOut { progress: String, waited: Duration },
}

/// Judges spec `running` (deployed since `upgrade.started_at`), whose
/// Deployment reports `rollout_ready`.
pub fn judge(
    pipeline: &ProfilePipeline,
    running: &str,
    upgrade: &UpgradeStatus,
    rollout_ready: bool,
    now: Timestamp,
) -> Stability {
    let status = pipeline.status.clone().unwrap_or_default();
    if status.last_stable_spec_hash.as_deref() == Some(running) {
        return Stability::Settled;
    }
    if pipeline.spec.state == PipelineState::Suspended {
        return Stability::Paused;
    }
    let policy = &pipeline.spec.upgrade;
    let needed = u64::try_from(policy.stable_after_checkpoints).unwrap_or(0);
    let runtime = status.runtime.unwrap_or_default();
    let reported = |key: &str| runtime.get(key);
    let ours = reported("specHash").and_then(|v| v.as_str()) == Some(running);
    let checkpoints = if ours {
        reported("checkpoints")
            .and_then(|v| v.as_u64())
            .unwrap_or(0)
    } else {
        0
    };
    let runner_ready = ours && reported("ready").and_then(|v| v.as_bool()) == Some(true);
    let proven = rollout_ready && (needed == 0 || (runner_ready && checkpoints >= needed));
    if proven {
        return Stability::Stable;
    }
    let progress = if !rollout_ready {
        "its runner is not ready".to_string()
    } else if !ours {
        "its runner has not reported yet".to_string()
    } else {
        format!("its runner completed {checkpoints} of {needed} checkpoints")
    };
    let timeout = parse_duration(&policy.stability_timeout).unwrap_or(Duration::MAX);
    let started: Option<Timestamp> = upgrade.started_at.parse().ok();
    let waited = started
        .and_then(|s| Duration::try_from(now.duration_since(s)).ok())
        .unwrap_or(Duration::ZERO);
    if waited > timeout {
        Stability::TimedOut { progress, waited }
    } else {
        Stability::Pending {
            progress,
            left: timeout.saturating_sub(waited),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_api::crd::{ProfilePipelineSpec, ProfilePipelineStatus};
    use serde_json::json;

    fn pipeline(runtime: serde_json::Value, stable: Option<&str>) -> ProfilePipeline {
        let spec: ProfilePipelineSpec = serde_json::from_value(json!({
            "pipeline": {"name": "p", "identifiers": [{"type": "email"}]},
            "image": "i",
            "stateStorage": {"url": "s3://b/p"},
            "upgrade": {"stableAfterCheckpoints": 2, "stabilityTimeout": "60s"}
        }))
        .unwrap();
        let mut p = ProfilePipeline::new("p", spec);
        p.status = Some(ProfilePipelineStatus {
            runtime: Some(runtime),
            last_stable_spec_hash: stable.map(str::to_string),
            ..ProfilePipelineStatus::default()
        });
        p
    }

    fn upgrade(at: i64) -> UpgradeStatus {
        UpgradeStatus {
            spec_hash: "new".into(),
            started_at: Timestamp::from_second(at).unwrap().to_string(),
            ..UpgradeStatus::default()
        }
    }

    fn now(at: i64) -> Timestamp {
        Timestamp::from_second(at).unwrap()
    }

    #[test]
    fn stable_after_enough_checkpoints_of_the_new_spec() {
        let report =
            |hash: &str, n: u64| json!({"specHash": hash, "ready": true, "checkpoints": n});
        let p = pipeline(report("new", 1), Some("old"));
        assert!(matches!(
            judge(&p, "new", &upgrade(0), true, now(10)),
            Stability::Pending { .. }
        ));
        let p = pipeline(report("new", 2), Some("old"));
        assert_eq!(
            judge(&p, "new", &upgrade(0), true, now(10)),
            Stability::Stable
        );
        // The old runner's report counts for nothing.
        let p = pipeline(report("old", 50), Some("old"));
        assert!(matches!(
            judge(&p, "new", &upgrade(0), true, now(10)),
            Stability::Pending { .. }
        ));
        // Not ready as a Deployment: not stable, whatever it reported.
        let p = pipeline(report("new", 9), Some("old"));
        assert!(matches!(
            judge(&p, "new", &upgrade(0), false, now(10)),
            Stability::Pending { .. }
        ));
        assert_eq!(
            judge(&p, "old", &upgrade(0), true, now(10)),
            Stability::Settled
        );
    }

    #[test]
    fn not_stable_in_time_is_timed_out_unless_suspended() {
        let p = pipeline(json!({"specHash": "new", "ready": false}), Some("old"));
        assert!(matches!(
            judge(&p, "new", &upgrade(0), false, now(61)),
            Stability::TimedOut { .. }
        ));
        let mut suspended = p.clone();
        suspended.spec.state = PipelineState::Suspended;
        assert_eq!(
            judge(&suspended, "new", &upgrade(0), false, now(61)),
            Stability::Paused
        );
    }
}
