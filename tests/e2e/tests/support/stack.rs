//! One scenario's world: a namespace of the test API server with the CRDs,
//! an operator watching it, the kubelet stand-in running what the operator
//! deploys, a Kafka topic, a moto bucket for the state, and a Secret with the
//! (moto) credentials the pipelines reference.

use super::cluster::Cluster;
use super::kafka::KafkaCase;
use super::operator::Operator;
use super::runner::{binary, example, export, generate, http};
use super::services::{require, Services};
use super::{eventually, moto};
use kith_e2e::kubelet::{Config, Kubelet, PodView, Timing, RUNNERS};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The image the stand-in runs as `kith-runner`.
pub const IMAGE: &str = "kith-runner:e2e";
/// The image the stand-in runs as `kith-operator` (repository and tag, as
/// the chart's values name them).
pub const OPERATOR_IMAGE: (&str, &str) = ("kith-operator", "e2e");
/// The Helm release of [`Stack::start_from_chart`].
pub const RELEASE: &str = "kith";

pub struct Stack {
    pub cluster: Cluster,
    pub services: Services,
    pub kafka: KafkaCase,
    pub bucket: String,
    pub kubelet: Kubelet,
    /// The operator as a process of the test; None when the chart's
    /// Deployment runs it on the stand-in.
    pub operator: Option<Operator>,
}

impl Stack {
    /// A scenario with the operator as a process of the test.
    pub fn start(test: &str, partitions: i32) -> Stack {
        let mut stack = Self::world(test, partitions, RUNNERS);
        stack.operator = Some(Operator::start(&stack.cluster, "e2e"));
        stack
    }

    /// A scenario whose operator is installed by `helm install` of
    /// charts/kith into the scenario's namespace (watching it alone, CRDs
    /// left to the cluster) and run by the stand-in from the chart's
    /// Deployment: its arguments, environment, probes and ServiceAccount,
    /// whose token carries only the RBAC the chart grants.
    pub fn start_from_chart(test: &str, partitions: i32) -> Stack {
        let stack = Self::world(
            test,
            partitions,
            "app.kubernetes.io/managed-by in (kith-operator,Helm)",
        );
        stack.helm(&[
            "install",
            RELEASE,
            &chart(),
            "--set",
            &format!("image.repository={}", OPERATOR_IMAGE.0),
            "--set",
            &format!("image.tag={}", OPERATOR_IMAGE.1),
            "--set",
            "crds.install=false",
            "--set-json",
            &format!(r#"watchNamespaces=["{}"]"#, stack.cluster.namespace),
        ]);
        stack
    }

    /// Runs `helm ARGS` against the scenario's namespace; panics with its
    /// output when it fails.
    pub fn helm(&self, args: &[&str]) -> String {
        let out = Command::new(helm())
            .args(args)
            .args(["--namespace", &self.cluster.namespace])
            .env("KUBECONFIG", &self.cluster.kubeconfig)
            .output()
            .expect("helm runs");
        assert!(
            out.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn world(test: &str, partitions: i32, deployments: &str) -> Stack {
        let services = require(&["kafka", "moto", "kube"]);
        let cluster = Cluster::start(test);
        let kafka = KafkaCase::new(&format!("kith-e2e-{test}"), partitions);
        let bucket = moto::fresh_bucket(&services);
        cluster.ok(&[
            "create",
            "secret",
            "generic",
            "kith-aws",
            &format!(
                "--from-literal=AWS_ACCESS_KEY_ID={}",
                services.get("AWS_ACCESS_KEY_ID")
            ),
            &format!(
                "--from-literal=AWS_SECRET_ACCESS_KEY={}",
                services.get("AWS_SECRET_ACCESS_KEY")
            ),
        ]);
        let kubelet = Kubelet::start(Config {
            kubeconfig: PathBuf::from(&cluster.kubeconfig),
            namespace: cluster.namespace.clone(),
            images: BTreeMap::from([
                (IMAGE.to_string(), PathBuf::from(binary())),
                (
                    format!("{}:{}", OPERATOR_IMAGE.0, OPERATOR_IMAGE.1),
                    PathBuf::from(super::operator::binary()),
                ),
            ]),
            deployments: deployments.to_string(),
            work_dir: kafka.dir.path().join("node"),
            timing: Timing::default(),
        })
        .expect("the kubelet stand-in starts");
        Stack {
            cluster,
            services,
            kafka,
            bucket,
            kubelet,
            operator: None,
        }
    }

    /// A ProfilePipeline reading the scenario's topic with the example Kafka
    /// pipeline, checkpointing to S3 every second, credentials by reference.
    pub fn manifest(&self, name: &str) -> Value {
        let text = std::fs::read_to_string(example("kafka/pipeline.yaml")).unwrap();
        // The runner expands `${VAR}` before it reads YAML; as a document in
        // a resource, the placeholder in a flow sequence needs quotes.
        let text = text.replace("[${KITH_INPUT_TOPIC}]", "[\"${KITH_INPUT_TOPIC}\"]");
        let mut pipeline: Value = serde_yaml::from_str(&text).unwrap();
        // The resource's own fields say where and how often (the operator
        // refuses a value given twice).
        pipeline["checkpoints"] = json!({"retain": 3});
        let secret = |key: &str| json!({"name": key, "valueFrom": {"secretKeyRef": {"name": "kith-aws", "key": key}}});
        json!({
            "apiVersion": "kith.dev/v1alpha1",
            "kind": "ProfilePipeline",
            "metadata": {"name": name},
            "spec": {
                "image": IMAGE,
                "checkpointInterval": "1s",
                "stateStorage": {"url": format!("s3://{}/{name}/checkpoints", self.bucket)},
                "env": [
                    {"name": "KAFKA_BOOTSTRAP", "value": self.kafka.bootstrap},
                    {"name": "KITH_INPUT_TOPIC", "value": self.kafka.topic},
                    {"name": "AWS_ENDPOINT_URL_S3", "value": self.services.get("S3_ENDPOINT")},
                    {"name": "AWS_REGION", "value": self.services.get("AWS_REGION")},
                    secret("AWS_ACCESS_KEY_ID"),
                    secret("AWS_SECRET_ACCESS_KEY"),
                    {"name": "KITH_LOG", "value": "kith_runner=info,kith_lease=info"},
                ],
                "pipeline": pipeline,
            }
        })
    }

    pub fn apply(&self, manifest: &Value) {
        self.cluster
            .apply(&manifest.to_string())
            .unwrap_or_else(|e| panic!("kubectl apply refused the manifest: {e}"));
    }

    pub fn merge_patch(&self, name: &str, patch: Value) {
        self.cluster.merge_patch("profilepipeline", name, &patch);
    }

    pub fn pipeline(&self, name: &str) -> Value {
        self.cluster.must_get("profilepipeline", name)
    }

    /// `Ready=True` with reason `Running`, and one ready runner on the
    /// node: returns that runner.
    pub fn wait_running(&self, name: &str, limit: Duration) -> PodView {
        self.wait_pod(name, "running", limit, |_| self.is_running(name))
    }

    /// Whether the pipeline's `Ready` condition is True with reason `Running`.
    pub fn is_running(&self, name: &str) -> bool {
        self.cluster
            .condition(name, "Ready")
            .is_some_and(|c| c["status"] == "True" && c["reason"] == "Running")
    }

    /// Waits until the pipeline has exactly one runner pod (none being
    /// deleted), ready and passing `check`: returns it.
    pub fn wait_pod(
        &self,
        name: &str,
        what: &str,
        limit: Duration,
        check: impl Fn(&PodView) -> bool,
    ) -> PodView {
        eventually(limit, &format!("{name}: {what}"), || {
            let pods = self.kubelet.pods_of(&format!("{name}-runner"));
            match pods.as_slice() {
                [one] if one.ready && check(one) => Ok(one.clone()),
                _ => Err(format!(
                    "status {}; pods {pods:?}\n{}",
                    self.pipeline(name)["status"],
                    self.logs(name)
                )),
            }
        })
    }

    /// Waits until the spec the runners run has proven itself (ready, and
    /// the checkpoints the upgrade policy asks for).
    pub fn wait_stable(&self, name: &str, limit: Duration) {
        eventually(limit, "the spec stable", || {
            let status = self.pipeline(name)["status"].clone();
            if status["specHash"].is_string() && status["lastStableSpecHash"] == status["specHash"]
            {
                Ok(())
            } else {
                Err(format!(
                    "spec {} last stable {} runtime {}",
                    status["specHash"], status["lastStableSpecHash"], status["runtime"]
                ))
            }
        });
    }

    /// The tail of every container log of the pipeline's pods, for failures.
    pub fn logs(&self, name: &str) -> String {
        let mut out = String::new();
        let dir = self.kafka.dir.path().join("node").join("pods");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return out;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let pod = e.file_name().to_string_lossy().into_owned();
            if !pod.starts_with(&format!("{name}-runner-")) {
                continue;
            }
            let log = std::fs::read_to_string(e.path().join("container.log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            out.push_str(&format!("--- {pod}\n{tail}\n"));
        }
        out
    }

    /// A value of the runner's metrics at `admin`.
    pub fn metric(&self, admin: &str, name: &str) -> Option<f64> {
        metric(admin, name)
    }

    /// Suspends the pipeline (its runner stops with a final checkpoint),
    /// waits until no runner is left, then restores the latest checkpoint in
    /// S3 into a fresh folder, reads the topic to its end from there, and
    /// returns the export.
    pub fn suspend_and_export(&self, name: &str) -> Vec<String> {
        self.suspend(name);
        self.export_latest_checkpoint(name)
    }

    pub fn suspend(&self, name: &str) {
        self.merge_patch(name, json!({"spec": {"state": "suspended"}}));
        eventually(Duration::from_secs(150), "suspended", || {
            let pods = self.kubelet.pods();
            let left: Vec<_> = pods
                .iter()
                .filter(|p| p.deployment == format!("{name}-runner"))
                .collect();
            let phase = self.pipeline(name)["status"]["phase"].clone();
            if left.is_empty() && phase == "Suspended" {
                Ok(())
            } else {
                Err(format!("phase {phase}, pods {left:?}"))
            }
        });
    }

    /// The URL the pipeline's runners checkpoint to (with its lineage), from
    /// the pipeline file the operator wrote.
    pub fn checkpoint_url(&self, name: &str) -> String {
        let file = self.pipeline_file(name);
        file["checkpoints"]["url"]
            .as_str()
            .expect("checkpoints.url in the pipeline file")
            .to_string()
    }

    pub fn pipeline_file(&self, name: &str) -> Value {
        let cm = self
            .cluster
            .must_get("configmap", &format!("{name}-pipeline"));
        serde_yaml::from_str(cm["data"]["pipeline.yaml"].as_str().unwrap()).unwrap()
    }

    /// Ids of the complete checkpoints (with `_metadata`) under `url`.
    pub fn complete_checkpoints(&self, url: &str) -> Vec<u64> {
        let (bucket, prefix) = split_s3(url);
        let mut ids: Vec<u64> = moto::list_keys(self.services.get("S3_ENDPOINT"), bucket, prefix)
            .iter()
            .filter_map(|k| k.strip_prefix(prefix))
            .filter_map(|k| k.trim_start_matches('/').strip_prefix("chk-"))
            .filter_map(|k| k.strip_suffix("/_metadata"))
            .filter_map(|id| id.parse().ok())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Keys under an `s3://` URL.
    pub fn keys(&self, url: &str) -> Vec<String> {
        let (bucket, prefix) = split_s3(url);
        moto::list_keys(self.services.get("S3_ENDPOINT"), bucket, prefix)
    }

    /// Restores the newest complete checkpoint of the pipeline into a fresh
    /// folder and reads on to the end of the topic (`--exit-at-end`),
    /// checkpointing elsewhere so the pipeline's own storage is untouched.
    pub fn export_latest_checkpoint(&self, name: &str) -> Vec<String> {
        self.export_from(name, &self.latest_checkpoint(name))
    }

    /// The folder URL of the pipeline's newest complete checkpoint.
    pub fn latest_checkpoint(&self, name: &str) -> String {
        let url = self.checkpoint_url(name);
        let latest = *self
            .complete_checkpoints(&url)
            .last()
            .unwrap_or_else(|| panic!("no complete checkpoint under {url}"));
        // The runner's folder name: `chk-` and the id in ten digits.
        format!("{url}/chk-{latest:010}")
    }

    /// The export of a run of the pipeline's file restored from `restore`
    /// (a checkpoint or savepoint folder) that reads the topic to its end.
    pub fn export_from(&self, name: &str, restore: &str) -> Vec<String> {
        self.export_with(self.pipeline_file(name), restore)
    }

    /// As [`Stack::export_from`], with the pipeline file given (the
    /// pipeline's ConfigMap may be gone).
    pub fn export_with(&self, file: Value, restore: &str) -> Vec<String> {
        let dir = tempfile::tempdir_in(self.kafka.dir.path()).unwrap();
        let mut file = file;
        file["checkpoints"]["url"] =
            json!(format!("file://{}", dir.path().join("scratch").display()));
        let path = dir.path().join("pipeline.yaml");
        std::fs::write(&path, serde_yaml::to_string(&file).unwrap()).unwrap();
        let state = dir.path().join("state");
        let out = Command::new(binary())
            .args([
                "run",
                path.to_str().unwrap(),
                "--state",
                state.to_str().unwrap(),
            ])
            .args(["--restore", restore, "--exit-at-end"])
            .env("KAFKA_BOOTSTRAP", &self.kafka.bootstrap)
            .env("KITH_INPUT_TOPIC", &self.kafka.topic)
            .env("AWS_ENDPOINT_URL_S3", self.services.get("S3_ENDPOINT"))
            .env("AWS_REGION", self.services.get("AWS_REGION"))
            .env("AWS_ACCESS_KEY_ID", self.services.get("AWS_ACCESS_KEY_ID"))
            .env(
                "AWS_SECRET_ACCESS_KEY",
                self.services.get("AWS_SECRET_ACCESS_KEY"),
            )
            .env_remove("KITH_PIPELINE")
            .output()
            .expect("the runner starts");
        assert!(
            out.status.success(),
            "restoring {restore} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        export(&state)
    }
}

/// `s3://bucket/prefix` → (bucket, prefix).
fn split_s3(url: &str) -> (&str, &str) {
    url.strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .unwrap_or_else(|| panic!("not an s3://bucket/prefix URL: {url}"))
}

/// A workload of `people` from `generate` and the export of one
/// uninterrupted file run over it.
pub fn workload(stack: &Stack, people: u64, seed: u64) -> (Vec<Vec<u8>>, Vec<String>) {
    let lines = generate(people, seed);
    let reference = stack.kafka.reference(&lines, "reference");
    (lines, reference)
}

/// charts/kith in this checkout.
fn chart() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../charts/kith")
        .to_string_lossy()
        .into_owned()
}

/// The value of series `name` (with its labels, as exposed) in the
/// `/metrics` of the runner or operator at `address`.
pub fn metric(address: &str, name: &str) -> Option<f64> {
    let (_, body) = http(address, "GET", "/metrics")?;
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

/// The helm CLI of tests/helm/helm.sh (built from its Go module once).
pub fn helm() -> String {
    static HELM: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HELM.get_or_init(|| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../helm/helm.sh");
        let out = Command::new("bash")
            .arg(script)
            .output()
            .expect("bash runs tests/helm/helm.sh");
        assert!(
            out.status.success(),
            "tests/helm/helm.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
    .clone()
}
