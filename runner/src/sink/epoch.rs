//! The writer epoch: a number every runner of a lineage claims when it
//! starts, greater than any earlier runner's, that fences writes (see
//! [`super::flush::version`]). It is recorded where the lineage lives: in
//! the state directory (`WRITER_EPOCH`) and, with checkpoint storage, as an
//! object `writers/<epoch>`, so that a runner starting on an empty volume
//! still claims past its predecessors. Two runners starting at the same
//! instant on one lineage are what the pipeline's lease rules out.

use crate::checkpoint::CheckpointStorage;
use std::path::Path;

const LOCAL_FILE: &str = "WRITER_EPOCH";
const PREFIX: &str = "writers/";

#[derive(Debug, thiserror::Error)]
pub enum EpochError {
    #[error("cannot record the writer epoch in {path}: {source}")]
    Local {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot record the writer epoch in checkpoint storage: {0}")]
    Storage(#[from] crate::checkpoint::StorageError),
    #[error("the writer epochs of this lineage are exhausted")]
    Exhausted,
}

/// Claims the next writer epoch of the lineage.
pub fn claim(
    state_dir: Option<&Path>,
    storage: Option<&CheckpointStorage>,
) -> Result<u32, EpochError> {
    let mut last = 0u32;
    if let Some(dir) = state_dir {
        let path = dir.join(LOCAL_FILE);
        if let Ok(text) = std::fs::read_to_string(&path) {
            last = last.max(text.trim().parse().unwrap_or(0));
        }
    }
    if let Some(storage) = storage {
        for object in storage.list(PREFIX)? {
            let name = object.key.rsplit('/').next().unwrap_or_default();
            if let Ok(n) = name.parse::<u32>() {
                last = last.max(n);
            }
        }
    }
    if state_dir.is_none() && storage.is_none() {
        // Nothing records the lineage: seconds since 2020 keep growing
        // across restarts of a stateless runner.
        last = last.max(seconds_since_2020());
    }
    let epoch = last.checked_add(1).ok_or(EpochError::Exhausted)?;
    if let Some(storage) = storage {
        storage.put(&format!("{PREFIX}{epoch:010}"), Vec::new())?;
        // Older claims only need the newest to stay.
        for object in storage.list(PREFIX)? {
            let name = object.key.rsplit('/').next().unwrap_or_default();
            if name.parse::<u32>().is_ok_and(|n| n < epoch) {
                let _ = storage.delete(&object.key);
            }
        }
    }
    if let Some(dir) = state_dir {
        let path = dir.join(LOCAL_FILE);
        let local = |source| EpochError::Local {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(local)?;
        let tmp = dir.join(format!("{LOCAL_FILE}.tmp"));
        std::fs::write(&tmp, format!("{epoch}\n")).map_err(local)?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(local)?;
        std::fs::rename(&tmp, &path).map_err(local)?;
    }
    Ok(epoch)
}

fn seconds_since_2020() -> u32 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    u32::try_from(now.saturating_sub(1_577_836_800)).unwrap_or(u32::MAX - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_start_claims_a_greater_epoch_locally_and_in_storage() {
        let dir = tempfile::tempdir().unwrap();
        let storage_dir = tempfile::tempdir().unwrap();
        let storage = CheckpointStorage::from_url(storage_dir.path().to_str().unwrap()).unwrap();
        let state = dir.path().join("state");
        let a = claim(Some(&state), Some(&storage)).unwrap();
        let b = claim(Some(&state), Some(&storage)).unwrap();
        assert!(b > a);
        // A new volume (empty state directory) still claims past both.
        let fresh = dir.path().join("fresh");
        let c = claim(Some(&fresh), Some(&storage)).unwrap();
        assert!(c > b);
        // Only the newest claim is kept in storage.
        let keys: Vec<String> = storage
            .list(PREFIX)
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(keys, vec![format!("writers/{c:010}")]);
        // The state directory alone also orders its runners.
        let d = claim(Some(&fresh), None).unwrap();
        assert!(d > c);
    }
}
