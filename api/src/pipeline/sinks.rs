//! Where profiles, the identity graph and changes are persisted: the
//! pipeline's `sinks` list. Each entry is one store; the runner keeps every
//! sink up to date with its state and completes a checkpoint only once every
//! sink has durably written what precedes it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One sink, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum SinkSpec {
    /// Amazon DynamoDB: a profiles table and an identifier index table.
    Dynamodb(DynamoDbSinkSpec),
    /// Amazon Neptune (Gremlin over HTTP): the identity graph.
    Neptune(NeptuneSinkSpec),
    /// A Kafka topic: the change feed, exactly once for `read_committed` consumers.
    Kafka(KafkaSinkSpec),
    /// A file of JSON lines: the change feed, as the Kafka sink writes it.
    File(FileSinkSpec),
}

impl SinkSpec {
    /// The sink's name in metrics, logs and readiness messages.
    pub fn name(&self) -> String {
        let (explicit, kind) = match self {
            SinkSpec::Dynamodb(s) => (&s.name, "dynamodb"),
            SinkSpec::Neptune(s) => (&s.name, "neptune"),
            SinkSpec::Kafka(s) => (&s.name, "kafka"),
            SinkSpec::File(s) => (&s.name, "file"),
        };
        explicit.clone().unwrap_or_else(|| kind.to_string())
    }

    /// The shared delivery settings.
    pub fn delivery(&self) -> &DeliverySpec {
        match self {
            SinkSpec::Dynamodb(s) => &s.delivery,
            SinkSpec::Neptune(s) => &s.delivery,
            SinkSpec::Kafka(s) => &s.delivery,
            SinkSpec::File(s) => &s.delivery,
        }
    }
}

/// Delivery settings every sink has.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeliverySpec {
    /// Shortest time between two flushes, such as `250ms` (default `250ms`):
    /// a change waits at most this long, one after a quiet spell is sent at
    /// once, and changes to one key between two flushes are written once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_interval: Option<String>,
    /// Most keys waiting to be written; the engine stops reading input while
    /// a slow store holds this many (default 100000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pending: Option<u32>,
    /// Most requests in flight at once (default 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    /// Longest wait between two retries of a failed request (default `30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff: Option<String>,
}

/// How DynamoDB items are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DynamoDbWriteMode {
    /// Each item is a conditional write that refuses an older version, and a
    /// deleted item leaves a tombstone: a late write of a stopped runner can
    /// never undo a newer one.
    #[default]
    Conditional,
    /// `BatchWriteItem` of up to 25 items: fewer requests, no conditions, so
    /// it relies on there being one writer (the runner's lease).
    Batch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DynamoDbSinkSpec {
    /// The sink's name in metrics, logs and its progress records: letters,
    /// digits, `-` and `_`, unique in the pipeline (default: its `type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The profiles table (partition key `profile_id`, a string).
    pub profiles_table: String,
    /// The identifier index table (partition key `identifier`, a string
    /// `type#value`).
    pub identifiers_table: String,
    /// Create the tables (on-demand capacity, TTL on `expires_at`) when missing.
    #[serde(default)]
    pub create_tables: bool,
    #[serde(default)]
    pub write_mode: DynamoDbWriteMode,
    /// How long a tombstone (the item a deleted or merged profile leaves in
    /// conditional mode) is kept before DynamoDB's TTL removes it (default `168h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tombstone_ttl: Option<String>,
    /// Region, such as `eu-west-1` (default: the AWS configuration chain's).
    /// Credentials always come from that chain (environment, profile, web
    /// identity, instance role), never from the pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Endpoint URL, for a local or VPC endpoint (default: AWS's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub delivery: DeliverySpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NeptuneSinkSpec {
    /// The sink's name in metrics, logs and its progress records: letters,
    /// digits, `-` and `_`, unique in the pipeline (default: its `type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The cluster's endpoint, such as `https://my-cluster.cluster-xyz.eu-west-1.neptune.amazonaws.com:8182`.
    pub endpoint: String,
    /// Region the requests are signed for with SigV4, such as `eu-west-1`
    /// (default: the AWS configuration chain's); credentials come from that
    /// chain, never from the pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Upserts per request (default 200, Neptune's recommended batch size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    /// Put before every vertex and edge id, so that several pipelines can
    /// share one graph (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_prefix: Option<String>,
    #[serde(default)]
    pub delivery: DeliverySpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaSinkSpec {
    /// The sink's name in metrics, logs and its progress records: letters,
    /// digits, `-` and `_`, unique in the pipeline (default: its `type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `host:port[,host:port...]` of the brokers.
    pub bootstrap_servers: String,
    /// The change-feed topic.
    pub topic: String,
    /// Where the progress of each transaction is recorded (default `<topic>-progress`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_topic: Option<String>,
    /// Transactional id (default `kith-<pipeline name>-<sink name>`); one per pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactional_id: Option<String>,
    /// Extra librdkafka producer settings (security, compression...).
    /// Credentials must be a `${VAR}` reference, as for a source.
    #[serde(
        default,
        skip_serializing_if = "std::collections::BTreeMap::is_empty",
        deserialize_with = "super::io::client_properties"
    )]
    pub properties: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub delivery: DeliverySpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileSinkSpec {
    /// The sink's name in metrics, logs and its progress records: letters,
    /// digits, `-` and `_`, unique in the pipeline (default: its `type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The file change events are appended to.
    pub path: String,
    #[serde(default)]
    pub delivery: DeliverySpec,
}
