//! The README's Kubernetes section, run as a new user runs it: the first
//! shell block of "On Kubernetes", line by line through bash, with `helm`
//! and `kubectl` on the PATH, against an empty API server of its own (no
//! CRD, namespace or release of another test), while kubelet stand-ins run
//! what it deploys: the chart's operator Deployment from the chart's default
//! image, and the runners it makes. The one thing changed is where the
//! quickstart manifest finds Kafka and keeps its checkpoints (the addresses
//! of this machine's test services instead of the manifest's `kafka:9092`
//! and the pod's own volume); every command, file and flag is as written.

mod support;

use kith_e2e::kubelet::{Config, Kubelet, Timing};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::fresh::FreshCluster;
use support::kafka::KafkaCase;
use support::runner::binary;
use support::services::{require, workspace_root};
use support::{eventually, operator, stack};

/// The commands of the first ```sh block under `## On Kubernetes`, without
/// comments.
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let section = readme
        .split("\n## On Kubernetes")
        .nth(1)
        .expect("the README has an `On Kubernetes` section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("the section starts with a sh block");
    block
        .lines()
        .map(|l| l.split("  #").next().unwrap_or("").trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// A copy of the repository's files the block names, in `dir`, with the
/// quickstart's two addresses pointed at the test services.
fn workdir(dir: &Path, bootstrap: &str, topic: &str) {
    let root = workspace_root();
    for linked in ["charts", "crds"] {
        std::os::unix::fs::symlink(root.join(linked), dir.join(linked)).unwrap();
    }
    let k8s = dir.join("examples/k8s");
    std::fs::create_dir_all(&k8s).unwrap();
    let original = std::fs::read_to_string(root.join("examples/k8s/quickstart.yaml")).unwrap();
    let mut text = original.clone();
    for (from, to) in [
        (
            "bootstrapServers: kafka:9092",
            format!("bootstrapServers: {bootstrap}"),
        ),
        ("topics: [observations]", format!("topics: [{topic}]")),
        (
            "url: file:///var/lib/kith/checkpoints",
            format!("url: file://{}/checkpoints", dir.display()),
        ),
    ] {
        assert_eq!(
            text.matches(from).count(),
            1,
            "examples/k8s/quickstart.yaml no longer has `{from}` once; update this test"
        );
        text = text.replace(from, &to);
    }
    std::fs::write(k8s.join("quickstart.yaml"), text).unwrap();
}

/// `image:tag` the chart deploys the operator from by default.
fn chart_operator_image() -> String {
    let chart = workspace_root().join("charts/kith");
    let values: Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart.join("values.yaml")).unwrap()).unwrap();
    let meta: Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart.join("Chart.yaml")).unwrap()).unwrap();
    let tag = match values["image"]["tag"].as_str() {
        Some(t) if !t.is_empty() => t.to_string(),
        _ => meta["appVersion"].as_str().unwrap().to_string(),
    };
    format!("{}:{tag}", values["image"]["repository"].as_str().unwrap())
}

fn quickstart_image() -> String {
    let text =
        std::fs::read_to_string(workspace_root().join("examples/k8s/quickstart.yaml")).unwrap();
    let manifest: Value = serde_yaml::from_str(&text).unwrap();
    manifest["spec"]["image"].as_str().unwrap().to_string()
}

/// The end of each pod's log, for a failure message.
fn logs(kubelet: &Kubelet) -> String {
    let mut out = String::new();
    for pod in kubelet.pods() {
        let log = std::fs::read_to_string(&pod.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        out.push_str(&format!(
            "--- {} (ready {}):\n{tail}\n",
            pod.name, pod.ready
        ));
    }
    out
}

#[test]
fn the_readme_kubernetes_section_works_as_written() {
    require(&["kafka", "kube"]);
    let dir = tempfile::tempdir().unwrap();
    let cluster = FreshCluster::start("readme", &dir.path().join("apiserver"));
    // The quickstart's precondition: a Kafka with its topic.
    let kafka = KafkaCase::new("kith-e2e-readme", 1);
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    workdir(&work, &kafka.bootstrap, &kafka.topic);

    // One stand-in per namespace the block uses, each running the images
    // the chart and the manifest name from the binaries built here.
    let images = BTreeMap::from([
        (chart_operator_image(), PathBuf::from(operator::binary())),
        (quickstart_image(), PathBuf::from(binary())),
    ]);
    let kubelet = |namespace: &str| {
        Kubelet::start(Config {
            kubeconfig: cluster.kubeconfig.clone(),
            namespace: namespace.to_string(),
            images: images.clone(),
            deployments: "app.kubernetes.io/managed-by in (kith-operator,Helm)".to_string(),
            work_dir: dir.path().join(namespace),
            timing: Timing::default(),
        })
        .expect("the kubelet stand-in starts")
    };
    let operators = kubelet("kith-system");
    let runners = kubelet("team");

    let path = format!(
        "{}:{}:{}",
        Path::new(&stack::helm()).parent().unwrap().display(),
        cluster.kubectl.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let commands = readme_commands();
    assert!(
        commands
            .first()
            .is_some_and(|c| c.starts_with("helm install")),
        "the section starts with `helm install`: {commands:?}"
    );
    let mut last = String::new();
    for command in &commands {
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", command])
            .current_dir(&work)
            .env("PATH", &path)
            .env("KUBECONFIG", &cluster.kubeconfig)
            .env("HELM_CACHE_HOME", dir.path().join("helm/cache"))
            .env("HELM_CONFIG_HOME", dir.path().join("helm/config"))
            .env("HELM_DATA_HOME", dir.path().join("helm/data"))
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "`{command}` failed:\n{}{}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            logs(&operators),
            logs(&runners),
        );
        last = String::from_utf8_lossy(&out.stdout).into_owned();
    }

    // The last command lists the pipeline with the columns the README shows.
    let mut lines = last.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    for column in [
        "NAME",
        "PHASE",
        "PARALLELISM",
        "READY",
        "LAST",
        "SNAPSHOT",
        "AGE",
    ] {
        assert!(header.contains(&column), "no {column} column in {last}");
    }
    let row: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(row.get(..2), Some(&["quickstart", "Running"][..]), "{last}");

    // And the pipeline it started reads the topic.
    let observations: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            format!(
                r#"{{"source":"web","id":"r-{i}","ts":"2026-01-05T10:00:0{i}Z","kind":"person","identifiers":[{{"type":"email","value":"p{i}@example.com"}}]}}"#
            )
            .into_bytes()
        })
        .collect();
    kafka.produce(&observations);
    let runner = runners.pods_of("quickstart-runner");
    let admin = runner
        .first()
        .and_then(|p| p.admin.clone())
        .expect("the quickstart runner has an admin port");
    eventually(
        Duration::from_secs(60),
        "the observations applied",
        || match stack::metric(&admin, "kith_observations_total") {
            Some(n) if n >= 3.0 => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
}
