//! The operator against a real kube-apiserver (tests/services/kube): the CRDs
//! installed from `crds/`, the manifests of `examples/k8s/` applied with
//! kubectl, and the operator binary reconciling them. The test control plane
//! has no controller-manager or kubelet: where a Deployment's status matters,
//! the test reports it the way the Deployment controller would.
//!
//! Every test has a namespace and operator processes of its own.

mod support;

use serde::Deserialize;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::cluster::{example, snapshot_manifest, Cluster};
use support::eventually;
use support::operator::Operator;

const WAIT: Duration = Duration::from_secs(30);

fn examples_dir() -> String {
    support::services::workspace_root()
        .join("examples/k8s")
        .display()
        .to_string()
}

/// The Deployment `name` once `check` accepts it.
fn deployment_when(
    cluster: &Cluster,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    eventually(WAIT, what, || match cluster.get("deployment", name) {
        Some(d) if check(&d) => Ok(d),
        Some(d) => Err(d["spec"].to_string()),
        None => Err(format!("no Deployment {name}")),
    })
}

/// Waits until `kind` `name` no longer exists (its finalizer done).
fn wait_gone(cluster: &Cluster, kind: &str, name: &str) {
    eventually(WAIT, &format!("{kind} {name} gone"), || {
        match cluster.get(kind, name) {
            None => Ok(()),
            Some(o) => Err(o["metadata"].to_string()),
        }
    });
}

fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

fn condition_when(
    cluster: &Cluster,
    pipeline: &str,
    kind: &str,
    status: &str,
    reason: &str,
) -> Value {
    eventually(
        WAIT,
        &format!("{kind}={status} ({reason}) on {pipeline}"),
        || match cluster.condition(pipeline, kind) {
            Some(c) if c["status"] == status && c["reason"] == reason => Ok(c),
            other => Err(format!("{other:?}")),
        },
    )
}

fn events_include(cluster: &Cluster, pipeline: &str, reason: &str) {
    eventually(WAIT, &format!("an event {reason} for {pipeline}"), || {
        let reasons = cluster.event_reasons(pipeline);
        if reasons.iter().any(|r| r == reason) {
            Ok(())
        } else {
            Err(format!("{reasons:?}"))
        }
    });
}

fn pipeline_file(cluster: &Cluster, pipeline: &str) -> Value {
    let cm = cluster.must_get("configmap", &format!("{pipeline}-pipeline"));
    serde_yaml::from_str(cm["data"]["pipeline.yaml"].as_str().unwrap()).unwrap()
}

#[test]
fn examples_become_runner_workloads_that_follow_spec_changes() {
    let cluster = Cluster::start("examples");
    let operator = Operator::start(&cluster, "operator-a");
    cluster.ok(&["apply", "-f", &examples_dir()]);

    // The AWS example (three sinks) is valid and becomes runners too.
    let aws = deployment_when(&cluster, "identity-graph-runner", "created", |_| true);
    assert_eq!(
        container(&aws)["image"],
        "ghcr.io/kith-dev/kith-runner:0.1.0"
    );
    let aws_pipeline = pipeline_file(&cluster, "identity-graph");
    assert_eq!(aws_pipeline["sinks"].as_array().unwrap().len(), 3);

    let d = deployment_when(&cluster, "customers-runner", "created", |_| true);
    let pipeline = cluster.must_get("profilepipeline", "customers");
    let owner = &d["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "ProfilePipeline");
    assert_eq!(owner["uid"], pipeline["metadata"]["uid"]);
    assert_eq!(owner["controller"], true);
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(d["spec"]["strategy"]["type"], "Recreate");
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "customers-runner");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = container(&d);
    assert_eq!(c["image"], "ghcr.io/kith-dev/kith-runner:0.1.0");
    assert_eq!(
        c["args"],
        json!([
            "run",
            "/etc/kith/pipeline.yaml",
            "--state",
            "/var/lib/kith/state",
            "--admin",
            "0.0.0.0:9249",
            "--admin-auth",
            "kubernetes"
        ])
    );
    assert_eq!(c["ports"][0]["containerPort"], 9249);
    // Ingress to the admin port only.
    let policy = cluster.must_get("networkpolicy", "customers-runner");
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress"]));
    assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"], 9249);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["resources"]["requests"]["memory"], "2Gi");
    let security = &c["securityContext"];
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    // The secret stays a reference: no value in the Deployment.
    let secret = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "AWS_SECRET_ACCESS_KEY")
        .expect("the user's env reaches the runner");
    assert_eq!(secret["valueFrom"]["secretKeyRef"]["name"], "kith-aws");
    assert!(secret.get("value").is_none());

    let file = pipeline_file(&cluster, "customers");
    assert_eq!(file["name"], "customers");
    assert_eq!(file["keyGroups"], 128);
    assert_eq!(
        file["checkpoints"]["url"],
        "s3://kith-state/customers/checkpoints"
    );
    assert_eq!(
        file["checkpoints"]["savepointUrl"],
        "s3://kith-state/customers/savepoints"
    );
    assert_eq!(file["checkpoints"]["interval"], "10s");
    assert_eq!(file["checkpoints"]["retain"], 3);
    assert_eq!(
        file["sources"][0]["topics"],
        json!(["customer-observations"])
    );

    let service = cluster.must_get("service", "customers-runner");
    assert_eq!(service["spec"]["ports"][0]["port"], 9249);
    assert_eq!(
        service["spec"]["clusterIP"], "None",
        "runners are addressed one by one"
    );
    assert_eq!(
        service["spec"]["selector"]["kith.dev/pipeline"],
        "customers"
    );
    cluster.must_get("serviceaccount", "customers-runner");
    let role = cluster.must_get("role", "customers-runner");
    let rules = role["rules"].as_array().unwrap();
    for rule in rules {
        assert!(
            !rule["verbs"].as_array().unwrap().contains(&json!("*")),
            "{rule}"
        );
        assert!(
            !rule["resources"].as_array().unwrap().contains(&json!("*")),
            "{rule}"
        );
    }
    let status_rule = rules
        .iter()
        .find(|r| r["resources"] == json!(["profilepipelines/status"]))
        .expect("runners may report into their pipeline's status");
    assert_eq!(status_rule["resourceNames"], json!(["customers"]));
    assert_eq!(status_rule["verbs"], json!(["get", "patch"]));
    let binding = cluster.must_get("rolebinding", "customers-runner");
    assert_eq!(binding["subjects"][0]["name"], "customers-runner");
    assert_eq!(binding["roleRef"]["name"], "customers-runner");
    let pdb = cluster.must_get("poddisruptionbudget", "customers-runner");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"]["kith.dev/pipeline"],
        "customers"
    );

    // Until the runners are up, the pipeline is progressing and not ready.
    condition_when(&cluster, "customers", "Progressing", "True", "RollingOut");
    let ready = condition_when(&cluster, "customers", "Ready", "False", "RollingOut");
    assert_eq!(
        ready["observedGeneration"],
        pipeline["metadata"]["generation"]
    );
    cluster.roll_out("customers-runner");
    cluster.ok(&[
        "wait",
        "--for=condition=Ready",
        "profilepipeline/customers",
        "--timeout=30s",
    ]);
    let p = cluster.must_get("profilepipeline", "customers");
    assert_eq!(p["status"]["phase"], "Running");
    assert_eq!(p["status"]["readyReplicas"], 1);
    assert_eq!(
        p["status"]["observedGeneration"],
        p["metadata"]["generation"]
    );
    let hash = p["status"]["specHash"].as_str().unwrap().to_string();
    assert_eq!(
        d["spec"]["template"]["metadata"]["annotations"]["kith.dev/spec-hash"],
        hash.as_str()
    );
    events_include(&cluster, "customers", "Deployed");
    events_include(&cluster, "customers", "Ready");
    let table = cluster.ok(&["get", "pp"]);
    assert!(
        table.contains("PHASE") && table.contains("Running"),
        "{table}"
    );

    // A spec change (new image, one more identifier type) rolls the runners
    // onto a new template and a new pipeline file (from the latest
    // checkpoint: savepoint-first upgrades have a test of their own).
    cluster.merge_patch(
        "profilepipeline",
        "customers",
        &json!({"spec": {"image": "ghcr.io/kith-dev/kith-runner:0.2.0", "upgradeMode": "last-state"}}),
    );
    let mut identifiers = p["spec"]["pipeline"]["identifiers"].clone();
    identifiers
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "loyalty_id", "normalize": "trim"}));
    cluster.merge_patch(
        "profilepipeline",
        "customers",
        &json!({"spec": {"pipeline": {"identifiers": identifiers}}}),
    );
    let d = deployment_when(&cluster, "customers-runner", "on the new spec", |d| {
        container(d)["image"] == "ghcr.io/kith-dev/kith-runner:0.2.0"
            && d["spec"]["template"]["metadata"]["annotations"]["kith.dev/spec-hash"]
                != hash.as_str()
    });
    eventually(WAIT, "the new pipeline file", || {
        let file = pipeline_file(&cluster, "customers");
        let types: Vec<&str> = file["identifiers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["type"].as_str())
            .collect();
        if types.contains(&"loyalty_id") {
            Ok(())
        } else {
            Err(format!("{types:?}"))
        }
    });
    // Both patches seen (generation 3), the runners not yet rolled.
    eventually(WAIT, "Progressing for generation 3", || {
        match cluster.condition("customers", "Progressing") {
            Some(c)
                if c["status"] == "True"
                    && c["reason"] == "RollingOut"
                    && c["observedGeneration"] == 3 =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    });
    events_include(&cluster, "customers", "Upgrading");
    assert_eq!(d["spec"]["replicas"], 1);
    cluster.roll_out("customers-runner");
    condition_when(&cluster, "customers", "Ready", "True", "Running");

    // The scale subresource is honoured only as far as runners can run
    // (fail closed): three are refused, one keeps running, and the
    // subresource's status says so.
    cluster.ok(&["scale", "profilepipeline/customers", "--replicas=3"]);
    condition_when(
        &cluster,
        "customers",
        "Degraded",
        "True",
        "ParallelismUnsupported",
    );
    events_include(&cluster, "customers", "ParallelismUnsupported");
    let d = cluster.must_get("deployment", "customers-runner");
    assert_eq!(d["spec"]["replicas"], 1, "never more than one runner");
    let p = cluster.must_get("profilepipeline", "customers");
    assert_eq!(p["status"]["replicas"], 1);
    assert_eq!(
        p["spec"]["parallelism"], 3,
        "the request is kept, not rewritten"
    );
    assert_eq!(
        p["status"]["selector"],
        "app.kubernetes.io/component=runner,kith.dev/pipeline=customers"
    );
    let ready = p["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
    assert_eq!(ready["status"], "True", "the one runner runs: {ready}");
    let degraded = cluster.must_get("profilepipeline", "customers")["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Degraded")
        .unwrap()
        .clone();
    assert!(
        degraded["message"]
            .as_str()
            .unwrap()
            .contains("at most 1 runner"),
        "{degraded}"
    );
    // Asking for what can run clears it.
    cluster.ok(&["scale", "profilepipeline/customers", "--replicas=1"]);
    condition_when(&cluster, "customers", "Degraded", "False", "AsExpected");
    events_include(&cluster, "customers", "Recovered");

    // Suspending stops every runner and is a desired state reached.
    cluster.merge_patch(
        "profilepipeline",
        "customers",
        &json!({"spec": {"state": "suspended"}}),
    );
    deployment_when(&cluster, "customers-runner", "scaled to 0", |d| {
        d["spec"]["replicas"] == 0
    });
    cluster.roll_out("customers-runner");
    condition_when(&cluster, "customers", "Ready", "True", "Suspended");

    let (code, metrics) = operator.http_get("/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(metrics.contains("kith_operator_leader 1"), "{metrics}");
    assert!(
        metrics.contains("kith_operator_reconciles_total{result=\"ok\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kith_operator_pipelines{phase=\"Suspended\"} 1"),
        "{metrics}"
    );
    assert!(
        // quickstart and identity-graph (the AWS example).
        metrics.contains("kith_operator_pipelines{phase=\"Deploying\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kith_operator_reconcile_duration_seconds_count"),
        "{metrics}"
    );
    assert_eq!(operator.http_get("/readyz").unwrap().0, 200);
    assert_eq!(operator.http_get("/healthz").unwrap().0, 200);
}

#[test]
fn drift_is_undone_and_an_autoscaler_adds_no_runner() {
    let cluster = Cluster::start("drift");
    let _operator = Operator::start(&cluster, "operator-a");
    cluster.apply(&example("quickstart.yaml")).unwrap();
    let first = deployment_when(&cluster, "quickstart-runner", "created", |_| true);
    cluster.roll_out("quickstart-runner");
    condition_when(&cluster, "quickstart", "Ready", "True", "Running");

    // Deleted: created again.
    cluster.ok(&["delete", "deployment", "quickstart-runner"]);
    let again = deployment_when(&cluster, "quickstart-runner", "recreated", |d| {
        d["metadata"]["uid"] != first["metadata"]["uid"]
    });
    assert_eq!(container(&again)["image"], container(&first)["image"]);
    events_include(&cluster, "quickstart", "DriftCorrected");

    // Edited: the operator's fields are taken back.
    cluster.ok(&[
        "patch", "deployment", "quickstart-runner", "--type", "json", "-p",
        r#"[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"example.com/other:1"},
            {"op":"replace","path":"/spec/template/spec/containers/0/securityContext/readOnlyRootFilesystem","value":false},
            {"op":"replace","path":"/spec/replicas","value":4}]"#,
    ]);
    let restored = deployment_when(&cluster, "quickstart-runner", "restored", |d| {
        container(d)["image"] == "ghcr.io/kith-dev/kith-runner:0.1.0" && d["spec"]["replicas"] == 1
    });
    assert_eq!(
        container(&restored)["securityContext"]["readOnlyRootFilesystem"],
        true
    );

    // An autoscaler targeting the Deployment asks for more runners than can
    // run: refused like any other request, through spec changes too.
    cluster
        .apply(
            r#"
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: quickstart-runner}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: quickstart-runner}
  minReplicas: 1
  maxReplicas: 8
  metrics:
    - type: Resource
      resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}
"#,
        )
        .unwrap();
    // Scale as the autoscaler would, again whenever it is undone: until the
    // operator's autoscaler cache has seen the HPA (the next reconcile after
    // that), 4 is plain drift.
    eventually(WAIT, "the autoscaler's 4 runners refused", || {
        cluster.ok(&["scale", "deployment/quickstart-runner", "--replicas=4"]);
        std::thread::sleep(Duration::from_secs(1));
        match cluster.condition("quickstart", "Degraded") {
            Some(c) if c["reason"] == "ParallelismUnsupported" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    deployment_when(&cluster, "quickstart-runner", "back to one runner", |d| {
        d["spec"]["replicas"] == 1
    });
    cluster.merge_patch(
        "profilepipeline",
        "quickstart",
        &json!({"spec": {"image": "ghcr.io/kith-dev/kith-runner:0.2.0"}}),
    );
    let upgraded = deployment_when(&cluster, "quickstart-runner", "upgraded", |d| {
        container(d)["image"] == "ghcr.io/kith-dev/kith-runner:0.2.0"
    });
    assert_eq!(
        upgraded["spec"]["replicas"], 1,
        "never more than one runner"
    );
}

#[test]
fn a_spec_the_runner_would_refuse_degrades_without_touching_the_runners() {
    let cluster = Cluster::start("invalid");
    let _operator = Operator::start(&cluster, "operator-a");
    cluster.apply(&example("quickstart.yaml")).unwrap();
    let before = deployment_when(&cluster, "quickstart-runner", "created", |_| true);
    let file_before = pipeline_file(&cluster, "quickstart");
    cluster.roll_out("quickstart-runner");
    condition_when(&cluster, "quickstart", "Ready", "True", "Running");

    // A mapping that names an identifier type the pipeline does not declare.
    cluster.merge_patch(
        "profilepipeline",
        "quickstart",
        &json!({"spec": {"image": "ghcr.io/kith-dev/kith-runner:0.2.0", "pipeline": {"template": {
            "eventType": "$.type",
            "events": {"signed_up": {
                "source": "web", "id": "$.user.id", "ts": "$.at", "kind": "person",
                "identifiers": [{"type": "loyalty_id", "value": "$.user.loyalty"}]
            }}
        }}}}),
    );
    let degraded = condition_when(&cluster, "quickstart", "Degraded", "True", "InvalidSpec");
    let message = degraded["message"].as_str().unwrap();
    assert!(message.contains("loyalty_id"), "{message}");
    assert!(message.contains("spec.pipeline"), "{message}");
    assert_eq!(degraded["observedGeneration"], 2);
    condition_when(&cluster, "quickstart", "Ready", "False", "InvalidSpec");
    cluster.ok(&[
        "wait",
        "--for=condition=Degraded",
        "profilepipeline/quickstart",
        "--timeout=30s",
    ]);
    assert_eq!(
        cluster.must_get("profilepipeline", "quickstart")["status"]["phase"],
        "Failed"
    );
    events_include(&cluster, "quickstart", "InvalidSpec");
    let after = cluster.must_get("deployment", "quickstart-runner");
    assert_eq!(
        after["metadata"]["generation"],
        before["metadata"]["generation"]
    );
    assert_eq!(
        container(&after)["image"],
        "ghcr.io/kith-dev/kith-runner:0.1.0"
    );
    assert_eq!(pipeline_file(&cluster, "quickstart"), file_before);

    // Fixed: the new spec rolls out and the pipeline recovers.
    cluster.ok(&[
        "patch",
        "profilepipeline",
        "quickstart",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/spec/pipeline/template"}]"#,
    ]);
    condition_when(&cluster, "quickstart", "Degraded", "False", "AsExpected");
    deployment_when(&cluster, "quickstart-runner", "upgraded", |d| {
        container(d)["image"] == "ghcr.io/kith-dev/kith-runner:0.2.0"
    });
    events_include(&cluster, "quickstart", "Recovered");
}

#[test]
fn the_api_server_rejects_invalid_manifests_with_the_schema_or_rule_message() {
    let cluster = Cluster::start("schema");
    let base: serde_yaml::Value = serde_yaml::from_str(&example("quickstart.yaml")).unwrap();
    let with = |name: &str, edit: &dyn Fn(&mut Value)| -> String {
        let mut v: Value = serde_json::to_value(&base).unwrap();
        v["metadata"]["name"] = json!(name);
        edit(&mut v);
        serde_json::to_string(&v).unwrap()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "parallelism above maxParallelism",
            with("too-wide", &|v| {
                v["spec"]["parallelism"] = json!(200);
                v["spec"]["maxParallelism"] = json!(128);
            }),
            "spec.parallelism must not exceed spec.maxParallelism",
        ),
        (
            "parallelism 0",
            with("none", &|v| v["spec"]["parallelism"] = json!(0)),
            "spec.parallelism: Invalid value: 0: spec.parallelism in body should be greater than or equal to 1",
        ),
        (
            "unknown upgrade mode",
            with("rolling", &|v| v["spec"]["upgradeMode"] = json!("rolling")),
            "spec.upgradeMode: Unsupported value: \"rolling\"",
        ),
        (
            "pipeline without identifiers",
            with("no-ids", &|v| {
                v["spec"]["pipeline"].as_object_mut().unwrap().remove("identifiers");
            }),
            "spec.pipeline.identifiers: Required value",
        ),
        (
            "state storage not an object store",
            with("http", &|v| v["spec"]["stateStorage"]["url"] = json!("http://bucket/x")),
            "spec.stateStorage.url must be s3://bucket/prefix or file:///path",
        ),
        (
            "a checkpoint interval that is not a duration",
            with("interval", &|v| v["spec"]["checkpointInterval"] = json!("ten seconds")),
            "spec.checkpointInterval: Invalid value: \"ten seconds\"",
        ),
        (
            "a name too long for the runner objects",
            with(&"p".repeat(57), &|_| {}),
            "at most 56 characters",
        ),
    ];
    for (what, manifest, expected) in cases {
        let err = cluster.apply(&manifest).expect_err(what);
        assert!(
            err.contains(expected),
            "{what}: expected `{expected}` in: {err}"
        );
    }

    // maxParallelism never changes once set.
    let fixed = with("fixed", &|v| v["spec"]["maxParallelism"] = json!(64));
    cluster.apply(&fixed).unwrap();
    let err = cluster
        .apply(&with("fixed", &|v| {
            v["spec"]["maxParallelism"] = json!(128)
        }))
        .expect_err("maxParallelism changed");
    assert!(err.contains("spec.maxParallelism is immutable"), "{err}");

    // Nor does the pipeline a snapshot is of.
    let snapshot = |pipeline: &str| snapshot_manifest("before-upgrade", pipeline);
    cluster.apply(&snapshot("fixed")).unwrap();
    let err = cluster
        .apply(&snapshot("other"))
        .expect_err("snapshot moved");
    assert!(
        err.contains("spec of a ProfileSnapshot is immutable"),
        "{err}"
    );
}

#[test]
fn killing_the_leader_hands_over_to_the_standby() {
    let cluster = Cluster::start("leader");
    let mut operators = [
        Operator::start(&cluster, "operator-a"),
        Operator::start(&cluster, "operator-b"),
    ];
    let holder = |cluster: &Cluster| -> Option<String> {
        cluster.get("lease", "kith-operator")?["spec"]["holderIdentity"]
            .as_str()
            .map(str::to_string)
    };
    let leader = eventually(WAIT, "a leader", || {
        holder(&cluster).ok_or("no Lease yet".to_string())
    });
    let leader_at = operators.iter().position(|o| o.identity == leader).unwrap();
    let standby = &operators[1 - leader_at];
    let (_, metrics) = standby.http_get("/metrics").unwrap();
    assert!(metrics.contains("kith_operator_leader 0"), "{metrics}");
    // A standby is ready once it has started (on a loaded machine that may
    // come after the leader took the Lease).
    eventually(WAIT, "a ready standby", || {
        match standby.http_get("/readyz") {
            Ok((200, _)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let standby_identity = standby.identity.clone();

    cluster.apply(&example("quickstart.yaml")).unwrap();
    deployment_when(
        &cluster,
        "quickstart-runner",
        "created by the leader",
        |_| true,
    );

    let killed = Instant::now();
    operators[leader_at].kill();
    cluster.apply(&example("kafka-s3.yaml")).unwrap();
    let new_leader = eventually(Duration::from_secs(30), "a new leader", || {
        match holder(&cluster) {
            Some(h) if h == standby_identity => Ok(h),
            other => Err(format!("{other:?}")),
        }
    });
    let handover = killed.elapsed();
    assert_eq!(new_leader, standby_identity);
    assert!(
        handover <= Duration::from_secs(15),
        "handover took {handover:?}"
    );
    deployment_when(
        &cluster,
        "customers-runner",
        "created by the new leader",
        |_| true,
    );
    let lease = cluster.must_get("lease", "kith-operator");
    assert!(
        lease["spec"]["leaseTransitions"].as_i64().unwrap() >= 1,
        "{lease}"
    );
    eprintln!("leader handover after SIGKILL: {handover:?}");
}

#[test]
fn deleting_a_pipeline_removes_its_runners_and_fails_its_pending_snapshots() {
    let cluster = Cluster::start("delete");
    let _operator = Operator::start(&cluster, "operator-a");
    cluster.apply(&example("quickstart.yaml")).unwrap();
    deployment_when(&cluster, "quickstart-runner", "created", |_| true);
    let p = cluster.must_get("profilepipeline", "quickstart");
    assert_eq!(p["metadata"]["finalizers"], json!(["kith.dev/cleanup"]));

    // A changed savepoint nonce becomes a snapshot request the pipeline owns.
    cluster.merge_patch(
        "profilepipeline",
        "quickstart",
        &json!({"spec": {"savepointNonce": 7}}),
    );
    let requested = eventually(WAIT, "a savepoint request", || {
        cluster
            .get("profilesnapshot", "quickstart-savepoint-7")
            .ok_or_else(|| "none".to_string())
    });
    assert_eq!(requested["spec"]["pipeline"], "quickstart");
    assert_eq!(
        requested["metadata"]["ownerReferences"][0]["uid"],
        p["metadata"]["uid"]
    );
    eventually(WAIT, "the nonce acknowledged", || {
        let p = cluster.must_get("profilepipeline", "quickstart");
        if p["status"]["observedSavepointNonce"] == 7 {
            Ok(())
        } else {
            Err(p["status"].to_string())
        }
    });
    events_include(&cluster, "quickstart", "SavepointRequested");
    cluster
        .apply(&snapshot_manifest("by-hand", "quickstart"))
        .unwrap();

    cluster.ok(&["delete", "profilepipeline", "quickstart", "--wait=false"]);
    wait_gone(&cluster, "profilepipeline", "quickstart");
    for (kind, name) in [
        ("deployment", "quickstart-runner"),
        ("service", "quickstart-runner"),
        ("serviceaccount", "quickstart-runner"),
        ("role", "quickstart-runner"),
        ("rolebinding", "quickstart-runner"),
        ("poddisruptionbudget", "quickstart-runner"),
        ("networkpolicy", "quickstart-runner"),
        ("configmap", "quickstart-pipeline"),
    ] {
        assert!(
            cluster.get(kind, name).is_none(),
            "{kind} {name} is left behind"
        );
    }
    let by_hand = cluster.must_get("profilesnapshot", "by-hand");
    assert_eq!(by_hand["status"]["state"], "Failed");
    assert!(
        by_hand["status"]["error"]
            .as_str()
            .unwrap()
            .contains("deleted"),
        "{by_hand}"
    );
}

#[test]
fn the_operator_needs_no_more_than_its_install_manifest_grants() {
    let cluster = Cluster::start("rbac");
    // The ServiceAccount, ClusterRole and binding of the install manifest,
    // moved into this test's namespace and given names of their own.
    let own = format!("kith-operator-{}", cluster.namespace);
    let mut objects = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&example("install/operator.yaml")) {
        let mut object: Value =
            serde_json::to_value(serde_yaml::Value::deserialize(doc).unwrap()).unwrap();
        match object["kind"].as_str().unwrap() {
            "ServiceAccount" => object["metadata"]["namespace"] = json!(cluster.namespace),
            "ClusterRole" => object["metadata"]["name"] = json!(own),
            "ClusterRoleBinding" => {
                object["metadata"]["name"] = json!(own);
                object["roleRef"]["name"] = json!(own);
                object["subjects"][0]["namespace"] = json!(cluster.namespace);
            }
            _ => continue,
        }
        objects.push(object);
    }
    assert_eq!(
        objects.len(),
        3,
        "the install manifest lost its RBAC objects"
    );
    cluster
        .apply(&json!({"apiVersion": "v1", "kind": "List", "items": objects}).to_string())
        .unwrap();
    let token = cluster.ok(&["create", "token", "kith-operator", "--duration", "1h"]);
    let mut kubeconfig: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&cluster.kubeconfig).unwrap()).unwrap();
    kubeconfig["users"][0]["user"] = serde_yaml::to_value(json!({"token": token.trim()})).unwrap();
    let path = std::env::temp_dir().join(format!("{}.kubeconfig", cluster.namespace));
    std::fs::write(&path, serde_yaml::to_string(&kubeconfig).unwrap()).unwrap();
    let denied = cluster.run(&["--kubeconfig", path.to_str().unwrap(), "get", "secrets"]);
    assert!(
        !denied.status.success(),
        "the operator's identity must not read secrets"
    );

    let operator = Operator::start_with(&cluster, "operator-rbac", path.to_str().unwrap());
    cluster.apply(&example("quickstart.yaml")).unwrap();
    deployment_when(&cluster, "quickstart-runner", "created", |_| true);
    cluster.must_get("role", "quickstart-runner");
    cluster.roll_out("quickstart-runner");
    condition_when(&cluster, "quickstart", "Ready", "True", "Running");
    events_include(&cluster, "quickstart", "Ready");
    cluster.merge_patch(
        "profilepipeline",
        "quickstart",
        &json!({"spec": {"savepointNonce": 1}}),
    );
    eventually(WAIT, "a savepoint request", || {
        cluster
            .get("profilesnapshot", "quickstart-savepoint-1")
            .ok_or_else(|| "none".to_string())
    });
    cluster.ok(&["delete", "profilepipeline", "quickstart", "--wait=false"]);
    wait_gone(&cluster, "profilepipeline", "quickstart");
    assert!(cluster.get("deployment", "quickstart-runner").is_none());
    let (_, metrics) = operator.http_get("/metrics").unwrap();
    assert!(
        !metrics.contains("kith_operator_reconcile_errors_total{"),
        "reconciles failed under the install manifest's RBAC:\n{metrics}"
    );
}

/// Stands in for the runner taking `snapshot`: reports it `state` (with an
/// `error` when Failed, a path when Completed).
fn finish_snapshot(cluster: &Cluster, snapshot: &str, state: &str, error: Option<&str>) {
    let status = match error {
        Some(e) => json!({"status": {"state": state, "error": e}}),
        None => {
            json!({"status": {"state": state, "path": format!("s3://kith-state/customers/savepoints/{snapshot}")}})
        }
    };
    cluster.patch_status("profilesnapshot", snapshot, &status);
}

/// The newest `customers-upgrade-*` snapshot other than `except`.
fn upgrade_snapshot(cluster: &Cluster, except: Option<&str>) -> String {
    eventually(WAIT, "an upgrade savepoint request", || {
        let list: Value =
            serde_json::from_str(&cluster.ok(&["get", "profilesnapshots", "-o", "json"])).unwrap();
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["metadata"]["name"].as_str())
            .find(|n| n.starts_with("customers-upgrade-") && Some(*n) != except)
            .map(str::to_string)
            .ok_or_else(|| list["items"].to_string())
    })
}

#[test]
fn a_savepoint_upgrade_holds_the_runners_until_the_savepoint_is_taken() {
    let cluster = Cluster::start("upgrade");
    let _operator = Operator::start(&cluster, "operator-a");
    cluster.apply(&example("kafka-s3.yaml")).unwrap();
    // No runner reports checkpoints here: stable as soon as rolled out, so
    // that a failed savepoint protects a stable spec (and blocks).
    cluster.merge_patch(
        "profilepipeline",
        "customers",
        &json!({"spec": {"upgrade": {"stableAfterCheckpoints": 0}}}),
    );
    let before = deployment_when(&cluster, "customers-runner", "created", |_| true);
    cluster.roll_out("customers-runner");
    condition_when(&cluster, "customers", "Ready", "True", "Running");

    let image = |tag: &str| format!("ghcr.io/kith-dev/kith-runner:{tag}");
    cluster.merge_patch(
        "profilepipeline",
        "customers",
        &json!({"spec": {"image": image("0.2.0")}}),
    );
    let first = upgrade_snapshot(&cluster, None);
    let owner = &cluster.must_get("profilesnapshot", &first)["metadata"]["ownerReferences"][0];
    assert_eq!(owner["name"], "customers");
    condition_when(
        &cluster,
        "customers",
        "Progressing",
        "True",
        "TakingSavepoint",
    );
    assert_eq!(
        cluster.must_get("profilepipeline", "customers")["status"]["phase"],
        "Upgrading"
    );
    events_include(&cluster, "customers", "SavepointRequested");
    let held = cluster.must_get("deployment", "customers-runner");
    assert_eq!(
        held["metadata"]["generation"], before["metadata"]["generation"],
        "runners changed before the savepoint"
    );
    assert_eq!(container(&held)["image"], image("0.1.0"));

    finish_snapshot(&cluster, &first, "InProgress", None);
    finish_snapshot(&cluster, &first, "Completed", None);
    deployment_when(
        &cluster,
        "customers-runner",
        "upgraded after the savepoint",
        |d| container(d)["image"] == image("0.2.0").as_str(),
    );
    events_include(&cluster, "customers", "Upgrading");
    cluster.roll_out("customers-runner");
    condition_when(&cluster, "customers", "Ready", "True", "Running");

    // A failed savepoint holds the runners on the previous spec and says why.
    cluster.merge_patch(
        "profilepipeline",
        "customers",
        &json!({"spec": {"image": image("0.3.0")}}),
    );
    let second = upgrade_snapshot(&cluster, Some(&first));
    finish_snapshot(
        &cluster,
        &second,
        "Failed",
        Some("bucket kith-state unreachable"),
    );
    let degraded = condition_when(&cluster, "customers", "Degraded", "True", "UpgradeBlocked");
    assert!(
        degraded["message"]
            .as_str()
            .unwrap()
            .contains("bucket kith-state unreachable"),
        "{degraded}"
    );
    events_include(&cluster, "customers", "UpgradeBlocked");
    assert_eq!(
        container(&cluster.must_get("deployment", "customers-runner"))["image"],
        image("0.2.0")
    );

    // The owner chooses to upgrade from the latest checkpoint instead.
    cluster.merge_patch(
        "profilepipeline",
        "customers",
        &json!({"spec": {"upgradeMode": "last-state"}}),
    );
    deployment_when(
        &cluster,
        "customers-runner",
        "upgraded from the latest checkpoint",
        |d| container(d)["image"] == image("0.3.0").as_str(),
    );
    condition_when(&cluster, "customers", "Degraded", "False", "AsExpected");
}

#[test]
fn a_stateless_upgrade_starts_a_new_state_lineage_that_later_upgrades_keep() {
    let cluster = Cluster::start("stateless");
    let _operator = Operator::start(&cluster, "operator-a");
    cluster.apply(&example("quickstart.yaml")).unwrap();
    deployment_when(&cluster, "quickstart-runner", "created", |_| true);
    let url = |cluster: &Cluster| {
        pipeline_file(cluster, "quickstart")["checkpoints"]["url"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(url(&cluster), "file:///var/lib/kith/checkpoints");
    let image = |tag: &str| format!("ghcr.io/kith-dev/kith-runner:{tag}");

    cluster.merge_patch(
        "profilepipeline",
        "quickstart",
        &json!({"spec": {"upgradeMode": "stateless", "image": image("0.2.0")}}),
    );
    deployment_when(&cluster, "quickstart-runner", "upgraded", |d| {
        container(d)["image"] == image("0.2.0").as_str()
    });
    let lineage = eventually(WAIT, "a new state lineage", || {
        let p = cluster.must_get("profilepipeline", "quickstart");
        p["status"]["stateLineage"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| p["status"].to_string())
    });
    assert!(lineage.starts_with("stateless-"), "{lineage}");
    assert_eq!(
        url(&cluster),
        format!("file:///var/lib/kith/checkpoints/{lineage}")
    );
    events_include(&cluster, "quickstart", "StatelessUpgrade");

    // A rescale is not an upgrade: same lineage (and, refused, one runner).
    cluster.merge_patch(
        "profilepipeline",
        "quickstart",
        &json!({"spec": {"parallelism": 2}}),
    );
    condition_when(
        &cluster,
        "quickstart",
        "Degraded",
        "True",
        "ParallelismUnsupported",
    );
    let d = cluster.must_get("deployment", "quickstart-runner");
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(
        url(&cluster),
        format!("file:///var/lib/kith/checkpoints/{lineage}")
    );

    // A later last-state upgrade continues from the new lineage, never the old state.
    cluster.merge_patch(
        "profilepipeline",
        "quickstart",
        &json!({"spec": {"upgradeMode": "last-state", "image": image("0.3.0")}}),
    );
    deployment_when(&cluster, "quickstart-runner", "upgraded again", |d| {
        container(d)["image"] == image("0.3.0").as_str()
    });
    assert_eq!(
        url(&cluster),
        format!("file:///var/lib/kith/checkpoints/{lineage}")
    );
    let p = cluster.must_get("profilepipeline", "quickstart");
    assert_eq!(p["status"]["stateLineage"], lineage.as_str());
}

#[test]
fn snapshots_are_taken_on_a_schedule_and_only_the_operators_are_pruned() {
    let cluster = Cluster::start("schedule");
    let _operator = Operator::start(&cluster, "operator-a");
    let mut manifest: Value = serde_json::to_value(
        serde_yaml::from_str::<serde_yaml::Value>(&example("quickstart.yaml")).unwrap(),
    )
    .unwrap();
    manifest["spec"]["snapshots"] = json!({"interval": "2s", "retain": 2});
    cluster.apply(&manifest.to_string()).unwrap();
    deployment_when(&cluster, "quickstart-runner", "created", |_| true);
    // No periodic savepoint while no runner is ready to take it.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let periodic = |cluster: &Cluster| -> Vec<(String, Value)> {
        let list: Value =
            serde_json::from_str(&cluster.ok(&["get", "profilesnapshots", "-o", "json"])).unwrap();
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["metadata"]["labels"]["kith.dev/snapshot-reason"] == "periodic")
            // One being deleted waits for the runner to delete its files
            // (the savepoint-files finalizer): pruned already.
            .filter(|s| s["metadata"]["deletionTimestamp"].is_null())
            .map(|s| {
                (
                    s["metadata"]["name"].as_str().unwrap().to_string(),
                    s["status"].clone(),
                )
            })
            .collect()
    };
    assert!(periodic(&cluster).is_empty(), "{:?}", periodic(&cluster));
    cluster.roll_out("quickstart-runner");
    cluster
        .apply(&snapshot_manifest("by-hand", "quickstart"))
        .unwrap();
    cluster.patch_status(
        "profilesnapshot",
        "by-hand",
        &json!({"status": {"state": "Completed", "path": "s3://x/by-hand"}}),
    );

    // Stand in for the runner: complete each periodic snapshot as it comes.
    let mut completed = Vec::new();
    while completed.len() < 4 {
        let next = eventually(WAIT, "a periodic snapshot", || {
            periodic(&cluster)
                .into_iter()
                .find(|(name, status)| status.is_null() && !completed.contains(name))
                .map(|(name, _)| name)
                .ok_or_else(|| format!("{:?}", periodic(&cluster)))
        });
        cluster.patch_status(
            "profilesnapshot",
            &next,
            &json!({"status": {"state": "Completed", "path": "s3://x/p"}}),
        );
        completed.push(next);
    }
    events_include(&cluster, "quickstart", "SavepointScheduled");
    // Only the two newest completed ones of the operator's are kept.
    eventually(WAIT, "older periodic snapshots pruned", || {
        let kept: Vec<String> = periodic(&cluster)
            .into_iter()
            .filter(|(_, status)| status["state"] == "Completed")
            .map(|(name, _)| name)
            .collect();
        if kept.len() == 2 && kept.iter().all(|k| completed[2..].contains(k)) {
            Ok(())
        } else {
            Err(format!("kept {kept:?} of {completed:?}"))
        }
    });
    assert!(
        cluster.get("profilesnapshot", "by-hand").is_some(),
        "a user's snapshot was pruned"
    );
    // A pruned one stays, marked for deletion, until a runner has deleted
    // its savepoint's files and then the finalizer.
    let pruned = cluster.must_get("profilesnapshot", &completed[0]);
    assert!(
        !pruned["metadata"]["deletionTimestamp"].is_null(),
        "{pruned}"
    );
    assert_eq!(
        pruned["metadata"]["finalizers"],
        json!(["kith.dev/savepoint-files"])
    );
}

#[test]
fn only_the_watched_namespaces_are_reconciled() {
    let first = Cluster::start("watched-a");
    let second = Cluster::start("watched-b");
    let other = Cluster::start("unwatched");
    let watched = format!("{},{}", first.namespace, second.namespace);
    // One operator for two namespaces, given as the Deployment's env would.
    let _operator = Operator::start_watching(&first, "operator-a", &watched);
    for cluster in [&first, &second, &other] {
        cluster.apply(&example("quickstart.yaml")).unwrap();
    }
    deployment_when(&first, "quickstart-runner", "created in the first", |_| {
        true
    });
    deployment_when(
        &second,
        "quickstart-runner",
        "created in the second",
        |_| true,
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        other.get("deployment", "quickstart-runner").is_none(),
        "an unwatched namespace was reconciled"
    );
    assert!(other.must_get("profilepipeline", "quickstart")["status"].is_null());
}

#[test]
fn run_outside_a_cluster_takes_its_lease_in_the_kubeconfig_namespace() {
    let cluster = Cluster::start("workstation");
    // A kubeconfig whose context names the test's namespace, as `kubectl
    // config set-context --current --namespace` leaves it on a workstation.
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::copy(&cluster.kubeconfig, &kubeconfig).unwrap();
    let kubeconfig = kubeconfig.to_str().unwrap().to_string();
    let set = std::process::Command::new(support::services::require(&["kube"]).get("KUBECTL"))
        .args([
            "config",
            "set-context",
            "--current",
            "--namespace",
            &cluster.namespace,
        ])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .unwrap();
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let _operator = Operator::start_without_lease_namespace(&cluster, "workstation", &kubeconfig);
    let lease = eventually(
        WAIT,
        "the leader Lease in the kubeconfig's namespace",
        || {
            cluster
                .get("lease", "kith-operator")
                .ok_or_else(|| "no Lease yet".to_string())
        },
    );
    assert_eq!(lease["spec"]["holderIdentity"], "workstation");
    cluster.apply(&example("quickstart.yaml")).unwrap();
    deployment_when(&cluster, "quickstart-runner", "created", |_| true);
}
