//! A `ProfileSnapshot` the operator requests (a savepoint nonce, an upgrade,
//! a schedule): owned by its pipeline and labelled like the runner objects,
//! so that its progress wakes the operator and deleting the pipeline deletes
//! it; with the savepoint-files finalizer, so that pruning it deletes its
//! files. A final savepoint (`final`, before a deletion) is neither.

use super::{metadata, Names};
use kith_api::crd::{ProfilePipeline, ProfileSnapshot, ProfileSnapshotSpec, FILES_FINALIZER};

/// Label saying why the operator made a snapshot: `requested` (a savepoint
/// nonce), `upgrade` or `periodic`. Snapshots without it are users'.
pub const REASON_LABEL: &str = "kith.dev/snapshot-reason";

pub fn build(
    pipeline: &ProfilePipeline,
    names: &Names,
    name: &str,
    reason: &str,
) -> ProfileSnapshot {
    let mut metadata = metadata(pipeline, names, name);
    metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(REASON_LABEL.into(), reason.into());
    // Pruning one deletes its files too (the runner honours the finalizer);
    // a final savepoint is kept with its files.
    if reason != "final" {
        metadata.finalizers = Some(vec![FILES_FINALIZER.into()]);
    }
    ProfileSnapshot {
        metadata,
        spec: ProfileSnapshotSpec {
            pipeline: names.pipeline.clone(),
        },
        status: None,
    }
}
