//! DynamoDB sink settings, validated once.

use crate::config::{parse_duration, ConfigError};
use kith_api::pipeline::{DynamoDbSinkSpec, DynamoDbWriteMode};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct DynamoDbConfig {
    pub profiles_table: String,
    pub identifiers_table: String,
    pub create_tables: bool,
    pub write_mode: DynamoDbWriteMode,
    pub tombstone_ttl: Duration,
    pub region: Option<String>,
    pub endpoint: Option<String>,
}

impl DynamoDbConfig {
    pub fn from_spec(spec: &DynamoDbSinkSpec, field: &str) -> Result<Self, ConfigError> {
        for (name, value) in [
            ("profilesTable", &spec.profiles_table),
            ("identifiersTable", &spec.identifiers_table),
        ] {
            check_table_name(value)
                .map_err(|m| ConfigError::invalid(format!("{field}.{name}"), m))?;
        }
        if spec.profiles_table == spec.identifiers_table {
            return Err(ConfigError::invalid(
                format!("{field}.identifiersTable"),
                "must differ from `profilesTable`: profiles and the identifier index are two tables",
            ));
        }
        let tombstone_ttl = match &spec.tombstone_ttl {
            None => Duration::from_secs(7 * 24 * 3600),
            Some(text) => parse_duration(text)
                .filter(|d| *d >= Duration::from_secs(60) && *d <= Duration::from_secs(366 * 24 * 3600))
                .ok_or_else(|| {
                    ConfigError::invalid(
                        format!("{field}.tombstoneTtl"),
                        format!("`{text}` is not a duration between 1m and 8784h; write it as `24h` or `168h`"),
                    )
                })?,
        };
        let endpoint = match &spec.endpoint {
            Some(e) if e.trim().is_empty() => None,
            Some(e) if !(e.starts_with("http://") || e.starts_with("https://")) => {
                return Err(ConfigError::invalid(
                    format!("{field}.endpoint"),
                    format!("`{e}` is not a URL: write it as `https://host[:port]` (or `http://` for a local endpoint)"),
                ))
            }
            other => other.clone(),
        };
        Ok(DynamoDbConfig {
            profiles_table: spec.profiles_table.clone(),
            identifiers_table: spec.identifiers_table.clone(),
            create_tables: spec.create_tables,
            write_mode: spec.write_mode,
            tombstone_ttl,
            region: spec.region.clone().filter(|r| !r.trim().is_empty()),
            endpoint,
        })
    }
}

/// DynamoDB's rule for table names: 3 to 255 of `a-z A-Z 0-9 _ - .`.
fn check_table_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if (3..=255).contains(&name.len()) && ok_chars {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a DynamoDB table name: 3 to 255 characters of letters, digits, `_`, `-` and `.`"
        ))
    }
}
