use super::{write_atomically, StoreError};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub key_groups: u32,
    /// The current snapshot generation; none before the first snapshot.
    pub snapshot: Option<u64>,
    /// Identifier type names, in the order stored type indexes refer to.
    pub identifier_types: Vec<String>,
}

impl Manifest {
    pub fn new(key_groups: u32, identifier_types: Vec<String>) -> Self {
        Manifest {
            format: FORMAT,
            key_groups,
            snapshot: None,
            identifier_types,
        }
    }

    /// The generation the current log belongs to.
    pub fn generation(&self) -> u64 {
        self.snapshot.unwrap_or(0)
    }

    pub fn read(dir: &Path) -> Result<Option<Manifest>, StoreError> {
        let path = dir.join("MANIFEST");
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|source| StoreError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let m: Manifest = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            path: dir.display().to_string(),
            message: format!("MANIFEST is not readable: {e}"),
        })?;
        if m.format > FORMAT {
            return Err(StoreError::Corrupt {
                path: dir.display().to_string(),
                message: format!(
                    "state format {} is newer than this runner (format {FORMAT})",
                    m.format
                ),
            });
        }
        Ok(Some(m))
    }

    pub fn write(&self, dir: &Path) -> Result<(), StoreError> {
        let text = serde_json::to_string_pretty(self).expect("a manifest serializes");
        write_atomically(&dir.join("MANIFEST"), text.as_bytes())
    }
}
