//! `ProfileSnapshot`: one requested savepoint of a pipeline (like the Flink
//! operator's FlinkStateSnapshot). Users create them with kubectl; the operator
//! creates them for upgrades; the pipeline's runners execute them and report.
// One `printcolumn(...)` per column repeats the same keys, which clippy
// mistakes for a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// On the snapshots the operator makes and prunes: deleting one deletes its
/// savepoint's files first. The pipeline's runner (which holds the storage
/// credentials) removes the files, then this finalizer. Users' snapshots do
/// not carry it: their files are kept.
pub const FILES_FINALIZER: &str = "kith.dev/savepoint-files";

impl ProfileSnapshot {
    /// Whether it carries [`FILES_FINALIZER`].
    pub fn holds_files_finalizer(&self) -> bool {
        self.metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == FILES_FINALIZER)
    }

    /// Whether it is one of `pipeline`'s, pruned (being deleted), and still
    /// waiting for its files to be deleted: what a runner, or the release
    /// Job of a suspended pipeline, acts on.
    pub fn awaits_file_release(&self, pipeline: &str) -> bool {
        self.spec.pipeline == pipeline
            && self.metadata.deletion_timestamp.is_some()
            && self.holds_files_finalizer()
    }

    /// The merge patch that takes [`FILES_FINALIZER`] off, on the condition
    /// that the snapshot did not change since it was read (its
    /// resourceVersion): a concurrent change of its finalizers is never
    /// overwritten, the patch is refused (409) and tried again later.
    pub fn release_files_patch(&self) -> serde_json::Value {
        let rest: Vec<&String> = self
            .metadata
            .finalizers
            .iter()
            .flatten()
            .filter(|f| *f != FILES_FINALIZER)
            .collect();
        serde_json::json!({"metadata": {
            "resourceVersion": self.metadata.resource_version,
            "finalizers": rest,
        }})
    }
}

/// A savepoint request and its outcome.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "kith.dev",
    version = "v1alpha1",
    kind = "ProfileSnapshot",
    namespaced,
    shortname = "psnap",
    category = "kith",
    status = "ProfileSnapshotStatus",
    doc = "A savepoint of a ProfilePipeline's state, requested by a user or by the operator.",
    printcolumn(name = "Pipeline", type_ = "string", json_path = ".spec.pipeline"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(name = "Path", type_ = "string", json_path = ".status.path"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("spec of a ProfileSnapshot is immutable; create another one").reason(Reason::FieldValueForbidden))]
#[serde(rename_all = "camelCase")]
pub struct ProfileSnapshotSpec {
    /// Name of the `ProfilePipeline` (same namespace) to snapshot.
    #[schemars(length(min = 1, max = 253))]
    pub pipeline: String,
}

/// Progress of a snapshot, written by the runner executing it.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProfileSnapshotStatus {
    #[serde(default)]
    pub state: SnapshotState,
    /// Where the savepoint was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// RFC 3339 time the runner started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// RFC 3339 time it completed or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// The runner process that claimed it (its Lease holder identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken_by: Option<String>,
}

/// Pending → InProgress → Completed | Failed.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotState {
    #[default]
    Pending,
    InProgress,
    Completed,
    Failed,
}
