//! Storage that fails under a running runner: the state directory's file
//! system filling up, and object storage failing or answering errors in the
//! middle of a checkpoint and of a restore. Each ends in an exact export or a
//! clear error; no partial checkpoint is ever used, and the last good one is
//! never deleted.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::runner::{
    binary, example, export, free_port, generate, http, wait_until, write_lines,
};

/// A tmpfs of `size` mounted for the test's life (needs root, as CI has).
struct SmallFs {
    path: PathBuf,
}

impl SmallFs {
    fn mount(path: &Path, size: &str) -> Option<SmallFs> {
        std::fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .ok()?;
        status.success().then(|| SmallFs {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fills the file system holding `path` up to all but about `leave` bytes.
fn fill(path: &Path, leave: u64) {
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0x5Au8; 64 << 10];
    let mut written = 0u64;
    while f.write_all(&block).is_ok() {
        written += block.len() as u64;
    }
    drop(f);
    let keep = written.saturating_sub(leave);
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(keep)
        .unwrap();
}

fn readyz(admin: &str) -> Option<(u16, String)> {
    http(admin, "GET", "/readyz")
}

#[test]
fn a_full_state_directory_pauses_the_runner_unready_and_it_resumes_exactly_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let Some(small) = SmallFs::mount(&dir.path().join("small"), "6m") else {
        eprintln!(
            "SKIPPED: mounting a tmpfs needs root (CAP_SYS_ADMIN); this test could not run here"
        );
        return;
    };
    let lines = generate(4000, 21);
    let input = dir.path().join("input.jsonl");
    write_lines(&input, &lines);
    let reference = support::runner::reference_export(&input, dir.path());

    // The dead-letter file and change feed live elsewhere: this is about
    // the state directory.
    let pipeline = dir.path().join("pipeline.yaml");
    let text = std::fs::read_to_string(example("canonical/pipeline.yaml")).unwrap();
    std::fs::write(
        &pipeline,
        format!(
            "{text}checkpoints:\n  interval: 1s\noutputs:\n  deadLetter: {}\n  changeFeed: {}\n",
            dir.path().join("dead.jsonl").display(),
            dir.path().join("changes.jsonl").display()
        ),
    )
    .unwrap();
    let state = small.path.join("state");
    let admin = format!("127.0.0.1:{}", free_port());
    let mut runner = support::runner::Running(
        Command::new(binary())
            .args(["run", pipeline.to_str().unwrap(), "--input", "-", "--state"])
            .arg(&state)
            .args(["--admin", &admin])
            .env("KITH_LOG", "kith_runner=info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("runner.err")).unwrap())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_until(60, || readyz(&admin).is_some_and(|(s, _)| s == 200)),
        "the runner becomes ready"
    );
    let filler = small.path.join("filler");
    fill(&filler, 256 << 10);

    // Written from a thread of its own: a stalled runner stops reading, and
    // the pipe fills.
    let mut stdin = runner.0.stdin.take().unwrap();
    let body = lines.join(&b'\n');
    let (written_tx, written) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&body).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
        written.recv().ok();
        drop(stdin);
    });
    let mut reason = String::new();
    assert!(
        wait_until(120, || match readyz(&admin) {
            Some((503, body)) if body.contains("file system is full") => {
                reason = body;
                true
            }
            _ => false,
        }),
        "the runner reports the full disk as not ready: {:?}",
        readyz(&admin)
    );
    assert!(reason.contains("nothing is lost"), "{reason}");
    let metrics = http(&admin, "GET", "/metrics").unwrap().1;
    assert!(
        metrics.contains("kith_state_stalled 1"),
        "the stall is a metric too"
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(
        runner.try_wait().unwrap().is_none(),
        "a full disk does not stop the runner"
    );
    assert_eq!(
        readyz(&admin).map(|(s, _)| s),
        Some(503),
        "and it stays unready while the disk is full"
    );

    std::fs::remove_file(&filler).unwrap();
    assert!(
        wait_until(60, || readyz(&admin).is_some_and(|(s, _)| s == 200)),
        "ready again once space returns: {:?}",
        readyz(&admin)
    );
    assert!(http(&admin, "GET", "/metrics")
        .unwrap()
        .1
        .contains("kith_state_stalled 0"));
    // Standard input ends once everything is written.
    written_tx.send(()).unwrap();
    writer.join().unwrap();
    let status = runner.wait().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(runner.0.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let log = std::fs::read_to_string(dir.path().join("runner.err")).unwrap();
    assert!(status.success(), "{log}");
    support::runner::summary(&stdout);
    assert!(
        log.contains("file system is full"),
        "the stall is logged: {log}"
    );
    assert_eq!(export(&state), reference, "nothing was lost or corrupted");
}

/// The canonical example checkpointing to `url`, keeping only `retain`.
fn checkpointing_pipeline(dir: &Path, url: &str, retain: u32) -> String {
    let text = std::fs::read_to_string(example("canonical/pipeline.yaml")).unwrap();
    let path = dir.join("pipeline.yaml");
    std::fs::write(
        &path,
        format!("{text}checkpoints:\n  url: {url}\n  interval: 60s\n  retain: {retain}\n"),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn object_store_errors_mid_checkpoint_and_mid_restore_never_use_a_partial_or_older_checkpoint() {
    let services = support::services::require(&["moto"]);
    let bucket = support::moto::fresh_bucket(&services);
    let url = format!("s3://{bucket}/pipelines/faults");
    let dir = tempfile::tempdir().unwrap();
    let proxy = support::faults::Proxy::start(services.get("S3_ENDPOINT"), dir.path(), "s3");
    let endpoint = proxy.endpoint();
    // The runner reaches S3 through the proxy only.
    let mut envs: Vec<(&str, &str)> = services.envs().collect();
    envs.push(("AWS_ENDPOINT_URL_S3", &endpoint));
    let storage =
        kith_runner::checkpoint::CheckpointStorage::from_url_with_env(&url, services.vars())
            .unwrap();
    let complete = || kith_runner::checkpoint::restore::complete_checkpoints(&storage).unwrap();
    let pipeline = checkpointing_pipeline(dir.path(), &url, 1);
    let lines = generate(900, 31);
    let parts: Vec<PathBuf> = lines
        .chunks(lines.len() / 3 + 1)
        .enumerate()
        .map(|(i, part)| {
            let path = dir.path().join(format!("part-{i}.jsonl"));
            write_lines(&path, part);
            path
        })
        .collect();
    let state = dir.path().join("state");
    let run = |input: &Path, state: &Path| {
        support::runner::summary(&support::runner::run_file(&pipeline, input, state, &envs))
    };
    let restore_into = |state: &Path| {
        support::runner::output(
            &[
                "run",
                &pipeline,
                "--input",
                "/dev/null",
                "--state",
                state.to_str().unwrap(),
            ],
            &envs,
        )
    };

    let s = run(&parts[0], &state);
    assert_eq!(s["checkpoints"], 1);
    let after_first = export(&state);
    assert_eq!(complete(), vec![1]);

    // Mid-checkpoint: every file is uploaded, then the `_metadata` that
    // would commit the checkpoint is refused.
    proxy.set(serde_json::json!({"faults": [
        {"kind": "error", "status": 403, "path": "_metadata", "method": "PUT"}
    ]}));
    let s = run(&parts[1], &state);
    assert_eq!(
        s["checkpoints"], 0,
        "the checkpoint failed, and the run says so: {s}"
    );
    assert!(
        proxy.state()["plan"]["faults"][0]["injected"]
            .as_u64()
            .unwrap()
            >= 1
    );
    assert_eq!(
        complete(),
        vec![1],
        "the failed checkpoint is not complete, and retention (1) kept the last good one"
    );
    let after_second = export(&state);
    assert_ne!(
        after_first, after_second,
        "the local state kept the run's records"
    );
    // A restore now gets the last complete checkpoint, not the partial one.
    proxy.clear();
    let fresh = dir.path().join("fresh");
    let out = restore_into(&fresh);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(export(&fresh), after_first);

    // Storage answers again: the next checkpoint completes and replaces it.
    let s = run(&parts[2], &state);
    assert_eq!(s["checkpoints"], 1);
    let expected = export(&state);
    let ids = complete();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(ids[0] > 1);

    // Mid-restore: the metadata reads, then a log segment's download fails.
    // The restore fails with the error; it never falls back to an older
    // checkpoint or to an empty state.
    proxy.set(serde_json::json!({"faults": [
        {"kind": "error", "status": 403, "path": "wal-", "method": "GET", "count": 1}
    ]}));
    let lost = dir.path().join("lost");
    let out = restore_into(&lost);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a failed download fails the run: {err}"
    );
    assert!(err.contains("wal-"), "naming the object: {err}");
    assert!(
        !lost.join("MANIFEST").exists(),
        "nothing that looks like a state is left"
    );
    assert_eq!(proxy.state()["plan"]["faults"][0]["injected"], 1);
    // Once storage answers, the same directory restores the newest one.
    let out = restore_into(&lost);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(export(&lost), expected);
}

#[test]
fn a_state_that_cannot_see_a_newer_checkpoint_at_start_still_never_mixes_its_files_with_it() {
    let services = support::services::require(&["moto"]);
    let bucket = support::moto::fresh_bucket(&services);
    let url = format!("s3://{bucket}/pipelines/branches");
    let dir = tempfile::tempdir().unwrap();
    let proxy = support::faults::Proxy::start(services.get("S3_ENDPOINT"), dir.path(), "s3");
    let endpoint = proxy.endpoint();
    let direct: Vec<(&str, &str)> = services.envs().collect();
    let mut proxied = direct.clone();
    proxied.push(("AWS_ENDPOINT_URL_S3", &endpoint));
    let pipeline = checkpointing_pipeline(dir.path(), &url, 5);
    let lines = generate(900, 33);
    let parts: Vec<PathBuf> = lines
        .chunks(lines.len() / 3 + 1)
        .enumerate()
        .map(|(i, part)| {
            let path = dir.path().join(format!("part-{i}.jsonl"));
            write_lines(&path, part);
            path
        })
        .collect();
    let run = |input: &Path, state: &Path, envs: &[(&str, &str)]| {
        support::runner::output(
            &[
                "run",
                &pipeline,
                "--input",
                input.to_str().unwrap(),
                "--state",
                state.to_str().unwrap(),
            ],
            envs,
        )
    };
    // A checkpoints part 0; B restores that checkpoint and goes on with
    // part 1, writing log segments of the names A writes next.
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    assert!(run(&parts[0], &a, &direct).status.success());
    assert!(run(&parts[1], &b, &direct).status.success());
    // A comes back, and its first two listings of storage (the look at the
    // newest checkpoint at start, and the checkpoint thread's) are refused:
    // it goes on from its own state, then checkpoints once storage answers.
    proxy.set(serde_json::json!({"faults": [
        {"kind": "error", "status": 403, "query": "list-type", "method": "GET", "count": 2}
    ]}));
    let out = run(&parts[2], &a, &proxied);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        proxy.state()["plan"]["faults"][0]["injected"],
        2,
        "both listings were refused"
    );
    assert!(
        stderr.contains("written by another runner of this state"),
        "the checkpoint thread saw B's checkpoint: {stderr}"
    );
    // A's branch is consistent on its own (parts 0 and 2), and its
    // checkpoint restores exactly that, none of B's files in its place.
    let branch = export(&a);
    let fresh = dir.path().join("fresh");
    assert!(run(Path::new("/dev/null"), &fresh, &direct)
        .status
        .success());
    assert_eq!(export(&fresh), branch);
    let reference = dir.path().join("reference");
    let canonical = example("canonical/pipeline.yaml");
    for part in [&parts[0], &parts[2]] {
        support::runner::run_file(&canonical, part, &reference, &[]);
    }
    assert_eq!(branch, export(&reference));
}
