//! A runner started the way the operator's Deployment starts it (its
//! namespace, pipeline and pod name in the environment), beside the real
//! kube-apiserver of tests/services standing in for a cluster: it reports
//! into its pipeline's `status.runtime` and executes the `ProfileSnapshot`s of
//! its pipeline (docs/design.md §6), leaving other pipelines' snapshots alone.

mod support;

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use support::cluster::{example, snapshot_manifest, Cluster};
use support::runner::{binary, example as pipeline_file, generate, wait_until};

#[test]
fn a_runner_in_a_cluster_reports_its_runtime_and_takes_its_snapshots() {
    let cluster = Cluster::start("agent");
    cluster.apply(&example("quickstart.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut runner = Command::new(binary())
        .args(["run", &pipeline_file("canonical/pipeline.yaml"), "--state"])
        .arg(&state)
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("KITH_NAMESPACE", &cluster.namespace)
        .env("KITH_PIPELINE", "quickstart")
        .env("KITH_POD_NAME", "quickstart-runner-0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("runner.err")).unwrap())
        .spawn()
        .unwrap();
    let mut input = runner.stdin.take().unwrap();
    let lines = generate(300, 7);
    for line in &lines {
        input.write_all(line).unwrap();
        input.write_all(b"\n").unwrap();
    }
    input.flush().unwrap();
    let log = || std::fs::read_to_string(dir.path().join("runner.err")).unwrap_or_default();

    let runtime = |cluster: &Cluster| -> Value {
        cluster.must_get("profilepipeline", "quickstart")["status"]["runtime"].clone()
    };
    assert!(
        wait_until(30, || {
            let r = runtime(&cluster);
            r["pod"] == "quickstart-runner-0"
                && r["ready"] == true
                && r["observations"].as_u64().unwrap_or(0) > 0
        }),
        "no runtime report of progress: {}\n{}",
        runtime(&cluster),
        log()
    );
    let managers = cluster.ok(&[
        "get",
        "profilepipeline",
        "quickstart",
        "-o",
        "json",
        "--show-managed-fields",
    ]);
    assert!(managers.contains("kith-runner"), "{managers}");

    cluster
        .apply(&snapshot_manifest("before-upgrade", "quickstart"))
        .unwrap();
    cluster
        .apply(&snapshot_manifest("someone-elses", "customers"))
        .unwrap();
    let status = |name: &str| cluster.must_get("profilesnapshot", name)["status"].clone();
    assert!(
        wait_until(60, || status("before-upgrade")["state"] == "Completed"),
        "snapshot not completed: {}\n{}",
        status("before-upgrade"),
        log()
    );
    let done = status("before-upgrade");
    let path = done["path"].as_str().unwrap();
    assert!(
        std::path::Path::new(path.trim_start_matches("file://"))
            .join("_metadata")
            .is_file(),
        "no savepoint at {path}"
    );
    assert!(
        done["startTime"].is_string() && done["completionTime"].is_string(),
        "{done}"
    );
    let pipeline = cluster.must_get("profilepipeline", "quickstart");
    assert_eq!(pipeline["status"]["lastSnapshot"]["name"], "before-upgrade");
    assert_eq!(pipeline["status"]["lastSnapshot"]["path"], path);
    assert!(
        status("someone-elses").is_null(),
        "another pipeline's snapshot was touched"
    );
    // Taken once, however many watch events the snapshot went through.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let savepoints = std::fs::read_dir(state.join("savepoints")).unwrap().count();
    assert_eq!(savepoints, 1, "one snapshot, one savepoint");

    drop(input);
    let out = runner.wait_with_output().unwrap();
    assert!(out.status.success(), "runner failed: {}", log());
}
