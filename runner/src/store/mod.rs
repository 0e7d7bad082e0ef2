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
//! The code, by job: this file opens a state and writes its log (the engine
//! thread's side); `committer.rs` and `compact.rs` are the checkpoint
//! thread's (durable segments, the MANIFEST, compaction); `snapshot.rs`
//! writes and installs snapshots; `upgrade.rs` repartitions and upgrades
//! older formats; `verify.rs` holds the checks opening makes; `read.rs`
//! plans and streams reads back.
//!
//! Opening trusts nothing it cannot check: the manifest's checksum and
//! consistency, every committed file's length at once and its checksum as it
//! is read, every stored type index against the manifest's types, and the
//! header of every segment it adopts. Anything else is an error naming the
//! file and what was expected; it is never a smaller state.

mod checksum;
mod committer;
mod compact;
mod frame;
mod lock;
mod manifest;
mod read;
mod segment;
mod segment_writer;
mod snapshot;
mod upgrade;
mod verify;

pub use checksum::{file_crc32, FileSum};
pub use committer::Committer;
pub use compact::Compacted;
pub use lock::StateLock;
pub use read::{panic_message, StoredBatch, VersionStream};
pub use upgrade::repartition;

pub use manifest::{new_state_id, parse_segment_name, segment_name, snapshot_file_name, Manifest};

use crate::config::{Pipeline, TypeId};
use crate::observation::Observation;
use crate::source::Positions;
use checksum::{Summing, SummingReader};
use frame::{FrameReader, FrameWriter};
use read::*;
use segment::{SegmentHeader, Start};
use segment_writer::{is_full, SegmentWriter, GATHER_BYTES};
use snapshot::*;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use upgrade::*;
use verify::*;

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
