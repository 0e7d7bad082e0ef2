use super::{write_atomically, StoreError};
use crate::source::Positions;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Format 2 adds write-ahead log segments and source positions; format 1
/// states (one log per snapshot) are read and rewritten on open.
pub const FORMAT: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub key_groups: u32,
    /// The current snapshot generation; none before the first snapshot.
    pub snapshot: Option<u64>,
    /// Identifier type names, in the order stored type indexes refer to.
    pub identifier_types: Vec<String>,
    /// Sealed, durable log segments holding versions accepted after the
    /// snapshot, oldest first.
    #[serde(default)]
    pub segments: Vec<u64>,
    /// Where each source partition resumes: every message before these
    /// positions is in the snapshot or the sealed segments.
    #[serde(default)]
    pub positions: Positions,
    /// Every segment up to this number is folded into the snapshot; a file
    /// of one still on disk (a crash before its removal) is left over.
    #[serde(default)]
    pub compacted_through: u64,
    /// The last checkpoint these files were committed as.
    #[serde(default)]
    pub checkpoint: u64,
    /// Names the files of this state in shared checkpoint storage; stays the
    /// same when the state is restored elsewhere, so uploaded files are reused.
    #[serde(default)]
    pub state_id: String,
}

impl Manifest {
    pub fn new(key_groups: u32, identifier_types: Vec<String>) -> Self {
        Manifest {
            format: FORMAT,
            key_groups,
            snapshot: None,
            identifier_types,
            segments: Vec::new(),
            positions: Positions::default(),
            compacted_through: 0,
            checkpoint: 0,
            state_id: new_state_id(),
        }
    }

    /// The generation of the current snapshot (0 before the first).
    pub fn generation(&self) -> u64 {
        self.snapshot.unwrap_or(0)
    }

    /// The file names (relative to the state directory) that hold the state
    /// this manifest describes.
    pub fn files(&self) -> Vec<String> {
        let mut files: Vec<String> = match self.snapshot {
            Some(g) => (0..self.key_groups)
                .map(|k| format!("snapshot-{g}/kg-{k}.bin"))
                .collect(),
            None => Vec::new(),
        };
        files.extend(self.segments.iter().map(|s| segment_name(*s)));
        files
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

/// The file name of write-ahead log segment `seq`.
pub fn segment_name(seq: u64) -> String {
    format!("wal-{seq:010}.bin")
}

/// The segment number of a file name written by [`segment_name`].
pub fn parse_segment_name(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?
        .strip_suffix(".bin")?
        .parse()
        .ok()
}

/// 64 random bits from the OS, as hex: unique enough to keep states apart in
/// one checkpoint bucket.
fn new_state_id() -> String {
    use rand::RngCore;
    format!("{:016x}", rand::rngs::OsRng.next_u64())
}
