//! `ProfileSnapshot`s of this runner's pipeline, taken one at a time in
//! creation order: Pending -> InProgress -> Completed (with the savepoint's
//! path) or Failed (with why).

use super::{apply_pipeline_status, Shared};
use crate::admin::{AdminRequest, SavepointReply};
use futures::StreamExt;
use kith_api::crd::{ProfileSnapshot, SnapshotState};
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use std::collections::HashSet;
use std::sync::mpsc::TrySendError;
use std::time::Duration;
use tokio::sync::oneshot;

/// The longest a savepoint may take before the snapshot is marked Failed.
const SAVEPOINT_TIMEOUT: Duration = Duration::from_secs(1800);

pub async fn run(client: Client, shared: Shared) {
    let snapshots: Api<ProfileSnapshot> =
        Api::namespaced(client.clone(), &shared.identity.namespace);
    let (store, writer) = reflector::store();
    let changes = watcher(snapshots.clone(), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .boxed();
    tokio::pin!(changes);
    // Every change (and a periodic look, for a snapshot whose status write
    // failed) sends the runner through the pending ones.
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    // Snapshots this process has handled: the cache only catches up with
    // their new state when the watch is next polled.
    let mut handled: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            _ = changes.next() => {}
            _ = tick.tick() => {}
        }
        // Snapshots are the Lease holder's: a runner waiting for it has no
        // state to snapshot, and one that lost it may not write.
        if !shared.fence.held() {
            continue;
        }
        super::retention::release_deleted(
            &snapshots,
            &store.state(),
            &shared.identity.pipeline,
            &shared.savepoints,
        )
        .await;
        while let Some(snapshot) = next_pending(&store, &shared.identity.pipeline, &handled) {
            handled.insert(snapshot.uid().unwrap_or_default());
            // The cache may be behind: only a snapshot the API server still
            // has as Pending is taken.
            match snapshots.get_opt(&snapshot.name_any()).await {
                Ok(Some(current)) if is_pending(&current) && current.uid() == snapshot.uid() => {
                    if !take(&client, &snapshots, &shared, &current).await {
                        // Not claimed (the API server did not answer): look again.
                        handled.remove(&snapshot.uid().unwrap_or_default());
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read a ProfileSnapshot; will look again");
                    handled.remove(&snapshot.uid().unwrap_or_default());
                    break;
                }
            }
        }
    }
}

fn is_pending(snapshot: &ProfileSnapshot) -> bool {
    snapshot
        .status
        .as_ref()
        .map(|s| s.state)
        .unwrap_or_default()
        == SnapshotState::Pending
}

/// The oldest pending snapshot of `pipeline` not handled yet.
fn next_pending(
    store: &Store<ProfileSnapshot>,
    pipeline: &str,
    handled: &HashSet<String>,
) -> Option<ProfileSnapshot> {
    store
        .state()
        .into_iter()
        .filter(|s| s.spec.pipeline == pipeline && is_pending(s))
        .filter(|s| !handled.contains(&s.uid().unwrap_or_default()))
        .min_by_key(|s| (s.creation_timestamp(), s.name_any()))
        .map(|s| (*s).clone())
}

/// Claims and takes one snapshot; false when it could not be claimed for a
/// reason worth retrying (it is still Pending).
async fn take(
    client: &Client,
    api: &Api<ProfileSnapshot>,
    shared: &Shared,
    snapshot: &ProfileSnapshot,
) -> bool {
    let name = snapshot.name_any();
    let now = || k8s_openapi::jiff::Timestamp::now().to_string();
    // The claim: Pending -> InProgress only if nobody changed the snapshot
    // since it was read as Pending (its resourceVersion), so exactly one
    // runner takes it even if two ever look at once.
    let claim = json!({
        "metadata": {"resourceVersion": snapshot.resource_version()},
        "status": {"state": SnapshotState::InProgress, "startTime": now(), "takenBy": shared.fence.identity()},
    });
    match api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&claim))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {
            tracing::info!(snapshot = %name, "another runner claimed the snapshot first");
            return true;
        }
        Err(e) => {
            tracing::warn!(snapshot = %name, error = %e, "cannot mark the snapshot InProgress; will retry");
            tokio::time::sleep(Duration::from_secs(5)).await;
            return false;
        }
    }
    tracing::info!(snapshot = %name, "taking a savepoint for a ProfileSnapshot");
    let outcome = savepoint(shared).await;
    let status = match &outcome {
        Ok(done) => {
            json!({"state": SnapshotState::Completed, "path": done.path, "completionTime": now()})
        }
        Err(reason) => {
            json!({"state": SnapshotState::Failed, "error": reason, "completionTime": now()})
        }
    };
    // The request is done either way: keep trying to say so.
    for attempt in 0.. {
        match set_status(api, &name, status.clone()).await {
            Ok(()) => break,
            Err(e) if attempt < 10 => {
                tracing::warn!(snapshot = %name, error = %e, "cannot report the snapshot's outcome; retrying");
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            Err(e) => {
                tracing::error!(snapshot = %name, error = %e, "gave up reporting the snapshot's outcome");
                return true;
            }
        }
    }
    if let Ok(done) = outcome {
        tracing::info!(snapshot = %name, path = %done.path, "snapshot completed");
        let last = json!({"lastSnapshot": {"name": name, "path": done.path}});
        if let Err(e) = apply_pipeline_status(client, &shared.identity, last).await {
            tracing::warn!(error = %e, "cannot record the last snapshot in the pipeline's status");
        }
    }
    true
}

async fn set_status(
    api: &Api<ProfileSnapshot>,
    name: &str,
    status: serde_json::Value,
) -> Result<(), kube::Error> {
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": status})),
    )
    .await
    .map(|_| ())
}

/// Asks the engine for a savepoint, as the admin port does.
async fn savepoint(shared: &Shared) -> SavepointReply {
    let (reply, answer) = oneshot::channel();
    let mut request = AdminRequest::Savepoint { reply };
    // The engine takes requests between batches; a full channel clears quickly.
    loop {
        match shared.requests.try_send(request) {
            Ok(()) => break,
            Err(TrySendError::Full(back)) => {
                request = back;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(TrySendError::Disconnected(_)) => return Err("the runner is stopping".into()),
        }
    }
    match tokio::time::timeout(SAVEPOINT_TIMEOUT, answer).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(_)) => Err("the engine dropped the savepoint request".into()),
        Err(_) => Err(format!(
            "no savepoint within {} s",
            SAVEPOINT_TIMEOUT.as_secs()
        )),
    }
}
