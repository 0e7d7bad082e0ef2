//! Writing a snapshot: every key group's versions to a new
//! `snapshot-<g>/` folder, installed whole, and the files it replaces removed.

use super::*;

/// Writes one framed file per key group into `snap`, snapshot generation
/// `generation` (through a temporary folder renamed at the end, so a crash
/// leaves no half snapshot); returns the files' sums for the manifest.
pub(crate) fn write_snapshot(
    snap: &Path,
    generation: u64,
    groups: u32,
    versions: impl Iterator<Item = Observation>,
    type_map: &[TypeId],
) -> Result<Vec<FileSum>, StoreError> {
    let tmp = snap.with_extension("tmp");
    let written = (|| {
        let mut files = GroupFiles::create(&tmp, groups)?;
        for mut v in versions {
            let k = key_group(&v.source, &v.id, groups);
            unmap_types(&mut v, type_map);
            files.write(k, &v)?;
        }
        files.finish(true)
    })();
    let sums = match written {
        Ok(sums) => sums,
        Err(e) => {
            // A full disk must not stay full of a snapshot never used.
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    install(&tmp, snap)?;
    Ok(snapshot_sums(generation, sums))
}

/// Names the per-group sums [`GroupFiles::finish`] returns.
pub(super) fn snapshot_sums(generation: u64, sums: Vec<(u64, u32)>) -> Vec<FileSum> {
    sums.into_iter()
        .enumerate()
        .map(|(k, (bytes, crc32))| FileSum {
            name: snapshot_file_name(generation, k as u32),
            bytes,
            crc32,
        })
        .collect()
}

/// One framed file per key group, `kg-<k>.bin`, in a folder created empty.
pub(super) struct GroupFiles {
    pub(super) dir: PathBuf,
    pub(super) writers: Vec<FrameWriter<Summing<BufWriter<File>>>>,
}

impl GroupFiles {
    pub(super) fn create(dir: &Path, groups: u32) -> Result<GroupFiles, StoreError> {
        if dir.exists() {
            fs::remove_dir_all(dir).map_err(io(dir))?;
        }
        fs::create_dir_all(dir).map_err(io(dir))?;
        let writers = (0..groups)
            .map(|k| {
                let path = dir.join(format!("kg-{k}.bin"));
                File::create(&path)
                    .map(|f| FrameWriter::new(Summing::new(BufWriter::with_capacity(64 << 10, f))))
                    .map_err(io(&path))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GroupFiles {
            dir: dir.to_path_buf(),
            writers,
        })
    }

    pub(super) fn write(&mut self, group: u32, v: &Observation) -> Result<(), StoreError> {
        self.writers[group as usize]
            .write(v)
            .map(|_| ())
            .map_err(io(&self.dir))
    }

    /// Flushes every file; with `durable`, also syncs it to disk. Returns
    /// each group's length and CRC-32.
    pub(super) fn finish(mut self, durable: bool) -> Result<Vec<(u64, u32)>, StoreError> {
        let mut sums = Vec::with_capacity(self.writers.len());
        for w in &mut self.writers {
            let summing = w.inner_mut();
            summing.flush().map_err(io(&self.dir))?;
            if durable {
                summing
                    .get_mut()
                    .get_ref()
                    .sync_all()
                    .map_err(io(&self.dir))?;
            }
            sums.push(summing.sum());
        }
        Ok(sums)
    }
}

/// Puts the finished folder `tmp` in place as `snap`, replacing one a crash
/// left before the manifest pointed at it.
pub(super) fn install(tmp: &Path, snap: &Path) -> Result<(), StoreError> {
    if snap.exists() {
        fs::remove_dir_all(snap).map_err(io(snap))?;
    }
    fs::rename(tmp, snap).map_err(io(snap))
}

/// Once the manifest points at a new snapshot: removes the segments it
/// folded and the snapshot it replaced.
pub(super) fn remove_replaced(
    dir: &Path,
    segments: impl IntoIterator<Item = u64>,
    previous: Option<u64>,
) {
    for seq in segments {
        let _ = fs::remove_file(dir.join(segment_name(seq)));
    }
    if let Some(p) = previous {
        let _ = fs::remove_dir_all(dir.join(format!("snapshot-{p}")));
    }
}
