//! The `sinks` section validated: each store's settings and the delivery
//! settings every sink shares. The runner's `sink` module writes to them.

pub mod dynamodb;
pub mod file;
pub mod kafka;
pub mod neptune;

use crate::config::{parse_duration, ConfigError};
use kith_api::pipeline::{DeliverySpec, SinkSpec};
use std::time::Duration;

/// Delivery settings, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub flush_interval: Duration,
    pub max_pending: usize,
    pub max_in_flight: usize,
    pub max_backoff: Duration,
}

impl Delivery {
    pub fn from_spec(spec: &DeliverySpec, field: &str) -> Result<Self, ConfigError> {
        let duration = |v: &Option<String>, name: &str, default: Duration| {
            match v {
            None => Ok(default),
            Some(text) => parse_duration(text)
                .filter(|d| *d >= Duration::from_millis(1) && *d <= Duration::from_secs(3600))
                .ok_or_else(|| {
                    ConfigError::invalid(
                        format!("{field}.{name}"),
                        format!("`{text}` is not a duration between 1ms and 1h; write it as `250ms`, `1s` or `2m`"),
                    )
                }),
        }
        };
        let count = |v: Option<u32>, name: &str, default: u32, max: u32| match v {
            None => Ok(default as usize),
            Some(n) if n >= 1 && n <= max => Ok(n as usize),
            Some(n) => Err(ConfigError::invalid(
                format!("{field}.{name}"),
                format!("{n} is out of range: between 1 and {max}"),
            )),
        };
        Ok(Delivery {
            flush_interval: duration(
                &spec.flush_interval,
                "flushInterval",
                Duration::from_millis(250),
            )?,
            max_pending: count(spec.max_pending, "maxPending", 100_000, 10_000_000)?,
            max_in_flight: count(spec.max_in_flight, "maxInFlight", 16, 1024)?,
            max_backoff: duration(&spec.max_backoff, "maxBackoff", Duration::from_secs(30))?,
        })
    }
}

/// A sink, validated.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub name: String,
    pub delivery: Delivery,
    pub store: StoreConfig,
}

#[derive(Debug, Clone)]
pub enum StoreConfig {
    Dynamodb(dynamodb::DynamoDbConfig),
    Neptune(neptune::NeptuneConfig),
    Kafka(kafka::KafkaSinkConfig),
    File(file::FileSinkConfig),
}

impl SinkConfig {
    /// Validates the pipeline's `sinks` list (names unique).
    pub fn from_specs(specs: &[SinkSpec]) -> Result<Vec<SinkConfig>, ConfigError> {
        let mut out: Vec<SinkConfig> = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let field = format!("sinks[{i}]");
            let name = spec.name();
            if name.trim().is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(ConfigError::invalid(
                    format!("{field}.name"),
                    format!("`{name}` is not a sink name: letters, digits, `-` and `_`"),
                ));
            }
            if out.iter().any(|s| s.name == name) {
                return Err(ConfigError::invalid(
                    format!("{field}.name"),
                    format!("another sink is already named `{name}`: give each a distinct `name`"),
                ));
            }
            let delivery = Delivery::from_spec(spec.delivery(), &format!("{field}.delivery"))?;
            let store = match spec {
                SinkSpec::Dynamodb(s) => {
                    StoreConfig::Dynamodb(dynamodb::DynamoDbConfig::from_spec(s, &field)?)
                }
                SinkSpec::Neptune(s) => {
                    StoreConfig::Neptune(neptune::NeptuneConfig::from_spec(s, &field)?)
                }
                SinkSpec::Kafka(s) => {
                    StoreConfig::Kafka(kafka::KafkaSinkConfig::from_spec(s, &field)?)
                }
                SinkSpec::File(s) => StoreConfig::File(file::FileSinkConfig::from_spec(s, &field)?),
            };
            out.push(SinkConfig {
                name,
                delivery,
                store,
            });
        }
        Ok(out)
    }
}
