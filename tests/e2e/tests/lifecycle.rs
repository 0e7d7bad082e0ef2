//! The lifecycle of a pipeline with real runner processes: the operator on
//! the test API server deploys, the kubelet stand-in runs what it deploys,
//! Kafka feeds it and moto S3 keeps its state. Every scenario ends by
//! comparing the pipeline's final state, restored from its checkpoints in
//! S3, with one uninterrupted file run over the same input: nothing lost,
//! nothing applied twice.

mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::producer::Load;
use support::runner::http;
use support::stack::{workload, Stack, RELEASE};
use support::{dashboard, eventually, kafka::produce};

const START: Duration = Duration::from_secs(120);
const STABLE: Duration = Duration::from_secs(90);

/// xorshift64*: enough randomness for picking moments.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

fn readyz(admin: &str) -> (u16, String) {
    http(admin, "GET", "/readyz").unwrap_or((0, String::new()))
}

/// Who holds the Lease of pipeline `name`'s runners.
fn lease_holder(stack: &Stack, name: &str) -> String {
    holder_of(stack, &format!("{name}-runner"))
}

/// Who holds the Lease `lease`.
fn holder_of(stack: &Stack, lease: &str) -> String {
    stack
        .cluster
        .get("lease", lease)
        .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
        .unwrap_or_default()
}

#[test]
fn a_savepoint_upgrade_under_load_keeps_every_record() {
    let stack = Stack::start("upgrade", 4);
    let (lines, reference) = workload(&stack, 1500, 11);
    stack.apply(&stack.manifest("orders"));
    let first = stack.wait_running("orders", START);
    let total = lines.len();
    let load = Load::start(
        &stack.kafka.bootstrap,
        &stack.kafka.topic,
        4,
        lines,
        total / 20,
    );
    eventually(Duration::from_secs(60), "a third of the input sent", || {
        (load.sent() >= total / 3)
            .then_some(())
            .ok_or_else(|| format!("{} sent", load.sent()))
    });

    // An upgrade: a changed spec, while input keeps arriving.
    let old_hash = stack.pipeline("orders")["status"]["specHash"].clone();
    stack.merge_patch("orders", json!({"spec": {"checkpointInterval": "1500ms"}}));
    let snapshot = eventually(Duration::from_secs(60), "an upgrade savepoint", || {
        let list = stack.cluster.ok(&["get", "profilesnapshots", "-o", "json"]);
        let list: serde_json::Value = serde_json::from_str(&list).unwrap();
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| {
                s["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("orders-upgrade-"))
            })
            .cloned()
            .ok_or_else(|| "none yet".to_string())
    });
    let snapshot_name = snapshot["metadata"]["name"].as_str().unwrap().to_string();
    let second = stack.wait_pod(
        "orders",
        "the new spec running",
        Duration::from_secs(120),
        |one| {
            one.template != first.template
                && stack.pipeline("orders")["status"]["specHash"] != old_hash
        },
    );
    let completed = stack.cluster.must_get("profilesnapshot", &snapshot_name);
    assert_eq!(
        completed["status"]["state"], "Completed",
        "the upgrade went ahead without its savepoint: {completed}"
    );
    assert!(
        completed["status"]["takenBy"]
            .as_str()
            .is_some_and(|by| by.starts_with(&first.name)),
        "the savepoint was not taken by the old runner: {completed}"
    );
    let events = stack.cluster.event_reasons("orders");
    assert!(
        events.iter().any(|r| r == "SavepointRequested"),
        "{events:?}"
    );
    let log = std::fs::read_to_string(&second.log).unwrap();
    assert!(
        log.contains("restored from object storage"),
        "the new runner did not restore the old one's state:\n{log}"
    );

    let sent = load.join();
    assert_eq!(sent, total);
    assert_eq!(
        stack.suspend_and_export("orders"),
        reference,
        "the upgrade lost or doubled records"
    );
}

#[test]
fn a_runner_killed_mid_checkpoint_is_restarted_and_loses_nothing() {
    let stack = Stack::start("kill", 4);
    let (lines, reference) = workload(&stack, 1500, 12);
    stack.apply(&stack.manifest("clicks"));
    let pod = stack.wait_running("clicks", START);
    let total = lines.len();
    let load = Load::start(
        &stack.kafka.bootstrap,
        &stack.kafka.topic,
        4,
        lines,
        total / 25,
    );
    let mut random = support::runner::test_seed().max(1);
    let mut admin = pod.admin.clone().unwrap();
    for kill in 1..=3 {
        // Right after a checkpoint completes, the next starts one interval
        // later: killing at that moment plus a little lands inside it (the
        // upload to S3 takes longer than the jitter).
        let done = stack
            .metric(&admin, "kith_checkpoints_total{result=\"completed\"}")
            .unwrap_or(0.0);
        eventually(Duration::from_secs(30), "a checkpoint", || {
            match stack.metric(&admin, "kith_checkpoints_total{result=\"completed\"}") {
                Some(n) if n > done => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
        let jitter = Duration::from_millis(next(&mut random) % 300);
        std::thread::sleep(Duration::from_secs(1) + jitter);
        stack
            .kubelet
            .signal(&pod.name, libc::SIGKILL)
            .expect("the runner's pod is on the node");
        let restarted = stack.wait_pod(
            "clicks",
            "the runner restarted",
            Duration::from_secs(90),
            |one| one.name == pod.name && one.restarts >= kill,
        );
        admin = restarted.admin.clone().unwrap();
    }
    // A restarted container keeps its pod's volumes: it recovers its local
    // state, then reads on from its offsets.
    let log = std::fs::read_to_string(&pod.log).unwrap();
    assert!(
        log.matches("state restored").count() >= 4,
        "every restart recovers the state:\n{log}"
    );
    // Then the node itself is lost: a new pod with empty folders restores
    // the latest checkpoint from S3.
    stack
        .kubelet
        .lose(&pod.name)
        .expect("the pod is on the node");
    let replacement = stack.wait_pod(
        "clicks",
        "a replacement pod",
        Duration::from_secs(90),
        |one| one.name != pod.name,
    );
    let log = std::fs::read_to_string(&replacement.log).unwrap();
    assert!(log.contains("restored from object storage"), "{log}");
    load.join();
    assert_eq!(
        stack.suspend_and_export("clicks"),
        reference,
        "a SIGKILL during a checkpoint lost or doubled records"
    );
}

#[test]
fn a_second_runner_of_one_pipeline_never_writes_beside_the_first() {
    let stack = Stack::start("twin", 4);
    let (lines, reference) = workload(&stack, 1500, 13);
    stack.apply(&stack.manifest("devices"));
    let pod = stack.wait_running("devices", START);
    let total = lines.len();
    let load = Load::start(
        &stack.kafka.bootstrap,
        &stack.kafka.topic,
        4,
        lines,
        total / 30,
    );
    // The pod's twin on a node the control plane lost touch with.
    let mut twin = stack
        .kubelet
        .start_copy(&pod.name, "devices-runner-partitioned")
        .expect("a copy of the runner starts");
    let twin_admin = twin.admin.clone().unwrap();
    eventually(Duration::from_secs(60), "the twin waiting", || {
        let (code, why) = readyz(&twin_admin);
        (code == 503 && why.contains("waiting for the pipeline's Lease"))
            .then_some(())
            .ok_or(format!("{code} {why}"))
    });
    let holder = lease_holder(&stack, "devices");
    assert!(holder.starts_with(&pod.name), "{holder}");

    // Meanwhile, and after the first runner is SIGKILLed (the stand-in
    // restarts it, and either process may take the Lease once it expires),
    // never are both ready.
    let mut both_ready = Vec::new();
    let mut sample = |stack: &Stack, until: Instant| {
        while Instant::now() < until {
            let pods = stack.kubelet.pods_of("devices-runner");
            let pod_ready = pods
                .iter()
                .filter_map(|p| p.admin.clone())
                .any(|a| readyz(&a).0 == 200);
            if pod_ready && readyz(&twin_admin).0 == 200 {
                both_ready.push(lease_holder(stack, "devices"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    sample(&stack, Instant::now() + Duration::from_secs(5));
    assert!(
        !twin.root.join("fs/var/lib/kith/state/MANIFEST").exists(),
        "the waiting twin restored or wrote state"
    );
    stack
        .kubelet
        .signal(&pod.name, libc::SIGKILL)
        .expect("the runner's pod is on the node");
    sample(&stack, Instant::now() + Duration::from_secs(25));
    let new_holder = lease_holder(&stack, "devices");
    assert!(
        !new_holder.is_empty() && new_holder != holder,
        "nobody took over from the killed runner: {new_holder}\n{}",
        stack.logs("devices")
    );
    assert!(
        both_ready.is_empty(),
        "both runners were ready at once (holders then: {both_ready:?})"
    );
    load.join();
    // The twin stops cleanly (a final checkpoint if it holds the Lease),
    // then the pipeline is suspended and its last checkpoint read back.
    let term = unsafe { libc::kill(twin.child.id() as i32, libc::SIGTERM) };
    assert_eq!(term, 0);
    let status = twin.child.wait().unwrap();
    assert!(
        status.success(),
        "the twin failed: {}",
        std::fs::read_to_string(&twin.log).unwrap_or_default()
    );
    assert_eq!(
        stack.suspend_and_export("devices"),
        reference,
        "two runners of one pipeline lost or doubled records"
    );
}

#[test]
fn scaling_to_three_is_refused_and_one_runner_keeps_the_state() {
    let stack = Stack::start("scale", 2);
    let (lines, reference) = workload(&stack, 800, 14);
    stack.apply(&stack.manifest("accounts"));
    let pod = stack.wait_running("accounts", START);
    let half = lines.len() / 2;
    produce(
        &stack.kafka.bootstrap,
        &stack.kafka.topic,
        &lines[..half],
        2,
    );

    stack
        .cluster
        .ok(&["scale", "profilepipeline", "accounts", "--replicas=3"]);
    let degraded = eventually(
        Duration::from_secs(60),
        "ParallelismUnsupported",
        || match stack.cluster.condition("accounts", "Degraded") {
            Some(c) if c["reason"] == "ParallelismUnsupported" => Ok(c),
            other => Err(format!("{other:?}")),
        },
    );
    assert_eq!(degraded["status"], "True");
    assert!(
        degraded["message"].as_str().unwrap().contains('1'),
        "the message says what is supported: {degraded}"
    );
    // For a while, the node runs exactly the one runner it ran.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let pods = stack.kubelet.pods();
        let names: Vec<&str> = pods
            .iter()
            .filter(|p| p.deployment == "accounts-runner")
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(
            names,
            [pod.name.as_str()],
            "the refused scale started runners"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let p = stack.pipeline("accounts");
    assert_eq!(p["spec"]["parallelism"], 3);
    assert_eq!(
        p["status"]["replicas"], 1,
        "the scale subresource tells the truth"
    );
    let d = stack.cluster.must_get("deployment", "accounts-runner");
    assert_eq!(d["spec"]["replicas"], 1);

    produce(
        &stack.kafka.bootstrap,
        &stack.kafka.topic,
        &lines[half..],
        2,
    );
    assert_eq!(stack.suspend_and_export("accounts"), reference);
}

#[test]
fn suspend_then_resume_continues_exactly() {
    let stack = Stack::start("suspend", 2);
    let (lines, reference) = workload(&stack, 800, 15);
    stack.apply(&stack.manifest("people"));
    let first = stack.wait_running("people", START);
    let half = lines.len() / 2;
    produce(
        &stack.kafka.bootstrap,
        &stack.kafka.topic,
        &lines[..half],
        2,
    );
    let first_admin = first.admin.clone().unwrap();
    eventually(
        Duration::from_secs(60),
        "the first half applied",
        || match stack.metric(&first_admin, "kith_observations_total") {
            Some(n) if n >= half as f64 => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );

    stack.suspend("people");
    let ready = stack.cluster.condition("people", "Ready").unwrap();
    assert_eq!(ready["reason"], "Suspended", "{ready}");
    let log = std::fs::read_to_string(&first.log).unwrap();
    assert!(
        log.contains("final checkpoint") || log.contains("checkpoint"),
        "the runner stopped without a final checkpoint:\n{log}"
    );
    // Input keeps arriving while nothing runs.
    produce(
        &stack.kafka.bootstrap,
        &stack.kafka.topic,
        &lines[half..],
        2,
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(stack.kubelet.pods_of("people-runner").is_empty());

    stack.merge_patch("people", json!({"spec": {"state": "running"}}));
    let second = stack.wait_running("people", START);
    assert_ne!(second.name, first.name, "a resumed pipeline runs a new pod");
    let log = std::fs::read_to_string(&second.log).unwrap();
    assert!(log.contains("restored from object storage"), "{log}");
    assert_eq!(stack.suspend_and_export("people"), reference);
}

#[test]
fn hostile_manifests_leave_the_operator_reconciling_the_rest() {
    let stack = Stack::start("hostile", 2);
    let (lines, reference) = workload(&stack, 300, 16);
    let hostile = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut m = stack.manifest(name);
        edit(&mut m);
        m
    };
    let bad = [
        hostile("overflow", &|m| {
            m["spec"]["checkpointInterval"] = json!("99999999999999999999s")
        }),
        hostile("overflow-snapshots", &|m| {
            m["spec"]["snapshots"] =
                json!({"interval": "99999999999999999999h", "maxAge": "1e400s"})
        }),
        hostile("deep", &|m| {
            let mut deep = json!("x");
            for _ in 0..64 {
                deep = json!({"nested": deep});
            }
            m["spec"]["pipeline"]["unknownField"] = deep;
        }),
        hostile("long", &|m| {
            m["spec"]["pipeline"]["identifiers"][0]["type"] = json!("e".repeat(100_000))
        }),
        hostile("bad-template", &|m| {
            m["spec"]["pipeline"]["template"] = json!({"kinds": [{"name": 7, "when": [[[]]]}]})
        }),
    ];
    for m in &bad {
        // The API server may refuse some (its schema); the rest reach the operator.
        let _ = stack.cluster.apply(&m.to_string());
    }
    stack.apply(&stack.manifest("good"));
    produce(&stack.kafka.bootstrap, &stack.kafka.topic, &lines, 2);
    stack.wait_running("good", START);
    for m in &bad {
        let name = m["metadata"]["name"].as_str().unwrap();
        if stack.cluster.get("profilepipeline", name).is_none() {
            continue; // refused by the API server
        }
        let degraded = eventually(Duration::from_secs(30), "Degraded", || {
            match stack.cluster.condition(name, "Degraded") {
                Some(c) if c["status"] == "True" && c["reason"] == "InvalidSpec" => Ok(c),
                other => Err(format!("{name}: {other:?}")),
            }
        });
        assert!(
            degraded["message"].as_str().unwrap().contains("spec."),
            "{name}: the message names the field: {degraded}"
        );
        assert!(
            stack.kubelet.pods_of(&format!("{name}-runner")).is_empty(),
            "{name}: a runner was started for an invalid spec"
        );
    }
    assert_eq!(
        stack
            .operator
            .as_ref()
            .expect("the operator runs as a process")
            .http_get("/healthz")
            .map(|(code, _)| code)
            .ok(),
        Some(200),
        "the operator is not healthy after the hostile manifests"
    );
    assert_eq!(stack.suspend_and_export("good"), reference);
}

#[test]
fn a_savepoint_that_cannot_be_taken_blocks_the_upgrade_until_allowed() {
    let stack = Stack::start("blocked", 2);
    let (lines, reference) = workload(&stack, 600, 17);
    let mut manifest = stack.manifest("orders");
    // Savepoints go to a bucket that does not exist: every one fails.
    manifest["spec"]["stateStorage"]["savepointUrl"] =
        json!(format!("s3://{}-missing/orders/savepoints", stack.bucket));
    stack.apply(&manifest);
    let pod = stack.wait_running("orders", START);
    stack.wait_stable("orders", STABLE);
    let half = lines.len() / 2;
    produce(
        &stack.kafka.bootstrap,
        &stack.kafka.topic,
        &lines[..half],
        2,
    );

    stack.merge_patch("orders", json!({"spec": {"checkpointInterval": "2s"}}));
    let blocked = eventually(Duration::from_secs(60), "UpgradeBlocked", || {
        match stack.cluster.condition("orders", "Degraded") {
            Some(c) if c["reason"] == "UpgradeBlocked" => Ok(c),
            other => Err(format!("{other:?}")),
        }
    });
    let message = blocked["message"].as_str().unwrap();
    assert!(
        message.contains("failed") && message.contains("fallbackToCheckpoint"),
        "the message says why and what to do: {message}"
    );
    // Nothing was upgraded: the same runner process still runs.
    std::thread::sleep(Duration::from_secs(3));
    let pods = stack.kubelet.pods_of("orders-runner");
    assert_eq!(pods.len(), 1);
    assert_eq!(
        (pods[0].name.as_str(), pods[0].pid),
        (pod.name.as_str(), pod.pid)
    );

    // The owner allows the upgrade from the latest checkpoint.
    stack.merge_patch(
        "orders",
        json!({"spec": {"upgrade": {"fallbackToCheckpoint": true}}}),
    );
    let upgraded = stack.wait_pod("orders", "upgraded", Duration::from_secs(120), |one| {
        one.template != pod.template
    });
    assert!(stack
        .cluster
        .event_reasons("orders")
        .iter()
        .any(|r| r == "UpgradeFromCheckpoint"));
    let log = std::fs::read_to_string(&upgraded.log).unwrap();
    assert!(log.contains("restored from object storage"), "{log}");
    produce(
        &stack.kafka.bootstrap,
        &stack.kafka.topic,
        &lines[half..],
        2,
    );
    assert_eq!(stack.suspend_and_export("orders"), reference);
}

#[test]
fn a_spec_that_never_becomes_stable_is_rolled_back_with_the_same_data() {
    let stack = Stack::start("rollback", 2);
    let (lines, reference) = workload(&stack, 600, 18);
    let mut manifest = stack.manifest("people");
    manifest["spec"]["upgrade"] = json!({"stabilityTimeout": "20s"});
    stack.apply(&manifest);
    let first = stack.wait_running("people", START);
    stack.wait_stable("people", STABLE);
    let stable_hash = stack.pipeline("people")["status"]["specHash"].clone();
    let half = lines.len() / 2;
    produce(
        &stack.kafka.bootstrap,
        &stack.kafka.topic,
        &lines[..half],
        2,
    );

    // An image no node has: the new runner never starts.
    stack.merge_patch(
        "people",
        json!({"spec": {"image": "kith-runner:does-not-exist"}}),
    );
    let bad_hash = eventually(Duration::from_secs(60), "the bad spec deployed", || {
        let p = stack.pipeline("people");
        let hash = p["status"]["specHash"].clone();
        (hash != stable_hash && hash.is_string())
            .then_some(hash)
            .ok_or_else(|| format!("{}", p["status"]))
    });
    let rolled = eventually(Duration::from_secs(90), "RolledBack", || {
        match stack.cluster.condition("people", "Degraded") {
            Some(c) if c["reason"] == "RolledBack" => Ok(c),
            other => Err(format!("{other:?} {:?}", stack.kubelet.pods())),
        }
    });
    assert!(
        rolled["message"]
            .as_str()
            .unwrap()
            .contains(bad_hash.as_str().unwrap()),
        "{rolled}"
    );
    let p = eventually(
        Duration::from_secs(30),
        "the stable spec applied again",
        || {
            let p = stack.pipeline("people");
            (p["status"]["specHash"] == stable_hash && p["status"]["phase"] == "RolledBack")
                .then(|| p.clone())
                .ok_or_else(|| format!("{}", p["status"]))
        },
    );
    assert_eq!(p["status"]["rolledBackFrom"], bad_hash);
    assert!(stack
        .cluster
        .event_reasons("people")
        .iter()
        .any(|r| r == "RolledBack"));
    let back = stack.wait_pod(
        "people",
        "the stable spec running again",
        Duration::from_secs(90),
        |one| one.waiting.is_none() && one.name != first.name,
    );
    let log = std::fs::read_to_string(&back.log).unwrap();
    assert!(
        log.contains("starting from the initial savepoint"),
        "the rollback starts from the upgrade's savepoint:\n{log}"
    );
    // The bad spec is not tried again while it is the spec.
    std::thread::sleep(Duration::from_secs(5));
    let d = stack.cluster.must_get("deployment", "people-runner");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        super_image()
    );
    produce(
        &stack.kafka.bootstrap,
        &stack.kafka.topic,
        &lines[half..],
        2,
    );
    assert_eq!(stack.suspend_and_export("people"), reference);
}

fn super_image() -> &'static str {
    support::stack::IMAGE
}

#[test]
fn deleting_with_a_final_savepoint_leaves_a_restorable_savepoint() {
    let stack = Stack::start("delete", 2);
    let (lines, reference) = workload(&stack, 500, 19);
    let mut manifest = stack.manifest("leads");
    manifest["spec"]["deletion"] = json!({"savepoint": true});
    stack.apply(&manifest);
    stack.wait_running("leads", START);
    produce(&stack.kafka.bootstrap, &stack.kafka.topic, &lines, 2);
    let file = stack.pipeline_file("leads");
    stack
        .cluster
        .ok(&["delete", "profilepipeline", "leads", "--wait=false"]);
    eventually(
        Duration::from_secs(120),
        "the pipeline gone",
        || match stack.cluster.get("profilepipeline", "leads") {
            None => Ok(()),
            Some(p) => Err(format!("{}", p["metadata"]["finalizers"])),
        },
    );
    let list: serde_json::Value =
        serde_json::from_str(&stack.cluster.ok(&["get", "profilesnapshots", "-o", "json"]))
            .unwrap();
    let last = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("leads-final-"))
        })
        .cloned()
        .unwrap_or_else(|| panic!("no final snapshot: {list}"));
    assert_eq!(last["status"]["state"], "Completed", "{last}");
    assert!(
        last["metadata"]["ownerReferences"].is_null(),
        "the final snapshot must outlive its pipeline: {last}"
    );
    assert!(stack.kubelet.pods_of("leads-runner").is_empty());
    let path = last["status"]["path"].as_str().unwrap();
    assert_eq!(stack.export_with(file, path), reference);
}

/// The operator's snapshots of `name` as the API server has them and the
/// savepoint folders in S3: (snapshots ever seen, completed ones kept, folders
/// stored, whether one is still pending or being deleted).
fn snapshots_and_folders(
    stack: &Stack,
    name: &str,
    seen: &mut std::collections::BTreeSet<String>,
) -> (
    usize,
    std::collections::BTreeSet<String>,
    std::collections::BTreeSet<String>,
    bool,
) {
    let savepoints = format!("s3://{}/{name}/checkpoints/savepoints", stack.bucket);
    let list: serde_json::Value =
        serde_json::from_str(&stack.cluster.ok(&["get", "profilesnapshots", "-o", "json"]))
            .unwrap();
    let kept: Vec<&serde_json::Value> = list["items"].as_array().unwrap().iter().collect();
    seen.extend(
        kept.iter()
            .filter_map(|s| s["metadata"]["name"].as_str().map(str::to_string)),
    );
    let completed = kept
        .iter()
        .filter(|s| {
            s["status"]["state"] == "Completed" && s["metadata"]["deletionTimestamp"].is_null()
        })
        .filter_map(|s| s["status"]["path"].as_str())
        .filter_map(|p| p.rsplit('/').next())
        .map(str::to_string)
        .collect();
    let stored = stack
        .keys(&savepoints)
        .iter()
        .filter_map(|k| k.rsplit_once("/savepoints/").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split('/').next())
        .map(str::to_string)
        .collect();
    let in_flight = kept.iter().any(|s| {
        s["status"]["state"] != "Completed" || !s["metadata"]["deletionTimestamp"].is_null()
    });
    (seen.len(), completed, stored, in_flight)
}

#[test]
fn periodic_savepoints_are_pruned_by_count_with_their_files() {
    let stack = Stack::start("prune", 2);
    let (lines, _) = workload(&stack, 200, 20);
    let mut manifest = stack.manifest("events");
    manifest["spec"]["snapshots"] = json!({"interval": "3s", "retain": 2});
    stack.apply(&manifest);
    stack.wait_running("events", START);
    produce(&stack.kafka.bootstrap, &stack.kafka.topic, &lines, 2);
    let mut seen = std::collections::BTreeSet::new();
    eventually(
        Duration::from_secs(120),
        "pruned snapshots and files",
        || {
            let (scheduled, completed, stored, in_flight) =
                snapshots_and_folders(&stack, "events", &mut seen);
            if scheduled >= 5 && completed.len() == 2 && !in_flight && stored == completed {
                Ok(())
            } else {
                Err(format!(
                    "{scheduled} scheduled; kept {completed:?}; stored {stored:?}; in flight {in_flight}"
                ))
            }
        },
    );

    // Suspended, there is no runner to delete files: a prune now is done by
    // a release Job of the runner's image, with the runners' credentials.
    stack.suspend("events");
    stack.merge_patch("events", json!({"spec": {"snapshots": {"retain": 1}}}));
    let job = eventually(Duration::from_secs(90), "the release Job completes", || {
        let jobs: serde_json::Value =
            serde_json::from_str(&stack.cluster.ok(&["get", "jobs", "-o", "json"])).unwrap();
        let found = jobs["items"].as_array().unwrap().iter().find(|j| {
            j["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("events-release-"))
        });
        match found {
            Some(j) if j["status"]["succeeded"] == 1 => Ok(j.clone()),
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(
        job["spec"]["template"]["spec"]["serviceAccountName"], "events-runner",
        "{job}"
    );
    let (_, completed, stored, in_flight) = eventually(
        Duration::from_secs(30),
        "one snapshot and its files left",
        || {
            let state = snapshots_and_folders(&stack, "events", &mut seen);
            if state.1.len() == 1 && !state.3 && state.2 == state.1 {
                Ok(state)
            } else {
                Err(format!("{state:?}"))
            }
        },
    );
    assert!(
        stack.kubelet.pods_of("events-runner").is_empty(),
        "no runner ran for the release"
    );
    assert_eq!(stored, completed, "in flight {in_flight}");
    assert_eq!(stack.pipeline("events")["status"]["phase"], "Suspended");
}

#[test]
fn a_model_in_a_configmap_is_checked_then_mounted_for_the_runner() {
    let stack = Stack::start("model", 2);
    let lines = support::runner::generate(400, 22);
    let mut manifest = stack.manifest("scored");
    manifest["spec"]["pipeline"]["resolution"] = json!({
        "kind": "person",
        "keys": [{"name": "surname", "attribute": "surname"}],
        "blocking": {"rules": [["surname"]], "maxBlockSize": 200},
        "comparisons": [
            {"attribute": "given_name", "method": {"jaroWinkler": {"thresholds": [0.92, 0.8]}}},
            {"attribute": "surname", "method": {"jaroWinkler": {"thresholds": [0.92]}}},
            {"attribute": "city", "method": "exact"}
        ]
    });
    manifest["spec"]["resolutionModel"] =
        json!({"configMapKeyRef": {"name": "scored-model", "key": "model.json"}});
    stack.apply(&manifest);
    // The model's ConfigMap does not exist yet: refused, and no runner.
    let degraded = eventually(Duration::from_secs(60), "Degraded", || {
        match stack.cluster.condition("scored", "Degraded") {
            Some(c) if c["status"] == "True" && c["reason"] == "InvalidSpec" => Ok(c),
            other => Err(format!("{other:?}")),
        }
    });
    assert!(
        degraded["message"]
            .as_str()
            .unwrap()
            .contains("ConfigMap scored-model"),
        "{degraded}"
    );
    assert!(stack.kubelet.pods_of("scored-runner").is_empty());

    // A product team trains the model from the pipeline as a file, and
    // publishes it as the ConfigMap.
    let dir = stack.kafka.dir.path().join("train");
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("input.jsonl");
    support::runner::write_lines(&input, &lines);
    let mut file = manifest["spec"]["pipeline"].clone();
    file["resolution"]["model"] = json!("model.json");
    let pipeline = dir.join("pipeline.yaml");
    std::fs::write(&pipeline, serde_yaml::to_string(&file).unwrap()).unwrap();
    let envs = [
        ("KAFKA_BOOTSTRAP", stack.kafka.bootstrap.as_str()),
        ("KITH_INPUT_TOPIC", stack.kafka.topic.as_str()),
    ];
    let pipeline_arg = pipeline.to_str().unwrap();
    support::runner::run_ok(
        &["train", pipeline_arg, "--input", input.to_str().unwrap()],
        &envs,
    );
    let model = dir.join("model.json");
    stack.cluster.ok(&[
        "create",
        "configmap",
        "scored-model",
        &format!("--from-file=model.json={}", model.display()),
    ]);
    produce(&stack.kafka.bootstrap, &stack.kafka.topic, &lines, 2);
    stack.wait_running("scored", START);

    // The runner scored with the mounted model: its state equals a file run
    // of the same pipeline and model.
    let reference_state = dir.join("reference-state");
    support::runner::run_file(pipeline_arg, &input, &reference_state, &envs);
    let reference = support::runner::export(&reference_state);
    stack.suspend("scored");
    let mut restored = stack.pipeline_file("scored");
    assert_eq!(restored["resolution"]["model"], "../kith-model/model.json");
    restored["resolution"]["model"] = json!(model.display().to_string());
    assert_eq!(
        stack.export_with(restored, &stack.latest_checkpoint("scored")),
        reference,
        "the runner did not score with the model it was given"
    );
}

#[test]
fn the_chart_installs_an_operator_that_brings_a_pipeline_to_ready() {
    // The operator is what `helm install` of charts/kith deploys: the
    // stand-in runs the chart's Deployment (its arguments, environment and
    // probes) with the token of the chart's ServiceAccount, so the Roles the
    // chart grants are all the operator has.
    let stack = Stack::start_from_chart("chart", 1);
    let (lines, reference) = workload(&stack, 300, 23);
    eventually(START, "the chart's two operator pods ready", || {
        let pods = stack.kubelet.pods_of(RELEASE);
        match pods.iter().filter(|p| p.ready).count() {
            2 => Ok(()),
            n => Err(format!("{n} ready of {pods:?}")),
        }
    });
    let operators: Vec<String> = stack
        .kubelet
        .pods_of(RELEASE)
        .into_iter()
        .map(|p| p.name)
        .collect();
    eventually(START, "one of them holds the chart's leader Lease", || {
        let holder = holder_of(&stack, RELEASE);
        if operators.contains(&holder) {
            Ok(())
        } else {
            Err(format!("holder {holder:?}, pods {operators:?}"))
        }
    });

    // With a change feed, so that the sink series the dashboard reads exist.
    let mut manifest = stack.manifest("people");
    manifest["spec"]["pipeline"]["sinks"] = json!([{
        "type": "kafka",
        "bootstrapServers": "${KAFKA_BOOTSTRAP}",
        "topic": format!("{}-changes", stack.kafka.topic),
    }]);
    stack.apply(&manifest);
    let runner = stack.wait_running("people", START);
    produce(&stack.kafka.bootstrap, &stack.kafka.topic, &lines, 1);
    let admin = runner.admin.clone().unwrap();
    eventually(
        Duration::from_secs(60),
        "every line applied",
        || match stack.metric(&admin, "kith_observations_total") {
            Some(n) if n >= lines.len() as f64 => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );

    // A pipeline the operator refuses, so that the Degraded series exist
    // (none does while every pipeline is healthy).
    let mut broken = stack.manifest("broken");
    broken["spec"]["pipeline"]["identifiers"] = json!([{"type": "email", "normalize": "nonsense"}]);
    stack.apply(&broken);
    eventually(START, "the broken pipeline Degraded", || {
        match stack.cluster.condition("broken", "Degraded") {
            Some(c) if c["status"] == "True" && c["reason"] == "InvalidSpec" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let leader = holder_of(&stack, RELEASE);
    let leader_http = stack
        .kubelet
        .pods_of(RELEASE)
        .into_iter()
        .find(|p| p.name == leader)
        .and_then(|p| p.ports.get("http").cloned())
        .expect("the leader's metrics port");
    eventually(
        Duration::from_secs(30),
        "the leader counts it",
        || match stack.metric(
            &leader_http,
            "kith_operator_pipelines_degraded{reason=\"InvalidSpec\"}",
        ) {
            Some(1.0) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );

    // Every metric the chart's dashboard and alerts read is one the
    // runner or the operator serves.
    let mut served = dashboard::exported(&scrape(&admin));
    for pod in stack.kubelet.pods_of(RELEASE) {
        let http = pod
            .ports
            .get("http")
            .expect("the chart names its metrics port http");
        served.extend(dashboard::exported(&scrape(http)));
    }
    // Counted by reason, so no series exists until the first failed
    // reconcile; the chart tests check it is registered.
    let only_after_an_error = ["kith_operator_reconcile_errors_total"];
    let unserved: Vec<String> = dashboard::referenced()
        .into_iter()
        .filter(|m| !served.contains(m) && !only_after_an_error.contains(&m.as_str()))
        .collect();
    assert!(
        unserved.is_empty(),
        "the dashboard or alerts read metrics no binary serves: {unserved:?}"
    );
    // Suspending takes a final savepoint: the chart's RBAC lets the
    // operator request it and stop the runner.
    assert_eq!(stack.suspend_and_export("people"), reference);

    // Uninstalling removes the operator and keeps the pipeline.
    stack.helm(&["uninstall", RELEASE, "--wait"]);
    eventually(START, "the operator pods gone", || {
        match stack.kubelet.pods_of(RELEASE).len() {
            0 => Ok(()),
            n => Err(format!("{n} left")),
        }
    });
    assert!(stack.cluster.get("profilepipeline", "people").is_some());
    assert!(stack.cluster.get("role", RELEASE).is_none());
}

/// The body of `GET /metrics` at `address`.
fn scrape(address: &str) -> String {
    match http(address, "GET", "/metrics") {
        Some((200, body)) => body,
        other => panic!("GET http://{address}/metrics: {other:?}"),
    }
}

#[test]
fn metric_names_are_found_in_promql_and_histograms_count_their_series() {
    assert_eq!(
        dashboard::names_in(
            "sum(rate(kith_a_total[5m])) / max(kith_b{x=\"kith_not\"}) > my_kith_c"
        ),
        ["kith_a_total", "kith_b"]
    );
    let body =
        "# TYPE kith_h histogram\nkith_h_bucket{le=\"1\"} 0\n# TYPE kith_g gauge\nkith_g 1\n";
    let names = dashboard::exported(body);
    assert!(names.contains("kith_h_bucket") && names.contains("kith_h_count"));
    assert!(names.contains("kith_g"));
}

/// Values that must never leave the places they belong in (the Secret, the
/// caller's request, the state), each distinctive enough that a match is a
/// leak and not a coincidence.
const CREDENTIAL: &str = "sentinel-credential-5b1f93";
const BEARER: &str = "sentinel-token-c0ffee42";
const PERSONAL: [&str; 4] = [
    "sentinel.pii.a41c@example.com",
    "+14155550177",
    "Zyxwsentinel",
    "acct-sentinel-9d2e",
];

/// Which of the sentinels `text` holds.
fn sentinels_in(text: &str) -> Vec<&'static str> {
    [CREDENTIAL, BEARER]
        .into_iter()
        .chain(PERSONAL)
        .filter(|s| text.contains(s))
        .collect()
}

#[test]
fn no_credential_or_personal_value_reaches_logs_metrics_events_status_or_checkpoint_metadata() {
    let stack = Stack::start("sentinel", 2);
    stack.cluster.ok(&[
        "create",
        "secret",
        "generic",
        "kith-sentinel",
        &format!("--from-literal=password={CREDENTIAL}"),
    ]);
    let mut manifest = stack.manifest("people");
    // The credential is both used (moto takes any secret key, so every S3
    // request is signed with it) and handed to the Kafka client.
    let env = manifest["spec"]["env"].as_array_mut().unwrap();
    env.retain(|e| e["name"] != "AWS_SECRET_ACCESS_KEY");
    for name in ["AWS_SECRET_ACCESS_KEY", "KAFKA_PASSWORD"] {
        env.push(json!({"name": name, "valueFrom": {"secretKeyRef": {"name": "kith-sentinel", "key": "password"}}}));
    }
    manifest["spec"]["pipeline"]["sources"][0]["properties"] =
        json!({"sasl.username": "kith", "sasl.password": "${KAFKA_PASSWORD}"});

    let (mut lines, _) = workload(&stack, 200, 31);
    let [email, phone, name, account] = PERSONAL;
    let person = |id: &str, ts: &str| {
        json!({"source": "crm", "id": id, "ts": ts, "kind": "person",
            "identifiers": [{"type": "email", "value": email}, {"type": "phone", "value": phone},
                            {"type": "account_id", "value": account}],
            "attributes": {"given_name": name}})
        .to_string()
        .into_bytes()
    };
    lines.push(person("s-1", "2026-02-01T10:00:00Z"));
    lines.push(person("s-2", "2026-02-02T10:00:00Z"));
    // Dead-lettered: the reason names the problem, never the value.
    lines.push(
        json!({"source": "crm", "id": "s-3", "ts": "2026-02-03T10:00:00Z", "kind": "person",
            "identifiers": [{"type": "shoe_size", "value": email}]})
        .to_string()
        .into_bytes(),
    );
    let applied = (lines.len() - 1) as f64;
    produce(&stack.kafka.bootstrap, &stack.kafka.topic, &lines, 2);
    stack.apply(&manifest);
    let pod = stack.wait_running("people", START);
    let admin = pod.admin.clone().unwrap();
    eventually(
        Duration::from_secs(60),
        "every observation applied",
        || match stack.metric(&admin, "kith_observations_total") {
            Some(n) if n >= applied => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );

    // A lookup of a sentinel identifier with a token the API server does
    // not know: refused, and neither the token nor the identifier is logged.
    let request = format!(
        "GET /v1/profiles?identifier=email:{email} HTTP/1.1\r\nHost: {admin}\r\nAuthorization: Bearer {BEARER}\r\nConnection: close\r\n\r\n"
    );
    let mut stream = std::net::TcpStream::connect(&admin).unwrap();
    std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    let mut places: Vec<(String, String)> = vec![
        (
            "runner /metrics".into(),
            support::runner::http(&admin, "GET", "/metrics").unwrap().1,
        ),
        (
            "operator /metrics".into(),
            stack
                .operator
                .as_ref()
                .unwrap()
                .http_get("/metrics")
                .unwrap()
                .1,
        ),
        ("the 401 answer".into(), answer),
    ];
    stack.suspend("people");

    // Logs at the default level: the runners' (info) in full, the
    // operator's without the debug lines these tests turn on.
    let pods = stack.kafka.dir.path().join("node").join("pods");
    for entry in std::fs::read_dir(&pods).unwrap().filter_map(Result::ok) {
        let log = std::fs::read_to_string(entry.path().join("container.log")).unwrap_or_default();
        places.push((
            format!("log of {}", entry.file_name().to_string_lossy()),
            log,
        ));
    }
    let operator_log = std::env::temp_dir().join(format!("{}-e2e.log", stack.cluster.namespace));
    let operator_log = std::fs::read_to_string(&operator_log).unwrap();
    let above_debug: Vec<&str> = operator_log
        .lines()
        .filter(|l| !l.contains(" DEBUG ") && !l.contains(" TRACE "))
        .collect();
    places.push(("operator log".into(), above_debug.join("\n")));
    for kind in [
        "events",
        "profilepipelines",
        "profilesnapshots",
        "configmaps",
    ] {
        places.push((kind.into(), stack.cluster.ok(&["get", kind, "-o", "json"])));
    }
    // Checkpoint and savepoint metadata: every `_metadata` and MANIFEST.
    let endpoint = stack.services.get("S3_ENDPOINT");
    let keys = support::moto::list_keys(endpoint, &stack.bucket, "");
    let metadata: Vec<&String> = keys
        .iter()
        .filter(|k| k.ends_with("/_metadata") || k.ends_with("MANIFEST"))
        .collect();
    assert!(!metadata.is_empty(), "no checkpoint metadata in {keys:?}");
    for key in metadata {
        let (_, _, body) =
            support::moto::http(endpoint, "GET", &format!("/{}/{key}", stack.bucket));
        places.push((key.clone(), body));
    }

    let leaks: Vec<(String, Vec<&str>)> = places
        .iter()
        .map(|(place, text)| (place.clone(), sentinels_in(text)))
        .filter(|(_, found)| !found.is_empty())
        .collect();
    assert!(leaks.is_empty(), "sentinels found: {leaks:?}");

    // The sentinels did go through: the profiles hold them. (Restored
    // without the client properties, whose variable this process lacks.)
    let mut file = stack.pipeline_file("people");
    file["sources"][0]
        .as_object_mut()
        .unwrap()
        .remove("properties");
    let export = stack
        .export_with(file, &stack.latest_checkpoint("people"))
        .join("\n");
    assert!(
        export.contains(email) && export.contains(name),
        "the sentinel person is not in the export"
    );
}
