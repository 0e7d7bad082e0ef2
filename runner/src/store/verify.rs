//! What opening checks before it trusts a state directory: the committed
//! files' lengths, files that belong to no manifest, the segments on disk and
//! the identifier types stored.

use super::*;

/// Every file the manifest commits is there with its recorded length:
/// checked before anything is read or changed, so that a missing or cut
/// file is found before any work, not after it.
pub(super) fn verify_lengths(dir: &Path, manifest: &Manifest) -> Result<(), StoreError> {
    for name in manifest.files() {
        let path = dir.join(&name);
        let Some(sum) = manifest.sum(&name) else {
            continue; // a format 2 manifest read by `export`
        };
        match fs::metadata(&path) {
            Ok(md) if md.len() == sum.bytes => {}
            Ok(md) => {
                return Err(damaged(
                    &path,
                    format!(
                        "holds {} bytes; the MANIFEST committed {} bytes (the file was cut, extended or replaced)",
                        md.len(),
                        sum.bytes
                    ),
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(damaged(
                    &path,
                    format!(
                        "is missing; the MANIFEST commits it ({} bytes)",
                        sum.bytes
                    ),
                ))
            }
            Err(e) => return Err(io(&path)(e)),
        }
    }
    Ok(())
}

/// A directory with state files but no manifest is damaged, never new.
pub(super) fn refuse_orphaned_files(dir: &Path) -> Result<(), StoreError> {
    let mut found: Vec<String> = fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.starts_with("snapshot-") || parse_segment_name(n).is_some())
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    found.sort();
    let shown = if found.len() > 3 {
        format!("{}, … {} in all", found[..3].join(", "), found.len())
    } else {
        found.join(", ")
    };
    Err(StoreError::NoManifest {
        path: dir.display().to_string(),
        found: shown,
    })
}

/// Segment numbers of the `wal-*.bin` files in `dir`, ascending.
pub(super) fn segments_on_disk(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_segment_name) {
            found.push(seq);
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Maps the type indexes stored in a state to the pipeline's types.
pub(super) fn stored_types(
    manifest: &Manifest,
    pipeline: &Pipeline,
    shown: &str,
) -> Result<Vec<TypeId>, StoreError> {
    manifest
        .identifier_types
        .iter()
        .map(|name| {
            pipeline
                .identifiers
                .id(name)
                .ok_or_else(|| StoreError::MissingType {
                    path: shown.to_string(),
                    type_name: name.clone(),
                })
        })
        .collect()
}
