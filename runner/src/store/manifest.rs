use super::checksum::FileSum;
use super::{write_atomically, StoreError};
use crate::source::Positions;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

/// Format 3 records every committed file's length and checksum, a checksum
/// of the manifest itself, and starts each log segment with a header naming
/// its state. Format 2 added log segments and source positions; format 1
/// kept one log per snapshot. Older formats are read and rewritten on open.
pub const FORMAT: u32 = 3;

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
    /// The newest checkpoint in shared storage that this state is a direct
    /// continuation of: the last one it committed there, or the one it was
    /// restored from. A newer one in storage was written by another runner,
    /// so this state is a branch that must not go on (see
    /// `checkpoint::restore::local_state_is_behind`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_checkpoint: Option<u64>,
    /// Length and CRC-32 of every file of [`Manifest::files`] (format 3).
    #[serde(default)]
    pub sums: Vec<FileSum>,
    /// Segments up to this number were written by an older runner, with no
    /// header: set when an older state is upgraded, so that one of them not
    /// committed yet is still adopted after the upgrade.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub headerless_through: u64,
    /// CRC-32 of this manifest's other fields (format 3): a manifest edited
    /// by hand, or damaged, is refused rather than trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<u32>,
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
            stored_checkpoint: None,
            sums: Vec::new(),
            headerless_through: 0,
            checksum: None,
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
                .map(|k| snapshot_file_name(g, k))
                .collect(),
            None => Vec::new(),
        };
        files.extend(self.segments.iter().map(|s| segment_name(*s)));
        files
    }

    /// The recorded sum of a committed file.
    pub fn sum(&self, name: &str) -> Option<&FileSum> {
        self.sums.iter().find(|s| s.name == name)
    }

    /// Points the manifest at snapshot `generation`, whose files are
    /// `sums`; the segments it folded are no longer listed.
    pub fn install_snapshot(&mut self, generation: u64, sums: Vec<FileSum>) -> Option<u64> {
        let previous = self.snapshot.replace(generation);
        let segments: HashSet<String> = self.segments.iter().map(|s| segment_name(*s)).collect();
        self.sums
            .retain(|s| segments.contains(&s.name) && !s.name.starts_with("snapshot-"));
        self.sums.extend(sums);
        previous
    }

    /// Lists a committed segment with its sum.
    pub fn add_segment(&mut self, seq: u64, sum: FileSum) {
        if !self.segments.contains(&seq) {
            self.segments.push(seq);
            self.segments.sort_unstable();
        }
        self.sums.retain(|s| s.name != sum.name);
        self.sums.push(sum);
    }

    /// Stops listing the segments `drop` says, with their sums.
    pub fn remove_segments(&mut self, drop: impl Fn(u64) -> bool) {
        let removed: HashSet<String> = self
            .segments
            .iter()
            .filter(|s| drop(**s))
            .map(|s| segment_name(*s))
            .collect();
        self.segments.retain(|s| !drop(*s));
        self.sums.retain(|s| !removed.contains(&s.name));
    }

    pub fn read(dir: &Path) -> Result<Option<Manifest>, StoreError> {
        let path = dir.join("MANIFEST");
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read(&path).map_err(|source| StoreError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Manifest::parse(&text, dir).map(Some)
    }

    /// Reads and checks a manifest's bytes (`dir` is for messages).
    pub fn parse(text: &[u8], dir: &Path) -> Result<Manifest, StoreError> {
        let corrupt = |message: String| StoreError::Corrupt {
            path: dir.join("MANIFEST").display().to_string(),
            message,
        };
        let mut m: Manifest = serde_json::from_slice(text)
            .map_err(|e| corrupt(format!("MANIFEST is not readable: {e}")))?;
        if m.format > FORMAT {
            return Err(corrupt(format!(
                "state format {} is newer than this runner (format {FORMAT})",
                m.format
            )));
        }
        if m.format >= 3 {
            let Some(recorded) = m.checksum.take() else {
                return Err(corrupt(
                    "MANIFEST has no checksum (format 3 always has one): it was edited or damaged"
                        .into(),
                ));
            };
            let actual = m.content_checksum();
            if recorded != actual {
                return Err(corrupt(format!(
                    "MANIFEST checksum {recorded:08x} does not match its content ({actual:08x}): it was edited or damaged; \
                     run with `--restore latest` to replace this state with the newest checkpoint"
                )));
            }
        }
        m.validate().map_err(corrupt)?;
        Ok(m)
    }

    /// What any manifest must satisfy, whoever wrote it.
    fn validate(&self) -> Result<(), String> {
        if self.key_groups == 0 || self.key_groups > crate::config::MAX_KEY_GROUPS {
            return Err(format!(
                "MANIFEST says {} key groups (a state has 1 to {})",
                self.key_groups,
                crate::config::MAX_KEY_GROUPS
            ));
        }
        let mut seen = HashSet::new();
        for t in &self.identifier_types {
            if !seen.insert(t) {
                return Err(format!("MANIFEST lists identifier type `{t}` twice"));
            }
        }
        if self.snapshot == Some(0) {
            return Err("MANIFEST names snapshot generation 0 (generations start at 1)".into());
        }
        for pair in self.segments.windows(2) {
            if pair[0] >= pair[1] {
                return Err(format!(
                    "MANIFEST lists segments out of order ({} before {})",
                    pair[0], pair[1]
                ));
            }
        }
        if let Some(first) = self.segments.first() {
            if *first <= self.compacted_through {
                return Err(format!(
                    "MANIFEST lists segment {first} as live but also as folded into the snapshot (compacted_through {})",
                    self.compacted_through
                ));
            }
        }
        if self.format >= 3 {
            let expected: HashSet<String> = self.files().into_iter().collect();
            let recorded: HashSet<&str> = self.sums.iter().map(|s| s.name.as_str()).collect();
            if recorded.len() != self.sums.len() {
                return Err("MANIFEST records a file's sum twice".into());
            }
            if let Some(missing) = expected.iter().find(|f| !recorded.contains(f.as_str())) {
                return Err(format!(
                    "MANIFEST records no length and checksum for {missing}"
                ));
            }
            if let Some(extra) = recorded.iter().find(|f| !expected.contains(**f)) {
                return Err(format!(
                    "MANIFEST records a sum for {extra}, which is not one of its files"
                ));
            }
        }
        Ok(())
    }

    /// CRC-32 of the compact JSON of every field but the checksum.
    fn content_checksum(&self) -> u32 {
        let mut unsummed = self.clone();
        unsummed.checksum = None;
        crc32fast::hash(&serde_json::to_vec(&unsummed).unwrap_or_default())
    }

    pub fn write(&self, dir: &Path) -> Result<(), StoreError> {
        let mut summed = self.clone();
        summed.format = FORMAT;
        summed.checksum = None;
        summed.checksum = Some(summed.content_checksum());
        // Never leave a manifest the next open would refuse.
        summed.validate().map_err(|message| StoreError::Corrupt {
            path: dir.join("MANIFEST").display().to_string(),
            message: format!("refusing to write an inconsistent MANIFEST: {message}"),
        })?;
        let text = serde_json::to_string_pretty(&summed).unwrap_or_default();
        write_atomically(&dir.join("MANIFEST"), text.as_bytes())
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The file of key group `k` in snapshot generation `g`.
pub fn snapshot_file_name(g: u64, k: u32) -> String {
    format!("snapshot-{g}/kg-{k}.bin")
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
pub fn new_state_id() -> String {
    use rand::RngCore;
    format!("{:016x}", rand::rngs::OsRng.next_u64())
}
