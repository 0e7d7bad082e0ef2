//! `status.runtime` of the runner's `ProfilePipeline`: readiness and progress,
//! for `kubectl get pp -o yaml` and for the operator.

use super::{apply_pipeline_status, Shared};
use kube::Client;
use std::time::Duration;

const EVERY: Duration = Duration::from_secs(10);

pub async fn run(client: Client, shared: Shared) {
    let mut last_error = None;
    loop {
        // Only the runner that holds the Lease speaks for the pipeline: one
        // waiting for it would overwrite the holder's report.
        if !shared.fence.held() {
            tokio::time::sleep(super::lease::RETRY).await;
            continue;
        }
        let health = &shared.health;
        let runtime = serde_json::json!({"runtime": {
            "pod": shared.identity.pod,
            "ready": health.ready(),
            "reason": if health.ready() { String::new() } else { health.reason() },
            "observations": shared.metrics.observations(),
            "records": shared.metrics.records(),
            "profiles": shared.metrics.profiles(),
            "reportedAt": k8s_openapi::jiff::Timestamp::now().to_string(),
        }});
        let result = apply_pipeline_status(&client, &shared.identity, runtime).await;
        match result {
            Ok(_) => last_error = None,
            // Logged once per kind of failure, not every 10 s.
            Err(e) => {
                let text = e.to_string();
                if last_error.as_ref() != Some(&text) {
                    tracing::warn!(error = %text, "cannot report into the pipeline's status.runtime");
                    last_error = Some(text);
                }
            }
        }
        tokio::time::sleep(EVERY).await;
    }
}
