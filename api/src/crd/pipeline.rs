//! `ProfilePipeline`: a pipeline specification and how to run it.
// One `printcolumn(...)` per column repeats the same keys, which clippy
// mistakes for a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The largest maximum parallelism (number of key groups) a pipeline may have.
pub const MAX_KEY_GROUPS: i32 = 32768;

/// A profile pipeline run by Kith runners.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "kith.dev",
    version = "v1alpha1",
    kind = "ProfilePipeline",
    namespaced,
    shortname = "pp",
    category = "kith",
    status = "ProfilePipelineStatus",
    doc = "A Kith profile pipeline: sources, mapping template, identity stitching, entity resolution and reconciliation, run by the Kith operator as a runner Deployment.",
    scale(
        spec_replicas_path = ".spec.parallelism",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Parallelism", type_ = "integer", json_path = ".spec.parallelism"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "Last Snapshot", type_ = "string", json_path = ".status.lastSnapshot.name"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    // Runner objects are named `<name>-runner`, and a Service name must be a
    // DNS-1035 label of at most 63 characters.
    validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]{0,54}[a-z0-9])?$')").message("metadata.name must start with a letter, hold only a-z, 0-9 and '-', and have at most 56 characters (runner objects are named NAME-runner)")
)]
#[x_kube(validation = Rule::new("self.parallelism <= self.maxParallelism").message("spec.parallelism must not exceed spec.maxParallelism").reason(Reason::FieldValueInvalid).field_path(".parallelism"))]
#[serde(rename_all = "camelCase")]
pub struct ProfilePipelineSpec {
    /// The pipeline specification, as in a pipeline file run with
    /// `kith-runner run` (name, sources, template, identifiers, resolution,
    /// survivorship, outputs). The operator validates it and reports mistakes
    /// as the Degraded condition with reason InvalidSpec.
    pub pipeline: PipelineDocument,

    /// The runner container image.
    #[schemars(length(min = 1))]
    pub image: String,

    /// When the kubelet pulls the image: Always, IfNotPresent or Never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^(Always|IfNotPresent|Never)$"))]
    pub image_pull_policy: Option<String>,

    /// Number of runner replicas (the scale subresource). One runner owns
    /// all of a pipeline's state: more than one is refused (Degraded,
    /// ParallelismUnsupported) while one keeps running.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub parallelism: i32,

    /// Number of key groups state is partitioned into: the most runners the
    /// pipeline can ever use. Fixed for the life of the pipeline's state.
    #[serde(default = "default_max_parallelism")]
    #[schemars(range(min = 1, max = 32768))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.maxParallelism is immutable: state is partitioned by it").reason(Reason::FieldValueForbidden))]
    pub max_parallelism: i32,

    /// CPU and memory of each runner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Extra environment of the runner container (credentials by `valueFrom`
    /// secret references; the pipeline may use them as `${NAME}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,

    /// Where checkpoints and savepoints are kept.
    pub state_storage: StateStorageSpec,

    /// Time between checkpoints, such as `10s`, `500ms` or `2m`.
    #[serde(default = "default_checkpoint_interval")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)$"))]
    pub checkpoint_interval: String,

    /// How a spec change reaches running state: `savepoint` (take a savepoint
    /// of the running version first, then start the new one from the latest
    /// state), `last-state` (start from the latest checkpoint at once) or
    /// `stateless` (start empty, checkpointing under a new sub-path of the
    /// state storage URL).
    #[serde(default)]
    pub upgrade_mode: UpgradeMode,

    /// `running`, or `suspended` to stop every runner while keeping state.
    #[serde(default)]
    pub state: PipelineState,

    /// Change this number to request a savepoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_nonce: Option<i64>,

    /// Savepoints on a schedule, and which of the operator's are kept.
    #[serde(default)]
    pub snapshots: SnapshotPolicy,

    /// When a new spec counts as stable, and what happens when it does not.
    #[serde(default)]
    pub upgrade: UpgradePolicy,

    /// What deleting the pipeline does before its runners go.
    #[serde(default)]
    pub deletion: DeletionPolicy,

    /// The entity-resolution model the runners score with (`kith-runner
    /// train` writes one), from a ConfigMap or Secret key mounted into the
    /// pods; the operator writes its path into `resolution.model`, which
    /// the pipeline must then leave out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_model: Option<ModelSource>,
}

/// Where a pipeline's model file comes from: exactly one of the two.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[x_kube(validation = Rule::new("has(self.configMapKeyRef) != has(self.secretKeyRef)").message("spec.resolutionModel takes exactly one of configMapKeyRef and secretKeyRef"))]
#[serde(rename_all = "camelCase")]
pub struct ModelSource {
    /// A key of a ConfigMap in the pipeline's namespace (checked by the
    /// operator: it must exist and hold a model the pipeline can use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<KeyRef>,
    /// A key of a Secret in the pipeline's namespace (the operator may not
    /// read Secrets: a missing one holds the runner pod back, as the
    /// kubelet does with any Secret it cannot find).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<KeyRef>,
}

/// A key of a named ConfigMap or Secret.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq)]
pub struct KeyRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// How an upgrade is judged: a new spec is stable once its runner is ready
/// and has completed `stableAfterCheckpoints` checkpoints; one that is not
/// stable within `stabilityTimeout` is rolled back to the last stable spec,
/// from the restore point taken before the upgrade.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UpgradePolicy {
    /// Checkpoints the new spec's runner must complete to be stable (0:
    /// stable as soon as it is ready).
    #[serde(default = "default_stable_after_checkpoints")]
    #[schemars(range(min = 0, max = 1000))]
    pub stable_after_checkpoints: i32,
    /// How long a new spec has to become stable, such as `5m`.
    #[serde(default = "default_stability_timeout")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)$"))]
    pub stability_timeout: String,
    /// Roll back to the last stable spec when a new one is not stable in
    /// time (`false`: keep trying the new one, Degraded).
    #[serde(default = "yes")]
    pub rollback: bool,
    /// `upgradeMode: last-state` starts the new spec from the latest
    /// checkpoint when it is younger than this, such as `10m`; otherwise it
    /// takes a savepoint first (and uses the checkpoint if that fails).
    #[serde(default = "default_last_state_max_age")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)$"))]
    pub last_state_max_age: String,
    /// `upgradeMode: savepoint`: when the savepoint before an upgrade cannot
    /// be taken, upgrade from the latest checkpoint instead of blocking
    /// (`UpgradeBlocked`) until it can.
    #[serde(default)]
    pub fallback_to_checkpoint: bool,
}

impl Default for UpgradePolicy {
    fn default() -> Self {
        UpgradePolicy {
            stable_after_checkpoints: default_stable_after_checkpoints(),
            stability_timeout: default_stability_timeout(),
            rollback: true,
            last_state_max_age: default_last_state_max_age(),
            fallback_to_checkpoint: false,
        }
    }
}

fn default_stable_after_checkpoints() -> i32 {
    2
}

fn default_stability_timeout() -> String {
    "5m".into()
}

fn default_last_state_max_age() -> String {
    "10m".into()
}

fn yes() -> bool {
    true
}

/// What deleting a pipeline does first.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeletionPolicy {
    /// Take a final savepoint (a `ProfileSnapshot` named `NAME-final-UID8`,
    /// UID8 the first 8 characters of the pipeline's UID, kept
    /// after the pipeline is gone) before the runners are deleted.
    #[serde(default)]
    pub savepoint: bool,
}

/// When the operator takes savepoints by itself, and how many of the
/// `ProfileSnapshot` objects it made it keeps. Snapshots users create are
/// never deleted by the operator; the savepoint data in storage is kept either way.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotPolicy {
    /// Take a savepoint this often, such as `6h` or `30m`; without it, only on
    /// request (`savepointNonce`) and before upgrades.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)$"))]
    pub interval: Option<String>,
    /// Completed snapshots of the operator's to keep, newest first.
    #[serde(default = "default_retain")]
    #[schemars(range(min = 1))]
    pub retain: i32,
    /// The operator's snapshots older than this are deleted (the newest
    /// completed one is always kept), such as `168h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)$"))]
    pub max_age: Option<String>,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        SnapshotPolicy {
            interval: None,
            retain: default_retain(),
            max_age: None,
        }
    }
}

fn default_retain() -> i32 {
    5
}

/// Object storage for a pipeline's state.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StateStorageSpec {
    /// Checkpoints: `s3://bucket/prefix` (or `file:///path` on a mounted volume).
    #[x_kube(validation = Rule::new("self.startsWith('s3://') || self.startsWith('file:///')").message("spec.stateStorage.url must be s3://bucket/prefix or file:///path"))]
    pub url: String,
    /// Savepoints (default `<url>/savepoints`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.startsWith('s3://') || self.startsWith('file:///')").message("spec.stateStorage.savepointUrl must be s3://bucket/prefix or file:///path"))]
    pub savepoint_url: Option<String>,
}

/// How a changed spec is rolled out (the upgrade modes of the Flink Kubernetes operator).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradeMode {
    Stateless,
    #[default]
    Savepoint,
    LastState,
}

/// Whether runners should run.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum PipelineState {
    #[default]
    Running,
    Suspended,
}

/// The pipeline specification as written in the resource. Kept as a JSON
/// document rather than typed, so that a spec with a mistake still reads (and
/// is reported on its own resource) instead of breaking every watch of the kind;
/// `kith_api::PipelineSpec::from_value` gives the typed form.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(transparent)]
pub struct PipelineDocument(pub serde_json::Value);

impl JsonSchema for PipelineDocument {
    fn schema_name() -> Cow<'static, str> {
        "PipelineDocument".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "description": "A Kith pipeline specification (see the pipeline file reference).",
            "x-kubernetes-preserve-unknown-fields": true,
            // The two fields every pipeline has are declared, so that the API
            // server itself refuses a manifest without them; the rest is
            // checked by the operator with the runner's rules.
            "required": ["name", "identifiers"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "identifiers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }
            }
        })
    }
}

/// What the operator and the runners report.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProfilePipelineStatus {
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Progressing and Degraded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Deploying, Upgrading, Running, Suspended, RolledBack or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Runner replicas (the scale subresource's status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Runner replicas passing their readiness probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Label selector of the runner pods (for the scale subresource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Hash of the spec the runners currently run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<String>,
    /// Hash of the last spec that became stable (what a failed upgrade
    /// returns to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_stable_spec_hash: Option<String>,
    /// That spec itself, as applied (what a rollback deploys again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "spec_copy_schema")]
    pub last_stable_spec: Option<serde_json::Value>,
    /// The upgrade in progress: a spec deployed but not yet stable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<UpgradeStatus>,
    /// The spec hash rolled back from: while `spec` still hashes to it, the
    /// last stable spec keeps running and the bad one is not tried again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_from: Option<String>,
    /// The savepoint the current lineage started from (given to runners as
    /// `--initial-savepoint`: used only while the lineage has no checkpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage_start: Option<String>,
    /// Sub-path of `spec.stateStorage.url` holding the current state's
    /// checkpoints; a stateless upgrade starts a new one. Empty: the URL itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_lineage: Option<String>,
    /// The savepoint nonce last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_savepoint_nonce: Option<i64>,
    /// The newest completed snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_snapshot: Option<SnapshotReference>,
    /// Progress reported by the runners themselves (their own field manager).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "runtime_schema")]
    pub runtime: Option<serde_json::Value>,
}

/// A spec on its way to being stable.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStatus {
    /// The new spec's hash.
    pub spec_hash: String,
    /// RFC 3339 time it was deployed (the stability timeout counts from here).
    pub started_at: String,
    /// The stable spec it replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_spec_hash: Option<String>,
    /// The lineage the replaced spec ran in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_lineage: Option<String>,
    /// The savepoint taken before it (the restore point of a rollback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_point: Option<String>,
}

/// A completed snapshot.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotReference {
    /// The `ProfileSnapshot` object.
    pub name: String,
    /// Where the savepoint is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

fn runtime_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "Written by the runners: positions, lag, last checkpoint.",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

fn spec_copy_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "A copy of a ProfilePipeline spec.",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

fn one() -> i32 {
    1
}

fn default_max_parallelism() -> i32 {
    kith_default_key_groups()
}

fn kith_default_key_groups() -> i32 {
    crate::pipeline::DEFAULT_KEY_GROUPS as i32
}

fn default_checkpoint_interval() -> String {
    "10s".to_string()
}
