//! Finding and restoring checkpoints and savepoints into a state directory.

use super::metadata::{
    self, checkpoint_folder, file_crc32, parse_checkpoint_folder, Kind, Metadata,
};
use super::storage::CheckpointStorage;
use super::CheckpointError;
use crate::store::{FileSum, Manifest};
use std::collections::HashSet;
use std::path::{Component, Path};

/// Present while a restore is writing into a state directory: files beside
/// it without a MANIFEST are an interrupted restore (safe to clear and
/// redo), not a damaged state.
pub const RESTORING: &str = "RESTORING";

/// Files a checkpoint carries beside its snapshot and segments.
const COMPANION_FILES: [&str; 2] = ["pipeline.json", "model.json"];

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
            Err(e) if checkpoint_unusable(&e) => {
                tracing::error!(checkpoint = id, error = %e, "skipping an unreadable checkpoint")
            }
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// The newest checkpoint in `storage` when the state in `dir` does not
/// continue it: storage holds a checkpoint newer than the last one this
/// state committed there or was restored from. Another runner of the
/// pipeline then took over from an older checkpoint and went on, so the
/// local state is a branch it left behind; going on from it would read
/// again what the other runner applied, from offsets the source may no
/// longer hold. None when the local state may go on (or holds none).
pub fn newer_than_local(
    storage: &CheckpointStorage,
    dir: &Path,
) -> Result<Option<Metadata>, CheckpointError> {
    let Ok(Some(local)) = Manifest::read(dir) else {
        // No readable state: opening it reports what is wrong.
        return Ok(None);
    };
    let Some(latest) = latest(storage)? else {
        return Ok(None);
    };
    let behind = match local.stored_checkpoint {
        Some(stored) => latest.id > stored,
        // A state from a runner that did not record it: its own lineage's
        // newer checkpoint is the only sign it can give.
        None => latest.state_id == local.state_id && latest.id > local.checkpoint,
    };
    Ok(behind.then_some(latest))
}

/// Whether a failed restore of a checkpoint means the checkpoint itself is
/// unusable (its metadata does not read, a file is missing or fails its
/// checksum), so the previous one may be tried. Anything else (storage
/// unreachable, timing out, answering errors; the local disk failing) says
/// nothing about the checkpoint: falling back then would start from older
/// state than storage holds, and the next checkpoint's retention could
/// delete the newer, good one.
fn checkpoint_unusable(e: &CheckpointError) -> bool {
    match e {
        CheckpointError::Invalid { .. } => true,
        CheckpointError::Storage(s) => s.is_missing_object(),
        _ => false,
    }
}

/// Restores the newest usable checkpoint under `url` into `dir`; a corrupted
/// or partial one is skipped with an error log and the previous one tried.
/// A storage or local fault fails the restore (to be retried), never falls
/// back.
pub fn restore_latest(url: &str, dir: &Path) -> Result<Option<Metadata>, CheckpointError> {
    let storage = CheckpointStorage::from_url(url)?;
    // What an interrupted earlier restore left must not mix in.
    clear_dir(dir)?;
    mark_restoring(dir)?;
    for id in complete_checkpoints(&storage)?.into_iter().rev() {
        let attempt = read_metadata(&storage, &checkpoint_folder(id))
            .and_then(|md| download(&storage, &md, dir).map(|()| md));
        match attempt {
            Ok(md) => return Ok(Some(md)),
            Err(e) if checkpoint_unusable(&e) => {
                tracing::error!(checkpoint = id, error = %e, "checkpoint unusable; trying the previous one");
                clear_dir(dir)?;
                mark_restoring(dir)?;
            }
            Err(e) => {
                // What was downloaded stays beside the RESTORING marker:
                // the next attempt clears it and starts over.
                return Err(e);
            }
        }
    }
    clear_dir(dir)?;
    Ok(None)
}

/// Restores the checkpoint or savepoint folder at `url` into `dir`.
pub fn restore(url: &str, dir: &Path) -> Result<Metadata, CheckpointError> {
    let folder_storage = CheckpointStorage::from_url(url)?;
    let md = read_metadata(&folder_storage, "")?;
    clear_dir(dir)?;
    mark_restoring(dir)?;
    let files_storage = match md.kind {
        Kind::Savepoint => folder_storage,
        // A checkpoint's files are shared, beside the checkpoint folders.
        Kind::Checkpoint => CheckpointStorage::from_url(parent_url(url))?,
    };
    download(&files_storage, &md, dir)?;
    Ok(md)
}

/// Downloads and verifies every file, then writes the state's manifest
/// (which makes the state exist) and removes the restore marker.
fn download(storage: &CheckpointStorage, md: &Metadata, dir: &Path) -> Result<(), CheckpointError> {
    let invalid = |message: String| CheckpointError::Invalid {
        url: format!(
            "{}/{}",
            storage.url().trim_end_matches('/'),
            metadata::METADATA
        ),
        message,
    };
    check_file_names(md).map_err(invalid)?;
    std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Local {
        path: dir.display().to_string(),
        source,
    })?;
    let root = dir
        .canonicalize()
        .map_err(|source| CheckpointError::Local {
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
            // A symbolic link in the state directory must not carry a
            // restored file elsewhere.
            let real = parent
                .canonicalize()
                .map_err(|source| CheckpointError::Local {
                    path: parent.display().to_string(),
                    source,
                })?;
            if !real.starts_with(&root) {
                return Err(invalid(format!(
                    "file `{}` would be written to {}, outside the state directory (a symbolic link?)",
                    f.name,
                    real.display()
                )));
            }
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
    let state_files: HashSet<String> = manifest.files().into_iter().collect();
    manifest.sums = md
        .files
        .iter()
        .filter(|f| state_files.contains(&f.name))
        .map(|f| FileSum {
            name: f.name.clone(),
            bytes: f.bytes,
            crc32: f.crc32,
        })
        .collect();
    if md.kind == Kind::Checkpoint {
        // The same lineage goes on: its files in storage are reused.
        manifest.state_id = md.state_id.clone();
        manifest.stored_checkpoint = Some(md.id);
    }
    manifest.write(dir).map_err(|e| invalid(e.to_string()))?;
    let marker = dir.join(RESTORING);
    std::fs::remove_file(&marker).map_err(|source| CheckpointError::Local {
        path: marker.display().to_string(),
        source,
    })?;
    Ok(())
}

/// The metadata's files are exactly the state's (the snapshot's key-group
/// files and the listed segments) plus the pipeline and model: a name is
/// written under the state directory only if it is one of those, so no
/// metadata can place a file anywhere else (`..`, an absolute path) or
/// smuggle in one the state does not account for.
fn check_file_names(md: &Metadata) -> Result<(), String> {
    let groups = crate::config::MAX_KEY_GROUPS;
    if md.key_groups == 0 || md.key_groups > groups {
        return Err(format!(
            "says {} key groups (a state has 1 to {groups})",
            md.key_groups
        ));
    }
    let mut expected = Manifest::new(md.key_groups.max(1), Vec::new());
    expected.snapshot = md.snapshot;
    expected.segments = md.segments.clone();
    let state: HashSet<String> = expected.files().into_iter().collect();
    let mut seen = HashSet::new();
    for f in &md.files {
        let plain = Path::new(&f.name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        let known = state.contains(&f.name) || COMPANION_FILES.contains(&f.name.as_str());
        if !plain || !known {
            return Err(format!(
                "names a file `{}`, which is not one of the state's files (accepted: the snapshot's `snapshot-G/kg-K.bin` for its key groups, the listed `wal-N.bin` segments, {})",
                f.name,
                COMPANION_FILES.join(", ")
            ));
        }
        if !seen.insert(f.name.as_str()) {
            return Err(format!("names file `{}` twice", f.name));
        }
    }
    if let Some(missing) = state.iter().find(|f| !seen.contains(f.as_str())) {
        return Err(format!(
            "lists no file `{missing}`, which its snapshot and segments need"
        ));
    }
    Ok(())
}

/// Marks `dir` as being restored into (see [`RESTORING`]).
fn mark_restoring(dir: &Path) -> Result<(), CheckpointError> {
    std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Local {
        path: dir.display().to_string(),
        source,
    })?;
    let marker = dir.join(RESTORING);
    std::fs::write(&marker, b"").map_err(|source| CheckpointError::Local {
        path: marker.display().to_string(),
        source,
    })
}

/// Why a local state is set aside, which names the folder it goes to.
#[derive(Debug, Clone, Copy)]
pub enum Aside {
    /// `--restore latest` over a state that may be damaged.
    Damaged,
    /// Another runner went on from an older checkpoint than this state's.
    Behind,
}

/// Moves the state in `dir` (its MANIFEST and every state file) into a new
/// folder `damaged-<unix ms>` or `behind-<unix ms>` beside them: the state
/// is kept for inspection, never deleted. Returns the folder, or none when
/// there was nothing to move.
pub fn set_aside(dir: &Path, why: Aside) -> Result<Option<std::path::PathBuf>, CheckpointError> {
    let local = |path: &Path| {
        let shown = path.display().to_string();
        move |source| CheckpointError::Local {
            path: shown,
            source,
        }
    };
    if !dir.exists() {
        return Ok(None);
    }
    let mut moving = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(local(dir))? {
        let path = entry.map_err(local(dir))?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name == "MANIFEST" || is_state_file(name) {
            moving.push(path);
        }
    }
    if moving.is_empty() {
        return Ok(None);
    }
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let prefix = match why {
        Aside::Damaged => "damaged",
        Aside::Behind => "behind",
    };
    let aside = dir.join(format!("{prefix}-{millis}"));
    std::fs::create_dir(&aside).map_err(local(&aside))?;
    for path in moving {
        let to = aside.join(path.file_name().unwrap_or_default());
        std::fs::rename(&path, &to).map_err(local(&path))?;
    }
    Ok(Some(aside))
}

/// Whether `name` in a state directory is a file a state or a restore
/// writes (not the user's, not the lock, not a damaged state set aside).
fn is_state_file(name: &str) -> bool {
    name.starts_with("snapshot-")
        || crate::store::parse_segment_name(name).is_some()
        || name.ends_with(".tmp")
        || (name.starts_with('.') && name.ends_with(".part"))
        || name.starts_with("compact-")
        || name == RESTORING
        || COMPANION_FILES.contains(&name)
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
        if !is_state_file(name) {
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
