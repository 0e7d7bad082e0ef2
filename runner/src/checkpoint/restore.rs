//! Finding and restoring checkpoints and savepoints into a state directory.

use super::metadata::{
    self, checkpoint_folder, file_crc32, parse_checkpoint_folder, Kind, Metadata,
};
use super::storage::CheckpointStorage;
use super::CheckpointError;
use crate::store::Manifest;
use std::path::Path;

/// Ids of the checkpoints in `storage` that have `_metadata`, oldest first.
pub fn complete_checkpoints(storage: &CheckpointStorage) -> Result<Vec<u64>, CheckpointError> {
    let mut found = Vec::new();
    for folder in storage.list_folders()? {
        let Some(id) = parse_checkpoint_folder(&folder) else {
            continue;
        };
        if storage.exists(&format!("{folder}/{}", metadata::METADATA))? {
            found.push(id);
        }
    }
    found.sort_unstable();
    Ok(found)
}

pub fn read_metadata(
    storage: &CheckpointStorage,
    folder: &str,
) -> Result<Metadata, CheckpointError> {
    let key = if folder.is_empty() {
        metadata::METADATA.to_string()
    } else {
        format!("{folder}/{}", metadata::METADATA)
    };
    let bytes = storage.get(&key)?.ok_or_else(|| CheckpointError::Invalid {
        url: format!("{}/{key}", storage.url().trim_end_matches('/')),
        message: "no _metadata: not a complete checkpoint or savepoint".into(),
    })?;
    Metadata::parse(&bytes).map_err(|message| CheckpointError::Invalid {
        url: format!("{}/{key}", storage.url().trim_end_matches('/')),
        message,
    })
}

/// The newest complete checkpoint whose metadata reads, if any.
pub fn latest(storage: &CheckpointStorage) -> Result<Option<Metadata>, CheckpointError> {
    for id in complete_checkpoints(storage)?.into_iter().rev() {
        match read_metadata(storage, &checkpoint_folder(id)) {
            Ok(md) => return Ok(Some(md)),
            Err(e) => {
                tracing::error!(checkpoint = id, error = %e, "skipping an unreadable checkpoint")
            }
        }
    }
    Ok(None)
}

/// Restores the newest usable checkpoint under `url` into `dir`; a corrupted
/// or partial one is skipped with an error log and the previous one tried.
pub fn restore_latest(url: &str, dir: &Path) -> Result<Option<Metadata>, CheckpointError> {
    let storage = CheckpointStorage::from_url(url)?;
    // What an interrupted earlier restore left must not mix in.
    clear_dir(dir)?;
    for id in complete_checkpoints(&storage)?.into_iter().rev() {
        let attempt = read_metadata(&storage, &checkpoint_folder(id))
            .and_then(|md| download(&storage, &md, dir).map(|()| md));
        match attempt {
            Ok(md) => return Ok(Some(md)),
            Err(e) => {
                tracing::error!(checkpoint = id, error = %e, "checkpoint unusable; trying the previous one");
                clear_dir(dir)?;
            }
        }
    }
    Ok(None)
}

/// Restores the checkpoint or savepoint folder at `url` into `dir`.
pub fn restore(url: &str, dir: &Path) -> Result<Metadata, CheckpointError> {
    let folder_storage = CheckpointStorage::from_url(url)?;
    let md = read_metadata(&folder_storage, "")?;
    clear_dir(dir)?;
    let files_storage = match md.kind {
        Kind::Savepoint => folder_storage,
        // A checkpoint's files are shared, beside the checkpoint folders.
        Kind::Checkpoint => CheckpointStorage::from_url(parent_url(url))?,
    };
    download(&files_storage, &md, dir)?;
    Ok(md)
}

/// Downloads and verifies every file, then writes the state's manifest.
fn download(storage: &CheckpointStorage, md: &Metadata, dir: &Path) -> Result<(), CheckpointError> {
    std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Local {
        path: dir.display().to_string(),
        source,
    })?;
    for f in &md.files {
        let target = dir.join(&f.name);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|source| CheckpointError::Local {
                path: parent.display().to_string(),
                source,
            })?;
        }
        storage.get_to_file(&f.key, &target)?;
        let (bytes, crc32) = file_crc32(&target).map_err(|source| CheckpointError::Local {
            path: target.display().to_string(),
            source,
        })?;
        if bytes != f.bytes || crc32 != f.crc32 {
            return Err(CheckpointError::Invalid {
                url: format!("{}/{}", storage.url().trim_end_matches('/'), f.key),
                message: format!(
                    "file differs from the checkpoint's record ({bytes} bytes, crc {crc32:08x}; expected {} bytes, crc {:08x})",
                    f.bytes, f.crc32
                ),
            });
        }
    }
    let mut manifest = Manifest::new(md.key_groups, md.identifier_types.clone());
    manifest.snapshot = md.snapshot;
    manifest.segments = md.segments.clone();
    manifest.compacted_through = md.compacted_through;
    manifest.positions = md.positions.clone();
    manifest.checkpoint = md.id;
    if md.kind == Kind::Checkpoint {
        // The same lineage goes on: its files in storage are reused.
        manifest.state_id = md.state_id.clone();
    }
    manifest.write(dir)?;
    Ok(())
}

/// Removes the state files a failed or interrupted download left (and only
/// those: `--state` may point at a folder holding other things).
fn clear_dir(dir: &Path) -> Result<(), CheckpointError> {
    let local = |source| CheckpointError::Local {
        path: dir.display().to_string(),
        source,
    };
    if !dir.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(local)? {
        let path = entry.map_err(local)?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let ours = name.starts_with("snapshot-")
            || crate::store::parse_segment_name(name).is_some()
            || name.ends_with(".tmp")
            || (name.starts_with('.') && name.ends_with(".part"))
            || name == "pipeline.json"
            || name == "model.json";
        if !ours {
            continue;
        }
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(local)?;
    }
    Ok(())
}

/// `s3://b/p/chk-0000000003` → `s3://b/p`; `/x/chk-3/` → `/x`.
fn parent_url(url: &str) -> &str {
    let trimmed = url.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(i) if !trimmed[..i].ends_with(':') && !trimmed[..i].ends_with(":/") => &trimmed[..i],
        _ => trimmed,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_parent_of_a_checkpoint_folder() {
        assert_eq!(super::parent_url("s3://b/p/chk-0000000003"), "s3://b/p");
        assert_eq!(super::parent_url("/x/y/chk-3/"), "/x/y");
        assert_eq!(super::parent_url("file:///x/chk-3"), "file:///x");
    }
}
