//! State integrity through the runner binary: a damaged, misused or hostile
//! state directory or checkpoint ends in a clear error or an exact export,
//! never in exit 0 with less data than was written.

mod support;

use kith_runner::store::Manifest;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::runner::{binary, example, export, generate, output, write_lines};

/// A state with a snapshot and two committed log segments after it, its
/// checkpoints in a local folder, and the export it gives.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    pipeline: String,
    state: PathBuf,
    checkpoints: PathBuf,
    expected: Vec<String>,
}

/// The canonical example, checkpointing to `checkpoints`, with `extra` lines.
fn pipeline_file(dir: &Path, name: &str, checkpoints: &Path, extra: &str) -> String {
    let text = std::fs::read_to_string(example("canonical/pipeline.yaml")).unwrap();
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "{text}checkpoints:\n  url: {}\n  interval: 60s\n  retain: 3\n{extra}",
            checkpoints.display()
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn run_input(pipeline: &str, input: &Path, state: &Path) -> String {
    support::runner::run_file(pipeline, input, state, &[])
}

/// `run` with no input, restoring `from` into `state`.
fn restore(pipeline: &str, state: &Path, from: &str) -> std::process::Output {
    let state = state.to_str().unwrap();
    let args = ["run", pipeline, "--input", "/dev/null", "--state", state];
    output(&[&args[..], &["--restore", from]].concat(), &[])
}

/// [`restore`], which must succeed.
fn restore_ok(pipeline: &str, state: &Path, from: &str) {
    let out = restore(pipeline, state, from);
    assert!(
        out.status.success(),
        "restoring {from} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The newest checkpoint folder under `checkpoints`.
fn newest_checkpoint(checkpoints: &Path) -> PathBuf {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(checkpoints)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("chk-"))
        .collect();
    folders.sort();
    folders.pop().expect("a checkpoint")
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let lines = generate(600, 12);
    let third = lines.len() / 3;
    let parts: Vec<PathBuf> = (0..3)
        .map(|i| {
            let path = root.join(format!("part{i}.jsonl"));
            let end = if i == 2 { lines.len() } else { (i + 1) * third };
            write_lines(&path, &lines[i * third..end]);
            path
        })
        .collect();
    let all = root.join("all.jsonl");
    write_lines(&all, &lines);

    // Seed a state, then restore its checkpoint into 8 key groups: the
    // repartition writes a snapshot; two more runs add committed segments.
    let seed_checkpoints = root.join("seed-checkpoints");
    let seed_pipeline = pipeline_file(&root, "seed.yaml", &seed_checkpoints, "");
    run_input(&seed_pipeline, &parts[0], &root.join("seed"));
    let checkpoints = root.join("checkpoints");
    let pipeline = pipeline_file(&root, "pipeline.yaml", &checkpoints, "keyGroups: 8\n");
    let state = root.join("state");
    restore_ok(
        &pipeline,
        &state,
        newest_checkpoint(&seed_checkpoints).to_str().unwrap(),
    );
    run_input(&pipeline, &parts[1], &state);
    run_input(&pipeline, &parts[2], &state);
    let m = Manifest::read(&state).unwrap().unwrap();
    assert_eq!(m.snapshot, Some(1), "the fixture has a snapshot");
    assert!(m.segments.len() >= 2, "and committed segments: {m:?}");
    let expected = export(&state);
    let reference = pipeline_file(&root, "reference.yaml", &root.join("ref-checkpoints"), "");
    run_input(&reference, &all, &root.join("reference"));
    assert_eq!(
        expected,
        export(&root.join("reference")),
        "the fixture holds every record"
    );
    Fixture {
        _dir: dir,
        root,
        pipeline,
        state,
        checkpoints,
        expected,
    }
}

/// A copy of the fixture's state, to damage.
fn copy_state(f: &Fixture, name: &str) -> PathBuf {
    let to = f.root.join(name);
    let status = Command::new("cp")
        .arg("-a")
        .arg(&f.state)
        .arg(&to)
        .status()
        .unwrap();
    assert!(status.success());
    to
}

/// `export` and `run` on `state` both fail, naming `needle`.
fn refused(f: &Fixture, state: &Path, needle: &str) {
    let exported = output(&["export", "--state", state.to_str().unwrap()], &[]);
    let err = String::from_utf8_lossy(&exported.stderr);
    assert!(
        !exported.status.success() && err.contains(needle),
        "export refuses ({}), naming {needle}: {err}",
        exported.status
    );
    run_refused(f, state, needle);
}

/// `run` on `state` fails, naming `needle`.
fn run_refused(f: &Fixture, state: &Path, needle: &str) {
    let ran = output(
        &[
            "run",
            &f.pipeline,
            "--input",
            "/dev/null",
            "--state",
            state.to_str().unwrap(),
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&ran.stderr);
    assert!(
        !ran.status.success() && err.contains(needle),
        "run refuses ({}), naming {needle}: {err}",
        ran.status
    );
}

/// Byte offsets where frames start in a state file (after a segment's header).
fn frame_boundaries(bytes: &[u8], segment: bool) -> Vec<usize> {
    let mut at = 0;
    if segment {
        assert_eq!(&bytes[..8], b"KITHWAL3", "a segment starts with its header");
        at = 8;
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 8 + len;
    }
    let mut found = Vec::new();
    while at < bytes.len() {
        found.push(at);
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 8 + len;
    }
    found
}

#[test]
fn damaged_state_files_are_refused_by_name_and_restore_latest_is_the_way_out() {
    let f = fixture();
    let m = Manifest::read(&f.state).unwrap().unwrap();
    let snapshot_file = "snapshot-1/kg-5.bin".to_string();
    let segment_file = kith_runner::store::segment_name(m.segments[0]);

    // Each file kind cut to nothing, and cut at a frame boundary (where
    // every frame checksum still holds).
    for (name, segment) in [(&snapshot_file, false), (&segment_file, true)] {
        let bytes = std::fs::read(f.state.join(name)).unwrap();
        let boundaries = frame_boundaries(&bytes, segment);
        assert!(boundaries.len() > 2, "{name} has frames to cut between");
        let middle = boundaries[boundaries.len() / 2];
        for (how, len) in [("empty", 0), ("cut", middle)] {
            let state = copy_state(&f, &format!("{how}-{}", name.replace('/', "-")));
            std::fs::write(state.join(name), &bytes[..len]).unwrap();
            refused(&f, &state, name);
            refused(&f, &state, "the MANIFEST committed");
        }
        // The same length with different bytes: found as the file is read.
        let state = copy_state(&f, &format!("flipped-{}", name.replace('/', "-")));
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x55;
        std::fs::write(state.join(name), &flipped).unwrap();
        refused(&f, &state, name);
    }

    // The MANIFEST itself cut, and a checkpoint's `_metadata` cut.
    let state = copy_state(&f, "cut-manifest");
    let manifest = std::fs::read(state.join("MANIFEST")).unwrap();
    std::fs::write(state.join("MANIFEST"), &manifest[..manifest.len() / 2]).unwrap();
    refused(&f, &state, "MANIFEST is not readable");
    let checkpoints = f.root.join("cut-metadata");
    assert!(Command::new("cp")
        .arg("-a")
        .arg(&f.checkpoints)
        .arg(&checkpoints)
        .status()
        .unwrap()
        .success());
    let folder = newest_checkpoint(&checkpoints);
    let metadata = std::fs::read(folder.join("_metadata")).unwrap();
    std::fs::write(folder.join("_metadata"), &metadata[..metadata.len() / 2]).unwrap();
    let ran = restore(
        &f.pipeline,
        &f.root.join("from-cut"),
        folder.to_str().unwrap(),
    );
    let err = String::from_utf8_lossy(&ran.stderr);
    assert!(
        !ran.status.success() && err.contains("not checkpoint metadata"),
        "{err}"
    );

    // A deleted MANIFEST beside the snapshot is damage, not a new state.
    let state = copy_state(&f, "no-manifest");
    std::fs::remove_file(state.join("MANIFEST")).unwrap();
    refused(&f, &state, "no MANIFEST");
    let ran = output(
        &[
            "run",
            &f.pipeline,
            "--input",
            "/dev/null",
            "--state",
            state.to_str().unwrap(),
        ],
        &[],
    );
    assert!(String::from_utf8_lossy(&ran.stderr).contains("--restore latest"));
    assert!(
        state.join("snapshot-1/kg-0.bin").exists(),
        "a refused state is left as it was"
    );

    // `--restore latest` sets the damaged state aside and restores the
    // newest checkpoint, which every run here ended with.
    restore_ok(&f.pipeline, &state, "latest");
    assert_eq!(export(&state), f.expected);
    let aside: Vec<PathBuf> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("damaged-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "the damaged state is kept aside");
    assert!(aside[0].join("snapshot-1/kg-0.bin").exists());
    assert!(f.checkpoints.exists());
}

/// A hand edit of a MANIFEST's JSON.
type Edit = Box<dyn Fn(&mut serde_json::Value)>;

#[test]
fn edits_to_the_manifest_and_foreign_segments_are_refused() {
    let f = fixture();
    let text = std::fs::read_to_string(f.state.join("MANIFEST")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();

    let edits: Vec<(&str, Edit)> = vec![
        (
            "a segment removed from the list",
            Box::new(|m| {
                m["segments"].as_array_mut().unwrap().remove(0);
            }),
        ),
        (
            "identifier types swapped",
            Box::new(|m| m["identifier_types"].as_array_mut().unwrap().swap(0, 1)),
        ),
        (
            "compacted_through moved over a live segment",
            Box::new(|m| m["compacted_through"] = m["segments"][0].clone()),
        ),
    ];
    for (what, edit) in &edits {
        let state = copy_state(&f, &what.replace(' ', "-"));
        let mut edited = json.clone();
        edit(&mut edited);
        std::fs::write(
            state.join("MANIFEST"),
            serde_json::to_string_pretty(&edited).unwrap(),
        )
        .unwrap();
        println!("edit: {what}");
        refused(&f, &state, "MANIFEST checksum");
    }

    // An edit that keeps the checksum right still meets the consistency
    // checks: a segment listed as live and as folded at once.
    let state = copy_state(&f, "folded-and-live");
    let mut m = Manifest::read(&state).unwrap().unwrap();
    m.compacted_through = m.segments[0];
    m.write(&state)
        .expect_err("the runner never writes an inconsistent manifest");
    m.checksum = None;
    m.checksum = Some(crc32fast::hash(&serde_json::to_vec(&m).unwrap()));
    std::fs::write(state.join("MANIFEST"), serde_json::to_vec(&m).unwrap()).unwrap();
    refused(&f, &state, "also as folded into the snapshot");

    // A segment another state wrote, dropped into the folder.
    let state = copy_state(&f, "foreign-segment");
    let seed_segment = std::fs::read_dir(f.root.join("seed"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name().unwrap().to_str().unwrap().starts_with("wal-")
                && std::fs::metadata(p).unwrap().len() > 100
        })
        .expect("the seed state has a segment");
    let foreign = state.join(kith_runner::store::segment_name(9));
    std::fs::copy(&seed_segment, &foreign).unwrap();
    refused(&f, &state, "is not a segment of this state");
    // And arbitrary bytes under a segment's name.
    std::fs::write(&foreign, vec![7u8; 4096]).unwrap();
    refused(&f, &state, "has no segment header");
}

#[test]
fn identifier_types_that_do_not_cover_the_records_are_an_error_not_an_empty_state() {
    let f = fixture();
    // Through a checkpoint's metadata: restore the newest one with its last
    // identifier type left out.
    let checkpoints = f.root.join("short-checkpoints");
    let status = Command::new("cp")
        .arg("-a")
        .arg(&f.checkpoints)
        .arg(&checkpoints)
        .status()
        .unwrap();
    assert!(status.success());
    let folder = newest_checkpoint(&checkpoints);
    let md_path = folder.join("_metadata");
    let mut md: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&md_path).unwrap()).unwrap();
    let types = md["identifierTypes"].as_array_mut().unwrap();
    assert!(types.len() >= 2);
    types.truncate(1);
    std::fs::write(&md_path, md.to_string()).unwrap();
    let state = f.root.join("restored-short");
    let ran = restore(&f.pipeline, &state, folder.to_str().unwrap());
    let err = String::from_utf8_lossy(&ran.stderr);
    assert!(
        !ran.status.success() && err.contains("identifier type index"),
        "refused ({}): {err}",
        ran.status
    );
    assert!(err.contains("lists only 1 identifier types"), "{err}");

    // Through the MANIFEST, rewritten consistently by a tool.
    let state = copy_state(&f, "manifest-short-types");
    let mut m = Manifest::read(&state).unwrap().unwrap();
    m.identifier_types.truncate(1);
    m.write(&state).unwrap();
    refused(&f, &state, "identifier type index");
}

#[test]
fn hostile_file_names_in_checkpoint_metadata_write_nothing_outside_the_state() {
    let f = fixture();
    let outside = f.root.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let hostile = [
        "../../outside/escaped.txt".to_string(),
        outside.join("absolute.txt").display().to_string(),
        "snapshot-1/../../outside/dotdot.txt".to_string(),
        "notes.txt".to_string(),
    ];
    for (i, name) in hostile.iter().enumerate() {
        let checkpoints = f.root.join(format!("hostile-{i}"));
        let status = Command::new("cp")
            .arg("-a")
            .arg(&f.checkpoints)
            .arg(&checkpoints)
            .status()
            .unwrap();
        assert!(status.success());
        let folder = newest_checkpoint(&checkpoints);
        let md_path = folder.join("_metadata");
        let mut md: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&md_path).unwrap()).unwrap();
        md["files"][0]["name"] = serde_json::json!(name);
        std::fs::write(&md_path, md.to_string()).unwrap();
        let state = f.root.join(format!("hostile-state-{i}"));
        let ran = restore(&f.pipeline, &state, folder.to_str().unwrap());
        let err = String::from_utf8_lossy(&ran.stderr);
        assert!(
            !ran.status.success() && err.contains("not one of the state's files"),
            "{name} is refused ({}): {err}",
            ran.status
        );
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "nothing was written outside the state for {name}"
        );
    }

    // A symbolic link in the state directory does not carry a restored
    // snapshot elsewhere: a `snapshot-1` entry without a MANIFEST is a
    // damaged state, and `--restore latest` sets the link aside (it never
    // writes through it).
    let state = f.root.join("linked-state");
    std::fs::create_dir_all(&state).unwrap();
    std::os::unix::fs::symlink(&outside, state.join("snapshot-1")).unwrap();
    run_refused(&f, &state, "no MANIFEST");
    restore_ok(&f.pipeline, &state, "latest");
    assert_eq!(export(&state), f.expected);
    assert!(!std::fs::symlink_metadata(state.join("snapshot-1"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn a_second_runner_on_a_state_directory_is_refused_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let lines = generate(300, 5);
    let input = dir.path().join("input.jsonl");
    write_lines(&input, &lines);
    let reference = support::runner::reference_export(&input, dir.path());
    let state = dir.path().join("state");
    let pipeline = example("canonical/pipeline.yaml");

    // The first reads standard input, kept open while the second tries.
    let mut first = Command::new(binary())
        .args(["run", &pipeline, "--input", "-", "--state"])
        .arg(&state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = first.stdin.take().unwrap();
    let half = lines.len() / 2;
    stdin.write_all(&lines[..half].join(&b'\n')).unwrap();
    stdin.write_all(b"\n").unwrap();
    let pid = first.id();
    assert!(
        support::runner::wait_until(30, || std::fs::read_to_string(state.join("LOCK"))
            .is_ok_and(|l| l.contains(&format!("pid={pid} ")))),
        "the first runner holds the lock"
    );
    let second = output(
        &[
            "run",
            &pipeline,
            "--input",
            input.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "the second runner is refused");
    assert!(
        err.contains("is in use by") && err.contains(&format!("pid={pid}")),
        "naming the first one's pid: {err}"
    );

    stdin.write_all(&lines[half..].join(&b'\n')).unwrap();
    drop(stdin);
    let done = first.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(
        export(&state),
        reference,
        "the first runner's state is whole"
    );
    // Once the first is gone, the directory is free again.
    run_input(&pipeline, Path::new("/dev/null"), &state);
}

#[test]
fn an_input_that_is_the_runs_own_dead_letter_or_change_feed_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let input = dir.path().join("input.jsonl");
    let mut lines = generate(50, 3);
    lines.push(b"this is not JSON".to_vec());
    lines.push(b"{\"neither\": \"is this an observation\"}".to_vec());
    write_lines(&input, &lines);
    let pipeline = example("canonical/pipeline.yaml");
    run_input(&pipeline, &input, &state);
    let dead = state.join("dead-letter.jsonl");
    let feed = state.join("changes.jsonl");
    let dead_bytes = std::fs::metadata(&dead).unwrap().len();
    let feed_bytes = std::fs::metadata(&feed).unwrap().len();
    assert!(dead_bytes > 0 && feed_bytes > 0);

    let link = dir.path().join("looks-like-input.jsonl");
    std::fs::hard_link(&dead, &link).unwrap();
    for (path, role) in [
        (&dead, "the dead-letter file"),
        (&feed, "the change feed"),
        (&link, "the dead-letter file"),
    ] {
        let ran = output(
            &[
                "run",
                &pipeline,
                "--input",
                path.to_str().unwrap(),
                "--state",
                state.to_str().unwrap(),
            ],
            &[],
        );
        let err = String::from_utf8_lossy(&ran.stderr);
        assert!(
            !ran.status.success() && err.contains(role),
            "{} is refused as {role}: {err}",
            path.display()
        );
    }
    // Standard input redirected from the dead-letter file.
    let ran = Command::new(binary())
        .args(["run", &pipeline, "--input", "-", "--state"])
        .arg(&state)
        .stdin(std::fs::File::open(&dead).unwrap())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&ran.stderr);
    assert!(
        !ran.status.success() && err.contains("stdin is the dead-letter file"),
        "{err}"
    );
    assert_eq!(std::fs::metadata(&dead).unwrap().len(), dead_bytes);
    assert_eq!(std::fs::metadata(&feed).unwrap().len(), feed_bytes);
}

#[test]
fn a_panic_in_any_runner_thread_stops_the_run_with_the_reason_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lines = generate(300, 8);
    let input = dir.path().join("input.jsonl");
    write_lines(&input, &lines);
    let reference = support::runner::reference_export(&input, dir.path());
    let pipeline = example("canonical/pipeline.yaml");
    let state = dir.path().join("state");
    run_input(&pipeline, &input, &state);
    let before = std::fs::read(state.join("MANIFEST")).unwrap();

    for (failpoint, thread) in [
        ("restore", "kith-restore"),
        ("decode", "kith-decode"),
        ("checkpoint", "kith-checkpoint"),
    ] {
        let ran = output(
            &[
                "run",
                &pipeline,
                "--input",
                input.to_str().unwrap(),
                "--state",
                state.to_str().unwrap(),
            ],
            &[("KITH_FAILPOINT", failpoint)],
        );
        let err = String::from_utf8_lossy(&ran.stderr);
        assert_eq!(ran.status.code(), Some(70), "{failpoint}: {err}");
        assert!(
            err.contains(&format!("the {thread} thread panicked")) && err.contains(failpoint),
            "the reason is given: {err}"
        );
        assert!(ran.stdout.is_empty(), "no summary line after a panic");
        assert_eq!(
            std::fs::read(state.join("MANIFEST")).unwrap(),
            before,
            "{failpoint}: nothing was committed"
        );
        assert_eq!(export(&state), reference, "{failpoint}: nothing was lost");
    }
}
