//! Going back to the last stable spec when a new one did not prove itself
//! (`stability`). The status keeps a copy of the last stable spec
//! (`lastStableSpec`); a rollback deploys it again and records the hash it
//! rolled back from (`rolledBackFrom`), so the bad spec is not tried again
//! until the spec changes.
//!
//! The state the stable spec goes back to is the restore point taken before
//! the upgrade: the runners start in a lineage of their own
//! (`rollback-HASH`) from that savepoint, so nothing the bad spec wrote is
//! read; the input since the savepoint is read again from the source (its
//! offsets are in the savepoint). Without a savepoint (a `last-state` or
//! `stateless` upgrade, or one that proceeded from a checkpoint), the stable
//! spec continues from the latest checkpoint of the lineage it ran in.
//! Pure: the status and the spec decide.

use kith_api::crd::{ProfilePipeline, ProfilePipelineSpec, UpgradeStatus};

/// The lineage and starting point of a rollback from `bad`.
pub struct To {
    pub lineage: Option<String>,
    pub start: Option<String>,
}

pub fn plan_for(upgrade: &UpgradeStatus, bad: &str) -> To {
    match &upgrade.restore_point {
        Some(savepoint) => To {
            lineage: Some(format!("rollback-{bad}")),
            start: Some(savepoint.clone()),
        },
        None => To {
            lineage: upgrade.from_lineage.clone(),
            start: None,
        },
    }
}

/// The pipeline as its last stable spec, with what is not part of an
/// upgrade (parallelism, running or suspended, savepoint requests and
/// policies) as the current spec says.
pub fn stable_pipeline(pipeline: &ProfilePipeline) -> Result<ProfilePipeline, String> {
    let copy = pipeline
        .status
        .as_ref()
        .and_then(|s| s.last_stable_spec.clone())
        .ok_or_else(|| "status.rolledBackFrom is set but status.lastStableSpec is missing: change the spec to deploy it".to_string())?;
    let mut spec: ProfilePipelineSpec = serde_json::from_value(copy).map_err(|e| {
        format!("status.lastStableSpec no longer reads ({e}): change the spec to deploy it")
    })?;
    let current = &pipeline.spec;
    spec.parallelism = current.parallelism;
    spec.state = current.state;
    spec.savepoint_nonce = current.savepoint_nonce;
    spec.snapshots = current.snapshots.clone();
    spec.upgrade = current.upgrade.clone();
    spec.deletion = current.deletion.clone();
    let mut stable = pipeline.clone();
    stable.spec = spec;
    Ok(stable)
}

/// The Degraded message while rolled back from `bad`.
pub fn message(pipeline: &ProfilePipeline, bad: &str) -> String {
    let stable = pipeline
        .status
        .as_ref()
        .and_then(|s| s.last_stable_spec_hash.as_deref())
        .unwrap_or("?");
    format!(
        "spec {bad} did not become stable within spec.upgrade.stabilityTimeout ({}) and was rolled back: the runners run the last stable spec {stable}; it is not tried again until the spec changes",
        pipeline.spec.upgrade.stability_timeout
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_api::crd::ProfilePipelineStatus;
    use serde_json::json;

    fn spec(image: &str, parallelism: i32) -> serde_json::Value {
        json!({
            "pipeline": {"name": "p", "identifiers": [{"type": "email", "normalize": "email"}],
                         "sources": [{"type": "kafka", "bootstrapServers": "k:9092", "topics": ["t"]}]},
            "image": image,
            "parallelism": parallelism,
            "stateStorage": {"url": "s3://b/p"}
        })
    }

    #[test]
    fn the_stable_spec_comes_back_with_the_current_scale_and_state() {
        let current: ProfilePipelineSpec = serde_json::from_value(spec("bad", 1)).unwrap();
        let mut p = ProfilePipeline::new("p", current);
        p.spec.state = kith_api::crd::PipelineState::Suspended;
        p.status = Some(ProfilePipelineStatus {
            last_stable_spec: Some(spec("good", 1)),
            last_stable_spec_hash: Some("h".into()),
            ..ProfilePipelineStatus::default()
        });
        let stable = stable_pipeline(&p).unwrap();
        assert_eq!(stable.spec.image, "good");
        assert_eq!(stable.spec.state, kith_api::crd::PipelineState::Suspended);
        p.status = Some(ProfilePipelineStatus::default());
        assert!(stable_pipeline(&p).unwrap_err().contains("lastStableSpec"));
    }

    #[test]
    fn a_rollback_restores_the_upgrade_savepoint_in_a_lineage_of_its_own() {
        let with = UpgradeStatus {
            restore_point: Some("s3://b/p/savepoints/sp-1".into()),
            from_lineage: Some("old".into()),
            ..UpgradeStatus::default()
        };
        let to = plan_for(&with, "bad");
        assert_eq!(to.lineage.as_deref(), Some("rollback-bad"));
        assert_eq!(to.start.as_deref(), Some("s3://b/p/savepoints/sp-1"));
        let without = UpgradeStatus {
            from_lineage: Some("old".into()),
            ..UpgradeStatus::default()
        };
        let to = plan_for(&without, "bad");
        assert_eq!(to.lineage.as_deref(), Some("old"));
        assert_eq!(to.start, None);
    }
}
