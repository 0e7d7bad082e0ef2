//! `upgradeMode: savepoint`: a changed spec reaches the runners only after a
//! savepoint of the running version, so that every upgrade has a restore
//! point to go back to. The operator asks for it as a `ProfileSnapshot`
//! (which the runners take) and holds the old runners, untouched, until it
//! completes; a failed savepoint holds them and says so (Degraded), and the
//! owner chooses: fix what failed, or `upgradeMode: last-state`.
//!
//! `upgradeMode: stateless`: the new version starts empty, checkpointing under
//! a new sub-path of the state storage URL (its lineage), so that neither a
//! restart nor a later `last-state` upgrade ever brings the old state back.
//!
//! Runners that are not ready cannot take a savepoint; an upgrade then starts
//! from the latest checkpoint, which a stopping runner always writes (and an
//! Event says so), rather than waiting forever.

use super::{events, snapshots, Context};
use crate::build::Names;
use crate::error::Error;
use k8s_openapi::api::apps::v1::Deployment;
use kith_api::crd::{ProfilePipeline, ProfileSnapshot, SnapshotState, UpgradeMode};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

/// Whether the new spec may be applied now.
pub enum Gate {
    Proceed,
    Hold {
        reason: &'static str,
        message: String,
        failed: bool,
    },
}

pub async fn savepoint_gate(
    pipeline: &ProfilePipeline,
    ctx: &Context,
    names: &Names,
    live: Option<&Deployment>,
    new_hash: &str,
) -> Result<Gate, Error> {
    if pipeline.spec.upgrade_mode != UpgradeMode::Savepoint {
        return Ok(Gate::Proceed);
    }
    let running = pipeline
        .status
        .as_ref()
        .and_then(|s| s.spec_hash.as_deref());
    let (Some(running), Some(live)) = (running, live) else {
        return Ok(Gate::Proceed); // nothing deployed yet
    };
    if running == new_hash || live.spec.replicas == Some(0) {
        return Ok(Gate::Proceed); // not an upgrade, or nothing runs
    }
    let ready = live
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let name = format!("{}-upgrade-{new_hash}", names.pipeline);
    let api: Api<ProfileSnapshot> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let existing = api
        .get_opt(&name)
        .await
        .map_err(Error::kube("get", "ProfileSnapshot"))?;
    let Some(snapshot) = existing else {
        if ready == 0 {
            events::publish(
                ctx,
                pipeline,
                EventType::Warning,
                "SavepointSkipped",
                format!("no runner is ready to take a savepoint; rolling onto spec {new_hash} from the latest checkpoint"),
            )
            .await;
            return Ok(Gate::Proceed);
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
    let status = snapshot.status.clone().unwrap_or_default();
    Ok(match status.state {
        SnapshotState::Completed => Gate::Proceed,
        SnapshotState::Failed => Gate::Hold {
            reason: "SavepointFailed",
            message: format!(
                "savepoint {} before the upgrade failed ({}); the runners keep the previous spec: fix the cause and delete the ProfileSnapshot to retry, or set upgradeMode: last-state",
                snapshot.name_any(),
                status.error.as_deref().unwrap_or("no reason given")
            ),
            failed: true,
        },
        SnapshotState::Pending | SnapshotState::InProgress => waiting(&name, new_hash),
    })
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
