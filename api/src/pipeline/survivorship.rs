use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How each golden-record attribute is chosen among a profile's records.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SurvivorshipSpec {
    /// The policy for attributes not listed in `attributes`.
    #[serde(default)]
    pub default: SurvivorshipPolicy,
    /// Sources in decreasing order of trust, for `sourcePriority`. Sources not
    /// listed rank after all listed ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_priority: Vec<String>,
    /// Per-attribute policies.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, AttributePolicySpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttributePolicySpec {
    /// How this attribute's value is chosen among the profile's records.
    pub policy: SurvivorshipPolicy,
    /// Overrides the pipeline-wide source priority for this attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_priority: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SurvivorshipPolicy {
    /// The value of the record with the latest `ts`.
    #[default]
    MostRecent,
    /// The value from the most trusted source; the latest within a source.
    SourcePriority,
    /// The value held by the most records; the latest on a tie.
    MostFrequent,
    /// The first non-empty value by `ts`.
    FirstNonEmpty,
}
