//! The pipeline specification: the YAML a product team writes to run Kith.
//!
//! Field names are camelCase, as in every Kubernetes object, because this same
//! structure is embedded in the `ProfilePipeline` resource. Every struct denies
//! unknown fields so that a typo fails at start instead of being ignored.

pub mod credentials;
mod identifiers;
mod io;
mod resolution;
mod sinks;
mod survivorship;
mod template;

pub use identifiers::{
    GenericDetectionSpec, IdentifierTypeSpec, NormalizePreset, NormalizeRule, RegexReplace,
};
pub use io::{CheckpointSpec, InputFormat, KafkaSourceSpec, OutputsSpec, SourceSpec, StartFrom};
pub use resolution::{
    BlockingKeySpec, BlockingSpec, ComparisonMethod, ComparisonSpec, HouseholdSpec, KeyTransform,
    NicknameSpec, ResolutionSpec, TrainingSpec,
};
pub use sinks::{
    DeliverySpec, DynamoDbSinkSpec, DynamoDbWriteMode, FileSinkSpec, KafkaSinkSpec,
    NeptuneSinkSpec, SinkSpec,
};
pub use survivorship::{AttributePolicySpec, SurvivorshipPolicy, SurvivorshipSpec};
pub use template::{
    ConditionSpec, EventMappingSpec, IdentifierMappingSpec, RelationshipMappingSpec, TemplateSpec,
    ValueSpec,
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The number of key groups when a pipeline does not say: the fixed maximum
/// parallelism that state is partitioned into. It can never change for a
/// pipeline's state, because every record's key group is derived from it.
pub const DEFAULT_KEY_GROUPS: u32 = 128;

/// A whole pipeline: where observations come from, how raw events become
/// observations, how identifiers link records, and how golden records are built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineSpec {
    /// A short name used in logs, metrics and file names.
    pub name: String,
    /// Where observations come from. Empty means standard input, canonical format.
    #[serde(default)]
    pub sources: Vec<SourceSpec>,
    /// How raw domain events are mapped to canonical observations. Required when
    /// a source has `format: template`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateSpec>,
    /// ISO 3166 region used to bring national phone numbers to E.164 (default US).
    #[serde(default = "default_region")]
    pub default_region: String,
    /// The identifier types the pipeline accepts, with normalization and linking
    /// rules. Observations carrying a type not listed here are dead-lettered.
    pub identifiers: Vec<IdentifierTypeSpec>,
    /// Detection of identifier values shared by too many distinct people.
    #[serde(default)]
    pub generic_detection: GenericDetectionSpec,
    /// Probabilistic matching of records that share no identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<ResolutionSpec>,
    /// How golden-record attributes are chosen among a profile's records.
    #[serde(default)]
    pub survivorship: SurvivorshipSpec,
    /// Where dead letters and the change feed go.
    #[serde(default)]
    pub outputs: OutputsSpec,
    /// The stores profiles, the identity graph and changes are written to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sinks: Vec<SinkSpec>,
    /// Fixed maximum parallelism: state is partitioned into this many key groups.
    #[serde(default = "default_key_groups")]
    pub key_groups: u32,
    /// Checkpoints of state and source positions.
    #[serde(default)]
    pub checkpoints: CheckpointSpec,
}

/// A pipeline document that does not fit the specification, with the path of
/// the offending field (`identifiers[2].normalize`) and what would be accepted.
#[derive(Debug, thiserror::Error)]
#[error("pipeline field `{path}`: {message}")]
pub struct SpecError {
    pub path: String,
    pub message: String,
}

impl PipelineSpec {
    /// Reads a pipeline from a JSON value (YAML documents are converted to JSON
    /// values first, so that enums read the same from kubectl, files and the API).
    pub fn from_value(value: serde_json::Value) -> Result<Self, SpecError> {
        serde_path_to_error::deserialize(value).map_err(|e| SpecError {
            path: e.path().to_string(),
            message: without_values(&e.into_inner().to_string()),
        })
    }
}

/// serde's "invalid type: integer `12345678`, expected a string" shows the
/// value, and the value may be a password expanded from `${VAR}`: the
/// message keeps the kind of value and what was expected, never the value.
fn without_values(message: &str) -> String {
    // "unknown variant `<the value>`, expected one of ...": the value may
    // hold a secret from a `${VAR}` (found by the pipeline_file fuzz target).
    if message.starts_with("unknown variant ") {
        return match message
            .rfind(", expected ")
            .or_else(|| message.rfind(", there are"))
        {
            Some(at) => format!("unknown variant{}", &message[at..]),
            None => "unknown variant".to_string(),
        };
    }
    let head = ["invalid type: ", "invalid value: "]
        .iter()
        .find(|prefix| message.starts_with(*prefix));
    let (Some(prefix), Some(expected_at)) = (head, message.rfind(", expected ")) else {
        return message.to_string();
    };
    let found = &message[prefix.len()..expected_at.max(prefix.len())];
    let kind = match found.split([' ', '`', '"']).next().unwrap_or("") {
        "integer" => "an integer",
        "floating" => "a number",
        "boolean" => "a boolean",
        "string" => "a string",
        "character" => "a character",
        "sequence" => "a list",
        "map" => "a mapping",
        "unit" | "null" => "null",
        _ => "a value of another type",
    };
    format!("{}{kind}{}", prefix, &message[expected_at..])
}

fn default_region() -> String {
    "US".to_string()
}

fn default_key_groups() -> u32 {
    DEFAULT_KEY_GROUPS
}

#[cfg(test)]
mod tests;
