//! Apply-to-Deployment latency and operator memory with many pipelines
//! (run by `operator/benches/reconcile.sh`, which starts the API server).
//!
//! Starts the release operator watching a fresh namespace, then:
//!   burst   creates `KITH_BENCH_PIPELINES` (default 200) ProfilePipelines
//!           back to back, as `kubectl apply -f` of a folder would;
//!   paced   with those in place, applies 50 more, one every 200 ms, as
//!           people and GitOps tools do;
//! and for every pipeline measures the time from the start of its create
//! request to the watch event of its runner Deployment. Prints p50, p99 and
//! max of each phase, then the operator's resident memory (now and peak) once
//! everything is reconciled.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kith_api::crd::ProfilePipeline;
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Seen = Arc<Mutex<HashMap<String, Instant>>>;

fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    let pipelines: usize = std::env::var("KITH_BENCH_PIPELINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let client = Client::try_default()
        .await
        .expect("KUBECONFIG names the test API server (run operator/benches/reconcile.sh)");
    let namespace = format!("kith-bench-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(namespace.clone()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let mut operator = Operator::start(&namespace);

    // Deployment watch events, by name, timed on arrival.
    let seen: Seen = Arc::default();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let recorder = seen.clone();
    tokio::spawn(async move {
        let mut events = watcher::watcher(deployments, watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            if let Ok(Event::Apply(d) | Event::InitApply(d)) = event {
                recorder
                    .lock()
                    .unwrap()
                    .entry(d.name_any())
                    .or_insert_with(Instant::now);
            }
        }
    });
    // Let the operator start and take its Lease, so that its start-up is not
    // counted as reconcile latency.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let api: Api<ProfilePipeline> = Api::namespaced(client.clone(), &namespace);
    let mut sent = HashMap::new();
    let started = Instant::now();
    for i in 0..pipelines {
        let name = format!("p{i:04}");
        sent.insert(name.clone(), Instant::now());
        api.create(&PostParams::default(), &pipeline(&name))
            .await
            .unwrap();
    }
    let created_in = started.elapsed();
    let burst = wait_for(&seen, &sent).await;
    let all_in = started.elapsed();
    println!(
        "burst: {pipelines} pipelines created in {:.2} s, all Deployments after {:.2} s",
        created_in.as_secs_f64(),
        all_in.as_secs_f64()
    );
    report("burst", burst);

    let mut paced = HashMap::new();
    for i in 0..50 {
        let name = format!("q{i:04}");
        paced.insert(name.clone(), Instant::now());
        api.create(&PostParams::default(), &pipeline(&name))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let steady = wait_for(&seen, &paced).await;
    report(&format!("paced (with {pipelines} present)"), steady);

    // Reconciles settle: status writes and owned-object events die down.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (rss, peak) = operator.memory_mib();
    println!(
        "operator memory with {} pipelines: {rss:.1} MiB resident, {peak:.1} MiB peak",
        pipelines + 50
    );
    operator.stop();
}

async fn wait_for(seen: &Seen, sent: &HashMap<String, Instant>) -> Vec<Duration> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        {
            let seen = seen.lock().unwrap();
            let runner = |name: &str| format!("{name}-runner");
            if sent.keys().all(|n| seen.contains_key(&runner(n))) {
                return sent
                    .iter()
                    .map(|(n, at)| seen[&runner(n)].duration_since(*at))
                    .collect();
            }
        }
        assert!(Instant::now() < deadline, "Deployments missing after 300 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn report(phase: &str, mut latencies: Vec<Duration>) {
    latencies.sort();
    let at = |q: f64| {
        latencies[((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    println!(
        "{phase}: apply -> Deployment over {} pipelines: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        latencies.len(),
        at(0.50).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
        latencies.last().unwrap().as_secs_f64() * 1000.0
    );
}

fn pipeline(name: &str) -> ProfilePipeline {
    let spec = serde_json::from_value(serde_json::json!({
        "image": "ghcr.io/kith-dev/kith-runner:0.1.0",
        "stateStorage": {"url": format!("s3://kith-bench/{name}")},
        "pipeline": {
            "name": name,
            "sources": [{"type": "kafka", "bootstrapServers": "kafka:9092", "topics": [name]}],
            "identifiers": [
                {"type": "email", "normalize": "email"},
                {"type": "phone", "normalize": "phone"},
                {"type": "device_id", "normalize": "lowercase"}
            ]
        }
    }))
    .unwrap();
    ProfilePipeline::new(name, spec)
}

struct Operator(Child);

impl Operator {
    fn start(namespace: &str) -> Operator {
        let admin = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kith-operator"))
            .args([
                "run",
                "--namespace",
                namespace,
                "--lease-namespace",
                namespace,
            ])
            .args(["--identity", "bench", "--admin", &admin.to_string()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../target/bench/operator.log"
                ))
                .unwrap(),
            )
            .spawn()
            .expect("the operator starts");
        Operator(child)
    }

    /// (VmRSS, VmHWM) in MiB.
    fn memory_mib(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap();
        let field = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
                .unwrap_or(0.0)
                / 1024.0
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.stop();
    }
}
