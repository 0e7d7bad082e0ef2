//! The embedded state store under `--state DIR`: the current version of every
//! record key (live or tombstone), partitioned into key groups, made durable
//! as a snapshot plus a write-ahead log of accepted versions.
//!
//! Profiles, identifier postings and links are derived state: they are a pure
//! function of the records (DESIGN §3.2), so they are rebuilt on open rather
//! than stored, and no format change is needed when they evolve. The records
//! themselves form a join-semilattice (a key keeps its greatest version), so
//! re-applying versions the state already holds changes nothing: that is what
//! lets a restart resume sources from a checkpoint's positions and replay.
//!
//! Layout (format 2):
//! - `MANIFEST`: JSON; the current snapshot generation, the sealed log
//!   segments after it, the source positions they cover, the key-group count
//!   and the identifier type names stored type indexes refer to. Replaced
//!   atomically (write, fsync, rename), and written last.
//! - `snapshot-<g>/kg-<k>.bin`: framed versions of key group `k`.
//! - `wal-<n>.bin`: log segments. The engine thread appends to the newest;
//!   a checkpoint seals it (flush, start the next) in microseconds, and the
//!   checkpoint thread makes it durable and lists it in the manifest. Segments
//!   on disk but not yet listed are adopted on open; a torn tail (a crash
//!   mid-write) is detected by its checksum and cut off.
//! - `pipeline.json`: the pipeline the state was last run with, so that
//!   `export`, `lookup` and `explain` need only `--state`.

mod compact;
mod frame;
mod manifest;

pub use compact::Compacted;

pub use manifest::{parse_segment_name, segment_name, Manifest};

use crate::config::{Pipeline, TypeId};
use crate::observation::Observation;
use crate::source::Positions;
use frame::{FrameReader, FrameWriter};
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state directory {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("state directory {path}: {message}")]
    Corrupt { path: String, message: String },
    #[error("state directory {path} was written with {stored} key groups; the pipeline says {configured}, and key groups can never change for a state (restore a savepoint to change them)")]
    KeyGroups {
        path: String,
        stored: u32,
        configured: u32,
    },
    #[error("state directory {path} holds identifier type `{type_name}`, which the pipeline no longer lists")]
    MissingType { path: String, type_name: String },
    #[error("state directory {path} has no pipeline.json: run a pipeline on it first")]
    NoPipeline { path: String },
}

/// The key group of a record key: a stable hash, so that the same key lands
/// in the same group on every runner and every version.
pub fn key_group(source: &str, id: &str, key_groups: u32) -> u32 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(source.as_bytes());
    h.update(&[0]);
    h.update(id.as_bytes());
    (h.digest() % key_groups as u64) as u32
}

/// An open state directory, written by the engine thread.
pub struct Store {
    dir: PathBuf,
    manifest: Arc<Mutex<Manifest>>,
    log: FrameWriter<BufWriter<File>>,
    log_seq: u64,
    /// Bytes in the open segment: an empty one is not sealed.
    open_bytes: u64,
    /// Bytes in log segments since the snapshot.
    log_bytes: u64,
    /// Segments sealed (or adopted on open) and not yet committed.
    sealed: Vec<u64>,
    /// Maps type indexes written in this state to the pipeline's.
    type_map: Vec<TypeId>,
}

/// What opening a state found.
pub struct Opened {
    pub store: Store,
    /// Every stored version, to be applied to a fresh engine.
    pub versions: VersionStream,
    /// Where sources resume.
    pub positions: Positions,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Store {
    /// Opens (or creates) a state directory for `pipeline`.
    pub fn open(dir: &Path, pipeline: &Pipeline, spec_json: &str) -> Result<Opened, StoreError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let shown = dir.display().to_string();
        let type_names: Vec<String> = pipeline
            .identifiers
            .iter()
            .map(|(_, t)| t.name.clone())
            .collect();
        let mut manifest = match Manifest::read(dir)? {
            Some(m) => m,
            None => Manifest::new(pipeline.key_groups, type_names.clone()),
        };
        if manifest.key_groups != pipeline.key_groups {
            return Err(StoreError::KeyGroups {
                path: shown,
                stored: manifest.key_groups,
                configured: pipeline.key_groups,
            });
        }
        let stored_map = stored_types(&manifest, pipeline, &shown)?;
        upgrade_format_1(dir, &mut manifest)?;
        let plan = plan(dir, &manifest, true)?;
        // New types the pipeline added since are appended to the stored list.
        for name in type_names {
            if !manifest.identifier_types.contains(&name) {
                manifest.identifier_types.push(name);
            }
        }
        let type_map = manifest
            .identifier_types
            .iter()
            .map(|n| pipeline.identifiers.id(n).expect("checked above"))
            .collect();
        manifest.write(dir)?;
        write_atomically(&dir.join("pipeline.json"), spec_json.as_bytes())?;
        let log_seq = plan.last_segment + 1;
        let log = open_segment(dir, log_seq)?;
        let positions = manifest.positions.clone();
        Ok(Opened {
            store: Store {
                dir: dir.to_path_buf(),
                manifest: Arc::new(Mutex::new(manifest)),
                log,
                log_seq,
                open_bytes: 0,
                log_bytes: plan.segment_bytes,
                sealed: plan.adopted,
                type_map,
            },
            versions: VersionStream::start(plan.files, stored_map),
            positions,
        })
    }

    /// Reads every stored version without changing anything (for `export`,
    /// `lookup` and `explain`).
    pub fn read(dir: &Path, pipeline: &Pipeline) -> Result<Vec<Observation>, StoreError> {
        let shown = dir.display().to_string();
        let manifest = Manifest::read(dir)?.ok_or_else(|| StoreError::NoPipeline {
            path: shown.clone(),
        })?;
        let type_map = stored_types(&manifest, pipeline, &shown)?;
        let mut versions = read_versions(dir, &manifest, false)?.versions;
        for v in &mut versions {
            remap_types(v, &type_map);
        }
        Ok(versions)
    }

    /// The pipeline document saved by the last `run` on this state.
    pub fn saved_pipeline(dir: &Path) -> Result<String, StoreError> {
        let path = dir.join("pipeline.json");
        if !path.exists() {
            return Err(StoreError::NoPipeline {
                path: dir.display().to_string(),
            });
        }
        fs::read_to_string(&path).map_err(io(&path))
    }

    /// Appends an accepted version to the write-ahead log.
    pub fn append(&mut self, version: &Observation) -> Result<(), StoreError> {
        let n = if self.accepts_encoded() {
            self.log.write(version)
        } else {
            let mut stored = version.clone();
            unmap_types(&mut stored, &self.type_map);
            self.log.write(&stored)
        }
        .map_err(io(&self.dir))?;
        self.log_bytes += n as u64;
        self.open_bytes += n as u64;
        Ok(())
    }

    /// Whether versions can be encoded without this store (see [`encode_version`]):
    /// true when the state's identifier types are the pipeline's, in order.
    pub fn accepts_encoded(&self) -> bool {
        self.type_map
            .iter()
            .enumerate()
            .all(|(i, t)| t.0 as usize == i)
    }

    /// Appends a version encoded by [`encode_version`]; only valid when
    /// [`Store::accepts_encoded`] holds.
    pub fn append_encoded(&mut self, frame: &[u8]) -> Result<(), StoreError> {
        debug_assert!(self.accepts_encoded());
        let n = self.log.write_encoded(frame).map_err(io(&self.dir))?;
        self.log_bytes += n as u64;
        self.open_bytes += n as u64;
        Ok(())
    }

    /// Hands everything appended so far to the operating system (no fsync):
    /// a killed process loses none of it. Sinks call this before a flush,
    /// so that no store ever holds the effect of a version the log lacks.
    pub fn write_through(&mut self) -> Result<(), StoreError> {
        self.log.inner_mut().flush().map_err(io(&self.dir))
    }

    /// Makes everything appended so far durable (the open segment included).
    pub fn sync(&mut self) -> Result<(), StoreError> {
        let w = self.log.inner_mut();
        w.flush().map_err(io(&self.dir))?;
        w.get_ref().sync_data().map_err(io(&self.dir))
    }

    /// Bytes in the write-ahead log since the last snapshot.
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes
    }

    /// Closes the open segment and starts the next: the cheap, synchronous
    /// part of a checkpoint. Returns every segment not yet committed, for
    /// [`Committer::commit`] to make durable off the engine thread.
    pub fn seal(&mut self) -> Result<Vec<u64>, StoreError> {
        // An idle pipeline does not leave a trail of empty segments.
        if self.open_bytes > 0 {
            self.log.inner_mut().flush().map_err(io(&self.dir))?;
            self.sealed.push(self.log_seq);
            self.log_seq += 1;
            self.log = open_segment(&self.dir, self.log_seq)?;
            self.open_bytes = 0;
        }
        Ok(std::mem::take(&mut self.sealed))
    }

    /// A handle the checkpoint thread commits sealed segments with.
    pub fn committer(&self) -> Committer {
        Committer {
            dir: self.dir.clone(),
            manifest: self.manifest.clone(),
            type_map: Arc::new(self.type_map.clone()),
            min_compaction_bytes: compact::MIN_SEGMENT_BYTES,
        }
    }

    /// Writes a new snapshot of `versions` (the engine's, which cover every
    /// segment) with the positions they cover, and removes the segments and
    /// the previous snapshot. No checkpoint may be in flight.
    pub fn snapshot(
        &mut self,
        versions: impl Iterator<Item = Observation>,
        positions: &Positions,
    ) -> Result<(), StoreError> {
        self.seal()?;
        let (next, groups) = {
            let m = self.manifest.lock().expect("manifest lock");
            (m.generation() + 1, m.key_groups)
        };
        let snap = self.dir.join(format!("snapshot-{next}"));
        write_snapshot(&snap, groups, versions, &self.type_map)?;
        let (previous, obsolete) = {
            let mut m = self.manifest.lock().expect("manifest lock");
            let previous = m.snapshot.replace(next);
            let obsolete = std::mem::take(&mut m.segments);
            m.positions = positions.clone();
            m.compacted_through = self.log_seq - 1;
            m.write(&self.dir)?;
            (previous, obsolete)
        };
        self.log_bytes = 0;
        // Every segment before the open one is now in the snapshot.
        let log_seq = self.log_seq;
        let folded = obsolete
            .into_iter()
            .chain(segments_on_disk(&self.dir)?)
            .filter(|seq| *seq < log_seq);
        remove_replaced(&self.dir, folded, previous);
        Ok(())
    }
}

/// Commits sealed segments into the manifest: the durable half of a
/// checkpoint, run on the checkpoint thread.
#[derive(Clone)]
pub struct Committer {
    dir: PathBuf,
    manifest: Arc<Mutex<Manifest>>,
    /// Stored type indexes to the pipeline's (for compaction's comparisons).
    type_map: Arc<Vec<TypeId>>,
    /// Compaction threshold; tests lower it.
    min_compaction_bytes: u64,
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
        for seq in segments {
            let path = self.dir.join(segment_name(*seq));
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(io(&path))?;
        }
        let mut m = self.manifest.lock().expect("manifest lock");
        for seq in segments {
            if !m.segments.contains(seq) {
                m.segments.push(*seq);
            }
        }
        m.positions = positions.clone();
        m.checkpoint = checkpoint;
        m.write(&self.dir)?;
        Ok(m.clone())
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

fn open_segment(dir: &Path, seq: u64) -> Result<FrameWriter<BufWriter<File>>, StoreError> {
    let path = dir.join(segment_name(seq));
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(io(&path))?;
    Ok(FrameWriter::new(BufWriter::with_capacity(1 << 20, file)))
}

/// Writes one framed file per key group into `snap` (through a temporary
/// folder renamed at the end, so a crash leaves no half snapshot).
pub(crate) fn write_snapshot(
    snap: &Path,
    groups: u32,
    versions: impl Iterator<Item = Observation>,
    type_map: &[TypeId],
) -> Result<(), StoreError> {
    let tmp = snap.with_extension("tmp");
    let mut files = GroupFiles::create(&tmp, groups)?;
    for mut v in versions {
        let k = key_group(&v.source, &v.id, groups);
        unmap_types(&mut v, type_map);
        files.write(k, &v)?;
    }
    files.finish(true)?;
    install(&tmp, snap)
}

/// One framed file per key group, `kg-<k>.bin`, in a folder created empty.
struct GroupFiles {
    dir: PathBuf,
    writers: Vec<FrameWriter<BufWriter<File>>>,
}

impl GroupFiles {
    fn create(dir: &Path, groups: u32) -> Result<GroupFiles, StoreError> {
        if dir.exists() {
            fs::remove_dir_all(dir).map_err(io(dir))?;
        }
        fs::create_dir_all(dir).map_err(io(dir))?;
        let writers = (0..groups)
            .map(|k| {
                let path = dir.join(format!("kg-{k}.bin"));
                File::create(&path)
                    .map(|f| FrameWriter::new(BufWriter::with_capacity(64 << 10, f)))
                    .map_err(io(&path))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GroupFiles {
            dir: dir.to_path_buf(),
            writers,
        })
    }

    fn write(&mut self, group: u32, v: &Observation) -> Result<(), StoreError> {
        self.writers[group as usize]
            .write(v)
            .map(|_| ())
            .map_err(io(&self.dir))
    }

    /// Flushes every file; with `durable`, also syncs it to disk.
    fn finish(mut self, durable: bool) -> Result<(), StoreError> {
        for w in &mut self.writers {
            let inner = w.inner_mut();
            inner.flush().map_err(io(&self.dir))?;
            if durable {
                inner.get_ref().sync_all().map_err(io(&self.dir))?;
            }
        }
        Ok(())
    }
}

/// Puts the finished folder `tmp` in place as `snap`, replacing one a crash
/// left before the manifest pointed at it.
fn install(tmp: &Path, snap: &Path) -> Result<(), StoreError> {
    if snap.exists() {
        fs::remove_dir_all(snap).map_err(io(snap))?;
    }
    fs::rename(tmp, snap).map_err(io(snap))
}

/// Once the manifest points at a new snapshot: removes the segments it
/// folded and the snapshot it replaced.
fn remove_replaced(dir: &Path, segments: impl IntoIterator<Item = u64>, previous: Option<u64>) {
    for seq in segments {
        let _ = fs::remove_file(dir.join(segment_name(seq)));
    }
    if let Some(p) = previous {
        let _ = fs::remove_dir_all(dir.join(format!("snapshot-{p}")));
    }
}

/// Rewrites a state (restored from a savepoint taken with another key-group
/// count) into `key_groups` groups: one new snapshot of every version.
pub fn repartition(dir: &Path, key_groups: u32) -> Result<(), StoreError> {
    let mut manifest = Manifest::read(dir)?.ok_or_else(|| StoreError::NoPipeline {
        path: dir.display().to_string(),
    })?;
    let found = read_versions(dir, &manifest, true)?;
    // Stored type indexes are written back as they are.
    let identity: Vec<TypeId> = (0..manifest.identifier_types.len())
        .map(|i| TypeId(i as u16))
        .collect();
    let next = manifest.generation() + 1;
    write_snapshot(
        &dir.join(format!("snapshot-{next}")),
        key_groups,
        found.versions.into_iter(),
        &identity,
    )?;
    let previous = manifest.snapshot.replace(next);
    let obsolete = std::mem::take(&mut manifest.segments);
    manifest.key_groups = key_groups;
    manifest.compacted_through = found.last_segment;
    manifest.write(dir)?;
    remove_replaced(dir, obsolete.into_iter().chain(found.adopted), previous);
    Ok(())
}

/// Format 1 kept one log per snapshot generation (`log-<g>.bin`); it becomes
/// the first segment of format 2.
fn upgrade_format_1(dir: &Path, manifest: &mut Manifest) -> Result<(), StoreError> {
    if manifest.format >= 2 {
        return Ok(());
    }
    let legacy = dir.join(format!("log-{}.bin", manifest.generation()));
    if legacy.exists() {
        let target = dir.join(segment_name(1));
        fs::rename(&legacy, &target).map_err(io(&target))?;
    }
    manifest.format = manifest::FORMAT;
    if manifest.state_id.is_empty() {
        manifest.state_id = Manifest::new(0, Vec::new()).state_id;
    }
    Ok(())
}

/// Segment numbers of the `wal-*.bin` files in `dir`, ascending.
fn segments_on_disk(dir: &Path) -> Result<Vec<u64>, StoreError> {
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
fn stored_types(
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

/// Which files hold a state, in the order their versions are read.
struct Plan {
    /// The snapshot's files, then the listed segments, then adopted ones.
    files: Vec<(PathBuf, FileKind)>,
    /// Segments on disk that the manifest does not list yet.
    adopted: Vec<u64>,
    /// The highest segment number seen (or folded).
    last_segment: u64,
    segment_bytes: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Snapshot,
    /// Listed in the manifest: durable, so damage is an error.
    Committed,
    /// Written after the last commit: a torn tail is a crash mid-write.
    Adopted,
}

/// The snapshot's files, then the listed segments, then any later segment
/// on disk (sealed or open when the runner stopped). With `repair`, leftover
/// files are removed (folded segments, empty ones).
fn plan(dir: &Path, manifest: &Manifest, repair: bool) -> Result<Plan, StoreError> {
    let mut files = Vec::new();
    if let Some(g) = manifest.snapshot {
        let snap = dir.join(format!("snapshot-{g}"));
        for k in 0..manifest.key_groups {
            files.push((snap.join(format!("kg-{k}.bin")), FileKind::Snapshot));
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
        if seq <= listed_last {
            if seq <= manifest.compacted_through && repair {
                // Folded into the snapshot before a crash cut its removal short.
                let _ = fs::remove_file(dir.join(segment_name(seq)));
            }
            continue;
        }
        last_seen = last_seen.max(seq);
        let path = dir.join(segment_name(seq));
        let empty = fs::metadata(&path).map(|m| m.len() == 0).unwrap_or(false);
        if empty && repair {
            let _ = fs::remove_file(&path);
        } else if !empty {
            adopted.push(seq);
        }
    }
    let mut segment_bytes = 0;
    for seq in &manifest.segments {
        let path = dir.join(segment_name(*seq));
        segment_bytes += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        files.push((path, FileKind::Committed));
    }
    for seq in &adopted {
        let path = dir.join(segment_name(*seq));
        segment_bytes += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        files.push((path, FileKind::Adopted));
    }
    Ok(Plan {
        files,
        adopted,
        last_segment: last_seen,
        segment_bytes,
    })
}

/// Reads one file's versions into `out`, in batches of up to `batch`.
/// A damaged snapshot or committed segment is an error; an adopted
/// segment's torn tail is cut off (with `repair`, from the file too).
fn read_file(
    path: &Path,
    kind: FileKind,
    repair: bool,
    batch: usize,
    out: &mut dyn FnMut(Vec<Observation>) -> bool,
) -> Result<(), StoreError> {
    let file = File::open(path).map_err(io(path))?;
    let mut reader = FrameReader::new(BufReader::with_capacity(1 << 20, file));
    let mut versions = Vec::with_capacity(batch);
    while let Some(obs) = reader.next::<Observation>().map_err(io(path))? {
        versions.push(obs);
        if versions.len() == batch
            && !out(std::mem::replace(&mut versions, Vec::with_capacity(batch)))
        {
            return Ok(());
        }
    }
    if !versions.is_empty() {
        out(versions);
    }
    if reader.torn() {
        if kind != FileKind::Adopted {
            return Err(StoreError::Corrupt {
                path: path.display().to_string(),
                message: "a committed state file is damaged".into(),
            });
        }
        tracing::warn!(path = %path.display(), valid_bytes = reader.valid_bytes(), "cutting a torn tail off a log segment");
        if repair {
            let f = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io(path))?;
            f.set_len(reader.valid_bytes()).map_err(io(path))?;
        }
    }
    Ok(())
}

/// Every version of one file (see [`read_file`]).
fn read_all(path: &Path, kind: FileKind, repair: bool) -> Result<Vec<Observation>, StoreError> {
    let mut versions = Vec::new();
    read_file(path, kind, repair, 4096, &mut |mut b| {
        versions.append(&mut b);
        true
    })?;
    Ok(versions)
}

struct Found {
    versions: Vec<Observation>,
    adopted: Vec<u64>,
    last_segment: u64,
}

/// Every version of a state, in memory (for tools and repartitioning).
fn read_versions(dir: &Path, manifest: &Manifest, repair: bool) -> Result<Found, StoreError> {
    let plan = plan(dir, manifest, repair)?;
    let mut versions = Vec::new();
    for (path, kind) in &plan.files {
        versions.append(&mut read_all(path, *kind, repair)?);
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
pub struct VersionStream {
    batches: std::sync::mpsc::Receiver<Result<StoredBatch, StoreError>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Iterator for VersionStream {
    type Item = Result<StoredBatch, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.batches.recv() {
            Ok(item) => Some(item),
            Err(_) => {
                if let Some(r) = self.reader.take() {
                    let _ = r.join();
                }
                None
            }
        }
    }
}

impl VersionStream {
    fn start(files: Vec<(PathBuf, FileKind)>, type_map: Vec<TypeId>) -> VersionStream {
        let (tx, batches) = std::sync::mpsc::sync_channel(8);
        let reader = std::thread::Builder::new()
            .name("kith-restore".into())
            .spawn(move || {
                for (path, kind) in files {
                    let committed = kind != FileKind::Adopted;
                    let sent = read_file(&path, kind, true, 4096, &mut |mut b| {
                        for v in &mut b {
                            remap_types(v, &type_map);
                        }
                        tx.send(Ok(StoredBatch {
                            versions: b,
                            committed,
                        }))
                        .is_ok()
                    });
                    if let Err(e) = sent {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            })
            .expect("the restore thread starts");
        VersionStream {
            batches,
            reader: Some(reader),
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

fn remap_types(v: &mut Observation, map: &[TypeId]) {
    if let Some(body) = &mut v.body {
        for i in body.identifiers.iter_mut().chain(
            body.relationships
                .iter_mut()
                .flat_map(|r| r.identifiers.iter_mut()),
        ) {
            i.type_id = map[i.type_id.0 as usize];
        }
        body.identifiers.sort();
        for r in &mut body.relationships {
            r.identifiers.sort();
        }
    }
}

fn unmap_types(v: &mut Observation, map: &[TypeId]) {
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

/// Encodes a version as a log frame, off the engine thread (see
/// [`Store::append_encoded`]).
pub fn encode_version(version: &Observation, out: &mut Vec<u8>) {
    frame::encode_frame(version, out).expect("observations always encode");
}

/// Replaces a small file atomically: write a temporary file, fsync, rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))
}

#[cfg(test)]
mod tests;
