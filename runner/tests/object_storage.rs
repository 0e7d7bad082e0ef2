//! Checkpoint storage against S3, served by moto (docs/design.md §5): the same calls
//! as the local-filesystem unit tests, plus what only S3 shows: multipart
//! uploads, key prefixes within a bucket and a bucket that does not exist;
//! and files of several parts on both backends.

mod support;

use kith_runner::checkpoint::storage::{CheckpointStorage, ObjectInfo, StorageError, PART_SIZE};
use std::collections::BTreeSet;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use support::moto::{fresh_bucket, http};
use support::services::{require, Services};

fn storage(services: &Services, url: &str) -> CheckpointStorage {
    CheckpointStorage::from_url_with_env(url, services.vars()).unwrap()
}

fn keys(objects: &[ObjectInfo]) -> Vec<&str> {
    objects.iter().map(|o| o.key.as_str()).collect()
}

/// Writes `len` bytes that differ from part to part, returning their checksum.
fn write_pattern_file(path: &Path, len: usize) -> u64 {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    let mut block = vec![0u8; 1 << 16];
    let mut left = len;
    while left > 0 {
        for chunk in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        let n = left.min(block.len());
        out.write_all(&block[..n]).unwrap();
        hasher.update(&block[..n]);
        left -= n;
    }
    out.flush().unwrap();
    hasher.digest()
}

/// Every file under `dir`, relative, for checking that no staging or
/// temporary file is left behind.
fn files_under(dir: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut out = Default::default();
    walk(dir, dir, &mut out);
    out
}

fn file_checksum(path: &Path) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut file = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            return hasher.digest();
        }
        hasher.update(&buf[..n]);
    }
}

/// Uploads `source` (`len` bytes) as `shared/seg-000001.bin` and checks
/// that it is listed with its size.
fn upload_segment(storage: &CheckpointStorage, source: &Path, len: usize) {
    assert_eq!(
        storage.put_file("shared/seg-000001.bin", source).unwrap(),
        len as u64
    );
    assert_eq!(
        storage.list("shared").unwrap(),
        vec![ObjectInfo {
            key: "shared/seg-000001.bin".into(),
            size: len as u64
        }]
    );
}

/// Downloads `shared/seg-000001.bin` into `scratch/restored.bin` beside
/// `state.bin`, checks its length and checksum, and that the temporary
/// download name was renamed away; returns the restored file.
fn download_segment(
    storage: &CheckpointStorage,
    scratch: &Path,
    len: usize,
    checksum: u64,
) -> PathBuf {
    let restored = scratch.join("restored.bin");
    assert_eq!(
        storage
            .get_to_file("shared/seg-000001.bin", &restored)
            .unwrap(),
        len as u64
    );
    assert_eq!(file_checksum(&restored), checksum);
    assert_eq!(
        files_under(scratch),
        BTreeSet::from(["restored.bin".to_string(), "state.bin".to_string()]),
        "a temporary download file was left"
    );
    restored
}

#[test]
fn put_get_list_delete_under_a_prefix() {
    let services = require(&["moto"]);
    let bucket = fresh_bucket(&services);
    let url = format!("s3://{bucket}/some/prefix");
    let store = storage(&services, &url);
    assert_eq!(store.url(), url);
    // Neighbours in the same bucket that must stay invisible to `store`.
    storage(&services, &format!("s3://{bucket}/some/prefix-other"))
        .put("chk-00000001/_metadata", b"other".to_vec())
        .unwrap();
    storage(&services, &format!("s3://{bucket}/some"))
        .put("top.bin", b"top".to_vec())
        .unwrap();

    assert_eq!(store.get("chk-00000012/_metadata").unwrap(), None);
    store
        .put("chk-00000012/_metadata", b"meta-12".to_vec())
        .unwrap();
    store.put("chk-00000012/op-1.bin", vec![9u8; 1000]).unwrap();
    store
        .put("chk-00000002/_metadata", b"meta-2".to_vec())
        .unwrap();
    store
        .put("chk-000000120/_metadata", b"meta-120".to_vec())
        .unwrap();
    store.put("shared/seg-000001.bin", b"seg".to_vec()).unwrap();

    assert_eq!(
        store.get("chk-00000012/_metadata").unwrap().as_deref(),
        Some(&b"meta-12"[..])
    );
    assert_eq!(
        store.get("chk-00000012/op-1.bin").unwrap(),
        Some(vec![9u8; 1000])
    );
    // The object is where the URL says, in the bucket.
    let (status, _, body) = http(
        services.get("S3_ENDPOINT"),
        "GET",
        &format!("/{bucket}/some/prefix/chk-00000012/_metadata"),
    );
    assert_eq!((status, body.as_str()), (200, "meta-12"));

    store.put("chk-00000012/_metadata", b"v2".to_vec()).unwrap();
    assert_eq!(
        store.get("chk-00000012/_metadata").unwrap().as_deref(),
        Some(&b"v2"[..])
    );

    assert_eq!(
        store.list("").unwrap(),
        vec![
            ObjectInfo {
                key: "chk-00000002/_metadata".into(),
                size: 6
            },
            ObjectInfo {
                key: "chk-00000012/_metadata".into(),
                size: 2
            },
            ObjectInfo {
                key: "chk-00000012/op-1.bin".into(),
                size: 1000
            },
            ObjectInfo {
                key: "chk-000000120/_metadata".into(),
                size: 8
            },
            ObjectInfo {
                key: "shared/seg-000001.bin".into(),
                size: 3
            },
        ]
    );
    // Prefixes match whole segments, as on the local filesystem.
    assert_eq!(
        keys(&store.list("chk-00000012").unwrap()),
        ["chk-00000012/_metadata", "chk-00000012/op-1.bin"]
    );

    store.delete("chk-00000012/op-1.bin").unwrap();
    assert_eq!(store.get("chk-00000012/op-1.bin").unwrap(), None);
    store.delete("chk-00000012/op-1.bin").unwrap();
    store.delete("never/was").unwrap();

    assert_eq!(store.delete_prefix("chk-00000012").unwrap(), 1);
    assert_eq!(
        keys(&store.list("").unwrap()),
        [
            "chk-00000002/_metadata",
            "chk-000000120/_metadata",
            "shared/seg-000001.bin"
        ]
    );
    assert_eq!(store.delete_prefix("").unwrap(), 3);
    assert!(store.list("").unwrap().is_empty());

    // The neighbours survived `delete_prefix("")`.
    let (status, _, _) = http(
        services.get("S3_ENDPOINT"),
        "HEAD",
        &format!("/{bucket}/some/prefix-other/chk-00000001/_metadata"),
    );
    assert_eq!(status, 200);
    assert_eq!(
        keys(
            &storage(&services, &format!("s3://{bucket}/some"))
                .list("")
                .unwrap()
        ),
        ["prefix-other/chk-00000001/_metadata", "top.bin"]
    );
}

#[test]
fn large_file_uploads_in_parts_and_downloads_equal() {
    let services = require(&["moto"]);
    let bucket = fresh_bucket(&services);
    let store = storage(&services, &format!("s3://{bucket}/some/prefix"));
    let scratch = tempfile::tempdir().unwrap();
    let source = scratch.path().join("state.bin");
    let len = 40 * 1024 * 1024 + 4321;
    let checksum = write_pattern_file(&source, len);

    upload_segment(&store, &source, len);
    // A multipart upload's ETag ends in `-<parts>`.
    let parts = len.div_ceil(PART_SIZE);
    let (status, headers, _) = http(
        services.get("S3_ENDPOINT"),
        "HEAD",
        &format!("/{bucket}/some/prefix/shared/seg-000001.bin"),
    );
    assert_eq!(status, 200);
    let etag = headers
        .iter()
        .find(|(k, _)| k == "etag")
        .map(|(_, v)| v.as_str());
    assert!(
        etag.is_some_and(|e| e.trim_matches('"').ends_with(&format!("-{parts}"))),
        "ETag {etag:?} is not that of a {parts}-part upload"
    );

    download_segment(&store, scratch.path(), len, checksum);

    // Small files take a single PUT and read back the same.
    let small = scratch.path().join("small.bin");
    std::fs::write(&small, b"small state").unwrap();
    assert_eq!(store.put_file("chk-1/small.bin", &small).unwrap(), 11);
    assert_eq!(
        store.get("chk-1/small.bin").unwrap().as_deref(),
        Some(&b"small state"[..])
    );
}

#[test]
fn a_missing_bucket_is_an_error_naming_the_url() {
    let services = require(&["moto"]);
    let url = format!("s3://kith-no-such-bucket-{}/p", std::process::id());
    let store = storage(&services, &url);
    let scratch = tempfile::tempdir().unwrap();
    let local = scratch.path().join("x");
    std::fs::write(&local, b"x").unwrap();

    let failures: Vec<(&str, StorageError)> = vec![
        (
            "put",
            store.put("chk-1/_metadata", b"m".to_vec()).unwrap_err(),
        ),
        ("put_file", store.put_file("chk-1/x", &local).unwrap_err()),
        // Not `Ok(None)`: a missing bucket must not pass for "no checkpoint yet".
        ("get", store.get("chk-1/_metadata").unwrap_err()),
        (
            "get_to_file",
            store
                .get_to_file("chk-1/x", &scratch.path().join("y"))
                .unwrap_err(),
        ),
        ("list", store.list("").unwrap_err()),
        ("delete", store.delete("chk-1/_metadata").unwrap_err()),
    ];
    for (operation, err) in failures {
        let message = err.to_string();
        assert!(
            matches!(err, StorageError::Backend { .. }),
            "{operation}: {err:?}"
        );
        assert!(message.contains(&url), "{operation}: {message}");
        assert!(message.contains(operation), "{operation}: {message}");
    }
}

#[test]
fn large_file_round_trip_through_multipart_on_a_local_folder() {
    let dir = tempfile::tempdir().unwrap();
    let storage = CheckpointStorage::from_url(dir.path().to_str().unwrap()).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let source = scratch.path().join("state.bin");
    let len = 40 * 1024 * 1024 + 12_345; // three parts, the last one short
    assert!(len > 2 * PART_SIZE);
    let checksum = write_pattern_file(&source, len);

    upload_segment(&storage, &source, len);
    // Only the object itself: no staging file left in the storage directory.
    assert_eq!(
        files_under(dir.path()),
        BTreeSet::from(["shared/seg-000001.bin".to_string()])
    );

    let restored = download_segment(&storage, scratch.path(), len, checksum);

    // Replacing an existing destination file works too.
    std::fs::write(&restored, b"stale").unwrap();
    storage
        .get_to_file("shared/seg-000001.bin", &restored)
        .unwrap();
    assert_eq!(file_checksum(&restored), checksum);
}

#[test]
fn a_create_only_put_is_refused_by_s3_when_the_object_exists() {
    let services = require(&["moto"]);
    let bucket = fresh_bucket(&services);
    let store = storage(&services, &format!("s3://{bucket}/p"));
    store
        .put_new("chk-0000000007/_metadata", b"first".to_vec())
        .unwrap();
    // A second writer's commit of the same checkpoint (If-None-Match: *).
    let other = storage(&services, &format!("s3://{bucket}/p"));
    let second = other.put_new("chk-0000000007/_metadata", b"second".to_vec());
    assert!(
        matches!(second, Err(StorageError::Exists { .. })),
        "{second:?}"
    );
    assert_eq!(
        store.get("chk-0000000007/_metadata").unwrap().as_deref(),
        Some(&b"first"[..])
    );
}

#[test]
fn a_store_without_conditional_writes_still_takes_commits() {
    let services = require(&["moto"]);
    let bucket = fresh_bucket(&services);
    let mut env = services.vars().clone();
    env.insert("AWS_CONDITIONAL_PUT".into(), "disabled".into());
    let store = CheckpointStorage::from_url_with_env(&format!("s3://{bucket}/p"), &env).unwrap();
    store.put_new("a/_metadata", b"one".to_vec()).unwrap();
    // Guarded by the Lease alone there: the second write goes through.
    store.put_new("a/_metadata", b"two".to_vec()).unwrap();
    assert_eq!(
        store.get("a/_metadata").unwrap().as_deref(),
        Some(&b"two"[..])
    );
}
