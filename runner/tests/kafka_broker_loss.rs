//! The broker goes away, before the runner starts and while it runs: the
//! runner keeps retrying, reports not-ready, never crashes, and loses
//! nothing. A test binary of its own, because it kills the shared test
//! broker (`kill -9`) and starts it again on the same data.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::kafka::KafkaCase;
use support::runner::{
    example, export, free_port, generate, http, observations_applied, spawn, wait_until,
};
use support::services::workspace_root;

fn kill_broker() {
    let pidfile = workspace_root().join("target/services/kafka.pid");
    let pid = std::fs::read_to_string(&pidfile).expect("the broker's pid file");
    let status = Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        wait_until(30, || !Path::new(&format!("/proc/{}", pid.trim())).exists()),
        "the broker did not die"
    );
}

fn start_broker() {
    let out = Command::new("bash")
        .args(["tests/services/up.sh", "kafka"])
        .current_dir(workspace_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "restarting the broker failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ready(admin: &str) -> Option<bool> {
    http(admin, "GET", "/readyz").map(|(status, _)| status == 200)
}

#[test]
fn losing_the_broker_before_and_during_a_run_loses_nothing() {
    let case = KafkaCase::new("kith-broker-loss", 2);
    let lines = generate(1000, 3);
    let reference = case.reference(&lines, "all");
    let half = lines.len() / 2;
    case.produce(&lines[..half]);

    // Broker down at start.
    kill_broker();
    let admin = format!("127.0.0.1:{}", free_port());
    let dir = &case.dir;
    let state = dir.path().join("state");
    let envs = case.envs("200ms");
    let pipeline = example("kafka/pipeline.yaml");
    let args = [
        "run",
        pipeline.as_str(),
        "--state",
        state.to_str().unwrap(),
        "--admin",
        admin.as_str(),
    ];
    let mut runner = spawn(&args, &envs, dir.path(), "runner");
    assert!(wait_until(30, || http(&admin, "GET", "/healthz").is_some()));
    std::thread::sleep(Duration::from_secs(2));
    assert!(runner.try_wait().unwrap().is_none(), "the runner gave up");
    assert_eq!(ready(&admin), Some(false), "not ready without a broker");
    assert_eq!(http(&admin, "GET", "/healthz").unwrap().0, 200, "but alive");

    start_broker();
    assert!(
        wait_until(60, || observations_applied(&admin) == Some(half as u64)),
        "the first half was not applied after the broker came back (applied {:?}; see {}/runner.err)",
        observations_applied(&admin),
        dir.path().display()
    );
    assert!(wait_until(30, || ready(&admin) == Some(true)));

    // Broker lost during the run.
    kill_broker();
    assert!(
        wait_until(30, || ready(&admin) == Some(false)),
        "readiness did not drop when the broker went away"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(runner.try_wait().unwrap().is_none(), "the runner crashed");

    start_broker();
    case.produce(&lines[half..]);
    assert!(
        wait_until(60, || observations_applied(&admin)
            == Some(lines.len() as u64)),
        "not every observation was applied (applied {:?})",
        observations_applied(&admin)
    );
    assert!(wait_until(30, || ready(&admin) == Some(true)));
    let status = Command::new("kill")
        .args(["-TERM", &runner.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(runner.wait().unwrap().success());
    assert_eq!(export(&state), reference);
}
