//! The runner on the test broker's SASL_SSL listener (TLS with the test CA,
//! SCRAM-SHA-512 credentials from the environment): it reads, checkpoints,
//! commits its offsets and writes dead letters over it; with a wrong
//! password it stays up, unready, says why, and never shows the password.

mod support;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::time::Duration;
use support::kafka::{create_topic, read_all, KafkaCase};
use support::runner::{example, free_port, generate, http, run_ok, spawn, summary, wait_until};
use support::services::Services;

/// The variables `examples/kafka-secure/pipeline.yaml` reads, for `case`,
/// with `password` as the SCRAM password.
fn secure_envs<'a>(
    case: &'a KafkaCase,
    services: &'a Services,
    password: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut envs: Vec<(&str, &str)> = case
        .envs("100ms")
        .into_iter()
        .filter(|(k, _)| *k != "KAFKA_BOOTSTRAP")
        .collect();
    envs.extend([
        ("KAFKA_BOOTSTRAP", services.get("KAFKA_SECURE_BOOTSTRAP")),
        ("KAFKA_USERNAME", services.get("KAFKA_SCRAM_USER")),
        ("KAFKA_PASSWORD", password),
        ("KAFKA_CA_FILE", services.get("KAFKA_CA_FILE")),
    ]);
    envs
}

/// The offsets the consumer group `group` committed for `topic`, per
/// partition (read over the plaintext listener).
fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let offsets = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    (0..partitions)
        .map(
            |p| match offsets.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => -1,
            },
        )
        .collect()
}

#[test]
fn reads_checkpoints_and_dead_letters_over_tls_with_scram_credentials() {
    let services = support::services::require(&["kafka"]);
    let case = KafkaCase::new("kith-secure", 2);
    let dead_letters = format!("{}-dlq", case.topic);
    create_topic(&case.bootstrap, &dead_letters, 1);
    let mut lines = generate(300, 5);
    let good = lines.len();
    lines.push(b"not json at all".to_vec());
    lines.push(
        br#"{"source":"crm","id":"g-1","ts":"yesterday","kind":"person","identifiers":[]}"#
            .to_vec(),
    );
    case.produce(&lines);

    let state = case.dir.path().join("state");
    let pipeline = example("kafka-secure/pipeline.yaml");
    let envs = secure_envs(&case, &services, services.get("KAFKA_SCRAM_PASSWORD"));
    let out = run_ok(
        &[
            "run",
            &pipeline,
            "--state",
            state.to_str().unwrap(),
            "--exit-at-end",
        ],
        &envs,
    );
    let summary = summary(&out);
    assert_eq!(summary["observations"].as_u64(), Some(good as u64), "{out}");
    assert_eq!(
        support::runner::export(&state),
        case.reference(&lines, "reference"),
        "the same profiles as a file run"
    );

    // The final checkpoint's positions were committed to the group, over
    // the secure listener: together they cover every message.
    let offsets = committed(&case.bootstrap, "kith-kafka-secure", &case.topic, 2);
    assert_eq!(
        offsets.iter().sum::<i64>(),
        lines.len() as i64,
        "committed offsets {offsets:?}"
    );
    assert!(
        std::fs::read_dir(case.dir.path().join("checkpoints"))
            .is_ok_and(|mut d| d.next().is_some()),
        "a checkpoint was written"
    );
    let dead = read_all(&case.bootstrap, &dead_letters);
    assert_eq!(dead.len(), 2, "both bad messages are dead letters");
    assert!(dead.iter().all(|d| d.headers.contains_key("kith-reason")));
}

#[test]
fn a_wrong_password_leaves_the_runner_up_unready_and_saying_why() {
    let services = support::services::require(&["kafka"]);
    let case = KafkaCase::new("kith-secure-refused", 1);
    let admin = format!("127.0.0.1:{}", free_port());
    let state = case.dir.path().join("state");
    let pipeline = example("kafka-secure/pipeline.yaml");
    let wrong = "wrong-password-0c3f9a";
    let envs = secure_envs(&case, &services, wrong);
    let mut child = spawn(
        &[
            "run",
            &pipeline,
            "--state",
            state.to_str().unwrap(),
            "--admin",
            &admin,
        ],
        &envs,
        case.dir.path(),
        "refused",
    );
    let mut last = None;
    let said_why = wait_until(60, || {
        last = http(&admin, "GET", "/readyz");
        last.as_ref()
            .is_some_and(|(code, body)| *code == 503 && body.contains("refused the credentials"))
    });
    let log = || std::fs::read_to_string(case.dir.path().join("refused.err")).unwrap();
    assert!(
        said_why,
        "readiness never named the credentials: {last:?}\n{}",
        log()
    );
    // It keeps retrying rather than exiting into a crash loop.
    std::thread::sleep(Duration::from_secs(3));
    assert!(child.try_wait().unwrap().is_none(), "the runner exited");
    assert_eq!(
        http(&admin, "GET", "/healthz").map(|(code, _)| code),
        Some(200),
        "alive while unready"
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(
        wait_until(30, || child.try_wait().unwrap().is_some()),
        "SIGTERM stops a runner that waits for the brokers"
    );
    let stderr = log();
    assert!(
        stderr.contains("refused the credentials"),
        "the log says why: {stderr}"
    );
    assert!(!stderr.contains(wrong), "the password is never logged");
}
