//! Changing a state's shape: another key-group count (repartition), and
//! upgrading older formats in place.

use super::*;

/// Rewrites a state (restored from a savepoint taken with another key-group
/// count) into `key_groups` groups: one new snapshot of every version.
pub fn repartition(dir: &Path, key_groups: u32) -> Result<(), StoreError> {
    let mut manifest = Manifest::read(dir)?.ok_or_else(|| StoreError::NoPipeline {
        path: dir.display().to_string(),
    })?;
    verify_lengths(dir, &manifest)?;
    // Stored type indexes are written back as they are.
    let identity: Vec<TypeId> = (0..manifest.identifier_types.len())
        .map(|i| TypeId(i as u16))
        .collect();
    let found = read_versions(dir, &manifest, &identity, true)?;
    let next = manifest.generation() + 1;
    let sums = write_snapshot(
        &dir.join(format!("snapshot-{next}")),
        next,
        key_groups,
        found.versions.into_iter(),
        &identity,
    )?;
    let obsolete = manifest.segments.clone();
    manifest.remove_segments(|_| true);
    manifest.key_groups = key_groups;
    let previous = manifest.install_snapshot(next, sums);
    manifest.compacted_through = found.last_segment;
    manifest.write(dir)?;
    remove_replaced(dir, obsolete.into_iter().chain(found.adopted), previous);
    Ok(())
}

/// Format 1 kept one log per snapshot generation (`log-<g>.bin`); it becomes
/// the first segment of format 2.
pub(super) fn upgrade_format_1(dir: &Path, manifest: &mut Manifest) -> Result<(), StoreError> {
    if manifest.format >= 2 {
        return Ok(());
    }
    let legacy = dir.join(format!("log-{}.bin", manifest.generation()));
    if legacy.exists() {
        let target = dir.join(segment_name(1));
        fs::rename(&legacy, &target).map_err(io(&target))?;
    }
    manifest.format = 2;
    if manifest.state_id.is_empty() {
        manifest.state_id = new_state_id();
    }
    Ok(())
}

/// Formats before 3 recorded no file sums: they are taken from the files
/// as they are now (frame checksums still find damage inside them).
pub(super) fn record_sums(dir: &Path, manifest: &mut Manifest) -> Result<(), StoreError> {
    if manifest.format >= 3 {
        return Ok(());
    }
    let mut sums = Vec::new();
    for name in manifest.files() {
        let path = dir.join(&name);
        let (bytes, crc32) = file_crc32(&path).map_err(io(&path))?;
        sums.push(FileSum { name, bytes, crc32 });
    }
    manifest.sums = sums;
    manifest.headerless_through = segments_on_disk(dir)?.last().copied().unwrap_or(0);
    manifest.format = manifest::FORMAT;
    Ok(())
}
