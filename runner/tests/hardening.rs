//! Input a user controls never crashes, hangs or leaks: each case here is a
//! finding of a probe of the binary, kept as a regression test through it.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::runner::{free_port, observations_applied, wait_until};

fn kith(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kith-runner"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("runner starts")
}

/// `run FILE --input INPUT --state STATE --exit-at-end`.
fn run_to_end(file: &Path, input: &Path, state: &Path, env: &[(&str, &str)]) -> Output {
    kith(
        &[
            "run",
            file.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--exit-at-end",
        ],
        env,
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A pipeline file of `body` after a minimal header.
fn pipeline(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("pipeline.yaml");
    std::fs::write(&path, format!("name: probe\nkeyGroups: 4\n{body}")).unwrap();
    path
}

const EMAIL: &str = "identifiers:\n  - type: email\n    normalize: email\n";

fn observation(id: u32) -> String {
    format!(
        r#"{{"source":"crm","id":"c-{id}","ts":"2026-01-05T10:00:00Z","kind":"person","identifiers":[{{"type":"email","value":"p{id}@example.com"}}]}}"#
    )
}

/// The pipeline loads, or fails with exit 1 (an error, never a panic's 101
/// or 70) and this message.
fn load(dir: &Path, file: &Path, env: &[(&str, &str)]) -> Result<serde_json::Value, String> {
    let input = dir.join("empty.jsonl");
    std::fs::write(&input, "").unwrap();
    let state = dir.join(format!("state-{}", rand_suffix()));
    let out = run_to_end(file, &input, &state, env);
    if out.status.success() {
        let saved = std::fs::read_to_string(state.join("pipeline.json")).unwrap();
        return Ok(serde_json::from_str(&saved).unwrap());
    }
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    Err(stderr(&out))
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[test]
fn a_huge_checkpoint_interval_is_an_error_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    for interval in ["99999999999999999999999s", "${INTERVAL}"] {
        let file = pipeline(
            dir.path(),
            &format!("{EMAIL}checkpoints:\n  interval: {interval}\n"),
        );
        let err = load(
            dir.path(),
            &file,
            &[("INTERVAL", "99999999999999999999999s")],
        )
        .unwrap_err();
        assert!(
            err.contains("checkpoints.interval") && err.contains("24h"),
            "{err}"
        );
    }
}

#[test]
fn a_variable_stays_one_value_whatever_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        &format!("{EMAIL}survivorship:\n  sourcePriority: [${{A}}, ${{B}}, ${{C}}]\n"),
    );
    let saved = load(
        dir.path(),
        &file,
        &[
            ("A", "crm\nkeyGroups: 7"),
            ("B", "web # not a comment"),
            ("C", "!!binary aGk="),
        ],
    )
    .unwrap();
    assert_eq!(saved["keyGroups"], 4, "{saved}");
    assert_eq!(
        saved["survivorship"]["sourcePriority"],
        serde_json::json!(["crm\nkeyGroups: 7", "web # not a comment", "!!binary aGk="])
    );
}

#[test]
fn a_mistyped_secret_is_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        &format!("{EMAIL}sources:\n  - type: kafka\n    bootstrapServers: ${{SECRET}}\n    topics: [t]\n"),
    );
    let err = load(dir.path(), &file, &[("SECRET", "12345678")]).unwrap_err();
    assert!(!err.contains("12345678"), "{err}");
    assert!(
        err.contains("sources") && err.contains("an integer"),
        "{err}"
    );
}

#[test]
fn a_key_written_twice_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(dir.path(), &format!("{EMAIL}keyGroups: 8\n"));
    let err = load(dir.path(), &file, &[]).unwrap_err();
    assert!(err.contains("twice") && err.contains("keyGroups"), "{err}");
}

#[test]
fn a_bad_blocklist_entry_is_named_by_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "identifiers:\n  - type: email\n    blocklist: ['^ok$', '(unclosed']\n",
    );
    let err = load(dir.path(), &file, &[]).unwrap_err();
    assert!(err.contains("identifiers[0].blocklist[1]"), "{err}");
}

#[test]
fn a_timestamp_outside_the_range_is_dead_lettered_with_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(dir.path(), EMAIL);
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        observation(1).replace("2026-01-05T10:00:00Z", "2300-01-01T00:00:00Z") + "\n",
    )
    .unwrap();
    let state = dir.path().join("state");
    let out = run_to_end(&file, &input, &state, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dead = std::fs::read_to_string(state.join("dead-letter.jsonl")).unwrap();
    assert!(
        dead.contains("1677-09-21T00:12:44Z") && dead.contains("2262-04-11T23:47:16Z"),
        "{dead}"
    );
}

/// A state with a few profiles, for the read commands.
fn state_with_profiles(dir: &Path) -> PathBuf {
    let file = pipeline(dir, EMAIL);
    let input = dir.join("in.jsonl");
    let lines: String = (0..50).map(|i| observation(i) + "\n").collect();
    std::fs::write(&input, lines).unwrap();
    let state = dir.join("state");
    let out = run_to_end(&file, &input, &state, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    state
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_with_profiles(dir.path());
    let state = state.to_str().unwrap();
    for args in [
        vec!["lookup", "--state", state, "email:p1@example.com"],
        vec![
            "explain",
            "--state",
            state,
            "email:p1@example.com",
            "email:p2@example.com",
        ],
        vec!["export", "--state", state],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kith-runner"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Closed before the command writes a byte.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert!(
            !stderr(&out).contains("panicked"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn evaluate_refuses_an_empty_export_or_truth() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let truth = dir.path().join("truth.jsonl");
    std::fs::write(
        &truth,
        r#"{"source":"crm","id":"c-1","kind":"person","entity":"e-1"}"#.to_string() + "\n",
    )
    .unwrap();
    for (export, truth) in [(&empty, &truth), (&empty, &empty)] {
        let out = kith(
            &[
                "evaluate",
                "--export",
                export.to_str().unwrap(),
                "--truth",
                truth.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(stderr(&out).contains("no record"), "{}", stderr(&out));
    }
}

/// Fails the test with `what` unless `done` holds within `seconds`.
fn assert_within(what: &str, seconds: u64, done: impl FnMut() -> bool) {
    assert!(wait_until(seconds, done), "{what}: not within {seconds} s");
}

/// `run FILE --input INPUT --state STATE --admin ADMIN`, its standard input
/// piped, its output kept.
fn run_with_admin(file: &Path, input: &str, state: &Path, admin: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kith-runner"))
        .args(["run", file.to_str().unwrap(), "--input", input, "--state"])
        .arg(state)
        .args(["--admin", admin])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Writes `lines` observations to `writer` one at a time, each applied
/// while the source is otherwise silent, then stops the runner with
/// SIGTERM (the writer still open) and returns its summary.
fn trickle_then_terminate(
    child: Child,
    admin: &str,
    writer: &mut impl Write,
    lines: u64,
    seconds_each: u64,
) -> serde_json::Value {
    for applied in 1..=lines {
        writer
            .write_all((observation(applied as u32) + "\n").as_bytes())
            .unwrap();
        writer.flush().unwrap();
        assert_within("a lone line is applied", seconds_each, || {
            observations_applied(admin) == Some(applied)
        });
    }
    terminate(&child);
    let out = exit_within(child, Duration::from_secs(30));
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap()
}

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The child's output once it exits, which must be within `limit` (it is
/// killed, and the test fails, otherwise).
fn exit_within(mut child: Child, limit: Duration) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("SIGTERM did not stop the runner within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn standard_input_applies_a_lone_line_at_once_and_sigterm_stops_with_the_pipe_open() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(dir.path(), EMAIL);
    let state = dir.path().join("state");
    let admin = format!("127.0.0.1:{}", free_port());
    let mut child = run_with_admin(&file, "-", &state, &admin);
    let mut stdin = child.stdin.take().unwrap();
    assert_within("the admin port answers", 30, || {
        observations_applied(&admin).is_some()
    });
    // One line, then silence with the pipe open: it must be applied anyway
    // (a batch of 64 used to wait for 63 more).
    let summary = trickle_then_terminate(child, &admin, &mut stdin, 3, 10);
    drop(stdin);
    assert_eq!(summary["observations"], 3, "{summary}");
    // The final checkpoint holds all three.
    let export = kith(&["export", "--state", state.to_str().unwrap()], &[]);
    assert_eq!(String::from_utf8_lossy(&export.stdout).lines().count(), 3);
}

#[test]
fn a_file_source_applies_a_lone_line_at_once_and_sigterm_stops_it_before_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(dir.path(), EMAIL);
    // A named pipe: a file whose writer appends slowly and never finishes.
    let fifo = dir.path().join("events.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let state = dir.path().join("state");
    let admin = format!("127.0.0.1:{}", free_port());
    let child = run_with_admin(&file, fifo.to_str().unwrap(), &state, &admin);
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let summary = trickle_then_terminate(child, &admin, &mut writer, 2, 30);
    drop(writer);
    assert_eq!(summary["observations"], 2, "{summary}");
}

#[test]
fn the_admin_port_serves_https_with_a_mounted_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args([
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(made.success());
    let file = pipeline(dir.path(), EMAIL);
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let admin = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_kith-runner"))
        .args([
            "run",
            file.to_str().unwrap(),
            "--input",
            "-",
            "--admin",
            &admin,
        ])
        .arg("--admin-tls-cert")
        .arg(&cert)
        .arg("--admin-tls-key")
        .arg(&key)
        .arg("--admin-token-file")
        .arg(&token)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let curl = |args: &[&str]| -> (bool, String) {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "5", "--cacert"])
            .arg(&cert)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let readyz = format!("https://{admin}/readyz");
    assert_within("HTTPS answers ready", 30, || curl(&[&readyz]).1 == "ready");
    assert_eq!(curl(&[&format!("https://{admin}/healthz")]).1, "ok");
    // The certificate is checked by the client: HTTPS for real.
    let lookup = format!("https://{admin}/v1/profiles?identifier=email:a@example.com");
    let (_, body) = curl(&["-w", "%{http_code}", &lookup]);
    assert!(body.ends_with("401"), "{body}");
    let (_, body) = curl(&[
        "-w",
        "%{http_code}",
        "-H",
        "Authorization: Bearer s3cret",
        &lookup,
    ]);
    assert!(body.ends_with("404"), "{body}");
    // Plain HTTP to the TLS port gets no answer.
    let plain = Command::new("curl")
        .args(["-s", "--max-time", "5", &format!("http://{admin}/healthz")])
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "ok");
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(!stderr(&out).contains("s3cret"));
}
