use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where observations come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum SourceSpec {
    /// A file of JSON lines; `--input` on the command line takes precedence.
    File {
        /// The file to read.
        path: String,
        #[serde(default)]
        format: InputFormat,
    },
    /// Standard input, JSON lines.
    Stdin {
        #[serde(default)]
        format: InputFormat,
    },
    /// Kafka topics: one observation (or raw event) per message value.
    Kafka(KafkaSourceSpec),
}

/// A Kafka source. Offsets are part of the runner's checkpoints and never
/// auto-committed: they are committed to the consumer group only after a
/// checkpoint completes, so that lag tools see progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaSourceSpec {
    /// `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    /// Topics to read; every partition of each is assigned to the runner.
    pub topics: Vec<String>,
    /// Consumer group offsets are committed to (default `kith-<pipeline name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// Where to start when no checkpoint holds a position for a partition.
    #[serde(default)]
    pub start_from: StartFrom,
    #[serde(default)]
    pub format: InputFormat,
    /// Topic that messages which cannot be applied are written to, with the
    /// reason in headers. Without it, dead letters go to the dead-letter file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_topic: Option<String>,
    /// Extra librdkafka settings (`security.protocol`, `sasl.mechanism`, ...);
    /// they also serve the dead-letter topic. Credentials (`sasl.password`,
    /// `ssl.key.password`, `ssl.key.pem`, ...) must be a `${VAR}` reference:
    /// written out, they are refused.
    #[serde(
        default,
        skip_serializing_if = "std::collections::BTreeMap::is_empty",
        deserialize_with = "client_properties"
    )]
    pub properties: std::collections::BTreeMap<String, String>,
}

/// The position a Kafka partition is read from when no checkpoint has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum StartFrom {
    #[default]
    Earliest,
    Latest,
}

/// Periodic, consistent checkpoints of the state and the source positions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckpointSpec {
    /// Where checkpoints are kept: `file:///path`, a local path, or
    /// `s3://bucket/prefix`. Without it, the state directory alone is checkpointed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Time between checkpoints, such as `10s`, `500ms` or `2m` (default `10s`).
    #[serde(default = "default_interval")]
    pub interval: String,
    /// Completed checkpoints kept in `url`; older ones are deleted (default 3).
    #[serde(default = "default_retain")]
    pub retain: u32,
    /// Where savepoints go (default `<url>/savepoints`, or `savepoints` in the
    /// state directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_url: Option<String>,
}

impl Default for CheckpointSpec {
    fn default() -> Self {
        CheckpointSpec {
            url: None,
            interval: default_interval(),
            retain: default_retain(),
            savepoint_url: None,
        }
    }
}

fn default_interval() -> String {
    "10s".to_string()
}

fn default_retain() -> u32 {
    3
}

impl SourceSpec {
    pub fn format(&self) -> InputFormat {
        match self {
            SourceSpec::File { format, .. } | SourceSpec::Stdin { format } => *format,
            SourceSpec::Kafka(k) => k.format,
        }
    }
}

/// What each input line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum InputFormat {
    /// Canonical observations (docs/design.md §2).
    #[default]
    Canonical,
    /// Raw domain events mapped by the pipeline's `template`.
    Template,
}

/// Where the runner writes what is not profile state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutputsSpec {
    /// Dead-letter file (JSON lines). Default: `dead-letter.jsonl` in the state directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<String>,
    /// Change feed file (JSON lines of profile created/updated/merged/split/deleted,
    /// one line per change as applied). Default: `changes.jsonl` in the state
    /// directory, except in a cluster, where there is none; `"-"` writes
    /// nothing. The `file` and `kafka` sinks write the coalesced,
    /// checkpoint-consistent feed of after-images instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_feed: Option<String>,
}

/// Client settings as librdkafka takes them, text: `linger.ms: 5` and
/// `enable.idempotence: true` read as `"5"` and `"true"`. A value that is not
/// a scalar is refused without being shown (these carry passwords).
pub(crate) fn client_properties<'de, D>(
    deserializer: D,
) -> Result<std::collections::BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    let raw = std::collections::BTreeMap::<String, serde_json::Value>::deserialize(deserializer)?;
    raw.into_iter()
        .map(|(key, value)| {
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(D::Error::custom(format!(
                        "property `{key}` must be a string, a number or a boolean"
                    )))
                }
            };
            Ok((key, text))
        })
        .collect()
}
