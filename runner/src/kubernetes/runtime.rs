//! `status.runtime` of the runner's `ProfilePipeline`: readiness and progress,
//! for `kubectl get pp -o yaml` and for the operator, which reads from it
//! which spec runs (`specHash`), how many checkpoints it completed (an
//! upgrade is stable after a few) and how old the newest durable state is
//! (`lastCheckpointAt`, for `last-state` upgrades).

use super::{apply_pipeline_status, Shared};
use kube::Client;
use std::time::{Duration, Instant};

/// A report at least this often.
const EVERY: Duration = Duration::from_secs(10);
/// How often to look for a change worth reporting at once.
const LOOK: Duration = Duration::from_secs(1);
/// Each of the first checkpoints is reported as it completes: the operator
/// waits for them to call an upgrade stable. Later ones wait for `EVERY`.
const EARLY_CHECKPOINTS: u64 = 10;

/// What, when it changes, is reported at once.
#[derive(PartialEq)]
struct Salient {
    ready: bool,
    reason: String,
    early_checkpoints: u64,
}

pub async fn run(client: Client, shared: Shared) {
    let mut last_error = None;
    let mut last: Option<(Salient, Instant)> = None;
    loop {
        // Only the runner that holds the Lease speaks for the pipeline: one
        // waiting for it would overwrite the holder's report.
        if !shared.fence.held() {
            tokio::time::sleep(super::lease::TIMING.retry).await;
            continue;
        }
        let health = &shared.health;
        let checkpoints = shared.metrics.checkpoints_completed();
        let now = Salient {
            ready: health.ready(),
            reason: if health.ready() {
                String::new()
            } else {
                health.reason()
            },
            early_checkpoints: checkpoints.min(EARLY_CHECKPOINTS),
        };
        let due = match &last {
            None => true,
            Some((before, at)) => *before != now || at.elapsed() >= EVERY,
        };
        if !due {
            tokio::time::sleep(LOOK).await;
            continue;
        }
        let last_checkpoint = shared
            .metrics
            .last_checkpoint_unix()
            .and_then(|s| k8s_openapi::jiff::Timestamp::from_millisecond((s * 1e3) as i64).ok())
            .map(|t| t.to_string());
        let mut report = serde_json::json!({
            "pod": shared.identity.pod,
            "specHash": shared.identity.spec_hash,
            "ready": now.ready,
            "reason": now.reason,
            "observations": shared.metrics.observations(),
            "records": shared.metrics.records(),
            "profiles": shared.metrics.profiles(),
            "checkpoints": checkpoints,
            "lastCheckpointAt": last_checkpoint,
            "reportedAt": k8s_openapi::jiff::Timestamp::now().to_string(),
        });
        // An unknown value is left out, not applied as null.
        if let Some(fields) = report.as_object_mut() {
            fields.retain(|_, v| !v.is_null());
        }
        let runtime = serde_json::json!({ "runtime": report });
        let result = apply_pipeline_status(&client, &shared.identity, runtime).await;
        match result {
            Ok(_) => {
                last_error = None;
                last = Some((now, Instant::now()));
            }
            // Logged once per kind of failure, not every 10 s.
            Err(e) => {
                let text = e.to_string();
                if last_error.as_ref() != Some(&text) {
                    tracing::warn!(error = %text, "cannot report into the pipeline's status.runtime");
                    last_error = Some(text);
                }
            }
        }
        tokio::time::sleep(LOOK).await;
    }
}
