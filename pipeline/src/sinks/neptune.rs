//! Neptune sink settings, validated once.

use crate::config::ConfigError;
use kith_api::pipeline::NeptuneSinkSpec;

#[derive(Debug, Clone, PartialEq)]
pub struct NeptuneConfig {
    pub endpoint: String,
    pub region: Option<String>,
    /// Most upserts (vertices or one profile's edges) per request.
    pub batch_size: usize,
    pub id_prefix: String,
}

/// Neptune's guidance: about 200 records per request.
pub const DEFAULT_BATCH: u32 = 200;

impl NeptuneConfig {
    pub fn from_spec(spec: &NeptuneSinkSpec, field: &str) -> Result<Self, ConfigError> {
        let e = spec.endpoint.trim();
        if !(e.starts_with("http://") || e.starts_with("https://")) || e.len() < 10 {
            return Err(ConfigError::invalid(
                format!("{field}.endpoint"),
                format!("`{}` is not a URL: write the cluster endpoint as `https://host:8182` (or `http://` for a local Gremlin Server)", spec.endpoint),
            ));
        }
        let batch_size = spec.batch_size.unwrap_or(DEFAULT_BATCH);
        if !(1..=1000).contains(&batch_size) {
            return Err(ConfigError::invalid(
                format!("{field}.batchSize"),
                format!(
                    "{batch_size} is out of range: between 1 and 1000 (Neptune advises about 200)"
                ),
            ));
        }
        let id_prefix = spec.id_prefix.clone().unwrap_or_default();
        if id_prefix.len() > 64
            || !id_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
        {
            return Err(ConfigError::invalid(
                format!("{field}.idPrefix"),
                format!("`{id_prefix}` is not an id prefix: up to 64 of letters, digits, `-`, `_`, `:` and `.`"),
            ));
        }
        Ok(NeptuneConfig {
            endpoint: e.trim_end_matches('/').to_string(),
            region: spec.region.clone().filter(|r| !r.trim().is_empty()),
            batch_size: batch_size as usize,
            id_prefix,
        })
    }
}
