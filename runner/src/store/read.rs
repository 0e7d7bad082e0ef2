//! Reading a state back: planning which files to read in which order,
//! reading and checking them, and streaming their versions to the engine.

use super::*;

/// One file to read, and what it must match.
pub(super) struct ToRead {
    pub(super) path: PathBuf,
    pub(super) kind: FileKind,
    /// The recorded length and checksum (committed files of format 3).
    pub(super) sum: Option<FileSum>,
}

/// Which files hold a state, in the order their versions are read.
pub(super) struct Plan {
    /// The snapshot's files, then the listed segments, then adopted ones.
    pub(super) files: Vec<ToRead>,
    /// Segments on disk that the manifest does not list yet.
    pub(super) adopted: Vec<u64>,
    /// The highest segment number seen (or folded).
    pub(super) last_segment: u64,
    pub(super) segment_bytes: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum FileKind {
    Snapshot,
    /// A segment listed in the manifest: durable, so damage is an error.
    Committed,
    /// A segment written after the last commit: a torn tail is a crash
    /// mid-write.
    Adopted,
}

impl FileKind {
    pub(super) fn is_segment(self) -> bool {
        self != FileKind::Snapshot
    }
}

/// What an unlisted segment on disk is.
pub(super) enum Unlisted {
    /// This state's, with versions to adopt.
    Ours,
    /// No versions: created and never written (or only its header).
    Empty,
}

/// Judges an unlisted segment by its header: this state's and this number,
/// or (`read_format` below 3) a header-less segment of an older runner.
pub(super) fn judge_unlisted(
    path: &Path,
    seq: u64,
    manifest: &Manifest,
    read_format: u32,
) -> Result<Unlisted, StoreError> {
    let len = fs::metadata(path).map_err(io(path))?.len();
    if len == 0 {
        return Ok(Unlisted::Empty);
    }
    let mut file = File::open(path).map_err(io(path))?;
    match segment::read_start(&mut file).map_err(io(path))? {
        Start::Header(h, size) => {
            if h.state_id != manifest.state_id || h.seq != seq {
                return Err(damaged(
                    path,
                    format!(
                        "is not a segment of this state: its header says state {} segment {}, this is state {} and the file is named segment {seq}; move it away",
                        h.state_id, h.seq, manifest.state_id
                    ),
                ));
            }
            Ok(if len == size { Unlisted::Empty } else { Unlisted::Ours })
        }
        Start::Legacy(_) if read_format < 3 || seq <= manifest.headerless_through => {
            Ok(Unlisted::Ours)
        }
        Start::Legacy(_) => Err(damaged(
            path,
            "has no segment header, so it was not written by this state (every segment of a format 3 state starts with one); move it away",
        )),
        // The magic bytes but no whole header: a crash while creating it.
        Start::Damaged if len < 256 => Ok(Unlisted::Empty),
        Start::Damaged => Err(damaged(path, "has a damaged segment header")),
    }
}

/// The snapshot's files, then the listed segments, then any unlisted
/// segment of this state on disk (sealed or open when the runner stopped).
/// With `repair`, leftover files are removed (folded segments, empty ones).
pub(super) fn plan(
    dir: &Path,
    manifest: &Manifest,
    read_format: u32,
    repair: bool,
) -> Result<Plan, StoreError> {
    let sum = |name: &str| manifest.sum(name).cloned();
    let mut files = Vec::new();
    if let Some(g) = manifest.snapshot {
        for k in 0..manifest.key_groups {
            let name = snapshot_file_name(g, k);
            files.push(ToRead {
                path: dir.join(&name),
                kind: FileKind::Snapshot,
                sum: sum(&name),
            });
        }
    }
    let listed_last = manifest
        .segments
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(manifest.compacted_through);
    let mut adopted = Vec::new();
    let mut last_seen = listed_last;
    for seq in segments_on_disk(dir)? {
        if manifest.segments.contains(&seq) {
            continue;
        }
        let path = dir.join(segment_name(seq));
        if seq <= manifest.compacted_through {
            if repair {
                // Folded into the snapshot before a crash cut its removal short.
                let _ = fs::remove_file(&path);
            }
            continue;
        }
        match judge_unlisted(&path, seq, manifest, read_format)? {
            Unlisted::Empty => {
                if repair {
                    let _ = fs::remove_file(&path);
                } else {
                    last_seen = last_seen.max(seq);
                }
            }
            Unlisted::Ours => {
                last_seen = last_seen.max(seq);
                adopted.push(seq);
            }
        }
    }
    let mut segment_bytes = 0;
    for seq in &manifest.segments {
        let name = segment_name(*seq);
        let path = dir.join(&name);
        segment_bytes += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        files.push(ToRead {
            path,
            kind: FileKind::Committed,
            sum: sum(&name),
        });
    }
    for seq in &adopted {
        let path = dir.join(segment_name(*seq));
        segment_bytes += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        files.push(ToRead {
            path,
            kind: FileKind::Adopted,
            sum: None,
        });
    }
    Ok(Plan {
        files,
        adopted,
        last_segment: last_seen,
        segment_bytes,
    })
}

/// How the versions of a file are handed on.
pub(super) struct Reading<'a> {
    /// Stored type indexes to the pipeline's; a stored index past its end
    /// is damage (or a manifest that lists too few types).
    pub(super) types: &'a [TypeId],
    /// Whether versions are remapped to the pipeline's types (else only
    /// checked, and handed on as stored).
    pub(super) remap: bool,
    /// Whether a torn tail of an adopted segment is cut off the file too.
    pub(super) repair: bool,
    pub(super) batch: usize,
}

/// Reads one file's versions into `out`, in batches. A damaged snapshot or
/// committed segment is an error, as is one whose length or checksum is not
/// the recorded one; an adopted segment's torn tail is cut off. `out`
/// returns false to stop early.
pub(super) fn read_file(
    file: &ToRead,
    how: &Reading,
    out: &mut dyn FnMut(Vec<Observation>) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let path = file.path.as_path();
    let opened = File::open(path).map_err(io(path))?;
    let mut summing = SummingReader::new(BufReader::with_capacity(1 << 20, opened));
    let (prefix, header_bytes) = if file.kind.is_segment() {
        match segment::read_start(&mut summing).map_err(io(path))? {
            Start::Header(h, size) => {
                let named = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(parse_segment_name);
                if named != Some(h.seq) {
                    return Err(damaged(
                        path,
                        format!("its header says segment {}, which is not its name", h.seq),
                    ));
                }
                (Vec::new(), size)
            }
            Start::Legacy(bytes) => (bytes, 0),
            Start::Damaged => return Err(damaged(path, "has a damaged segment header")),
        }
    } else {
        (Vec::new(), 0)
    };
    let mut reader = FrameReader::new(std::io::Cursor::new(prefix).chain(&mut summing));
    let mut versions = Vec::with_capacity(how.batch);
    let mut stopped = false;
    while let Some(mut obs) = reader.next::<Observation>().map_err(io(path))? {
        map_types(&mut obs, how.types, how.remap).map_err(|index| {
            damaged(
                path,
                format!(
                    "a record of {}/{} uses identifier type index {index}, but the MANIFEST lists only {} identifier types",
                    obs.source,
                    obs.id,
                    how.types.len()
                ),
            )
        })?;
        versions.push(obs);
        if versions.len() == how.batch
            && !out(std::mem::replace(
                &mut versions,
                Vec::with_capacity(how.batch),
            ))?
        {
            stopped = true;
            break;
        }
    }
    if !stopped && !versions.is_empty() && !out(versions)? {
        stopped = true;
    }
    let (torn, valid) = (reader.torn(), header_bytes + reader.valid_bytes());
    drop(reader);
    if torn {
        if file.kind != FileKind::Adopted {
            return Err(damaged(
                path,
                "a committed state file is damaged (a frame fails its checksum or is cut)",
            ));
        }
        tracing::warn!(path = %path.display(), valid_bytes = valid, "cutting a torn tail off a log segment");
        if how.repair {
            let f = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io(path))?;
            f.set_len(valid).map_err(io(path))?;
        }
        return Ok(());
    }
    if let (Some(sum), false) = (&file.sum, stopped) {
        let (bytes, crc32) = summing.finish().map_err(io(path))?;
        if bytes != sum.bytes || crc32 != sum.crc32 {
            return Err(damaged(
                path,
                format!(
                    "holds {bytes} bytes with CRC-32 {crc32:08x}; the MANIFEST committed {} bytes with CRC-32 {:08x}",
                    sum.bytes, sum.crc32
                ),
            ));
        }
    }
    Ok(())
}

/// Every version of one file (see [`read_file`]).
pub(super) fn read_all(file: &ToRead, how: &Reading) -> Result<Vec<Observation>, StoreError> {
    let mut versions = Vec::new();
    read_file(file, how, &mut |mut b| {
        versions.append(&mut b);
        Ok(true)
    })?;
    Ok(versions)
}

pub(super) struct Found {
    pub(super) versions: Vec<Observation>,
    pub(super) adopted: Vec<u64>,
    pub(super) last_segment: u64,
}

/// Every version of a state, in memory (for tools and repartitioning),
/// with its types mapped through `types`.
pub(super) fn read_versions(
    dir: &Path,
    manifest: &Manifest,
    types: &[TypeId],
    repair: bool,
) -> Result<Found, StoreError> {
    verify_lengths(dir, manifest)?;
    let plan = plan(dir, manifest, manifest.format, repair)?;
    let how = Reading {
        types,
        remap: true,
        repair,
        batch: 4096,
    };
    let mut versions = Vec::new();
    for file in &plan.files {
        versions.append(&mut read_all(file, &how)?);
    }
    Ok(Found {
        versions,
        adopted: plan.adopted,
        last_segment: plan.last_segment,
    })
}

/// A batch of stored versions, and whether a checkpoint committed them (a
/// snapshot or a listed segment) or they were written after the last one
/// (an adopted segment): sinks re-send what the latter changed.
pub struct StoredBatch {
    pub versions: Vec<Observation>,
    pub committed: bool,
}

impl std::ops::Deref for StoredBatch {
    type Target = Vec<Observation>;
    fn deref(&self) -> &Vec<Observation> {
        &self.versions
    }
}

/// Versions read by a thread of their own while the engine applies them:
/// decoding overlaps applying, and memory holds a few batches, not the state.
/// The stream ends with an error, never early, if that thread fails.
pub struct VersionStream {
    pub(super) batches: std::sync::mpsc::Receiver<Result<StoredBatch, StoreError>>,
    pub(super) reader: Option<std::thread::JoinHandle<()>>,
    /// Set once the reader has sent its last batch, so that a reader that
    /// stops without saying so is told from one that finished.
    pub(super) finished: Arc<std::sync::atomic::AtomicBool>,
}

impl Iterator for VersionStream {
    type Item = Result<StoredBatch, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.batches.recv() {
            Ok(item) => Some(item),
            Err(_) => {
                let joined = self.reader.take().map(|r| r.join());
                let finished = self.finished.load(std::sync::atomic::Ordering::Acquire);
                match joined {
                    Some(Err(panic)) => Some(Err(StoreError::Restore {
                        message: format!("the restore thread panicked: {}", panic_message(&panic)),
                    })),
                    Some(Ok(())) if !finished => Some(Err(StoreError::Restore {
                        message: "the restore thread stopped before the last file".into(),
                    })),
                    _ => None,
                }
            }
        }
    }
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

impl VersionStream {
    pub(super) fn start(files: Vec<ToRead>, type_map: Vec<TypeId>) -> VersionStream {
        let (tx, batches) = std::sync::mpsc::sync_channel(8);
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = finished.clone();
        let reader = std::thread::Builder::new()
            .name("kith-restore".into())
            .spawn(move || {
                let how = Reading {
                    types: &type_map,
                    remap: true,
                    repair: true,
                    batch: 4096,
                };
                for file in files {
                    let committed = file.kind != FileKind::Adopted;
                    let sent = read_file(&file, &how, &mut |b| {
                        crate::failpoint::hit("restore");
                        Ok(tx
                            .send(Ok(StoredBatch {
                                versions: b,
                                committed,
                            }))
                            .is_ok())
                    });
                    if let Err(e) = sent {
                        let _ = tx.send(Err(e));
                        done.store(true, std::sync::atomic::Ordering::Release);
                        return;
                    }
                }
                done.store(true, std::sync::atomic::Ordering::Release);
            });
        match reader {
            Ok(reader) => VersionStream {
                batches,
                reader: Some(reader),
                finished,
            },
            Err(e) => {
                // No thread: the stream is that one error.
                let (tx, batches) = std::sync::mpsc::sync_channel(1);
                let _ = tx.send(Err(StoreError::Restore {
                    message: format!("the restore thread cannot start: {e}"),
                }));
                finished.store(true, std::sync::atomic::Ordering::Release);
                VersionStream {
                    batches,
                    reader: None,
                    finished,
                }
            }
        }
    }

    /// Every version, in memory.
    pub fn collect_all(self) -> Result<Vec<Observation>, StoreError> {
        let mut all = Vec::new();
        for batch in self {
            all.extend(batch?.versions);
        }
        Ok(all)
    }
}

/// Checks (and with `remap`, maps) every type index of a stored version;
/// `Err` with the first index the map does not cover.
pub(super) fn map_types(v: &mut Observation, map: &[TypeId], remap: bool) -> Result<(), u16> {
    if let Some(body) = &mut v.body {
        for i in body.identifiers.iter_mut().chain(
            body.relationships
                .iter_mut()
                .flat_map(|r| r.identifiers.iter_mut()),
        ) {
            match map.get(i.type_id.0 as usize) {
                Some(t) if remap => i.type_id = *t,
                Some(_) => {}
                None => return Err(i.type_id.0),
            }
        }
        if remap {
            body.identifiers.sort();
            for r in &mut body.relationships {
                r.identifiers.sort();
            }
        }
    }
    Ok(())
}

pub(super) fn unmap_types(v: &mut Observation, map: &[TypeId]) {
    if let Some(body) = &mut v.body {
        for i in body.identifiers.iter_mut().chain(
            body.relationships
                .iter_mut()
                .flat_map(|r| r.identifiers.iter_mut()),
        ) {
            i.type_id = TypeId(
                map.iter()
                    .position(|t| *t == i.type_id)
                    .expect("every pipeline type is in the manifest") as u16,
            );
        }
    }
}
