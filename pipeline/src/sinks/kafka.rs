//! Kafka change-feed settings, validated once.

use crate::config::ConfigError;
use kith_api::pipeline::KafkaSinkSpec;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct KafkaSinkConfig {
    pub bootstrap_servers: String,
    pub topic: String,
    pub progress_topic: String,
    /// Set once validation knows the pipeline and sink names.
    pub transactional_id: Option<String>,
    pub properties: BTreeMap<String, String>,
}

impl KafkaSinkConfig {
    pub fn from_spec(spec: &KafkaSinkSpec, field: &str) -> Result<Self, ConfigError> {
        if spec.bootstrap_servers.trim().is_empty() {
            return Err(ConfigError::invalid(
                format!("{field}.bootstrapServers"),
                "must name at least one broker, as host:port[,host:port...]",
            ));
        }
        let topic_ok = |t: &str| {
            !t.is_empty()
                && t.len() <= 249
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        };
        if !topic_ok(&spec.topic) {
            return Err(ConfigError::invalid(
                format!("{field}.topic"),
                format!(
                    "`{}` is not a Kafka topic name: 1 to 249 of letters, digits, `.`, `_` and `-`",
                    spec.topic
                ),
            ));
        }
        let progress_topic = spec
            .progress_topic
            .clone()
            .unwrap_or_else(|| format!("{}-progress", spec.topic));
        if !topic_ok(&progress_topic) || progress_topic == spec.topic {
            return Err(ConfigError::invalid(
                format!("{field}.progressTopic"),
                format!("`{progress_topic}` is not a Kafka topic name other than the feed's"),
            ));
        }
        for reserved in [
            "bootstrap.servers",
            "transactional.id",
            "enable.idempotence",
            "acks",
        ] {
            if spec.properties.contains_key(reserved) {
                return Err(ConfigError::invalid(
                    format!("{field}.properties.{reserved}"),
                    "is set by the runner (transactions need it); use `bootstrapServers` and `transactionalId`",
                ));
            }
        }
        Ok(KafkaSinkConfig {
            bootstrap_servers: spec.bootstrap_servers.clone(),
            topic: spec.topic.clone(),
            progress_topic,
            transactional_id: spec
                .transactional_id
                .clone()
                .filter(|t| !t.trim().is_empty()),
            properties: spec.properties.clone(),
        })
    }
}
