//! Upgrades with real runner processes (run by `tests/e2e/bench.sh`, part of
//! `make bench`): the operator and release runners under the kubelet
//! stand-in, on the test API server, Kafka and moto S3, as `make e2e` runs
//! them.
//!
//!   large     a pipeline holding about a million live records
//!             (`generate --people 301000`, `KITH_BENCH_PEOPLE`): the time
//!             from the spec change to Ready on the new spec, which is the
//!             savepoint of the running runner, its stop with a final
//!             checkpoint, and the new runner's restore from S3 (target: 30 s
//!             or less), with each part;
//!   repeated  20 consecutive savepoint upgrades (`KITH_BENCH_UPGRADES`)
//!             while observations keep arriving at a steady rate
//!             (`KITH_BENCH_RATE`, default 1,000/s): each upgrade's time to
//!             Ready and to stable, then the final state against one
//!             uninterrupted file run over the same input (nothing lost,
//!             nothing applied twice).

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::kafka::produce;
use support::producer::Load;
use support::runner::generate;
use support::stack::Stack;
use support::{eventually, kafka::KafkaCase};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let steps = std::env::var("KITH_BENCH_STEPS").unwrap_or_else(|_| "large repeated".into());
    for step in steps.split_whitespace() {
        match step {
            "large" => large(),
            "repeated" => repeated(),
            other => panic!("unknown step {other}: large or repeated"),
        }
    }
}

/// Applied plus dead-lettered observations of the runner at `admin`.
fn consumed(stack: &Stack, admin: &str) -> f64 {
    stack
        .metric(admin, "kith_observations_total")
        .unwrap_or(0.0)
        + stack
            .metric(admin, "kith_dead_letters_total")
            .unwrap_or(0.0)
}

fn status(stack: &Stack, name: &str) -> Value {
    stack.pipeline(name)["status"].clone()
}

/// Waits for Ready on a spec other than `old_hash` with its one runner
/// ready; returns the new hash.
fn wait_upgraded(stack: &Stack, name: &str, old_hash: &Value, limit: Duration) -> Value {
    // The hash the last (successful) check saw, not a later read.
    let seen = std::cell::RefCell::new(Value::Null);
    stack.wait_pod(name, "Ready on the new spec", limit, |_| {
        let hash = status(stack, name)["specHash"].clone();
        let upgraded = stack.is_running(name) && hash.is_string() && hash != *old_hash;
        *seen.borrow_mut() = hash;
        upgraded
    });
    seen.into_inner()
}

/// Whether the pipeline's upgrade savepoint has completed.
fn upgrade_snapshot_done(stack: &Stack, name: &str) -> bool {
    let list = stack.cluster.ok(&["get", "profilesnapshots", "-o", "json"]);
    let list: Value = serde_json::from_str(&list).unwrap_or_default();
    list["items"].as_array().into_iter().flatten().any(|s| {
        s["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with(&format!("{name}-upgrade-")))
            && s["status"]["state"] == "Completed"
    })
}

fn large() {
    let people = env("KITH_BENCH_PEOPLE", 301_000);
    let stack = Stack::start("bench-large", 4);
    let lines = generate(people, 42);
    let started = Instant::now();
    produce(&stack.kafka.bootstrap, &stack.kafka.topic, &lines, 4);
    println!(
        "large: produced {} observations (generate --people {people} --seed 42) in {:.1} s",
        lines.len(),
        started.elapsed().as_secs_f64()
    );
    let mut manifest = stack.manifest("large");
    manifest["spec"]["checkpointInterval"] = json!("10s");
    stack.apply(&manifest);
    let pod = stack.wait_running("large", Duration::from_secs(300));
    let admin = pod.admin.clone().unwrap();
    let total = lines.len() as f64;
    drop(lines);
    eventually(
        Duration::from_secs(600),
        "every observation applied",
        || {
            let n = consumed(&stack, &admin);
            (n >= total).then_some(()).ok_or(format!("{n} of {total}"))
        },
    );
    stack.wait_stable("large", Duration::from_secs(120));
    let records = stack.metric(&admin, "kith_records").unwrap_or(0.0);
    let old_hash = status(&stack, "large")["specHash"].clone();

    let t0 = Instant::now();
    stack.merge_patch("large", json!({"spec": {"checkpointInterval": "11s"}}));
    // The parts of the upgrade, as this clock sees them (polled every 100 ms).
    let (mut savepoint, mut stopped) = (None, None);
    let new_hash = loop {
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "no upgrade in 10 minutes"
        );
        let s = status(&stack, "large");
        let pods = stack.kubelet.pods();
        let mine: Vec<_> = pods
            .iter()
            .filter(|p| p.deployment == "large-runner")
            .collect();
        if savepoint.is_none() && upgrade_snapshot_done(&stack, "large") {
            savepoint = Some(t0.elapsed());
        }
        if stopped.is_none()
            && savepoint.is_some()
            && mine.iter().all(|p| p.template != pod.template)
        {
            stopped = Some(t0.elapsed());
        }
        let running = stack
            .cluster
            .condition("large", "Ready")
            .is_some_and(|c| c["status"] == "True" && c["reason"] == "Running");
        if running
            && s["specHash"] != old_hash
            && matches!(mine.as_slice(), [p] if p.ready && p.template != pod.template)
        {
            break s["specHash"].clone();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let to_ready = t0.elapsed().as_secs_f64();
    assert_ne!(new_hash, old_hash);
    let new_pod = stack.kubelet.pods_of("large-runner").remove(0);
    let new_records = stack
        .metric(new_pod.admin.as_deref().unwrap(), "kith_records")
        .unwrap_or(0.0);
    let log = std::fs::read_to_string(&new_pod.log).unwrap_or_default();
    let restore = log
        .lines()
        .find(|l| l.contains("state restored"))
        .and_then(|l| l.split("seconds=").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse::<f64>().ok());
    let secs = |d: Option<Duration>| d.map_or("?".into(), |d| format!("{:.1}", d.as_secs_f64()));
    println!(
        "large: {records:.0} live records; savepoint upgrade, spec change to Ready on the new spec: {to_ready:.1} s (target 30 s): savepoint completed at {} s, old runner gone at {} s (final checkpoint), new runner ready at {to_ready:.1} s (its restore from S3 {} s); records after: {new_records:.0}",
        secs(savepoint),
        secs(stopped),
        restore.map_or("?".into(), |s| format!("{s:.1}")),
    );
    assert_eq!(
        records, new_records,
        "the upgraded runner does not hold the same records"
    );
}

fn repeated() {
    let upgrades = env("KITH_BENCH_UPGRADES", 20);
    let rate = env("KITH_BENCH_RATE", 1_000) as usize;
    let people = env("KITH_BENCH_REPEATED_PEOPLE", 40_000);
    let stack = Stack::start("bench-repeated", 4);
    let lines = generate(people, 7);
    let reference = reference(&stack.kafka, &lines);
    let total = lines.len();
    stack.apply(&stack.manifest("steady"));
    stack.wait_running("steady", Duration::from_secs(120));
    stack.wait_stable("steady", Duration::from_secs(120));
    let load = Load::start(&stack.kafka.bootstrap, &stack.kafka.topic, 4, lines, rate);
    let mut to_ready = Vec::new();
    let mut to_stable = Vec::new();
    for i in 1..=upgrades {
        let old_hash = status(&stack, "steady")["specHash"].clone();
        let t0 = Instant::now();
        stack.merge_patch("steady", json!({"spec": {"env": env_with(&stack, i)}}));
        wait_upgraded(&stack, "steady", &old_hash, Duration::from_secs(300));
        to_ready.push(t0.elapsed().as_secs_f64());
        stack.wait_stable("steady", Duration::from_secs(300));
        to_stable.push(t0.elapsed().as_secs_f64());
        println!(
            "repeated: upgrade {i}: Ready after {:.1} s, stable after {:.1} s, {} of {total} observations sent",
            to_ready[to_ready.len() - 1],
            to_stable[to_stable.len() - 1],
            load.sent()
        );
    }
    let under_load = load.sent() < total;
    load.join();
    let exported = stack.suspend_and_export("steady");
    let exact = exported == reference;
    println!(
        "repeated: {upgrades} savepoint upgrades at {rate} observations/s ({}): to Ready p50 {:.1} s, max {:.1} s; to stable p50 {:.1} s, max {:.1} s; final state equals one uninterrupted run: {} ({} profiles)",
        if under_load { "all under load" } else { "the load ended before the last upgrade" },
        percentile(&to_ready, 0.5),
        percentile(&to_ready, 1.0),
        percentile(&to_stable, 0.5),
        percentile(&to_stable, 1.0),
        if exact { "yes" } else { "NO" },
        reference.len()
    );
    assert!(exact, "observations were lost or applied twice");
}

/// The pipeline's env with `KITH_BENCH_UPGRADE=i` (a change of the runners'
/// environment is an upgrade).
fn env_with(stack: &Stack, i: u64) -> Value {
    let mut env = stack.pipeline("steady")["spec"]["env"].clone();
    if let Some(vars) = env.as_array_mut() {
        vars.retain(|v| v["name"] != "KITH_BENCH_UPGRADE");
        vars.push(json!({"name": "KITH_BENCH_UPGRADE", "value": i.to_string()}));
    }
    env
}

fn reference(kafka: &KafkaCase, lines: &[Vec<u8>]) -> Vec<String> {
    kafka.reference(lines, "reference")
}

fn percentile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}
