//! The Kubernetes custom resources of docs/design.md §6: `ProfilePipeline` (a pipeline
//! and how to run it) and `ProfileSnapshot` (a requested savepoint).
//!
//! The schemas are derived from these types (`kith-operator crdgen` writes them
//! to `crds/`). What a structural schema cannot say is stated as CEL rules, so
//! the API server rejects it before any controller sees it: the maximum
//! parallelism never changes, the parallelism never exceeds it, a snapshot
//! never moves to another pipeline.

mod pipeline;
mod snapshot;

pub use pipeline::{
    DeletionPolicy, KeyRef, ModelSource, PipelineDocument, PipelineState, ProfilePipeline,
    ProfilePipelineSpec, ProfilePipelineStatus, SnapshotPolicy, SnapshotReference,
    StateStorageSpec, UpgradeMode, UpgradePolicy, UpgradeStatus, MAX_KEY_GROUPS,
};
pub use snapshot::{
    ProfileSnapshot, ProfileSnapshotSpec, ProfileSnapshotStatus, SnapshotState, FILES_FINALIZER,
};

/// The API group of every Kith resource.
pub const GROUP: &str = "kith.dev";

/// Condition types on a `ProfilePipeline`: `Ready` is the summary `kubectl
/// wait` and people read, `Progressing` says a rollout is under way,
/// `Degraded` says the operator cannot get to the desired state on its own.
///
/// `Reconciling` and `Stalled` say the same as `Progressing` and `Degraded`
/// in the words kstatus reads (Flux, kpt, `kubectl apply --wait` through
/// cli-utils): abnormal-true conditions, True only while a rollout is under
/// way or the pipeline cannot get where its spec says.
pub mod condition {
    pub const READY: &str = "Ready";
    pub const PROGRESSING: &str = "Progressing";
    pub const DEGRADED: &str = "Degraded";
    pub const RECONCILING: &str = "Reconciling";
    pub const STALLED: &str = "Stalled";
}

#[cfg(test)]
mod tests;
