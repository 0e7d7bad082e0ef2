//! The embedded state store under `--state DIR`: the current version of every
//! record key (live or tombstone), partitioned into key groups, made durable
//! as a snapshot plus a write-ahead log of accepted versions.
//!
//! Profiles, identifier postings and links are derived state: they are a pure
//! function of the records (DESIGN §3.2), so they are rebuilt on open rather
//! than stored, and no format change is needed when they evolve.
//!
//! Layout (format 1):
//! - `MANIFEST`: JSON; which snapshot generation is current, the key-group
//!   count and the identifier type names the stored type indexes refer to.
//!   Replaced atomically (write, fsync, rename), and written last.
//! - `snapshot-<g>/kg-<k>.bin`: framed versions of key group `k`.
//! - `log-<g>.bin`: framed versions accepted since snapshot `g`; a torn tail
//!   (a crash mid-write) is detected by its checksum and cut off on open.
//! - `pipeline.json`: the pipeline the state was last run with, so that
//!   `export`, `lookup` and `explain` need only `--state`.

mod frame;
mod manifest;

use crate::config::{Pipeline, TypeId};
use crate::observation::Observation;
use frame::{FrameReader, FrameWriter};
use manifest::Manifest;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state directory {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("state directory {path}: {message}")]
    Corrupt { path: String, message: String },
    #[error("state directory {path} was written with {stored} key groups; the pipeline says {configured}, and key groups can never change for a state")]
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

/// An open state directory.
pub struct Store {
    dir: PathBuf,
    manifest: Manifest,
    log: FrameWriter<BufWriter<File>>,
    log_bytes: u64,
    /// Maps type indexes written in this state to the pipeline's.
    type_map: Vec<TypeId>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Store {
    /// Opens (or creates) a state directory for `pipeline` and returns every
    /// stored version, to be applied to a fresh engine.
    pub fn open(
        dir: &Path,
        pipeline: &Pipeline,
        spec_json: &str,
    ) -> Result<(Store, Vec<Observation>), StoreError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let shown = dir.display().to_string();
        let type_names: Vec<String> = pipeline
            .identifiers
            .iter()
            .map(|(_, t)| t.name.clone())
            .collect();
        let manifest = match Manifest::read(dir)? {
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
        let type_map = stored_types(&manifest, pipeline, &shown)?;

        let log_path = dir.join(format!("log-{}.bin", manifest.generation()));
        let (mut versions, valid_len) = read_versions(dir, &manifest)?;
        for v in &mut versions {
            remap_types(v, &type_map);
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&log_path)
            .map_err(io(&log_path))?;
        file.set_len(valid_len).map_err(io(&log_path))?;
        let mut file = file;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0)).map_err(io(&log_path))?;
        let mut manifest = manifest;
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
        Ok((
            Store {
                dir: dir.to_path_buf(),
                manifest,
                log: FrameWriter::new(BufWriter::with_capacity(1 << 20, file)),
                log_bytes: valid_len,
                type_map,
            },
            versions,
        ))
    }

    /// Reads every stored version without changing anything (for `export`,
    /// `lookup` and `explain`).
    pub fn read(dir: &Path, pipeline: &Pipeline) -> Result<Vec<Observation>, StoreError> {
        let shown = dir.display().to_string();
        let manifest = Manifest::read(dir)?.ok_or_else(|| StoreError::NoPipeline {
            path: shown.clone(),
        })?;
        let type_map = stored_types(&manifest, pipeline, &shown)?;
        let (mut versions, _) = read_versions(dir, &manifest)?;
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
        // Most states were written by the same pipeline: no copy is needed then.
        let identity = self
            .type_map
            .iter()
            .enumerate()
            .all(|(i, t)| t.0 as usize == i);
        let n = if identity {
            self.log.write(version)
        } else {
            let mut stored = version.clone();
            unmap_types(&mut stored, &self.type_map);
            self.log.write(&stored)
        }
        .map_err(io(&self.dir))?;
        self.log_bytes += n as u64;
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
        Ok(())
    }

    /// Makes everything appended so far durable.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        let w = self.log.inner_mut();
        w.flush().map_err(io(&self.dir))?;
        w.get_ref().sync_data().map_err(io(&self.dir))
    }

    /// Bytes in the write-ahead log since the last snapshot.
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes
    }

    /// Writes a new snapshot of `versions` and starts an empty log; the
    /// previous generation is removed once the manifest points at the new one.
    pub fn snapshot<'a>(
        &mut self,
        versions: impl Iterator<Item = Observation> + 'a,
    ) -> Result<(), StoreError> {
        self.sync()?;
        let next = self.manifest.generation() + 1;
        let snap = self.dir.join(format!("snapshot-{next}"));
        let tmp = self.dir.join(format!("snapshot-{next}.tmp"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        let groups = self.manifest.key_groups;
        let mut writers = (0..groups)
            .map(|k| {
                let path = tmp.join(format!("kg-{k}.bin"));
                File::create(&path)
                    .map(|f| FrameWriter::new(BufWriter::with_capacity(64 << 10, f)))
                    .map_err(io(&path))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for mut v in versions {
            let k = key_group(&v.source, &v.id, groups);
            unmap_types(&mut v, &self.type_map);
            writers[k as usize].write(&v).map_err(io(&tmp))?;
        }
        for w in &mut writers {
            let inner = w.inner_mut();
            inner.flush().map_err(io(&tmp))?;
            inner.get_ref().sync_all().map_err(io(&tmp))?;
        }
        drop(writers);
        fs::rename(&tmp, &snap).map_err(io(&snap))?;
        let previous = self.manifest.snapshot.replace(next);
        let new_log = self.dir.join(format!("log-{next}.bin"));
        let file = File::create(&new_log).map_err(io(&new_log))?;
        self.manifest.write(&self.dir)?;
        let old_log = self.dir.join(format!("log-{}.bin", previous.unwrap_or(0)));
        self.log = FrameWriter::new(BufWriter::with_capacity(1 << 20, file));
        self.log_bytes = 0;
        let _ = fs::remove_file(old_log);
        if let Some(p) = previous {
            let _ = fs::remove_dir_all(self.dir.join(format!("snapshot-{p}")));
        }
        Ok(())
    }
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

/// The snapshot's versions followed by the log's, and the length of the log's
/// intact prefix.
fn read_versions(dir: &Path, manifest: &Manifest) -> Result<(Vec<Observation>, u64), StoreError> {
    let shown = dir.display().to_string();
    let mut versions = Vec::new();
    if let Some(g) = manifest.snapshot {
        let snap = dir.join(format!("snapshot-{g}"));
        for k in 0..manifest.key_groups {
            let path = snap.join(format!("kg-{k}.bin"));
            let file = File::open(&path).map_err(io(&path))?;
            let mut reader = FrameReader::new(BufReader::new(file));
            while let Some(obs) = reader.next::<Observation>().map_err(io(&path))? {
                versions.push(obs);
            }
            if reader.torn() {
                return Err(StoreError::Corrupt {
                    path: shown,
                    message: format!("snapshot file {} is damaged", path.display()),
                });
            }
        }
    }
    let log_path = dir.join(format!("log-{}.bin", manifest.generation()));
    let mut valid_len = 0u64;
    if log_path.exists() {
        let file = File::open(&log_path).map_err(io(&log_path))?;
        let mut reader = FrameReader::new(BufReader::new(file));
        while let Some(obs) = reader.next::<Observation>().map_err(io(&log_path))? {
            versions.push(obs);
        }
        valid_len = reader.valid_bytes();
        if reader.torn() {
            tracing::warn!(path = %log_path.display(), valid_bytes = valid_len, "cutting a torn tail off the write-ahead log");
        }
    }
    Ok((versions, valid_len))
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
