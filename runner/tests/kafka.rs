//! The runner on a real Kafka broker (the test services of docs/design.md §5):
//! exactly-once state through SIGKILL at random moments, a lost state
//! directory restored from checkpoints, dead letters on their topic, and
//! savepoints restored into a fresh state with other key groups.

mod support;

use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::time::Duration;
use support::kafka::{create_topic, read_all, KafkaCase};
use support::runner::{
    example, export, free_port, generate, http, observations_applied, run_ok, spawn, summary,
    wait_until,
};

/// Lines a pipeline cannot apply, each a different reason.
fn garbage() -> Vec<Vec<u8>> {
    vec![
        b"not json at all".to_vec(),
        br#"{"source":"crm","id":"g-1","ts":"2026-01-01T00:00:00Z"}"#.to_vec(),
        br#"{"source":"crm","id":"g-2","ts":"yesterday","kind":"person","identifiers":[]}"#.to_vec(),
        vec![0xff, 0xfe, b'{', b'}'],
        br#"{"source":"crm","id":"g-3","ts":"2026-01-01T00:00:00Z","kind":"person","identifiers":[{"type":"shoe_size","value":"9"}]}"#.to_vec(),
    ]
}

fn kafka_run_args<'a>(state: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut args = vec![
        "run".to_string(),
        example("kafka/pipeline.yaml"),
        "--state".to_string(),
        state.to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn sigkill_at_random_moments_then_restart_equals_a_file_run() {
    let case = KafkaCase::new("kith-crash", 4);
    let (bootstrap, topic, dir) = (&case.bootstrap, &case.topic, &case.dir);
    create_topic(bootstrap, &format!("{topic}-dlq"), 1);

    // The workload, with bad messages mixed in at known places.
    let mut lines = generate(4000, 11);
    let bad = garbage();
    for (i, g) in bad.iter().enumerate() {
        let at = (i + 1) * lines.len() / (bad.len() + 1);
        lines.insert(at, g.clone());
    }
    let reference = case.reference(&lines, "all");
    assert!(reference.len() > 1000, "the workload makes many profiles");

    let state = dir.path().join("state");
    let mut envs = case.envs("100ms");
    envs.push(("KITH_LOG", "kith_runner=info"));
    let seed: u64 = std::env::var("KITH_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("kill moments from seed {seed} (KITH_TEST_SEED={seed} repeats them)");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);

    let half = lines.len() / 2;
    case.produce(&lines[..half]);
    let state_arg = state.to_str().unwrap().to_string();
    let mut kills = 0;
    for round in 0..6 {
        if round == 2 {
            case.produce(&lines[half..]);
        }
        if round == 4 {
            // The pod lost its disk: the next start restores the latest
            // complete checkpoint from checkpoint storage.
            std::fs::remove_dir_all(&state).unwrap();
        }
        let args = kafka_run_args(&state_arg, &[]);
        let mut child = spawn(
            &as_strs(&args),
            &envs,
            dir.path(),
            &format!("round-{round}"),
        );
        // Any moment, except that the restore of round 4 is let finish so
        // that the test can see it happened.
        let low = if round == 4 { 1200 } else { 150 };
        std::thread::sleep(Duration::from_millis(rng.gen_range(low..2500)));
        let running = child.try_wait().unwrap().is_none();
        assert!(
            running,
            "round {round}: the runner exited by itself (see {}/round-{round}.err)",
            dir.path().display()
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        if round == 4 {
            let log = std::fs::read_to_string(dir.path().join("round-4.err")).unwrap();
            assert!(
                log.contains("restored from object storage"),
                "the lost state came back from checkpoint storage:\n{log}"
            );
        }
    }
    assert!(kills >= 5);

    let args = kafka_run_args(&state_arg, &["--exit-at-end"]);
    let out = run_ok(&as_strs(&args), &envs);
    let s = summary(&out);
    assert!(s["checkpoints"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(
        export(&state),
        reference,
        "state after 6 SIGKILLs differs from the file run"
    );

    // Every bad message is on the dead-letter topic, with where it was and
    // why; a crash may repeat one, never lose one.
    let dead = read_all(bootstrap, &format!("{topic}-dlq"));
    let distinct: BTreeSet<(String, String)> = dead
        .iter()
        .map(|m| {
            assert!(!m.headers["kith-reason"].is_empty());
            assert_eq!(&m.headers["kith-topic"], topic);
            (
                m.headers["kith-partition"].clone(),
                m.headers["kith-offset"].clone(),
            )
        })
        .collect();
    assert_eq!(distinct.len(), bad.len(), "one dead letter per bad message");
    let payloads: BTreeSet<Vec<u8>> = dead.iter().map(|m| m.payload.clone()).collect();
    assert_eq!(payloads, bad.iter().cloned().collect());
}

#[test]
fn a_savepoint_restores_into_a_fresh_state_with_other_key_groups() {
    let case = KafkaCase::new("kith-savepoint", 3);
    let dir = &case.dir;
    let lines = generate(1500, 5);
    let reference = case.reference(&lines, "all");
    case.produce(&lines);

    let port = free_port();
    let admin = format!("127.0.0.1:{port}");
    let state = dir.path().join("state");
    let savepoints = format!("file://{}", dir.path().join("savepoints").display());
    let envs = case.envs("200ms");
    let pipeline = dir.path().join("pipeline.yaml");
    let text = std::fs::read_to_string(example("kafka/pipeline.yaml")).unwrap();
    std::fs::write(
        &pipeline,
        text.replace(
            "  retain: 3\n",
            &format!("  retain: 3\n  savepointUrl: {savepoints}\n"),
        ),
    )
    .unwrap();
    let args = [
        "run",
        pipeline.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--admin",
        &admin,
    ];
    let mut child = spawn(&args, &envs, dir.path(), "running");
    // Ready, and every message applied (the topic is not growing).
    let probe = support::runner::reference_probe(&lines);
    assert!(
        wait_until(60, || http(
            &admin,
            "GET",
            &format!("/v1/profiles?identifier={probe}")
        )
        .is_some_and(|(status, _)| status == 200)),
        "the runner never answered a lookup (see {}/running.err)",
        dir.path().display()
    );
    assert!(wait_until(60, || {
        http(&admin, "GET", "/metrics").is_some_and(|(_, body)| {
            body.lines()
                .any(|l| l == format!("kith_observations_total {}", lines.len()))
        })
    }));
    let (status, body) = http(&admin, "GET", "/readyz").unwrap();
    assert_eq!(status, 200, "{body}");
    // Caught up: every partition reports zero lag once the client has seen
    // the partitions' high watermarks.
    let caught_up = wait_until(30, || {
        http(&admin, "GET", "/metrics").is_some_and(|(_, body)| {
            let lags: Vec<&str> = body
                .lines()
                .filter(|l| l.starts_with("kith_consumer_lag{"))
                .collect();
            lags.len() == 3 && lags.iter().all(|l| l.ends_with(" 0"))
        })
    });
    let (_, metrics) = http(&admin, "GET", "/metrics").unwrap();
    assert!(caught_up, "lag of 3 partitions at 0:\n{metrics}");
    for name in ["kith_checkpoint_duration_seconds", "kith_profiles"] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    let marked: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("kith_checkpoint_pause_seconds_count "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(marked > 0, "periodic checkpoints were marked:\n{metrics}");

    let out = run_ok(&["savepoint", "--admin", &admin], &[]);
    let done: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let path = done["path"].as_str().unwrap().to_string();
    assert!(path.starts_with(&savepoints), "{path}");
    assert_eq!(
        done["records"].as_u64().unwrap() as usize,
        reference_records(&reference)
    );
    // SIGTERM: a clean stop.
    unsafe_sigterm(child.id());
    let status = child.wait().unwrap();
    assert!(status.success(), "SIGTERM ends the run cleanly: {status}");

    // Restore into an empty directory with twice the key groups.
    let rescaled = dir.path().join("rescaled.yaml");
    std::fs::write(
        &rescaled,
        std::fs::read_to_string(&pipeline).unwrap() + "keyGroups: 256\n",
    )
    .unwrap();
    let fresh = dir.path().join("fresh");
    let out = run_ok(
        &[
            "run",
            rescaled.to_str().unwrap(),
            "--state",
            fresh.to_str().unwrap(),
            "--restore",
            &path,
            "--exit-at-end",
        ],
        &envs,
    );
    assert_eq!(
        summary(&out)["observations"],
        0,
        "the savepoint holds every position"
    );
    assert_eq!(export(&fresh), reference);
    assert!(
        fresh.join("snapshot-1/kg-255.bin").exists(),
        "state was repartitioned"
    );

    // A restore into a directory that already holds state is refused.
    let refused = support::runner::output(
        &[
            "run",
            rescaled.to_str().unwrap(),
            "--state",
            fresh.to_str().unwrap(),
            "--restore",
            &path,
        ],
        &envs,
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already holds a state"));
}

/// Live records of an export: one per record ref.
fn reference_records(export: &[String]) -> usize {
    export
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["records"].as_array().map_or(0, |r| {
                r.iter().filter(|r| r.get("relationship").is_none()).count()
            })
        })
        .sum()
}

fn unsafe_sigterm(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn start_from_latest_skips_history_once_and_a_restart_skips_nothing_after() {
    let case = KafkaCase::new("kith-latest", 2);
    let dir = &case.dir;
    let lines = generate(300, 21);
    let (history, fresh) = lines.split_at(lines.len() / 2);
    case.produce(history);

    let pipeline = dir.path().join("pipeline.yaml");
    let text = std::fs::read_to_string(example("kafka/pipeline.yaml")).unwrap();
    std::fs::write(
        &pipeline,
        text.replace("startFrom: earliest", "startFrom: latest"),
    )
    .unwrap();
    let state = dir.path().join("state");
    let envs = case.envs("100ms");
    let args = [
        "run",
        pipeline.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
    ];
    // Starts at the end, checkpoints an empty state with its positions, stops.
    let mut first = spawn(&args, &envs, dir.path(), "first");
    std::thread::sleep(Duration::from_millis(1500));
    unsafe_sigterm(first.id());
    assert!(first.wait().unwrap().success());
    assert!(
        export(&state).is_empty(),
        "history before the start is skipped"
    );

    // Appended while no runner ran: a restart must not skip it.
    case.produce(fresh);
    let out = run_ok(&[&args[..], &["--exit-at-end"]].concat(), &envs);
    assert_eq!(
        summary(&out)["observations"].as_u64().unwrap() as usize,
        fresh.len()
    );
    assert_eq!(export(&state), case.reference(fresh, "fresh"));
}

#[test]
fn a_lone_message_on_a_quiet_topic_is_applied_at_once() {
    let case = KafkaCase::new("kith-trickle", 2);
    let admin = format!("127.0.0.1:{}", free_port());
    let state = case.dir.path().join("state");
    let args = kafka_run_args(state.to_str().unwrap(), &["--admin", &admin]);
    let envs = case.envs("10s");
    let _child = spawn(&as_strs(&args), &envs, case.dir.path(), "trickle");
    assert!(
        wait_until(60, || http(&admin, "GET", "/readyz")
            .is_some_and(|(s, _)| s == 200)),
        "never ready (see {}/trickle.err)",
        case.dir.path().display()
    );
    // One message at a time, each alone on the topic for a while: none
    // waits for a batch to fill.
    let lines: Vec<Vec<u8>> = (1..=3)
        .map(|i| {
            format!(
                r#"{{"source":"crm","id":"t-{i}","ts":"2026-01-05T10:00:00Z","kind":"person","identifiers":[{{"type":"email","value":"t{i}@example.com"}}]}}"#
            )
            .into_bytes()
        })
        .collect();
    for (i, line) in lines.iter().enumerate() {
        case.produce(std::slice::from_ref(line));
        let expected = i as u64 + 1;
        assert!(
            wait_until(10, || observations_applied(&admin) == Some(expected)),
            "message {expected} not applied while the topic is quiet: {:?}",
            observations_applied(&admin)
        );
    }
}
