//! `_metadata`: the object that makes a checkpoint or savepoint exist. It is
//! written last, after every file it lists, so a checkpoint without it (a
//! crash mid-upload) is ignored, and a listed file that is missing or whose
//! checksum differs makes the whole checkpoint unusable.
//!
//! Format 1. A newer runner reads every older format; a runner refuses a
//! format newer than its own, naming both.

use crate::source::Positions;
use serde::{Deserialize, Serialize};

pub const FORMAT: u32 = 1;
pub const METADATA: &str = "_metadata";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    /// Periodic; its files live in the shared folder beside it and are
    /// shared with later checkpoints (incremental).
    Checkpoint,
    /// On demand; self-contained: every file lives under its own folder.
    Savepoint,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    pub format: u32,
    pub kind: Kind,
    pub id: u64,
    pub created_unix_ms: u64,
    pub pipeline_name: String,
    /// The lineage of the state; checkpoints of one lineage share files.
    pub state_id: String,
    pub key_groups: u32,
    /// Identifier type names, in the order stored type indexes refer to.
    pub identifier_types: Vec<String>,
    /// Source positions the state covers.
    pub positions: Positions,
    /// Snapshot generation of the files, if any.
    pub snapshot: Option<u64>,
    /// Log segments after the snapshot, oldest first.
    pub segments: Vec<u64>,
    /// Segments up to this number are folded into the snapshot; new ones
    /// are numbered above it, so that names in shared storage never repeat.
    #[serde(default)]
    pub compacted_through: u64,
    pub files: Vec<FileEntry>,
    /// The pipeline the state was written with (JSON; credentials removed).
    pub pipeline: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileEntry {
    /// Path inside a state directory (`snapshot-3/kg-7.bin`, `wal-0000000012.bin`).
    pub name: String,
    /// Object key, relative to the folder that holds the checkpoint folders
    /// (checkpoints) or to the savepoint folder (savepoints).
    pub key: String,
    pub bytes: u64,
    pub crc32: u32,
}

impl Metadata {
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    pub fn parse(bytes: &[u8]) -> Result<Metadata, String> {
        #[derive(Deserialize)]
        struct Version {
            format: u32,
        }
        let v: Version =
            serde_json::from_slice(bytes).map_err(|e| format!("not checkpoint metadata: {e}"))?;
        if v.format > FORMAT {
            return Err(format!(
                "written in format {} by a newer runner; this runner reads formats up to {FORMAT}",
                v.format
            ));
        }
        serde_json::from_slice(bytes).map_err(|e| format!("not checkpoint metadata: {e}"))
    }
}

/// The folder name of checkpoint `id`: fixed width, so names sort by id.
pub fn checkpoint_folder(id: u64) -> String {
    format!("chk-{id:010}")
}

pub fn parse_checkpoint_folder(name: &str) -> Option<u64> {
    name.strip_prefix("chk-")?.parse().ok()
}

pub use crate::store::file_crc32;
