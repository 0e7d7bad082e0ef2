//! Checkpoints in object storage through the runner binary: S3 on moto,
//! retention, restore of the newest usable checkpoint, and a corrupted or
//! partial checkpoint skipped in favour of the previous complete one.

mod support;

use kith_runner::checkpoint::CheckpointStorage;
use std::path::Path;
use support::moto::fresh_bucket;
use support::runner::{example, export, generate, summary, write_lines};
use support::services::require;

/// The canonical example with checkpoints to `url`.
fn pipeline(dir: &Path, url: &str, retain: u32) -> String {
    let text = std::fs::read_to_string(example("canonical/pipeline.yaml")).unwrap();
    let path = dir.join("pipeline.yaml");
    std::fs::write(
        &path,
        format!("{text}checkpoints:\n  url: {url}\n  interval: 60s\n  retain: {retain}\n"),
    )
    .unwrap();
    path.display().to_string()
}

/// Runs `input` into `state` (each run ends with a checkpoint).
fn run(pipeline: &str, input: &Path, state: &Path, envs: &[(&str, &str)]) -> serde_json::Value {
    summary(&support::runner::run_file(pipeline, input, state, envs))
}

fn checkpoint_ids(storage: &CheckpointStorage) -> Vec<u64> {
    kith_runner::checkpoint::restore::complete_checkpoints(storage).unwrap()
}

#[test]
fn checkpoints_on_s3_are_pruned_and_restore_a_lost_state() {
    let services = require(&["moto"]);
    let bucket = fresh_bucket(&services);
    let url = format!("s3://{bucket}/pipelines/p1");
    let envs: Vec<(&str, &str)> = services.envs().collect();
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipeline(dir.path(), &url, 2);
    let lines = generate(800, 9);
    let state = dir.path().join("state");
    let mut inputs = Vec::new();
    for (i, part) in lines.chunks(lines.len() / 3 + 1).enumerate() {
        let input = dir.path().join(format!("part-{i}.jsonl"));
        write_lines(&input, part);
        let s = run(&pipeline, &input, &state, &envs);
        assert_eq!(s["checkpoints"], 1, "each run ends with a checkpoint: {s}");
        inputs.push(input);
    }
    let expected = export(&state);

    let storage = CheckpointStorage::from_url_with_env(&url, services.vars()).unwrap();
    assert_eq!(
        checkpoint_ids(&storage),
        vec![2, 3],
        "two checkpoints retained"
    );
    let latest = kith_runner::checkpoint::restore::latest(&storage)
        .unwrap()
        .unwrap();
    let shared: Vec<String> = storage
        .list("shared/")
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    for f in &latest.files {
        assert!(shared.contains(&f.key), "{} uploaded", f.key);
    }
    // Pruning left no file that no retained checkpoint refers to.
    let mut referenced = std::collections::BTreeSet::new();
    for id in checkpoint_ids(&storage) {
        let md =
            kith_runner::checkpoint::restore::read_metadata(&storage, &format!("chk-{id:010}"))
                .unwrap();
        referenced.extend(md.files.into_iter().map(|f| f.key));
    }
    for key in &shared {
        assert!(
            referenced.contains(key),
            "{key} is referenced by no retained checkpoint"
        );
    }
    assert!(
        latest.files.iter().any(|f| f.name.starts_with("wal-")),
        "incremental: log segments, not a full copy each time"
    );
    let pipeline_file = latest
        .files
        .iter()
        .find(|f| f.name == "pipeline.json")
        .expect("the pipeline travels with the state");
    assert_eq!(
        pipeline_file.key,
        format!(
            "shared/{}/{:08x}-pipeline.json",
            latest.state_id, pipeline_file.crc32
        ),
        "a file that can change is stored under its checksum"
    );

    // The pod lost its disk: an empty state restores from S3.
    std::fs::remove_dir_all(&state).unwrap();
    let s = run(&pipeline, Path::new("/dev/null"), &state, &envs);
    assert!(s["restore_seconds"].as_f64().is_some());
    assert_eq!(export(&state), expected);
}

#[test]
fn a_corrupted_checkpoint_is_skipped_for_the_previous_complete_one() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("checkpoints");
    let url = format!("file://{}", store_dir.display());
    let pipeline = pipeline(dir.path(), &url, 5);
    let lines = generate(600, 4);
    let (first, second) = lines.split_at(lines.len() / 2);
    let state = dir.path().join("state");
    let part1 = dir.path().join("part1.jsonl");
    let part2 = dir.path().join("part2.jsonl");
    write_lines(&part1, first);
    write_lines(&part2, second);
    run(&pipeline, &part1, &state, &[]);
    let after_first = export(&state);
    run(&pipeline, &part2, &state, &[]);
    let after_both = export(&state);
    assert_ne!(after_first, after_both);

    let storage = CheckpointStorage::from_url(&url).unwrap();
    assert_eq!(checkpoint_ids(&storage), vec![1, 2]);
    let newest =
        kith_runner::checkpoint::restore::read_metadata(&storage, "chk-0000000002").unwrap();
    let oldest =
        kith_runner::checkpoint::restore::read_metadata(&storage, "chk-0000000001").unwrap();
    // A file only the newest checkpoint has: flip one byte of it.
    let only_newest = newest
        .files
        .iter()
        .find(|f| !oldest.files.iter().any(|o| o.key == f.key) && f.name.starts_with("wal-"))
        .expect("the second checkpoint adds a log segment");
    let path = store_dir.join(&only_newest.key);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    // And a partial checkpoint (no `_metadata`) that looks newest of all.
    std::fs::create_dir_all(store_dir.join("chk-0000000099")).unwrap();
    std::fs::write(store_dir.join("chk-0000000099/partial"), b"x").unwrap();

    std::fs::remove_dir_all(&state).unwrap();
    let out = support::runner::output(
        &[
            "run",
            &pipeline,
            "--input",
            "/dev/null",
            "--state",
            state.to_str().unwrap(),
        ],
        &[("KITH_LOG", "error")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("checkpoint unusable") && stderr.contains("crc"),
        "an error log names the bad checkpoint: {stderr}"
    );
    assert_eq!(export(&state), after_first, "restored from checkpoint 1");
}

#[test]
fn a_state_another_runner_went_on_from_is_set_aside_for_the_newest_checkpoint() {
    let services = require(&["moto"]);
    let bucket = fresh_bucket(&services);
    let url = format!("s3://{bucket}/pipelines/twins");
    let envs: Vec<(&str, &str)> = services.envs().collect();
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipeline(dir.path(), &url, 5);
    let lines = generate(900, 21);
    let parts: Vec<_> = lines
        .chunks(lines.len() / 3 + 1)
        .enumerate()
        .map(|(i, part)| {
            let input = dir.path().join(format!("part-{i}.jsonl"));
            write_lines(&input, part);
            input
        })
        .collect();
    let all = dir.path().join("all.jsonl");
    write_lines(&all, &lines);
    let reference = support::runner::reference_export(&all, dir.path());

    // Runner A checkpoints part 0. Runner B, on another node with an empty
    // disk, restores that checkpoint and goes on with part 1: its log
    // segments carry the same names as the ones A writes next.
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    run(&pipeline, &parts[0], &a, &envs);
    run(&pipeline, &parts[1], &b, &envs);
    // A comes back on its old disk and reads part 2.
    let out = support::runner::output(
        &[
            "run",
            &pipeline,
            "--input",
            parts[2].to_str().unwrap(),
            "--state",
            a.to_str().unwrap(),
        ],
        &envs
            .iter()
            .copied()
            .chain([("KITH_LOG", "warn")])
            .collect::<Vec<_>>(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("storage holds a newer checkpoint"),
        "A says why it left its state: {stderr}"
    );
    let aside: Vec<String> = std::fs::read_dir(&a)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("behind-"))
        .collect();
    assert_eq!(aside.len(), 1, "A's old state is kept aside: {aside:?}");
    assert_eq!(export(&a), reference, "A went on from B's checkpoint");

    // And its last checkpoint holds all three parts, not a mix of A's and
    // B's files of the same names.
    let fresh = dir.path().join("fresh");
    run(&pipeline, Path::new("/dev/null"), &fresh, &envs);
    assert_eq!(export(&fresh), reference);
}
