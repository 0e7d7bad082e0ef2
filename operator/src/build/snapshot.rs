//! A `ProfileSnapshot` the operator requests (a savepoint nonce, an upgrade):
//! owned by its pipeline and labelled like the runner objects, so that its
//! progress wakes the operator and deleting the pipeline deletes it.

use super::{metadata, Names};
use kith_api::crd::{ProfilePipeline, ProfileSnapshot, ProfileSnapshotSpec};

pub fn build(pipeline: &ProfilePipeline, names: &Names, name: &str) -> ProfileSnapshot {
    ProfileSnapshot {
        metadata: metadata(pipeline, names, name),
        spec: ProfileSnapshotSpec {
            pipeline: names.pipeline.clone(),
        },
        status: None,
    }
}
