//! Blocking object storage for checkpoints: a local directory or an S3 bucket
//! prefix, behind one small synchronous API for the runner's std threads.
//!
//! [`CheckpointStorage`] wraps an [`object_store`] backend and owns a small
//! tokio runtime of its own, so callers never see `async`. Keys are relative
//! paths under the storage URL's prefix (`chk-00000012/_metadata`,
//! `shared/seg-000001.bin`); listings return keys relative to that prefix.
//!
//! Accepted URLs:
//! - `file:///abs/path`, or a plain absolute or relative local path: a
//!   directory, created when missing. Written files are fsynced, and so are
//!   the directories that name them.
//! - `s3://bucket/prefix`: credentials, region and endpoint from the
//!   environment (`AWS_*` as the AWS SDKs read them; the endpoint from
//!   `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`, else `S3_ENDPOINT`, the
//!   test services' variable), path-style requests, plain HTTP allowed when the
//!   endpoint is `http://`.
//!
//! # Atomicity, which the checkpoint protocol relies on
//!
//! A write of one key is atomic to readers: a reader sees either the previous
//! object (or none) or the complete new one, never a prefix of it. The local
//! backend writes a staging file beside the target and renames it into place
//! (for [`CheckpointStorage::put_file`] too: the multipart upload is staged and
//! renamed on completion); an S3 PUT and an S3 CompleteMultipartUpload publish
//! the whole object at once. [`CheckpointStorage::get_to_file`] gives the same
//! guarantee locally: it writes a temporary name and renames. The checkpoint
//! protocol writes each checkpoint's `_metadata` object last and treats a
//! checkpoint without it as incomplete; that is sound only because of this.
//!
//! Prefixes in [`CheckpointStorage::list`] and
//! [`CheckpointStorage::delete_prefix`] match whole path segments: `chk-1`
//! matches `chk-1/_metadata` but not `chk-10/_metadata`.
//!
//! This module must never be called from inside an async context (it blocks
//! on its own runtime), and never buffers a whole large file in memory:
//! [`CheckpointStorage::put_file`] keeps at most [`MAX_PARTS_IN_FLIGHT`] + 1
//! parts of [`PART_SIZE`] bytes in memory, whatever the file's size.

use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{
    GetResultPayload, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart,
};
use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Size of one multipart upload part (S3 needs at least 5 MiB for every part
/// but the last, and allows at most 10 000 parts: 16 MiB parts reach 156 GiB).
pub const PART_SIZE: usize = 16 * 1024 * 1024;

/// Parts uploaded concurrently by [`CheckpointStorage::put_file`].
pub const MAX_PARTS_IN_FLIGHT: usize = 4;

/// The URL forms [`CheckpointStorage::from_url`] accepts, for error messages.
pub const ACCEPTED_URL_FORMS: &str = "`file:///path`, a local path, `s3://bucket/prefix`";

/// What a [`CheckpointStorage`] call was doing when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Open,
    Put,
    PutFile,
    Get,
    GetToFile,
    List,
    Delete,
    DeletePrefix,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Open => "open",
            Operation::Put => "put",
            Operation::PutFile => "put_file",
            Operation::Get => "get",
            Operation::GetToFile => "get_to_file",
            Operation::List => "list",
            Operation::Delete => "delete",
            Operation::DeletePrefix => "delete_prefix",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(
        "invalid checkpoint storage URL `{url}`: {reason}; accepted forms: {ACCEPTED_URL_FORMS}"
    )]
    InvalidUrl { url: String, reason: String },

    #[error("checkpoint storage {url}: {operation}{}: invalid key: {reason}; a key is a relative path of non-empty segments other than `.` and `..`", quoted(key))]
    InvalidKey {
        url: String,
        operation: Operation,
        key: String,
        reason: String,
    },

    #[error("checkpoint storage {url}: {operation}{}: {source}", quoted(key))]
    Backend {
        url: String,
        operation: Operation,
        key: String,
        /// Boxed to keep the error small: callers wrap it in their own.
        source: Box<object_store::Error>,
    },

    /// A create-only write found the object there already.
    #[error("checkpoint storage {url}: `{key}` exists already: another writer committed it")]
    Exists { url: String, key: String },

    #[error("checkpoint storage {url}: {operation}{}: local file {}: {source}", quoted(key), path.display())]
    LocalIo {
        url: String,
        operation: Operation,
        key: String,
        path: PathBuf,
        source: io::Error,
    },
}

/// `` `key` `` after a space, or nothing for the empty key (opening, or
/// listing everything).
fn quoted(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!(" `{key}`")
    }
}

/// One object found by [`CheckpointStorage::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Relative to the storage URL's prefix, `/`-separated.
    pub key: String,
    pub size: u64,
}

/// Blocking object storage for checkpoints. `Send + Sync`: share it between
/// threads behind an `Arc`; calls from several threads run concurrently.
pub struct CheckpointStorage {
    url: String,
    backend: Backend,
    store: Arc<dyn ObjectStore>,
    /// `Option` only so that `Drop` can shut it down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Local,
    S3,
}

impl fmt::Debug for CheckpointStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointStorage")
            .field("url", &self.url)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Drop for CheckpointStorage {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside an async context;
        // nothing is left running once a call has returned, so don't wait.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Where a URL points, parsed but not yet opened.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

fn parse_url(url: &str) -> Result<Location, StorageError> {
    let invalid = |reason: &str| StorageError::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    if url.trim().is_empty() {
        return Err(invalid("it is empty"));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid("no bucket name after `s3://`"));
        }
        if bucket.contains(['?', '#', '@', ':']) || prefix.contains(['?', '#']) {
            return Err(invalid(
                "a bucket URL takes no port, user, query or fragment",
            ));
        }
        let prefix = prefix.trim_matches('/');
        ObjectPath::parse(prefix).map_err(|e| invalid(&format!("bad prefix `{prefix}`: {e}")))?;
        return Ok(Location::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        });
    }
    if let Some(rest) = url.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err(invalid(
                "a file URL needs an absolute path and no host, as in `file:///var/lib/kith`",
            ));
        }
        return Ok(Location::Local(PathBuf::from(rest)));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        return Err(invalid(&format!("unsupported scheme `{scheme}`")));
    }
    Ok(Location::Local(PathBuf::from(url)))
}

/// The S3 endpoint: `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`, else
/// `S3_ENDPOINT`; empty values count as unset.
fn s3_endpoint(env: &HashMap<String, String>) -> Option<&str> {
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "S3_ENDPOINT"]
        .iter()
        .filter_map(|k| env.get(*k).map(String::as_str))
        .find(|v| !v.is_empty())
}

fn build_s3(
    url: &str,
    bucket: &str,
    env: &HashMap<String, String>,
) -> Result<object_store::aws::AmazonS3, StorageError> {
    // As `AmazonS3Builder::from_env`, over `env` instead of the process's.
    let mut builder = AmazonS3Builder::new();
    for (key, value) in env {
        if key.starts_with("AWS_") {
            if let Ok(config_key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(config_key, value);
            }
        }
    }
    let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .filter_map(|k| env.get(*k))
        .find(|v| !v.is_empty())
        .map_or("us-east-1", String::as_str);
    builder = builder
        .with_region(region)
        .with_bucket_name(bucket)
        .with_virtual_hosted_style_request(false);
    if let Some(endpoint) = s3_endpoint(env) {
        builder = builder.with_endpoint(endpoint);
        if endpoint.starts_with("http://") {
            builder = builder.with_allow_http(true);
        }
    }
    builder.build().map_err(|source| StorageError::Backend {
        url: url.to_string(),
        operation: Operation::Open,
        key: String::new(),
        source: Box::new(source),
    })
}

/// True when `err` says the object is absent, as opposed to the bucket: S3
/// answers 404 for both (object_store makes both `NotFound`; only the body's
/// error code tells them apart), and a missing bucket must not pass for "no
/// checkpoint yet".
fn is_missing_object(err: &object_store::Error) -> bool {
    matches!(err, object_store::Error::NotFound { .. })
        && !err.to_string().contains("<Code>NoSuchBucket</Code>")
}

impl StorageError {
    /// Whether the error says an object is absent (not the bucket, not an
    /// outage): a fact about what storage holds, not a passing fault.
    pub fn is_missing_object(&self) -> bool {
        matches!(self, StorageError::Backend { source, .. } if is_missing_object(source))
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh name beside `dest` for writing before the rename.
fn temp_path_beside(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    dest.with_file_name(format!(".{name}.{}.{n}.part", std::process::id()))
}

impl CheckpointStorage {
    /// Opens the storage at `url`, with S3 settings from the process
    /// environment. No network request is made.
    pub fn from_url(url: &str) -> Result<Self, StorageError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::from_url_with_env(url, &env)
    }

    /// As [`Self::from_url`], reading the `AWS_*` and `S3_ENDPOINT` settings
    /// from `env` instead of the process environment (which is not read).
    pub fn from_url_with_env(
        url: &str,
        env: &HashMap<String, String>,
    ) -> Result<Self, StorageError> {
        let location = parse_url(url)?;
        let (backend, store): (Backend, Arc<dyn ObjectStore>) = match location {
            Location::Local(dir) => {
                let io_err = |source| StorageError::LocalIo {
                    url: url.to_string(),
                    operation: Operation::Open,
                    key: String::new(),
                    path: dir.clone(),
                    source,
                };
                fs::create_dir_all(&dir).map_err(io_err)?;
                let store = LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|source| StorageError::Backend {
                        url: url.to_string(),
                        operation: Operation::Open,
                        key: String::new(),
                        source: Box::new(source),
                    })?
                    .with_fsync(true)
                    .with_automatic_cleanup(true);
                (Backend::Local, Arc::new(store))
            }
            Location::S3 { bucket, prefix } => {
                let s3 = build_s3(url, &bucket, env)?;
                let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    Arc::new(PrefixStore::new(s3, prefix.as_str()))
                };
                (Backend::S3, store)
            }
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kith-storage")
            .enable_all()
            .build()
            .map_err(|source| StorageError::LocalIo {
                url: url.to_string(),
                operation: Operation::Open,
                key: String::new(),
                path: PathBuf::new(),
                source,
            })?;
        Ok(Self {
            url: url.to_string(),
            backend,
            store,
            runtime: Some(runtime),
        })
    }

    /// The URL this storage was opened with, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Writes `bytes` as the whole object `key`, replacing any previous one.
    pub fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        let path = self.key_path(Operation::Put, key)?;
        self.block_on(self.store.put(&path, PutPayload::from(bytes)))
            .map_err(|e| self.backend_err(Operation::Put, key, e))?;
        Ok(())
    }

    /// Writes `bytes` as object `key` only if there is none yet (a
    /// conditional put: `If-None-Match: *` on S3, an exclusive create on a
    /// file system). The commit of a checkpoint is one: two writers can
    /// never both commit the same checkpoint, even if a Lease fence failed.
    pub fn put_new(&self, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        let path = self.key_path(Operation::Put, key)?;
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let payload = PutPayload::from(bytes);
        match self.block_on(self.store.put_opts(&path, payload.clone(), options)) {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => Err(StorageError::Exists {
                url: self.url.clone(),
                key: key.to_string(),
            }),
            // A store without conditional writes (`AWS_CONDITIONAL_PUT=disabled`
            // for one that refuses them): the Lease fence alone guards it.
            Err(object_store::Error::NotImplemented { .. }) => {
                static WARNED: std::sync::Once = std::sync::Once::new();
                WARNED.call_once(|| {
                    tracing::warn!(url = %self.url, "the checkpoint storage has no conditional writes; commits are guarded by the Lease alone");
                });
                self.block_on(self.store.put(&path, payload))
                    .map(|_| ())
                    .map_err(|e| self.backend_err(Operation::Put, key, e))
            }
            Err(e) => Err(self.backend_err(Operation::Put, key, e)),
        }
    }

    /// Uploads the local file `local` as object `key`, streaming it in
    /// [`PART_SIZE`] parts (multipart upload) when it is larger than one part.
    /// Returns the number of bytes uploaded.
    pub fn put_file(&self, key: &str, local: &Path) -> Result<u64, StorageError> {
        const OP: Operation = Operation::PutFile;
        let path = self.key_path(OP, key)?;
        let io_err = |source| self.local_err(OP, key, local, source);
        let mut file = File::open(local).map_err(io_err)?;
        let size = file.metadata().map_err(io_err)?.len();
        if size <= PART_SIZE as u64 {
            let mut buf = Vec::with_capacity(size as usize);
            file.read_to_end(&mut buf).map_err(io_err)?;
            let len = buf.len() as u64;
            self.block_on(self.store.put(&path, PutPayload::from(buf)))
                .map_err(|e| self.backend_err(OP, key, e))?;
            return Ok(len);
        }

        let upload = self
            .block_on(self.store.put_multipart(&path))
            .map_err(|e| self.backend_err(OP, key, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut total = 0u64;
        loop {
            // Read the next part on this thread while earlier parts upload on
            // the runtime's workers.
            let mut buf = Vec::with_capacity(PART_SIZE);
            if let Err(e) = (&mut file).take(PART_SIZE as u64).read_to_end(&mut buf) {
                self.abort_upload(writer, key);
                return Err(io_err(e));
            }
            if buf.is_empty() {
                break;
            }
            total += buf.len() as u64;
            let queued = self.block_on(async {
                writer.wait_for_capacity(MAX_PARTS_IN_FLIGHT).await?;
                writer.put(Bytes::from(buf));
                Ok::<_, object_store::Error>(())
            });
            if let Err(e) = queued {
                self.abort_upload(writer, key);
                return Err(self.backend_err(OP, key, e));
            }
        }
        // `finish` aborts the upload itself when a part or the completion fails.
        self.block_on(writer.finish())
            .map_err(|e| self.backend_err(OP, key, e))?;
        Ok(total)
    }

    /// The whole object `key`, or `None` when there is none.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let path = self.key_path(Operation::Get, key)?;
        let result = self.block_on(async {
            let got = self.store.get(&path).await?;
            got.bytes().await
        });
        match result {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(e) if is_missing_object(&e) => Ok(None),
            Err(e) => Err(self.backend_err(Operation::Get, key, e)),
        }
    }

    /// Downloads object `key` to `local`, streaming, through a temporary name
    /// in the same directory renamed into place once complete and synced.
    /// Returns the number of bytes written; `NotFound` storage errors when
    /// the object is absent are reported as [`StorageError::Backend`].
    pub fn get_to_file(&self, key: &str, local: &Path) -> Result<u64, StorageError> {
        const OP: Operation = Operation::GetToFile;
        let path = self.key_path(OP, key)?;
        let result = self
            .block_on(self.store.get(&path))
            .map_err(|e| self.backend_err(OP, key, e))?;
        let temp = temp_path_beside(local);
        let mut out = File::create(&temp).map_err(|e| self.local_err(OP, key, &temp, e))?;
        let copied = match result.payload {
            GetResultPayload::File(mut file, source_path) => {
                // The local backend: copy on this thread, blaming the right file.
                let mut buf = vec![0u8; 1 << 20];
                let mut total = 0u64;
                loop {
                    match file.read(&mut buf) {
                        Ok(0) => break Ok(total),
                        Ok(n) => {
                            if let Err(e) = out.write_all(&buf[..n]) {
                                break Err(self.local_err(OP, key, &temp, e));
                            }
                            total += n as u64;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(self.local_err(OP, key, &source_path, e)),
                    }
                }
            }
            GetResultPayload::Stream(mut stream) => {
                let mut total = 0u64;
                loop {
                    match self.block_on(stream.next()) {
                        None => break Ok(total),
                        Some(Err(e)) => break Err(self.backend_err(OP, key, e)),
                        Some(Ok(chunk)) => {
                            if let Err(e) = out.write_all(&chunk) {
                                break Err(self.local_err(OP, key, &temp, e));
                            }
                            total += chunk.len() as u64;
                        }
                    }
                }
            }
        };
        let finished = copied.and_then(|n| {
            out.sync_all()
                .and_then(|()| fs::rename(&temp, local))
                .map(|()| n)
                .map_err(|e| self.local_err(OP, key, local, e))
        });
        if finished.is_err() {
            let _ = fs::remove_file(&temp);
        }
        finished
    }

    /// Every object under `prefix` (whole path segments; `""` for all),
    /// sorted by key, keys relative to the storage prefix.
    pub fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let path = self.prefix_path(Operation::List, prefix)?;
        let metas = self
            .block_on(self.list_paths(path))
            .map_err(|e| self.backend_err(Operation::List, prefix, e))?;
        let mut objects: Vec<ObjectInfo> = metas
            .into_iter()
            .map(|m| ObjectInfo {
                key: m.location.to_string(),
                size: m.size,
            })
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// The names of the folders directly under the storage URL (one listing
    /// request per page, whatever the folders hold), sorted.
    pub fn list_folders(&self) -> Result<Vec<String>, StorageError> {
        let listed = self
            .block_on(self.store.list_with_delimiter(None))
            .map_err(|e| self.backend_err(Operation::List, "", e))?;
        let mut folders: Vec<String> = listed
            .common_prefixes
            .into_iter()
            .filter_map(|p| p.parts().next_back().map(|part| part.as_ref().to_string()))
            .collect();
        folders.sort();
        Ok(folders)
    }

    /// Whether object `key` exists.
    pub fn exists(&self, key: &str) -> Result<bool, StorageError> {
        let path = self.key_path(Operation::Get, key)?;
        match self.block_on(self.store.head(&path)) {
            Ok(_) => Ok(true),
            Err(e) if is_missing_object(&e) => Ok(false),
            Err(e) => Err(self.backend_err(Operation::Get, key, e)),
        }
    }

    /// Deletes object `key`; an absent object is not an error.
    pub fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.key_path(Operation::Delete, key)?;
        match self.block_on(self.store.delete(&path)) {
            Ok(()) => Ok(()),
            Err(e) if is_missing_object(&e) => Ok(()),
            Err(e) => Err(self.backend_err(Operation::Delete, key, e)),
        }
    }

    /// Deletes every object under `prefix` (whole path segments; `""` deletes
    /// everything under the storage URL). Returns how many were deleted.
    pub fn delete_prefix(&self, prefix: &str) -> Result<usize, StorageError> {
        const OP: Operation = Operation::DeletePrefix;
        let path = self.prefix_path(OP, prefix)?;
        let store = Arc::clone(&self.store);
        self.block_on(async move {
            let metas = self.list_paths(path).await?;
            let count = metas.len();
            let locations =
                futures::stream::iter(metas.into_iter().map(|m| Ok(m.location))).boxed();
            let mut deleted = store.delete_stream(locations);
            while let Some(result) = deleted.next().await {
                match result {
                    Ok(_) => {}
                    Err(e) if is_missing_object(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(count)
        })
        .map_err(|e| self.backend_err(OP, prefix, e))
    }

    async fn list_paths(
        &self,
        prefix: Option<ObjectPath>,
    ) -> Result<Vec<object_store::ObjectMeta>, object_store::Error> {
        let mut stream = self.store.list(prefix.as_ref());
        let mut metas = Vec::new();
        while let Some(meta) = stream.next().await {
            metas.push(meta?);
        }
        Ok(metas)
    }

    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime
            .as_ref()
            .expect("runtime is present until drop")
            .block_on(future)
    }

    fn abort_upload(&self, writer: WriteMultipart, key: &str) {
        if let Err(e) = self.block_on(writer.abort()) {
            tracing::warn!(url = %self.url, key, error = %e, "could not abort a multipart upload; its parts may linger until the bucket's lifecycle rule removes them");
        }
    }

    /// `key` as an object path: non-empty, no empty, `.` or `..` segments.
    fn key_path(&self, operation: Operation, key: &str) -> Result<ObjectPath, StorageError> {
        let invalid = |reason: String| StorageError::InvalidKey {
            url: self.url.clone(),
            operation,
            key: key.to_string(),
            reason,
        };
        let path = ObjectPath::parse(key).map_err(|e| invalid(e.to_string()))?;
        if path.as_ref().is_empty() {
            return Err(invalid("it is empty".to_string()));
        }
        Ok(path)
    }

    /// `prefix` as an object path, `None` for everything.
    fn prefix_path(
        &self,
        operation: Operation,
        prefix: &str,
    ) -> Result<Option<ObjectPath>, StorageError> {
        let path = ObjectPath::parse(prefix).map_err(|e| StorageError::InvalidKey {
            url: self.url.clone(),
            operation,
            key: prefix.to_string(),
            reason: e.to_string(),
        })?;
        Ok((!path.as_ref().is_empty()).then_some(path))
    }

    fn backend_err(
        &self,
        operation: Operation,
        key: &str,
        source: object_store::Error,
    ) -> StorageError {
        StorageError::Backend {
            url: self.url.clone(),
            operation,
            key: key.to_string(),
            source: Box::new(source),
        }
    }

    fn local_err(
        &self,
        operation: Operation,
        key: &str,
        path: &Path,
        source: io::Error,
    ) -> StorageError {
        StorageError::LocalIo {
            url: self.url.clone(),
            operation,
            key: key.to_string(),
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
#[path = "storage_tests.rs"]
mod tests;
