//! The embedded state store under `--state DIR`: the current version of every
//! record key (live or tombstone), partitioned into key groups, made durable
//! as a snapshot plus a write-ahead log of accepted versions.
//!
//! Profiles, identifier postings and links are derived state: they are a pure
//! function of the records (docs/design.md §3.2), so they are rebuilt on open rather
//! than stored, and no format change is needed when they evolve. The records
//! themselves form a join-semilattice (a key keeps its greatest version), so
//! re-applying versions the state already holds changes nothing: that is what
//! lets a restart resume sources from a checkpoint's positions and replay.
//!
//! Layout (format 3):
//! - `MANIFEST`: JSON; the current snapshot generation, the sealed log
//!   segments after it, the length and CRC-32 of each of those files, the
//!   source positions they cover, the key-group count and the identifier
//!   type names stored type indexes refer to, and a checksum of all that.
//!   Replaced atomically (write, fsync, rename), and written last.
//! - `snapshot-<g>/kg-<k>.bin`: framed versions of key group `k`.
//! - `wal-<n>.bin`: log segments, each starting with a header naming its
//!   state and number. The engine thread appends to the newest; a checkpoint
//!   seals it (flush, start the next) in microseconds, and the checkpoint
//!   thread makes it durable and lists it in the manifest. Segments of this
//!   state on disk but not yet listed are adopted on open; a torn tail (a
//!   crash mid-write) is detected by its checksum and cut off.
//! - `pipeline.json`: the pipeline the state was last run with, so that
//!   `export`, `lookup` and `explain` need only `--state`.
//! - `LOCK`: held by the one process using the directory ([`StateLock`]).
//!
//! Opening trusts nothing it cannot check: the manifest's checksum and
//! consistency, every committed file's length at once and its checksum as it
//! is read, every stored type index against the manifest's types, and the
//! header of every segment it adopts. Anything else is an error naming the
//! file and what was expected; it is never a smaller state.

mod checksum;
mod compact;
mod frame;
mod lock;
mod manifest;
mod segment;
mod segment_writer;

pub use checksum::{file_crc32, FileSum};
pub use compact::Compacted;
pub use lock::StateLock;

pub use manifest::{new_state_id, parse_segment_name, segment_name, snapshot_file_name, Manifest};

use crate::config::{Pipeline, TypeId};
use crate::observation::Observation;
use crate::source::Positions;
use checksum::{Summing, SummingReader};
use frame::{FrameReader, FrameWriter};
use segment::{SegmentHeader, Start};
use segment_writer::{is_full, SegmentWriter, GATHER_BYTES};
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
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
    #[error("state directory {path} is in use by {holder}: one process at a time may use a state directory")]
    Locked { path: String, holder: String },
    #[error("state directory {path} holds state files ({found}) but no MANIFEST, so what they hold cannot be trusted or completed; run with `--restore latest` to set them aside and restore the newest checkpoint, or restore a savepoint with `--restore URL` into an empty directory")]
    NoManifest { path: String, found: String },
    #[error("{path}: {message}")]
    Damaged { path: String, message: String },
    #[error("restoring the state failed: {message}")]
    Restore { message: String },
    #[error("state directory {path}: {reason}")]
    Full { path: String, reason: String },
}

/// A damaged or inconsistent file: the message says what was expected.
fn damaged(path: &Path, message: impl Into<String>) -> StoreError {
    StoreError::Damaged {
        path: path.display().to_string(),
        message: message.into(),
    }
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
    log: SegmentWriter,
    log_seq: u64,
    /// Bytes in the open segment: an empty one is not sealed.
    open_bytes: u64,
    /// Bytes in log segments since the snapshot.
    log_bytes: u64,
    /// Segments sealed (or adopted on open) and not yet committed.
    sealed: Vec<u64>,
    /// Maps type indexes written in this state to the pipeline's.
    type_map: Vec<TypeId>,
    /// Written into each new segment's header.
    state_id: String,
    /// Why the log cannot be written now (its file system is full): the
    /// engine takes no input until [`Store::retry`] succeeds.
    stalled: Option<String>,
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
            None => {
                refuse_orphaned_files(dir)?;
                Manifest::new(pipeline.key_groups, type_names.clone())
            }
        };
        if manifest.key_groups != pipeline.key_groups {
            return Err(StoreError::KeyGroups {
                path: shown,
                stored: manifest.key_groups,
                configured: pipeline.key_groups,
            });
        }
        let stored_map = stored_types(&manifest, pipeline, &shown)?;
        let read_format = manifest.format;
        upgrade_format_1(dir, &mut manifest)?;
        record_sums(dir, &mut manifest)?;
        verify_lengths(dir, &manifest)?;
        let plan = plan(dir, &manifest, read_format, true)?;
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
        let state_id = manifest.state_id.clone();
        let log = open_segment(dir, log_seq, &state_id)?;
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
                state_id,
                stalled: None,
            },
            versions: VersionStream::start(plan.files, stored_map),
            positions,
        })
    }

    /// Reads every stored version without changing anything (for `export`,
    /// `lookup` and `explain`).
    pub fn read(dir: &Path, pipeline: &Pipeline) -> Result<Vec<Observation>, StoreError> {
        let shown = dir.display().to_string();
        let Some(manifest) = Manifest::read(dir)? else {
            refuse_orphaned_files(dir)?;
            return Err(StoreError::NoPipeline { path: shown });
        };
        let type_map = stored_types(&manifest, pipeline, &shown)?;
        Ok(read_versions(dir, &manifest, &type_map, false)?.versions)
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
            self.log.append(version)
        } else {
            let mut stored = version.clone();
            unmap_types(&mut stored, &self.type_map);
            self.log.append(&stored)
        }
        .map_err(io(&self.dir))?;
        self.gathered(n)
    }

    /// Counts an appended frame and hands the gathered ones to the system
    /// once there are enough (unless the log is stalled: then they wait).
    fn gathered(&mut self, n: usize) -> Result<(), StoreError> {
        self.log_bytes += n as u64;
        self.open_bytes += n as u64;
        if self.log.pending() >= GATHER_BYTES && self.stalled.is_none() {
            self.flush_log()?;
        }
        Ok(())
    }

    /// Hands the gathered frames to the operating system: `Ok(false)` when
    /// the file system is full (the frames stay gathered, the store stalls).
    fn flush_log(&mut self) -> Result<bool, StoreError> {
        match self.log.flush() {
            Ok(()) => {
                if self.stalled.take().is_some() {
                    tracing::info!(path = %self.dir.display(), "space in the state directory again: applying resumes");
                }
                Ok(true)
            }
            Err(e) if is_full(&e) => {
                if self.stalled.is_none() {
                    tracing::error!(path = %self.log.path().display(), error = %e, "the state directory's file system is full: applying is paused until space is freed");
                }
                self.stalled = Some(format!(
                    "the state directory's file system is full ({e}): applying is paused until space is freed; nothing is lost"
                ));
                Ok(false)
            }
            Err(e) => Err(io(self.log.path())(e)),
        }
    }

    /// Why the log cannot be written now, if it cannot.
    pub fn stalled(&self) -> Option<&str> {
        self.stalled.as_deref()
    }

    /// Tries the gathered frames again; true once the log is written.
    pub fn retry(&mut self) -> Result<bool, StoreError> {
        self.flush_log()
    }

    fn full(&self) -> StoreError {
        StoreError::Full {
            path: self.dir.display().to_string(),
            reason: self
                .stalled
                .clone()
                .unwrap_or_else(|| "the file system is full".into()),
        }
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
        let n = self.log.append_encoded(frame);
        self.gathered(n)
    }

    /// Hands everything appended so far to the operating system (no fsync):
    /// a killed process loses none of it. Sinks call this before a flush,
    /// so that no store ever holds the effect of a version the log lacks.
    /// `Ok(false)` when the file system is full: then nothing may be
    /// flushed to a sink until [`Store::retry`] succeeds.
    pub fn write_through(&mut self) -> Result<bool, StoreError> {
        self.flush_log()
    }

    /// Makes everything appended so far durable (the open segment included).
    pub fn sync(&mut self) -> Result<(), StoreError> {
        if !self.flush_log()? {
            return Err(self.full());
        }
        self.log.sync().map_err(io(&self.dir))
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
            if !self.flush_log()? {
                return Err(self.full());
            }
            // The next segment exists before this one counts as sealed: a
            // failure leaves the store appending where it was.
            let next = match open_segment(&self.dir, self.log_seq + 1, &self.state_id) {
                Ok(next) => next,
                Err(StoreError::Io { source, .. }) if is_full(&source) => {
                    let _ = fs::remove_file(self.dir.join(segment_name(self.log_seq + 1)));
                    self.stalled = Some(format!(
                        "the state directory's file system is full ({source}): applying is paused until space is freed; nothing is lost"
                    ));
                    return Err(self.full());
                }
                Err(e) => return Err(e),
            };
            self.sealed.push(self.log_seq);
            self.log_seq += 1;
            self.log = next;
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
        let sums = write_snapshot(&snap, next, groups, versions, &self.type_map)?;
        let (previous, obsolete) = {
            let mut m = self.manifest.lock().expect("manifest lock");
            let obsolete = m.segments.clone();
            m.remove_segments(|_| true);
            let previous = m.install_snapshot(next, sums);
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

/// Creates segment `seq` with its header, handed to the operating system at
/// once: a segment file on disk always says whose it is.
fn open_segment(dir: &Path, seq: u64, state_id: &str) -> Result<SegmentWriter, StoreError> {
    let path = dir.join(segment_name(seq));
    let header = SegmentHeader {
        state_id: state_id.to_string(),
        seq,
    };
    SegmentWriter::create(&path, &header).map_err(io(&path))
}

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
fn snapshot_sums(generation: u64, sums: Vec<(u64, u32)>) -> Vec<FileSum> {
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
struct GroupFiles {
    dir: PathBuf,
    writers: Vec<FrameWriter<Summing<BufWriter<File>>>>,
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
                    .map(|f| FrameWriter::new(Summing::new(BufWriter::with_capacity(64 << 10, f))))
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

    /// Flushes every file; with `durable`, also syncs it to disk. Returns
    /// each group's length and CRC-32.
    fn finish(mut self, durable: bool) -> Result<Vec<(u64, u32)>, StoreError> {
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
fn upgrade_format_1(dir: &Path, manifest: &mut Manifest) -> Result<(), StoreError> {
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
fn record_sums(dir: &Path, manifest: &mut Manifest) -> Result<(), StoreError> {
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

/// Every file the manifest commits is there with its recorded length:
/// checked before anything is read or changed, so that a missing or cut
/// file is found before any work, not after it.
fn verify_lengths(dir: &Path, manifest: &Manifest) -> Result<(), StoreError> {
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
fn refuse_orphaned_files(dir: &Path) -> Result<(), StoreError> {
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

/// One file to read, and what it must match.
struct ToRead {
    path: PathBuf,
    kind: FileKind,
    /// The recorded length and checksum (committed files of format 3).
    sum: Option<FileSum>,
}

/// Which files hold a state, in the order their versions are read.
struct Plan {
    /// The snapshot's files, then the listed segments, then adopted ones.
    files: Vec<ToRead>,
    /// Segments on disk that the manifest does not list yet.
    adopted: Vec<u64>,
    /// The highest segment number seen (or folded).
    last_segment: u64,
    segment_bytes: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FileKind {
    Snapshot,
    /// A segment listed in the manifest: durable, so damage is an error.
    Committed,
    /// A segment written after the last commit: a torn tail is a crash
    /// mid-write.
    Adopted,
}

impl FileKind {
    fn is_segment(self) -> bool {
        self != FileKind::Snapshot
    }
}

/// What an unlisted segment on disk is.
enum Unlisted {
    /// This state's, with versions to adopt.
    Ours,
    /// No versions: created and never written (or only its header).
    Empty,
}

/// Judges an unlisted segment by its header: this state's and this number,
/// or (`read_format` below 3) a header-less segment of an older runner.
fn judge_unlisted(
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
fn plan(
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
struct Reading<'a> {
    /// Stored type indexes to the pipeline's; a stored index past its end
    /// is damage (or a manifest that lists too few types).
    types: &'a [TypeId],
    /// Whether versions are remapped to the pipeline's types (else only
    /// checked, and handed on as stored).
    remap: bool,
    /// Whether a torn tail of an adopted segment is cut off the file too.
    repair: bool,
    batch: usize,
}

/// Reads one file's versions into `out`, in batches. A damaged snapshot or
/// committed segment is an error, as is one whose length or checksum is not
/// the recorded one; an adopted segment's torn tail is cut off. `out`
/// returns false to stop early.
fn read_file(
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
fn read_all(file: &ToRead, how: &Reading) -> Result<Vec<Observation>, StoreError> {
    let mut versions = Vec::new();
    read_file(file, how, &mut |mut b| {
        versions.append(&mut b);
        Ok(true)
    })?;
    Ok(versions)
}

struct Found {
    versions: Vec<Observation>,
    adopted: Vec<u64>,
    last_segment: u64,
}

/// Every version of a state, in memory (for tools and repartitioning),
/// with its types mapped through `types`.
fn read_versions(
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
    batches: std::sync::mpsc::Receiver<Result<StoredBatch, StoreError>>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// Set once the reader has sent its last batch, so that a reader that
    /// stops without saying so is told from one that finished.
    finished: Arc<std::sync::atomic::AtomicBool>,
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
    fn start(files: Vec<ToRead>, type_map: Vec<TypeId>) -> VersionStream {
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
fn map_types(v: &mut Observation, map: &[TypeId], remap: bool) -> Result<(), u16> {
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
mod integrity_tests;
#[cfg(test)]
mod tests;
