//! The test API server through kubectl (the client users have), with a
//! namespace of its own for every test.

use super::services::{require, workspace_root};
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::Once;

pub struct Cluster {
    pub kubeconfig: String,
    kubectl: String,
    /// This test's namespace.
    pub namespace: String,
}

static CRDS: Once = Once::new();

impl Cluster {
    /// The API server of `tests/services` with the CRDs of `crds/` installed,
    /// and a fresh namespace `kith-<test>-<pid>` (namespaces are never reused:
    /// without a namespace controller, a deleted one stays Terminating).
    pub fn start(test: &str) -> Cluster {
        let services = require(&["kube"]);
        let cluster = Cluster {
            kubeconfig: services.get("KUBECONFIG").to_string(),
            kubectl: services.get("KUBECTL").to_string(),
            namespace: format!("kith-{test}-{}", std::process::id()),
        };
        CRDS.call_once(|| {
            let crds = workspace_root().join("crds");
            cluster.ok(&[
                "apply",
                "--server-side",
                "--force-conflicts",
                "-f",
                crds.to_str().unwrap(),
            ]);
            cluster.ok(&[
                "wait",
                "--for=condition=Established",
                "crd/profilepipelines.kith.dev",
                "crd/profilesnapshots.kith.dev",
                "--timeout=60s",
            ]);
        });
        cluster.ok(&["create", "namespace", &cluster.namespace]);
        cluster
    }

    /// Runs kubectl in this test's namespace.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_input(args, None)
    }

    pub fn run_with_input(&self, args: &[&str], input: Option<&str>) -> Output {
        let mut child = Command::new(&self.kubectl)
            .args(["--namespace", &self.namespace])
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl starts");
        let mut stdin = child.stdin.take().unwrap();
        if let Some(text) = input {
            stdin.write_all(text.as_bytes()).unwrap();
        }
        drop(stdin);
        child.wait_with_output().unwrap()
    }

    /// Runs kubectl and returns its stdout; panics with stderr on failure.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `kubectl apply -f -` of `yaml`: Ok(stdout) or Err(stderr).
    pub fn apply(&self, yaml: &str) -> Result<String, String> {
        let out = self.run_with_input(&["apply", "-f", "-"], Some(yaml));
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// The object as JSON, or None when it does not exist.
    pub fn get(&self, kind: &str, name: &str) -> Option<Value> {
        let out = self.run(&["get", kind, name, "-o", "json"]);
        if out.status.success() {
            let object: Value = serde_json::from_slice(&out.stdout).expect("kubectl prints JSON");
            if kind.starts_with("profilepipeline") || kind == "pp" {
                record_status_sample(&self.namespace, &object);
            }
            Some(object)
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("NotFound"), "kubectl get {kind} {name}: {err}");
            None
        }
    }

    pub fn must_get(&self, kind: &str, name: &str) -> Value {
        self.get(kind, name)
            .unwrap_or_else(|| panic!("{kind} {name} does not exist in {}", self.namespace))
    }

    /// `kubectl patch --type merge`.
    pub fn merge_patch(&self, kind: &str, name: &str, patch: &Value) {
        self.ok(&[
            "patch",
            kind,
            name,
            "--type",
            "merge",
            "-p",
            &patch.to_string(),
        ]);
    }

    /// Stands in for the Deployment controller and kubelets (the test control
    /// plane has neither): reports every runner of `deployment` updated, ready
    /// and available for its current generation.
    pub fn roll_out(&self, deployment: &str) {
        let d = self.must_get("deployment", deployment);
        let replicas = d["spec"]["replicas"].as_i64().unwrap();
        let status = serde_json::json!({"status": {
            "observedGeneration": d["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
        }});
        self.patch_status("deployment", deployment, &status);
    }

    /// Merges `patch` (`{"status": {...}}`) into the status subresource of
    /// `kind` `name`, as the controller or runner owning it would.
    pub fn patch_status(&self, kind: &str, name: &str, patch: &Value) {
        self.ok(&[
            "patch",
            kind,
            name,
            "--subresource=status",
            "--type",
            "merge",
            "-p",
            &patch.to_string(),
        ]);
    }

    /// The condition `kind` of pipeline `name`, when it has one.
    pub fn condition(&self, name: &str, kind: &str) -> Option<Value> {
        let p = self.get("profilepipeline", name)?;
        p["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == kind)
            .cloned()
    }

    /// Reasons of the Events about pipeline `name`, oldest first.
    pub fn event_reasons(&self, name: &str) -> Vec<String> {
        let out = self.ok(&[
            "get",
            "events.events.k8s.io",
            "--field-selector",
            &format!("regarding.name={name},regarding.kind=ProfilePipeline"),
            "-o",
            "json",
        ]);
        let list: Value = serde_json::from_str(&out).unwrap();
        let mut events: Vec<(String, String)> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["eventTime"].as_str().unwrap_or_default().to_string(),
                    e["reason"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        events.sort();
        events.into_iter().map(|(_, r)| r).collect()
    }
}

/// A `ProfileSnapshot` manifest: a savepoint of `pipeline` requested by hand.
pub fn snapshot_manifest(name: &str, pipeline: &str) -> String {
    format!(
        "apiVersion: kith.dev/v1alpha1\nkind: ProfileSnapshot\nmetadata: {{name: {name}}}\nspec: {{pipeline: {pipeline}}}\n"
    )
}

/// A file of `examples/k8s/`.
pub fn example(name: &str) -> String {
    let path = workspace_root().join("examples/k8s").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// With `KITH_STATUS_SAMPLES=DIR`, every distinct status a test reads from
/// the API server (phase, conditions and whether the operator has seen the
/// spec) is written into DIR as a case for the kstatus and Argo CD health
/// checks (`tests/kstatus`, `tests/gitops`), with the reading the status
/// contract promises: Failed when Degraded, InProgress while the operator
/// has not seen the spec or a rollout or upgrade is under way, Current when
/// Running or Suspended. So those checks cover every phase the scenarios
/// produce, not only the ones the unit tests thought of.
fn record_status_sample(namespace: &str, object: &Value) {
    let Some(dir) = std::env::var_os("KITH_STATUS_SAMPLES") else {
        return;
    };
    let status = &object["status"];
    let Some(phase) = status["phase"].as_str() else {
        return;
    };
    let conditions: Vec<&Value> = status["conditions"]
        .as_array()
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    let is_true = |kind: &str| {
        conditions
            .iter()
            .find(|c| c["type"] == kind)
            .filter(|c| c["status"] == "True")
    };
    let unseen = match (
        object["metadata"]["generation"].as_i64(),
        status["observedGeneration"].as_i64(),
    ) {
        (Some(generation), Some(observed)) => observed < generation,
        _ => true,
    };
    let want = if unseen {
        "InProgress"
    } else if is_true("Degraded").is_some() || matches!(phase, "Failed" | "RolledBack") {
        "Failed"
    } else {
        match phase {
            "Deploying" | "Upgrading" => "InProgress",
            "Running" | "Suspended" => "Current",
            // a phase the contract does not name: the checks fail on it
            _ => "unknown phase",
        }
    };
    let shape: Vec<String> = conditions
        .iter()
        .map(|c| format!("{}={}/{}", c["type"], c["status"], c["reason"]))
        .collect();
    let key = format!("{phase} unseen={unseen} {}", shape.join(" "));
    let degraded = is_true("Degraded")
        .and_then(|c| c["reason"].as_str())
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    // The test's name, without the process id that keeps namespaces apart.
    let test = namespace.rsplit_once('-').map_or(namespace, |(t, _)| t);
    let case = serde_json::json!({
        "name": format!("{phase}{degraded}{} in {test}", if unseen { ", spec unseen" } else { "" }),
        "want": want,
        "object": {
            "apiVersion": object["apiVersion"],
            "kind": object["kind"],
            "metadata": {
                "name": object["metadata"]["name"],
                "generation": object["metadata"]["generation"],
            },
            "status": {
                "observedGeneration": status["observedGeneration"],
                "phase": phase,
                "conditions": conditions,
            },
        },
    });
    let dir = std::path::PathBuf::from(dir);
    let file = dir.join(format!(
        "{:016x}.json",
        xxhash_rust::xxh3::xxh3_64(key.as_bytes())
    ));
    if file.exists() {
        return;
    }
    let _ = std::fs::create_dir_all(&dir);
    // Written whole under another name and renamed: tests run in parallel,
    // and a reader must never see half a case.
    let tmp = dir.join(format!(
        ".{}.{:?}.tmp",
        std::process::id(),
        std::thread::current().id()
    ));
    if std::fs::write(&tmp, serde_json::to_vec_pretty(&case).unwrap_or_default()).is_ok() {
        let _ = std::fs::rename(&tmp, &file);
    }
}
