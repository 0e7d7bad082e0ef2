//! The checkpoint thread's side of the store: making sealed segments
//! durable and listing them in the MANIFEST (its compaction of a long log
//! into a snapshot is in `compact.rs`).

use super::*;

/// Commits sealed segments into the manifest: the durable half of a
/// checkpoint, run on the checkpoint thread.
#[derive(Clone)]
pub struct Committer {
    pub(super) dir: PathBuf,
    pub(super) manifest: Arc<Mutex<Manifest>>,
    /// Stored type indexes to the pipeline's (for compaction's comparisons).
    pub(super) type_map: Arc<Vec<TypeId>>,
    /// Compaction threshold; tests lower it.
    pub(super) min_compaction_bytes: u64,
}

impl Committer {
    /// Makes `segments` durable and records them with the positions they
    /// cover; returns the manifest as committed.
    pub fn commit(
        &self,
        segments: &[u64],
        positions: &Positions,
        checkpoint: u64,
    ) -> Result<Manifest, StoreError> {
        let mut sums = Vec::with_capacity(segments.len());
        for seq in segments {
            let name = segment_name(*seq);
            let path = self.dir.join(&name);
            let (bytes, crc32) = file_crc32(&path).map_err(io(&path))?;
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(io(&path))?;
            sums.push((*seq, FileSum { name, bytes, crc32 }));
        }
        let mut m = self.manifest.lock().expect("manifest lock");
        for (seq, sum) in sums {
            m.add_segment(seq, sum);
        }
        m.positions = positions.clone();
        m.checkpoint = checkpoint;
        m.write(&self.dir)?;
        Ok(m.clone())
    }

    /// Records that checkpoint `id` of this state is committed in shared
    /// storage.
    pub fn record_stored(&self, id: u64) -> Result<(), StoreError> {
        let mut m = self.manifest.lock().expect("manifest lock");
        m.stored_checkpoint = Some(id);
        m.write(&self.dir)
    }

    pub fn manifest(&self) -> Manifest {
        self.manifest.lock().expect("manifest lock").clone()
    }

    /// The same committer, compacting from `bytes` of log on.
    pub fn with_compaction_threshold(mut self, bytes: u64) -> Self {
        self.min_compaction_bytes = bytes;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
