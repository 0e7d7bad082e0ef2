//! One writer per pipeline in a cluster, whatever Kubernetes does: runners
//! started the way the operator's Deployment starts them, beside the real
//! kube-apiserver of tests/services, contend for their pipeline's Lease. A
//! second runner of the same pipeline (a pod left on a partitioned node, a
//! process started by hand with the same pod name) waits, not ready, without
//! touching any state; when the holder is SIGKILLed it takes over after the
//! lease duration and continues exactly from the latest checkpoint; a holder
//! that stops cleanly releases the Lease, so the next one need not wait.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};
use support::cluster::Cluster;
use support::kafka::KafkaCase;
use support::runner::{example, export, free_port, generate, http, spawn, wait_until, Running};

const PIPELINE: &str = "lease-test";

fn start(
    case: &KafkaCase,
    cluster: &Cluster,
    name: &str,
    pod: &str,
    admin: &str,
    exit_at_end: bool,
) -> Running {
    let state = case.dir.path().join(format!("state-{name}"));
    let mut args = vec![
        "run".to_string(),
        example("kafka/pipeline.yaml"),
        "--state".to_string(),
        state.display().to_string(),
        "--admin".to_string(),
        admin.to_string(),
    ];
    if exit_at_end {
        args.push("--exit-at-end".into());
    }
    let mut envs = case.envs("300ms");
    envs.extend([
        ("KUBECONFIG", cluster.kubeconfig.as_str()),
        ("KITH_NAMESPACE", cluster.namespace.as_str()),
        ("KITH_PIPELINE", PIPELINE),
        ("KITH_POD_NAME", pod),
        ("KITH_LOG", "kith_runner=info,kith_lease=info"),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn(&args, &envs, case.dir.path(), name)
}

fn readyz(admin: &str) -> (u16, String) {
    http(admin, "GET", "/readyz").unwrap_or((0, String::new()))
}

fn holder(cluster: &Cluster) -> String {
    cluster
        .get("lease", &format!("{PIPELINE}-runner"))
        .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The newest checkpoint with its `_metadata` (committed) in the case's
/// checkpoint folder (older ones are pruned, so ids, not a count).
fn committed_checkpoints(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("checkpoints"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().join("_metadata").exists())
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_prefix("chk-"))
                        .and_then(|n| n.parse().ok())
                })
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

fn log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.err"))).unwrap_or_default()
}

#[test]
fn one_runner_of_a_pipeline_writes_and_the_next_takes_over_exactly() {
    let cluster = Cluster::start("lease");
    let case = KafkaCase::new("kith-lease", 2);
    let dir = case.dir.path();
    let lines = generate(3000, 5);
    let reference = case.reference(&lines, "all");
    let half = lines.len() / 2;
    case.produce(&lines[..half]);

    let a_admin = format!("127.0.0.1:{}", free_port());
    let mut a = start(&case, &cluster, "a", "runner-0", &a_admin, false);
    assert!(
        wait_until(60, || readyz(&a_admin).0 == 200),
        "the first runner never became ready: {:?}\n{}",
        readyz(&a_admin),
        log(dir, "a")
    );
    let a_holder = holder(&cluster);
    assert!(a_holder.starts_with("runner-0/"), "{a_holder}");

    // The same pod name, another process: a contender all the same.
    let b_admin = format!("127.0.0.1:{}", free_port());
    let mut b = start(&case, &cluster, "b", "runner-0", &b_admin, false);
    assert!(
        wait_until(30, || readyz(&b_admin)
            .1
            .contains("waiting for the pipeline's Lease")),
        "the second runner does not say it waits: {:?}\n{}",
        readyz(&b_admin),
        log(dir, "b")
    );
    let (code, why) = readyz(&b_admin);
    assert_eq!(code, 503);
    assert!(why.contains(&a_holder), "it names the holder: {why}");
    let before = committed_checkpoints(dir);
    case.produce(&lines[half..]);
    // Meanwhile the holder checkpoints and the other touches nothing.
    std::thread::sleep(Duration::from_secs(4));
    let after = committed_checkpoints(dir);
    assert!(
        after > before,
        "the holder committed no checkpoint ({before} then {after})"
    );
    assert_eq!(holder(&cluster), a_holder);
    assert!(
        !dir.join("state-b").join("MANIFEST").exists(),
        "the waiting runner restored or wrote state"
    );

    // The holder dies without a word: the other takes over once the Lease
    // has gone unrenewed for its duration, from the latest checkpoint.
    a.0.kill().unwrap();
    a.0.wait().unwrap();
    let killed = Instant::now();
    assert!(
        wait_until(60, || holder(&cluster) != a_holder
            && !holder(&cluster).is_empty()),
        "nobody took the Lease over\n{}",
        log(dir, "b")
    );
    let waited = killed.elapsed();
    assert!(
        waited >= Duration::from_secs(10),
        "taken over after {waited:?}: before the Lease could have expired"
    );
    let b_holder = holder(&cluster);
    assert!(b_holder.starts_with("runner-0/") && b_holder != a_holder);
    assert!(
        wait_until(60, || log(dir, "b")
            .contains("restored from object storage")),
        "{}",
        log(dir, "b")
    );

    // A third one waits for the second, which then stops cleanly (SIGTERM):
    // it releases the Lease, so the third starts at once, restores the
    // second's final checkpoint and reads on to the end.
    let c_admin = format!("127.0.0.1:{}", free_port());
    let mut c = start(&case, &cluster, "c", "runner-1", &c_admin, true);
    assert!(
        wait_until(30, || readyz(&c_admin)
            .1
            .contains("waiting for the pipeline's Lease")),
        "{:?}\n{}",
        readyz(&c_admin),
        log(dir, "c")
    );
    let term = std::process::Command::new("kill")
        .args(["-TERM", &b.0.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let b_status = b.0.wait().unwrap();
    let b_exited = Instant::now();
    assert!(
        b_status.success(),
        "the second runner failed\n{}",
        log(dir, "b")
    );
    assert!(
        log(dir, "b").contains("released the Lease"),
        "{}",
        log(dir, "b")
    );
    assert!(
        wait_until(30, || holder(&cluster).starts_with("runner-1/")),
        "{}",
        log(dir, "c")
    );
    let handover = b_exited.elapsed();
    assert!(
        handover < Duration::from_secs(8),
        "a released Lease was taken after {handover:?}, as if it had to expire"
    );
    let c_status = c.0.wait().unwrap();
    assert!(c_status.success(), "{}", log(dir, "c"));
    assert_eq!(
        export(&dir.join("state-c")),
        reference,
        "after a SIGKILL, a takeover and a clean handover, something was lost or doubled"
    );
}
