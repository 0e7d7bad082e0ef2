//! File sink settings, validated once.

use crate::config::ConfigError;
use kith_api::pipeline::FileSinkSpec;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub struct FileSinkConfig {
    pub path: PathBuf,
}

impl FileSinkConfig {
    pub fn from_spec(spec: &FileSinkSpec, field: &str) -> Result<Self, ConfigError> {
        if spec.path.trim().is_empty() {
            return Err(ConfigError::invalid(
                format!("{field}.path"),
                "must name the file change events are appended to",
            ));
        }
        Ok(FileSinkConfig {
            path: PathBuf::from(&spec.path),
        })
    }
}
