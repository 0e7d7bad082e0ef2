//! The files of pruned snapshots. The operator prunes its own
//! `ProfileSnapshot`s by count and age; each carries the
//! `kith.dev/savepoint-files` finalizer, so deleting one leaves it in place,
//! marked for deletion, until the pipeline's runner (which holds the
//! storage credentials) has deleted the savepoint's files and then the
//! finalizer. Only the Lease holder does it, and only under this pipeline's
//! savepoint URL: a path anywhere else (a status edited by hand) is never
//! deleted, and the finalizer stays so that a person looks at it.
//!
//! A running runner does it as the snapshots change (`snapshots`); for a
//! suspended pipeline, which has no runner, the operator starts a short
//! `release-snapshots` Job of the runner's image that does the same once
//! (`release`).

use crate::checkpoint::storage::CheckpointStorage;
use kith_api::crd::ProfileSnapshot;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use std::sync::Arc;

/// What one pass over the pruned snapshots came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    /// Snapshots whose files (if any) and finalizer are gone.
    pub released: usize,
    /// Snapshots still held: a deletion or a patch failed (retried on the
    /// next pass), or a path outside `savepoints` (left for a person).
    pub left: usize,
}

/// Deletes the files of every snapshot of `pipeline` being deleted with the
/// finalizer on, when they are under `savepoints`, then the finalizer (what
/// fails is retried on the next call).
pub async fn release_deleted(
    api: &Api<ProfileSnapshot>,
    snapshots: &[Arc<ProfileSnapshot>],
    pipeline: &str,
    savepoints: &str,
) -> Released {
    let mut outcome = Released::default();
    for snapshot in snapshots {
        if !snapshot.awaits_file_release(pipeline) {
            continue;
        }
        if release_one(api, snapshot, savepoints).await {
            outcome.released += 1;
        } else {
            outcome.left += 1;
        }
    }
    outcome
}

/// Releases one pruned snapshot; false when it is still held.
async fn release_one(
    api: &Api<ProfileSnapshot>,
    snapshot: &ProfileSnapshot,
    savepoints: &str,
) -> bool {
    let name = snapshot.name_any();
    let path = snapshot.status.as_ref().and_then(|s| s.path.clone());
    if let Some(path) = path {
        let Some(prefix) = under(savepoints, &path) else {
            tracing::warn!(snapshot = %name, path = %path, savepoints = %savepoints,
                "a pruned snapshot's path is not under this pipeline's savepoint URL; its files are left alone and the finalizer stays");
            return false;
        };
        let base = savepoints.to_string();
        let deleted = tokio::task::spawn_blocking(move || {
            CheckpointStorage::from_url(&base)
                .map_err(|e| e.to_string())
                .and_then(|storage| storage.delete_prefix(&prefix).map_err(|e| e.to_string()))
        })
        .await;
        match deleted {
            Ok(Ok(count)) => {
                tracing::info!(snapshot = %name, files = count, "deleted the files of a pruned snapshot")
            }
            Ok(Err(e)) => {
                tracing::warn!(snapshot = %name, error = %e, "cannot delete a pruned snapshot's files; will retry");
                return false;
            }
            Err(e) => {
                tracing::warn!(snapshot = %name, error = %e, "the deletion of a pruned snapshot's files stopped; will retry");
                return false;
            }
        }
    }
    remove_finalizer(api, snapshot).await
}

/// The key prefix of savepoint folder `path` under `base`, when it is one of
/// its folders (`base/NAME`, without `..`).
pub fn under(base: &str, path: &str) -> Option<String> {
    let base = base.trim_end_matches('/');
    let rest = path.strip_prefix(base)?.strip_prefix('/')?;
    let rest = rest.trim_end_matches('/');
    let plain = !rest.is_empty()
        && rest
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..");
    plain.then(|| rest.to_string())
}

/// Removes the finalizer, unless the snapshot changed since it was read
/// (then the next call tries again); true once it is gone.
async fn remove_finalizer(api: &Api<ProfileSnapshot>, snapshot: &ProfileSnapshot) -> bool {
    let name = snapshot.name_any();
    let patch = snapshot.release_files_patch();
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => true,
        Err(kube::Error::Api(s)) if s.code == 404 => true,
        Err(e) => {
            tracing::warn!(snapshot = %name, error = %e, "cannot remove the savepoint-files finalizer; will retry");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::under;

    #[test]
    fn only_folders_under_the_savepoint_url_are_deleted() {
        let base = "s3://b/p/savepoints";
        assert_eq!(
            under(base, "s3://b/p/savepoints/sp-0001").as_deref(),
            Some("sp-0001")
        );
        assert_eq!(
            under("s3://b/p/savepoints/", "s3://b/p/savepoints/sp-0001/").as_deref(),
            Some("sp-0001")
        );
        assert_eq!(under(base, "s3://b/p/savepoints"), None);
        assert_eq!(under(base, "s3://b/p/savepoints-other/sp-1"), None);
        assert_eq!(under(base, "s3://b/p/savepoints/../checkpoints"), None);
        assert_eq!(under(base, "s3://b/other/sp-1"), None);
        assert_eq!(under(base, "s3://b/p/savepoints//x"), None);
    }
}
