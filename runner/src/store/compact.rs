//! Compaction off the engine thread: folds the committed log segments into a
//! new snapshot, keeping each key's greatest version, so that a long-running
//! pipeline's log (and its restore time) stays proportional to its live
//! state, not to its history. Segments and snapshots are immutable, so this
//! reads files the engine no longer writes; the engine goes on appending to
//! newer segments meanwhile.
//!
//! Memory stays bounded by one key group: the segments are first split by
//! key group into temporary files, then each group's snapshot file and
//! segment share are merged in a hash map.

use super::{
    install, key_group, read_all, remove_replaced, segment_name, snapshot_file_name, snapshot_sums,
    unmap_types, Committer, FileKind, GroupFiles, Reading, StoreError, ToRead,
};
use crate::config::Pipeline;
use crate::engine::supersedes;
use crate::observation::Observation;
use std::collections::HashMap;
use std::fs;
use std::path::Path;

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    pub generation: u64,
    pub segments_folded: usize,
    pub versions_kept: u64,
    pub versions_dropped: u64,
}

/// Folded when the committed segments hold more than this many bytes and
/// more than the snapshot itself.
pub const MIN_SEGMENT_BYTES: u64 = 64 << 20;

impl Committer {
    /// Compacts when the committed segments outweigh the snapshot (and
    /// [`MIN_SEGMENT_BYTES`]); `Ok(None)` when there is nothing worth doing.
    pub fn compact_if_due(&self, pipeline: &Pipeline) -> Result<Option<Compacted>, StoreError> {
        let m = self.manifest();
        let bytes = |names: &[String]| -> u64 {
            names
                .iter()
                .filter_map(|n| fs::metadata(self.dir.join(n)).ok())
                .map(|md| md.len())
                .sum()
        };
        let segments: Vec<String> = m.segments.iter().map(|s| segment_name(*s)).collect();
        let snapshot: Vec<String> = m
            .files()
            .into_iter()
            .filter(|f| f.starts_with("snapshot-"))
            .collect();
        let log = bytes(&segments);
        if log < self.min_compaction_bytes || log <= bytes(&snapshot) {
            return Ok(None);
        }
        self.compact(pipeline).map(Some)
    }

    /// Folds every committed segment into a new snapshot generation. A
    /// failure (a full disk, a damaged file) leaves the state as it was and
    /// removes the scratch files, so that they do not keep the disk full.
    pub fn compact(&self, pipeline: &Pipeline) -> Result<Compacted, StoreError> {
        let m = self.manifest();
        let next = m.generation() + 1;
        let work = self.dir.join(format!("compact-{next}.tmp"));
        let snap_tmp = self.dir.join(format!("snapshot-{next}.tmp"));
        let folded = self.fold(pipeline, &m, &work, &snap_tmp);
        let _ = fs::remove_dir_all(&work);
        let (sums, kept, dropped) = match folded {
            Ok(done) => done,
            Err(e) => {
                let _ = fs::remove_dir_all(&snap_tmp);
                return Err(e);
            }
        };
        install(&snap_tmp, &self.dir.join(format!("snapshot-{next}")))?;
        let folded = m.segments.clone();
        let previous = {
            let mut m = self.manifest.lock().expect("manifest lock");
            // Segments committed while this ran stay listed.
            m.remove_segments(|s| folded.contains(&s));
            let previous = m.install_snapshot(next, sums);
            m.compacted_through = m
                .compacted_through
                .max(folded.iter().copied().max().unwrap_or(0));
            m.write(&self.dir)?;
            previous
        };
        remove_replaced(&self.dir, folded.iter().copied(), previous);
        Ok(Compacted {
            generation: next,
            segments_folded: folded.len(),
            versions_kept: kept,
            versions_dropped: dropped,
        })
    }

    /// Writes the new snapshot's files into `snap_tmp`: the snapshot's and
    /// the segments' versions merged, each key's greatest kept.
    fn fold(
        &self,
        pipeline: &Pipeline,
        m: &super::Manifest,
        work: &Path,
        snap_tmp: &Path,
    ) -> Result<(Vec<super::FileSum>, u64, u64), StoreError> {
        let next = m.generation() + 1;
        let groups = m.key_groups;
        split_by_key_group(self, m, work, groups)?;
        let mut files = GroupFiles::create(snap_tmp, groups)?;
        let (mut kept, mut dropped) = (0u64, 0u64);
        for k in 0..groups {
            let mut current: HashMap<(String, String), Observation> = HashMap::new();
            // The snapshot's file is checked against its recorded sum: a
            // compaction must never turn damage into a new, valid-looking file.
            let mut sources = Vec::new();
            if let Some(g) = m.snapshot {
                let name = snapshot_file_name(g, k);
                sources.push(ToRead {
                    path: self.dir.join(&name),
                    kind: FileKind::Snapshot,
                    sum: m.sum(&name).cloned(),
                });
            }
            sources.push(ToRead {
                path: work.join(format!("kg-{k}.bin")),
                kind: FileKind::Snapshot,
                sum: None,
            });
            let how = Reading {
                types: &self.type_map,
                remap: true,
                repair: false,
                batch: 4096,
            };
            for file in &sources {
                for v in read_all(file, &how)? {
                    let key = (v.source.clone(), v.id.clone());
                    match current.get(&key) {
                        Some(stored) if !supersedes(stored, &v, pipeline) => dropped += 1,
                        Some(_) => {
                            dropped += 1;
                            current.insert(key, v);
                        }
                        None => {
                            current.insert(key, v);
                        }
                    }
                }
            }
            let mut versions: Vec<Observation> = current.into_values().collect();
            // A stable order, so that the same state gives the same file.
            versions.sort_by(|a, b| (&a.source, &a.id).cmp(&(&b.source, &b.id)));
            for mut v in versions {
                unmap_types(&mut v, &self.type_map);
                files.write(k, &v)?;
                kept += 1;
            }
        }
        Ok((snapshot_sums(next, files.finish(true)?), kept, dropped))
    }
}

/// Copies the frames of `segments` (checked against their recorded sums)
/// into one file per key group under `work`.
fn split_by_key_group(
    committer: &Committer,
    manifest: &super::Manifest,
    work: &Path,
    groups: u32,
) -> Result<(), StoreError> {
    let mut files = GroupFiles::create(work, groups)?;
    let how = Reading {
        types: &committer.type_map,
        remap: false,
        repair: false,
        batch: 4096,
    };
    for seq in &manifest.segments {
        let name = segment_name(*seq);
        let file = ToRead {
            path: committer.dir.join(&name),
            kind: FileKind::Committed,
            sum: manifest.sum(&name).cloned(),
        };
        for v in read_all(&file, &how)? {
            files.write(key_group(&v.source, &v.id, groups), &v)?;
        }
    }
    // Scratch files, read once and removed: no need to reach the disk.
    files.finish(false).map(|_| ())
}
