//! Whether a changed spec may replace the running runners now.
//!
//! `upgradeMode: savepoint`: a changed spec reaches the runners only after a
//! savepoint of the running version, so that every upgrade has a restore
//! point to go back to. The operator asks for it as a `ProfileSnapshot`
//! (which the runners take) and holds the old runners, untouched, until it
//! completes. When it cannot be taken (it failed, or no runner is ready to
//! take it) nothing is upgraded and Degraded says so with reason
//! `UpgradeBlocked`, unless `spec.upgrade.fallbackToCheckpoint` lets the
//! upgrade start from the latest checkpoint. A running spec that never
//! became stable has no state worth a savepoint beyond its latest
//! checkpoint: replacing it (a fix for a bad upgrade) is never blocked (a
//! savepoint is still taken when a ready runner can take one).
//!
//! `upgradeMode: last-state`: the new spec starts from the latest checkpoint
//! unless the runner reported one older than `spec.upgrade.lastStateMaxAge`;
//! then a savepoint is taken first, and if that cannot be done the
//! checkpoint is used all the same (that is what last-state accepts).
//!
//! `upgradeMode: stateless`: the new version starts empty, checkpointing under
//! a new sub-path of the state storage URL (its lineage), so that neither a
//! restart nor a later `last-state` upgrade ever brings the old state back.

use super::{events, snapshots, Context};
use crate::build::Names;
use crate::error::Error;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::Timestamp;
use kith_api::crd::{ProfilePipeline, ProfileSnapshot, SnapshotState, UpgradeMode};
use kith_pipeline::config::parse_duration;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use std::time::Duration;

/// Whether the new spec may be applied now.
pub enum Gate {
    /// Go ahead; `restore_point` is the savepoint taken for this upgrade.
    Proceed { restore_point: Option<String> },
    Hold {
        reason: &'static str,
        message: String,
        failed: bool,
    },
}

const PROCEED: Gate = Gate::Proceed {
    restore_point: None,
};

pub async fn gate(
    pipeline: &ProfilePipeline,
    ctx: &Context,
    names: &Names,
    live: Option<&Deployment>,
    new_hash: &str,
) -> Result<Gate, Error> {
    let mode = pipeline.spec.upgrade_mode;
    if mode == UpgradeMode::Stateless {
        return Ok(PROCEED);
    }
    let status = pipeline.status.as_ref();
    let running = status.and_then(|s| s.spec_hash.as_deref());
    let (Some(running), Some(live)) = (running, live) else {
        return Ok(PROCEED); // nothing deployed yet
    };
    if running == new_hash || live.spec.replicas == Some(0) {
        return Ok(PROCEED); // not an upgrade, or nothing runs (suspended: its final checkpoint is the state)
    }
    let policy = &pipeline.spec.upgrade;
    if mode == UpgradeMode::LastState {
        // A runner that never reported cannot be asked for a savepoint
        // either (both go through the API server): its latest checkpoint it is.
        let Some(age) = checkpoint_age(pipeline, running, Timestamp::now()) else {
            return Ok(PROCEED);
        };
        let limit = parse_duration(&policy.last_state_max_age).unwrap_or(Duration::MAX);
        if age <= limit {
            return Ok(PROCEED);
        }
    }
    let stable = status.and_then(|s| s.last_stable_spec_hash.as_deref()) == Some(running);
    let ready = crate::status::ready_runners(live);
    let name = format!("{}-upgrade-{new_hash}", names.pipeline);
    let api: Api<ProfileSnapshot> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let existing = api
        .get_opt(&name)
        .await
        .map_err(Error::kube("get", "ProfileSnapshot"))?;
    // The savepoint cannot be taken: say whether the upgrade goes on anyway.
    let fallback = mode == UpgradeMode::LastState || policy.fallback_to_checkpoint || !stable;
    let Some(snapshot) = existing else {
        if ready == 0 {
            if fallback {
                events::publish(
                    ctx,
                    pipeline,
                    EventType::Warning,
                    "SavepointSkipped",
                    format!("no runner is ready to take a savepoint; rolling onto spec {new_hash} from the latest checkpoint"),
                )
                .await;
                return Ok(PROCEED);
            }
            return Ok(blocked(format!(
                "no runner is ready to take the savepoint before spec {new_hash}; the runners keep spec {running}: make them ready, or set spec.upgrade.fallbackToCheckpoint: true to upgrade from the latest checkpoint"
            )));
        }
        snapshots::request(
            ctx,
            pipeline,
            names,
            &name,
            "upgrade",
            "SavepointRequested",
            format!("ProfileSnapshot {name} before rolling the runners onto spec {new_hash}"),
        )
        .await?;
        return Ok(waiting(&name, new_hash));
    };
    let snapshot_status = snapshot.status.clone().unwrap_or_default();
    Ok(match snapshot_status.state {
        SnapshotState::Completed => Gate::Proceed {
            restore_point: snapshot_status.path,
        },
        SnapshotState::Failed if fallback => {
            events::publish(
                ctx,
                pipeline,
                EventType::Warning,
                "UpgradeFromCheckpoint",
                format!(
                    "savepoint {} failed; rolling onto spec {new_hash} from the latest checkpoint",
                    snapshot.name_any()
                ),
            )
            .await;
            PROCEED
        }
        SnapshotState::Failed => blocked(format!(
            "savepoint {} before spec {new_hash} failed ({}); the runners keep spec {running}: fix the cause and delete the ProfileSnapshot to retry, or set spec.upgrade.fallbackToCheckpoint: true to upgrade from the latest checkpoint",
            snapshot.name_any(),
            snapshot_status.error.as_deref().unwrap_or("no reason given")
        )),
        SnapshotState::Pending | SnapshotState::InProgress => waiting(&name, new_hash),
    })
}

fn blocked(message: String) -> Gate {
    Gate::Hold {
        reason: "UpgradeBlocked",
        message,
        failed: true,
    }
}

fn waiting(snapshot: &str, new_hash: &str) -> Gate {
    Gate::Hold {
        reason: "TakingSavepoint",
        message: format!(
            "waiting for savepoint {snapshot} before rolling the runners onto spec {new_hash}"
        ),
        failed: false,
    }
}

/// How old the newest durable state of the runners of spec `running` is,
/// from their report in `status.runtime` (`None`: nothing reported).
pub fn checkpoint_age(
    pipeline: &ProfilePipeline,
    running: &str,
    now: Timestamp,
) -> Option<Duration> {
    let runtime = pipeline.status.as_ref()?.runtime.as_ref()?;
    if runtime.get("specHash").and_then(|v| v.as_str()) != Some(running) {
        return None;
    }
    let at: Timestamp = runtime.get("lastCheckpointAt")?.as_str()?.parse().ok()?;
    Duration::try_from(now.duration_since(at)).ok()
}

/// The lineage the runners of `new_hash` checkpoint into: a new one for a
/// stateless upgrade, else the current one (kept through later upgrades).
pub fn lineage(pipeline: &ProfilePipeline, new_hash: &str) -> Option<String> {
    let status = pipeline.status.as_ref();
    let current = status.and_then(|s| s.state_lineage.clone());
    let running = status.and_then(|s| s.spec_hash.as_deref());
    match running {
        Some(running)
            if running != new_hash && pipeline.spec.upgrade_mode == UpgradeMode::Stateless =>
        {
            Some(format!("stateless-{new_hash}"))
        }
        _ => current,
    }
}
