//! The checkpoint thread. The engine thread marks a checkpoint by sealing the
//! open log segment (microseconds) and hands the sealed segments and the
//! source positions of that same instant to this thread, which makes them
//! durable, commits them to the state directory's manifest, copies the files
//! the object store does not have yet (incremental: snapshot files and sealed
//! segments are immutable, so each is uploaded once), writes `_metadata`
//! last, and prunes checkpoints beyond the retained count. Processing never
//! waits for any of it.

use super::metadata::{self, checkpoint_folder, file_crc32, FileEntry, Kind, Metadata};
use super::storage::CheckpointStorage;
use super::CheckpointError;
use crate::admin::SavepointDone;
use crate::kubernetes::lease::Fence;
use crate::source::Positions;
use crate::store::{Committer, Manifest};
use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Answers a savepoint request (the admin port or the command line).
pub type SavepointReplyFn = Box<dyn FnOnce(Result<SavepointDone, String>) + Send>;

pub enum Job {
    Checkpoint {
        segments: Vec<u64>,
        positions: Positions,
        /// Whether to fold the log into a new snapshot afterwards when it has
        /// grown past the snapshot (not for the last one of a run: the
        /// engine writes its snapshot then, from memory).
        compact: bool,
        /// The sinks' flushes of this same instant: the checkpoint commits
        /// only once every sink has durably written them.
        sinks: Option<crate::sink::Barrier>,
    },
    Savepoint {
        segments: Vec<u64>,
        positions: Positions,
        records: u64,
        reply: SavepointReplyFn,
        sinks: Option<crate::sink::Barrier>,
    },
}

/// A finished checkpoint (or savepoint), as the engine thread learns of it.
#[derive(Debug)]
pub struct Completed {
    pub id: u64,
    pub positions: Positions,
    pub duration: Duration,
    /// Bytes of state the checkpoint refers to.
    pub bytes: u64,
    /// Why the copy to object storage failed; the local commit held.
    pub error: Option<String>,
}

pub struct CoordinatorConfig {
    /// Where checkpoints are copied; none keeps them local.
    pub storage: Option<Arc<CheckpointStorage>>,
    /// Where savepoints go.
    pub savepoints: String,
    pub retain: u32,
    pub pipeline_name: String,
    /// The pipeline, stored in every checkpoint's metadata.
    pub pipeline: serde_json::Value,
    /// The validated pipeline, for compaction's version comparisons.
    pub compiled: Arc<crate::config::Pipeline>,
    /// In a cluster, the pipeline's Lease: nothing is committed to storage
    /// or pruned from it unless this runner holds it at that moment.
    pub fence: Option<Arc<Fence>>,
}

pub struct Coordinator {
    jobs: Option<Sender<Job>>,
    completed: Receiver<Completed>,
    thread: Option<JoinHandle<()>>,
    in_flight: usize,
}

impl Coordinator {
    pub fn start(committer: Committer, config: CoordinatorConfig) -> Coordinator {
        let (jobs, job_rx) = channel::<Job>();
        let (done_tx, completed) = channel();
        let thread = std::thread::Builder::new()
            .name("kith-checkpoint".into())
            .spawn(move || {
                let mut worker = Worker::new(committer, config);
                for job in job_rx {
                    let done = worker.run(job);
                    if done_tx.send(done).is_err() {
                        break;
                    }
                }
            })
            .expect("the checkpoint thread starts");
        Coordinator {
            jobs: Some(jobs),
            completed,
            thread: Some(thread),
            in_flight: 0,
        }
    }

    pub fn submit(&mut self, job: Job) {
        if let Some(jobs) = &self.jobs {
            if jobs.send(job).is_ok() {
                self.in_flight += 1;
            }
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// A finished checkpoint, if one is waiting.
    pub fn try_completed(&mut self) -> Option<Completed> {
        let done = self.completed.try_recv().ok()?;
        self.in_flight -= 1;
        Some(done)
    }

    /// Waits for the next finished checkpoint (none when nothing is in flight).
    pub fn wait_completed(&mut self) -> Option<Completed> {
        if self.in_flight == 0 {
            return None;
        }
        let done = self.completed.recv().ok()?;
        self.in_flight -= 1;
        Some(done)
    }

    /// Stops the thread after the jobs already submitted.
    pub fn finish(mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Worker {
    committer: Committer,
    config: CoordinatorConfig,
    /// The last checkpoint id taken or found in storage.
    last_id: u64,
    /// Files of this lineage already in storage, by state-directory name.
    uploaded: HashMap<String, FileEntry>,
    savepoint_storage: Option<Arc<CheckpointStorage>>,
    /// Whether the checkpoints already in storage have been read: until
    /// then no id is known to be free, and nothing is written there.
    storage_known: bool,
    /// Sealed segments handed over but not committed yet (a failed commit
    /// keeps them for the next one, so none is ever left out).
    uncommitted: Vec<u64>,
}

impl Worker {
    fn new(committer: Committer, config: CoordinatorConfig) -> Worker {
        let manifest = committer.manifest();
        let mut worker = Worker {
            last_id: manifest.checkpoint,
            committer,
            config,
            uploaded: HashMap::new(),
            savepoint_storage: None,
            storage_known: false,
            uncommitted: Vec::new(),
        };
        if let Err(e) = worker.learn_storage() {
            tracing::error!(error = %e, "cannot read the checkpoints in storage yet; checkpoints stay local until it can");
        }
        worker
    }

    /// Reads the newest checkpoint in storage: its id (ids are never
    /// reused) and, for this lineage, the files it already holds.
    fn learn_storage(&mut self) -> Result<(), CheckpointError> {
        let Some(storage) = self.config.storage.clone() else {
            return Ok(());
        };
        if self.storage_known {
            return Ok(());
        }
        if let Some(latest) = super::restore::latest(&storage)? {
            self.last_id = self.last_id.max(latest.id);
            let manifest = self.committer.manifest();
            // Files are reused only from a checkpoint this state continues.
            // Another writer's checkpoint of the same lineage (a runner that
            // restored the same checkpoint and went on) holds files with the
            // same names and other contents.
            let continues = manifest.stored_checkpoint == Some(latest.id);
            if latest.state_id == manifest.state_id && continues {
                self.uploaded = latest
                    .files
                    .into_iter()
                    .map(|f| (f.name.clone(), f))
                    .collect();
            } else if latest.state_id == manifest.state_id {
                tracing::warn!(
                    checkpoint = latest.id,
                    "the newest checkpoint in storage was written by another runner of this state; this runner uploads its own files"
                );
            }
        }
        self.storage_known = true;
        Ok(())
    }

    /// Commits every segment handed over so far with `positions`.
    fn commit(
        &mut self,
        segments: &[u64],
        positions: &Positions,
        id: u64,
    ) -> Result<Manifest, CheckpointError> {
        self.uncommitted.extend_from_slice(segments);
        let manifest = self.committer.commit(&self.uncommitted, positions, id)?;
        self.uncommitted.clear();
        Ok(manifest)
    }

    /// Waits for the sinks' barrier flushes; on failure the segments stay
    /// uncommitted for the next checkpoint.
    fn sinks_written(
        &mut self,
        sinks: Option<crate::sink::Barrier>,
        segments: &[u64],
    ) -> Result<(), String> {
        let Some(barrier) = sinks else {
            return Ok(());
        };
        barrier.wait().map_err(|e| {
            self.uncommitted.extend_from_slice(segments);
            format!("the sinks did not write what precedes it: {e}")
        })
    }

    fn run(&mut self, job: Job) -> Completed {
        crate::failpoint::hit("checkpoint");
        let started = Instant::now();
        self.last_id += 1;
        let id = self.last_id;
        match job {
            Job::Checkpoint {
                segments,
                positions,
                compact,
                sinks,
            } => {
                let result = match self.sinks_written(sinks, &segments) {
                    Ok(()) => self.checkpoint(id, &segments, &positions),
                    Err(e) => Err(CheckpointError::Sinks(e)),
                };
                let duration = started.elapsed();
                if result.is_ok() && compact {
                    self.compact();
                }
                let (bytes, error) = match result {
                    Ok(bytes) => (bytes, None),
                    Err(e) => {
                        tracing::error!(checkpoint = id, error = %e, "checkpoint failed");
                        (0, Some(e.to_string()))
                    }
                };
                Completed {
                    id,
                    positions,
                    duration,
                    bytes,
                    error,
                }
            }
            Job::Savepoint {
                segments,
                positions,
                records,
                reply,
                sinks,
            } => {
                let result = self
                    .sinks_written(sinks, &segments)
                    .and_then(|()| self.savepoint(id, &segments, &positions, records));
                let (bytes, error) = match &result {
                    Ok(done) => (done.bytes, None),
                    Err(e) => {
                        tracing::error!(savepoint = id, error = %e, "savepoint failed");
                        (0, Some(e.clone()))
                    }
                };
                reply(result);
                Completed {
                    id,
                    positions,
                    duration: started.elapsed(),
                    bytes,
                    error,
                }
            }
        }
    }

    /// Folds the log into a new snapshot when it has grown past the
    /// snapshot; the next checkpoint uploads the new snapshot files.
    fn compact(&mut self) {
        let started = Instant::now();
        match self.committer.compact_if_due(&self.config.compiled) {
            Ok(Some(c)) => tracing::info!(
                generation = c.generation,
                segments = c.segments_folded,
                kept = c.versions_kept,
                dropped = c.versions_dropped,
                seconds = started.elapsed().as_secs_f64(),
                "log compacted into a new snapshot"
            ),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "compaction failed; the log keeps growing until it succeeds")
            }
        }
    }

    /// Commits locally, then (with storage) uploads and writes `_metadata`.
    fn checkpoint(
        &mut self,
        id: u64,
        segments: &[u64],
        positions: &Positions,
    ) -> Result<u64, CheckpointError> {
        let manifest = self.commit(segments, positions, id)?;
        let Some(storage) = self.config.storage.clone() else {
            return Ok(local_bytes(&self.committer, &manifest));
        };
        if !self.storage_known {
            self.learn_storage()?;
            if self.last_id >= id {
                // Storage holds this id already: take the next free one.
                self.last_id += 1;
                return self.checkpoint(self.last_id, &[], positions);
            }
        }
        let mut files = Vec::new();
        for name in state_files(&self.committer, &manifest) {
            // A key names a file's contents, not only its name: two runners
            // that went on from one checkpoint write segments and snapshots
            // of the same names with other contents, and neither may
            // overwrite, or be mistaken for, the other's.
            let (bytes, crc32) = match manifest.sum(&name) {
                Some(sum) => (sum.bytes, sum.crc32),
                None => {
                    let path = self.committer.dir().join(&name);
                    file_crc32(&path).map_err(|source| CheckpointError::Local {
                        path: path.display().to_string(),
                        source,
                    })?
                }
            };
            let entry = match self.uploaded.get(&name) {
                Some(e) if (e.bytes, e.crc32) == (bytes, crc32) => e.clone(),
                _ => {
                    let key = format!("shared/{}/{crc32:08x}-{}", manifest.state_id, name);
                    upload(&storage, &self.committer, &manifest, &name, &key)?
                }
            };
            files.push(entry);
        }
        let md = self.metadata(Kind::Checkpoint, id, &manifest, files);
        let json = serde_json::to_vec_pretty(&md).expect("metadata serializes");
        // `_metadata` is the commit: it is written only under the Lease, and
        // only if no other writer committed this checkpoint (create-only).
        self.fenced()?;
        storage.put_new(
            &format!("{}/{}", checkpoint_folder(id), metadata::METADATA),
            json,
        )?;
        // A failure here only costs a restore from storage at the next
        // start, which then cannot tell this checkpoint from another
        // runner's.
        if let Err(e) = self.committer.record_stored(id) {
            tracing::warn!(checkpoint = id, error = %e, "could not record the committed checkpoint in the MANIFEST");
        }
        self.uploaded = md
            .files
            .iter()
            .map(|f| (f.name.clone(), f.clone()))
            .collect();
        if let Err(e) = self.prune(&storage) {
            tracing::warn!(error = %e, "pruning old checkpoints failed; trying again after the next one");
        }
        Ok(md.total_bytes())
    }

    /// A self-contained copy of the state under its own folder.
    fn savepoint(
        &mut self,
        id: u64,
        segments: &[u64],
        positions: &Positions,
        records: u64,
    ) -> Result<SavepointDone, String> {
        let manifest = self
            .commit(segments, positions, id)
            .map_err(|e| e.to_string())?;
        let storage = match &self.savepoint_storage {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(
                    CheckpointStorage::from_url(&self.config.savepoints)
                        .map_err(|e| e.to_string())?,
                );
                self.savepoint_storage = Some(s.clone());
                s
            }
        };
        let folder = format!("savepoint-{}-{id}", unix_ms());
        let mut files = Vec::new();
        for name in state_files(&self.committer, &manifest) {
            let key = format!("{folder}/{name}");
            let mut entry = upload(&storage, &self.committer, &manifest, &name, &key)
                .map_err(|e| e.to_string())?;
            entry.key = name.clone();
            files.push(entry);
        }
        let md = self.metadata(Kind::Savepoint, id, &manifest, files);
        let json = serde_json::to_vec_pretty(&md).expect("metadata serializes");
        self.fenced().map_err(|e| e.to_string())?;
        storage
            .put_new(&format!("{folder}/{}", metadata::METADATA), json)
            .map_err(|e| e.to_string())?;
        Ok(SavepointDone {
            path: format!("{}/{folder}", storage.url().trim_end_matches('/')),
            records,
            bytes: md.total_bytes(),
        })
    }

    fn metadata(&self, kind: Kind, id: u64, m: &Manifest, files: Vec<FileEntry>) -> Metadata {
        Metadata {
            format: metadata::FORMAT,
            kind,
            id,
            created_unix_ms: unix_ms(),
            pipeline_name: self.config.pipeline_name.clone(),
            state_id: m.state_id.clone(),
            key_groups: m.key_groups,
            identifier_types: m.identifier_types.clone(),
            positions: m.positions.clone(),
            snapshot: m.snapshot,
            segments: m.segments.clone(),
            compacted_through: m.compacted_through,
            files,
            pipeline: self.config.pipeline.clone(),
        }
    }

    /// Fails unless this runner may write to storage now (always, outside
    /// a cluster).
    fn fenced(&self) -> Result<(), CheckpointError> {
        match &self.config.fence {
            Some(fence) if !fence.held() => Err(CheckpointError::Fenced),
            _ => Ok(()),
        }
    }

    /// Keeps the newest `retain` checkpoints; deletes older ones, then the
    /// shared files no kept checkpoint refers to.
    fn prune(&self, storage: &CheckpointStorage) -> Result<(), CheckpointError> {
        self.fenced()?;
        let complete = super::restore::complete_checkpoints(storage)?;
        let keep = self.config.retain as usize;
        if complete.len() <= keep {
            return Ok(());
        }
        let (old, kept) = complete.split_at(complete.len() - keep);
        let mut referenced = HashSet::new();
        for id in kept {
            let md = super::restore::read_metadata(storage, &checkpoint_folder(*id))?;
            referenced.extend(md.files.into_iter().map(|f| f.key));
        }
        for id in old {
            storage.delete_prefix(&format!("{}/", checkpoint_folder(*id)))?;
        }
        for object in storage.list("shared/")? {
            if !referenced.contains(&object.key) {
                storage.delete(&object.key)?;
            }
        }
        Ok(())
    }
}

/// The files of the state: snapshot and segments, and the pipeline and model
/// the state was written with, so that a restore needs nothing else.
fn state_files(committer: &Committer, manifest: &Manifest) -> Vec<String> {
    let mut files = manifest.files();
    for extra in ["pipeline.json", "model.json"] {
        if committer.dir().join(extra).exists() {
            files.push(extra.to_string());
        }
    }
    files
}

fn local_bytes(committer: &Committer, manifest: &Manifest) -> u64 {
    manifest
        .files()
        .iter()
        .filter_map(|f| std::fs::metadata(committer.dir().join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// Copies one state file to storage. A file the manifest committed must
/// still be what it committed: local damage is never copied into a
/// checkpoint, where it would replace the last good copy.
fn upload(
    storage: &CheckpointStorage,
    committer: &Committer,
    manifest: &Manifest,
    name: &str,
    key: &str,
) -> Result<FileEntry, CheckpointError> {
    let path = committer.dir().join(name);
    let (bytes, crc32) = file_crc32(&path).map_err(|source| CheckpointError::Local {
        path: path.display().to_string(),
        source,
    })?;
    if let Some(sum) = manifest.sum(name) {
        if (sum.bytes, sum.crc32) != (bytes, crc32) {
            return Err(CheckpointError::Local {
                path: path.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "the file holds {bytes} bytes with CRC-32 {crc32:08x}, not the {} bytes with CRC-32 {:08x} the MANIFEST committed: it was damaged, and is not copied",
                        sum.bytes, sum.crc32
                    ),
                ),
            });
        }
    }
    storage.put_file(key, &path)?;
    Ok(FileEntry {
        name: name.to_string(),
        key: key.to_string(),
        bytes,
        crc32,
    })
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
