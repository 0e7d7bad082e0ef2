//! Unit tests of [`CheckpointStorage`] on the local filesystem. The S3 side,
//! and multi-part files on both backends, run in
//! `runner/tests/object_storage.rs`.

use super::*;
use tempfile::TempDir;

fn local() -> (TempDir, CheckpointStorage) {
    let dir = tempfile::tempdir().unwrap();
    let storage = CheckpointStorage::from_url(dir.path().to_str().unwrap()).unwrap();
    (dir, storage)
}

fn keys(objects: &[ObjectInfo]) -> Vec<&str> {
    objects.iter().map(|o| o.key.as_str()).collect()
}

#[test]
fn storage_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CheckpointStorage>();
}

#[test]
fn put_get_list_delete_round_trip() {
    let (dir, storage) = local();
    storage
        .put("chk-00000012/_metadata", b"meta-12".to_vec())
        .unwrap();
    storage
        .put("chk-00000012/op-1.bin", vec![7u8; 1000])
        .unwrap();
    storage
        .put("chk-00000010/_metadata", b"meta-10".to_vec())
        .unwrap();
    storage
        .put("shared/seg-000001.bin", b"seg".to_vec())
        .unwrap();

    assert_eq!(
        storage.get("chk-00000012/_metadata").unwrap().as_deref(),
        Some(&b"meta-12"[..])
    );
    assert_eq!(
        storage.get("chk-00000012/op-1.bin").unwrap(),
        Some(vec![7u8; 1000])
    );
    // The objects are plain files under the directory.
    assert_eq!(
        fs::read(dir.path().join("shared/seg-000001.bin")).unwrap(),
        b"seg"
    );

    // Overwrite replaces the whole object.
    storage
        .put("chk-00000012/_metadata", b"v2".to_vec())
        .unwrap();
    assert_eq!(
        storage.get("chk-00000012/_metadata").unwrap().as_deref(),
        Some(&b"v2"[..])
    );

    let all = storage.list("").unwrap();
    assert_eq!(
        all,
        vec![
            ObjectInfo {
                key: "chk-00000010/_metadata".into(),
                size: 7
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
                key: "shared/seg-000001.bin".into(),
                size: 3
            },
        ]
    );
    assert_eq!(
        keys(&storage.list("chk-00000012").unwrap()),
        ["chk-00000012/_metadata", "chk-00000012/op-1.bin"]
    );
    // A trailing slash names the same prefix.
    assert_eq!(storage.list("chk-00000012/").unwrap().len(), 2);

    storage.delete("chk-00000012/op-1.bin").unwrap();
    assert_eq!(storage.get("chk-00000012/op-1.bin").unwrap(), None);
    // Deleting again, or a key that never existed, is not an error.
    storage.delete("chk-00000012/op-1.bin").unwrap();
    storage.delete("never/was").unwrap();
    assert_eq!(
        keys(&storage.list("").unwrap()),
        [
            "chk-00000010/_metadata",
            "chk-00000012/_metadata",
            "shared/seg-000001.bin"
        ]
    );
}

#[test]
fn delete_prefix_matches_whole_segments() {
    let (dir, storage) = local();
    for key in [
        "chk-1/_metadata",
        "chk-1/a/b.bin",
        "chk-10/_metadata",
        "chk-2/_metadata",
    ] {
        storage.put(key, key.as_bytes().to_vec()).unwrap();
    }
    assert_eq!(
        keys(&storage.list("chk-1").unwrap()),
        ["chk-1/_metadata", "chk-1/a/b.bin"]
    );

    assert_eq!(storage.delete_prefix("chk-1").unwrap(), 2);
    assert_eq!(
        keys(&storage.list("").unwrap()),
        ["chk-10/_metadata", "chk-2/_metadata"]
    );
    // Empty directories are removed with their last object.
    assert!(!dir.path().join("chk-1").exists());

    // Nothing under the prefix: nothing to do.
    assert_eq!(storage.delete_prefix("chk-1").unwrap(), 0);
    assert_eq!(storage.delete_prefix("").unwrap(), 2);
    assert!(storage.list("").unwrap().is_empty());
}

#[test]
fn missing_key_and_prefix() {
    let (_dir, storage) = local();
    assert_eq!(storage.get("chk-00000001/_metadata").unwrap(), None);
    assert!(storage.list("chk-00000001").unwrap().is_empty());
    storage.put("chk-00000001/x", b"x".to_vec()).unwrap();
    // A prefix is not an object.
    assert_eq!(storage.get("chk-00000001").unwrap(), None);
    assert_eq!(storage.get("chk-00000001/y").unwrap(), None);
}

#[test]
fn small_and_empty_files_round_trip() {
    let (_dir, storage) = local();
    let scratch = tempfile::tempdir().unwrap();
    for (name, content) in [
        ("small", b"hello, checkpoint".to_vec()),
        ("empty", Vec::new()),
    ] {
        let source = scratch.path().join(name);
        fs::write(&source, &content).unwrap();
        let key = format!("chk-1/{name}");
        assert_eq!(
            storage.put_file(&key, &source).unwrap(),
            content.len() as u64
        );
        assert_eq!(storage.get(&key).unwrap(), Some(content.clone()));
        let back = scratch.path().join(format!("{name}.back"));
        assert_eq!(
            storage.get_to_file(&key, &back).unwrap(),
            content.len() as u64
        );
        assert_eq!(fs::read(&back).unwrap(), content);
    }
}

#[test]
fn get_to_file_of_missing_key_fails_and_leaves_nothing() {
    let (_dir, storage) = local();
    let scratch = tempfile::tempdir().unwrap();
    let dest = scratch.path().join("out.bin");
    let err = storage.get_to_file("chk-9/_metadata", &dest).unwrap_err();
    assert!(
        matches!(&err, StorageError::Backend { operation: Operation::GetToFile, key, .. } if key == "chk-9/_metadata"),
        "{err:?}"
    );
    assert!(
        fs::read_dir(scratch.path()).unwrap().next().is_none(),
        "no partial download is left"
    );
}

#[test]
fn put_file_of_missing_local_file_names_it() {
    let (_dir, storage) = local();
    let missing = Path::new("/nonexistent/kith/state.bin");
    let err = storage.put_file("chk-1/state.bin", missing).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("/nonexistent/kith/state.bin"), "{message}");
    assert!(message.contains("put_file `chk-1/state.bin`"), "{message}");
    assert!(storage.list("").unwrap().is_empty());
}

#[test]
fn file_url_and_relative_path_open_the_same_directory() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/checkpoints");
    let by_url = CheckpointStorage::from_url(&format!("file://{}", nested.display())).unwrap();
    // Created when missing.
    assert!(nested.is_dir());
    assert_eq!(by_url.url(), format!("file://{}", nested.display()));
    by_url.put("chk-1/_metadata", b"m".to_vec()).unwrap();

    // The same directory as a path relative to the current directory.
    let cwd = std::env::current_dir().unwrap();
    let mut relative = PathBuf::new();
    for _ in cwd.components().skip(1) {
        relative.push("..");
    }
    relative.push(nested.strip_prefix("/").unwrap());
    assert!(relative.is_relative());
    let by_relative = CheckpointStorage::from_url(relative.to_str().unwrap()).unwrap();
    assert_eq!(
        by_relative.get("chk-1/_metadata").unwrap().as_deref(),
        Some(&b"m"[..])
    );

    let by_absolute = CheckpointStorage::from_url(nested.to_str().unwrap()).unwrap();
    assert_eq!(keys(&by_absolute.list("").unwrap()), ["chk-1/_metadata"]);
}

#[test]
fn bad_urls_are_rejected_with_the_accepted_forms() {
    for url in [
        "",
        "gs://bucket/x",
        "http://example.com/x",
        "s3://",
        "s3:///prefix",
        "file://host/x",
        "file://relative/x",
        "s3://bucket:9000/x",
    ] {
        let err = CheckpointStorage::from_url(url).unwrap_err();
        assert!(
            matches!(&err, StorageError::InvalidUrl { url: u, .. } if u == url),
            "{url}: {err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(&format!("`{url}`")), "{message}");
        assert!(
            message.contains("`file:///path`, a local path, `s3://bucket/prefix`"),
            "{message}"
        );
    }
}

#[test]
fn s3_urls_parse_into_bucket_and_prefix() {
    let parsed = |url| parse_url(url).unwrap();
    assert_eq!(
        parsed("s3://kith-test/some/prefix/"),
        Location::S3 {
            bucket: "kith-test".into(),
            prefix: "some/prefix".into()
        }
    );
    assert_eq!(
        parsed("s3://kith-test"),
        Location::S3 {
            bucket: "kith-test".into(),
            prefix: String::new()
        }
    );
    assert_eq!(
        parsed("file:///var/lib/kith"),
        Location::Local(PathBuf::from("/var/lib/kith"))
    );
    assert_eq!(
        parsed("state/checkpoints"),
        Location::Local(PathBuf::from("state/checkpoints"))
    );
    assert!(matches!(
        parse_url("s3://b/a//c"),
        Err(StorageError::InvalidUrl { .. })
    ));
    // Opening an S3 URL makes no request, so it works without a server.
    let env = HashMap::from([("S3_ENDPOINT".to_string(), "http://127.0.0.1:1".to_string())]);
    let storage = CheckpointStorage::from_url_with_env("s3://kith-test/p", &env).unwrap();
    assert_eq!(storage.url(), "s3://kith-test/p");
}

#[test]
fn s3_endpoint_precedence() {
    let env = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(s3_endpoint(&env(&[])), None);
    assert_eq!(
        s3_endpoint(&env(&[("S3_ENDPOINT", "http://c")])),
        Some("http://c")
    );
    assert_eq!(
        s3_endpoint(&env(&[
            ("S3_ENDPOINT", "http://c"),
            ("AWS_ENDPOINT_URL", "http://b")
        ])),
        Some("http://b")
    );
    assert_eq!(
        s3_endpoint(&env(&[
            ("S3_ENDPOINT", "http://c"),
            ("AWS_ENDPOINT_URL", "http://b"),
            ("AWS_ENDPOINT_URL_S3", "http://a"),
        ])),
        Some("http://a")
    );
    assert_eq!(
        s3_endpoint(&env(&[
            ("AWS_ENDPOINT_URL_S3", ""),
            ("S3_ENDPOINT", "http://c")
        ])),
        Some("http://c")
    );
}

#[test]
fn invalid_keys_are_rejected() {
    let (_dir, storage) = local();
    for key in ["", "/", "a//b", "../escape", "a/./b"] {
        let err = storage.put(key, b"x".to_vec()).unwrap_err();
        assert!(
            matches!(&err, StorageError::InvalidKey { key: k, operation: Operation::Put, .. } if k == key),
            "{key:?}: {err:?}"
        );
    }
    assert!(matches!(
        storage.list("a//b"),
        Err(StorageError::InvalidKey { .. })
    ));
    assert!(storage.list("").unwrap().is_empty());
}

#[test]
fn concurrent_puts_from_threads() {
    let (_dir, storage) = local();
    let storage = Arc::new(storage);
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let storage = Arc::clone(&storage);
            std::thread::spawn(move || {
                for i in 0..10 {
                    storage
                        .put(&format!("t{t}/obj-{i:02}"), vec![t as u8; i + 1])
                        .unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let all = storage.list("").unwrap();
    assert_eq!(all.len(), 40);
    assert!(all.windows(2).all(|w| w[0].key < w[1].key));
    assert_eq!(storage.get("t3/obj-09").unwrap(), Some(vec![3u8; 10]));
}

#[test]
fn errors_stay_small_enough_to_wrap() {
    // Callers wrap `StorageError` in their own error enums, which clippy's
    // `result_large_err` limits to 128 bytes.
    let size = std::mem::size_of::<StorageError>();
    assert!(size <= 96, "StorageError is {size} bytes");
}

#[test]
fn folders_directly_under_the_url_are_listed_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let storage = CheckpointStorage::from_url(dir.path().to_str().unwrap()).unwrap();
    storage
        .put("chk-0000000002/_metadata", b"{}".to_vec())
        .unwrap();
    storage
        .put("chk-0000000010/_metadata", b"{}".to_vec())
        .unwrap();
    storage.put("shared/a/wal-1.bin", b"x".to_vec()).unwrap();
    storage.put("top-level-object", b"x".to_vec()).unwrap();
    assert_eq!(
        storage.list_folders().unwrap(),
        ["chk-0000000002", "chk-0000000010", "shared"]
    );
    assert!(storage.exists("chk-0000000002/_metadata").unwrap());
    assert!(!storage.exists("chk-0000000003/_metadata").unwrap());
}

#[test]
fn a_create_only_put_never_replaces_an_object() {
    let (_dir, storage) = local();
    storage
        .put_new("chk-0000000001/_metadata", b"first".to_vec())
        .unwrap();
    let second = storage.put_new("chk-0000000001/_metadata", b"second".to_vec());
    assert!(
        matches!(second, Err(StorageError::Exists { ref key, .. }) if key == "chk-0000000001/_metadata"),
        "{second:?}"
    );
    assert_eq!(
        storage.get("chk-0000000001/_metadata").unwrap().as_deref(),
        Some(&b"first"[..])
    );
}
